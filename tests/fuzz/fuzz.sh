#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/fuzz_<target>.c) with clang and
# fuzzes each in turn for a given time, then merges into the source tree's
# corpus (tests/fuzz/corpus/<target>/) only the new inputs that reach edges
# the corpus does not. Run by `make fuzz` (see tests/fuzz/README.md), which
# passes the build's settings in the environment:
#
#   FUZZ_CC        clang; empty when configure found none
#   FUZZ_CPPFLAGS  the build's include flags
#   FUZZ_LIBS      the libraries the core links with
#   FUZZ_SOURCES   the core's sources (libtrustflow_la_SOURCES, headers too)
#   FUZZ_SECONDS   how long to fuzz each target, in seconds
#   FUZZ_TARGETS   which targets, in order
#   FUZZ_ARGS      more libFuzzer options, for every target (may be empty)
#   srcdir         the source tree; the build happens in the current directory
#
# Everything it makes goes under ./fuzz: the objects and binaries, each
# target's log, its scratch corpus and its findings. Exit status 0 when no
# target found anything, 1 on a finding, 2 on a usage or build error.
set -eu

out=fuzz
# Undefined behaviour, including a double cast to an integer type that
# cannot hold it (not part of -fsanitize=undefined), aborts: a finding.
san="-fsanitize=address,undefined,float-cast-overflow"
san="$san -fno-sanitize-recover=undefined,float-cast-overflow"
cflags="-g -O1 -fno-omit-frame-pointer -std=c11 -D_POSIX_C_SOURCE=200809L $san $FUZZ_CPPFLAGS"

die() {
	echo "make fuzz: $*" >&2
	exit 2
}

no_clang() {
	die "$1. Fuzzing needs clang with libFuzzer; on Debian 12:" \
		"apt-get install clang libclang-rt-14-dev, then configure again" \
		"(or name it: make fuzz FUZZ_CC=clang-14)."
}

check_args() {
	case "$FUZZ_SECONDS" in
	'' | *[!0-9]* | 0*) die "FUZZ_SECONDS must be a whole number of seconds above 0," \
		"not '$FUZZ_SECONDS'" ;;
	esac
	[ -n "$FUZZ_TARGETS" ] || die "FUZZ_TARGETS is empty"
	for t in $FUZZ_TARGETS; do
		[ -f "$srcdir/tests/fuzz/fuzz_$t.c" ] || die "no target '$t' (tests/fuzz/fuzz_$t.c)"
	done
	[ -n "$FUZZ_CC" ] || no_clang "configure found no clang"
	command -v "$FUZZ_CC" >/dev/null 2>&1 || no_clang "'$FUZZ_CC' was not found"
}

# Links an empty target, so that a clang without the libFuzzer runtime
# (libclang-rt) is reported as that, not as a link error in the middle.
check_libfuzzer() {
	mkdir -p "$out"
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		'{ (void)d; (void)n; return 0; }' >"$out/probe.c"
	"$FUZZ_CC" -fsanitize=fuzzer,address "$out/probe.c" -o "$out/probe" \
		>"$out/probe.log" 2>&1 ||
		no_clang "'$FUZZ_CC' cannot link with -fsanitize=fuzzer (see $out/probe.log)"
}

# The core is built once into an archive, so that each target links only
# the objects it needs; it is rebuilt when any core source or header is
# newer than the archive.
build_core() {
	lib="$out/libtrustflow-fuzz.a"
	stale=no
	[ -f "$lib" ] || stale=yes
	for f in $FUZZ_SOURCES; do
		if [ "$srcdir/$f" -nt "$lib" ]; then stale=yes; fi
	done
	[ "$stale" = yes ] || return 0
	echo "make fuzz: building the core with $FUZZ_CC"
	rm -rf "$out/obj" "$lib"
	mkdir -p "$out/obj"
	for f in $FUZZ_SOURCES; do
		case "$f" in *.c) ;; *) continue ;; esac
		o="$out/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')"
		# fuzzer-no-link: coverage for libFuzzer, without a second main().
		"$FUZZ_CC" $cflags -fsanitize=fuzzer-no-link -c "$srcdir/$f" -o "$o" ||
			die "cannot compile $f"
	done
	ar rcs "$lib" "$out"/obj/*.o || die "cannot archive the core"
}

build_target() {
	bin="$out/fuzz_$1"
	src="$srcdir/tests/fuzz/fuzz_$1.c"
	if [ -f "$bin" ] && [ ! "$src" -nt "$bin" ] &&
		[ ! "$srcdir/tests/fuzz/fuzz.h" -nt "$bin" ] && [ ! "$lib" -nt "$bin" ]; then
		return 0
	fi
	"$FUZZ_CC" $cflags -fsanitize=fuzzer "$src" "$lib" $FUZZ_LIBS -o "$bin" ||
		die "cannot build fuzz_$1"
}

# The JSON targets get the dictionary of JSON tokens and member names.
dict_for() {
	case "$1" in
	identities | policy | schema | control | join) echo "-dict=$srcdir/tests/fuzz/json.dict" ;;
	esac
}

# Counts the regular files in $1, or only those newer than the file $2.
count_files() {
	if [ $# -gt 1 ]; then
		find "$1" -maxdepth 1 -type f ! -name '.*' -newer "$2" | wc -l | tr -d ' '
	else
		find "$1" -maxdepth 1 -type f ! -name '.*' | wc -l | tr -d ' '
	fi
}

# Fuzzes one target from the tree's corpus into a fresh scratch corpus, then
# merges the scratch corpus into the tree's. The merge counts edges only
# (-use_counters=0), not how often each is hit, and prefers the smallest
# input for each, so that few and small inputs are kept.
fuzz_target() {
	t=$1
	bin="$out/fuzz_$t"
	seeds="$srcdir/tests/fuzz/corpus/$t"
	work="$out/work/$t"
	findings="$out/findings/$t"
	log="$out/$t.log"
	rm -rf "$work"
	mkdir -p "$work" "$findings" "$seeds"
	before=$(count_files "$seeds")
	# Findings of earlier runs stay until someone looks at them; this run's
	# are the ones newer than this mark.
	touch "$out/work/$t.start"
	echo "make fuzz: fuzzing $t for $FUZZ_SECONDS s (log: $log)"
	rc=0
	"$bin" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 \
		$(dict_for "$t") -artifact_prefix="$findings/" $FUZZ_ARGS \
		"$work" "$seeds" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		"$bin" -merge=1 -use_counters=0 -rss_limit_mb=2048 "$seeds" "$work" >>"$log" 2>&1 ||
			die "merging $t's new inputs failed (see $log)"
	fi
	added=$(($(count_files "$seeds") - before))
	found=$(count_files "$findings" "$out/work/$t.start")
	line="$t: $(date -u +%Y-%m-%d), ${secs:-?} s, ${execs:-?} executions, $added inputs"
	line="$line added to tests/fuzz/corpus/$t, findings: $found"
	[ "$rc" -eq 0 ] || line="$line (exit $rc; see $log and $findings/)"
	echo "$line" | tee -a "$out/summary"
	[ "$rc" -eq 0 ] && [ "$found" -eq 0 ]
}

check_args
check_libfuzzer
build_core
for t in $FUZZ_TARGETS; do
	build_target "$t"
done
status=0
for t in $FUZZ_TARGETS; do
	fuzz_target "$t" || status=1
done
[ "$status" -eq 0 ] || echo "make fuzz: there are findings: see tests/fuzz/README.md" >&2
exit "$status"

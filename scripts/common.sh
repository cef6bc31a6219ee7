# Shared by scripts/run-broker.sh and scripts/run-tests.sh: the Debian
# packages trustflow needs, and the build itself. Sourced, not run.

# Everything needed to build the plugin and tfctl, run the broker, and run
# the whole test suite.
TF_PACKAGES="build-essential autoconf automake libtool pkgconf
libssl-dev libsodium-dev libcjson-dev liblmdb-dev libcmocka-dev
mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev libmicrohttpd-dev
python3 python3-paho-mqtt python3-jsonschema python3-cryptography openssl"

# What the test suite needs besides: a browser for the impact report's page
# and, driven by selenium, for the console's; a Prometheus text parser for
# the console's /metrics; Node.js for the JavaScript of docs/provenance.md,
# YAML for the federation demo's compose file.
TF_TEST_PACKAGES="chromium chromium-driver python3-selenium python3-prometheus-client nodejs
python3-yaml"

TF_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tf_say() { printf '%s\n' "$*" >&2; }

# Installs the missing packages of TF_PACKAGES and of the lists given as
# root; as anyone else, prints the exact command to run and stops. Sets
# TF_INSTALLED to what it installed.
tf_ensure_packages() {
	local p missing=""
	TF_INSTALLED=""
	for p in $TF_PACKAGES "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
			|| missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		tf_say "trustflow needs these Debian packages. Install them, then run this again:"
		tf_say "  sudo apt-get install -y --no-install-recommends$missing"
		exit 1
	fi
	tf_say "Installing:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
	TF_INSTALLED=$missing
}

# Configures (once per set of flags) and builds in build directory $1 with
# configure flags $2...; the build tree is left in TF_BUILDDIR.
tf_build() {
	local builddir=$1 flags
	shift
	flags="$*"
	TF_BUILDDIR="$TF_SRCDIR/$builddir"
	if [ ! -x "$TF_SRCDIR/configure" ] || [ "$TF_SRCDIR/configure.ac" -nt "$TF_SRCDIR/configure" ]; then
		(cd "$TF_SRCDIR" && autoreconf -fi) >&2
	fi
	mkdir -p "$TF_BUILDDIR"
	if [ ! -f "$TF_BUILDDIR/Makefile" ] || [ "$(cat "$TF_BUILDDIR/.tf-flags" 2>/dev/null)" != "$flags" ]; then
		(cd "$TF_BUILDDIR" && "$TF_SRCDIR/configure" $flags) >&2
		printf '%s' "$flags" > "$TF_BUILDDIR/.tf-flags"
	fi
	make -C "$TF_BUILDDIR" -j"$(nproc)" >&2
}

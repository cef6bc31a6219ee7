#!/usr/bin/env bash
# Builds trustflow with every warning fatal and with ASan and UBSan, runs
# the whole test suite (unit and integration, a real mosquitto per
# integration test), then `make distcheck`. Exit status 0 when all pass.
set -euo pipefail
source "$(dirname "$0")/common.sh"

tf_ensure_packages $TF_TEST_PACKAGES
# The Docker image test needs a container engine: where a container-engine
# helper sits beside the repository (../shared/tools), it sets docker or
# podman up; otherwise the test looks for either itself, and skips (exit
# 77) when neither runs.
engine_helper="$TF_SRCDIR/../shared/tools/container-engine"
if [ -x "$engine_helper" ] && [ "$(id -u)" -eq 0 ]; then
	"$engine_helper" >&2 || tf_say "trustflow: no container engine; the image test will skip"
fi
tf_build _build-test --enable-werror --enable-sanitizers
make -C "$TF_BUILDDIR" -j"$(nproc)" check VERBOSE=1
make -C "$TF_BUILDDIR" -j"$(nproc)" distcheck
tf_say "trustflow: all tests passed."

#!/usr/bin/env bash
# Builds trustflow with every warning fatal and with ASan and UBSan, runs
# the whole test suite (unit and integration, a real mosquitto per
# integration test), then `make distcheck`. Exit status 0 when all pass.
set -euo pipefail
source "$(dirname "$0")/common.sh"

tf_ensure_packages $TF_TEST_PACKAGES
tf_build _build-test --enable-werror --enable-sanitizers
make -C "$TF_BUILDDIR" -j"$(nproc)" check VERBOSE=1
make -C "$TF_BUILDDIR" -j"$(nproc)" distcheck
tf_say "trustflow: all tests passed."

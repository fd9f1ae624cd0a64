#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the test suite — what CI runs (.ci/run).
#   scripts/test.sh          every test except those labelled "long" (full-size models, minutes)
#   scripts/test.sh --long   all tests
# Among them: install.examples (scripts/test-install.sh: install into a temporary prefix, build and run examples/
# against it) and headers.self_contained (every public header compiles on its own).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${MDM_BUILD_DIR:-build}"
label_args=(-LE long)
if [[ "${1:-}" == "--long" ]]; then label_args=(); fi
cd "$build_dir"
ctest --output-on-failure --timeout 1200 -j "${MDM_TEST_JOBS:-2}" "${label_args[@]}"

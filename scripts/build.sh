#!/usr/bin/env bash
# Configures and builds libmdm (Release, Ninja, ccache when present) into ${MDM_BUILD_DIR:-build}.
# Extra arguments go to cmake's configure step (e.g. -DMDM_BUILD_TESTS=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${MDM_BUILD_DIR:-build}"
jobs="${MDM_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${MDM_BUILD_TYPE:-Release}" "$@"
start=$(date +%s)
cmake --build "$build_dir" -j "$jobs"
echo "build: done in $(( $(date +%s) - start )) s ($build_dir)"

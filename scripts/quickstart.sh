#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs the dependencies, builds libmdm and its tools,
# and describes the built-in default model (configs/tiny_s16s32.yaml) and the paper's MDM-S64S256.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${MDM_BUILD_DIR:-build}"
config="${1:-configs/tiny_s16s32.yaml}"
echo
echo "== $config (the default: small enough to train on a CPU)"
"$build_dir/tools/mdm-info" --config "$config"
echo
echo "== configs/cc12m_s64s256.yaml (MDM-S64S256, the paper's Appendix A)"
"$build_dir/tools/mdm-info" --config configs/cc12m_s64s256.yaml

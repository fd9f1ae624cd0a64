#!/usr/bin/env bash
# Training throughput on this machine (docs/benchmarks.md "Training"): mdm-train --dry-run times two
# steps of the first stage and reports the peak RSS, for the quickstart model (both of its stages) and
# for the paper's MDM-S64 (text conditioning off: the text encoder is not part of this measurement).
# Needs the OpenMoji data (scripts/prepare-openmoji.sh) and a Release build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${MDM_BUILD_DIR:-build}"
data="${MDM_DATA_DIR:-data/openmoji}/train.tsv"
train="$build_dir/tools/mdm-train"
run() {
  echo "== $1"
  shift
  "$train" --dry-run --set "data.path=$data" "$@" 2>&1 | grep -E "^step|^peak"
}
run "openmoji_s32s64, stage 1 (32² alone), batch 16" --config configs/openmoji_s32s64.yaml
run "openmoji_s32s64, stage 2 (32² + 64²), batch 16" --config configs/openmoji_s32s64.yaml \
  --set 'train.stages=[{resolutions: [32, 64], steps: 10}]'
run "MDM-S64 (paper, unconditional), batch 2" --config configs/paper/mdm_s64.yaml \
  --set model.conditioning=none --set 'train.stages=[{resolutions: [64], steps: 10, batch_size: 2}]' \
  --set train.precision=fp32

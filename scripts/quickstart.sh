#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs the dependencies, builds libmdm and its tools,
# prepares the OpenMoji emoji (CC BY-SA 4.0, https://openmoji.org) at 32² and 64², trains the small
# text-conditioned nested MDM of configs/openmoji_s32s64.yaml (the 32² model alone, then both levels; a small
# T5 and a SentencePiece vocabulary learned from the captions) and samples a grid of prompts.
#
#   scripts/quickstart.sh                  # the default run (~15 minutes on 2 CPU cores)
#   scripts/quickstart.sh --set train.stages[1].steps=2000   # any mdm-train override
#
# Re-running continues the run (--resume auto) and re-samples; delete runs/openmoji_s32s64 to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-deps.sh
scripts/build.sh
build_dir="${MDM_BUILD_DIR:-build}"
data_dir="${MDM_DATA_DIR:-data/openmoji}"
run_dir="${MDM_RUN_DIR:-runs/openmoji_s32s64}"

scripts/prepare-openmoji.sh --out "$data_dir" --size 64

echo
echo "== training configs/openmoji_s32s64.yaml in $run_dir"
"$build_dir/tools/mdm-train" --config configs/openmoji_s32s64.yaml --output-dir "$run_dir" --resume auto \
  --set "data.path=$data_dir/train.tsv" "$@"

echo
echo "== sampling 2 images for each of 6 prompts from $run_dir/last"
mkdir -p "$run_dir/quickstart"
printf '%s\n' "red heart" "green frog" "smiling face" "blue car" "yellow star" "black flag" > "$run_dir/quickstart/prompts.txt"
"$build_dir/tools/mdm-sample" -c "$run_dir/last" --prompts-file "$run_dir/quickstart/prompts.txt" -n 2 -b 2 --seed 0 -q \
  -o "$run_dir/quickstart/sample_{index}.png" --grid "$run_dir/quickstart/grid.png"
echo
echo "== do prompts matter? mean colour of 8 samples per prompt against the training images they name"
# Exit code 2 = the prompts do not separate (a too-short run); the check's verdict is printed either way.
"$build_dir/tools/mdm-eval-prompts" -c "$run_dir/last" --data "$data_dir/train.tsv" -n 8 -b 8 \
  --target "red heart=red heart" --target "green frog=frog" --target "smiling face=smiling face" || [[ $? -eq 2 ]]
echo
echo "samples:        $run_dir/quickstart/grid.png (one row per prompt: $run_dir/quickstart/prompts.txt)"
echo "                more: $build_dir/tools/mdm-sample -c $run_dir/last -p \"red heart\" -n 4 --grid heart.png"
echo "training grids: $run_dir/samples/ (EMA samples, every level side by side; loss.png = the loss curve)"
echo "metrics:        $run_dir/metrics.jsonl"
echo "wall time:      $(( $(date +%s) - start )) s"
echo "Data: OpenMoji (https://openmoji.org), CC BY-SA 4.0."

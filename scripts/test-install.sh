#!/usr/bin/env bash
# Checks libmdm as a library people link: installs the build into a fresh prefix, then configures, builds
# and runs each example (examples/*, each its own CMake project doing find_package(mdm)) against the
# installed package, not the build tree. CI runs it as the ctest test install.examples (scripts/test.sh).
#   scripts/test-install.sh [BUILD_DIR]      (default: $MDM_BUILD_DIR or build; needs a finished build)
# Work folder: BUILD_DIR/install-test (prefix/, build-<example>/, run/), wiped at the start.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$(pwd)"
build_dir="$(cd "${1:-${MDM_BUILD_DIR:-build}}" && pwd)"
work="$build_dir/install-test"
prefix="$work/prefix"
examples=(train_custom_data generate custom_sampling_loop)
start=$(date +%s)
step() { echo "test-install: $* ($(( $(date +%s) - start )) s)"; }
fail() { echo "test-install: FAILED: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
step "installing $build_dir into $prefix"
cmake --install "$build_dir" --prefix "$prefix" > "$work/install.log"

# The package: public headers only (include/mdm/ plus the generated version.h), library, tools, CMake files.
( cd include && find mdm -name '*.h' | sort ) > "$work/headers.expected"
echo "mdm/version.h" >> "$work/headers.expected"
( cd "$prefix/include" && find mdm -type f | sort ) > "$work/headers.installed"
sort -o "$work/headers.expected" "$work/headers.expected"
diff -u "$work/headers.expected" "$work/headers.installed" || fail "installed headers differ from include/mdm/ + version.h"
cmakedir="$(echo "$prefix"/lib*/cmake/mdm)"
for f in mdmConfig.cmake mdmConfigVersion.cmake mdmTargets.cmake; do
  [[ -f "$cmakedir/$f" ]] || fail "lib/cmake/mdm/$f is not installed"
done
for f in share/mdm/convert-reference-checkpoint.py bin/mdm-train bin/mdm-sample bin/mdm-info bin/mdm-bench bin/mdm-convert; do
  [[ -e "$prefix/$f" ]] || fail "$f is not installed"
done
ls "$prefix"/lib*/libmdm.* > /dev/null || fail "the library is not installed"

# Configure every example against the prefix alone (the build tree is not on any search path), then
# build them side by side.
launcher=()
if command -v ccache > /dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$work"   # paths under the work folder hash the same on every run
fi
for ex in "${examples[@]}"; do
  step "configuring examples/$ex"
  cmake -S "examples/$ex" -B "$work/build-$ex" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" > "$work/configure-$ex.log" 2>&1 ||
    { cat "$work/configure-$ex.log"; fail "configuring examples/$ex"; }
  grep -q "^mdm_DIR:PATH=$cmakedir$" "$work/build-$ex/CMakeCache.txt" ||
    fail "examples/$ex did not find the installed package ($(grep '^mdm_DIR' "$work/build-$ex/CMakeCache.txt"))"
done
step "building ${examples[*]}"
pids=()
for ex in "${examples[@]}"; do
  cmake --build "$work/build-$ex" -j 1 > "$work/build-$ex.log" 2>&1 &
  pids+=($!)
done
for i in "${!examples[@]}"; do
  wait "${pids[$i]}" || { cat "$work/build-${examples[$i]}.log"; fail "building examples/${examples[$i]}"; }
done
# They compiled against the installed headers, never the source tree's.
for ex in "${examples[@]}"; do
  if grep -q -- "-I$src/include\|-isystem $src/include" "$work/build-$ex/build.ninja"; then
    fail "examples/$ex was compiled against $src/include"
  fi
done

# Run them: train on the user's own DataSource, then sample the checkpoint with the Pipeline and with the
# hand-written loop.
step "running train_custom_data (2 steps)"
"$work/build-train_custom_data/train_custom_data" examples/train_custom_data/tiny_class.yaml "$work/run" 2
[[ -f "$work/run/last/model.safetensors" ]] || fail "train_custom_data wrote no checkpoint"
step "running generate"
"$work/build-generate/generate" "$work/run/last" "$work/generate.png" 1 3
step "running custom_sampling_loop"
"$work/build-custom_sampling_loop/custom_sampling_loop" "$work/run/last" "$work/loop.png" 3 2
for png in generate.png loop.png; do
  [[ "$(head -c 8 "$work/$png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "$png is not a PNG"
done

# The installed mdm-convert finds the installed converter script.
step "running the installed mdm-convert"
MDM_CONVERT_SCRIPT= "$prefix/bin/mdm-convert" tests/fixtures/reference_checkpoint/vis_model_000007.pth \
  -c tests/fixtures/reference_checkpoint/tiny_ckpt.yaml -o "$work/converted"
[[ -f "$work/converted/model.safetensors" ]] || fail "mdm-convert wrote no checkpoint"
step "passed"

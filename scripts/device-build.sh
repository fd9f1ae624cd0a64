#!/usr/bin/env bash
# The GPU machine's one script (docs/benchmarks.md, gpu.md): builds libmdm against the CUDA LibTorch of the
# machine's Python torch and the Debian packages carried in .device/prefix (scripts/device-deps.sh), runs the
# tests (the CUDA ones included), and runs the benchmarks, writing logs and results under $OUT (or ./device-out).
# Run through the device tool with carry [".device"]:
#   scripts/device-build.sh [STAGE...]
# Stages, the default order first (most wanted results first, so that a call cut at its limit keeps them):
#   env        the machine, driver, torch, compilers
#   dist-bg    scripts/device-dist-check.sh (NCCL 1 rank, 2 ranks on one GPU, Gloo, torchrun) in the
#              background while the build runs on the CPU cores; bench256 waits for it (≤ MDM_DIST_WAIT_S,
#              default 90 s) and stops it if it is still running, so that it never overlaps a timing
#   build      configure and build mdm-bench only (MDM_BUILD_TARGETS overrides; empty = everything)
#   bench256   the reference's 256² nested model against libmdm, batch 32, bf16, 250-step sampling
#   unfused    libmdm alone on the 256² model with the unfused GroupNorm, scale-shift, SiLU and bias ops
#              (--training-fusion off --inference-fusion off): the training phases and 250-step sampling at
#              batch 8 in one process (~100 s), what the fused default (nn/folded_group_norm.h) is worth next
#              to bench256's numbers; unfused_training and unfused_sampling are its halves as stages of their own
#   cuda_tests builds the rest (tools, tests) and runs the CUDA tests (Cuda.*: the GPU against the CPU, the
#              fused inference and training kernels and their check, CUDA graphs in the pipeline)
#   test       the unit suite (not the install/header checks; the CUDA tests too unless cuda_tests ran)
#   fp32_norms libmdm alone on the 256² model with autocast's float32 GroupNorm (--fp32-norms), the training
#              phases only (~50 s): what the bf16 GroupNorm default is worth
#   profile    Kineto traces of a forward and a training step, libmdm's and the reference's, summed by
#              kernel into profile-ours.txt / profile-reference.txt, and of the forward at batch 8
#              (batch-8 sampling's network) into profile-ours-b8.txt / profile-reference-b8.txt, and of
#              libmdm's batch-8 sampling (10 steps with CUDA graphs, 10 eager: the GPU's idle gaps) (~160 s)
#   channels_last  libmdm alone with --channels-last (weights and activations; the fused inference path
#              takes channels-last activations): the training phases and 250-step sampling at batch 8 in one
#              process (~100 s), against bench256's default-layout numbers
#   bench64    the reference's 64² model against libmdm, batch 64, bf16
#   train_smoke  mdm-train (bf16, 300 steps, the OpenMoji class model on the emoji device-deps.sh --openmoji
#              carried; 100 steps again with --no-prepare-ahead, its A/B; mdm-bench-draws) and mdm-sample
#              (250 steps, CUDA graphs) on the GPU, then mdm-train under torchrun on NCCL with 1 rank and
#              with 2 ranks on the one GPU (~3 min)
# Also: dist (the NCCL checks in the foreground), bench (bench256 + bench64), fixture (remakes the committed
# T5 fixture; only when asked for). Each side of each benchmark is capped by MDM_BENCH_LIMIT_S (default
# 150 s) and leaves its JSON as it goes. The default stages take ~15 min, more than one device call's 10
# and about a session's whole device time (15 min, the machine's start included). The first call
# (`scripts/device-build.sh`, timeout_s 590) is meant to end inside cuda_tests with what decides the issues:
# env, the NCCL checks, build, bench256, unfused; a second call at once, on the still warm machine (its
# idle release is 30 s; the build directory is kept), runs what the time left allows, most wanted first:
# `scripts/device-build.sh cuda_tests train_smoke test fp32_norms profile channels_last bench64`.
# Session 16 measured what session 15 prepared (docs/benchmarks.md, the fourth H200 session): every target
# met, channels-last slower. A session after it: first `env build bench256 cuda_tests`, then `train_smoke test
# fp32_norms bench64` as far as time allows (profile now takes ~160 s: it traces sampling too).
# Measured on the H200 (16 cores): build of mdm-bench 132 s (with the dist checks beside it), bench256 189 s;
# on 2026-11-27: build 154 s, bench256 230 s, profile 58 s, cuda_tests 120 s (its mdm_tests build included),
# train_smoke 94 s (its tools' build included); session 16: build 153 s, bench256 211 s, cuda_tests 126 s,
# channels_last 92 s, profile 159 s.
# Each stage logs to <stage>.log; a failing stage is reported and the next ones still run where they can.
set -uo pipefail
cd "$(dirname "$0")/.."
# The device tool brings back only a handful of files from $OUT, so $OUT gets two: summary.txt (every
# stage's status and the end of its log) and details.tar.gz (all logs, JSON and summaries, refreshed after
# each stage, so a call cut at its limit still returns what was done). The stages write into $MDM_DEVICE_LOGS.
RESULTS="${OUT:-$PWD/device-out}"
OUT="${MDM_DEVICE_LOGS:-/tmp/mdm-device-out}"
mkdir -p "$RESULTS" "$OUT"
stages=("$@")
((${#stages[@]})) || stages=(env dist-bg build bench256 unfused cuda_tests train_smoke test fp32_norms profile channels_last bench64)
build_targets="${MDM_BUILD_TARGETS-mdm-bench}"
build_dir="${MDM_BUILD_DIR:-build-cuda}"
prefix="$PWD/.device/prefix/usr"
jobs="$(nproc)"
export PYTHONUNBUFFERED=1
summary="$RESULTS/summary.txt"
note() { echo "$*" | tee -a "$summary"; }
run_stage() {  # name command...: logs to $OUT/name.log, records the time, the exit status and the log's end
  local name="$1"; shift
  local t0=$SECONDS
  echo "$name" >"$OUT/.current_stage"
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  note "stage $name: rc=$rc in $((SECONDS - t0)) s"
  tail -n 25 "$OUT/$name.log" | tee -a "$summary"
  tar -czf "$RESULTS/details.tar.gz" -C "$OUT" .
  return $rc
}

stage_env() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c 'import torch, sys; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version()); print("cxx11_abi", torch._C._GLIBCXX_USE_CXX11_ABI); print("cmake_prefix", torch.utils.cmake_prefix_path); print("device", torch.cuda.get_device_name(0))'
  g++ --version | head -1; cmake --version | head -1; nvcc --version | tail -2; ninja --version
  cat /etc/os-release | head -2; ldd --version | head -1
  local tp; tp="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
  echo "gloo headers: $(ls -d "$tp"/include/gloo 2>/dev/null || echo none)"
  ls "$tp"/include/torch/csrc/distributed/c10d 2>/dev/null | grep -E "ProcessGroup(Gloo|NCCL)\.hpp|TCPStore\.hpp"
  ls "$tp"/lib | head -50
  for l in libpng16.so.16 libz.so.1 libjpeg.so.8 libtbb.so.12 libstdc++.so.6; do echo "$l: $(ldconfig -p | grep -m1 "$l" || echo missing)"; done
  python3 -c 'import transformers, sentencepiece; print("transformers", transformers.__version__, "sentencepiece", sentencepiece.__version__)'
}

stage_fixture() {  # the T5 parity fixture (tests/fixtures/t5), made with transformers
  rm -rf /tmp/t5_fixture && python3 scripts/reference/make_t5_fixture.py /tmp/t5_fixture &&
    tar -C /tmp/t5_fixture -cf "$RESULTS/t5_fixture.tar" .
}

# Why CMake's ProcessGroupNCCL probe failed (the library then has no NCCL): its compiler output.
nccl_probe_log() {
  local f
  for f in "$build_dir/CMakeFiles/CMakeConfigureLog.yaml" "$build_dir/CMakeFiles/CMakeError.log"; do
    [[ -f "$f" ]] && grep -n -B2 -A80 "MDM_C10D_NCCL_LINKS" "$f" | head -n 200 >"$OUT/nccl-probe.txt"
  done
  echo "no NCCL in this build; the probe's output: nccl-probe.txt"
  grep -m 5 "error" "$OUT/nccl-probe.txt" 2>/dev/null
  return 0
}

# zlib's link name, re-pointed at this machine's libz (device-deps.sh removed Debian's absolute link). On
# every call, not only in the build stage: the device tool's carry replaces .device with this machine's
# copy each call, and a later call's build (e.g. of mdm-train in train_smoke) needs the link again.
link_zlib() {
  local lib="$prefix/lib/x86_64-linux-gnu" z
  z="$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')"
  [[ -n "$z" && -d "$lib" ]] && ln -sf "$z" "$lib/libz.so"
  return 0
}
link_zlib

stage_build() {
  local torch_prefix; torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  export TORCH_CUDA_ARCH_LIST="9.0"
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix" -DMDM_WITH_OPENCV=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCUDAToolkit_ROOT="${CUDA_HOME:-/usr/local/cuda}" | tee "$OUT/configure.txt" &&
    { grep -q "NCCL (nccl.h" "$OUT/configure.txt" || nccl_probe_log; } &&
    cmake --build "$build_dir" -j "$jobs" ${build_targets:+--target $build_targets} -- -k 0
}


cuda_tests_ran=""
stage_cuda_tests() {
  # The unit-test program (and the tools it waits for; not the long tests or the header checks, which the
  # test stage builds), then the tests that touch CUDA (they skip on a machine without it).
  [[ -n "$build_targets" ]] && { cmake --build "$build_dir" -j "$jobs" --target mdm_tests -- -k 0 || return 1; }
  cuda_tests_ran=1
  local rc=0
  "$build_dir/tests/mdm_tests" --gtest_filter="${MDM_CUDA_TESTS:-*Cuda*:*CUDA*:*Gpu*}" --gtest_brief=1 || rc=1
  # The ReferenceCheckpoint tests crashed (SIGSEGV) only on this machine's build; the smallest of them (it
  # starts Python with torch and reads its error) once more here, under gdb if it crashes.
  backtrace_if_crashes "ReferenceCheckpoint.ABrokenFileIsReportedWithTheScriptsWords"
  return $rc
}
backtrace_if_crashes() {  # gtest-filter: runs it; if the process dies of a signal, reruns it under gdb
  "$build_dir/tests/mdm_tests" --gtest_filter="$1" --gtest_brief=1 >"$OUT/rerun.txt" 2>&1
  local rc=$?
  ((rc > 128)) || { tail -n 5 "$OUT/rerun.txt"; return 0; }
  # The test program's own report of the signal (tests/test_main.cpp): the test, the address, the stack.
  grep -A 40 '^\*\*\* fatal signal' "$OUT/rerun.txt" | head -n 45
  local dbg; dbg="$(command -v gdb || command -v "${CUDA_HOME:-/usr/local/cuda}/bin/cuda-gdb" || true)"
  echo "$1 died of signal $((rc - 128)); backtrace with ${dbg:-no debugger}: crash-backtrace.txt"
  [[ -n "$dbg" ]] || return 0
  timeout 240 "$dbg" -batch -ex run -ex "thread apply all bt 40" \
    --args "$build_dir/tests/mdm_tests" --gtest_filter="$1" >"$OUT/crash-backtrace.txt" 2>&1
  grep -m 30 -A 30 "SIGSEGV\|signal" "$OUT/crash-backtrace.txt" | head -n 60
}
stage_test() {
  # The unit suite (the CUDA tests first, unless cuda_tests ran them). A test that dies of a signal prints
  # its stack itself (tests/test_main.cpp; ctest.txt has it), and is run once more under gdb (or CUDA's
  # cuda-gdb, which is a gdb too) for the backtraces of every thread: crash-backtrace.txt.
  [[ -n "$build_targets" ]] && { cmake --build "$build_dir" -j "$jobs" -- -k 0 || return 1; }
  local rc=0
  [[ -n "$cuda_tests_ran" ]] ||
    "$build_dir/tests/mdm_tests" --gtest_filter="${MDM_CUDA_TESTS:-*Cuda*:*CUDA*:*Gpu*}" --gtest_brief=1 || rc=1
  # Two intra-op threads per test, as many tests as that fills the cores with: the first run, with every
  # test taking all 16 cores 8 at a time, got through 92 of 226 tests in the time it had.
  local exclude="^(install|headers)\."
  [[ -n "$cuda_tests_ran" ]] && exclude="^(install|headers|Cuda)\."
  (cd "$build_dir" && OMP_NUM_THREADS=2 ctest --output-on-failure --timeout 300 -j "$((jobs / 2))" -LE long \
    -E "${MDM_CTEST_EXCLUDE:-$exclude}" ${MDM_CTEST_ARGS:-}) | tee "$OUT/ctest.txt"
  ((PIPESTATUS[0] == 0)) || rc=1
  local crashed
  crashed="$(grep -oP '#[0-9]+: \K[A-Za-z0-9_.]+(?= \.+\*\*\*Exception)' "$OUT/ctest.txt" | head -n 1)"
  [[ -z "$crashed" || -f "$OUT/crash-backtrace.txt" ]] || backtrace_if_crashes "$crashed"
  return $rc
}

# libmdm against the reference (apple/ml-mdm, carried in .device/ml-mdm by device-deps.sh --reference), each
# config in one run of scripts/bench-reference.sh: the reference's 64² model at the paper's per-GPU batch (CC12M:
# 2048 images on 32 GPUs = 64) and its 256² nested model (1024 / 32 = 32), bf16 autocast; 250-step sampling.
bench_setup() {
  bench="$build_dir/tools/mdm-bench" ref=.device/ml-mdm
  [[ -x "$bench" ]] || { echo "no $bench"; return 1; }
  pkg=$ref; [[ -d $ref/ml-mdm-matryoshka ]] && pkg=$ref/ml-mdm-matryoshka
  nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu,memory.used --format=csv,noheader
}
stage_bench256() {
  wait_dist_bg
  local bench ref pkg; bench_setup || return 1
  PYTHON=python3 MDM_BENCH="$bench" scripts/bench-reference.sh --reference "$ref" --device cuda --precision bf16 \
    --config "$pkg/configs/models/cc12m_256x256.yaml" --batch-size "${MDM_BENCH_BATCH_256:-32}" --repeats 5 \
    --sample-steps 250 --time-limit "${MDM_BENCH_LIMIT_S:-150}" --out "$OUT/s64s256" ${MDM_BENCH_ARGS:-}
}
stage_bench64() {
  wait_dist_bg
  local bench ref pkg; bench_setup || return 1
  PYTHON=python3 MDM_BENCH="$bench" scripts/bench-reference.sh --reference "$ref" --device cuda --precision bf16 \
    --config "$pkg/configs/models/cc12m_64x64.yaml" --batch-size "${MDM_BENCH_BATCH_64:-64}" --repeats 5 \
    --time-limit "${MDM_BENCH_LIMIT_S:-150}" --out "$OUT/s64" ${MDM_BENCH_ARGS:-}
}
# libmdm alone on the 256² model, training phases only, in a variant: what one speed choice is worth.
bench_variant() {  # name mdm-bench-flags...
  local name="$1"; shift
  local bench ref pkg; bench_setup || return 1
  timeout --signal TERM --kill-after 10 "${MDM_BENCH_LIMIT_S:-150}" "$bench" --config "$pkg/configs/models/cc12m_256x256.yaml" \
    --batch-size "${MDM_BENCH_BATCH_256:-32}" --device cuda --precision bf16 --repeats 5 --no-sample "$@" \
    --json >"$OUT/s64s256_$name.json"
  cat "$OUT/s64s256_$name.json"
}
stage_fp32_norms() { bench_variant fp32_norms --fp32-norms; }        # GroupNorm as autocast runs it
stage_unfused_training() { bench_variant unfused_training --training-fusion off; }
sampling_variant() {  # name mdm-bench-flags...: libmdm alone on the 256² model, sampling at batch 8 (and what the flags add)
  local name="$1"; shift
  local bench ref pkg; bench_setup || return 1
  timeout --signal TERM --kill-after 10 "${MDM_BENCH_LIMIT_S:-150}" "$bench" --config "$pkg/configs/models/cc12m_256x256.yaml" \
    --batch-size "${MDM_BENCH_BATCH_256:-32}" --device cuda --precision bf16 --sample-steps "${MDM_SAMPLE_STEPS:-250}" --sample-batches 8 \
    "$@" --json >"$OUT/s64s256_$name.json"
  cat "$OUT/s64s256_$name.json"
}
stage_unfused_sampling() { sampling_variant unfused_sampling --repeats 1 --no-step --inference-fusion off; }
# Both A/Bs in one process (one model build, one CUDA start-up): the training phases and batch-8 sampling.
stage_unfused() { MDM_BENCH_LIMIT_S="${MDM_BENCH_LIMIT_S:-220}" sampling_variant unfused --repeats 5 --training-fusion off --inference-fusion off; }
stage_channels_last() { MDM_BENCH_LIMIT_S="${MDM_BENCH_LIMIT_S:-220}" sampling_variant channels_last --repeats 5 --channels-last; }
# Kineto traces of one forward and one training step, libmdm's and the reference's, summed by kernel
# (scripts/profile-summary.py) into profile-ours.txt and profile-reference.txt; the traces stay on the machine.
stage_profile() {
  local bench ref pkg; bench_setup || return 1
  rm -rf /tmp/mdm-profile && mkdir -p /tmp/mdm-profile
  bench_variant profile --profile /tmp/mdm-profile/ours >/dev/null
  python3 scripts/profile-summary.py /tmp/mdm-profile/ours/forward.trace.json /tmp/mdm-profile/ours/step.trace.json \
    >"$OUT/profile-ours.txt" 2>&1
  timeout --signal TERM --kill-after 10 "${MDM_BENCH_LIMIT_S:-150}" python3 scripts/reference/bench_reference.py \
    --reference "$ref" --config "$pkg/configs/models/cc12m_256x256.yaml" --batch-size "${MDM_BENCH_BATCH_256:-32}" \
    --device cuda --precision bf16 --repeats 1 --profile /tmp/mdm-profile/reference >/dev/null
  python3 scripts/profile-summary.py /tmp/mdm-profile/reference/forward.trace.json \
    /tmp/mdm-profile/reference/step.trace.json >"$OUT/profile-reference.txt" 2>&1
  # The forward at batch 8, both sides: batch-8 sampling's network (2026-11-27: 6.6 ms per image there
  # against 3.6 ms in the batch-32 forward); and libmdm's batch-8 sampling itself, 10 steps traced with CUDA
  # graphs and 10 eagerly (after 50-step timings of each), whose idle gaps say how long the GPU waited for
  # the host. --no-step: forward and forward+backward only.
  MDM_BENCH_BATCH_256=8 MDM_SAMPLE_STEPS=50 sampling_variant profile_b8 --repeats 1 --no-step \
    --profile /tmp/mdm-profile/ours8 >/dev/null
  python3 scripts/profile-summary.py /tmp/mdm-profile/ours8/forward.trace.json \
    /tmp/mdm-profile/ours8/sample-b8-graphs.trace.json /tmp/mdm-profile/ours8/sample-b8.trace.json \
    >"$OUT/profile-ours-b8.txt" 2>&1
  timeout --signal TERM --kill-after 10 "${MDM_BENCH_LIMIT_S:-150}" python3 scripts/reference/bench_reference.py \
    --reference "$ref" --config "$pkg/configs/models/cc12m_256x256.yaml" --batch-size 8 --no-step \
    --device cuda --precision bf16 --repeats 1 --profile /tmp/mdm-profile/reference8 >/dev/null
  python3 scripts/profile-summary.py /tmp/mdm-profile/reference8/forward.trace.json \
    >"$OUT/profile-reference-b8.txt" 2>&1
  head -n 20 "$OUT/profile-ours.txt" "$OUT/profile-reference.txt" "$OUT/profile-ours-b8.txt" \
    "$OUT/profile-reference-b8.txt"
  grep -E "^(==|GPU)" "$OUT/profile-ours-b8.txt"  # the sampling traces' busy share and idle gaps
}
# mdm-train and mdm-sample on the GPU, end to end, on the class-conditioned OpenMoji model and the emoji that
# scripts/device-deps.sh --openmoji carried: bf16, batch 64, 300 steps over both progressive stages (data
# loading, autocast, Adam, EMA, checkpoints, the sampling during training), then 250-step sampling with
# CUDA graphs from the last checkpoint; then training under torchrun on NCCL (#6): one rank, and two ranks on
# the one GPU (NCCL may refuse them: the log says so). The tools' own settings otherwise (docs/training.md).
stage_train_smoke() {
  local data="$PWD/.device/openmoji/train.tsv" train="$build_dir/tools/mdm-train" sample="$build_dir/tools/mdm-sample"
  [[ -f "$data" ]] || { echo "no $data: run scripts/device-deps.sh --openmoji on the CPU machine"; return 1; }
  cmake --build "$build_dir" -j "$jobs" --target mdm-train mdm-sample mdm-bench-draws -- -k 0 || return 1
  local run=/tmp/mdm-smoke rc=0
  rm -rf "$run"
  # The host's share of a 256² round that the trainer prepares ahead (docs/benchmarks.md, change 8).
  "$build_dir/bench/mdm-bench-draws" --config configs/cc12m_s64s256.yaml --batch 32 | tee "$OUT/draws.txt"
  local args=(-c configs/openmoji_class_s32s64.yaml --set train.precision=bf16 --set "data.path=$data"
    --set train.batch_size=64 --set "train.stages[0].steps=150" --set "train.stages[1].steps=150"
    --set train.sample_every=300 --set train.log_every=50 --set train.checkpoint_every=150)
  timeout 150 "$train" "${args[@]}" --device cuda -o "$run/single" || rc=1
  # The A/B of preparing rounds ahead: steps 51-100 (stage 1) against the same window of the run above.
  echo "== without preparing rounds ahead"
  timeout 60 "$train" "${args[@]}" --device cuda --max-steps 100 --no-prepare-ahead -o "$run/no_ahead" 2>&1 |
    grep -E "step (50|100)/" || rc=1
  timeout 90 "$sample" -c "$run/single/last" --class 9 -n 8 -b 8 --steps 250 --device cuda --precision bf16 \
    -o "$run/sample_%d.png" --grid "$OUT/smoke-grid.png" || rc=1
  local torchrun; torchrun="$(dirname "$(command -v python3)")/torchrun"
  [[ -x "$torchrun" ]] || torchrun="$(command -v torchrun || true)"
  [[ -n "$torchrun" ]] || { echo "no torchrun"; return 1; }
  for ranks in 1 2; do
    echo "== torchrun, NCCL, $ranks rank(s) on one GPU"
    # --device cuda would be cuda:LOCAL_RANK; both ranks share the one GPU.
    timeout 120 "$torchrun" --standalone --nproc_per_node "$ranks" --no_python "$train" "${args[@]}" \
      --device cuda:0 --max-steps 100 -o "$run/torchrun$ranks" >"$OUT/smoke-torchrun$ranks.log" 2>&1
    echo "rc=$?"; tail -n 8 "$OUT/smoke-torchrun$ranks.log"
  done
  return $rc
}
stage_bench() { stage_bench256; local rc=$?; stage_bench64 || rc=$?; return $rc; }

# The distributed layer on the GPU (#6): NCCL with 1 rank, 2 ranks on the one GPU, Gloo, torchrun.
stage_dist() {
  OUT="$OUT/dist" scripts/device-dist-check.sh
}
# dist in the background: its compile shares the CPU with the build, its GPU runs are small and end before
# the first benchmark; wait_dist_bg makes sure of the latter.
dist_bg_pid=""
stage_dist-bg() {
  (OUT="$OUT/dist" setsid scripts/device-dist-check.sh >"$OUT/dist.log" 2>&1; echo "dist: rc=$? (background)" >>"$summary") &
  dist_bg_pid=$!
  echo "dist checks started in the background (pid $dist_bg_pid), log in dist.log and dist/"
}
wait_dist_bg() {
  [[ -n "$dist_bg_pid" ]] || return 0
  local t0=$SECONDS limit="${MDM_DIST_WAIT_S:-90}"
  while kill -0 "$dist_bg_pid" 2>/dev/null && ((SECONDS - t0 < limit)); do sleep 1; done
  if kill -0 "$dist_bg_pid" 2>/dev/null; then
    note "dist: still running after waiting $limit s; stopped so that it does not overlap the benchmarks"
    pkill -TERM -f device-dist-check.sh; pkill -TERM -f /tmp/dist-check/dist_check; sleep 2
    pkill -KILL -f /tmp/dist-check/dist_check
  fi
  wait "$dist_bg_pid" 2>/dev/null
  dist_bg_pid=""
  [[ -f "$OUT/dist/summary.txt" ]] && cat "$OUT/dist/summary.txt" >>"$summary"
}

# The device tool stops a call at its time limit and brings back what $RESULTS holds then; a stage it cuts
# short would leave nothing of its log. So at MDM_DEADLINE_S (default 575 s: a call's 590 less a margin)
# a watchdog records where the call stands: the running stage's log so far, in summary.txt and the archive.
( sleep "${MDM_DEADLINE_S:-575}"
  stage="$(cat "$OUT/.current_stage" 2>/dev/null)"
  { echo "deadline (${MDM_DEADLINE_S:-575} s): stage ${stage:-?} still running; its log so far:"
    tail -n 25 "$OUT/$stage.log" 2>/dev/null; } >>"$summary"
  tar -czf "$RESULTS/details.tar.gz" -C "$OUT" . ) &
watchdog=$!
for s in "${stages[@]}"; do
  declare -F "stage_$s" >/dev/null || { note "unknown stage $s"; continue; }
  run_stage "$s" "stage_$s"
done
kill "$watchdog" 2>/dev/null
wait_dist_bg
tar -czf "$RESULTS/details.tar.gz" -C "$OUT" .
note "done: ${stages[*]}"

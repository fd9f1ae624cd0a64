#!/usr/bin/env bash
# Checks libmdm's distributed layer (src/distributed/) against the machine's Python torch's LibTorch, without
# building the rest of the library: compiles it with scripts/device/dist_check.cpp, then runs NCCL on one
# GPU, NCCL with 2 ranks on that GPU (NCCL may refuse two ranks on one device: the error is recorded), Gloo
# on 2 CPU ranks when the wheel has Gloo headers, and the same under torchrun (its agent serves the
# store). Logs and results go to $OUT (default ./device-out). Needs fmt and spdlog headers: Debian's, copied
# into .device/dist-include by this script's --prepare on the CPU machine (carry [".device"]).
#   scripts/device-dist-check.sh --prepare     (CPU machine)
#   scripts/device-dist-check.sh               (GPU machine)
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--prepare" ]]; then
  rm -rf .device/dist-include && mkdir -p .device/dist-include
  cp -r /usr/include/fmt /usr/include/spdlog .device/dist-include/
  du -sh .device/dist-include
  exit 0
fi
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
py="${PYTHON:-python3}"
tp="$("$py" -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
abi="$("$py" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
site="$(dirname "$tp")"
defs=(-DUSE_DISTRIBUTED -DMDM_HAVE_C10D=1 -DFMT_HEADER_ONLY -DSPDLOG_HEADER_ONLY "-D_GLIBCXX_USE_CXX11_ABI=$abi")
# fmt and spdlog: --prepare's copy, or the prefix that scripts/device-deps.sh unpacks for device-build.sh.
# They must come before the wheel's include directory, which carries a newer fmt of its own (torch 2.11: fmt
# 12) that Debian's spdlog does not compile against.
incs=(-Iinclude)
if [[ -d .device/dist-include ]]; then incs+=(-I.device/dist-include); else incs+=(-I.device/prefix/usr/include); fi
incs+=(-isystem "$tp/include" -isystem "$tp/include/torch/csrc/api/include")
libs=(-L"$tp/lib" -Wl,-rpath,"$tp/lib" -ltorch -ltorch_cpu -lc10)
nccl_inc="$(ls -d "$site"/nvidia/nccl/include "$site"/nvidia/cu13/include "$site"/nvidia/cu12/include 2>/dev/null | while read -r d; do [[ -f "$d/nccl.h" ]] && echo "$d"; done | head -n 1)"
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
[[ -n "$nccl_inc" ]] || nccl_inc="$(dirname "$(find "$site/nvidia" "$cuda_home/include" /usr/include -maxdepth 4 -name nccl.h 2>/dev/null | head -n 1)" 2>/dev/null)"
[[ "$nccl_inc" == "." ]] && nccl_inc=""
{
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else None)'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "nccl.h: ${nccl_inc:-none}; gloo headers: $(ls -d "$tp"/include/gloo 2>/dev/null || echo none); fmt in torch: $(ls -d "$tp"/include/fmt 2>/dev/null || echo none)"
} 2>&1 | tee "$OUT/env.txt"
if [[ -n "$nccl_inc" ]]; then
  defs+=(-DUSE_C10D_NCCL -DMDM_C10D_NCCL=1)
  incs+=(-isystem "$nccl_inc" -isystem "$cuda_home/include")
  libs+=(-ltorch_cuda -lc10_cuda)
fi
gloo=0
gloo_inc="${GLOO_INCLUDE:-$tp/include}"  # GLOO_INCLUDE: where gloo/ is when the wheel lacks it
if [[ -d "$gloo_inc/gloo" ]]; then defs+=(-DUSE_C10D_GLOO -DMDM_C10D_GLOO=1); [[ "$gloo_inc" == /usr/include ]] || incs+=(-isystem "$gloo_inc"); gloo=1; fi
mkdir -p /tmp/dist-check && rm -f /tmp/dist-check/*
t0=$SECONDS
for src in src/distributed/*.cpp scripts/device/dist_check.cpp; do
  g++ -std=c++17 -O1 -fPIC "${defs[@]}" "${incs[@]}" -c "$src" -o "/tmp/dist-check/$(basename "$src" .cpp).o" \
    >"$OUT/compile-$(basename "$src" .cpp).log" 2>&1 &
done
wait
fail=0
for log in "$OUT"/compile-*.log; do
  if [[ -s "$log" ]] && grep -q "error:" "$log"; then echo "compile errors: $log"; head -c 6000 "$log"; fail=1; fi
done
[[ $fail == 0 ]] || exit 1
g++ /tmp/dist-check/*.o "${libs[@]}" -lpthread -o /tmp/dist-check/dist_check >"$OUT/link.log" 2>&1 || { cat "$OUT/link.log"; exit 1; }
echo "compiled and linked in $((SECONDS - t0)) s" | tee -a "$OUT/env.txt"
run() {  # name command...
  local name="$1"; shift
  timeout 120 "$@" >"$OUT/$name.log" 2>&1
  echo "== $name: rc=$? ($*)" | tee -a "$OUT/summary.txt"
  tail -n 6 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
}
bin=/tmp/dist-check/dist_check
run nccl_1rank "$bin" --backend nccl --ranks 1
run nccl_2ranks_1gpu "$bin" --backend nccl --ranks 2 --device cuda:0 --timeout 30
if [[ $gloo == 1 ]]; then run gloo_2ranks "$bin" --backend gloo --ranks 2; fi
torchrun_bin="$(dirname "$(command -v "$py")")/torchrun"
[[ -x "$torchrun_bin" ]] || torchrun_bin="$(command -v torchrun || true)"
if [[ -n "$torchrun_bin" ]]; then
  run torchrun_nccl_1 "$torchrun_bin" --standalone --nproc_per_node 1 --no_python "$bin" --backend nccl
  if [[ $gloo == 1 ]]; then
    run torchrun_gloo_2 "$torchrun_bin" --standalone --nproc_per_node 2 --no_python "$bin" --backend gloo
  fi
fi

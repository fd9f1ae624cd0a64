#!/usr/bin/env bash
# libmdm side by side with the reference implementation (apple/ml-mdm) on this machine: the same model
# config, batch, precision and thread count, timed by mdm-bench and by scripts/reference/bench_reference.py
# (the reference's own model, loss and train_batch under the system's Python torch). Prints ours ÷ theirs
# for forward, forward+backward and the training step (below 1 = libmdm is faster), per round and the
# median over rounds; each round runs both sides one after the other, so that a load that comes and goes
# hits both alike. JSON of every run goes to --out.
#
#   scripts/bench-reference.sh                                  # the reference's 64² model, batch 1, CPU
#   scripts/bench-reference.sh --config scripts/reference/configs/nested_s32s128.yaml --batch-size 2 --rounds 3
#   scripts/bench-reference.sh --device cuda --precision bf16 --batch-size 32 --sample-steps 250
#   scripts/bench-reference.sh --cpu-allocator malloc   # libmdm on LibTorch's own CPU allocator, as the reference
#   scripts/bench-reference.sh --time-limit 240 ...      # each side stops after 240 s; the reference's training
#                                                        # numbers survive a cut in its sampling (one JSON line per phase)
#
# The reference is not part of libmdm: get it once with
#   git clone https://github.com/apple/ml-mdm third_party/ml-mdm      (third_party/ is git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."

reference=third_party/ml-mdm
config=""
batch=1
threads=$(nproc)
repeats=3
warmup=1
rounds=1
device=cpu
precision=fp32
sample_steps=0
tokens=128
python=${PYTHON:-/usr/bin/python3}
bench=${MDM_BENCH:-${MDM_BUILD_DIR:-build}/tools/mdm-bench}
out=""
time_limit=0
extra=()
ours_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reference) reference=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --sample-steps) sample_steps=$2; shift 2 ;;
    --text-tokens) tokens=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --time-limit) time_limit=$2; shift 2 ;;
    --tf32) extra+=(--tf32); shift ;;
    --no-step) extra+=(--no-step); shift ;;
    --cpu-allocator) ours_extra+=(--cpu-allocator "$2"); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-reference: unknown argument $1" >&2; exit 2 ;;
  esac
done

pkg=$reference
[[ -d $reference/ml-mdm-matryoshka ]] && pkg=$reference/ml-mdm-matryoshka
if [[ ! -d $pkg/ml_mdm/models ]]; then
  echo "bench-reference: no apple/ml-mdm checkout at $reference; get it with" >&2
  echo "  git clone https://github.com/apple/ml-mdm $reference" >&2
  exit 1
fi
config=${config:-$pkg/configs/models/cc12m_64x64.yaml}
[[ -x $bench ]] || { echo "bench-reference: $bench is not built (scripts/build.sh)" >&2; exit 1; }
out=${out:-runs/bench-reference/$(basename "$config" .yaml)-b$batch-$device}
mkdir -p "$out"

sample_args=(--no-sample)
[[ $sample_steps -gt 0 ]] && sample_args=(--sample-steps "$sample_steps" --guidance-scale 1)
echo "bench-reference: $config, batch $batch, $device $precision, $threads threads, $repeats repeats, $rounds round(s); load: $(cut -d' ' -f1-3 /proc/loadavg)"
limit=()
[[ $time_limit -gt 0 ]] && limit=(timeout --signal TERM --kill-after 10 "$time_limit")
for ((r = 1; r <= rounds; r++)); do
  "${limit[@]}" "$bench" --config "$config" --batch-size "$batch" --threads "$threads" --repeats "$repeats" --warmup "$warmup" \
    --device "$device" --precision "$precision" --text-tokens "$tokens" "${sample_args[@]}" "${extra[@]}" "${ours_extra[@]}" --json \
    > "$out/ours.$r.json" || echo "bench-reference: mdm-bench failed or was cut (exit $?)" >&2
  flops=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["flops_per_image"])' "$out/ours.$r.json" 2>/dev/null || echo 0)
  "${limit[@]}" "$python" scripts/reference/bench_reference.py --reference "$reference" --config "$config" --batch-size "$batch" \
    --threads "$threads" --repeats "$repeats" --warmup "$warmup" --device "$device" --precision "$precision" \
    --text-tokens "$tokens" --sample-steps "$sample_steps" --flops-per-image "$flops" "${extra[@]}" \
    > "$out/reference.$r.json" || echo "bench-reference: the reference failed or was cut (exit $?)" >&2
done

"$python" - "$out" "$rounds" <<'EOF'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
keys = [("forward", "forward"), ("forward_backward", "forward+backward"), ("step", "training step")]
def last_json(path):  # the last line: the reference prints a fuller object after each phase
    lines = [l for l in open(path).read().splitlines() if l.strip()] if os.path.exists(path) else []
    return json.loads(lines[-1]) if lines else None
wall = {k: [] for k, _ in keys}
cpu = {k: [] for k, _ in keys}
for r in range(1, rounds + 1):
    ours = last_json(os.path.join(out, f"ours.{r}.json"))
    ref = last_json(os.path.join(out, f"reference.{r}.json"))
    if ours is None or ref is None:
        print(f"round {r}: no result from {'libmdm' if ours is None else 'the reference'}")
        continue
    if not any(wall.values()):
        print(f"{'round':<6} {'phase':<18} {'libmdm':>10} {'reference':>10} {'ours/theirs':>12} {'CPU time ratio':>15}")
    for k, name in keys:
        if ours.get(k + "_s") is None or ref.get(k + "_s") is None:
            continue
        w = ours[k + "_s"] / ref[k + "_s"]
        c = ours[k + "_cpu_s"] / ref[k + "_cpu_s"]
        wall[k].append(w)
        cpu[k].append(c)
        print(f"{r:<6} {name:<18} {ours[k + '_s']:>9.3f}s {ref[k + '_s']:>9.3f}s {w:>12.3f} {c:>15.3f}")
    mem = ours["peak_memory_bytes"] / ref["peak_memory_bytes"]
    print(f"{r:<6} {'peak memory':<18} {ours['peak_memory_bytes'] / 2**20:>7.0f}MiB {ref['peak_memory_bytes'] / 2**20:>7.0f}MiB {mem:>12.3f}")
    theirs = ref.get("sample_latency_s") or {}
    for b, v in (ours.get("sample_latency_s") or {}).items():
        base = theirs.get(b[:-len("_graphs")] if b.endswith("_graphs") else b)
        if v is not None and base:
            what = "  (vs. the reference without graphs)" if b.endswith("_graphs") else ""
            print(f"{r:<6} {'sampling ' + b:<18} {v:>9.3f}s {base:>9.3f}s {v / base:>12.3f}{what}")
if not any(wall.values()):
    sys.exit(1)
print("median ours/theirs, wall clock: " + ", ".join(f"{name} {statistics.median(wall[k]):.3f}" for k, name in keys if wall[k]))
print("median ours/theirs, CPU time:   " + ", ".join(f"{name} {statistics.median(cpu[k]):.3f}" for k, name in keys if cpu[k]))
print(f"(JSON in {out}; ratios below 1: libmdm is faster)")
EOF

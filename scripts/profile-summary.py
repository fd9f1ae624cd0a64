#!/usr/bin/env python3
"""Sums a Chrome trace from LibTorch's or PyTorch's Kineto profiler (mdm-bench --profile DIR, or
torch.profiler's export_chrome_trace) by GPU kernel: total GPU kernel time, time per kind of kernel
(convolution, matmul, attention, norm, cast/layout copies, other elementwise, reductions, optimizer),
the top kernels, and the number of kernel launches. Standard library only.

    scripts/profile-summary.py TRACE.json [TRACE2.json ...] [--top 25]
"""
import argparse
import collections
import json
import re
import sys

KINDS = [  # first match wins
    ("convolution", r"fprop|dgrad|wgrad|implicit_gemm|cudnn.*conv|conv2d|convolution|winograd"),
    ("attention", r"flash|fmha|attention|sdpa"),
    ("matmul", r"gemm|nvjet|cutlass|cublas|matmul|sm90_xmma"),
    ("norm", r"group_?norm|GroupNorm|RowwiseMoments|ComputeInternalGradients|ComputeFusedParams|layer_?norm"),
    ("cast/layout copy", r"copy|Copy|nchwToNhwc|nhwcToNchw|cast|Cast"),
    ("optimizer (multi-tensor)", r"multi_tensor_apply|foreach|fused_adam|FusedAdam"),
    ("reduction", r"reduce_kernel|Reduce|norm_kernel|softmax"),
    ("elementwise", r"elementwise|vectorized|unrolled|silu|add|mul"),
]


def kind_of(name):
    for kind, pattern in KINDS:
        if re.search(pattern, name):
            return kind
    return "other"


def summarize(path, top):
    with open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    kernels = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "Kernel")]
    copies = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("gpu_memcpy", "gpu_memset")]
    launches = sum(1 for e in events if e.get("ph") == "X" and e.get("cat") == "cuda_runtime"
                   and re.search(r"LaunchKernel|cudaGraphLaunch", e.get("name", "")))
    # Kineto marks operators "cpu_op"; PyTorch's legacy exporter (no Kineto: Debian's 1.13) leaves them unmarked.
    cpu_ops = [e for e in events if e.get("ph") == "X" and (e.get("cat") in ("cpu_op", "Operator") or
                                                             (e.get("cat") is None and "::" in e.get("name", "")))]
    print(f"== {path}")
    if not kernels:
        print(f"no GPU kernels in the trace ({len(cpu_ops)} CPU operator events)")
        by_op = collections.defaultdict(lambda: [0.0, 0])
        for e in cpu_ops:
            by_op[e["name"]][0] += e.get("dur", 0)
            by_op[e["name"]][1] += 1
        print(f"  {'calls':>7} {'ms (inclusive)':>15}  operator")
        for name, (dur, n) in sorted(by_op.items(), key=lambda kv: -kv[1][1])[:top]:
            print(f"  {n:>7} {dur / 1e3:>15.2f}  {name}")
        return
    total = sum(e["dur"] for e in kernels)
    span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
    print(f"GPU kernels: {len(kernels)}, {total / 1e3:.2f} ms of kernel time over a {span / 1e3:.2f} ms span "
          f"({100 * total / span:.0f} % busy); {launches} kernel launches from the CPU; "
          f"memcpy/memset {sum(e['dur'] for e in copies) / 1e3:.2f} ms")
    by_kind = collections.defaultdict(lambda: [0.0, 0])
    by_name = collections.defaultdict(lambda: [0.0, 0])
    for e in kernels:
        k = by_kind[kind_of(e["name"])]
        k[0] += e["dur"]
        k[1] += 1
        n = by_name[e["name"]]
        n[0] += e["dur"]
        n[1] += 1
    print(f"  {'kind':<26} {'ms':>9} {'%':>6} {'kernels':>8}")
    for kind, (dur, n) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
        print(f"  {kind:<26} {dur / 1e3:>9.2f} {100 * dur / total:>6.1f} {n:>8}")
    print(f"  top {top} kernels:")
    for name, (dur, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top]:
        short = name if len(name) <= 100 else name[:97] + "..."
        print(f"  {dur / 1e3:>9.2f} ms {100 * dur / total:>5.1f} % {n:>6}×  {short}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    status = 0
    for path in args.traces:
        try:
            summarize(path, args.top)
        except (OSError, ValueError, KeyError) as e:
            print(f"profile-summary: {path}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Sums a Chrome trace from LibTorch's or PyTorch's profiler (mdm-bench --profile DIR, or
torch.profiler's export_chrome_trace) by GPU kernel: total GPU kernel time, time per kind of kernel
(convolution, matmul, attention, norm, cast/layout copies, other elementwise, reductions, optimizer),
the top kernels, the number of kernel launches, and the GPU's idle gaps (where it waited for the host:
what a sampling chain's trace is for). A trace without GPU kernels (a CPU run; Debian's
LibTorch and PyTorch, which have no Kineto, write only operators) is summed by operator, each with its
own time (the operators nested in it subtracted). Standard library only.

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


def self_times(ops):
    """Each operator's own time: its duration less that of the operators nested in it on its thread."""
    own = [e.get("dur", 0) for e in ops]
    by_thread = collections.defaultdict(list)
    for i, e in enumerate(ops):
        by_thread[e.get("tid")].append(i)
    for indices in by_thread.values():
        # Parents first: earlier start, and at equal starts the longer one.
        indices.sort(key=lambda i: (ops[i]["ts"], -ops[i].get("dur", 0)))
        stack = []  # open operators: (index, end)
        for i in indices:
            start, end = ops[i]["ts"], ops[i]["ts"] + ops[i].get("dur", 0)
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack:
                own[stack[-1][0]] -= ops[i].get("dur", 0)
            stack.append((i, end))
    return own


def summarize_cpu_ops(cpu_ops, top):
    """A CPU-only trace (or one without GPU kernels): operators by their own time, so that an operator that
    only calls others (aten::conv2d → aten::convolution → aten::mkldnn_convolution) is not counted twice."""
    own = self_times(cpu_ops)
    total = sum(own)
    print(f"no GPU kernels in the trace: {len(cpu_ops)} CPU operator events, {total / 1e3:.2f} ms of operator "
          f"time (each operator's own: nested operators subtracted)")
    by_op = collections.defaultdict(lambda: [0.0, 0, 0.0])
    for e, t in zip(cpu_ops, own):
        entry = by_op[e["name"]]
        entry[0] += t
        entry[1] += 1
        entry[2] += e.get("dur", 0)
    print(f"  {'own ms':>9} {'%':>6} {'calls':>7} {'incl. ms':>9}  operator")
    for name, (t, n, incl) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {t / 1e3:>9.2f} {100 * t / max(total, 1e-9):>6.1f} {n:>7} {incl / 1e3:>9.2f}  {name}")


IDLE_GAP_US = 50


def idle_gaps(events):
    """Stretches of over IDLE_GAP_US with no kernel or copy running on the GPU (any stream), in µs."""
    gaps, end = [], None
    for e in sorted(events, key=lambda e: e["ts"]):
        if end is not None and e["ts"] - end > IDLE_GAP_US:
            gaps.append(e["ts"] - end)
        end = e["ts"] + e["dur"] if end is None else max(end, e["ts"] + e["dur"])
    return gaps


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
        summarize_cpu_ops(cpu_ops, top)
        return
    total = sum(e["dur"] for e in kernels)
    span = max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)
    print(f"GPU kernels: {len(kernels)}, {total / 1e3:.2f} ms of kernel time over a {span / 1e3:.2f} ms span "
          f"({100 * total / span:.0f} % busy); {launches} kernel launches from the CPU; "
          f"memcpy/memset {sum(e['dur'] for e in copies) / 1e3:.2f} ms")
    gaps = idle_gaps(kernels + copies)
    print(f"GPU idle between its first and last kernel: {sum(gaps) / 1e3:.2f} ms in {len(gaps)} gaps of over "
          f"{IDLE_GAP_US} µs (largest {max(gaps, default=0) / 1e3:.2f} ms): the time it waited for the host")
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

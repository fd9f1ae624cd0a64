#!/usr/bin/env python3
"""Time the reference implementation (apple/ml-mdm) the way mdm-bench times libmdm.

What it runs
------------
The reference's own code, imported from a checkout of github.com/apple/ml-mdm given
with ``--reference`` (nothing of it is copied here):

* the model: ``ml_mdm.models.unet`` / ``nested_unet``, built from the config's
  ``unet_config`` with the reference's dataclasses (``conditioning_feature_dim``
  set to 2048, as its CLIs do with the T5 width);
* forward: the vision model on random noisy images of every level and random text
  features (``--text-tokens`` tokens, mask all ones), without autograd;
* forward + backward: the reference's own loss, ``Diffusion.get_loss`` /
  ``NestedDiffusion.get_loss`` (noise, the pyramid, the multi-resolution loss),
  reduced with ``.mean()`` as its trainer does, then ``backward()``;
* the training step: ``ml_mdm.trainer.train_batch`` (loss, ``.item()``, backward,
  clipping, Adam/AdamW, ``ModelEma``; under ``--precision bf16`` its autocast +
  GradScaler branch), with the optimizer and LR schedule of ``train_parallel.py``;
* sampling (``--sample-steps`` > 0): the reference's sampler, ``Diffusion.sample``
  with ``resample_steps=True`` (its DDPM rule, the config's thresholding).

Packages the model code imports but does not need here (einops, torchinfo,
simple_parsing, mlx, boto3, tqdm, torchvision, tensorboard) are replaced by small
stand-ins in ``sys.modules`` while the script runs (make_fixtures.py's, plus a few
for the diffusion and trainer modules). Inputs are synthetic; the weights are the
reference's fresh initialisation.

Output: one JSON object on stdout with mdm-bench's key names (forward_s,
forward_backward_s, step_s, images_per_s, peak_memory_bytes, ...). FLOPs are not
counted here: pass mdm-bench's ``flops_per_image`` with ``--flops-per-image`` to get
``achieved_tflops`` and ``mfu`` for the same model.

    /usr/bin/python3 scripts/reference/bench_reference.py --reference third_party/ml-mdm \\
        --config third_party/ml-mdm/ml-mdm-matryoshka/configs/models/cc12m_64x64.yaml \\
        --batch-size 2 --threads 2 --repeats 3
"""
import argparse
import contextlib
import dataclasses
import json
import os
import re
import socket
import statistics
import sys
import time
import types
from argparse import Namespace

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fixtures  # noqa: E402  (stand-ins and config building, shared)

T5_XL_DIM = fixtures.T5_XL_DIM


def package_dir(path):
    """The ml-mdm-matryoshka directory of a checkout (or the directory itself)."""
    for candidate in (os.path.join(path, "ml-mdm-matryoshka"), path):
        if os.path.isdir(os.path.join(candidate, "ml_mdm", "models")):
            return os.path.abspath(candidate)
    sys.exit(f"bench_reference: {path} is not an apple/ml-mdm checkout (no ml-mdm-matryoshka/ml_mdm/models); "
             "get it with: git clone https://github.com/apple/ml-mdm third_party/ml-mdm")


def _module(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    return m


def install_stand_ins():
    """make_fixtures' stand-ins, plus what ml_mdm.diffusion, samplers and trainer import."""
    used = fixtures._install_stand_ins()
    import ml_mdm

    if "einops" in used:  # samplers.read_gamma broadcasts γ with einops.repeat("b -> b c h w")
        base_repeat = sys.modules["einops"].repeat

        def repeat(x, pattern, **kw):
            if pattern.replace(" ", "") == "b->bchw":
                return x.reshape(-1, 1, 1, 1).expand(x.shape[0], kw["c"], kw["h"], kw["w"])
            return base_repeat(x, pattern, **kw)

        sys.modules["einops"].repeat = repeat
    cm = sys.modules["ml_mdm.config"]
    if not hasattr(cm, "register_pipeline_config"):  # the stand-in config module lacks the pipeline registry
        cm.PIPELINE_CONFIG_REGISTRY, cm.PIPELINE_REGISTRY = {}, {}

        def register_pipeline_config(*names):
            def deco(cls):
                for n in names:
                    cm.PIPELINE_CONFIG_REGISTRY[n] = cls
                return cls
            return deco

        def register_pipeline(*names):
            def deco(cls):
                for n in names:
                    cm.PIPELINE_REGISTRY[n] = cls
                return cls
            return deco

        cm.register_pipeline_config, cm.register_pipeline = register_pipeline_config, register_pipeline
        ml_mdm.config = cm
    if not fixtures._importable("tqdm"):  # samplers.py: a progress bar, disabled by default
        sys.modules["tqdm"] = _module("tqdm", tqdm=lambda iterable, **kw: iterable)
        used.append("tqdm")
    if not fixtures._importable("torchvision"):  # diffusion.py: save_image for debugging only
        def save_image(*a, **k):
            raise RuntimeError("torchvision stand-in: save_image is not available")
        tv = _module("torchvision")
        tv.utils = _module("torchvision.utils", save_image=save_image)
        sys.modules["torchvision"], sys.modules["torchvision.utils"] = tv, tv.utils
        used.append("torchvision")
    if not fixtures._importable("torch.utils.tensorboard"):  # trainer.py: the logger type (we pass None)
        sys.modules["torch.utils.tensorboard"] = _module("torch.utils.tensorboard", SummaryWriter=object)
        torch.utils.tensorboard = sys.modules["torch.utils.tensorboard"]
        used.append("torch.utils.tensorboard")
    if not hasattr(torch.optim.lr_scheduler, "LRScheduler"):  # trainer.py annotates with torch 2's name
        torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler._LRScheduler
        used.append("torch.optim.lr_scheduler.LRScheduler (= _LRScheduler)")
    return used


def enum_value(field_type, value):
    """SamplerConfig's enum fields from their YAML names (simple_parsing does this in the reference)."""
    if isinstance(value, str) and isinstance(field_type, type) and hasattr(field_type, "__members__"):
        return field_type[value.upper()]
    return value


def diffusion_config(y, nested, diffusion_mod, samplers_mod):
    d = dict(y.get("diffusion_config") or {})
    sc = d.pop("sampler_config", {}) or {}
    types_by_name = {f.name: f.type for f in dataclasses.fields(samplers_mod.SamplerConfig)}
    enums = {"schedule_type": samplers_mod.ScheduleType, "prediction_type": samplers_mod.PredictionType,
             "loss_target_type": samplers_mod.PredictionType, "threshold_function": samplers_mod.ThresholdType}
    kw = {}
    for k, v in sc.items():
        if k not in types_by_name:
            raise KeyError(f"SamplerConfig has no field {k!r}")
        kw[k] = enum_value(enums.get(k), v)
    cls = diffusion_mod.NestedDiffusionConfig if nested else diffusion_mod.DiffusionConfig
    names = {f.name for f in dataclasses.fields(cls)}
    extra = {k: v for k, v in d.items() if k in names}
    return cls(sampler_config=samplers_mod.SamplerConfig(**kw), **extra)


def proc_status_bytes(key):
    with open("/proc/self/status") as f:
        m = re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) * 1024 if m else -1


class Memory:
    """Peak memory per phase: CUDA max_memory_allocated, or the process's peak RSS (VmHWM, reset)."""

    def __init__(self, device):
        self.device = device
        self.reset_ok = True

    def reset(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.reset_ok = False

    def peak(self):
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return proc_status_bytes("VmHWM")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_repeats(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    sync(device)
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        cpu_start, start = time.process_time(), time.perf_counter()
        fn()
        sync(device)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "seconds": seconds,
            "cpu_median": statistics.median(cpu_seconds), "cpu_seconds": cpu_seconds}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        return m.group(1).strip() if m else "CPU"
    except OSError:
        return "CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", default="third_party/ml-mdm", help="apple/ml-mdm checkout")
    ap.add_argument("--config", required=True, help="model config in the reference's layout (unet_config:)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--text-tokens", type=int, default=128)
    ap.add_argument("--no-step", action="store_true", help="skip the training step (forward and forward+backward only)")
    ap.add_argument("--sample-steps", type=int, default=0, help="sampling latency over this many steps (0 = skip)")
    ap.add_argument("--sample-batches", default="1,8")
    ap.add_argument("--sample-repeats", type=int, default=1)
    ap.add_argument("--guidance-scale", type=float, default=1.0)
    ap.add_argument("--tf32", action="store_true", help="CUDA: TF32 matmuls and convolutions (the reference's default)")
    ap.add_argument("--flops-per-image", type=float, default=None, help="mdm-bench's count, for achieved TFLOP/s and MFU")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", default=None,
                    help="after the timings, Chrome traces of one forward and one training step in this directory")
    args = ap.parse_args()

    device = torch.device(args.device)
    if args.precision == "bf16" and device.type != "cuda":
        sys.exit("bench_reference: --precision bf16 is CUDA autocast; on the CPU use fp32")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32

    ref = package_dir(args.reference)
    sys.path.insert(0, ref)
    stand_ins = install_stand_ins()
    from ml_mdm import config as config_mod
    from ml_mdm import diffusion as diffusion_mod
    from ml_mdm import samplers as samplers_mod
    from ml_mdm import trainer as trainer_mod
    from ml_mdm.models import nested_unet as nested_mod
    from ml_mdm.models import unet as unet_mod
    from ml_mdm.models.model_ema import ModelEma

    with open(args.config) as f:
        y = yaml.safe_load(f)
    torch.manual_seed(args.seed)
    vision, _ = fixtures.build_model(y["unet_config"], y["model"], T5_XL_DIM, (unet_mod, nested_mod, config_mod))
    nested = hasattr(vision, "nest_ratio")
    cfg = diffusion_config(y, nested, diffusion_mod, samplers_mod)
    if nested and not cfg.no_use_residual:
        sys.exit(f"bench_reference: {args.config}: set diffusion_config.no_use_residual: true, as every reference "
                 "config does (its residual path refers to an undefined variable)")
    diffusion = (diffusion_mod.NestedDiffusion if nested else diffusion_mod.Diffusion)(vision, cfg).to(device)
    vision = diffusion.model.vision_model

    size = int((y.get("reader_config") or {}).get("image_size") or y["sample_image_size"])
    scales = vision.nest_ratio + [1] if nested else [1]
    resolutions = [size // (scales[0] // s) for s in scales]  # highest first, as the reference orders levels
    B, L = args.batch_size, args.text_tokens
    g = torch.Generator().manual_seed(args.seed)
    images = (torch.rand(B, 3, size, size, generator=g) * 2 - 1).to(device)
    x_t = [torch.randn(B, 3, r, r, generator=g).to(device) for r in resolutions]
    times = torch.randint(0, 1000, (B,), generator=g).float().to(device)
    lm_outputs = torch.randn(B, L, T5_XL_DIM, generator=g).to(device)
    lm_mask = torch.ones(B, L, device=device)
    sample = {"images": images, "lm_outputs": lm_outputs, "lm_mask": lm_mask}
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext

    memory = Memory(device)
    peaks = {}

    def phase(name, fn):
        memory.reset()
        t = time_repeats(fn, device, args.warmup, args.repeats)
        peaks[name] = memory.peak()
        return t

    def forward():
        with torch.no_grad(), autocast():
            vision(x_t if nested else x_t[0], times, lm_outputs, lm_mask, {})

    def forward_backward():
        with autocast():
            losses = diffusion.get_loss(sample)[0]
        losses.mean().backward()
        diffusion.model.zero_grad(set_to_none=True)

    lr = float(y.get("lr", 5e-5))
    params = diffusion.model.vision_model.parameters()
    optimizer = (torch.optim.AdamW(params, lr=lr, weight_decay=0, eps=1e-8) if y.get("use_adamw")
                 else torch.optim.Adam(params, lr=lr, eps=1e-8))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)  # after warm-up
    ema = ModelEma(vision)
    targs = Namespace(fp16=int(args.precision == "bf16"), gradient_clip_norm=float(y.get("gradient_clip_norm", 2.0)))
    scaler = torch.cuda.amp.GradScaler() if targs.fp16 else None

    def step():
        trainer_mod.train_batch(diffusion, sample, optimizer, scheduler, None, targs, grad_scaler=scaler, ema_model=ema)

    vision.eval()
    t_forward = phase("forward", forward)
    vision.train()
    t_fb = phase("forward_backward", forward_backward)
    t_step = None if args.no_step else phase("step", step)

    if args.profile:  # after the timings, so that the profiler's overhead is in none of them
        os.makedirs(args.profile, exist_ok=True)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        vision.eval()
        for name, fn in (("forward", forward), ("step", step if not args.no_step else forward_backward)):
            if name == "step":
                vision.train()
            sync(device)
            with torch.profiler.profile(activities=activities) as prof:
                fn()
                sync(device)
            prof.export_chrome_trace(os.path.join(args.profile, f"{name}.trace.json"))

    # One JSON object per line: after the training phases, then again after each sampling batch, so that a
    # run cut short by a time limit still leaves its training numbers (readers take the last line).
    def emit(latency, notes):
        images_per_s = B / t_step["median"] if t_step else None
        result = {
            "implementation": "apple/ml-mdm (reference)",
            "config": y.get("name", os.path.basename(args.config)),
            "config_file": args.config,
            "batch_size": B,
            "precision": args.precision,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(),
            "levels": resolutions[::-1],
            "text_tokens": L,
            "parameters": sum(p.numel() for p in vision.parameters()),
            "tf32": device.type == "cuda" and args.tf32,
            "libtorch_version": torch.__version__,
            "libmdm_version": None,
            "machine": f"{socket.gethostname()}: {cpu_name()}, {os.cpu_count()} logical cores",
            "warmup": args.warmup,
            "repeats": args.repeats,
            "forward_s": t_forward["median"],
            "forward_backward_s": t_fb["median"],
            "step_s": t_step["median"] if t_step else None,
            "forward_cpu_s": t_forward["cpu_median"],
            "forward_backward_cpu_s": t_fb["cpu_median"],
            "step_cpu_s": t_step["cpu_median"] if t_step else None,
            "timings": {"forward": t_forward, "forward_backward": t_fb, **({"step": t_step} if t_step else {})},
            "images_per_s": images_per_s,
            "peak_memory_bytes": max(peaks.values()),
            "peak_memory_by_phase": peaks,
            "memory_note": ("torch.cuda.max_memory_allocated per phase" if device.type == "cuda" else
                            "peak RSS of the process per phase (VmHWM, reset before each phase)" if memory.reset_ok else
                            "peak RSS of the process since it started"),
            "flops_per_image": args.flops_per_image,
            "achieved_tflops": args.flops_per_image * images_per_s / 1e12 if args.flops_per_image and t_step else None,
            "mfu": (args.flops_per_image * images_per_s / 1e12 / args.peak_tflops
                    if args.flops_per_image and t_step and device.type == "cuda" else None),
            "peak_tflops": args.peak_tflops,
            "sample_latency_s": latency,
            "sample_notes": notes,
            "sampler": "the reference's Diffusion.sample (resample_steps=True, DDPM rule)" if latency else None,
            "sample_steps": args.sample_steps,
            "notes": [f"stand-ins: {', '.join(stand_ins) or 'none'}",
                      "forward_backward: the reference's get_loss (noise and pyramid included) + backward; "
                      "step: ml_mdm.trainer.train_batch"],
        }
        print(json.dumps(result), flush=True)

    latency, notes = {}, {}
    emit(latency, notes)
    if args.sample_steps > 0:
        for b in [int(x) for x in args.sample_batches.split(",") if x]:
            lm = torch.randn(b * (2 if args.guidance_scale != 1 else 1), L, T5_XL_DIM, generator=g).to(device)
            cond = {"lm_outputs": lm, "lm_mask": torch.ones(lm.shape[:2], device=device)}

            def chain():
                with torch.no_grad(), autocast():
                    diffusion.sample(b, cond, size, device, num_inference_steps=args.sample_steps,
                                     resample_steps=True, guidance_scale=args.guidance_scale)

            latency[f"batch{b}"] = time_repeats(chain, device, 0, args.sample_repeats)["median"]
            latency[f"batch{b}_graphs"] = None
            notes[f"batch{b}_graphs"] = "graphs: n/a (the reference has no CUDA-graph path)"
            emit(latency, notes)



if __name__ == "__main__":
    main()

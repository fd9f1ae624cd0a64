#!/usr/bin/env python3
"""Generate reference fixtures for libmdm from Apple's ml-mdm (Matryoshka Diffusion Models).

What it does
------------
This script *runs* the reference PyTorch model code from a checkout of
github.com/apple/ml-mdm (the ``ml-mdm-matryoshka/`` package directory). It
imports that code from the path you give; nothing from the reference is copied
into this repository. It writes, into ``--out``:

* ``keys_64.tsv``, ``keys_256.tsv``, ``keys_1024.tsv``: the state-dict layout
  of the three shipped models (``configs/models/cc12m_{64x64,256x256,1024x1024}.yaml``).
  Each model is built from the YAML ``unet_config`` section with the reference's
  own config dataclasses. ``conditioning_feature_dim`` is set to 2048 (flan-t5-xl),
  as the reference CLIs do. For the 1024 model, ``initialize_inner_with_pretrained``
  is forced to None, so nothing is downloaded.
  The first line is ``# params=<N> entries=<M>``. After it comes one line per
  state-dict entry, in state-dict order: ``key<TAB>shape``, where shape is
  comma-separated ints (empty for a scalar).
* ``tiny_nested.yaml``: a tiny two-level nested config, in the reference's
  YAML layout (see TINY_YAML below).
* ``tiny_nested.keys.tsv``: the same kind of listing for the tiny model.
* ``tiny_nested.weights.safetensors``: the tiny model's full state dict (F32),
  with every entry set to a random value under a fixed seed (the model
  zero-initialises several layers; those are overwritten too).
* ``tiny_nested.io.safetensors``: the forward-pass inputs and the reference
  outputs (float32, CPU):
  ``x_t.16``, ``x_t.8``, ``times``, ``lm_outputs``, ``lm_mask``, ``out.16``, ``out.8``.
  It also holds a few intermediate tensors for debugging (prefix ``dbg.``).

How to run
----------
    /usr/bin/python3 scripts/reference/make_fixtures.py \
        --ref /path/to/ml-mdm-matryoshka --out tests/fixtures/reference

Requirements: torch (tested with Debian python3-torch 1.13.1) and PyYAML.
If the packages the reference imports but does not need for building or
running the models (einops, torchinfo, simple_parsing, mlx, dataclass_wizard,
boto3) are missing, the script puts small stand-in modules into
``sys.modules``. These stand-ins exist only while the script runs.
If the ``safetensors`` package is missing, the script writes the safetensors
format itself.
"""
import argparse
import dataclasses
import json
import os
import struct
import sys
import types

import torch
import yaml

# Input/output widths of the denoiser (RGB), as in the reference CLIs.
IMAGE_CHANNELS = 3
# Width of flan-t5-xl encoder outputs; the CLIs write it into unet_config.
T5_XL_DIM = 2048

TINY_LM_DIM = 12  # width of the fake "language model" outputs for the tiny fixture
TINY_SEED_WEIGHTS = 1234
TINY_SEED_INPUTS = 5678

# Tiny nested config, written in the same layout as configs/models/cc12m_256x256.yaml.
TINY_YAML = """\
# Tiny 2-level nested MDM config used to make the C++ parity fixtures (libmdm).
# It is not a shipped reference config. Layout follows configs/models/cc12m_256x256.yaml.
# conditioning_feature_dim is -1 here, as in the shipped YAMLs. The generator
# overwrites it with the LM width (12), as the reference CLIs do with the T5 width (2048).
name: tiny_nested
model: nested_unet
vision_model: nested_unet
sample_image_size: 16
unet_config:
  attention_levels: []
  conditioning_feature_dim: -1
  conditioning_feature_proj_dim: -1
  freeze_inner_unet: false
  initialize_inner_with_pretrained: null
  inner_config:
    attention_levels: [1]
    conditioning_feature_dim: -1
    conditioning_feature_proj_dim: 16
    masked_cross_attention: 1
    micro_conditioning: scale:8
    nesting: true
    num_attention_layers: [0, 2]
    num_lm_head_layers: 1
    num_resnets_per_resolution: [1, 1]
    num_temporal_attention_layers: null
    resnet_config: {dropout: 0.0, num_channels: -1, num_groups_norm: 8, output_channels: -1,
      use_attention_ffn: true}
    resolution_channels: [8, 32]
    skip_cond_emb: false
    skip_mid_blocks: false
    temporal_dim: null
    temporal_mode: false
    temporal_positional_encoding: false
    temporal_spatial_ds: false
  interp_conditioning: false
  masked_cross_attention: 1
  micro_conditioning: scale:16
  nesting: false
  num_attention_layers: [0, 0]
  num_lm_head_layers: 0
  num_resnets_per_resolution: [2, 1]
  num_temporal_attention_layers: null
  resnet_config: {dropout: 0.0, num_channels: -1, num_groups_norm: 4, output_channels: -1,
    use_attention_ffn: false}
  resolution_channels: [8, 16]
  skip_cond_emb: true
  skip_inner_unet_input: false
  skip_mid_blocks: true
  skip_normalization: false
  temporal_dim: 32
  temporal_mode: false
  temporal_positional_encoding: false
  temporal_spatial_ds: false
"""


# --------------------------------------------------------------------------
# Stand-ins for imports the model code does not need here
# --------------------------------------------------------------------------
def _importable(name):
    try:
        __import__(name)
        return True
    except Exception:
        return False


def _install_stand_ins():
    """Puts minimal fake modules into sys.modules for missing optional deps."""
    stand_ins = []

    if not _importable("einops"):
        # unet.py uses einops only for video (temporal) mode and for one
        # batch-repeat fallback in ResNet.forward. Only that repeat pattern is supported.
        m = types.ModuleType("einops")

        def repeat(x, pattern, **kw):
            if pattern.replace(" ", "") == "bchw->(bn)chw":
                return x.repeat_interleave(kw["n"], dim=0)
            raise NotImplementedError("einops stand-in: " + pattern)

        def rearrange(x, pattern, **kw):
            raise NotImplementedError("einops stand-in: " + pattern)

        m.repeat, m.rearrange = repeat, rearrange
        sys.modules["einops"] = m
        stand_ins.append("einops")

    if not _importable("torchinfo"):
        m = types.ModuleType("torchinfo")
        m.summary = lambda *a, **k: None
        sys.modules["torchinfo"] = m
        stand_ins.append("torchinfo")

    import ml_mdm  # namespace package from --ref

    # ml_mdm.config pulls in simple_parsing and the mlx-data reader. The model
    # files need only its registration decorators.
    try:
        from ml_mdm import config as _cfg  # noqa: F401
    except Exception:
        cm = types.ModuleType("ml_mdm.config")
        cm.MODEL_CONFIG_REGISTRY, cm.MODEL_REGISTRY = {}, {}

        def register_model_config(arch, main):
            def deco(cls):
                cm.MODEL_CONFIG_REGISTRY[arch] = {"model": main, "config": cls}
                return cls

            return deco

        def register_model(*names):
            def deco(cls):
                for n in names:
                    cm.MODEL_REGISTRY[n] = cls
                return cls

            return deco

        def get_model(name):
            return cm.MODEL_REGISTRY[cm.MODEL_CONFIG_REGISTRY[name]["model"]]

        cm.register_model_config, cm.register_model, cm.get_model = (
            register_model_config,
            register_model,
            get_model,
        )
        sys.modules["ml_mdm.config"] = cm
        ml_mdm.config = cm
        stand_ins.append("ml_mdm.config")

    # fix_old_checkpoints is only used by UNet.load (unpickling old checkpoints).
    try:
        from ml_mdm.utils import fix_old_checkpoints as _f  # noqa: F401
    except Exception:
        import ml_mdm.utils

        fm = types.ModuleType("ml_mdm.utils.fix_old_checkpoints")
        fm.mimic_old_modules = lambda: None
        sys.modules["ml_mdm.utils.fix_old_checkpoints"] = fm
        ml_mdm.utils.fix_old_checkpoints = fm
        stand_ins.append("ml_mdm.utils.fix_old_checkpoints")

    # s3_helpers (boto3) is only used to download a pretrained inner UNet.
    try:
        from ml_mdm import s3_helpers as _s  # noqa: F401
    except Exception:
        m = types.ModuleType("ml_mdm.s3_helpers")

        def _no_download(*a, **k):
            raise RuntimeError("downloads disabled in fixture generation")

        m.download_object_from_full_path = _no_download
        sys.modules["ml_mdm.s3_helpers"] = m
        ml_mdm.s3_helpers = m
        stand_ins.append("ml_mdm.s3_helpers")

    return stand_ins


# --------------------------------------------------------------------------
# Config construction from the YAML unet_config section
# --------------------------------------------------------------------------
def _nesting_depth(d):
    return 0 if not isinstance(d.get("inner_config"), dict) else 1 + _nesting_depth(d["inner_config"])


def build_config(d, classes):
    """Builds the reference config dataclass for the YAML dict d.

    classes = (ResNetConfig, [UNetConfig, NestedUNetConfig, Nested2UNetConfig, ...]),
    picked by nesting depth, which matches the dataclasses' inner_config field types.
    """
    resnet_cls, by_depth = classes
    depth = _nesting_depth(d)
    cls = by_depth[depth]
    names = {f.name for f in dataclasses.fields(cls)}
    kw = {}
    for k, v in d.items():
        if k not in names:
            raise KeyError(f"{cls.__name__} has no field {k!r}")
        if k == "resnet_config":
            v = resnet_cls(**v)
        elif k == "inner_config":
            v = build_config(v, classes)
        elif k == "initialize_inner_with_pretrained" and v in ("None", "none", "null"):
            v = None  # the shipped 256 YAML has the string "None"
        kw[k] = v
    return cls(**kw)


def build_model(unet_yaml, model_name, lm_dim, refmods):
    unet_mod, nested_mod, config_mod = refmods
    classes = (
        unet_mod.ResNetConfig,
        [
            unet_mod.UNetConfig,
            nested_mod.NestedUNetConfig,
            nested_mod.Nested2UNetConfig,
            nested_mod.Nested3UNetConfig,
            nested_mod.Nested4UNetConfig,
        ],
    )
    cfg = build_config(unet_yaml, classes)
    expected_cls = config_mod.MODEL_CONFIG_REGISTRY[model_name]["config"]
    assert type(cfg) is expected_cls, (type(cfg), expected_cls)
    if hasattr(cfg, "initialize_inner_with_pretrained"):
        cfg.initialize_inner_with_pretrained = None  # never download
    cfg.conditioning_feature_dim = lm_dim  # what the reference CLIs do
    model_cls = config_mod.get_model(model_name)
    return model_cls(IMAGE_CHANNELS, IMAGE_CHANNELS, cfg), cfg


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------
def write_keys_tsv(model, path):
    sd = model.state_dict()
    n_params = sum(p.numel() for p in model.parameters())
    with open(path, "w") as f:
        f.write(f"# params={n_params} entries={len(sd)}\n")
        for k, v in sd.items():
            f.write(f"{k}\t{','.join(str(s) for s in v.shape)}\n")
    return n_params, len(sd)


def write_safetensors(tensors, path):
    """Writes a dict of float32 tensors in the safetensors format.

    Layout: u64 little-endian header size, a JSON header
    {name: {dtype, shape, data_offsets}} with names sorted and padded with
    spaces to a multiple of 8, then the raw little-endian data in the same order.
    """
    names = sorted(tensors)
    header, blobs, off = {}, [], 0
    for n in names:
        t = tensors[n].detach().to("cpu", torch.float32).contiguous()
        b = t.numpy().astype("<f4").tobytes()
        header[n] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def randomize_state(model, seed):
    """Overwrites every floating state-dict entry with seeded random values.

    * weights with >= 2 dims (Linear/Conv): N(0, 1/fan_in)
    * 1-d weights (GroupNorm/LayerNorm scales): 1 + 0.1*N(0,1)
    * biases (and any other 1-d/0-d entry): 0.1*N(0,1)
    The non-persistent buffer t_emb (sinusoid frequencies) is not in the state dict and is not touched.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=g, dtype=torch.float64)
            if t.dim() >= 2:
                fan_in = t[0].numel()
                r = r / fan_in ** 0.5
            elif name.endswith("weight"):
                r = 1.0 + 0.1 * r
            else:
                r = 0.1 * r
            t.copy_(r.to(t.dtype))


# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="/tmp/ref/ml-mdm-matryoshka", help="path to ml-mdm-matryoshka")
    ap.add_argument("--out", default="tests/fixtures/reference", help="output folder")
    ap.add_argument("--skip-big", action="store_true", help="skip the three shipped-model key listings")
    args = ap.parse_args()

    ref = os.path.abspath(args.ref)
    if not os.path.isdir(os.path.join(ref, "ml_mdm", "models")):
        sys.exit(f"{ref} does not look like ml-mdm-matryoshka (no ml_mdm/models)")
    sys.path.insert(0, ref)
    stand_ins = _install_stand_ins()
    from ml_mdm import config as config_mod
    from ml_mdm.models import nested_unet as nested_mod
    from ml_mdm.models import unet as unet_mod

    refmods = (unet_mod, nested_mod, config_mod)
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}; stand-ins: {', '.join(stand_ins) or 'none'}")

    torch.set_num_threads(max(1, os.cpu_count() or 1))

    # ---- (a) shipped models: state-dict key listings -------------------
    if not args.skip_big:
        for tag, fname in (("64", "cc12m_64x64.yaml"), ("256", "cc12m_256x256.yaml"), ("1024", "cc12m_1024x1024.yaml")):
            with open(os.path.join(ref, "configs", "models", fname)) as f:
                y = yaml.safe_load(f)
            model, cfg = build_model(y["unet_config"], y["model"], T5_XL_DIM, refmods)
            n, e = write_keys_tsv(model, os.path.join(args.out, f"keys_{tag}.tsv"))
            extra = f" nest_ratio={model.nest_ratio}" if hasattr(model, "nest_ratio") else ""
            print(f"{fname}: model={y['model']} class={type(model).__name__} config={type(cfg).__name__} "
                  f"params={n:,} entries={e}{extra}")
            del model

    # ---- (b) tiny nested parity fixture ---------------------------------
    with open(os.path.join(args.out, "tiny_nested.yaml"), "w") as f:
        f.write(TINY_YAML)
    y = yaml.safe_load(TINY_YAML)
    torch.manual_seed(0)  # default init is overwritten anyway
    model, cfg = build_model(y["unet_config"], y["model"], TINY_LM_DIM, refmods)
    model.eval()
    n, e = write_keys_tsv(model, os.path.join(args.out, "tiny_nested.keys.tsv"))
    print(f"tiny_nested: class={type(model).__name__} params={n:,} entries={e} nest_ratio={model.nest_ratio}")

    randomize_state(model, TINY_SEED_WEIGHTS)
    sd = model.state_dict()
    write_safetensors(sd, os.path.join(args.out, "tiny_nested.weights.safetensors"))

    B, L, hi = 2, 5, y["sample_image_size"]
    lo = hi // model.nest_ratio[0]
    g = torch.Generator().manual_seed(TINY_SEED_INPUTS)
    x_hi = torch.randn(B, IMAGE_CHANNELS, hi, hi, generator=g)
    x_lo = torch.randn(B, IMAGE_CHANNELS, lo, lo, generator=g)
    times = torch.tensor([17.0, 873.0])
    lm_mask = torch.ones(B, L)
    lm_mask[1, L - 2:] = 0.0  # sample 1: 3 real tokens, 2 pads
    # Like ml_mdm.language_models.factory.LanguageModel: pad positions are zeroed.
    lm_outputs = torch.randn(B, L, TINY_LM_DIM, generator=g) * lm_mask[..., None]

    # Intermediate tensors for debugging, taken with hooks (read only).
    dbg = {}
    hooks = [
        model.in_adapter.register_forward_hook(lambda m, i, o: dbg.__setitem__("dbg.in_adapter_out", o)),
        model.out_adapter.register_forward_hook(lambda m, i, o: dbg.__setitem__("dbg.inner_features", i[0])),
        model.out_adapter.register_forward_hook(lambda m, i, o: dbg.__setitem__("dbg.out_adapter_out", o)),
    ]

    def run(dtype):
        m = model.to(dtype)
        with torch.no_grad():
            return m(  # == NestedModel.forward -> self.vision_model(x_t, times, lm_outputs, lm_mask, micros)
                [x_hi.to(dtype), x_lo.to(dtype)], times.to(dtype), lm_outputs.to(dtype), lm_mask.to(dtype), {}
            )

    out64 = [o.clone() for o in run(torch.float64)]
    dbg.clear()
    out = run(torch.float32)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        cond_emb, conditioning, cond_mask = model.forward_conditioning(lm_outputs, lm_mask)
        temb_outer = model.create_temporal_embedding(times) + cond_emb + model.forward_micro_conditioning(times, {})
        inner = model.inner_unet
        temb_inner = inner.create_temporal_embedding(times) + cond_emb + inner.forward_micro_conditioning(times, {})
    dbg.update({"dbg.cond_emb": cond_emb, "dbg.conditioning": conditioning,
                "dbg.temb_outer": temb_outer, "dbg.temb_inner": temb_inner})

    assert len(out) == 2 and out[0].shape[-1] == hi and out[1].shape[-1] == lo
    io = {f"x_t.{hi}": x_hi, f"x_t.{lo}": x_lo, "times": times, "lm_outputs": lm_outputs, "lm_mask": lm_mask,
          f"out.{hi}": out[0], f"out.{lo}": out[1]}
    io.update(dbg)
    write_safetensors(io, os.path.join(args.out, "tiny_nested.io.safetensors"))
    for r, o, o64 in zip((hi, lo), out, out64):
        print(f"out.{r}: shape={tuple(o.shape)} std={o.std():.4f} max|.|={o.abs().max():.4f} "
              f"max|f32-f64|={(o.double() - o64).abs().max():.3e}")
    for name in ("tiny_nested.weights.safetensors", "tiny_nested.io.safetensors"):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name)):,} bytes")


if __name__ == "__main__":
    main()

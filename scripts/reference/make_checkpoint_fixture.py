#!/usr/bin/env python3
"""Makes the reference-checkpoint fixture for libmdm's mdm-convert test (tests/fixtures/reference_checkpoint/).

It runs apple/ml-mdm's own code (from --ref; nothing of it is copied here) to build a tiny nested model
from a YAML in the reference's layout, sets every weight to a seeded random value, and saves it the way
the reference's train_parallel.py does: `vision_model.save("vis_model_000007.pth", other_items=...)`,
i.e. torch.save({"state_dict", "batch_num", "loss", "best_avg_loss", "exp_avg_loss",
"exp_avg_loss_var", "args"}) where "args" is an argparse.Namespace holding the reference's config
objects (NestedUNetConfig / UNetConfig / ResNetConfig, NestedDiffusionConfig with a SamplerConfig
and its enums, ReaderConfig). Then it runs the model's forward pass on fixed inputs and stores
inputs and outputs.

    /usr/bin/python3 scripts/reference/make_checkpoint_fixture.py \
        --ref /path/to/ml-mdm-matryoshka --out tests/fixtures/reference_checkpoint

Writes: tiny_ckpt.yaml (the reference-layout config), vis_model_000007.pth, tiny_ckpt.io.safetensors
(x_t.16, x_t.8, times, lm_outputs, lm_mask, out.16, out.8). Requires torch (Debian python3-torch 1.13)
and PyYAML; the reference's unneeded imports get the stand-ins of make_fixtures.py, plus these:
tqdm and torchvision.utils (imported by ml_mdm.samplers / ml_mdm.diffusion, not used here) and
ml_mdm.reader, which needs mlx-data: a stand-in module with a ReaderConfig dataclass of the same
module and name, so the pickle records the class the reference's own checkpoints name.
"""
import argparse
import dataclasses
import os
import sys
import types

import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402  (same folder: stand-ins, config building, safetensors writer)

LM_DIM = 12          # width of the fake language-model features (the CLIs write the T5 width here)
SEED_WEIGHTS = 4321
SEED_INPUTS = 8765
STEP = 7

TINY_YAML = """\
# Tiny 2-level nested MDM in apple/ml-mdm's config layout (libmdm's mdm-convert fixture).
# conditioning_feature_dim is -1, as in the shipped YAMLs: the training CLI writes the language
# model's width (here 12) into args.unet_config, which the checkpoint stores.
name: tiny_ckpt
model: nested_unet
vision_model: nested_unet
sample_image_size: 16
batch_size: 2
num_training_steps: 7
lr: 5.0e-05
warmup_steps: 10
gradient_clip_norm: 2.0
log_freq: 1
save_freq: 7
fp16: 0
seed: 3
unet_config:
  attention_levels: []
  conditioning_feature_dim: -1
  conditioning_feature_proj_dim: -1
  freeze_inner_unet: false
  initialize_inner_with_pretrained: null
  inner_config:
    attention_levels: [1]
    conditioning_feature_dim: -1
    conditioning_feature_proj_dim: 8
    masked_cross_attention: 1
    micro_conditioning: scale:8
    nesting: true
    num_attention_layers: [0, 1]
    num_lm_head_layers: 1
    num_resnets_per_resolution: [1, 1]
    resnet_config: {dropout: 0.0, num_channels: -1, num_groups_norm: 4, output_channels: -1,
      use_attention_ffn: false}
    resolution_channels: [8, 32]
    skip_cond_emb: false
    skip_mid_blocks: false
    temporal_dim: null
  interp_conditioning: false
  masked_cross_attention: 1
  micro_conditioning: scale:16
  nesting: false
  num_attention_layers: [0, 0]
  num_lm_head_layers: 0
  num_resnets_per_resolution: [1, 1]
  resnet_config: {dropout: 0.0, num_channels: -1, num_groups_norm: 4, output_channels: -1,
    use_attention_ffn: false}
  resolution_channels: [8, 8]
  skip_cond_emb: true
  skip_inner_unet_input: false
  skip_mid_blocks: true
  skip_normalization: false
  temporal_dim: 32
diffusion_config:
  use_vdm_loss_weights: false
  use_double_loss: true
  sampler_config:
    num_diffusion_steps: 1000
    schedule_type: DEEPFLOYD
    prediction_type: V_PREDICTION
    loss_target_type: DDPM
    threshold_function: CLIP
    schedule_shifted: true
    schedule_shifted_power: 1.0
reader_config:
  image_size: 16
  max_token_length: 16
"""


def install_more_stand_ins():
    """What ml_mdm.samplers / ml_mdm.diffusion import at module level but this script does not use."""
    if not mf._importable("tqdm"):
        m = types.ModuleType("tqdm")
        m.tqdm = lambda it=None, *a, **k: it
        sys.modules["tqdm"] = m
    if not mf._importable("torchvision"):
        tv, tvu = types.ModuleType("torchvision"), types.ModuleType("torchvision.utils")

        def save_image(*a, **k):
            raise RuntimeError("torchvision stand-in")

        tvu.save_image = save_image
        tv.utils = tvu
        sys.modules["torchvision"], sys.modules["torchvision.utils"] = tv, tvu
    import ml_mdm

    cm = sys.modules["ml_mdm.config"]
    for name in ("register_pipeline_config", "register_pipeline"):
        if not hasattr(cm, name):  # the stand-in config module of make_fixtures.py has only the model ones
            setattr(cm, name, lambda *names: (lambda cls: cls))
    try:
        from ml_mdm import reader as _r  # noqa: F401  (needs mlx-data)
    except Exception:
        rm = types.ModuleType("ml_mdm.reader")

        @dataclasses.dataclass
        class ReaderConfig:  # the fields this fixture sets; same module and name as the reference's class
            image_size: int = -1
            max_token_length: int = -1
            max_caption_length: int = -1

        ReaderConfig.__module__, ReaderConfig.__qualname__ = "ml_mdm.reader", "ReaderConfig"
        rm.ReaderConfig = ReaderConfig
        sys.modules["ml_mdm.reader"] = rm
        ml_mdm.reader = rm


def enum_fields(cfg_cls, values, samplers):
    """The YAML's enum names → the reference's enum members (as its simple_parsing parser does)."""
    enums = {"schedule_type": samplers.ScheduleType, "prediction_type": samplers.PredictionType,
             "loss_target_type": samplers.PredictionType, "threshold_function": samplers.ThresholdType}
    return cfg_cls(**{k: (enums[k][v] if k in enums else v) for k, v in values.items()})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="path to ml-mdm-matryoshka")
    ap.add_argument("--out", default="tests/fixtures/reference_checkpoint")
    args = ap.parse_args()
    ref = os.path.abspath(args.ref)
    sys.path.insert(0, ref)
    stand_ins = mf._install_stand_ins()
    install_more_stand_ins()
    from ml_mdm import config as config_mod
    from ml_mdm import diffusion, reader, samplers
    from ml_mdm.models import nested_unet as nested_mod
    from ml_mdm.models import unet as unet_mod

    print(f"torch {torch.__version__}; stand-ins: {', '.join(stand_ins) or 'none'} (+ tqdm, torchvision, reader as needed)")
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tiny_ckpt.yaml"), "w") as f:
        f.write(TINY_YAML)
    y = yaml.safe_load(TINY_YAML)

    torch.manual_seed(0)
    model, unet_cfg = mf.build_model(y["unet_config"], y["model"], LM_DIM, (unet_mod, nested_mod, config_mod))
    model.eval()
    mf.randomize_state(model, SEED_WEIGHTS)
    n_params = sum(p.numel() for p in model.parameters())

    # args as get_arguments() + train_parallel.py leave it: the YAML's top-level keys, the three config
    # dataclasses, and conditioning_feature_dim set to the language model's width.
    dc = dict(y["diffusion_config"])
    sampler_cfg = enum_fields(samplers.SamplerConfig, dc.pop("sampler_config"), samplers)
    diffusion_cfg = diffusion.NestedDiffusionConfig(sampler_config=sampler_cfg, **dc)
    reader_cfg = reader.ReaderConfig(**y["reader_config"])
    top = {k.replace("-", "_"): v for k, v in y.items() if k not in ("unet_config", "diffusion_config", "reader_config")}
    namespace = argparse.Namespace(**top, unet_config=unet_cfg, diffusion_config=diffusion_cfg,
                                   reader_config=reader_cfg, text_model="google/flan-t5-xl",
                                   vocab_file="data/t5.vocab", output_dir="outputs/tiny_ckpt")
    other_items = {"batch_num": STEP, "loss": 0.25, "best_avg_loss": 0.3, "exp_avg_loss": 0.3,
                   "exp_avg_loss_var": 0.01, "args": namespace}
    pth = os.path.join(args.out, f"vis_model_{STEP:06d}.pth")
    model.save(pth, other_items=other_items)  # UNet.save: torch.save({"state_dict": ..., **other_items})

    B, L, hi = 2, 4, y["sample_image_size"]
    lo = hi // model.nest_ratio[0]
    g = torch.Generator().manual_seed(SEED_INPUTS)
    x_hi = torch.randn(B, mf.IMAGE_CHANNELS, hi, hi, generator=g)
    x_lo = torch.randn(B, mf.IMAGE_CHANNELS, lo, lo, generator=g)
    times = torch.tensor([3.0, 641.0])
    lm_mask = torch.ones(B, L)
    lm_mask[0, L - 1:] = 0.0
    lm_outputs = torch.randn(B, L, LM_DIM, generator=g) * lm_mask[..., None]
    with torch.no_grad():
        out = model([x_hi, x_lo], times, lm_outputs, lm_mask, {})  # as NestedModel.forward calls it
        out64 = model.double()([x_hi.double(), x_lo.double()], times.double(), lm_outputs.double(),
                               lm_mask.double(), {})
    io = {f"x_t.{hi}": x_hi, f"x_t.{lo}": x_lo, "times": times, "lm_outputs": lm_outputs, "lm_mask": lm_mask,
          f"out.{hi}": out[0], f"out.{lo}": out[1]}
    mf.write_safetensors(io, os.path.join(args.out, "tiny_ckpt.io.safetensors"))
    print(f"tiny_ckpt: {type(model).__name__} params={n_params:,} entries={len(model.state_dict())}")
    for r, o, o64 in zip((hi, lo), out, out64):
        print(f"out.{r}: std={o.std():.4f} max|.|={o.abs().max():.4f} max|f32-f64|={(o.double() - o64).abs().max():.2e}")
    for name in sorted(os.listdir(args.out)):
        print(f"{name}: {os.path.getsize(os.path.join(args.out, name)):,} bytes")


if __name__ == "__main__":
    main()

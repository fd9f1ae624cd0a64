#!/usr/bin/env python3
"""Makes the T5 encoder parity fixture (tests/fixtures/t5/) with Hugging Face transformers.

Run where transformers is installed (the GPU machine has it; nothing here needs a GPU):
    python3 scripts/reference/make_t5_fixture.py OUT_DIR
Writes OUT_DIR/{gated,relu,sharded}/ — each a Hugging Face folder saved by `save_pretrained` (config.json,
model.safetensors or shards + model.safetensors.index.json) plus io.safetensors with the inputs
(`input_ids`, `attention_mask`, int64 [B, L]) and the expected `last_hidden_state` (float32 [B, L, D]) of
`T5EncoderModel` in fp32 on the CPU, eval mode. Two input sets per model: `short_*` (B=3, L=12, padded rows)
and `long_*` (B=2, L=160: relative distances past max_distance, so every bucket kind is used).
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel

VARIANTS = {
    # FLAN-T5 / T5 v1.1 style: gated-GELU (gelu_new), d_kv * heads == d_model.
    "gated": dict(vocab_size=128, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                  relative_attention_num_buckets=32, relative_attention_max_distance=128,
                  feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6),
    # Original T5: ReLU FFN; inner dim (d_kv * heads = 48) differs from d_model; other eps and buckets.
    "relu": dict(vocab_size=96, d_model=64, d_kv=8, d_ff=96, num_layers=3, num_heads=6,
                 relative_attention_num_buckets=16, relative_attention_max_distance=64,
                 feed_forward_proj="relu", layer_norm_epsilon=1e-5),
    # The gated model saved in shards with an index (model.safetensors.index.json).
    "sharded": None,
}


def inputs(vocab, gen):
    short = torch.randint(3, vocab, (3, 12), generator=gen)
    mask = torch.ones_like(short)
    for row, length in enumerate([12, 7, 3]):
        short[row, length - 1] = 1  # eos
        short[row, length:] = 0     # pad
        mask[row, length:] = 0
    long = torch.randint(3, vocab, (2, 160), generator=gen)
    lmask = torch.ones_like(long)
    long[1, 150:] = 0
    lmask[1, 150:] = 0
    return short, mask, long, lmask


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    models = {}
    for name, cfg in VARIANTS.items():
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        if cfg is None:
            model = models["gated"]
            model.save_pretrained(folder, max_shard_size="100KB")
        else:
            config = T5Config(dropout_rate=0.0, is_encoder_decoder=False, use_cache=False, **cfg)
            model = T5EncoderModel(config).eval()
            # Non-trivial norm weights (the default init is all ones) so RMSNorm scaling is tested.
            with torch.no_grad():
                for n, p in model.named_parameters():
                    if "layer_norm" in n:
                        p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            models[name] = model
            model.save_pretrained(folder)
        vocab = model.config.vocab_size
        short, mask, long, lmask = inputs(vocab, gen)
        with torch.no_grad():
            hs = model(input_ids=short, attention_mask=mask).last_hidden_state.float().contiguous()
            hl = model(input_ids=long, attention_mask=lmask).last_hidden_state.float().contiguous()
        save_file({"short_input_ids": short.contiguous(), "short_attention_mask": mask.contiguous(),
                   "short_last_hidden_state": hs, "long_input_ids": long.contiguous(),
                   "long_attention_mask": lmask.contiguous(), "long_last_hidden_state": hl},
                  os.path.join(folder, "io.safetensors"))
        with open(os.path.join(folder, "made_by.json"), "w") as f:
            json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
                       "script": "scripts/reference/make_t5_fixture.py"}, f, indent=1)
        print(name, sorted(os.listdir(folder)), "params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Extracts an apple/ml-mdm checkpoint (vis_model_*.pth) for libmdm's mdm-convert.

    convert-reference-checkpoint.py CHECKPOINT.pth OUT_DIR

A reference checkpoint is a torch.save pickle: {"state_dict": OrderedDict of tensors, "batch_num",
"loss", ..., "args": argparse.Namespace}, whose "args" holds objects of the reference's own classes
(its config dataclasses and enums). This script needs only torch, not the reference's code: its
unpickler never imports a class of the reference (ml_mdm.* and the old top-level aliases models,
samplers, diffusion, config, reader, language_models, distributed) and resolves only a short list of
harmless classes (tensors, OrderedDict, Namespace, numpy scalars); everything else becomes an inert
record of its name and pickled state, so no code from the file runs.

It writes into OUT_DIR:
  state_dict.safetensors  every tensor of checkpoint["state_dict"], names and dtypes unchanged
                          (the safetensors format, written here; no safetensors module needed)
  reference.json          the other items: batch_num, losses, and "args" as JSON (objects of the
                          reference's classes as {"__class__": "module.Name", field: value, ...})

mdm-convert runs this script, then maps the keys and checks every tensor against the model the
reference YAML describes (docs/reference-users.md).
"""
import argparse
import collections
import inspect
import json
import math
import os
import pickle
import struct
import sys
import types

import torch

FORMAT = "libmdm-reference-extract"
FORMAT_VERSION = 1

# Modules of the reference: never imported, their objects are recorded.
REFERENCE_MODULES = ("ml_mdm", "models", "samplers", "diffusion", "config", "reader", "language_models",
                     "distributed", "ml_mdm_matryoshka")

# Classes and functions a checkpoint legitimately needs, resolved for real.
ALLOWED = {
    ("collections", "OrderedDict"),
    ("argparse", "Namespace"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch", "Size"),
    ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("_codecs", "encode"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class Recorded:
    """An object of a class that was not imported: its class name and pickled state, nothing else."""

    module = "?"
    name = "?"

    def __init__(self, *args, **kwargs):  # Enum(value), or a REDUCE of anything else
        self.args, self.kwargs, self.state, self.member = args, kwargs, None, None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.member = args, kwargs, None, None
        return obj

    def __setstate__(self, state):
        self.state = state


_recorded_classes = {}


def recorded_class(module, name):
    key = (module, name)
    if key not in _recorded_classes:
        _recorded_classes[key] = type(name, (Recorded,), {"module": module, "name": name})
    return _recorded_classes[key]


def member_of(cls, name):
    """getattr(Class, "NAME"): how Python 3.11+ pickles an enum member (older ones call Class(value))."""
    if isinstance(cls, type) and issubclass(cls, Recorded):
        obj = cls.__new__(cls)
        obj.member = name
        return obj
    return recorded_class("builtins", "getattr")(cls, name)  # anything else stays inert


class TolerantUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module in ("builtins", "__builtin__") and name == "getattr":
            return member_of
        if module.split(".")[0] in REFERENCE_MODULES:
            return recorded_class(module, name)
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        if module == "torch":
            value = getattr(torch, name, None)
            if isinstance(value, torch.dtype) or (isinstance(value, type) and name.endswith("Storage")):
                return value
        return recorded_class(module, name)


# torch.load takes a pickle module; this one differs from pickle only in its Unpickler.
tolerant_pickle = types.ModuleType("tolerant_pickle")
tolerant_pickle.__dict__.update({k: v for k, v in pickle.__dict__.items() if not k.startswith("__")})
tolerant_pickle.Unpickler = TolerantUnpickler


def load_checkpoint(path):
    kwargs = {"map_location": "cpu", "pickle_module": tolerant_pickle}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = False  # the unpickler above is the safety
    # torch 1.13's load replaces any pickle_module by its module-level `pickle` unless weights_only is
    # set: hand it ours there too for the duration of the call.
    saved = torch.serialization.pickle
    torch.serialization.pickle = tolerant_pickle
    try:
        return torch.load(path, **kwargs)
    finally:
        torch.serialization.pickle = saved


def to_json(obj, depth=0):
    """The checkpoint's non-tensor items as JSON values."""
    if depth > 50:
        return "<too deep>"
    if isinstance(obj, Recorded):
        out = {"__class__": f"{obj.module}.{obj.name}"}
        if obj.member is not None:
            out["name"] = obj.member
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):  # (dict, slots)
            state = {**(state[0] or {}), **state[1]}
        if isinstance(state, dict):
            out.update({str(k): to_json(v, depth + 1) for k, v in state.items()})
        elif state is not None:
            out["state"] = to_json(state, depth + 1)
        if obj.args:
            out["value"] = to_json(obj.args[0] if len(obj.args) == 1 else list(obj.args), depth + 1)
        return out
    if isinstance(obj, argparse.Namespace):
        return {str(k): to_json(v, depth + 1) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_json(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_json(v, depth + 1) for v in obj]
    if isinstance(obj, torch.Tensor):
        if obj.numel() == 1:
            return obj.item()
        return {"__tensor__": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        try:
            return to_json(obj.item(), depth + 1)
        except Exception:
            pass
    return repr(obj)


SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: the same 2-byte words as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(tensors, path, metadata):
    """safetensors: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}} padded with
    spaces to a multiple of 8, then the little-endian data in header order."""
    if sys.byteorder != "little":
        sys.exit("convert-reference-checkpoint: a big-endian machine is not supported")
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in SAFETENSORS_DTYPES:
            sys.exit(f"convert-reference-checkpoint: tensor {name!r} has dtype {t.dtype}, not storable")
        data = tensor_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a reference checkpoint (vis_model_*.pth)")
    ap.add_argument("out_dir", help="folder for state_dict.safetensors and reference.json")
    ap.add_argument("--key", default="state_dict", help="the checkpoint item holding the weights")
    args = ap.parse_args()

    try:
        ckpt = load_checkpoint(args.checkpoint)
    except Exception as e:  # noqa: BLE001: one line for mdm-convert
        sys.exit(f"convert-reference-checkpoint: {args.checkpoint}: cannot read it as a torch.save file ({e})")
    if isinstance(ckpt, dict) and args.key in ckpt:
        state, items = ckpt[args.key], {k: v for k, v in ckpt.items() if k != args.key}
    elif isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state, items = ckpt, {}  # a bare state dict
    else:
        keys = list(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        sys.exit(f"convert-reference-checkpoint: {args.checkpoint}: no '{args.key}' item (has {keys})")
    tensors = collections.OrderedDict()
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            sys.exit(f"convert-reference-checkpoint: {args.checkpoint}: state dict entry {name!r} is not a tensor")
        tensors[str(name)] = value

    os.makedirs(args.out_dir, exist_ok=True)
    source = os.path.basename(args.checkpoint)
    write_safetensors(tensors, os.path.join(args.out_dir, "state_dict.safetensors"),
                      {"format": "pt", "source": source})
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": os.path.abspath(args.checkpoint),
        "torch_version": torch.__version__,
        "state_dict_order": list(tensors),
        "recorded_classes": sorted(f"{m}.{n}" for m, n in _recorded_classes),
        "items": {str(k): to_json(v) for k, v in items.items()},
    }
    tmp = os.path.join(args.out_dir, "reference.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, os.path.join(args.out_dir, "reference.json"))
    print(f"{source}: {len(tensors)} tensors, {sum(t.numel() for t in tensors.values()):,} values; "
          f"items: {', '.join(sorted(str(k) for k in items)) or 'none'}")


if __name__ == "__main__":
    main()

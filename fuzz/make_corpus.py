"""Writes the fuzzer's seed corpus: small files in every shape the checkpoint reader accepts.

    python3 fuzz/make_corpus.py fuzz/corpus

Each seed is a tiny state dict saved by torch.save in one of the formats published
checkpoints come in: zip and legacy, pickle protocols 2 to 5, bare, wrapped ({"state_dict"},
{"params_ema"}), with DataParallel's "module." prefix, with numpy scalars beside the weights,
views and shared storages, half, bfloat16, integer and bool tensors. They stay small so the
fuzzer mutates structure rather than tensor bytes.
"""
import collections
import os
import sys

import numpy as np
import torch


def tiny_state(seed):
    generator = torch.Generator().manual_seed(seed)
    state = collections.OrderedDict()
    state["conv.weight"] = torch.randn(2, 1, 1, 2, generator=generator)
    state["conv.bias"] = torch.randn(2, generator=generator)
    state["index"] = torch.arange(3, dtype=torch.int64)
    return state


def variants():
    state = tiny_state(0)
    shared = torch.arange(8, dtype=torch.float32)
    views = collections.OrderedDict([("whole", shared), ("middle", shared[2:6].view(2, 2)), ("transposed", shared[:6].view(2, 3).t())])
    typed = collections.OrderedDict([("half", torch.ones(2, dtype=torch.float16)), ("bf16", torch.ones(2, dtype=torch.bfloat16)),
                                     ("flag", torch.tensor([True, False])), ("scalar", torch.tensor(1.5)),
                                     ("small", torch.tensor([1, -2], dtype=torch.int8))])
    yield "plain_zip.pth", state, {}
    yield "plain_legacy.pth", state, {"_use_new_zipfile_serialization": False}
    yield "ddp_zip.pth", collections.OrderedDict(("module." + k, v) for k, v in state.items()), {}
    yield "wrapped_zip.pth", {"state_dict": state}, {}
    yield "wrapped_legacy.pth", {"state_dict": state}, {"_use_new_zipfile_serialization": False}
    yield "params_ema.pth", {"params_ema": state, "params": tiny_state(1)}, {}
    for protocol in (3, 4, 5):
        yield f"protocol{protocol}.pth", {"state_dict": state, "epoch": 7}, {"pickle_protocol": protocol}
    yield "numpy_meta.pth", {"state_dict": state, "epoch": np.int64(3), "loss": np.float64(0.5)}, {}
    yield "numpy_meta_legacy.pth", {"state_dict": state, "best": np.float32(1.0)}, {"_use_new_zipfile_serialization": False}
    yield "views.pth", views, {}
    yield "views_legacy.pth", views, {"_use_new_zipfile_serialization": False}
    yield "types.pth", typed, {}
    yield "list_tuple.pth", {"state_dict": state, "history": [1, 2.5, ("a", None, True)]}, {}


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, obj, options in variants():
        torch.save(obj, os.path.join(out, name), **options)
    print(f"wrote {len(list(variants()))} seeds to {out}")


if __name__ == "__main__":
    main(sys.argv[1])

"""Checkpoints in every form the native reader must read, and files it must refuse.

    checkpoint_variants.py OUT_DIR

Writes OUT_DIR/<case>.pth and OUT_DIR/expected.json: for each readable case, the state dict
that torch.load(weights_only=True) reads from it (after the same unwrapping and prefix
removal), as name -> dtype, shape and values; for each hostile case, only the file.
"""
import collections
import io
import json
import os
import pickle
import sys
import warnings
import zipfile

import numpy as np
import torch

RULES_UNWRAP = ("state_dict", "params_ema", "params")


def base_state():
    generator = torch.Generator().manual_seed(11)
    state = collections.OrderedDict()
    state["conv.weight"] = torch.randn(4, 3, 3, 3, generator=generator)
    state["conv.bias"] = torch.randn(4, generator=generator)
    state["norm.weight"] = 1 + 0.1 * torch.randn(4, generator=generator)
    state["table.relative_position_index"] = torch.arange(16, dtype=torch.int64).view(4, 4)
    state["scalar"] = torch.tensor(0.25)
    return state


def prefixed(state):
    return collections.OrderedDict(("module." + name, tensor) for name, tensor in state.items())


def views():
    storage = torch.arange(24, dtype=torch.float32) / 7
    return collections.OrderedDict([
        ("whole", storage),
        ("offset", storage[5:17].view(3, 4)),
        ("transposed", storage[:12].view(3, 4).t()),
        ("strided", storage[::3]),
        ("empty", storage[:0]),
    ])


def typed():
    return collections.OrderedDict([
        ("half", torch.linspace(-2, 2, 7).half()),
        ("bfloat16", torch.linspace(-3, 3, 5).bfloat16()),
        ("double", torch.linspace(0, 1, 3, dtype=torch.float64)),
        ("int32", torch.tensor([-5, 0, 7], dtype=torch.int32)),
        ("int8", torch.tensor([-128, 127], dtype=torch.int8)),
        ("uint8", torch.tensor([0, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
    ])


class CudaLocation:
    """Makes torch.save tag every storage as if it lived on cuda:0, as a GPU-trained checkpoint does."""

    def __enter__(self):
        self.saved = list(torch.serialization._package_registry)
        torch.serialization.register_package(0, lambda storage: "cuda:0", lambda storage, location: None)
        return self

    def __exit__(self, *exc):
        torch.serialization._package_registry[:] = self.saved


def readable_cases():
    state = base_state()
    legacy = {"_use_new_zipfile_serialization": False}
    yield "zip", state, {}
    yield "legacy", state, legacy
    yield "ddp", prefixed(state), {}
    yield "ddp_legacy", prefixed(state), legacy
    yield "wrapped_ddp", {"state_dict": prefixed(state), "epoch": 12, "step": 500000}, {}
    yield "params_ema", {"params_ema": state, "params": collections.OrderedDict(x=torch.zeros(1))}, {}
    yield "params_only", {"params": state}, legacy
    for protocol in (3, 4, 5):
        yield f"protocol{protocol}", {"state_dict": state}, {"pickle_protocol": protocol}
        yield f"protocol{protocol}_legacy", {"state_dict": state}, {"pickle_protocol": protocol, **legacy}
    yield "numpy_meta", {"state_dict": state, "epoch": np.int64(3), "psnr": np.float64(27.5), "tag": b"\x00\xff"}, {}
    yield "numpy_meta_legacy", {"state_dict": state, "best": np.float32(0.5)}, legacy
    yield "views", views(), {}
    yield "views_legacy", views(), legacy
    yield "typed", typed(), {}
    yield "typed_legacy", typed(), legacy
    yield "half_state", collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in state.items()), {}


def expected_of(loaded):
    for key in RULES_UNWRAP:
        if isinstance(loaded, dict) and key in loaded:
            loaded = loaded[key]
            break
    out = []
    for name, tensor in loaded.items():
        name = name[len("module."):] if name.startswith("module.") else name
        out.append({"name": name, "dtype": str(tensor.dtype).replace("torch.", ""), "shape": list(tensor.shape),
                    "values": tensor.double().flatten().tolist()})
    return out


def zip_with_pickle(path, pickled):
    """A zip archive laid out as torch.save lays it out, holding the given data.pkl."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/version", "3\n")


class Evil:
    """An object whose unpickling would run a shell command."""

    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


MARKER = ""


def hostile_cases(out):
    global MARKER
    MARKER = os.path.join(out, "code-ran")
    zip_with_pickle(os.path.join(out, "evil_reduce.pth"), pickle.dumps({"state_dict": Evil()}, protocol=2))
    zip_with_pickle(os.path.join(out, "evil_builtins.pth"),
                    b"\x80\x02cbuiltins\neval\nq\x00X\x0a\x00\x00\x00print(123)q\x01\x85q\x02Rq\x03.")
    zip_with_pickle(os.path.join(out, "newobj.pth"), pickle.dumps({"x": collections.Counter(a=1)}, protocol=2))
    # A storage that claims far more bytes than the file holds.
    buffer = io.BytesIO()
    torch.save(collections.OrderedDict(w=torch.ones(4)), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source:
        pickled = source.read([n for n in source.namelist() if n.endswith("data.pkl")][0])
    zip_with_pickle(os.path.join(out, "huge_storage.pth"), pickled.replace(b"K\x04", b"J\x00\x00\x00\x40", 1))
    # A view that reaches past the end of its storage.
    torch.save(collections.OrderedDict(w=torch.ones(4)), buffer := io.BytesIO())
    data = buffer.getvalue()
    with open(os.path.join(out, "overreach.pth"), "wb") as handle:
        handle.write(data.replace(b"K\x04\x85", b"K\x09\x85", 1))
    with open(os.path.join(out, "truncated.pth"), "wb") as handle:
        torch.save(base_state(), complete := io.BytesIO())
        handle.write(complete.getvalue()[: len(complete.getvalue()) // 2])
    with open(os.path.join(out, "garbage.pth"), "wb") as handle:
        handle.write(bytes(range(256)) * 8)
    with open(os.path.join(out, "nested.pth"), "wb") as handle:
        zip_bytes = io.BytesIO()
        zip_with_pickle(zip_bytes, b"\x80\x02" + b"]" * 200000 + b"a" * 199999 + b".")
        handle.write(zip_bytes.getvalue())
    torch.save([torch.ones(2)], os.path.join(out, "list_top.pth"))
    torch.save({"state_dict": base_state(), "optimizer": {"lr": 0.1}}, os.path.join(out, "not_tensors.pth"))
    torch.save({"w": torch.ones(2)}, os.path.join(out, "unwrap_target.pth"))


def main(out):
    warnings.filterwarnings("ignore")  # torch's notes about pickle protocols other than 2
    os.makedirs(out, exist_ok=True)
    expected = {}
    for name, obj, options in readable_cases():
        path = os.path.join(out, name + ".pth")
        if name == "zip":
            with CudaLocation():
                torch.save(obj, os.path.join(out, "cuda_location.pth"), **options)
            loaded = torch.load(os.path.join(out, "cuda_location.pth"), map_location="cpu", weights_only=True)
            expected["cuda_location"] = expected_of(loaded)
        torch.save(obj, path, **options)
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # numpy scalars need an allowance on some torch versions: read the same object instead
            loaded = obj
        expected[name] = expected_of(loaded)
    hostile_cases(out)
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as handle:
        json.dump(expected, handle)


if __name__ == "__main__":
    main(sys.argv[1])

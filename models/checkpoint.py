"""Reading published checkpoints safely and strictly.

Checkpoints are untrusted pickles: they are only ever read with ``weights_only=True``, which
refuses anything but tensors and plain containers, so a file cannot run code.
"""

import hashlib
import os

import torch

from errors import ConvertError

DDP_PREFIX = "module."


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path, what):
    """name -> tensor, unwrapped from {"state_dict": ...} and without a DDP "module." prefix."""
    if not os.path.isfile(path):
        raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}' does not exist")
    if os.path.getsize(path) == 0:
        raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}' is empty")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}' cannot be read as a PyTorch "
                                          f"state dict ({reason}); is it the right file, completely downloaded?")
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}' holds no name -> tensor mapping")
    not_tensors = [name for name, value in loaded.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}' holds entries that are not tensors: "
                                          f"{', '.join(map(str, not_tensors[:8]))}")
    if all(name.startswith(DDP_PREFIX) for name in loaded):
        loaded = {name[len(DDP_PREFIX):]: value for name, value in loaded.items()}
    return loaded


def _listing(names, limit=12):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_strictly(module, state, what, path):
    """Loads every tensor of the checkpoint into the module, or says exactly what differs."""
    expected = module.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    misshaped = [f"{name} (checkpoint {list(state[name].shape)}, network {list(expected[name].shape)})"
                 for name in expected if name in state and state[name].shape != expected[name].shape]
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"missing: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected: {_listing(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped: {_listing(misshaped, 6)}")
        raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}' does not fit the {what} configuration ("
                                          + "; ".join(parts) + "); check that the configuration matches the checkpoint")
    converted = {}
    for name, value in state.items():
        target = expected[name]
        if value.is_floating_point() != target.is_floating_point():
            raise ConvertError("ECHECKPOINT", f"the {what} checkpoint '{path}': {name} has dtype {value.dtype}, "
                                              f"expected {target.dtype}")
        converted[name] = value.to(target.dtype)
    module.load_state_dict(converted, strict=True)

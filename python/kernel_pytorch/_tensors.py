"""numpy <-> torch at the boundary. torch is optional and never imported unless the caller
already passed a torch tensor (or asked for one)."""
import sys

import numpy as np


def is_torch(x):
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "__dlpack__")


def torch_module():
    return sys.modules.get("torch")


def as_ids(x, name, allow_none=False):
    """Token ids (list, numpy or torch, 1-D or 2-D) -> (C-contiguous int64 [B, S] array, was_1d).

    CPU torch tensors and int64 numpy arrays are viewed, not copied."""
    if x is None:
        if allow_none:
            return None, False
        raise ValueError(f"{name} is required")
    if is_torch(x):
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        x = x.numpy()
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.ndim == 1:
        return np.ascontiguousarray(a[None, :], dtype=np.int64), True
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, seq) or (seq,), got {tuple(a.shape)}")
    return np.ascontiguousarray(a, dtype=np.int64), False


def output(array, like):
    """Engine output (numpy, owned by the engine's tensor) -> torch when the input was torch.

    torch.from_numpy shares the memory, so no copy is made on the CPU."""
    if like is not None and is_torch(like):
        torch = torch_module()
        t = torch.from_numpy(array)
        return t if like.device.type == "cpu" else t.to(like.device)
    return array

"""Device choice and array interchange for cnnvis._core.

Policy (documented once, used by every kernel wrapper): floating inputs of any dtype are accepted and cast
by the wrapper to the kernel's dtype (float32 or float64); non-contiguous inputs are copied to C order.
torch and cupy are imported lazily, only when the input is one of theirs.
"""
from __future__ import annotations

import functools

import numpy as np

from cnnvis import _core
from cnnvis.errors import DeviceError

__all__ = ["cuda_available", "cuda_status", "resolve_device", "is_cuda_array", "to_numpy"]


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when the core was built with CUDA and a device answers."""
    return bool(_core.built_with_cuda()) and _core.cuda_device_count() > 0


def cuda_status() -> str:
    return _core.cuda_status()


def is_cuda_array(x) -> bool:
    """True for torch CUDA tensors and anything with __cuda_array_interface__ (CuPy, Numba)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    is_cuda = getattr(x, "is_cuda", None)
    return bool(is_cuda) if isinstance(is_cuda, bool) else False


def resolve_device(device: str, *arrays) -> str:
    """Map "auto" | "cpu" | "cuda" to the device a kernel runs on.

    "auto" picks CUDA when an input already lives on the GPU, or when CUDA is usable and the caller asks
    for it by passing GPU data; plain host arrays stay on the CPU (no hidden transfers).
    """
    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    on_gpu = any(is_cuda_array(a) for a in arrays)
    if device == "cpu":
        return "cpu"
    if device == "cuda" or on_gpu:
        if not cuda_available():
            raise DeviceError(f"device='cuda' asked for, but {cuda_status()}")
        return "cuda"
    return "cpu"


def to_numpy(x, *, name: str = "array") -> np.ndarray:
    """A host numpy view/copy of numpy arrays, torch tensors (CPU or CUDA) and CUDA arrays."""
    if isinstance(x, np.ndarray):
        return x
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        t = x.detach()
        if t.dtype.is_floating_point and t.dtype not in (_torch().float16, _torch().float32, _torch().float64):
            t = t.float()  # bfloat16 has no numpy dtype
        return t.cpu().numpy()
    if mod == "cupy":
        return x.get()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - defensive
        raise TypeError(f"{name}: cannot convert {type(x).__name__} to an array") from exc


def _torch():
    import torch

    return torch

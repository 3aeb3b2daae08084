"""Array interchange, device choice and the CUDA stream policy for cnnvis._core (one module for all kernels).

Policy, decided once:
- inputs: numpy arrays, torch tensors (CPU or CUDA), ``__cuda_array_interface__`` arrays (CuPy, Numba),
  other DLPack producers, and anything ``np.asarray`` takes. torch and cupy are imported lazily, only when
  the input is one of theirs.
- dtype: float32 and float64 reach the kernels unchanged, other real dtypes are cast to float64 (the
  statistics kernel casts 16-bit floats to float32 and rejects integers, see ``_stats.py``); complex input
  is rejected. The tag of a kernel dtype across the binding is ``"f4"`` / ``"f8"`` (``dtype_tag``).
- layout: non-contiguous inputs are copied to C order (the statistics kernel reads strides instead).
- device: ``"auto"`` runs on CUDA for GPU-resident inputs and on the CPU for host inputs; ``"cpu"`` copies
  GPU inputs to the host; ``"cuda"`` copies host inputs to the device, or raises DeviceError.
- stream: the core's work on an input starts after what its producer queued on the producer's stream
  (``producer_stream``); the core orders itself after that stream (csrc/common/cuda_utils.cuh), so
  nothing here synchronises the host.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from cnnvis import _core
from cnnvis._params import DEVICE, DEVICES, validate
from cnnvis.errors import DataError, DeviceError

__all__ = ["DEVICES", "DeviceMatrix", "KERNEL_DTYPES", "call_core", "check_matrix_shape", "cuda_available",
           "cuda_status", "dtype_tag", "host_matrix", "is_cuda_array", "is_torch", "prepare_matrix", "producer_stream",
           "resolve_device", "shape_of", "to_numpy"]

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when the core was built with CUDA and a device answers."""
    return bool(_core.built_with_cuda()) and _core.cuda_device_count() > 0


def cuda_status() -> str:
    return _core.cuda_status()


def cpu_capability() -> str:
    """The CPU path the SIMD kernels take: 'default', 'avx2' or 'avx512'. The widest this CPU runs, unless
    the environment variable CNNVIS_CPU_CAPABILITY (read when the core loads) names another: an unknown
    value fails the import; a path the CPU lacks falls back to the widest it has with a RuntimeWarning."""
    return _core.cpu_capability()


def is_torch(x) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def is_cuda_array(x) -> bool:
    """True for torch CUDA tensors and anything with __cuda_array_interface__ (CuPy, Numba)."""
    if is_torch(x) and isinstance(getattr(x, "is_cuda", None), bool):
        return x.is_cuda  # asking a CPU tensor for __cuda_array_interface__ costs a raised exception
    if hasattr(x, "__cuda_array_interface__"):
        return True
    is_cuda = getattr(x, "is_cuda", None)
    return bool(is_cuda) if isinstance(is_cuda, bool) else False


def resolve_device(device: str, *arrays) -> str:
    """Map "auto" | "cpu" | "cuda" to the device a kernel runs on (no hidden transfers for "auto")."""
    validate({"device": DEVICE}, dict(device=device))
    if device == "cpu":
        return "cpu"
    if device == "cuda" or any(is_cuda_array(a) for a in arrays):
        if not cuda_available():
            raise DeviceError(f"device='cuda' asked for, but {cuda_status()}")
        return "cuda"
    return "cpu"


def shape_of(x) -> tuple:
    """The shape of any array-like, without converting it."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return tuple(int(d) for d in shape)


def dtype_tag(dtype) -> str:
    """'f4' / 'f8' for a float32 / float64 numpy or torch dtype: the one dtype tag of the binding."""
    size = dtype.itemsize if type(dtype).__module__ == "torch" else np.dtype(dtype).itemsize
    return f"f{size}"


def producer_stream(x) -> int:
    """The stream (a cudaStream_t as an integer) on which the producer of the CUDA array x queued its work:
    torch's current stream of x's device, or the "stream" of __cuda_array_interface__ (0 when absent)."""
    if is_torch(x):
        import torch

        return int(torch.cuda.current_stream(x.device).cuda_stream)
    return int(x.__cuda_array_interface__.get("stream") or 0)


def to_numpy(x, *, name: str = "array") -> np.ndarray:
    """A host numpy view/copy of numpy arrays, torch tensors (CPU or CUDA) and CUDA arrays."""
    if isinstance(x, np.ndarray):
        return x
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        import torch

        t = x.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()  # bfloat16 has no numpy dtype
        return t.cpu().numpy()
    if mod == "cupy":
        return x.get()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - defensive
        raise DataError(f"{name}: cannot convert {type(x).__name__} to an array") from exc


def check_matrix_shape(shape: tuple, name: str) -> None:
    if len(shape) != 2:
        raise DataError(f"{name} must be 2-D (rows, columns), got shape {tuple(shape)}")
    if shape[0] < 1 or shape[1] < 1:
        raise DataError(f"{name} must have at least one row and one column, got shape {tuple(shape)}")


def host_matrix(x, name: str) -> np.ndarray:
    """A C-contiguous float32/float64 host copy (or view) of a 2-D input."""
    a = to_numpy(x, name=name)
    check_matrix_shape(a.shape, name)
    if a.dtype.kind not in "fiub":
        raise DataError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype not in KERNEL_DTYPES:
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


@dataclass(frozen=True)
class DeviceMatrix:
    """A C-contiguous float32/float64 CUDA matrix as the core's CUDA entry points take it.

    ``tensor`` keeps the memory alive (it shares memory with the input where possible)."""

    tensor: object
    ptr: int
    dtype: str
    rows: int
    cols: int
    stream: int

    @classmethod
    def of(cls, x, name: str) -> "DeviceMatrix":
        import torch

        if isinstance(x, torch.Tensor):
            t = x if x.is_cuda else x.to("cuda")
        elif hasattr(x, "__cuda_array_interface__") or not hasattr(x, "__dlpack__"):
            t = torch.as_tensor(x, device="cuda")  # CuPy, Numba (zero-copy); numpy with device="cuda"
        else:
            t = torch.from_dlpack(x)  # other DLPack producers (JAX, ...)
            t = t if t.is_cuda else t.to("cuda")
        check_matrix_shape(tuple(t.shape), name)
        if t.is_complex():
            raise DataError(f"{name} must hold real numbers, got dtype {t.dtype}")
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float64)
        t = t.detach().contiguous()
        # The conversions above were queued on torch's current stream: the core orders itself after it.
        return cls(t, int(t.data_ptr()), dtype_tag(t.dtype), int(t.shape[0]), int(t.shape[1]), producer_stream(t))

    @property
    def shape(self) -> tuple:
        return self.rows, self.cols

    def args(self) -> tuple:
        """(ptr, dtype, rows, cols, stream): the array description every CUDA entry point starts with."""
        return self.ptr, self.dtype, self.rows, self.cols, self.stream


def call_core(entry: str, dev: str, m, *args):
    """_core.<entry>(m, *args) on the CPU, _core.<entry>_cuda(ptr, dtype, rows, cols, stream, *args) on CUDA."""
    if dev == "cpu":
        return getattr(_core, entry)(m, *args)
    return getattr(_core, entry + "_cuda")(*m.args(), *args)


def prepare_matrix(x, device: str, name: str):
    """(device, host array | DeviceMatrix) for a 2-D input and a device argument."""
    dev = resolve_device(device, x)
    if dev == "cuda":
        return dev, DeviceMatrix.of(x, name)
    return dev, host_matrix(x, name)

"""k-means on the compiled core: k-means++ seeding, Lloyd iterations, the best of n_init restarts.

Input policy (as cnnvis.compute): numpy arrays, torch tensors (CPU or CUDA) and ``__cuda_array_interface__``
arrays (CuPy) are accepted; float32 and float64 are used as they are, other real dtypes are cast to float64;
non-contiguous inputs are copied to C order. Arrays on the GPU stay there (device="auto" picks CUDA).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from cnnvis import _core
from cnnvis.compute._backend import is_cuda_array, resolve_device, to_numpy
from cnnvis.errors import CnnvisError, DataError

__all__ = ["KMeansResult", "kmeans"]


@dataclass(frozen=True)
class KMeansResult:
    """labels (N,) int64 in [0, k); centers (k, D) float64; inertia: the sum of squared distances of the
    points to their centers; n_iter: Lloyd iterations of the best restart."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int


def check_int(name, value, low, high=None):
    """An integer parameter in [low, high] (high None: unbounded); bools are not integers."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise CnnvisError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        allowed = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise CnnvisError(f"{name} must be in {allowed}, got {value}")
    return int(value)


def check_random_state(value):
    """The seed of the core's generator: an integer in [0, 2**64 - 1]."""
    return check_int("random_state", value, 0, 2**64 - 1)


class HostMatrix:
    """A C-contiguous float32/float64 host copy (or view) of a 2-D input."""

    def __init__(self, x, name):
        a = to_numpy(x, name=name)
        _check_shape(a.shape, name)
        if a.dtype.kind not in "fiub":
            raise DataError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.dtype not in (np.float32, np.float64):
            a = a.astype(np.float64)
        self.array = np.ascontiguousarray(a)


class DeviceMatrix:
    """A C-contiguous float32/float64 CUDA tensor sharing memory with the input where possible."""

    def __init__(self, x, name):
        import torch

        if isinstance(x, torch.Tensor):
            t = x if x.is_cuda else x.to("cuda")
        elif hasattr(x, "__cuda_array_interface__") or not hasattr(x, "__dlpack__"):
            t = torch.as_tensor(x, device="cuda")  # CuPy, Numba (zero-copy); numpy with device="cuda"
        else:
            t = torch.from_dlpack(x)  # other DLPack producers (JAX, ...)
            t = t if t.is_cuda else t.to("cuda")
        _check_shape(tuple(t.shape), name)
        if t.is_complex():
            raise DataError(f"{name} must hold real numbers, got dtype {t.dtype}")
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float64)
        self.tensor = t.detach().contiguous()
        # The core launches on the legacy default stream: wait for work queued on torch's current one.
        torch.cuda.current_stream(self.tensor.device).synchronize()
        self.dtype = "float32" if self.tensor.dtype == torch.float32 else "float64"
        self.ptr = int(self.tensor.data_ptr())

    def all_finite(self) -> bool:
        import torch

        return bool(torch.isfinite(self.tensor).all().item())


def _check_shape(shape, name):
    if len(shape) != 2:
        raise DataError(f"{name} must be 2-D (rows, columns), got shape {tuple(shape)}")
    if shape[0] < 1 or shape[1] < 1:
        raise DataError(f"{name} must have at least one row and one column, got shape {tuple(shape)}")


def prepare(x, device, name):
    """(device, HostMatrix | DeviceMatrix) for a 2-D input and a device argument."""
    dev = resolve_device(device, x)
    if dev == "cuda":
        return dev, DeviceMatrix(x, name)
    return dev, HostMatrix(x.detach().cpu() if is_cuda_array(x) and hasattr(x, "detach") else x, name)


def kmeans(X, n_clusters, *, n_init=4, max_iter=300, tol=1e-4, random_state=0, device="auto") -> KMeansResult:
    """Cluster the N rows of X (N, D) into n_clusters groups.

    k-means++ seeding (greedy, as scikit-learn), Lloyd iterations until the labels stop changing or the
    centers move less than tol (relative to the mean per-feature variance of X, as scikit-learn), n_init
    restarts; the restart with the lowest inertia is returned. Deterministic for a given random_state.
    """
    n_init = check_int("n_init", n_init, 1)
    max_iter = check_int("max_iter", max_iter, 1)
    if isinstance(tol, bool) or not isinstance(tol, Real) or not np.isfinite(tol) or tol < 0:
        raise CnnvisError(f"tol must be a finite number >= 0, got {tol!r}")
    seed = check_random_state(random_state)
    dev, m = prepare(X, device, "X")
    n_points = (m.array if dev == "cpu" else m.tensor).shape[0]
    k = check_int("n_clusters", n_clusters, 1, n_points)
    if dev == "cpu":
        if not np.isfinite(m.array).all():
            raise DataError("X contains NaN or infinity")
        labels, centers, inertia, n_iter = _core.kmeans(m.array, k, n_init, max_iter, float(tol), seed)
    else:
        if not m.all_finite():
            raise DataError("X contains NaN or infinity")
        n, d = m.tensor.shape
        labels, centers, inertia, n_iter = _core.kmeans_cuda(m.ptr, m.dtype, n, d, k, n_init, max_iter, float(tol), seed)
    return KMeansResult(labels, centers, float(inertia), int(n_iter))

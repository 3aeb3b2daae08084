"""Pieces of the compiled core for tests only (``_core._testing``): scikit-learn's normalisation helpers,
the randomized SVD and the matrix backend's primitives (``first_pass``, ``power_pass``, ``project``) on
small matrices, host or CUDA (a CUDA array runs the CUDA backend), with dense float64 results; and the
switch between the CPU paths of the SIMD kernels. Nothing in cnnvis calls these; the algorithms never
form the normalised matrix (the core applies the normalisation inside its passes over the input)."""
from __future__ import annotations

import numpy as np

from cnnvis._core import _testing as _core_testing
from cnnvis.compute._arrays import DeviceMatrix, host_matrix, is_cuda_array
from cnnvis.compute._errors import calling_core

__all__ = ["bistochastic_normalize", "cpu_capabilities", "first_pass", "log_normalize", "power_pass", "project",
           "randomized_svd", "resolve_cpu_capability", "scale_normalize", "set_cpu_capability", "svd_options"]


def cpu_capabilities() -> list:
    """The CPU paths of the SIMD kernels this machine runs, narrowest first ('default', 'avx2', 'avx512')."""
    return list(_core_testing.cpu_capabilities())


def set_cpu_capability(name: str) -> None:
    """Switch every SIMD kernel of this process to path `name` (the public switch is the environment
    variable CNNVIS_CPU_CAPABILITY, read when the core loads)."""
    _core_testing.set_cpu_capability(name)


def resolve_cpu_capability(requested: str, widest: str) -> tuple:
    """(path, warning) that CNNVIS_CPU_CAPABILITY=requested gives on a CPU whose widest path is `widest`."""
    return tuple(_core_testing.resolve_cpu_capability(requested, widest))


def _backend_call(name, matrix, *args, **kwargs):
    """_testing.<name> on a host matrix (float32/float64 kept), or <name>_cuda on a CUDA array."""
    if is_cuda_array(matrix):
        m = DeviceMatrix.of(matrix, "matrix")
        return getattr(_core_testing, name + "_cuda")(*m.args(), *args, **kwargs)
    return getattr(_core_testing, name)(host_matrix(matrix, "matrix"), *args, **kwargs)


def _vec(v):
    return None if v is None else np.ascontiguousarray(v, dtype=np.float64)


def first_pass(A) -> tuple:
    """The backend's first pass over A: (min, all finite, row sums, column sums)."""
    return _backend_call("first_pass", A)


def power_pass(A, x, *, dr=None, dc=None, p=None, q=None, want_z=True) -> tuple:
    """One power pass of the SVD operator M = diag(dr)·(A + p 1ᵀ + 1 qᵀ)·diag(dc) (absent terms: ones,
    zeros): (M x, Mᵀ M x or None), float64, for x (cols, l)."""
    return _backend_call("power_pass", A, _vec(x), _vec(dr), _vec(dc), _vec(p), _vec(q), bool(want_z))


def project(A, x, y) -> tuple:
    """(A x, Aᵀ y) with the original A, float64, for x (cols, c) and y (rows, c)."""
    return _backend_call("project", A, _vec(x), _vec(y))

_SVD = _core_testing.SvdOptions()


def _host64(x):
    return np.ascontiguousarray(host_matrix(x, "matrix"), dtype=np.float64)


def scale_normalize(X):
    """scikit-learn's ``_scale_normalize``: (normalised, row factors, column factors), float64. Rows or
    columns that sum to zero get factor 0 (scikit-learn divides by zero there)."""
    with calling_core("matrix"):
        return _core_testing.scale_normalize(_host64(X))


def bistochastic_normalize(X, max_iter=1000, tol=1e-5):
    """scikit-learn's ``_bistochastic_normalize``: the doubly scaled matrix (rows summing to sqrt(n/m),
    columns to sqrt(m/n)), float64."""
    with calling_core("matrix"):
        return _core_testing.bistochastic_normalize(_host64(X), int(max_iter), float(tol))[0]


def log_normalize(X):
    """scikit-learn's ``_log_normalize``: the double-centred log of X shifted to a minimum of 1."""
    with calling_core("matrix"):
        return _core_testing.log_normalize(_host64(X))


def svd_options(**fields) -> "_core_testing.SvdOptions":
    """An SvdOptions with the core's defaults except `fields` (k, n_oversamples, min_iter, max_iter, tol,
    seed)."""
    opt = _core_testing.SvdOptions()
    for name, value in fields.items():
        setattr(opt, name, value)
    return opt


def randomized_svd(X, n_components, *, n_oversamples=_SVD.n_oversamples, min_iter=_SVD.min_iter,
                   max_iter=_SVD.max_iter, tol=_SVD.tol, random_state=_SVD.seed, dr=None, dc=None, p=None, q=None):
    """(u (m, k), s (k,), v (n, k)) of the core's randomized SVD of diag(dr)·(X + p 1ᵀ + 1 qᵀ)·diag(dc)
    (absent terms: ones, zeros; plain X by default), X on the host or a CUDA array."""
    opt = svd_options(k=int(n_components), n_oversamples=int(n_oversamples), min_iter=int(min_iter),
                      max_iter=int(max_iter), tol=float(tol), seed=int(random_state))
    u, s, v, _ = _backend_call("randomized_svd", X, opt, _vec(dr), _vec(dc), _vec(p), _vec(q))
    return u, s, v

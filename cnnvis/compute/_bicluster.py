"""Spectral co-/biclustering on the compiled core: the device dispatch and scikit-learn's helpers.

The normalisation helpers mirror scikit-learn's private ``_scale_normalize``, ``_bistochastic_normalize``
and ``_log_normalize`` (dense float64 results; for tests and small matrices); the algorithms never form
the normalised matrix, the core applies the normalisation inside its passes over the input.
"""
from __future__ import annotations

import numpy as np

from cnnvis import _core
from cnnvis.compute._kmeans import HostMatrix, prepare
from cnnvis.errors import CnnvisError, DataError

__all__ = ["METHODS", "cocluster", "bicluster", "scale_normalize", "bistochastic_normalize", "log_normalize",
           "randomized_svd"]

METHODS = {"scale": 0, "bistochastic": 1, "log": 2}

# k-means restarts inside the spectral methods, run in parallel; scikit-learn uses 10 sequential ones.
KMEANS_N_INIT = 4
# Randomized SVD: oversampling as scikit-learn (the core widens the subspace to whole vectors), at least
# MIN_POWER_ITER power iterations, at most scikit-learn's count (-1: 7 or 4), stopping as soon as every
# wanted Ritz pair of M^T M has a residual below SVD_TOL·σ1² (an angle error of about SVD_TOL / gap,
# plenty for k-means on the embedding; planted data reach it after one iteration).
N_OVERSAMPLES = 10
MIN_POWER_ITER = 1
MAX_POWER_ITER = -1
SVD_TOL = 1e-3


# The CUDA products keep at most this many subspace columns (n_sv + oversampling, rounded up to 8).
CUDA_MAX_SUBSPACE = 64


def _finite_error(exc: ValueError, name: str):
    """The core's ValueErrors as cnnvis errors (the commands print those as one line)."""
    if "NaN or infinity" in str(exc):
        return DataError(f"{name} contains NaN or infinity")
    return CnnvisError(str(exc))


def cocluster(matrix, n_clusters: int, seed: int, device: str):
    """(row_labels, column_labels) of Dhillon's co-clustering; arguments already validated."""
    dev, m = prepare(matrix, device, "matrix")
    extra = (seed, KMEANS_N_INIT, N_OVERSAMPLES, MIN_POWER_ITER, MAX_POWER_ITER, SVD_TOL)
    try:
        if dev == "cpu":
            rows, cols, _ = _core.spectral_cocluster(m.array, n_clusters, *extra)
        else:
            # NaN and infinity are caught by the core's first pass over the matrix
            r, c = m.tensor.shape
            rows, cols, _ = _core.spectral_cocluster_cuda(m.ptr, m.dtype, r, c, n_clusters, *extra)
    except ValueError as exc:
        raise _finite_error(exc, "matrix") from None
    return rows, cols


def bicluster(matrix, method: str, n_row: int, n_col: int, n_components: int, n_best: int, seed: int,
              device: str):
    """(row_labels, column_labels) of Kluger's biclustering; arguments already validated."""
    dev, m = prepare(matrix, device, "matrix")
    n_sv = n_components + (method != "log")
    if dev == "cuda" and n_sv + N_OVERSAMPLES > CUDA_MAX_SUBSPACE:
        top = CUDA_MAX_SUBSPACE - N_OVERSAMPLES - (method != "log")
        raise CnnvisError(f"n_components must be in [1, {top}] on device='cuda' with method={method!r}, "
                          f"got {n_components}")
    args = (METHODS[method], n_row, n_col, n_components, n_best, seed, KMEANS_N_INIT, N_OVERSAMPLES,
            MIN_POWER_ITER, MAX_POWER_ITER, SVD_TOL)
    try:
        if dev == "cpu":
            rows, cols, _ = _core.spectral_bicluster(m.array, *args)
        else:
            # NaN and infinity are caught by the core's first pass over the matrix
            r, c = m.tensor.shape
            rows, cols, _ = _core.spectral_bicluster_cuda(m.ptr, m.dtype, r, c, *args)
    except ValueError as exc:
        raise _finite_error(exc, "matrix") from None
    return rows, cols


def matrix_shape(matrix):
    shape = getattr(matrix, "shape", None)
    if shape is None:
        shape = np.shape(matrix)
    return tuple(int(s) for s in shape)


def _host64(x, name="matrix"):
    return np.ascontiguousarray(HostMatrix(x, name).array, dtype=np.float64)


def _call(fn, *args):
    try:
        return fn(*args)
    except ValueError as exc:
        raise _finite_error(exc, "matrix") from None


def scale_normalize(X):
    """scikit-learn's ``_scale_normalize``: (normalised, row factors, column factors), float64. Rows or
    columns that sum to zero get factor 0 (scikit-learn divides by zero there)."""
    return _call(_core.scale_normalize, _host64(X))


def bistochastic_normalize(X, max_iter=1000, tol=1e-5):
    """scikit-learn's ``_bistochastic_normalize``: the doubly scaled matrix (rows summing to sqrt(n/m),
    columns to sqrt(m/n)), float64."""
    return _call(_core.bistochastic_normalize, _host64(X), int(max_iter), float(tol))[0]


def log_normalize(X):
    """scikit-learn's ``_log_normalize``: the double-centred log of X shifted to a minimum of 1."""
    return _call(_core.log_normalize, _host64(X))


def randomized_svd(X, n_components, *, n_oversamples=N_OVERSAMPLES, min_iter=MIN_POWER_ITER, max_iter=7,
                   tol=SVD_TOL, random_state=0):
    """(u (m, k), s (k,), v (n, k)) of the core's randomized SVD of a host matrix."""
    a = HostMatrix(X, "matrix").array
    u, s, v, _ = _core.randomized_svd(a, int(n_components), int(n_oversamples), int(min_iter), int(max_iter),
                                      float(tol), int(random_state))
    return u, s, v

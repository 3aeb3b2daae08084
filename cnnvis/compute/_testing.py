"""Pieces of the clustering kernels for tests only (``_core._testing``): scikit-learn's normalisation
helpers and the randomized SVD, on small host matrices, with dense float64 results. Nothing in cnnvis
calls these; the algorithms never form the normalised matrix (the core applies the normalisation inside
its passes over the input)."""
from __future__ import annotations

import numpy as np

from cnnvis._core import _testing as _core_testing
from cnnvis.compute._arrays import host_matrix
from cnnvis.compute._errors import calling_core

__all__ = ["bistochastic_normalize", "log_normalize", "randomized_svd", "scale_normalize", "svd_options"]

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
                   max_iter=_SVD.max_iter, tol=_SVD.tol, random_state=_SVD.seed):
    """(u (m, k), s (k,), v (n, k)) of the core's randomized SVD of a host matrix."""
    opt = svd_options(k=int(n_components), n_oversamples=int(n_oversamples), min_iter=int(min_iter),
                      max_iter=int(max_iter), tol=float(tol), seed=int(random_state))
    u, s, v, _ = _core_testing.randomized_svd(host_matrix(X, "matrix"), opt)
    return u, s, v

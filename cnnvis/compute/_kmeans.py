"""k-means on the compiled core: k-means++ seeding, Lloyd iterations, the best of n_init restarts.

Inputs as cnnvis.compute._arrays describes (numpy, torch CPU/CUDA, CUDA arrays; float32/float64 used as
they are, other real dtypes cast to float64). Arrays on the GPU stay there (device="auto" picks CUDA).
The defaults are the core's (``_core.KMeansOptions``, csrc/cluster/kmeans.hpp).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnvis import _core
from cnnvis.compute._arrays import call_core, prepare_matrix
from cnnvis.compute._errors import calling_core
from cnnvis._params import SEED, Interval, validate

__all__ = ["KMeansResult", "kmeans"]

_DEFAULTS = _core.KMeansOptions()

_PARAMETERS = {
    "n_init": Interval(1),
    "max_iter": Interval(1),
    "tol": Interval(0, integer=False, wording="a finite number >= 0"),
    "random_state": SEED,
}
_DATA_PARAMETERS = {"n_clusters": Interval(1, "n_points")}


@dataclass(frozen=True)
class KMeansResult:
    """labels (N,) int64 in [0, k); centers (k, D) float64; inertia: the sum of squared distances of the
    points to their centers; n_iter: Lloyd iterations of the best restart."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int


def kmeans(X, n_clusters, *, n_init=_DEFAULTS.n_init, max_iter=_DEFAULTS.max_iter, tol=_DEFAULTS.tol,
           random_state=_DEFAULTS.seed, device="auto") -> KMeansResult:
    """Cluster the N rows of X (N, D) into n_clusters groups.

    k-means++ seeding (greedy, as scikit-learn), Lloyd iterations until the labels stop changing or the
    centers move less than tol (relative to the mean per-feature variance of X, as scikit-learn), n_init
    restarts; the restart with the lowest inertia is returned. Deterministic for a given random_state.
    """
    p = validate(_PARAMETERS, dict(n_init=n_init, max_iter=max_iter, tol=tol, random_state=random_state))
    dev, m = prepare_matrix(X, device, "X")
    p |= validate(_DATA_PARAMETERS, dict(n_clusters=n_clusters), limits=dict(n_points=m.shape[0]))
    opt = _core.KMeansOptions()
    opt.k, opt.n_init, opt.max_iter, opt.tol, opt.seed = (p["n_clusters"], p["n_init"], p["max_iter"], p["tol"],
                                                          p["random_state"])
    with calling_core("X"):  # NaN and infinity are caught by the core's variance pass
        labels, centers, inertia, n_iter = call_core("kmeans", dev, m, opt)
    return KMeansResult(labels, centers, float(inertia), int(n_iter))

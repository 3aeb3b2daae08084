"""Spectral co-clustering (Dhillon 2001) and spectral biclustering (Kluger et al. 2003) on the compiled core.

Parameters are checked here against declared tables (``cnnvis._params``), then the data-dependent limits, then
the input is prepared (``_arrays``) and handed to the core with its option struct. The defaults of
everything not in the public signature (SVD oversampling, power iterations and tolerance, the k-means on
the embedding) are the core's own (``_core.SpectralOptions``, csrc/cluster/bicluster.hpp); so are the
public ones, which the signatures read from the bound structs.
"""
from __future__ import annotations

from numbers import Integral

from cnnvis import _core
from cnnvis.compute._arrays import call_core, check_matrix_shape, prepare_matrix, shape_of
from cnnvis.compute._errors import calling_core
from cnnvis._params import SEED, Interval, Options, validate
from cnnvis.errors import CnnvisError

__all__ = ["METHODS", "spectral_bicluster", "spectral_cocluster"]

METHODS = tuple(_core.BiclusterMethod.__members__)  # ('scale', 'bistochastic', 'log')
_BI = _core.BiclusterOptions()
_SPECTRAL = _BI.spectral

# The CUDA products keep at most this many subspace columns (n_sv + oversampling); the core's constant.
CUDA_MAX_SUBSPACE = _core.CUDA_MAX_SUBSPACE

_COCLUSTER_PARAMETERS = {"random_state": SEED}
_BICLUSTER_PARAMETERS = {
    "method": Options(METHODS),
    "n_components": Interval(1),
    "n_best": Interval(1, "n_components"),
    "random_state": SEED,
}


def _spectral_options(seed: int) -> "_core.SpectralOptions":
    opt = _core.SpectralOptions()
    opt.seed = seed
    return opt


def _matrix_shape(matrix) -> tuple:
    shape = shape_of(matrix)
    check_matrix_shape(shape, "matrix")
    return shape


def spectral_cocluster(matrix, n_clusters, *, random_state=_SPECTRAL.seed, device="auto"):
    """Co-cluster the rows and columns of a (rows, cols) matrix into n_clusters biclusters.

    Rows and columns are the two sides of a bipartite graph weighted by the entries (shifted so the
    minimum is 0, as scikit-learn's make_nonnegative); the graph's normalised cut is relaxed to the
    singular vectors 2..1+ceil(log2 n_clusters) of D_r^-1/2 A D_c^-1/2, whose scaled rows are clustered
    by k-means. Returns (row_labels (rows,), column_labels (cols,)), int64 in [0, n_clusters).
    n_clusters=1 puts everything in one bicluster.
    """
    p = validate(_COCLUSTER_PARAMETERS, dict(random_state=random_state))
    n_rows, _ = _matrix_shape(matrix)
    p |= validate({"n_clusters": Interval(1, "n_rows")}, dict(n_clusters=n_clusters), limits=dict(n_rows=n_rows))
    opt = _core.CoclusterOptions()
    opt.n_clusters, opt.spectral = p["n_clusters"], _spectral_options(p["random_state"])
    dev, m = prepare_matrix(matrix, device, "matrix")
    with calling_core("matrix"):  # NaN and infinity are caught by the core's first pass over the matrix
        rows, cols, _ = call_core("spectral_cocluster", dev, m, opt)
    return rows, cols


def _split_clusters(n_clusters, n_rows: int, n_cols: int) -> tuple:
    """(n_row_clusters, n_column_clusters) of an int or a pair, checked against the matrix's shape."""
    limits = dict(n_rows=n_rows, n_cols=n_cols, n_min=min(n_rows, n_cols))
    if isinstance(n_clusters, Integral) and not isinstance(n_clusters, bool):
        k = validate({"n_clusters": Interval(1, "n_min")}, dict(n_clusters=n_clusters), limits=limits)["n_clusters"]
        return k, k
    try:
        r, c = n_clusters
    except (TypeError, ValueError):
        raise CnnvisError("n_clusters must be an integer or a pair (n_row_clusters, n_column_clusters), "
                          f"got {n_clusters!r}") from None
    p = validate({"n_row_clusters": Interval(1, "n_rows"), "n_column_clusters": Interval(1, "n_cols")},
                 dict(n_row_clusters=r, n_column_clusters=c), limits=limits)
    return p["n_row_clusters"], p["n_column_clusters"]


def spectral_bicluster(matrix, n_clusters, *, method=_BI.method.name, n_components=_BI.n_components,
                       n_best=_BI.n_best, random_state=_SPECTRAL.seed, device="auto"):
    """Checkerboard biclustering of a (rows, cols) matrix.

    n_clusters: an int (as many row as column clusters) or a pair (n_row_clusters, n_column_clusters).
    method: the normalisation, 'bistochastic', 'scale' or 'log'. Of the first n_components singular
    vectors (after the trivial one for 'scale' and 'bistochastic'), the n_best best approximated by
    piecewise-constant vectors are kept; rows are clustered by their projection on the best right vectors
    and columns by theirs on the best left vectors. Returns (row_labels (rows,), column_labels (cols,)),
    int64.
    """
    p = validate(_BICLUSTER_PARAMETERS, dict(method=method, n_components=n_components, n_best=n_best,
                                             random_state=random_state))
    n_rows, n_cols = _matrix_shape(matrix)
    n_row, n_col = _split_clusters(n_clusters, n_rows, n_cols)
    opt = _core.BiclusterOptions()
    opt.method = _core.BiclusterMethod.__members__[p["method"]]
    opt.n_row_clusters, opt.n_col_clusters = n_row, n_col
    opt.n_components, opt.n_best = p["n_components"], p["n_best"]
    opt.spectral = _spectral_options(p["random_state"])
    dev, m = prepare_matrix(matrix, device, "matrix")
    if dev == "cuda":  # the first singular pair (discarded unless method='log') counts too
        top = CUDA_MAX_SUBSPACE - opt.spectral.n_oversamples - (p["method"] != "log")
        if p["n_components"] > top:
            raise CnnvisError(f"n_components must be in [1, {top}] on device='cuda' with method={method!r}, "
                              f"got {n_components}")
    with calling_core("matrix"):  # NaN and infinity are caught by the core's first pass over the matrix
        rows, cols, _ = call_core("spectral_bicluster", dev, m, opt)
    return rows, cols

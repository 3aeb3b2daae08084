"""Spectral co-clustering (Dhillon 2001) and spectral biclustering (Kluger et al. 2003).

The algorithms as scikit-learn's ``SpectralCoclustering`` and ``SpectralBiclustering`` define them, run by
the compiled core on the CPU or, for inputs on the GPU (or device="cuda"), with CUDA. Both return
``(row_labels, column_labels)``, int64 arrays. Inputs: numpy arrays, torch tensors, CUDA arrays; float32
and float64 are used as they are, other real dtypes are cast to float64.
"""
from __future__ import annotations

from numbers import Integral

from cnnvis.compute import _bicluster
from cnnvis.compute._kmeans import check_int, check_random_state
from cnnvis.errors import CnnvisError, DataError

__all__ = ["spectral_cocluster", "spectral_bicluster"]

_METHODS = tuple(_bicluster.METHODS)


def _shape(matrix):
    shape = _bicluster.matrix_shape(matrix)
    if len(shape) != 2:
        raise DataError(f"matrix must be 2-D (rows, columns), got shape {shape}")
    if shape[0] < 1 or shape[1] < 1:
        raise DataError(f"matrix must have at least one row and one column, got shape {shape}")
    return shape


def spectral_cocluster(matrix, n_clusters, *, random_state=0, device="auto"):
    """Co-cluster the rows and columns of a (rows, cols) matrix into n_clusters biclusters.

    Rows and columns are the two sides of a bipartite graph weighted by the entries (shifted so the
    minimum is 0, as scikit-learn's make_nonnegative); the graph's normalised cut is relaxed to the
    singular vectors 2..1+ceil(log2 n_clusters) of D_r^-1/2 A D_c^-1/2, whose scaled rows are clustered
    by k-means. Returns (row_labels (rows,), column_labels (cols,)), int64 in [0, n_clusters).
    n_clusters=1 puts everything in one bicluster.
    """
    seed = check_random_state(random_state)
    n_rows, _ = _shape(matrix)
    k = check_int("n_clusters", n_clusters, 1, n_rows)
    return _bicluster.cocluster(matrix, k, seed, device)


def _split_clusters(n_clusters, n_rows, n_cols):
    if isinstance(n_clusters, Integral) and not isinstance(n_clusters, bool):
        return (check_int("n_clusters", n_clusters, 1, min(n_rows, n_cols)),) * 2
    try:
        r, c = n_clusters
    except (TypeError, ValueError):
        raise CnnvisError(
            "n_clusters must be an integer or a pair (n_row_clusters, n_column_clusters), "
            f"got {n_clusters!r}"
        ) from None
    return check_int("n_row_clusters", r, 1, n_rows), check_int("n_column_clusters", c, 1, n_cols)


def spectral_bicluster(matrix, n_clusters, *, method="bistochastic", n_components=6, n_best=3,
                       random_state=0, device="auto"):
    """Checkerboard biclustering of a (rows, cols) matrix.

    n_clusters: an int (as many row as column clusters) or a pair (n_row_clusters, n_column_clusters).
    method: the normalisation, 'bistochastic', 'scale' or 'log'. Of the first n_components singular
    vectors (after the trivial one for 'scale' and 'bistochastic'), the n_best best approximated by
    piecewise-constant vectors are kept; rows are clustered by their projection on the best right vectors
    and columns by theirs on the best left vectors. Returns (row_labels (rows,), column_labels (cols,)),
    int64.
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise CnnvisError(f"method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}")
    n_components = check_int("n_components", n_components, 1)
    n_best = check_int("n_best", n_best, 1, n_components)
    seed = check_random_state(random_state)
    n_rows, n_cols = _shape(matrix)
    n_row, n_col = _split_clusters(n_clusters, n_rows, n_cols)
    return _bicluster.bicluster(matrix, method, n_row, n_col, n_components, n_best, seed, device)

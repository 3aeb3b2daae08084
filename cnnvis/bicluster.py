"""Spectral co-clustering (Dhillon 2001) and spectral biclustering (Kluger et al. 2003).

What is computed (by the compiled core on the CPU or, for inputs on the GPU or device="cuda", with CUDA):

- ``spectral_cocluster``: A (shifted to be non-negative) is scaled to D_r^-1/2 A D_c^-1/2; its singular
  vectors 2 .. 1 + ceil(log2 k) give an embedding of rows and columns, clustered together by k-means.
- ``spectral_bicluster``: A is normalised ("scale" as above, "bistochastic" by Sinkhorn-Knopp passes to the
  fixed point scikit-learn iterates towards, or "log": double-centred log(A + shift)); of its first
  n_components singular vectors (after the trivial one for scale/bistochastic), the n_best best fitted
  by a piecewise-constant vector are kept, A is projected on them, and rows and columns are clustered
  by k-means.

The steps are scikit-learn's ``SpectralCoclustering`` / ``SpectralBiclustering``; these differ from it:

- the piecewise-constant fit that ranks the singular vectors (``_fit_best_piecewise``) is a 1-D k-means
  seeded at the k quantiles of the sorted vector, at most 300 Lloyd iterations (stopping when the
  partition repeats), not scikit-learn's randomly started KMeans;
- the randomized SVD stops early once the wanted Ritz pairs have converged (scikit-learn always runs
  its n_iter power iterations), and the normalised matrix is never formed;
- the k-means runs 4 restarts (scikit-learn: 10); rows or columns summing to zero get factor 0 instead
  of NaN.

Labels therefore match scikit-learn's up to consensus, not bit for bit (tests/test_bicluster.py holds
the comparison). Both functions return ``(row_labels, column_labels)``, int64 arrays. Inputs: numpy
arrays, torch tensors, CUDA arrays; float32 and float64 are used as they are, other real dtypes are cast
to float64. The public face of cnnvis.compute._bicluster, which checks the parameters.
"""
from cnnvis.compute._bicluster import spectral_bicluster, spectral_cocluster

__all__ = ["spectral_cocluster", "spectral_bicluster"]

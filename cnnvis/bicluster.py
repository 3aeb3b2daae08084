"""Spectral co-clustering (Dhillon 2001) and spectral biclustering (Kluger et al. 2003).

The algorithms as scikit-learn's ``SpectralCoclustering`` and ``SpectralBiclustering`` define them, run by
the compiled core on the CPU or, for inputs on the GPU (or device="cuda"), with CUDA. Both return
``(row_labels, column_labels)``, int64 arrays. Inputs: numpy arrays, torch tensors, CUDA arrays; float32
and float64 are used as they are, other real dtypes are cast to float64. The public face of
cnnvis.compute._bicluster, which checks the parameters.
"""
from cnnvis.compute._bicluster import spectral_bicluster, spectral_cocluster

__all__ = ["spectral_cocluster", "spectral_bicluster"]

"""The one face of cnnvis._core: parameter checks (cnnvis._params), array interchange, device choice and the CUDA
stream policy (_arrays), the mapping of the core's errors (_errors), and one module per kernel family.
``cnnvis.stats`` and ``cnnvis.bicluster`` re-export the statistics and the spectral methods."""
from cnnvis.compute._arrays import (cpu_capability, cuda_available, cuda_status, is_cuda_array, resolve_device,
                                    to_numpy)
from cnnvis.compute._bicluster import spectral_bicluster, spectral_cocluster
from cnnvis.compute._kmeans import KMeansResult, kmeans
from cnnvis.compute._stats import ClassStatsAccumulator, class_statistics
from cnnvis.compute._types import ClassStatistics

__all__ = ["ClassStatistics", "ClassStatsAccumulator", "KMeansResult", "class_statistics", "cpu_capability",
           "cuda_available", "cuda_status", "is_cuda_array", "kmeans", "resolve_device", "spectral_bicluster",
           "spectral_cocluster", "to_numpy"]

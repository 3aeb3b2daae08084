"""The Python face of cnnvis._core: validation, device choice, array interchange."""
from cnnvis.compute._backend import cuda_available, cuda_status, is_cuda_array, resolve_device, to_numpy
from cnnvis.compute._kmeans import KMeansResult, kmeans

__all__ = ["KMeansResult", "cuda_available", "cuda_status", "is_cuda_array", "kmeans", "resolve_device",
           "to_numpy"]

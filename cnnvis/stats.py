"""Per-class activation statistics of CNN neurons (CNNVis), computed by one fused pass in cnnvis._core.

For activations of shape (N, C) or (N, C, *spatial), with r[n, c] the spatial mean and m[n, c] the spatial
max of image n's activation of neuron c, ``class_statistics`` returns per class k and neuron c the image
count, the mean and population std of r, the max of m and the fraction of images with m > 0.
``ClassStatsAccumulator`` streams the same over batches (``update``), combines partial results (``merge``)
and returns them (``result``). Inputs: numpy arrays or torch tensors (CPU or CUDA), any float dtype, any
strides; see cnnvis.compute._stats for the dtype and device policy.
"""
from cnnvis.compute._stats import ClassStatistics, ClassStatsAccumulator, class_statistics

__all__ = ["ClassStatistics", "ClassStatsAccumulator", "class_statistics"]

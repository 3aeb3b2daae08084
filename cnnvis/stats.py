"""Per-class activation statistics of CNN neurons (CNNVis), computed by one fused pass in cnnvis._core.

For activations of shape (N, C) or (N, C, *spatial), with r[n, c] the spatial mean and m[n, c] the spatial
max of image n's activation of neuron c, ``class_statistics`` returns per class k and neuron c the image
count, the mean and population std of r, the max of m and the fraction of images with m > 0.
``ClassStatsAccumulator`` streams the same over batches (``update``), combines partial results (``merge``)
and returns them (``result``). Inputs: numpy arrays or torch tensors (CPU or CUDA), any float dtype, any
strides. The public face of cnnvis.compute._stats, which checks the inputs (dtype and device policy there).
"""
from cnnvis.compute import ClassStatistics, ClassStatsAccumulator, class_statistics

__all__ = ["ClassStatistics", "ClassStatsAccumulator", "class_statistics"]

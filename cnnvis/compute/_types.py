"""Result types of the compute kernels (plain frozen dataclasses of numpy arrays)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClassStatistics"]


@dataclass(frozen=True)
class ClassStatistics:
    """Per-class activation statistics of C neurons over K classes.

    With r[n,c] the spatial mean and m[n,c] the spatial max of image n's activation of neuron c:
    count (K,) int64: images per class; mean, std (K, C) float64: mean and population std of r over the
    images of class k; max (K, C) float64: max of m; active (K, C) float64: fraction of the images of
    class k with m > 0. A class with no images has count 0 and NaN elsewhere.
    """

    count: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    max: np.ndarray
    active: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.count.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.mean.shape[1])

    def overall_active(self) -> np.ndarray:
        """(C,) fraction of all images with m > 0 (empty classes ignored)."""
        w = self.count.astype(np.float64)
        a = np.where(w[:, None] > 0, self.active, 0.0)
        return (w[:, None] * a).sum(0) / max(w.sum(), 1.0)

"""The view's one palette (RGBA float32 0..1, light background). Each hue means one thing in a view
(colour-blind safe: Okabe & Ito 2008's set):

- blue / vermilion: positive / negative weight (edges, weight mode);
- purple: gradient magnitude (edges, gradient mode); bluish green: relative weight change
  (edges, change mode);
- yellow: importance (the importance facet's bars);
- greys (white -> near black): activation (the matrix facet's cells);
- cluster fills carry no hue: a warm grey, darker for a more important cluster; the dead cluster is
  white with a dark border; dark ink marks hover, focus and selection;
- a diff file's view (cnnvis.app.diff_view) frames each neuron's patch by its status against model B:
  green stable, red drifted, mid grey unmatched; violet outlines the clusters that split or merged in B.
The shaders and the viewer's legends read these constants (cnnvis.gl draws what they say)."""
from __future__ import annotations

import numpy as np

__all__ = ["BACKGROUND", "COLUMN_FILL", "COLUMN_BORDER", "DEAD_FILL", "DEAD_BORDER", "POSITIVE", "NEGATIVE",
           "GRADIENT", "CHANGE", "IMPORTANCE", "INK", "MATRIX_LOW", "MATRIX_HIGH", "CLUSTER_LOW", "CLUSTER_HIGH",
           "STABLE", "DRIFTED", "UNMATCHED", "SPLIT_MERGE", "cluster_fill", "cluster_border"]

BACKGROUND = np.array([0.985, 0.985, 0.98, 1.0], np.float32)
COLUMN_FILL = np.array([0.94, 0.95, 0.965, 1.0], np.float32)
COLUMN_BORDER = np.array([0.82, 0.84, 0.87, 1.0], np.float32)
DEAD_FILL = np.array([1.0, 1.0, 1.0, 1.0], np.float32)
DEAD_BORDER = np.array([0.30, 0.30, 0.32, 1.0], np.float32)
POSITIVE = np.array([0.0, 0.447, 0.698, 0.55], np.float32)   # Okabe-Ito blue
NEGATIVE = np.array([0.835, 0.369, 0.0, 0.55], np.float32)   # Okabe-Ito vermilion
GRADIENT = np.array([0.70, 0.36, 0.66, 1.0], np.float32)     # purple (Okabe-Ito reddish purple, deeper)
CHANGE = np.array([0.0, 0.62, 0.45, 1.0], np.float32)        # Okabe-Ito bluish green
IMPORTANCE = np.array([0.941, 0.894, 0.259, 1.0], np.float32)  # Okabe-Ito yellow
INK = np.array([0.10, 0.10, 0.13, 1.0], np.float32)           # hover ring, focus, selected bundles
MATRIX_LOW = np.array([0.99, 0.99, 0.99, 1.0], np.float32)
MATRIX_HIGH = np.array([0.12, 0.12, 0.14, 1.0], np.float32)
CLUSTER_LOW = np.array([0.93, 0.925, 0.915, 1.0], np.float32)   # fill of the least important cluster
CLUSTER_HIGH = np.array([0.70, 0.69, 0.67, 1.0], np.float32)    # and of the most important
STABLE = np.array([0.35, 0.68, 0.22, 1.0], np.float32)       # green: a neuron with a partner in B (r >= threshold)
DRIFTED = np.array([0.86, 0.10, 0.12, 1.0], np.float32)      # red: partner in B below the threshold
UNMATCHED = np.array([0.50, 0.50, 0.52, 1.0], np.float32)    # grey: no partner in B (B is narrower)
SPLIT_MERGE = np.array([0.42, 0.30, 0.85, 1.0], np.float32)  # violet: a cluster that split or merged in B
_BORDER = np.array([0.55, 0.56, 0.58, 1.0], np.float32)


def cluster_fill(i: int, importance: float) -> np.ndarray:
    """Fill of a live cluster: warm grey, darker for a more important one (i, its id, is not a colour:
    hues are kept for the edges, the importance bars and nothing else)."""
    t = float(np.clip(importance, 0, 1))
    return ((1 - t) * CLUSTER_LOW + t * CLUSTER_HIGH).astype(np.float32)


def cluster_border(i: int) -> np.ndarray:
    return _BORDER.copy()

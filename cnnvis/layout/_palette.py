"""Colours for a light background (RGBA float32 0..1): muted pastel clusters, blue positive and vermilion
negative connections (distinguishable under the common colour-vision deficiencies, Okabe & Ito 2008)."""
from __future__ import annotations

import numpy as np

__all__ = ["BACKGROUND", "COLUMN_FILL", "COLUMN_BORDER", "DEAD_FILL", "POSITIVE", "NEGATIVE", "cluster_fill",
           "cluster_border"]

BACKGROUND = np.array([0.985, 0.985, 0.98, 1.0], np.float32)
COLUMN_FILL = np.array([0.94, 0.95, 0.965, 1.0], np.float32)
COLUMN_BORDER = np.array([0.82, 0.84, 0.87, 1.0], np.float32)
DEAD_FILL = np.array([0.86, 0.86, 0.86, 1.0], np.float32)
POSITIVE = np.array([0.0, 0.447, 0.698, 0.55], np.float32)   # Okabe-Ito blue
NEGATIVE = np.array([0.835, 0.369, 0.0, 0.55], np.float32)   # Okabe-Ito vermilion
# Tableau 10, lightened towards white for fills
_HUES = np.array([[78, 121, 167], [242, 142, 43], [89, 161, 79], [225, 87, 89], [118, 183, 178],
                  [237, 201, 72], [176, 122, 161], [255, 157, 167], [156, 117, 95], [186, 176, 172]],
                 np.float32) / 255


def cluster_fill(i: int, importance: float) -> np.ndarray:
    """Fill of cluster rank i: its hue, more saturated for more important clusters."""
    t = 0.25 + 0.35 * float(np.clip(importance, 0, 1))
    rgb = (1 - t) * 1.0 + t * _HUES[i % len(_HUES)]
    return np.concatenate([rgb, [1.0]]).astype(np.float32)


def cluster_border(i: int) -> np.ndarray:
    return np.concatenate([0.75 * _HUES[i % len(_HUES)], [1.0]]).astype(np.float32)

"""Cubic Bezier control points for bundled connections.

Every curve of a bundle runs from its source rectangle's right edge to its target's left edge; the inner
two control points are pulled (by `strength`, 0 = straight curves) towards two points either side of the
bundle's middle, the centroid of its end points, so the curves of one bundle converge there (as in
hierarchical edge bundling, Holten 2006). The pull towards the middle is clamped to each curve's own
height range, so the curve's control points run monotonically in y and the curve never dips below (or
rises above) both its ends (a merged bundle's middle can lie far from some of its curves: without the
clamp they sagged into a U).
"""
from __future__ import annotations

import numpy as np

__all__ = ["bundle_curves"]


def bundle_curves(p0: np.ndarray, p3: np.ndarray, bundle: np.ndarray, strength: float = 0.75) -> np.ndarray:
    """(E, 4, 2) control points for curves from p0 (E, 2) to p3 (E, 2), grouped by bundle id (E,)."""
    E = p0.shape[0]
    ctrl = np.empty((E, 4, 2))
    if E == 0:
        return ctrl
    ids, inv = np.unique(bundle, return_inverse=True)
    ends = np.concatenate([p0, p3])
    both = np.concatenate([inv, inv])
    cnt = np.bincount(both, minlength=ids.size)[:, None]
    mid = np.stack([np.bincount(both, weights=ends[:, d], minlength=ids.size) for d in (0, 1)], 1) / cnt
    span = np.abs(p3[:, 0] - p0[:, 0])
    m = mid[inv].copy()
    m[:, 1] = np.clip(m[:, 1], np.minimum(p0[:, 1], p3[:, 1]), np.maximum(p0[:, 1], p3[:, 1]))
    straight1 = p0 + (p3 - p0) / 3
    straight2 = p0 + 2 * (p3 - p0) / 3
    left = m - np.stack([0.12 * span, np.zeros(E)], 1)
    right = m + np.stack([0.12 * span, np.zeros(E)], 1)
    ctrl[:, 0], ctrl[:, 3] = p0, p3
    ctrl[:, 1] = (1 - strength) * straight1 + strength * left
    ctrl[:, 2] = (1 - strength) * straight2 + strength * right
    return ctrl

"""Rectangle packing of learned-feature patches inside a cluster's rectangle.

Squares of relative sizes are packed by next-fit decreasing height (shelves, Coffman et al. 1980); the
largest scale at which they fit the box is found by bisection, so the patches fill the rectangle.
"""
from __future__ import annotations

import numpy as np

__all__ = ["shelf_pack", "pack_squares"]


def shelf_pack(sides: np.ndarray, width: float, gap: float):
    """Place squares (sides (n,), sorted or not) on shelves of the given width.

    Returns (x0 (n,), y0 (n,) measured downward from the top, total height); x0 is NaN for a square wider
    than the box.
    """
    order = np.argsort(-sides, kind="stable")
    x0, y0 = np.full(sides.size, np.nan), np.zeros(sides.size)
    x = y = shelf = 0.0
    for i in order:
        s = sides[i]
        if s > width:
            return x0, y0, np.inf
        if x > 0 and x + s > width:
            y += shelf + gap
            x = shelf = 0.0
        x0[i], y0[i] = x, y
        x += s + gap
        shelf = max(shelf, s)
    return x0, y0, y + shelf


def pack_squares(sizes, box, *, gap: float = 2.0, iters: int = 24) -> np.ndarray:
    """(n, 4) float64 boxes x0, y0, x1, y1 of squares with sides proportional to `sizes` packed without
    overlap inside `box` (x0, y0, x1, y1, y upward), as large as fits, centred."""
    sizes = np.asarray(sizes, np.float64)
    n = sizes.size
    if n == 0:
        return np.zeros((0, 4))
    bx0, by0, bx1, by1 = box
    w, h = bx1 - bx0, by1 - by0
    if w <= 0 or h <= 0:
        return np.zeros((0, 4))
    lo, hi = 0.0, min(w, h) / sizes.max()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        _, _, tot = shelf_pack(sizes * mid, w, gap)
        lo, hi = (mid, hi) if tot <= h else (lo, mid)
    sides = sizes * lo
    x, ytop, tot = shelf_pack(sides, w, gap)
    used_w = np.nanmax(x + sides) if n else 0.0
    ox, oy = bx0 + 0.5 * (w - used_w), by1 - 0.5 * (h - tot)
    out = np.empty((n, 4))
    out[:, 0] = ox + x
    out[:, 2] = out[:, 0] + sides
    out[:, 3] = oy - ytop
    out[:, 1] = out[:, 3] - sides
    return out

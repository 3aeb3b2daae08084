"""Rectangle packing of learned-feature patches inside a cluster's rectangle.

Squares of relative sizes are packed by next-fit decreasing height (shelves, Coffman et al. 1980); the
largest scale at which they fit the box is found by bisection, so the patches fill the rectangle.
"""
from __future__ import annotations

import numpy as np

__all__ = ["shelf_pack", "pack_squares"]


def shelf_pack(widths, heights, limit: float, gap: float = 0.0, order=None):
    """The one shelf packer (layout's squares, texture atlases, the glyph atlas): boxes placed left to
    right in `order` (default: as given) on shelves at most `limit` wide, a box starting a new shelf when
    it would cross the limit; boxes and shelves `gap` apart.

    Returns (x0 (n,), y0 (n,) measured downward from the top, total height); a box wider than the limit
    makes the total inf (it and the boxes after it keep x0 NaN).
    """
    widths, heights = np.asarray(widths), np.asarray(heights)
    order = range(widths.size) if order is None else order
    x0, y0 = np.full(widths.size, np.nan), np.zeros(widths.size)
    x = y = shelf = 0.0
    for i in order:
        w = widths[i]
        if w > limit:
            return x0, y0, np.inf
        if x > 0 and x + w > limit:
            y += shelf + gap
            x = shelf = 0.0
        x0[i], y0[i] = x, y
        x += w + gap
        shelf = max(shelf, heights[i])
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
        _, _, tot = _square_shelves(sizes * mid, w, gap)
        lo, hi = (mid, hi) if tot <= h else (lo, mid)
    sides = sizes * lo
    x, ytop, tot = _square_shelves(sides, w, gap)
    used_w = np.nanmax(x + sides) if n else 0.0
    ox, oy = bx0 + 0.5 * (w - used_w), by1 - 0.5 * (h - tot)
    out = np.empty((n, 4))
    out[:, 0] = ox + x
    out[:, 2] = out[:, 0] + sides
    out[:, 3] = oy - ytop
    out[:, 1] = out[:, 3] - sides
    return out


def _square_shelves(sides: np.ndarray, width: float, gap: float):
    return shelf_pack(sides, sides, width, gap, np.argsort(-sides, kind="stable"))

"""Texture atlases: learned-feature patches (RGBA uint8) and activation matrices (float32)."""
from __future__ import annotations

import numpy as np

from cnnvis.layout._pack import shelf_pack

__all__ = ["patch_atlas", "matrix_atlas"]


def _rgba(p: np.ndarray) -> np.ndarray:
    """(P, P, ch) uint8 -> (P, P, 4) uint8 (gray for 1 channel, first 3 channels otherwise)."""
    if p.shape[-1] == 1:
        rgb = np.repeat(p, 3, axis=-1)
    elif p.shape[-1] == 2:
        rgb = np.concatenate([p, p[..., :1]], -1)
    else:
        rgb = p[..., :3]
    return np.concatenate([rgb, np.full(p.shape[:2] + (1,), 255, np.uint8)], -1)


def patch_atlas(patches: list[np.ndarray], *, max_width: int = 4096, pad: int = 1):
    """Atlas (H, W, 4) uint8 and uv (n, 4) float32 u0, v0, u1, v1 (v down from the atlas top row) of the
    square (P, P, ch) patches, in a grid of cells of the largest patch."""
    n = len(patches)
    if n == 0:
        return np.zeros((1, 1, 4), np.uint8), np.zeros((0, 4), np.float32)
    cell = max(p.shape[0] for p in patches) + 2 * pad
    per_row = max(1, min(n, max_width // cell))
    rows = -(-n // per_row)
    H, W = rows * cell, per_row * cell
    atlas = np.zeros((H, W, 4), np.uint8)
    uv = np.empty((n, 4), np.float32)
    for i, p in enumerate(patches):
        r, c = divmod(i, per_row)
        y, x = r * cell + pad, c * cell + pad
        ph, pw = p.shape[:2]
        atlas[y:y + ph, x:x + pw] = _rgba(p)
        uv[i] = (x / W, y / H, (x + pw) / W, (y + ph) / H)
    return atlas, uv


def matrix_atlas(blocks: list[np.ndarray], *, max_height: int = 4096, pad: int = 1):
    """Float atlas (Hm, Wm) float32 and uv (n, 4) float32 of 2-D blocks (rows x classes), stacked in strips
    of at most max_height rows (a taller block gets a strip of its own)."""
    n = len(blocks)
    if n == 0:
        return np.zeros((1, 1), np.float32), np.zeros((0, 4), np.float32)
    height = max(max_height, max(b.shape[0] for b in blocks))
    # Strips are shelves turned on their side: blocks stack downward, a new strip to the right.
    ys, xs, W = shelf_pack([b.shape[0] for b in blocks], [b.shape[1] for b in blocks], height, pad)
    place = list(zip(xs.astype(int), ys.astype(int)))
    H = max(py + b.shape[0] for (px, py), b in zip(place, blocks))
    W = int(W)
    atlas = np.zeros((H, W), np.float32)
    uv = np.empty((n, 4), np.float32)
    for i, ((px, py), b) in enumerate(zip(place, blocks)):
        h, w = b.shape
        atlas[py:py + h, px:px + w] = b
        uv[i] = (px / W, py / H, (px + w) / W, (py + h) / H)
    return atlas, uv

"""Keeping atlases within the GPU's texture size limit: a Scene's atlas may be taller than
GL_MAX_TEXTURE_SIZE (16384 on llvmpipe; one neurons x classes block per cluster adds up), so its
sub-images are re-packed into shelves of at most that width, and their uvs rewritten."""
from __future__ import annotations

import numpy as np

from cnnvis.layout._pack import shelf_pack

__all__ = ["fit_atlas"]


def fit_atlas(atlas: np.ndarray, uv: np.ndarray, max_size: int) -> tuple:
    """(atlas, uv) unchanged when the atlas fits, else a re-packed atlas and the uvs into it.

    uv rows are u0, v0, u1, v1 in 0..1 of `atlas` (v down, numpy row order). Identical sub-images are
    stored once. Raises ValueError when even the re-packed atlas cannot fit."""
    H, W = atlas.shape[:2]
    if H <= max_size and W <= max_size:
        return atlas, uv
    px = np.rint(np.asarray(uv, np.float64) * [W, H, W, H]).astype(np.int64)
    px[:, [0, 2]] = np.clip(px[:, [0, 2]], 0, W)
    px[:, [1, 3]] = np.clip(px[:, [1, 3]], 0, H)
    keys, inverse = np.unique(px, axis=0, return_inverse=True)
    w = np.maximum(keys[:, 2] - keys[:, 0], 1)
    h = np.maximum(keys[:, 3] - keys[:, 1], 1)
    if w.max() > max_size or h.max() > max_size:
        raise ValueError(f"an atlas image of {w.max()}x{h.max()} exceeds the texture limit {max_size}")
    # Shelves in order of height: few shelves, little waste.
    x, y, H2 = shelf_pack(w, h, max_size, order=np.argsort(-h, kind="stable"))
    pos = np.stack([x, y], 1).astype(np.int64)
    H2, W2 = int(H2), int(min(max_size, (pos[:, 0] + w).max()))
    if H2 > max_size:
        raise ValueError(f"the atlas needs {W2}x{H2} texels, more than the texture limit {max_size}")
    out = np.zeros((H2, W2) + atlas.shape[2:], atlas.dtype)
    for i, (u0, v0, u1, v1) in enumerate(keys):
        out[pos[i, 1]:pos[i, 1] + (v1 - v0), pos[i, 0]:pos[i, 0] + (u1 - u0)] = atlas[v0:v1, u0:u1]
    new = np.stack([pos[:, 0], pos[:, 1], pos[:, 0] + (keys[:, 2] - keys[:, 0]),
                    pos[:, 1] + (keys[:, 3] - keys[:, 1])], 1) / np.array([W2, H2, W2, H2], np.float64)
    return out, new[inverse.ravel()].astype(np.float32)

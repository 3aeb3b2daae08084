"""Cutting learned-feature crops with torch: each distinct crop once, shared by every layer that shows it.

A crop is identified by (image, y0, x0, y1, x1). Element-wise layers (batchnorm, activation, dropout) keep
their input's receptive field, and usually its top images, so their crops are the same crops and are
stored once; deep layers whose field covers the whole image share the at most N whole images. The stored
side is capped by max_patch, and lowered evenly for every crop bigger than the new cap when the distinct
crops of a big model would exceed PATCH_MEMORY bytes (so memory and file grow with neurons, not images).
How the crops are stored in the file: cnnvis.analysis._jpeg.
"""
from __future__ import annotations

import math

import numpy as np

from cnnvis.analysis._analysis import LearnedFeatures
from cnnvis.analysis._patch_types import CropGroup, PatchArray

__all__ = ["PATCH_MEMORY", "crop_boxes", "learned_features", "patch_shape"]

PATCH_MEMORY = 128 * 2**20   # bytes of distinct crops held in memory (and written, before the codec)
_CHUNK_IMAGES = 32           # images fetched from the data set at a time while cutting crops


def patch_shape(ph: int, pw: int, max_side: int) -> tuple[int, int]:
    """Stored patch size: the crop's, scaled down (area averaging) so its longer side is at most max_side."""
    if max(ph, pw) <= max_side:
        return ph, pw
    s = max_side / max(ph, pw)
    return max(1, round(ph * s)), max(1, round(pw * s))


def crop_boxes(field, pos: np.ndarray, spatial: tuple[int, ...], image_hw: tuple[int, int]) -> np.ndarray:
    """(..., 4) int32 y0, x0, y1, x1 for flat positions `pos` of a layer; crop_box, vectorised."""
    H, W = image_hw
    out = np.empty((*pos.shape, 4), np.int32)
    if field is None or len(spatial) != 2:
        out[...] = (0, 0, H, W)
        return out
    p = np.unravel_index(np.clip(pos, 0, math.prod(spatial) - 1), spatial)
    for axis, n in enumerate((H, W)):
        r, j, s = field.size[axis], field.jump[axis], field.start[axis]
        size = int(min(round(r), n))
        lo = np.floor(s + p[axis] * j - size / 2 + 0.5).astype(np.int64)
        lo = np.clip(lo, 0, n - size)
        out[..., axis], out[..., axis + 2] = lo, lo + size
    return out


def _unique_rows(rows: np.ndarray):
    """np.unique(rows, axis=0, return_inverse=True) for non-negative int rows, via one packed int64 key per
    row when the columns fit in 63 bits (np.unique on rows sorts structured views: ~50x slower)."""
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
        return rows.reshape(0, rows.shape[1]), np.zeros(0, np.int64)
    bits = [max(1, int(c).bit_length()) for c in rows.max(0)]
    if rows.min() < 0 or sum(bits) > 63:
        u, inv = np.unique(rows, axis=0, return_inverse=True)
        return u, inv.reshape(-1)
    key = np.zeros(len(rows), np.int64)
    for col, b in zip(rows.T, bits):
        key = (key << b) | col
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    return rows[first], inv.reshape(-1)


def _side_for_budget(ph: np.ndarray, pw: np.ndarray, ch: int, max_patch: int, memory: int) -> int:
    """Largest cap <= max_patch at which the distinct crops take at most `memory` bytes (at least 1)."""
    sizes, inv = _unique_rows(np.stack([ph, pw], 1))
    counts = np.bincount(inv, minlength=len(sizes))

    def nbytes(side):
        return sum(int(c) * math.prod(patch_shape(int(h), int(w), side)) * ch for (h, w), c in zip(sizes, counts))

    lo, hi = 1, max_patch
    if nbytes(hi) <= memory:
        return hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if nbytes(mid) <= memory else (lo, mid - 1)
    return lo


def learned_features(graph, tops: dict, fields: dict, data, *, max_patch: int, memory: int = PATCH_MEMORY):
    """layer name -> LearnedFeatures for every layer but the input, crops cut once from data.get()."""
    import torch
    import torch.nn.functional as F

    ch, H, W = data.image_shape
    layers = [l for l in graph.layers if l.kind != "input"]
    per_layer, keys = [], []
    for layer in layers:
        scores, index, pos = tops[layer.name]
        boxes = crop_boxes(fields[layer.name], pos, layer.spatial, (H, W))
        valid = index >= 0
        keys.append(np.concatenate([index[valid][:, None], boxes[valid].astype(np.int64)], 1))
        per_layer.append((layer.name, scores, index, boxes, valid))
    if not layers:
        return {}
    uniq, inverse = _unique_rows(np.concatenate(keys))  # sorted by image first
    ph, pw = uniq[:, 3] - uniq[:, 1], uniq[:, 4] - uniq[:, 2]
    side = _side_for_budget(ph, pw, ch, max_patch, memory)
    # each distinct crop's stored size, its group (one per stored size) and its slot in the group
    crop_sizes, size_of = _unique_rows(np.stack([ph, pw], 1))
    out_hw = np.array([patch_shape(int(h), int(w), side) for h, w in crop_sizes], np.int64)[size_of]
    shapes, group_of = _unique_rows(out_hw)
    slot = np.zeros(len(uniq), np.int64)
    groups = []
    for g, (h, w) in enumerate(shapes):
        members = np.flatnonzero(group_of == g)
        slot[members] = np.arange(len(members))
        groups.append(CropGroup((int(h), int(w), ch), np.zeros((len(members), h, w, ch), np.uint8)))
    _cut(data, uniq, out_hw, group_of, slot, groups, torch, F)
    out, start = {}, 0
    for name, scores, index, boxes, valid in per_layer:
        n = int(valid.sum())
        mine = inverse[start:start + n]
        start += n
        gs = np.unique(group_of[mine])
        if len(gs) != 1:  # every crop of a layer has one size: fields are shifted inside the image
            raise AssertionError(f"layer {name!r}: crops of {len(gs)} sizes")
        ids = np.full(index.shape, -1, np.int32)
        ids[valid] = slot[mine]
        out[name] = LearnedFeatures(patches=PatchArray(groups[int(gs[0])], ids),
                                    scores=np.where(valid, scores, np.nan).astype(np.float32),
                                    image_index=index.astype(np.int64), boxes=boxes)
    return out


def _cut(data, uniq, out_hw, group_of, slot, groups, torch, F):
    """Fill the groups: distinct crops come sorted by image, so each image is fetched once."""
    bounds = np.flatnonzero(np.diff(uniq[:, 0])) + 1
    starts = np.concatenate([[0], bounds])
    for c0 in range(0, len(starts), _CHUNK_IMAGES):
        a = starts[c0]
        b = starts[c0 + _CHUNK_IMAGES] if c0 + _CHUNK_IMAGES < len(starts) else len(uniq)
        rows = np.arange(a, b)
        image_ids, where = np.unique(uniq[rows, 0], return_inverse=True)
        images = np.asarray(data.get(image_ids), np.float32)
        # crops of one (crop size, stored size) are resized together
        kind = np.concatenate([uniq[rows, 3:5] - uniq[rows, 1:3], out_hw[rows]], 1)
        kinds, kind_of = _unique_rows(kind)
        for t, (h, w, oh, ow) in enumerate(kinds):
            sel = rows[kind_of == t]
            crops = np.stack([images[where[r - a], :, y0:y1, x0:x1] for r, (_, y0, x0, y1, x1) in
                              zip(sel, uniq[sel])])
            if (oh, ow) != (h, w):
                crops = F.interpolate(torch.from_numpy(crops), size=(int(oh), int(ow)), mode="area").numpy()
            pix = np.round(crops.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
            g = group_of[sel]
            for gi in np.unique(g):
                groups[gi].pixels[slot[sel[g == gi]]] = pix[g == gi]

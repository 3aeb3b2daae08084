"""Learned-feature patches: cut once per distinct crop, shared by every layer that shows it, and stored in
the file raw or as JPEG sheets.

A crop is identified by (image, y0, x0, y1, x1). Element-wise layers (batchnorm, activation, dropout) keep
their input's receptive field, and usually its top images, so their crops are the same crops and are
stored once; deep layers whose field covers the whole image share the at most N whole images. The stored
side is capped by max_patch, and lowered evenly for every crop bigger than the new cap when the distinct
crops of a big model would exceed PATCH_MEMORY bytes (so memory and file grow with neurons, not images).
In the file, crops are raw uint8 while they total at most LOSSLESS_LIMIT bytes (small models round-trip
exactly), JPEG (quality 90, no chroma subsampling) sheets of 8-aligned tiles beyond that.
"""
from __future__ import annotations

import io
import math

import numpy as np

from cnnvis.errors import AnalysisFileError

__all__ = ["PATCH_MEMORY", "LOSSLESS_LIMIT", "CropGroup", "PatchArray", "crop_boxes", "learned_features",
           "patch_shape", "encode_groups", "decode_groups"]

PATCH_MEMORY = 128 * 2**20   # bytes of distinct crops held in memory (and written, before the codec)
LOSSLESS_LIMIT = 16 * 2**20  # up to this many bytes of crops the file stores them raw
JPEG_QUALITY = 90
_SHEET = 4096                # sheet side in pixels (JPEG allows 65535; smaller sheets decode on demand)
_CHUNK_IMAGES = 32           # images fetched from the data set at a time while cutting crops


def patch_shape(ph: int, pw: int, max_side: int) -> tuple[int, int]:
    """Stored patch size: the crop's, scaled down (area averaging) so its longer side is at most max_side."""
    if max(ph, pw) <= max_side:
        return ph, pw
    s = max_side / max(ph, pw)
    return max(1, round(ph * s)), max(1, round(pw * s))


class CropGroup:
    """Crops of one stored size: pixels (n, h, w, ch) uint8, held or decoded from JPEG sheets on first use."""

    def __init__(self, shape: tuple[int, int, int], pixels: np.ndarray | None = None, *, decode=None, n: int = 0):
        self.shape = tuple(int(s) for s in shape)
        self._pixels = pixels
        self._decode = decode  # () -> pixels, for a group read from a file
        self.n = int(pixels.shape[0]) if pixels is not None else int(n)

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self._decode()
            self._decode = None
        return self._pixels

    @property
    def nbytes(self) -> int:
        return self.n * math.prod(self.shape)


class PatchArray:
    """A layer's patches (C, k, h, w, ch) uint8, as ids (C, k) into a shared CropGroup (-1: no image, zeros).

    Indexes like the array it stands for (`patches[n, 0]` gathers one crop); np.asarray() materialises it.
    `==` compares whole contents and returns a bool (two patch sets are equal when every pixel is).
    """

    def __init__(self, group: CropGroup, ids: np.ndarray):
        self.group = group
        self.ids = np.asarray(ids, np.int32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.ids.shape, *self.group.shape)

    dtype = np.dtype(np.uint8)
    ndim = 5

    def __len__(self) -> int:
        return self.ids.shape[0]

    def _gather(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.size == 0:
            return np.zeros((*ids.shape, *self.group.shape), np.uint8)
        out = self.group.pixels[np.maximum(ids, 0)]
        out[ids < 0] = 0
        return out

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis or k is None for k in key):
            return np.asarray(self)[key]
        head, rest = key[:2], key[2:]
        ids = self.ids[head]
        return self._gather(ids)[(slice(None),) * np.ndim(ids) + rest]

    def __array__(self, dtype=None, copy=None):
        out = self._gather(self.ids)
        return out if dtype is None else out.astype(dtype)

    def __eq__(self, other) -> bool:
        if not isinstance(other, (PatchArray, np.ndarray)):
            return NotImplemented
        return self.shape == tuple(other.shape) and np.array_equal(np.asarray(self), np.asarray(other))

    __hash__ = None

    def __repr__(self) -> str:
        return f"PatchArray(shape={self.shape}, {self.group.n} distinct crops)"


# -- cutting ---------------------------------------------------------------------------------------------
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

    from cnnvis.analysis._analysis import LearnedFeatures

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


# -- the file --------------------------------------------------------------------------------------------
def encode_groups(groups: list[CropGroup], *, lossless_limit: int | None = None):
    """(manifest entry, arrays) for the groups; JPEG sheets once the crops total more than lossless_limit
    (default LOSSLESS_LIMIT)."""
    lossless_limit = LOSSLESS_LIMIT if lossless_limit is None else lossless_limit
    total = sum(g.nbytes for g in groups)
    jpeg = total > lossless_limit and all(g.shape[2] in (1, 3) for g in groups)
    entries, arrays = [], {}
    for gi, g in enumerate(groups):
        h, w, ch = g.shape
        entry = dict(shape=[h, w, ch], n=g.n)
        if not jpeg or g.n == 0:
            arrays[f"patches/{gi}/pixels"] = g.pixels
        else:
            th, tw = -(-h // 8) * 8, -(-w // 8) * 8  # 8-aligned tiles: no JPEG block spans two crops
            cols = max(1, min(g.n, _SHEET // tw))
            rows = max(1, _SHEET // th)
            per = cols * rows
            sheets = 0
            for s0 in range(0, g.n, per):
                arrays[f"patches/{gi}/sheet/{sheets}"] = _jpeg(_sheet(g.pixels[s0:s0 + per], th, tw, cols))
                sheets += 1
            entry.update(tile=[th, tw], cols=cols, rows=rows, sheets=sheets)
        entries.append(entry)
    return dict(codec="jpeg" if jpeg else "raw", quality=JPEG_QUALITY if jpeg else None, groups=entries), arrays


def _sheet(pix: np.ndarray, th: int, tw: int, cols: int) -> np.ndarray:
    n, h, w, ch = pix.shape
    tiles = np.pad(pix, ((0, 0), (0, th - h), (0, tw - w), (0, 0)), mode="edge")
    rows = -(-n // cols)
    tiles = np.concatenate([tiles, np.zeros((rows * cols - n, th, tw, ch), np.uint8)])
    return tiles.reshape(rows, cols, th, tw, ch).transpose(0, 2, 1, 3, 4).reshape(rows * th, cols * tw, ch)


def _jpeg(sheet: np.ndarray) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(sheet[..., 0] if sheet.shape[2] == 1 else sheet)
    for optimize in (True, False):
        buf = io.BytesIO()
        try:
            im.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=optimize)
            break
        except OSError:  # optimize needs the whole JPEG in a buffer of w*h bytes: noisy RGB sheets overflow it
            if not optimize:
                raise
    return np.frombuffer(buf.getvalue(), np.uint8)


def decode_groups(entry: dict, arrays: dict, path) -> list[CropGroup]:
    """CropGroups of a file's "patches" entry; JPEG sheets are decoded when a patch is first read."""
    codec = entry["codec"]
    if codec not in ("raw", "jpeg"):
        raise AnalysisFileError(f"{path}: unknown patch codec {codec!r}")
    groups = []
    for gi, e in enumerate(entry["groups"]):
        shape, n = tuple(int(s) for s in e["shape"]), int(e["n"])
        if f"patches/{gi}/pixels" in arrays:
            pix = arrays[f"patches/{gi}/pixels"]
            if pix.dtype != np.uint8 or pix.shape != (n, *shape):
                raise AnalysisFileError(f"{path}: patch group {gi} has shape {pix.shape}, expected {(n, *shape)}")
            groups.append(CropGroup(shape, pix))
            continue
        sheets = [arrays[f"patches/{gi}/sheet/{s}"] for s in range(int(e["sheets"]))]
        groups.append(CropGroup(shape, decode=_sheet_decoder(path, gi, shape, n, e, sheets), n=n))
    return groups


def _sheet_decoder(path, gi, shape, n, e, sheets):
    def decode():
        from PIL import Image

        h, w, ch = shape
        th, tw = (int(v) for v in e["tile"])
        cols, rows = int(e["cols"]), int(e["rows"])
        out = np.empty((n, h, w, ch), np.uint8)
        for s, raw in enumerate(sheets):
            m = min(cols * rows, n - s * cols * rows)
            r = -(-m // cols)
            try:
                with Image.open(io.BytesIO(raw.tobytes())) as im:
                    if im.size != (cols * tw, r * th):  # from the header, before the pixels are decoded
                        raise AnalysisFileError(f"{path}: corrupt analysis file: member patches/{gi}/sheet/{s}.npy "
                                                f"is a {im.size[0]}x{im.size[1]} image, expected {cols * tw}x{r * th}")
                    a = np.asarray(im.convert("L" if ch == 1 else "RGB"))
            except AnalysisFileError:
                raise
            except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, ... on bad data
                raise AnalysisFileError(f"{path}: corrupt analysis file: member patches/{gi}/sheet/{s}.npy is not "
                                        f"a readable image ({type(exc).__name__}: {exc})") from None
            tiles = a.reshape(r, th, cols, tw, ch).transpose(0, 2, 1, 3, 4).reshape(r * cols, th, tw, ch)
            out[s * cols * rows:s * cols * rows + m] = tiles[:m, :h, :w]
        return out

    return decode

"""The array types of learned-feature patches: a CropGroup holds the crops of one stored size (raw, or
decoded from the file's JPEG sheets on first use); a PatchArray is a layer's (C, k, h, w, ch) patches as ids
into a shared group, so a crop that several layers show is held once."""
from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

__all__ = ["CropGroup", "PatchArray", "prefetch_sheets"]


class CropGroup:
    """Crops of one stored size: pixels (n, h, w, ch) uint8, held or decoded from JPEG sheets on first use."""

    def __init__(self, shape: tuple[int, int, int], pixels: np.ndarray | None = None, *, decode=None, n: int = 0,
                 sheet=None, per_sheet: int = 0):
        self.shape = tuple(int(s) for s in shape)
        self._pixels = pixels
        self._decode = decode  # () -> pixels, for a group read from a file
        self._sheet = sheet    # s -> (image, (th, tw), cols) of JPEG sheet s, for a group read from a file
        self._per_sheet = int(per_sheet)
        self._sheets: dict = {}
        self.n = int(pixels.shape[0]) if pixels is not None else int(n)

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self._decode()
            self._decode = None
            self._sheets.clear()
        return self._pixels

    def take(self, ids: np.ndarray) -> np.ndarray:
        """pixels[ids], decoding only the JPEG sheets that hold them (a view needs a few hundred crops of
        tens of thousands: ResNet-50's first Scene decodes 3 sheets' worth, not all)."""
        if self._pixels is not None or self._sheet is None or np.size(ids) > 4096:  # many: decode all at once
            return self.pixels[ids]
        ids = np.asarray(ids, np.int64)
        out = np.empty((*ids.shape, *self.shape), np.uint8)
        h, w, _ = self.shape
        for j in np.ndindex(ids.shape):
            s, i = divmod(int(ids[j]), self._per_sheet)
            image, (th, tw), cols = self._decoded(s)
            r, c = divmod(i, cols)
            out[j] = image[r * th:r * th + h, c * tw:c * tw + w]
        return out

    def _decoded(self, s: int):
        got = self._sheets.get(s)
        if got is None:
            got = self._sheets[s] = self._sheet(s)
        elif isinstance(got, Future):  # being decoded by prefetch_sheets: wait for it (its error, if any)
            got = self._sheets[s] = got.result()
        return got

    @property
    def n_sheets(self) -> int:
        """JPEG sheets this group decodes from (0: its pixels are held)."""
        return -(-self.n // self._per_sheet) if self._sheet is not None and self._pixels is None else 0

    def prefetch(self, pool, budget: int) -> tuple[int, int]:
        """Submit the decoding of this group's sheets not yet decoded or started to `pool`, while their decoded
        bytes fit in `budget`; `take` waits for a sheet still in flight. Returns (sheets, bytes) submitted."""
        started = used = 0
        for s in range(self.n_sheets):
            size = min(self._per_sheet, self.n - s * self._per_sheet) * math.prod(self.shape)
            if s in self._sheets:
                continue
            if used + size > budget:
                break
            self._sheets[s] = pool.submit(self._sheet, s)
            started, used = started + 1, used + size
        return started, used

    @property
    def nbytes(self) -> int:
        return self.n * math.prod(self.shape)


def prefetch_sheets(groups, budget: int = 512 * 2**20) -> int:
    """Start decoding the JPEG sheets of `groups` in two background threads (Pillow decodes with the GIL
    released), so that the crops a first view takes are ready while the caller clusters. Sheets are taken in
    order until their decoded bytes would pass `budget`. Returns the number of sheets started."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cnnvis-sheets")
    started = used = 0
    for g in groups:
        n, b = g.prefetch(pool, budget - used)
        started, used = started + n, used + b
    pool.shutdown(wait=False)  # its threads end when the queued sheets are done
    return started


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
        out = self.group.take(np.maximum(ids, 0))
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

"""The streamed data set: what every kind offers the analysis, whatever holds the images.

`len(ds)`, `labels` (N,) int64, `class_names`, `n_classes`, `name`, `image_shape` (C, H, W),
`get(indices) -> (n, C, H, W) float32`, `batches(batch_size, *, indices, workers)`, `subset(indices)`, and
`normalization` ((mean, std) per channel, or None) to undo it for display. A kind reads rows of its source
scaled to [0, 1] (`_read`); this class normalises, checks that every image is finite and names the first
that is not.
"""
from __future__ import annotations

import ast
import copy
from collections.abc import Sequence

import numpy as np

from cnnvis.data._batching import iter_batches, row_index
from cnnvis.errors import DataError

__all__ = ["StreamedDataset", "ClassNumbers", "parse_normalize", "IMAGENET"]

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def parse_normalize(spec) -> tuple[np.ndarray, np.ndarray] | None:
    """'imagenet', 'none', 'MEAN,STD' or '[M1,M2,M3],[S1,S2,S3]' (per channel) -> (mean, std) or None."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "none")):
        return None
    if isinstance(spec, str) and spec.strip().lower() == "imagenet":
        mean, std = IMAGENET
    elif isinstance(spec, str):
        try:
            value = ast.literal_eval(spec.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = None
        if not (isinstance(value, tuple) and len(value) == 2):
            raise DataError(f"--normalize {spec!r}: expected imagenet, none, MEAN,STD or "
                            "[M1,M2,M3],[S1,S2,S3] (numbers)")
        mean, std = value
    else:
        mean, std = spec
    try:
        mean = np.atleast_1d(np.asarray(mean, np.float64)).astype(np.float32)
        std = np.atleast_1d(np.asarray(std, np.float64)).astype(np.float32)
    except (TypeError, ValueError):
        raise DataError(f"--normalize {spec!r}: mean and std must be numbers or lists of numbers") from None
    if mean.ndim != 1 or std.ndim != 1 or not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise DataError(f"--normalize {spec!r}: mean and std must be finite numbers or flat lists of them")
    if (std <= 0).any():
        raise DataError(f"--normalize {spec!r}: every std must be > 0")
    return mean, std


class ClassNumbers(Sequence):
    """The names '0' .. 'K-1' of a data set whose file names no classes, made on demand: K comes from the largest
    label, and a stray label of 10^7 must not cost ten million strings before it is found out."""

    def __init__(self, n: int):
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(str(k) for k in range(self.n)[i])
        return str(range(self.n)[i])

    def __eq__(self, other) -> bool:  # equal to the tuple of names it stands for
        if isinstance(other, ClassNumbers):
            return self.n == other.n
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(other) == self.n and all(a == b for a, b in zip(self, other))

    __hash__ = None

    def __repr__(self) -> str:
        return f"ClassNumbers({self.n})"


class StreamedDataset:
    """Base of the streamed kinds; a subclass reads rows of its source with `_read(rows)` -> (n, C, H, W)
    float32 in [0, 1] at `image_shape` (before normalisation)."""

    def __init__(self, labels, class_names, name: str, *, input_size: int | None = None, normalize=None):
        self._labels = np.ascontiguousarray(labels, dtype=np.int64)
        self.class_names = class_names if isinstance(class_names, ClassNumbers) else tuple(str(c) for c in class_names)
        self.name = name
        self._rows = None  # a subset's row numbers in the source; None: all, in order
        self._input_size = input_size
        if input_size is not None and int(input_size) < 1:
            raise DataError(f"--input-size must be >= 1, got {input_size}")
        self.normalization = parse_normalize(normalize)
        if self._labels.ndim != 1 or self._labels.size == 0:
            raise DataError(f"{name}: the data set is empty" if self._labels.size == 0
                            else f"{name}: labels must be 1-d, got shape {self._labels.shape}")
        bad = (self._labels < 0) | (self._labels >= len(self.class_names))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{name}: label {int(self._labels[i])} of image {i} is outside "
                            f"[0, {len(self.class_names)})")

    # -- the data set interface ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def labels(self) -> np.ndarray:
        return self._labels if self._rows is None else self._labels[self._rows]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self._source_shape()
        if self._input_size:
            h = w = int(self._input_size)
        return c, h, w

    def get(self, indices) -> np.ndarray:
        """Images `indices` (positions in this data set), (n, C, H, W) float32 as the model gets them."""
        idx = row_index(indices, len(self), self.name)
        rows = idx if self._rows is None else self._rows[idx]
        x = self._read(rows)
        if self.normalization is not None:
            mean, std = self.normalization
            if mean.size not in (1, x.shape[1]) or std.size not in (1, x.shape[1]):
                raise DataError(f"{self.name}: --normalize gives {mean.size} means and {std.size} stds for "
                                f"images with {x.shape[1]} channels")
            with np.errstate(over="ignore", invalid="ignore"):  # reported just below, naming the image
                x = (x - mean[None, :, None, None]) / std[None, :, None, None]
        finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not finite.all():
            j = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{self.name}: image {int(idx[j])}{self._describe(int(rows[j]))} is NaN or "
                            "infinite after loading")
        return np.ascontiguousarray(x, dtype=np.float32)

    def batches(self, batch_size: int, *, indices=None, workers: int = 0):
        """(index, images, labels) batches in order; `workers` > 0 decodes in DataLoader worker processes."""
        return iter_batches(self, batch_size, indices=indices, workers=workers)

    def subset(self, indices, name: str | None = None) -> "StreamedDataset":
        idx = row_index(indices, len(self), self.name)
        out = copy.copy(self)
        out._rows = idx if self._rows is None else self._rows[idx]
        out.name = name or self.name
        return out

    # -- for subclasses ----------------------------------------------------------------------------------
    def _source_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def _read(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _describe(self, row: int) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} images of {self.image_shape})"

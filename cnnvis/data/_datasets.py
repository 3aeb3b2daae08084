"""Data sets: scikit-learn's bundled digits (the embedded default), IDX files, .npz arrays, image folders.

Every loader returns a Dataset of float32 images in [0, 1], shape (N, C, H, W), and int64 labels.
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnvis.errors import DataError

__all__ = ["Dataset", "load_dataset", "load_digits", "load_idx", "load_npz", "load_image_folder"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Dataset:
    """images (N, C, H, W) float32 in [0, 1]; labels (N,) int64 in [0, K); class_names (K,) str."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self):
        _check(self.images, self.labels, self.class_names, self.name)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(int(s) for s in self.images.shape[1:])

    def get(self, indices) -> np.ndarray:
        """Images at `indices` as float32 (n, C, H, W): random access to a few, e.g. for crops."""
        return np.asarray(self.images[np.asarray(indices, np.int64)], np.float32)

    def batches(self, batch_size: int, *, indices=None, workers: int = 0):
        """Yield (index (b,) int64, images torch.float32 (b, C, H, W), labels torch.int64 (b,)) in order,
        over all images or over `indices` (a shard). In memory, `workers` changes nothing."""
        import torch

        order = np.arange(len(self), dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield idx, torch.from_numpy(self.get(idx)), torch.from_numpy(self.labels[idx])

    def subset(self, index: np.ndarray, name: str | None = None) -> "Dataset":
        return Dataset(self.images[index], self.labels[index], self.class_names, name or self.name)

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """Stratified train/test split, deterministic for a seed."""
        rng = np.random.default_rng(seed)
        test = np.zeros(len(self), bool)
        for k in range(self.n_classes):
            idx = np.flatnonzero(self.labels == k)
            rng.shuffle(idx)
            test[idx[: int(round(len(idx) * test_fraction))]] = True
        return self.subset(np.flatnonzero(~test), f"{self.name}:train"), \
            self.subset(np.flatnonzero(test), f"{self.name}:test")


def _check(images, labels, class_names, name):
    if images.ndim != 4:
        raise DataError(f"{name}: images must have shape (N, C, H, W), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{name}: {images.shape[0]} images but labels of shape {labels.shape}")
    if images.shape[0] == 0:
        raise DataError(f"{name}: the data set is empty")
    if not np.isfinite(images).all():
        raise DataError(f"{name}: images contain NaN or infinite values")
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: label {int(labels[i])} of image {i} is outside [0, {len(class_names)})")


def _to_unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def load_digits(size: int = 28) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), resized to size x size (bilinear)."""
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    images = (d.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    if size != 8:
        import torch
        import torch.nn.functional as F

        images = F.interpolate(torch.from_numpy(images), size=(size, size), mode="bilinear",
                               align_corners=False).clamp_(0, 1).numpy()
    return Dataset(np.ascontiguousarray(images), d.target.astype(np.int64),
                   tuple(str(k) for k in range(10)), "digits")


# -- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------------------
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
            "Ankle boot")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - head != need:
        raise DataError(f"{path}: IDX file holds {len(raw) - head} data bytes, its header promises {need}")
    return np.frombuffer(raw, dtype, offset=head).reshape(dims)


def load_idx(path: str | Path, *, split: str = "train") -> Dataset:
    """A folder of MNIST-style IDX files ({split}-images-idx3-ubyte[.gz] and labels), or an images file
    whose labels file sits beside it."""
    path = Path(path)
    if path.is_dir():
        prefix = "t10k" if split == "test" else "train"
        imgs = _first([path / f"{prefix}-images-idx3-ubyte{s}" for s in ("", ".gz")], path, "images")
        labs = _first([path / f"{prefix}-labels-idx1-ubyte{s}" for s in ("", ".gz")], path, "labels")
    else:
        imgs = path
        labs = _first([path.with_name(path.name.replace("images-idx3", "labels-idx1"))], path.parent, "labels")
    x, y = read_idx(imgs), read_idx(labs)
    if x.ndim != 3:
        raise DataError(f"{imgs}: expected images of shape (N, H, W), got {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{labs}: {y.shape} labels for {x.shape[0]} images in {imgs.name}")
    k = int(y.max()) + 1
    names = _FASHION if "fashion" in str(path).lower() and k == 10 else tuple(str(i) for i in range(k))
    return Dataset(_to_unit(x)[:, None], y.astype(np.int64), names, path.name)


def _first(candidates, where, what) -> Path:
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(f"{where}: no IDX {what} file (looked for {', '.join(c.name for c in candidates)})")


# -- .npz ----------------------------------------------------------------------------------------------
def load_npz(path: str | Path) -> Dataset:
    """Arrays `images` (or `x`) of shape (N, H, W), (N, H, W, C) or (N, C, H, W) and `labels` (or `y`);
    optional `class_names`. Loaded without pickle."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            xk = next((k for k in ("images", "x", "X") if k in files), None)
            yk = next((k for k in ("labels", "y", "Y") if k in files), None)
            if xk is None or yk is None:
                raise DataError(f"{path}: needs arrays 'images' and 'labels' (has {', '.join(sorted(files))})")
            x, y = z[xk], z[yk]
            names = tuple(str(s) for s in z["class_names"]) if "class_names" in files else None
    except DataError:
        raise
    except Exception as exc:  # zipfile/np.load raise many types on corrupt files
        raise DataError(f"{path}: cannot read .npz ({exc})") from None
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got {y.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise DataError(f"{path}: images must have 3 or 4 dimensions, got shape {x.shape}")
    if names is None:
        names = tuple(str(i) for i in range(int(y.max()) + 1 if y.size else 0))
    return Dataset(np.ascontiguousarray(_to_unit(x)), y.astype(np.int64), names, path.stem)


# -- image folders -----------------------------------------------------------------------------------------
def load_image_folder(path: str | Path, *, size: int | None = None) -> Dataset:
    """One sub-folder per class (sorted names); images resized to the first image's size (or `size`)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{path}: an image folder needs one sub-folder per class")
    images, labels, shape, mode = [], [], None, None
    for k, folder in enumerate(classes):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    if mode is None:
                        mode = "L" if im.mode in ("L", "1", "I", "I;16", "F") else "RGB"
                        shape = (size, size) if size else im.size
                    a = np.asarray(im.convert(mode).resize(shape), dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{f}: cannot read image ({exc})") from None
            images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            labels.append(k)
    if not images:
        raise DataError(f"{path}: no images found in its class folders")
    return Dataset(np.stack(images), np.asarray(labels, np.int64), tuple(c.name for c in classes), path.name)


def load_dataset(spec: str | Path) -> Dataset:
    """'digits', a .npz file, an IDX file or folder, or an image folder."""
    if str(spec) == "digits":
        return load_digits()
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{path}: no such data file or folder")
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        if "idx" in path.name:
            return load_idx(path)
        raise DataError(f"{path}: unknown data format (expected .npz, IDX, or a folder)")
    if any(path.glob("*-idx3-ubyte*")):
        return load_idx(path)
    return load_image_folder(path)

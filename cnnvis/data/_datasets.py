"""Data sets: scikit-learn's bundled digits (the embedded default), IDX files, .npz arrays, image folders.

`open_dataset` returns the streamed kind for a file or folder (memory does not grow with it); every
`load_*` returns an in-memory Dataset of float32 images in [0, 1], shape (N, C, H, W), and int64 labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnvis.data._arrays import ArrayDataset, open_idx, open_npz
from cnnvis.data._base import parse_normalize
from cnnvis.data._batching import iter_batches, row_index
from cnnvis.data._folders import ImageFolderDataset
from cnnvis.errors import DataError

__all__ = ["Dataset", "load_dataset", "load_digits", "load_idx", "load_npz", "load_image_folder", "open_dataset",
           "in_memory"]

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

    normalization = None  # the images are the model's inputs as they are (streamed kinds may normalise)

    def get(self, indices) -> np.ndarray:
        """Images `indices`, (n, C, H, W) float32, a copy."""
        return np.ascontiguousarray(self.images[row_index(indices, len(self), self.name)], dtype=np.float32)

    def batches(self, batch_size: int, *, indices=None, workers: int = 0):
        """(index np.int64 (b,), images torch.float32 (b, C, H, W), labels torch.int64 (b,)) batches in
        order; the images are in memory already, so `workers` is accepted and unused."""
        return iter_batches(self, batch_size, indices=indices, workers=0)

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
    _check_finite(images, name)
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: label {int(labels[i])} of image {i} is outside [0, {len(class_names)})")


def _check_finite(images: np.ndarray, name: str) -> None:
    finite = np.isfinite(images.reshape(len(images), -1)).all(axis=1)
    if not finite.all():
        raise DataError(f"{name}: image {int(np.flatnonzero(~finite)[0])} is NaN or infinite")


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


# -- files: read through the streamed kinds, then held in memory ---------------------------------------------
def load_idx(path: str | Path, *, split: str = "train") -> Dataset:
    """A folder of MNIST-style IDX files ({split}-images-idx3-ubyte[.gz] and labels), or an images file
    whose labels file sits beside it."""
    return in_memory(open_idx(path, split=split))


def load_npz(path: str | Path) -> Dataset:
    """Arrays `images` (or `x`) of shape (N, H, W), (N, H, W, C) or (N, C, H, W) and `labels` (or `y`);
    optional `class_names`. Loaded without pickle."""
    return in_memory(open_npz(path))


def load_image_folder(path: str | Path, *, size: int | None = None) -> Dataset:
    """One sub-folder per class (sorted names); images at the first image's size (or size x size),
    scaled to cover it and centre-cropped."""
    return in_memory(ImageFolderDataset(path, input_size=size))


def load_dataset(spec: str | Path) -> Dataset:
    """'digits', a .npz file, an IDX file or folder, or an image folder, in memory."""
    return in_memory(open_dataset(spec))


def in_memory(ds) -> Dataset:
    """Any data set, all its images read into memory."""
    if isinstance(ds, Dataset):
        return ds
    return Dataset(ds.get(np.arange(len(ds))), ds.labels, ds.class_names, ds.name)


def open_dataset(spec: str | Path, *, input_size: int | None = None, normalize=None):
    """'digits' (in memory, as `load_digits`), a .npz, an IDX file or folder, or an image folder, streamed."""
    options = dict(input_size=input_size, normalize=normalize)
    if str(spec) == "digits":
        d = load_digits()
        if input_size is None and parse_normalize(normalize) is None:
            return d
        return ArrayDataset(d.images, d.labels, d.class_names, d.name, layout="NCHW", scale=(0.0, 1.0), **options)
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{path}: no such data file or folder")
    if path.is_file():
        if path.suffix == ".npz":
            return open_npz(path, **options)
        if "idx" in path.name:
            return open_idx(path, **options)
        raise DataError(f"{path}: unknown data format (expected .npz, IDX, or a folder)")
    if any(path.glob("*-idx3-ubyte*")):
        return open_idx(path, **options)
    return ImageFolderDataset(path, **options)

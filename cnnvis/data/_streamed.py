"""Streamed data sets: image folders decoded on demand, .npz and IDX files memory-mapped. Memory does not
grow with the number of images: only the labels (8 bytes an image) and, for folders, the file names stay
in memory; pages of a mapped file are dropped again after each read.

Every kind offers what the in-memory `Dataset` offers to the analysis: `len(ds)`, `labels`, `class_names`,
`n_classes`, `name`, `image_shape` (C, H, W), `get(indices)`, `batches(batch_size, *, indices, workers)`,
`subset(indices)`, and `normalization` ((mean, std) per channel, or None) to undo it for display.
Images are scaled to [0, 1] as the in-memory loaders do (arrays: by the file's min and max; images: /255),
then resized and centre-cropped (`input_size`) and normalised.
"""
from __future__ import annotations

import copy
import mmap
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat

from cnnvis.data._batching import iter_batches, row_index
from cnnvis.data._datasets import _FASHION, _IMAGE_SUFFIXES, _first, load_digits, read_idx
from cnnvis.errors import DataError, first_line

__all__ = ["StreamedDataset", "ArrayDataset", "ImageFolderDataset", "open_dataset", "open_npz", "open_idx",
           "parse_normalize", "IMAGENET"]

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_SCAN_BYTES = 8 << 20  # min/max/finite scan of a mapped array, a chunk at a time (peak ~2 chunks)
_IN_MEMORY_LIMIT = 2 << 30  # a compressed .npz member is unpacked into memory up to this size


def parse_normalize(spec) -> tuple[np.ndarray, np.ndarray] | None:
    """'imagenet', 'none', 'MEAN,STD' or '[M1,M2,M3],[S1,S2,S3]' (per channel) -> (mean, std) or None."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "none")):
        return None
    if isinstance(spec, str) and spec.strip().lower() == "imagenet":
        mean, std = IMAGENET
    elif isinstance(spec, str):
        import ast

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


class StreamedDataset:
    """Base of the streamed kinds; a subclass reads rows of its source with `_read(rows)` -> (n, C, H, W)
    float32 in [0, 1] at `self._shape`."""

    def __init__(self, labels, class_names, name: str, *, input_size: int | None = None, normalize=None):
        self._labels = np.ascontiguousarray(labels, dtype=np.int64)
        self.class_names = tuple(str(c) for c in class_names)
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


# -- arrays (.npz, IDX, or in memory) -------------------------------------------------------------------------
class _MappedArray:
    """A read-only array at `offset` in a file, mapped on first use in each process (so DataLoader workers
    map it themselves instead of receiving a pickled copy)."""

    def __init__(self, path: Path, offset: int, dtype, shape, fortran: bool = False):
        self.path, self.offset, self.dtype, self.shape, self.fortran = path, offset, np.dtype(dtype), shape, fortran
        self._mm = self._array = None
        need = offset + self.dtype.itemsize * int(np.prod(shape))
        if path.stat().st_size < need:
            raise DataError(f"{path}: truncated (holds {path.stat().st_size} bytes, the array needs {need})")

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_mm", "_array")}

    def __setstate__(self, state):
        self.__dict__.update(state, _mm=None, _array=None)

    @property
    def ndim(self):
        return len(self.shape)

    def take(self, rows: np.ndarray) -> np.ndarray:
        if self._array is None:
            with open(self.path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._array = np.ndarray(self.shape, self.dtype, buffer=self._mm, offset=self.offset,
                                     order="F" if self.fortran else "C")
        if len(rows) and int(rows[-1]) - int(rows[0]) == len(rows) - 1 and (np.diff(rows) == 1).all():
            out = np.array(self._array[int(rows[0]):int(rows[-1]) + 1])  # a run of rows: one plain copy
        else:
            out = self._array[rows]  # fancy indexing copies
        # Mapped pages count as resident memory until dropped; the page cache keeps them for the next read.
        if hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_DONTNEED)
        return out


class ArrayDataset(StreamedDataset):
    """Images in an array (N, H, W), (N, H, W, C) or (N, C, H, W) of any real dtype: memory-mapped from a file
    or in memory; scaled to [0, 1] by the array's min and max (as the in-memory loaders do)."""

    def __init__(self, array, labels, class_names, name: str, *, layout: str | None = None,
                 input_size=None, normalize=None, scale: tuple[float, float] | None = None):
        super().__init__(labels, class_names, name, input_size=input_size, normalize=normalize)
        self._array = array
        shape = tuple(array.shape)
        if layout is None:
            layout = _guess_layout(shape, name)
        if len(shape) != len(layout):
            raise DataError(f"{name}: images of shape {shape} do not have the layout {layout}")
        self._layout = layout
        if shape[0] != self._labels.shape[0]:
            raise DataError(f"{name}: {shape[0]} images but {self._labels.shape[0]} labels")
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise DataError(f"{name}: images must be numbers, got dtype {array.dtype}")
        self._lo, self._hi = scale if scale is not None else self._scan()

    def _source_shape(self):
        s = self._array.shape
        if self._layout == "NHW":
            return 1, s[1], s[2]
        return (s[3], s[1], s[2]) if self._layout == "NHWC" else (s[1], s[2], s[3])

    def _scan(self) -> tuple[float, float]:
        """Min and max over all images, a chunk at a time; the first non-finite image is named."""
        n = self._array.shape[0]
        per = max(1, _SCAN_BYTES // max(1, int(np.prod(self._array.shape[1:])) * self._array.dtype.itemsize))
        lo, hi = np.inf, -np.inf
        floating = np.issubdtype(self._array.dtype, np.floating)
        for s in range(0, n, per):
            rows = np.arange(s, min(n, s + per))
            x = _take(self._array, rows)
            flat = x.reshape(len(x), -1)
            if floating:
                finite = np.isfinite(flat).all(axis=1)
                if not finite.all():
                    raise DataError(f"{self.name}: image {s + int(np.flatnonzero(~finite)[0])} is NaN or "
                                    "infinite")
            lo, hi = min(lo, float(flat.min())), max(hi, float(flat.max()))
        return lo, hi

    def _read(self, rows):
        x = _take(self._array, rows).astype(np.float32)
        if self._hi > self._lo:  # the same formula as _datasets._to_unit, so both kinds agree exactly
            x = (x - np.float32(self._lo)) / (np.float32(self._hi) - np.float32(self._lo))
        else:
            x = np.zeros_like(x)
        if self._layout == "NHW":
            x = x[:, None]
        elif self._layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        if self._input_size:
            x = _resize_crop_tensor(x, int(self._input_size))
        return x


def _take(array, rows):
    return array.take(rows) if isinstance(array, _MappedArray) else np.asarray(array[rows])


def _guess_layout(shape, name) -> str:
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4:
        return "NHWC" if shape[-1] in (1, 3, 4) and shape[1] not in (1, 3, 4) else "NCHW"
    raise DataError(f"{name}: images must have 3 or 4 dimensions, got shape {shape}")


def _resize_crop_tensor(x: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to `size` (bilinear, antialiased), then the centre size x size crop."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[2:]
    if (h, w) == (size, size):
        return x
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(nh, nw), mode="bilinear",
                      align_corners=False, antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    return t[:, :, top:top + size, left:left + size].clamp_(0, 1).numpy()


def open_npz(path: str | Path, **options) -> ArrayDataset:
    """Arrays `images` (or `x`) and `labels` (or `y`), optional `class_names`; the images are mapped in
    place when stored uncompressed (np.savez), unpacked into memory when compressed and small."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            xk = next((k for k in ("images", "x", "X") if k in files), None)
            yk = next((k for k in ("labels", "y", "Y") if k in files), None)
            if xk is None or yk is None:
                raise DataError(f"{path}: needs arrays 'images' and 'labels' (has {', '.join(sorted(files))})")
            y = z[yk]
            names = tuple(str(s) for s in z["class_names"]) if "class_names" in files else None
        images = _npz_member(path, xk)
    except DataError:
        raise
    except Exception as exc:  # zipfile/np.load raise many types on corrupt files
        raise DataError(f"{path}: cannot read .npz ({exc})") from None
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-d integer array, got {y.dtype} of shape {y.shape}")
    if names is None:
        names = tuple(str(i) for i in range(int(y.max()) + 1 if y.size else 0))
    return ArrayDataset(images, y, names, path.stem, **options)


def _npz_member(path: Path, key: str):
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            if info.file_size > _IN_MEMORY_LIMIT:
                raise DataError(f"{path}: array {key!r} is compressed ({info.file_size / 2**30:.1f} GiB unpacked) "
                                "and cannot be memory-mapped; save it with numpy.savez (not savez_compressed) "
                                "to stream it")
            with zf.open(info) as fh:
                return npformat.read_array(fh, allow_pickle=False)
    with open(path, "rb") as fh:  # a stored member: its .npy bytes lie in the file as they are
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise DataError(f"{path}: bad zip entry for {key!r}")
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = npformat.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise DataError(f"{path}: array {key!r} has .npy format version {version}; expected 1.0 or 2.0")
        read_header = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        if dtype.hasobject:
            raise DataError(f"{path}: array {key!r} holds Python objects (would need a pickle): refused")
        return _MappedArray(path, fh.tell(), dtype, shape, fortran)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def open_idx(path: str | Path, *, split: str = "train", **options) -> ArrayDataset:
    """MNIST-style IDX: a folder ({split}-images-idx3-ubyte[.gz] and labels) or an images file with its
    labels file beside it. Plain files are mapped; gzip ones are unpacked into memory."""
    path = Path(path)
    if path.is_dir():
        prefix = "t10k" if split == "test" else "train"
        imgs = _first([path / f"{prefix}-images-idx3-ubyte{s}" for s in ("", ".gz")], path, "images")
        labs = _first([path / f"{prefix}-labels-idx1-ubyte{s}" for s in ("", ".gz")], path, "labels")
    else:
        imgs = path
        labs = _first([path.with_name(path.name.replace("images-idx3", "labels-idx1"))], path.parent, "labels")
    x = read_idx(imgs) if imgs.suffix == ".gz" else _map_idx(imgs)
    y = read_idx(labs)
    if x.ndim != 3:
        raise DataError(f"{imgs}: expected images of shape (N, H, W), got {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{labs}: {y.shape} labels for {x.shape[0]} images in {imgs.name}")
    k = int(y.max()) + 1
    names = _FASHION if "fashion" in str(path).lower() and k == 10 else tuple(str(i) for i in range(k))
    return ArrayDataset(x, y.astype(np.int64), names, path.name, layout="NHW", **options)


def _map_idx(path: Path) -> _MappedArray:
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
            raise DataError(f"{path}: not an IDX file (bad magic number)")
        ndim = head[3]
        dims = fh.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[head[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    have = path.stat().st_size - 4 - 4 * ndim
    if have != need:
        raise DataError(f"{path}: IDX file holds {have} data bytes, its header promises {need}")
    return _MappedArray(path, 4 + 4 * ndim, dtype, shape)


# -- image folders ---------------------------------------------------------------------------------------
class ImageFolderDataset(StreamedDataset):
    """One sub-folder per class (sorted names), images decoded when read. Colour mode (grey or RGB) and,
    without `input_size`, the size come from the first image; images of another size are scaled to cover
    it and centre-cropped."""

    def __init__(self, path: str | Path, *, input_size=None, normalize=None):
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"{path}: no such folder")
        classes = sorted(p for p in path.iterdir() if p.is_dir())
        if not classes:
            raise DataError(f"{path}: an image folder needs one sub-folder per class")
        files, labels = [], []
        for k, folder in enumerate(classes):
            names = sorted(f.name for f in folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
            files += [f"{folder.name}/{n}" for n in names]
            labels += [k] * len(names)
        if not files:
            raise DataError(f"{path}: no images found in its class folders")
        super().__init__(np.asarray(labels, np.int64), [c.name for c in classes], path.name,
                         input_size=input_size, normalize=normalize)
        self.root, self.files = path, files
        first = self._open(0)
        self._mode = "L" if first.mode in ("L", "1", "I", "I;16", "F", "LA") else "RGB"
        w, h = first.size
        self._size = (int(input_size), int(input_size)) if input_size else (w, h)

    def _source_shape(self):
        return (1 if self._mode == "L" else 3, self._size[1], self._size[0])

    def _open(self, row: int):
        from PIL import Image

        f = self.root / self.files[row]
        try:
            with Image.open(f) as im:
                im.load()
                return im.copy()
        except Exception as exc:  # PIL raises OSError, SyntaxError, DecompressionBombError, ...
            raise DataError(f"{f}: cannot read image ({first_line(exc)})") from None

    def _read(self, rows):
        c, h, w = self._source_shape()
        out = np.empty((len(rows), c, h, w), np.float32)
        for j, r in enumerate(rows):
            im = _cover_crop(self._open(int(r)).convert(self._mode), (w, h))
            a = np.asarray(im, dtype=np.float32) / np.float32(255.0)
            out[j] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        return out

    def _describe(self, row):
        return f" ({self.root / self.files[row]})"


def _cover_crop(im, size):
    """Scale `im` to cover (w, h) keeping its aspect ratio, then crop the centre to exactly (w, h)."""
    from PIL import Image

    w, h = size
    if im.size == (w, h):
        return im
    s = max(w / im.size[0], h / im.size[1])
    nw, nh = max(w, round(im.size[0] * s)), max(h, round(im.size[1] * s))
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - w) // 2, (nh - h) // 2
    return im.crop((left, top, left + w, top + h))



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

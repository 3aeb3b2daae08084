"""Images in arrays: .npz and IDX files memory-mapped in place (pages dropped again after each read, so
resident memory does not grow with the file), or an array in memory. Scaled to [0, 1] by the array's min
and max, found in one chunked pass that also names the first non-finite image."""
from __future__ import annotations

import gzip
import mmap
import struct
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat

from cnnvis.data._base import ClassNumbers, StreamedDataset
from cnnvis.errors import DataError

__all__ = ["ArrayDataset", "open_npz", "open_idx", "read_idx"]

_SCAN_BYTES = 8 << 20  # min/max/finite scan of a mapped array, a chunk at a time (peak ~2 chunks)
_IN_MEMORY_LIMIT = 2 << 30  # a compressed .npz member is unpacked into memory up to this size


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
        if self._hi > self._lo:
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
        names = ClassNumbers(int(y.max()) + 1 if y.size else 0)
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
            raise DataError(f"{path}: cannot read array {key!r}: it holds Python objects (a pickle): refused")
        return _MappedArray(path, fh.tell(), dtype, shape, fortran)


_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
            "Ankle boot")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzip) read into memory."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    dtype, dims, head = _idx_header(raw, len(raw), path)
    return np.frombuffer(raw, dtype, offset=head).reshape(dims)


def _map_idx(path: Path) -> _MappedArray:
    """A plain IDX file, mapped."""
    with open(path, "rb") as fh:
        start = fh.read(4 + 4 * 255)  # the longest header there is
    dtype, dims, head = _idx_header(start, path.stat().st_size, path)
    return _MappedArray(path, head, dtype, dims)


def _idx_header(raw: bytes, size: int, path: Path):
    """(dtype, dims, header bytes) from the first bytes of an IDX file of `size` bytes."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    if size - head != need:
        raise DataError(f"{path}: IDX file holds {size - head} data bytes, its header promises {need}")
    return dtype, dims, head


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
    names = _FASHION if "fashion" in str(path).lower() and k == 10 else ClassNumbers(k)
    return ArrayDataset(x, y.astype(np.int64), names, path.name, layout="NHW", **options)


def _first(candidates, where, what) -> Path:
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(f"{where}: no IDX {what} file (looked for {', '.join(c.name for c in candidates)})")

"""Image folders, one sub-folder per class, decoded when read (in DataLoader workers when asked): only the
file names and labels stay in memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnvis.data._base import StreamedDataset
from cnnvis.errors import DataError, first_line

__all__ = ["ImageFolderDataset", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


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
            names = sorted(f.name for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            files += [f"{folder.name}/{n}" for n in names]
            labels += [k] * len(names)
        if not files:
            raise DataError(f"{path}: no images found in its class folders")
        super().__init__(np.asarray(labels, np.int64), [c.name for c in classes], path.name,
                         input_size=input_size, normalize=normalize)
        self.root, self.files = path, files
        first = self._decode(0)
        self._mode = "L" if first.mode in ("L", "1", "I", "I;16", "F", "LA") else "RGB"
        w, h = first.size
        self._size = (int(input_size), int(input_size)) if input_size else (w, h)

    def _source_shape(self):
        return (1 if self._mode == "L" else 3, self._size[1], self._size[0])

    def _decode(self, row: int, size=None):
        """The image of `row`: as stored, or in this data set's mode covering and cropped to `size` (w, h)."""
        from PIL import Image

        f = self.root / self.files[row]
        try:
            with Image.open(f) as im:
                if size is None:
                    im.load()
                    return im.copy()
                if im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that still covers `size`
                    im.draft(self._mode, size)
                return _cover_crop(im.convert(self._mode), size)
        except Exception as exc:  # PIL raises OSError, SyntaxError, DecompressionBombError, ...
            raise DataError(f"{f}: cannot read image ({first_line(exc)})") from None

    def _read(self, rows):
        c, h, w = self._source_shape()
        out = np.empty((len(rows), c, h, w), np.float32)
        for j, r in enumerate(rows):
            a = np.asarray(self._decode(int(r), (w, h)), dtype=np.float32) / np.float32(255.0)
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

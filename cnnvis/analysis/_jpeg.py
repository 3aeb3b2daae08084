"""Learned-feature crops in the file: raw uint8 while they total at most LOSSLESS_LIMIT bytes (small models
round-trip exactly), JPEG (quality 90, no chroma subsampling) sheets of 8-aligned tiles beyond that, decoded
when a patch is first read."""
from __future__ import annotations

import io

import numpy as np

from cnnvis.analysis._patch_types import CropGroup
from cnnvis.errors import AnalysisFileError

__all__ = ["LOSSLESS_LIMIT", "JPEG_QUALITY", "encode_groups", "decode_groups"]

LOSSLESS_LIMIT = 16 * 2**20  # up to this many bytes of crops the file stores them raw
JPEG_QUALITY = 90
_SHEET = 4096                # sheet side in pixels (JPEG allows 65535; smaller sheets decode on demand)


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
        decode_sheet = _sheet_decoder(path, gi, shape, n, e, sheets)
        per = int(e["cols"]) * int(e["rows"])

        def decode_all(d=decode_sheet, k=len(sheets), n=n, per=per, shape=shape):
            parts = [_sheet_crops(*d(s), min(per, n - s * per), shape) for s in range(k)]
            return np.concatenate(parts) if parts else np.empty((0, *shape), np.uint8)

        groups.append(CropGroup(shape, decode=decode_all, n=n, sheet=decode_sheet, per_sheet=per))
    return groups


def _sheet_decoder(path, gi, shape, n, e, sheets):
    """s -> (sheet s as an (H, W, ch) image, tile (th, tw), tiles per row): crops are cut from it when read."""
    def decode(s):
        from PIL import Image

        ch = shape[2]
        th, tw = (int(v) for v in e["tile"])
        cols, rows = int(e["cols"]), int(e["rows"])
        m = min(cols * rows, n - s * cols * rows)
        r = -(-m // cols)
        try:
            with Image.open(io.BytesIO(sheets[s].tobytes())) as im:
                if im.size != (cols * tw, r * th):  # from the header, before the pixels are decoded
                    raise AnalysisFileError(f"{path}: corrupt analysis file: member patches/{gi}/sheet/{s}.npy "
                                            f"is a {im.size[0]}x{im.size[1]} image, expected {cols * tw}x{r * th}")
                mode = "L" if ch == 1 else "RGB"
                a = np.asarray(im if im.mode == mode else im.convert(mode))
        except AnalysisFileError:
            raise
        except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, ... on bad data
            raise AnalysisFileError(f"{path}: corrupt analysis file: member patches/{gi}/sheet/{s}.npy is not "
                                    f"a readable image ({type(exc).__name__}: {exc})") from None
        return a.reshape(r * th, cols * tw, ch), (th, tw), cols

    return decode


def _sheet_crops(image, tile, cols, m, shape) -> np.ndarray:
    """The first m crops (m, h, w, ch) of a decoded sheet."""
    (th, tw), (h, w, ch) = tile, shape
    r = -(-m // cols)
    tiles = image.reshape(r, th, cols, tw, ch).transpose(0, 2, 1, 3, 4).reshape(r * cols, th, tw, ch)
    return np.ascontiguousarray(tiles[:m, :h, :w])

"""Short names for narrow places (column labels, panel buttons): abbreviated by a rule that keeps the part
that tells layers apart, their tail (`features.conv3_2` -> `…conv3_2`), never a shared head."""
from __future__ import annotations

from cnnvis.gl._text import text_width

__all__ = ["abbreviate"]

ELLIPSIS = "\u2026"


def _tail(part: str) -> str:
    for sep in (".", "/", ":"):
        part = part.rsplit(sep, 1)[-1]
    return part


def abbreviate(name: str, width: float, size: float) -> str:
    """`name` if it fits in `width` pixels at font `size`; else the last path component of each end of
    a range ("features.3–features.7" -> "…3–7"), and if that is still too wide its last characters."""
    name = str(name)
    if text_width(name, size) <= width:
        return name
    short = "\u2013".join(_tail(p) for p in name.split("\u2013"))
    short = ELLIPSIS + short if short != name else short
    if text_width(short, size) <= width:
        return short
    core = short.lstrip(ELLIPSIS)
    while len(core) > 1 and text_width(ELLIPSIS + core, size) > width:
        core = core[1:]
    return ELLIPSIS + core


HEADER_SIZE = 12.0   # font size of the column names, in pixels at every zoom


def column_headers(scene, camera, size) -> list:
    """The name over every column on screen: (column, text, (x0, y0, x1, y1) canvas box, full name).
    A header strip along the top of the view, in window pixels, so names read at every zoom (the Scene's
    own labels keep their level of detail); each abbreviated to the room up to the next column."""
    from cnnvis.layout import RECT_COLUMN

    s = scene
    cols = [(int(s.rect_column[r]), s.rect_box[r]) for r in range(s.n_rects) if s.rect_kind[r] == RECT_COLUMN]
    if not cols:
        return []
    cols.sort(key=lambda cb: float(cb[1][0]))
    rx, ry, rw, rh = camera.region
    out = []
    for j, (c, box) in enumerate(cols):
        px0, py0 = camera.to_pixel((float(box[0]), float(box[1])))
        px1, py1 = camera.to_pixel((float(box[2]), float(box[3])))
        nxt = camera.to_pixel((float(cols[j + 1][1][0]), 0.0))[0] if j + 1 < len(cols) else px1 + 40
        if px1 < rx or px0 > rx + rw:
            continue
        full = str(s.column_names[c]) if c < len(s.column_names) else f"column {c}"
        room = max(nxt - px0 - 6, px1 - px0, 24.0)
        text = abbreviate(full, room, HEADER_SIZE)
        y = ry + rh - HEADER_SIZE - 4
        x = max(px0, rx + 2)
        out.append((c, text, (x, y - 3, x + text_width(text, HEADER_SIZE), y + HEADER_SIZE), full))
    return out

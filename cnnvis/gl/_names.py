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
    """`name` if it fits in `width` pixels at font `size`; else, for a layer cluster's "module · contents"
    name, the module's name alone (abbreviated likewise); else the last path component of each end of
    a range ("features.3–features.7" -> "…3–7"), and if that is still too wide its last characters."""
    name = str(name)
    if text_width(name, size) <= width:
        return name
    if " \u00b7 " in name:   # "denseblock2 · 12× denselayer": the module's name first, its contents if room
        return abbreviate(name.split(" \u00b7 ")[0], width, size)
    short = "\u2013".join(_tail(p) for p in name.split("\u2013"))
    short = ELLIPSIS + short if short != name else short
    if text_width(short, size) <= width:
        return short
    core = short.lstrip(ELLIPSIS)
    while len(core) > 1 and text_width(ELLIPSIS + core, size) > width:
        core = core[1:]
    return ELLIPSIS + core


HEADER_SIZE = 12.0   # font size of the column names, in pixels at every zoom
LABEL_MIN_PX = 4.5   # a Scene label shows once its size at the current zoom reaches this (level of detail)


def label_shown_whole(scene, camera, text: str, room: float) -> bool:
    """Whether the Scene's own label `text` is drawn (level of detail), inside the view and no wider
    than `room` pixels: then it names its column legibly and the header need not repeat it."""
    for t, pos, size in zip(scene.label_text, scene.label_pos, scene.label_size):
        if str(t) != text:
            continue
        if size * camera.zoom < LABEL_MIN_PX:
            return False
        px = size * min(max(camera.zoom, 0.85), 1.6)   # as the renderer scales labels (u_text_scale)
        x, y = camera.to_pixel((float(pos[0]), float(pos[1])))
        rx, ry, rw, rh = camera.region
        return (text_width(text, px) <= room and rx <= x and x + text_width(text, px) <= rx + rw
                and ry <= y and y + px <= ry + rh - HEADER_SIZE - 6)
    return False


def column_headers(scene, camera, size) -> list:
    """The name over every column on screen: (column, text, (x0, y0, x1, y1) canvas box, full name).
    A header strip along the top of the view, in window pixels, so names read at every zoom (the Scene's
    own labels keep their level of detail); each abbreviated to the room up to the next column; left out
    where the Scene's own label already shows that name whole and on screen."""
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
        if label_shown_whole(s, camera, full, room):
            continue
        text = abbreviate(full, room, HEADER_SIZE)
        y = ry + rh - HEADER_SIZE - 4
        x = max(px0, rx + 2)
        out.append((c, text, (x, y - 3, x + text_width(text, HEADER_SIZE), y + HEADER_SIZE), full))
    return out

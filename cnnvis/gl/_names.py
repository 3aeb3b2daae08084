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

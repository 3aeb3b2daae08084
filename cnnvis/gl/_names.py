"""Short names for narrow places (column labels, panel buttons): abbreviated by a rule that keeps the part
that tells layers apart. Among a Scene's column names (`distinct_names`), the head every name shares goes
first (`features.conv3_2` -> `conv3_2`), then the name keeps its last part and, right to left, the parts
that tell it from the names that end alike (`denseblock2.denselayer1.conv` -> `denseblock2…conv` beside
`denseblock3.denselayer1.conv`), never `…conv` three times."""
from __future__ import annotations

import functools
import re

from cnnvis.gl._text import ink_box, text_width

__all__ = ["abbreviate", "distinct_names", "short_name", "column_headers", "column_label_rows", "HEADER_SIZE"]

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


_SPLIT = re.compile(r"[./:]")


def _parts(name: str) -> list:
    return _SPLIT.split(name)


def _common_head(names) -> int:
    """Number of leading parts every name shares (all but each name's last part at most)."""
    parts = [_parts(n) for n in names]
    if len(parts) < 2:
        return 0
    k = 0
    while all(len(p) > k + 1 for p in parts) and len({p[k] for p in parts}) == 1:
        k += 1
    return k


def _render(parts: list, kept: set) -> str:
    out, gap = [], False
    for i, p in enumerate(parts):
        if i in kept:
            out.append((ELLIPSIS if gap else ("." if out else "")) + p)
            gap = False
        else:
            gap = True
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _distinct(names: tuple, i: int) -> str:
    """The shortest form of names[i] (in parts) that no other name of `names` shares: the common head
    dropped, the last part kept, then parts right to left that rule out the names ending alike."""
    head = _common_head(names)
    split = [_parts(n)[head:] for n in names]
    me = split[i]
    kept = {len(me) - 1}

    def clash(other):   # another name with the same parts at the kept places (counted from the end)
        off = len(other) - len(me)
        return all(0 <= j + off < len(other) and other[j + off] == me[j] for j in kept)

    rivals = [o for k, o in enumerate(split) if k != i and o != me]
    while True:
        left = [o for o in rivals if clash(o)]
        if not left or len(kept) == len(me):
            break
        free = [j for j in range(len(me) - 1, -1, -1) if j not in kept]
        # the part that rules out most of the names still clashing; rightmost on a tie
        best = max(free, key=lambda j: (sum(1 for o in left if not (0 <= j + len(o) - len(me) < len(o))
                                            or o[j + len(o) - len(me)] != me[j]), j))
        kept.add(best)
    text = _render(me, kept)
    return text


def short_name(names, i: int, width: float, size: float) -> str:
    """names[i] to fit `width` pixels at font `size`, told apart from the other `names`: whole if it fits,
    else its distinct form (see the module), else that form's last characters."""
    names = tuple(str(n) for n in names)
    name = names[i]
    if text_width(name, size) <= width:
        return name
    module = name.split(" \u00b7 ")[0]   # "features.3 · 2 blocks": the module's whole name reads best
    if module != name and text_width(module, size) <= width:
        return module
    short = _distinct(names, i)
    if text_width(short, size) <= width:
        return short
    return _squeeze(short, width, size)


def _squeeze(text: str, width: float, size: float) -> str:
    """Shorten a distinct form's parts but its last from their left (numbers sit at a part's end:
    `…denseblock1.denselayer1.conv` -> `…ock1…yer1.conv`), longest first; then its last characters."""
    pieces = [p for p in re.split(r"([.\u2026])", text) if p]
    words = [k for k, p in enumerate(pieces) if p not in (".", ELLIPSIS)]
    cut = set()

    def joined():
        out = ""
        for k, p in enumerate(pieces):
            if k in cut and out.endswith("."):
                out = out[:-1]
            out += (ELLIPSIS if k in cut and not out.endswith(ELLIPSIS) else "") + p
        return out

    while text_width(joined(), size) > width:
        k = max(words[:-1], key=lambda k: len(pieces[k]), default=None)
        if k is None or len(pieces[k]) <= 2:
            break
        pieces[k] = pieces[k][1:]
        cut.add(k)
    return abbreviate(joined(), width, size)


def distinct_names(names, width: float, size: float) -> list:
    """Every name shortened to `width` pixels (short_name), each told apart from the others; when any must
    be shortened, all lose the head they share, so the list reads alike (`conv1`, `conv2_1`, ...)."""
    names = tuple(str(n) for n in names)
    if all(text_width(n, size) <= width for n in names):
        return list(names)
    modules = [n.split(" \u00b7 ")[0] for n in names]   # "features.3 · 2 blocks" -> "features.3", for all alike
    if len(set(modules)) == len(modules) and all(text_width(m, size) <= width for m in modules):
        return modules
    return [_distinct(names, i) if text_width(_distinct(names, i), size) <= width else short_name(names, i, width, size)
            for i in range(len(names))]


HEADER_SIZE = 12.0   # font size of the column names, in pixels at every zoom
LABEL_MIN_PX = 4.5   # a Scene label (other than a column title) shows once this big on screen
SUB_SIZE = 10.0      # font size of the line under a name (representative layer, neurons)


def _label_rows(scene) -> dict:
    """column -> (row of its name in Scene.label_text or -1, row of the line under it or -1)."""
    s = scene
    rows = {}
    texts = [str(t) for t in s.label_text]
    for c, name in enumerate(s.column_names):
        i = texts.index(str(name)) if str(name) in texts else -1
        sub = i + 1 if 0 <= i < len(texts) - 1 and texts[i + 1] not in s.column_names else -1
        rows[c] = (i, sub)
    return rows


def column_label_rows(scene) -> set:
    """Rows of Scene.label_text the overlay draws as column titles (the renderer leaves them out)."""
    return {r for pair in _label_rows(scene).values() for r in pair if r >= 0}


def column_headers(scene, camera, size, *, with_sub: bool = False) -> list:
    """The title of every column on screen, in window pixels so it reads at every zoom, drawn once: at the
    place of the Scene's own label while that is in view, else pinned to the top of the view. Each name
    is shortened to the room up to the next column (short_name: told apart from the other names).
    Far out, where the columns are narrower than a title, a title that would touch the one before it is
    left out. Returns (column, text, (x0, y0, x1, y1) canvas box, full name); with_sub=True also the line under a
    name that sits in its place and fits its room whole, as (column, text, box, "") rows after it."""
    from cnnvis.layout import RECT_COLUMN

    s = scene
    cols = [(int(s.rect_column[r]), s.rect_box[r]) for r in range(s.n_rects) if s.rect_kind[r] == RECT_COLUMN]
    if not cols:
        return []
    cols.sort(key=lambda cb: float(cb[1][0]))
    rows = _label_rows(s)
    names = tuple(str(n) for n in s.column_names)
    rx, ry, rw, rh = camera.region
    top = ry + rh - HEADER_SIZE - 4
    out = []
    clear = -1e9   # titles are placed left to right; one that would touch the last is left out (far out)
    for j, (c, box) in enumerate(cols):
        px0, _ = camera.to_pixel((float(box[0]), float(box[1])))
        px1, py1 = camera.to_pixel((float(box[2]), float(box[3])))
        nxt = camera.to_pixel((float(cols[j + 1][1][0]), 0.0))[0] if j + 1 < len(cols) else px1 + 40
        if px1 < rx or px0 > rx + rw:
            continue
        full = names[c] if c < len(names) else f"column {c}"
        x = max(px0, rx + 2)
        room = min(max(nxt - x - 8, px1 - x, 24.0), rx + rw - 2 - x)
        if x < clear or room < 12.0:
            continue
        text = short_name(names, c, room, HEADER_SIZE) if c < len(names) else full
        i, sub = rows.get(c, (-1, -1))
        own_y = camera.to_pixel(tuple(float(v) for v in s.label_pos[i]))[1] if i >= 0 else py1 + 26 * camera.zoom
        ys = py1 + 5                                   # the line under the name sits just over the column
        y = min(max(own_y, ys + SUB_SIZE + 6) if sub >= 0 else own_y, top)   # room for the line under it
        out.append((c, text, ink_box(text, x, y, HEADER_SIZE), full))
        clear = out[-1][2][2] + 6
        if with_sub and sub >= 0:
            line = str(s.label_text[sub])
            w = text_width(line, SUB_SIZE)
            box = ink_box(line, x, ys, SUB_SIZE)
            if w <= room and ry + 2 <= box[1] and box[3] + 2 <= out[-1][2][1]:   # clear of the view's edge, the name
                out.append((c, line, box, ""))
    return out

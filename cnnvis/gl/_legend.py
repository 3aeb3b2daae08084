"""The legend bar between the view and the chart (it covers nothing): what the edge colour means in the current edge mode, what
a cluster's fill means, and the scale of each facet on screen (matrix: class order and activation ramp;
importance: the bar). Pure: entries from (Scene, ViewState), drawn into a UiBatch. Colours come from
cnnvis.layout._palette, the palette the layout and the shaders use."""
from __future__ import annotations

import numpy as np

from cnnvis.gl._derived import rect_facets
from cnnvis.gl._state import FACETS, ViewState
from cnnvis.gl._text import text_width
from cnnvis.gl._ui import THEME, UiBatch
from cnnvis.layout import RECT_CLUSTER
from cnnvis.layout import _palette as pal

__all__ = ["legend_entries", "draw_legend", "legend_height", "legend_shown", "LEGEND_MIN_SIZE", "matrix_labels"]

LEGEND_MIN_SIZE = (700, 500)   # a smaller window keeps its room for the view (key L shows the legend)


def legend_shown(state: ViewState, size) -> bool:
    if state.show_legend is not None:
        return bool(state.show_legend)
    return size[0] >= LEGEND_MIN_SIZE[0] and size[1] >= LEGEND_MIN_SIZE[1]

ROW_H, SWATCH_W, PAD, SIZE = 17.0, 22.0, 8.0, 10.5
_GREY = np.array([0.80, 0.81, 0.83, 1.0], np.float32)   # curve.vert's GREY: the weak end of the ramps


def legend_height(size, scene) -> float:
    """Height of the legend bar: the rows its longest content (every edge mode, both facet scales) takes
    at this width, so the view does not move when the edge mode or a facet changes."""
    from cnnvis.gl._panel import panel_width

    x1 = size[0] - panel_width(size)
    rows = 1
    for mode in ("weight", "gradient", "change"):
        st = ViewState(edge_mode=mode, cluster_facet={(-7, -7): "matrix"}, facet="importance")
        rows = max(rows, _place(_entries(scene, st, {"matrix", "importance"}), 0.0, x1)[1])
    return rows * ROW_H + 6.0


def _c(v) -> tuple:
    return tuple(float(x) for x in np.asarray(v, np.float32)[:3]) + (1.0,)


def legend_entries(scene, state: ViewState) -> list:
    """(title, [(swatch, text)]) sections; a swatch is ("solid", colour), ("ramp", low, high),
    ("box", fill, border) or ("frame", colour) (a patch's tint, Scene.legend_extra's rows)."""
    clusters = scene.rect_kind == RECT_CLUSTER
    shown = {FACETS[int(f)] for f in rect_facets(scene, state)[clusters]} if clusters.any() else set()
    return _entries(scene, state, shown)


def _entries(scene, state: ViewState, shown: set) -> list:
    out = []
    if scene.n_curves:
        if state.edge_mode == "weight":
            rows = [(("solid", _c(pal.POSITIVE)), "positive weight"), (("solid", _c(pal.NEGATIVE)), "negative weight")]
            note = "width, opacity: strength"
        elif state.edge_mode == "gradient":
            rows = [(("ramp", _c(_GREY), _c(pal.GRADIENT)), "gradient magnitude, low to high (log)")]
            note = "opacity: magnitude"
        else:
            rows = [(("ramp", _c(_GREY), _c(pal.CHANGE)), "relative weight change, low to high (log)")]
            note = "at the shown snapshot"
        out.append((f"EDGES ({state.edge_mode})", rows + [(None, note)]))
    clusters = scene.rect_kind == RECT_CLUSTER
    if clusters.any():
        rows = [(("ramp", _c(pal.CLUSTER_LOW), _c(pal.CLUSTER_HIGH)), "cluster importance, low to high")]
        if len(scene.rect_dead) == scene.n_rects and scene.rect_dead.any():
            rows.append((("box", _c(pal.DEAD_FILL), _c(pal.DEAD_BORDER)), "dead: neurons that never fire"))
        out.append(("CLUSTER FILL", rows))
    if "matrix" in shown and len(scene.class_names):
        names = " ".join(str(n) for n in scene.class_names)
        out.append(("MATRIX FACET (ROWS: NEURONS)", [
            (("ramp", _c(pal.MATRIX_LOW), _c(pal.MATRIX_HIGH)), "activation, 0 to 1 of the neuron's max"),
            (None, f"columns, left to right: classes {names}")]))
    if "importance" in shown:
        out.append(("IMPORTANCE FACET", [(("ramp", _c(pal.CLUSTER_LOW), _c(pal.IMPORTANCE)),
                                          "bar height: importance, 0 to 1 of the layer's top")]))
    for title, rows in scene.legend_extra:   # the application's: what its tints and marks mean
        out.append((title, [((("frame", _c(c)) if c is not None else None), text) for c, text in rows]))
    return out


def _place(entries, x0: float, x1: float):
    """Positions of the legend's pieces, wrapped at x1: ([(row, x, kind, payload)], rows used)."""
    out, row, x = [], 0, x0 + PAD
    for title, items in entries:
        need = text_width(title, 9.5) + 8
        if x + need > x1 - PAD and x > x0 + PAD:
            row, x = row + 1, x0 + PAD
        out.append((row, x, "title", title))
        x += need
        for sw, text in items:
            w = (SWATCH_W + 5 if sw is not None else 0) + text_width(text, SIZE)
            if x + w > x1 - PAD:
                row, x = row + 1, x0 + PAD + 12
            out.append((row, x, "item", (sw, text)))
            x += w + 12
        x += 10
    return out, row + 1


def draw_legend(batch: UiBatch, scene, state: ViewState, box) -> list:
    """The legend into `batch`, in the canvas box (x0, y0, x1, y1) (legend_height tall: everything
    fits); returns [(swatch, text, swatch box)] as drawn."""
    x0, y0, x1, y1 = box
    batch.rect((x0, y0, x1, y1), THEME["background"], radius=0, border_width=0)
    drawn = []
    for row, x, kind, payload in _place(legend_entries(scene, state), x0, x1)[0]:
        ty = y1 - 3 - ROW_H * (row + 1)
        if kind == "title":
            batch.text(payload, x, ty + 5, 9.5, THEME["muted"])
            continue
        sw, text = payload
        sbox = (x, ty + 4, x + SWATCH_W, ty + ROW_H - 4)
        if sw is not None:
            _swatch(batch, sw, sbox)
            x += SWATCH_W + 5
        batch.text(text, x, ty + 5, SIZE, THEME["text"] if sw is not None else THEME["muted"])
        drawn.append((sw, text, sbox))
    return drawn


def _swatch(batch: UiBatch, sw, box) -> None:
    x0, y0, x1, y1 = box
    if sw[0] == "solid":
        batch.rect((x0, (y0 + y1) / 2 - 2.5, x1, (y0 + y1) / 2 + 2.5), sw[1], radius=2, border_width=0)
    elif sw[0] == "frame":
        batch.rect(box, THEME["background"], sw[1], radius=1, border_width=3)
    elif sw[0] == "box":
        batch.rect(box, sw[1], sw[2], radius=2, border_width=1.5)
    else:   # a ramp in 8 steps
        lo, hi = np.array(sw[1]), np.array(sw[2])
        n = 8
        for k in range(n):
            t = k / (n - 1)
            c = tuple(float(v) for v in (1 - t) * lo + t * hi)
            batch.rect((x0 + k * (x1 - x0) / n, y0, x0 + (k + 1) * (x1 - x0) / n + 0.5, y1), c, radius=0,
                       border_width=0)


MATRIX_LABEL_MIN_PX = 8.0   # class names over a matrix's columns once a column is this wide on screen
MATRIX_LABEL_SIZE = 9.0


def _class_labels(names, width: float) -> list | None:
    """Class names that each fit a matrix column `width` pixels wide: whole, else their first characters
    when those still tell every class apart; None when they cannot (the legend gives the order)."""
    names = [str(n) for n in names]
    for n in range(max(len(x) for x in names), 0, -1):
        short = [x[:n] for x in names]
        if len(set(short)) < len(short):
            return None
        if max(text_width(x, MATRIX_LABEL_SIZE) for x in short) <= width - 2:
            return short
    return None


def matrix_labels(scene, state: ViewState, camera) -> list:
    """(class name, x, y) canvas points over the columns of every matrix shown in the matrix facet, where
    every name fits its column (so none overlaps the next) and the row of names lies inside the view
    (never over the panel or the chart); its columns are the classes in Scene.class_names order."""
    s = scene
    K = len(s.class_names)
    if not K or not len(s.matrix_rect):
        return []
    facet = rect_facets(s, state)
    rx, ry, rw, rh = camera.region
    out = []
    for m, r in enumerate(s.matrix_rect):
        if FACETS[int(facet[r])] != "matrix":
            continue
        x0, y0, x1, y1 = (float(v) for v in s.matrix_box[m])
        (px0, _), (px1, py1) = camera.to_pixel((x0, y0)), camera.to_pixel((x1, y1))
        cw = (px1 - px0) / K
        if cw < MATRIX_LABEL_MIN_PX or px0 < rx or px1 > rx + rw or py1 < ry or py1 > ry + rh - 30:
            continue
        names = _class_labels(s.class_names, cw)
        if names is None:
            continue
        out += [(n, px0 + (k + 0.5) * cw, py1 + 2) for k, n in enumerate(names)]
    return out

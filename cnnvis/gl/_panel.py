"""The control panel (paper Fig. 1 (c)): widgets laid out in canvas pixels at the right edge, drawn in GL
and hit-tested here. Pure functions of (view state, scene, canvas size); the Viewer applies actions.

The panel always fits its window: everything but its three lists (findings, classes, layers) has a fixed
height, and the rows left over are shared out among the lists, each scrolled with ^ v buttons. Controls
that can do nothing with this Scene (an edge colour without its data, Undo with nothing to undo) are drawn
disabled, and their tooltip says why."""
from __future__ import annotations

from cnnvis.gl._derived import edge_mode_missing, visible_curves
from cnnvis.gl._names import distinct_names
from cnnvis.gl._panel_detail import detail_section
from cnnvis.gl._panel_findings import findings_section
from cnnvis.gl._state import EDGE_MODES, FACETS, ViewState
from cnnvis.gl._text import text_width
from cnnvis.gl._ui import THEME, UiBatch
from cnnvis.gl._widgets import GAP, MARGIN, ROW, Widget, fit_text, list_rows

__all__ = ["panel_width", "panel_widgets", "draw_panel", "class_order", "list_allotment", "LAYERS_PER_ROW"]

LAYERS_PER_ROW = 2
HEADING = 26.0            # a heading's line, its text and the gap under it
_MIN_ROWS = {"findings": 2, "classes": 1, "layers": 2}    # each list keeps this many rows when it has them
_MAX_ROWS = {"findings": 6, "classes": 3, "layers": 99}   # and takes at most this many of what is left


def panel_width(size) -> float:
    return float(min(250.0, max(170.0, 0.26 * size[0]), 0.5 * size[0]))


def _class_key(name: str):
    """Classes sorted as people count: numbers by value, then names alphabetically."""
    s = str(name)
    return (0, float(s), s) if s.lstrip("-").replace(".", "", 1).isdigit() else (1, 0.0, s.lower())


def class_order(scene) -> list:
    """Scene class indices in the order the panel's buttons show them (by name, numbers by value)."""
    return sorted(range(len(scene.class_names)), key=lambda k: _class_key(scene.class_names[k]))


def _classes_per_row(scene) -> int:
    return 5 if max(len(str(n)) for n in scene.class_names) <= 3 else 2


def _needed_rows(state, scene) -> dict:
    """Rows each list takes to show whole."""
    return {"findings": len(scene.findings),   # by count, not groups: the list keeps its height over edits
            "classes": -(-len(scene.class_names) // _classes_per_row(scene)) if scene.class_names else 0,
            "layers": -(-len(scene.column_names) // LAYERS_PER_ROW)}


def list_allotment(needed: dict, free_rows: int) -> dict:
    """Rows given to each list from `free_rows`: first each its minimum (as far as they go), then the rest
    in turn up to each one's maximum, the layer list taking whatever is left."""
    got = {k: 0 for k in needed}
    for k in ("classes", "findings", "layers"):
        take = min(needed[k], _MIN_ROWS[k], free_rows)
        got[k], free_rows = take, free_rows - take
    for k in ("findings", "classes", "layers"):
        take = max(min(needed[k], _MAX_ROWS[k]) - got[k], 0)
        take = min(take, free_rows)
        got[k], free_rows = got[k] + take, free_rows - take
    return got


def panel_widgets(state: ViewState, scene, size) -> list[Widget]:
    """The panel's widgets, top to bottom, all inside the window. Laid out twice: once with empty lists to
    measure the fixed part, then with the rows left shared out among the lists."""
    needed = _needed_rows(state, scene)
    fixed = _layout(state, scene, size, {k: 0 for k in needed})
    bottom = min((w.box[1] for w in fixed), default=size[1])
    free = max(int(max(bottom - 4.0, 0.0) // (ROW + GAP)), 1)
    # A window too short for even that shows what fits (everything stays reachable by keys and methods).
    return [w for w in _layout(state, scene, size, list_allotment(needed, free)) if w.box[1] >= 4]


def _layout(state: ViewState, scene, size, rows: dict) -> list[Widget]:
    W, H = size
    pw = panel_width(size)
    x0, x1 = W - pw + MARGIN, W - MARGIN
    inner = x1 - x0
    out: list[Widget] = []
    y = H - MARGIN

    def heading(text):
        nonlocal y
        y -= HEADING - 4
        out.append(Widget("heading", text, (x0, y, x1, y + 14)))
        y -= 4

    def note(text, tip=""):
        nonlocal y
        y -= 15
        out.append(Widget("note", text, (x0, y, x1, y + 12), tip=tip))

    def row(items):
        """items: (label, action, active, enabled, tip), one row of equal buttons."""
        nonlocal y
        y = list_rows(out, items, per_row=len(items), rows=1, first=0, field="", x0=x0, x1=x1, y=y)

    y -= 20
    out.append(Widget("title", "CNNVis", (x0, y, x1, y + 20)))
    n_clusters = int((scene.rect_kind == 1).sum())
    n_bundles = len(set(scene.curve_bundle.tolist()))
    y -= 16
    out.append(Widget("note", f"{len(scene.column_names)} layers \u00b7 {n_clusters} clusters \u00b7 "
                              f"{n_bundles} bundles", (x0, y, x1, y + 12)))

    if len(scene.findings):   # first: what the diagnosis says
        y = findings_section(out, state, scene, x0, x1, y - 4, rows["findings"])
    y = detail_section(out, state, scene, x0, x1, y)   # the clicked neuron's card, when one is open

    heading("FACET (ALL CLUSTERS)")
    row([(f.capitalize(), ("facet", f), state.facet == f, True, f"every cluster in the {f} facet ({k + 1})")
         for k, f in enumerate(FACETS)])

    heading("EDGE COLOUR")
    missing = {m: edge_mode_missing(scene, m) for m in EDGE_MODES}
    row([(m.capitalize(), ("edge_mode", m), state.edge_mode == m, not missing[m],
          missing[m] or f"colour the edges by {m} ({m[0].upper()})") for m in EDGE_MODES])

    shown = int(visible_curves(scene, state).sum()) if scene.n_curves else 0
    heading(f"EDGE FILTER \u2265 {state.edge_threshold:.2f}: {shown} OF {scene.n_curves} SHOWN")
    y -= ROW
    out.append(Widget("slider", "", (x0, y, x1, y + ROW), ("threshold",), value=state.edge_threshold,
                      tip=f"hide edges weaker than this ([ and ] step it); {shown} of {scene.n_curves} edges shown"))

    if scene.class_names:
        heading("CLASSES, BY NAME (SELECTED STAY OPAQUE)")
        names = list(scene.class_names)
        y = list_rows(out, [(str(names[k]), ("class", k), k in state.selected_classes, True, f"class {names[k]}")
                            for k in class_order(scene)], per_row=_classes_per_row(scene), rows=rows["classes"],
                      first=state.class_scroll, field="class_scroll", x0=x0, x1=x1, y=y)
        y -= GAP
        row([("All", ("classes", "all"), False, True, "select every class"),
             ("None", ("classes", "none"), False, True, "clear the class selection (Esc)")])

    def stepper(names, current, action):
        nonlocal y
        y -= ROW
        out.append(Widget("button", "<", (x0, y, x0 + ROW, y + ROW), (action, -1)))
        out.append(Widget("button", ">", (x1 - ROW, y, x1, y + ROW), (action, +1)))
        out.append(Widget("note", str(names[current % len(names)]), (x0 + ROW + GAP, y, x1 - ROW - GAP, y + ROW)))

    if len(scene.chart_names):   # one heading over both steppers
        heading("CHART SERIES \u00b7 SNAPSHOT" if len(scene.chart_snapshots) else "CHART SERIES")
        stepper(scene.chart_legend or scene.chart_names, state.series, "series_step")
        if len(scene.chart_snapshots):
            y -= GAP
            stepper(scene.chart_snapshots, state.snapshot, "snapshot")

    heading("EDITS")
    focus = state.focus_column if 0 <= state.focus_column < len(scene.column_names) else -1
    group = scene.column_group
    can_collapse = focus >= 0 and (not len(group) or group[focus] >= 0)
    can_expand = focus >= 0 and not can_collapse
    row([("Expand", ("expand",), False, can_expand, "expand the focused layer cluster (E)" if can_expand else
          "Expand: zoom to a layer cluster first (click its name, or double-click it)"),
         ("Collapse", ("collapse",), False, can_collapse, "collapse the focused expanded layers (X)"
          if can_collapse else "Collapse: nothing expanded is focused (double-click an expanded layer)"),
         ("Fit view", ("fit",), False, True, "show everything (F)")])
    y -= GAP
    sel = state.selected_bundles
    row([("Undo", ("undo",), False, state.undo_depth > 0,
          f"undo the last edit (Ctrl+Z; {state.undo_depth} to undo)" if state.undo_depth else
          "Undo: nothing to undo yet (no edit made)"),
         ("Redo", ("redo",), False, state.redo_depth > 0,
          f"redo (Ctrl+Shift+Z or Ctrl+Y; {state.redo_depth} to redo)" if state.redo_depth else
          "Redo: nothing undone to redo"),
         ("Merge " + " + ".join(str(b) for b in sel) if len(sel) == 2 else "Merge", ("merge",), False,
          len(sel) == 2, "merge the two selected bundles (M)" if len(sel) == 2 else
          "Merge: click two edges of the same two layer clusters to select their bundles")])

    if len(scene.column_names):
        n_rows = -(-len(scene.column_names) // LAYERS_PER_ROW)
        heading(f"LAYER CLUSTERS ({len(scene.column_names)}, CLICK: ZOOM)" if n_rows > rows["layers"]
                else "LAYER CLUSTERS (CLICK: ZOOM)")
        room = (inner - ROW - GAP - GAP * (LAYERS_PER_ROW - 1)) / LAYERS_PER_ROW - 8
        short = distinct_names([str(n) for n in scene.column_names], room, 11.0)
        y = list_rows(out, [(short[k], ("column", k), focus == k, True, str(scene.column_names[k]))
                            for k in range(len(scene.column_names))], per_row=LAYERS_PER_ROW, rows=rows["layers"],
                      first=state.layer_scroll, field="layer_scroll", x0=x0, x1=x1, y=y)

    y -= 4
    note("?: every key and mouse action")
    return out


def draw_panel(widgets, batch: UiBatch, size) -> None:
    W, H = size
    pw = panel_width(size)
    batch.rect((W - pw, 0, W + 4, H + 4), THEME["panel"], radius=0, border_width=0)
    batch.rect((W - pw, 0, W - pw + 1, H), THEME["panel_line"], radius=0, border_width=0)
    for w in widgets:
        x0, y0, x1, y1 = w.box
        if w.kind == "title":
            batch.text(w.label, x0, y0 + 3, 19, THEME["text"])
        elif w.kind == "heading":
            batch.text(fit_text(w.label, x1 - x0, 10.5), x0, y0 + 2, 10.5, THEME["muted"])
        elif w.kind == "note":
            size_ = 11.0
            label = fit_text(w.label, x1 - x0, size_)
            batch.text(label, x0, y0 + (y1 - y0) / 2 - 4 if y1 - y0 > 14 else y0 + 1, size_, THEME["muted"])
        elif w.kind == "button":
            fill = THEME["active"] if w.active else (THEME["button"] if w.enabled else THEME["disabled"])
            line = THEME["active"] if w.active else THEME["button_line"]
            color = THEME["active_text"] if w.active else (THEME["text"] if w.enabled else THEME["faint"])
            batch.rect(w.box, fill, line, radius=5, border_width=1)
            fs = max(10.0, min(12.0, 12.0 * (x1 - x0 - 8) / max(text_width(w.label, 12.0), 1.0)))
            label = fit_text(w.label, x1 - x0 - 8, fs)
            batch.text(label, (x0 + x1) / 2, y0 + (y1 - y0) / 2 - 4, fs, color, align="center")
        elif w.kind == "swatch":
            batch.rect(w.box, w.color, radius=2, border_width=0)
        elif w.kind == "image":   # its frame; the picture is drawn over the panel by the renderer
            batch.rect((x0 - 1, y0 - 1, x1 + 1, y1 + 1), THEME["button"], THEME["button_line"], radius=1,
                       border_width=1)
        elif w.kind == "slider":
            cy = (y0 + y1) / 2
            kx = x0 + 8 + w.value * (x1 - x0 - 16)
            batch.rect((x0 + 8, cy - 2, x1 - 8, cy + 2), THEME["grid"], radius=2, border_width=0)
            batch.rect((x0 + 8, cy - 2, kx, cy + 2), THEME["active"], radius=2, border_width=0)
            batch.rect((kx - 7, cy - 7, kx + 7, cy + 7), THEME["button"], THEME["active"], radius=7, border_width=2)

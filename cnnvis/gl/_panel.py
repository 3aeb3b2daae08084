"""The control panel (paper Fig. 1 (c)): widgets laid out in canvas pixels at the right edge, drawn in GL
and hit-tested here. Pure functions of (view state, scene, canvas size); the Viewer applies actions."""
from __future__ import annotations

from dataclasses import dataclass

from cnnvis.gl._state import EDGE_MODES, FACETS, ViewState
from cnnvis.gl._text import text_width
from cnnvis.gl._ui import THEME, UiBatch

__all__ = ["Widget", "panel_width", "panel_widgets", "draw_panel", "hit_widget", "class_order", "layer_rows"]

MARGIN, ROW, GAP = 14.0, 24.0, 6.0


@dataclass(frozen=True)
class Widget:
    """kind: title, heading, note, button, slider; action: what a click does (None for text);
    box: x0, y0, x1, y1 in canvas pixels (origin bottom-left); tip: tooltip lines (empty: none)."""
    kind: str
    label: str
    box: tuple
    action: tuple | None = None
    active: bool = False
    enabled: bool = True
    value: float = 0.0
    tip: str = ""             # the tooltip on hover (e.g. a layer's full name; lines split at newlines)

    def contains(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.box
        return x0 <= x <= x1 and y0 <= y <= y1


def panel_width(size) -> float:
    return float(min(250.0, max(170.0, 0.26 * size[0]), 0.5 * size[0]))


LAYER_ROWS, LAYERS_PER_ROW = 4, 2   # the layer list: a fixed window of rows, scrolled (panel layout stays put)


def _class_key(name: str):
    """Classes sorted as people count: numbers by value, then names alphabetically."""
    s = str(name)
    return (0, float(s), s) if s.lstrip("-").replace(".", "", 1).isdigit() else (1, 0.0, s.lower())


def class_order(scene) -> list:
    """Scene class indices in the order the panel's buttons show them (by name, numbers by value)."""
    return sorted(range(len(scene.class_names)), key=lambda k: _class_key(scene.class_names[k]))


def layer_rows(scene) -> int:
    """Rows the layer list needs (it shows LAYER_ROWS of them at a time)."""
    return -(-len(scene.column_names) // LAYERS_PER_ROW)


def panel_widgets(state: ViewState, scene, size) -> list[Widget]:
    """The panel's widgets, top to bottom. Everything above the layer list has a place that does not
    depend on the scene's number of layers, so the buttons stay where they were after an expand."""
    from cnnvis.gl._derived import visible_curves
    from cnnvis.gl._names import abbreviate

    W, H = size
    pw = panel_width(size)
    x0, x1 = W - pw + MARGIN, W - MARGIN
    inner = x1 - x0
    out: list[Widget] = []
    y = H - MARGIN

    def heading(text):
        nonlocal y
        y -= 26
        out.append(Widget("heading", text, (x0, y, x1, y + 14)))
        y -= 6

    def note(text, tip=""):
        nonlocal y
        y -= 15
        out.append(Widget("note", text, (x0, y, x1, y + 12), tip=tip))

    def row(items, per_row=None):
        """items: (label, action, active, enabled[, tip]); laid out in rows of equal buttons."""
        nonlocal y
        per_row = per_row or len(items)
        w = (inner - GAP * (per_row - 1)) / per_row
        for i, (label, action, active, enabled, *tip) in enumerate(items):
            r, c = divmod(i, per_row)
            if c == 0:
                y -= ROW + (GAP if r else 0)
            bx = x0 + c * (w + GAP)
            out.append(Widget("button", label, (bx, y, bx + w, y + ROW), action, active, enabled,
                              tip=tip[0] if tip else ""))

    y -= 20
    out.append(Widget("title", "CNNVis", (x0, y, x1, y + 20)))
    n_clusters = int((scene.rect_kind == 1).sum())
    n_bundles = len(set(scene.curve_bundle.tolist()))
    y -= 16
    out.append(Widget("note", f"{len(scene.column_names)} layers \u00b7 {n_clusters} clusters \u00b7 "
                              f"{n_bundles} bundles", (x0, y, x1, y + 12)))

    if len(scene.findings):  # the findings list (cnnvis.gl._findings), first: what the diagnosis says
        from cnnvis.gl._findings import panel_section

        y = panel_section(out, state, scene, x0, x1, y)

    heading("FACET (ALL CLUSTERS)")
    row([(f.capitalize(), ("facet", f), state.facet == f, True) for f in FACETS])

    heading("EDGE COLOUR")
    row([(m.capitalize(), ("edge_mode", m), state.edge_mode == m, True) for m in EDGE_MODES])

    heading(f"EDGE FILTER: STRENGTH \u2265 {state.edge_threshold:.2f}")
    y -= ROW
    out.append(Widget("slider", "", (x0, y, x1, y + ROW), ("threshold",), value=state.edge_threshold))
    shown = int(visible_curves(scene, state).sum()) if scene.n_curves else 0
    note(f"{shown} of {scene.n_curves} edges shown", tip="edges: one curve per pair of connected clusters")

    if scene.class_names:
        heading("CLASSES, BY NAME (SELECTED STAY OPAQUE)")
        names = list(scene.class_names)
        per = 5 if max(len(str(n)) for n in names) <= 3 else 2
        row([(str(names[k]), ("class", k), k in state.selected_classes, True, f"class {names[k]}")
             for k in class_order(scene)], per)
        y -= GAP
        row([("All", ("classes", "all"), False, True), ("None", ("classes", "none"), False, True)])

    def stepper(title, names, current, action):
        nonlocal y
        heading(title)
        y -= ROW
        out.append(Widget("button", "<", (x0, y, x0 + ROW, y + ROW), (action, -1)))
        out.append(Widget("button", ">", (x1 - ROW, y, x1, y + ROW), (action, +1)))
        out.append(Widget("note", str(names[current % len(names)]), (x0 + ROW + GAP, y, x1 - ROW - GAP, y + ROW)))

    if len(scene.chart_names):
        stepper("CHART SERIES", scene.chart_legend or scene.chart_names, state.series, "series_step")
    if len(scene.chart_snapshots):
        stepper("SNAPSHOT", scene.chart_snapshots, state.snapshot, "snapshot")

    heading("EDITS")
    focus = state.focus_column if 0 <= state.focus_column < len(scene.column_names) else -1
    group = scene.column_group
    can_collapse = focus >= 0 and (not len(group) or group[focus] >= 0)
    can_expand = focus >= 0 and not can_collapse
    row([("Expand", ("expand",), False, can_expand, "expand the focused layer cluster (E)"),
         ("Collapse", ("collapse",), False, can_collapse, "collapse the focused expanded layers (X)"),
         ("Fit view", ("fit",), False, True, "show everything (F)")])
    y -= GAP
    sel = state.selected_bundles
    row([("Undo", ("undo",), False, True, "undo the last edit (Ctrl+Z)"),
         ("Redo", ("redo",), False, True, "redo (Ctrl+Shift+Z)"),
         ("Merge " + " + ".join(str(b) for b in sel) if len(sel) == 2 else "Merge", ("merge",), False,
          len(sel) == 2, "merge the two selected bundles (M); click two edges to select them")])

    if len(scene.column_names):
        rows = layer_rows(scene)
        first = min(max(state.layer_scroll, 0), max(rows - LAYER_ROWS, 0))
        heading(f"LAYERS (CLICK: ZOOM) \u00b7 ROWS {first + 1}\u2013{min(first + LAYER_ROWS, rows)} OF {rows}"
                if rows > LAYER_ROWS else "LAYER CLUSTERS (CLICK: ZOOM)")
        top = y
        bw = (inner - ROW - GAP - GAP * (LAYERS_PER_ROW - 1)) / LAYERS_PER_ROW
        for r in range(LAYER_ROWS):
            y -= ROW + (GAP if r else 0)
            for c in range(LAYERS_PER_ROW):
                k = (first + r) * LAYERS_PER_ROW + c
                if k >= len(scene.column_names):
                    continue
                name = str(scene.column_names[k])
                bx = x0 + c * (bw + GAP)
                out.append(Widget("button", abbreviate(name, bw - 8, 11.0), (bx, y, bx + bw, y + ROW),
                                  ("column", k), focus == k, True, tip=name))
        if rows > LAYER_ROWS:
            out.append(Widget("button", "^", (x1 - ROW, top - ROW, x1, top), ("layer_scroll", -1),
                              enabled=first > 0, tip="scroll the layer list up"))
            out.append(Widget("button", "v", (x1 - ROW, y, x1, y + ROW), ("layer_scroll", +1),
                              enabled=first + LAYER_ROWS < rows, tip="scroll the layer list down"))

    y -= 8
    hints = ("?: every key and mouse action",)
    if not len(scene.findings):  # the findings list took their room; the ? card has them all
        hints += ("double-click: expand / collapse", "drag a patch: move the neuron")
    for hint in hints:
        note(hint)
    # A short window shows what fits; everything stays reachable by keys and Viewer methods.
    return [w for w in out if w.box[1] >= 4]


def hit_widget(widgets, x: float, y: float) -> Widget | None:
    for w in widgets:
        if w.action is not None and w.enabled and w.contains(x, y):
            return w
    return None


def slider_value(widget: Widget, x: float) -> float:
    x0, _, x1, _ = widget.box
    return min(max((x - x0 - 8) / max(x1 - x0 - 16, 1.0), 0.0), 1.0)


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
            batch.text(w.label, x0, y0 + 2, 10.5, THEME["muted"])
        elif w.kind == "note":
            size_ = 11.0
            label = _fit(w.label, x1 - x0, size_)
            batch.text(label, x0, y0 + (y1 - y0) / 2 - 4 if y1 - y0 > 14 else y0 + 1, size_, THEME["muted"])
        elif w.kind == "button":
            fill = THEME["active"] if w.active else THEME["button"]
            line = THEME["active"] if w.active else THEME["button_line"]
            color = THEME["active_text"] if w.active else (THEME["text"] if w.enabled else THEME["faint"])
            batch.rect(w.box, fill, line, radius=5, border_width=1)
            fs = max(10.0, min(12.0, 12.0 * (x1 - x0 - 8) / max(text_width(w.label, 12.0), 1.0)))
            label = _fit(w.label, x1 - x0 - 8, fs)
            batch.text(label, (x0 + x1) / 2, y0 + 8, fs, color, align="center")
        elif w.kind == "slider":
            cy = (y0 + y1) / 2
            kx = x0 + 8 + w.value * (x1 - x0 - 16)
            batch.rect((x0 + 8, cy - 2, x1 - 8, cy + 2), THEME["grid"], radius=2, border_width=0)
            batch.rect((x0 + 8, cy - 2, kx, cy + 2), THEME["active"], radius=2, border_width=0)
            batch.rect((kx - 7, cy - 7, kx + 7, cy + 7), THEME["button"], THEME["active"], radius=7, border_width=2)


def _fit(text: str, width: float, size: float) -> str:
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "..", size) > width:
        text = text[:-1]
    return text + ".."

"""The overlay: everything drawn in window pixels over or beside the scene (the chart strip's frame and
text, the control panel, the dragged neuron's ghost, the tooltip), composed as two UiBatches from the
Scene, the ViewState, the camera and the window size. Pure: the renderer uploads and draws them.

`under` is drawn before the chart's lines (frame, grid), `over` after them (chart text, legends, the shown
finding's outline, panel), `top` last of all (drag ghost, help, tooltip). Each batch draws its rectangles and
then its text, so whatever must cover text (the tooltip over the panel's labels) lives in a later batch."""
from __future__ import annotations

from cnnvis.gl._chart import draw_chart
from cnnvis.gl._findings import draw_finding, draw_marks
from cnnvis.gl._legend import MATRIX_LABEL_SIZE, draw_legend, legend_height, legend_shown, matrix_labels
from cnnvis.gl._names import HEADER_SIZE, SUB_SIZE, column_headers
from cnnvis.gl._panel import draw_panel, panel_widgets, panel_width
from cnnvis.gl._state import ViewState
from cnnvis.gl._text import ink_box, text_width
from cnnvis.gl._ui import THEME, UiBatch

__all__ = ["Overlay", "overlay_key", "tooltip_box", "busy_box", "HELP"]

# Every key and mouse action (key ? shows them; the README lists the same).
HELP = (
    ("drag", "pan (on a patch: move that neuron onto another cluster of its layer)"),
    ("wheel", "zoom about the mouse"),
    ("click", "a cluster: its next facet \u00b7 an edge: select its bundle (two: merge)"),
    ("click a patch", "a neuron with a card (a diff file's: its partner in B): the card in the panel"),
    ("double-click", "a layer cluster: zoom + expand \u00b7 an expanded layer: collapse"),
    ("hover", "tooltip (a name in the panel or the header: its full name)"),
    ("F", "fit view"),
    ("1 2 3", "facet of all clusters: features, matrix, importance"),
    ("W G C", "edge colour: weight, gradient, change"),
    ("[ ]", "edge filter down / up by 0.05"),
    ("= -", "zoom in / out"),
    ("M", "merge the two selected bundles"),
    ("L", "show / hide the legend"),
    ("E", "expand the focused layer cluster"),
    ("X", "collapse the focused expanded layers"),
    ("Ctrl+Z", "undo the last edit"),
    ("Ctrl+Shift+Z", "redo (also Ctrl+Y)"),
    ("Esc", "clear selections (bundles, classes), close this card and the neuron card"),
    ("?", "show / hide this card (also H)"),
)


def overlay_key(scene, state: ViewState, camera, size) -> tuple:
    """Everything the overlay depends on: equal keys, equal batches."""
    return (tuple(size), camera.transform(), state, id(scene))


class Overlay:
    """The two batches of one frame; `widgets` are the panel's (for hit-testing the same layout)."""

    def __init__(self, scene, state: ViewState, camera, size):
        self.under, self.over, self.top = UiBatch(), UiBatch(), UiBatch()
        self.widgets = panel_widgets(state, scene, size)
        titles = column_headers(scene, camera, size, with_sub=True)
        self.headers = [h for h in titles if h[3]]
        self.label_boxes = [(text, box) for _, text, box, _ in titles]   # every scene label drawn, disjoint
        for _, text, (x0, y0, x1, y1), full in titles:   # boxes are the ink's: the baseline is the anchor's y
            size_ = HEADER_SIZE if full else SUB_SIZE
            base = y0 - ink_box(text, 0.0, 0.0, size_)[1]
            if full:
                self.over.rect((x0 - 3, y0 - 1, x1 + 3, y1 + 1), (*THEME["background"][:3], 0.85), radius=3,
                               border_width=0)
            self.over.text(text, x0, base, size_, THEME["text"] if full else THEME["muted"])
        self.matrix_labels = []
        rows: dict = {}
        for name, x, y in matrix_labels(scene, state, camera):   # a row of class names: all of it or none
            rows.setdefault(y, []).append((name, x, y))
        for row in rows.values():
            boxes = [_matrix_label_box(*lab) for lab in row]
            if not any(_overlap(b, k) for b in boxes for _, k in self.label_boxes):
                self.matrix_labels += row
                self.label_boxes += [(lab[0], b) for lab, b in zip(row, boxes)]
        for name, x, y in self.matrix_labels:
            self.over.text(name, x, y, MATRIX_LABEL_SIZE, THEME["text"], align="center")
        rx, ry, rw, _ = camera.region
        lh = legend_height(size, scene) if legend_shown(state, size) else 0.0
        self.legend = draw_legend(self.over, scene, state, (rx, ry - lh, rx + rw, ry)) if lh else []
        draw_chart(scene, state, camera, size, panel_width(size), self.under, self.over)
        draw_finding(scene, state, camera, size, self.over)   # the finding shown, under the panel
        draw_marks(scene, state, camera, self.over)   # the application's badges, the open card's neuron
        draw_panel(self.widgets, self.over, size)
        uv = scene.detail_uv   # the panel's pictures: (canvas box, uv), drawn by the renderer over the panel
        self.images = [(w.box, uv[int(w.value)]) for w in self.widgets
                       if w.kind == "image" and 0 <= int(w.value) < len(uv)]
        if state.drag_ghost:
            gx, gy = state.drag_ghost
            self.top.rect((gx - 10, gy - 10, gx + 10, gy + 10), (1, 1, 1, 0.6), THEME["selection"], radius=3,
                           border_width=2)
        if state.busy:
            b = busy_box(state.busy, camera.region)
            self.top.rect(b, THEME["tooltip"], THEME["active"], radius=9, border_width=1.5)
            self.top.text(state.busy, b[0] + 10, b[1] + 7, 12, THEME["active"])
        if state.show_help:
            _help(self.top, camera.region)
        if state.tooltip:
            _tooltip(self.top, state.tooltip, state.tooltip_at, size)


def _matrix_label_box(name: str, x: float, y: float) -> tuple:
    return ink_box(name, x - text_width(name, MATRIX_LABEL_SIZE) / 2, y, MATRIX_LABEL_SIZE)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def busy_box(text: str, region) -> tuple:
    """Canvas box of the note saying what the application is working on: the view's bottom left."""
    rx, ry, _, _ = region
    return (rx + 10, ry + 10, rx + 10 + text_width(text, 12) + 20, ry + 34)


def tooltip_box(lines: tuple, at: tuple, size) -> tuple:
    """Canvas box (x0, y0, x1, y1) of the tooltip with these lines shown at the canvas point `at`."""
    x, y = at
    w = max(text_width(t, 12) for t in lines) + 16
    h = 17 * len(lines) + 10
    x = min(x + 14, size[0] - w - 4)
    y = max(min(y - 14 - h, size[1] - h - 4), 4)   # inside the window
    return (x, y, x + w, y + h)


def _tooltip(batch: UiBatch, lines: tuple, at: tuple, size) -> None:
    x, y, x1, y1 = tooltip_box(lines, at, size)
    w, h = x1 - x, y1 - y
    batch.rect((x, y, x + w, y + h), THEME["tooltip"], THEME["button_line"], radius=5, border_width=1)
    for k, t in enumerate(lines):
        batch.text(t, x + 8, y + h - 18 - 17 * k, 12, THEME["text"] if k == 0 else THEME["muted"])


def _help(batch: UiBatch, region) -> None:
    rx, ry, rw, rh = region
    kw = max(text_width(k, 12) for k, _ in HELP) + 16
    w = min(kw + max(text_width(d, 12) for _, d in HELP) + 24, rw - 8)
    h = 20 * len(HELP) + 40
    x, y = rx + (rw - w) / 2, ry + max((rh - h) / 2, 4)
    batch.rect((x, y, x + w, y + h), THEME["tooltip"], THEME["button_line"], radius=6, border_width=1)
    batch.text("Keys and mouse (? or Esc to close)", x + 12, y + h - 22, 13, THEME["text"])
    for k, (key, what) in enumerate(HELP):
        ty = y + h - 44 - 20 * k
        batch.text(key, x + 12, ty, 12, THEME["active"])
        batch.text(what, x + 12 + kw, ty, 12, THEME["text"])

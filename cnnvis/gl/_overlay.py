"""The overlay: everything drawn in window pixels over or beside the scene (the chart strip's frame and
text, the control panel, the dragged neuron's ghost, the tooltip), composed as two UiBatches from the
Scene, the ViewState, the camera and the window size. Pure: the renderer uploads and draws them.

`under` is drawn before the chart's lines (frame, grid), `over` after them (chart text, legends, panel),
`top` last of all (drag ghost, help, tooltip). Each batch draws its rectangles and then its text, so
whatever must cover text (the tooltip over the panel's labels) lives in a later batch."""
from __future__ import annotations

from cnnvis.gl._chart import draw_chart
from cnnvis.gl._panel import draw_panel, panel_widgets, panel_width
from cnnvis.gl._state import ViewState
from cnnvis.gl._text import text_width
from cnnvis.gl._ui import THEME, UiBatch

__all__ = ["Overlay", "overlay_key", "tooltip_box"]


def overlay_key(scene, state: ViewState, camera, size) -> tuple:
    """Everything the overlay depends on: equal keys, equal batches."""
    return (tuple(size), camera.transform(), state, id(scene))


class Overlay:
    """The two batches of one frame; `widgets` are the panel's (for hit-testing the same layout)."""

    def __init__(self, scene, state: ViewState, camera, size):
        self.under, self.over, self.top = UiBatch(), UiBatch(), UiBatch()
        self.widgets = panel_widgets(state, scene, size)
        draw_chart(scene, state, camera, size, panel_width(size), self.under, self.over)
        draw_panel(self.widgets, self.over, size)
        if state.drag_ghost:
            gx, gy = state.drag_ghost
            self.top.rect((gx - 10, gy - 10, gx + 10, gy + 10), (1, 1, 1, 0.6), THEME["accent"], radius=3,
                           border_width=2)
        if state.tooltip:
            _tooltip(self.top, state.tooltip, state.tooltip_at, size)


def tooltip_box(lines: tuple, at: tuple, size) -> tuple:
    """Canvas box (x0, y0, x1, y1) of the tooltip with these lines shown at the canvas point `at`."""
    x, y = at
    w = max(text_width(t, 12) for t in lines) + 16
    h = 17 * len(lines) + 10
    x = min(x + 14, size[0] - w - 4)
    y = max(y - 14 - h, 4)
    return (x, y, x + w, y + h)


def _tooltip(batch: UiBatch, lines: tuple, at: tuple, size) -> None:
    x, y, x1, y1 = tooltip_box(lines, at, size)
    w, h = x1 - x, y1 - y
    batch.rect((x, y, x + w, y + h), THEME["tooltip"], THEME["button_line"], radius=5, border_width=1)
    for k, t in enumerate(lines):
        batch.text(t, x + 8, y + h - 18 - 17 * k, 12, THEME["text"] if k == 0 else THEME["muted"])

"""A batch of screen-space rectangles and text (panel, chart decorations, tooltip), in canvas pixels
with the origin at the bottom left, drawn with the same rect and text shaders as the scene."""
from __future__ import annotations

import numpy as np

from cnnvis.gl._instances import RECT_STATE, RECT_STATIC
from cnnvis.gl._text import layout_text, text_width
from cnnvis.layout._palette import IMPORTANCE, INK

__all__ = ["UiBatch", "THEME"]

THEME = {
    "background": (0.985, 0.985, 0.99, 1.0),
    "panel": (0.952, 0.958, 0.968, 1.0),
    "panel_line": (0.84, 0.86, 0.89, 1.0),
    "text": (0.16, 0.18, 0.22, 1.0),
    "muted": (0.45, 0.48, 0.54, 1.0),
    "faint": (0.70, 0.72, 0.76, 1.0),
    "button": (1.0, 1.0, 1.0, 1.0),
    "button_line": (0.78, 0.80, 0.84, 1.0),
    "disabled": (0.93, 0.935, 0.945, 1.0),         # a control that can do nothing here: greyed, flat
    "active": (0.22, 0.45, 0.84, 1.0),
    "active_text": (1.0, 1.0, 1.0, 1.0),
    "accent": tuple(float(v) for v in IMPORTANCE),   # importance bars (the palette's yellow)
    "selection": tuple(float(v) for v in INK),       # hover ring, focus, selected bundles: dark ink
    "tooltip": (1.0, 1.0, 0.99, 0.97),
    "chart": (0.975, 0.977, 0.982, 1.0),
    "grid": (0.88, 0.89, 0.91, 1.0),
}


class UiBatch:
    def __init__(self):
        self._rects: list = []
        self._texts: list = []

    def rect(self, box, fill, border=(0, 0, 0, 0), radius=4.0, border_width=1.0, opacity=1.0):
        self._rects.append((box, fill, border, radius, border_width, opacity))

    def text(self, s: str, x: float, y: float, size: float = 12.0, color=THEME["text"], align="left"):
        """Text with its baseline at y; align left, center or right about x."""
        if align != "left":
            w = text_width(s, size)
            x = x - (w / 2 if align == "center" else w)
        self._texts.append((s, (x, y), size, color))

    def rect_arrays(self):
        n = len(self._rects)
        static, state = np.zeros(n, RECT_STATIC), np.zeros(n, RECT_STATE)
        for i, (box, fill, border, radius, bw, opacity) in enumerate(self._rects):
            static[i] = (box, fill, border, (2, 0, radius, bw))
            state[i] = ((opacity, 0, 0, 0),)
        return static, state

    def glyphs(self):
        if not self._texts:
            return layout_text([], np.zeros((0, 2)), 0, (0, 0, 0, 0))
        s, pos, size, color = zip(*self._texts)
        return layout_text(s, pos, size, color)

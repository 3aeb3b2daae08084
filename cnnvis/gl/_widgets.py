"""The panel's building blocks: the Widget record (a box in canvas pixels and what a click on it does),
its spacing constants, hit-testing and the slider's value. No layout and no drawing: the panel
(`_panel.py`) and its findings section (`_panel_findings.py`) both build Widgets from here."""
from __future__ import annotations

from dataclasses import dataclass

from cnnvis.gl._text import text_width

__all__ = ["Widget", "MARGIN", "ROW", "GAP", "hit_widget", "slider_value", "fit_text"]

MARGIN, ROW, GAP = 14.0, 22.0, 5.0


@dataclass(frozen=True)
class Widget:
    """kind: title, heading, note, button, slider, swatch (a colour chip: `color`), image (a picture: row
    `value` of Scene.detail_uv); action: what a click does (None for text);
    box: x0, y0, x1, y1 in canvas pixels (origin bottom-left); enabled: False draws it greyed and a
    click does nothing (its tip says why); tip: tooltip lines (split at newlines; empty: none)."""
    kind: str
    label: str
    box: tuple
    action: tuple | None = None
    active: bool = False
    enabled: bool = True
    value: float = 0.0
    tip: str = ""
    color: tuple = ()

    def contains(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.box
        return x0 <= x <= x1 and y0 <= y <= y1


def hit_widget(widgets, x: float, y: float) -> Widget | None:
    """The control under the canvas point, enabled or not (a disabled one still shows why on hover)."""
    for w in widgets:
        if w.action is not None and w.contains(x, y):
            return w
    return None


def slider_value(widget: Widget, x: float) -> float:
    x0, _, x1, _ = widget.box
    return min(max((x - x0 - 8) / max(x1 - x0 - 16, 1.0), 0.0), 1.0)


def fit_text(text: str, width: float, size: float) -> str:
    """`text` cut at its end with ".." to fit `width` pixels."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "..", size) > width:
        text = text[:-1]
    return text + ".."


def list_rows(out: list, items: list, *, per_row: int, rows: int, first: int, field: str, x0: float, x1: float,
              y: float) -> float:
    """A scrolled list of buttons into `out`, `rows` rows of `per_row` from row `first`, from height y down;
    returns the new y. items: (label, action, active, enabled, tip). With more rows than shown, ^ and v
    buttons at the right scroll it: their action ("scroll", field, new first row) names the ViewState field
    that holds the list's first row."""
    total = -(-len(items) // per_row)
    rows = min(rows, total)
    if rows <= 0:
        return y
    first = min(max(first, 0), total - rows)
    scroll = total > rows
    right = x1 - ((ROW + GAP) * (2 if rows == 1 else 1) if scroll else 0.0)   # one row: ^ v side by side
    w = (right - x0 - GAP * (per_row - 1)) / per_row
    top = y
    for r in range(rows):
        y -= ROW + (GAP if r else 0)
        for c in range(per_row):
            k = (first + r) * per_row + c
            if k >= len(items):
                continue
            label, action, active, enabled, tip = items[k]
            bx = x0 + c * (w + GAP)
            out.append(Widget("button", label, (bx, y, bx + w, y + ROW), action, active, enabled, tip=tip))
    if scroll:
        ux = x1 - 2 * ROW - GAP if rows == 1 else x1 - ROW
        out.append(Widget("button", "^", (ux, top - ROW, ux + ROW, top), ("scroll", field, first - 1),
                          enabled=first > 0, tip=f"rows {first + 1}\u2013{first + rows} of {total}: scroll up"
                          if first > 0 else "at the top of the list"))
        out.append(Widget("button", "v", (x1 - ROW, y, x1, y + ROW), ("scroll", field, first + 1),
                          enabled=first + rows < total,
                          tip=f"rows {first + 1}\u2013{first + rows} of {total}: scroll down"
                          if first + rows < total else "at the end of the list"))
    return y

"""The panel's neuron card: the NeuronDetail (`Scene.details`) of the neuron whose patch was clicked
(`ViewState.detail` holds its key), as a heading with a close button, a title with its colour chip, its
lines, and its rows of pictures (`Scene.detail_atlas`; the renderer draws them over the panel). Pure:
Widgets from (Scene, ViewState)."""
from __future__ import annotations

from cnnvis.gl._derived import detail_by_key
from cnnvis.gl._widgets import GAP, ROW, Widget

__all__ = ["detail_section", "IMAGE_PX", "MAX_LINES"]

IMAGE_PX = 44.0   # a picture's side in the card
MAX_LINES = 4     # lines of text shown (each one whole in its tooltip)
_HEADING = 22.0


def detail_section(out: list, state, scene, x0: float, x1: float, y: float) -> float:
    """The card of the neuron shown into `out`, from height y down; returns the new y (y when none)."""
    d = detail_by_key(scene, state.detail)
    if d is None:
        return y
    y -= _HEADING
    out.append(Widget("heading", "NEURON (ESC: CLOSE)", (x0, y + 4, x1 - ROW - GAP, y + 18)))
    out.append(Widget("button", "x", (x1 - ROW + 4, y + 2, x1, y + 20), ("detail_close",), tip="close the card (Esc)"))
    y -= 16
    chip = 12.0 if d.color else 0.0
    if chip:
        out.append(Widget("swatch", "", (x0, y + 1, x0 + chip, y + 11), color=d.color))
    out.append(Widget("note", d.title, (x0 + chip + (4 if chip else 0), y, x1, y + 12), tip=d.title))
    for line in d.lines[:MAX_LINES]:
        y -= 15
        out.append(Widget("note", line, (x0, y, x1, y + 12), tip=line))
    per_row = max(1, int((x1 - x0 + GAP) // (IMAGE_PX + GAP)))
    for caption, ids in d.image_rows:
        if not ids:
            continue
        y -= 15
        out.append(Widget("note", caption, (x0, y, x1, y + 12), tip=caption))
        y -= IMAGE_PX + 3
        for k, i in enumerate(ids[:per_row]):
            bx = x0 + k * (IMAGE_PX + GAP)
            out.append(Widget("image", caption, (bx, y, bx + IMAGE_PX, y + IMAGE_PX), value=float(i)))
    return y - 2

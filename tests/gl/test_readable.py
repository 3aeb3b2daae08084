"""Issue 13, the viewer as people read it: overlay order, idle frames, names, legends, tooltips, chart
ticks, edge-filter count, picking tolerance, keys. Pixel read-back or the viewer's state."""
import numpy as np
import pytest
from glhelpers import plain_scene, window_xy

from cnnvis.gl._overlay import tooltip_box
from cnnvis.gl._ui import THEME


def _dark(img, box, H):
    """Pixels darker than mid-grey inside the canvas box (origin bottom left) of an image (row 0 top)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    patch = img[H - y1:H - y0, x0:x1, :3].astype(int)
    return int((patch.sum(-1) < 3 * 140).sum())


def test_the_tooltip_covers_the_panel_text_under_it(make_viewer):
    v = make_viewer(plain_scene(), size=(480, 320))
    heading = next(w for w in v.widgets() if w.kind == "heading")
    lines = ("tip", "", "", "")   # one short line; the rest of the box is plain tooltip fill
    # place the tooltip's box so that its lower, empty part covers the heading's text
    x0, y0, x1, y1 = heading.box
    at = (x0 - 14, y0 - 4 + 14 + 17 * len(lines) + 10)
    box = tooltip_box(lines, at, v.size)
    lower = (box[0] + 4, box[1] + 4, box[2] - 4, box[1] + 17 * 3)
    assert lower[1] <= y0 + 2 and lower[3] >= y1 - 2 and lower[0] <= x0 + 10   # it does cover the heading
    bare = v.render()
    assert _dark(bare, (x0, y0, min(x1, lower[2]), y1), v.size[1]) > 0    # the heading has dark text
    v.update_state(tooltip=lines, tooltip_at=at)
    img = v.render()
    assert _dark(img, lower, v.size[1]) == 0
    fill = np.array(THEME["tooltip"][:3]) * 255
    mid = img[v.size[1] - int((lower[1] + lower[3]) / 2), int((lower[0] + lower[2]) / 2), :3]
    assert np.abs(mid - fill).max() < 8
    assert _dark(img, (box[0], box[3] - 20, box[2], box[3]), v.size[1]) > 0   # its own text still shows

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


def _spin(seconds):
    import time

    from vispy import app

    end = time.time() + seconds
    while time.time() < end:
        app.process_events()
        time.sleep(0.005)


def test_an_idle_window_draws_nothing_and_a_flight_draws_until_it_lands(make_viewer):
    v = make_viewer(plain_scene(), size=(480, 320))
    _spin(0.1)
    start = v.frames
    _spin(0.4)                                   # no input at all
    assert v.frames == start
    x, y = window_xy(v, (50, 220))
    v.hover(x, y)                                # a hover that changes the tooltip: one frame
    _spin(0.05)
    assert v.frames == start + 1
    for _ in range(10):                          # the mouse resting on the same spot: nothing changes
        v.hover(x, y)
        _spin(0.02)
    assert v.frames == start + 1
    v.zoom_to_column(1, duration=0.15)           # an animation draws frames, then stops
    _spin(0.5)
    assert not v.camera.animating
    moved = v.frames
    assert moved > start + 2
    _spin(0.3)
    assert v.frames == moved


def test_the_window_loop_sleeps_until_the_next_timer_or_draw():
    from cnnvis.gl._loop import IDLE_WAKE_S, wait_time

    assert wait_time(10.0, [], False) == IDLE_WAKE_S
    assert wait_time(10.0, [float("inf")], False) == IDLE_WAKE_S     # stopped timers
    assert wait_time(10.0, [10.25, 12.0], False) == pytest.approx(0.25)
    assert wait_time(10.0, [9.0], False) == 0.0                       # a timer overdue
    assert wait_time(10.0, [12.0], True) == 0.0                       # a frame asked for

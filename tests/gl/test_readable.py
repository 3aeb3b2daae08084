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


@pytest.fixture()
def live(make_viewer):
    """A viewer on a real session (synthetic network): edits go through the aggregation."""
    from cnnvis.app.session import Session
    from cnnvis.testing.synthetic import synthetic_network

    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    session = Session(net.analysis)
    v = make_viewer(session.scene, on_edit=session.on_edit, size=(900, 800))
    return v, session


def _on_screen(v, column):
    x0, y0, x1, y1 = v.column_box(column)
    (px0, py0), (px1, py1) = v.camera.to_pixel((x0, y0)), v.camera.to_pixel((x1, y1))
    rx, ry, rw, rh = v.camera.region
    return px0 >= rx - 1 and px1 <= rx + rw + 1 and py0 >= ry - 1 and py1 <= ry + rh + 1


def test_after_an_expand_the_view_fits_its_layers_and_every_column_is_named(live):
    from cnnvis.gl._names import column_headers

    v, session = live
    v.zoom_to_column(0, expand=True, animate=False)
    s = v.scene
    group = np.flatnonzero(s.column_group == 0)
    assert len(group) == 6
    assert all(_on_screen(v, int(c)) for c in group)
    img = v.render()
    headers = {c: (text, box, full) for c, text, box, full in column_headers(s, v.camera, v.size)}
    for c in group:
        text, box, full = headers[int(c)]
        assert full == s.column_names[c] and text.strip("\u2026") and full.endswith(text.strip("\u2026"))
        assert _dark(img, box, v.size[1]) > 0, f"no ink in the name of column {c}"
    # zoomed far out, still named (the names are window text)
    v.zoom(0.05)
    assert len(column_headers(v.scene, v.camera, v.size)) == len(v.scene.column_names)
    # hovering a name tells the full name
    c, _, (x0, y0, x1, y1), full = column_headers(v.scene, v.camera, v.size)[0]
    tip = v.hover((x0 + x1) / 2, v.size[1] - (y0 + y1) / 2)
    assert full in tip[0]


def test_double_click_on_an_expanded_layer_collapses_and_ctrl_z_undoes_it(live):
    v, session = live
    first = v.scene
    v.zoom_to_column(0, expand=True, animate=False)
    expanded = v.scene
    assert len(expanded.column_names) == len(first.column_names) + 5
    x, y = window_xy(v, ((v.column_box(2)[0] + v.column_box(2)[2]) / 2, v.column_box(2)[1] + 3))
    v.double_click(x, y)
    assert v.scene.column_names == first.column_names
    assert v.key("ctrl+z")
    assert v.scene.column_names == expanded.column_names
    np.testing.assert_array_equal(v.scene.rect_box, expanded.rect_box)
    assert v.key("ctrl+shift+z")
    assert v.scene.column_names == first.column_names
    v.key("ctrl+z")
    v.key("ctrl+z")                              # back before the expand
    for name in ("rect_box", "curve_ctrl", "patch_box", "rect_fill"):
        np.testing.assert_array_equal(getattr(v.scene, name), getattr(first, name))
    assert v.guarded(v.key, "ctrl+z") is None   # nothing left: a note by the cursor, as the window shows
    assert "nothing to undo" in v.state.tooltip[0]


def test_panel_buttons_stay_put_when_the_layers_change_and_the_layer_list_scrolls(live):
    v, session = live
    before = {w.action: w.box for w in v.widgets() if w.action and w.action[0] != "column"}
    v.zoom_to_column(0, expand=True, animate=False)
    after = {w.action: w.box for w in v.widgets() if w.action and w.action[0] != "column"}
    for action in [("fit",), ("undo",), ("redo",), ("expand",), ("collapse",), ("merge",)]:
        assert before[action] == after[action], action
    layer_buttons = [w for w in v.widgets() if w.action and w.action[0] == "column"]
    n = len(v.scene.column_names)
    assert 0 < len(layer_buttons) < n                      # a window of the list
    assert all(w.tip == v.scene.column_names[w.action[1]] for w in layer_buttons)
    down = next(w for w in v.widgets() if w.action == ("layer_scroll", 1))
    seen = set()
    for _ in range(n):
        seen |= {w.action[1] for w in v.widgets() if w.action and w.action[0] == "column"}
        down = next(w for w in v.widgets() if w.action == ("layer_scroll", 1))
        if not down.enabled:
            break
        v.click((down.box[0] + down.box[2]) / 2, v.size[1] - (down.box[1] + down.box[3]) / 2)
    assert seen == set(range(n))                          # every layer reachable
    w = next(w for w in v.widgets() if w.action and w.action[0] == "column")
    assert v.hover((w.box[0] + w.box[2]) / 2, v.size[1] - (w.box[1] + w.box[3]) / 2) == (w.tip,)
    # the collapse button collapses the focused group
    v.update_state(focus_column=1)
    b = next(w for w in v.widgets() if w.action == ("collapse",))
    assert b.enabled
    v.click((b.box[0] + b.box[2]) / 2, v.size[1] - (b.box[1] + b.box[3]) / 2)
    assert len(v.scene.column_names) == n - 5


def test_abbreviations_keep_the_distinguishing_tail():
    from cnnvis.gl._names import abbreviate
    from cnnvis.gl._text import text_width

    assert abbreviate("conv1", 200, 12) == "conv1"
    assert abbreviate("features.conv3_2", 60, 12) == "\u2026conv3_2"
    assert abbreviate("features.3\u2013features.7", 50, 12) == "\u2026" + "3\u20137"
    a = abbreviate("classifier.block_norm_relu", 40, 12)
    assert a.startswith("\u2026") and "classifier.block_norm_relu".endswith(a[1:]) and text_width(a, 12) <= 40
    names = [f"features.{k}" for k in range(10, 14)]
    assert len({abbreviate(n, 30, 12) for n in names}) == 4   # still apart


def test_tooltips_are_rebuilt_with_the_scene_and_the_facet(live):
    from cnnvis.layout import RECT_CLUSTER

    v, session = live
    s = v.scene
    r = int(np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == 1))[0])
    b = s.rect_box[r]
    x, y = window_xy(v, (b[0] + 2, b[3] - 2))
    tip = v.hover(x, y)
    assert "facet: features" in tip[-1]
    v.set_facet("matrix")
    assert "facet: matrix" in v.state.tooltip[-1]
    v.expand_column(0)                           # the cluster under the mouse moves away
    kind, i = v.pick(x, y)
    from cnnvis.gl import _controller as ctl
    want = ctl.hover(v.scene, v.state, (kind, i), ctl.canvas_xy(v.size, x, y))["tooltip"]
    assert v.state.tooltip == want and v.state.tooltip != tip


def test_a_neuron_tooltip_names_layer_neuron_classes_and_whether_it_is_dead(live):
    v, session = live
    s = v.scene
    p = 0
    b = s.patch_box[p]
    x, y = window_xy(v, ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2))
    v.zoom(4.0, at=(x, y))
    x, y = window_xy(v, ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2))
    assert v.pick(x, y) == ("patch", p)
    tip = v.hover(x, y)
    c = int(s.rect_column[s.patch_rect[p]])
    assert tip[0] == f"{s.column_layer[c]} \u00b7 neuron {int(s.patch_neuron[p])}"
    text = "\n".join(tip)
    assert "patch" not in text and ("dead" in text) == bool(s.patch_dead[p])
    assert f"importance {float(s.patch_importance[p]):.2f}" in text
    assert "top classes: " + ", ".join(s.class_names[k] for k in s.patch_top_classes[p] if k >= 0) in text
    # a dead neuron says so (the same Scene with that patch marked dead)
    v.set_scene(s.replace(patch_dead=np.r_[np.int8(1), s.patch_dead[1:]].astype(np.int8)))
    assert "dead: never fires" in "\n".join(v.hover(x, y))


def test_class_buttons_run_in_numeric_order_and_help_lists_every_key(make_viewer):
    s = plain_scene().replace(class_names=("10", "2", "1"),
                              rect_class_activation=np.ones((6, 3), np.float32))
    v = make_viewer(s, size=(480, 420))
    labels = [w.label for w in v.widgets() if w.action and w.action[0] == "class"]
    assert labels == ["1", "2", "10"]
    assert [w.action[1] for w in v.widgets() if w.action and w.action[0] == "class"] == [2, 1, 0]
    bare = v.render()
    assert v.key("?") and v.state.show_help
    from cnnvis.gl._overlay import HELP
    keys = {k for k, _ in HELP}
    for k in ("F", "1 2 3", "W G C", "[ ]", "= -", "M", "E", "X", "Ctrl+Z", "Ctrl+Shift+Z", "Esc", "?"):
        assert k in keys, k
    img = v.render()
    assert np.abs(img.astype(int) - bare.astype(int)).sum() > 0
    v.key("?")
    assert not v.state.show_help

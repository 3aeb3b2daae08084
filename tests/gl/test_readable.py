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

    # six alike convs: the first column opens into six (a column opens into its blocks, not its traced nodes)
    net = synthetic_network([(24, "a")] * 6 + [48, 40], n_clusters=4, seed=1)
    session = Session(net.analysis, findings=False)  # the layer list's own room (findings: tests/gl/test_findings.py)
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
    # zoomed far out, names still read (window text), never on top of each other: those with no room go
    v.zoom(0.05)
    far = column_headers(v.scene, v.camera, v.size)
    assert far[0][0] == 0 and all(a[2][2] < b[2][0] for a, b in zip(far, far[1:]))
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
    assert 0 < len(layer_buttons) <= n
    assert all(w.tip == v.scene.column_names[w.action[1]] for w in layer_buttons)
    seen = set()
    for _ in range(n):
        seen |= {w.action[1] for w in v.widgets() if w.action and w.action[0] == "column"}
        down = next((w for w in v.widgets() if w.action and w.action[:2] == ("scroll", "layer_scroll")
                     and w.label == "v"), None)
        if down is None or not down.enabled:   # the whole list shows, or its end does
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


def test_the_edge_filter_heading_counts_the_edges_it_keeps(make_viewer):
    v = make_viewer(plain_scene(), size=(480, 420))

    def note():
        return next(w.label.split(": ")[1] for w in v.widgets() if w.kind == "heading" and "SHOWN" in w.label)

    assert note() == "2 OF 2 SHOWN"
    v.set_edge_threshold(0.5)
    assert note() == f"{int(v.visible_curves().sum())} OF 2 SHOWN" == "1 OF 2 SHOWN"
    v.key("]")
    assert note() == "1 OF 2 SHOWN"
    v.set_edge_threshold(1.0)
    assert note() == "1 OF 2 SHOWN"   # curve 0 has strength 1.0
    v.set_edge_mode("change")
    assert note() == "0 OF 2 SHOWN"


def test_a_click_a_few_pixels_off_an_edge_picks_it_and_a_near_miss_keeps_the_selection(make_viewer):
    v = make_viewer(plain_scene())
    # curve 1 runs horizontally at world y 40 from x 90 to 210 (6 px wide at zoom 1 of the ribbon)
    x, y = window_xy(v, (150, 40))
    half = float(v.scene.curve_width[1]) / 2 * 1   # width is in pixels
    assert v.pick(x, y - half - 3) == ("curve", 1)   # 3 px outside its edge
    v.click(x, y - half - 3)
    assert v.state.selected_bundles == (1,)
    v.click(x, y - half - 9)                         # 9 px off: picks nothing, but keeps the selection
    assert v.pick(x, y - half - 9)[0] == "none" and v.state.selected_bundles == (1,)
    v.click(*window_xy(v, (150, 300)))               # far from every edge: clears it
    assert v.state.selected_bundles == ()


def test_merged_bundle_curves_do_not_dip_below_their_ends():
    from cnnvis.layout._curves import bundle_curves

    p0 = np.array([[0, 300], [0, 290], [0, 0]], float)
    p3 = np.array([[400, 300], [400, 310], [400, 10]], float)
    ctrl = bundle_curves(p0, p3, np.array([0, 0, 0]), 0.9)   # one bundle: its middle is at y ~ 200
    t = np.linspace(0, 1, 101)[:, None]
    for c in ctrl:
        b = (1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t ** 2 * c[2] + t ** 3 * c[3]
        lo, hi = min(c[0, 1], c[3, 1]), max(c[0, 1], c[3, 1])
        assert b[:, 1].min() >= lo - 1e-9 and b[:, 1].max() <= hi + 1e-9
        assert np.all(np.diff(b[:, 1]) >= -1e-9) or np.all(np.diff(b[:, 1]) <= 1e-9)   # monotone in y
    assert np.allclose(ctrl[0, :, 1], 300)            # a level curve stays level


def test_merging_two_bundles_lowers_the_bundle_count_by_one(live):
    v, session = live
    s = v.scene
    ids = s.bundle_id
    pairs = {}
    for k in np.unique(s.curve_bundle):
        pairs.setdefault(tuple(ids[k][:2]), []).append(int(k))
    agg = session.aggregation

    def same_sign(k, j):  # only bundles of one sign merge (aggregate.merge_bundles)
        (sc, dc, bk), (_, _, bj) = ids[k], ids[j]
        signs = agg.bundle_set(int(sc), int(dc)).bundle_sign
        return signs[int(bk)] == signs[int(bj)]

    a, b = next((p[i], p[j]) for p in pairs.values() for i in range(len(p)) for j in range(i + 1, len(p))
                if same_sign(p[i], p[j]))

    def count():
        head = next(w.label for w in v.widgets() if w.kind == "note" and "bundles" in w.label)
        return int(head.split("\u00b7")[-1].split()[0])

    before = count()
    assert before == len(np.unique(s.curve_bundle))
    v.select_bundle(a)
    v.select_bundle(b)
    v.merge_bundles()
    assert count() == before - 1


def test_chart_has_named_x_ticks_y_ticks_and_says_n_a(live):
    from cnnvis.gl._chart import chart_lines, chart_ticks
    from cnnvis.gl._panel import panel_width

    v, session = live
    s = v.scene
    pw = panel_width(v.size)
    t = chart_ticks(s, v.state, v.camera, v.size, pw)
    assert [full for _, _, full in t["x"]] == list(s.column_names)
    assert len(t["y"]) >= 3 and all(a[1] < b[1] for a, b in zip(t["y"], t["y"][1:]))
    # every series at every snapshot: a line, or n/a where a layer has no value, or a note saying why
    for series in range(len(s.chart_names)):
        for snap in range(len(s.chart_snapshots)):
            st = v.state.replace(series=series, snapshot=snap)
            tk = chart_ticks(s, st, v.camera, v.size, pw)
            vals = s.chart_values[series, snap]
            finite = int(np.isfinite(vals).sum())
            assert len(tk["na"]) == len(vals) - finite
            if finite == 0:
                assert tk["note"].startswith("n/a at") and s.chart_na[series] in tk["note"]
            lines = chart_lines(s, series, snap)
            chosen = lines[np.isclose(lines["a_width"], 2.5)] if len(lines) else lines
            assert len(chosen) == max(finite - 1, 0)   # one connected line, not dots
    # after an expand the line is still connected
    v.expand_column(0)
    s = v.scene
    vals = s.chart_values[0, -1]
    lines = chart_lines(s, 0, len(s.chart_snapshots) - 1)
    assert int(np.isclose(lines["a_width"], 2.5).sum()) == int(np.isfinite(vals).sum()) - 1


def test_relative_change_of_the_last_snapshot_is_not_drawn_flat(live):
    from cnnvis.gl._chart import chart_scale

    v, session = live
    s = v.scene
    k = list(s.chart_names).index("relative weight change")
    vals = s.chart_values[k]
    kind, lo, hi, to_unit = chart_scale(s, k)
    last = to_unit(vals[-1][np.isfinite(vals[-1])])
    if kind == "linear":
        assert np.nanmax(vals) / np.nanmin(vals[vals > 0]) <= 30
    else:
        assert last.max() - last.min() > 0.02 or last.min() > 0.02   # visibly off the bottom


def test_a_legend_per_edge_mode_and_facet_is_drawn(make_viewer):
    from cnnvis.gl._legend import legend_entries
    from cnnvis.layout import _palette as pal

    s = plain_scene().replace(rect_dead=np.array([0, 0, 0, 1, 0, 0], np.int8))
    v = make_viewer(s, size=(900, 560))

    def titles():
        return [t for t, _ in legend_entries(v.scene, v.state)]

    def drawn():
        v.render()
        return v.renderer.overlay.legend

    assert titles() == ["EDGES (weight)", "CLUSTER FILL"]
    img = v.render()
    H = v.size[1]
    for sw, text, (x0, y0, x1, y1) in drawn():
        if sw is not None and sw[0] == "solid":
            px = img[H - int((y0 + y1) / 2) - 1, int((x0 + x1) / 2), :3].astype(int)
            assert np.abs(px - np.array(sw[1][:3]) * 255).max() < 12, text
    colours = [np.array(sw[1][:3]) for sw, _, _ in drawn() if sw and sw[0] == "solid"]
    assert np.allclose(colours[0], pal.POSITIVE[:3]) and np.allclose(colours[1], pal.NEGATIVE[:3])
    assert any("dead" in t for _, t, _ in drawn())
    v.set_edge_mode("gradient")
    assert titles()[0] == "EDGES (gradient)" and any("gradient" in t for _, t, _ in drawn())
    v.set_facet("matrix")
    assert "MATRIX FACET (ROWS: NEURONS)" in titles()
    assert any("classes cat dog" in t for _, t, _ in drawn())
    v.set_facet("importance")
    assert "IMPORTANCE FACET" in titles() and "MATRIX FACET (ROWS: NEURONS)" not in titles()
    # the legend bar takes no room from the view's content: the view region ends above it
    region_bottom = v.camera.region[1]
    assert all(y1 <= region_bottom + 0.5 for _, _, (_, _, _, y1) in drawn())
    v.key("l")                                   # hidden: the view takes its room back
    assert v.renderer.overlay is None or not drawn() and v.camera.region[1] < region_bottom
    small = make_viewer(s, size=(480, 320))      # a small window shows no legend until asked
    assert small.render() is not None and not small.renderer.overlay.legend
    small.key("l")
    small.render()
    assert small.renderer.overlay.legend


def test_one_colour_means_one_thing():
    """No two encodings in one view share a hue: edges, importance, matrix, cluster fills, highlight."""
    from cnnvis.layout import _palette as pal

    def hue(c):
        import colorsys
        h, l, s = colorsys.rgb_to_hls(*[float(x) for x in c[:3]])
        return h, s

    coloured = {"positive": pal.POSITIVE, "negative": pal.NEGATIVE, "gradient": pal.GRADIENT,
                "change": pal.CHANGE, "importance": pal.IMPORTANCE}
    hues = {k: hue(c) for k, c in coloured.items()}
    names = list(hues)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = abs(hues[a][0] - hues[b][0])
            assert min(d, 1 - d) > 0.05, (a, b)
    # cluster fills, matrix cells and the highlight ink carry (almost) no hue
    for c in (pal.cluster_fill(0, 0.0), pal.cluster_fill(3, 1.0), pal.MATRIX_LOW, pal.MATRIX_HIGH, pal.INK,
              pal.DEAD_FILL):
        assert float(np.ptp(np.asarray(c[:3]))) < 0.05
    assert np.allclose(pal.cluster_fill(0, 0.7), pal.cluster_fill(5, 0.7))   # no per-cluster hue


def test_edges_into_clusters_the_class_selection_fades_fade_too(make_viewer):
    from cnnvis.gl._derived import FADED, curve_ends, curve_opacity

    s = plain_scene()
    np.testing.assert_array_equal(curve_ends(s), [[2, 5], [3, 3 + 2]])   # curve 1 ends in cluster 5 too
    v = make_viewer(s)
    x, y = window_xy(v, (150, 150))
    before = v.render()[v.size[1] - int(v.camera.to_pixel((150, 150))[1]), int(x), :3].astype(int)
    v.select_classes(["cat"])          # clusters 3 and 5 fade: both curves end in a faded one
    assert list(curve_opacity(v.scene, v.state)) == [FADED, FADED]
    after = v.render()[v.size[1] - int(v.camera.to_pixel((150, 150))[1]), int(x), :3].astype(int)
    bg = np.array([251, 251, 252])
    assert np.abs(after - bg).sum() < 0.5 * np.abs(before - bg).sum()
    v.select_classes([])
    assert list(curve_opacity(v.scene, v.state)) == [1.0, 1.0]


def test_matrices_name_their_class_columns_when_wide_enough(make_viewer):
    v = make_viewer(plain_scene(), size=(480, 420))
    v.set_facet("matrix")
    v.render()
    labels = v.renderer.overlay.matrix_labels
    assert [n for n, _, _ in labels] == ["cat", "dog"] * 4   # four matrices, two class columns each
    m = v.scene.matrix_box[0]
    (px0, _), (px1, py1) = v.camera.to_pixel((m[0], m[1])), v.camera.to_pixel((m[2], m[3]))
    (n0, x0, y0), (n1, x1, _) = labels[0], labels[1]
    assert px0 < x0 < (px0 + px1) / 2 < x1 < px1 and y0 >= py1
    img = v.render()
    assert _dark(img, (x0 - 8, y0, x0 + 8, y0 + 9), v.size[1]) > 0
    v.set_facet("features")
    v.render()
    assert v.renderer.overlay.matrix_labels == []
    v.set_facet("matrix")
    v.zoom(0.02)
    v.render()
    assert v.renderer.overlay.matrix_labels == []          # too small to name: the legend says the order


def test_a_column_is_named_once_by_the_overlay_and_never_by_the_scene_labels(make_viewer):
    from cnnvis.gl._names import column_headers, column_label_rows

    v = make_viewer(plain_scene(), size=(640, 420))
    assert column_label_rows(v.scene) == {0, 1}   # both Scene labels are column names: the overlay's to draw
    for zoom in (1.0, 0.3, 0.05, 3.0):
        v.fit()
        v.zoom(zoom)
        headed = [c for c, *_ in column_headers(v.scene, v.camera, v.size)]
        assert len(headed) == len(set(headed))
        for c, name in enumerate(v.scene.column_names):
            x0, _, x1, _ = v.column_box(c)
            on_screen = v.camera.to_pixel((x1, 0))[0] >= 0 and v.camera.to_pixel((x0, 0))[0] <= v.camera.region[2]
            if on_screen and zoom >= 0.3:   # far out, where columns are narrower than a name, some go unnamed
                assert c in headed, (zoom, c)


def test_a_narrow_chart_keeps_its_title_clear_of_its_note():
    from cnnvis.gl._camera import Camera
    from cnnvis.gl._chart import chart_height, draw_chart
    from cnnvis.gl._state import ViewState
    from cnnvis.gl._text import text_width
    from cnnvis.gl._ui import UiBatch

    s = plain_scene()
    vals = s.chart_values.copy()
    vals[:, 0] = np.nan                        # snapshot s1 has no value anywhere
    s = s.replace(chart_legend=("a rather long caption of the gradient series", "change"), chart_values=vals)
    for size in ((400, 300), (1280, 800)):
        under, over = UiBatch(), UiBatch()
        cam = Camera(region=(0, chart_height(size), size[0] - 170, size[1] - chart_height(size)))
        draw_chart(s, ViewState(snapshot=0), cam, size, 170.0, under, over)
        top = [(t, x, y, sz) for t, (x, y), sz, _ in over._texts if y > chart_height(size) - 40]
        boxes = [(x, y, x + text_width(t, sz), y + sz) for t, x, y, sz in top]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (size, top)
        assert any(t.startswith("n/a at s1") for t, *_ in top), "the empty snapshot says why"

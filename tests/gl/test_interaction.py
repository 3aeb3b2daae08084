"""Every interaction as a Viewer method: hover, clicks on the panel and the view, drags, edits."""
import numpy as np
import pytest

from cnnvis.gl import ExpandColumn, MergeBundles, MoveNeuron, SelectSnapshot
from glhelpers import plain_scene, settle, window_xy

pytestmark = pytest.mark.gl


def widget(v, label=None, action=None):
    for w in v.widgets():
        if (label is not None and w.label == label) or (action is not None and w.action == action):
            return w
    raise AssertionError(f"no widget {label or action}")


def centre(w, v):
    x0, y0, x1, y1 = w.box
    return ((x0 + x1) / 2, v.size[1] - (y0 + y1) / 2)


def test_hover_shows_a_tooltip_with_cluster_size_and_top_classes(make_viewer):
    s = plain_scene()
    v = make_viewer(s)
    before = v.render()
    x, y = window_xy(v, (50, 100))            # the green cluster, rect 3: 7 neurons, top class dog
    lines = v.hover(x, y)
    assert lines[0] == "conv1 \u00b7 neuron cluster 1"
    assert "7 neurons" in lines[1]
    assert lines[2].startswith("top classes: dog (1.00), cat (0.10)")
    assert v.state.hover_rect == 3
    after = v.render()
    near = (slice(int(y) + 10, int(y) + 60), slice(int(x) + 10, min(int(x) + 150, v.size[0])))
    assert np.abs(after[near].astype(int) - before[near]).sum() > 1000, "tooltip drawn by the cursor"
    assert "bundle 0" in v.hover(*window_xy(v, (150, 150)))[0]
    assert v.hover(*window_xy(v, (150, 290))) == ()


def test_panel_buttons_drive_the_view_state(make_viewer):
    v = make_viewer(plain_scene(), size=(560, 640))   # tall enough for the whole panel
    v.render()
    assert v.click(*centre(widget(v, "Matrix"), v)) == ("widget", ("facet", "matrix"))
    assert v.state.facet == "matrix"
    v.click(*centre(widget(v, "Gradient"), v))
    assert v.state.edge_mode == "gradient"
    v.click(*centre(widget(v, "dog"), v))
    assert v.state.selected_classes == {1}
    v.click(*centre(widget(v, "All"), v))
    assert v.state.selected_classes == {0, 1}
    v.click(*centre(widget(v, action=("series_step", 1)), v))
    assert v.state.series == 1
    v.click(*centre(widget(v, action=("snapshot", +1)), v))
    assert v.state.snapshot == 0 and v.edits[-1] == SelectSnapshot(0)
    slider = widget(v, action=("threshold",))
    x0, y0, x1, y1 = slider.box
    v.click(x0 + 8 + 0.75 * (x1 - x0 - 16), v.size[1] - (y0 + y1) / 2)
    assert v.state.edge_threshold == pytest.approx(0.75)
    v.drag(x0 + 8 + 0.75 * (x1 - x0 - 16), v.size[1] - (y0 + y1) / 2, x0, v.size[1] - (y0 + y1) / 2)
    assert v.state.edge_threshold == 0.0
    v.click(*centre(widget(v, action=("column", 1)), v))
    assert v.camera.animating and v.state.focus_column == 1


def test_clicking_a_cluster_cycles_its_facet_only(make_viewer):
    v = make_viewer(plain_scene())
    v.click(*window_xy(v, (50, 225)))         # rect 2
    assert v.rect_facets().tolist() == [0, 0, 1, 0, 0, 0]
    v.click(*window_xy(v, (50, 225)))
    assert v.rect_facets()[2] == 2


def test_two_selected_bundles_merge_through_on_edit_and_only_touched_buffers_upload(make_viewer):
    s = plain_scene()
    seen = []

    def on_edit(edit):
        seen.append(edit)
        if isinstance(edit, MergeBundles):
            bundle = np.where(s.curve_bundle == edit.b, edit.a, s.curve_bundle).astype(np.int32)
            return s.replace(curve_bundle=bundle)
        return None

    v = make_viewer(s, on_edit=on_edit, size=(560, 640))
    v.click(*window_xy(v, (150, 150)))
    v.click(*window_xy(v, (150, 40)))
    assert v.state.selected_bundles == (0, 1)
    start = len(v.uploads)
    with_sel = v.render()
    v.click(*centre(widget(v, "Merge 0 + 1"), v))
    assert seen == [MergeBundles(0, 1)] and v.edits[-1] == MergeBundles(0, 1)
    assert v.uploads[start:] == ["curves"], "a merge re-uploads the curve buffer and nothing else"
    assert v.state.selected_bundles == ()
    assert not np.array_equal(with_sel, v.render())
    with pytest.raises(ValueError, match="select two bundles"):
        v.merge_bundles()
    with pytest.raises(ValueError, match="no bundle 7"):
        v.merge_bundles(0, 7)


def test_view_changes_upload_only_the_small_state_buffers(make_viewer):
    v = make_viewer(plain_scene())
    progs = v.programs
    for p in progs.values():
        p.uploads.clear()
    v.set_edge_mode("change")
    v.set_edge_threshold(0.3)
    v.render()
    assert all(not p.uploads for p in progs.values()), "edge mode and filter are uniforms"
    v.select_classes([0])
    assert progs["rect"].uploads == ["state"] and progs["curve"].uploads == []
    assert progs["patch"].uploads == ["state"] and progs["matrix"].uploads == ["state"]
    assert v.set_scene(v.scene.replace(curve_values=v.scene.curve_values * 0.5)) == {"curves"}
    assert v.set_scene(v.scene) == set()


def test_dragging_a_patch_onto_a_cluster_of_its_layer_asks_to_move_the_neuron(make_viewer):
    from cnnvis.testing.scenes import synthetic_scene

    s = synthetic_scene(3, 3)
    v = make_viewer(s, size=(640, 420))
    p = 0
    src = int(s.patch_rect[p])
    dst = int(np.flatnonzero((s.rect_column == s.rect_column[src]) & (s.rect_kind == 1) & (np.arange(s.n_rects) != src))[-1])
    pb, db = s.patch_box[p], s.rect_box[dst]
    edit = v.drag(*window_xy(v, ((pb[0] + pb[2]) / 2, (pb[1] + pb[3]) / 2)),
                  *window_xy(v, ((db[0] + db[2]) / 2, db[1] + 2)))
    col = int(s.rect_column[src])
    assert edit == MoveNeuron(p, src, dst, col, int(s.rect_cluster[src]), int(s.rect_cluster[dst]),
                              int(s.patch_neuron[p]), s.column_layer[col])
    other = int(np.flatnonzero((s.rect_column != s.rect_column[src]) & (s.rect_kind == 1))[0])
    ob = s.rect_box[other]
    assert v.drag(*window_xy(v, ((pb[0] + pb[2]) / 2, (pb[1] + pb[3]) / 2)),
                  *window_xy(v, ((ob[0] + ob[2]) / 2, ob[1] + 2))) is None
    with pytest.raises(ValueError, match="own layer cluster"):
        v.move_neuron(p, other)


def test_double_click_zooms_to_the_column_and_expands_it_on_landing(make_viewer):
    v = make_viewer(plain_scene())
    assert v.double_click(*window_xy(v, (250, 225))) == ("column", 1)
    assert v.camera.animating and v.edits == []
    settle(v, 1 / 60)
    assert v.edits == [ExpandColumn(1)], "column 1 holds 2 layers: expanded when the camera lands"
    v.double_click(*window_xy(v, (50, 225)))
    settle(v, 1 / 60)
    assert v.edits == [ExpandColumn(1)], "column 0 is a single layer: nothing to expand"


def test_keys(make_viewer):
    v = make_viewer(plain_scene())
    assert v.key("2") and v.state.facet == "matrix"
    assert v.key("g") and v.state.edge_mode == "gradient"
    assert v.key("]") and v.state.edge_threshold == pytest.approx(0.05)
    z = v.camera.zoom
    assert v.key("=") and v.camera.zoom == pytest.approx(1.25 * z)
    assert v.key("f") and v.camera.zoom == pytest.approx(z)
    assert not v.key("q")


def test_a_refused_edit_in_the_window_becomes_a_note_not_a_crash(make_viewer):
    from cnnvis.errors import CnnvisError

    def on_edit(edit):
        raise CnnvisError("only bundles between the same two layer clusters can be merged")

    v = make_viewer(plain_scene(), on_edit=on_edit)
    assert v.guarded(v.merge_bundles, 0, 1) is None
    assert v.state.tooltip == ("not done: only bundles between the same two layer clusters can be merged",)
    with pytest.raises(CnnvisError):
        v.merge_bundles(0, 1)    # scripts calling the method see the error itself


def test_edits_carry_the_scene_ids_the_session_maps_them_by(make_viewer):
    from cnnvis.testing.scenes import synthetic_scene

    s = synthetic_scene(3, 3)
    v = make_viewer(s, size=(640, 420))
    a, b = (int(k) for k in np.unique(s.curve_bundle)[:2])
    edit = v.merge_bundles(a, b)
    assert edit == MergeBundles(a, b, tuple(int(x) for x in s.bundle_id[a]), tuple(int(x) for x in s.bundle_id[b]))
    assert edit.a_id[:2] == (0, 1), "the first bundles run from column 0 to column 1"
    p = 3
    src = int(s.patch_rect[p])
    mates = (s.rect_column == s.rect_column[src]) & (s.rect_kind == 1) & (np.arange(s.n_rects) != src)
    dst = int(np.flatnonzero(mates)[0])
    edit = v.move_neuron(p, dst)
    assert (edit.layer, edit.neuron) == (s.column_layer[s.rect_column[src]], int(s.patch_neuron[p]))
    assert (edit.column, edit.src_cluster, edit.dst_cluster) == (
        int(s.rect_column[src]), int(s.rect_cluster[src]), int(s.rect_cluster[dst]))
    plain = make_viewer(plain_scene())   # a Scene without id tables: the ids stay empty
    assert plain.merge_bundles(0, 1) == MergeBundles(0, 1) and plain.edits[-1].a_id == ()


def test_window_events_drive_the_viewer_through_its_public_methods_only(make_viewer):
    """Synthetic mouse events through the window-event handlers: a press-release cycles a facet, the pair's
    double-click undoes that and zooms, a patch drag asks to move the neuron; and the handlers' module
    touches no private attribute of the viewer."""
    import ast
    import inspect
    from types import SimpleNamespace

    from cnnvis.gl import _events
    from cnnvis.testing.scenes import synthetic_scene

    tree = ast.parse(inspect.getsource(_events))
    private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
               and n.value.id in ("v", "viewer") and n.attr.startswith("_")]
    assert private == []

    s = synthetic_scene(3, 3)
    v = make_viewer(s, size=(640, 420))
    ev = v.events

    def mouse(kind, x, y, dragging=False):
        e = SimpleNamespace(button=1, pos=(x, y), is_dragging=dragging)
        {"press": ev._on_press, "move": ev._on_move, "release": ev._on_release, "double": ev._on_double_click}[kind](e)

    r = int(np.flatnonzero(s.rect_kind == 1)[0])
    b = s.rect_box[r]
    inside = [p for p in range(s.n_patches) if s.patch_rect[p] == r]
    xy = window_xy(v, (b[0] + 1.5, b[1] + 1.5))          # a corner of the cluster, off its patches
    assert v.pick(*xy) == ("rect", r)
    mouse("press", *xy)
    mouse("release", *xy)
    assert v.rect_facets()[r] == 1, "a click switched the cluster to its next facet"
    mouse("press", *xy)
    mouse("double", *xy)
    mouse("release", *xy)
    assert v.rect_facets()[r] == 0 and v.camera.animating, "the double-click undid it and zooms"
    settle(v, 1 / 60)
    v.set_facet("features")
    v.fit()
    p = inside[0]
    pb = s.patch_box[p]
    mates = (s.rect_column == s.rect_column[r]) & (s.rect_kind == 1) & (np.arange(s.n_rects) != r)
    dst = int(np.flatnonzero(mates)[-1])
    db = s.rect_box[dst]
    start = window_xy(v, ((pb[0] + pb[2]) / 2, (pb[1] + pb[3]) / 2))
    end = window_xy(v, ((db[0] + db[2]) / 2, db[1] + 2))
    n = len(v.edits)
    mouse("press", *start)
    mouse("move", *end, dragging=True)
    assert v.state.drag_ghost == (end[0], v.size[1] - end[1])
    mouse("release", *end)
    assert v.state.drag_ghost == () and v.edits[n:] == [v.edits[-1]] and isinstance(v.edits[-1], MoveNeuron)
    assert (v.edits[-1].patch, v.edits[-1].dst_rect) == (p, dst)


def test_a_refused_background_edit_is_said_by_the_cursor_and_ends_the_wait():
    """An edit answered by a poll function that then raises (the session refused it off the window's
    thread): the viewer stops waiting, clears "busy" and says why, instead of raising from its poll timer."""
    from cnnvis.errors import CnnvisError
    from cnnvis.gl._viewer import Viewer
    from glhelpers import plain_scene

    def refuse():
        raise CnnvisError("layer cluster 'x' was not expanded: nothing to collapse")

    v = Viewer(plain_scene(), on_edit=lambda edit: refuse, size=(320, 240))
    try:
        v.expand_column(0, animate=False)
        assert v.state.busy and v.transient.poll is not None
        v.poll()
        assert v.transient.poll is None and v.state.busy == ""
        assert v.state.tooltip == ("not done: layer cluster 'x' was not expanded: nothing to collapse",)
    finally:
        v.close()


def test_the_window_timer_flies_on_after_a_landing_expands_the_column(make_viewer):
    """Driven by the window's own animation timer callback: the double-click's flight lands, the expand it
    asked for arrives, and the fit onto the new columns then runs to its end too (the timer used to stop at
    the landing, leaving the second flight unstepped until some other event)."""
    from types import SimpleNamespace

    from cnnvis.app.session import Session
    from cnnvis.testing.synthetic import synthetic_network

    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    ses = Session(net.analysis, findings=False)
    v = make_viewer(ses.scene, on_edit=ses.on_edit)
    c = next(i for i, lc in enumerate(ses.aggregation.layer_clusters) if lc.children)
    v.zoom_to_column(c, expand=True)
    ev, ticks = v.events, 0
    assert ev._timer.running
    while ev._timer.running:
        ev._on_timer(SimpleNamespace(dt=1 / 60))
        ticks += 1
        assert ticks < 600, "the animation never ends"
    assert v.edits == [ExpandColumn(c)]
    assert not v.camera.animating, "the fit onto the expanded columns was left unstepped"

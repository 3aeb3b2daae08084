"""The controller and the view state without GL: synthetic events in, actions out."""
import dataclasses
import subprocess
import sys

import pytest

from glhelpers import SIZE, plain_scene

from cnnvis.gl import _actions as A
from cnnvis.gl import _controller as ctl
from cnnvis.gl._camera import Camera
from cnnvis.gl._chart import chart_height
from cnnvis.gl._derived import content_box
from cnnvis.gl._panel import panel_widgets, panel_width
from cnnvis.gl._state import FacetMap, ViewState


def _view(scene, size=SIZE):
    """A camera laid out and fitted as the Viewer does it."""
    cam = Camera()
    W, H = size
    cam.region = (0.0, chart_height(size), W - panel_width(size), H - chart_height(size))
    cam.fit(content_box(scene), margin=28)
    return cam


def _window(cam, size, world):
    x, y = cam.to_pixel(world)
    return float(x), float(size[1] - y)


def _pick(scene, state, cam, world, size=SIZE):
    return ctl.pick(scene, state, cam, size, panel_widgets(state, scene, size), ctl.CurveIndex(scene),
                    *_window(cam, size, world))


def test_the_view_state_is_frozen_and_replaced():
    s = ViewState()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.facet = "matrix"
    t = s.replace(facet="matrix", cluster_facet={(0, 1): "importance"})
    assert s.facet == "features" and t.facet == "matrix" and isinstance(t.cluster_facet, FacetMap)
    assert t.cluster_facet == {(0, 1): "importance"} and hash(t) == hash(s.replace(facet="matrix").replace(
        cluster_facet=FacetMap().with_((0, 1), "importance")))
    assert t.cluster_facet.with_((2, 0), "matrix") == {(0, 1): "importance", (2, 0): "matrix"}
    assert t.cluster_facet == {(0, 1): "importance"}, "with_ makes a new map"


def test_picking_names_clusters_curves_columns_and_the_panel():
    s, st = plain_scene(), ViewState()
    cam = _view(s)
    assert _pick(s, st, cam, (50, 225)) == ("rect", 2)             # cluster of column 0
    assert _pick(s, st, cam, (50, 155)) == ("rect", 0)             # the column between its clusters
    assert _pick(s, st, cam, (150, 150))[0] == "curve"             # the strong curve's middle
    assert _pick(s, st, cam, (150, 150)) == ("curve", 0)
    assert _pick(s, st.replace(edge_threshold=1.0), cam, (150, 40)) == ("none", -1), "filtered curves: not hit"
    kind, w = ctl.pick(s, st, cam, SIZE, panel_widgets(st, s, SIZE), ctl.CurveIndex(s), SIZE[0] - 20, 60)
    assert kind in ("widget", "none")
    facet = next(w for w in panel_widgets(st, s, SIZE) if w.action == ("facet", "matrix"))
    x0, y0, x1, y1 = facet.box
    hit = ctl.pick(s, st, cam, SIZE, panel_widgets(st, s, SIZE), ctl.CurveIndex(s), (x0 + x1) / 2,
                   SIZE[1] - (y0 + y1) / 2)
    assert hit == ("widget", facet)


def test_events_become_actions():
    s, st = plain_scene(), ViewState()
    cam = _view(s)
    hit, actions = ctl.click(s, st, _pick(s, st, cam, (50, 225)), 0.0)
    assert hit == ("rect", 2) and actions == [A.CycleFacet(2)]
    hit, actions = ctl.click(s, st, _pick(s, st, cam, (150, 150)), 0.0)
    assert actions == [A.SelectBundle(0)]
    assert ctl.click(s, st, ("none", -1), 0.0)[1] == []
    cleared = ctl.click(s, st.replace(selected_bundles=(0, 1)), ("none", -1), 0.0)[1]
    assert cleared == [A.SetState({"selected_bundles": ()})]
    assert ctl.double_click(s, ("rect", 4)) == (("column", 1), [A.ZoomToColumn(1, expand=True)])
    assert ctl.double_click(s, ("rect", 2)) == (("column", 0), [A.ZoomToColumn(0, expand=False)])
    assert ctl.drag(s, ("rect", 2), ("rect", 3), (5.0, -7.0), 0.0) == [A.Pan(5.0, -7.0)]
    assert ctl.key(st, "G") == [A.SetEdgeMode("gradient")]
    assert ctl.key(st.replace(edge_threshold=0.98), "]") == [A.SetEdgeThreshold(1.0)]
    assert ctl.key(st, "m") == [] and ctl.key(st.replace(selected_bundles=(0, 1)), "m") == [A.MergeSelected()]
    assert ctl.key(st, "q") is None
    assert ctl.widget_actions(s, st, ("fit",), 0.0) == [A.SetState({"focus_column": -1}), A.Fit()]
    assert ctl.widget_actions(s, st, ("expand",), 0.0) == []
    assert ctl.widget_actions(s, st.replace(focus_column=1), ("expand",), 0.0) == [A.ExpandColumn(1)]
    assert ctl.widget_actions(s, st.replace(snapshot=-1), ("snapshot", 1), 0.0) == [A.SetSnapshot(2)]
    every = [ctl.key(st, k) for k in "f123wgc[]=+-"] + [ctl.widget_actions(s, st, a, 0.0) for a in
                                                       [("facet", "matrix"), ("class", 0), ("classes", "all"),
                                                        ("series_step", 1), ("column", 0), ("merge",)]]
    assert all(isinstance(a, A.Action) for acts in every for a in acts)   # typed: Viewer.apply matches each
    assert ctl.key(st, "ctrl+z") == [A.Undo()]   # asked even with nothing to undo: the answer says so
    assert ctl.key(st, "ctrl+shift+z") == ctl.key(st, "ctrl+y") == [A.Redo()]


def test_hover_sets_the_tooltip_and_highlight_fields():
    s, st = plain_scene(), ViewState()
    cam = _view(s)
    ch = ctl.hover(s, st, _pick(s, st, cam, (50, 225)), (10.0, 20.0))
    assert ch["hover_rect"] == 2 and ch["hover_bundle"] == -1 and ch["tooltip_at"] == (10.0, 20.0)
    assert ch["tooltip"][0] == "conv1 \u00b7 neuron cluster 0" and "5 neurons" in ch["tooltip"][1]
    assert ch["tooltip"][2] == "top classes: cat (1.00), dog (0.10)"
    ch = ctl.hover(s, st, ("curve", 1), (0.0, 0.0))
    assert ch["hover_bundle"] == 1 and ch["hover_rect"] == -1 and ch["tooltip"][0] == "bundle 1"
    assert ctl.hover(s, st, ("chart", 0), (0.0, 0.0))["tooltip"] == ("conv1: gradient = n/a",)
    assert ctl.hover(s, st, ("none", -1), (0.0, 0.0))["tooltip"] == ()


def test_importing_cnnvis_gl_loads_neither_torch_nor_the_analysis():
    code = ("import sys, cnnvis.gl, cnnvis.gl._controller, cnnvis.gl._overlay, cnnvis.gl._state; "
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'cnnvis.analysis', "
            "'cnnvis.aggregate', 'cnnvis.compute', 'cnnvis.pipeline', 'cnnvis.testing'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_controller_and_the_overlay_load_no_gl():
    code = ("import sys, cnnvis.gl._controller, cnnvis.gl._overlay; "
            "print(sorted(m for m in sys.modules if m.startswith(('vispy.gloo', 'OpenGL'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

"""The window works as documented (issue 17 item 4, issue 19 item 4): the panel fits the default window,
every title is drawn once and no two labels overlap at any zoom, controls that can do nothing say why,
findings are grouped, the app's pending work keeps the window drawing, and Ctrl chords reach the viewer
through VisPy's glfw backend in a real window."""
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnvis.gl import _actions as A
from cnnvis.gl._names import distinct_names
from cnnvis.gl._overlay import Overlay, busy_box
from cnnvis.gl._panel import panel_widgets, panel_width
from cnnvis.gl._state import ViewState
from cnnvis.gl._ui import THEME
from cnnvis.layout import RECT_COLUMN
from cnnvis.layout._findings import FindingMark
from cnnvis.testing.scenes import synthetic_scene
from glhelpers import plain_scene, settle, start_xvfb, stop_processes

pytestmark = pytest.mark.gl
DEFAULT = (1280, 800)
DENSE = [f"features.denseblock{b}.denselayer{k}.conv" for b in (1, 2, 3) for k in (1, 2, 3, 4)] + \
        [f"features.transition{t}.conv" for t in (1, 2, 3)] + ["features.norm5", "classifier"]


def _named(scene, names, classes=None):
    """The scene with these column names (and its Scene labels: a name and a line under it per column)."""
    cols = np.flatnonzero(scene.rect_kind == RECT_COLUMN)
    texts, pos, size = [], [], []
    for r in cols:
        c = int(scene.rect_column[r])
        x0, _, _, y1 = scene.rect_box[r]
        texts += [names[c], f"{names[c]} \u00b7 {40 + c} neurons"]
        pos += [(x0, y1 + 26.0), (x0, y1 + 8.0)]
        size += [15.0, 11.0]
    return dataclasses.replace(scene, column_names=tuple(names), label_text=tuple(texts),
                               label_pos=np.array(pos, np.float32), label_size=np.array(size, np.float32),
                               **({"class_names": tuple(classes)} if classes else {})).validate()


def _with_findings(scene, n=80):
    kinds = ("dead-neurons", "redundant-neurons", "positive-weights", "weight-change")
    C = len(scene.column_names)
    marks = tuple(FindingMark(k + 1, kinds[(k // 4) % 4], "warning", str(scene.column_names[(k // 16) % C]),
                              f"finding {k + 1} says something about its layer",
                              "matrix" if (k // 4) % 4 < 2 else "edges", column=(k // 16) % C,
                              columns=((k // 16) % C,)) for k in range(n))   # 20 groups of 4
    return dataclasses.replace(scene, findings=marks).validate()


def big_scene():
    return _with_findings(_named(synthetic_scene(len(DENSE), 4, seed=3), DENSE))


def _disjoint(boxes):
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                return (a, b)
    return None


# ---------------------------------------------------------------------------------------- the panel --
@pytest.mark.parametrize("size", [DEFAULT, (1000, 700), (1280, 640)])
def test_the_whole_panel_fits_the_window(size):
    s = big_scene()
    for state in (ViewState(), ViewState(finding_group=0), ViewState(layer_scroll=99, class_scroll=5)):
        ws = panel_widgets(state, s, size)
        x_left = size[0] - panel_width(size)
        for w in ws:
            x0, y0, x1, y1 = w.box
            assert x_left <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1], w
        assert _disjoint([w.box for w in ws if w.kind != "heading"]) is None
        labels = [w.label for w in ws]
        assert "?: every key and mouse action" in labels                  # the hint, at the bottom
        layers = [w for w in ws if w.action and w.action[0] == "column"]
        assert len({w.box[1] for w in layers}) >= 2                      # the layer list, scrolled
        assert any(w.action and w.action[:2] == ("scroll", "layer_scroll") for w in ws)
        assert any(w.action == ("finding_step", 1) for w in ws)           # the findings pager


def test_opening_a_findings_group_moves_no_other_control():
    s = big_scene()

    def boxes(state):
        return {w.action: w.box for w in panel_widgets(state, s, DEFAULT)
                if w.action and w.action[0] not in ("finding", "finding_group", "scroll")}

    closed = boxes(ViewState())
    for g in (0, 5, 19):
        assert boxes(ViewState(finding_group=g)) == closed


def test_scrolling_the_layer_list_reaches_every_layer():
    s = big_scene()
    seen, state = set(), ViewState()
    for _ in range(30):
        ws = panel_widgets(state, s, DEFAULT)
        seen |= {w.action[1] for w in ws if w.action and w.action[0] == "column"}
        down = next(w for w in ws if w.action and w.action[:2] == ("scroll", "layer_scroll") and w.label == "v")
        if not down.enabled:
            break
        state = state.replace(layer_scroll=down.action[2])
    assert seen == set(range(len(DENSE)))


# ----------------------------------------------------------------------------------------- findings --
def test_findings_are_grouped_by_kind_and_layer_cluster_with_counts(make_viewer):
    s = big_scene()
    v = make_viewer(s, size=DEFAULT)
    rows = [w for w in v.widgets() if w.action and w.action[0] == "finding_group"]
    groups = {(m.kind, m.column) for m in s.findings}
    assert len(groups) == 20 and len(rows) >= 4                           # 80 findings read as 20 groups
    assert rows[0].label.startswith("4\u00d7 dead-neurons \u00b7 ")       # a count with each
    assert any(w.kind == "heading" and w.label == "FINDINGS: 80 IN 20 GROUPS" for w in v.widgets())
    x0, y0, x1, y1 = rows[1].box
    v.click((x0 + x1) / 2, v.size[1] - (y0 + y1) / 2)                    # open the group
    listed = [w.action[1] for w in v.widgets() if w.action and w.action[0] == "finding"]
    assert listed == [m.number for m in s.findings if (m.kind, m.column) == ("redundant-neurons", 0)] == [5, 6, 7, 8]
    w = next(w for w in v.widgets() if w.action == ("finding", listed[2]))
    v.click((w.box[0] + w.box[2]) / 2, v.size[1] - (w.box[1] + w.box[3]) / 2)
    assert v.state.finding == listed[2] and v.state.facet == "matrix"
    assert v.edits == [] and v.camera.animating                           # flies at once, asks for nothing
    back = next(w for w in v.widgets() if w.action == ("finding_group", -1))
    v.click((back.box[0] + back.box[2]) / 2, v.size[1] - (back.box[1] + back.box[3]) / 2)
    assert any(w.action and w.action[0] == "finding_group" for w in v.widgets())
    v.focus_finding(77, animate=False)                                    # a finding far down opens its group
    assert any(w.action == ("finding", 77) and w.active for w in v.widgets())


# ------------------------------------------------------------------------------------------- labels --
def test_names_shorten_from_their_distinct_part():
    short = distinct_names(DENSE, 80.0, 11.0)
    assert len(set(short)) == len(short), short                            # never "…conv" three times
    assert short[DENSE.index("features.denseblock2.denselayer1.conv")] != \
        short[DENSE.index("features.denseblock3.denselayer1.conv")]
    assert distinct_names(["features.conv1", "features.conv2_1", "features.relu2_1"], 50.0, 11.0) == \
        ["conv1", "conv2_1", "relu2_1"]                                   # the shared head goes first


@pytest.mark.parametrize("facet", ["features", "matrix"])
def test_every_title_is_drawn_once_and_no_two_labels_overlap_at_any_zoom(make_viewer, facet):
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    s = _named(synthetic_scene(len(DENSE), 4, seed=3), DENSE, classes)
    v = make_viewer(s, size=DEFAULT)
    v.set_facet(facet)
    rx, ry, rw, rh = v.camera.region
    for zoom in (0.05, 0.3, 1.0, 2.5, 6.0, 15.0):
        v.fit()
        v.zoom(zoom)
        o = Overlay(v.scene, v.state, v.camera, v.size)
        boxes = [b for _, b in o.label_boxes]
        assert _disjoint(boxes) is None, (zoom, _disjoint(boxes))
        titled = [c for c, *_ in o.headers]
        assert titled and len(titled) == len(set(titled)), zoom             # each column titled once
        spacing = (v.column_box(1)[0] - v.column_box(0)[0]) * v.camera.zoom
        for c in range(len(DENSE)):                # ... and, where columns are a title apart, every one on screen
            x0, _, x1, _ = v.column_box(c)
            if spacing >= 60 and v.camera.to_pixel((x1, 0))[0] > rx + 4 and \
                    v.camera.to_pixel((x0, 0))[0] < rx + rw - 4:
                assert c in titled, (zoom, c)
        for b in boxes:                                                    # never over the panel or the chart
            assert rx - 1 <= b[0] and b[2] <= rx + rw + 1 and ry - 1 <= b[1] and b[3] <= ry + rh + 1, (zoom, b)


def test_column_titles_are_ink_where_the_overlay_puts_them_and_nowhere_twice(make_viewer):
    v = make_viewer(_named(plain_scene(), ["conv1", "fc"]), size=(640, 420))
    for zoom in (1.0, 3.0):
        v.fit()
        v.zoom(zoom)
        img = v.render().astype(int)
        o = v.renderer.overlay
        for c, text, (x0, y0, x1, y1), full in o.headers:
            patch = img[v.size[1] - int(y1):v.size[1] - int(y0), int(x0):int(x1), :3]
            assert (patch.sum(-1) < 300).any(), f"no ink in the title {text}"
        assert sorted(c for c, *_ in o.headers) == [0, 1]


# ------------------------------------------------------------------------------- disabled controls --
def _no_snapshots(scene):
    v = scene.curve_values.copy()
    v[:, 1:] = 0.0
    return dataclasses.replace(scene, curve_values=v, chart_snapshots=(),
                               chart_values=scene.chart_values[:, :0]).validate()


def test_controls_that_can_do_nothing_look_disabled_and_say_why(make_viewer):
    s = _no_snapshots(plain_scene())
    shown = [s]
    undoable = [0]

    def on_edit(edit):   # a session's history: an Undo with nothing to undo is refused
        if type(edit).__name__ == "Undo":
            if not undoable[0]:
                raise ValueError("nothing to undo")
            undoable[0] -= 1
        elif type(edit).__name__ != "Redo":
            undoable[0] += 1
        return shown[-1]

    v = make_viewer(s, size=DEFAULT, on_edit=on_edit)
    by_label = {w.label: w for w in v.widgets() if w.kind == "button"}
    for mode in ("Gradient", "Change"):
        w = by_label[mode]
        assert not w.enabled and "snapshots" in w.tip
        tip = v.hover((w.box[0] + w.box[2]) / 2, v.size[1] - (w.box[1] + w.box[3]) / 2)
        assert "snapshots" in " ".join(tip)
        v.click((w.box[0] + w.box[2]) / 2, v.size[1] - (w.box[1] + w.box[3]) / 2)
        assert v.state.edge_mode == "weight"
    v.guarded(v.key, "g")                                                   # the key says why, as a note
    assert v.state.edge_mode == "weight" and "snapshots" in v.state.tooltip[0]
    with pytest.raises(ValueError, match="edge colour gradient: no edge gradients in this file"):
        v.set_edge_mode("gradient")
    undo = by_label["Undo"]
    assert not undo.enabled and "nothing to undo" in undo.tip and not by_label["Redo"].enabled
    img = v.render()
    x0, y0, x1, y1 = undo.box                                              # drawn greyed: the disabled fill
    px = img[v.size[1] - int(y0 + 4), int(x0 + 6), :3] / 255.0
    assert np.allclose(px, THEME["disabled"][:3], atol=0.02)
    v.expand_column(1, animate=False)                                      # an edit: Undo comes alive
    assert v.state.undo_depth == 1 and next(w for w in v.widgets() if w.label == "Undo").enabled
    assert v.key("ctrl+z") and v.state.undo_depth == 0 and v.state.redo_depth == 1
    assert next(w for w in v.widgets() if w.label == "Redo").enabled
    assert not next(w for w in v.widgets() if w.label == "Undo").enabled
    v.guarded(v.key, "ctrl+z")                                              # refused by the session: a note
    assert v.state.tooltip == ("not done: nothing to undo",) and v.state.undo_depth == 0


# -------------------------------------------------------------------------------- pending and busy --
def test_a_pending_scene_keeps_the_window_drawing_and_swaps_in_when_ready(make_viewer):
    s = plain_scene()
    expanded = dataclasses.replace(s, rect_fill=s.rect_fill[::-1].copy()).validate()
    calls = []

    def on_edit(edit):
        calls.append(edit)
        answers = iter([None, None, expanded])
        return lambda: next(answers)

    v = make_viewer(s, on_edit=on_edit)
    v.zoom_to_column(1, expand=True)                                       # a double-click's action
    assert v.camera.animating and calls == []                              # the flight starts at once
    settle(v, 0.05)
    assert [type(e).__name__ for e in calls] == ["ExpandColumn"]
    assert v.scene is s and v.state.busy == "expanding fc\u2026"
    img = v.render()
    x0, y0, x1, y1 = busy_box(v.state.busy, v.camera.region)
    note = img[v.size[1] - int(y1):v.size[1] - int(y0), int(x0):int(x1), :3].astype(int)
    active = np.array(THEME["active"][:3]) * 255
    assert (np.abs(note - active).sum(-1) < 60).sum() > 20, "the note is drawn"
    with pytest.raises(ValueError, match="wait for it"):
        v.undo()                                                           # one edit at a time
    assert v.poll() and v.poll() and v.scene is s
    assert not v.poll() and v.scene is expanded and v.state.busy == "" and v.state.undo_depth == 1


def test_a_busy_application_is_shown_and_cleared(make_viewer):
    note = ["clustering\u2026"]
    v = make_viewer(plain_scene(), busy=lambda: note[0])
    assert v.poll() and v.state.busy == "clustering\u2026"
    note[0] = None
    v.poll()
    assert v.state.busy == ""
    v.set_busy("loading findings\u2026")
    assert v.state.busy == "loading findings\u2026"


def test_apply_takes_typed_actions_only(make_viewer):
    v = make_viewer(plain_scene())
    v.apply([A.SetFacet("matrix"), A.SetEdgeThreshold(0.5), A.SetState({"show_help": True})])
    assert (v.state.facet, v.state.edge_threshold, v.state.show_help) == ("matrix", 0.5, True)
    with pytest.raises(ValueError, match="not a viewer action"):
        v.apply([("set_facet", "features")])


# --------------------------------------------------------------------- Ctrl chords in a real window --
_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import vispy
vispy.use(app="glfw", gl="gl+")
from glhelpers import plain_scene
from cnnvis.gl._viewer import Viewer
from cnnvis.gl.app import attach_dump
from cnnvis.gl._loop import run_glfw
scene = plain_scene()
v = Viewer(scene, on_edit=lambda e: scene, size=(480, 320), show=True, title="cnnvis-gl keys")
v.expand_column(1, animate=False)
attach_dump(v, {prefix!r})
run_glfw()
"""


@pytest.mark.slow
def test_ctrl_z_and_redo_chords_arrive_through_the_glfw_backend(tmp_path):
    assert shutil.which("Xvfb") and shutil.which("xdotool"), "Xvfb and xdotool are missing: run scripts/setup.sh"
    prefix = str(tmp_path / "dump")
    (tmp_path / "keys.py").write_text(_SCRIPT.format(tests=str(Path(__file__).parent), prefix=prefix))
    xvfb, env = start_xvfb()
    display = env["DISPLAY"]
    app = None
    try:
        app = subprocess.Popen([sys.executable, str(tmp_path / "keys.py")], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.time() + 60
        while not Path(prefix + ".ready").exists():
            assert app.poll() is None, app.communicate()[1][-2000:]
            assert time.time() < end, "the window never drew"
            time.sleep(0.1)
        win = subprocess.run(["xdotool", "search", "--sync", "--name", "cnnvis-gl keys"], env=env, text=True,
                             capture_output=True, timeout=20).stdout.split()[0]
        for chord in ("ctrl+z", "ctrl+shift+z", "ctrl+z", "ctrl+y", "p"):   # p: dump, after the chords
            subprocess.run(["xdotool", "key", "--window", win, chord], env=env, check=True, timeout=20)
            time.sleep(0.5)
        end = time.time() + 30
        while not Path(prefix + ".0.json").exists():
            assert time.time() < end and app.poll() is None, "no dump after key P"
            time.sleep(0.1)
        time.sleep(0.2)
        state = json.loads(Path(prefix + ".0.json").read_text())
    finally:
        stop_processes(app, xvfb)
    assert state["edits"] == ["ExpandColumn(column=1)", "Undo()", "Redo()", "Undo()", "Redo()"]

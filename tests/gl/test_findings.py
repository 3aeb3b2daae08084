"""Findings in the viewer: choosing one switches the facet, flies the camera to its column and outlines its
cluster (read back from an offscreen render); the panel lists them; `cnnvis-gl FILE --finding N` end to end
and its out-of-range message. The planted models are test_diagnose's (a bias that kills a ReLU)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the planted models of test_diagnose
from test_app_findings import planted, session  # noqa: F401  (fixtures: 2 findings planted, its Session)
from test_diagnose import control, data, run_analysis  # noqa: F401  (data: a fixture)

from cnnvis.app import main_gl
from cnnvis.app.session import Session
from cnnvis.errors import CnnvisError
from cnnvis.gl._findings import FINDING_COLOR, RING_PAD, RING_WIDTH, current_mark
from cnnvis.gl._panel_findings import finding_tip, group_of
from cnnvis.gl._scenefile import load_scene, save_scene
from cnnvis.app.gl_command import run
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN
from cnnvis.testing.synthetic import synthetic_network
from glhelpers import plain_scene

pytestmark = pytest.mark.gl
SIZE = (800, 600)
MAGENTA = np.round(np.array(FINDING_COLOR[:3]) * 255)


def magenta(image) -> np.ndarray:
    """(h, w) bool: pixels of the finding colour (within a few levels)."""
    return (np.abs(image[..., :3].astype(float) - MAGENTA) <= 6).all(-1)


def at_pixel(viewer, image, px, py) -> bool:
    """Is the canvas pixel (origin bottom left) of the finding colour?"""
    return bool(magenta(image)[viewer.size[1] - 1 - int(py), int(px)])


def cluster_box(scene, column, cluster) -> np.ndarray:
    s = scene
    r = np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == column) & (s.rect_cluster == cluster))
    return s.rect_box[int(r[0])]


def left_ring_point(viewer, box):
    """A canvas point on the outline's left side: inside its band, RING_PAD..RING_PAD-RING_WIDTH px out."""
    p0, p1 = viewer.camera.to_pixel(box[:2]), viewer.camera.to_pixel(box[2:])
    return p0[0] - RING_PAD + RING_WIDTH / 2, 0.5 * (p0[1] + p1[1])


def test_choosing_a_dead_neuron_finding_shows_its_matrix_zooms_and_outlines_its_cluster(session, make_viewer):
    v = make_viewer(session.scene, on_edit=session.on_edit, size=SIZE)
    before = v.render()
    assert not magenta(before).any(), "the finding colour is the finding's alone"
    m = v.focus_finding(1, animate=False)
    st = v.state
    assert (m.kind, st.finding, st.facet, st.edge_mode, st.focus_column) == ("dead-neurons", 1, "matrix", "weight",
                                                                           m.column)
    col = v.column_box(m.column)
    assert col[0] <= v.camera.center[0] <= col[2]
    img = v.render()
    box = cluster_box(v.scene, m.column, m.cluster)
    assert at_pixel(v, img, *left_ring_point(v, box))
    assert not at_pixel(v, before, *left_ring_point(v, box))
    # the other clusters of the column are not outlined
    s = v.scene
    for r in np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == m.column) & (s.rect_cluster != m.cluster)):
        x, y = left_ring_point(v, s.rect_box[r])
        assert not magenta(img)[v.size[1] - 1 - int(y), int(x) - 3:int(x) + 3].any()


def test_a_weight_change_finding_shows_the_chart_series_and_outlines_its_column(session, make_viewer):
    v = make_viewer(session.scene, size=SIZE)
    m = v.focus_finding(2, animate=False)
    s = v.scene
    assert (v.state.series, v.state.edge_mode) == (list(s.chart_names).index("relative weight change"), "change")
    assert v.state.facet == "features"  # the chart shows it; the clusters keep their facet
    img = v.render()
    colbox = s.rect_box[(s.rect_kind == RECT_COLUMN) & (s.rect_column == m.column)][0]
    assert at_pixel(v, img, *left_ring_point(v, colbox))
    # the neighbours are outlined lighter: a paler pink on white, not the finding colour itself
    nb = s.rect_box[(s.rect_kind == RECT_COLUMN) & (s.rect_column == m.columns[1])][0]
    x, y = left_ring_point(v, nb)
    x -= RING_WIDTH / 2 - 1  # the lighter ring is 2 px wide: its middle
    px = img[v.size[1] - 1 - int(y), int(x), :3].astype(int)
    assert not at_pixel(v, img, x, y) and px[0] > px[1] + 30  # pink, not grey


def test_bad_finding_numbers_name_the_range(session, make_viewer):
    v = make_viewer(session.scene, size=SIZE)
    for n in (0, 3, -1):
        with pytest.raises(ValueError, match=r"finding must be in 1\.\.2 \(2 findings\)"):
            v.focus_finding(n)
    w = make_viewer(plain_scene())
    with pytest.raises(ValueError, match="no findings"):
        w.focus_finding(1)
    assert w.state.finding == 0


def test_the_highlight_follows_the_scene_an_edit_rebuilds(planted, make_viewer):  # noqa: F811
    session = Session(planted, max_columns=2)   # conv1 and conv2 share the first column
    v = make_viewer(session.scene, on_edit=session.on_edit, size=SIZE)
    m = v.focus_finding(1, animate=False)
    assert session.scene.column_names[m.column] == "conv1\u2013conv2"
    v.expand_column(m.column)  # conv1-conv2 -> conv1, conv2: new columns, new cluster ids
    new = current_mark(v.scene, v.state)
    assert v.scene is session.scene and new is v.scene.findings[0] and new.neurons == (1, 6)
    assert v.scene.column_names[new.column] == "conv2" and v.scene.column_layer[new.column] == "relu2"
    img = v.render()
    assert at_pixel(v, img, *left_ring_point(v, cluster_box(v.scene, new.column, new.cluster)))


def test_the_panel_lists_the_findings_and_a_click_shows_one(session, make_viewer):
    v = make_viewer(session.scene, size=SIZE)
    rows = [w for w in v.widgets() if w.action and w.action[0] == "finding"]
    assert [w.label for w in rows] == ["1. dead-neurons \u00b7 conv2", "2. weight-change \u00b7 conv2"]
    assert not [w for w in v.widgets() if w.action and w.action[0] == "finding_step"]  # 2 fit: no pager
    x0, y0, x1, y1 = rows[0].box
    at = (0.5 * (x0 + x1), v.size[1] - 0.5 * (y0 + y1))  # window coordinates
    tip = v.hover(*at)
    assert " ".join(tip[1:-1]) == v.scene.findings[0].message and "[high]" in tip[0]
    v.click(*at)
    assert v.state.finding == 1 and v.state.facet == "matrix"
    assert [w.active for w in v.widgets() if w.action and w.action[0] == "finding"] == [True, False]
    v.step(10.0)  # let the flight land
    assert magenta(v.render()).sum() > 50
    v.click(*at)  # again: cleared
    assert v.state.finding == 0 and not magenta(v.render()).any()


@pytest.fixture(scope="module")
def synthetic_session():
    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    return Session(net.analysis)


def test_a_finding_on_another_layer_of_a_column_says_to_expand_it(synthetic_session, make_viewer):
    s = synthetic_session.scene
    m = next(m for m in s.findings if m.n_unplaced)
    v = make_viewer(s, size=SIZE)
    v.update_state(finding_group=group_of(s, 1)[0])   # the panel lists finding 1 in its group
    row = next(w for w in v.widgets() if w.action == ("finding", 1))
    assert row.tip == finding_tip(s.findings[0]) and "expand" not in row.tip
    assert v.hover(0.5 * (row.box[0] + row.box[2]), v.size[1] - row.box[1] - 2) == tuple(row.tip.split("\n"))
    assert v.state.tooltip_at[0] < v.size[0] - 250  # left of the panel
    assert f"its neurons are {m.layer}'s: expand the column to see its neurons" in finding_tip(m)
    v.hover(5, 5)  # the mouse leaves the panel: its tooltip would stay (rebuilt on camera moves) and cover the ring
    v.focus_finding(m.number, animate=False)
    img = v.render()
    colbox = s.rect_box[(s.rect_kind == RECT_COLUMN) & (s.rect_column == m.column)][0]
    assert at_pixel(v, img, *left_ring_point(v, colbox))  # the column is outlined, no cluster


def test_the_pager_steps_through_a_long_list(synthetic_session, make_viewer):
    v = make_viewer(synthetic_session.scene, size=SIZE)
    K = len(v.scene.findings)
    assert K > 6

    def press(step):
        w = next(w for w in v.widgets() if w.action == ("finding_step", step))
        v.click(0.5 * (w.box[0] + w.box[2]), v.size[1] - 0.5 * (w.box[1] + w.box[3]))

    def shown():   # the finding whose row is active in the list (its group opened)
        return [w.action[1] for w in v.widgets() if w.action and w.action[0] == "finding" and w.active]

    press(+1)
    assert v.state.finding == 1 and shown() == [1]
    for k in range(2, K + 1):   # every finding in turn, each listed (its group opened) and marked
        press(+1)
        assert v.state.finding == k and shown() == [k]
    press(+1)
    assert v.state.finding == 1   # round the list
    press(-1)
    assert v.state.finding == K and shown() == [K]


def test_neurons_are_ticked_by_their_matrix_rows_and_ringed_in_the_features_facet(synthetic_session,
                                                                                  make_viewer):
    s = synthetic_session.scene
    n = next(m.number for m in s.findings if m.kind == "redundant-neurons" and m.clusters)
    v = make_viewer(s, size=SIZE)
    m = v.focus_finding(n, animate=False)
    img = v.render()
    ticked = 0
    for k, row in zip(m.neuron_cluster, m.neuron_row):
        r = int(np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == m.column)
                               & (s.rect_cluster == k))[0])
        box = s.matrix_box[s.matrix_rect == r][0]
        h = (box[3] - box[1]) / s.rect_size[r]
        x, y = v.camera.to_pixel((box[0], box[3] - (row + 0.5) * h))
        ticked += at_pixel(v, img, x - RING_PAD - RING_WIDTH - 2 - 3, y)
    assert ticked == len(m.neurons)
    # features facet: the patches of the finding's neurons (those that are representatives) get a ring
    v.set_facet("features")
    img = v.render()
    patches = [p for p in range(s.n_patches) if s.patch_neuron[p] in m.neurons
               and s.rect_column[s.patch_rect[p]] == m.column]
    assert patches, "a finding neuron is a representative (deterministic for this seed)"
    for p in patches:
        b = s.patch_box[p]
        p0, p1 = v.camera.to_pixel(b[:2]), v.camera.to_pixel(b[2:])
        assert at_pixel(v, img, p0[0] - 1, 0.5 * (p0[1] + p1[1]))


# -- the command ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(planted, data, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("findings")
    planted.save(d / "planted.cnnvis")
    run_analysis(control(), data).save(d / "plain.cnnvis")  # no snapshots, nothing planted: no findings
    return d


def test_cnnvis_gl_finding_draws_that_view_headless(files, capsys):
    from vispy.io import read_png

    out = files / "finding.png"
    assert main_gl([str(files / "planted.cnnvis"), "--finding", "1", "--screenshot", str(out),
                    "--size", "640x400"]) == 0
    img = read_png(str(out))
    assert img.shape[:2] == (400, 640) and magenta(img).sum() > 50
    assert main_gl([str(files / "planted.cnnvis"), "--screenshot", str(files / "plain.png"),
                    "--size", "640x400"]) == 0
    assert not magenta(read_png(str(files / "plain.png"))).any()
    capsys.readouterr()


@pytest.mark.parametrize("name, n, message", [
    ("planted.cnnvis", "3", "cnnvis-gl: error: --finding must be in 1..2 (2 findings), got 3"),
    ("planted.cnnvis", "0", "cnnvis-gl: error: --finding must be in 1..2 (2 findings), got 0"),
    ("plain.cnnvis", "1", "cnnvis-gl: error: --finding 1: this file has no findings"),
])
def test_cnnvis_gl_finding_out_of_range_is_one_line_and_exit_2(files, capsys, name, n, message):
    out = files / f"bad{n}.png"
    assert main_gl([str(files / name), "--finding", n, "--screenshot", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(message)
    assert not out.exists()


def test_a_saved_scene_keeps_its_findings(session, tmp_path):
    save_scene(session.scene, tmp_path / "s.npz")
    assert load_scene(tmp_path / "s.npz").findings == session.scene.findings
    assert run([str(tmp_path / "s.npz"), "--finding", "2", "--screenshot", str(tmp_path / "s.png"),
                "--size", "320x240"]) == 0
    z = dict(np.load(tmp_path / "s.npz"))
    for bad in ("not json", '["1. dead"]', '[{"number": 1, "kind": "x", "facet": "features"}]'):
        np.savez(tmp_path / "bad.npz", **{**z, "findings": np.asarray(bad)})
        with pytest.raises(CnnvisError, match="bad.npz"):
            load_scene(tmp_path / "bad.npz")

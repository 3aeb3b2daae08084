"""The glue between the stages: an analysis -> aggregation -> Scene session, and the viewer's edit requests
applied through it (the same objects the window sends)."""
import numpy as np
import pytest

from cnnvis.testing.synthetic import synthetic_network
from cnnvis.errors import CnnvisError
from cnnvis.layout import ExpandColumn, MergeBundles, MoveNeuron, SelectSnapshot
from cnnvis.layout import RECT_CLUSTER
from cnnvis.layout._build import bundle_edges
from cnnvis.app.session import Session, scene_for


@pytest.fixture()
def session():
    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    return Session(net.analysis)


def _move_target(s, p):
    """(rect, column, src cluster, dst rect) for moving patch p's neuron to another cluster of its layer."""
    rect = int(s.patch_rect[p])
    col, src = int(s.rect_column[rect]), int(s.rect_cluster[rect])
    dst_rect = int(np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == col) &
                                  (s.rect_cluster != src) & (s.rect_cluster >= 0))[0])
    return rect, col, src, dst_rect


def test_move_neuron_request_moves_that_neuron(session):
    s = session.scene
    p = 0
    rect, col, src, dst_rect = _move_target(s, p)
    dst = int(s.rect_cluster[dst_rect])
    neuron = int(s.patch_neuron[p])
    layer = session.aggregation.layer_clusters[col].representative
    before = session.aggregation.neuron_clusters(layer).labels.copy()
    new = session.on_edit(MoveNeuron(patch=p, src_rect=rect, dst_rect=dst_rect, column=col, src_cluster=src,
                                     dst_cluster=dst))
    after = session.aggregation.neuron_clusters(layer).labels
    assert new is session.scene and new is not s
    assert before[neuron] == src and after[neuron] == dst
    np.testing.assert_array_equal(np.delete(after, neuron), np.delete(before, neuron))


def test_merge_request_merges_two_bundles_of_one_set(session):
    ids = bundle_edges(session.aggregation)[4]  # Scene.curve_bundle values -> (set, bundle)
    first_set = [k for k, (si, _) in enumerate(ids) if si == 0]
    bs = session.aggregation.bundles[0]
    a, b = [k for k in first_set if bs.bundle_sign[ids[k][1]] > 0][:2]
    n = bs.n_bundles
    session.on_edit(MergeBundles(a, b))
    assert session.aggregation.bundles[0].n_bundles == n - 1
    other = next(k for k, (si, _) in enumerate(bundle_edges(session.aggregation)[4]) if si == 1)
    with pytest.raises(CnnvisError, match="same two layer clusters"):
        session.on_edit(MergeBundles(0, other))


def test_expand_request_expands_and_a_second_one_collapses(session):
    n = len(session.aggregation.layer_clusters)
    members = session.aggregation.layer_clusters[0].layers
    assert session.aggregation.layer_clusters[0].name == "conv1–conv2" and len(members) == 6
    session.on_edit(ExpandColumn(0))  # one column per block: a conv with its batch norm and ReLU
    names = [lc.name for lc in session.aggregation.layer_clusters]
    assert names[:2] == ["conv1", "conv2"] and len(names) == n - 1 + 2
    assert [n for lc in session.aggregation.layer_clusters[:2] for n in lc.layers] == list(members)
    assert len(session.scene.column_names) == n - 1 + 2
    session.on_edit(ExpandColumn(0))
    assert [lc.name for lc in session.aggregation.layer_clusters][0] == "conv1–conv2"
    assert len(session.scene.column_names) == n


def test_requests_that_change_nothing_return_none(session):
    assert session.on_edit(SelectSnapshot(0)) is None


def test_scene_for_opens_a_file(tmp_path):
    net = synthetic_network([16, 16], n_clusters=2, seed=3)
    net.analysis.save(tmp_path / "n.cnnvis")
    scene, on_edit, session = scene_for(tmp_path / "n.cnnvis")
    assert scene.validate() is scene and on_edit == session.request
    assert session.wait(60) and session.findings_known and session.busy == ""


def _scene_arrays_equal(a, b):
    from dataclasses import fields
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


def _edits(session):
    """One of every aggregation edit, made on the session's current scene."""
    s = session.scene
    p = 0
    rect, col, src, dst_rect = _move_target(s, p)
    yield MoveNeuron(p, rect, dst_rect, col, src, int(s.rect_cluster[dst_rect]))
    ids = bundle_edges(session.aggregation)[4]
    bs = session.aggregation.bundles[0]
    a, b = [k for k, (si, bi) in enumerate(ids) if si == 0 and bs.bundle_sign[bi] > 0][:2]
    yield MergeBundles(a, b)
    yield ExpandColumn(0)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_every_edit_undoes_to_equal_scene_arrays_and_redoes(session, which):
    from cnnvis.layout import Redo, Undo

    before = session.scene
    edit = list(_edits(session))[which]
    after = session.on_edit(edit)
    assert session.undo_depth == 1 and session.redo_depth == 0
    undone = session.on_edit(Undo())
    _scene_arrays_equal(undone, before)
    assert session.undo_depth == 0 and session.redo_depth == 1
    redone = session.on_edit(Redo())
    _scene_arrays_equal(redone, after)
    with pytest.raises(CnnvisError, match="nothing to redo"):
        session.on_edit(Redo())


def test_collapse_request_restores_the_expanded_cluster_and_a_new_edit_clears_redo(session):
    from cnnvis.layout import CollapseColumn, Undo

    before = session.scene
    n = len(before.column_names)
    assert (before.column_group == -1).all()
    with pytest.raises(CnnvisError, match="not expanded"):
        session.on_edit(CollapseColumn(0))
    session.on_edit(ExpandColumn(0))
    g = session.scene.column_group
    assert list(g[:2]) == [0] * 2 and (g[2:] == -1).all()
    # collapse from any layer of the group
    collapsed = session.on_edit(CollapseColumn(1))
    assert len(collapsed.column_names) == n
    _scene_arrays_equal(collapsed, before)
    session.on_edit(Undo())               # back to the expanded view
    assert len(session.scene.column_names) == n - 1 + 2 and session.redo_depth == 1
    session.on_edit(ExpandColumn(0))      # a new edit (a collapse again): the redo stack is gone
    assert session.redo_depth == 0 and session.undo_depth == 2   # expand 0, collapse it
    session.on_edit(Undo())
    session.on_edit(Undo())
    _scene_arrays_equal(session.scene, before)
    with pytest.raises(CnnvisError, match="nothing to undo"):
        session.on_edit(Undo())


def test_background_session_opens_at_once_then_precomputes_expansions_and_findings():
    """Issue 17: the first Scene comes before the findings; the worker diagnoses, then precomputes every
    expand (and each collapse), so the window's edit is a look-up that shows what the edit computed on the
    spot shows; `busy` says what runs and `poll` hands out the Scene with the findings once."""
    from cnnvis.layout import CollapseColumn, Undo

    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    ses = Session(net.analysis, background=True)
    ref = Session(net.analysis)   # everything on the spot
    try:
        assert ses.wait(120) and ses.busy == "" and ses.findings_known
        fresh = ses.poll()
        assert fresh is not None and fresh is ses.scene and ses.poll() is None
        assert fresh.findings == ref.scene.findings
        assert ses.is_ready(ExpandColumn(0))
        _scene_arrays_equal(ses.on_edit(ExpandColumn(0)), ref.on_edit(ExpandColumn(0)))
        # collapsing what was just expanded shows the scene before it again, at no cost
        assert ses.is_ready(CollapseColumn(1)) and ses.is_ready(ExpandColumn(0))
        _scene_arrays_equal(ses.on_edit(CollapseColumn(1)), ref.on_edit(CollapseColumn(1)))
        _scene_arrays_equal(ses.on_edit(Undo()), ref.on_edit(Undo()))
        assert ses.undo_depth == ref.undo_depth == 1 and ses.redo_depth == ref.redo_depth == 1
    finally:
        ses.close()


def test_background_session_without_findings_is_idle_after_precomputing():
    net = synthetic_network([16, 24], n_clusters=2, seed=3)
    ses = Session(net.analysis, findings=False, background=True)
    try:
        assert ses.findings_known and ses.scene.findings == ()
        assert ses.wait(60) and ses.poll() is None and ses.busy == ""
    finally:
        ses.close()


def test_request_computes_an_edit_off_the_calling_thread_and_hands_a_poll():
    """A window's edit that is not precomputed comes back as a poll function (the window keeps drawing):
    None until the Scene is ready, then the Scene on_edit gives; precomputed edits and undo answer at once;
    a refused edit raises from the poll."""
    import time

    from cnnvis.layout import CollapseColumn, Undo

    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    ses, ref = Session(net.analysis), Session(net.analysis)

    def answer(poll, limit=60):
        end = time.monotonic() + limit
        while (got := poll()) is None:
            assert time.monotonic() < end, "the edit never finished"
            time.sleep(0.01)
        return got

    got = ses.request(ExpandColumn(0))
    assert callable(got)
    _scene_arrays_equal(answer(got), ref.on_edit(ExpandColumn(0)))
    assert ses.undo_depth == 1
    back = ses.request(Undo())   # undo is a look-up: a Scene at once
    assert not callable(back)
    _scene_arrays_equal(back, ref.on_edit(Undo()))
    refused = ses.request(CollapseColumn(0))
    with pytest.raises(CnnvisError, match="was not expanded"):
        answer(refused)


def test_undo_keeps_what_the_worker_precomputed_for_the_view_it_returns_to():
    """After expand then undo, the first view's precomputed expansions are still ready (the worker has no
    layout to redo while the window flies back); they go when no undo or redo can bring that view back."""
    from cnnvis.layout import Undo

    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    ses = Session(net.analysis, findings=False, background=True)
    try:
        assert ses.wait(120) and ses.is_ready(ExpandColumn(0))
        first = ses.aggregation
        ses.on_edit(ExpandColumn(0))
        ses.on_edit(Undo())
        assert ses.aggregation is first and ses.is_ready(ExpandColumn(0))  # at once, no wait for the worker
        ses.on_edit(ExpandColumn(0))   # a new edit clears redo; the first view stays reachable by undo
        assert any(v[0] is first for v in ses._ready.values())
    finally:
        ses.close()

"""Findings placed on the Scene (cnnvis.app.findings): a planted analysis's findings map to the right column,
clusters, neurons and matrix rows; their numbers are `cnnvis diagnose`'s; edits keep them right; the Scene
checks and saves them. No GL here (tests/gl/test_findings.py draws them)."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_diagnose import control, data, run_analysis, snapshots  # noqa: F401  (data: the planted images)

from cnnvis.app.findings import finding_marks
from cnnvis.app.session import Session
from cnnvis.diagnose import Finding, diagnose
from cnnvis.app.diagnose import format_text
from cnnvis.layout import RECT_CLUSTER, ExpandColumn, FindingMark, MoveNeuron
from cnnvis.layout._build import unit_max
from cnnvis.testing.synthetic import synthetic_network


@pytest.fixture(scope="module")
def planted(data):  # noqa: F811
    """conv2's neurons 1 and 6 killed by their bias, conv2's weights jumping between snapshots."""
    m = control()
    with torch.no_grad():
        m.conv2.bias[[1, 6]] = -50.0
    return run_analysis(m, data, snapshots(m, {"conv2": 0.2}))


@pytest.fixture
def session(planted):
    return Session(planted)


def test_marks_are_numbered_as_cnnvis_diagnose_numbers_them(planted, session):
    d = diagnose(planted)  # what `cnnvis diagnose FILE` computes (no aggregation handed in)
    marks = session.scene.findings
    assert [(m.number, m.kind, m.layer, m.message) for m in marks] == [
        (i, f.kind, f.layer, f.message) for i, f in enumerate(d, 1)]
    assert [m.kind for m in marks] == ["dead-neurons", "weight-change"]
    for m, line in zip(marks, format_text(d).splitlines()):
        assert line.startswith(f"{m.number}. [{m.severity}] {m.kind}: {m.message}")


def test_a_dead_neuron_finding_marks_its_column_cluster_and_neurons(session):
    s, agg = session.scene, session.aggregation
    m = s.findings[0]
    col = s.column_names.index("conv2")
    nc = agg.neurons[col]
    assert s.column_layer[col] == "relu2" and m.layer == "conv2"  # conv2 and its ReLU: one unit, same neurons
    assert (m.column, m.columns, m.neurons, m.facet) == (col, (col,), (1, 6), "matrix")
    assert m.clusters == (nc.dead_cluster,) and m.cluster == nc.dead_cluster >= 0
    assert m.neuron_cluster == (nc.dead_cluster,) * 2
    # the rows the mark names are the rows the Scene's matrix draws those neurons in
    r = int(np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == col)
                           & (s.rect_cluster == nc.dead_cluster))[0])
    assert sorted(m.neuron_row) == [0, 1] and s.rect_size[r] == 2
    assert (m.series, m.edge_mode) == ("", "weight")


def test_a_weight_change_finding_names_its_column_its_neighbours_and_the_chart_series(session):
    s = session.scene
    m = s.findings[1]
    c1, c2, c3 = (s.column_names.index(n) for n in ("conv1", "conv2", "conv3"))
    assert (m.column, m.columns, m.clusters, m.neurons) == (c2, (c2, c1, c3), (), ())
    assert (m.facet, m.series, m.edge_mode) == ("chart", "relative weight change", "change")
    assert m.series in s.chart_names


def _drawn_rows(scene, agg, column, cluster):
    """(rows, K) the activation matrix of a cluster as the Scene's atlas holds it."""
    s = scene
    H, W = s.matrix_atlas.shape
    r = int(np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == column) & (s.rect_cluster == cluster))[0])
    u0, v0, u1, v1 = s.matrix_uv[int(np.flatnonzero(s.matrix_rect == r)[0])]
    return s.matrix_atlas[round(v0 * H):round(v1 * H), round(u0 * W):round(u1 * W)]


def test_each_neuron_lands_on_the_matrix_row_that_draws_it():
    """A finding naming every neuron of a column (distinct profiles): each row read back out of the atlas
    is that neuron's displayed profile and no other's."""
    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    ses = Session(net.analysis, findings=False)
    s, agg = ses.scene, ses.aggregation
    col = 1
    nc = agg.neurons[col]
    f = Finding(kind="redundant-neurons", severity="low", score=0.0, layer=nc.layer,
                neurons=tuple(range(nc.labels.size)), evidence={}, message="all of them", facet="matrix")
    (m,) = finding_marks(net.analysis, [f], agg, s.chart_names)
    assert m.neurons == f.neurons and m.neuron_cluster == tuple(int(k) for k in nc.labels)
    checked = 0
    for n, k, row in zip(m.neurons, m.neuron_cluster, m.neuron_row):
        block = _drawn_rows(s, agg, col, k)
        want = unit_max(nc.profiles[n][agg.class_order].astype(np.float32))
        match = [j for j in range(block.shape[0]) if np.allclose(block[j], want, atol=1e-6)]
        if want.any():  # dead neurons' rows are all zero, alike
            assert match == [row]
            checked += 1
    assert checked >= nc.labels.size // 2
    assert m.clusters[0] == int(np.bincount(nc.labels).argmax())


def test_redundant_neurons_of_a_planted_model_are_marked_in_their_cluster(data):  # noqa: F811
    m = control()
    with torch.no_grad():
        m.conv1.weight[[2, 4]] = m.conv1.weight[0].clone()
        m.conv1.bias[[2, 4]] = m.conv1.bias[0].clone()
    ses = Session(run_analysis(m, data))
    s, agg = ses.scene, ses.aggregation
    (mark,) = [f for f in s.findings if f.kind == "redundant-neurons"]
    col = s.column_names.index("conv1")
    nc = agg.neurons[col]
    assert (mark.column, mark.neurons, mark.facet) == (col, (0, 2, 4), "matrix")
    assert mark.neuron_cluster == tuple(int(nc.labels[n]) for n in (0, 2, 4))
    assert len(set(mark.neuron_cluster)) == 1  # identical neurons: one cluster
    want = unit_max(nc.profiles[0][agg.class_order].astype(np.float32))
    for k, row in zip(mark.neuron_cluster, mark.neuron_row):
        np.testing.assert_allclose(_drawn_rows(s, agg, col, k)[row], want, atol=1e-6)


def test_a_moved_neuron_takes_its_mark_along(session):
    s = session.scene
    m = s.findings[0]
    col, dead = m.column, m.cluster
    live = int(next(k for k in s.rect_cluster[(s.rect_column == col) & (s.rect_kind == RECT_CLUSTER)] if k != dead))
    new = session.on_edit(MoveNeuron(patch=-1, src_rect=-1, dst_rect=-1, column=col, src_cluster=dead,
                                     dst_cluster=live, neuron=6, layer=str(s.column_layer[col])))
    m2 = new.findings[0]
    labels = session.aggregation.neurons[col].labels
    assert m2.neurons == (1, 6) and m2.neuron_cluster == (int(labels[1]), int(labels[6]))
    assert int(labels[6]) == live and set(m2.clusters) == {int(labels[1]), live}
    assert [f.message for f in new.findings] == [f.message for f in s.findings]  # same findings, same numbers


def test_an_expanded_column_keeps_its_findings_on_the_right_columns(planted):
    session = Session(planted, max_columns=3)   # the first view merges conv3 and fc into one column
    s = session.scene
    assert s.column_names == ("conv1", "conv2", "conv3\u2013fc")
    before = {f.kind: f for f in s.findings}
    assert {s.column_names[c] for c in before["weight-change"].columns[1:]} == {"conv1", "conv3\u2013fc"}
    new = session.on_edit(ExpandColumn(2))
    assert new.column_names == ("conv1", "conv2", "conv3", "fc")
    dead, change = new.findings
    own = new.column_names.index("conv2")
    assert dead.column == own and new.column_layer[own] == "relu2" and dead.neurons == (1, 6)
    nc = session.aggregation.neurons[own]
    assert dead.neuron_cluster == (int(nc.labels[1]), int(nc.labels[6]))
    # the weight change's neighbours were conv1 and the column conv3–fc: its layers now sit in two columns
    assert change.column == own and {new.column_names[c] for c in change.columns[1:]} == {"conv1", "conv3", "fc"}


def test_findings_can_be_left_out_and_a_synthetic_analysis_gets_them_without_torch_models():
    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    assert Session(net.analysis, findings=False).scene.findings == ()
    ses = Session(net.analysis)
    marks = ses.scene.findings
    assert [m.message for m in marks] == [f.message for f in diagnose(net.analysis)]
    # a dead finding on a batch norm (the ReLU's input) is drawn on its unit's ReLU, the representative
    m = next(m for m in marks if m.kind == "dead-neurons" and m.neurons)
    assert m.layer.endswith(".bn") and ses.scene.column_layer[m.column].startswith(m.layer[:-3])
    planted = net.labels[ses.scene.column_layer[m.column]]
    assert all(planted[n] == -1 for n in m.neurons)  # the planted dead neurons


def test_neurons_of_another_unit_of_the_column_mark_only_the_column():
    net = synthetic_network([(24, "a"), (24, "a"), 48, 40], n_clusters=4, seed=1)
    ses = Session(net.analysis)
    s = ses.scene
    merged = s.column_names.index("conv1\u2013conv2")
    (m,) = [m for m in s.findings if m.kind == "dead-neurons" and m.layer == "conv1.bn"]
    assert m.column == merged and s.column_layer[merged] == "conv2.relu"
    assert (m.neurons, m.clusters) == ((), ())  # conv1's neurons are not the ones the column draws
    f = next(f for f in ses.findings.diagnosis if f.message == m.message)
    assert m.n_unplaced == len(f.neurons) > 0  # the viewer says: expand the column to see them
    assert all(x.n_unplaced == 0 for x in s.findings if x.neurons or x.kind not in ("dead-neurons",
                                                                                   "redundant-neurons"))
    expanded = ses.on_edit(ExpandColumn(merged))
    m2 = expanded.findings[m.number - 1]
    # the column of conv1 (with its batch norm and ReLU, the same neurons) draws them now
    assert (m2.neurons, m2.n_unplaced) == (f.neurons, 0) and expanded.column_layer[m2.column] == "conv1.relu"


def test_marks_and_scene_validation_name_what_is_wrong(session):
    s = session.scene
    with pytest.raises(ValueError, match="facet must be one of matrix, edges, chart"):
        FindingMark(number=1, kind="x", severity="low", layer="a", message="", facet="features")
    with pytest.raises(ValueError, match="number must be >= 1"):
        FindingMark(number=0, kind="x", severity="low", layer="a", message="", facet="chart")
    bad = FindingMark(number=2, kind="x", severity="low", layer="a", message="", facet="chart",
                      column=len(s.column_names))
    with pytest.raises(ValueError, match=r"findings\[0\]: numbered 2, want 1"):
        s.replace(findings=(bad,)).validate()
    with pytest.raises(ValueError, match="outside 0"):
        s.replace(findings=(bad,)).validate()
    with pytest.raises(ValueError, match="want a FindingMark"):
        s.replace(findings=("1. dead",)).validate()
    m = s.findings[0]
    assert FindingMark.from_dict(m.to_dict()) == m


def test_a_finding_on_a_layer_no_column_holds_has_column_minus_one(session, planted):
    agg = session.aggregation
    fewer = replace(agg, layer_clusters=agg.layer_clusters[:1], neurons=agg.neurons[:1])  # conv1 only
    marks = finding_marks(planted, diagnose(planted), fewer)
    assert [(m.column, m.columns, m.clusters, m.neurons) for m in marks] == [(-1, (), (), ())] * 2

"""Aggregation: invariants, planted structure recovered, edits, and clear errors."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, consensus_score, silhouette_score

from cnnvis.aggregate import (aggregate, collapse_layer_clusters, expand_layer_cluster, merge_bundles,
                              move_neuron, set_cluster_count, set_representative_layer,
                              set_representative_neurons)
from cnnvis.aggregate._bundles import bicluster_bundles, bipartite_modularity
from cnnvis.aggregate._layers import cluster_layers, layer_blocks, layer_units, similar_layers
from cnnvis.aggregate._neurons import normalise_profiles, select_representatives, silhouette
from cnnvis.aggregate._reorder import arrangement_cost, class_order, spectral_order
from cnnvis.testing.synthetic import synthetic_network
from cnnvis.errors import CnnvisError
from cnnvis.graph import Connection, Layer, NetworkGraph


# -- invariants ---------------------------------------------------------------------------------------
def test_every_neuron_in_exactly_one_cluster(net, agg):
    for nc in agg.neurons:
        C = net.analysis.graph.layer(nc.layer).n_neurons
        assert nc.labels.shape == (C,)
        assert nc.labels.min() >= 0 and nc.labels.max() < nc.n_clusters
        np.testing.assert_array_equal(nc.sizes, np.bincount(nc.labels, minlength=nc.n_clusters))
        np.testing.assert_array_equal(np.sort(nc.order), np.arange(C))


def test_representatives_belong_to_their_cluster(agg):
    for nc in agg.neurons:
        assert nc.representatives.shape[1] == 9
        for k in range(nc.n_clusters):
            r = nc.representatives[k]
            r = r[r >= 0]
            assert r.size == min(9, nc.sizes[k])
            assert np.unique(r).size == r.size
            assert (nc.labels[r] == k).all()


def test_dead_neurons_form_their_own_cluster(net, agg):
    for nc in agg.neurons:
        dead = net.analysis.dead_fraction(nc.layer) >= 1.0
        if dead.any():
            assert nc.dead_cluster == nc.n_clusters - 1
            np.testing.assert_array_equal(nc.labels == nc.dead_cluster, dead)
        else:
            assert nc.dead_cluster == -1


def test_layer_clusters_cover_layers_once_and_follow_families(net, agg):
    g = net.analysis.graph
    seen = [n for lc in agg.layer_clusters for n in lc.layers]
    assert sorted(seen) == sorted(n for n in g.names if g.layer(n).kind != "input")
    # widths 24, 24 are one planted family (alike profiles), 48 and 40 their own
    assert [lc.name for lc in agg.layer_clusters] == ["conv1\u2013conv2", "conv3", "conv4", "fc"]
    assert "linear CKA" in agg.layer_clusters[0].why
    assert agg.layer_clusters[0].representative == "conv2.relu"


def test_same_shape_layers_with_unlike_profiles_stay_apart():
    net = synthetic_network([(24, "a"), (24, "b"), (24, "b")], n_clusters=3, seed=2)
    clusters = cluster_layers(net.analysis)
    assert [c.name for c in clusters] == ["conv1", "conv2\u2013conv3", "fc"]
    assert "not merged with the previous block: linear CKA" in clusters[1].why


def test_resnet_stages_become_columns_and_blocks_stay_whole():
    net = synthetic_network("resnet50", n_snapshots=0, edge_history=False, patch_size=2)
    clusters = cluster_layers(net.analysis)
    assert [c.name for c in clusters] == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    unmerged = similar_layers(net.analysis, merge=False)
    assert len(unmerged) == 1 + 16 + 1
    # the first view caps them: neighbours with the most alike profiles merge, each merge opens back
    capped = cluster_layers(net.analysis, merge=False)
    assert len(capped) == 12 and [n for c in capped for n in c.layers] == [n for c in unmerged for n in c.layers]
    assert all(len(c.children) >= 2 for c in capped if "neighbouring columns" in c.why)
    # a bottleneck block keeps its branch (the downsample shortcut) with it
    assert "layer2.0.downsample.0" in unmerged[4].layers and "layer2.0.add" in unmerged[4].layers


def test_units_and_blocks_on_a_branching_graph():
    L = lambda n, k, w, ins: Layer(n, k, w, tuple(ins), (w, 4, 4))  # noqa: E731
    layers = (L("x", "input", 3, []), L("a", "conv", 4, ["x"]), L("a.relu", "activation", 4, ["a"]),
              L("b1", "conv", 2, ["a.relu"]), L("b1.relu", "activation", 2, ["b1"]), L("b2", "conv", 3, ["a.relu"]),
              L("cat", "concat", 5, ["b1.relu", "b2"]), L("c", "conv", 6, ["cat"]))
    conns = [Connection(l.name, i, "identity") for l in layers for i in l.inputs]
    g = NetworkGraph(layers, tuple(conns))
    units = layer_units(g)
    assert units == [["x"], ["a", "a.relu"], ["b1", "b1.relu"], ["b2"], ["cat"], ["c"]]
    assert layer_blocks(g, units) == [[0], [1], [2, 3, 4], [5]]


def test_planted_neuron_clusters_recovered(net, agg):
    for nc in agg.neurons[:-1]:
        truth = net.labels[nc.layer]
        assert adjusted_rand_score(truth, nc.labels) >= 0.9, nc.layer
        assert nc.k_source == "silhouette" and nc.n_live_clusters == 4


def test_silhouette_matches_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 5))
    lab = rng.integers(0, 4, 80)
    assert silhouette(x, lab) == pytest.approx(silhouette_score(x, lab), abs=1e-7)


def test_profiles_are_unit_length_and_shift_negatives():
    mean = np.array([[1.0, -2.0, 0.0], [3.0, -1.0, 0.0]])  # (K=2, C=3)
    p = normalise_profiles(mean)
    np.testing.assert_allclose(p[0], np.array([1, 3]) / np.sqrt(10), rtol=1e-6)
    np.testing.assert_allclose(p[1], [0, 1], atol=1e-7)
    np.testing.assert_array_equal(p[2], [0, 0])


def test_representatives_skip_near_duplicates():
    rng = np.random.default_rng(3)
    x = np.concatenate([np.zeros((5, 4)), rng.standard_normal((15, 4))])
    imp = np.concatenate([np.ones(5), np.full(15, 0.6)])
    picked, (typ, imp_, score, red) = select_representatives(x, np.zeros(4), imp, 4)
    assert (picked < 5).sum() == 1  # one of the five identical, typical and important neurons
    assert picked[0] < 5


# -- bundles ------------------------------------------------------------------------------------------
def test_bundle_matrices_equal_neuron_level_paths(net, agg):
    """conv2.relu -> conv3 -> conv3.bn -> conv3.relu: one weighted hop, strengths are the block means."""
    a = net.analysis
    bs = agg.bundle_set("conv1\u2013conv2", "conv3")
    src, dst = agg.neuron_clusters("conv2.relu"), agg.neuron_clusters("conv3.relu")
    w = a.graph.connection("conv3", "conv2.relu").astype(np.float64)
    for k_d in range(dst.n_clusters):
        for k_s in range(src.n_clusters):
            block = w[np.ix_(dst.labels == k_d, src.labels == k_s)]
            assert bs.positive[k_d, k_s] == pytest.approx(np.clip(block, 0, None).mean(), rel=1e-5)
            assert bs.negative[k_d, k_s] == pytest.approx(np.clip(-block, 0, None).mean(), rel=1e-5)


def test_bundle_matrices_follow_two_hop_paths_by_sign():
    net = synthetic_network([6, 5, 7], n_clusters=2, seed=4)
    a = net.analysis
    w2 = a.graph.connection("conv2", "conv1.relu").astype(np.float64)
    # one column for conv1 and conv2, represented by conv1.relu: its bundles to conv3 cross two weighted hops
    g2 = collapse_layer_clusters(a, aggregate(a, merge_layers=False), "conv1", "conv2")
    g2 = set_representative_layer(a, g2, 0, "conv1.relu")
    bs2 = g2.bundle_set(0, "conv3")
    w3 = a.graph.connection("conv3", "conv2.relu").astype(np.float64)
    pos = np.clip(w3, 0, None) @ np.clip(w2, 0, None) + np.clip(-w3, 0, None) @ np.clip(-w2, 0, None)
    neg = np.clip(w3, 0, None) @ np.clip(-w2, 0, None) + np.clip(-w3, 0, None) @ np.clip(w2, 0, None)
    s_lab, d_lab = g2.neurons[0].labels, g2.neuron_clusters("conv3.relu").labels
    for kd in range(d_lab.max() + 1):
        for ks in range(s_lab.max() + 1):
            blk = np.ix_(d_lab == kd, s_lab == ks)
            assert bs2.positive[kd, ks] == pytest.approx(pos[blk].mean(), rel=1e-5)
            assert bs2.negative[kd, ks] == pytest.approx(neg[blk].mean(), rel=1e-5)


def test_bundles_cover_only_existing_connections(net, agg):
    for bs in agg.bundles:
        for b in range(bs.n_bundles):
            m = bs.positive if bs.bundle_sign[b] > 0 else bs.negative
            block = m[np.ix_(bs.bundle_dst[b], bs.bundle_src[b])]
            assert block.sum() > 0
            assert bs.bundle_strength[b] == pytest.approx(block.mean())
        assert (bs.bundle_relative <= 1 + 1e-12).all()
        np.testing.assert_array_equal(bs.bundle_weak, bs.bundle_relative < agg.options.bundle_threshold)


def _planted_biclusters(seed, shape=(30, 24), n=3, noise=0.05):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, shape[0]), rng.integers(0, n, shape[1])
    rows[:n], cols[:n] = np.arange(n), np.arange(n)
    a = (rows[:, None] == cols[None, :]) * (1 + rng.random(shape)) + noise * rng.random(shape)
    return a, rows, cols


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_biclusters_recovered(seed):
    a, rows, cols = _planted_biclusters(seed)
    rm, cm, tried, q = bicluster_bundles(a, 5)
    n = 3
    truth = ([rows == i for i in range(n)], [cols == i for i in range(n)])
    assert tried[np.argmax(q)] == n  # modularity picks the planted count
    assert consensus_score((list(rm), list(cm)), truth) >= 0.95


def test_bipartite_modularity_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    # m = 2, k = d = (1, 1): Q = (1/2) * sum over matched cells (1 - 1/2) = 0.5
    assert bipartite_modularity(a, np.array([0, 1]), np.array([0, 1])) == pytest.approx(0.5)
    assert bipartite_modularity(a, np.array([0, 0]), np.array([0, 0])) == pytest.approx(0.0)


# -- reordering ----------------------------------------------------------------------------------------
def test_spectral_order_recovers_a_planted_class_chain():
    rng = np.random.default_rng(0)
    K = 8
    perm = rng.permutation(K)
    pos = np.empty(K)
    pos[perm] = np.arange(K)
    sim = np.exp(-np.abs(pos[:, None] - pos[None, :]))
    order = spectral_order(sim)
    assert list(order) in (list(perm), list(perm[::-1]))
    assert arrangement_cost(sim, order) < arrangement_cost(sim, np.arange(K))


def test_class_order_never_worse_and_neuron_order_grouped(agg):
    c0, c1 = agg.class_order_cost
    assert c1 <= c0
    assert sorted(agg.class_order) == list(range(10))
    for nc in agg.neurons:
        assert (np.diff(nc.labels[nc.order]) >= 0).all()
    o, cost = class_order([nc.profiles for nc in agg.neurons])
    np.testing.assert_array_equal(o, agg.class_order)


# -- edits ---------------------------------------------------------------------------------------------
def _same_except(old, new, changed_cols):
    for i, (a, b) in enumerate(zip(old.neurons, new.neurons)):
        if i not in changed_cols:
            assert a is b
    names = {old.layer_clusters[i].name for i in changed_cols}
    for b in old.bundles:
        if b.src not in names and b.dst not in names:
            assert any(b is c for c in new.bundles)


def test_move_neuron_touches_only_its_column(net, agg):
    a = net.analysis
    layer = "conv3.relu"
    i = agg.column(layer)
    nc = agg.neurons[i]
    n = int(np.flatnonzero(nc.labels == 0)[0])
    labels_before = nc.labels.copy()
    new = move_neuron(a, agg, layer, n, 1)
    np.testing.assert_array_equal(nc.labels, labels_before)  # the input is not modified
    m = new.neurons[i]
    assert m.labels[n] == 1 and (np.delete(m.labels, n) == np.delete(nc.labels, n)).all()
    assert m.sizes[0] == nc.sizes[0] - 1 and m.sizes[1] == nc.sizes[1] + 1
    for k in range(2, nc.n_clusters):  # untouched clusters keep their representatives
        np.testing.assert_array_equal(m.representatives[k], nc.representatives[k])
    _same_except(agg, new, {i})
    touched = [b for b in new.bundles if new.layer_clusters[i].name in (b.src, b.dst)]
    assert touched and all(not any(b is c for c in agg.bundles) for b in touched)
    assert move_neuron(a, agg, layer, n, 0) is agg


def test_set_cluster_count_and_back(net, agg):
    a = net.analysis
    i = agg.column("conv4.relu")
    new = set_cluster_count(a, agg, "conv4.relu", 6)
    assert new.neurons[i].n_live_clusters == 6 and new.neurons[i].k_source == "override"
    assert dict(new.options.n_clusters) == {"conv4.relu": 6}
    _same_except(agg, new, {i})
    back = set_cluster_count(a, new, "conv4.relu", None)
    np.testing.assert_array_equal(back.neurons[i].labels, agg.neurons[i].labels)


def test_expand_and_collapse(net, agg):
    a = net.analysis
    new = expand_layer_cluster(a, agg, "conv1\u2013conv2")
    names = [lc.name for lc in new.layer_clusters]
    # the run of two alike blocks opens into its blocks, each a conv with its batch norm and ReLU
    assert names[:2] == ["conv1", "conv2"]
    assert new.layer_clusters[0].layers == ("conv1", "conv1.bn", "conv1.relu")
    assert new.neurons[1] is agg.neurons[0]  # the old representative keeps its clustering
    assert new.layer_clusters[2] is agg.layer_clusters[1]
    assert new.bundle_set("conv1", "conv2").n_bundles >= 1
    with pytest.raises(CnnvisError, match="one weighted layer .* nothing to expand"):
        expand_layer_cluster(a, new, "conv1")
    back = collapse_layer_clusters(a, new, "conv1")
    assert back.layer_clusters[0] is agg.layer_clusters[0]
    assert [lc.name for lc in back.layer_clusters] == [lc.name for lc in agg.layer_clusters]
    for b0, b1 in zip(agg.bundles, back.bundles):
        np.testing.assert_array_equal(b0.positive, b1.positive)


def test_representative_layer_and_neurons(net, agg):
    a = net.analysis
    new = set_representative_layer(a, agg, "conv3", "conv3")
    assert new.layer_clusters[1].representative == "conv3" and new.neurons[1].layer == "conv3"
    assert new.layer_clusters[1].default_representative == "conv3.relu"
    _same_except(agg, new, {1})
    nc = agg.neurons[1]
    members = np.flatnonzero(nc.labels == 2)[:3]
    new2 = set_representative_neurons(agg, nc.layer, 2, members)
    np.testing.assert_array_equal(new2.neurons[1].representatives[2, :3], members)
    assert np.isfinite(new2.neurons[1].rep_score[2, :3]).all() and np.isnan(new2.neurons[1].rep_score[2, 3:]).all()
    assert (new2.neurons[1].representatives[2, 3:] == -1).all()
    np.testing.assert_array_equal(new2.neurons[1].representatives[0], nc.representatives[0])
    assert new2.bundles is agg.bundles


def test_merge_bundles(agg):
    bs = next(b for b in agg.bundles if (b.bundle_sign > 0).sum() >= 2)
    i, j = np.flatnonzero(bs.bundle_sign > 0)[:2]
    new = merge_bundles(agg, bs.src, bs.dst, int(i), int(j))
    nb = new.bundle_set(bs.src, bs.dst)
    assert nb.n_bundles == bs.n_bundles - 1
    np.testing.assert_array_equal(nb.bundle_dst[i], bs.bundle_dst[i] | bs.bundle_dst[j])
    np.testing.assert_array_equal(nb.bundle_src[i], bs.bundle_src[i] | bs.bundle_src[j])
    for old, b in zip(agg.bundles, new.bundles):
        assert b is nb or b is old


# -- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, pattern", [
    (dict(n_clusters={"conv9": 3}), "no layer named 'conv9'"),
    (dict(n_clusters={"conv1.relu": 30}), r"^n_clusters\['conv1.relu'\] must be in \[1, 24\], got 30$"),
    (dict(n_clusters={"conv1.relu": 0}), r"^n_clusters\['conv1.relu'\] must be in \[1, 24\], got 0$"),
    (dict(k_min=0), r"^k_min must be in >= 1, got 0$"),
    (dict(k_min=5, k_max=3), r"^k_max must be in >= 5, got 3$"),
    (dict(k_min=2.5), r"^k_min must be an integer, got 2.5 \(float\)$"),
    (dict(importance="size"), r"^importance must be one of 'contribution', .*, got 'size'$"),
    (dict(bundle_threshold=2.0), r"^bundle_threshold must be in \[0.0, 1.0\], got 2.0$"),
    (dict(random_state=-1), r"^random_state must be in \[0, 18446744073709551615\], got -1$"),
    (dict(device="tpu"), r"^device must be 'auto', 'cpu' or 'cuda', got 'tpu'$"),
])
def test_bad_parameters(net, kw, pattern):
    with pytest.raises(CnnvisError, match=pattern):
        aggregate(net.analysis, **kw)


def test_bad_edits(net, agg):
    a = net.analysis
    with pytest.raises(CnnvisError, match="'conv3' is not a representative layer"):
        move_neuron(a, agg, "conv3", 0, 1)
    with pytest.raises(CnnvisError, match=r"cluster must be in \[0, \d+\] for layer 'conv3.relu', got 99"):
        move_neuron(a, agg, "conv3.relu", 0, 99)
    with pytest.raises(CnnvisError, match=r"^n_clusters\['conv3.relu'\] must be in \[1, 48\], got 49$"):
        set_cluster_count(a, agg, "conv3.relu", 49)
    with pytest.raises(CnnvisError, match="'conv4' is not in layer cluster 'conv3'"):
        set_representative_layer(a, agg, "conv3", "conv4")
    with pytest.raises(CnnvisError, match="no layer cluster or layer named 'nope'"):
        expand_layer_cluster(a, agg, "nope")
    bs = next(b for b in agg.bundles if (b.bundle_sign > 0).any() and (b.bundle_sign < 0).any())
    i, j = np.flatnonzero(bs.bundle_sign > 0)[0], np.flatnonzero(bs.bundle_sign < 0)[0]
    with pytest.raises(CnnvisError, match="opposite signs"):
        merge_bundles(agg, bs.src, bs.dst, int(i), int(j))
    nc = agg.neurons[1]
    other = int(np.flatnonzero(nc.labels != 0)[0])
    with pytest.raises(CnnvisError, match=rf"neurons \[{other}\] are not in cluster 0"):
        set_representative_neurons(agg, nc.layer, 0, [other])


def test_planted_bundles_recovered_end_to_end():
    """Neuron-level weights with 3 planted biclusters of clusters: the positive bundles between the
    recovered neuron clusters, mapped to the planted clusters, are the planted biclusters."""
    net = synthetic_network([(60, "a"), (60, "b")], n_clusters=6, planted_bundles=3, seed=5)
    g = aggregate(net.analysis)
    bs = g.bundle_set("conv1", "conv2")
    block = net.blocks[("conv2", "conv1.relu")][:6, :6] > 0

    def to_planted(layer):  # recovered cluster -> planted cluster (majority), -1 for the dead cluster
        nc, truth = g.neuron_clusters(layer), net.labels[layer]
        return np.array([np.bincount(truth[nc.labels == k] + 1).argmax() - 1 for k in range(nc.n_clusters)])

    src, dst = to_planted("conv1.relu"), to_planted("conv2.relu")
    found_rows, found_cols = [], []
    for b in np.flatnonzero(bs.bundle_sign > 0):
        rows, cols = np.zeros(6, bool), np.zeros(6, bool)
        rows[dst[bs.bundle_dst[b]][dst[bs.bundle_dst[b]] >= 0]] = True
        cols[src[bs.bundle_src[b]][src[bs.bundle_src[b]] >= 0]] = True
        found_rows.append(rows)
        found_cols.append(cols)
    groups = np.unique(block, axis=0)
    truth_rows = [(block == gr).all(1) for gr in groups]
    truth_cols = [gr for gr in groups]
    assert len(found_rows) == 3
    assert consensus_score((found_rows, found_cols), (truth_rows, truth_cols)) >= 0.95


def _branching_analysis():
    """input -> a -> {b1 -> b1.relu, b2} -> concat -> c, with random statistics and weights."""
    from cnnvis.analysis import Analysis
    from cnnvis.compute._types import ClassStatistics

    rng = np.random.default_rng(7)
    L = lambda n, k, w, ins: Layer(n, k, w, tuple(ins), (w, 4, 4))  # noqa: E731
    layers = (L("x", "input", 3, []), L("a", "conv", 8, ["x"]), L("a.relu", "activation", 8, ["a"]),
              L("b1", "conv", 6, ["a.relu"]), L("b1.relu", "activation", 6, ["b1"]),
              L("b2", "conv", 5, ["a.relu"]), L("cat", "concat", 11, ["b1.relu", "b2"]), L("c", "conv", 7, ["cat"]))
    conns = []
    for l in layers:
        for i in l.inputs:
            src = next(s for s in layers if s.name == i)
            if l.kind == "conv":
                w = rng.standard_normal((l.n_neurons, src.n_neurons)).astype(np.float32)
                conns.append(Connection(l.name, i, "weight", w, np.abs(w)))
            elif l.kind == "concat":
                conns.append(Connection(l.name, i, "concat", offset=0 if i == "b1.relu" else 6))
            else:
                conns.append(Connection(l.name, i, "identity"))
    g = NetworkGraph(layers, tuple(conns))
    K = 4
    stats = {}
    for l in layers:
        mean = rng.random((K, l.n_neurons))
        stats[l.name] = ClassStatistics(np.full(K, 10), mean, 0.1 * mean, 2 * mean, np.full((K, l.n_neurons), 0.5))
    return Analysis(graph=g, class_names=tuple("abcd"), stats=stats, features={}, importance={})


def test_branching_network_keeps_its_structure_and_concat_offsets():
    a = _branching_analysis()
    g = aggregate(a, k_min=2, k_max=3)
    assert [lc.name for lc in g.layer_clusters] == ["a", "b1\u2013cat", "c"]
    assert {(b.src, b.dst) for b in g.bundles} == {("a", "b1\u2013cat"), ("b1\u2013cat", "c")}
    e = expand_layer_cluster(a, g, "b1\u2013cat")
    # the block opens into its weighted layers; the concatenation is a join folded into b2's column, not a
    # column of its own, and b2's column keeps b2's own neurons
    assert [lc.name for lc in e.layer_clusters] == ["a", "b1", "b2", "c"]
    assert e.layer_clusters[2].layers == ("b2", "cat") and e.layer_clusters[2].representative == "b2"
    assert {(b.src, b.dst) for b in e.bundles} == {("a", "b1"), ("a", "b2"), ("b1", "c"), ("b2", "c")}
    # b2's neurons land at cat[6:11]: its strengths into c are c's weights on those inputs
    w = np.asarray(a.graph.connection("c", "cat"), np.float64)
    for src, rep, cols in (("b2", "b2", slice(6, 11)), ("b1", "b1.relu", slice(0, 6))):
        bs, s, d = e.bundle_set(src, "c"), e.neuron_clusters(rep), e.neuron_clusters("c")
        pos = np.clip(w[:, cols], 0, None)
        for kd in range(d.n_clusters):
            for ks in range(s.n_clusters):
                assert bs.positive[kd, ks] == pytest.approx(pos[np.ix_(d.labels == kd, s.labels == ks)].mean())


def test_cluster_count_search_with_a_tiny_sample_and_few_distinct_profiles(net):
    from cnnvis.aggregate._neurons import choose_k

    x = np.repeat(np.eye(3), 10, axis=0)  # 30 rows, 3 distinct profiles
    k, ks, scores = choose_k(x, 2, 12, sample=16, random_state=0, device="cpu")
    assert ks.max() <= 3 and k in (2, 3) and np.isfinite(scores).all()
    k, ks, _ = choose_k(x, 20, 30, sample=16, random_state=0, device="cpu")  # k_min above the sample
    assert list(ks) == [20] and k == 20


def test_aggregation_runs_blas_on_one_thread_and_restores_it():
    """Inside aggregate's edits and choose_k, BLAS has one thread (small products on a busy 2-core machine
    ran 30x slower split over two); the caller's setting is back afterwards."""
    from threadpoolctl import threadpool_info

    from cnnvis.aggregate._blas import one_blas_thread

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    with one_blas_thread():
        assert blas_threads() == {1}
    assert blas_threads() == before

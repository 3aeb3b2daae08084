"""Layout: a valid Scene, no overlaps, packing, crossing reduction, curves, atlases, chart, errors."""
import numpy as np
import pytest

from cnnvis.aggregate import aggregate, expand_layer_cluster
from cnnvis.errors import CnnvisError
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN, build_scene
from cnnvis.layout._build import CHART_SERIES, bundle_edges, unit_max
from cnnvis.layout._curves import bundle_curves
from cnnvis.layout._pack import pack_squares, shelf_pack
from cnnvis.layout._place import barycenter_order, count_crossings
from cnnvis.testing.synthetic import synthetic_network


@pytest.fixture(scope="module")
def scene(net, agg):
    return build_scene(net.analysis, agg)


def _overlap(a, b):
    """Intersection area of boxes a (n, 4) and b (m, 4) -> (n, m)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _inside(inner, outer, tol=1e-3):
    return ((inner[:, 0] >= outer[:, 0] - tol) & (inner[:, 1] >= outer[:, 1] - tol)
            & (inner[:, 2] <= outer[:, 2] + tol) & (inner[:, 3] <= outer[:, 3] + tol)).all()


def test_scene_is_valid_and_has_one_rect_per_cluster(scene, agg):
    scene.validate()
    cols = scene.rect_kind == RECT_COLUMN
    assert cols.sum() == len(agg.layer_clusters)
    n_clusters = sum(int((nc.sizes > 0).sum()) for nc in agg.neurons)
    assert (scene.rect_kind == RECT_CLUSTER).sum() == n_clusters
    for c, nc in enumerate(agg.neurons):
        sel = (scene.rect_kind == RECT_CLUSTER) & (scene.rect_column == c)
        np.testing.assert_array_equal(np.sort(scene.rect_size[sel]), np.sort(nc.sizes[nc.sizes > 0]))
    assert scene.column_names == tuple(lc.name for lc in agg.layer_clusters)


def test_columns_left_to_right_and_rectangles_do_not_overlap(scene):
    cols = scene.rect_box[scene.rect_kind == RECT_COLUMN]
    assert (np.diff(cols[:, 0]) > 0).all() and (cols[1:, 0] >= cols[:-1, 2]).all()
    rects = scene.rect_box[scene.rect_kind == RECT_CLUSTER]
    ov = _overlap(rects, rects)
    np.fill_diagonal(ov, 0)
    assert ov.max() == 0
    owner = cols[scene.rect_column[scene.rect_kind == RECT_CLUSTER]]
    assert _inside(rects, owner)


def test_rectangle_area_encodes_importance(scene, agg):
    for c, nc in enumerate(agg.neurons):
        sel = (scene.rect_kind == RECT_CLUSTER) & (scene.rect_column == c)
        b = scene.rect_box[sel]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        imp = nc.cluster_importance[scene.rect_cluster[sel]]
        big = imp / imp.sum() > 0.1  # above the minimum share, area follows importance
        if big.sum() >= 2:
            ratio = area[big] / imp[big]
            assert ratio.max() / ratio.min() == pytest.approx(1.0, rel=1e-3)


def test_patches_packed_inside_their_rectangle_without_overlap(scene, agg):
    assert scene.n_patches > 0
    assert _inside(scene.patch_box, scene.rect_box[scene.patch_rect])
    ov = _overlap(scene.patch_box, scene.patch_box)
    np.fill_diagonal(ov, 0)
    assert ov.max() < 1e-6
    # patches show the representative neurons of their rectangle's cluster
    for p in range(scene.n_patches):
        r = scene.patch_rect[p]
        nc = agg.neurons[scene.rect_column[r]]
        assert scene.patch_neuron[p] in nc.representatives[scene.rect_cluster[r]]


def test_patch_atlas_holds_the_patches(net, scene, agg):
    H, W = scene.atlas.shape[:2]
    for p in (0, scene.n_patches - 1):
        u0, v0, u1, v1 = scene.patch_uv[p]
        img = scene.atlas[round(v0 * H):round(v1 * H), round(u0 * W):round(u1 * W)]
        layer = agg.neurons[scene.rect_column[scene.patch_rect[p]]].layer
        want = net.analysis.features[layer].patches[scene.patch_neuron[p], 0]
        np.testing.assert_array_equal(img[..., :3], want)
        assert (img[..., 3] == 255).all()


@pytest.mark.parametrize("seed", range(5))
def test_pack_squares_fits_without_overlap(seed):
    rng = np.random.default_rng(seed)
    sizes = 0.5 + rng.random(rng.integers(1, 12))
    box = (10.0, 20.0, 10 + 40 + 100 * rng.random(), 20 + 40 + 100 * rng.random())
    out = pack_squares(sizes, box, gap=1.0)
    assert _inside(out, np.tile(np.array(box), (len(out), 1)))
    ov = _overlap(out, out)
    np.fill_diagonal(ov, 0)
    assert ov.max() < 1e-9
    sides = out[:, 2] - out[:, 0]
    np.testing.assert_allclose(sides / sizes, sides[0] / sizes[0])  # sizes keep their proportions
    assert np.allclose(out[:, 3] - out[:, 1], sides)


def test_crossing_reduction_beats_the_unordered_layout():
    rng = np.random.default_rng(0)
    n_col, n = 4, 8
    perms = [rng.permutation(n) for _ in range(n_col)]
    # a planted crossing-free drawing: cluster perms[c][i] connects to perms[c+1][i]
    edges = np.array([(c, perms[c][i], c + 1, perms[c + 1][i]) for c in range(n_col - 1) for i in range(n)])
    orders, before, after = barycenter_order([n] * n_col, edges, np.ones(len(edges)))
    assert before == count_crossings(edges, [np.arange(n)] * n_col) > 0
    assert after == 0 == count_crossings(edges, orders)


def test_count_crossings_by_hand():
    edges = np.array([(0, 0, 1, 1), (0, 1, 1, 0), (0, 0, 1, 0)])
    assert count_crossings(edges, [np.arange(2), np.arange(2)]) == 1
    assert count_crossings(edges, [np.arange(2), np.array([1, 0])]) == 0  # shared end points do not cross


def test_scene_reports_crossings(scene):
    assert 0 <= scene.crossings_after < scene.crossings_before


def test_curves_join_rectangles_and_converge_per_bundle(scene):
    assert scene.n_curves > 0
    ends0 = scene.curve_ctrl[:, 0]
    ends3 = scene.curve_ctrl[:, 3]
    rects = scene.rect_box[scene.rect_kind == RECT_CLUSTER]
    on_right = np.isclose(ends0[:, None, 0], rects[None, :, 2]) & (ends0[:, None, 1] >= rects[None, :, 1]) \
        & (ends0[:, None, 1] <= rects[None, :, 3])
    on_left = np.isclose(ends3[:, None, 0], rects[None, :, 0]) & (ends3[:, None, 1] >= rects[None, :, 1]) \
        & (ends3[:, None, 1] <= rects[None, :, 3])
    assert on_right.any(1).all() and on_left.any(1).all()
    assert (ends3[:, 0] > ends0[:, 0]).all()  # data flows left to right
    signs = np.sign(scene.curve_values[:, 0])
    assert set(signs) <= {-1.0, 1.0}
    for s in (-1, 1):  # one colour per sign
        assert len({tuple(c) for c in scene.curve_color[signs == s]}) == 1
    assert not np.allclose(scene.curve_color[signs == 1][0], scene.curve_color[signs == -1][0])


def test_bundle_curves_bundling_strength():
    p0 = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 50.0]])
    p3 = np.array([[90.0, 30.0], [90.0, 0.0], [90.0, 20.0]])
    bundle = np.array([0, 0, 1])
    straight = bundle_curves(p0, p3, bundle, 0.0)
    np.testing.assert_allclose(straight[:, 1], p0 + (p3 - p0) / 3)
    tight = bundle_curves(p0, p3, bundle, 1.0)
    np.testing.assert_allclose(tight[0, 1], tight[1, 1])  # curves of one bundle meet at its middle
    np.testing.assert_allclose(tight[0, 2], tight[1, 2])
    mid = np.concatenate([p0[:2], p3[:2]]).mean(0)
    np.testing.assert_allclose(0.5 * (tight[0, 1] + tight[0, 2]), mid)
    assert not np.allclose(tight[2, 1], tight[0, 1])


def test_matrices_in_the_float_atlas(scene, agg):
    assert scene.matrix_box.shape[0] == (scene.rect_kind == RECT_CLUSTER).sum()
    H, W = scene.matrix_atlas.shape
    m = 0
    r = scene.matrix_rect[m]
    nc = agg.neurons[scene.rect_column[r]]
    k = scene.rect_cluster[r]
    u0, v0, u1, v1 = scene.matrix_uv[m]
    block = scene.matrix_atlas[round(v0 * H):round(v1 * H), round(u0 * W):round(u1 * W)]
    rows = nc.order[nc.labels[nc.order] == k]
    want = nc.profiles[rows][:, agg.class_order]
    want = want / want.max(1, keepdims=True)
    np.testing.assert_allclose(block, want, rtol=1e-6)
    assert 0 <= scene.matrix_atlas.min() and scene.matrix_atlas.max() <= 1


def test_chart_series(net, scene, agg):
    h = net.analysis.history
    S, T, X = scene.chart_values.shape
    assert (S, T, X) == (5, len(h.snapshots), len(agg.layer_clusters))
    assert scene.chart_names == CHART_SERIES
    cols = scene.rect_box[scene.rect_kind == RECT_COLUMN]
    np.testing.assert_allclose(scene.chart_x, 0.5 * (cols[:, 0] + cols[:, 2]))
    c = 1  # column "conv3": one weighted layer
    j = h.layers.index("conv3")
    np.testing.assert_allclose(scene.chart_values[0, :, c], h.grad_mean[:, j], rtol=1e-6)
    np.testing.assert_allclose(scene.chart_values[1, 1:, c], h.rel_change[1:, j], rtol=1e-6)
    dead = net.analysis.dead_fraction("conv3")  # the column's only layer that feeds a ReLU
    assert (dead >= 1).any()
    assert scene.chart_values[2, -1, c] == pytest.approx((dead >= 1).mean())
    assert np.isnan(scene.chart_values[2:, :-1]).all()
    # the representative's mean activation (class means weighted by the images per class) and importance
    rep = agg.layer_clusters[c].representative
    st, imp = net.analysis.stats[rep], net.analysis.importance[rep]
    want = (st.mean * st.count[:, None]).sum(0) / st.count.sum()
    assert scene.chart_values[3, -1, c] == pytest.approx(want.mean(), rel=1e-5)
    assert scene.chart_values[4, -1, c] == pytest.approx(np.mean(imp.contribution), rel=1e-5)


def test_without_snapshots_the_chart_shows_what_the_file_holds():
    from dataclasses import replace

    n = synthetic_network([16, 24], n_clusters=2, seed=4)
    a = replace(n.analysis, history=None)
    sc = build_scene(a, aggregate(a))
    assert sc.chart_names == ("dead-neuron fraction", "mean activation", "importance")
    assert sc.chart_snapshots == ("final",)
    # statistics and importance everywhere; dead neurons n/a only in the column without a ReLU (the fc layer)
    assert np.isfinite(sc.chart_values[1:]).all()
    assert np.isnan(sc.chart_values[0, 0]).tolist() == [c.startswith("fc") for c in sc.column_names]


def test_layers_without_a_relu_are_never_dead():
    """The one definition (cnnvis.aggregate._dead): only a ReLU's neurons can be dead. A leaky-ReLU net whose
    neurons never go above 0 gets no dead cluster, no dead fill and n/a in the chart."""
    from dataclasses import replace

    from cnnvis.aggregate._dead import dead_mask
    from cnnvis.graph import NetworkGraph

    n = synthetic_network([16, 24], n_clusters=2, seed=4)
    a = n.analysis
    leaky = replace(a, graph=NetworkGraph(tuple(replace(l, op="LeakyReLU") if l.op == "ReLU" else l
                                                for l in a.graph.layers), a.graph.connections))
    relu_agg, leaky_agg = aggregate(a), aggregate(leaky)
    dead_somewhere = [nc for nc in relu_agg.neurons if nc.dead_cluster >= 0]
    assert dead_somewhere, "the planted net has dead ReLU neurons"
    for nc in dead_somewhere:   # the same neurons the statistics call never active
        np.testing.assert_array_equal(nc.labels == nc.dead_cluster, a.dead_fraction(nc.layer) >= 1.0)
    assert all(nc.dead_cluster == -1 for nc in leaky_agg.neurons)
    assert all(dead_mask(leaky, l.name) is None for l in leaky.graph.layers)
    sc = build_scene(leaky, leaky_agg)
    assert not sc.rect_dead.any() and not sc.patch_dead.any()
    k = sc.chart_names.index("dead-neuron fraction")
    assert np.isnan(sc.chart_values[k]).all() and "no ReLU" in sc.chart_na[k]


def test_scene_after_an_edit(net, agg):
    new = expand_layer_cluster(net.analysis, agg, "conv1\u2013conv2")
    sc = build_scene(net.analysis, new)
    assert len(sc.column_names) == len(new.layer_clusters)


def test_resnet_scene_is_valid():
    n = synthetic_network("resnet50", n_snapshots=2, edge_history=False, patch_size=4)
    sc = build_scene(n.analysis, aggregate(n.analysis))
    assert sc.column_names == ("conv1", "layer1", "layer2", "layer3", "layer4", "fc")
    assert sc.n_curves > 0 and sc.n_patches > 0


@pytest.mark.parametrize("kw, pattern", [
    (dict(column_width=-1), r"^column_width must be in >= 20.0, got -1$"),
    (dict(bundling=2), r"^bundling must be in \[0.0, 1.0\], got 2$"),
    (dict(fill="a lot"), r"^fill must be a finite number, got 'a lot' \(str\)$"),
])
def test_bad_layout_parameters(net, agg, kw, pattern):
    with pytest.raises(CnnvisError, match=pattern):
        build_scene(net.analysis, agg, **kw)


def test_unit_log_keeps_order_zero_and_one_and_spreads_heavy_tails():
    from cnnvis.layout._build import unit_log

    v = np.array([0.0, 1e-4, 1e-3, 1e-3, 1e-2, 1.0])
    u = unit_log(v)
    assert u[0] == 0 and u[-1] == 1 and np.all(np.diff(u) >= 0)
    assert u[2] > 0.1  # the median is visible, not ~0.001 as on a linear scale
    np.testing.assert_allclose(u[2], np.log(2) / np.log1p(1.0 / 1e-3))
    np.testing.assert_array_equal(unit_log(np.zeros(3)), np.zeros(3))


def test_scene_ids_name_what_each_curve_and_patch_stands_for(net, agg, scene):
    """The edit protocol's ids: bundle_id[k] is (src column, dst column, bundle index in that pair's
    BundleSet), the same bundle as bundle_edges' flat list; column_layer gives each column's
    representative, whose neuron indices patch_neuron holds."""
    edges, ebid, _, esign, ids = bundle_edges(agg)
    assert scene.bundle_id.shape == (len(ids), 3) and scene.bundle_id.dtype == np.int32
    names = [lc.name for lc in agg.layer_clusters]
    for k, (si, b) in enumerate(ids):
        bs = agg.bundles[si]
        assert tuple(scene.bundle_id[k]) == (names.index(bs.src), names.index(bs.dst), b)
    for e in range(scene.n_curves):
        sc, dc, b = scene.bundle_id[scene.curve_bundle[e]]
        assert (edges[e, 0], edges[e, 2]) == (sc, dc)
        bs = next(x for x in agg.bundles if (x.src, x.dst) == (names[sc], names[dc]))
        assert bs.bundle_sign[b] == esign[e]
        assert bs.bundle_dst[b][edges[e, 3]] and bs.bundle_src[b][edges[e, 1]]
    assert scene.column_layer == tuple(lc.representative for lc in agg.layer_clusters)
    for p in range(scene.n_patches):
        c = scene.rect_column[scene.patch_rect[p]]
        assert scene.patch_neuron[p] < net.analysis.stats[scene.column_layer[c]].mean.shape[1]


def test_the_chart_legend_is_its_own_field_and_no_label_sits_in_the_chart(scene):
    assert scene.chart_legend == CHART_SERIES == scene.chart_names
    assert (scene.label_pos[:, 1] > scene.chart_box[3]).all(), "labels are the view's; the chart has its legend"


def test_displayed_activations_are_scaled_once_to_unit_max(net, agg, scene):
    rng = np.random.default_rng(3)
    x = rng.random((7, 5)) * (rng.random((7, 1)) > 0.3)
    want = np.array([r / r.max() if r.max() > 0 else np.zeros_like(r) for r in x])
    assert np.allclose(unit_max(x), want, atol=0, rtol=1e-15)
    clusters = scene.rect_kind == RECT_CLUSTER
    a = scene.rect_class_activation[clusters]
    assert a.min() >= 0 and np.allclose(a.max(1)[a.max(1) > 0], 1.0)
    with pytest.raises(ValueError, match="rect_class_activation: values outside 0..1"):
        scene.replace(rect_class_activation=scene.rect_class_activation * 2).validate()
    with pytest.raises(ValueError, match="matrix_atlas: values outside 0..1"):
        scene.replace(matrix_atlas=scene.matrix_atlas - 0.5).validate()


@pytest.mark.parametrize("gap", [0.0, 1.0, 2.5])
def test_shelf_pack_places_boxes_in_order_without_overlap_within_the_limit(gap):
    rng = np.random.default_rng(int(gap * 10))
    w, h = rng.integers(1, 40, 57).astype(float), rng.integers(1, 30, 57).astype(float)
    order = np.argsort(-h, kind="stable")
    x, y, total = shelf_pack(w, h, 100.0, gap, order)
    boxes = np.stack([x, y, x + w, y + h], 1)
    ov = _overlap(boxes, boxes)
    np.fill_diagonal(ov, 0)
    assert ov.max() == 0 and (boxes[:, 2] <= 100.0).all() and boxes[:, 0].min() == 0
    assert total == pytest.approx((y + h).max())
    # in order: along a shelf x grows, and each new shelf starts at x 0 below the last one (gap apart)
    xs, ys = x[order], y[order]
    new = np.flatnonzero(np.diff(ys) != 0) + 1
    assert (xs[new] == 0).all() and (np.diff(ys) >= 0).all()
    for a, b in zip(np.r_[0, new], np.r_[new, len(order)]):
        row = order[a:b]
        assert np.allclose(x[row][1:], (x[row] + w[row] + gap)[:-1]), "boxes gap apart along a shelf"
        if b < len(order):
            assert ys[b] == pytest.approx(ys[a] + h[row].max() + gap)
            assert x[row][-1] + w[row][-1] + gap + w[order[b]] > 100.0, "a new shelf only when it would not fit"
    x, y, total = shelf_pack([5.0, 120.0], [5.0, 5.0], 100.0)
    assert total == np.inf and np.isnan(x[1])


def test_a_merge_addressed_by_scene_bundle_ids_is_the_aggregation_merge(net, agg, scene):
    """What the session does with MergeBundles(a, b, a_id, b_id): no layout private needed."""
    from cnnvis.aggregate import merge_bundles

    pairs = {}
    for k, (sc, dc, b) in enumerate(scene.bundle_id):
        pairs.setdefault((int(sc), int(dc)), []).append((k, int(b)))
    (sc, dc), ks = next((p, ks) for p, ks in pairs.items()
                        if len(ks) >= 2 and len({agg.bundle_set(*p).bundle_sign[b] for _, b in ks[:2]}) == 1)
    (ka, ba), (kb, bb) = ks[:2]
    merged = merge_bundles(agg, sc, dc, ba, bb)
    _, _, _, _, ids = bundle_edges(agg)
    si = ids[ka][0]
    assert ids[kb][0] == si and (ids[ka][1], ids[kb][1]) == (ba, bb)
    want = merge_bundles(agg, agg.bundles[si].src, agg.bundles[si].dst, ids[ka][1], ids[kb][1])
    assert merged.bundle_set(sc, dc).n_bundles == want.bundle_set(sc, dc).n_bundles == agg.bundles[si].n_bundles - 1
    assert np.array_equal(merged.bundle_set(sc, dc).bundle_src, want.bundle_set(sc, dc).bundle_src)


def test_curves_that_skip_columns_are_drawn_thinner():
    from cnnvis.layout._build import _curve_width

    edges = np.array([[0, 0, 1, 0], [0, 0, 3, 1], [2, 1, 3, 0]])
    np.testing.assert_allclose(_curve_width(np.array([1.0, 1.0, 0.0]), edges), [6.0, 2.0, 1.0])

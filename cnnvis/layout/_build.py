"""build_scene: an Aggregation laid out left to right as a Scene of flat arrays."""
from __future__ import annotations

import numpy as np

from cnnvis._params import Interval, validate
from cnnvis.layout._atlas import matrix_atlas, patch_atlas
from cnnvis.layout._curves import bundle_curves
from cnnvis.layout._pack import pack_squares
from cnnvis.layout._palette import (COLUMN_BORDER, COLUMN_FILL, DEAD_BORDER, DEAD_FILL, NEGATIVE, POSITIVE,
                                    cluster_border, cluster_fill)
from cnnvis.layout._place import barycenter_order, rect_sizes
from cnnvis.layout._scene import RECT_CLUSTER, RECT_COLUMN, Scene

__all__ = ["CHART_SERIES", "CHART_NA", "build_scene", "bundle_edges", "matrix_rows", "fill_height", "fit_text"]

NAME_SIZE, INFO_SIZE = 15.0, 11.0   # font sizes of a column's name and of its representative line
EM = 0.6   # advance of an average glyph of the viewer's font, in font sizes (its widest is 0.93, its mean 0.53)


def __getattr__(name):
    """CHART_SERIES (the chart's series with training snapshots; without them the first two are left out) and
    CHART_NA, read from cnnvis.aggregate._series when asked for: importing the layout (as the viewer does)
    loads no aggregate module."""
    if name in ("CHART_SERIES", "CHART_NA"):
        from cnnvis.aggregate._series import FILE_SERIES, HISTORY_SERIES, SERIES_NA

        series = HISTORY_SERIES + FILE_SERIES
        return series if name == "CHART_SERIES" else tuple(SERIES_NA[n] for n in series)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# build_scene()'s parameters, in scene units (pixels at zoom 1) and fractions.
_PARAMETERS = {
    "column_width": Interval(20.0, integer=False), "column_gap": Interval(0.0, integer=False),
    "column_height": Interval(50.0, integer=False), "fill": Interval(0.05, 0.95, integer=False),
    "bundling": Interval(0.0, 1.0, integer=False), "chart_height": Interval(0.0, integer=False)}


def bundle_edges(agg, *, show_weak: bool = False):
    """Drawn connections: (E, 4) int64 (src column, src cluster, dst column, dst cluster), bundle index
    into a flat list of (set index, bundle index) pairs (E,), the cell's strength over the set's strongest
    cell (E,), and the signed kind (E,) +1/-1. Only cluster pairs with a non-zero strength of the bundle's
    sign are drawn, so every curve stands for existing connections."""
    col = {c.name: i for i, c in enumerate(agg.layer_clusters)}
    rows, bid, rel, sign, ids = [], [], [], [], []
    for si, bs in enumerate(agg.bundles):
        top = max(bs.positive.max(initial=0), bs.negative.max(initial=0))
        for b in range(bs.n_bundles):
            if bs.bundle_weak[b] and not show_weak:
                continue
            m = bs.positive if bs.bundle_sign[b] > 0 else bs.negative
            d, s = np.nonzero(bs.bundle_dst[b][:, None] & bs.bundle_src[b][None, :] & (m > 0))
            if d.size == 0:
                continue
            k = len(ids)
            ids.append((si, b))
            rows.append(np.stack([np.full(d.size, col[bs.src]), s, np.full(d.size, col[bs.dst]), d], 1))
            bid.append(np.full(d.size, k))
            rel.append(m[d, s] / top if top > 0 else np.zeros(d.size))
            sign.append(np.full(d.size, int(bs.bundle_sign[b])))
    if not rows:
        z = np.zeros(0, np.int64)
        return np.zeros((0, 4), np.int64), z, np.zeros(0), z, ids
    return (np.concatenate(rows).astype(np.int64), np.concatenate(bid), np.concatenate(rel),
            np.concatenate(sign), ids)


def build_scene(analysis, aggregation, *, column_width: float = 200.0, column_gap: float = 180.0,
                column_height: float = 720.0, fill: float = 0.5, bundling: float = 0.75,
                show_weak: bool = False, chart_height: float = 160.0) -> Scene:
    """Lay out an Aggregation: columns left to right, cluster rectangles (area ~ importance) ordered to reduce
    crossings, packed learned-feature patches, bundled Bezier curves, atlases, chart and labels.

    fill: fraction of a column's area given to its cluster rectangles; bundling: 0 (straight) .. 1 (curves
    meet at each bundle's middle); show_weak: also draw bundles under the aggregation's threshold.
    """
    agg = aggregation
    p = validate(_PARAMETERS, dict(column_width=column_width, column_gap=column_gap, column_height=column_height,
                                   fill=fill, bundling=bundling, chart_height=chart_height))
    W, G, H, fill, bundling, chart_h = p.values()
    K = analysis.n_classes
    n_col = len(agg.layer_clusters)
    pad, gap = 8.0, 14.0

    # -- order clusters within columns -------------------------------------------------------------
    edges, ebid, erel, esign, bundle_ids = bundle_edges(agg, show_weak=show_weak)
    sizes = [nc.n_clusters for nc in agg.neurons]
    orders, cross_before, cross_after = barycenter_order(sizes, edges, np.maximum(erel, 1e-3))

    # -- rectangles ----------------------------------------------------------------------------------
    rbox, rfill, rborder, rkind, rcol, rclu, rsize, rimp, ract, rdead = [], [], [], [], [], [], [], [], [], []
    rect_of = {}  # (column, cluster) -> rect row
    cls_order = agg.class_order
    for c, (lc, nc) in enumerate(zip(agg.layer_clusters, agg.neurons)):
        x0 = c * (W + G)
        rbox.append((x0, 0.0, x0 + W, H))
        rfill.append(COLUMN_FILL)
        rborder.append(COLUMN_BORDER)
        rkind.append(RECT_COLUMN)
        rcol.append(c)
        rclu.append(-1)
        rsize.append(len(lc.layers))
        rimp.append(1.0)
        rdead.append(0)
        ract.append(unit_max(nc.profiles.mean(0) if nc.profiles.size else np.zeros(K)))
        shown = [k for k in orders[c] if nc.sizes[k] > 0]
        imp = nc.cluster_importance[shown] if len(shown) else np.zeros(0)
        if len(shown) and imp.sum() <= 0:
            imp = nc.sizes[shown].astype(np.float64)
        avail_h = H - 2 * pad - gap * max(len(shown) - 1, 0)
        wh = rect_sizes(imp, fill * (W - 2 * pad) * avail_h, W - 2 * pad)
        # shrink uniformly (areas keep their proportions) if the stack is taller than the column
        tot_h = wh[:, 1].sum() if len(shown) else 0.0
        if tot_h > avail_h:
            wh = wh * (avail_h / tot_h)
        y = H - pad - 0.5 * (avail_h - wh[:, 1].sum()) if len(shown) else H
        top_imp = imp.max() if len(shown) and imp.max() > 0 else 1.0
        for j, k in enumerate(shown):
            w, h = wh[j]
            cx = x0 + 0.5 * W
            rect_of[(c, int(k))] = len(rbox)
            rbox.append((cx - 0.5 * w, y - h, cx + 0.5 * w, y))
            y -= h + gap
            dead = k == nc.dead_cluster
            rfill.append(DEAD_FILL if dead else cluster_fill(int(k), imp[j] / top_imp))
            rborder.append(DEAD_BORDER if dead else cluster_border(int(k)))
            rkind.append(RECT_CLUSTER)
            rcol.append(c)
            rclu.append(int(k))
            rsize.append(int(nc.sizes[k]))
            rimp.append(imp[j] / top_imp)
            rdead.append(int(dead))
            ract.append(unit_max(nc.centers[k]))
    rbox = np.asarray(rbox, np.float32)
    ract = np.asarray(ract, np.float32)[:, cls_order] if len(ract) else np.zeros((0, K), np.float32)

    # -- learned-feature patches ---------------------------------------------------------------------
    pbox, prect, pneuron, pimgs, pimp, pdead, ptop = [], [], [], [], [], [], []
    from cnnvis.aggregate._reorder import class_rank  # here: the viewer imports layout, not aggregate

    rank_of = class_rank(cls_order)   # class index -> position in the Scene's class order
    for nc, k, r in _drawn_clusters(agg, rect_of):
        feats = analysis.features.get(nc.layer)
        reps = nc.representatives[k]
        reps = reps[reps >= 0]
        if feats is None or reps.size == 0:
            continue
        sides = np.sqrt(0.25 + nc.importance[reps])  # patch area grows with the neuron's importance
        boxes = pack_squares(sides, _inset(rbox[r].astype(np.float64), 4.0), gap=1.0)
        for n, b in zip(reps, boxes):
            if b[2] - b[0] <= 0:
                continue
            pbox.append(b)
            prect.append(r)
            pneuron.append(int(n))
            pimgs.append(feats.patches[n, 0])
            pimp.append(float(nc.importance[n]))
            pdead.append(int(nc.labels[n] == nc.dead_cluster))
            prof = nc.profiles[n]
            top = [int(rank_of[c]) for c in np.argsort(-prof, kind="stable")[:3] if prof[c] > 0]
            ptop.append(top + [-1] * (3 - len(top)))
    atlas, puv = patch_atlas(pimgs)

    # -- activation matrices ---------------------------------------------------------------------------
    mblocks, mbox, mrect = [], [], []
    for nc, k, r in _drawn_clusters(agg, rect_of):
        rows = matrix_rows(nc, k)
        mblocks.append(unit_max(nc.profiles[rows][:, cls_order].astype(np.float32)).astype(np.float32))
        mbox.append(_inset(rbox[r], 3.0))
        mrect.append(r)
    matlas, muv = matrix_atlas(mblocks)

    # -- curves ----------------------------------------------------------------------------------------
    E = len(edges)
    p0, p3 = np.zeros((E, 2)), np.zeros((E, 2))
    if E:
        src_rect = np.array([rect_of[(int(a), int(b))] for a, b in edges[:, :2]])
        dst_rect = np.array([rect_of[(int(a), int(b))] for a, b in edges[:, 2:]])
        # spread the ends of a rectangle's curves over the middle 60% of its edge, in the order of the other end
        p0[:, 0], p3[:, 0] = rbox[src_rect, 2], rbox[dst_rect, 0]
        p0[:, 1] = _spread(src_rect, rbox, rbox[dst_rect, 1] + rbox[dst_rect, 3])
        p3[:, 1] = _spread(dst_rect, rbox, rbox[src_rect, 1] + rbox[src_rect, 3])
    ctrl = bundle_curves(p0, p3, ebid, bundling)
    grad = np.zeros(E)
    change = np.zeros(E)
    for i, (si, b) in enumerate(bundle_ids):
        sel = ebid == i
        bs = agg.bundles[si]
        s_col, s_k, d_col, d_k = edges[sel].T
        grad[sel] = bs.gradient[d_k, s_k]
        change[sel] = bs.change[d_k, s_k]
    grad, change = unit_log(grad), unit_log(change)
    cvals = np.stack([esign * np.clip(erel, 0, 1), grad, change], 1) if E else np.zeros((0, 3))
    ccol = np.where((esign > 0)[:, None], POSITIVE[None, :], NEGATIVE[None, :]) if E else np.zeros((0, 4))

    # -- chart and labels ------------------------------------------------------------------------------
    centers = np.array([c * (W + G) + 0.5 * W for c in range(n_col)], np.float32)
    cnames, snaps, cvalues, cna = _chart(analysis, agg)
    chart_box = np.array([0.0, -40.0 - chart_h, max(centers[-1] + 0.5 * W, W), -40.0], np.float32)
    texts, pos, size, hbox = [], [], [], []
    room = W + 0.8 * G   # a label never reaches the next column's
    for c, lc in enumerate(agg.layer_clusters):
        x0 = c * (W + G)
        name = fit_text(lc.name, room, NAME_SIZE)
        texts += [name, fit_text(f"{lc.representative} \u00b7 {agg.neurons[c].labels.size} neurons", room, INFO_SIZE)]
        pos += [(x0, H + 26.0), (x0, H + 8.0)]
        size += [NAME_SIZE, INFO_SIZE]
        hbox.append((x0, H + 26.0 - 0.25 * NAME_SIZE, x0 + EM * NAME_SIZE * len(name), H + 26.0 + NAME_SIZE))
    allx = np.concatenate([rbox[:, [0, 2]].ravel(), chart_box[[0, 2]]])
    ally = np.concatenate([rbox[:, [1, 3]].ravel(), chart_box[[1, 3]], [H + 44.0, chart_box[1] - 60.0]])
    bounds = np.array([allx.min() - 20, ally.min(), allx.max() + 20, ally.max()], np.float32)
    return Scene(
        bounds=bounds, rect_box=rbox, rect_fill=np.asarray(rfill, np.float32),
        rect_border=np.asarray(rborder, np.float32), rect_kind=np.asarray(rkind, np.int8),
        rect_column=np.asarray(rcol, np.int32), rect_cluster=np.asarray(rclu, np.int32),
        rect_size=np.asarray(rsize, np.int32), rect_importance=np.asarray(rimp, np.float32),
        rect_class_activation=ract, curve_ctrl=ctrl.astype(np.float32),
        curve_width=_curve_width(erel, edges), curve_bundle=ebid.astype(np.int32),
        curve_values=cvals.astype(np.float32), atlas=atlas, patch_box=np.asarray(pbox, np.float32).reshape(-1, 4),
        patch_uv=puv, patch_rect=np.asarray(prect, np.int32), matrix_atlas=matlas,
        matrix_box=np.asarray(mbox, np.float32).reshape(-1, 4), matrix_uv=muv,
        matrix_rect=np.asarray(mrect, np.int32), chart_names=cnames, chart_snapshots=snaps,
        chart_values=cvalues, chart_x=centers, chart_box=chart_box, label_text=tuple(texts),
        label_pos=np.asarray(pos, np.float32), label_size=np.asarray(size, np.float32),
        class_names=tuple(analysis.class_names[i] for i in cls_order),
        column_names=tuple(lc.name for lc in agg.layer_clusters),
        curve_color=ccol.astype(np.float32), patch_neuron=np.asarray(pneuron, np.int32),
        crossings_before=int(cross_before), crossings_after=int(cross_after),
        column_layer=tuple(lc.representative for lc in agg.layer_clusters),
        bundle_id=_bundle_ids(agg, bundle_ids), chart_legend=cnames,
        column_group=_column_groups(agg), rect_dead=np.asarray(rdead, np.int8),
        patch_importance=np.asarray(pimp, np.float32), patch_dead=np.asarray(pdead, np.int8),
        patch_top_classes=np.asarray(ptop, np.int32).reshape(-1, 3), chart_na=cna,
        column_header_box=np.asarray(hbox, np.float32).reshape(-1, 4),
    ).validate()


def fit_text(text: str, width: float, size: float) -> str:
    """`text` if it fits `width` world units at font `size` (EM per glyph), else its head and its tail around
    an ellipsis: the head says which module, the tail which part ("denseblock3.denselayer1\u2026 \u00b7 2 layers")."""
    n = int(width / (EM * size))
    if len(text) <= n:
        return text
    head, sep, tail = text.partition(" \u00b7 ")
    if sep and len(tail) + 3 < n:   # keep what the column holds whole, shorten the module path from its head
        keep = n - len(tail) - 3 - 1
        return ("\u2026" + head[-keep:] if keep > 0 else "\u2026") + sep + tail
    return text[:max(n - 1, 1)] + "\u2026"


def fill_height(n_columns: int, *, column_width: float = 200.0, column_gap: float = 180.0,
                aspect: float = 1.25, below: float = 300.0) -> float:
    """A column height at which `n_columns` columns fill a view of width/height `aspect` (a 1280x800 window
    beside its panel) rather than a thin band: the layout's width over the aspect, less the `below`
    (names, chart) every Scene has; never under the default 720."""
    wide = n_columns * (column_width + column_gap) - column_gap
    return float(max(720.0, wide / aspect - below))


def _curve_width(rel: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Curve widths in pixels, 1..6 by strength; a connection that skips k columns is 1/(k+1) as wide, so the
    many long curves of a densely connected block (DenseNet's concatenations reach every later layer) stay
    behind the ones between neighbours."""
    w = 1.0 + 5.0 * np.clip(rel, 0, 1)
    if len(edges):
        w = w / np.maximum(np.abs(edges[:, 2] - edges[:, 0]), 1)
    return w.astype(np.float32)


def _column_groups(agg) -> np.ndarray:
    """Scene.column_group: the leftmost column of the columns expanded from the same cluster, else -1."""
    first: dict = {}
    out = []
    for c, lc in enumerate(agg.layer_clusters):
        src = lc.expanded_from
        out.append(-1 if src is None else first.setdefault(id(src), c))
    return np.asarray(out, np.int32)


def _drawn_clusters(agg, rect_of):
    """(NeuronClusters, cluster id, rect row) of every cluster drawn, column by column."""
    for c, nc in enumerate(agg.neurons):
        for k in range(nc.n_clusters):
            r = rect_of.get((c, k))
            if r is not None:
                yield nc, k, r


def matrix_rows(nc, k: int) -> np.ndarray:
    """The neurons of cluster k in the rows of its activation matrix, top row first."""
    return nc.order[nc.labels[nc.order] == k]


def _inset(box, most: float) -> tuple:
    """The box shrunk on every side by `most`, or by a tenth of its width or height if smaller."""
    x0, y0, x1, y1 = box
    d = min(most, 0.1 * (x1 - x0), 0.1 * (y1 - y0))
    return (x0 + d, y0 + d, x1 - d, y1 - d)


def unit_max(x: np.ndarray) -> np.ndarray:
    """Per-class activations for display: each row (the last axis) over its largest value, so 1 is the
    row's strongest class (rows with no positive value become 0). The aggregation's profiles are unit
    length (for clustering); this is the one place their displayed scale is set."""
    mx = x.max(-1, keepdims=True)
    return np.where(mx > 0, x / np.where(mx > 0, mx, 1), 0)


def _bundle_ids(agg, ids) -> np.ndarray:
    """Scene.bundle_id: (src column, dst column, bundle index) per drawn bundle of bundle_edges."""
    col = {c.name: i for i, c in enumerate(agg.layer_clusters)}
    rows = [(col[agg.bundles[si].src], col[agg.bundles[si].dst], b) for si, b in ids]
    return np.asarray(rows, np.int32).reshape(-1, 3)


def unit_log(v: np.ndarray) -> np.ndarray:
    """Non-negative magnitudes to 0..1 on a log scale relative to their median positive value (0 stays 0,
    the largest becomes 1). Gradients and weight changes span orders of magnitude across layers (on the demo
    the median curve is 0.3% of the largest): a linear scale would paint nearly every curve as zero."""
    pos = v[v > 0]
    if not pos.size:
        return v
    ref = float(np.median(pos))
    top = np.log1p(pos.max() / ref)
    return np.log1p(v / ref) / top if top > 0 else (v > 0).astype(v.dtype)


def _spread(rect: np.ndarray, rbox: np.ndarray, key: np.ndarray) -> np.ndarray:
    """y of each curve end on its rectangle's edge: the ends of one rectangle spread evenly over the
    middle 60% of its height, sorted by the other end's height (so they do not cross at the rectangle)."""
    y = np.empty(rect.size)
    order = np.lexsort((-key, rect))
    r_sorted = rect[order]
    starts = np.flatnonzero(np.r_[True, r_sorted[1:] != r_sorted[:-1]])
    counts = np.diff(np.r_[starts, rect.size])
    rank = np.arange(rect.size) - np.repeat(starts, counts)
    n = np.repeat(counts, counts)
    y0, y1 = rbox[r_sorted, 1], rbox[r_sorted, 3]
    t = (rank + 0.5) / n
    y[order] = y1 - (0.2 + 0.6 * t) * (y1 - y0)
    return y


def _chart(analysis, agg):
    """(names, snapshot names, values (S, T, X) float32, why n/a (S,)): the aggregation's per-column series
    (cnnvis.aggregate._series; computed there for an aggregation made without them)."""
    from cnnvis.aggregate._series import column_series

    cs = agg.series if agg.series is not None else column_series(analysis, agg.layer_clusters)
    return cs.names, cs.snapshots, cs.values, cs.na

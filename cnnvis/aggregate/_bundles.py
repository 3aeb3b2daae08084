"""Edge bundles between connected representative layers, by biclustering (Sun et al. 2016).

Cluster-to-cluster strengths: the neuron-level strength between two representative layers is the sum over
paths (through non-representative layers only) of the product of the kernel-summed weights along the path;
a path is positive or negative by the sign of its product. Instead of forming the (n_dst, n_src) neuron
matrix, the source cluster indicator (n_src, k_src) is pushed forward layer by layer, which costs one
(n, m) x (m, k) product per connection. With S = |W| S + ... and D = W D carried together,
positive = (S + D) / 2 and negative = (S - D) / 2 exactly (A = W+, B = W-: S = (A+B)(P+N), D = (A-B)(P-N)).
Each sign's (k_dst, k_src) matrix of mean strength per neuron pair is co-clustered (Dhillon 2001) by the
compiled core; the bicluster count (1..max_bundles) maximises Barber's bipartite modularity.
"""
from __future__ import annotations

import numpy as np

from cnnvis.aggregate._types import BundleSet

# A split must raise the modularity by this much over the previous best; below it the split only follows
# noise (flows mixed over many hops give modularity ~0 for every count).
_MIN_GAIN = 0.01

__all__ = ["propagate", "cluster_matrices", "bipartite_modularity", "bicluster_bundles", "bundle_sets_from"]


def _edge_mats(conn, mode, history):
    """(signed, absolute) matrices of a weighted connection for `mode` ("weight" or a history field)."""
    if mode == "weight":
        w = conn.weight
        return w, np.abs(w)
    table = getattr(history, mode) if history is not None else {}
    m = table.get((conn.dst, conn.src))
    if m is None:
        return None, None
    return m, m


def propagate(graph, src: str, init: np.ndarray, stops: set, *, mode: str = "weight", history=None) -> dict:
    """Push `init` (n_src, m) from layer src through the DAG, stopping at layers in `stops`.

    Returns {stop layer: (S (n, m), D (n, m))} for every stop reached (products in the connection
    matrices' dtype, float32 from the graph): S carries absolute strengths and D signed ones (for history
    modes both carry the same non-negative values). A weighted connection without a matrix in that mode
    blocks the flow.
    """
    order = graph.names
    start = graph.index(src)
    # state: (S, D, log of a common scale factor); float32 products over many hops would overflow, so each
    # weighted hop renormalises S to max 1 and keeps the factor in float64 logs.
    state: dict[str, tuple] = {src: (init, init, 0.0)}
    out = {}
    conns_in: dict[str, list] = {}
    for c in graph.connections:
        conns_in.setdefault(c.dst, []).append(c)
    for name in order[start + 1:]:
        parts = []
        for c in conns_in.get(name, ()):
            if c.src not in state:
                continue
            s, d, lg = state[c.src]
            if c.mode == "weight":
                w, a = _edge_mats(c, mode, history)
                if w is None:
                    continue
                # in the matrices' own dtype (float32): casting a 4096 x 4096 matrix to float64 would
                # cost more than the product itself
                ns, nd = a @ s.astype(a.dtype, copy=False), w @ d.astype(w.dtype, copy=False)
                top = float(np.abs(ns).max()) if ns.size else 0.0
                if top > 0 and np.isfinite(top):
                    ns, nd, lg = ns / top, nd / top, lg + np.log(top)
            elif c.mode == "concat":
                n_dst = graph.layer(name).n_neurons
                ns = np.zeros((n_dst, s.shape[1]), s.dtype)
                nd = np.zeros((n_dst, s.shape[1]), d.dtype)
                k = min(s.shape[0], n_dst - c.offset)
                ns[c.offset:c.offset + k] = s[:k]
                nd[c.offset:c.offset + k] = d[:k]
            else:
                ns, nd = s, d
            parts.append((ns, nd, lg))
        if not parts:
            continue
        lg = max(p[2] for p in parts)  # sum the inputs at the largest scale
        acc_s = sum(p[0] * np.exp(p[2] - lg) for p in parts)
        acc_d = sum(p[1] * np.exp(p[2] - lg) for p in parts)
        if name in stops:
            out[name] = (np.asarray(acc_s, np.float64) * np.exp(lg), np.asarray(acc_d, np.float64) * np.exp(lg))
        else:
            state[name] = (acc_s, acc_d, lg)
    return out


def cluster_matrices(s: np.ndarray, d: np.ndarray, dst_labels: np.ndarray, k_dst: int,
                     src_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) (k_dst, k_src) mean strength per neuron pair from pushed (n_dst, k_src) sums."""
    s, d = np.asarray(s, np.float64), np.asarray(d, np.float64)
    pos = np.clip(0.5 * (s + d), 0, None)
    neg = np.clip(0.5 * (s - d), 0, None)
    onehot = np.zeros((k_dst, dst_labels.size))
    onehot[dst_labels, np.arange(dst_labels.size)] = 1.0
    dst_sizes = onehot.sum(1)
    den = np.maximum(np.outer(dst_sizes, src_sizes), 1.0)
    return onehot @ pos / den, onehot @ neg / den


def bipartite_modularity(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    """Barber's modularity of a co-clustering of the non-negative matrix a (rows and columns labelled)."""
    m = a.sum()
    if m <= 0:
        return 0.0
    expected = np.outer(a.sum(1), a.sum(0)) / m
    same = rows[:, None] == cols[None, :]
    return float(((a - expected) * same).sum() / m)


def bicluster_bundles(a: np.ndarray, max_bundles: int, *, random_state: int = 0, device: str = "auto"):
    """Biclusters of the non-negative (k_dst, k_src) matrix a.

    Returns (row masks (B, k_dst) bool, column masks (B, k_src) bool, tried counts (m,), modularity (m,)).
    Rows and columns that are all zero join no bicluster; count 1 (everything in one bundle) has
    modularity 0, so a split is taken only where it beats it by _MIN_GAIN.
    """
    from cnnvis.bicluster import spectral_cocluster

    nz_r, nz_c = np.flatnonzero(a.sum(1) > 0), np.flatnonzero(a.sum(0) > 0)
    if nz_r.size == 0 or nz_c.size == 0:
        return np.zeros((0, a.shape[0]), bool), np.zeros((0, a.shape[1]), bool), np.zeros(0, np.int64), np.zeros(0)
    sub = a[np.ix_(nz_r, nz_c)]
    n_max = min(sub.shape[0], sub.shape[1], max_bundles)
    tried, scores = [1], [0.0]
    best = (np.zeros(sub.shape[0], np.int64), np.zeros(sub.shape[1], np.int64))
    best_q = 0.0
    scaled = sub / sub.max()
    for n in range(2, n_max + 1):
        r, c = spectral_cocluster(scaled, n, random_state=random_state, device=device)
        q = bipartite_modularity(sub, r, c)
        tried.append(n)
        scores.append(q)
        if q > best_q + _MIN_GAIN:
            best, best_q = (r, c), q
    r, c = best
    rows, cols = [], []
    for lab in np.unique(np.concatenate([r, c])):
        rm, cm = np.zeros(a.shape[0], bool), np.zeros(a.shape[1], bool)
        rm[nz_r[r == lab]] = True
        cm[nz_c[c == lab]] = True
        if rm.any() and cm.any() and a[np.ix_(rm, cm)].sum() > 0:
            rows.append(rm)
            cols.append(cm)
    return (np.array(rows, bool).reshape(-1, a.shape[0]), np.array(cols, bool).reshape(-1, a.shape[1]),
            np.asarray(tried, np.int64), np.asarray(scores))


def make_bundle_set(src, dst, src_layer, dst_layer, pos, neg, grad, change, options) -> BundleSet:
    kw = dict(random_state=options.random_state, device=options.device)
    rp, cp, tp, qp = bicluster_bundles(pos, options.max_bundles, **kw)
    rn, cn, tn, qn = bicluster_bundles(neg, options.max_bundles, **kw)
    return finish_bundle_set(src, dst, src_layer, dst_layer, pos, neg, grad, change,
                             np.concatenate([np.ones(len(rp), np.int8), -np.ones(len(rn), np.int8)]),
                             np.concatenate([rp, rn]), np.concatenate([cp, cn]), tp, qp, tn, qn,
                             options.bundle_threshold)


def bundle_strength(pos, neg, sign, rows, cols) -> np.ndarray:
    """(B,) mean strength of each bundle's sign over its block of cluster pairs."""
    out = np.empty(sign.size)
    for i in range(sign.size):
        m = pos if sign[i] > 0 else neg
        out[i] = m[np.ix_(rows[i], cols[i])].mean()
    return out


def finish_bundle_set(src, dst, src_layer, dst_layer, pos, neg, grad, change, sign, rows, cols, tp, qp, tn, qn,
                      threshold) -> BundleSet:
    strength = bundle_strength(pos, neg, sign, rows, cols)
    top = strength.max() if strength.size else 0.0
    rel = strength / top if top > 0 else np.zeros_like(strength)
    return BundleSet(src=src, dst=dst, src_layer=src_layer, dst_layer=dst_layer, positive=pos, negative=neg,
                     gradient=grad, change=change, bundle_sign=sign.astype(np.int8), bundle_dst=rows,
                     bundle_src=cols, bundle_strength=strength, bundle_relative=rel, bundle_weak=rel < threshold,
                     n_tried_pos=tp, modularity_pos=qp, n_tried_neg=tn, modularity_neg=qn)


def bundle_sets_from(analysis, clusters, neurons, src_index: int, options) -> list[BundleSet]:
    """The bundle sets out of column src_index into every column its representative reaches."""
    graph, hist = analysis.graph, analysis.history
    lc, nc = clusters[src_index], neurons[src_index]
    rep_of = {c.representative: i for i, c in enumerate(clusters)}
    stops = set(rep_of) - {lc.representative}
    init = np.zeros((nc.labels.size, nc.n_clusters))
    init[np.arange(nc.labels.size), nc.labels] = 1.0
    flows = propagate(graph, lc.representative, init, stops)
    extra = {}
    if hist is not None and hist.edge_grad:
        for mode in ("edge_grad", "edge_change"):
            extra[mode] = propagate(graph, lc.representative, init, set(flows), mode=mode, history=hist)
    out = []
    for layer, (s, d) in flows.items():
        j = rep_of[layer]
        dn = neurons[j]
        pos, neg = cluster_matrices(s, d, dn.labels, dn.n_clusters, nc.sizes)
        mats = []
        for mode in ("edge_grad", "edge_change"):
            if mode in extra and layer in extra[mode]:
                gs, _ = extra[mode][layer]
                mats.append(cluster_matrices(gs, gs, dn.labels, dn.n_clusters, nc.sizes)[0])
            else:
                mats.append(np.zeros_like(pos))
        out.append(make_bundle_set(lc.name, clusters[j].name, lc.representative, layer, pos, neg, *mats, options))
    return out

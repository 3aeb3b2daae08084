"""Neuron clusters of a representative layer, and representative neurons per cluster.

Profiles: a neuron's mean activation per class, shifted so its minimum is not negative (layers before a
ReLU), then scaled to unit length, so neurons group by *which classes* excite them, not by how strongly.
Dead neurons (cnnvis.aggregate._dead: ReLU input <= 0 everywhere on every image) are set apart in their own
cluster before k-means runs on the others.
The number of clusters k is the one with the best mean silhouette (Rousseeuw 1987) on a fixed random sample,
among k_min..k_max, unless overridden.
Representatives: score = (typicality + importance) / 2, picked greedily with a penalty for similarity to
the ones already picked (maximal marginal relevance, Carbonell & Goldstein 1998), so they are typical,
important, and not near-duplicates.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnvis.aggregate._blas import one_blas_thread

from cnnvis.aggregate._dead import dead_mask
from cnnvis.aggregate._reorder import neuron_order
from cnnvis.aggregate._types import NeuronClusters

__all__ = ["normalise_profiles", "dead_neurons", "neuron_importance", "silhouette", "choose_k",
           "cluster_neurons", "representative_scores", "select_representatives", "relabel"]

_MMR_PENALTY = 0.5
_DUP_RADIUS = 0.1  # closer than this fraction of the cluster's median spread to a pick: a near-duplicate


def normalise_profiles(mean: np.ndarray) -> np.ndarray:
    """(C, K) float32 unit-length per-class profiles from a (K, C) matrix of class means (NaN -> 0)."""
    x = np.nan_to_num(np.asarray(mean, np.float64).T, nan=0.0, posinf=0.0, neginf=0.0)
    x = x - np.minimum(x.min(1, keepdims=True), 0.0)
    n = np.sqrt((x * x).sum(1, keepdims=True))
    return (x / np.where(n > 0, n, 1.0)).astype(np.float32)


def dead_neurons(analysis, layer: str) -> np.ndarray:
    """(C,) bool: the layer's dead neurons (cnnvis.aggregate._dead: ReLU input <= 0 everywhere on every image);
    all False for a layer without a ReLU."""
    m = dead_mask(analysis, layer)
    return m if m is not None else np.zeros(analysis.graph.layer(layer).n_neurons, bool)


def neuron_importance(analysis, layer: str, kind: str) -> np.ndarray:
    """(C,) float64 in 0..1: the chosen Importance field over its maximum; falls back to the mean class
    activation when the analysis has no importance for the layer."""
    imp = analysis.importance.get(layer)
    if imp is not None:
        v = np.asarray(getattr(imp, kind), np.float64)
    else:
        st = analysis.stats[layer]
        w = st.count.astype(np.float64)
        v = (np.nan_to_num(st.mean) * w[:, None]).sum(0) / max(w.sum(), 1.0)
    v = np.nan_to_num(np.abs(v), nan=0.0)
    m = v.max() if v.size else 0.0
    return v / m if m > 0 else np.zeros_like(v)


def silhouette(x: np.ndarray, labels: np.ndarray, d: np.ndarray | None = None) -> float:
    """Mean silhouette of the rows of x under labels (Euclidean); d: precomputed (n, n) distances."""
    if d is None:
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))
    k = int(labels.max()) + 1
    onehot = np.zeros((labels.size, k))
    onehot[np.arange(labels.size), labels] = 1
    sizes = onehot.sum(0)
    sums = d @ onehot  # (n, k) summed distance to each cluster
    own = sizes[labels]
    a = sums[np.arange(labels.size), labels] / np.maximum(own - 1, 1)
    other = np.where(sizes[None, :] > 0, sums / np.maximum(sizes[None, :], 1), np.inf)
    other[np.arange(labels.size), labels] = np.inf
    b = other.min(1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(np.mean(s[np.isfinite(s)])) if np.isfinite(s).any() else 0.0


def choose_k(x: np.ndarray, k_min: int, k_max: int, *, sample: int, random_state: int, device: str):
    """(best k, tried ks (m,), silhouettes (m,)) for the rows of x."""
    from cnnvis.compute import kmeans

    n = x.shape[0]
    rng = np.random.default_rng(random_state)
    xs = x[np.sort(rng.choice(n, sample, replace=False))] if n > sample else x
    # k above the sample's distinct profiles would leave empty clusters; keep at least k_min as a candidate
    hi = min(k_max, xs.shape[0] - 1, np.unique(xs, axis=0).shape[0])
    if hi < k_min:  # the sample cannot score any allowed count: take the smallest one, unscored
        k = min(k_min, n)
        return k, np.array([k], np.int64), np.array([np.nan])
    ks = np.arange(k_min, hi + 1)
    sq = (xs * xs).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * xs @ xs.T, 0))
    scores = np.empty(ks.size)
    with one_blas_thread():
        for i, k in enumerate(ks):
            lab = kmeans(xs, int(k), n_init=2, random_state=random_state, device=device).labels
            scores[i] = silhouette(xs, lab, d) if np.unique(lab).size > 1 else -1.0
    return int(ks[np.argmax(scores)]), ks.astype(np.int64), scores


def cluster_neurons(analysis, layer: str, options, class_rank: np.ndarray | None = None,
                    k: int | None = None) -> NeuronClusters:
    """Cluster the neurons of `layer` (k: live-cluster count, None for the options' override or automatic)."""
    from cnnvis.compute import kmeans

    st = analysis.stats[layer]
    prof = normalise_profiles(st.mean)
    C, K = prof.shape
    dead = dead_neurons(analysis, layer)
    live = np.flatnonzero(~dead)
    k_req = k if k is not None else options.k_override(layer)
    x = prof[live].astype(np.float64)
    n_distinct = np.unique(x, axis=0).shape[0] if live.size else 0
    if k_req is not None:
        k_live, source = min(int(k_req), max(n_distinct, 1)), "override"
        ks, scores = np.zeros(0, np.int64), np.zeros(0)
    elif n_distinct <= options.k_min:
        k_live, source = max(min(n_distinct, options.k_min), 1 if live.size else 0), "bound"
        ks, scores = np.zeros(0, np.int64), np.zeros(0)
    else:
        k_live, ks, scores = choose_k(x, options.k_min, options.k_max, sample=options.silhouette_sample,
                                      random_state=options.random_state, device=options.device)
        source = "silhouette"
    labels = np.empty(C, np.int64)
    if live.size:
        if k_live > 1:
            labels[live] = kmeans(x, k_live, n_init=4, random_state=options.random_state,
                                  device=options.device).labels
        else:
            labels[live] = 0
    imp = neuron_importance(analysis, layer, options.importance)
    # stable ids: live clusters by decreasing total importance, then the dead cluster last
    if live.size:
        tot = np.bincount(labels[live], weights=imp[live], minlength=k_live)
        rank = np.empty(k_live, np.int64)
        rank[np.lexsort((np.arange(k_live), -tot))] = np.arange(k_live)
        labels[live] = rank[labels[live]]
    dead_id = -1
    if dead.any():
        dead_id = k_live
        labels[dead] = dead_id
    n = k_live + (dead_id >= 0)
    return relabel(NeuronClusters(
        layer=layer, labels=labels, n_clusters=n, dead_cluster=dead_id, sizes=np.zeros(n, np.int64),
        centers=np.zeros((n, K)), profiles=prof, importance=imp, cluster_importance=np.zeros(n),
        representatives=np.full((n, 0), -1, np.int64), rep_typicality=np.zeros((n, 0)),
        rep_importance=np.zeros((n, 0)), rep_score=np.zeros((n, 0)), rep_redundancy=np.zeros((n, 0)),
        k_candidates=ks, k_scores=scores, k_source=source, order=np.arange(C, dtype=np.int64)),
        None, options.n_representatives, class_rank)


def relabel(nc: NeuronClusters, touched, n_rep: int, class_rank) -> NeuronClusters:
    """Recompute sizes, centers, importance sums, representatives and order for clusters `touched`
    (None: all) from nc.labels; rows of untouched clusters are kept."""
    n, K = nc.n_clusters, nc.profiles.shape[1]
    touched = np.arange(n) if touched is None else np.asarray(sorted(set(touched)), np.int64)
    sizes = np.bincount(nc.labels, minlength=n).astype(np.int64)
    cimp = np.bincount(nc.labels, weights=nc.importance, minlength=n)
    psum = np.zeros((n, K))
    np.add.at(psum, nc.labels, nc.profiles.astype(np.float64))
    centers = psum / np.maximum(sizes, 1)[:, None]
    if nc.dead_cluster >= 0:
        centers[nc.dead_cluster] = 0.0
    R = n_rep
    reps = np.full((n, R), -1, np.int64)
    tables = [np.full((n, R), np.nan) for _ in range(4)]
    old = (nc.representatives, nc.rep_typicality, nc.rep_importance, nc.rep_score, nc.rep_redundancy)
    if old[0].shape == (n, R):
        reps[:] = old[0]
        for t, o in zip(tables, old[1:]):
            t[:] = o
    for c in touched:
        members = np.flatnonzero(nc.labels == c)
        reps[c] = -1
        for t in tables:
            t[c] = np.nan
        if members.size == 0:
            continue
        sel, cols = select_representatives(nc.profiles[members].astype(np.float64), centers[c],
                                           nc.importance[members], R)
        reps[c, :sel.size] = members[sel]
        for t, v in zip(tables, cols):
            t[c, :sel.size] = v
    order = neuron_order(nc.profiles, nc.labels, class_rank) if class_rank is not None else nc.order
    return replace(nc, sizes=sizes, centers=centers, cluster_importance=cimp, representatives=reps,
                   rep_typicality=tables[0], rep_importance=tables[1], rep_score=tables[2],
                   rep_redundancy=tables[3], order=order)


def representative_scores(x: np.ndarray, center: np.ndarray, importance: np.ndarray):
    """(typicality, importance, score, distance to the center), each (n,), for the rows of x."""
    n = x.shape[0]
    dc = np.sqrt(((x - center) ** 2).sum(1))
    typ = 1.0 - dc / dc.max() if dc.max() > 0 else np.ones(n)
    imax = importance.max()
    imp = importance / imax if imax > 0 else np.zeros(n)
    return typ, imp, 0.5 * (typ + imp), dc


def select_representatives(x: np.ndarray, center: np.ndarray, importance: np.ndarray, r: int):
    """Indices (m,) into the rows of x (m <= r), and (typicality, importance, score, redundancy) (m,) each.

    typicality = 1 - distance to the center / the largest distance in the cluster; importance over the
    cluster's maximum; score = their mean; greedy picks maximise score - 0.5 * similarity to the closest
    pick so far, similarity = exp(-d^2 / (2 s^2)) with s the median distance to the center; neurons within
    0.1 s of a pick are skipped while others remain.
    """
    n = x.shape[0]
    typ, imp, score, dc = representative_scores(x, center, importance)
    s = np.median(dc)
    s = s if s > 0 else 1e-3  # identical profiles: any two picks count as near-duplicates
    sim = np.zeros(n)
    picked, redundancy = [], []
    avail = np.ones(n, bool)
    for _ in range(min(r, n)):
        gain = np.where(avail, score - _MMR_PENALTY * sim, -np.inf)
        j = int(np.argmax(gain))
        picked.append(j)
        redundancy.append(sim[j])
        avail[j] = False
        d2 = ((x - x[j]) ** 2).sum(1)
        sim = np.maximum(sim, np.exp(-d2 / (2 * s * s)))
        near = avail & (d2 <= (_DUP_RADIUS * s) ** 2)
        if (avail & ~near).any():  # near-duplicates only when nothing else is left
            avail &= ~near
    p = np.asarray(picked, np.int64)
    return p, (typ[p], imp[p], score[p], np.asarray(redundancy))

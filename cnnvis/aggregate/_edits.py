"""User edits: pure functions from one Aggregation to the next.

Each edit recomputes only what it touches: the edited column's NeuronClusters (only the clusters that
changed, for a neuron move) and the bundle sets into and out of the edited columns. Every other
LayerCluster, NeuronClusters and BundleSet of the result is the same object as in the input.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from cnnvis.aggregate._blas import one_blas_thread

from cnnvis.aggregate._aggregate import check_layer_k, sort_bundles
from cnnvis.aggregate._bundles import bundle_sets_from, finish_bundle_set
from cnnvis.aggregate._hierarchy import opened
from cnnvis.aggregate._layers import make_cluster
from cnnvis.aggregate._neurons import cluster_neurons, relabel, representative_scores
from cnnvis.aggregate._reorder import class_rank
from cnnvis.aggregate._series import column_series
from cnnvis.aggregate._types import Aggregation
from cnnvis.errors import CnnvisError

__all__ = ["move_neuron", "merge_bundles", "expand_layer_cluster", "collapse_layer_clusters", "set_cluster_count",
           "set_representative_layer", "set_representative_neurons"]


def _rebuild(analysis, agg: Aggregation, clusters, neurons, touched: set, options=None) -> Aggregation:
    """New Aggregation with bundle sets touching the columns named in `touched` recomputed.

    A source column is re-propagated when it is touched or had a set into a touched column; results that
    equal an old set (same ends, same matrices) keep the old object.
    """
    options = options or agg.options
    names = {c.name for c in clusters}
    old = {(b.src, b.dst): b for b in agg.bundles}
    sources = {c.name for c in clusters if c.name in touched}
    sources |= {b.src for b in agg.bundles if b.dst in touched and b.src in names}
    keep = [b for b in agg.bundles if b.src not in sources and b.src in names and b.dst in names
            and b.dst not in touched]
    pos = {c.name: i for i, c in enumerate(clusters)}
    for s in sorted(sources, key=pos.__getitem__):
        for b in bundle_sets_from(analysis, clusters, neurons, pos[s], options):
            o = old.get((b.src, b.dst))
            same = (o is not None and o.src_layer == b.src_layer and o.dst_layer == b.dst_layer
                    and np.array_equal(o.positive, b.positive) and np.array_equal(o.negative, b.negative))
            keep.append(o if same else b)
    same_columns = len(clusters) == len(agg.layer_clusters) and all(
        a is b or a.layers == b.layers and a.representative == b.representative
        for a, b in zip(clusters, agg.layer_clusters))
    series = agg.series if same_columns and agg.series is not None else column_series(analysis, clusters)
    return replace(agg, layer_clusters=tuple(clusters), neurons=tuple(neurons),
                   bundles=sort_bundles(keep, clusters), options=options, series=series)


def _rep_column(agg: Aggregation, layer: str) -> int:
    for i, nc in enumerate(agg.neurons):
        if nc.layer == layer:
            return i
    agg.neuron_clusters(layer)  # raises naming the representatives
    raise AssertionError


@one_blas_thread()
def move_neuron(analysis, agg: Aggregation, layer: str, neuron: int, cluster: int) -> Aggregation:
    """Move neuron `neuron` of representative layer `layer` into cluster `cluster` (drag and drop)."""
    i = _rep_column(agg, layer)
    nc = agg.neurons[i]
    C = nc.labels.size
    if isinstance(neuron, bool) or not isinstance(neuron, (int, np.integer)) or not 0 <= neuron < C:
        raise CnnvisError(f"neuron must be an index in [0, {C - 1}] of layer {layer!r}, got {neuron!r}")
    if isinstance(cluster, bool) or not isinstance(cluster, (int, np.integer)) or not 0 <= cluster < nc.n_clusters:
        raise CnnvisError(f"cluster must be in [0, {nc.n_clusters - 1}] for layer {layer!r}, got {cluster!r}")
    was = int(nc.labels[neuron])
    if was == cluster:
        return agg
    labels = nc.labels.copy()
    labels[neuron] = cluster
    new = relabel(replace(nc, labels=labels, k_source="edit"), {was, int(cluster)}, agg.options.n_representatives,
                  class_rank(agg.class_order))
    neurons = list(agg.neurons)
    neurons[i] = new
    return _rebuild(analysis, agg, agg.layer_clusters, neurons, {agg.layer_clusters[i].name})


def merge_bundles(agg: Aggregation, src, dst, a: int, b: int) -> Aggregation:
    """Merge bundles a and b (of one sign) of the set from column src to column dst into one bundle whose
    clusters are the union of both; its strength is recomputed over the union block."""
    bs = agg.bundle_set(src, dst)
    n = bs.n_bundles
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
            raise CnnvisError(f"bundle {name} must be in [0, {n - 1}] for {bs.src} -> {bs.dst}, got {v!r}")
    if a == b:
        raise CnnvisError(f"cannot merge bundle {a} with itself")
    if bs.bundle_sign[a] != bs.bundle_sign[b]:
        raise CnnvisError(f"bundles {a} and {b} of {bs.src} -> {bs.dst} have opposite signs and cannot merge")
    lo, hi = min(a, b), max(a, b)
    keep = np.array([j for j in range(n) if j != hi])
    rows, cols = bs.bundle_dst[keep].copy(), bs.bundle_src[keep].copy()
    rows[lo] |= bs.bundle_dst[hi]
    cols[lo] |= bs.bundle_src[hi]
    new = finish_bundle_set(bs.src, bs.dst, bs.src_layer, bs.dst_layer, bs.positive, bs.negative, bs.gradient,
                            bs.change, bs.bundle_sign[keep], rows, cols, bs.n_tried_pos, bs.modularity_pos,
                            bs.n_tried_neg, bs.modularity_neg, agg.options.bundle_threshold)
    return replace(agg, bundles=tuple(new if x is bs else x for x in agg.bundles))


def set_cluster_count(analysis, agg: Aggregation, layer: str, k: int | None) -> Aggregation:
    """Recluster representative layer `layer` into k live clusters (None: choose automatically again)."""
    i = _rep_column(agg, layer)
    over = dict(agg.options.n_clusters)
    if k is None:
        over.pop(layer, None)
    else:
        over[layer] = check_layer_k(analysis, layer, k)
    opts = replace(agg.options, n_clusters=tuple(sorted(over.items())))
    neurons = list(agg.neurons)
    neurons[i] = cluster_neurons(analysis, layer, opts, class_rank(agg.class_order))
    return _rebuild(analysis, agg, agg.layer_clusters, neurons, {agg.layer_clusters[i].name}, opts)


def set_representative_layer(analysis, agg: Aggregation, column, layer: str) -> Aggregation:
    """Show layer `layer` (a member of the column) as the column's representative."""
    i = agg.column(column)
    lc = agg.layer_clusters[i]
    if layer not in lc.layers:
        raise CnnvisError(f"layer {layer!r} is not in layer cluster {lc.name!r} (layers: {', '.join(lc.layers)})")
    if layer not in analysis.stats:
        raise CnnvisError(f"layer {layer!r} has no activation statistics and cannot represent {lc.name!r}")
    if layer == lc.representative:
        return agg
    clusters, neurons = list(agg.layer_clusters), list(agg.neurons)
    clusters[i] = replace(lc, representative=layer)
    neurons[i] = cluster_neurons(analysis, layer, agg.options, class_rank(agg.class_order))
    return _rebuild(analysis, agg, clusters, neurons, {lc.name})


def set_representative_neurons(agg: Aggregation, layer: str, cluster: int, neurons) -> Aggregation:
    """Replace the representative neurons of one cluster by `neurons` (members of it, best first); their
    typicality, importance and score are the automatic rule's, their redundancy NaN (not a greedy pick)."""
    i = _rep_column(agg, layer)
    nc = agg.neurons[i]
    if isinstance(cluster, bool) or not isinstance(cluster, (int, np.integer)) or not 0 <= cluster < nc.n_clusters:
        raise CnnvisError(f"cluster must be in [0, {nc.n_clusters - 1}] for layer {layer!r}, got {cluster!r}")
    sel = np.asarray(neurons, np.int64).ravel()
    R = nc.representatives.shape[1]
    if sel.size == 0 or sel.size > R or np.unique(sel).size != sel.size:
        raise CnnvisError(f"give 1 to {R} distinct neurons for cluster {cluster} of {layer!r}, got {sel.tolist()}")
    outside = sel[(sel < 0) | (sel >= nc.labels.size) | (nc.labels[np.clip(sel, 0, nc.labels.size - 1)] != cluster)]
    if outside.size:
        raise CnnvisError(f"neurons {outside.tolist()} are not in cluster {cluster} of layer {layer!r}")
    members = np.flatnonzero(nc.labels == cluster)
    # typicality, importance and score of the chosen neurons as the automatic rule computes them
    cols = representative_scores(nc.profiles[members].astype(np.float64), nc.centers[cluster],
                                 nc.importance[members])
    where = {int(m): k for k, m in enumerate(members)}
    tables = [t.copy() for t in (nc.representatives, nc.rep_typicality, nc.rep_importance, nc.rep_score,
                                 nc.rep_redundancy)]
    tables[0][cluster] = -1
    for t in tables[1:]:
        t[cluster] = np.nan
    tables[0][cluster, :sel.size] = sel
    for t, v in zip(tables[1:4], cols[:3]):
        t[cluster, :sel.size] = [v[where[int(s)]] for s in sel]
    new = replace(nc, representatives=tables[0], rep_typicality=tables[1], rep_importance=tables[2],
                  rep_score=tables[3], rep_redundancy=tables[4])
    out = list(agg.neurons)
    out[i] = new
    return replace(agg, neurons=tuple(out))


@one_blas_thread()
def expand_layer_cluster(analysis, agg: Aggregation, column, *, neurons=None) -> Aggregation:
    """Replace a column by the columns it opens into (`LayerCluster.children`: a stage its blocks, a block its
    weighted layers; collapse_layer_clusters undoes it). neurons: an optional {layer: NeuronClusters} of
    clusterings made earlier for these options and class order (a background precomputation), used where
    they hold a new column's representative."""
    i = agg.column(column)
    lc = agg.layer_clusters[i]
    new_clusters = list(opened(lc))
    if not new_clusters:
        raise CnnvisError(f"layer cluster {lc.name!r} is one weighted layer with its normalisation and "
                          "activation; nothing to expand")
    rank = class_rank(agg.class_order)
    known = dict(neurons or {})
    known[lc.representative] = agg.neurons[i]
    new_neurons = [known.get(c.representative) or cluster_neurons(analysis, c.representative, agg.options, rank)
                   for c in new_clusters]
    clusters = list(agg.layer_clusters[:i]) + new_clusters + list(agg.layer_clusters[i + 1:])
    neurons_ = list(agg.neurons[:i]) + new_neurons + list(agg.neurons[i + 1:])
    return _rebuild(analysis, agg, clusters, neurons_, {c.name for c in new_clusters} | {lc.name})


@one_blas_thread()
def collapse_layer_clusters(analysis, agg: Aggregation, first, last=None) -> Aggregation:
    """Merge the consecutive columns first..last into one (default: the columns expanded from the same
    cluster as `first`, restoring that cluster and its representative)."""
    a = agg.column(first)
    src = agg.layer_clusters[a].expanded_from
    if last is None:
        if src is None:
            raise CnnvisError(f"layer cluster {agg.layer_clusters[a].name!r} was not expanded; give the last "
                              "column to collapse")
        idx = [j for j, c in enumerate(agg.layer_clusters) if c.expanded_from is src]
        a, b = min(idx), max(idx)
    else:
        b = agg.column(last)
        if b < a:
            a, b = b, a
    if a == b:
        raise CnnvisError(f"collapse needs at least two columns, got only {agg.layer_clusters[a].name!r}")
    span = agg.layer_clusters[a:b + 1]
    old_names = {c.name for c in span}
    if all(c.expanded_from is src for c in span) and src is not None and \
            set(src.layers) == {n for c in span for n in c.layers}:
        merged = src
    else:
        units = [u for c in span for u in c.units]
        merged = make_cluster(analysis.graph, analysis, units, f"collapsed by the user from {len(span)} columns")
        taken = {c.name for c in agg.layer_clusters} - old_names
        if merged.name in taken:
            merged = replace(merged, name=f"{merged.name}#{a}")
    prev = [nc for nc in agg.neurons[a:b + 1] if nc.layer == merged.representative]
    nc = prev[0] if prev else cluster_neurons(analysis, merged.representative, agg.options,
                                              class_rank(agg.class_order))
    clusters = list(agg.layer_clusters[:a]) + [merged] + list(agg.layer_clusters[b + 1:])
    neurons = list(agg.neurons[:a]) + [nc] + list(agg.neurons[b + 1:])
    return _rebuild(analysis, agg, clusters, neurons, old_names | {merged.name})

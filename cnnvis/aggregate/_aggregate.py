"""`aggregate`: layer clusters -> neuron clusters -> class order -> bundles, parameters checked up front."""
from __future__ import annotations

from dataclasses import replace
from numbers import Integral, Real

import numpy as np

from cnnvis.aggregate._bundles import bundle_sets_from
from cnnvis.aggregate._layers import cluster_layers
from cnnvis.aggregate._neurons import cluster_neurons
from cnnvis.aggregate._reorder import class_order, neuron_order
from cnnvis.aggregate._series import column_series
from cnnvis.aggregate._types import IMPORTANCE_KINDS, AggregateOptions, Aggregation
from cnnvis.errors import CnnvisError

__all__ = ["aggregate", "make_options", "check_layer_k"]


def _int(name, v, low, high=None):
    if isinstance(v, bool) or not isinstance(v, Integral) or v < low or (high is not None and v > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise CnnvisError(f"{name} must be an integer in {rng}, got {v!r}")
    return int(v)


def _real(name, v, low, high):
    if isinstance(v, bool) or not isinstance(v, Real) or not (low <= v <= high):
        raise CnnvisError(f"{name} must be a number in [{low}, {high}], got {v!r}")
    return float(v)


def check_layer_k(analysis, layer, k) -> int:
    """A per-layer cluster count: the layer exists, has statistics, and k is in [1, its neurons]."""
    lay = analysis.graph.layer(layer)  # raises naming the missing layer
    if layer not in analysis.stats:
        raise CnnvisError(f"layer {layer!r} has no activation statistics in the analysis, so its neurons "
                          "cannot be clustered")
    n = lay.n_neurons
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= n:
        raise CnnvisError(f"n_clusters for layer {layer!r} must be an integer in [1, {n}] (the layer has {n} "
                          f"neurons), got {k!r}")
    return int(k)


def make_options(analysis, *, k_min=2, k_max=12, n_clusters=None, n_representatives=9, merge_layers=True,
                 layer_similarity=0.8, importance="contribution", bundle_threshold=0.05, max_bundles=4,
                 silhouette_sample=512, include_input=False, random_state=0, device="auto",
                 max_columns=12) -> AggregateOptions:
    k_min = _int("k_min", k_min, 1)
    k_max = _int("k_max", k_max, k_min)
    overrides = {}
    for layer, k in dict(n_clusters or {}).items():
        overrides[layer] = check_layer_k(analysis, layer, k)
    if importance not in IMPORTANCE_KINDS:
        raise CnnvisError(f"importance must be one of {', '.join(IMPORTANCE_KINDS)}, got {importance!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise CnnvisError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return AggregateOptions(
        k_min=k_min, k_max=k_max, n_clusters=tuple(sorted(overrides.items())),
        n_representatives=_int("n_representatives", n_representatives, 1),
        merge_layers=bool(merge_layers), layer_similarity=_real("layer_similarity", layer_similarity, -1.0, 1.0),
        importance=importance, bundle_threshold=_real("bundle_threshold", bundle_threshold, 0.0, 1.0),
        max_bundles=_int("max_bundles", max_bundles, 1),
        silhouette_sample=_int("silhouette_sample", silhouette_sample, 16),
        include_input=bool(include_input), random_state=_int("random_state", random_state, 0), device=device,
        max_columns=_int("max_columns", max_columns, 1))


def aggregate(analysis, **options) -> Aggregation:
    """Aggregate an Analysis: layer clusters, neuron clusters with representatives, class order, bundles.

    Options (see AggregateOptions): k_min=2, k_max=12, n_clusters={layer: k}, n_representatives=9,
    merge_layers=True, layer_similarity=0.8, importance="contribution", bundle_threshold=0.05,
    max_bundles=4, silhouette_sample=512, include_input=False, random_state=0, device="auto", max_columns=12.
    Raises CnnvisError naming the parameter (and layer) for bad values.
    """
    opts = make_options(analysis, **options)
    clusters = cluster_layers(analysis, merge=opts.merge_layers, threshold=opts.layer_similarity,
                              include_input=opts.include_input, max_columns=opts.max_columns)
    if not clusters:
        raise CnnvisError("the analysis has no layer with activation statistics to aggregate")
    neurons = [cluster_neurons(analysis, c.representative, opts) for c in clusters]
    order, cost = class_order([nc.profiles for nc in neurons])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    neurons = [replace(nc, order=neuron_order(nc.profiles, nc.labels, rank)) for nc in neurons]
    bundles = []
    for i in range(len(clusters)):
        bundles.extend(bundle_sets_from(analysis, clusters, neurons, i, opts))
    return Aggregation(layer_clusters=tuple(clusters), neurons=tuple(neurons), bundles=sort_bundles(bundles, clusters),
                       class_order=order, class_order_cost=cost, options=opts,
                       series=column_series(analysis, clusters))


def sort_bundles(bundles, clusters) -> tuple:
    pos = {c.name: i for i, c in enumerate(clusters)}
    return tuple(sorted(bundles, key=lambda b: (pos[b.dst], pos[b.src])))


def class_rank(agg: Aggregation) -> np.ndarray:
    rank = np.empty_like(agg.class_order)
    rank[agg.class_order] = np.arange(agg.class_order.size)
    return rank

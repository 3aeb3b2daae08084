"""`aggregate`: layer clusters -> neuron clusters -> class order -> bundles, parameters checked up front."""
from __future__ import annotations

from dataclasses import replace

from cnnvis._params import DEVICE, SEED, Interval, Options, validate
from cnnvis.aggregate._blas import one_blas_thread
from cnnvis.aggregate._bundles import bundle_sets_from
from cnnvis.aggregate._layers import cluster_layers
from cnnvis.aggregate._neurons import cluster_neurons
from cnnvis.aggregate._reorder import class_order, class_rank, neuron_order
from cnnvis.aggregate._series import column_series
from cnnvis.aggregate._types import IMPORTANCE_KINDS, AggregateOptions, Aggregation
from cnnvis.errors import CnnvisError

__all__ = ["aggregate", "make_options", "check_layer_k"]


# aggregate()'s parameters (AggregateOptions), checked in table order: k_max's bound is the checked k_min.
_PARAMETERS = {
    "k_min": Interval(1), "k_max": Interval("k_min"), "n_representatives": Interval(1),
    "layer_similarity": Interval(-1.0, 1.0, integer=False), "importance": Options(IMPORTANCE_KINDS),
    "bundle_threshold": Interval(0.0, 1.0, integer=False), "max_bundles": Interval(1),
    "silhouette_sample": Interval(16), "random_state": SEED, "device": DEVICE, "max_columns": Interval(1)}


def check_layer_k(analysis, layer, k) -> int:
    """A per-layer cluster count: the layer exists, has statistics, and k is in [1, its neurons]."""
    lay = analysis.graph.layer(layer)  # raises naming the missing layer
    if layer not in analysis.stats:
        raise CnnvisError(f"layer {layer!r} has no activation statistics in the analysis, so its neurons "
                          "cannot be clustered")
    name = f"n_clusters[{layer!r}]"
    return validate({name: Interval(1, "n_neurons")}, {name: k}, limits={"n_neurons": lay.n_neurons})[name]


def make_options(analysis, *, k_min=2, k_max=12, n_clusters=None, n_representatives=9, merge_layers=True,
                 layer_similarity=0.8, importance="contribution", bundle_threshold=0.05, max_bundles=4,
                 silhouette_sample=512, include_input=False, random_state=0, device="auto",
                 max_columns=12) -> AggregateOptions:
    p = validate(_PARAMETERS, dict(
        k_min=k_min, k_max=k_max, n_representatives=n_representatives, layer_similarity=layer_similarity,
        importance=importance, bundle_threshold=bundle_threshold, max_bundles=max_bundles,
        silhouette_sample=silhouette_sample, random_state=random_state, device=device, max_columns=max_columns))
    overrides = {layer: check_layer_k(analysis, layer, k) for layer, k in dict(n_clusters or {}).items()}
    return AggregateOptions(n_clusters=tuple(sorted(overrides.items())), merge_layers=bool(merge_layers),
                            include_input=bool(include_input), **p)


@one_blas_thread()
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
    rank = class_rank(order)
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

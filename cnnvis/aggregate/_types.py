"""Results of the aggregation: frozen dataclasses of numpy arrays (shapes and dtypes in the docstrings)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnvis.errors import CnnvisError

__all__ = ["AggregateOptions", "LayerCluster", "NeuronClusters", "BundleSet", "Aggregation"]

IMPORTANCE_KINDS = ("contribution", "mean_activation", "max_activation")


@dataclass(frozen=True)
class AggregateOptions:
    """Parameters of `aggregate` (validated there).

    k_min, k_max: bounds of the automatic number of live-neuron clusters per layer. n_clusters: ((layer, k),
    ...) per-layer overrides. n_representatives: representative neurons per cluster. merge_layers: merge runs
    of alike blocks; layer_similarity: the linear-CKA threshold for it. importance: which `Importance` field ranks
    neurons. bundle_threshold: bundles weaker than this fraction of the strongest bundle of their layer pair
    are weak (hidden). max_bundles: most biclusters per sign and layer pair. silhouette_sample: neurons
    sampled to score each candidate k. include_input: give the input layer a column. max_columns: most
    layer clusters in the first view (cnnvis.aggregate._hierarchy).
    """

    k_min: int = 2
    k_max: int = 12
    n_clusters: tuple = ()
    n_representatives: int = 9
    merge_layers: bool = True
    layer_similarity: float = 0.8
    importance: str = "contribution"
    bundle_threshold: float = 0.05
    max_bundles: int = 4
    silhouette_sample: int = 512
    include_input: bool = False
    random_state: int = 0
    device: str = "auto"
    max_columns: int = 12

    def k_override(self, layer: str) -> int | None:
        return dict(self.n_clusters).get(layer)


@dataclass(frozen=True)
class LayerCluster:
    """Consecutive layers of the DAG shown as one column.

    name: unique column name. layers: member layer names in topological order. representative: the layer
    whose neurons are clustered and drawn. default_representative: the automatic choice. units: the member
    layers grouped into units (a weighted layer with its batch norm / activation / pool ...). why: how the
    cluster was formed. similarity (n_blocks - 1,) float64: linear CKA between consecutive merged blocks
    (empty when nothing was merged). expanded_from: the cluster this one was expanded from, or None.
    children: what the column opens into (a stage its blocks, a block its layers; empty for one weighted
    layer with its normalisation and activation, which does not open).
    """

    name: str
    layers: tuple[str, ...]
    representative: str
    default_representative: str
    units: tuple[tuple[str, ...], ...]
    why: str
    similarity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    expanded_from: "LayerCluster | None" = None
    children: tuple = ()


@dataclass(frozen=True)
class NeuronClusters:
    """Neuron clusters of one representative layer with C neurons, K classes and n clusters.

    labels (C,) int64 in [0, n): cluster of every neuron; dead_cluster: id of the cluster of neurons that
    never fire (-1 when there are none; it is the last id). sizes (n,) int64. centers (n, K) float64: mean
    normalised profile (zeros for the dead or an empty cluster). profiles (C, K) float32: normalised
    per-class activation profiles (the k-means input). importance (C,) float64 in 0..1: the neuron's
    importance over the layer's maximum. cluster_importance (n,) float64: sum of member importance.
    representatives (n, R) int64: neuron indices, best first, -1 padded; rep_typicality, rep_importance,
    rep_score, rep_redundancy (n, R) float64 (NaN padded): closeness to the centroid (1 at the centroid),
    importance within the cluster (1 for its most important neuron), the combined score, and the
    similarity to the representatives picked before it. k_candidates (m,) int64 and k_scores (m,) float64:
    the cluster counts tried and their silhouette on a sample; k_source: "silhouette", "override", "bound"
    (too few live neurons to choose) or "edit". order (C,) int64: neurons for the activation matrix facet,
    grouped by cluster id, by class barycenter within a cluster.
    """

    layer: str
    labels: np.ndarray
    n_clusters: int
    dead_cluster: int
    sizes: np.ndarray
    centers: np.ndarray
    profiles: np.ndarray
    importance: np.ndarray
    cluster_importance: np.ndarray
    representatives: np.ndarray
    rep_typicality: np.ndarray
    rep_importance: np.ndarray
    rep_score: np.ndarray
    rep_redundancy: np.ndarray
    k_candidates: np.ndarray
    k_scores: np.ndarray
    k_source: str
    order: np.ndarray

    @property
    def n_live_clusters(self) -> int:
        return self.n_clusters - (self.dead_cluster >= 0)

    def why(self) -> str:
        k = self.n_live_clusters
        if self.k_source == "silhouette":
            tried = ", ".join(f"k={a}: {b:.3f}" for a, b in zip(self.k_candidates, self.k_scores))
            s = f"{k} clusters: best silhouette on a sample ({tried})"
        elif self.k_source == "override":
            s = f"{k} clusters: set by the user"
        elif self.k_source == "edit":
            s = f"{k} clusters: edited by the user"
        else:
            s = f"{k} clusters: bounded by the number of live neurons"
        if self.dead_cluster >= 0:
            nd = int(self.sizes[self.dead_cluster])
            s += f"; {nd} dead neuron{'s' * (nd != 1)} (never active) in cluster {self.dead_cluster}"
        return s


@dataclass(frozen=True)
class BundleSet:
    """Bundled connections from column `src` (k_src neuron clusters) to column `dst` (k_dst clusters).

    src_layer, dst_layer: the representative layers joined (paths through non-representative layers are
    followed). positive, negative (k_dst, k_src) float64 >= 0: mean positive / negative connection strength
    per neuron pair between two clusters (signs of path products; path strengths are products of the
    kernel-summed weights along the path, summed over paths). gradient, change (k_dst, k_src) float64: the
    same path sums over the training history's per-edge |dL/dW| and relative change (zeros without
    history). Bundles, B rows: bundle_sign (B,) int8 +1/-1; bundle_dst (B, k_dst) bool and bundle_src (B,
    k_src) bool: the bicluster's clusters; bundle_strength (B,) float64: mean strength over the
    bicluster's cluster pairs; bundle_relative (B,) float64 in 0..1: over the strongest bundle of this set;
    bundle_weak (B,) bool: under the threshold. n_tried_pos/neg, modularity_pos/neg (m,): bicluster counts
    tried and their bipartite modularity (Barber 2007), the criterion for the count.
    """

    src: str
    dst: str
    src_layer: str
    dst_layer: str
    positive: np.ndarray
    negative: np.ndarray
    gradient: np.ndarray
    change: np.ndarray
    bundle_sign: np.ndarray
    bundle_dst: np.ndarray
    bundle_src: np.ndarray
    bundle_strength: np.ndarray
    bundle_relative: np.ndarray
    bundle_weak: np.ndarray
    n_tried_pos: np.ndarray
    modularity_pos: np.ndarray
    n_tried_neg: np.ndarray
    modularity_neg: np.ndarray

    @property
    def n_bundles(self) -> int:
        return int(self.bundle_sign.shape[0])

    def why(self) -> str:
        parts = []
        for sign, n, q in (("positive", self.n_tried_pos, self.modularity_pos),
                           ("negative", self.n_tried_neg, self.modularity_neg)):
            nb = int((self.bundle_sign == (1 if sign == "positive" else -1)).sum())
            if n.size:
                tried = ", ".join(f"{a}: {b:.3f}" for a, b in zip(n, q))
                parts.append(f"{nb} {sign} bundle{'s' * (nb != 1)} (bipartite modularity by count: {tried})")
            else:
                parts.append(f"{nb} {sign} bundle{'s' * (nb != 1)}")
        return f"{self.src} -> {self.dst}: " + "; ".join(parts) + f"; {int(self.bundle_weak.sum())} weak"


@dataclass(frozen=True)
class Aggregation:
    """The aggregated network.

    layer_clusters: the columns, in topological order. neurons: the NeuronClusters of each column's
    representative layer (aligned with layer_clusters). bundles: one BundleSet per pair of connected
    columns, ordered by (dst, src) column. class_order (K,) int64: class display order shared by the view
    (spectral seriation); class_order_cost (2,) float64: the linear-arrangement cost of the class
    similarity before (identity order) and after. options: the parameters used. series: the chart's
    per-column series (cnnvis.aggregate._series.ColumnSeries), or None.
    """

    layer_clusters: tuple
    neurons: tuple
    bundles: tuple
    class_order: np.ndarray
    class_order_cost: np.ndarray
    options: AggregateOptions
    series: object = None

    # -- lookup ---------------------------------------------------------------------------------------
    def column(self, key) -> int:
        """Index of a column by index, column name or member layer name."""
        n = len(self.layer_clusters)
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= key < n:
                raise CnnvisError(f"layer cluster index must be in [0, {n - 1}], got {key}")
            return int(key)
        for i, lc in enumerate(self.layer_clusters):
            if lc.name == key:
                return i
        for i, lc in enumerate(self.layer_clusters):
            if key in lc.layers:
                return i
        names = ", ".join(lc.name for lc in self.layer_clusters)
        raise CnnvisError(f"no layer cluster or layer named {key!r} in the aggregation (columns: {names})")

    def neuron_clusters(self, layer: str) -> NeuronClusters:
        """The NeuronClusters of a representative layer."""
        for nc in self.neurons:
            if nc.layer == layer:
                return nc
        reps = ", ".join(nc.layer for nc in self.neurons)
        raise CnnvisError(f"layer {layer!r} is not a representative layer (representatives: {reps})")

    def bundle_set(self, src, dst) -> BundleSet:
        s, d = self.layer_clusters[self.column(src)].name, self.layer_clusters[self.column(dst)].name
        for b in self.bundles:
            if b.src == s and b.dst == d:
                return b
        raise CnnvisError(f"no connections from layer cluster {s!r} to {d!r}")

    def explain(self) -> str:
        """Why every column, neuron cluster count and bundle count is what it is, one line each."""
        lines = []
        for lc, nc in zip(self.layer_clusters, self.neurons):
            lines.append(f"{lc.name}: {lc.why}; representative layer {lc.representative}")
            lines.append(f"  {nc.layer}: {nc.why()}")
        for b in self.bundles:
            lines.append(b.why())
        c0, c1 = self.class_order_cost
        lines.append(f"class order: spectral seriation, arrangement cost {c0:.3g} -> {c1:.3g}")
        return "\n".join(lines)

"""Synthetic analyses with planted structure, for tests and benchmarks of the aggregation and layout.

Every conv/linear "unit" (the weighted layer and its batch norm / ReLU / pool) gets planted neuron clusters:
each live neuron follows one of a few class-activation prototypes (times a random per-neuron scale, plus
noise); a planted fraction of neurons is dead (never active). Units of one *family* (a VGG group, a ResNet
stage) share their prototypes, so their layer-level activation profiles are alike. Each weighted connection
is a planted block matrix: strength[i, j] = B[label_dst[i], label_src[j]] + noise, with B holding a few
positive and negative blocks.

    net = synthetic_network("resnet50")          # ~26,000 conv neurons, widths up to 2048
    net = synthetic_network([32, 32, 64, 64])    # a chain of conv units, equal widths = one family
    net.analysis, net.labels[layer], net.blocks[(dst, src)]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnvis.analysis._analysis import Analysis, Importance, LearnedFeatures, TrainingHistory
from cnnvis.compute._types import ClassStatistics
from cnnvis.errors import CnnvisError
from cnnvis.graph._network import Connection, Layer, NetworkGraph

__all__ = ["SyntheticNetwork", "synthetic_network", "synthetic_analysis", "RESNET50_STAGES", "VGG_GROUPS"]

# (blocks, bottleneck width, output width) per stage, as torchvision's resnet50.
RESNET50_STAGES = ((3, 64, 256), (4, 128, 512), (6, 256, 1024), (3, 512, 2048))
# (convs, width) per group: the paper's BaseCNN.
VGG_GROUPS = ((2, 96), (2, 128), (3, 256), (3, 512))


@dataclass(frozen=True)
class SyntheticNetwork:
    """A synthetic Analysis and the truth planted in it.

    labels[layer] (C,) int64: planted neuron cluster of every layer with stats, -1 for dead neurons.
    blocks[(dst, src)] (n_row_groups, n_col_groups) float64: the planted block matrix B of a weighted
    connection (rows: planted clusters of dst, then one row for dead neurons; columns likewise for src).
    family[layer] str: the family (group/stage) whose prototypes the layer follows.
    """

    analysis: Analysis
    labels: dict
    blocks: dict
    family: dict


class _Builder:
    def __init__(self, rng, n_classes, n_clusters, dead, noise, patch, top_k, spatial):
        self.rng, self.K, self.n_clusters, self.dead, self.noise = rng, n_classes, n_clusters, dead, noise
        self.patch, self.top_k, self.spatial = patch, top_k, spatial
        self.layers, self.conns, self.stats, self.features, self.importance = [], [], {}, {}, {}
        self.labels, self.blocks, self.family = {}, {}, {}
        self.protos: dict[str, np.ndarray] = {}
        self.planted_bundles = 0

    # -- planted structure -------------------------------------------------------------------------
    def prototypes(self, family: str) -> np.ndarray:
        """(n_clusters, K): class-selective prototypes, each strong on its own few classes."""
        if family not in self.protos:
            p = 0.05 + 0.1 * self.rng.random((self.n_clusters, self.K))
            for i in range(self.n_clusters):
                hot = self.rng.choice(self.K, size=max(1, self.K // 4), replace=False)
                p[i, hot] += 0.6 + 0.4 * self.rng.random(hot.size)
            self.protos[family] = p
        return self.protos[family]

    def unit_profile(self, width: int, family: str):
        """Planted labels (C,) and class statistics of a unit's neurons."""
        rng, K = self.rng, self.K
        n_dead = int(round(self.dead * width)) if width >= 8 else 0
        labels = rng.integers(0, self.n_clusters, width)
        labels[rng.choice(width, n_dead, replace=False)] = -1
        protos = self.prototypes(family)
        scale = np.exp(0.4 * rng.standard_normal(width))
        live = labels >= 0
        mean = np.zeros((K, width))
        mean[:, live] = (protos[labels[live]] * (1 + self.noise * rng.standard_normal((live.sum(), K)))).T
        mean = np.maximum(mean, 0) * scale
        count = np.full(K, 100, np.int64)
        active = np.where(live, np.clip(0.3 + mean / (mean.max(0, keepdims=True) + 1e-12), 0, 1), 0.0)
        st = ClassStatistics(count=count, mean=mean, std=0.3 * mean, max=3.0 * mean, active=active)
        contribution = np.where(live, scale * (0.5 + rng.random(width)), 0.0)
        imp = Importance(mean_activation=mean.mean(0), max_activation=st.max.max(0), contribution=contribution,
                         classes=tuple(range(K)))
        return labels, st, imp

    def block_matrix(self, n_rows: int, n_cols: int) -> np.ndarray:
        """Planted (n_rows + 1, n_cols + 1) block strengths; the last row/column (dead neurons) is 0.

        Random signs per block, or, with planted_bundles = m > 0, m positive biclusters: row cluster i and
        column cluster j are joined (strength 1..1.5) when they fall in the same of m random groups."""
        b = np.zeros((n_rows + 1, n_cols + 1))
        shape = (n_rows, n_cols)
        if self.planted_bundles:
            m = self.planted_bundles
            gr = self.rng.permutation(np.arange(n_rows) % m)
            gc = self.rng.permutation(np.arange(n_cols) % m)
            b[:n_rows, :n_cols] = (gr[:, None] == gc[None, :]) * (1.0 + 0.5 * self.rng.random(shape))
            return b
        r = self.rng.random(shape)
        b[:n_rows, :n_cols] = np.where(r < 0.3, 1.0, np.where(r < 0.5, -1.0, 0.0)) * (0.5 + self.rng.random(shape))
        return b

    # -- graph -----------------------------------------------------------------------------------------
    def add(self, name, kind, width, inputs, op="", spatial=None, stats_from=None, conn="identity",
            weight=None):
        sp = self.spatial if spatial is None else spatial
        shape = (width,) + ((sp, sp) if sp else ())
        self.layers.append(Layer(name=name, kind=kind, n_neurons=width, inputs=tuple(inputs), shape=shape, op=op))
        for src in inputs:
            if conn == "weight":
                w, m = weight
                self.conns.append(Connection(name, src, "weight", w, m))
            else:
                self.conns.append(Connection(name, src, "identity"))
        if stats_from is not None:
            self.stats[name], self.importance[name], self.labels[name] = stats_from[1], stats_from[2], stats_from[0]
        return name

    def weighted(self, dst_labels, src_name, key):
        """Planted signed and magnitude matrices (n_dst, n_src) float32 for dst <- src."""
        src_labels = self.labels[src_name]
        b = self.block_matrix(self.n_clusters, self.n_clusters)
        self.blocks[key] = b
        rows = np.where(dst_labels < 0, self.n_clusters, dst_labels)
        cols = np.where(src_labels < 0, self.n_clusters, src_labels)
        w = b[rows][:, cols].astype(np.float32)
        w += np.float32(0.05) * self.rng.standard_normal(w.shape, dtype=np.float32)
        m = np.abs(w)
        m += np.float32(0.05)  # a kernel's sum of |W| is at least |sum W|
        return w, m

    def unit(self, name, width, src, family, *, kind="conv", bn=True, relu=True, pool=False, spatial=None):
        """A weighted layer with its batch norm, ReLU and pool; returns the name of its last layer."""
        prof = self.unit_profile(width, family)
        w = self.weighted(prof[0], src, (name, src))
        self.add(name, kind, width, [src], op="Conv2d" if kind == "conv" else "Linear",
                 spatial=0 if kind == "linear" else spatial, stats_from=prof, conn="weight", weight=w)
        self.family[name] = family
        self.features[name] = self.learned_features(prof[0])
        last = name
        for suffix, k, on, op in (("bn", "batchnorm", bn, "BatchNorm2d"), ("relu", "activation", relu, "ReLU"),
                                  ("pool", "pool", pool, "MaxPool2d")):
            if on:
                last = self.add(f"{name}.{suffix}", k, width, [last], op=op,
                                spatial=0 if kind == "linear" else spatial, stats_from=prof)
                self.family[last] = family
                self.features[last] = self.features[name]
        return last

    def learned_features(self, labels) -> LearnedFeatures:
        """Patches coloured by planted cluster so a rendering shows the clusters."""
        C, k, P = labels.size, self.top_k, self.patch
        hue = (np.where(labels < 0, 0, labels + 1) * 67 % 256).astype(np.uint8)
        patches = np.empty((C, k, P, P, 3), np.uint8)
        patches[...] = hue[:, None, None, None, None]
        patches[..., 1] = np.uint8(120)
        patches[:, :, ::2, ::2, 2] = np.uint8(230)  # a texture, so patches are not flat
        scores = np.sort(self.rng.random((C, k)).astype(np.float32), axis=1)[:, ::-1].copy()
        image_index = self.rng.integers(0, 1000, (C, k))
        boxes = np.tile(np.array([0, 0, P, P], np.int32), (C, k, 1))
        return LearnedFeatures(patches=patches, scores=scores, image_index=image_index, boxes=boxes)


def synthetic_network(widths="resnet50", *, n_classes: int = 10, n_clusters: int = 4, dead: float = 0.05,
                      noise: float = 0.05, patch_size: int = 8, top_k: int = 1, n_snapshots: int = 4,
                      edge_history: bool = True, width_scale: float = 1.0, planted_bundles: int = 0,
                      seed: int = 0) -> SyntheticNetwork:
    """Build a synthetic network and its Analysis with planted clusters and block connection matrices.

    widths: "resnet50" (torchvision's ResNet-50 channel profile: stem, 16 bottleneck blocks with downsample
    shortcuts, residual adds, fc), "vgg" (the paper's BaseCNN groups), or a list of conv widths (a chain;
    a run of equal widths is one family unless the families are given: an entry may be a pair (width,
    family name)). n_clusters: planted clusters per unit, plus dead neurons (a fraction `dead`).
    edge_history: also plant per-edge gradient/change matrices (2 more matrices per weighted connection).
    planted_bundles: plant that many positive biclusters in every weighted connection's block matrix (0:
    random signs per block). width_scale multiplies the widths of "resnet50" and "vgg" (at least 1).
    """
    if not isinstance(n_classes, int) or n_classes < 2:
        raise CnnvisError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if not isinstance(n_clusters, int) or n_clusters < 1:
        raise CnnvisError(f"n_clusters must be an integer >= 1, got {n_clusters!r}")
    if not width_scale > 0:
        raise CnnvisError(f"width_scale must be > 0, got {width_scale!r}")
    sw = lambda w: max(1, int(round(w * width_scale)))  # noqa: E731
    rng = np.random.default_rng(seed)
    b = _Builder(rng, n_classes, n_clusters, dead, noise, patch_size, top_k, spatial=4)
    b.planted_bundles = int(planted_bundles)
    prof0 = b.unit_profile(3, "input")
    b.add("input", "input", 3, [], op="input", spatial=32, stats_from=prof0)
    b.family["input"] = "input"
    if isinstance(widths, str) and widths == "resnet50":
        last = _resnet50(b, sw)
    elif isinstance(widths, str) and widths == "vgg":
        last = "input"
        for g, (n, c) in enumerate(VGG_GROUPS, start=1):
            for i in range(1, n + 1):
                last = b.unit(f"conv{g}_{i}", sw(c), last, f"group{g}", bn=False, pool=(i == n))
        last = b.unit("fc1", sw(512), last, "fc1", kind="linear", bn=False)
    else:
        try:
            spec = [(int(w[0]), str(w[1])) if isinstance(w, (tuple, list)) else (int(w), None) for w in widths]
        except (TypeError, ValueError, IndexError):
            raise CnnvisError(f"widths must be 'resnet50', 'vgg' or a list of integers or (width, family) pairs, "
                              f"got {widths!r}") from None
        if not spec or min(w for w, _ in spec) < 1:
            raise CnnvisError(f"widths must be a non-empty list of positive integers, got {widths!r}")
        last, fam = "input", 0
        for i, (w, family) in enumerate(spec):
            fam += int(i == 0 or w != spec[i - 1][0])
            last = b.unit(f"conv{i + 1}", w, last, family or f"group{fam}")
    b.unit("fc", n_classes, last, "fc", kind="linear", bn=False, relu=False)
    graph = NetworkGraph(layers=tuple(b.layers), connections=tuple(b.conns))
    history = _history(b, graph, n_snapshots, edge_history)
    analysis = Analysis(graph=graph, class_names=tuple(f"class{k}" for k in range(n_classes)), stats=b.stats,
                        features=b.features, importance=b.importance, history=history,
                        meta=dict(model=f"synthetic-{widths if isinstance(widths, str) else 'chain'}",
                                  dataset="synthetic", n_images=100 * n_classes, seed=seed))
    return SyntheticNetwork(analysis=analysis, labels=b.labels, blocks=b.blocks, family=b.family)


def synthetic_analysis(widths="resnet50", **kw) -> Analysis:
    """The Analysis of `synthetic_network(widths, **kw)`."""
    return synthetic_network(widths, **kw).analysis


def _resnet50(b: _Builder, sw) -> str:
    last = b.unit("conv1", sw(64), "input", "stem", pool=True, spatial=8)
    for s, (n_blocks, mid, out) in enumerate(RESNET50_STAGES, start=1):
        mid, out = sw(mid), sw(out)
        fam = f"layer{s}"
        for i in range(n_blocks):
            p = f"layer{s}.{i}"
            x = b.unit(f"{p}.conv1", mid, last, fam)
            x = b.unit(f"{p}.conv2", mid, x, fam)
            x = b.unit(f"{p}.conv3", out, x, fam, relu=False)
            short = last
            if i == 0:
                short = b.unit(f"{p}.downsample.0", out, last, fam, relu=False)
            # The add and the ReLU after it carry the block's output profile (same planted labels as conv3).
            prof = (b.labels[x], b.stats[x], b.importance[x])
            add = b.add(f"{p}.add", "add", out, [x, short], op="add", stats_from=prof)
            last = b.add(f"{p}.relu", "activation", out, [add], op="ReLU", stats_from=prof)
            for n in (add, last):
                b.family[n] = fam
                b.features[n] = b.features[f"{p}.conv3"]
    pool = b.add("avgpool", "pool", sw(2048), [last], op="AdaptiveAvgPool2d", spatial=1,
                 stats_from=(b.labels[last], b.stats[last], b.importance[last]))
    flat = b.add("flatten", "flatten", sw(2048), [pool], op="flatten", spatial=0,
                 stats_from=(b.labels[last], b.stats[last], b.importance[last]))
    for n in (pool, flat):
        b.family[n] = "layer4"
        b.features[n] = b.features[last]
    return flat


def _history(b: _Builder, graph: NetworkGraph, n_snapshots: int, edge_history: bool) -> TrainingHistory | None:
    if n_snapshots < 1:
        return None
    rng = b.rng
    weighted = graph.weighted_layers()
    S, L = n_snapshots, len(weighted)
    decay = np.exp(-np.arange(S))[:, None]
    grad_mean = (1e-3 * (1 + rng.random((1, L)))) * (0.2 + decay)
    rel_change = 0.05 * (1 + rng.random((1, L))) * (0.1 + decay)
    rel_change[0] = np.nan
    edge_grad, edge_change = {}, {}
    if edge_history:
        for c in graph.connections:
            if c.mode == "weight":
                edge_grad[(c.dst, c.src)] = (c.magnitude * np.float32(1e-3)).astype(np.float32)
                edge_change[(c.dst, c.src)] = np.full(c.weight.shape, np.float32(0.01) * (1 + rng.random()),
                                                      np.float32)
    return TrainingHistory(snapshots=tuple(f"epoch{t}" for t in range(S)), layers=weighted, grad_mean=grad_mean,
                           rel_change=rel_change, loss=np.linspace(2.3, 0.2, S), edge_grad=edge_grad,
                           edge_change=edge_change)

"""Neuron-level findings from the activation statistics: dead neurons and redundant (near-identical) neurons.

dead-neurons. For every layer that feeds a ReLU (`cnnvis.aggregate._dead`, the one definition the viewer draws
too: ReLU, ReLU6, F.relu; not leaky
ReLU, PReLU, ELU ..., whose neurons keep a gradient below zero), a neuron is dead when the fraction of the
analysed images on which its ReLU input is positive at any position is at most `Thresholds.dead_active`
(default 0: the ReLU input is <= 0 on every image, so the ReLU outputs zero and passes no gradient; the
paper's inactive neurons of BaseCNN). One finding per layer lists the dead neurons; where the aggregation
is known, `cluster` is the neuron cluster it made of them (the viewer's dead cluster). Evidence:
n_dead, n_neurons, dead_share, n_images, max_relu_input (the largest ReLU input any dead neuron received:
<= 0). Severity: high when at least 25% of the layer is dead, medium from 5%, low below.

redundant-neurons. In every conv and hidden linear layer (not the last weighted layer, whose neurons are
the outputs), each neuron's profile is its per-class mean and std of the spatial-mean activation and its
per-class maximum of the spatial max, after the layer's activation function (the layer itself where no
activation follows it): 3K numbers, the row of the viewer's activation matrix with its spread and peak. Two live neurons are near-identical when the L2
difference of their profiles is at most `Thresholds.redundant_difference` (default 5%) of the larger
profile's norm and, where the layer's input has at least 3 neurons, the cosine of their incoming
kernel-summed weights (the signed kernel sum per input neuron) is at least
`Thresholds.redundant_weight_cosine` (default 0.9). Groups are formed by complete linkage, so every pair in a
group meets both conditions (the paper's "many neurons with very similar activations" of LeNet x 4).
One finding per group; evidence: n_members, n_neurons, max_difference (largest relative difference of two
members), similarity (1 - max_difference), min_weight_cosine where checked. Severity: medium for groups of 3
or more, low for pairs. Dead neurons (all-zero profiles) are the dead-neurons kind, not redundant ones.
Layers wider than MAX_PAIRWISE (4096) neurons are skipped with a note.
"""
from __future__ import annotations

import numpy as np

from cnnvis.aggregate._dead import relu_inputs
from cnnvis.diagnose._context import Context, fmt_neurons, plural
from cnnvis.diagnose._findings import Finding

MAX_PAIRWISE = 4096  # (C, C) float64 matrices: 128 MB each at this width

__all__ = ["dead_neurons", "redundant_neurons", "profiles", "relative_differences", "weight_cosines",
           "complete_linkage_groups", "profile_layer"]


# -- dead neurons ------------------------------------------------------------------------------------------
def dead_neurons(ctx: Context) -> list[Finding]:
    a, thr = ctx.analysis, ctx.thresholds
    out = []
    for layer in relu_inputs(a.graph):
        st = a.stats.get(layer)
        if st is None:
            continue
        n_images = int(st.count.sum())
        if n_images == 0:
            continue
        active = st.overall_active()
        dead = np.flatnonzero(active <= thr.dead_active)
        if dead.size == 0:
            continue
        seen = st.count > 0
        max_in = float(np.max(st.max[np.ix_(seen, dead)]))
        C = st.n_neurons
        share = dead.size / C
        ev = dict(n_dead=int(dead.size), n_neurons=C, dead_share=share, n_images=n_images, max_relu_input=max_in)
        cluster = _dead_cluster(ctx, layer, dead)
        if cluster >= 0:
            ev["dead_cluster"] = cluster
        severity = "high" if share >= 0.25 else "medium" if share >= 0.05 else "low"
        never = "never fire" if thr.dead_active == 0 else f"fire on at most {thr.dead_active:.1%} of the images"
        msg = (f"{layer}: {dead.size} of {C} neurons ({fmt_neurons(dead)}) {never}: their ReLU input is <= 0 on "
               f"all {n_images} images (largest {max_in:.3g}), so they learn nothing; try leaky ReLU, a lower "
               f"learning rate or another initialisation")
        out.append(Finding(kind="dead-neurons", severity=severity, score=share, layer=layer, neurons=tuple(dead),
                           evidence=ev, message=msg, facet="matrix", clusters=ctx.columns([layer]),
                           cluster=cluster))
    return out


def _dead_cluster(ctx: Context, layer: str, dead: np.ndarray) -> int:
    """The aggregation's dead cluster in the column of `layer` when it holds exactly these neurons."""
    agg = ctx.aggregation
    if agg is None:
        return -1
    for lc, nc in zip(agg.layer_clusters, agg.neurons):
        if layer in lc.layers and nc.dead_cluster >= 0 and nc.labels.size == ctx.analysis.graph.layer(layer).n_neurons:
            members = np.flatnonzero(nc.labels == nc.dead_cluster)
            if np.array_equal(members, dead):
                return int(nc.dead_cluster)
    return -1


# -- redundant neurons ---------------------------------------------------------------------------------------
def profile_layer(analysis, layer: str) -> str:
    """The activation function's output when `layer` feeds exactly one, of the same width; else `layer`."""
    g = analysis.graph
    succ = g.successors(layer)
    if len(succ) == 1:
        s = g.layer(succ[0])
        if s.kind == "activation" and s.n_neurons == g.layer(layer).n_neurons and s.name in analysis.stats:
            return s.name
    return layer


def profiles(stats) -> np.ndarray:
    """(C, 3K') float64: per-class mean, std and max of each neuron, over the K' classes with images."""
    seen = stats.count > 0
    return np.concatenate([stats.mean[seen].T, stats.std[seen].T, stats.max[seen].T], axis=1).astype(np.float64)


def relative_differences(p: np.ndarray) -> np.ndarray:
    """(C, C) ||p_i - p_j|| / max(||p_i||, ||p_j||) (0 on the diagonal; 0 for two zero profiles)."""
    sq = (p * p).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (p @ p.T), 0.0)
    n = np.sqrt(sq)
    den = np.maximum(n[:, None], n[None, :])
    out = np.where(den > 0, np.sqrt(d2) / np.where(den > 0, den, 1.0), 0.0)
    np.fill_diagonal(out, 0.0)
    return out


def weight_cosines(analysis, layer: str) -> np.ndarray | None:
    """(C, C) cosine of the neurons' incoming signed kernel sums (one per input neuron), or None when the
    inputs have fewer than 3 neurons in all (so few numbers say little about the kernels). The sums of |w|
    are left out: they are all positive and alike, so they would make any two rows look similar."""
    g = analysis.graph
    rows = [c.weight for c in g.connections if c.dst == layer and c.mode == "weight" and c.weight is not None]
    if not rows or sum(r.shape[1] for r in rows) < 3:
        return None
    w = np.concatenate(rows, axis=1).astype(np.float64)
    n = np.linalg.norm(w, axis=1)
    w = w / np.where(n > 0, n, 1.0)[:, None]
    return w @ w.T


def complete_linkage_groups(dist: np.ndarray) -> list[np.ndarray]:
    """Groups (index arrays, size >= 2) whose members are pairwise within distance 1 (complete linkage
    cut at 1), among the rows of the symmetric (n, n) matrix that have a partner within 1."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    off = dist + np.diag(np.full(dist.shape[0], np.inf))
    cand = np.flatnonzero(off.min(1) <= 1.0)
    if cand.size < 2:
        return []
    sub = dist[np.ix_(cand, cand)].copy()
    np.fill_diagonal(sub, 0.0)
    labels = fcluster(linkage(squareform(sub, checks=False), method="complete"), t=1.0, criterion="distance")
    groups = [cand[labels == lab] for lab in np.unique(labels)]
    return sorted((g for g in groups if g.size >= 2), key=lambda g: int(g[0]))


def redundant_neurons(ctx: Context) -> list[Finding]:
    a, thr = ctx.analysis, ctx.thresholds
    g = a.graph
    weighted = [l.name for l in g.layers if l.kind in ("conv", "linear")]
    relu_in = set(relu_inputs(a.graph))
    out = []
    for layer in weighted[:-1]:
        src = profile_layer(a, layer)
        st = a.stats.get(src)
        if st is None or st.n_neurons < 2:
            continue
        if st.n_neurons > MAX_PAIRWISE:
            ctx.notes.append(f"{layer}: {st.n_neurons} neurons, more than the {MAX_PAIRWISE} whose pairs the "
                             "redundant-neurons check compares: skipped")
            continue
        p = profiles(st)
        keep = np.linalg.norm(p, axis=1) > 0
        if layer in relu_in:  # dead ReLU neurons are all alike (zero): the other kind
            keep &= st.overall_active() > 0
        live = np.flatnonzero(keep)
        if live.size < 2:
            continue
        diff = relative_differences(p[live])
        dist = diff / thr.redundant_difference
        cos = weight_cosines(a, layer)
        if cos is not None:
            cos = cos[np.ix_(live, live)]
            dist = np.maximum(dist, (1.0 - cos) / max(1.0 - thr.redundant_weight_cosine, 1e-12))
        for grp in complete_linkage_groups(dist):
            members = live[grp]
            block = diff[np.ix_(grp, grp)]
            worst = float(block.max())
            ev = dict(n_members=int(members.size), n_neurons=st.n_neurons, max_difference=worst,
                      similarity=1.0 - worst)
            how = f"within {worst:.1%} of each other"
            if cos is not None:
                mc = float(cos[np.ix_(grp, grp)].min())
                ev["min_weight_cosine"] = mc
                how += f", incoming weights' cosine >= {mc:.3f}"
            where = layer if src == layer else f"{layer} (after {src})"
            msg = (f"{where}: {plural(members.size, 'neuron')} ({fmt_neurons(members)}) have near-identical "
                   f"per-class activations ({how}); the layer may be wider than it needs to be")
            out.append(Finding(kind="redundant-neurons", severity="medium" if members.size >= 3 else "low",
                               score=(members.size - 1) / st.n_neurons, layer=layer, neurons=tuple(members),
                               evidence=ev, message=msg, facet="matrix", clusters=ctx.columns([layer])))
    return out

"""positive-weights: conv layers, or groups of consecutive conv layers, whose kernel weights are mostly positive.

The analysis keeps, per pair of neurons (output i, input j) of a conv layer, the kernel's signed sum
S_ij = sum w and its absolute sum A_ij = sum |w| (`Connection.weight`, `.magnitude`). The positive part of the
kernel is exactly (A_ij + S_ij) / 2, so the share of the layer's weight mass that is positive is

    positive_fraction = sum_ij (A_ij + S_ij) / (2 sum_ij A_ij)        (0.5: balanced, 1: all positive)

computed exactly from what the file stores (it weights each weight by |w|; the plain count of positive
weights is not recoverable from the sums). A *group* is a maximal run of consecutive conv layers (in
topological order) with the same output resolution, i.e. not separated by pooling or a stride: the paper's
"group of convolutional layers" (DeepLeNet's stacks of 4, BaseCNN's VGG groups). A group of 2 or more layers
whose pooled fraction is at least `Thresholds.positive_fraction` (default 0.7: positive weights carry 2.3x
the mass of negative ones) is one finding; a conv layer at or above the threshold outside such a group is a
finding of its own. Consecutive layers that are nearly all positive compute a close-to-linear function of
their input (ReLU rarely cuts), so the group is redundant (the paper's DeepLeNet finding).
Evidence: positive_fraction, rest_positive_fraction (the same figure pooled over every other conv layer;
absent when there is none), min_layer_fraction, n_layers. Severity: high from 0.85, else medium.
"""
from __future__ import annotations

import numpy as np

from cnnvis.diagnose._context import Context, plural
from cnnvis.diagnose._findings import Finding

__all__ = ["positive_weights", "weight_mass", "conv_groups"]


def weight_mass(analysis, layer: str) -> tuple[float, float]:
    """(positive mass, total mass sum |w|) of a layer's kernels, from its weight connections."""
    pos = tot = 0.0
    for c in analysis.graph.connections:
        if c.dst == layer and c.mode == "weight" and c.weight is not None:
            a = np.asarray(c.magnitude, np.float64)
            s = np.asarray(c.weight, np.float64)
            pos += float(np.clip(0.5 * (a + s), 0.0, a).sum())  # clip: float32 rounding at a = |s|
            tot += float(a.sum())
    return pos, tot


def conv_groups(analysis) -> list[list[str]]:
    """Maximal runs of consecutive conv layers with the same output resolution, in order."""
    convs = [l for l in analysis.graph.layers if l.kind == "conv"]
    groups: list[list[str]] = []
    prev = None
    for l in convs:
        if prev is not None and l.spatial == prev.spatial:
            groups[-1].append(l.name)
        else:
            groups.append([l.name])
        prev = l
    return groups


def positive_weights(ctx: Context) -> list[Finding]:
    a, thr = ctx.analysis, ctx.thresholds
    mass = {l: weight_mass(a, l) for grp in conv_groups(a) for l in grp}
    mass = {l: m for l, m in mass.items() if m[1] > 0}
    total_pos = sum(m[0] for m in mass.values())
    total = sum(m[1] for m in mass.values())

    def finding(layers):
        pos = sum(mass[l][0] for l in layers)
        tot = sum(mass[l][1] for l in layers)
        frac = pos / tot
        fracs = [mass[l][0] / mass[l][1] for l in layers]
        ev = dict(positive_fraction=frac, min_layer_fraction=min(fracs), n_layers=len(layers))
        rest = total - tot
        if rest > 0:
            ev["rest_positive_fraction"] = (total_pos - pos) / rest
            than = f"against {ev['rest_positive_fraction']:.0%} in the rest of the network"
        else:
            than = "(no other conv layer to compare with)"
        what = (f"the group {layers[0]}..{layers[-1]} ({plural(len(layers), 'conv layer')})" if len(layers) > 1
                else f"{layers[0]}")
        msg = (f"{what}: {frac:.0%} of the kernel weight mass is positive {than}; mostly positive consecutive "
               f"layers act close to linearly, so the group is likely redundant: try fewer layers")
        return Finding(kind="positive-weights", severity="high" if frac >= 0.85 else "medium", score=frac,
                       layer=layers[0], layers=tuple(layers), neurons=(), evidence=ev, message=msg,
                       facet="edges", clusters=ctx.columns(layers))

    out = []
    for grp in conv_groups(a):
        grp = [l for l in grp if l in mass]
        if not grp:
            continue
        if len(grp) >= 2 and sum(mass[l][0] for l in grp) / sum(mass[l][1] for l in grp) >= thr.positive_fraction:
            out.append(finding(grp))
            continue
        out.extend(finding([l]) for l in grp if mass[l][0] / mass[l][1] >= thr.positive_fraction)
    return out

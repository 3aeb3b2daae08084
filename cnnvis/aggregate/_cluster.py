"""One layer cluster from its units: its representative layer and its name (shared by the similarity
clusters of `_layers` and the module tree of `_hierarchy`)."""
from __future__ import annotations

import os

import numpy as np

from cnnvis.aggregate._types import LayerCluster

__all__ = ["default_representative", "make_cluster"]

# Which member best stands for a column: the output of the nonlinearity, then the merge/pool outputs.
_KIND_RANK = {"activation": 3, "pool": 2, "add": 2, "concat": 2, "conv": 1, "linear": 1, "batchnorm": 1}


def default_representative(graph, layers, analysis, last_unit=()) -> str:
    """The member with stats that best stands for the column: a layer of the last unit (it closes the
    cluster, so every path through the cluster passes it: a block's merge, a group's last ReLU), then layers
    with learned features, then the kind rank (activation > pool/add/concat > conv/linear/batchnorm), then
    the last one."""
    best, best_key = None, None
    for pos, name in enumerate(layers):
        if name not in analysis.stats:
            continue
        key = (name in last_unit, name in analysis.features, _KIND_RANK.get(graph.layer(name).kind, 0), pos)
        if best_key is None or key > best_key:
            best, best_key = name, key
    return best


def _prefix(names) -> str:
    p = os.path.commonprefix(list(names))
    cut = max(p.rfind("."), p.rfind("_"))
    # keep the prefix only where it ends at a separator of every name ("layer1.", "conv3_")
    return p[:cut] if cut > 0 and all(len(n) > cut and n[cut] in "._" for n in names) else ""


def _common_name(names) -> str:
    if len(names) == 1:
        return names[0]
    p = _prefix(names)
    if not p:
        # torch.fx names functional ops by their function alone ("add_2" for a Bottleneck's `out += identity`):
        # a stage of residual blocks is then named by its modules' path ("layer1"), not "layer1.0.conv1–add_2"
        dotted = [n for n in names if "." in n]
        p = _prefix(dotted) if len(dotted) >= 2 else ""
    return p or f"{names[0]}\u2013{names[-1]}"


def make_cluster(graph, analysis, units, why, similarity=None, name=None, expanded_from=None, children=()):
    layers = tuple(n for u in units for n in u)
    order = {n: i for i, n in enumerate(graph.names)}
    layers = tuple(sorted(layers, key=order.__getitem__))
    if len(units) == 1:
        # one weighted layer and what follows it: a join folded in stands for its other inputs too (a
        # concatenation is wider), so the representative is the layer's own output at its own width
        head = next((n for n in units[0] if graph.layer(n).kind in ("conv", "linear")), units[0][0])
        width = graph.layer(head).n_neurons
        own = tuple(n for n in layers if graph.layer(n).n_neurons == width
                    and graph.layer(n).kind not in ("add", "concat"))
        rep = default_representative(graph, own, analysis, own) or default_representative(graph, layers, analysis)
    else:
        rep = default_representative(graph, layers, analysis, tuple(units[-1]))
    heads = [u[0] for u in units]
    return LayerCluster(name=name or _common_name(heads), layers=layers, representative=rep,
                        default_representative=rep, units=tuple(tuple(u) for u in units), why=why,
                        similarity=np.asarray(similarity if similarity is not None else [], np.float64),
                        expanded_from=expanded_from, children=tuple(children))

"""The one definition of a dead neuron, shared by the aggregation (its dead cluster), the layout (the chart's
dead fraction, the dead fills the viewer draws) and `cnnvis diagnose`.

A neuron is dead when its ReLU (ReLU, ReLU6, F.relu) input is <= 0 at every position of every analysed image:
the ReLU then outputs zero everywhere and passes no gradient back, so it learns nothing. That is known for a
layer that feeds a ReLU (from its own statistics: active on no image), for the ReLU's output (zero exactly
where its input is <= 0) and for the pools, dropouts and flattens that follow that output one to one. For
any other layer (no ReLU; a leaky ReLU, SiLU, sigmoid, GELU ..., whose neurons keep a gradient below zero)
"dead" does not apply: `dead_mask` gives None and nothing is drawn dead.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RELU_OPS", "is_relu", "relu_inputs", "dead_mask", "dead_reason"]

RELU_OPS = frozenset({"relu", "relu6", "f.relu", "torch.relu", "f.relu6"})
_FOLLOWERS = frozenset({"pool", "dropout", "flatten"})   # one to one after a ReLU: zero stays zero


def is_relu(layer) -> bool:
    op = layer.op.lower().removeprefix("aten.").removesuffix(".default").rstrip("_")
    return layer.kind == "activation" and op in RELU_OPS


def relu_inputs(graph) -> tuple[str, ...]:
    """Layers whose output feeds a ReLU, in graph order (the layers `cnnvis diagnose` checks)."""
    out: dict = {}
    for l in graph.layers:
        if is_relu(l):
            out.update(dict.fromkeys(l.inputs))
    return tuple(out)


def _relu_source(graph, name: str, feeds: set) -> str | None:
    """The layer whose statistics say whether `name`'s neurons are dead, or None where dead does not apply."""
    if name in feeds:
        return name
    l = graph.layer(name)
    while True:
        if is_relu(l) and len(l.inputs) == 1:
            return l.inputs[0] if graph.layer(l.inputs[0]).n_neurons == l.n_neurons else l.name
        if l.kind in _FOLLOWERS and len(l.inputs) == 1 and graph.layer(l.inputs[0]).n_neurons == l.n_neurons:
            l = graph.layer(l.inputs[0])
            continue
        return None


def dead_mask(analysis, layer: str, *, feeds: set | None = None) -> np.ndarray | None:
    """(C,) bool: the neurons of `layer` that are dead (see the module docstring), or None where the layer
    has no ReLU to be dead by. feeds: relu_inputs(graph) as a set, when the caller has it already."""
    g = analysis.graph
    src = _relu_source(g, layer, set(relu_inputs(g)) if feeds is None else feeds)
    st = analysis.stats.get(src) if src is not None else None
    if st is None:
        return None
    return ~(np.nan_to_num(st.overall_active(), nan=0.0) > 0)


def dead_reason(analysis, layer: str) -> str:
    """Why the neurons of `layer` can or cannot be dead, in words (for the chart's n/a and the legend)."""
    if _relu_source(analysis.graph, layer, set(relu_inputs(analysis.graph))) is None:
        return "no ReLU: its neurons cannot be dead"
    return "dead: ReLU input <= 0 at every position of every image"

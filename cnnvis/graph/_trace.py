"""A captured model (cnnvis.graph._capture: torch.fx, else torch.export) as a NetworkGraph: layers, neurons,
neuron-to-neuron strengths. A neuron is a channel wherever the channel sits (NCHW maps, NHWC tensors after a
permute, the last axis of a Linear over a 3-D/4-D tensor); a layer's `shape` is always (channels, *spatial)."""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from cnnvis.errors import ModelError
from cnnvis.graph._capture import Capture, Site, capture
from cnnvis.graph._network import Connection, Layer, NetworkGraph

__all__ = ["from_torch", "Traced", "trace", "weight_matrices"]

_MODULE_KINDS = (
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), "conv"),
    ((nn.Linear,), "linear"),
    ((nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm), "batchnorm"),
    ((nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
      nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Softmax,
      nn.LogSoftmax), "activation"),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
      nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
      nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), "pool"),
    ((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout), "dropout"),
    ((nn.Flatten,), "flatten"),
)
# Functions and methods by name (torch.fx gives Python callables and method names, torch.export aten ops).
_FUNCTION_KINDS = {
    "add": "add", "iadd": "add", "add_": "add",
    "cat": "concat", "concat": "concat",
    "flatten": "flatten", "view": "flatten", "reshape": "flatten", "_unsafe_view": "flatten",
    **{f: "activation" for f in ("relu", "relu_", "relu6", "leaky_relu", "gelu", "silu", "elu", "sigmoid",
                                 "tanh", "softmax", "_softmax", "log_softmax", "_log_softmax", "hardswish",
                                 "hardsigmoid", "mish", "hardtanh", "softplus")},
    **{f: "pool" for f in ("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "avg_pool1d",
                           "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
                           "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "adaptive_max_pool2d")},
    "dropout": "dropout", "dropout2d": "dropout", "feature_dropout": "dropout",
}
_METHODS_ONLY = {"relu", "sigmoid", "tanh", "softmax", "add", "add_", "flatten", "view", "reshape"}


@dataclass
class Traced:
    """What the analysis needs beyond the graph: the captured module, each layer's node, the axis its
    channels sit on in the node's output (batch axis included: 1 for NCHW), and its site."""

    graph: NetworkGraph
    module: fx.GraphModule
    nodes: dict  # layer name -> fx.Node
    axes: dict = field(default_factory=dict)   # layer name -> channel axis of the node's output tensor
    sites: dict = field(default_factory=dict)  # layer name -> Site
    method: str = "fx"


def from_torch(model: nn.Module, example_input: torch.Tensor) -> NetworkGraph:
    """Capture `model` on `example_input` (a batch, N >= 1; 2 or more keeps export's batch free) into a
    NetworkGraph.

    Layers come in topological order; a layer's name is the module's qualified name for a module call
    (name_1, name_2 ... for further calls) and the node's name for a function call. Raises ModelError naming
    why a model cannot be captured.
    """
    return trace(model, example_input).graph


def trace(model: nn.Module, example_input: torch.Tensor, method: str = "auto") -> Traced:
    """The graph and what the analysis runs; method: "auto" (torch.fx, else torch.export), "fx", "export"."""
    cap = capture(model, example_input, method)
    layers, nodes, axes, sites, conns = [], {}, {}, {}, []
    node_layer: dict[fx.Node, str] = {}  # node -> layer name, for nodes that are layers
    by_name: dict[str, Layer] = {}
    names = _LayerNames(cap.modules)
    for node, site in cap.sites.items():
        kind = _classify(site)
        src_nodes = _layer_inputs(node, node_layer)
        if site.op != "input" and not src_nodes:
            continue  # computed from constants only: not part of the data flow
        parts = _concat_parts(node, node_layer, cap.sites) if kind == "concat" else None
        if kind == "concat" and parts is None:
            kind = "other"
        src_names = tuple(node_layer[s] for s in src_nodes)
        neuron_shape = _neuron_shape(site)
        if kind == "flatten":
            src = cap.sites.get(src_nodes[0]) if src_nodes else None
            if src is not None and len(src.shape) > 1 and len(site.shape) == 1 and src.axis == 0:
                neuron_shape = src.shape  # keep the channels of the flattened map as neurons
            else:
                kind = "other"
        name = names.take(site)
        layer = Layer(name=name, kind=kind, n_neurons=int(neuron_shape[0]), inputs=src_names,
                      shape=tuple(int(s) for s in neuron_shape), op=site.op, module=site.module_path)
        layers.append(layer)
        by_name[name] = layer
        nodes[name], axes[name], sites[name] = node, (site.axis + 1 if kind != "flatten" else 1), site
        node_layer[node] = name
        for pos, src in enumerate(src_nodes):
            conns.append(_connect(layer, by_name[node_layer[src]], site, cap.sites, src_nodes, pos, parts))
    graph = NetworkGraph(layers=tuple(layers), connections=tuple(conns))
    return Traced(graph=graph, module=cap.module, nodes=nodes, axes=axes, sites=sites, method=cap.method)


def _neuron_shape(site: Site) -> tuple[int, ...]:
    if not site.shape:
        return (1,)
    k = site.axis
    return (site.shape[k], *site.shape[:k], *site.shape[k + 1:])


class _LayerNames:
    """Layer names: a module's qualified name for its first call, then name_1, name_2, ... in call order (a
    reused module, like torchvision Bottleneck's one `relu` called three times, gives one layer per call);
    the node's name for a function call. A generated name that another layer already has is skipped."""

    def __init__(self, modules: dict):
        self.calls: dict[str, int] = {}
        self.taken: set[str] = set()
        self.reserved = set(modules)  # qualified module names: a suffixed call never takes one

    def take(self, site: Site) -> str:
        if not site.module_path:
            name = site.name or site.node.name
        else:
            base = site.module_path
            i = self.calls.get(base, 0)
            name = base if i == 0 else f"{base}_{i}"
            while name in self.taken or (i > 0 and name in self.reserved):
                i += 1
                name = f"{base}_{i}"
            self.calls[base] = i + 1
        while name in self.taken:  # a function node named like a module ("add" and a module "add")
            name += "_"
        self.taken.add(name)
        return name


# -- node classification --------------------------------------------------------------------------------
def _classify(site: Site) -> str:
    if site.op == "input":
        return "input"
    if site.module is not None:
        for types, kind in _MODULE_KINDS:
            if isinstance(site.module, types):
                return kind
        return "other"
    node = site.node
    if node.op == "call_method" and site.op not in _METHODS_ONLY:
        return "other"
    kind = _FUNCTION_KINDS.get(site.op, "other")
    if node.target in (operator.add, operator.iadd) or site.op in ("add", "iadd", "add_"):
        kind = "add"
    if kind == "concat" and _cat_dim(node, len(site.shape) + 1) != 1:
        kind = "other"
    return kind


def _cat_dim(node: fx.Node, ndim: int) -> int:
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    return dim % ndim if isinstance(dim, int) and ndim else -999


def _concat_parts(node: fx.Node, node_layer: dict, sites: dict):
    """[(source layer node, offset, width)] of a channel concat, one per operand in order (an operand may
    repeat), or None when an operand does not come from exactly one layer."""
    operands = node.args[0] if node.args else node.kwargs.get("tensors")
    if not isinstance(operands, (list, tuple)):
        return None
    parts, offset = [], 0
    for op in operands:
        site = sites.get(op) if isinstance(op, fx.Node) else None
        if site is None or len(site.shape) < 1 or site.axis != 0:
            return None
        src = [op] if op in node_layer else _layer_inputs(op, node_layer)
        if len(src) != 1:
            return None
        parts.append((src[0], offset, int(site.shape[0])))
        offset += int(site.shape[0])
    return parts


def _layer_inputs(node: fx.Node, node_layer: dict) -> list:
    """Nearest layer ancestors of `node`, looking through nodes that are not layers (getitem, size, ...)."""
    out, seen = [], set()

    def visit(n):
        if n in seen:
            return
        seen.add(n)
        if n in node_layer:
            out.append(n)
        elif not _is_size(n):
            for a in n.all_input_nodes:
                visit(a)

    for a in node.all_input_nodes:
        visit(a)
    return out


def _is_size(n: fx.Node) -> bool:
    """A size, not data: `x.size(0)` in a view feeds no neuron (fx's size/dim calls, export's sym_size)."""
    if isinstance(n.meta.get("val"), (int, float, bool, torch.SymInt, torch.SymFloat, torch.SymBool)):
        return True
    return (n.op == "call_method" and n.target in ("size", "dim", "numel")) or \
        (n.op == "call_function" and n.target is getattr and len(n.args) > 1 and n.args[1] in ("shape", "ndim"))


# -- connections -------------------------------------------------------------------------------------------
def _connect(dst: Layer, src: Layer, site: Site, sites: dict, src_nodes: list, pos: int,
             parts=None) -> Connection:
    if dst.kind == "conv" and site.module is not None and len(src_nodes) == 1:
        w, m = _conv_matrices(site.module, dst, src)
        if w.shape == (dst.n_neurons, src.n_neurons):  # else its input's channels were not followed
            return Connection(dst.name, src.name, "weight", w, m)
    if dst.kind == "linear" and site.module is not None and len(src_nodes) == 1 and \
            (site.module.in_features == src.n_neurons or len(sites[src_nodes[pos]].shape) == 1):
        w, m = _linear_matrices(site.module, dst, src)
        return Connection(dst.name, src.name, "weight", w, m)
    if dst.kind == "concat":
        mine = [(off, n) for s, off, n in parts if s is src_nodes[pos]]
        if len(mine) == 1:
            return Connection(dst.name, src.name, "concat", offset=mine[0][0])
        # the same source concatenated more than once: its neurons land in every one of its slices
        sel = np.zeros((dst.n_neurons, src.n_neurons), np.float32)
        for off, n in mine:
            sel[off + np.arange(n), np.arange(n)] = 1.0
        return Connection(dst.name, src.name, "weight", sel, sel.copy())
    if dst.n_neurons == src.n_neurons:
        return Connection(dst.name, src.name, "identity")
    # Unknown mapping between different neuron counts: every source neuron feeds every target equally.
    u = np.full((dst.n_neurons, src.n_neurons), 1.0 / src.n_neurons, np.float32)
    return Connection(dst.name, src.name, "weight", u, u.copy())


def weight_matrices(module: nn.Module, dst: Layer, src: Layer, weight: torch.Tensor | None = None):
    """(signed, absolute) neuron-pair matrices of a conv/linear module's weight, or of another tensor of
    the same shape (a gradient, a weight difference) reduced the same way."""
    if isinstance(module, nn.Linear):
        return _linear_matrices(module, dst, src, weight)
    return _conv_matrices(module, dst, src, weight)


def _conv_matrices(conv: nn.Module, dst: Layer, src: Layer, weight=None):
    w = (conv.weight if weight is None else weight).detach().double().cpu().numpy()
    groups = conv.groups
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        if groups != 1:
            raise ModelError(f"layer {dst.name!r}: grouped transposed convolutions are not supported")
        w = np.swapaxes(w, 0, 1)
    kernel_axes = tuple(range(2, w.ndim))
    signed, absolute = w.sum(kernel_axes), np.abs(w).sum(kernel_axes)  # (out, in/groups)
    n_out, in_per_group = signed.shape
    if groups == 1:
        return signed.astype(np.float32), absolute.astype(np.float32)
    # Grouped/depthwise: block-diagonal, output j only sees the inputs of its group.
    out_per_group = n_out // groups
    cols = (np.arange(n_out) // out_per_group)[:, None] * in_per_group + np.arange(in_per_group)[None, :]
    rows = np.repeat(np.arange(n_out), in_per_group)
    full_s = np.zeros((n_out, src.n_neurons), np.float32)
    full_a = np.zeros((n_out, src.n_neurons), np.float32)
    full_s[rows, cols.ravel()] = signed.ravel()
    full_a[rows, cols.ravel()] = absolute.ravel()
    return full_s, full_a


def _linear_matrices(lin: nn.Linear, dst: Layer, src: Layer, weight=None):
    w = (lin.weight if weight is None else weight).detach().double().cpu().numpy()  # (out, in_features)
    n_in = w.shape[1]
    if n_in == src.n_neurons:
        return w.astype(np.float32), np.abs(w).astype(np.float32)
    if n_in % src.n_neurons:
        raise ModelError(f"layer {dst.name!r}: {n_in} input features cannot be grouped into the "
                         f"{src.n_neurons} neurons of {src.name!r}")
    # Fed by a flattened C x H x W map: group the inputs by channel (flatten is channel-major).
    grouped = w.reshape(w.shape[0], src.n_neurons, -1)
    return grouped.sum(-1).astype(np.float32), np.abs(grouped).sum(-1).astype(np.float32)

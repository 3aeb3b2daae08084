"""torch.fx tracing of a model into a NetworkGraph (layers, neurons, neuron-to-neuron strengths)."""
from __future__ import annotations

import contextlib
import copy
import io
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

from cnnvis.errors import ModelError
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
_FUNCTION_KINDS = {
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    torch.cat: "concat", torch.concat: "concat",
    torch.flatten: "flatten",
    F.relu: "activation", torch.relu: "activation", F.relu6: "activation", F.leaky_relu: "activation",
    F.gelu: "activation", F.silu: "activation", F.elu: "activation", torch.sigmoid: "activation",
    torch.tanh: "activation", F.sigmoid: "activation", F.tanh: "activation", F.softmax: "activation",
    F.log_softmax: "activation", F.hardswish: "activation", F.mish: "activation",
    F.max_pool1d: "pool", F.max_pool2d: "pool", F.max_pool3d: "pool", F.avg_pool1d: "pool",
    F.avg_pool2d: "pool", F.avg_pool3d: "pool", F.adaptive_avg_pool1d: "pool",
    F.adaptive_avg_pool2d: "pool", F.adaptive_avg_pool3d: "pool", F.adaptive_max_pool2d: "pool",
    F.dropout: "dropout", F.dropout2d: "dropout",
}
_METHOD_KINDS = {"relu": "activation", "sigmoid": "activation", "tanh": "activation", "softmax": "activation",
                 "add": "add", "add_": "add", "flatten": "flatten", "view": "flatten", "reshape": "flatten"}


@dataclass
class Traced:
    """What the analysis needs beyond the graph: the traced module and each layer's fx node."""

    graph: NetworkGraph
    module: fx.GraphModule
    nodes: dict  # layer name -> fx.Node


def from_torch(model: nn.Module, example_input: torch.Tensor) -> NetworkGraph:
    """Trace `model` on `example_input` (a batch, N >= 1) into a NetworkGraph.

    Layers come in topological order; a layer's name is the module's qualified name for a module call and
    the traced node's name for a function call. Raises ModelError naming a module fx cannot trace.
    """
    return trace(model, example_input).graph


def trace(model: nn.Module, example_input: torch.Tensor) -> Traced:
    if not isinstance(model, nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(model).__name__}")
    # A copy: tracing turns in-place activations off and the analysis may move the module to a GPU.
    gm = _symbolic_trace(copy.deepcopy(model).cpu())
    was_training = gm.training
    gm.eval()
    try:
        # ShapeProp prints a traceback of its own before re-raising: keep stderr to one clean line.
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(example_input)
    except Exception as exc:  # shape errors from user models come in every exception type
        cause = exc.__cause__ or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ModelError(f"{type(model).__name__}: running the example input of shape "
                         f"{tuple(example_input.shape)} failed: {first}") from None
    finally:
        gm.train(was_training)
    modules = dict(gm.named_modules())
    layers, nodes, conns = [], {}, []
    node_layer: dict[fx.Node, str] = {}  # fx node -> layer name, for nodes that are layers
    names = _LayerNames(modules)
    for node in gm.graph.nodes:
        shape = _tensor_shape(node)
        if node.op in ("output", "get_attr") or shape is None or len(shape) < 1:
            continue
        kind, op = _classify(node, modules)
        src_nodes = _layer_inputs(node, node_layer)
        if node.op != "placeholder" and not src_nodes:
            continue  # computed from constants only: not part of the data flow
        parts = _concat_parts(node, node_layer) if kind == "concat" else None
        if kind == "concat" and parts is None:
            kind = "other"
        src_names = tuple(node_layer[s] for s in src_nodes)
        if kind == "flatten" and src_nodes and len(_tensor_shape(src_nodes[0]) or ()) > 2 and len(shape) == 2:
            in_shape = _tensor_shape(src_nodes[0])
            neuron_shape = tuple(in_shape[1:])  # keep the channels of the flattened map as neurons
        elif kind == "flatten":
            kind = "other"
            neuron_shape = tuple(shape[1:]) if len(shape) > 1 else (1,)
        else:
            neuron_shape = tuple(shape[1:]) if len(shape) > 1 else (1,)
        name = names.take(node)
        layer = Layer(name=name, kind=kind, n_neurons=int(neuron_shape[0]), inputs=src_names,
                      shape=tuple(int(s) for s in neuron_shape), op=op,
                      module=str(node.target) if node.op == "call_module" else "")
        layers.append(layer)
        nodes[name] = node
        node_layer[node] = name
        by_name = {l.name: l for l in layers}
        for pos, src in enumerate(src_nodes):
            conns.append(_connect(layer, by_name[node_layer[src]], node, modules, src_nodes, pos, parts))
    graph = NetworkGraph(layers=tuple(layers), connections=tuple(conns))
    return Traced(graph=graph, module=gm, nodes=nodes)


class _LayerNames:
    """Layer names: a module's qualified name for its first call, then name_1, name_2, ... in call order (a
    reused module, like torchvision Bottleneck's one `relu` called three times, gives one layer per call);
    the fx node's name for a function call. A generated name that another layer already has is skipped."""

    def __init__(self, modules: dict):
        self.calls: dict[str, int] = {}
        self.taken: set[str] = set()
        self.reserved = set(modules)  # qualified module names: a suffixed call never takes one

    def take(self, node: fx.Node) -> str:
        if node.op != "call_module":
            name = node.name
        else:
            base = str(node.target)
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


# -- tracing ------------------------------------------------------------------------------------------
class _NamingTracer(fx.Tracer):
    """Records which module was being traced when tracing fails, to name it in the error."""

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.failed_in: tuple[str, str] | None = None

    def call_module(self, m, forward, args, kwargs):
        self.stack.append((self.path_of_module(m), type(m).__name__))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.stack[-1]
            raise
        finally:
            self.stack.pop()


def _symbolic_trace(model: nn.Module) -> fx.GraphModule:
    tracer = _NamingTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:
        where = tracer.failed_in
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if where and where[0]:
            raise ModelError(f"torch.fx cannot trace module {where[0]!r} ({where[1]}): {first}") from None
        raise ModelError(f"torch.fx cannot trace {type(model).__name__}.forward: {first}") from None
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    _disable_inplace(gm)
    return gm


def _disable_inplace(gm: fx.GraphModule) -> None:
    """In-place activations would overwrite the pre-activation tensors the analysis records."""
    for m in gm.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = False
    for node in gm.graph.nodes:
        if node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
    gm.recompile()


# -- node classification --------------------------------------------------------------------------------
def _tensor_shape(node: fx.Node):
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        return None
    return tuple(tm.shape)


def _classify(node: fx.Node, modules: dict) -> tuple[str, str]:
    if node.op == "placeholder":
        return "input", "input"
    if node.op == "call_module":
        m = modules[node.target]
        for types, kind in _MODULE_KINDS:
            if isinstance(m, types):
                return kind, type(m).__name__
        return "other", type(m).__name__
    if node.op == "call_function":
        kind = _FUNCTION_KINDS.get(node.target, "other")
        if kind == "concat" and _cat_dim(node) != 1:
            kind = "other"
        return kind, getattr(node.target, "__name__", str(node.target))
    if node.op == "call_method":
        return _METHOD_KINDS.get(node.target, "other"), str(node.target)
    return "other", str(node.target)


def _cat_dim(node: fx.Node) -> int:
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    ndim = len(_tensor_shape(node) or ())
    return dim % ndim if isinstance(dim, int) and ndim else -999


def _concat_parts(node: fx.Node, node_layer: dict):
    """[(source layer node, offset, width)] of a channel concat, one per operand in order (an operand may
    repeat), or None when an operand does not come from exactly one layer."""
    operands = node.args[0] if node.args else node.kwargs.get("tensors")
    if not isinstance(operands, (list, tuple)):
        return None
    parts, offset = [], 0
    for op in operands:
        shape = _tensor_shape(op) if isinstance(op, fx.Node) else None
        if shape is None or len(shape) < 2:
            return None
        src = [op] if op in node_layer else _layer_inputs(op, node_layer)
        if len(src) != 1:
            return None
        parts.append((src[0], offset, int(shape[1])))
        offset += int(shape[1])
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
        else:
            for a in n.all_input_nodes:
                visit(a)

    for a in node.all_input_nodes:
        visit(a)
    return out


# -- connections -------------------------------------------------------------------------------------------
def _connect(dst: Layer, src: Layer, node: fx.Node, modules: dict, src_nodes: list, pos: int,
             parts=None) -> Connection:
    if dst.kind == "conv" and node.op == "call_module":
        w, m = _conv_matrices(modules[node.target], dst, src)
        return Connection(dst.name, src.name, "weight", w, m)
    if dst.kind == "linear" and node.op == "call_module" and len(_tensor_shape(src_nodes[pos])) == 2:
        w, m = _linear_matrices(modules[node.target], dst, src)
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

"""Capturing what a model computes as an fx graph the analysis can run: torch.fx first, torch.export second.

Two paths, one result (`Capture`): a GraphModule to interpret, and for each node that may become a layer a
`Site` (the leaf module it is the output of, or the function it calls), its per-image shape and the axis its
channels sit on.

- torch.fx symbolic tracing keeps every model it traces exactly as before (names, kinds, speed).
- Where fx cannot trace `forward()` (a shape check, asserts, loops, timm's and HuggingFace's modules),
  non-strict torch.export captures it on the example's static shapes (batch kept free). Its aten graph has
  no module calls, so each call of a leaf module (a torch.nn module, or a subclass of a conv, linear, norm,
  activation or pooling: timm's Conv2dSame, LayerNorm2d, BatchNormAct2d) is found through the nodes'
  `nn_module_stack` and its last node stands for it; every other op is a function site. Function nodes are
  renamed the way fx names them (`add`, `add_1`, ...), so names do not depend on export's internal counters.
- Branches on tensor values (`if y.mean() > 0`, `.item()`) defeat both: one line names the model and why.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp

from cnnvis.errors import ModelError

__all__ = ["Capture", "Site", "capture", "LEAF_TYPES", "first_line"]

# Leaf modules whose kind the graph knows; any torch.nn module is a leaf too (as for torch.fx).
LEAF_TYPES = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
              nn.LocalResponseNorm, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
              nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
              nn.modules.dropout._DropoutNd, nn.Flatten, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU,
              nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish,
              nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Softmax, nn.LogSoftmax)


@dataclass
class Site:
    """What a node computes: the leaf module called (its qualified name and object) or the function."""

    node: fx.Node
    shape: tuple[int, ...]        # per-image output shape (batch dropped)
    axis: int                      # channel axis in the per-image shape (0: channels first)
    module_path: str = ""          # "" for a function call
    module: nn.Module | None = None
    op: str = ""                   # module class name, or the function's name (add, cat, relu, permute, ...)
    fn_args: tuple = ()            # a function call's arguments (nodes or constants), batch axis included
    kwargs: dict = field(default_factory=dict)
    name: str = ""                 # fx-style node name (functions)


@dataclass
class Capture:
    module: fx.GraphModule         # what the analysis interprets
    sites: dict                    # fx.Node -> Site, per-image tensor nodes only, in graph order
    modules: dict                  # qualified name -> module of the copied model (kernels, weights)
    method: str                    # "fx" or "export"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def capture(model: nn.Module, example: torch.Tensor, method: str = "auto") -> Capture:
    """The model's computation on `example` (a batch, N >= 2 preferred), through fx or else torch.export
    (method "auto"; "fx" or "export" force one, for tests and comparisons)."""
    if not isinstance(model, nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(model).__name__}")
    work = copy.deepcopy(model).cpu().eval()  # the analysis may move it to a GPU; in-place ops get turned off
    _disable_inplace(work)
    if method == "export":
        return _export_capture(work, example, None)
    try:
        gm = _fx_trace(work)
    except Exception as fx_exc:  # noqa: BLE001 (fx fails in every exception type)
        if method == "fx":
            raise ModelError(f"torch.fx cannot trace {type(model).__name__}: {first_line(fx_exc)}") from None
        return _export_capture(work, example, fx_exc)
    _propagate(gm, example, model)
    return Capture(module=gm, sites=_fx_sites(gm, dict(work.named_modules()), example.shape[0]),
                   modules=dict(work.named_modules()), method="fx")


# -- torch.fx -----------------------------------------------------------------------------------------------
class _Tracer(fx.Tracer):
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


def _fx_trace(work: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        graph = tracer.trace(work)
    except Exception as exc:
        exc.cnnvis_failed_in = tracer.failed_in  # for the error message, should export fail too
        raise
    gm = fx.GraphModule(work, graph, type(work).__name__)
    for node in gm.graph.nodes:
        if node.kwargs.get("inplace") is True:
            node.kwargs = {**node.kwargs, "inplace": False}
    gm.recompile()
    return gm


def _propagate(gm: fx.GraphModule, example: torch.Tensor, model: nn.Module) -> None:
    try:
        # ShapeProp prints a traceback of its own before re-raising: keep stderr to one clean line.
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(example)
    except Exception as exc:  # shape errors from user models come in every exception type
        raise ModelError(f"{type(model).__name__}: running the example input of shape "
                         f"{tuple(example.shape)} failed: {first_line(exc.__cause__ or exc)}") from None


def _fx_sites(gm: fx.GraphModule, modules: dict, batch: int) -> dict:
    sites = {}
    for node in gm.graph.nodes:
        tm = node.meta.get("tensor_meta")
        shape = tuple(tm.shape) if tm is not None and hasattr(tm, "shape") else None
        if node.op in ("output", "get_attr") or not shape or shape[0] != batch:
            continue
        site = Site(node=node, shape=tuple(int(s) for s in shape[1:]), axis=0, name=node.name)
        if node.op == "call_module":
            site.module_path, site.module = str(node.target), modules[node.target]
            site.op = type(site.module).__name__
        elif node.op == "call_function":
            site.op, site.fn_args = _fn_name(node.target), tuple(node.args)
        elif node.op == "call_method":
            site.op, site.fn_args = str(node.target), tuple(node.args)
        else:
            site.op = "input"
        site.kwargs = dict(node.kwargs)
        site.axis = _channel_axis(site, sites)
        sites[node] = site
    return sites


# -- torch.export -------------------------------------------------------------------------------------------
def _export_capture(work: nn.Module, example: torch.Tensor, fx_exc: BaseException | None) -> Capture:
    from torch.export import Dim, export

    quiet = [logging.getLogger(n) for n in ("torch.fx.experimental.symbolic_shapes", "torch._dynamo",
                                             "torch.export", "torch._export")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.CRITICAL)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            dyn = {_input_name(work): {0: Dim.AUTO}} if example.shape[0] > 1 else None
            ep = export(work, (example,), strict=False, dynamic_shapes=dyn)
            ep = ep.run_decompositions({})  # functional ops; conv2d/linear stay themselves
            gm = ep.module()
    except Exception as exc:  # noqa: BLE001
        where = getattr(fx_exc, "cnnvis_failed_in", None)
        what = f"module {where[0]!r} ({where[1]})" if where and where[0] else f"{type(work).__name__}.forward"
        fx_said = f"; torch.fx: {first_line(fx_exc)}" if fx_exc is not None else ""
        raise ModelError(f"cannot trace {what}: {_export_reason(exc)} (torch.export){fx_said}") from None
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    modules = dict(work.named_modules())
    sites = _export_sites(gm, modules)
    return Capture(module=gm, sites=sites, modules=modules, method="export")


def _input_name(model: nn.Module) -> str:
    import inspect

    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return params[0].name if params else "x"


def _export_reason(exc: BaseException) -> str:
    text = str(exc)
    for key in ("Could not guard on data-dependent expression", "data-dependent", "Could not extract "
                "specialized integer from data-dependent expression"):
        if key in text:
            return ("a branch or a size depends on tensor values (`if x.mean() > 0`, `.item()`, `.nonzero()`), "
                    "which no capture of the computation can follow")
    return first_line(exc)


def _is_leaf(m: nn.Module) -> bool:
    return isinstance(m, LEAF_TYPES) or (type(m).__module__.startswith("torch.nn.")
                                          and not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)))


def _leaf_call(node: fx.Node, modules: dict):
    """(call key, module path) of the outermost leaf module whose call computed `node`, or None."""
    stack = node.meta.get("nn_module_stack") or {}
    for key, (path, _type) in stack.items():
        m = modules.get(path)
        if path and m is not None and _is_leaf(m):
            return key, path
    return None


def _export_sites(gm: fx.GraphModule, modules: dict) -> dict:
    nodes = list(gm.graph.nodes)
    x = next(n for n in nodes if n.op == "placeholder")
    batch = x.meta["val"].shape[0]
    call_of = {n: _leaf_call(n, modules) for n in nodes if n.op == "call_function"}
    # A leaf call's output: its last node used outside the call.
    outputs = {}
    for n in nodes:
        c = call_of.get(n)
        if c is not None and any(call_of.get(u) != c for u in n.users):
            outputs[c] = n
    counts: dict[str, int] = {}
    sites = {}
    for n in nodes:
        if n.op == "placeholder" and n is not x:
            continue
        shape = _per_image_shape(n, batch)
        if shape is None:
            continue
        c = call_of.get(n)
        site = Site(node=n, shape=shape, axis=0)
        if n is x:
            site.op, site.name = "input", n.name
        elif c is not None and outputs.get(c) is n:
            site.module_path, site.module = c[1], modules[c[1]]
            site.op = type(site.module).__name__
        elif c is not None:
            continue  # inside a leaf call: transparent
        else:
            site.op = _export_fn_name(n)
            base = site.op.rstrip("_") or "op"
            k = counts.get(base, 0)
            counts[base] = k + 1
            site.name = base if k == 0 else f"{base}_{k}"
            site.fn_args = tuple(n.args)
        site.kwargs = dict(n.kwargs)
        site.axis = _channel_axis(site, sites)
        sites[n] = site
    return sites


def _per_image_shape(n: fx.Node, batch):
    val = n.meta.get("val")
    if not isinstance(val, torch.Tensor) or val.ndim < 1:
        return None
    first = val.shape[0]
    if not (first is batch or str(first) == str(batch)):
        return None
    try:
        return tuple(int(s) for s in val.shape[1:])
    except (TypeError, ValueError):  # a size that depends on the batch: not per image
        return None


def _export_fn_name(n: fx.Node) -> str:
    """The aten op's name, except where it lowered the function the model called under another name
    (torch.flatten -> view): the name fx would have given, so both paths name the layer alike."""
    name = _fn_name(n.target)
    called = str((n.meta.get("torch_fn") or ("", ""))[1]).rsplit(".", 1)[-1]
    return "flatten" if name in ("view", "_unsafe_view", "reshape") and called == "flatten" else name


def _fn_name(target) -> str:
    name = getattr(target, "_opname", None) or getattr(target, "__name__", None) or str(target)
    return str(name).split(".")[0]


# -- the channel axis ---------------------------------------------------------------------------------------
_CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm,
                   nn.LocalResponseNorm, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                   nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_CONV_FUNCTIONS = {"conv1d", "conv2d", "conv3d", "convolution", "max_pool1d", "max_pool2d", "max_pool3d",
                   "max_pool2d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
                   "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "adaptive_max_pool2d",
                   "batch_norm", "_native_batch_norm_legit_no_training", "group_norm", "instance_norm"}


def _source(site: Site, sites: dict):
    """The first tensor argument's node that has a site (the data path into this node)."""
    args = list(site.fn_args) + list(site.kwargs.values()) if not site.module else list(site.node.args)
    for a in args:
        for n in (a if isinstance(a, (list, tuple)) else [a]):
            if isinstance(n, fx.Node):
                n = _through(n, sites)
                if n is not None:
                    return n
    return None


def _through(n: fx.Node, sites: dict):
    """n, or the nearest ancestor with a site along first inputs (getitem, clones ...)."""
    seen = 0
    while n is not None and n not in sites and seen < 64:
        ins = n.all_input_nodes
        n = ins[0] if ins else None
        seen += 1
    return n


def _channel_axis(site: Site, sites: dict) -> int:
    """Where the channels are in the per-image shape: 0 for NCHW maps and (B, F) vectors; the last axis after
    a Linear over the last dimension, a LayerNorm over it, or a permute that moves the channels there."""
    nd = len(site.shape)
    if site.op == "input" or nd <= 1:
        return 0
    m = site.module
    if m is not None:
        if isinstance(m, _CHANNELS_FIRST):
            return 0
        if isinstance(m, nn.Linear):
            return nd - 1
    elif site.op in _CONV_FUNCTIONS:
        return 0
    elif site.op == "linear":
        return nd - 1
    src = _source(site, sites)
    if src is None:
        return 0
    k, in_shape = sites[src].axis, sites[src].shape
    if site.op in ("permute", "transpose", "swapaxes") and len(in_shape) == nd:
        perm = _permutation(site, nd + 1)
        if perm is not None:
            return perm.index(k + 1) - 1
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
        c = m.normalized_shape[0]
        if site.shape[-1] == c and (site.shape[0] != c or k == len(in_shape) - 1):
            return nd - 1  # over the last axis of an NHWC map or a token sequence
        if site.shape[0] == c:
            return 0       # LayerNorm2d: permutes inside, NCHW out
    if tuple(in_shape) == tuple(site.shape):
        return k
    # The axes up to the channels unchanged (NCHW reductions, flattening the positions), or the channels and
    # every axis after them (NHWC reductions over the positions): the channels are where they were. A reshape
    # that splits or merges the channels (ShuffleNet's view to (groups, C / groups, H, W)) keeps neither.
    if tuple(site.shape[:k + 1]) == tuple(in_shape[:k + 1]):
        return k
    tail = len(in_shape) - k
    if tail <= nd and tuple(site.shape[nd - tail:]) == tuple(in_shape[k:]):
        return nd - tail
    return 0


def _permutation(site: Site, ndim: int):
    """The permutation (batch axis included) of a permute/transpose node, or None."""
    args = list(site.fn_args[1:]) if site.fn_args else []
    try:
        if site.op == "permute":
            dims = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
            dims = [int(d) % ndim for d in dims]
            return dims if sorted(dims) == list(range(ndim)) else None
        if site.op in ("transpose", "swapaxes"):
            a, b = (int(d) % ndim for d in args[:2])
            perm = list(range(ndim))
            perm[a], perm[b] = perm[b], perm[a]
            return perm
    except (TypeError, ValueError, IndexError):
        return None
    return None


def _disable_inplace(model: nn.Module) -> None:
    """In-place activations would overwrite the pre-activation tensors the analysis records."""
    for m in model.modules():
        if hasattr(m, "inplace") and isinstance(m.inplace, bool):
            m.inplace = False

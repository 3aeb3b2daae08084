"""Receptive fields of every layer's positions, for cropping learned-feature patches (Girshick et al.).

Per spatial axis a field is (size r, jump j, start s): position p of the layer sees input pixels centred at
s + p * j with extent r (continuous coordinates, pixel i spans [i, i + 1)). None means "the whole image"
(linear layers, global pooling, ops we cannot follow).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn as nn

from cnnvis.graph._network import NetworkGraph

__all__ = ["Field", "receptive_fields", "crop_box"]


@dataclass(frozen=True)
class Field:
    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]


def _pair(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


_WINDOW_FUNCTIONS = {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "avg_pool1d",
                     "avg_pool2d", "avg_pool3d"}


def _window(site):
    """(kernel, stride, padding, dilation) of a conv/pool call (a module, or a function of torch.fx or
    torch.export: both take (input, kernel, stride, padding, dilation)), or None."""
    m = site.module
    if m is not None:
        if isinstance(m, (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)) \
                and not isinstance(m, nn.modules.conv._ConvTransposeNd):
            return m.kernel_size, m.stride or m.kernel_size, m.padding, getattr(m, "dilation", 1)
        return None
    if site.op in _WINDOW_FUNCTIONS and site.node.op == "call_function":
        a, kw = list(site.fn_args) + [None] * 5, site.node.kwargs
        k = kw.get("kernel_size", a[1])
        stride = kw.get("stride", a[2]) or k
        dilation = kw.get("dilation", a[4] if site.op.startswith("max") and a[4] is not None else 1)
        return k, stride, kw.get("padding", a[3] or 0), dilation
    return None


def receptive_fields(graph: NetworkGraph, sites: dict) -> dict:
    """layer name -> Field or None. sites: layer name -> cnnvis.graph._capture.Site (Traced.sites).

    A layer with several inputs follows its spatial path: an operand whose map is 1 x 1 while the output is
    not (a squeeze-excitation gate, a global attention scale) multiplies every position alike and does not
    widen the field."""
    out: dict[str, Field | None] = {}
    for layer in graph.layers:
        nsp = len(layer.spatial)
        if layer.kind == "input":
            out[layer.name] = Field((1.0,) * nsp, (1.0,) * nsp, (0.5,) * nsp) if nsp else None
            continue
        path = [i for i in layer.inputs if not _is_gate(graph.layer(i).spatial, layer.spatial)] or \
            list(layer.inputs)
        ins = [out.get(i) for i in path]
        if not nsp or any(f is None for f in ins) or not ins:
            out[layer.name] = None
            continue
        k_src = max(range(len(ins)), key=lambda i: ins[i].size)  # add/concat: the widest field bounds the union
        src = ins[k_src]
        if len(src.size) != nsp:
            out[layer.name] = None
            continue
        win = _window(sites[layer.name])
        in_spatial = graph.layer(path[k_src]).spatial
        if win is not None:
            k, s, p, d = (_pair(v, nsp) for v in win)
            size = tuple(r + (kk - 1) * dd * j for r, kk, dd, j in zip(src.size, k, d, src.jump))
            start = tuple(st + ((kk - 1) * dd / 2 - pp) * j for st, kk, dd, pp, j in
                          zip(src.start, k, d, p, src.jump))
            out[layer.name] = Field(size, tuple(j * ss for j, ss in zip(src.jump, s)), start)
        elif tuple(in_spatial) == tuple(layer.spatial):
            out[layer.name] = src  # element-wise or shape-preserving
        elif layer.kind == "pool" and all(o <= i for o, i in zip(layer.spatial, in_spatial)):
            # adaptive pooling: approximately a window of ceil(i/o) with stride floor(i/o)
            k = tuple(math.ceil(i / o) for i, o in zip(in_spatial, layer.spatial))
            s = tuple(i // o for i, o in zip(in_spatial, layer.spatial))
            size = tuple(r + (kk - 1) * j for r, kk, j in zip(src.size, k, src.jump))
            start = tuple(st + (kk - 1) / 2 * j for st, kk, j in zip(src.start, k, src.jump))
            out[layer.name] = Field(size, tuple(j * ss for j, ss in zip(src.jump, s)), start)
        else:
            out[layer.name] = None
    return out


def _is_gate(spatial, out_spatial) -> bool:
    return bool(spatial) and all(n == 1 for n in spatial) and tuple(spatial) != tuple(out_spatial)


def crop_box(field: Field | None, position: tuple[int, ...], image_shape: tuple[int, ...]):
    """(lo, hi) per axis of the crop for a layer position; fields are kept inside the image."""
    if field is None:
        return tuple((0, n) for n in image_shape)
    box = []
    for r, j, s, p, n in zip(field.size, field.jump, field.start, position, image_shape):
        size = int(min(round(r), n))
        lo = int(math.floor(s + p * j - size / 2 + 0.5))
        lo = min(max(lo, 0), n - size)
        box.append((lo, lo + size))
    return tuple(box)

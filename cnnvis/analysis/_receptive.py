"""Receptive fields of every layer's positions, for cropping learned-feature patches (Girshick et al.).

Per spatial axis a field is (size r, jump j, start s): position p of the layer sees input pixels centred at
s + p * j with extent r (continuous coordinates, pixel i spans [i, i + 1)). None means "the whole image"
(linear layers, global pooling, ops we cannot follow).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F

from cnnvis.graph._network import NetworkGraph

__all__ = ["Field", "receptive_fields", "crop_box"]


@dataclass(frozen=True)
class Field:
    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]


def _pair(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _window(node, modules):
    """(kernel, stride, padding, dilation) of a conv/pool call, or None."""
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)) \
                and not isinstance(m, nn.modules.conv._ConvTransposeNd):
            return m.kernel_size, m.stride or m.kernel_size, m.padding, getattr(m, "dilation", 1)
        return None
    if node.op == "call_function" and node.target in (F.max_pool2d, F.avg_pool2d, F.max_pool1d, F.avg_pool1d):
        a, kw = list(node.args) + [None] * 5, node.kwargs
        k = kw.get("kernel_size", a[1])
        stride = kw.get("stride", a[2]) or k
        return k, stride, kw.get("padding", a[3] or 0), kw.get("dilation", 1)
    return None


def receptive_fields(graph: NetworkGraph, nodes: dict, modules: dict) -> dict:
    """layer name -> Field or None."""
    out: dict[str, Field | None] = {}
    for layer in graph.layers:
        nsp = len(layer.spatial)
        if layer.kind == "input":
            out[layer.name] = Field((1.0,) * nsp, (1.0,) * nsp, (0.5,) * nsp) if nsp else None
            continue
        ins = [out.get(i) for i in layer.inputs]
        if not nsp or any(f is None for f in ins) or not ins:
            out[layer.name] = None
            continue
        src = max(ins, key=lambda f: f.size)  # add/concat: the widest input field bounds the union
        if len(src.size) != nsp:
            out[layer.name] = None
            continue
        win = _window(nodes[layer.name], modules)
        in_spatial = graph.layer(layer.inputs[0]).spatial
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

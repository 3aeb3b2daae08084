"""Layer clusters from the model's own module hierarchy, and the first view chosen from it.

The tree. Every layer of a module call sits in the module that contains it (`features.denseblock2.denselayer3.conv1`
in `features.denseblock2.denselayer3`). A function call (an `add`, a `cat`, a `mul`, a `flatten`) has no
module of its own: it sits in the deepest module that holds both the module call before it and the one after
it in execution order (a Bottleneck's `out += identity` in `layer1.0`, DenseNet's concatenation between two
dense layers in their dense block). Within a module, in execution order, a weighted layer (conv, linear) starts
a unit; the normalisations, activations, pools, dropouts and joins (add, concat, element-wise products) after
it fold into that unit or into the submodule before them (a join is drawn where its inputs meet, never as a
column of its own), and the ones before the first weighted layer of a module fold into it (pre-activation
blocks). A module is a node whose children are its submodules and units; a chain of modules with one child
each is one node.

The first view: the top node's children, and while fewer than `MIN_COLUMNS` columns show, every column that
opens is opened (a whole level at a time, so siblings stay alike: ResNet's four stages, not one stage's six
blocks beside three stages) or, where a level would exceed `max_columns`, the biggest columns one at a time.

Names: each node is named by the shortest tail of its module path that contains a letter and is unique in the
tree (`denseblock2`, `features.3`, `denselayer12.conv1`), and says what it holds in a person's words
(`denseblock2 · 12× denselayer`, `features.3 · 2 blocks`, `conv0 · conv+bn+relu+pool`).
"""
from __future__ import annotations

from dataclasses import replace

from cnnvis.aggregate._cluster import make_cluster
from cnnvis.aggregate._types import LayerCluster

__all__ = ["module_tree", "has_hierarchy", "first_view", "opened", "MIN_COLUMNS"]

MIN_COLUMNS = 4       # fewer columns than this say little about a model: open a level
_WEIGHTED = frozenset({"conv", "linear"})
_SHORT_OP = {"stochasticdepth": "drop", "stochastic_depth": "drop", "adaptive_avg_pool2d": "pool", "hardswish": "hswish",
             "hardsigmoid": "hsigmoid"}
_SHORT_KIND = {"conv": "conv", "linear": "fc", "batchnorm": "bn", "pool": "pool", "add": "add", "concat": "cat",
               "dropout": "drop", "flatten": "flat"}


def has_hierarchy(graph) -> bool:
    """Whether the weighted layers come from modules nested two deep or more (`layer1.0.conv1`,
    `features.denseblock1.denselayer1.conv1`), so the tree says more than one level of layers. A flat
    Sequential in a Sequential (`features.conv3_2`, VGG's `features.7`: the paper's case-study nets) has no
    stages to show; its layers are grouped by similarity instead."""
    return any(l.module.count(".") >= 2 for l in graph.layers if l.kind in _WEIGHTED)


def _containers(layers) -> list[tuple]:
    """The module path holding each layer (see the module docstring)."""
    paths = [tuple(l.module.split(".")) if l.module else None for l in layers]
    prev, last = [None] * len(layers), None
    for i, p in enumerate(paths):
        prev[i] = last
        if p is not None:
            last = p
    nxt, last = [None] * len(layers), None
    for i in range(len(layers) - 1, -1, -1):
        nxt[i] = last
        if paths[i] is not None:
            last = paths[i]
    out = []
    for i, p in enumerate(paths):
        if p is not None:
            out.append(p[:-1])
            continue
        a, b = prev[i], nxt[i]
        a, b = (a or b), (b or a)
        if a is None:
            out.append(())
            continue
        a, b = a[:-1], b[:-1]
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        out.append(a[:n])
    return out


class _Node:
    """A node while the tree is built: a module (path, children) or a unit (layers)."""

    def __init__(self, path: tuple, layers=None):
        self.path, self.children, self.unit = path, [], list(layers or [])
        self.direct: list = []   # the children before one-child chains were skipped (for the summary)

    def last_unit(self) -> list:
        node = self
        while node.children:
            node = node.children[-1]
        return node.unit

    def first_unit(self) -> list:
        node = self
        while node.children:
            node = node.children[0]
        return node.unit

    def layers(self) -> list:
        return list(self.unit) if not self.children else [n for c in self.children for n in c.layers()]

    def units(self) -> list:
        return [self.unit] if not self.children else [u for c in self.children for u in c.units()]


def _build(graph, idx, cont, depth, path) -> _Node:
    node = _Node(path)
    pending: list[str] = []   # leading normalisations / activations of a module: they fold into what follows
    i = 0
    while i < len(idx):
        j = idx[i]
        c = cont[j]
        if len(c) > depth:   # the run of layers inside one child module
            k = i
            while k < len(idx) and cont[idx[k]][:depth + 1] == c[:depth + 1]:
                k += 1
            child = _build(graph, idx[i:k], cont, depth + 1, c[:depth + 1])
            if pending:
                child.first_unit()[:0] = pending
                pending = []
            node.children.append(child)
            i = k
            continue
        layer = graph.layers[j]
        if layer.kind in _WEIGHTED:
            node.children.append(_Node(tuple(layer.name.split(".")), pending + [layer.name]))
            pending = []
        elif node.children:
            node.children[-1].last_unit().append(layer.name)
        else:
            pending.append(layer.name)
        i += 1
    if pending:   # a module of no weighted layer (a norm-and-activation tail, a pool)
        node.children.append(_Node(tuple(pending[0].split(".")), pending))
    node.direct = list(node.children)
    while len(node.children) == 1 and node.children[0].children:   # a chain of one-child modules is one node
        node.children = node.children[0].children
    if len(node.children) == 1:   # a module holding one unit is that unit, named by the module
        node.unit, node.children = node.children[0].unit, []
    return node


def _tails(nodes) -> dict:
    """id(node) -> the shortest tail of its path with a letter that no other node of the tree shares."""
    paths = {id(n): n.path for n in nodes}
    out = {}
    for n in nodes:
        p = n.path
        for k in range(1, len(p) + 1):
            tail = p[-k:]
            if not any(ch.isalpha() for ch in tail[0]):   # starts with a name, not an index ("features.3")
                continue
            if all(q[-k:] != tail for m, q in paths.items() if m != id(n)):
                out[id(n)] = ".".join(tail)
                break
        else:
            out[id(n)] = ".".join(p) or "model"
    return out


def _kinds(graph, unit) -> str:
    parts = []
    for name in unit:
        l = graph.layer(name)
        k = l.op.lower() if l.kind in ("activation", "other") and l.op else _SHORT_KIND.get(l.kind, l.kind)
        k = _SHORT_OP.get(k, k)
        if not parts or parts[-1] != k:
            parts.append(k)
    return "+".join(parts[:5]) + ("+\u2026" if len(parts) > 5 else "")


def _summary(node) -> str:
    kids = node.direct if len(node.direct) > 1 else node.children
    if not node.children:
        return ""
    n = len(kids)
    if len(node.direct) == 1 and node.direct[0].path and node.direct[0].path[-1].isdigit():
        return "1 block"   # a stage of one block (EfficientNet's features.1)
    if all(k.children for k in kids):
        stems = {"".join(ch for ch in k.path[-1] if not ch.isdigit()) for k in kids} if all(k.path for k in kids) \
            else {""}
        stem = stems.pop() if len(stems) == 1 else ""
        if stem and stem != kids[0].path[-1]:
            return f"{n}\u00d7 {stem}"
        return f"{n} block{'s' * (n != 1)}"
    if not any(k.children for k in kids):
        return f"{n} layers"
    return f"{n} parts"


def _chunks(graph, analysis, kids: list, tails: list, max_columns: int) -> tuple:
    """More than max_columns children open first into runs of consecutive ones (DenseNet-121's 24 dense
    layers into 12 pairs), each of which opens into its members."""
    if len(kids) <= max_columns:
        return tuple(kids)
    step = -(-len(kids) // max_columns)
    out = []
    for a in range(0, len(kids), step):
        run = kids[a:a + step]
        if len(run) == 1:
            out.append(run[0])
            continue
        last = tails[a + len(run) - 1].rsplit(".", 1)[-1]
        stem = "".join(ch for ch in last if not ch.isdigit())
        first_stem = "".join(ch for ch in tails[a].rsplit(".", 1)[-1] if not ch.isdigit())
        last = last[len(stem):] if stem and stem == first_stem and last.startswith(stem) else last
        what = f"{len(run)}\u00d7 {stem}" if stem else f"{len(run)} blocks"
        out.append(make_cluster(graph, analysis, [u for c in run for u in c.units],
                                f"{len(run)} consecutive parts of one module, kept together so that opening the "
                                f"module shows at most {max_columns} columns",
                                name=f"{tails[a]}\u2013{last} \u00b7 {what}", children=run))
    return tuple(out)


def module_tree(graph, analysis, *, include_input: bool = False, max_columns: int = 12) -> list[LayerCluster]:
    """The top node's children as LayerClusters, each with its `children` (see the module docstring)."""
    layers = [l for l in graph.layers if include_input or l.kind != "input"]
    index = {n: i for i, n in enumerate(graph.names)}
    cont = {index[l.name]: c for l, c in zip(layers, _containers(layers))}
    root = _build(graph, [index[l.name] for l in layers], cont, 0, ())
    top = root.children or [root]
    nodes, stack = [], list(top)
    while stack:
        n = stack.pop()
        nodes.append(n)
        stack.extend(n.children)
    tails = _tails(nodes)

    def to_cluster(n: _Node) -> LayerCluster:
        kids = _chunks(graph, analysis, [to_cluster(k) for k in n.children], [tails[id(k)] for k in n.children],
                       max_columns)
        what = _summary(n) or _kinds(graph, n.unit)
        name = f"{tails[id(n)]} \u00b7 {what}"
        module = ".".join(n.path)
        why = (f"module {module}: {what} (the model's own hierarchy)" if kids else
               f"{what}: a weighted layer with the normalisation, activation and joins that follow it")
        return make_cluster(graph, analysis, n.units(), why, name=name, children=kids)

    return [c for c in (to_cluster(n) for n in top) if any(x in analysis.stats for x in c.layers)]


def opened(lc: LayerCluster) -> tuple:
    """The columns `lc` opens into, each marked as expanded from it (empty: it does not open)."""
    return tuple(replace(c, expanded_from=lc) for c in lc.children)


def first_view(clusters: list, max_columns: int) -> list:
    """The columns of the first view from the top of the tree (see the module docstring)."""
    cols = list(clusters)
    while len(cols) < MIN_COLUMNS:
        level = [k for c in cols for k in (c.children or (c,))]
        if len(level) == len(cols):
            break
        if len(level) <= max_columns:
            cols = level
            continue
        # a whole level is too many: open the biggest columns that still fit
        changed = False
        for c in sorted((c for c in cols if c.children), key=lambda c: -len(c.layers)):
            if len(cols) - 1 + len(c.children) <= max_columns:
                i = next(j for j, x in enumerate(cols) if x is c)
                cols[i:i + 1] = list(c.children)
                changed = True
                break
        if not changed:
            break
    return cols

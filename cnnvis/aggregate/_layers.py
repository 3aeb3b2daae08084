"""Layer clusters: units, cut-delimited blocks, and runs of alike blocks.

Three steps, each a plain rule:
1. Units: a conv/linear (or add/concat) layer absorbs the batch norm, activation, pool, dropout, flatten
   and other element-wise layers that follow it in a single chain (the previous layer has no other consumer).
2. Blocks: in topological order, a unit is a *cut* when no connection jumps over it. The units strictly
   between two cuts (the branches of a residual block or an inception module) join the cut that closes
   them, so a block is single-entry single-exit and the column graph stays a DAG with the branching intact.
3. Runs: consecutive blocks merge when their head layers have the same output shape (same width and
   resolution: a VGG group, a ResNet stage) and their representative layers' activation profiles are alike:
   the linear CKA (centered kernel alignment, Kornblith et al. 2019) of their (classes x neurons) matrices
   of class means is at least `layer_similarity`. CKA compares the class-by-class Gram matrices, so layers
   of different widths compare, and it weights neurons by their variance across classes, which keeps it
   stable where most neurons are not class-selective (early layers); on the demo BaseCNN, consecutive
   layers of one group score 0.82-0.96 while the correlation of class-similarity matrices (RSA) scatters
   from -0.2 to 0.9.
"""
from __future__ import annotations

import numpy as np

from cnnvis.aggregate._cluster import default_representative, make_cluster
from cnnvis.aggregate._hierarchy import first_view, has_hierarchy, module_tree
from cnnvis.aggregate._types import LayerCluster

__all__ = ["layer_units", "layer_blocks", "linear_cka", "default_representative",
           "cluster_layers", "similar_layers", "cap_columns", "make_cluster"]

TRAILING = frozenset({"batchnorm", "activation", "pool", "dropout", "flatten", "other"})


def layer_units(graph) -> list[list[str]]:
    """Units in order of their first layer (see the module docstring)."""
    n_succ: dict[str, int] = {l.name: 0 for l in graph.layers}
    for l in graph.layers:
        for i in l.inputs:
            n_succ[i] += 1
    units: list[list[str]] = []
    unit_of: dict[str, int] = {}
    for l in graph.layers:
        if l.kind in TRAILING and len(l.inputs) == 1:
            p = l.inputs[0]
            u = unit_of.get(p)
            if u is not None and n_succ[p] == 1 and units[u][-1] == p and graph.layer(units[u][0]).kind != "input":
                units[u].append(l.name)
                unit_of[l.name] = u
                continue
        unit_of[l.name] = len(units)
        units.append([l.name])
    return units


def layer_blocks(graph, units) -> list[list[int]]:
    """Group unit indices into blocks closed by cut units (see the module docstring)."""
    unit_of = {name: i for i, u in enumerate(units) for name in u}
    reach = np.arange(len(units))  # furthest unit each unit feeds
    for l in graph.layers:
        for i in l.inputs:
            a, b = unit_of[i], unit_of[l.name]
            reach[a] = max(reach[a], b)
    # unit j is a cut when no unit before it feeds a unit after it
    before_max = np.maximum.accumulate(np.concatenate([[-1], reach[:-1]]))
    cut = before_max <= np.arange(len(units))
    blocks, run = [], []
    for j in range(len(units)):
        run.append(j)
        if cut[j]:
            blocks.append(run)
            run = []
    if run:
        blocks.append(run)
    return blocks


def linear_cka(mean_a: np.ndarray, mean_b: np.ndarray) -> float:
    """Linear CKA of two (K, C_a) and (K, C_b) matrices of class means (NaN -> 0), in 0..1."""
    x = np.nan_to_num(np.asarray(mean_a, np.float64))
    y = np.nan_to_num(np.asarray(mean_b, np.float64))
    x = x - x.mean(0)
    y = y - y.mean(0)
    kx, ky = x @ x.T, y @ y.T
    den = np.sqrt((kx * kx).sum() * (ky * ky).sum())
    return float((kx * ky).sum() / den) if den > 0 else 0.0


def cluster_layers(analysis, *, merge: bool = True, threshold: float = 0.8, include_input: bool = False,
                   max_columns: int = 12) -> list[LayerCluster]:
    """The first view's layer clusters, in topological order: from the module hierarchy where the model has
    one (cnnvis.aggregate._hierarchy), else by layer similarity (`similar_layers`); at most `max_columns`."""
    graph = analysis.graph
    if has_hierarchy(graph):
        clusters = first_view(module_tree(graph, analysis, include_input=include_input, max_columns=max_columns),
                              max_columns)
    else:
        clusters = similar_layers(analysis, merge=merge, threshold=threshold, include_input=include_input)
    return cap_columns(analysis, clusters, max_columns)


def similar_layers(analysis, *, merge: bool = True, threshold: float = 0.8,
                   include_input: bool = False) -> list[LayerCluster]:
    """Layer clusters by similarity (the module docstring's three steps); each opens into its blocks, a
    block into its weighted units."""
    graph = analysis.graph
    units = layer_units(graph)
    blocks = [[units[j] for j in b] for b in layer_blocks(graph, units)]
    has_stats = lambda blk: any(n in analysis.stats for u in blk for n in u)  # noqa: E731
    blocks = [b for b in blocks
              if has_stats(b) and (include_input or graph.layer(b[0][0]).kind != "input")]

    def head_shape(blk):
        return graph.layer(blk[-1][0]).shape

    reps = [default_representative(graph, [n for u in b for n in u], analysis, tuple(b[-1])) for b in blocks]
    runs: list[tuple[list, list, str]] = []  # (blocks, similarities, why the run did not extend further back)
    for i, blk in enumerate(blocks):
        note = ""
        if merge and runs and head_shape(blk) == head_shape(runs[-1][0][-1]):
            sim = linear_cka(analysis.stats[reps[i - 1]].mean, analysis.stats[reps[i]].mean)
            if sim >= threshold:
                runs[-1][0].append(blk)
                runs[-1][1].append(sim)
                continue
            note = f"; not merged with the previous block: linear CKA {sim:.3f} < {threshold}"
        runs.append(([blk], [], note))

    clusters, seen = [], set()
    for blks, sims, note in runs:
        units_ = [u for b in blks for u in b]
        if len(blks) > 1:
            why = (f"{len(blks)} consecutive blocks with output shape {head_shape(blks[0])} and alike "
                   f"activation profiles (linear CKA {min(sims):.3f}..{max(sims):.3f} >= {threshold})")
        elif len(units_) > 1:
            why = f"a block of {len(units_)} units between two cuts of the DAG (branches kept together)"
        else:
            why = "a weighted layer with its normalisation, activation and pooling"
        why += note
        kids = [_block_cluster(graph, analysis, b) for b in blks] if len(blks) > 1 else \
            list(_block_cluster(graph, analysis, blks[0]).children)
        c = make_cluster(graph, analysis, units_, why, sims, children=kids)
        name, j = c.name, 2
        while name in seen:
            name, j = f"{c.name}#{j}", j + 1
        seen.add(name)
        clusters.append(c if name == c.name else _renamed(c, name))
    return clusters


def _weighted_units(graph, units) -> list[list]:
    """Units with a weighted head; the others (joins, a lone activation) fold into the unit before them
    (or the first one after), so a join is never a column of its own."""
    out: list[list] = []
    pending: list = []
    for u in units:
        if graph.layer(u[0]).kind in ("conv", "linear"):
            out.append(pending + list(u))
            pending = []
        elif out:
            out[-1].extend(u)
        else:
            pending.extend(u)
    if pending:
        out.append(pending)
    return out


def _block_cluster(graph, analysis, block) -> LayerCluster:
    units = _weighted_units(graph, block)
    kids = [make_cluster(graph, analysis, [u], "a weighted layer with the normalisation, activation and joins "
                         "that follow it", name=next((n for n in u if graph.layer(n).kind in ("conv", "linear")),
                                                     u[0]))
            for u in units] if len(units) > 1 else []
    return make_cluster(graph, analysis, block, f"a block of {len(block)} units between two cuts of the DAG",
                        children=kids)


def cap_columns(analysis, clusters: list, max_columns: int) -> list:
    """At most max_columns columns: the two neighbours whose representatives' activation profiles are most
    alike (linear CKA) merge, repeatedly; a merged column opens into the columns it was made of."""
    if len(clusters) <= max_columns:
        return clusters
    graph = analysis.graph
    groups = [[c] for c in clusters]
    rep_mean = lambda c: analysis.stats[c.representative].mean  # noqa: E731
    while len(groups) > max_columns:
        sims = [linear_cka(rep_mean(a[-1]), rep_mean(b[0])) for a, b in zip(groups, groups[1:])]
        size = [sum(len(c.layers) for c in a + b) for a, b in zip(groups, groups[1:])]
        i = min(range(len(sims)), key=lambda k: (-sims[k], size[k]))
        groups[i:i + 2] = [groups[i] + groups[i + 1]]
    out = []
    for g in groups:
        if len(g) == 1:
            out.append(g[0])
            continue
        units = [u for c in g for u in c.units]
        out.append(make_cluster(graph, analysis, units, f"{len(g)} neighbouring columns with alike activation "
                                f"profiles (merged to show at most {max_columns} columns)",
                                name=f"{g[0].name}\u2013{g[-1].name}", children=g))
    return out


def _renamed(c: LayerCluster, name: str) -> LayerCluster:
    from dataclasses import replace

    return replace(c, name=name)

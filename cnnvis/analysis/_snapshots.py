"""Per-layer debugging values from training snapshots: gradient magnitude and relative weight change."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnvis.analysis._analysis import TrainingHistory
from cnnvis.data._checkpoint import apply_checkpoint, load_checkpoint  # re-exported: the one copy
from cnnvis.data._datasets import Dataset
from cnnvis.graph._network import NetworkGraph
from cnnvis.graph._output import pick_output
from cnnvis.graph._trace import weight_matrices
from cnnvis.progress import progress

__all__ = ["load_checkpoint", "apply_checkpoint", "training_history", "fixed_batch"]


def fixed_batch(data: Dataset, size: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data), size=min(size, len(data)), replace=False))
    return torch.from_numpy(np.asarray(data.get(idx), np.float32)), torch.from_numpy(data.labels[idx])


def training_history(model: torch.nn.Module, graph: NetworkGraph, snapshots, data: Dataset, *, names=None,
                     show_progress: bool = True, output=None) -> TrainingHistory:
    """Gradient magnitude on a fixed batch and relative weight change, per weighted layer and snapshot."""
    snaps = list(snapshots)
    if names is None:
        names = [Path(s).stem if isinstance(s, (str, os.PathLike)) else f"snapshot {i}" for i, s in enumerate(snaps)]
    names = [str(n) for n in names]
    learned = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
    named = dict(model.named_modules())
    module_of = {l.name: l.module for l in graph.layers}  # a reused module: several layers, one weight
    edges = [c for c in graph.connections
             if c.mode == "weight" and isinstance(named.get(module_of[c.dst]), learned)]
    layers = list(dict.fromkeys(c.dst for c in edges))
    work = copy.deepcopy(model).cpu()
    modules = dict(work.named_modules())
    x, y = fixed_batch(data)
    S, L = len(snaps), len(layers)
    grad_mean, rel_change, loss = np.zeros((S, L)), np.full((S, L), np.nan), np.zeros(S)
    prev = None
    bar = progress(total=S, desc="snapshots", enabled=show_progress)
    for t, snap in enumerate(snaps):
        state = snap if isinstance(snap, dict) else load_checkpoint(snap)
        apply_checkpoint(work, state, names[t])
        work.eval()  # deterministic gradients (no dropout) on the fixed batch
        work.zero_grad(set_to_none=True)
        out = F.cross_entropy(pick_output(work(x), output, model=type(model).__name__), y)
        out.backward()
        loss[t] = float(out.detach())
        weights = {n: modules[module_of[n]].weight.detach().clone() for n in layers}
        for j, n in enumerate(layers):
            g = modules[module_of[n]].weight.grad
            grad_mean[t, j] = float(g.abs().mean()) if g is not None else np.nan
            if prev is not None:
                rel_change[t, j] = float(torch.linalg.vector_norm(weights[n] - prev[n]) /
                                         torch.linalg.vector_norm(prev[n]).clamp_min(1e-30))
        if t == S - 1:
            edge_grad, edge_change = _edge_values(edges, graph, modules, module_of, weights, prev)
        prev = weights
        bar.update(1)
    bar.close()
    return TrainingHistory(snapshots=tuple(names), layers=tuple(layers), grad_mean=grad_mean,
                           rel_change=rel_change, loss=loss, edge_grad=edge_grad, edge_change=edge_change)


def _edge_values(edges, graph, modules, module_of, weights, prev):
    grad, change = {}, {}
    for c in edges:
        mod, dst, src = modules[module_of[c.dst]], graph.layer(c.dst), graph.layer(c.src)
        g = mod.weight.grad if mod.weight.grad is not None else torch.zeros_like(mod.weight)
        grad[(c.dst, c.src)] = weight_matrices(mod, dst, src, g)[1]
        if prev is None:
            change[(c.dst, c.src)] = np.zeros_like(grad[(c.dst, c.src)])
        else:
            diff = weight_matrices(mod, dst, src, weights[c.dst] - prev[c.dst])[1]
            base = weight_matrices(mod, dst, src, prev[c.dst])[1]
            change[(c.dst, c.src)] = (diff / np.maximum(base, 1e-30)).astype(np.float32)
    return grad, change

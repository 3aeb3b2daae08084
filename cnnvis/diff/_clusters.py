"""Neuron clusters of A mapped through the neuron matching into B's clusters: which split, which merged.

Plain numpy on label arrays (the clusterings themselves come from cnnvis.aggregate, at the application):
neuron i of A in A's cluster labels_a[i] is matched to neuron partner[i] of B, in B's cluster
labels_b[partner[i]]. Only matched pairs with a finite correlation count: an unmatched neuron has no B
cluster, and a neuron constant over the data in either model (a dead one) has no correlation to trust.
An A cluster whose counted neurons fall into two or more B clusters has split; a B cluster that receives
counted neurons from two or more A clusters has merged them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusterFlow", "cluster_flow"]


@dataclass(frozen=True)
class ClusterFlow:
    """counts (Ka, Kb) int64: matched neurons of A's cluster i whose partners lie in B's cluster j.
    split: A cluster -> the B clusters its neurons went to (only clusters with two or more);
    merged: B cluster -> the A clusters it took neurons from (only clusters with two or more)."""

    counts: np.ndarray
    split: dict
    merged: dict

    def merged_into(self, a_cluster: int) -> tuple:
        """The merged B clusters that took neurons of A's cluster `a_cluster`."""
        return tuple(j for j, src in self.merged.items() if a_cluster in src)


def cluster_flow(labels_a, partner, labels_b, correlation=None) -> ClusterFlow:
    """The flow of A's clusters into B's (see the module). labels_a (Ca,) and labels_b (Cb,) are cluster ids
    >= 0; partner (Ca,) B's neuron for each neuron of A, -1 when unmatched; correlation (Ca,) optional, NaN
    where the pair is not counted."""
    la = np.asarray(labels_a, np.int64)
    lb = np.asarray(labels_b, np.int64)
    p = np.asarray(partner, np.int64)
    if la.shape != p.shape:
        raise ValueError(f"labels_a and partner must align, got {la.shape} and {p.shape}")
    if p.size and p.max(initial=-1) >= lb.size:
        raise ValueError(f"partner names neuron {int(p.max())} of B, which has {lb.size}")
    ok = p >= 0
    if correlation is not None:
        ok &= np.isfinite(np.asarray(correlation, np.float64))
    ka = int(la.max(initial=-1)) + 1
    kb = int(lb.max(initial=-1)) + 1
    counts = np.zeros((ka, kb), np.int64)
    np.add.at(counts, (la[ok], lb[p[ok]]), 1)
    split = {int(i): tuple(int(j) for j in np.flatnonzero(counts[i])) for i in range(ka)
             if np.count_nonzero(counts[i]) >= 2}
    merged = {int(j): tuple(int(i) for i in np.flatnonzero(counts[:, j])) for j in range(kb)
              if np.count_nonzero(counts[:, j]) >= 2}
    return ClusterFlow(counts, split, merged)

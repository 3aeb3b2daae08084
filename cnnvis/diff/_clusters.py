"""Neuron clusters of A mapped through the neuron matching into B's clusters: which split, which merged.

Plain numpy on label arrays (the clusterings themselves come from cnnvis.aggregate, at the application):
neuron i of A in A's cluster labels_a[i] is matched to neuron partner[i] of B, in B's cluster
labels_b[partner[i]]. Only the pairs that can speak for a cluster's identity count: matched, with a finite
correlation (a neuron constant over the data in either model has none to trust) and, where the caller says
which, stable ones (a drifted neuron's partner is merely the least unlike it: following it would mark
nearly every cluster of two independently trained models).
An A cluster has split when two or more B clusters each take at least `min_share` of its counted neurons; a B
cluster has merged A clusters when two or more of them each give at least `min_share` of its counted neurons
(one stray neuron of a large cluster is no split).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusterFlow", "cluster_flow", "MIN_SHARE"]


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


MIN_SHARE = 0.2  # of a cluster's counted neurons, for a B (A) cluster to count in its split (merge)


def cluster_flow(labels_a, partner, labels_b, correlation=None, *, counted=None,
                 min_share: float = MIN_SHARE) -> ClusterFlow:
    """The flow of A's clusters into B's (see the module). labels_a (Ca,) and labels_b (Cb,) are cluster ids
    >= 0; partner (Ca,) B's neuron for each neuron of A, -1 when unmatched; correlation (Ca,) optional, NaN
    where the pair is not counted; counted (Ca,) bool, optional: the pairs that may count (e.g. the stable
    ones); min_share in [0, 1]: the share of a cluster's counted neurons that makes a part of a split or merge."""
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
    if counted is not None:
        ok &= np.asarray(counted, bool)
    ka = int(la.max(initial=-1)) + 1
    kb = int(lb.max(initial=-1)) + 1
    counts = np.zeros((ka, kb), np.int64)
    np.add.at(counts, (la[ok], lb[p[ok]]), 1)
    return ClusterFlow(counts, _parts(counts, min_share), _parts(counts.T, min_share))


def _parts(counts: np.ndarray, min_share: float) -> dict:
    """Row -> the columns holding at least min_share of the row's total (only rows with two or more)."""
    big = (counts > 0) & (counts >= min_share * counts.sum(1, keepdims=True))
    return {int(i): tuple(int(j) for j in np.flatnonzero(big[i])) for i in range(len(counts))
            if np.count_nonzero(big[i]) >= 2}

"""Matrix reordering for the activation facet (neurons x classes).

Classes: one order for the whole view, by spectral seriation (Atkins et al. 1998): sort the classes by the
Fiedler vector of the Laplacian of their similarity over all representative layers, so classes that excite
the same neurons sit together. Neurons: grouped by cluster, and within a cluster by their barycenter over
the class positions (the mean class position weighted by the neuron's profile), so blocks show.
"""
from __future__ import annotations

import numpy as np

__all__ = ["class_similarity_all", "spectral_order", "arrangement_cost", "class_order", "class_rank", "neuron_order"]


def class_similarity_all(profiles: list[np.ndarray]) -> np.ndarray:
    """(K, K) cosine similarity of classes over the (C_i, K) profiles of several layers, each layer weighted
    equally (a wide layer does not outvote a narrow one)."""
    K = profiles[0].shape[1]
    s = np.zeros((K, K))
    for p in profiles:
        x = np.asarray(p, np.float64)
        n = np.sqrt((x * x).sum(0))
        x = x / np.where(n > 0, n, 1.0)
        s += x.T @ x
    return s / max(len(profiles), 1)


def spectral_order(sim: np.ndarray) -> np.ndarray:
    """Order of the rows of a symmetric non-negative similarity matrix by its Fiedler vector."""
    w = np.clip(np.asarray(sim, np.float64), 0, None)
    w = 0.5 * (w + w.T)
    np.fill_diagonal(w, 0.0)
    n = w.shape[0]
    if n < 3:
        return np.arange(n, dtype=np.int64)
    lap = np.diag(w.sum(1)) - w
    _, vec = np.linalg.eigh(lap)
    f = vec[:, 1]
    if f[np.argmax(np.abs(f))] < 0:  # fix the sign so the order is deterministic
        f = -f
    return np.lexsort((np.arange(n), np.round(f, 12))).astype(np.int64)


def arrangement_cost(sim: np.ndarray, order: np.ndarray) -> float:
    """Linear-arrangement cost sum_ij sim_ij |pos_i - pos_j| (lower: similar items closer)."""
    pos = np.empty(order.size)
    pos[order] = np.arange(order.size)
    w = np.clip(sim, 0, None)
    return float((w * np.abs(pos[:, None] - pos[None, :])).sum() / 2)


def class_order(profiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(order (K,) int64, cost (2,) float64 before/after) for the classes."""
    sim = class_similarity_all(profiles)
    order = spectral_order(sim)
    ident = np.arange(sim.shape[0])
    before, after = arrangement_cost(sim, ident), arrangement_cost(sim, order)
    if after > before:  # seriation is a heuristic: never make it worse than the given order
        order, after = ident.astype(np.int64), before
    return order, np.array([before, after])


def class_rank(order: np.ndarray) -> np.ndarray:
    """(K,) display position of each class under the class order `order` (its inverse permutation)."""
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank


def neuron_order(profiles: np.ndarray, labels: np.ndarray, class_rank: np.ndarray) -> np.ndarray:
    """(C,) int64 neurons grouped by cluster id, by class barycenter within a cluster.

    class_rank (K,): display position of each class.
    """
    x = np.asarray(profiles, np.float64)
    tot = x.sum(1)
    bary = np.where(tot > 0, (x * class_rank[None, :]).sum(1) / np.where(tot > 0, tot, 1.0), -1.0)
    return np.lexsort((np.arange(labels.size), bary, labels)).astype(np.int64)

"""Placing neuron clusters in their columns: rectangle sizes and the order that reduces crossings.

Order: the layered-graph barycenter heuristic (Sugiyama et al. 1981): sweeps left to right and back, each
column sorted by the mean position of its neighbours in the columns already swept (weighted by strength),
keeping the order with the fewest crossings seen; then the transpose heuristic (Gansner et al. 1993): swap
neighbouring clusters of a column while that removes crossings. Crossings are counted between the drawn connections of
every pair of columns (two connections between the same two columns cross when their ends swap order).
"""
from __future__ import annotations

import numpy as np

__all__ = ["count_crossings", "barycenter_order", "transpose_refine", "rect_sizes"]


def _positions(orders: list[np.ndarray]) -> list[np.ndarray]:
    """Normalised position (0..1, by rank) of every cluster id of every column."""
    out = []
    for o in orders:
        p = np.empty(o.size)
        p[o] = (np.arange(o.size) + 0.5) / max(o.size, 1)
        out.append(p)
    return out


def count_crossings(edges: np.ndarray, orders: list[np.ndarray]) -> int:
    """Crossings among edges (E, 4) int rows (src column, src cluster, dst column, dst cluster)."""
    if len(edges) == 0:
        return 0
    pos = _positions(orders)
    total = 0
    pairs = edges[:, 0] * (len(orders) + 1) + edges[:, 2]
    for key in np.unique(pairs):
        e = edges[pairs == key]
        if len(e) < 2:
            continue
        u = pos[e[0, 0]][e[:, 1]]
        v = pos[e[0, 2]][e[:, 3]]
        du = u[:, None] - u[None, :]
        dv = v[:, None] - v[None, :]
        total += int(np.triu((du * dv) < 0, 1).sum())
    return total


def barycenter_order(sizes: list[int], edges: np.ndarray, weights: np.ndarray, *, sweeps: int = 8):
    """(orders, crossings before, crossings after): orders[c] is the top-to-bottom cluster ids of column c.

    Before = the identity order (the unordered layout)."""
    orders = [np.arange(n) for n in sizes]
    before = count_crossings(edges, orders)
    best, best_c = [o.copy() for o in orders], before
    if len(edges) == 0:
        return best, before, before
    n_col = len(sizes)
    for s in range(sweeps):
        forward = s % 2 == 0
        cols = range(1, n_col) if forward else range(n_col - 2, -1, -1)
        for c in cols:
            pos = _positions(orders)
            # neighbours on the side already swept
            if forward:
                sel = (edges[:, 2] == c) & (edges[:, 0] < c)
                mine, other_col, other = edges[sel, 3], edges[sel, 0], edges[sel, 1]
            else:
                sel = (edges[:, 0] == c) & (edges[:, 2] > c)
                mine, other_col, other = edges[sel, 1], edges[sel, 2], edges[sel, 3]
            if mine.size == 0:
                continue
            w = weights[sel]
            other_pos = np.array([pos[oc][o] for oc, o in zip(other_col, other)])
            num = np.bincount(mine, weights=w * other_pos, minlength=sizes[c])
            den = np.bincount(mine, weights=w, minlength=sizes[c])
            bary = np.where(den > 0, num / np.where(den > 0, den, 1), pos[c])  # unconnected: stay put
            orders[c] = np.lexsort((pos[c], bary))
        cr = count_crossings(edges, orders)
        if cr < best_c:
            best, best_c = [o.copy() for o in orders], cr
    best = transpose_refine(best, edges)
    return best, before, count_crossings(edges, best)


def transpose_refine(orders: list[np.ndarray], edges: np.ndarray, *, passes: int = 4) -> list[np.ndarray]:
    """Swap neighbouring clusters within a column while the crossings at that column decrease."""
    orders = [o.copy() for o in orders]
    for _ in range(passes):
        improved = False
        for c in range(len(orders)):
            local = edges[(edges[:, 0] == c) | (edges[:, 2] == c)]
            if len(local) < 2 or orders[c].size < 2:
                continue
            cur = count_crossings(local, orders)
            for i in range(orders[c].size - 1):
                o = orders[c]
                o[i], o[i + 1] = o[i + 1], o[i]
                new = count_crossings(local, orders)
                if new < cur:
                    cur, improved = new, True
                else:
                    o[i], o[i + 1] = o[i + 1], o[i]
        if not improved:
            break
    return orders


def rect_sizes(importance: np.ndarray, area: float, max_width: float, *, min_share: float = 0.03,
               aspect: float = 1.25) -> np.ndarray:
    """(n, 2) width, height of rectangles whose areas share `area` in proportion to importance (at least
    min_share each, so small clusters stay visible); squarish (width/height = aspect) up to max_width."""
    imp = np.clip(np.nan_to_num(np.asarray(importance, np.float64)), 0, None)
    share = imp / imp.sum() if imp.sum() > 0 else np.full(imp.size, 1.0 / max(imp.size, 1))
    share = np.maximum(share, min_share)
    a = area * share / share.sum()
    w = np.minimum(np.sqrt(a * aspect), max_width)
    return np.stack([w, a / w], 1)

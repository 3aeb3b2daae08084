"""Findings from the training snapshots: weight-change (a layer cluster off its neighbours' trend) and gradient
(vanishing or exploding along the depth). Both need `Analysis.history`; without it they are skipped.

weight-change. Per layer cluster (the viewer's columns, in order) and snapshot t >= 1, the cluster's relative
weight change is the mean over its weighted layers of ||W_t - W_{t-1}|| / ||W_{t-1}|| (the chart's series);
v_c is its geometric mean over the transitions. The trend at an inner cluster c is the geometric mean of
its neighbours, sqrt(v_{c-1} v_{c+1}) (a straight line in log scale), and its departure the ratio
v_c / trend. A cluster is a finding when the ratio is at least `Thresholds.change_ratio` (default 2) or at
most its inverse, and its |log ratio| is strictly larger than both neighbours' (a jump or a drop raises its
own departure and, half as much, its neighbours': only the cluster itself is reported; a step between two
levels is not a departure). The two end clusters have no trend to depart from and are never reported.
Evidence: relative_change, neighbour_trend, ratio, previous, next, n_transitions. Severity: high when the
ratio is beyond 4x either way, else medium (the paper's BaseCNN jump at its third conv group).

gradient. With g_s the history's mean |dLoss/dW| of the first and last weighted layers at snapshot s, the
along-depth ratio R is the geometric mean over snapshots of g_s(first) / g_s(last). R at most
1 / `Thresholds.gradient_ratio` (default 1/100) is a vanishing gradient, R at least the threshold an
exploding one (toward the input); an infinite mean gradient, or a NaN one with a non-finite loss, is an
exploding gradient of high severity. Evidence: ratio, first_gradient, last_gradient (geometric means),
ratio_first_snapshot, ratio_last_snapshot, n_snapshots (n_nonfinite for non-finite ones). Severity: high
beyond the threshold squared (10^4), else medium. A layer whose mean gradient is NaN while the loss is
finite got no gradient (frozen weights): it is left out, with a note.
"""
from __future__ import annotations

import numpy as np

from cnnvis.diagnose._context import Context
from cnnvis.diagnose._findings import Finding

__all__ = ["weight_change", "gradient", "cluster_change", "departures"]

_FLOOR = 1e-30  # zero change or gradient: a finite, extreme value in log scale


def cluster_change(history, layer_clusters) -> tuple[list, np.ndarray]:
    """(columns holding weighted layers of the history, (T, X) mean relative change per transition)."""
    cols, vals = [], []
    rc = np.asarray(history.rel_change, np.float64)[1:]
    for lc in layer_clusters:
        idx = [j for j, n in enumerate(history.layers) if n in lc.layers]
        if idx:
            cols.append(lc)
            with np.errstate(all="ignore"):
                vals.append(np.nanmean(rc[:, idx], axis=1))
    return cols, np.stack(vals, axis=1) if vals else np.zeros((rc.shape[0], 0))


def departures(v: np.ndarray) -> np.ndarray:
    """(X,) log(v_c / sqrt(v_{c-1} v_{c+1})) for inner clusters, NaN at the ends."""
    lv = np.log(np.maximum(v, _FLOOR))
    d = np.full(v.shape, np.nan)
    if v.size >= 3:
        d[1:-1] = lv[1:-1] - 0.5 * (lv[:-2] + lv[2:])
    return d


def weight_change(ctx: Context) -> list[Finding]:
    h, thr = ctx.analysis.history, ctx.thresholds
    cols, per_t = cluster_change(h, ctx.layer_clusters)
    ok = np.isfinite(per_t).all(axis=1)
    per_t = per_t[ok]
    if per_t.shape[0] == 0 or len(cols) < 3:
        return []
    v = np.exp(np.log(np.maximum(per_t, _FLOOR)).mean(axis=0))
    d = departures(v)
    a = np.abs(d)
    lim = np.log(thr.change_ratio)
    out = []
    for c in range(1, len(cols) - 1):
        if not (a[c] >= lim and a[c] > np.nan_to_num(a[c - 1]) and a[c] > np.nan_to_num(a[c + 1])):
            continue
        ratio = float(np.exp(d[c]))
        trend = float(np.sqrt(v[c - 1] * v[c + 1]))
        lc = cols[c]
        weighted = tuple(n for n in h.layers if n in lc.layers)
        ev = dict(relative_change=float(v[c]), neighbour_trend=trend, ratio=ratio, previous=float(v[c - 1]),
                  next=float(v[c + 1]), n_transitions=int(per_t.shape[0]))
        way = f"{ratio:.2g}x above" if ratio > 1 else f"{1 / ratio:.2g}x below"
        msg = (f"layer cluster {lc.name}: its relative weight change between snapshots ({v[c]:.3g}) is {way} the "
               f"trend of its neighbours {cols[c - 1].name} and {cols[c + 1].name} ({trend:.3g}); look for "
               f"dead or saturated neurons there and consider leaky ReLU or another learning rate")
        out.append(Finding(kind="weight-change", severity="high" if abs(d[c]) > np.log(4.0) else "medium",
                           score=float(abs(d[c])), layer=weighted[0], layers=weighted, neurons=(), evidence=ev,
                           message=msg, facet="chart",
                           clusters=(lc.name, cols[c - 1].name, cols[c + 1].name)))
    return out


def gradient(ctx: Context) -> list[Finding]:
    h, thr = ctx.analysis.history, ctx.thresholds
    g = np.asarray(h.grad_mean, np.float64)
    layers = tuple(h.layers)
    if g.size == 0:
        return []
    loss = np.asarray(h.loss, np.float64)
    # inf, or NaN with a non-finite loss: the training diverged. NaN with a finite loss: a layer whose
    # weights got no gradient (frozen): left out of the ratio.
    bad = np.isinf(g) | (np.isnan(g) & ~np.isfinite(loss)[:, None])
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        s = int(np.flatnonzero(bad[:, j])[0])
        ev = dict(n_nonfinite=int(bad.sum()), n_snapshots=int(g.shape[0]), first_snapshot=s)
        msg = (f"{layers[j]}: the mean |gradient| is not finite from snapshot {h.snapshots[s]!r} on "
               f"({int(bad.sum())} layer-snapshot values): the training diverged; lower the learning rate or "
               f"clip gradients")
        return [Finding(kind="gradient", severity="high", score=1000.0,  # above any finite ratio's log10
                        layer=layers[j], neurons=(), evidence=ev, message=msg, facet="chart",
                        clusters=ctx.columns([layers[j]]))]
    keep = ~np.isnan(g).any(axis=0)
    if not keep.all():
        ctx.notes.append(f"no gradient recorded for {', '.join(n for n, k in zip(layers, keep) if not k)} "
                         "(frozen weights?): left out of the gradient check")
    g, layers = g[:, keep], tuple(n for n, k in zip(layers, keep) if k)
    if len(layers) < 2:
        return []
    lg = np.log(np.maximum(g, _FLOOR))
    r = lg[:, 0] - lg[:, -1]
    lr = float(r.mean())
    lim = np.log(thr.gradient_ratio)
    if abs(lr) < lim:
        return []
    first, last = layers[0], layers[-1]
    ev = dict(ratio=float(np.exp(lr)), first_gradient=float(np.exp(lg[:, 0].mean())),
              last_gradient=float(np.exp(lg[:, -1].mean())), ratio_first_snapshot=float(np.exp(r[0])),
              ratio_last_snapshot=float(np.exp(r[-1])), n_snapshots=int(g.shape[0]))
    if lr < 0:
        msg = (f"{first}: the mean |gradient| is {np.exp(-lr):.3g}x smaller than at {last} (geometric mean over "
               f"{g.shape[0]} snapshots): a vanishing gradient, the first layers barely learn; try ReLU-like "
               f"activations, batch normalisation or residual connections")
    else:
        msg = (f"{first}: the mean |gradient| is {np.exp(lr):.3g}x larger than at {last} (geometric mean over "
               f"{g.shape[0]} snapshots): the gradient explodes toward the input; lower the learning rate, "
               f"clip gradients or normalise the layers")
    return [Finding(kind="gradient", severity="high" if abs(lr) >= 2 * lim else "medium", score=float(abs(lr) / np.log(10)),
                    layer=first, layers=(first, last), neurons=(), evidence=ev, message=msg, facet="chart",
                    clusters=ctx.columns([first, last]))]

"""Per-column series for the chart under the view: what the file holds about each layer cluster.

With training snapshots: the mean over the column's weighted layers of the history's average |dL/dW| and
relative weight change, per snapshot. Always (on the analysed, last, snapshot): the fraction of the column's
dead neurons (cnnvis.aggregate._dead; only layers with a ReLU have them), the representative layer's mean
activation, and its mean importance (|activation x gradient of the predicted-class score|, the analysis's
`contribution`). NaN marks a column where a series does not apply; `na` says why. A series that applies to
no column comes last.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnvis.aggregate._dead import dead_mask, relu_inputs

__all__ = ["ColumnSeries", "column_series", "HISTORY_SERIES", "FILE_SERIES", "SERIES_NA"]

HISTORY_SERIES = ("average gradient", "relative weight change")
FILE_SERIES = ("dead-neuron fraction", "mean activation", "importance")
SERIES_NA = {"average gradient": "no gradient recorded for this snapshot or layer",
       "relative weight change": "the first snapshot has no earlier weights to change from",
       "dead-neuron fraction": "no ReLU in this layer cluster (only ReLU neurons can be dead), or not the "
                               "analysed (last) snapshot",
       "mean activation": "measured on the analysed (last) snapshot only",
       "importance": "no importance in the file for this layer, or not the analysed (last) snapshot"}


@dataclass(frozen=True)
class ColumnSeries:
    """names (S,) str; snapshots (T,) str; values (S, T, X) float32 for X columns, NaN where absent;
    na (S,) str: why a series has no value somewhere."""

    names: tuple
    snapshots: tuple
    values: np.ndarray
    na: tuple


def column_series(analysis, clusters) -> ColumnSeries:
    """The series of every column (see the module docstring); the snapshot series only with a history."""
    h = analysis.history
    names = (HISTORY_SERIES if h is not None else ()) + FILE_SERIES
    snaps = tuple(h.snapshots) if h is not None else ("final",)
    T, X = len(snaps), len(clusters)
    out = np.full((len(names), T, X), np.nan, np.float32)
    feeds = set(relu_inputs(analysis.graph))
    s = 0
    if h is not None:
        col = {n: i for i, n in enumerate(h.layers)}
        with np.errstate(all="ignore"):
            for c, lc in enumerate(clusters):
                idx = [col[n] for n in lc.layers if n in col]
                if not idx:
                    continue
                for k, v in enumerate((np.asarray(h.grad_mean)[:, idx], np.asarray(h.rel_change)[:, idx])):
                    n = (~np.isnan(v)).sum(1)
                    out[k, :, c] = np.where(n > 0, np.nansum(v, 1) / np.maximum(n, 1), np.nan)
        s = 2
    for c, lc in enumerate(clusters):
        # dead: the layers that feed a ReLU (each ReLU's neurons once), else whatever layer has a ReLU
        masks = [dead_mask(analysis, n, feeds=feeds) for n in lc.layers if n in feeds and n in analysis.stats]
        if not masks:
            masks = [dead_mask(analysis, lc.representative, feeds=feeds)]
        masks = [m for m in masks if m is not None]
        if masks:
            out[s, T - 1, c] = float(np.concatenate(masks).mean())
        st = analysis.stats.get(lc.representative)
        if st is not None:
            w = st.count.astype(np.float64)
            out[s + 1, T - 1, c] = float(np.mean((np.nan_to_num(st.mean) * w[:, None]).sum(0) / max(w.sum(), 1.0)))
        imp = analysis.importance.get(lc.representative)
        if imp is not None and np.size(imp.contribution):
            out[s + 2, T - 1, c] = float(np.nanmean(np.asarray(imp.contribution, np.float64)))
    # a series that applies to no column (dead neurons in a net without ReLUs) goes last: the chart opens on
    # one that has something to say
    order = list(range(s)) + sorted(range(s, len(names)), key=lambda k: bool(np.isnan(out[k]).all()))
    names = tuple(names[k] for k in order)
    return ColumnSeries(names=names, snapshots=snaps, values=out[order], na=tuple(SERIES_NA[n] for n in names))

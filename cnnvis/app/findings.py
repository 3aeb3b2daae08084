"""Findings in the viewer: the analysis diagnosed once per session, its findings placed on every Scene.

`cnnvis.diagnose(analysis, aggregation=...)` runs once, on the session's first aggregation (the one
`cnnvis diagnose` computes too), so the numbers the viewer shows are those of `cnnvis diagnose` and stay
put while the user edits. Each Scene the session builds then gets the findings as FindingMarks for its
own aggregation: a finding's layer -> the column holding it (after an expand, the new column of that
layer); its neurons -> indices in the column's representative layer (the same neurons when the finding's
layer and the representative are one unit of equal width, e.g. a conv and its ReLU) -> the neuron clusters
holding them now (a moved neuron takes its highlight along) and their rows in the activation matrices.
"""
from __future__ import annotations

import numpy as np

from cnnvis.layout import FindingMark
from cnnvis.layout._build import matrix_rows

__all__ = ["SceneFindings", "finding_marks"]

# The chart series and curve colouring that show each snapshot-based kind (cnnvis.layout._build.CHART_SERIES).
SERIES = {"weight-change": "relative weight change", "gradient": "average gradient"}
EDGE_MODE = {"weight-change": "change", "gradient": "gradient"}   # every other kind: "weight"


class SceneFindings:
    """The diagnosis of one analysis and its marks on each Scene of a session.

    aggregation: the session's first Aggregation (whose layer clusters the findings name); diagnose_options
    go to cnnvis.diagnose (kinds, thresholds)."""

    def __init__(self, analysis, aggregation, **diagnose_options):
        from cnnvis.diagnose import diagnose

        self.analysis = analysis
        self.diagnosis = diagnose(analysis, aggregation=aggregation, **diagnose_options)
        members = {lc.name: lc.layers for lc in aggregation.layer_clusters}
        # the layers a finding covers: its own, and those of the other columns it names (a weight change's
        # neighbours), kept as layers since column names change when a column is expanded
        self._covered = [tuple(dict.fromkeys([*f.layers, *(n for c in f.clusters[1:] for n in members.get(c, ()))]))
                         for f in self.diagnosis]

    def marks(self, aggregation, chart_names=()) -> tuple:
        return finding_marks(self.analysis, self.diagnosis, aggregation, chart_names, self._covered)

    def attach(self, scene, aggregation):
        """The Scene (laid out from `aggregation`) with its findings."""
        return scene.replace(findings=self.marks(aggregation, scene.chart_names))


def finding_marks(analysis, findings, aggregation, chart_names=(), covered=None) -> tuple:
    """FindingMarks numbered 1..K in the order of `findings`, placed on `aggregation`'s columns.

    covered: per finding, the layers it covers (default: its `layers`); chart_names: the Scene's series."""
    col_of: dict = {}
    for c, lc in enumerate(aggregation.layer_clusters):
        for name in lc.layers:
            col_of.setdefault(name, c)
    out = []
    for i, f in enumerate(findings):
        column = col_of.get(f.layer, -1)
        layers = covered[i] if covered is not None else f.layers
        others = sorted({col_of[n] for n in layers if n in col_of} - {column})
        neurons, clusters, rows = _place_neurons(analysis, aggregation, f, column)
        unplaced = len(f.neurons) if column >= 0 and not neurons else 0
        series = SERIES.get(f.kind, "") if f.facet == "chart" else ""
        out.append(FindingMark(
            number=i + 1, kind=f.kind, severity=f.severity, layer=f.layer, message=f.message, facet=f.facet,
            column=column, columns=((column,) if column >= 0 else ()) + tuple(others),
            clusters=_by_count(clusters), neurons=neurons, neuron_cluster=clusters, neuron_row=rows,
            series=series if series in tuple(chart_names) else "", edge_mode=EDGE_MODE.get(f.kind, "weight"),
            n_unplaced=unplaced))
    return tuple(out)


def _place_neurons(analysis, agg, finding, column) -> tuple:
    """(neurons in the column's representative layer, their clusters, their matrix rows), or three empty
    tuples when the finding's neurons are not the representative's."""
    none = ((), (), ())
    if column < 0 or not finding.neurons:
        return none
    lc, nc = agg.layer_clusters[column], agg.neurons[column]
    g = analysis.graph
    if finding.layer != nc.layer:
        unit = next((u for u in lc.units if finding.layer in u), ())
        if nc.layer not in unit or g.layer(finding.layer).n_neurons != g.layer(nc.layer).n_neurons:
            return none
    idx = np.asarray(finding.neurons, np.int64)
    if idx.min() < 0 or idx.max() >= nc.labels.size:
        return none
    labels = nc.labels[idx]
    rows = np.empty(idx.size, np.int64)
    for k in np.unique(labels):
        row_of = {int(n): j for j, n in enumerate(matrix_rows(nc, int(k)))}
        sel = labels == k
        rows[sel] = [row_of[int(n)] for n in idx[sel]]
    return tuple(idx.tolist()), tuple(labels.tolist()), tuple(rows.tolist())


def _by_count(labels) -> tuple:
    """Distinct cluster ids, most frequent first (ties: smaller id)."""
    ids, counts = np.unique(np.asarray(labels, np.int64), return_counts=True)
    return tuple(int(ids[j]) for j in np.lexsort((ids, -counts)))

"""`cnnvis-gl` on a diff file (`cnnvis diff -o`): A's overview with the diff on it.

Built from the Scene's existing fields only (the viewer is unchanged): the chart's first two series are, per
column, the CKA of its weighted layers with their matched layers of B and the fraction of their neurons that
are stable; the panel's findings list starts with one entry per weighted layer with drifted or unmatched
neurons, the most changed first (click: the layer's column, those neurons ticked in the activation matrix; the message names each
one's partner in B with its correlation), followed by the diagnosis of A (numbered after them). Any other
file goes to the session's own hook.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

__all__ = ["scene_for", "DiffMarks"]

SERIES = ("CKA with B", "stable neurons")
_LEGEND = ("CKA with B (the column's weighted layers and their matched layers)",
           "stable neurons (fraction whose partner in B correlates >= the threshold)")
_NA = "the diff compares the analysed models only"
_PARTNERS_LISTED = 6


@dataclasses.dataclass(frozen=True)
class _DiffFinding:
    """What cnnvis.app.findings.finding_marks reads of a finding."""

    kind: str
    severity: str
    layer: str
    neurons: tuple
    message: str
    facet: str = "matrix"
    clusters: tuple = ()

    @property
    def layers(self) -> tuple:
        return (self.layer,)


def scene_for(path):
    """The viewer's hook: a diff file gets A's Scene with the diff; anything else cnnvis.app.session's."""
    from cnnvis.app import session
    from cnnvis.diff._file import path_is_diff

    if path is None or not path_is_diff(os.fspath(path)):
        return session.scene_for(path)
    from cnnvis.diff import load_diff

    diff, a, _ = load_diff(os.fspath(path))
    s = session.Session(a)
    marks = DiffMarks(diff, a)
    build = s._build  # every Scene the session builds (edits, undo) gets the diff too
    s._build = lambda agg: marks.attach(build(agg), agg)
    s.scene = s._build(s.aggregation)
    return s.scene, s.on_edit


class DiffMarks:
    """The diff's chart series and findings, placed on each Scene of A's session."""

    def __init__(self, diff, analysis):
        self.diff, self.analysis = diff, analysis
        moved = [l for l in diff.layers if (l.status != "stable").any()]
        moved.sort(key=lambda l: -(l.status != "stable").mean())  # most changed first, then in layer order
        self.findings = [self._finding(l) for l in moved]

    def _finding(self, l):
        c = l.counts()
        moved = np.flatnonzero(l.status != "stable")
        listed = ", ".join(f"{i}->{p}" + (f" r={r:.2f}" if np.isfinite(r) else "") if p >= 0 else f"{i}->none"
                           for i, p, r in zip(moved, l.partner[moved], l.correlation[moved]))
        more = len(moved) - _PARTNERS_LISTED
        listed = ", ".join(listed.split(", ")[:_PARTNERS_LISTED]) + (f", ... ({more} more)" if more > 0 else "")
        msg = (f"{l.a}: {c['drifted']} drifted, {c['unmatched']} unmatched of {len(l.status)} neurons against B's "
               f"{l.b or '(none)'} (CKA {l.cka:.3f}); neuron->partner: {listed}")
        severity = "high" if c["stable"] < len(l.status) / 2 else "medium"
        return _DiffFinding(kind="diff", severity=severity, layer=l.a, neurons=tuple(int(i) for i in moved),
                            message=msg)

    def attach(self, scene, agg):
        from cnnvis.app.findings import finding_marks

        names, values, legend, na = self._chart(scene, agg)
        ours = finding_marks(self.analysis, self.findings, agg, names)
        theirs = [dataclasses.replace(m, number=len(ours) + i + 1) for i, m in enumerate(scene.findings)]
        return scene.replace(chart_names=names, chart_values=values, chart_legend=legend, chart_na=na,
                             findings=tuple(ours) + tuple(theirs))

    def _chart(self, scene, agg):
        X, T = len(agg.layer_clusters), len(scene.chart_snapshots)
        out = np.full((len(SERIES), T, X), np.nan, np.float32)
        by_layer = {l.a: l for l in self.diff.layers}
        for c, lc in enumerate(agg.layer_clusters):
            ls = [by_layer[n] for n in lc.layers if n in by_layer and by_layer[n].b is not None]
            if ls and T:
                out[0, T - 1, c] = np.mean([l.cka for l in ls])
                out[1, T - 1, c] = sum(l.counts()["stable"] for l in ls) / sum(len(l.status) for l in ls)
        old = np.asarray(scene.chart_values, np.float32).reshape(-1, T, X)
        legend = tuple(scene.chart_legend) or tuple(scene.chart_names)
        return (SERIES + tuple(scene.chart_names), np.concatenate([out, old]), _LEGEND + legend,
                (_NA,) * len(SERIES) + tuple(scene.chart_na or ("",) * len(scene.chart_names)))

"""Analysis file -> Aggregation -> Scene, and the viewer's edit requests applied as pure functions.

This is the glue between the stages (docs/architecture.md); `cnnvis-gl` takes `scene_for` as its hook so
the viewer itself never sees an Analysis.
"""
from __future__ import annotations

import os

from cnnvis.errors import CnnvisError

__all__ = ["Session", "scene_for"]


class Session:
    """One open analysis: the current Aggregation and Scene, updated by edits.

    Each edit is a pure function from one Aggregation to the next (cnnvis.aggregate); the Scene is laid
    out again and handed back to the viewer, which re-uploads only the buffers whose arrays changed.
    findings: diagnose the analysis (cnnvis.app.findings) and put its findings on every Scene.
    Undo and Redo walk the stack of aggregations the edits made (`undo_depth`, `redo_depth` deep).
    """

    def __init__(self, analysis, *, findings: bool = True, **aggregate_options):
        from cnnvis.aggregate import aggregate
        from cnnvis.layout import build_scene

        self.analysis = analysis
        self.aggregation = aggregate(analysis, **aggregate_options)
        self._build_scene = build_scene
        self.findings = None
        if findings:  # diagnosed once (cnnvis diagnose's numbering); every Scene built gets them, edits included
            from cnnvis.app.findings import SceneFindings

            self.findings = SceneFindings(analysis, self.aggregation)
            self._build_scene = lambda a, agg: self.findings.attach(build_scene(a, agg), agg)
        self.scene = self._build_scene(analysis, self.aggregation)
        self._undo: list = []   # aggregations before each edit, oldest first
        self._redo: list = []   # aggregations an Undo went back from, latest last

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    @property
    def redo_depth(self) -> int:
        return len(self._redo)

    def on_edit(self, edit):
        """Apply a viewer edit request (cnnvis.layout's edit protocol, addressed by the Scene's stable ids);
        returns the new Scene, or None if the aggregation does not change (SelectSnapshot: the chart
        highlight is the viewer's own; the file keeps per-edge values of the last snapshot only)."""
        from cnnvis import aggregate as ag
        from cnnvis.layout import CollapseColumn, ExpandColumn, MergeBundles, MoveNeuron, Redo, Undo

        agg, a, s = self.aggregation, self.analysis, self.scene
        if isinstance(edit, (Undo, Redo)):
            back, forth = (self._undo, self._redo) if isinstance(edit, Undo) else (self._redo, self._undo)
            if not back:
                raise CnnvisError(f"nothing to {'undo' if isinstance(edit, Undo) else 'redo'}")
            forth.append(agg)
            self.aggregation = back.pop()
            self.scene = self._build_scene(a, self.aggregation)
            return self.scene
        if isinstance(edit, MoveNeuron):
            # an edit made by hand may name only Scene rows; the Scene's id tables say what they mean
            layer = edit.layer or str(s.column_layer[edit.column])
            neuron = edit.neuron if edit.neuron >= 0 else int(s.patch_neuron[edit.patch])
            agg = ag.move_neuron(a, agg, layer, neuron, edit.dst_cluster)
        elif isinstance(edit, MergeBundles):
            (sa, da, ba), (sb, db, bb) = (tuple(int(v) for v in (i if len(i) else s.bundle_id[k]))
                                          for i, k in ((edit.a_id, edit.a), (edit.b_id, edit.b)))
            if (sa, da) != (sb, db):
                raise CnnvisError("only bundles between the same two layer clusters can be merged")
            agg = ag.merge_bundles(agg, agg.layer_clusters[sa].name, agg.layer_clusters[da].name, ba, bb)
        elif isinstance(edit, CollapseColumn):
            lc = agg.layer_clusters[edit.column]
            if lc.expanded_from is None:
                raise CnnvisError(f"layer cluster {lc.name!r} was not expanded: nothing to collapse")
            agg = ag.collapse_layer_clusters(a, agg, edit.column)
        elif isinstance(edit, ExpandColumn):
            lc = agg.layer_clusters[edit.column]
            if lc.expanded_from is not None:
                agg = ag.collapse_layer_clusters(a, agg, edit.column)
            else:
                agg = ag.expand_layer_cluster(a, agg, edit.column)
        else:
            return None
        self._undo.append(self.aggregation)
        self._redo.clear()
        self.aggregation = agg
        self.scene = self._build_scene(a, agg)
        return self.scene


def scene_for(path):
    """The viewer's hook: a .cnnvis path (None for the demo) -> (Scene, on_edit)."""
    from cnnvis.analysis import Analysis
    from cnnvis.app.demo import demo_analysis_path

    analysis = Analysis.load(demo_analysis_path() if path is None else os.fspath(path))
    session = Session(analysis)
    return session.scene, session.on_edit

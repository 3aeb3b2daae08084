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
    """

    def __init__(self, analysis, **aggregate_options):
        from cnnvis.aggregate import aggregate
        from cnnvis.layout import build_scene

        self.analysis = analysis
        self.aggregation = aggregate(analysis, **aggregate_options)
        self.scene = build_scene(analysis, self.aggregation)
        self._build_scene = build_scene

    def on_edit(self, edit):
        """Apply a viewer edit request (cnnvis.gl edits); returns the new Scene, or None if nothing changes."""
        from cnnvis import aggregate as ag
        from cnnvis.gl._edits import ExpandColumn, MergeBundles, MoveNeuron
        from cnnvis.layout._build import bundle_edges

        agg, a = self.aggregation, self.analysis
        if isinstance(edit, MoveNeuron):
            layer = agg.layer_clusters[edit.column].representative
            neuron = int(self.scene.patch_neuron[edit.patch])
            agg = ag.move_neuron(a, agg, layer, neuron, edit.dst_cluster)
        elif isinstance(edit, MergeBundles):
            ids = bundle_edges(agg)[4]  # Scene.curve_bundle k -> (bundle-set index, bundle index)
            (sa, ba), (sb, bb) = ids[edit.a], ids[edit.b]
            if sa != sb:
                raise CnnvisError("only bundles between the same two layer clusters can be merged")
            bs = agg.bundles[sa]
            agg = ag.merge_bundles(agg, bs.src, bs.dst, ba, bb)
        elif isinstance(edit, ExpandColumn):
            lc = agg.layer_clusters[edit.column]
            if lc.expanded_from is not None:
                agg = ag.collapse_layer_clusters(a, agg, edit.column)
            else:
                agg = ag.expand_layer_cluster(a, agg, edit.column)
        else:
            return None
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

"""`cnnvis-gl` on a diff file (`cnnvis diff -o`): A's overview with the diff on it.

Built from the Scene's generic fields (the viewer knows nothing of diffs):
- chart: the first two series are, per column, the CKA of its weighted layers with their matched layers of
  B and the fraction of their neurons that are stable;
- findings: one entry per weighted layer with drifted or unmatched neurons, the most changed first (click:
  the layer's column, those neurons ticked in the activation matrix; the message names each one's partner
  in B with its correlation), followed by the diagnosis of A (numbered after them);
- neuron status: every patch of A's neurons framed in its status's colour (`Scene.patch_tint`; palette
  STABLE, DRIFTED, UNMATCHED), explained in the legend (`Scene.legend_extra`);
- split and merged clusters: B's analysis is clustered as A's is (cnnvis.aggregate's cluster_neurons, A's
  options and class order) for the layer of B matched to each column's representative; A's clusters are
  mapped through the stable neurons' partners (cnnvis.diff.cluster_flow) and a cluster of A whose neurons went
  to two or more of B's clusters ("split"), or to a B cluster that also took another A cluster's ("merged"),
  each part at least a fifth of the cluster's stable neurons, is
  outlined (`Scene.rect_mark`, SPLIT_MERGE) with a badge and a tooltip line naming the B clusters;
- a click on a patch opens the neuron's card in the panel (`Scene.details`): its status, its partner in
  B (layer, index, correlation, B's cluster) or "unmatched", and A's and B's learned-feature patches of
  the pair (`Scene.detail_atlas`).
The representative of a column may be a layer of the weighted layer's unit (relu2 for conv2): its neurons
are the weighted layer's when the counts agree, and B's counterpart is B's layer of the same name when B
has one of that width, else B's matched weighted layer. Any other file goes to the session's own hook.
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
_PICTURES = 4   # learned-feature patches of each neuron on its card (A's, then its partner's in B)


def _ids(ids, most: int = 6) -> str:
    """Cluster ids as text, at most `most` of them ("0, 1, 2, ... (9 in all)")."""
    ids = [str(i) for i in ids]
    return ", ".join(ids) if len(ids) <= most else ", ".join(ids[:most]) + f", ... ({len(ids)} in all)"


def _rgba(c) -> tuple:
    return tuple(float(v) for v in c)


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

    diff, a, b = load_diff(os.fspath(path))
    s = session.Session(a, decorate=DiffMarks(diff, a, b).attach)  # every Scene (edits, undo) gets the diff
    return s.scene, s.request


class DiffMarks:
    """The diff's chart series and findings, placed on each Scene of A's session."""

    def __init__(self, diff, analysis, analysis_b=None):
        self.diff, self.analysis, self.analysis_b = diff, analysis, analysis_b
        self._b_neurons: dict = {}   # B's layer -> its NeuronClusters (clustered once per session)
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
        scene = scene.replace(chart_names=names, chart_values=values, chart_legend=legend, chart_na=na,
                              findings=tuple(ours) + tuple(theirs))
        return self._neurons(scene, agg)

    # -- neuron status, split/merge marks, neuron cards -------------------------------------------------------
    def _column_diff(self, agg, c):
        """(LayerDiff, B's layer standing for the column's representative) of column c, or (None, None)."""
        nc, lc = agg.neurons[c], agg.layer_clusters[c]
        by_layer = {l.a: l for l in self.diff.layers}
        l = by_layer.get(nc.layer)
        if l is None:   # the representative is another layer of a weighted layer's unit (relu2 of conv2)
            unit = next((u for u in lc.units if nc.layer in u), ())
            l = next((by_layer[n] for n in unit if n in by_layer), None)
            if l is not None and len(l.status) != nc.labels.size:
                l = None
        if l is None or l.b is None:
            return l, None
        b = self.analysis_b
        if b is None:
            return l, None
        width = b.graph.layer(l.b).n_neurons
        if nc.layer != l.a and nc.layer in b.stats and b.graph.layer(nc.layer).n_neurons == width:
            return l, nc.layer   # B's namesake of the representative (relu2 for A's relu2 of conv2)
        return l, (l.b if l.b in b.stats else None)

    def _b_clusters(self, agg, layer_b):
        if layer_b not in self._b_neurons:
            from cnnvis.aggregate._neurons import cluster_neurons
            from cnnvis.aggregate._reorder import class_rank

            self._b_neurons[layer_b] = cluster_neurons(self.analysis_b, layer_b, agg.options,
                                                       class_rank(agg.class_order))
        return self._b_neurons[layer_b]

    def _neurons(self, scene, agg):
        from cnnvis.diff import cluster_flow
        from cnnvis.layout import RECT_CLUSTER, NeuronDetail
        from cnnvis.layout import _palette as pal
        from cnnvis.layout._atlas import patch_atlas

        colour = {"stable": pal.STABLE, "drifted": pal.DRIFTED, "unmatched": pal.UNMATCHED}
        s = scene
        P, R = s.n_patches, s.n_rects
        tint = np.zeros((P, 4), np.float32)
        mark = np.zeros((R, 4), np.float32)
        badge, note = [""] * R, [""] * R
        patch_detail = np.full(P, -1, np.int32)
        details, images, index = [], [], {}
        for c in range(len(agg.layer_clusters)):
            l, layer_b = self._column_diff(agg, c)
            if l is None:
                continue
            nc = agg.neurons[c]
            flow, nb = None, None
            if layer_b is not None:
                nb = self._b_clusters(agg, layer_b)
                flow = cluster_flow(nc.labels, l.partner, nb.labels, l.correlation,
                                    counted=l.status == "stable")
            for r in np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == c)):
                k = int(s.rect_cluster[r])
                if flow is None:
                    continue
                into = flow.merged_into(k)
                words = []
                if k in flow.split:
                    words.append("split")
                    note[r] = (f"split in B: its stable neurons fall into {len(flow.split[k])} of B's clusters "
                               f"of {layer_b} ({_ids(flow.split[k])})")
                if into:
                    words.append("merged")
                    others = sorted({i for j in into for i in flow.merged[j]} - {k})
                    note[r] = "; ".join(x for x in (note[r], f"merged in B: B's cluster{'s' if len(into) > 1 else ''} "
                                                    f"{_ids(into)} of {layer_b} also take{'' if len(into) > 1 else 's'} "
                                                    f"neurons of A's cluster{'s' if len(others) > 1 else ''} "
                                                    f"{_ids(others)}") if x)
                if words:
                    badge[r] = " + ".join(words)
                    mark[r] = pal.SPLIT_MERGE
            for p in np.flatnonzero(s.rect_column[s.patch_rect] == c):
                n = int(s.patch_neuron[p])
                if not 0 <= n < len(l.status):
                    continue
                st = str(l.status[n])
                tint[p] = colour[st]
                key = ("diff", str(nc.layer), n)
                if key not in index:
                    index[key] = len(details)
                    details.append(self._card(key, l, n, nc, layer_b, nb, colour[st], images, NeuronDetail))
                patch_detail[p] = index[key]
        atlas, uv = patch_atlas(images)
        thr = f"{self.diff.threshold:g}"
        legend = (("DIFF WITH B (PATCH FRAME)", ((_rgba(pal.STABLE), f"stable: partner in B, r beyond chance \u2265 {thr}"),
                                                 (_rgba(pal.DRIFTED), f"drifted: below {thr}"),
                                                 (_rgba(pal.UNMATCHED), "unmatched: no partner"),
                                                 (None, "click a patch: its partner"))),
                  ("CLUSTERS IN B", ((_rgba(pal.SPLIT_MERGE), "split / merged: outline and badge"),)))
        return s.replace(patch_tint=tint, rect_mark=mark, rect_badge=tuple(badge), rect_note=tuple(note),
                         legend_extra=legend, details=tuple(details), patch_detail=patch_detail,
                         detail_atlas=atlas, detail_uv=uv).validate()

    def _card(self, key, l, n, nc, layer_b, nb, colour, images, NeuronDetail):
        """The panel's card of neuron n of A's layer nc.layer (diff l): its partner in B and both patches."""
        from cnnvis.diff._match import excess

        st, p, r = str(l.status[n]), int(l.partner[n]), float(l.correlation[n])
        lines = []
        rows = []

        def pictures(analysis, layer, neuron, caption):
            f = analysis.features.get(layer) if analysis is not None and layer else None
            if f is None or not 0 <= neuron < f.patches.shape[0]:
                return
            ids = []
            for img in np.asarray(f.patches[neuron, :_PICTURES]):
                ids.append(len(images))
                images.append(img)
            rows.append((caption, tuple(ids)))

        pictures(self.analysis, nc.layer, n, f"A: {nc.layer} \u00b7 neuron {n}")
        if p >= 0 and l.b is not None:
            shown = layer_b or l.b
            lines.append(f"partner in B: {shown} \u00b7 neuron {p}" + (f" (matched on {l.b})" if shown != l.b else ""))
            lines.append(f"correlation r = {r:.3f}" if np.isfinite(r) else "correlation: n/a (constant neuron)")
            c = float(l.chance[n])
            if np.isfinite(r) and np.isfinite(c):  # what the status was decided on (cnnvis.diff._match)
                lines.append(f"B's other neurons reach {c:.2f}: beyond chance {float(excess(r, c)):.2f}")
            if nb is not None and 0 <= p < nb.labels.size:
                lines.append(f"in B's cluster {int(nb.labels[p])} \u00b7 A's cluster {int(nc.labels[n])}")
            pictures(self.analysis_b, shown, p, f"B: {shown} \u00b7 neuron {p}")
        else:
            lines.append("unmatched: no partner in B" + (f"'s {l.b}" if l.b else " (no layer of B matches)"))
        return NeuronDetail(key=key, title=f"{nc.layer} \u00b7 neuron {n}: {st}", lines=tuple(lines),
                            color=_rgba(colour), image_rows=tuple(rows))

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

"""`diagnose`: run the checks of the chosen kinds on an Analysis and order what they find."""
from __future__ import annotations

from dataclasses import replace

from cnnvis._params import Interval, Options, validate
from cnnvis.aggregate._dead import relu_inputs
from cnnvis.diagnose._clusters import isolated_clusters
from cnnvis.diagnose._context import Context
from cnnvis.diagnose._findings import KINDS, SNAPSHOT_KINDS, Diagnosis, Thresholds, sort_findings
from cnnvis.diagnose._history import gradient, weight_change
from cnnvis.diagnose._neurons import dead_neurons, redundant_neurons
from cnnvis.diagnose._weights import positive_weights

__all__ = ["diagnose"]

# diagnose()'s parameters: the kinds asked for, and the Thresholds (given whole or by name).
_KIND = {"kind": Options(KINDS)}
_THRESHOLD_NAME = {"threshold": Options(Thresholds.__dataclass_fields__)}
_THRESHOLDS = {
    "dead_active": Interval(0.0, 1.0, integer=False), "redundant_difference": Interval(1e-9, 2.0, integer=False),
    "redundant_weight_cosine": Interval(-1.0, 1.0, integer=False),
    "positive_fraction": Interval(0.5, 1.0, integer=False), "change_ratio": Interval(1.0, integer=False),
    "gradient_ratio": Interval(1.0, integer=False), "bundle_relative": Interval(0.0, 1.0, integer=False)}

_CHECKS = {"dead-neurons": dead_neurons, "redundant-neurons": redundant_neurons,
           "positive-weights": positive_weights, "weight-change": weight_change, "gradient": gradient,
           "isolated-cluster": isolated_clusters}


def diagnose(analysis, *, kinds=None, aggregation=None, thresholds: Thresholds | None = None,
             **threshold_values) -> Diagnosis:
    """Findings of the chosen `kinds` (default: all of KINDS) in `analysis`, most severe first.

    aggregation: the Aggregation the viewer shows (its layer clusters name the findings' columns, its neuron
    clusters and bundles feed isolated-cluster); computed with default options when isolated-cluster is
    asked for and none is given. thresholds, or single values by name (e.g. redundant_difference=0.02):
    see Thresholds. Kinds that need the training snapshots are skipped, with a note, when the analysis has
    none; dead-neurons finds nothing where no layer feeds a ReLU (also noted).
    """
    kinds = tuple(KINDS if kinds is None else dict.fromkeys(kinds))
    for kind in kinds:
        validate(_KIND, {"kind": kind})
    for name in threshold_values:
        validate(_THRESHOLD_NAME, {"threshold": name})
    thr = replace(thresholds or Thresholds(), **threshold_values)
    thr = replace(thr, **validate(_THRESHOLDS, {name: getattr(thr, name) for name in _THRESHOLDS}))
    if aggregation is None and "isolated-cluster" in kinds:
        from cnnvis.aggregate import aggregate

        aggregation = aggregate(analysis)
    if aggregation is not None:
        clusters = tuple(aggregation.layer_clusters)
    else:
        from cnnvis.aggregate._layers import cluster_layers

        clusters = tuple(cluster_layers(analysis))
    ctx = Context(analysis=analysis, thresholds=thr, layer_clusters=clusters, aggregation=aggregation)
    notes = []
    h = analysis.history
    if h is None:
        skipped = [k for k in kinds if k in SNAPSHOT_KINDS]
        if skipped:
            notes.append(f"the analysis holds no training snapshots: {' and '.join(skipped)} findings skipped "
                         "(analyse with --snapshots to get them)")
        kinds = tuple(k for k in kinds if k not in SNAPSHOT_KINDS)
    elif "weight-change" in kinds and len(h.snapshots) < 2:
        notes.append(f"the analysis holds {len(h.snapshots)} training snapshot: weight-change findings skipped "
                     "(they need at least 2)")
        kinds = tuple(k for k in kinds if k != "weight-change")
    if "dead-neurons" in kinds and not relu_inputs(analysis.graph):
        notes.append("no layer feeds a ReLU: no dead-neuron check (neurons of leaky or smooth activations "
                     "keep a gradient)")
    found = [f for k in kinds for f in _CHECKS[k](ctx)]
    return Diagnosis(findings=sort_findings(found, ctx.layer_order), notes=tuple(notes + ctx.notes),
                     thresholds=thr)

"""`cnnvis diff`: a neuron-level comparison of two models or checkpoints on one data set.

Layers matched by minibatch linear CKA (unbiased HSIC, Nguyen et al. 2021), neurons within each matched pair
of weighted layers by the exact Pearson correlation of their activations over images x positions and a
Hungarian assignment; per neuron a status (stable / drifted / unmatched), per-class activation change and,
per layer, the weight drift after alignment. `compare` streams the data once (see cnnvis.diff._pass); the
math is in `_sums` (running statistics) and `_match` (alignment, assignment), both plain numpy/scipy.
"""
from cnnvis.diff._clusters import ClusterFlow, cluster_flow
from cnnvis.diff._match import (DRIFTED, STABLE, STABLE_THRESHOLD, STATUSES, UNMATCHED, best_match, match_neurons,
                                monotone_alignment, weight_drift)
from cnnvis.diff._result import Diff, LayerDiff
from cnnvis.diff._sums import CrossMoments, HSICSums

__all__ = ["ClusterFlow", "cluster_flow", "DRIFTED", "STABLE", "STABLE_THRESHOLD", "STATUSES", "UNMATCHED", "CrossMoments", "Diff", "HSICSums",
           "LayerDiff", "best_match", "compare", "load_diff", "match_neurons", "monotone_alignment", "save_diff",
           "weight_drift"]


def __getattr__(name):
    # torch and the analysis side load only when a diff is computed or a file is read
    if name == "compare":
        from cnnvis.diff._pass import compare

        return compare
    if name in ("load_diff", "save_diff"):
        from cnnvis.diff import _file

        return getattr(_file, name)
    raise AttributeError(name)

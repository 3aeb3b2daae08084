"""What `diagnose` returns: frozen findings with their evidence, and the thresholds they were judged by."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["KINDS", "SEVERITIES", "FACETS", "Thresholds", "Finding", "Diagnosis", "sort_findings"]

# Kinds in tie-break order (the paper's case studies first).
KINDS = ("dead-neurons", "weight-change", "positive-weights", "redundant-neurons", "gradient", "isolated-cluster")
SEVERITIES = ("high", "medium", "low")
# Which facet of the viewer shows the evidence: the activation matrix, the weight edges, or the chart.
FACETS = ("matrix", "edges", "chart")
SNAPSHOT_KINDS = ("weight-change", "gradient")


@dataclass(frozen=True)
class Thresholds:
    """The criteria's thresholds (each documented in the module that applies it).

    dead_active: a neuron is dead when the fraction of images on which its ReLU input is positive anywhere is
    at most this (0: never). redundant_difference: most relative L2 difference of two neurons' per-class
    activation profiles (mean and std per class) for them to count as near-identical; redundant_weight_cosine:
    least cosine of their incoming signed kernel sums (where the input has >= 3 neurons).
    positive_fraction: least share of a conv layer's (or group's) weight mass, sum |w|, that is positive.
    change_ratio: least factor between a layer cluster's relative weight change and its neighbours' trend.
    gradient_ratio: least factor between the mean |gradient| of the first and last weighted layers.
    bundle_relative: bundles weaker than this fraction of the strongest of their layer pair do not count
    as connections (the viewer's default edge threshold).
    """

    dead_active: float = 0.0
    redundant_difference: float = 0.05
    redundant_weight_cosine: float = 0.9
    positive_fraction: float = 0.7
    change_ratio: float = 2.0
    gradient_ratio: float = 100.0
    bundle_relative: float = 0.05


@dataclass(frozen=True)
class Finding:
    """One thing worth a look, with its evidence.

    kind: one of KINDS. severity: "high" | "medium" | "low" (rules in each kind's module); score: the
    kind's own strength (larger is worse), which orders findings of one severity and kind.
    layer: the layer it is about (a layer name of the graph); layers: every layer it covers (a conv group,
    a layer cluster's weighted layers), starting with `layer`. neurons: indices in `layer` (empty for
    layer-level findings). clusters: names of the layer clusters (viewer columns) involved, the finding's
    own first. cluster: the neuron-cluster id in the first column's representative layer (-1 for none).
    facet: the viewer facet that shows the evidence, one of FACETS. evidence: named numbers (finite floats
    or ints). message: one sentence a person can act on.
    """

    kind: str
    severity: str
    score: float
    layer: str
    neurons: tuple[int, ...]
    evidence: dict
    message: str
    facet: str
    layers: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    cluster: int = -1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"finding kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if self.facet not in FACETS:
            raise ValueError(f"facet must be one of {', '.join(FACETS)}, got {self.facet!r}")
        ev = {str(k): (int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else
                       float(v) if isinstance(v, (float, np.floating)) else v) for k, v in self.evidence.items()}
        bad = [k for k, v in ev.items() if not isinstance(v, (int, float)) or not math.isfinite(v)]
        if bad:
            raise ValueError(f"{self.kind} evidence must be finite numbers; not so: {', '.join(bad)}")
        object.__setattr__(self, "evidence", ev)
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "neurons", tuple(int(i) for i in self.neurons))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "clusters", tuple(self.clusters))
        object.__setattr__(self, "cluster", int(self.cluster))
        if not self.layers:
            object.__setattr__(self, "layers", (self.layer,))

    def to_dict(self) -> dict:
        return dict(kind=self.kind, severity=self.severity, score=self.score, layer=self.layer,
                    layers=list(self.layers), neurons=list(self.neurons), clusters=list(self.clusters),
                    cluster=self.cluster, facet=self.facet, evidence=dict(self.evidence), message=self.message)


@dataclass(frozen=True)
class Diagnosis:
    """The findings, most severe first, and notes on what could not be checked (one line each)."""

    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __iter__(self):
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __getitem__(self, i):
        return self.findings[i]

    def of_kind(self, kind: str) -> tuple[Finding, ...]:
        if kind not in KINDS:
            raise ValueError(f"finding kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return tuple(f for f in self.findings if f.kind == kind)


def sort_findings(findings, layer_order: dict) -> tuple[Finding, ...]:
    """Most severe first; then kind (KINDS order), larger score, shallower layer, first neuron."""
    def key(f: Finding):
        return (SEVERITIES.index(f.severity), KINDS.index(f.kind), -f.score, layer_order.get(f.layer, 1 << 30),
                f.neurons[:1])

    return tuple(sorted(findings, key=key))

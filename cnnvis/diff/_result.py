"""The result of `cnnvis diff`: frozen dataclasses of numpy arrays, and their JSON contract."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cnnvis.diff._match import DRIFTED, STABLE, STATUSES, UNMATCHED, excess
from cnnvis.errors import CnnvisError

__all__ = ["LayerDiff", "Diff"]


@dataclass(frozen=True)
class LayerDiff:
    """One weighted layer (conv or linear) of A, its matched layer of B, and its Ca neurons matched.

    a, b: layer names (b None when no layer of B fits: other kind or spatial size); cka: their minibatch CKA.
    partner (Ca,) int64: the neuron of b each neuron of A is assigned to, -1 for unmatched. correlation (Ca,)
    float64: Pearson correlation with the partner over images x positions (NaN: unmatched or constant).
    status (Ca,) str: "stable" | "drifted" | "unmatched" (stable: excess(correlation, chance) >= the threshold;
    cnnvis.diff._match). chance (Ca,) float64: the correlation an unrelated neuron of B reaches (the 90th
    percentile of the neuron's correlations with B's other neurons; NaN for unmatched). class_change (K, Ca) float64: per class, the mean
    activation (spatial mean, averaged over the class's images) of the partner in B minus that of the neuron
    in A (NaN for unmatched). weight_drift: ||W_A - W_B aligned|| / ||W_A|| with B's output channels permuted
    by `partner` and its input channels by the partners of the layer feeding it (NaN where the shapes or
    the matching do not allow it); weight_drift_unaligned: the same with no permutation.
    """

    a: str
    b: str | None
    cka: float
    partner: np.ndarray
    correlation: np.ndarray
    status: np.ndarray
    class_change: np.ndarray
    weight_drift: float = float("nan")
    weight_drift_unaligned: float = float("nan")
    chance: np.ndarray | None = None

    def __post_init__(self):
        if self.chance is None:
            object.__setattr__(self, "chance", np.full(len(self.partner), np.nan))

    def counts(self) -> dict:
        return {s: int((self.status == s).sum()) for s in STATUSES}

    def to_dict(self, *, class_change: bool = True) -> dict:
        d = dict(a=self.a, b=self.b, cka=_num(self.cka), partner=[int(p) for p in self.partner],
                 correlation=[_num(r) for r in self.correlation], status=[str(s) for s in self.status],
                 chance=[_num(c) for c in self.chance],
                 excess=[_num(e) for e in excess(self.correlation, self.chance)],
                 counts=self.counts(), weight_drift=_num(self.weight_drift),
                 weight_drift_unaligned=_num(self.weight_drift_unaligned))
        if class_change:
            d["class_change"] = [[_num(v) for v in row] for row in self.class_change]
        return d


@dataclass(frozen=True)
class Diff:
    """A neuron-level comparison of model A with model B on one data set.

    layers_a, layers_b: every non-input layer of each model, in order; cka (La, Lb) float64: minibatch linear
    CKA of every pair (see cnnvis.diff._sums); alignment (La,) int64: each A layer's B layer in the
    order-preserving one-to-one alignment by CKA, -1 for none; best (La,) int64: each A layer's most similar
    B layer (the per-row argmax). layers: a LayerDiff per weighted layer of A, matched to B's weighted layer
    of the order-preserving alignment of the weighted layers alone. threshold: the chance-corrected correlation
    from which a matched neuron is stable. meta: JSON-able facts (n_images, batch_size, accuracies, prediction agreement).
    """

    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    cka: np.ndarray
    alignment: np.ndarray
    best: np.ndarray
    layers: tuple[LayerDiff, ...]
    same_architecture: bool
    threshold: float
    class_names: tuple[str, ...]
    meta: dict = field(default_factory=dict)

    def layer(self, name: str) -> LayerDiff:
        for l in self.layers:
            if l.a == name:
                return l
        raise CnnvisError(f"no weighted layer {name!r} in the diff (layers: {', '.join(l.a for l in self.layers)})")

    def summary(self) -> dict:
        counts = {s: sum(l.counts()[s] for l in self.layers) for s in STATUSES}
        ckas = [l.cka for l in self.layers if l.b is not None and np.isfinite(l.cka)]
        return dict(**counts, neurons=sum(counts.values()), layers=len(self.layers),
                    mean_cka=_num(float(np.mean(ckas))) if ckas else None)

    def to_dict(self) -> dict:
        """The JSON contract: {"layers": [{"a", "b", "cka", "partner", "correlation", "status", ...}], ...}."""
        return dict(
            layers=[l.to_dict() for l in self.layers], summary=self.summary(), threshold=self.threshold,
            same_architecture=self.same_architecture, class_names=list(self.class_names),
            alignment=[dict(a=a, b=self.layers_b[j] if j >= 0 else None,
                            cka=_num(self.cka[i, j]) if j >= 0 else None,
                            best=self.layers_b[k] if k >= 0 else None, best_cka=_num(self.cka[i, k]) if k >= 0 else None)
                       for i, (a, j, k) in enumerate(zip(self.layers_a, self.alignment, self.best))],
            cka=dict(a=list(self.layers_a), b=list(self.layers_b),
                     matrix=[[_num(v) for v in row] for row in self.cka]),
            meta=self.meta)

    def format_text(self) -> str:
        """One line per weighted layer, then the totals."""
        s = self.summary()
        lines = [f"{'layer of A':<24} {'layer of B':<24} {'CKA':>6} {STABLE:>7} {DRIFTED:>8} {UNMATCHED:>9} "
                 f"{'dW/W':>7}"]
        for l in self.layers:
            c = l.counts()
            lines.append(f"{l.a:<24} {l.b or '-':<24} {_fmt(l.cka):>6} {c[STABLE]:>7} {c[DRIFTED]:>8} "
                         f"{c[UNMATCHED]:>9} {_fmt(l.weight_drift):>7}")
        lines.append(f"{s['neurons']} neurons: {s[STABLE]} stable (correlation beyond chance >= {self.threshold:g}), "
                     f"{s[DRIFTED]} drifted, {s[UNMATCHED]} unmatched; mean CKA {_fmt(s['mean_cka'])}")
        return "\n".join(lines)


def _num(v):
    """A float for JSON: NaN and infinities become null."""
    v = None if v is None else float(v)
    return v if v is not None and math.isfinite(v) else None


def _fmt(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"

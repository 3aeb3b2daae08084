"""What every check reads: the analysis, its layer clusters (the viewer's columns), the thresholds."""
from __future__ import annotations

from dataclasses import dataclass, field

from cnnvis.diagnose._findings import Thresholds

__all__ = ["Context", "fmt_neurons", "plural"]


@dataclass
class Context:
    """analysis: the Analysis; thresholds; layer_clusters: the columns (from the aggregation when one was
    given, else the same layer clustering `aggregate` starts with); aggregation: an Aggregation or None,
    computed on first use by the checks that need neuron clusters and bundles."""

    analysis: object
    thresholds: Thresholds
    layer_clusters: tuple
    aggregation: object = None
    notes: list = field(default_factory=list)  # one line per thing a check could not look at
    _column: dict = field(default_factory=dict)

    def __post_init__(self):
        for lc in self.layer_clusters:
            for name in lc.layers:
                self._column.setdefault(name, lc.name)

    @property
    def layer_order(self) -> dict:
        return {n: i for i, n in enumerate(self.analysis.graph.names)}

    def columns(self, layers) -> tuple[str, ...]:
        """Names of the columns holding `layers`, in order, without repeats."""
        return tuple(dict.fromkeys(self._column[n] for n in layers if n in self._column))

    def aggregated(self):
        if self.aggregation is None:
            from cnnvis.aggregate import aggregate

            self.aggregation = aggregate(self.analysis)
        return self.aggregation


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def fmt_neurons(idx, most: int = 8) -> str:
    idx = list(idx)
    s = ", ".join(f"#{i}" for i in idx[:most])
    return s + (f" and {len(idx) - most} more" if len(idx) > most else "")

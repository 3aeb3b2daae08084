"""What the viewer knows of a finding: a frozen record placed on one Scene (`Scene.findings`).

The application turns each finding of `cnnvis diagnose` into a FindingMark for the Scene it builds (see
cnnvis.app.findings); the viewer zooms to `column`, outlines `clusters` (or the columns when there are
none), marks `neurons` and switches to `facet`. Data only: the layout knows nothing of the diagnosis.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["FindingMark", "MARK_FACETS", "check_marks"]

# Where the evidence shows: the activation matrix, the weight edges, the line chart (= cnnvis.diagnose.FACETS).
MARK_FACETS = ("matrix", "edges", "chart")


@dataclass(frozen=True)
class FindingMark:
    """One finding on one Scene.

    number: 1-based, the numbering of `cnnvis diagnose` (most severe first). kind, severity, layer (the
    finding's layer name) and message: as the diagnosis states them. column: the Scene column (index into
    Scene.column_names) holding `layer`, -1 when none does; columns: every column the finding covers, its
    own first (a conv group, a weight change's neighbours). clusters: neuron-cluster ids (Scene.rect_cluster)
    in `column` that hold the finding's neurons, most members first (empty: the finding is about the
    column as a whole). neurons: indices in the column's representative layer (Scene.column_layer), empty
    where the finding names none or they are neurons of another layer of the column; neuron_cluster and
    neuron_row, aligned with neurons: the cluster holding each one and its row in that cluster's activation
    matrix (top row 0). facet: one of MARK_FACETS. series: the chart series (a Scene.chart_names entry)
    that shows a chart finding, "" otherwise; edge_mode: the curve colour coding that shows it ("weight",
    "gradient", "change"). n_unplaced: neurons the finding names that this Scene does not draw (they are
    a layer of the column other than its representative: expanding the column shows them).
    """

    number: int
    kind: str
    severity: str
    layer: str
    message: str
    facet: str
    column: int = -1
    columns: tuple = ()
    clusters: tuple = ()
    neurons: tuple = ()
    neuron_cluster: tuple = ()
    neuron_row: tuple = ()
    series: str = ""
    edge_mode: str = "weight"
    n_unplaced: int = 0

    def __post_init__(self):
        if self.facet not in MARK_FACETS:
            raise ValueError(f"finding facet must be one of {', '.join(MARK_FACETS)}, got {self.facet!r}")
        if int(self.number) < 1:
            raise ValueError(f"finding number must be >= 1, got {self.number}")
        for name in ("columns", "clusters", "neurons", "neuron_cluster", "neuron_row"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "number", int(self.number))
        object.__setattr__(self, "column", int(self.column))
        if not (len(self.neuron_cluster) == len(self.neuron_row) == len(self.neurons)) and \
                (self.neuron_cluster or self.neuron_row):
            raise ValueError("neuron_cluster and neuron_row must align with neurons")
        if self.column >= 0 and not self.columns:
            object.__setattr__(self, "columns", (self.column,))

    @property
    def cluster(self) -> int:
        """The cluster holding most of the finding's neurons, -1 for none."""
        return self.clusters[0] if self.clusters else -1

    @property
    def title(self) -> str:
        """One short line: number, kind, layer."""
        return f"{self.number}. {self.kind} \u00b7 {self.layer}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FindingMark":
        if not isinstance(d, dict):
            raise TypeError(f"a finding record must be a mapping, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def check_marks(marks, n_columns: int) -> list[str]:
    """Problems of a Scene's findings (for Scene.validate): records, numbering 1..K, columns in range."""
    bad = []
    for i, m in enumerate(marks):
        if not isinstance(m, FindingMark):
            bad.append(f"findings[{i}]: want a FindingMark, got {type(m).__name__}")
            continue
        if m.number != i + 1:
            bad.append(f"findings[{i}]: numbered {m.number}, want {i + 1}")
        if not all(-1 <= c < n_columns for c in (m.column, *m.columns)):
            bad.append(f"findings[{i}]: column {m.column} / columns {m.columns} outside 0..{n_columns - 1}")
    return bad

"""The view state: everything the user changes without changing the Scene. Pure data."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ViewState", "FACETS", "EDGE_MODES"]

FACETS = ("features", "matrix", "importance")   # facets of a neuron cluster (paper, sec. 4.1)
EDGE_MODES = ("weight", "gradient", "change")   # = cnnvis.layout.CURVE_VALUE_MODES, curve colour coding


@dataclass
class ViewState:
    facet: str = "features"                       # facet of every cluster without its own
    cluster_facet: dict = field(default_factory=dict)   # (column, cluster id) -> facet, survives rebuilds
    edge_mode: str = "weight"
    edge_threshold: float = 0.0                   # curves weaker than this (in the current mode) hidden
    selected_classes: frozenset = frozenset()     # empty: no class selection, all opaque
    series: int = 0                               # chart series shown
    snapshot: int = -1                            # chart snapshot highlighted (-1: the last)
    selected_bundles: tuple = ()                  # up to two bundle ids, for merging
    focus_column: int = -1                        # the layer cluster last zoomed to
    hover_rect: int = -1
    hover_bundle: int = -1
    tooltip: tuple = ()                           # lines of the tooltip, empty when none
    tooltip_at: tuple = (0.0, 0.0)                # canvas pixels (origin bottom-left)
    drag_ghost: tuple = ()                        # (x, y) of a neuron being dragged, canvas pixels

"""The view state: everything the user changes without changing the Scene. Frozen data: a change makes a
new ViewState (`state.replace(...)`), so the renderer tells what changed by comparing two of them."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Callable

__all__ = ["ViewState", "Transient", "FacetMap", "FACETS", "EDGE_MODES", "ZOOM_SECONDS"]

ZOOM_SECONDS = 0.35       # duration of the animated zoom to a layer cluster

FACETS = ("features", "matrix", "importance")   # facets of a neuron cluster (paper, sec. 4.1)
EDGE_MODES = ("weight", "gradient", "change")   # = cnnvis.layout.CURVE_VALUE_MODES, curve colour coding


class FacetMap(Mapping):
    """An immutable, hashable (column, cluster id) -> facet mapping; `with_(key, facet)` makes a new one."""

    __slots__ = ("_d",)

    def __init__(self, items=()):
        self._d = dict(items)

    def __getitem__(self, key):
        return self._d[key]

    def __iter__(self):
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        return hash(frozenset(self._d.items()))

    def __repr__(self) -> str:
        return f"FacetMap({self._d!r})"

    def with_(self, key, facet) -> "FacetMap":
        return FacetMap({**self._d, key: facet})


@dataclass(frozen=True)
class ViewState:
    facet: str = "features"                       # facet of every cluster without its own
    cluster_facet: FacetMap = FacetMap()          # (column, cluster id) -> facet, survives rebuilds
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
    show_help: bool = False                       # the keys-and-mouse card (key ?)
    show_legend: bool | None = None               # the legend bar (key L); None: when the window is big enough
    layer_scroll: int = 0                         # first row of the panel's layer list shown
    class_scroll: int = 0                         # first row of the panel's class buttons shown
    finding: int = 0                              # the finding shown (number in Scene.findings), 0: none
    finding_group: int = -1                       # the findings group opened in the panel, -1: the groups
    finding_scroll: int = 0                       # first row of the findings list shown
    undo_depth: int = 0                           # edits the session can take back (Undo enabled when > 0)
    redo_depth: int = 0                           # undone edits it can re-apply
    busy: str = ""                                # what the application is working on ("clustering…"), "": idle
    detail: tuple = ()                            # key of the NeuronDetail shown in the panel, (): none

    def __post_init__(self):
        if not isinstance(self.cluster_facet, FacetMap):
            object.__setattr__(self, "cluster_facet", FacetMap(self.cluster_facet))

    def replace(self, **changes) -> "ViewState":
        return replace(self, **changes)


@dataclass
class Transient:
    """What the viewer holds between frames that is never drawn (so not part of ViewState): the expand
    asked for when the current flight lands, how long the flight after an edit takes, the mouse's last
    point (tooltips are rebuilt from it) and the edit whose Scene the application is still computing.
    Mutable on purpose, and nothing the renderer or the overlay reads."""
    pending_expand: int = -1                 # column expanded when the camera lands, -1: none
    fit_seconds: float = ZOOM_SECONDS        # the flight after an expand/collapse (0: jump there)
    mouse: tuple | None = None               # window point of the last hover
    pending_edit: object = None              # the edit whose Scene is not ready yet
    poll: Callable | None = None             # poll() -> Scene | None for it (see Viewer.on_edit)

"""Typed viewer actions: what the controller decides an event means, as frozen records (in the manner of
pygfx's typed events). The controller returns lists of them, `Viewer.apply` carries each out with one
`match` on its type, and tests compare them as values. No GL, no Scene: an action names what it touches by
the Scene's row indices and the ViewState's values.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The edits the viewer asks of the session are actions as they stand (one record for both, not a twin each)
from cnnvis.layout._edits import CollapseColumn, ExpandColumn, Redo, Undo

__all__ = ["Action", "SetState", "Fit", "Pan", "Zoom", "SetFacet", "CycleFacet", "SetEdgeMode",
           "SetEdgeThreshold", "SelectClasses", "ToggleClass", "SetSeries", "SetSnapshot", "ZoomToColumn",
           "ExpandColumn", "CollapseColumn", "Undo", "Redo", "SelectBundle", "MergeSelected",
           "MoveNeuronTo", "ToggleHelp", "FocusFinding", "ShowDetail"]


@dataclass(frozen=True)
class SetState:
    """Replace these ViewState fields (a view change with no method of its own: scroll, clear, legend)."""
    changes: dict = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.changes.items())))


@dataclass(frozen=True)
class Fit:
    """Show the whole scene."""


@dataclass(frozen=True)
class Pan:
    """Move the content by (dx, dy) window pixels (dy down)."""
    dx: float
    dy: float


@dataclass(frozen=True)
class Zoom:
    """Zoom by factor about the view's centre."""
    factor: float


@dataclass(frozen=True)
class SetFacet:
    """Facet of every cluster (rect -1) or of the cluster `rect`."""
    facet: str
    rect: int = -1


@dataclass(frozen=True)
class CycleFacet:
    """The cluster `rect`'s next facet (a click on it)."""
    rect: int


@dataclass(frozen=True)
class SetEdgeMode:
    mode: str


@dataclass(frozen=True)
class SetEdgeThreshold:
    threshold: float


@dataclass(frozen=True)
class SelectClasses:
    """Select these class indices (empty: none)."""
    classes: tuple = ()


@dataclass(frozen=True)
class ToggleClass:
    klass: int


@dataclass(frozen=True)
class SetSeries:
    series: int


@dataclass(frozen=True)
class SetSnapshot:
    snapshot: int


@dataclass(frozen=True)
class ZoomToColumn:
    """Fly to a layer cluster; expand=True asks for it to be expanded as the camera lands."""
    column: int
    expand: bool = False






@dataclass(frozen=True)
class SelectBundle:
    bundle: int


@dataclass(frozen=True)
class MergeSelected:
    """Merge the two selected bundles."""


@dataclass(frozen=True)
class MoveNeuronTo:
    """Move the neuron of `patch` into the cluster `dst_rect`."""
    patch: int
    dst_rect: int


@dataclass(frozen=True)
class ToggleHelp:
    """Show or hide the keys-and-mouse card."""


@dataclass(frozen=True)
class FocusFinding:
    number: int


@dataclass(frozen=True)
class ShowDetail:
    """Open the panel's card of the neuron of `patch` (Scene.patch_detail), or close it when it is open."""
    patch: int


Action = (SetState | Fit | Pan | Zoom | SetFacet | CycleFacet | SetEdgeMode | SetEdgeThreshold | SelectClasses
          | ToggleClass | SetSeries | SetSnapshot | ZoomToColumn | ExpandColumn | CollapseColumn | Undo | Redo
          | SelectBundle | MergeSelected | MoveNeuronTo | ToggleHelp | FocusFinding | ShowDetail)

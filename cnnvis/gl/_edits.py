"""Edit requests the viewer emits when the user changes the aggregation (paper sec. 4.2). The Viewer
hands each to its `on_edit` callable, which may answer with a new Scene (the lead's pipeline applies the
edit as a pure function of the aggregation and lays it out again); the viewer then re-uploads only the
buffers whose arrays changed."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Edit", "MoveNeuron", "MergeBundles", "ExpandColumn", "SelectSnapshot"]


@dataclass(frozen=True)
class MoveNeuron:
    """Move the neuron shown by patch `patch` from its cluster to another cluster of the same layer cluster.
    Rect indices refer to the Scene the request was made on; (column, cluster) ids survive a rebuild;
    neuron is Scene.patch_neuron[patch] (-1 where the Scene does not give it)."""
    patch: int
    src_rect: int
    dst_rect: int
    column: int
    src_cluster: int
    dst_cluster: int
    neuron: int = -1


@dataclass(frozen=True)
class MergeBundles:
    """Merge two edge bundles (biclusters) into one."""
    a: int
    b: int


@dataclass(frozen=True)
class ExpandColumn:
    """Expand a layer cluster (column) into its layers."""
    column: int


@dataclass(frozen=True)
class SelectSnapshot:
    """Show edge values (gradient, relative change) of another training snapshot."""
    snapshot: int


Edit = MoveNeuron | MergeBundles | ExpandColumn | SelectSnapshot

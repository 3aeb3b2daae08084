"""The edit protocol: what the viewer asks of the aggregation (paper sec. 4.2), as frozen records.

An edit is made on one Scene and names what it touches by the ids that Scene carries, so whoever applies
it (the application's session) maps it onto an aggregation edit without re-running the layout:

- column: a layer cluster, by its position in `Scene.column_names` (= `Aggregation.layer_clusters`);
- cluster: (column, `Scene.rect_cluster`), the neuron-cluster id within its layer cluster;
- neuron: (`Scene.column_layer[column]`, `Scene.patch_neuron[patch]`), the neuron's index in the
  representative layer of its column (layer "" and -1 where the Scene does not carry them);
- bundle: a `Scene.curve_bundle` value k; `Scene.bundle_id[k]` is (src column, dst column, index of the
  bundle in that column pair's BundleSet) (() where the Scene has no such table);
- snapshot: an index into `Scene.chart_snapshots`.

Undo and Redo name nothing: whoever applies edits keeps the aggregations they made (edits are pure
functions of the aggregation, so going back is showing an earlier one) and answers them from that history.

Rect and patch indices are rows of the Scene the edit was made on, for the viewer's own use; the ids
above are what an edit means.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Edit", "MoveNeuron", "MergeBundles", "ExpandColumn", "CollapseColumn", "SelectSnapshot", "Undo",
           "Redo"]


@dataclass(frozen=True)
class MoveNeuron:
    """Move a neuron (the one patch `patch` shows) from its cluster to another of the same layer cluster:
    in aggregation terms move_neuron(layer, neuron, dst_cluster)."""
    patch: int
    src_rect: int
    dst_rect: int
    column: int
    src_cluster: int
    dst_cluster: int
    neuron: int = -1
    layer: str = ""


@dataclass(frozen=True)
class MergeBundles:
    """Merge two edge bundles (biclusters) into one: a and b are Scene.curve_bundle values; a_id and b_id
    their Scene.bundle_id rows (src column, dst column, index in the pair's BundleSet)."""
    a: int
    b: int
    a_id: tuple = ()
    b_id: tuple = ()


@dataclass(frozen=True)
class ExpandColumn:
    """Expand a layer cluster (column) into its layers (or, for one already expanded, collapse it back)."""
    column: int


@dataclass(frozen=True)
class CollapseColumn:
    """Collapse the layer columns expanded from one cluster (the group `column` belongs to, see
    Scene.column_group) back into that cluster."""
    column: int


@dataclass(frozen=True)
class Undo:
    """Go back to the aggregation before the last edit that changed it."""


@dataclass(frozen=True)
class Redo:
    """Re-apply the edit the last Undo took back."""


@dataclass(frozen=True)
class SelectSnapshot:
    """Show edge values (gradient, relative change) of another training snapshot (Scene.chart_snapshots)."""
    snapshot: int


Edit = MoveNeuron | MergeBundles | ExpandColumn | CollapseColumn | SelectSnapshot | Undo | Redo

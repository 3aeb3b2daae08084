"""Transitional: the edit records live next to the Scene, in cnnvis.layout._edits (import them from
cnnvis.layout or cnnvis.gl); this path stays until the application layer imports from there."""
from cnnvis.layout._edits import Edit, ExpandColumn, MergeBundles, MoveNeuron, SelectSnapshot

__all__ = ["Edit", "MoveNeuron", "MergeBundles", "ExpandColumn", "SelectSnapshot"]

"""Placing clusters, crossing reduction, rectangle packing, curve control points -> Scene; and the edit
protocol the viewer speaks about a Scene (cnnvis.layout._edits)."""
from cnnvis.layout._build import build_scene
from cnnvis.layout._edits import (CollapseColumn, Edit, ExpandColumn, MergeBundles, MoveNeuron, Redo, SelectSnapshot,
                                  Undo)
from cnnvis.layout._details import NeuronDetail
from cnnvis.layout._findings import FindingMark
from cnnvis.layout._scene import CURVE_VALUE_MODES, RECT_CLUSTER, RECT_COLUMN, Scene

__all__ = ["CURVE_VALUE_MODES", "RECT_CLUSTER", "RECT_COLUMN", "Scene", "build_scene", "Edit", "MoveNeuron",
           "MergeBundles", "ExpandColumn", "CollapseColumn", "SelectSnapshot", "Undo", "Redo", "FindingMark",
           "NeuronDetail"]

"""Placing clusters, crossing reduction, rectangle packing, curve control points -> Scene."""
from cnnvis.layout._build import build_scene
from cnnvis.layout._scene import CURVE_VALUE_MODES, RECT_CLUSTER, RECT_COLUMN, Scene

__all__ = ["CURVE_VALUE_MODES", "RECT_CLUSTER", "RECT_COLUMN", "Scene", "build_scene"]

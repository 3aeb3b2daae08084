"""What one (Scene, ViewState) pair shows, as arrays: each rectangle's facet and opacity, the curves the
edge filter keeps. Pure functions, shared by the renderer (state buffers) and the controller (picking)."""
from __future__ import annotations

import numpy as np

from cnnvis.gl._state import EDGE_MODES, FACETS, ViewState
from cnnvis.layout import RECT_CLUSTER

__all__ = ["CLASS_SELECT_MIN", "FADED", "rect_facets", "rect_opacity", "visible_curves", "content_box"]

CLASS_SELECT_MIN = 0.5    # a cluster stays opaque when its activation on a selected class reaches this
FADED = 0.15              # opacity of the clusters the class selection de-emphasises


def rect_facets(scene, state: ViewState) -> np.ndarray:
    """(R,) int8 index into FACETS of every rectangle's facet."""
    s = scene
    out = np.full(s.n_rects, FACETS.index(state.facet), np.int8)
    for (col, cid), f in state.cluster_facet.items():
        out[(s.rect_column == col) & (s.rect_cluster == cid) & (s.rect_kind == RECT_CLUSTER)] = FACETS.index(f)
    return out


def rect_opacity(scene, state: ViewState) -> np.ndarray:
    """(R,) float32: 1, or FADED for clusters low on every selected class."""
    s, sel = scene, sorted(state.selected_classes)
    out = np.ones(s.n_rects, np.float32)
    if sel and s.rect_class_activation.shape[1]:
        score = s.rect_class_activation[:, sel].max(axis=1)
        out[(score < CLASS_SELECT_MIN) & (s.rect_kind == RECT_CLUSTER)] = FADED
    return out


def visible_curves(scene, state: ViewState) -> np.ndarray:
    """(E,) bool: curves the edge filter keeps (as the shader decides)."""
    v = scene.curve_values
    m = EDGE_MODES.index(state.edge_mode)
    strength = np.abs(v[:, 0]) if m == 0 else v[:, m]
    return strength >= state.edge_threshold


def content_box(scene) -> np.ndarray:
    """World box of the rectangles and the labels (what Fit view shows); the bounds without rectangles."""
    s = scene
    if s.n_rects:
        b = np.r_[s.rect_box[:, :2].min(0), s.rect_box[:, 2:].max(0)]
        if len(s.label_text):
            b[3] = max(b[3], float((s.label_pos[:, 1] + s.label_size).max()))
        return b
    return s.bounds.astype(np.float64)

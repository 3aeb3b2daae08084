"""What one (Scene, ViewState) pair shows, as arrays: each rectangle's facet and opacity, the curves the
edge filter keeps. Pure functions, shared by the renderer (state buffers) and the controller (picking)."""
from __future__ import annotations

import numpy as np

from cnnvis.gl._state import EDGE_MODES, FACETS, ViewState
from cnnvis.layout import RECT_CLUSTER

__all__ = ["CLASS_SELECT_MIN", "FADED", "rect_facets", "rect_opacity", "visible_curves", "content_box", "curve_ends",
           "curve_opacity", "edge_mode_missing", "patch_detail", "detail_by_key"]

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


def curve_ends(scene) -> np.ndarray:
    """(E, 2) int: the cluster rectangle each curve leaves (its right edge holds the first control
    point) and enters (left edge, last point); -1 where none does."""
    s = scene
    out = np.full((s.n_curves, 2), -1, np.int64)
    cl = np.flatnonzero(s.rect_kind == RECT_CLUSTER)
    if not s.n_curves or not len(cl):
        return out
    b = s.rect_box[cl].astype(np.float64)
    for end, (p, edge) in enumerate(((s.curve_ctrl[:, 0], 2), (s.curve_ctrl[:, 3], 0))):
        hit = (np.abs(p[:, None, 0] - b[None, :, edge]) < 0.5) & (b[None, :, 1] - 0.5 <= p[:, None, 1]) \
            & (p[:, None, 1] <= b[None, :, 3] + 0.5)
        any_ = hit.any(1)
        out[any_, end] = cl[hit[any_].argmax(1)]
    return out


def curve_opacity(scene, state: ViewState, ends: np.ndarray | None = None) -> np.ndarray:
    """(E,) float32: a curve is as faded as the more faded of the clusters it joins."""
    ends = curve_ends(scene) if ends is None else ends
    alpha = rect_opacity(scene, state)
    out = np.ones(scene.n_curves, np.float32)
    for k in range(2):
        m = ends[:, k] >= 0
        out[m] = np.minimum(out[m], alpha[ends[m, k]])
    return out


_MISSING = {"gradient": "no edge gradients in this file: they come from training snapshots "
                        "(cnnvis analyze --snapshots OLD.pt ... NEW.pt)",
            "change": "no weight change in this file: it needs two or more training snapshots "
                      "(cnnvis analyze --snapshots OLD.pt ... NEW.pt)"}


def edge_mode_missing(scene, mode: str) -> str:
    """Why the edge colour `mode` would show nothing for this Scene (every curve grey), "" when it shows
    something. Weight always shows; gradient and change need values the file may not hold."""
    if mode not in _MISSING or not scene.n_curves:
        return ""
    v = scene.curve_values[:, EDGE_MODES.index(mode)]
    v = v[np.isfinite(v)]
    return "" if (np.abs(v) > 0).any() else _MISSING[mode]


def patch_detail(scene, p: int):
    """The NeuronDetail a click on patch `p` opens (Scene.patch_detail), or None."""
    s = scene
    if len(s.patch_detail) != s.n_patches or not 0 <= p < s.n_patches or s.patch_detail[p] < 0:
        return None
    return s.details[int(s.patch_detail[p])]


def detail_by_key(scene, key: tuple):
    """The Scene's NeuronDetail with this key (ViewState.detail), or None (another Scene may not hold it)."""
    return next((d for d in scene.details if d.key == tuple(key)), None) if key else None

"""The controller: what is under the mouse, and what a hover, click, double-click, drag or key means, as
pure functions of (Scene, ViewState, camera, window size) returning typed actions (`_actions.py`), which
`Viewer.apply` carries out. No GL: tests drive it with synthetic events.

Window points are pixels with the origin at the top left (as mouse events give them); canvas points have
it at the bottom left (as GL has it).
"""
from __future__ import annotations

import numpy as np

from cnnvis.gl import _actions as A
from cnnvis.gl._chart import chart_height
from cnnvis.gl._derived import detail_by_key, patch_detail, rect_facets, visible_curves
from cnnvis.gl._legend import legend_shown
from cnnvis.gl._names import column_headers
from cnnvis.gl._panel import panel_width
from cnnvis.gl._panel_findings import finding_groups, widget_tip
from cnnvis.gl._state import FACETS, ViewState
from cnnvis.gl._widgets import hit_widget, slider_value
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN

__all__ = ["CurveIndex", "canvas_xy", "pick", "hover", "click", "double_click", "drag", "key",
           "widget_actions", "finding_actions", "column_rect", "column_name", "patch_detail", "detail_by_key"]
_CURVE_SAMPLES = 17       # points per curve for picking on the CPU
PICK_PX = 4.0             # a click this many pixels off an edge still picks it
NEAR_MISS_PX = 12.0       # a click this close to an edge (but off it) keeps the bundle selection


def canvas_xy(size, x: float, y: float) -> tuple:
    return (float(x), float(size[1] - y))


class CurveIndex:
    """Sampled curve polylines and bounding boxes of one Scene, for picking; built on first use."""

    def __init__(self, scene):
        self.scene = scene
        self._samples = None

    def nearest(self, state: ViewState, wx: float, wy: float, zoom: float, slack: float = 0.0) -> int:
        """The visible curve nearest the world point within PICK_PX pixels of its edge (+ slack), or -1."""
        s = self.scene
        if not s.n_curves:
            return -1
        if self._samples is None:
            t = np.linspace(0, 1, _CURVE_SAMPLES)[:, None]
            basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], 1)[..., 0]
            self._samples = np.einsum("tk,ekd->etd", basis, s.curve_ctrl.astype(np.float64))
            self._bbox = np.r_["1", s.curve_ctrl.min(1), s.curve_ctrl.max(1)]
        tol = (np.maximum(s.curve_width / 2, 2.0) + PICK_PX + slack) / zoom
        bb = self._bbox
        cand = np.flatnonzero((bb[:, 0] - tol <= wx) & (wx <= bb[:, 2] + tol) & (bb[:, 1] - tol <= wy)
                              & (wy <= bb[:, 3] + tol) & visible_curves(s, state))
        if not len(cand):
            return -1
        pts = self._samples[cand]
        a, b = pts[:, :-1], pts[:, 1:]
        ab = b - a
        u = np.clip(((wx - a[..., 0]) * ab[..., 0] + (wy - a[..., 1]) * ab[..., 1])
                    / np.maximum((ab ** 2).sum(-1), 1e-12), 0, 1)
        d = np.hypot(a[..., 0] + u * ab[..., 0] - wx, a[..., 1] + u * ab[..., 1] - wy).min(1)
        ok = d <= tol[cand]
        if not ok.any():
            return -1
        return int(cand[np.flatnonzero(ok)[np.argmin(d[ok])]])


def _in_view(camera, cx: float, cy: float) -> bool:
    x, y, w, h = camera.region
    return x <= cx <= x + w and y <= cy <= y + h


def pick(scene, state: ViewState, camera, size, widgets, curves: CurveIndex, x: float, y: float) -> tuple:
    """What is under the window point: ("widget", Widget), ("patch", i), ("rect", i), ("curve", i),
    ("chart", column or -1) or ("none", -1)."""
    cx, cy = canvas_xy(size, x, y)
    w = hit_widget(widgets, cx, cy)
    if w is not None:
        return ("widget", w)
    if cx >= size[0] - panel_width(size):
        return ("none", -1)
    s = scene
    if not _in_view(camera, cx, cy):
        if cy < chart_height(size) and len(s.chart_x):
            px = s.chart_x * camera.zoom + camera.transform()[2]
            i = int(np.argmin(np.abs(px - cx)))
            return ("chart", i if abs(px[i] - cx) < 40 else -1)
        return ("none", -1)
    wx, wy = camera.to_world((cx, cy))
    if s.n_patches:
        b = s.patch_box
        inside = (b[:, 0] <= wx) & (wx <= b[:, 2]) & (b[:, 1] <= wy) & (wy <= b[:, 3])
        if inside.any():
            facet = rect_facets(s, state)
            for i in np.flatnonzero(inside):
                if facet[s.patch_rect[i]] == 0:
                    return ("patch", int(i))
    b = s.rect_box
    inside = (b[:, 0] <= wx) & (wx <= b[:, 2]) & (b[:, 1] <= wy) & (wy <= b[:, 3])
    clusters = np.flatnonzero(inside & (s.rect_kind == RECT_CLUSTER))
    if len(clusters):
        area = (b[clusters, 2] - b[clusters, 0]) * (b[clusters, 3] - b[clusters, 1])
        return ("rect", int(clusters[np.argmin(area)]))
    e = curves.nearest(state, wx, wy, camera.zoom)
    if e >= 0:
        return ("curve", e)
    columns = np.flatnonzero(inside)
    if len(columns):
        return ("rect", int(columns[0]))
    for c, _, (x0, y0, x1, y1), _ in column_headers(s, camera, size):   # a column's name: its column
        if x0 - 3 <= cx <= x1 + 3 and y0 - 1 <= cy <= y1 + 1:
            return ("rect", column_rect(s, c))
    return ("none", -1)


def column_rect(scene, c: int) -> int:
    s = scene
    m = np.flatnonzero((s.rect_kind == RECT_COLUMN) & (s.rect_column == c))
    return int(m[0]) if len(m) else int(np.flatnonzero(s.rect_column == c)[0])


def column_name(scene, c: int) -> str:
    names = scene.column_names
    return str(names[c]) if 0 <= c < len(names) else f"column {c}"


def _cluster_name(scene, r: int) -> str:
    return f"{column_name(scene, int(scene.rect_column[r]))} \u00b7 neuron cluster {int(scene.rect_cluster[r])}"


def _neuron_lines(s, p: int) -> tuple:
    """A patch's tooltip in a person's terms: layer and neuron index, dead or not, importance, top classes."""
    r = int(s.patch_rect[p])
    c = int(s.rect_column[r])
    layer = str(s.column_layer[c]) if len(s.column_layer) > c else column_name(s, c)
    neuron = int(s.patch_neuron[p]) if len(s.patch_neuron) == s.n_patches else -1
    lines = [f"{layer} \u00b7 neuron {neuron}" if neuron >= 0 else f"{layer} \u00b7 a neuron",
             f"in {_cluster_name(s, r)}"]
    if len(s.patch_dead) == s.n_patches:
        dead = bool(s.patch_dead[p])
        imp = f" \u00b7 importance {float(s.patch_importance[p]):.2f}" if len(s.patch_importance) == s.n_patches else ""
        lines.append(("dead: never fires on the data" if dead else "alive (fires on some images)") + imp)
    if len(s.patch_top_classes) == s.n_patches and not (len(s.patch_dead) and s.patch_dead[p]):
        top = [str(s.class_names[k]) for k in s.patch_top_classes[p] if 0 <= k < len(s.class_names)]
        if top:
            lines.append("top classes: " + ", ".join(top))
    d = patch_detail(s, p)
    if d is not None:
        lines += list(d.lines[:1]) + ["click: its card in the panel \u00b7 drag: move it to another cluster"]
    else:
        lines.append("drag it onto another cluster of this layer to move it")
    return tuple(lines)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def hover(scene, state: ViewState, picked: tuple, at: tuple) -> dict:
    """The ViewState fields a hover over `picked` sets (tooltip lines at canvas point `at`, highlights)."""
    kind, i = picked
    s, st = scene, state
    lines: tuple = ()
    rect, bundle = -1, -1
    if kind == "widget":
        lines, at = widget_tip(i, at) if i.tip else ((), at)
    elif kind == "patch":
        rect = int(s.patch_rect[i])
        lines = _neuron_lines(s, i)
    elif kind == "rect" and s.rect_kind[i] == RECT_CLUSTER:
        rect = i
        act = s.rect_class_activation[i]
        top = np.argsort(-act)[:3] if act.size else []
        dead = len(s.rect_dead) == s.n_rects and bool(s.rect_dead[i])
        lines = (_cluster_name(s, i) + (" (dead: these neurons never fire)" if dead else ""),
                 f"{int(s.rect_size[i])} neurons \u00b7 importance {float(s.rect_importance[i]):.2f}",
                 "top classes: " + ", ".join(f"{s.class_names[k]} ({act[k]:.2f})" for k in top),
                 f"facet: {FACETS[int(rect_facets(s, st)[i])]} (click for the next)")
        if len(s.rect_note) == s.n_rects and s.rect_note[i]:
            lines = lines[:1] + (str(s.rect_note[i]),) + lines[1:]
    elif kind == "rect":
        c = int(s.rect_column[i])
        n = int(((s.rect_column == c) & (s.rect_kind == RECT_CLUSTER)).sum())
        grouped = len(s.column_group) > c and s.column_group[c] >= 0
        lines = (f"layer cluster {column_name(s, c)}",
                 f"{_count(int(s.rect_size[i]), 'layer')} \u00b7 {_count(n, 'neuron cluster')}",
                 "double-click to collapse these layers back" if grouped else
                 "double-click to zoom in and expand" if s.rect_size[i] > 1 else "double-click to zoom in")
    elif kind == "curve":
        v = s.curve_values[i]
        bundle = int(s.curve_bundle[i])
        lines = (f"bundle {bundle}", f"weight {v[0]:+.2f} \u00b7 gradient {v[1]:.2f} \u00b7 change {v[2]:.2f}",
                 "click to select (two to merge)")
    elif kind == "chart" and i >= 0 and len(s.chart_names):
        ser = st.series % len(s.chart_names)
        val = s.chart_values[ser, st.snapshot % max(1, len(s.chart_snapshots)), i]
        lines = (f"{column_name(s, i)}: {s.chart_names[ser]} = "
                 + ("n/a" if not np.isfinite(val) else f"{float(val):.3g}"),)
    return dict(tooltip=lines, tooltip_at=at, hover_bundle=bundle, hover_rect=rect)


def click(scene, state: ViewState, picked: tuple, cx: float, near_edge: bool = False) -> tuple:
    """A left click on `picked` at canvas x `cx`: (what was hit, index or action), [actions]. A click on
    nothing clears the bundle selection unless it was a near miss of an edge (`near_edge`)."""
    kind, i = picked
    if kind == "widget":
        return ("widget", i.action), widget_actions(scene, state, i.action, cx, i) if i.enabled else []
    if kind == "patch" and patch_detail(scene, i) is not None:   # a neuron with a card: open it
        return (kind, i), [A.ShowDetail(i)]
    if kind == "patch":
        kind, i = "rect", int(scene.patch_rect[i])
    if kind == "rect" and scene.rect_kind[i] == RECT_CLUSTER:
        return (kind, i), [A.CycleFacet(i)]
    if kind == "curve":
        return (kind, i), [A.SelectBundle(int(scene.curve_bundle[i]))]
    if kind == "none" and state.selected_bundles and not near_edge:
        return (kind, i), [A.SetState({"selected_bundles": ()})]
    return (kind, i), []


def double_click(scene, picked: tuple) -> tuple:
    """Zoom to the layer cluster under the point, expanding it as it fills the view: (hit, [actions])."""
    kind, i = picked
    if kind == "patch":
        kind, i = "rect", int(scene.patch_rect[i])
    if kind in ("rect", "chart") and i >= 0:
        c = int(scene.rect_column[i]) if kind == "rect" else i
        g = scene.column_group
        if len(g) > c and g[c] >= 0:           # a layer of an expanded group: collapse the group
            return ("column", c), [A.CollapseColumn(c)]
        expand = bool(scene.rect_size[column_rect(scene, c)] > 1)
        return ("column", c), [A.ZoomToColumn(c, expand=expand)]
    return (kind, i), []


def drag(scene, start: tuple, end: tuple, delta: tuple, cx1: float) -> list:
    """A left drag from the pick `start` to the pick `end` (window delta (dx, dy), canvas x `cx1` of the
    end): moves a neuron (from a patch onto a cluster of its layer cluster), the edge slider, or pans."""
    kind, i = start
    s = scene
    if kind == "patch":
        k2, j = end
        if k2 == "patch":
            k2, j = "rect", int(s.patch_rect[j])
        if k2 == "rect" and s.rect_kind[j] == RECT_CLUSTER and j != s.patch_rect[i] \
                and s.rect_column[j] == s.rect_column[s.patch_rect[i]]:
            return [A.MoveNeuronTo(i, j)]
        return []
    if kind == "widget" and i.action == ("threshold",):
        return [A.SetEdgeThreshold(round(slider_value(i, cx1), 2))]
    return [A.Pan(*delta)]


def key(state: ViewState, name: str, size=(1280, 800)) -> list | None:
    """The actions of a keyboard shortcut, or None for a key that means nothing. A key whose control is
    disabled still asks (Ctrl+Z with nothing to undo, G without gradients): the answer is a note saying why."""
    t = state.edge_threshold
    actions = {"f": [A.Fit()], "1": [A.SetFacet("features")], "2": [A.SetFacet("matrix")],
               "3": [A.SetFacet("importance")], "w": [A.SetEdgeMode("weight")],
               "g": [A.SetEdgeMode("gradient")], "c": [A.SetEdgeMode("change")],
               "]": [A.SetEdgeThreshold(min(1.0, round(t + 0.05, 2)))],
               "[": [A.SetEdgeThreshold(max(0.0, round(t - 0.05, 2)))],
               "=": [A.Zoom(1.25)], "+": [A.Zoom(1.25)], "-": [A.Zoom(0.8)],
               "m": [A.MergeSelected()] if len(state.selected_bundles) == 2 else [],
               "e": [A.ExpandColumn(state.focus_column)] if state.focus_column >= 0 else [],
               "x": [A.CollapseColumn(state.focus_column)] if state.focus_column >= 0 else [],
               "ctrl+z": [A.Undo()], "ctrl+shift+z": [A.Redo()], "ctrl+y": [A.Redo()],
               "?": [A.ToggleHelp()], "h": [A.ToggleHelp()],
               "l": [A.SetState({"show_legend": not legend_shown(state, size)})]}
    return actions.get(name.lower())


def widget_actions(scene, state: ViewState, action: tuple, cx: float, widget=None) -> list:
    """The actions of a panel widget's `action` clicked at canvas x `cx`."""
    kind = action[0]
    n_series, n_snaps = max(1, len(scene.chart_names)), max(1, len(scene.chart_snapshots))
    if kind == "facet":
        return [A.SetFacet(action[1])]
    if kind == "edge_mode":
        return [A.SetEdgeMode(action[1])]
    if kind == "threshold":
        return [A.SetEdgeThreshold(round(slider_value(widget, cx), 2))]
    if kind == "class":
        return [A.ToggleClass(action[1])]
    if kind == "classes":
        return [A.SelectClasses(tuple(range(len(scene.class_names))) if action[1] == "all" else ())]
    if kind == "series_step":
        return [A.SetSeries((state.series + action[1]) % n_series)]
    if kind == "snapshot":
        return [A.SetSnapshot(state.snapshot % n_snaps + action[1])]
    if kind == "column":
        return [A.ZoomToColumn(action[1])]
    if kind == "scroll":   # ("scroll", ViewState field, its new value): the list clamps it when laid out
        return [A.SetState({action[1]: max(0, int(action[2]))})]
    if kind == "expand" and state.focus_column >= 0:
        return [A.ExpandColumn(state.focus_column)]
    if kind == "collapse" and state.focus_column >= 0:
        return [A.CollapseColumn(state.focus_column)]
    if kind == "undo":
        return [A.Undo()]
    if kind == "redo":
        return [A.Redo()]
    if kind == "toggle_help":
        return [A.ToggleHelp()]
    if kind == "fit":
        return [A.SetState({"focus_column": -1}), A.Fit()]
    if kind == "merge":
        return [A.MergeSelected()]
    if kind in ("finding", "finding_step", "finding_group"):
        return finding_actions(scene, state, action)
    if kind == "detail_close":
        return [A.SetState({"detail": ()})]
    return []


def finding_actions(scene, state, action: tuple) -> list:
    """Actions of a findings widget: ("finding", N) shows N (or clears it when shown); ("finding_step", ±1)
    shows the next or previous one, round the list; ("finding_group", g) opens group g (a group of one shows
    its finding), g = -1 goes back to the groups."""
    K = len(scene.findings)
    if not K:
        return []
    if action[0] == "finding":
        n = int(action[1])
        return [A.SetState({"finding": 0})] if state.finding == n else [A.FocusFinding(n)]
    if action[0] == "finding_group":
        g = int(action[1])
        groups = finding_groups(scene)
        if g < 0:
            back = max(state.finding_group, 0)
            return [A.SetState({"finding_group": -1, "finding_scroll": back})]
        if len(groups[g].numbers) == 1:
            return [A.FocusFinding(groups[g].numbers[0])]
        return [A.SetState({"finding_group": g, "finding_scroll": 0})]
    cur = state.finding if 1 <= state.finding <= K else (0 if action[1] > 0 else 1)
    return [A.FocusFinding((cur - 1 + int(action[1])) % K + 1)]

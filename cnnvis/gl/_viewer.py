"""The Viewer: maps a Scene to a few instanced GPU buffers, draws the hybrid view, the chart and the
panel, and turns every interaction into a method (so tests and scripts drive it as the mouse does).

Window coordinates in the public methods are pixels with the origin at the top left (as mouse events
give them); inside, canvas pixels have the origin at the bottom left (as GL has it)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from vispy import app, gloo

from cnnvis.gl._atlas import fit_atlas
from cnnvis.gl._camera import Camera
from cnnvis.gl._chart import chart_height, chart_lines, chart_region, chart_transform, draw_chart
from cnnvis.gl._interact import Interaction
from cnnvis.gl._edits import ExpandColumn, MergeBundles, MoveNeuron, SelectSnapshot
from cnnvis.gl._panel import draw_panel, panel_widgets, panel_width
from cnnvis.gl._programs import (CURVE_SEGMENTS, CURVE_STATIC, QUAD_STATE, QUAD_STATIC, RECT_STATE, RECT_STATIC,
                                 InstancedProgram, _ribbon, make_programs)
from cnnvis.gl._state import EDGE_MODES, FACETS, ViewState
from cnnvis.gl._text import glyph_atlas, layout_text
from cnnvis.gl._ui import THEME, UiBatch
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN, Scene

__all__ = ["Viewer"]

CLASS_SELECT_MIN = 0.5    # a cluster stays opaque when its activation on a selected class reaches this
FADED = 0.15              # opacity of the clusters the class selection de-emphasises
ZOOM_SECONDS = 0.35       # duration of the animated zoom to a layer cluster
LABEL_MIN_PX = 4.5        # a label shows once its size at the current zoom reaches this (level of detail)

# Which Scene fields feed which GPU buffer: set_scene re-uploads a buffer only when one of them changed.
_GROUPS = {
    "rects": ("rect_box", "rect_fill", "rect_border", "rect_kind", "rect_importance"),
    "rect_state": ("rect_box", "rect_class_activation", "rect_column", "rect_cluster", "rect_kind"),
    "curves": ("curve_ctrl", "curve_width", "curve_values", "curve_bundle", "curve_color"),
    "patches": ("patch_box", "patch_uv"),
    "patch_state": ("patch_box", "patch_rect"),
    "atlas": ("atlas",),
    "matrices": ("matrix_box", "matrix_uv"),
    "matrix_state": ("matrix_box", "matrix_rect"),
    "matrix_atlas": ("matrix_atlas",),
    "labels": ("label_text", "label_pos", "label_size", "chart_box", "chart_names"),
    "chart": ("chart_values", "chart_x", "chart_names", "chart_snapshots"),
}


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return tuple(a) == tuple(b) if isinstance(a, (tuple, list)) else a == b


class _UiLayer:
    """Screen-space rects + text, re-uploaded when their content changes."""

    def __init__(self, font: gloo.Texture2D):
        self.rect = InstancedProgram("rect", "a_corner", np.array([(0, 0), (1, 0), (0, 1), (1, 1)], np.float32))
        self.text = InstancedProgram("text", "a_corner", np.array([(0, 0), (1, 0), (0, 1), (1, 1)], np.float32))
        self.text["t_font"] = font
        self.text["u_text_scale"] = 1.0
        self.text["u_zoom"] = 1.0
        self.text["u_min_size"] = 0.0
        self.rect["u_accent"] = THEME["accent"]

    def upload(self, batch: UiBatch) -> None:
        static, state = batch.rect_arrays()
        self.rect.set("static", static)
        self.rect.set("state", state)
        self.text.set("glyphs", batch.glyphs())

    def draw(self, resolution) -> None:
        for p in (self.rect, self.text):
            p["u_transform"] = (1.0, 1.0, 0.0, 0.0)
            p["u_resolution"] = resolution
            p.draw()


class Viewer(Interaction):
    """The CNNVis view of one Scene.

    on_edit(edit) is called with each edit request (MoveNeuron, MergeBundles, ExpandColumn,
    SelectSnapshot); when it returns a Scene the viewer shows it, re-uploading only the buffers whose
    arrays changed. All edits are also kept in `edits`. `show=True` opens a window (the VisPy app
    backend chosen by the caller: glfw for a window, egl offscreen)."""

    def __init__(self, scene: Scene, *, on_edit: Callable | None = None, size=(1280, 800), show=False,
                 title: str = "cnnvis", canvas: app.Canvas | None = None):
        scene.validate()
        self.on_edit = on_edit
        self.edits: list = []
        self.state = ViewState()
        self.uploads: list[str] = []          # buffer groups uploaded, in order (tests check edits touch few)
        self.canvas = canvas or app.Canvas(size=tuple(size), show=show, title=title, keys=None)
        self.canvas.set_current()
        self.size = tuple(int(v) for v in size)
        self.camera = Camera()
        self._timer: app.Timer | None = None
        self._pending_expand = -1
        self._fbo = None
        self._ui_key = None
        self._press = None                    # [x, y, pick, moved, last x, last y] of a press in progress
        self._undo_click = None               # cluster facets before the last click (see _on_double_click)
        self._max_texture = int(gloo.gl.glGetParameter(gloo.gl.GL_MAX_TEXTURE_SIZE))
        font = gloo.Texture2D(glyph_atlas().image, interpolation="linear", internalformat="r8")
        self.programs = make_programs()
        self.programs["text"]["t_font"] = font
        self.programs["rect"]["u_accent"] = THEME["accent"]
        self.programs["curve"]["u_accent"] = THEME["selection"]
        self._chart = InstancedProgram("curve", "a_tside", _ribbon(CURVE_SEGMENTS))
        self._chart["u_mode"] = 3
        self._chart["u_threshold"] = 0.0
        self._chart["u_selected"] = (-1.0, -1.0)
        self._chart["u_hover"] = -1.0
        self._chart["u_accent"] = THEME["accent"]
        self._ui_under = _UiLayer(font)
        self._ui_over = _UiLayer(font)
        self._atlas_tex = None
        self._matrix_tex = None
        self.scene = None
        self.set_scene(scene)
        self._layout(self.size)
        self.fit()
        self._connect()

    # ---------------------------------------------------------------------------------------- scene --
    def set_scene(self, scene: Scene) -> set:
        """Show another Scene; upload only the buffers whose source arrays changed. Returns their names."""
        scene.validate()
        old, self.scene = self.scene, scene
        changed = {g for g, names in _GROUPS.items()
                   if old is None or any(not _same(getattr(old, n, None), getattr(scene, n, None)) for n in names)}
        self.canvas.set_current()
        s = scene
        if "rects" in changed:
            st = np.zeros(s.n_rects, RECT_STATIC)
            st["a_box"], st["a_fill"], st["a_border"] = s.rect_box, s.rect_fill, s.rect_border
            cluster = s.rect_kind == RECT_CLUSTER
            st["a_info"] = np.stack([s.rect_kind.astype(np.float32), s.rect_importance,
                                     np.where(cluster, 3.0, 7.0), np.where(cluster, 1.0, 1.0)], 1)
            self.programs["rect"].set("static", st)
        if "curves" in changed:
            cu = np.zeros(s.n_curves, CURVE_STATIC)
            c = s.curve_ctrl.reshape(-1, 8)
            cu["a_p01"], cu["a_p23"] = c[:, :4], c[:, 4:]
            cu["a_width"], cu["a_values"], cu["a_bundle"] = s.curve_width, s.curve_values, s.curve_bundle
            color = getattr(s, "curve_color", None)   # optional: the layout's suggested colour per curve
            if color is not None and len(color) == s.n_curves:
                cu["a_color"] = color
            self.programs["curve"].set("static", cu)
            self._curve_samples = None
        # An atlas over the texture size limit is re-packed, which rewrites the uvs: then the quads and the
        # texture upload together; otherwise each uploads only when its own arrays changed.
        for static, tex, box, uv, image, prog in (
                ("patches", "atlas", s.patch_box, s.patch_uv, s.atlas, "patch"),
                ("matrices", "matrix_atlas", s.matrix_box, s.matrix_uv, s.matrix_atlas, "matrix")):
            if not changed & {static, tex}:
                continue
            if not image.size:
                image = np.zeros((1, 1) + image.shape[2:], image.dtype)
            if max(image.shape[:2]) > self._max_texture:
                changed |= {static, tex}
                image, uv = fit_atlas(image, uv, self._max_texture)
            if static in changed:
                q = np.zeros(len(box), QUAD_STATIC)
                q["a_box"], q["a_uv"] = box, uv
                self.programs[prog].set("static", q)
            if tex in changed and prog == "patch":
                self._atlas_tex = gloo.Texture2D(np.ascontiguousarray(image), interpolation="linear")
                self.programs[prog]["t_atlas"] = self._atlas_tex
            elif tex in changed:
                self._matrix_tex = gloo.Texture2D(np.ascontiguousarray(image), interpolation="nearest",
                                                  internalformat="r32f")
                self.programs[prog]["t_matrix"] = self._matrix_tex
        if "labels" in changed:
            keep = self._scene_labels()
            self.programs["text"].set("glyphs", layout_text([s.label_text[i] for i in keep], s.label_pos[keep],
                                                            s.label_size[keep], THEME["text"]))
        if "chart" in changed:
            self._upload_chart()
        if old is not None and (old.n_rects != s.n_rects or not _same(old.rect_column, s.rect_column)):
            self.state.hover_rect = -1
        if changed & {"rect_state", "patch_state", "matrix_state"}:
            self._upload_state()
        self.uploads.extend(sorted(changed))
        self._content = self._content_box()
        self._ui_key = None
        self.canvas.update()
        return changed

    def _scene_labels(self) -> np.ndarray:
        """Indices of the labels drawn in the view. Labels at or below the top of Scene.chart_box are the
        layout's chart legend: the viewer draws the chart in its own strip, with its own legend."""
        s = self.scene
        keep = np.arange(len(s.label_text))
        cb = s.chart_box
        if len(s.chart_names) and cb[3] > cb[1] and len(keep):
            keep = keep[s.label_pos[:, 1] > cb[3]]
        return keep

    def _content_box(self) -> np.ndarray:
        s = self.scene
        if s.n_rects:
            b = np.r_[s.rect_box[:, :2].min(0), s.rect_box[:, 2:].max(0)]
            keep = self._scene_labels()
            if len(keep):
                b[3] = max(b[3], float((s.label_pos[keep, 1] + s.label_size[keep]).max()))
            return b
        return s.bounds.astype(np.float64)

    def _upload_chart(self) -> None:
        s = self.scene
        n = len(s.chart_snapshots) or 1
        self._chart.set("static", chart_lines(s, self.state.series % max(1, len(s.chart_names)),
                                              self.state.snapshot % n))

    # ----------------------------------------------------------------------------------- view state --
    def rect_facets(self) -> np.ndarray:
        """(R,) int8 index into FACETS of every rectangle's facet."""
        s, st = self.scene, self.state
        out = np.full(s.n_rects, FACETS.index(st.facet), np.int8)
        for (col, cid), f in st.cluster_facet.items():
            out[(s.rect_column == col) & (s.rect_cluster == cid) & (s.rect_kind == RECT_CLUSTER)] = FACETS.index(f)
        return out

    def rect_opacity(self) -> np.ndarray:
        """(R,) float32: 1, or FADED for clusters low on every selected class."""
        s, sel = self.scene, sorted(self.state.selected_classes)
        out = np.ones(s.n_rects, np.float32)
        if sel and s.rect_class_activation.shape[1]:
            score = s.rect_class_activation[:, sel].max(axis=1)
            out[(score < CLASS_SELECT_MIN) & (s.rect_kind == RECT_CLUSTER)] = FADED
        return out

    def _upload_state(self, rects=True, quads=True) -> None:
        s, st = self.scene, self.state
        facet, alpha = self.rect_facets(), self.rect_opacity()
        if rects:
            hi = np.zeros(s.n_rects, np.float32)
            if st.focus_column >= 0:
                hi[(s.rect_kind == RECT_COLUMN) & (s.rect_column == st.focus_column)] = 0.6
            if 0 <= st.hover_rect < s.n_rects and s.rect_kind[st.hover_rect] == RECT_CLUSTER:
                hi[st.hover_rect] = 1.0
            state = np.zeros(s.n_rects, RECT_STATE)
            state["a_state"] = np.stack([alpha, hi, facet.astype(np.float32), np.zeros_like(hi)], 1)
            self.programs["rect"].set("state", state)
        if quads:
            for name, idx, f in (("patch", s.patch_rect, 0), ("matrix", s.matrix_rect, 1)):
                q = np.zeros(len(idx), QUAD_STATE)
                if len(idx):
                    q["a_alpha"] = alpha[idx] * (facet[idx] == f)
                self.programs[name].set("state", q)
        self._ui_key = None
        self.canvas.update()

    def set_facet(self, facet: str, rect: int | None = None) -> None:
        """Facet of all clusters (rect=None; clears per-cluster choices) or of the cluster `rect`."""
        if facet not in FACETS:
            raise ValueError(f"facet must be one of {FACETS}, got {facet!r}")
        if rect is None:
            self.state.facet = facet
            self.state.cluster_facet = {}
        else:
            s = self.scene
            if not (0 <= rect < s.n_rects) or s.rect_kind[rect] != RECT_CLUSTER:
                raise ValueError(f"rect must index a neuron cluster, got {rect}")
            self.state.cluster_facet[(int(s.rect_column[rect]), int(s.rect_cluster[rect]))] = facet
        self._upload_state()

    def cycle_facet(self, rect: int) -> str:
        """Switch one cluster to its next facet (a click on it); returns the new facet."""
        f = FACETS[(int(self.rect_facets()[rect]) + 1) % len(FACETS)]
        self.set_facet(f, rect)
        return f

    def set_edge_mode(self, mode: str) -> None:
        if mode not in EDGE_MODES:
            raise ValueError(f"edge mode must be one of {EDGE_MODES}, got {mode!r}")
        self.state.edge_mode = mode
        self._changed()

    def set_edge_threshold(self, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"edge threshold must be in 0..1, got {threshold}")
        self.state.edge_threshold = float(threshold)
        self._changed()

    def visible_curves(self) -> np.ndarray:
        """(E,) bool: curves the edge filter keeps (as the shader decides)."""
        v = self.scene.curve_values
        m = EDGE_MODES.index(self.state.edge_mode)
        strength = np.abs(v[:, 0]) if m == 0 else v[:, m]
        return strength >= self.state.edge_threshold

    def select_classes(self, classes) -> None:
        """Select classes by index or name; clusters low on all of them turn translucent. Empty: none."""
        names = list(self.scene.class_names)
        sel = set()
        for c in classes:
            k = names.index(c) if isinstance(c, str) and c in names else c
            if not isinstance(k, (int, np.integer)) or not 0 <= k < len(names):
                raise ValueError(f"unknown class {c!r}; classes are {names}")
            sel.add(int(k))
        self.state.selected_classes = frozenset(sel)
        self._upload_state()

    def toggle_class(self, k: int) -> None:
        self.select_classes(self.state.selected_classes ^ {int(k)})

    def set_series(self, series) -> None:
        names = list(self.scene.chart_names)
        i = names.index(series) if isinstance(series, str) else int(series)
        if not 0 <= i < max(1, len(names)):
            raise ValueError(f"series must be one of {names}, got {series!r}")
        self.state.series = i
        self._upload_chart()
        self._changed()

    def set_snapshot(self, snapshot: int) -> None:
        """Highlight a snapshot in the chart and ask the pipeline for its edge values (SelectSnapshot)."""
        n = len(self.scene.chart_snapshots)
        if n == 0:
            return
        self.state.snapshot = int(snapshot) % n
        self._upload_chart()
        self._changed()
        self._emit(SelectSnapshot(self.state.snapshot))

    # ------------------------------------------------------------------------------------ camera --
    def _layout(self, size) -> None:
        W, H = size
        pw, ch = panel_width(size), chart_height(size)
        self.camera.region = (0.0, ch, max(W - pw, 1.0), max(H - ch, 1.0))
        self.size = (int(W), int(H))

    def resize(self, size) -> None:
        size = (int(size[0]), int(size[1]))
        if size != self.size:
            c = self.camera.to_world(self._region_centre())
            self._layout(size)
            self.camera.center[:] = c
            self._ui_key = None

    def _region_centre(self):
        x, y, w, h = self.camera.region
        return (x + w / 2, y + h / 2)

    def fit(self) -> None:
        """Show the whole scene."""
        self.camera.fit(self._content, margin=28)
        self._changed()

    def pan(self, dx: float, dy: float) -> None:
        """Move the content by (dx, dy) window pixels (dy down, as a mouse drag)."""
        self.camera.pan(dx, -dy)
        self._changed()

    def zoom(self, factor: float, at=None) -> None:
        """Zoom by factor about the window point `at` (default: the view centre)."""
        self.camera.zoom_about(factor, None if at is None else self._canvas_xy(*at))
        self._changed()

    def column_box(self, column: int) -> np.ndarray:
        s = self.scene
        m = (s.rect_kind == RECT_COLUMN) & (s.rect_column == column)
        if not m.any():
            m = s.rect_column == column
        if not m.any():
            raise ValueError(f"no layer cluster {column} in this scene ({len(s.column_names)} columns)")
        b = s.rect_box[m]
        box = np.r_[b[:, :2].min(0), b[:, 2:].max(0)].astype(np.float64)
        box[3] += 30.0   # room for the column label
        return box

    def zoom_to_column(self, column: int, *, animate: bool = True, duration: float = ZOOM_SECONDS,
                       expand: bool = False) -> None:
        """Fly the camera to a layer cluster (eased, `duration` seconds); with expand=True, ask for it to be
        expanded into its layers when the camera lands (ExpandColumn)."""
        box = self.column_box(column)
        self.state.focus_column = int(column)
        self.camera.fly_to(box, duration if animate else 0.0, margin=20)
        self._pending_expand = int(column) if expand else -1
        self._upload_state(quads=False)
        if not self.camera.animating:
            self._landed()
        elif self._timer is not None:
            self._timer.start()

    def step(self, dt: float) -> bool:
        """Advance the camera animation by dt seconds (the window's timer calls this); True while moving."""
        moving = self.camera.step(dt)
        if not moving:
            self._landed()
        self._changed()
        return moving

    def _landed(self) -> None:
        if self._pending_expand >= 0:
            c, self._pending_expand = self._pending_expand, -1
            self.expand_column(c)

    # ------------------------------------------------------------------------------------- edits --
    def _emit(self, edit):
        self.edits.append(edit)
        if self.on_edit is not None:
            result = self.on_edit(edit)
            if isinstance(result, Scene):
                self.set_scene(result)
        return edit

    def expand_column(self, column: int):
        if not 0 <= column < max(len(self.scene.column_names), int(self.scene.rect_column.max(initial=-1)) + 1):
            raise ValueError(f"no layer cluster {column}")
        return self._emit(ExpandColumn(int(column)))

    def select_bundle(self, bundle: int) -> tuple:
        """Toggle a bundle in the selection (at most two: the oldest drops out)."""
        sel = list(self.state.selected_bundles)
        if bundle in sel:
            sel.remove(bundle)
        else:
            sel = (sel + [int(bundle)])[-2:]
        self.state.selected_bundles = tuple(sel)
        self._changed()
        return self.state.selected_bundles

    def merge_bundles(self, a: int | None = None, b: int | None = None):
        """Ask to merge two bundles (default: the two selected). Returns the MergeBundles request."""
        if a is None or b is None:
            if len(self.state.selected_bundles) != 2:
                raise ValueError("select two bundles to merge (click two edges), or pass a and b")
            a, b = self.state.selected_bundles
        if a == b:
            raise ValueError(f"cannot merge bundle {a} with itself")
        known = set(np.unique(self.scene.curve_bundle).tolist())
        for x in (a, b):
            if int(x) not in known:
                raise ValueError(f"no bundle {x} in this scene")
        self.state.selected_bundles = ()
        self._changed()
        return self._emit(MergeBundles(int(a), int(b)))

    def move_neuron(self, patch: int, dst_rect: int):
        """Ask to move the neuron of `patch` into the cluster `dst_rect` of the same layer cluster."""
        s = self.scene
        if not 0 <= patch < s.n_patches:
            raise ValueError(f"no patch {patch} ({s.n_patches} patches)")
        src = int(s.patch_rect[patch])
        if not 0 <= dst_rect < s.n_rects or s.rect_kind[dst_rect] != RECT_CLUSTER:
            raise ValueError(f"rect {dst_rect} is not a neuron cluster")
        if s.rect_column[dst_rect] != s.rect_column[src]:
            raise ValueError("a neuron can only move to a cluster of its own layer cluster")
        if dst_rect == src:
            raise ValueError("the neuron is already in that cluster")
        neurons = getattr(s, "patch_neuron", ())
        neuron = int(neurons[patch]) if len(neurons) == s.n_patches else -1
        return self._emit(MoveNeuron(int(patch), src, int(dst_rect), int(s.rect_column[src]),
                                     int(s.rect_cluster[src]), int(s.rect_cluster[dst_rect]), neuron))

    # ---------------------------------------------------------------------------------- drawing --
    def _changed(self) -> None:
        self.canvas.update()

    def _widgets(self):
        return panel_widgets(self.state, self.scene, self.size)

    def _upload_ui(self) -> None:
        st = self.state
        key = (self.size, self.camera.transform(), st.facet, tuple(sorted(st.cluster_facet.items())),
               st.edge_mode, st.edge_threshold, st.selected_classes, st.series, st.snapshot,
               st.selected_bundles, st.focus_column, st.tooltip, st.tooltip_at, st.drag_ghost, id(self.scene))
        if key == self._ui_key:
            return
        self._ui_key = key
        under, over = UiBatch(), UiBatch()
        pw = panel_width(self.size)
        draw_chart(self.scene, st, self.camera, self.size, pw, under, over)
        draw_panel(self._widgets(), over, self.size)
        if st.drag_ghost:
            gx, gy = st.drag_ghost
            over.rect((gx - 10, gy - 10, gx + 10, gy + 10), (1, 1, 1, 0.6), THEME["accent"], radius=3, border_width=2)
        if st.tooltip:
            self._tooltip(over)
        self._ui_under.upload(under)
        self._ui_over.upload(over)

    def _tooltip(self, batch: UiBatch) -> None:
        from cnnvis.gl._text import text_width
        x, y = self.state.tooltip_at
        lines = self.state.tooltip
        w = max(text_width(t, 12) for t in lines) + 16
        h = 17 * len(lines) + 10
        x = min(x + 14, self.size[0] - w - 4)
        y = max(y - 14 - h, 4)
        batch.rect((x, y, x + w, y + h), THEME["tooltip"], THEME["button_line"], radius=5, border_width=1)
        for k, t in enumerate(lines):
            batch.text(t, x + 8, y + h - 18 - 17 * k, 12, THEME["text"] if k == 0 else THEME["muted"])

    def _draw(self, size) -> None:
        self.resize(size)
        W, H = self.size
        res = (float(W), float(H))
        gloo.set_viewport(0, 0, W, H)
        gloo.set_state(blend=True, depth_test=False, cull_face=False,
                       blend_func=("src_alpha", "one_minus_src_alpha", "one", "one_minus_src_alpha"))
        gloo.set_clear_color(THEME["background"])
        gloo.clear(color=True, depth=True)
        self._upload_ui()
        T = self.camera.transform()
        st = self.state
        curve = self.programs["curve"]
        curve["u_mode"] = EDGE_MODES.index(st.edge_mode)
        curve["u_threshold"] = st.edge_threshold
        sel = list(st.selected_bundles) + [-1, -1]
        curve["u_selected"] = (float(sel[0]), float(sel[1]))
        curve["u_hover"] = float(st.hover_bundle)
        text = self.programs["text"]
        text["u_text_scale"] = float(min(max(self.camera.zoom, 0.85), 1.6))
        text["u_zoom"] = float(self.camera.zoom)
        text["u_min_size"] = LABEL_MIN_PX
        gloo.set_state(scissor_test=True)
        _scissor(self.camera.region)
        for name in ("rect", "patch", "matrix", "curve", "text"):
            p = self.programs[name]
            p["u_transform"] = T
            p["u_resolution"] = res
            p.draw()
        gloo.set_scissor(0, 0, W, H)
        self._ui_under.draw(res)
        cx, cy, cw, chh = chart_region(self.size, panel_width(self.size))
        _scissor((cx, cy, cw, chh))
        self._chart["u_transform"] = chart_transform(self.camera, self.size, panel_width(self.size))
        self._chart["u_resolution"] = res
        self._chart.draw()
        gloo.set_scissor(0, 0, W, H)
        gloo.set_state(scissor_test=False)
        self._ui_over.draw(res)

    def close(self) -> None:
        """Close the canvas (and its window) and free its GL objects."""
        if self._timer is not None:
            self._timer.stop()
        self.canvas.close()

    def render(self, size=None) -> np.ndarray:
        """Draw one frame offscreen; returns (h, w, 4) uint8 RGBA, row 0 at the top."""
        self.canvas.set_current()
        size = tuple(int(v) for v in (size or self.size))
        if self._fbo is None or self._fbo[0] != size:
            fbo = gloo.FrameBuffer(color=gloo.RenderBuffer(size[::-1]))
            self._fbo = (size, fbo)
        fbo = self._fbo[1]
        with fbo:
            self._draw(size)
            return fbo.read()

def _scissor(region) -> None:
    # A negative size is a GL error that PyOpenGL reports only at a later, unrelated call.
    x, y, w, h = (int(round(v)) for v in region)
    gloo.set_scissor(x, y, max(w, 0), max(h, 0))

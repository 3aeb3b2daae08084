"""The renderer: GPU side of the view. One instanced program per primitive type (rect, curve, patch,
matrix, text) plus the chart's lines and the overlay's two layers; `set_scene` re-uploads only the
buffers whose Scene arrays changed, `set_state` only the small per-instance state buffers a view change
touches; `draw` issues one draw call per program, in the order scene, chart, overlay.

Needs a current GL context (the Viewer's canvas)."""
from __future__ import annotations

import numpy as np
from vispy import gloo

from cnnvis.gl._chart import chart_lines, chart_region, chart_transform
from cnnvis.gl._derived import curve_ends, rect_facets, rect_opacity
from cnnvis.gl._names import LABEL_MIN_PX, column_label_rows
from cnnvis.gl._overlay import Overlay, overlay_key
from cnnvis.gl._panel import panel_width
from cnnvis.gl._instances import CURVE_STATIC, QUAD_STATE, QUAD_STATIC, RECT_STATE, RECT_STATIC
from cnnvis.gl._programs import CURVE_SEGMENTS, InstancedProgram, _ribbon, make_programs
from cnnvis.gl._state import EDGE_MODES, ViewState
from cnnvis.gl._text import glyph_atlas, layout_text
from cnnvis.gl._textures import fit_atlas
from cnnvis.gl._ui import THEME, UiBatch
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN, Scene

__all__ = ["Renderer", "GROUPS"]

_CORNERS = np.array([(0, 0), (1, 0), (0, 1), (1, 1)], np.float32)

# Which Scene fields feed which GPU buffer: set_scene re-uploads a buffer only when one of them changed.
GROUPS = {
    "rects": ("rect_box", "rect_fill", "rect_border", "rect_kind", "rect_importance", "rect_mark"),
    "rect_state": ("rect_box", "rect_class_activation", "rect_column", "rect_cluster", "rect_kind"),
    "curves": ("curve_ctrl", "curve_width", "curve_values", "curve_bundle", "curve_color"),
    "patches": ("patch_box", "patch_uv", "patch_tint"),
    "patch_state": ("patch_box", "patch_rect"),
    "atlas": ("atlas",),
    "matrices": ("matrix_box", "matrix_uv"),
    "matrix_state": ("matrix_box", "matrix_rect"),
    "matrix_atlas": ("matrix_atlas",),
    "labels": ("label_text", "label_pos", "label_size"),
    "chart": ("chart_values", "chart_x", "chart_names", "chart_snapshots"),
    "detail_atlas": ("detail_atlas",),
}
MARK_WIDTH = 3.0   # px: the outline of a rectangle Scene.rect_mark marks
# Which ViewState fields feed the per-instance state buffers.
_RECT_STATE = ("facet", "cluster_facet", "selected_classes", "focus_column", "hover_rect")
_QUAD_STATE = ("facet", "cluster_facet", "selected_classes")


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return tuple(a) == tuple(b) if isinstance(a, (tuple, list)) else a == b


class _UiLayer:
    """Screen-space rects + text of an overlay batch."""

    def __init__(self, font: gloo.Texture2D):
        self.rect = InstancedProgram("rect", "a_corner", _CORNERS)
        self.text = InstancedProgram("text", "a_corner", _CORNERS)
        self.text["t_font"] = font
        self.text["u_text_scale"] = 1.0
        self.text["u_zoom"] = 1.0
        self.text["u_min_size"] = 0.0
        self.rect["u_accent"] = THEME["accent"]
        self.rect["u_ring"] = THEME["selection"]

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


class Renderer:
    """Programs, buffers and textures of one view; `uploads` lists the Scene buffer groups uploaded."""

    def __init__(self):
        self.max_texture = int(gloo.gl.glGetParameter(gloo.gl.GL_MAX_TEXTURE_SIZE))
        font = gloo.Texture2D(glyph_atlas().image, interpolation="linear", internalformat="r8")
        self.programs = make_programs()
        self.programs["text"]["t_font"] = font
        self.programs["rect"]["u_accent"] = THEME["accent"]
        self.programs["rect"]["u_ring"] = THEME["selection"]
        self.programs["curve"]["u_accent"] = THEME["selection"]
        self.chart = InstancedProgram("curve", "a_tside", _ribbon(CURVE_SEGMENTS))
        self.chart["u_mode"] = 3
        self.chart["u_threshold"] = 0.0
        self.chart["u_selected"] = (-1.0, -1.0)
        self.chart["u_hover"] = -1.0
        self.chart["u_accent"] = THEME["accent"]
        self.ui_under = _UiLayer(font)
        self.ui_over = _UiLayer(font)
        self.ui_top = _UiLayer(font)
        self.ui_images = InstancedProgram("patch", "a_corner", _CORNERS)   # the panel's pictures (detail atlas)
        self.detail_tex = None
        self.atlas_tex = None
        self.rect_alpha_tex = None
        self.matrix_tex = None
        self.uploads: list[str] = []
        self.overlay: Overlay | None = None
        self.scene: Scene | None = None
        self.state: ViewState | None = None
        self._overlay_key = None
        self._fbo = None

    # ---------------------------------------------------------------------------------- uploads --
    def set_scene(self, scene: Scene, state: ViewState) -> set:
        """Upload the buffers whose Scene arrays differ from the last scene's (all the first time), and
        the state buffers for `state`. Returns the names of the Scene groups uploaded."""
        old, self.scene = self.scene, scene
        changed = {g for g, names in GROUPS.items()
                   if old is None or any(not _same(getattr(old, n, None), getattr(scene, n, None)) for n in names)}
        s = scene
        if "rects" in changed:
            st = np.zeros(s.n_rects, RECT_STATIC)
            st["a_box"], st["a_fill"], st["a_border"] = s.rect_box, s.rect_fill, s.rect_border
            cluster = s.rect_kind == RECT_CLUSTER
            # a_info: kind, importance, corner radius, border width
            width = np.ones(s.n_rects, np.float32)
            if len(s.rect_mark) == s.n_rects:   # optional: the application's marks, a thicker outline
                marked = s.rect_mark[:, 3] > 0
                st["a_border"][marked] = s.rect_mark[marked]
                width[marked] = MARK_WIDTH
            st["a_info"] = np.stack([s.rect_kind.astype(np.float32), s.rect_importance,
                                     np.where(cluster, 3.0, 7.0), width], 1)
            self.programs["rect"].set("static", st)
        if "curves" in changed:
            cu = np.zeros(s.n_curves, CURVE_STATIC)
            c = s.curve_ctrl.reshape(-1, 8)
            cu["a_p01"], cu["a_p23"] = c[:, :4], c[:, 4:]
            cu["a_width"], cu["a_values"], cu["a_bundle"] = s.curve_width, s.curve_values, s.curve_bundle
            if len(s.curve_color) == s.n_curves:   # optional: the layout's colour per curve
                cu["a_color"] = s.curve_color
            cu["a_ends"] = curve_ends(s)
            self.programs["curve"].set("static", cu)
        # An atlas over the texture size limit is re-packed, which rewrites the uvs: then the quads and the
        # texture upload together; otherwise each uploads only when its own arrays changed.
        for static, tex, box, uv, image, prog in (
                ("patches", "atlas", s.patch_box, s.patch_uv, s.atlas, "patch"),
                ("matrices", "matrix_atlas", s.matrix_box, s.matrix_uv, s.matrix_atlas, "matrix")):
            if not changed & {static, tex}:
                continue
            if not image.size:
                image = np.zeros((1, 1) + image.shape[2:], image.dtype)
            if max(image.shape[:2]) > self.max_texture:
                changed |= {static, tex}
                image, uv = fit_atlas(image, uv, self.max_texture)
            if static in changed:
                q = np.zeros(len(box), QUAD_STATIC)
                q["a_box"], q["a_uv"] = box, uv
                if prog == "patch" and len(s.patch_tint) == len(box):   # optional: a frame per patch
                    q["a_tint"] = s.patch_tint
                self.programs[prog].set("static", q)
            if tex in changed and prog == "patch":
                self.atlas_tex = gloo.Texture2D(np.ascontiguousarray(image), interpolation="linear")
                self.programs[prog]["t_atlas"] = self.atlas_tex
            elif tex in changed:
                self.matrix_tex = gloo.Texture2D(np.ascontiguousarray(image), interpolation="nearest",
                                                 internalformat="r32f")
                self.programs[prog]["t_matrix"] = self.matrix_tex
        if "detail_atlas" in changed:   # the pictures of the panel's neuron card
            self.detail_tex = gloo.Texture2D(np.ascontiguousarray(s.detail_atlas), interpolation="linear")
            self.ui_images["t_atlas"] = self.detail_tex
        if "labels" in changed:   # column titles are the overlay's (drawn once, in window pixels)
            keep = np.setdiff1d(np.arange(len(s.label_text)), sorted(column_label_rows(s)))
            self.programs["text"].set("glyphs", layout_text([s.label_text[i] for i in keep], s.label_pos[keep],
                                                            s.label_size[keep], THEME["text"]))
        self.uploads.extend(sorted(changed))
        self._overlay_key = None
        old_state, self.state = self.state, state
        self._upload_state(state, rects=bool(changed & {"rect_state", "curves"}) or old_state is None,
                           quads=bool(changed & {"patch_state", "matrix_state"}) or old_state is None,
                           chart="chart" in changed, since=old_state)
        return changed

    def set_state(self, state: ViewState) -> None:
        """Upload the state buffers (and chart lines) that differ between the last state and `state`."""
        old, self.state = self.state, state
        self._upload_state(state, since=old)

    def _upload_state(self, state, *, rects=False, quads=False, chart=False, since=None) -> None:
        s = self.scene
        if since is not None:
            rects = rects or any(getattr(since, f) != getattr(state, f) for f in _RECT_STATE)
            quads = quads or any(getattr(since, f) != getattr(state, f) for f in _QUAD_STATE)
            chart = chart or since.series != state.series or since.snapshot != state.snapshot
        if rects or quads:
            facet, alpha = rect_facets(s, state), rect_opacity(s, state)
        if rects:
            hi = np.zeros(s.n_rects, np.float32)
            if state.focus_column >= 0:
                hi[(s.rect_kind == RECT_COLUMN) & (s.rect_column == state.focus_column)] = 0.6
            if 0 <= state.hover_rect < s.n_rects and s.rect_kind[state.hover_rect] == RECT_CLUSTER:
                hi[state.hover_rect] = 1.0
            buf = np.zeros(s.n_rects, RECT_STATE)
            buf["a_state"] = np.stack([alpha, hi, facet.astype(np.float32), np.zeros_like(hi)], 1)
            self.programs["rect"].set("state", buf)
            self._upload_rect_alpha(alpha)
        if quads:
            for name, idx, f in (("patch", s.patch_rect, 0), ("matrix", s.matrix_rect, 1)):
                q = np.zeros(len(idx), QUAD_STATE)
                if len(idx):
                    q["a_alpha"] = alpha[idx] * (facet[idx] == f)
                self.programs[name].set("state", q)
        if chart:
            n = len(s.chart_snapshots) or 1
            lines = chart_lines(s, state.series % max(1, len(s.chart_names)), state.snapshot % n)
            lines["a_ends"] = -1
            self.chart.set("static", lines)

    def _upload_rect_alpha(self, alpha: np.ndarray) -> None:
        """Rect opacities as a small float texture the curve shader reads (a curve fades with the faded
        cluster it joins; R texels, not a per-curve buffer, so a class selection re-uploads no curves)."""
        w = 1024
        img = np.ones((max(1, -(-len(alpha) // w)), w), np.float32)
        img.ravel()[:len(alpha)] = alpha
        if self.rect_alpha_tex is None or self.rect_alpha_tex.shape[:2] != img.shape:
            self.rect_alpha_tex = gloo.Texture2D(img, interpolation="nearest", internalformat="r32f")
            for p in (self.programs["curve"], self.chart):
                p["t_rect_alpha"] = self.rect_alpha_tex
                p["u_alpha_size"] = (float(w), float(img.shape[0]))
        else:
            self.rect_alpha_tex.set_data(img)

    def _upload_overlay(self, camera, size) -> Overlay:
        key = overlay_key(self.scene, self.state, camera, size)
        if key != self._overlay_key or self.overlay is None:
            self._overlay_key = key
            self.overlay = Overlay(self.scene, self.state, camera, size)
            self.ui_under.upload(self.overlay.under)
            self.ui_over.upload(self.overlay.over)
            self.ui_top.upload(self.overlay.top)
            self._upload_images(self.overlay.images)
        return self.overlay

    def _upload_images(self, images) -> None:
        """The overlay's pictures [(canvas box, uv in the detail atlas)], drawn over the panel."""
        q, st = np.zeros(len(images), QUAD_STATIC), np.zeros(len(images), QUAD_STATE)
        for i, (box, uv) in enumerate(images):
            q[i]["a_box"], q[i]["a_uv"] = box, uv
        st["a_alpha"] = 1.0
        self.ui_images.set("static", q)
        self.ui_images.set("state", st)

    # ---------------------------------------------------------------------------------- drawing --
    def draw(self, camera, size) -> None:
        """One frame into the bound framebuffer: the scene clipped to the camera's region, the chart
        strip, then the overlay on top."""
        W, H = size
        res = (float(W), float(H))
        gloo.set_viewport(0, 0, W, H)
        gloo.set_state(blend=True, depth_test=False, cull_face=False,
                       blend_func=("src_alpha", "one_minus_src_alpha", "one", "one_minus_src_alpha"))
        gloo.set_clear_color(THEME["background"])
        gloo.clear(color=True, depth=True)
        self._upload_overlay(camera, size)
        T = camera.transform()
        st = self.state
        curve = self.programs["curve"]
        curve["u_mode"] = EDGE_MODES.index(st.edge_mode)
        curve["u_threshold"] = st.edge_threshold
        sel = list(st.selected_bundles) + [-1, -1]
        curve["u_selected"] = (float(sel[0]), float(sel[1]))
        curve["u_hover"] = float(st.hover_bundle)
        text = self.programs["text"]
        text["u_text_scale"] = float(min(max(camera.zoom, 0.85), 1.6))
        text["u_zoom"] = float(camera.zoom)
        text["u_min_size"] = LABEL_MIN_PX
        gloo.set_state(scissor_test=True)
        _scissor(camera.region)
        for name in ("rect", "patch", "matrix", "curve", "text"):
            p = self.programs[name]
            p["u_transform"] = T
            p["u_resolution"] = res
            p.draw()
        gloo.set_scissor(0, 0, W, H)
        self.ui_under.draw(res)
        pw = panel_width(size)
        _scissor(chart_region(size, pw))
        self.chart["u_transform"] = chart_transform(camera, size, pw)
        self.chart["u_resolution"] = res
        self.chart.draw()
        gloo.set_scissor(0, 0, W, H)
        gloo.set_state(scissor_test=False)
        self.ui_over.draw(res)
        if self.ui_images.count:
            self.ui_images["u_transform"] = (1.0, 1.0, 0.0, 0.0)
            self.ui_images["u_resolution"] = res
            self.ui_images.draw()
        self.ui_top.draw(res)

    def render(self, camera, size) -> np.ndarray:
        """One frame offscreen; (h, w, 4) uint8 RGBA, row 0 at the top."""
        if self._fbo is None or self._fbo[0] != size:
            self._fbo = (size, gloo.FrameBuffer(color=gloo.RenderBuffer(size[::-1])))
        with self._fbo[1]:
            self.draw(camera, size)
            return self._fbo[1].read()


def _scissor(region) -> None:
    # A negative size is a GL error that PyOpenGL reports only at a later, unrelated call.
    x, y, w, h = (int(round(v)) for v in region)
    gloo.set_scissor(x, y, max(w, 0), max(h, 0))

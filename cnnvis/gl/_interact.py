"""Interactions of the Viewer: picking what is under the mouse, hover tooltips, clicks on the panel and
the view, drags, double-clicks, keys, and the window's event handlers that call them. A mixin of Viewer:
it uses the Viewer's scene, state, camera and methods."""
from __future__ import annotations

import numpy as np
from vispy import app

from cnnvis.gl._chart import chart_height
from cnnvis.gl._panel import hit_widget, panel_width, slider_value
from cnnvis.gl._state import FACETS
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN

__all__ = ["Interaction"]

_CURVE_SAMPLES = 17       # points per curve for picking on the CPU


class Interaction:
    """Every mouse and key interaction, as a method taking window coordinates (origin top left)."""

    # ----------------------------------------------------------------------------------- picking --
    def _canvas_xy(self, x: float, y: float) -> tuple:
        return (float(x), float(self.size[1] - y))

    def _in_view(self, cx: float, cy: float) -> bool:
        x, y, w, h = self.camera.region
        return x <= cx <= x + w and y <= cy <= y + h

    def pick(self, x: float, y: float) -> tuple:
        """What is under the window point: ("widget", Widget), ("patch", i), ("rect", i), ("curve", i),
        ("chart", column or -1) or ("none", -1)."""
        cx, cy = self._canvas_xy(x, y)
        w = hit_widget(self._widgets(), cx, cy)
        if w is not None:
            return ("widget", w)
        if cx >= self.size[0] - panel_width(self.size):
            return ("none", -1)
        if not self._in_view(cx, cy):
            if cy < chart_height(self.size) and len(self.scene.chart_x):
                px = self.scene.chart_x * self.camera.zoom + self.camera.transform()[2]
                i = int(np.argmin(np.abs(px - cx)))
                return ("chart", i if abs(px[i] - cx) < 40 else -1)
            return ("none", -1)
        wx, wy = self.camera.to_world((cx, cy))
        s = self.scene
        if s.n_patches:
            b = s.patch_box
            inside = (b[:, 0] <= wx) & (wx <= b[:, 2]) & (b[:, 1] <= wy) & (wy <= b[:, 3])
            if inside.any():
                facet = self.rect_facets()
                for i in np.flatnonzero(inside):
                    if facet[s.patch_rect[i]] == 0:
                        return ("patch", int(i))
        b = s.rect_box
        inside = (b[:, 0] <= wx) & (wx <= b[:, 2]) & (b[:, 1] <= wy) & (wy <= b[:, 3])
        clusters = np.flatnonzero(inside & (s.rect_kind == RECT_CLUSTER))
        if len(clusters):
            area = (b[clusters, 2] - b[clusters, 0]) * (b[clusters, 3] - b[clusters, 1])
            return ("rect", int(clusters[np.argmin(area)]))
        e = self._pick_curve(wx, wy)
        if e >= 0:
            return ("curve", e)
        columns = np.flatnonzero(inside)
        if len(columns):
            return ("rect", int(columns[0]))
        return ("none", -1)

    def _pick_curve(self, wx: float, wy: float) -> int:
        s = self.scene
        if not s.n_curves:
            return -1
        if self._curve_samples is None:
            t = np.linspace(0, 1, _CURVE_SAMPLES)[:, None]
            basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], 1)[..., 0]
            self._curve_samples = np.einsum("tk,ekd->etd", basis, s.curve_ctrl.astype(np.float64))
            self._curve_bbox = np.r_["1", s.curve_ctrl.min(1), s.curve_ctrl.max(1)]
        tol = (np.maximum(s.curve_width / 2, 2.0) + 3.0) / self.camera.zoom
        bb = self._curve_bbox
        cand = np.flatnonzero((bb[:, 0] - tol <= wx) & (wx <= bb[:, 2] + tol) & (bb[:, 1] - tol <= wy)
                              & (wy <= bb[:, 3] + tol) & self.visible_curves())
        if not len(cand):
            return -1
        pts = self._curve_samples[cand]
        a, b = pts[:, :-1], pts[:, 1:]
        ab = b - a
        u = np.clip(((wx - a[..., 0]) * ab[..., 0] + (wy - a[..., 1]) * ab[..., 1])
                    / np.maximum((ab ** 2).sum(-1), 1e-12), 0, 1)
        d = np.hypot(a[..., 0] + u * ab[..., 0] - wx, a[..., 1] + u * ab[..., 1] - wy).min(1)
        ok = d <= tol[cand]
        if not ok.any():
            return -1
        return int(cand[np.flatnonzero(ok)[np.argmin(d[ok])]])

    # ----------------------------------------------------------------------------- interactions --
    def hover(self, x: float, y: float) -> tuple:
        """Update the hover highlight and tooltip for the window point; returns the tooltip lines."""
        kind, i = self.pick(x, y)
        s, st = self.scene, self.state
        lines: tuple = ()
        rect, bundle = -1, -1
        if kind == "patch":
            r = int(s.patch_rect[i])
            lines = (f"neuron (patch {i}) of {self._cluster_name(r)}", "drag it onto another cluster to move it")
            rect = r
        elif kind == "rect" and s.rect_kind[i] == RECT_CLUSTER:
            rect = i
            act = s.rect_class_activation[i]
            top = np.argsort(-act)[:3] if act.size else []
            lines = (self._cluster_name(i),
                     f"{int(s.rect_size[i])} neurons \u00b7 importance {float(s.rect_importance[i]):.2f}",
                     "top classes: " + ", ".join(f"{s.class_names[k]} ({act[k]:.2f})" for k in top),
                     f"facet: {FACETS[int(self.rect_facets()[i])]} (click for the next)")
        elif kind == "rect":
            c = int(s.rect_column[i])
            n = int(((s.rect_column == c) & (s.rect_kind == RECT_CLUSTER)).sum())
            lines = (f"layer cluster {self._column_name(c)}",
                     f"{int(s.rect_size[i])} layers \u00b7 {n} neuron clusters", "double-click to zoom in and expand")
        elif kind == "curve":
            v = s.curve_values[i]
            bundle = int(s.curve_bundle[i])
            lines = (f"bundle {bundle}", f"weight {v[0]:+.2f} \u00b7 gradient {v[1]:.2f} \u00b7 change {v[2]:.2f}",
                     "click to select (two to merge)")
        elif kind == "chart" and i >= 0 and len(s.chart_names):
            ser = st.series % len(s.chart_names)
            val = s.chart_values[ser, st.snapshot % max(1, len(s.chart_snapshots)), i]
            lines = (f"{self._column_name(i)}: {s.chart_names[ser]} = "
                     + ("n/a" if not np.isfinite(val) else f"{float(val):.3g}"),)
        st.tooltip, st.tooltip_at = lines, self._canvas_xy(x, y)
        st.hover_bundle = bundle
        if rect != st.hover_rect:
            st.hover_rect = rect
            self._upload_state(quads=False)
        self._changed()
        return lines

    def click(self, x: float, y: float) -> tuple:
        """A left click at the window point; returns (what was hit, index or action)."""
        kind, i = self.pick(x, y)
        if kind == "widget":
            self._apply(i.action, self._canvas_xy(x, y)[0], i)
            return ("widget", i.action)
        if kind == "patch":
            kind, i = "rect", int(self.scene.patch_rect[i])
        if kind == "rect" and self.scene.rect_kind[i] == RECT_CLUSTER:
            self.cycle_facet(i)
        elif kind == "curve":
            self.select_bundle(int(self.scene.curve_bundle[i]))
        elif kind == "none" and self.state.selected_bundles:
            self.state.selected_bundles = ()
            self._changed()
        return (kind, i)

    def double_click(self, x: float, y: float) -> tuple:
        """Zoom to the layer cluster under the point, expanding it as it fills the view."""
        kind, i = self.pick(x, y)
        if kind == "patch":
            kind, i = "rect", int(self.scene.patch_rect[i])
        if kind in ("rect", "chart") and i >= 0:
            c = int(self.scene.rect_column[i]) if kind == "rect" else i
            self.zoom_to_column(c, expand=self.scene.rect_size[self._column_rect(c)] > 1)
            return ("column", c)
        return (kind, i)

    def drag(self, x0: float, y0: float, x1: float, y1: float):
        """A left drag: moves a neuron (from a patch onto a cluster), the edge slider, or pans."""
        kind, i = self.pick(x0, y0)
        if kind == "patch":
            k2, j = self.pick(x1, y1)
            if k2 == "patch":
                k2, j = "rect", int(self.scene.patch_rect[j])
            if k2 == "rect" and self.scene.rect_kind[j] == RECT_CLUSTER and j != self.scene.patch_rect[i] \
                    and self.scene.rect_column[j] == self.scene.rect_column[self.scene.patch_rect[i]]:
                return self.move_neuron(i, j)
            return None
        if kind == "widget" and i.action == ("threshold",):
            self.set_edge_threshold(round(slider_value(i, self._canvas_xy(x1, y1)[0]), 2))
            return None
        self.pan(x1 - x0, y1 - y0)
        return None

    def key(self, name: str) -> bool:
        """Keyboard shortcuts; returns True when the key was used."""
        actions = {"f": self.fit, "1": lambda: self.set_facet("features"), "2": lambda: self.set_facet("matrix"),
                   "3": lambda: self.set_facet("importance"), "w": lambda: self.set_edge_mode("weight"),
                   "g": lambda: self.set_edge_mode("gradient"), "c": lambda: self.set_edge_mode("change"),
                   "]": lambda: self.set_edge_threshold(min(1.0, round(self.state.edge_threshold + 0.05, 2))),
                   "[": lambda: self.set_edge_threshold(max(0.0, round(self.state.edge_threshold - 0.05, 2))),
                   "=": lambda: self.zoom(1.25), "+": lambda: self.zoom(1.25), "-": lambda: self.zoom(0.8),
                   "m": lambda: self.merge_bundles() if len(self.state.selected_bundles) == 2 else None}
        fn = actions.get(name.lower() if len(name) == 1 else name)
        if fn is None:
            return False
        fn()
        return True

    def _apply(self, action: tuple, cx: float, widget=None) -> None:
        kind = action[0]
        if kind == "facet":
            self.set_facet(action[1])
        elif kind == "edge_mode":
            self.set_edge_mode(action[1])
        elif kind == "threshold":
            self.set_edge_threshold(round(slider_value(widget, cx), 2))
        elif kind == "class":
            self.toggle_class(action[1])
        elif kind == "classes":
            self.select_classes(range(len(self.scene.class_names)) if action[1] == "all" else ())
        elif kind == "series":
            self.set_series(action[1])
        elif kind == "series_step":
            self.set_series((self.state.series + action[1]) % max(1, len(self.scene.chart_names)))
        elif kind == "snapshot":
            self.set_snapshot(self.state.snapshot % max(1, len(self.scene.chart_snapshots)) + action[1])
        elif kind == "column":
            self.zoom_to_column(action[1])
        elif kind == "expand" and self.state.focus_column >= 0:
            self.expand_column(self.state.focus_column)
        elif kind == "fit":
            self.state.focus_column = -1
            self._upload_state(quads=False)
            self.fit()
        elif kind == "merge":
            self.merge_bundles()

    def _column_rect(self, c: int) -> int:
        s = self.scene
        m = np.flatnonzero((s.rect_kind == RECT_COLUMN) & (s.rect_column == c))
        return int(m[0]) if len(m) else int(np.flatnonzero(s.rect_column == c)[0])

    def _column_name(self, c: int) -> str:
        names = self.scene.column_names
        return str(names[c]) if 0 <= c < len(names) else f"column {c}"

    def _cluster_name(self, r: int) -> str:
        s = self.scene
        return f"{self._column_name(int(s.rect_column[r]))} \u00b7 neuron cluster {int(s.rect_cluster[r])}"

    # ------------------------------------------------------------------------------ window events --
    def _connect(self) -> None:
        ev = self.canvas.events
        ev.draw.connect(lambda e: self._draw(self.canvas.size))
        ev.resize.connect(lambda e: (self.resize(e.size), self.canvas.update()))
        ev.mouse_press.connect(self._on_press)
        ev.mouse_move.connect(self._on_move)
        ev.mouse_release.connect(self._on_release)
        ev.mouse_double_click.connect(self._on_double_click)
        ev.mouse_wheel.connect(lambda e: self.zoom(1.15 ** e.delta[1], at=e.pos))
        ev.key_press.connect(self._on_key)
        self._timer = app.Timer(1 / 60, connect=self._on_timer, start=False)

    def _on_timer(self, event) -> None:
        if not self.step(min(event.dt or 1 / 60, 0.1)):
            self._timer.stop()

    def _on_press(self, e) -> None:
        if e.button != 1:
            return
        x, y = e.pos
        self._press = [x, y, self.pick(x, y), False, x, y]

    def _on_move(self, e) -> None:
        x, y = e.pos
        p = self._press
        if p is None or not e.is_dragging:
            self.hover(x, y)
            return
        if p[3] is False and abs(x - p[0]) + abs(y - p[1]) > 3:
            p[3] = True
        if p[3] is not True:
            return
        kind, target = p[2]
        if kind == "patch":
            self.state.drag_ghost = self._canvas_xy(x, y)
            self._changed()
        elif kind == "widget" and target.action == ("threshold",):
            self._guarded(self.drag, p[0], p[1], x, y)
        elif kind != "widget":
            self.pan(x - p[4], y - p[5])
        p[4], p[5] = x, y

    def _on_release(self, e) -> None:
        p, self._press = self._press, None
        if p is None or e.button != 1:
            return
        x, y = e.pos
        self.state.drag_ghost = ()
        if p[3] == "double":
            pass
        elif not p[3]:
            self._undo_click = dict(self.state.cluster_facet)
            self._guarded(self.click, x, y)
        elif p[2][0] == "patch":
            self._guarded(self.drag, p[0], p[1], x, y)
        self._changed()

    def _on_double_click(self, e) -> None:
        # The first click of the pair already cycled a cluster's facet: undo that, and let the second
        # release do nothing, so a double-click only zooms.
        if self._undo_click is not None and self._undo_click != self.state.cluster_facet:
            self.state.cluster_facet = self._undo_click
            self._upload_state()
        self._undo_click = None
        # VisPy emulates double-clicks for glfw and sends them without a position (0, 0): use the press's.
        x, y = e.pos
        if self._press is not None:
            self._press[3] = "double"
            x, y = self._press[0], self._press[1]
        self._guarded(self.double_click, x, y)

    def _on_key(self, e) -> None:
        name = e.key.name if e.key is not None else ""
        if e.text and len(e.text) == 1:
            name = e.text
        if name == "Escape":
            self.state.selected_bundles = ()
            self.select_classes(())
            return
        self._guarded(self.key, name)

    def _guarded(self, fn, *args):
        """Run an interaction from a window event; a refused edit (CnnvisError is a ValueError, e.g. from
        the pipeline's on_edit) becomes a one-line note by the cursor instead of a log line nobody sees."""
        try:
            return fn(*args)
        except ValueError as exc:
            self.state.tooltip = (f"not done: {exc}",)
            self._changed()
            return None

"""The Viewer: a thin façade over the renderer (GPU buffers, drawing), the controller (what an event
means, as actions), the overlay (panel, chart, tooltip) and a frozen ViewState it replaces on every
change. Every interaction is a method, so tests and scripts drive it as the mouse does.

The application's side (`on_edit`, `busy`): `on_edit(edit)` gets each edit request and returns the new
Scene, None (nothing changes), or a poll function when the Scene is not ready yet; the viewer then keeps
drawing, shows "<what>…" in the view, calls `poll()` every POLL_S seconds until it returns the Scene, and
swaps it in (the camera flight that asked for it has already started). `busy()` (optional) returns what
the application is working on in the background ("clustering…") or None; the viewer polls it too and
shows it the same way; `set_busy(text)` sets the note directly.

Window coordinates in the public methods are pixels with the origin at the top left (as mouse events
give them); inside, canvas pixels have the origin at the bottom left (as GL has it)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from vispy import app

from cnnvis.gl import _actions as A
from cnnvis.gl import _controller as ctl
from cnnvis.gl._camera import Camera
from cnnvis.gl._controller import column_name as column_label
from cnnvis.gl._chart import chart_height
from cnnvis.gl._derived import content_box, edge_mode_missing, rect_facets, rect_opacity, visible_curves
from cnnvis.gl._events import POLL_S, WindowEvents
from cnnvis.gl._findings import focus
from cnnvis.gl._legend import legend_height, legend_shown
from cnnvis.gl._panel import panel_widgets, panel_width
from cnnvis.gl._renderer import Renderer
from cnnvis.gl._state import EDGE_MODES, FACETS, ZOOM_SECONDS, Transient, ViewState
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN, Scene
from cnnvis.layout._edits import CollapseColumn, ExpandColumn, MergeBundles, MoveNeuron, Redo, SelectSnapshot, Undo

__all__ = ["Viewer", "ZOOM_SECONDS", "FIT_COLUMNS", "POLL_S"]

FIT_COLUMNS = 12          # an expand fits at most this many of its layers (a ResNet-50 stage has 31 to 62:
                          # all at once is a thin band of unreadable names); pan for the rest


class Viewer:
    """The CNNVis view of one Scene.

    on_edit(edit) is called with each edit request (cnnvis.layout's MoveNeuron, MergeBundles,
    ExpandColumn, SelectSnapshot); when it returns a Scene the viewer shows it, re-uploading only the
    buffers whose arrays changed. All edits are also kept in `edits`. `show=True` opens a window (the
    VisPy app backend chosen by the caller: glfw for a window, egl offscreen)."""

    def __init__(self, scene: Scene, *, on_edit: Callable | None = None, busy: Callable | None = None,
                 size=(1280, 800), show=False, title: str = "cnnvis", canvas: app.Canvas | None = None):
        scene.validate()
        self.on_edit = on_edit
        self.busy = busy
        self.edits: list = []
        self.state = ViewState()
        self.transient = Transient()        # what is in flight between frames, never drawn
        self.frames = 0                    # frames drawn into the window (tests count idle draws)
        self.canvas = canvas or app.Canvas(size=tuple(size), show=show, title=title, keys=None)
        self.canvas.set_current()
        self.size = tuple(int(v) for v in size)
        self.camera = Camera()
        self.renderer = Renderer()
        self.scene = None
        self.set_scene(scene)
        self._layout(self.size)
        self.fit()
        self.events = WindowEvents(self)
        if busy is not None:
            self.events.poll()

    @property
    def programs(self) -> dict:
        return self.renderer.programs

    @property
    def uploads(self) -> list:
        """Scene buffer groups uploaded, in order (tests check that edits touch few)."""
        return self.renderer.uploads

    # ---------------------------------------------------------------------------------------- scene --
    def set_scene(self, scene: Scene) -> set:
        """Show another Scene; upload only the buffers whose source arrays changed. Returns their names."""
        scene.validate()
        old, self.scene = self.scene, scene
        if old is not None and (old.n_rects != scene.n_rects or not np.array_equal(old.rect_column, scene.rect_column)):
            self.state = self.state.replace(hover_rect=-1)
        self.canvas.set_current()
        changed = self.renderer.set_scene(scene, self.state)
        self._curves = ctl.CurveIndex(scene)
        self._content = content_box(scene)
        self.canvas.update()
        if old is not None:
            self._relayout()
            self._refresh_tooltip()
        return changed

    def _refresh_tooltip(self) -> None:
        """Rebuild the hover tooltip for the mouse's last point (after a new Scene, a facet change or a
        camera move), so it never describes what is no longer under the mouse."""
        if self.transient.mouse is None:
            self.update_state(tooltip=(), hover_rect=-1, hover_bundle=-1)
        else:
            self.hover(*self.transient.mouse)

    # ----------------------------------------------------------------------------------- view state --
    def update_state(self, **changes) -> ViewState:
        """Replace the view state with these fields changed; uploads what the change touches."""
        new = self.state.replace(**changes)
        if new != self.state:   # only a change asks for a frame: an idle window draws nothing
            relayout = new.show_legend != self.state.show_legend
            self.state = new
            if relayout:
                self._relayout()
            self.canvas.set_current()
            self.renderer.set_state(new)
            self.canvas.update()
        return new

    def rect_facets(self) -> np.ndarray:
        """(R,) int8 index into FACETS of every rectangle's facet."""
        return rect_facets(self.scene, self.state)

    def rect_opacity(self) -> np.ndarray:
        """(R,) float32: 1, or faded for clusters low on every selected class."""
        return rect_opacity(self.scene, self.state)

    def visible_curves(self) -> np.ndarray:
        """(E,) bool: curves the edge filter keeps (as the shader decides)."""
        return visible_curves(self.scene, self.state)

    def set_facet(self, facet: str, rect: int | None = None) -> None:
        """Facet of all clusters (rect=None; clears per-cluster choices) or of the cluster `rect`."""
        if facet not in FACETS:
            raise ValueError(f"facet must be one of {FACETS}, got {facet!r}")
        if rect is None:
            self.update_state(facet=facet, cluster_facet={})
            self._refresh_tooltip()
        else:
            s = self.scene
            if not (0 <= rect < s.n_rects) or s.rect_kind[rect] != RECT_CLUSTER:
                raise ValueError(f"rect must index a neuron cluster, got {rect}")
            key = (int(s.rect_column[rect]), int(s.rect_cluster[rect]))
            self.update_state(cluster_facet=self.state.cluster_facet.with_(key, facet))
            self._refresh_tooltip()

    def cycle_facet(self, rect: int) -> str:
        """Switch one cluster to its next facet (a click on it); returns the new facet."""
        f = FACETS[(int(self.rect_facets()[rect]) + 1) % len(FACETS)]
        self.set_facet(f, rect)
        return f

    def set_edge_mode(self, mode: str) -> None:
        """Colour the edges by weight, gradient or change; ValueError saying why for a mode this Scene has
        no values for (every edge would be grey)."""
        if mode not in EDGE_MODES:
            raise ValueError(f"edge mode must be one of {EDGE_MODES}, got {mode!r}")
        missing = edge_mode_missing(self.scene, mode)
        if missing:
            raise ValueError(f"edge colour {mode}: {missing}")
        self.update_state(edge_mode=mode)

    def set_edge_threshold(self, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"edge threshold must be in 0..1, got {threshold}")
        self.update_state(edge_threshold=float(threshold))

    def select_classes(self, classes) -> None:
        """Select classes by index or name; clusters low on all of them turn translucent. Empty: none."""
        names = list(self.scene.class_names)
        sel = set()
        for c in classes:
            k = names.index(c) if isinstance(c, str) and c in names else c
            if not isinstance(k, (int, np.integer)) or not 0 <= k < len(names):
                raise ValueError(f"unknown class {c!r}; classes are {names}")
            sel.add(int(k))
        self.update_state(selected_classes=frozenset(sel))

    def toggle_class(self, k: int) -> None:
        self.select_classes(self.state.selected_classes ^ {int(k)})

    def set_series(self, series) -> None:
        names = list(self.scene.chart_names)
        i = names.index(series) if isinstance(series, str) else int(series)
        if not 0 <= i < max(1, len(names)):
            raise ValueError(f"series must be one of {names}, got {series!r}")
        self.update_state(series=i)

    def set_snapshot(self, snapshot: int) -> None:
        """Highlight a snapshot in the chart and ask the pipeline for its edge values (SelectSnapshot)."""
        n = len(self.scene.chart_snapshots)
        if n == 0:
            return
        self.update_state(snapshot=int(snapshot) % n)
        self._emit(SelectSnapshot(self.state.snapshot))

    def select_bundle(self, bundle: int) -> tuple:
        """Toggle a bundle in the selection (at most two: the oldest drops out)."""
        sel = list(self.state.selected_bundles)
        if bundle in sel:
            sel.remove(bundle)
        else:
            sel = (sel + [int(bundle)])[-2:]
        return self.update_state(selected_bundles=tuple(sel)).selected_bundles

    # ------------------------------------------------------------------------------------ camera --
    def _layout(self, size) -> None:
        W, H = size
        pw, ch = panel_width(size), chart_height(size)
        ch += legend_height(size, self.scene) if legend_shown(self.state, size) else 0.0   # the legend bar sits above the chart
        self.camera.region = (0.0, ch, max(W - pw, 1.0), max(H - ch, 1.0))
        self.size = (int(W), int(H))

    def _relayout(self) -> None:
        """Recompute the view region (the legend bar's height may change) keeping the view's centre."""
        x, y, w, h = self.camera.region
        c = self.camera.to_world((x + w / 2, y + h / 2))
        self._layout(self.size)
        self.camera.center[:] = c

    def resize(self, size) -> None:
        size = (int(size[0]), int(size[1]))
        if size != self.size:
            x, y, w, h = self.camera.region
            c = self.camera.to_world((x + w / 2, y + h / 2))
            self._layout(size)
            self.camera.center[:] = c

    def fit(self) -> None:
        """Show the whole scene."""
        self.camera.fit(self._content, margin=28)
        self.canvas.update()
        self._refresh_tooltip()

    def pan(self, dx: float, dy: float) -> None:
        """Move the content by (dx, dy) window pixels (dy down, as a mouse drag)."""
        self.camera.pan(dx, -dy)
        self.canvas.update()

    def zoom(self, factor: float, at=None) -> None:
        """Zoom by factor about the window point `at` (default: the view centre)."""
        self.camera.zoom_about(factor, None if at is None else ctl.canvas_xy(self.size, *at))
        self.canvas.update()
        self._refresh_tooltip()

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
        self.camera.fly_to(box, duration if animate else 0.0, margin=20)
        self.transient.pending_expand = int(column) if expand else -1
        self.transient.fit_seconds = duration if animate else 0.0   # the expand on landing flies as this did
        self.update_state(focus_column=int(column))
        if not self.camera.animating:
            self._landed()
        else:
            self.events.animate()

    def step(self, dt: float) -> bool:
        """Advance the camera animation by dt seconds (the window's timer calls this); True while moving."""
        moving = self.camera.step(dt)
        if not moving:
            self._landed()
            moving = self.camera.animating  # landing can start the next flight (the fit onto an expand)
        self.canvas.update()
        return moving

    def _landed(self) -> None:
        t = self.transient
        if t.pending_expand >= 0:
            c, t.pending_expand = t.pending_expand, -1
            self.expand_column(c, animate=t.fit_seconds > 0)

    def focus_finding(self, number: int, *, animate: bool = True):
        """Show finding `number` (1-based, as `cnnvis diagnose` numbers them) of Scene.findings: the facet
        that shows its evidence, the camera on its column, its clusters or neurons outlined (see
        cnnvis.gl._findings). Returns its FindingMark; ValueError naming the range for a bad number."""
        return focus(self, number, animate=animate)

    def show_detail(self, patch: int):
        """Open the panel's card of the neuron of `patch` (Scene.patch_detail: e.g. its partner in another
        model), or close it when it is the card shown. Returns the NeuronDetail now shown, or None."""
        d = ctl.patch_detail(self.scene, int(patch))
        if d is None:
            raise ValueError(f"patch {patch} has no neuron card in this scene")
        key = () if self.state.detail == d.key else d.key
        self.update_state(detail=key)
        return d if key else None

    def detail(self):
        """The NeuronDetail the panel shows (looked up by key in this Scene), or None."""
        return ctl.detail_by_key(self.scene, self.state.detail)

    # ------------------------------------------------------------------------------------- edits --
    def _emit(self, edit):
        """Send an edit request to the application: a Scene back is shown; a poll function is polled (the
        window keeps drawing) until it gives the Scene; None changes nothing."""
        if self.transient.poll is not None:
            raise ValueError(f"{self.state.busy or 'still working'}: wait for it to finish")
        self.edits.append(edit)
        if self.on_edit is not None:
            result = self.on_edit(edit)
            if isinstance(result, Scene):
                self._edited(edit, result)
            elif callable(result):
                self.transient.pending_edit, self.transient.poll = edit, result
                self.update_state(busy=_working_on(self.scene, edit))
                self.events.poll()
        return edit

    def poll(self) -> bool:
        """Poll a pending Scene and the application's busy(); swap the Scene in when it arrives. Returns
        True while there is something to wait for (the window's poll timer calls this)."""
        t = self.transient
        if t.poll is not None:
            try:
                result = t.poll()
            except ValueError as exc:  # the edit was refused (CnnvisError is one): say so by the cursor
                t.poll = t.pending_edit = None
                self.update_state(busy="", tooltip=(f"not done: {exc}",))
                return self.busy is not None
            if isinstance(result, Scene):
                edit, t.poll, t.pending_edit = t.pending_edit, None, None
                self.update_state(busy="")
                self._edited(edit, result)
        if t.poll is None:
            text = self.busy() if self.busy is not None else None
            self.update_state(busy=text or "")
        return t.poll is not None or self.busy is not None

    def set_busy(self, text: str | None) -> None:
        """Show (or with None/"" clear) a note of what the application is working on, e.g. "clustering…"."""
        self.update_state(busy=text or "")

    def _edited(self, edit, scene: Scene) -> None:
        """The Scene an edit made: show it, count the undo/redo depth the session now has, fly."""
        self.set_scene(scene)
        u, r = self.state.undo_depth, self.state.redo_depth
        if isinstance(edit, Undo):
            u, r = max(u - 1, 0), r + 1
        elif isinstance(edit, Redo):
            u, r = u + 1, max(r - 1, 0)
        else:
            u, r = u + 1, 0
        self.update_state(undo_depth=u, redo_depth=r)
        self._after_edit(edit)

    def _after_edit(self, edit) -> None:
        """After an expand, fly the view (eased, ZOOM_SECONDS) to the new layer columns; after a collapse, to the
        merged one. The flight starts from where the camera was, so the expand reads as a zoom out to the group
        rather than a jump (the layout keeps the group where the cluster was). A group wider than FIT_COLUMNS
        layers gets its first FIT_COLUMNS fitted."""
        if isinstance(edit, (ExpandColumn, CollapseColumn)):
            c = edit.column
            g = self.scene.column_group
            cols = np.flatnonzero(g == g[c]) if len(g) > c and g[c] >= 0 else np.array([c])
            cols = cols[cols < len(self.scene.column_names)]
            if len(cols):
                boxes = np.array([self.column_box(int(k)) for k in cols])
                boxes = boxes[np.argsort(boxes[:, 0], kind="stable")][:FIT_COLUMNS]
                self.camera.fly_to(np.r_[boxes[:, :2].min(0), boxes[:, 2:].max(0)], self.transient.fit_seconds,
                                   margin=24)
                if self.camera.animating:  # a Scene that arrived by poll or on landing: the flight needs the timer
                    self.events.animate()
                self.update_state(focus_column=int(cols[0]))
                if self.camera.animating:
                    self.events.animate()
                self.canvas.update()
                self._refresh_tooltip()

    def _check_column(self, column: int) -> None:
        if not 0 <= column < max(len(self.scene.column_names), int(self.scene.rect_column.max(initial=-1)) + 1):
            raise ValueError(f"no layer cluster {column}")

    def expand_column(self, column: int, *, animate: bool = True):
        """Ask to expand a layer cluster into its layers (ExpandColumn); the view then flies to fit them
        (animate=False: jumps there)."""
        self._check_column(column)
        self.transient.fit_seconds = ZOOM_SECONDS if animate else 0.0
        return self._emit(ExpandColumn(int(column)))

    def collapse_column(self, column: int | None = None, *, animate: bool = True):
        """Ask to collapse the expanded group of `column` (default: the focused column) back into one layer
        cluster (CollapseColumn)."""
        column = self.state.focus_column if column is None else int(column)
        self._check_column(column)
        self.transient.fit_seconds = ZOOM_SECONDS if animate else 0.0
        return self._emit(CollapseColumn(int(column)))

    def toggle_help(self) -> bool:
        """Show or hide the card listing every key and mouse action (key ?); returns whether it shows."""
        return self.update_state(show_help=not self.state.show_help).show_help

    def undo(self):
        """Ask to take back the last edit (Undo); the pipeline answers from its stack of aggregations."""
        return self._emit(Undo())

    def redo(self):
        """Ask to re-apply the edit the last undo took back (Redo)."""
        return self._emit(Redo())

    def merge_bundles(self, a: int | None = None, b: int | None = None):
        """Ask to merge two bundles (default: the two selected). Returns the MergeBundles request."""
        if a is None or b is None:
            if len(self.state.selected_bundles) != 2:
                raise ValueError("select two bundles to merge (click two edges), or pass a and b")
            a, b = self.state.selected_bundles
        known = set(np.unique(self.scene.curve_bundle).tolist())
        for x in (a, b):
            if int(x) not in known:
                raise ValueError(f"no bundle {x} in this scene")
        self.update_state(selected_bundles=())
        ids = self.scene.bundle_id
        a_id, b_id = ((tuple(int(v) for v in ids[a]), tuple(int(v) for v in ids[b])) if len(ids) else ((), ()))
        return self._emit(MergeBundles(int(a), int(b), a_id, b_id))

    def move_neuron(self, patch: int, dst_rect: int):
        """Ask to move the neuron of `patch` into the cluster `dst_rect` of the same layer cluster."""
        s = self.scene
        if not 0 <= patch < s.n_patches:
            raise ValueError(f"no patch {patch} ({s.n_patches} patches)")
        src = int(s.patch_rect[patch])
        if not 0 <= dst_rect < s.n_rects or s.rect_kind[dst_rect] != RECT_CLUSTER:
            raise ValueError(f"rect {dst_rect} is not a neuron cluster")
        if s.rect_column[dst_rect] != s.rect_column[src]:   # the request names clusters by (column, id)
            raise ValueError("a neuron can only move to a cluster of its own layer cluster")
        column = int(s.rect_column[src])
        neuron = int(s.patch_neuron[patch]) if len(s.patch_neuron) == s.n_patches else -1
        layer = str(s.column_layer[column]) if len(s.column_layer) else ""
        return self._emit(MoveNeuron(int(patch), src, int(dst_rect), column, int(s.rect_cluster[src]),
                                     int(s.rect_cluster[dst_rect]), neuron, layer))

    # ---------------------------------------------------------------------------- interactions --
    def widgets(self):
        """The panel's widgets as laid out for the current state and size (canvas pixels)."""
        return panel_widgets(self.state, self.scene, self.size)

    def pick(self, x: float, y: float) -> tuple:
        """What is under the window point: ("widget", Widget), ("patch", i), ("rect", i), ("curve", i),
        ("chart", column or -1) or ("none", -1)."""
        return ctl.pick(self.scene, self.state, self.camera, self.size, self.widgets(), self._curves, x, y)

    def apply(self, actions) -> None:
        """Carry out the controller's typed actions (cnnvis.gl._actions), in order."""
        for a in actions:
            match a:
                case A.SetState(changes):
                    self.update_state(**changes)
                case A.Fit():
                    self.fit()
                case A.Pan(dx, dy):
                    self.pan(dx, dy)
                case A.Zoom(factor):
                    self.zoom(factor)
                case A.SetFacet(facet, rect):
                    self.set_facet(facet, None if rect < 0 else rect)
                case A.CycleFacet(rect):
                    self.cycle_facet(rect)
                case A.SetEdgeMode(mode):
                    self.set_edge_mode(mode)
                case A.SetEdgeThreshold(t):
                    self.set_edge_threshold(t)
                case A.SelectClasses(classes):
                    self.select_classes(classes)
                case A.ToggleClass(k):
                    self.toggle_class(k)
                case A.SetSeries(i):
                    self.set_series(i)
                case A.SetSnapshot(i):
                    self.set_snapshot(i)
                case A.ZoomToColumn(column, expand):
                    self.zoom_to_column(column, expand=expand)
                case A.ExpandColumn(column):
                    self.expand_column(column)
                case A.CollapseColumn(column):
                    self.collapse_column(column)
                case A.Undo():
                    self.undo()
                case A.Redo():
                    self.redo()
                case A.SelectBundle(b):
                    self.select_bundle(b)
                case A.MergeSelected():
                    self.merge_bundles()
                case A.MoveNeuronTo(patch, dst):
                    self.move_neuron(patch, dst)
                case A.ToggleHelp():
                    self.toggle_help()
                case A.FocusFinding(n):
                    self.focus_finding(n)
                case A.ShowDetail(patch):
                    self.show_detail(patch)
                case _:
                    raise ValueError(f"not a viewer action: {a!r}")

    def hover(self, x: float, y: float) -> tuple:
        """Update the hover highlight and tooltip for the window point; returns the tooltip lines."""
        self.transient.mouse = (float(x), float(y))
        changes = ctl.hover(self.scene, self.state, self.pick(x, y), ctl.canvas_xy(self.size, x, y))
        self.update_state(**changes)
        return changes["tooltip"]

    def click(self, x: float, y: float) -> tuple:
        """A left click at the window point; returns (what was hit, index or action)."""
        picked = self.pick(x, y)
        near = False
        if picked[0] == "none" and self.state.selected_bundles:
            wx, wy = self.camera.to_world(ctl.canvas_xy(self.size, x, y))
            near = self._curves.nearest(self.state, wx, wy, self.camera.zoom, ctl.NEAR_MISS_PX - ctl.PICK_PX) >= 0
        hit, actions = ctl.click(self.scene, self.state, picked, ctl.canvas_xy(self.size, x, y)[0], near)
        self.apply(actions)
        return hit

    def double_click(self, x: float, y: float) -> tuple:
        """Zoom to the layer cluster under the point, expanding it as it fills the view."""
        hit, actions = ctl.double_click(self.scene, self.pick(x, y))
        self.apply(actions)
        return hit

    def drag(self, x0: float, y0: float, x1: float, y1: float):
        """A left drag: moves a neuron (from a patch onto a cluster), the edge slider, or pans. Returns the
        MoveNeuron request of a neuron move, else None."""
        actions = ctl.drag(self.scene, self.pick(x0, y0), self.pick(x1, y1), (x1 - x0, y1 - y0),
                           ctl.canvas_xy(self.size, x1, y1)[0])
        if actions and isinstance(actions[0], A.MoveNeuronTo):
            return self.move_neuron(actions[0].patch, actions[0].dst_rect)
        self.apply(actions)
        return None

    def key(self, name: str) -> bool:
        """Keyboard shortcuts; returns True when the key was used."""
        actions = ctl.key(self.state, name, self.size)
        if actions is None:
            return False
        self.apply(actions)
        return True

    def guarded(self, fn, *args):
        """Run an interaction from a window event; a refused edit (CnnvisError is a ValueError, e.g. from
        the pipeline's on_edit) becomes a one-line note by the cursor instead of a log line nobody sees."""
        try:
            return fn(*args)
        except ValueError as exc:
            self.update_state(tooltip=(f"not done: {exc}",))
            return None

    # ---------------------------------------------------------------------------------- drawing --
    def close(self) -> None:
        """Close the canvas (and its window) and free its GL objects."""
        self.events.stop()
        self.canvas.close()

    def draw(self, size=None) -> None:
        """Draw one frame into the current framebuffer (the window's draw event calls this)."""
        self.frames += 1
        self.resize(size or self.canvas.size)
        self.renderer.draw(self.camera, self.size)

    def render(self, size=None) -> np.ndarray:
        """Draw one frame offscreen; returns (h, w, 4) uint8 RGBA, row 0 at the top."""
        self.canvas.set_current()
        self.resize(tuple(int(v) for v in (size or self.size)))
        return self.renderer.render(self.camera, self.size)


def _working_on(scene, edit) -> str:
    """The note shown while the application computes an edit's Scene."""
    if isinstance(edit, (ExpandColumn, CollapseColumn)):
        verb = "expanding" if isinstance(edit, ExpandColumn) else "collapsing"
        return f"{verb} {column_label(scene, edit.column)}\u2026"
    return {Undo: "undoing\u2026", Redo: "redoing\u2026"}.get(type(edit), "clustering\u2026")

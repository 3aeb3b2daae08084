"""The Scene: everything the viewer draws, as flat numpy arrays. Nothing of torch, nothing of OpenGL.

World coordinates: x grows to the right (data flows left to right), y grows upward; one unit is one pixel
at zoom 1. All colours are RGBA float32 in 0..1. Index arrays refer to rows of the arrays named.
New fields may be added (with defaults, at the end); existing ones keep their meaning.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from cnnvis.layout._details import check_details, check_legend
from cnnvis.layout._findings import check_marks

__all__ = ["Scene", "RECT_COLUMN", "RECT_CLUSTER", "CURVE_VALUE_MODES"]

RECT_COLUMN = 0   # a layer cluster's column (background)
RECT_CLUSTER = 1  # a neuron cluster
CURVE_VALUE_MODES = ("weight", "gradient", "change")  # columns of Scene.curve_values


@dataclass(frozen=True)
class Scene:
    """Flat arrays for one frame of the CNNVis view.

    bounds (4,) float32: x0, y0, x1, y1 around everything.

    Rectangles, R rows (layer-cluster columns and neuron clusters):
      rect_box (R, 4) float32 x0, y0, x1, y1; rect_fill, rect_border (R, 4) float32 RGBA;
      rect_kind (R,) int8 RECT_COLUMN | RECT_CLUSTER; rect_column (R,) int32 column index;
      rect_cluster (R,) int32 neuron-cluster id within its layer (-1 for columns);
      rect_size (R,) int32 neurons in the cluster (layers in the column for columns);
      rect_importance (R,) float32 in 0..1; rect_class_activation (R, K) float32 in 0..1, the cluster's
      mean normalised activation per class (class selection fades clusters low on the selected classes).
    Curves, E rows (bundled connections, one cubic Bezier each):
      curve_ctrl (E, 4, 2) float32 control points; curve_width (E,) float32 in pixels;
      curve_bundle (E,) int32 bundle id; curve_values (E, 3) float32, columns CURVE_VALUE_MODES: signed
      weight strength in -1..1, gradient magnitude and relative change in 0..1 (log scale relative to their
      median, see cnnvis.layout._build.unit_log: both span orders of magnitude across layers).
    Learned-feature patches, P rows, textured from one atlas:
      atlas (H, W, 4) uint8 RGBA; patch_box (P, 4) float32 world box; patch_uv (P, 4) float32 u0, v0, u1, v1
      in 0..1 of the atlas; patch_rect (P,) int32 owning rectangle.
    Activation matrices (neurons x classes), M rows, values from one float atlas colormapped on the GPU:
      matrix_atlas (Hm, Wm) float32 in 0..1; matrix_box (M, 4) float32; matrix_uv (M, 4) float32;
      matrix_rect (M,) int32 owning rectangle.
    Line chart of per-layer debugging values under the view:
      chart_names (S,) series names; chart_snapshots (T,) snapshot names;
      chart_values (S, T, X) float32, NaN where absent; chart_x (X,) float32 world x of each point
      (aligned with the columns); chart_box (4,) float32 world box of the chart.
    Labels: label_text (L,) str; label_pos (L, 2) float32 anchor (left-baseline); label_size (L,) float32
      font size in pixels.
    class_names (K,) str; column_names (number of columns,) str, one per layer cluster.
    Added later (empty or -1 when not given):
      curve_color (E, 4) float32 RGBA suggested per curve (blue positive, vermilion negative weights);
      patch_neuron (P,) int32 the neuron (index in its column's representative layer) a patch shows;
      crossings_before, crossings_after int: bundle-curve crossings with clusters in id order and after
      the layout's crossing reduction.
    Ids for the edit protocol (cnnvis.layout._edits; empty when not given):
      column_layer (number of columns,) str: each column's representative layer, whose neuron indices
      patch_neuron gives (a neuron is (column_layer[column], patch_neuron[patch]));
      bundle_id (B, 3) int32, row k for curve_bundle value k: (src column, dst column, index of the bundle
      in the BundleSet of that column pair).
    chart_legend (S,) str: the chart's caption per series (chart_names are the series' identifiers, which
      --series and set_series take); empty: the chart shows chart_names.
    For people reading the view (issue 13; empty when not given):
      column_group (number of columns,) int32: columns expanded from one layer cluster share a group id
      (their leftmost column's index), -1 for a column that was not expanded (CollapseColumn undoes a group);
      rect_dead (R,) int8: 1 for the cluster of neurons that never fire;
      patch_importance (P,) float32 in 0..1: the neuron's importance over its layer's largest;
      patch_dead (P,) int8: 1 for a neuron that never fires;
      patch_top_classes (P, 3) int32: the neuron's three most activating classes, best first, as indices
      into class_names (-1 where it has fewer).
      chart_na (S,) str: why a series has no value at a snapshot (shown instead of drawing nothing).
    column_header_box (number of columns, 4) float32: world box x0, y0, x1, y1 of each column's name label
      (its text as label_text holds it, at an average glyph width), for tests and the viewer to keep headers
      apart; empty when not given.
    findings: tuple of cnnvis.layout._findings.FindingMark, numbered 1..K as `cnnvis diagnose` numbers
      them, placed on this Scene's columns and clusters (set by the application; empty: none known).
    Marks an application puts on A's neurons and clusters (issue 18's diff view; empty when not given, and
    the viewer then draws exactly what it drew without them):
      patch_tint (P, 4) float32 RGBA: a frame of this colour drawn inside each patch's box (alpha 0: none),
      e.g. the neuron's status against another model;
      rect_mark (R, 4) float32 RGBA: a thicker outline of this colour round a rectangle (alpha 0: none);
      rect_badge (R,) str: a short tag drawn on a marked rectangle's top edge ("" for none);
      rect_note (R,) str: a line added to the rectangle's tooltip ("" for none);
      legend_extra: (title, ((RGBA or None, text), ...)) sections the legend bar shows after its own,
      saying what the tints and marks mean;
      details: tuple of cnnvis.layout._details.NeuronDetail, the cards a click on a patch opens in the panel;
      patch_detail (P,) int32: the index into details a patch's click shows (-1: none; a click on such a
      patch cycles its cluster's facet as before);
      detail_atlas (Hd, Wd, 4) uint8 and detail_uv (D, 4) float32 u0, v0, u1, v1: the cards' pictures.

    Value ranges are set once, by the layout: rect_class_activation, matrix_atlas and curve_values in
    their documented ranges (validate() checks them); the viewer and the shaders use them as given.
    """

    bounds: np.ndarray
    rect_box: np.ndarray
    rect_fill: np.ndarray
    rect_border: np.ndarray
    rect_kind: np.ndarray
    rect_column: np.ndarray
    rect_cluster: np.ndarray
    rect_size: np.ndarray
    rect_importance: np.ndarray
    rect_class_activation: np.ndarray
    curve_ctrl: np.ndarray
    curve_width: np.ndarray
    curve_bundle: np.ndarray
    curve_values: np.ndarray
    atlas: np.ndarray
    patch_box: np.ndarray
    patch_uv: np.ndarray
    patch_rect: np.ndarray
    matrix_atlas: np.ndarray
    matrix_box: np.ndarray
    matrix_uv: np.ndarray
    matrix_rect: np.ndarray
    chart_names: tuple = ()
    chart_snapshots: tuple = ()
    chart_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    chart_x: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    chart_box: np.ndarray = field(default_factory=lambda: np.zeros((4,), np.float32))
    label_text: tuple = ()
    label_pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    label_size: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_names: tuple = ()
    column_names: tuple = ()
    # Added by the layout (issue 4); empty defaults keep older constructors valid.
    curve_color: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    patch_neuron: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    crossings_before: int = -1
    crossings_after: int = -1
    column_layer: tuple = ()
    bundle_id: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int32))
    chart_legend: tuple = ()
    column_group: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    rect_dead: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int8))
    patch_importance: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    patch_dead: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int8))
    patch_top_classes: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int32))
    chart_na: tuple = ()
    findings: tuple = ()
    column_header_box: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    patch_tint: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    rect_mark: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    rect_badge: tuple = ()
    rect_note: tuple = ()
    legend_extra: tuple = ()
    details: tuple = ()
    patch_detail: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    detail_atlas: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 4), np.uint8))
    detail_uv: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    @property
    def n_rects(self) -> int:
        return int(self.rect_box.shape[0])

    @property
    def n_curves(self) -> int:
        return int(self.curve_ctrl.shape[0])

    @property
    def n_patches(self) -> int:
        return int(self.patch_box.shape[0])

    def validate(self) -> "Scene":
        """Check shapes and dtypes agree; raises ValueError listing every field that disagrees."""
        R, E, P, M = self.n_rects, self.n_curves, self.n_patches, int(self.matrix_box.shape[0])
        K = len(self.class_names)
        want = {
            "bounds": ((4,), np.float32), "rect_box": ((R, 4), np.float32), "rect_fill": ((R, 4), np.float32),
            "rect_border": ((R, 4), np.float32), "rect_kind": ((R,), np.int8), "rect_column": ((R,), np.int32),
            "rect_cluster": ((R,), np.int32), "rect_size": ((R,), np.int32),
            "rect_importance": ((R,), np.float32), "rect_class_activation": ((R, K), np.float32),
            "curve_ctrl": ((E, 4, 2), np.float32), "curve_width": ((E,), np.float32),
            "curve_bundle": ((E,), np.int32), "curve_values": ((E, 3), np.float32),
            "patch_box": ((P, 4), np.float32), "patch_uv": ((P, 4), np.float32), "patch_rect": ((P,), np.int32),
            "matrix_box": ((M, 4), np.float32), "matrix_uv": ((M, 4), np.float32),
            "matrix_rect": ((M,), np.int32), "label_pos": ((len(self.label_text), 2), np.float32),
            "label_size": ((len(self.label_text),), np.float32),
        }
        C = len(self.column_names)
        for name, rows, tail, dtype in (("curve_color", E, (4,), np.float32), ("patch_neuron", P, (), np.int32),
                                        ("column_group", C, (), np.int32), ("rect_dead", R, (), np.int8),
                                        ("patch_importance", P, (), np.float32), ("patch_dead", P, (), np.int8),
                                        ("patch_top_classes", P, (3,), np.int32),
                                        ("column_header_box", C, (4,), np.float32),
                                        ("patch_tint", P, (4,), np.float32), ("rect_mark", R, (4,), np.float32),
                                        ("patch_detail", P, (), np.int32)):
            v = getattr(self, name)
            if getattr(v, "shape", (None,))[0] != 0:  # optional: empty, or one row per curve / patch / column
                want[name] = ((rows,) + tail, dtype)
        if len(self.bundle_id):
            want["bundle_id"] = ((max(len(self.bundle_id), int(self.curve_bundle.max(initial=-1)) + 1), 3),
                                 np.int32)
        bad = []
        for name, (shape, dtype) in want.items():
            v = getattr(self, name)
            if not isinstance(v, np.ndarray) or v.shape != shape or v.dtype != dtype:
                got = f"{getattr(v, 'shape', None)} {getattr(v, 'dtype', type(v).__name__)}"
                bad.append(f"{name}: want {shape} {np.dtype(dtype).name}, got {got}")
        if self.atlas.ndim != 3 or self.atlas.shape[2] != 4 or self.atlas.dtype != np.uint8:
            bad.append(f"atlas: want (H, W, 4) uint8, got {self.atlas.shape} {self.atlas.dtype}")
        if self.matrix_atlas.ndim != 2 or self.matrix_atlas.dtype != np.float32:
            bad.append(f"matrix_atlas: want (H, W) float32, got {self.matrix_atlas.shape} {self.matrix_atlas.dtype}")
        for name, n in (("column_layer", len(self.column_names)), ("chart_legend", len(self.chart_names)),
                        ("chart_na", len(self.chart_names))):
            if len(getattr(self, name)) not in (0, n):
                bad.append(f"{name}: want {n} names (or none), got {len(getattr(self, name))}")
        bad += check_marks(self.findings, len(self.column_names))
        for name in ("rect_badge", "rect_note"):
            if len(getattr(self, name)) not in (0, R):
                bad.append(f"{name}: want {R} strings (or none), got {len(getattr(self, name))}")
        bad += check_legend(self.legend_extra)
        bad += check_details(self.details, len(self.detail_uv))
        if self.detail_atlas.ndim != 3 or self.detail_atlas.shape[2] != 4 or self.detail_atlas.dtype != np.uint8:
            bad.append(f"detail_atlas: want (H, W, 4) uint8, got {self.detail_atlas.shape} {self.detail_atlas.dtype}")
        if not isinstance(self.detail_uv, np.ndarray) or self.detail_uv.ndim != 2 or self.detail_uv.shape[1] != 4:
            bad.append(f"detail_uv: want (D, 4) float32, got {getattr(self.detail_uv, 'shape', None)}")
        if len(self.patch_detail) and not (-1 <= self.patch_detail.min() and self.patch_detail.max() < len(self.details)):
            bad.append(f"patch_detail: values outside -1..{len(self.details) - 1}")
        for name in ("rect_class_activation", "matrix_atlas"):
            v = getattr(self, name)
            if isinstance(v, np.ndarray) and v.size and not (v.min() >= 0.0 and v.max() <= 1.0):
                bad.append(f"{name}: values outside 0..1 (min {v.min()}, max {v.max()})")
        if bad:
            raise ValueError("Scene arrays disagree:\n  " + "\n  ".join(bad))
        return self

    def replace(self, **changes) -> "Scene":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw.update(changes)
        return Scene(**kw)

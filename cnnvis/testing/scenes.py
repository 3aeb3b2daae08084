"""Scenes for tests, benchmarks and screenshots.

`layout_scene`: a Scene made by the real stages (a synthetic analysis, `cnnvis.aggregate`,
`cnnvis.layout.build_scene`). `synthetic_scene` / `sized_scene`: Scenes of any size (benchmarks want
10^5 rectangles), with parametric geometry (columns of neuron clusters left to right, curves between
neighbouring columns, patches of oriented stripes, activation matrices, a three-series chart) but every
array that the layout makes with a named function made by that function (atlases, curve colours, the
display scale of activations, chart series) and every id field filled as the layout fills it;
tests/gl/test_scenes.py checks both fill the same fields, so the two cannot drift apart.
Deterministic for a given seed; nothing of torch.
"""
from __future__ import annotations

import numpy as np

from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN, Scene, build_scene
from cnnvis.layout._atlas import matrix_atlas as pack_matrix_atlas
from cnnvis.layout._atlas import patch_atlas
from cnnvis.layout._build import CHART_NA, CHART_SERIES, unit_max
from cnnvis.layout._palette import NEGATIVE, POSITIVE

__all__ = ["layout_scene", "synthetic_scene", "sized_scene"]


def layout_scene(widths=(12, 12, 16), *, n_clusters: int = 2, seed: int = 0, **layout_options) -> Scene:
    """The Scene the stages make of a small synthetic network (conv widths `widths`, then fc)."""
    from cnnvis.aggregate import aggregate
    from cnnvis.testing.synthetic import synthetic_network

    analysis = synthetic_network(list(widths), n_clusters=n_clusters, seed=seed).analysis
    return build_scene(analysis, aggregate(analysis), **layout_options)

COLUMN_W, COLUMN_GAP, PATCH_PX = 150.0, 110.0, 12
_LAYER_NAMES = ("input", "conv1", "pool1", "conv2", "pool2", "conv3", "fc1", "fc2", "output")


def synthetic_scene(n_columns: int = 6, clusters_per_column: int = 4, *, n_curves: int | None = None,
                    n_classes: int = 10, patches_per_cluster: int = 4, neurons_per_cluster: int = 8,
                    n_snapshots: int = 4, column_height: float = 520.0, seed: int = 0) -> Scene:
    """A Scene with n_columns * (1 + clusters_per_column) rectangles; n_curves defaults to 3 per cluster."""
    rng = np.random.default_rng(seed)
    C, Q, K = n_columns, clusters_per_column, n_classes
    n_curves = 3 * C * Q if n_curves is None else n_curves

    col_x0 = np.arange(C, dtype=np.float64) * (COLUMN_W + COLUMN_GAP)
    boxes, kinds, cols, ids, sizes = [], [], [], [], []
    for c in range(C):
        boxes.append((col_x0[c], 0.0, col_x0[c] + COLUMN_W, column_height))
        kinds.append(RECT_COLUMN), cols.append(c), ids.append(-1), sizes.append(1 + c % 3)
    # Cluster heights follow their sizes; 8 px gaps, 10 px inset from the column.
    sz = rng.integers(2, 3 * neurons_per_cluster, size=(C, Q))
    pad, gap = 10.0, 8.0 if Q < 50 else 0.0
    for c in range(C):
        free = column_height - 2 * pad - gap * (Q - 1)
        h = free * sz[c] / sz[c].sum()
        top = column_height - pad
        for q in range(Q):
            boxes.append((col_x0[c] + pad, top - h[q], col_x0[c] + COLUMN_W - pad, top))
            kinds.append(RECT_CLUSTER), cols.append(c), ids.append(q), sizes.append(int(sz[c, q]))
            top -= h[q] + gap
    rect_box = np.asarray(boxes, np.float32)
    kind = np.asarray(kinds, np.int8)
    R = len(boxes)
    fill = np.where((kind == RECT_COLUMN)[:, None], [0.925, 0.935, 0.95, 1.0], [1.0, 1.0, 1.0, 1.0])
    border = np.where((kind == RECT_COLUMN)[:, None], [0.84, 0.86, 0.89, 1.0], [0.58, 0.63, 0.70, 1.0])
    act = rng.random((R, K)) ** 4
    act[np.arange(R), rng.integers(0, K, R)] = 0.7 + 0.3 * rng.random(R)   # one strong class per cluster
    act = unit_max(act)
    act[kind == RECT_COLUMN] = 1.0
    importance = np.where(kind == RECT_CLUSTER, rng.random(R), 1.0)

    # Curves from a cluster's right edge to a cluster in the next column.
    clusters = np.flatnonzero(kind == RECT_CLUSTER)
    cl_col = np.asarray(cols)[clusters]
    src = clusters[rng.integers(0, len(clusters), n_curves)] if len(clusters) else np.zeros(0, int)
    src_col = np.minimum(np.asarray(cols)[src], C - 2) if C > 1 else np.zeros(len(src), int)
    src = np.where(np.asarray(cols)[src] == C - 1, clusters[np.searchsorted(cl_col, src_col)], src)
    first_next = np.searchsorted(cl_col, src_col + 1)
    dst = clusters[np.minimum(first_next + rng.integers(0, Q, n_curves), len(clusters) - 1)]
    b0, b1 = rect_box[src], rect_box[dst]
    y0 = b0[:, 1] + (b0[:, 3] - b0[:, 1]) * rng.uniform(0.2, 0.8, n_curves)
    y1 = b1[:, 1] + (b1[:, 3] - b1[:, 1]) * rng.uniform(0.2, 0.8, n_curves)
    p0 = np.stack([b0[:, 2], y0], 1)
    p3 = np.stack([b1[:, 0], y1], 1)
    dx = (p3[:, 0] - p0[:, 0])[:, None] * np.array([0.5, 0.0])
    curve_ctrl = np.stack([p0, p0 + dx, p3 - dx, p3], 1).astype(np.float32)
    weight = np.clip(rng.normal(0.0, 0.45, n_curves), -1, 1)
    width = (1.0 + 4.0 * np.abs(weight)).astype(np.float32)
    # Bundles within a column pair, as the layout has them: bundle_id[k] = (src column, dst column, index).
    per_pair = max(1, n_curves // 3 // max(1, C - 1))
    pair = np.asarray(cols)[src] if len(src) else np.zeros(0, int)
    index = (src * 7 + dst) % per_pair
    bundle = pair * per_pair + index
    n_b = (int(bundle.max()) + 1) if n_curves else 0
    bundle_id = np.stack([np.arange(n_b) // per_pair, np.arange(n_b) // per_pair + 1, np.arange(n_b) % per_pair], 1)
    color = np.where((weight >= 0)[:, None], POSITIVE[None, :], NEGATIVE[None, :])

    # Patches: a square grid in each cluster's inset box; atlas of oriented stripes.
    P_side = int(np.ceil(np.sqrt(patches_per_cluster)))
    n_tiles = max(1, min(len(clusters) * patches_per_cluster, 4096))
    yy, xx = np.mgrid[0:PATCH_PX, 0:PATCH_PX] / PATCH_PX
    tiles = []
    for t in range(n_tiles):
        ang, freq, hue = rng.random() * np.pi, 1.5 + 3 * rng.random(), rng.random(3)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(ang) + yy * np.sin(ang)))
        tiles.append(((0.25 + 0.75 * wave[..., None] * (0.4 + 0.6 * hue)) * 255).astype(np.uint8))
    atlas, tile_uv = patch_atlas(tiles)
    inner = _inset(rect_box[clusters], 6.0)
    pb, puv, prect, pneuron = [], [], [], []
    for i, r in enumerate(clusters):
        x0, y0_, x1, y1_ = inner[i]
        cell = min((x1 - x0), (y1_ - y0_) * P_side) / P_side
        for p in range(patches_per_cluster):
            gy, gx = divmod(p, P_side)
            if (gy + 1) * cell > (y1_ - y0_) + 1e-3:
                break
            t = (i * patches_per_cluster + p) % n_tiles
            pb.append((x0 + gx * cell + 1, y1_ - (gy + 1) * cell + 1, x0 + (gx + 1) * cell - 1, y1_ - gy * cell - 1))
            puv.append(tile_uv[t])
            prect.append(r)
            pneuron.append(int(ids[r]) * neurons_per_cluster + p)   # neuron index in its column's layer

    # Matrices: one neurons x classes block per cluster, stacked in a float atlas.
    n_m = len(clusters)
    rows = neurons_per_cluster
    values = (rng.random((max(1, n_m) * rows, K)) ** 2).astype(np.float32)
    hot = act[clusters].argmax(1) if n_m else np.zeros(0, int)
    for i in range(n_m):
        values[i * rows:(i + 1) * rows, hot[i]] = 0.6 + 0.4 * rng.random(rows)
    values = unit_max(values)   # row-wise: the same as per block
    matrix_atlas, matrix_uv = pack_matrix_atlas([values[i * rows:(i + 1) * rows] for i in range(n_m)])

    names = tuple(_LAYER_NAMES[c] if C <= len(_LAYER_NAMES) else f"layer{c}" for c in range(C))
    centres = (col_x0 + COLUMN_W / 2).astype(np.float32)
    T = n_snapshots
    grad = np.exp(-np.arange(C) / 2.0)[None, :] * (1 + np.arange(T)[:, None]) ** -0.7
    change = 0.05 + 0.3 * rng.random((T, C)) * np.linspace(1, 0.3, T)[:, None]
    dead = np.clip(np.linspace(0, 0.4, C)[None, :] * (0.6 + 0.2 * np.arange(T))[:, None], 0, 1)
    last = np.full((T, C), np.nan)   # measured on the analysed (last) snapshot only
    mean_act, imp_series = last.copy(), last.copy()
    mean_act[-1], imp_series[-1] = 0.2 + rng.random(C), np.exp(-np.arange(C) / 3.0)
    chart_values = np.stack([grad, change, dead, mean_act, imp_series]).astype(np.float32)
    chart_values[:, :, 0] = np.nan   # the input layer has no weights
    x1 = float(col_x0[-1] + COLUMN_W) if C else 0.0
    label_text = names
    label_pos = np.stack([col_x0 + 4, np.full(C, column_height + 10)], 1).astype(np.float32)
    # Per-neuron fields for tooltips: importance, none dead, top classes those of the owning cluster.
    prect_a = np.asarray(prect, np.int64)
    p_imp = rng.random(len(prect_a)).astype(np.float32)
    p_top = np.argsort(-act[prect_a], 1, kind="stable")[:, :3] if len(prect_a) else np.zeros((0, 3), int)
    if K < 3:
        p_top = np.pad(p_top, ((0, 0), (0, 3 - p_top.shape[1])), constant_values=-1)
    return Scene(
        bounds=np.array([-20, -260, x1 + 20, column_height + 40], np.float32),
        rect_box=rect_box, rect_fill=fill.astype(np.float32), rect_border=border.astype(np.float32),
        rect_kind=kind, rect_column=np.asarray(cols, np.int32), rect_cluster=np.asarray(ids, np.int32),
        rect_size=np.asarray(sizes, np.int32), rect_importance=importance.astype(np.float32),
        rect_class_activation=act.astype(np.float32),
        curve_ctrl=curve_ctrl, curve_width=width, curve_bundle=bundle.astype(np.int32),
        curve_values=np.stack([weight, rng.random(n_curves) ** 2, rng.random(n_curves) ** 1.5], 1).astype(np.float32),
        curve_color=color.astype(np.float32).reshape(-1, 4), bundle_id=bundle_id.astype(np.int32).reshape(-1, 3),
        atlas=atlas, patch_box=np.asarray(pb, np.float32).reshape(-1, 4),
        patch_uv=np.asarray(puv, np.float32).reshape(-1, 4), patch_rect=np.asarray(prect, np.int32),
        patch_neuron=np.asarray(pneuron, np.int32),
        matrix_atlas=matrix_atlas, matrix_box=inner.astype(np.float32).reshape(-1, 4),
        matrix_uv=matrix_uv.astype(np.float32).reshape(-1, 4), matrix_rect=clusters.astype(np.int32),
        chart_names=CHART_SERIES, chart_legend=CHART_SERIES, chart_na=CHART_NA,
        chart_snapshots=tuple(f"epoch {5 * (t + 1)}" for t in range(T)),
        chart_values=chart_values, chart_x=centres,
        chart_box=np.array([0, -240, x1, -40], np.float32),
        label_text=label_text, label_pos=label_pos, label_size=np.full(C, 15, np.float32),
        class_names=tuple(str(k) for k in range(K)), column_names=names, column_layer=names,
        column_group=np.full(C, -1, np.int32), rect_dead=np.zeros(R, np.int8), patch_importance=p_imp,
        patch_dead=np.zeros(len(prect_a), np.int8), patch_top_classes=p_top.astype(np.int32).reshape(-1, 3),
        column_header_box=np.array([(x, y - 3.75, x + 9.0 * len(t), y + 15.0) for t, (x, y) in
                                    zip(label_text, label_pos)], np.float32).reshape(-1, 4),
    ).validate()


def sized_scene(n_rects: int, n_curves: int | None = None, *, seed: int = 0) -> Scene:
    """About n_rects rectangles (20 columns) and n_curves curves (default: as many), for benchmarks."""
    n_columns = max(2, min(20, n_rects // 4))
    per = max(1, round(n_rects / n_columns) - 1)
    return synthetic_scene(n_columns, per, n_curves=n_rects if n_curves is None else n_curves,
                           patches_per_cluster=1 if per > 50 else 4, neurons_per_cluster=4,
                           column_height=max(520.0, 2.0 * per), seed=seed)


def _inset(box: np.ndarray, d: float) -> np.ndarray:
    out = box.astype(np.float64).copy()
    out[:, :2] += d
    out[:, 2:] -= d
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2])
    return out

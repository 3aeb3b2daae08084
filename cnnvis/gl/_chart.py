"""The line chart under the view (paper Fig. 1 (b)): per-layer debugging values, one point per layer
column, x aligned with the columns (it pans and zooms in x with the view), y in its own strip.

Lines are straight curve instances in chart space (x world, y normalised 0..1) drawn by the curve
program with a chart transform; the frame, grid, markers and text go into the screen-space UI batch."""
from __future__ import annotations

import numpy as np

from cnnvis.gl._instances import CURVE_STATIC
from cnnvis.gl._text import text_width
from cnnvis.gl._ui import THEME, UiBatch

__all__ = ["chart_height", "chart_range", "chart_scale", "chart_lines", "chart_transform", "chart_ticks",
           "draw_chart"]

PAD_TOP, PAD_BOTTOM = 28.0, 24.0   # caption above, layer-name ticks below
LOG_SPAN = 30.0                    # a positive series spanning more than this factor is drawn on a log axis
LINE = (0.22, 0.45, 0.84, 1.0)
OTHER = (0.72, 0.74, 0.78, 0.8)


def chart_height(size) -> float:
    return float(min(190.0, max(90.0, 0.22 * size[1]), 0.4 * size[1]))


def chart_range(scene, series: int) -> tuple:
    """(lo, hi) of a series over all snapshots, for the normalisation; (0, 1) where empty."""
    v = np.asarray(scene.chart_values, np.float64)
    if v.size == 0 or not np.isfinite(v[series]).any():
        return 0.0, 1.0
    lo, hi = float(np.nanmin(v[series])), float(np.nanmax(v[series]))
    lo = min(lo, 0.0)
    return lo, hi if hi > lo else lo + 1.0


def chart_scale(scene, series: int):
    """(kind, lo, hi, to_unit): "log" for a positive series spanning over LOG_SPAN (gradients and weight
    changes fall by orders of magnitude during training: on a linear axis the late snapshots sit flat on
    0), else "linear" from min(lo, 0); to_unit maps values onto 0..1 of the plot's height."""
    v = np.asarray(scene.chart_values, np.float64)
    vals = v[series][np.isfinite(v[series])] if v.size else np.zeros(0)
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > LOG_SPAN:
        lo, hi = np.log10(vals.min()), np.log10(vals.max())
        return "log", 10 ** lo, 10 ** hi, lambda x: (np.log10(np.maximum(x, 1e-300)) - lo) / (hi - lo)
    lo, hi = chart_range(scene, series)
    return "linear", lo, hi, lambda x: (np.asarray(x, np.float64) - lo) / (hi - lo)


def chart_lines(scene, series: int, snapshot: int) -> np.ndarray:
    """One straight segment per pair of consecutive finite points (a layer without a value, e.g. a ReLU
    after an expand, is stepped over, so a line stays a line); the chosen snapshot drawn last."""
    v = np.asarray(scene.chart_values, np.float64)
    if v.size == 0:
        return np.zeros(0, CURVE_STATIC)
    to_unit = chart_scale(scene, series)[3]
    T = v.shape[1]
    snap = snapshot % T
    x = np.asarray(scene.chart_x, np.float64)
    rows = []
    for t in [t for t in range(T) if t != snap] + [snap]:
        y = to_unit(v[series, t])
        idx = np.flatnonzero(np.isfinite(y))
        for i, j in zip(idx[:-1], idx[1:]):
            a, b = np.array([x[i], y[i]]), np.array([x[j], y[j]])
            ctrl = (a, a + (b - a) / 3, a + 2 * (b - a) / 3, b)
            chosen = t == snap
            rows.append((np.r_[ctrl[0], ctrl[1]], np.r_[ctrl[2], ctrl[3]], 2.5 if chosen else 1.5,
                         (1, 1, 1), -1, LINE if chosen else OTHER, (-1, -1)))
    out = np.zeros(len(rows), CURVE_STATIC)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def chart_region(size, panel_w: float) -> tuple:
    return (0.0, 0.0, float(size[0] - panel_w), chart_height(size))


def chart_transform(camera, size, panel_w: float) -> tuple:
    """u_transform for chart space: x as the camera maps world x, y 0..1 onto the plot strip."""
    sx, _, ox, _ = camera.transform()
    h = chart_height(size)
    return (sx, h - PAD_TOP - PAD_BOTTOM, ox, PAD_BOTTOM)


def chart_ticks(scene, state, camera, size, panel_w: float) -> dict:
    """What the chart's axes say, in canvas pixels: x ticks (abbreviated layer-cluster name, px, full
    name), y ticks (label, py), the x of every point without a value in the shown snapshot ("n/a"), and a
    note when the whole snapshot has none (why, from Scene.chart_na)."""
    from cnnvis.gl._names import abbreviate

    x0, _, x1, _ = chart_region(size, panel_w)
    sx, sy, ox, oy = chart_transform(camera, size, panel_w)
    out = dict(x=[], y=[], na=[], note="")
    if not len(scene.chart_names) or not scene.chart_values.size:
        return out
    series = state.series % len(scene.chart_names)
    snap = state.snapshot % max(1, len(scene.chart_snapshots))
    xs = np.asarray(scene.chart_x, np.float64) * sx + ox
    room = float(np.min(np.diff(xs))) - 4 if len(xs) > 1 else 120.0
    for c, px in enumerate(xs):
        if x0 <= px <= x1:
            full = str(scene.column_names[c]) if c < len(scene.column_names) else f"column {c}"
            out["x"].append((abbreviate(full, max(room, 16.0), 9.5), float(px), full))
    kind, lo, hi, to_unit = chart_scale(scene, series)
    if kind == "log":
        ticks = [10.0 ** k for k in range(int(np.ceil(np.log10(lo) - 1e-9)), int(np.floor(np.log10(hi) + 1e-9)) + 1)]
        ticks = sorted(set(ticks) | {lo, hi})
    else:
        ticks = list(np.linspace(lo, hi, 5)) if lo < 0 < hi else [lo + (hi - lo) * k / 4 for k in range(5)]
    for t in ticks:
        py = oy + float(to_unit(t)) * sy
        if all(abs(py - q) >= 11 for _, q in out["y"]):
            out["y"].append((_fmt(t), py))
    vals = np.asarray(scene.chart_values[series, snap], np.float64)
    out["na"] = [float(px) for px, v in zip(xs, vals) if not np.isfinite(v) and x0 <= px <= x1]
    if not np.isfinite(vals).any():
        why = scene.chart_na[series] if len(scene.chart_na) > series and scene.chart_na[series] else \
            "no value recorded for this snapshot"
        out["note"] = f"n/a at {scene.chart_snapshots[snap] if len(scene.chart_snapshots) else 'this snapshot'}: {why}"
    return out


def draw_chart(scene, state, camera, size, panel_w: float, batch: UiBatch, over: UiBatch) -> None:
    """Frame and grid into `batch` (under the lines), markers and text into `over`."""
    x0, y0, x1, y1 = chart_region(size, panel_w)
    batch.rect((x0 - 2, y0 - 2, x1, y1), THEME["chart"], THEME["panel_line"], radius=0, border_width=1)
    if not len(scene.chart_names):
        over.text("no chart data in this analysis", 12, y1 - 18, 11.5, THEME["muted"])
        return
    series = state.series % len(scene.chart_names)
    T = max(1, len(scene.chart_snapshots))
    snap = state.snapshot % T
    kind, lo, hi, to_unit = chart_scale(scene, series)
    sx, sy, ox, oy = chart_transform(camera, size, panel_w)
    ticks = chart_ticks(scene, state, camera, size, panel_w)
    for label, py in ticks["y"]:
        batch.rect((x0 + 40, py - 0.5, x1, py + 0.5), THEME["grid"], radius=0, border_width=0)
        over.text(label, 4, py - 3, 9.5, THEME["muted"])
    for label, px, _ in ticks["x"]:
        batch.rect((px - 0.5, oy, px + 0.5, oy + sy), THEME["grid"], radius=0, border_width=0)
        over.text(label, px, 6, 9.5, THEME["muted"], align="center")
    for px in ticks["na"]:
        over.text("n/a", px, oy + 3, 9.5, THEME["faint"], align="center")
    if scene.chart_values.size:
        y = to_unit(np.asarray(scene.chart_values[series, snap], np.float64))
        xs = np.asarray(scene.chart_x, np.float64) * sx + ox
        for px, v in zip(xs, y):
            if np.isfinite(v) and x0 <= px <= x1:
                py = oy + v * sy
                over.rect((px - 3.5, py - 3.5, px + 3.5, py + 3.5), (1, 1, 1, 1), LINE, radius=3.5,
                           border_width=1.6)
    snap_name = f"  \u00b7  {scene.chart_snapshots[snap]}" if len(scene.chart_snapshots) else ""
    legend = scene.chart_legend if len(scene.chart_legend) else scene.chart_names
    title = f"{legend[series]}{snap_name}" + ("  (log axis)" if kind == "log" else "")
    over.text(title, 12, y1 - 17, 12.5, THEME["text"])
    right = ticks["note"] or "grey: other snapshots"
    # the note gives way to the title in a narrow window (it never overlaps it)
    if text_width(title, 12.5) + text_width(right, 10.5) + 40 < x1 - x0:
        over.text(right, x1 - 10, y1 - 17, 10.5, THEME["muted"], align="right")
    elif ticks["note"]:
        over.text(right, 44, y1 - 31, 10.5, THEME["muted"])   # right of the y tick labels


def _fmt(v: float) -> str:
    return f"{v:.3g}"

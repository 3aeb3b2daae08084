"""The line chart under the view (paper Fig. 1 (b)): per-layer debugging values, one point per layer
column, x aligned with the columns (it pans and zooms in x with the view), y in its own strip.

Lines are straight curve instances in chart space (x world, y normalised 0..1) drawn by the curve
program with a chart transform; the frame, grid, markers and text go into the screen-space UI batch."""
from __future__ import annotations

import numpy as np

from cnnvis.gl._instances import CURVE_STATIC
from cnnvis.gl._ui import THEME, UiBatch

__all__ = ["chart_height", "chart_range", "chart_lines", "chart_transform", "draw_chart"]

PAD_TOP, PAD_BOTTOM = 28.0, 14.0
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


def chart_lines(scene, series: int, snapshot: int) -> np.ndarray:
    """One straight segment per pair of neighbouring finite points; the chosen snapshot drawn last."""
    v = np.asarray(scene.chart_values, np.float64)
    if v.size == 0:
        return np.zeros(0, CURVE_STATIC)
    lo, hi = chart_range(scene, series)
    T = v.shape[1]
    snap = snapshot % T
    x = np.asarray(scene.chart_x, np.float64)
    rows = []
    for t in [t for t in range(T) if t != snap] + [snap]:
        y = (v[series, t] - lo) / (hi - lo)
        ok = np.isfinite(y[:-1]) & np.isfinite(y[1:])
        for i in np.flatnonzero(ok):
            a, b = np.array([x[i], y[i]]), np.array([x[i + 1], y[i + 1]])
            ctrl = (a, a + (b - a) / 3, a + 2 * (b - a) / 3, b)
            chosen = t == snap
            rows.append((np.r_[ctrl[0], ctrl[1]], np.r_[ctrl[2], ctrl[3]], 2.5 if chosen else 1.5,
                         (1, 1, 1), -1, LINE if chosen else OTHER))
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
    lo, hi = chart_range(scene, series)
    sx, sy, ox, oy = chart_transform(camera, size, panel_w)
    for yy in (0.0, 0.5, 1.0):
        py = oy + yy * sy
        batch.rect((x0, py - 0.5, x1, py + 0.5), THEME["grid"], radius=0, border_width=0)
    xs = np.asarray(scene.chart_x, np.float64) * sx + ox
    for px in xs:
        if x0 <= px <= x1:
            batch.rect((px - 0.5, oy, px + 0.5, oy + sy), THEME["grid"], radius=0, border_width=0)
    if scene.chart_values.size:
        y = (np.asarray(scene.chart_values[series, snap], np.float64) - lo) / (hi - lo)
        for px, v in zip(xs, y):
            if np.isfinite(v) and x0 <= px <= x1:
                py = oy + v * sy
                over.rect((px - 3.5, py - 3.5, px + 3.5, py + 3.5), (1, 1, 1, 1), LINE, radius=3.5,
                           border_width=1.6)
    snap_name = f"  \u00b7  {scene.chart_snapshots[snap]}" if len(scene.chart_snapshots) else ""
    legend = scene.chart_legend if len(scene.chart_legend) else scene.chart_names
    over.text(f"{legend[series]}{snap_name}", 12, y1 - 17, 12.5, THEME["text"])
    over.text("grey: other snapshots", x1 - 10, y1 - 17, 10.5, THEME["muted"], align="right")
    over.text(_fmt(hi), 4, oy + sy - 12, 9.5, THEME["muted"])
    over.text(_fmt(lo), 4, oy + 3, 9.5, THEME["muted"])


def _fmt(v: float) -> str:
    return f"{v:.3g}"

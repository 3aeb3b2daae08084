"""Findings in the viewer: what choosing one does (`Viewer.focus_finding`) and the outline that marks it
(the panel's list of them is `_panel_findings.py`). The findings are the Scene's (`Scene.findings`,
cnnvis.layout FindingMark records, numbered as `cnnvis diagnose` numbers them); the one shown is
`ViewState.finding`, and choosing one opens its group in the panel.

Choosing finding N: the clusters switch to the facet that shows its evidence (the activation matrix for
dead and redundant neurons; the weight edges keep the clusters' facet and colour the curves by weight, a
snapshot finding's by its own quantity, and the chart shows its series: "relative weight change" for a
weight change, "average gradient" for a gradient), the camera flies to its column, and its clusters (or
its columns, for a layer-level finding) get a FINDING-coloured outline, its neurons a mark: a tick by
their rows in the matrix facet, a ring round their patches in the features facet. Everything goes
through the Viewer's public methods; the outline is drawn in the overlay from (Scene, ViewState, camera),
so it follows the camera and a rebuilt Scene (the mark is looked up by number in the new Scene).
"""
from __future__ import annotations

import numpy as np

from cnnvis.gl._derived import edge_mode_missing, rect_facets
from cnnvis.gl._panel_findings import EXPAND_HINT, group_of
from cnnvis.gl._state import FACETS
from cnnvis.gl._text import text_width
from cnnvis.gl._ui import UiBatch
from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN

__all__ = ["FINDING_COLOR", "focus", "current_mark", "draw_finding"]

FINDING_COLOR = (0.80, 0.07, 0.52, 1.0)   # magenta: apart from the hover orange, edge blue/vermilion, pastels
RING_PAD, RING_WIDTH = 5.0, 3.0           # the outline: pixels outside the box, and its width


def current_mark(scene, state):
    """The FindingMark shown, or None."""
    marks = scene.findings
    return marks[state.finding - 1] if 1 <= state.finding <= len(marks) else None


def focus(viewer, number: int, *, animate: bool = True):
    """Show finding `number` (1-based): facet, edge colouring, chart series, camera, outline. Returns its
    FindingMark; ValueError naming the range when there is no such finding."""
    marks = viewer.scene.findings
    if not marks:
        raise ValueError("this scene has no findings")
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or not 1 <= number <= len(marks):
        raise ValueError(f"finding must be in 1..{len(marks)} ({len(marks)} findings), got {number!r}")
    m = marks[int(number) - 1]
    if m.facet == "matrix":
        viewer.set_facet("matrix")
    if not edge_mode_missing(viewer.scene, m.edge_mode):
        viewer.set_edge_mode(m.edge_mode)
    if m.series:
        viewer.set_series(m.series)
    group, row = group_of(viewer.scene, m.number)   # the panel opens its group, scrolled to it
    viewer.update_state(finding=m.number, finding_group=group, finding_scroll=row)
    if m.column >= 0:
        viewer.zoom_to_column(m.column, animate=animate)
    return m


# -- the outline ------------------------------------------------------------------------------------------
def _marked_boxes(scene, m) -> tuple:
    """World boxes outlined, (n, 4) each: (the finding's own: its clusters, else its column; the other
    columns it covers, drawn lighter)."""
    s = scene
    columns = s.rect_kind == RECT_COLUMN
    if m.clusters:
        own = (s.rect_kind == RECT_CLUSTER) & (s.rect_column == m.column) & np.isin(s.rect_cluster, m.clusters)
    else:
        own = columns & (s.rect_column == m.column)
    return s.rect_box[own], s.rect_box[columns & np.isin(s.rect_column, m.columns[1:])]


def _pixel_box(camera, box, pad: float = 0.0):
    """World box -> canvas pixel box grown by pad, clipped to the view region; None when outside it."""
    p0, p1 = camera.to_pixel(box[:2]), camera.to_pixel(box[2:])
    x, y, w, h = camera.region
    b = (max(min(p0[0], p1[0]) - pad, x), max(min(p0[1], p1[1]) - pad, y),
         min(max(p0[0], p1[0]) + pad, x + w), min(max(p0[1], p1[1]) + pad, y + h))
    return b if b[2] > b[0] and b[3] > b[1] else None


def draw_finding(scene, state, camera, size, batch: UiBatch) -> None:
    """The shown finding's outline, neuron marks and tag, in canvas pixels (overlay, under the panel)."""
    m = current_mark(scene, state)
    if m is None:
        return
    s = scene
    own, others = _marked_boxes(s, m)
    light = tuple(0.4 * c + 0.6 for c in FINDING_COLOR[:3]) + (1.0,)  # opaque: the rect shader mixes a
    # translucent border with the (transparent black) fill, which would darken it
    for box in others:
        b = _pixel_box(camera, box, RING_PAD)
        if b is not None:
            batch.rect(b, (0, 0, 0, 0), light, radius=6, border_width=2)
    tag = None
    for box in own:
        b = _pixel_box(camera, box, RING_PAD)
        if b is not None:
            batch.rect(b, (0, 0, 0, 0), FINDING_COLOR, radius=6, border_width=RING_WIDTH)
            tag = tag or b
    facets = rect_facets(s, state) if m.neurons else None
    for n, k, row in zip(m.neurons, m.neuron_cluster, m.neuron_row):
        rect = np.flatnonzero((s.rect_kind == RECT_CLUSTER) & (s.rect_column == m.column) & (s.rect_cluster == k))
        if not rect.size:
            continue
        r = int(rect[0])
        if FACETS[facets[r]] == "matrix":
            for box in s.matrix_box[s.matrix_rect == r]:
                h = (box[3] - box[1]) / max(int(s.rect_size[r]), 1)
                top = box[3] - row * h
                b = _pixel_box(camera, (box[0], top - h, box[2], top))
                if b is not None:   # a tick left of the row, outside the cluster's outline, >= 2 px high
                    cy, hh = 0.5 * (b[1] + b[3]), max(0.5 * (b[3] - b[1]), 1.0)
                    x1 = b[0] - RING_PAD - RING_WIDTH - 2
                    batch.rect((x1 - 6, cy - hh, x1, cy + hh), FINDING_COLOR, radius=0, border_width=0)
        elif FACETS[facets[r]] == "features" and len(s.patch_neuron):
            for box in s.patch_box[(s.patch_rect == r) & (s.patch_neuron == n)]:
                b = _pixel_box(camera, box, 2.0)
                if b is not None:
                    batch.rect(b, (0, 0, 0, 0), FINDING_COLOR, radius=2, border_width=2)
    if tag is not None:   # a pill on the outline's top right corner: "N. kind"
        label = f"{m.number}. {m.kind}" + (f" \u00b7 {EXPAND_HINT}" if m.n_unplaced else "")
        w = text_width(label, 11) + 12
        x1, y0 = tag[2], tag[3] - 2
        batch.rect((x1 - w, y0, x1, y0 + 17), FINDING_COLOR, radius=4, border_width=0)
        batch.text(label, x1 - w + 6, y0 + 5, 11, (1, 1, 1, 1))


# -- the application's marks ------------------------------------------------------------------------------
BADGE_SIZE = 10.0   # font size of a rectangle's badge (Scene.rect_badge)


def draw_marks(scene, state, camera, batch: UiBatch) -> None:
    """The badges of marked rectangles (Scene.rect_badge, a pill of the mark's colour straddling the top
    edge, where the rectangle is tall and wide enough on screen to hold it) and a ring round the patches of
    the neuron whose card is open (ViewState.detail), in canvas pixels, under the panel."""
    s = scene
    if len(s.rect_badge) == s.n_rects:
        marks = s.rect_mark if len(s.rect_mark) == s.n_rects else np.zeros((s.n_rects, 4), np.float32)
        for r in np.flatnonzero([bool(b) for b in s.rect_badge]):
            b = _pixel_box(camera, s.rect_box[r])
            text = str(s.rect_badge[r])
            w = text_width(text, BADGE_SIZE) + 10
            if b is None or b[3] - b[1] < 24 or b[2] - b[0] < w + 8:
                continue
            color = tuple(float(c) for c in marks[r]) if marks[r, 3] > 0 else (0.10, 0.10, 0.13, 1.0)
            batch.rect((b[0] + 4, b[3] - 8, b[0] + 4 + w, b[3] + 7), color, radius=4, border_width=0)
            batch.text(text, b[0] + 9, b[3] - 4, BADGE_SIZE, (1, 1, 1, 1))
    if state.detail and len(s.patch_detail) == s.n_patches and s.details:
        shown = [i for i, d in enumerate(s.details) if d.key == tuple(state.detail)]
        facets = rect_facets(s, state)
        for p in np.flatnonzero(np.isin(s.patch_detail, shown)):
            if FACETS[facets[s.patch_rect[p]]] != "features":
                continue
            b = _pixel_box(camera, s.patch_box[p], 3.0)
            if b is not None:
                batch.rect(b, (0, 0, 0, 0), (0.10, 0.10, 0.13, 1.0), radius=3, border_width=2.5)

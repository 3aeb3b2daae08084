"""Analysis file -> Aggregation -> Scene, and the viewer's edit requests applied as pure functions.

This is the glue between the stages (docs/architecture.md); `cnnvis-gl` takes `scene_for` as its hook so
the viewer itself never sees an Analysis.

Zooming never waits on clustering (issue 17): with `background=True` (what `scene_for` opens) the first
Scene is laid out at once and a worker thread then (1) diagnoses the analysis, and (2) precomputes, for the
aggregation on screen, what each Expand (biggest column first) and each Collapse would show: the new
Aggregation and its Scene. An edit that was precomputed is a look-up; one that was not is computed on the
spot, as without the worker. Every edit moves the worker on to the new aggregation. The window asks
`busy` for what runs ("clustering denseblock3 …", "" when idle) and `poll()` for a Scene that has become
newer than the one it shows (the findings arrived).
"""
from __future__ import annotations

import os
import threading
import time
import weakref

from cnnvis.errors import CnnvisError

__all__ = ["Session", "scene_for"]

SETTLE_S = 0.5  # after an edit the worker waits this long (the camera's flight) before it precomputes


class Session:
    """One open analysis: the current Aggregation and Scene, updated by edits.

    Each edit is a pure function from one Aggregation to the next (cnnvis.aggregate); the Scene is laid
    out again and handed back to the viewer, which re-uploads only the buffers whose arrays changed.
    findings: diagnose the analysis (cnnvis.app.findings) and put its findings on every Scene.
    decorate: (Scene, Aggregation) -> Scene, applied after the findings to every Scene the session lays out (an
    application's marks on it: cnnvis.app.diff_view's diff); only without background.
    background: diagnose and precompute expansions in a worker thread (see the module docstring); the first
    Scene then comes without findings and `poll()` hands out the Scene with them once they are known.
    Undo and Redo walk the stack of aggregations (and their Scenes) the edits made (`undo_depth`,
    `redo_depth` deep).
    """

    def __init__(self, analysis, *, findings: bool = True, background: bool = False, decorate=None,
                 **aggregate_options):
        from functools import partial

        from cnnvis.aggregate import aggregate
        from cnnvis.layout import build_scene
        from cnnvis.layout._build import fill_height

        self.analysis = analysis
        if decorate is not None and background:  # a Scene decorated before the findings came could not get them
            raise ValueError("Session: decorate needs background=False (the findings known before any Scene)")
        self._decorate = decorate  # (Scene, Aggregation) -> Scene, applied to every Scene laid out
        self._complete = weakref.WeakValueDictionary()  # id -> the Scenes that have the findings (and decoration)
        if background:  # the first Scene's crops decode while the neurons are clustered
            analysis.prefetch_patches()
        self.aggregation = aggregate(analysis, **aggregate_options)
        # columns as tall as the first view needs to fill the window, kept through edits (an expanded group
        # then zooms in on columns of the same height)
        self._layout = partial(build_scene, column_height=fill_height(len(self.aggregation.layer_clusters)))
        self.findings = None
        self._lock = threading.RLock()
        self._undo: list = []   # (aggregation, scene) before each edit, oldest first
        self._redo: list = []   # (aggregation, scene) an Undo went back from, latest last
        self._ready: dict = {}  # (id(aggregation), edit) -> (aggregation, its edit's result, scene)
        self._neurons: dict = {}  # representative layer -> NeuronClusters (session options and class order)
        self._busy = ""
        self._fresh = None      # a Scene newer than the one handed out (poll)
        self._shown_at = 0.0    # when the Scene on screen was shown (the worker waits for its flight)
        self._stop = False
        self._findings_known = threading.Event()
        if findings and not background:
            self._diagnose()
        self.scene = self._build(self.aggregation)
        self._wake = threading.Event()
        self._worker = None
        if not (findings and background):
            self._findings_known.set()
        if background:
            self._want_findings = findings
            self._busy = "clustering \u2026"  # busy from the start: wait() must not see the idle gap before it runs
            self._worker = threading.Thread(target=self._work, name="cnnvis-session", daemon=True)
            self._worker.start()

    # -- state the window reads --------------------------------------------------------------------------
    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    @property
    def redo_depth(self) -> int:
        return len(self._redo)

    @property
    def busy(self) -> str:
        """What the worker is doing, in words ("clustering denseblock3 …"), or "" when it is idle."""
        return self._busy

    def is_ready(self, edit) -> bool:
        """Whether `edit` on the aggregation on screen is precomputed (applying it is a look-up)."""
        got = self._ready.get((id(self.aggregation), edit))
        return got is not None and got[0] is self.aggregation

    def poll(self):
        """A Scene newer than the last one handed out (the findings arrived), once; else None."""
        with self._lock:
            s, self._fresh = self._fresh, None
            return s

    @property
    def findings_known(self) -> bool:
        """Whether the diagnosis is done (or was not asked for)."""
        return self._findings_known.is_set()

    def wait_findings(self, timeout: float | None = None) -> bool:
        """Block until the diagnosis is done; True if it is."""
        return self._findings_known.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is idle (tests, benchmarks); True if it is."""
        end = None if timeout is None else time.monotonic() + timeout
        while self._worker is not None and (self._busy or self._wake.is_set()):
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def close(self, wait: float = 0.0) -> bool:
        """Stop the worker (it ends after the step it is in); with `wait`, join it for up to that many seconds.
        True when no worker is left running."""
        self._stop = True
        self._wake.set()
        if self._worker is not None and wait > 0:
            self._worker.join(wait)
        return self._worker is None or not self._worker.is_alive()

    # -- edits -------------------------------------------------------------------------------------------
    def on_edit(self, edit):
        """Apply a viewer edit request (cnnvis.layout's edit protocol, addressed by the Scene's stable ids);
        returns the new Scene, or None if the aggregation does not change (SelectSnapshot: the chart
        highlight is the viewer's own; the file keeps per-edge values of the last snapshot only). The
        clustering and layout of an edit not precomputed run outside the session's lock, so a window polling
        the session meanwhile is never held up."""
        from cnnvis.layout import Redo, Undo

        with self._lock:
            if isinstance(edit, (Undo, Redo)):
                back, forth = (self._undo, self._redo) if isinstance(edit, Undo) else (self._redo, self._undo)
                if not back:
                    raise CnnvisError(f"nothing to {'undo' if isinstance(edit, Undo) else 'redo'}")
                forth.append((self.aggregation, self.scene))
                agg, scene = back.pop()
                self._show(agg, self._with_findings(scene, agg))
                return self.scene
            old, old_scene = self.aggregation, self.scene
            got = self._ready.get((id(old), edit))
        if got is not None and got[0] is old:
            agg, scene = got[1], got[2]
        else:
            agg = self._apply(old, old_scene, edit)
            if agg is None:
                return None
            scene = self._build(agg)
        with self._lock:
            if self.aggregation is not old:
                raise CnnvisError("the view changed while this edit was computed; make it again")
            self._undo.append((old, old_scene))
            self._redo.clear()
            self._show(agg, self._with_findings(scene, agg))
            self._remember_collapse(old, old_scene, agg)
            return self.scene

    def request(self, edit):
        """`on_edit` for a window that must keep drawing: an undo, a redo or a precomputed edit answers at once
        with its Scene; any other is computed on a thread of its own and the answer is
        a poll function: None until the Scene is ready, then the Scene (the one on screen when the edit
        changed nothing); it raises the edit's error. The viewer shows "clustering …" meanwhile."""
        from cnnvis.layout import Redo, Undo

        if isinstance(edit, (Undo, Redo)) or self.is_ready(edit):
            return self.on_edit(edit)
        box: dict = {}

        def run():
            try:
                box["scene"] = self.on_edit(edit) or self.scene
            except Exception as exc:  # handed to the window by poll()
                box["error"] = exc

        threading.Thread(target=run, name="cnnvis-edit", daemon=True).start()

        def poll():
            if "error" in box:
                raise box["error"]
            return box.get("scene")

        return poll

    def _remember_collapse(self, old, old_scene, agg) -> None:
        """After an expand, collapsing the new group shows the aggregation before it again: no work."""
        from cnnvis.layout import CollapseColumn, ExpandColumn

        group = [c for c, lc in enumerate(agg.layer_clusters) if lc.expanded_from is not None
                 and any(lc.expanded_from is o for o in old.layer_clusters)]
        if len(agg.layer_clusters) - len(group) + 1 != len(old.layer_clusters):
            return
        for c in group:
            for edit in (CollapseColumn(c), ExpandColumn(c)):
                self._ready[(id(agg), edit)] = (agg, old, old_scene)

    def _show(self, agg, scene) -> None:
        self.aggregation, self.scene = agg, scene
        # precomputed edits of every aggregation an undo or redo can bring back stay: going back to the first
        # view must not make the worker lay all of its expansions out again while the window flies there
        live = {id(agg)} | {id(a) for a, _ in self._undo} | {id(a) for a, _ in self._redo}
        self._ready = {k: v for k, v in self._ready.items() if id(v[0]) in live}
        self._fresh = None
        self._shown_at = time.monotonic()
        self._wake.set()

    def _apply(self, agg, s, edit):
        """The Aggregation an edit makes from `agg` (shown as Scene `s`), or None for one that changes nothing."""
        from cnnvis import aggregate as ag
        from cnnvis.layout import CollapseColumn, ExpandColumn, MergeBundles, MoveNeuron

        a = self.analysis
        if isinstance(edit, MoveNeuron):
            # an edit made by hand may name only Scene rows; the Scene's id tables say what they mean
            layer = edit.layer or str(s.column_layer[edit.column])
            neuron = edit.neuron if edit.neuron >= 0 else int(s.patch_neuron[edit.patch])
            return ag.move_neuron(a, agg, layer, neuron, edit.dst_cluster)
        if isinstance(edit, MergeBundles):
            (sa, da, ba), (sb, db, bb) = (tuple(int(v) for v in (i if len(i) else s.bundle_id[k]))
                                          for i, k in ((edit.a_id, edit.a), (edit.b_id, edit.b)))
            if (sa, da) != (sb, db):
                raise CnnvisError("only bundles between the same two layer clusters can be merged")
            return ag.merge_bundles(agg, agg.layer_clusters[sa].name, agg.layer_clusters[da].name, ba, bb)
        if isinstance(edit, (CollapseColumn, ExpandColumn)):
            lc = agg.layer_clusters[edit.column]
            if lc.expanded_from is not None:
                return ag.collapse_layer_clusters(a, agg, edit.column)
            if isinstance(edit, CollapseColumn):
                raise CnnvisError(f"layer cluster {lc.name!r} was not expanded: nothing to collapse")
            return ag.expand_layer_cluster(a, agg, edit.column, neurons=self._neurons)
        return None

    # -- scenes and findings -------------------------------------------------------------------------------
    def _diagnose(self) -> None:
        from cnnvis.app.findings import SceneFindings

        # diagnosed once, on the first aggregation (cnnvis diagnose's numbering); every Scene gets them
        self.findings = SceneFindings(self.analysis, self.aggregation)

    def _build(self, agg):
        scene = self._with_findings(self._layout(self.analysis, agg), agg)
        if self._decorate is None:
            return scene
        return self._completed(self._decorate(scene, agg))

    def _with_findings(self, scene, agg):
        """scene with the findings, once they are known: attached to a Scene laid out before they were."""
        f = self.findings
        if f is None or self._complete.get(id(scene)) is scene:
            return scene
        return self._completed(f.attach(scene, agg))

    def _completed(self, scene):
        self._complete[id(scene)] = scene
        return scene

    # -- the worker ----------------------------------------------------------------------------------------
    def _work(self) -> None:
        from cnnvis.aggregate._blas import one_blas_thread

        # one BLAS thread while the window draws (the diagnosis's products too; see cnnvis/aggregate/_blas.py)
        with one_blas_thread():
            self._work_steps()

    def _work_steps(self) -> None:
        try:
            self._precompute(first=1)   # the biggest column opens at once, then the findings come
            if self._want_findings:
                self._busy = "diagnosing \u2026"
                try:
                    self._diagnose()
                finally:
                    self._findings_known.set()
                with self._lock:
                    self.scene = self._with_findings(self.scene, self.aggregation)
                    self._fresh = self.scene
            while not self._stop:
                self._busy = "clustering \u2026"   # set before the wake-up is cleared: wait() sees no gap
                self._wake.clear()
                self._settle()
                self._precompute()
                self._busy = ""
                self._wake.wait()
        except Exception as exc:  # the window keeps working without precomputed edits; say why once
            self._busy = f"background work stopped: {exc}"

    def _settle(self) -> None:
        """Wait until the view has been still for SETTLE_S after an edit: the window's camera flies to what
        the edit made (gl's ZOOM_SECONDS, 0.35 s), and the worker's layout (Python, holding the GIL) would cost
        it frames."""
        while not self._stop and not self._wake.is_set():
            left = self._shown_at + SETTLE_S - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, 0.05))

    def _precompute(self, first: int | None = None) -> None:
        """Collapses of the groups on screen, then expansions of its columns, biggest first (only the `first`
        ones when given)."""
        from cnnvis.layout import CollapseColumn, ExpandColumn

        agg, scene = self.aggregation, self.scene
        order = sorted(range(len(agg.layer_clusters)), key=lambda c: -len(agg.layer_clusters[c].layers))
        edits = [ExpandColumn(c) for c in order if agg.layer_clusters[c].children
                 and agg.layer_clusters[c].expanded_from is None]
        seen, collapses = set(), []
        for c, lc in enumerate(agg.layer_clusters):
            if lc.expanded_from is not None and id(lc.expanded_from) not in seen:
                seen.add(id(lc.expanded_from))
                collapses.append(CollapseColumn(c))
        edits = collapses + edits[:first]
        for edit in edits:
            if self._stop or self._wake.is_set() or self.aggregation is not agg:
                return   # an edit changed what is on screen: start over from it
            if (id(agg), edit) in self._ready:
                continue
            lc = agg.layer_clusters[edit.column]
            self._busy = f"clustering {lc.name.split(' ')[0]} \u2026"
            if isinstance(edit, ExpandColumn):
                self._cluster_children(agg, lc)
            new = self._apply(agg, scene, edit)
            built = self._build(new)
            with self._lock:
                if self.aggregation is agg:
                    self._ready[(id(agg), edit)] = (agg, new, built)

    def _cluster_children(self, agg, lc) -> None:
        """NeuronClusters of the representatives of the columns `lc` opens into (the slow part of an expand)."""
        from cnnvis.aggregate._neurons import cluster_neurons
        from cnnvis.aggregate._reorder import class_rank

        rank = class_rank(agg.class_order)
        for c in lc.children:
            if self._stop or self._wake.is_set():
                return
            if c.representative not in self._neurons:
                self._neurons[c.representative] = cluster_neurons(self.analysis, c.representative, agg.options,
                                                                  rank)


def scene_for(path):
    """The viewer's hook: a .cnnvis path (None for the demo) -> (Scene, on_edit, session); on_edit is
    `session.request` (an edit not precomputed is computed off the window's thread).

    The session works in the background (diagnosis, precomputed expansions): the window shows
    `session.busy` while it is not "" and replaces its Scene by `session.poll()` when that is not None."""
    from cnnvis.analysis import Analysis
    from cnnvis.app.demo import demo_analysis_path

    analysis = Analysis.load(demo_analysis_path() if path is None else os.fspath(path))
    session = Session(analysis, background=True)
    return session.scene, session.request, session

"""`cnnvis-gl`'s viewer half: a window on a Scene, or a screenshot rendered offscreen (EGL), from keyword
options (the command line is the application's: cnnvis.app.gl_command).

Turning a .cnnvis file into a Scene is the application's job (`cnnvis.app`): `run(..., scene_for=...)` takes
it as a hook (`scene_for(path)`, path None for the demo, returning a Scene, (Scene, on_edit) or
(Scene, on_edit, third), where third is a `busy() -> str | None` callable (see cnnvis.gl.Viewer) or a session
that works in the background: its `busy` string is shown and `poll()` hands out a newer Scene when its
findings come). A `.npz` file is read as a saved Scene directly (`cnnvis.gl._scenefile.save_scene`), without
the hook.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from cnnvis.errors import CnnvisError

__all__ = ["run"]


def _no_hook(path):
    raise CnnvisError(f"{path or '--demo'}: the viewer alone opens saved scenes (.npz); "
                      "open analysis files with the `cnnvis-gl` command")


def _load(file, scene_for: Callable | None, *, finding=None, screenshot=False) -> tuple:
    """(Scene, on_edit, busy, session or None) of a file (None: the demo)."""
    from cnnvis.gl._scenefile import load_scene
    from cnnvis.layout import Scene

    if file and Path(file).suffix == ".npz":
        return load_scene(file), None, None, None
    if file and not Path(file).is_file():
        raise CnnvisError(f"{file}: " + ("is a folder; give a .cnnvis file" if Path(file).is_dir()
                                         else "no such file"))
    got = (scene_for or _no_hook)(file)
    got = got if isinstance(got, tuple) else (got,)
    if not 1 <= len(got) <= 3:
        raise CnnvisError(f"scene_for returned {len(got)} values, not (Scene[, on_edit[, busy]])")
    scene, on_edit, third = (*got, None, None)[:3]
    if not isinstance(scene, Scene):
        raise CnnvisError(f"scene_for returned {type(scene).__name__}, not a Scene")
    session = third if hasattr(third, "poll") else None
    busy = (lambda: session.busy or None) if session is not None else third
    if session is not None and (finding is not None or screenshot):  # the picture/finding needs the findings
        session.wait_findings()
        scene = session.poll() or scene
    if session is not None and screenshot and hasattr(session, "on_edit"):
        on_edit = session.on_edit   # one picture: an edit it needs (a finding's expand) is made before it
    return scene, on_edit, busy, session


def _poll_session(viewer, session) -> None:
    """Show the session's newer Scene (its findings, known a moment after the first frame) when it comes."""
    from vispy import app

    def tick(event):
        s = session.poll()
        if s is not None:
            viewer.set_scene(s)
        if session.findings_known:
            timer.stop()

    timer = app.Timer(0.1, connect=tick, start=True)
    viewer._session_timer = timer   # kept alive with the viewer


def _use_egl() -> None:
    """Offscreen EGL; PyOpenGL picks its platform at import, so this must run before OpenGL is imported."""
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    if "OpenGL" in sys.modules and os.environ.get("PYOPENGL_PLATFORM") != "egl":
        raise CnnvisError("--screenshot needs PYOPENGL_PLATFORM=egl set before OpenGL is imported")
    os.environ["PYOPENGL_PLATFORM"] = "egl"
    import vispy

    vispy.use(app="egl", gl="gl+")


def run(*, file=None, demo: bool = False, screenshot=None, size=(1280, 800), facet=None, edges=None,
        threshold=None, classes=None, series=None, finding=None, dump=None, scene_for: Callable | None = None) -> int:
    """Open a window on `file` (or the demo), or with `screenshot` render one frame offscreen to that PNG.
    The view options (facet, edges, threshold, classes "A,B", series, finding N) set the first view as the
    panel would; dump=PREFIX is for scripted tests (see cnnvis.app.gl_command). Raises CnnvisError on bad
    input; returns 2 when there is no display to open a window on."""
    if file and demo:
        raise CnnvisError("give a FILE or --demo, not both")
    if not file and not demo:
        raise CnnvisError("give a FILE.cnnvis to open, or --demo")
    size = tuple(int(v) for v in size)
    opts = dict(facet=facet, edges=edges, threshold=threshold, classes=classes, series=series, finding=finding,
                file=file)
    if screenshot:
        out, existed = Path(screenshot), Path(screenshot).exists()
        try:  # before the render: a path that cannot be written is one line now, not after it
            open(out, "ab").close()
        except OSError as exc:
            raise CnnvisError(f"{out}: cannot write the screenshot ({exc.strerror or exc})") from None
        if not existed:
            out.unlink()
        _use_egl()
        scene, on_edit, busy, session = _load(file, scene_for, finding=finding, screenshot=True)
        _end_with(session)   # nothing more to precompute for one picture
        from vispy.io import write_png

        from cnnvis.gl._viewer import Viewer

        viewer = Viewer(scene, on_edit=on_edit, size=size)
        _apply_view_options(viewer, **opts)
        try:
            write_png(str(out), viewer.render(size))
        except OSError as exc:  # a full disk
            raise CnnvisError(f"{out}: cannot write the screenshot ({exc.strerror or exc})") from None
        print(f"cnnvis-gl: wrote {out} ({size[0]}x{size[1]})")
        return 0
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("cnnvis-gl: no display to open a window on (DISPLAY is not set); for a picture run "
              "`cnnvis-gl FILE --screenshot out.png [--size 1280x800]`", file=sys.stderr)
        return 2
    scene, on_edit, busy, session = _load(file, scene_for, finding=finding)
    import vispy

    vispy.use(app="glfw", gl="gl+")

    from cnnvis.gl._viewer import Viewer

    viewer = Viewer(scene, on_edit=on_edit, busy=busy, size=size, show=True,
                    title=f"cnnvis-gl \u2013 {file or 'demo'}")
    _apply_view_options(viewer, **opts)
    if session is not None:
        _poll_session(viewer, session)
    if dump:
        attach_dump(viewer, dump)
    from cnnvis.gl._loop import run_glfw

    run_glfw()
    _end_with(session)
    return 0


def _end_with(session) -> None:
    """Stop the session's background work and wait for its current step (at most a few seconds): a worker
    thread still inside native code while the interpreter exits can abort the process ("terminate called
    without an active exception", seen with torch loaded)."""
    if session is not None and hasattr(session, "close"):
        session.close(wait=30.0)


def _apply_view_options(viewer, *, facet, edges, threshold, classes, series, finding, file) -> None:
    """The command line's initial view: the same Viewer methods the panel calls (a finding first, so the
    options given with it still decide their own part of the view)."""
    if finding is not None:
        k = len(viewer.scene.findings)
        if k == 0:
            raise CnnvisError(f"--finding {finding}: this file has no findings ({file or 'the demo'})")
        if not 1 <= finding <= k:
            raise CnnvisError(f"--finding must be in 1..{k} ({k} findings), got {finding}")
        viewer.focus_finding(finding, animate=False)
    if facet:
        viewer.set_facet(facet)
    if edges:
        try:
            viewer.set_edge_mode(edges)
        except ValueError as exc:
            raise CnnvisError(f"--edges {edges}: {exc}") from None
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise CnnvisError(f"--threshold must be in [0, 1], got {threshold}")
        viewer.set_edge_threshold(threshold)
    if classes:
        names = viewer.scene.class_names
        by_case = {str(n).casefold(): k for k, n in enumerate(names)}
        wanted = [c.strip() for c in classes.split(",") if c.strip()]
        unknown = [c for c in wanted if c.casefold() not in by_case]
        if unknown:
            raise CnnvisError(f"--classes: unknown class {unknown[0]!r} (classes: {', '.join(names)})")
        viewer.select_classes([by_case[c.casefold()] for c in wanted])
    if series:
        names = viewer.scene.chart_names
        found = [k for k, n in enumerate(names) if str(n).casefold() == series.strip().casefold()]
        if not found:
            raise CnnvisError(f"--series: no chart series {series!r} (series: {', '.join(names)})")
        viewer.set_series(found[0])


def attach_dump(viewer, prefix: str) -> None:
    """For scripted tests and benchmarks/zoom_window.py: write PREFIX.ready after the first frame, with
    PREFIX.columns.json (each column title's box in window pixels); append every frame's time
    (time.monotonic(), one clock for every process), the session's busy note and 1 while the camera flies
    (else 0) to PREFIX.frames, tab-separated; key P
    writes the view state (JSON) and the frame (PNG), numbered."""
    import time

    from vispy.io import write_png

    from cnnvis.gl._names import column_headers

    count = [0]
    frames = open(prefix + ".frames", "a", buffering=1)

    def ready(event):
        heads = column_headers(viewer.scene, viewer.camera, viewer.size)
        Path(prefix + ".columns.json").write_text(json.dumps([[c, t, list(map(float, box)), full]
                                                              for c, t, box, full in heads]))
        Path(prefix + ".ready").write_text("1")
        viewer.canvas.events.draw.disconnect(ready)

    def frame(event):
        busy = viewer.state.busy if hasattr(viewer.state, "busy") else ""
        # time, the busy note, and whether the camera still flies (the window owes another frame at once)
        frames.write(f"{time.monotonic():.4f}\t{busy or ''}\t{int(viewer.camera.animating)}\n")

    viewer.canvas.events.draw.connect(frame, position="last")

    def dump(event):
        if (event.text or "").lower() != "p":
            return
        st, cam = viewer.state, viewer.camera
        state = {"facet": st.facet, "cluster_facet": [[*k, v] for k, v in st.cluster_facet.items()],
                 "edge_mode": st.edge_mode, "edge_threshold": st.edge_threshold,
                 "selected_classes": sorted(st.selected_classes), "selected_bundles": list(st.selected_bundles),
                 "center": cam.center.tolist(), "zoom": cam.zoom, "size": list(viewer.size),
                 "edits": [repr(e) for e in viewer.edits]}
        n = count[0]
        count[0] += 1
        write_png(f"{prefix}.{n}.png", viewer.render(viewer.size))
        Path(f"{prefix}.{n}.json").write_text(json.dumps(state))

    viewer.canvas.events.draw.connect(ready, position="last")
    viewer.canvas.events.key_press.connect(dump)

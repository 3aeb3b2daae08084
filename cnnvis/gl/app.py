"""The `cnnvis-gl` command: a window on a Scene, or a screenshot rendered offscreen (EGL).

    cnnvis-gl FILE.cnnvis                 open a window (glfw)
    cnnvis-gl --demo                      the embedded demo
    cnnvis-gl FILE --screenshot out.png [--size 1280x800]   render offscreen and exit
    cnnvis-gl FILE --finding N [--screenshot out.png]        show finding N of `cnnvis diagnose FILE`

Turning a .cnnvis file into a Scene is the application's job (`cnnvis.app`): `run(argv, scene_for=...)`
takes it as a hook (`scene_for(path)`, path None for the demo, returning a Scene or (Scene, on_edit)). A `.npz`
FILE is read as a saved Scene directly (`cnnvis.gl._scenefile.save_scene`); that is all `python -m cnnvis.gl`
opens without the application.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

from cnnvis.errors import CnnvisError, guard
from cnnvis.gl._state import EDGE_MODES, FACETS

__all__ = ["run", "main"]


def _size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants WIDTHxHEIGHT, e.g. 1280x800, got {text!r}") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"--size must be within 64..8192 on each side, got {text!r}")
    return (w, h)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnvis-gl", description="CNNVis viewer: clusters, bundles, chart, panel.")
    p.add_argument("file", nargs="?", help="analysis file (.cnnvis), or a saved Scene (.npz)")
    p.add_argument("--demo", action="store_true", help="open the embedded demo")
    p.add_argument("--screenshot", metavar="PNG", help="render offscreen (EGL) to this PNG and exit")
    p.add_argument("--size", type=_size, default=(1280, 800), metavar="WxH", help="window/picture size")
    p.add_argument("--facet", choices=FACETS, type=str.lower, help="facet of every cluster (default features)")
    p.add_argument("--edges", choices=EDGE_MODES, type=str.lower, help="edge colour coding (default weight)")
    p.add_argument("--threshold", type=float, metavar="S", help="hide edges weaker than S (0..1)")
    p.add_argument("--classes", metavar="A,B", help="select classes: clusters not driven by them fade")
    p.add_argument("--series", metavar="NAME", help="chart series (e.g. 'relative weight change')")
    p.add_argument("--finding", type=int, metavar="N",
                   help="show finding N of `cnnvis diagnose FILE`: zoom to it, outline it, show its evidence")
    p.add_argument("--dump", metavar="PREFIX", help=argparse.SUPPRESS)   # scripted tests: key P dumps
    return p


def _no_hook(path):
    raise CnnvisError(f"{path or '--demo'}: the viewer alone opens saved scenes (.npz); "
                      "open analysis files with the `cnnvis-gl` command")


def _load(args, scene_for: Callable | None):
    from cnnvis.gl._scenefile import load_scene
    from cnnvis.layout import Scene

    if args.file and Path(args.file).suffix == ".npz":
        return load_scene(args.file), None
    if args.file and not Path(args.file).is_file():
        raise CnnvisError(f"{args.file}: " + ("is a folder; give a .cnnvis file" if Path(args.file).is_dir()
                                              else "no such file"))
    got = (scene_for or _no_hook)(args.file)
    scene, on_edit = got if isinstance(got, tuple) else (got, None)
    if not isinstance(scene, Scene):
        raise CnnvisError(f"scene_for returned {type(scene).__name__}, not a Scene")
    return scene, on_edit


def _use_egl() -> None:
    """Offscreen EGL; PyOpenGL picks its platform at import, so this must run before OpenGL is imported."""
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    if "OpenGL" in sys.modules and os.environ.get("PYOPENGL_PLATFORM") != "egl":
        raise CnnvisError("--screenshot needs PYOPENGL_PLATFORM=egl set before OpenGL is imported")
    os.environ["PYOPENGL_PLATFORM"] = "egl"
    import vispy

    vispy.use(app="egl", gl="gl+")


def run(argv=None, *, scene_for: Callable | None = None) -> int:
    """Run cnnvis-gl with argv (without the program name). Raises CnnvisError on bad input."""
    args = _parser().parse_args(argv)
    if args.file and args.demo:
        raise CnnvisError("give a FILE or --demo, not both")
    if not args.file and not args.demo:
        raise CnnvisError("give a FILE.cnnvis to open, or --demo")
    if args.screenshot:
        out, existed = Path(args.screenshot), Path(args.screenshot).exists()
        try:  # before the render: a path that cannot be written is one line now, not after it
            open(out, "ab").close()
        except OSError as exc:
            raise CnnvisError(f"{out}: cannot write the screenshot ({exc.strerror or exc})") from None
        if not existed:
            out.unlink()
        _use_egl()
        scene, on_edit = _load(args, scene_for)
        from vispy.io import write_png

        from cnnvis.gl._viewer import Viewer

        viewer = Viewer(scene, on_edit=on_edit, size=args.size)
        _apply_view_options(viewer, args)
        try:
            write_png(str(out), viewer.render(args.size))
        except OSError as exc:  # a full disk
            raise CnnvisError(f"{out}: cannot write the screenshot ({exc.strerror or exc})") from None
        print(f"cnnvis-gl: wrote {out} ({args.size[0]}x{args.size[1]})")
        return 0
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("cnnvis-gl: no display to open a window on (DISPLAY is not set); for a picture run "
              "`cnnvis-gl FILE --screenshot out.png [--size 1280x800]`", file=sys.stderr)
        return 2
    scene, on_edit = _load(args, scene_for)
    import vispy

    vispy.use(app="glfw", gl="gl+")

    from cnnvis.gl._viewer import Viewer

    viewer = Viewer(scene, on_edit=on_edit, size=args.size, show=True, title=f"cnnvis-gl \u2013 {args.file or 'demo'}")
    _apply_view_options(viewer, args)
    if args.dump:
        _attach_dump(viewer, args.dump)
    from cnnvis.gl._loop import run_glfw

    run_glfw()
    return 0


def _apply_view_options(viewer, args) -> None:
    """The command line's initial view: the same Viewer methods the panel calls (a finding first, so the
    options given with it still decide their own part of the view)."""
    if args.finding is not None:
        k = len(viewer.scene.findings)
        if k == 0:
            raise CnnvisError(f"--finding {args.finding}: this file has no findings ({args.file or 'the demo'})")
        if not 1 <= args.finding <= k:
            raise CnnvisError(f"--finding must be in 1..{k} ({k} findings), got {args.finding}")
        viewer.focus_finding(args.finding, animate=False)
    if args.facet:
        viewer.set_facet(args.facet)
    if args.edges:
        viewer.set_edge_mode(args.edges)
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            raise CnnvisError(f"--threshold must be in [0, 1], got {args.threshold}")
        viewer.set_edge_threshold(args.threshold)
    if args.classes:
        names = viewer.scene.class_names
        by_case = {str(n).casefold(): k for k, n in enumerate(names)}
        wanted = [c.strip() for c in args.classes.split(",") if c.strip()]
        unknown = [c for c in wanted if c.casefold() not in by_case]
        if unknown:
            raise CnnvisError(f"--classes: unknown class {unknown[0]!r} (classes: {', '.join(names)})")
        viewer.select_classes([by_case[c.casefold()] for c in wanted])
    if args.series:
        names = viewer.scene.chart_names
        found = [k for k, n in enumerate(names) if str(n).casefold() == args.series.strip().casefold()]
        if not found:
            raise CnnvisError(f"--series: no chart series {args.series!r} (series: {', '.join(names)})")
        viewer.set_series(found[0])


def _attach_dump(viewer, prefix: str) -> None:
    """For scripted tests: write PREFIX.ready after the first frame; key P writes the view state (JSON)
    and the frame (PNG), numbered."""
    from vispy.io import write_png

    count = [0]

    def ready(event):
        Path(prefix + ".ready").write_text("1")
        viewer.canvas.events.draw.disconnect(ready)

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


def main(argv=None, *, scene_for: Callable | None = None) -> int:
    """`cnnvis-gl` with the errors reported as every cnnvis command reports them."""
    return guard(lambda a: run(a, scene_for=scene_for), argv, "cnnvis-gl")

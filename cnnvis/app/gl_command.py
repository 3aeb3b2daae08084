"""The `cnnvis-gl` command line: its parser, turned into keyword options of `cnnvis.gl.app.run`.

    cnnvis-gl FILE.cnnvis                 open a window (glfw)
    cnnvis-gl --demo                      the embedded demo
    cnnvis-gl FILE --screenshot out.png [--size 1280x800]   render offscreen and exit
    cnnvis-gl FILE --finding N [--screenshot out.png]        show finding N of `cnnvis diagnose FILE`
    cnnvis-gl SCENE.npz ...               a saved Scene (cnnvis.gl.save_scene), no analysis needed

`python -m cnnvis.app.gl_command ...` is the same command without the installed entry point.
"""
from __future__ import annotations

import argparse
import sys

from cnnvis.errors import guard

__all__ = ["parser", "run", "main"]

_FACETS = ("features", "matrix", "importance")     # = cnnvis.gl.FACETS (not imported: no GL before the backend)
_EDGE_MODES = ("weight", "gradient", "change")     # = cnnvis.gl.EDGE_MODES


def _size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants WIDTHxHEIGHT, e.g. 1280x800, got {text!r}") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"--size must be within 64..8192 on each side, got {text!r}")
    return (w, h)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnvis-gl", description="CNNVis viewer: clusters, bundles, chart, panel.")
    p.add_argument("file", nargs="?", help="analysis file (.cnnvis), or a saved Scene (.npz)")
    p.add_argument("--demo", action="store_true", help="open the embedded demo")
    p.add_argument("--screenshot", metavar="PNG", help="render offscreen (EGL) to this PNG and exit")
    p.add_argument("--size", type=_size, default=(1280, 800), metavar="WxH", help="window/picture size")
    p.add_argument("--facet", choices=_FACETS, type=str.lower, help="facet of every cluster (default features)")
    p.add_argument("--edges", choices=_EDGE_MODES, type=str.lower, help="edge colour coding (default weight)")
    p.add_argument("--threshold", type=float, metavar="S", help="hide edges weaker than S (0..1)")
    p.add_argument("--classes", metavar="A,B", help="select classes: clusters not driven by them fade")
    p.add_argument("--series", metavar="NAME", help="chart series (e.g. 'relative weight change')")
    p.add_argument("--finding", type=int, metavar="N",
                   help="show finding N of `cnnvis diagnose FILE`: zoom to it, outline it, show its evidence")
    p.add_argument("--dump", metavar="PREFIX",
                   help="for scripted tests: write PREFIX.ready after the first frame; key P writes the view "
                        "state (PREFIX.N.json) and the frame (PREFIX.N.png)")
    return p


def run(argv=None, *, scene_for=None) -> int:
    """Parse argv (without the program name) and run the viewer; scene_for defaults to the session's hook
    (cnnvis.app.session.scene_for). Raises CnnvisError on bad input."""
    from cnnvis.gl.app import run as run_viewer

    if scene_for is None:
        from cnnvis.app.session import scene_for
    return run_viewer(**vars(parser().parse_args(argv)), scene_for=scene_for)


def main(argv=None, *, scene_for=None) -> int:
    """`cnnvis-gl` with the errors reported as every cnnvis command reports them."""
    return guard(lambda a: run(a, scene_for=scene_for), argv, "cnnvis-gl")


if __name__ == "__main__":
    sys.exit(main())

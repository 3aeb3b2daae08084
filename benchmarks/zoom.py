"""Zooming through big models (issue 17): open, first frame, expand and collapse of the biggest layer cluster,
for ResNet-50, DenseNet-121 and EfficientNet-B0, as one table.

    python3 benchmarks/zoom.py --dir DIR      # DIR holds resnet50.cnnvis, densenet121.cnnvis, efficientnet_b0.cnnvis

Runs against the installed cnnvis (the README's setup); `PYTHONPATH=. python3 benchmarks/zoom.py ...` measures
a checkout's dev build. `python3 benchmarks/aggregate.py` makes the three files in the zoo venv when absent
(~/.cache/cnnvis/bench).

The files: torchvision models with random weights (num_classes=10) analysed on 64 Fashion-MNIST test images
made RGB, at 128x128 (`cnnvis analyze --model torchvision.models:NAME --model-kwargs num_classes=10
--weights W.pt --data fmnist64_rgb.npz --input-size 128 -o NAME.cnnvis` in the zoo venv).

Per model, in one process: load (Analysis.load); open (Session with its background worker: aggregate + layout
of the first view; the findings come later); the first frame (the Viewer's setup and one offscreen EGL
render, after the viewer's glyph atlas was built once for the process: timed apart); frames drawn 10 a second
while the worker clusters (median and worst, against an idle frame afterwards: the worker must not stall the
window); when the findings and the biggest column's expansion are ready; then the
expand and the collapse as the window asks for them (Session.on_edit, precomputed) against the same edits on a
session without the worker (computed on the spot, as before issue 17), with the ratio. Figures are wall
seconds, one run each (the edits are pure: a second run would hit the caches); numbers from a shared machine
vary, so compare ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("EGL_PLATFORM", "surfaceless")
os.environ["PYOPENGL_PLATFORM"] = "egl"

MODELS = ("resnet50", "densenet121", "efficientnet_b0")


def _clock(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _until(cond, limit: float) -> float:
    t = time.perf_counter()
    while not cond():
        if time.perf_counter() - t > limit:
            return float("nan")
        time.sleep(0.01)
    return time.perf_counter() - t


def measure(path: Path, size=(1280, 800), busy_seconds: float = 6.0, limit: float = 120.0) -> dict:
    from cnnvis.analysis import Analysis
    from cnnvis.app.session import Session
    from cnnvis.gl import Viewer
    from cnnvis.layout import ExpandColumn

    r = {}
    r["load"], a = _clock(lambda: Analysis.load(path))
    t_open = time.perf_counter()
    r["open"], ses = _clock(lambda: Session(a, background=True))
    r["first frame"], v = _clock(lambda: (lambda v: (v.render(size), v)[1])(Viewer(ses.scene, size=size)))
    r["to first frame"] = r["load"] + r["open"] + r["first frame"]
    agg = ses.aggregation
    big = max(range(len(agg.layer_clusters)), key=lambda c: len(agg.layer_clusters[c].layers))
    r["columns"] = len(agg.layer_clusters)
    r["biggest"] = agg.layer_clusters[big].name
    # frames while the worker runs, 10 a second as a window redraws on input (the window keeps drawing)
    frames, t_end = [], time.perf_counter() + busy_seconds
    while time.perf_counter() < t_end and ses.busy:
        dt, _ = _clock(lambda: v.render(size))
        frames.append(dt)
        time.sleep(max(0.0, 0.1 - dt))
    edit = ExpandColumn(big)
    _until(lambda: ses.is_ready(edit), limit)
    r["expand ready after open"] = time.perf_counter() - t_open
    _until(lambda: ses.findings_known, limit)
    r["findings after open"] = time.perf_counter() - t_open
    ses.wait(limit)
    r["frame (busy) median"] = statistics.median(frames) if frames else float("nan")
    r["frame (busy) worst"] = max(frames) if frames else float("nan")
    r["frame (idle)"], _ = _clock(lambda: v.render(size))
    r["expand"], new = _clock(lambda: ses.on_edit(edit))
    r["columns expanded"] = len(new.column_names)
    r["expand frame"], _ = _clock(lambda: (v.set_scene(new), v.render(size)))
    ses.wait(limit)
    r["collapse"], back = _clock(lambda: ses.on_edit(ExpandColumn(big)))
    ses.close()
    v.close()
    # the same edits computed on the spot, as every edit was before issue 17 (no worker, no caches)
    from cnnvis.aggregate import collapse_layer_clusters, expand_layer_cluster
    from cnnvis.layout import build_scene
    from cnnvis.layout._build import fill_height

    h = fill_height(len(agg.layer_clusters))
    r["expand (on the spot)"], opened = _clock(lambda: (lambda e: (build_scene(a, e, column_height=h), e)[1])(
        expand_layer_cluster(a, agg, big)))
    r["collapse (on the spot)"], _ = _clock(lambda: build_scene(a, collapse_layer_clusters(a, opened, big),
                                                                column_height=h))
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cnnvis", "bench"), help="folder of MODEL.cnnvis files (default: where benchmarks/aggregate.py makes them)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    args = p.parse_args(argv)
    import vispy

    vispy.use(app="egl", gl="gl+")
    from cnnvis.gl._text import glyph_atlas

    t_glyphs, _ = _clock(glyph_atlas)   # once per process: the first Viewer of any file would pay it
    rows = {}
    for m in args.models:
        path = Path(args.dir) / f"{m}.cnnvis"
        if not path.is_file():
            print(f"zoom.py: {path}: no such file (see the docstring for how to make it)", file=sys.stderr)
            return 2
        rows[m] = measure(path)
    keys = ["load", "open", "first frame", "to first frame", "findings after open", "expand ready after open",
            "frame (busy) median", "frame (busy) worst", "frame (idle)", "expand", "expand (on the spot)",
            "expand frame", "collapse", "collapse (on the spot)"]
    print(f"\n`python3 benchmarks/zoom.py --dir {args.dir}` ({os.cpu_count()} CPUs, seconds; the viewer's "
          f"glyph atlas, built once per process before the first frame: {t_glyphs:.3f})\n")
    print("| | " + " | ".join(args.models) + " |")
    print("|---|" + "---|" * len(args.models))
    print("| first view: columns | " + " | ".join(str(rows[m]["columns"]) for m in args.models) + " |")
    print("| biggest column | " + " | ".join(rows[m]["biggest"] for m in args.models) + " |")
    print("| columns after its expand | " + " | ".join(str(rows[m]["columns expanded"]) for m in args.models) + " |")
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{rows[m][k]:.3f}" for m in args.models) + " |")
    for k in ("expand", "collapse"):
        print(f"| {k}: on the spot / precomputed | " + " | ".join(
            f"\u00d7{rows[m][k + ' (on the spot)'] / max(rows[m][k], 1e-6):.0f}" for m in args.models) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

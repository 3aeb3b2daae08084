"""Frame time of the instanced renderer (cnnvis.gl.Viewer: one draw call per primitive type) against a
naive one (one VisPy scene visual per rectangle and per curve: Rectangle + Line) on the same scenes.

    python3 benchmarks/render.py                      # 1k, 10k, 100k; naive up to 10k: ~8 min on llvmpipe
    python3 benchmarks/render.py --naive-max 1000     # naive only at 1k: ~2 min
    python3 benchmarks/render.py --file resnet50.cnnvis --size 1600x1000   # a real analysis (~1 min)

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/render.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

--file times the real Scene of an analysis file (scripts/resnet50-view.sh makes ResNet-50's): the
Session open (load + aggregate + findings + layout), the Viewer's setup and frames (best and median of
--frames), and an expand of the biggest layer cluster (Session edit -> new Scene, its upload, the frames
during the camera's flight and after it lands).

Both renderers draw offscreen (EGL) into a framebuffer and read the frame back, so both frame times
include the read-back. The instanced frame also draws the chart and the control panel. Each renderer
gets one warm-up frame (shader compilation: one program per visual for the naive one) that is timed
apart; the frame time is the median of the timed frames. Prints a markdown table.

The naive renderer at 10k + 10k cannot hold all its visuals at once here (llvmpipe compiles one program per
visual: ~1.7 GB per 1k + 1k, so ~17 GB), so it draws them in batches of --naive-batch objects, each in its
own process, and sums the batch frame times: a lower bound of its frame time (no memory pressure, fewer
visuals per scene-graph walk), which keeps the speed-up conservative.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("EGL_PLATFORM", "surfaceless")
os.environ["PYOPENGL_PLATFORM"] = "egl"

import numpy as np  # noqa: E402
import vispy  # noqa: E402

vispy.use(app="egl", gl="gl+")


def _size(text):
    w, h = (int(v) for v in text.lower().split("x"))
    return (w, h)


def time_instanced(scene, size, frames):
    from cnnvis.gl import Viewer

    t0 = time.perf_counter()
    v = Viewer(scene, size=size)
    v.canvas.events.ignore_callback_errors = False
    first = v.render(size)
    setup = time.perf_counter() - t0
    assert first[..., :3].std() > 0, "instanced render is blank"
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        v.render(size)
        times.append(time.perf_counter() - t)
    v.canvas.close()
    return statistics.median(times), setup, frames


def time_uploads(scene, size, repeats=3):
    """Median seconds of Viewer.set_scene for a Scene with every array new (a fresh layout), for one whose
    curves alone changed (what a bundle merge gives), and of a view-state change (a class selection)."""
    from cnnvis.gl import Viewer

    v = Viewer(scene, size=size)
    # every group's arrays differ (set_scene compares values, not identities)
    fresh = scene.replace(
        rect_box=scene.rect_box + 1, rect_class_activation=scene.rect_class_activation * 0.5,
        curve_ctrl=scene.curve_ctrl + 1, patch_box=scene.patch_box + 1, patch_rect=scene.patch_rect[::-1].copy(),
        matrix_box=scene.matrix_box + 1, matrix_rect=scene.matrix_rect[::-1].copy(), atlas=255 - scene.atlas,
        matrix_atlas=1 - scene.matrix_atlas, label_pos=scene.label_pos + 1, chart_values=scene.chart_values * 2)
    merged = scene.replace(curve_values=scene.curve_values * 0.5)
    out = []
    for make in (lambda: v.set_scene(fresh), lambda: v.set_scene(merged), lambda: v.select_classes([0])):
        times = []
        for _ in range(repeats):
            v.set_scene(scene)
            v.select_classes(())
            t = time.perf_counter()
            make()
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    v.canvas.close()
    return out


def _frames(v, size, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        v.render(size)
        times.append(time.perf_counter() - t)
    return times


def time_file(path, size, frames):
    """Rows (what, ms) for the real Scene of an analysis file, through cnnvis.app.session.Session."""
    from cnnvis.analysis import Analysis
    from cnnvis.app.session import Session
    from cnnvis.gl import Viewer
    from cnnvis.gl._viewer import ZOOM_SECONDS

    t0 = time.perf_counter()
    analysis = Analysis.load(path)
    t_load = time.perf_counter() - t0
    session = Session(analysis)
    t_open = time.perf_counter() - t0
    s = session.scene
    t = time.perf_counter()
    v = Viewer(s, on_edit=session.on_edit, size=size)
    v.canvas.events.ignore_callback_errors = False
    first = v.render(size)
    t_setup = time.perf_counter() - t
    assert first[..., :3].std() > 0, "render is blank"
    ft = _frames(v, size, frames)
    # the biggest layer cluster: the most layers (ties: the most neurons)
    lcs = session.aggregation.layer_clusters
    big = max(range(len(lcs)), key=lambda i: (len(lcs[i].layers), i))
    name, n_layers = lcs[big].name, len(lcs[big].layers)
    t = time.perf_counter()
    v.expand_column(big)
    t_expand = time.perf_counter() - t
    s2 = v.scene
    assert v.camera.animating, "the expand did not start a camera flight"
    flight = []
    while v.camera.animating:   # the flight as the timer would run it, one frame's time per step
        t = time.perf_counter()
        v.render(size)
        dt = time.perf_counter() - t
        flight.append(dt)
        v.step(max(dt, 1 / 60))
    ft2 = _frames(v, size, frames)
    v.canvas.close()
    scene_txt = lambda sc: (f"{len(sc.column_names)} columns, {sc.n_rects} rects, {sc.n_curves} curves, "
                            f"{sc.n_patches} patches")
    n_layers_all = len(analysis.graph.layers)
    info = (f"{Path(path).name}: {n_layers_all} layers; overview {scene_txt(s)}; after expanding "
            f"{name!r} ({n_layers} layers): {scene_txt(s2)}; flight {ZOOM_SECONDS} s")
    rows = [("Analysis.load", t_load * 1e3), ("Session open (load + aggregate + findings + layout)", t_open * 1e3),
            ("Viewer setup (upload + first frame)", t_setup * 1e3),
            (f"overview frame, best of {frames}", min(ft) * 1e3),
            (f"overview frame, median of {frames}", statistics.median(ft) * 1e3),
            (f"expand {name!r}: Session edit -> new Scene -> uploaded", t_expand * 1e3),
            (f"frames during the flight ({len(flight)}), median", statistics.median(flight) * 1e3),
            (f"frames during the flight, slowest", max(flight) * 1e3),
            (f"expanded frame, best of {frames}", min(ft2) * 1e3),
            (f"expanded frame, median of {frames}", statistics.median(ft2) * 1e3)]
    return info, rows


def _naive_canvas(scene, size, rects, curves):
    from vispy import scene as vscene

    canvas = vscene.SceneCanvas(size=size, show=False, bgcolor="white")
    view = canvas.central_widget.add_view()
    b = scene.rect_box
    view.camera = vscene.PanZoomCamera(rect=(b[:, 0].min(), b[:, 1].min(), np.ptp(b[:, [0, 2]]), np.ptp(b[:, [1, 3]])))
    for i in rects:
        box, fill, border = scene.rect_box[i], scene.rect_fill[i], scene.rect_border[i]
        vscene.visuals.Rectangle(center=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                                 width=max(box[2] - box[0], 1e-3), height=max(box[3] - box[1], 1e-3),
                                 color=fill, border_color=border, parent=view.scene)
    t = np.linspace(0, 1, 33)[:, None]   # as many segments as the instanced curves
    basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], 1)[..., 0]
    for i in curves:
        color = (0.0, 0.447, 0.698, 0.8) if scene.curve_values[i, 0] >= 0 else (0.835, 0.369, 0.0, 0.8)
        vscene.visuals.Line(pos=(basis @ scene.curve_ctrl[i]).astype(np.float32), color=color,
                            width=float(scene.curve_width[i]), parent=view.scene)
    return canvas


def time_naive(count, size, frames, batch):
    """Median frame time of one visual per rectangle and per curve on sized_scene(count). Above `batch`
    objects the visuals are split into batches, each drawn by its own process, and the batch frame times
    summed: all at once needs memory for one llvmpipe-compiled program per visual (~1.7 GB per 1k + 1k),
    and a closed canvas does not give it back."""
    n_batches = max(1, -(-count // batch))
    total, setup = 0.0, 0.0
    for k in range(n_batches):
        out = subprocess.run([sys.executable, __file__, "--naive-child", f"{count},{k},{n_batches},{frames}",
                              "--size", "x".join(map(str, size))], capture_output=True, text=True, check=True)
        ms, st = json.loads(out.stdout.strip().splitlines()[-1])
        total += ms
        setup += st
    return total, setup, frames, n_batches


def _naive_child(spec: str, size) -> None:
    from cnnvis.testing.scenes import sized_scene

    count, k, n, frames = (int(v) for v in spec.split(","))
    scene = sized_scene(count)
    R, E = scene.n_rects, scene.n_curves
    t0 = time.perf_counter()
    canvas = _naive_canvas(scene, size, range(k * R // n, (k + 1) * R // n), range(k * E // n, (k + 1) * E // n))
    first = canvas.render()
    setup = time.perf_counter() - t0
    assert first[..., :3].std() > 0, "naive render is blank"
    times = []
    for _ in range(frames):
        t1 = time.perf_counter()
        canvas.render()
        times.append(time.perf_counter() - t1)
    print(json.dumps([statistics.median(times), setup]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", default="1000,10000,100000", help="rectangles (= curves) per scene")
    p.add_argument("--naive-max", type=int, default=10000, help="largest count the naive renderer runs on")
    p.add_argument("--size", type=_size, default=(1024, 768), help="frame size for the scaling scenes")
    p.add_argument("--frames", type=int, default=5, help="timed frames, instanced")
    p.add_argument("--naive-batch", type=int, default=2000, help="most objects per naive process (memory)")
    p.add_argument("--file", help="time the real Scene of this analysis file instead (see above)")
    p.add_argument("--naive-child", help=argparse.SUPPRESS)
    p.add_argument("--uploads-only", action="store_true", help="only the upload table (seconds)")
    args = p.parse_args(argv)
    if args.naive_child:
        return _naive_child(args.naive_child, args.size)
    from vispy import gloo

    if args.file:
        info, rows = time_file(args.file, args.size, max(args.frames, 3))
        renderer = gloo.gl.glGetParameter(gloo.gl.GL_RENDERER)
        print(f"`python3 benchmarks/render.py {' '.join(argv if argv is not None else sys.argv[1:])}`")
        print(f"\nGL: {renderer}; {os.cpu_count()} CPUs; {'x'.join(map(str, args.size))}; frame read back "
              f"included. {info}.\n")
        print("| what | ms |\n|---|---:|")
        for what, ms in rows:
            print(f"| {what} | {ms:.1f} |")
        return None
    from cnnvis.testing.scenes import sized_scene, synthetic_scene

    upload_rows = [(count, time_uploads(sized_scene(count), args.size)) for count in
                   (int(c) for c in args.counts.split(","))]
    if args.uploads_only:
        _print_uploads(upload_rows, argv if argv is not None else sys.argv[1:])
        return None
    rows = []
    # A demo-sized scene (the digits CNN: ~8 layer clusters, ~6 neuron clusters each) at 1280x800.
    demo = synthetic_scene(8, 6, n_curves=300, patches_per_cluster=9)
    ms, setup, n = time_instanced(demo, (1280, 800), args.frames)
    rows.append((f"demo-sized ({demo.n_rects} rects, {demo.n_curves} curves, {demo.n_patches} patches)",
                 "1280x800", ms, setup, n, None))
    for count in (int(c) for c in args.counts.split(",")):
        sc = sized_scene(count)
        ms, setup, n = time_instanced(sc, args.size, args.frames if count < 100000 else 3)
        naive = None
        if count <= args.naive_max:
            naive = time_naive(count, args.size, 2 if count <= 1000 else 1, args.naive_batch)
        rows.append((f"{sc.n_rects} rects + {sc.n_curves} curves", "x".join(map(str, args.size)), ms, setup, n,
                     naive))
        print(f"# done {count}", file=sys.stderr, flush=True)

    renderer = gloo.gl.glGetParameter(gloo.gl.GL_RENDERER)
    print(f"`python3 benchmarks/render.py {' '.join(argv if argv is not None else sys.argv[1:])}`".replace(" `", "`"))
    print(f"\nGL: {renderer}; {os.cpu_count()} CPUs. Median frame time (ms), frame read back included; "
          "setup = build + upload + first frame (s).\n")
    print("| scene | size | instanced ms | naive ms | speed-up | instanced setup s | naive setup s | frames (inst/naive) |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for name, size, ms, setup, n, naive in rows:
        if naive is None:
            print(f"| {name} | {size} | {ms * 1e3:.1f} | not run | | {setup:.2f} | | {n}/- |")
        else:
            nms, nsetup, nn, nb = naive
            batches = f" ({nb} batches)" if nb > 1 else ""
            print(f"| {name} | {size} | {ms * 1e3:.1f} | {nms * 1e3:.0f}{batches} | {nms / ms:.0f}x | {setup:.2f} | "
                  f"{nsetup:.1f} | {n}/{nn} |")
    _print_uploads(upload_rows, None)


def _print_uploads(rows, argv) -> None:
    if argv is not None:
        print(f"`python3 benchmarks/render.py {' '.join(argv)}`")
    print("\nset_scene re-uploads only the buffer groups whose arrays changed: median ms (3 runs).\n")
    print("| rects + curves | every array new ms | curves changed ms | ratio | class selection ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for count, (full, curves, view) in rows:
        print(f"| {count} + {count} | {full * 1e3:.1f} | {curves * 1e3:.1f} | {full / curves:.1f}x | "
              f"{view * 1e3:.1f} | {full / view:.1f}x |")


if __name__ == "__main__":
    main()

"""Does an analysis cost little more than training? ResNet-50 side by side: bare forward+backward, inference,
and `cnnvis.analysis.analyze`, same model, batch, images and threads, each in its own subprocess (its peak
RSS is its own ru_maxrss). Then the .cnnvis file size for two image counts, and how long it takes to load.

    python3 benchmarks/analysis.py                 # ResNet-50, 224x224, 32 images, batch 16, 2 threads
    python3 benchmarks/analysis.py --quick         # small sizes, seconds
    python3 benchmarks/analysis.py --files 32,256  # file sizes (default: the --images count and 8x it)

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/analysis.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

Targets (issue 9): analysis throughput >= 0.6x bare forward+backward, peak RSS <= 1.5x, file <= 100 MB.
The model is torchvision's resnet50 when torchvision imports, else tests/resnets.py (the same modules and
parameter shapes), random weights, 10 classes; images are smooth random RGB images (upscaled noise).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _model(width: int):
    try:
        import torchvision

        if width != 64:
            raise ImportError
        return torchvision.models.resnet50(num_classes=10), "torchvision resnet50"
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
        from resnets import resnet50

        return resnet50(num_classes=10, width=width), f"tests/resnets.py resnet50 (width {width})"


def _data(n: int, size: int, seed: int = 0):
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cnnvis.data import Dataset

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 16), max(2, size // 16), generator=g)
    x = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1).numpy()
    y = np.arange(n, dtype=np.int64) % 10
    return Dataset(np.ascontiguousarray(x, np.float32), y, tuple(f"class {k}" for k in range(10)), "smooth-noise")


def child(args) -> dict:
    """One candidate in this process: images/s over the images, and this process's peak RSS."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, what = _model(args.width)
    model.eval()
    data = _data(args.images, args.size)
    out = {"model": what}
    if args.candidate == "pass":  # the analysis pass alone, timed like the others (after a warm-up batch)
        import numpy as np

        from cnnvis.analysis._run import _Pass
        from cnnvis.graph._trace import trace

        traced = trace(model, torch.from_numpy(data.get(np.arange(2))))
        traced.module.eval()
        p = _Pass(traced, 10, 9, tuple(range(10)), torch.device("cpu"), data.name)
        batches = list(data.batches(args.batch))
        p.run_batch(*batches[0])
        t = time.perf_counter()
        for b in batches:
            p.run_batch(*b)
        out["seconds"] = time.perf_counter() - t
    elif args.candidate == "analysis":
        from cnnvis.analysis import analyze

        t = time.perf_counter()
        a = analyze(model, data, batch_size=args.batch, show_progress=False)
        out["seconds"] = time.perf_counter() - t
        if args.save:
            t = time.perf_counter()
            a.save(args.save)
            out["save_s"] = time.perf_counter() - t
            out["file_mb"] = os.path.getsize(args.save) / 1e6
            out["neurons"] = sum(l.n_neurons for l in a.graph.layers)
            out["layers"] = len(a.graph.layers)
    else:
        batches = list(data.batches(args.batch))

        def step(x, y):
            if args.candidate == "inference":
                with torch.no_grad():
                    model(x)
            else:
                F.cross_entropy(model(x), y).backward()
                model.zero_grad(set_to_none=True)

        step(*batches[0][1:])  # warm-up: first-call allocations and kernel selection
        t = time.perf_counter()
        for _, x, y in batches:
            step(x, y)
        out["seconds"] = time.perf_counter() - t
    out["images_per_s"] = args.images / out["seconds"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def speed(args) -> dict:
    """images/s of every candidate in this one process, round robin, best of --repeat (shared cores: the
    best round is the one least disturbed by other processes)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cnnvis.analysis import analyze
    from cnnvis.analysis._run import _Pass  # the pass alone, without tracing and crops: no public face
    from cnnvis.graph._trace import trace

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, what = _model(args.width)
    model.eval()
    data = _data(args.images, args.size)
    batches = list(data.batches(args.batch))
    traced = trace(model, torch.from_numpy(data.get(np.arange(2))))
    traced.module.eval()
    p = _Pass(traced, 10, 9, tuple(range(10)), torch.device("cpu"), data.name)

    def bare():
        for _, x, y in batches:
            F.cross_entropy(model(x), y).backward()
            model.zero_grad(set_to_none=True)

    def inference():
        with torch.no_grad():
            for _, x, _ in batches:
                model(x)

    def pass_():
        for b in batches:
            p.run_batch(*b)

    def whole():
        analyze(model, data, batch_size=args.batch, show_progress=False)

    fns = {"bare": bare, "inference": inference, "pass": pass_, "analysis": whole}
    for f in (bare, inference, pass_):
        f()  # warm-up
    best = {c: float("inf") for c in fns}
    for _ in range(args.repeat):
        for c, f in fns.items():
            t = time.perf_counter()
            f()
            best[c] = min(best[c], time.perf_counter() - t)
    return {"model": what, **{c: args.images / t for c, t in best.items()}}


def _run_child(args, candidate: str, images: int, save: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", candidate, "--images", str(images),
           "--size", str(args.size), "--batch", str(args.batch), "--threads", str(args.threads),
           "--width", str(args.width), "--repeat", str(args.repeat)] + (["--save", save] if save else [])
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"{candidate} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _load_time(path: str, threads: int) -> dict:
    code = ("import time,resource,sys; t=time.perf_counter(); from cnnvis.analysis import Analysis; "
            "a=Analysis.load(sys.argv[1]); f=next(iter(a.features.values())); f.patches[0,0]; "
            "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    # cwd away from the checkout: `python -c` puts the cwd first on sys.path (a fresh clone's cnnvis/ has no core)
    res = subprocess.run([sys.executable, "-c", code, path], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(path)))
    s, rss = res.stdout.split()
    return {"load_s": float(s), "load_rss_mb": float(rss)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="width 16, 64x64 images, 16 images, batch 8")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=64, help="ResNet-50 base width (64: torchvision's)")
    p.add_argument("--files", default=None, help="image counts to measure the file size for, e.g. 32,256 "
                   "('' for none; default: --images and 8x that)")
    p.add_argument("--repeat", type=int, default=2, help="rounds of the speed comparison (best is kept)")
    p.add_argument("--only", choices=("speed", "files"), default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.images, args.size, args.batch, args.width = 16, 64, 8, 16
    if args.child:
        args.candidate = args.child
        print(json.dumps(speed(args) if args.child == "speed" else child(args)))
        return
    if args.files is None:
        counts = [args.images, 8 * args.images]
    else:
        counts = [int(c) for c in args.files.split(",") if c.strip()]
    if args.only in (None, "speed"):
        _speed_table(args)
    if args.only in (None, "files"):
        _files_table(args, counts)


def _speed_table(args):
    rows = {c: _run_child(args, c, args.images) for c in ("bare", "inference", "pass", "analysis")}
    fast = _run_child(args, "speed", args.images)
    bare = rows["bare"]
    print(f"\n{fast['model']}, {args.size}x{args.size}, {args.images} images, batch {args.batch}, "
          f"{args.threads} threads; command: python3 benchmarks/analysis.py {' '.join(sys.argv[1:])}")
    print(f"images/s: one process, candidates round robin, best of {args.repeat}; peak RSS: each candidate "
          "alone in its own process (ru_maxrss)\n")
    print("| candidate | images/s | vs bare fwd+bwd | peak RSS (MB) | vs bare |")
    print("|---|---|---|---|---|")
    names = {"bare": "bare forward+backward (weight gradients, loss)", "inference": "inference (no_grad forward)",
             "pass": "cnnvis analysis pass (per batch, like the rows above)",
             "analysis": "cnnvis analyze, whole call (trace + pass + crops)"}
    for c, r in rows.items():
        print(f"| {names[c]} | {fast[c]:.2f} | {fast[c] / fast['bare']:.2f}x | "
              f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / bare['peak_rss_mb']:.2f}x |")


def _files_table(args, counts):
    if not counts:
        return
    print(f"\nfile sizes at defaults (top-k 9, patch size 64), {args.size}x{args.size}; command: "
          f"python3 benchmarks/analysis.py {' '.join(sys.argv[1:])}")
    print("\n| images | file (MB) | layers | neurons | analyze (s) | save (s) | load + first patch (s) "
          "| load RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            path = os.path.join(tmp, f"r50-{n}.cnnvis")
            r = _run_child(args, "analysis", n, save=path)
            lt = _load_time(path, args.threads)
            print(f"| {n} | {r['file_mb']:.1f} | {r['layers']} | {r['neurons']} | {r['seconds']:.1f} | "
                  f"{r['save_s']:.1f} | {lt['load_s']:.2f} | {lt['load_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()

"""Does an analysis cost little more than training? ResNet-50 side by side: bare forward+backward, inference,
and `cnnvis.analysis.analyze`, same model, batch, images and threads, each in its own subprocess (its peak
RSS is its own ru_maxrss). Then the .cnnvis file size for two image counts, and how long it takes to load.

    python3 benchmarks/analysis.py                 # ResNet-50, 224x224, 32 images, batch 16, 2 threads
    python3 benchmarks/analysis.py --quick         # small sizes, seconds
    python3 benchmarks/analysis.py --files 32,256  # file sizes (default: the --images count and 8x it)
    $(bash scripts/zoo-env.sh) benchmarks/analysis.py --zoo   # whole processes, six torchvision families

--zoo (issue 16): for each of ResNet-50, DenseNet-121, Inception-v3, MobileNet-v3, EfficientNet-B0 and
ConvNeXt-tiny, a whole `cnnvis analyze` process against a whole process doing bare forward+backward of the same
model, data (128 Fashion-MNIST test images made RGB, resized to 224x224 by the same loader) and batch (16):
wall time (imports, capture and crops included), images/s and peak RSS of each process (os.wait4), and the
capture time alone. Needs torchvision: run it with the zoo venv's python. Targets: >= 0.6x throughput,
<= 1.5x peak RSS, capture <= 10 s.

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
    p.add_argument("--zoo", nargs="?", const=",".join(ZOO), default=None, metavar="NAMES",
                   help=f"whole processes per torchvision family (default all: {','.join(ZOO)})")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    p.add_argument("--name", default=None, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.images, args.size, args.batch, args.width = 16, 64, 8, 16
    if args.zoo is not None:
        if "--images" not in sys.argv:
            args.images = 128
        _zoo_table(args, [m for m in args.zoo.split(",") if m])
        return
    if args.child == "zoo-bare":
        print(json.dumps(_zoo_bare(args)))
        return
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


ZOO = {"resnet50": {}, "densenet121": {}, "inception_v3": {"aux_logits": False, "init_weights": True},
       "mobilenet_v3_large": {}, "efficientnet_b0": {}, "convnext_tiny": {}}


def _fmnist_rgb(n: int, folder: str) -> str:
    """The first n Fashion-MNIST test images as RGB (the channel repeated) in an .npz both processes read."""
    import numpy as np

    from cnnvis.data import open_dataset

    src = open_dataset("/usr/share/datasets/fashion-mnist")
    idx = np.arange(min(n, len(src)))
    grey = np.asarray(src.get(idx), np.float32)  # (n, 1, 28, 28) in [0, 1]
    path = os.path.join(folder, f"fmnist{n}_rgb.npz")
    np.savez(path, images=np.repeat(grey, 3, axis=1), labels=src.labels[idx],
             class_names=np.array(src.class_names))
    return path


def _zoo_bare(args) -> dict:
    """Child: bare forward+backward of torchvision.models.<name> over the .npz at 224 (the same loader)."""
    import torch
    import torch.nn.functional as F
    import torchvision

    from cnnvis.data import open_dataset

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.name)(num_classes=10, **ZOO[args.name]).eval()
    data = open_dataset(args.data, input_size=args.size)
    n = 0
    for _, x, y in data.batches(args.batch):
        F.cross_entropy(model(x), torch.as_tensor(y)).backward()
        model.zero_grad(set_to_none=True)
        n += len(y)
    return {"seconds": time.perf_counter() - t0, "images": n}


def _timed(cmd, env) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process, its own rusage (os.wait4)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:6])} ... failed:\n{err[-3000:]}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024, out + err


def _capture_seconds(name: str, size: int) -> float:
    import torch
    import torchvision

    from cnnvis.graph._trace import trace

    model = getattr(torchvision.models, name)(num_classes=10, **ZOO[name]).eval()
    t = time.perf_counter()
    trace(model, torch.zeros(2, 3, size, size))
    return time.perf_counter() - t


def _zoo_table(args, names):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               CNNVIS_PROGRESS="0")
    print(f"\nwhole processes, {args.images} Fashion-MNIST images (RGB) at {args.size}x{args.size}, batch "
          f"{args.batch}, {args.threads} threads; command: {os.path.basename(sys.executable)} "
          f"benchmarks/analysis.py {' '.join(sys.argv[1:])}\n")
    print("| model | capture (s) | bare (s) | analyze (s) | bare img/s | analyze img/s | throughput vs bare "
          "| bare RSS (MB) | analyze RSS (MB) | RSS vs bare |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        data = _fmnist_rgb(args.images, tmp)
        for name in names:
            if name not in ZOO:
                sys.exit(f"--zoo: unknown model {name!r} (choose from {', '.join(ZOO)})")
            cap = _capture_seconds(name, args.size)
            bare_cmd = [sys.executable, os.path.abspath(__file__), "--child", "zoo-bare", "--name", name,
                        "--data", data, "--size", str(args.size), "--batch", str(args.batch),
                        "--threads", str(args.threads)]
            kwargs = ["num_classes=10"] + [f"{k}={v!r}" for k, v in ZOO[name].items()]
            ana_cmd = [sys.executable, "-c", "import sys; from cnnvis.app import main; sys.exit(main())",
                       "analyze", "--model", f"torchvision.models:{name}", "--model-kwargs", *kwargs,
                       "--data", data, "--input-size", str(args.size), "--batch-size", str(args.batch),
                       "--no-progress", "-o", os.path.join(tmp, f"{name}.cnnvis")]
            tb, rb, _ = _timed(bare_cmd, env)
            ta, ra, _ = _timed(ana_cmd, env)
            n = args.images
            print(f"| {name} | {cap:.1f} | {tb:.1f} | {ta:.1f} | {n / tb:.2f} | {n / ta:.2f} | **{tb / ta:.2f}x** | "
                  f"{rb:.0f} | {ra:.0f} | **{ra / rb:.2f}x** |", flush=True)


if __name__ == "__main__":
    main()

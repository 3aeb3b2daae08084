"""What does `cnnvis diff` cost next to `cnnvis analyze`? Two ResNet-50 checkpoints (tests/resnets.py, the
parameter shapes of torchvision's, random weights from two seeds, 10 classes) on N smooth random RGB images
at 224x224, each command a whole process of its own (wall time, that process's CPU time (user + system) and
peak RSS), side by side, for two image counts (flat peak RSS: memory does not grow with the images). On a
shared machine the CPU time is the steadier measure (other jobs slow the wall clock more than they add CPU
seconds); --repeat runs every command again, in a rotated order, and keeps each one's fastest run.

    python3 benchmarks/diff.py                        # 32 and 64 images, batch 16, 2 threads
    python3 benchmarks/diff.py --images 64,256        # the issue's 256 images (about 12 min quiet)
    python3 benchmarks/diff.py --images 8,16 --size 112  # quicker
    python3 benchmarks/diff.py --repeat 2                # each command twice, the faster run kept

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/diff.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

Candidates: `analyze` (one model: forward + backward, statistics, crops), `diff --json` (both models, one
forward-only pass: CKA of every layer pair, correlations of every weighted layer's channels, matching),
`diff -o` (the diff and an analysis of each model, for the viewer, in one pass: per batch each model's
analysis pass, forward + backward, the diff observing their layer outputs). Target (issue 18): diff -o <=
2.5x analyse.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_CHILD = ("import resource, sys; from cnnvis.app import main; rc = main(sys.argv[1:]); "
          "u = resource.getrusage(resource.RUSAGE_SELF); "
          "print('RSS', u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(rc)")


def _inputs(folder: str, n: int, size: int) -> tuple[str, str, str]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from resnets import resnet50

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        p = os.path.join(folder, f"r50_seed{seed}.pt")
        torch.save(resnet50(num_classes=10).state_dict(), p)
        paths.append(p)
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, max(2, size // 16), max(2, size // 16), generator=g)
    x = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1).numpy()
    data = os.path.join(folder, f"images{n}.npz")
    np.savez(data, images=x.astype(np.float32), labels=np.arange(n, dtype=np.int64) % 10)
    return paths[0], paths[1], data


def _run(argv: list[str], threads: int, cwd: str) -> tuple[float, float, float]:
    # the installed cnnvis, or the checkout a PYTHONPATH of the caller's puts first; tests/ for the models
    path = [p for p in (os.environ.get("PYTHONPATH", "").split(os.pathsep)) if p]
    path = [os.path.abspath(p) for p in path] + [os.path.join(ROOT, "tests")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path),
               OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t = time.perf_counter()
    # cwd away from the checkout: `python -c` puts the cwd first on sys.path (a fresh clone's cnnvis/ has no core)
    r = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=env, capture_output=True, text=True,
                       cwd=cwd)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    rss, cpu = [l.split()[1:] for l in r.stderr.splitlines() if l.startswith("RSS ")][-1]
    return wall, float(cpu), int(rss) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="32,64", help="image counts, comma-separated (default 32,64)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="runs of each command (the fastest kept; default 1)")
    args = p.parse_args()
    counts = [int(c) for c in args.images.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            a, b, data = _inputs(tmp, n, args.size)
            model = ["--model", "resnets:resnet50", "--model-kwargs", "num_classes=10", "--weights", a]
            common = ["--data", data, "--batch-size", str(args.batch), "--no-progress"]
            cands = {
                "analyze (one model)": ["analyze", *model, *common, "-o", os.path.join(tmp, "a.cnnvis")],
                "diff --json": ["diff", *model, "--against", b, *common, "--json"],
                "diff -o (one pass, + both analyses)": ["diff", *model, "--against", b, *common, "-o",
                                              os.path.join(tmp, "d.cnnvis")],
            }
            runs = {name: [] for name in cands}
            names = list(cands)
            for r in range(args.repeat):
                for name in names[r % len(names):] + names[:r % len(names)]:  # rotated: no fixed neighbour
                    wall, cpu, rss = _run(cands[name], args.threads, tmp)
                    runs[name].append((wall, cpu, rss))
                    print(f"  {n} images, {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MB",
                          file=sys.stderr, flush=True)
            best = {name: (min(w for w, _, _ in v), min(c for _, c, _ in v), max(m for _, _, m in v))
                    for name, v in runs.items()}
            base = best[names[0]]
            for name in names:
                wall, cpu, rss = best[name]
                rows.append((n, name, wall, wall / base[0], cpu, cpu / base[1], rss))
    repeat = f" --repeat {args.repeat}" if args.repeat > 1 else ""
    print(f"\nResNet-50 (tests/resnets.py, random weights), {args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} threads; `python3 benchmarks/diff.py --images {args.images} --size {args.size}{repeat}`"
          f"{' (fastest of ' + str(args.repeat) + ' runs each)' if args.repeat > 1 else ''}\n")
    from _bench import measured  # benchmarks/ is on sys.path when run as a script

    print(f"{measured()}; load average at the end {os.getloadavg()[0]:.2f}\n")
    print("| images | command | wall s | x analyze | CPU s | x analyze (CPU) | peak RSS MB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n, name, wall, ratio, cpu, cpu_ratio, rss in rows:
        print(f"| {n} | {name} | {wall:.1f} | {ratio:.2f} | {cpu:.1f} | {cpu_ratio:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()

"""What does `cnnvis diff` cost next to `cnnvis analyze`? Two ResNet-50 checkpoints (tests/resnets.py, the
parameter shapes of torchvision's, random weights from two seeds, 10 classes) on N smooth random RGB images
at 224x224, each command a whole process of its own (wall time and that process's peak RSS), side by side,
for two image counts (flat peak RSS: memory does not grow with the images).

    python3 benchmarks/diff.py                        # 32 and 64 images, batch 16, 2 threads
    python3 benchmarks/diff.py --images 8,16 --size 112  # quicker

Candidates: `analyze` (one model: forward + backward, statistics, crops), `diff --json` (both models, one
forward-only pass: CKA of every layer pair, correlations of every weighted layer's channels, matching),
`diff -o` (that plus an analysis of each model, for the viewer). Target (issue 18): diff <= 2.5x analyse.
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
          "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")


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


def _run(argv: list[str], threads: int) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
               OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    rss = [int(l.split()[1]) for l in r.stderr.splitlines() if l.startswith("RSS ")][-1]
    return wall, rss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="32,64", help="image counts, comma-separated (default 32,64)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
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
                "diff -o (+ both analyses)": ["diff", *model, "--against", b, *common, "-o",
                                              os.path.join(tmp, "d.cnnvis")],
            }
            base = None
            for name, argv in cands.items():
                wall, rss = _run(argv, args.threads)
                base = base or wall
                rows.append((n, name, wall, wall / base, rss))
                print(f"  {n} images, {name}: {wall:.1f} s, {rss:.0f} MB", file=sys.stderr, flush=True)
    print(f"\nResNet-50 (tests/resnets.py, random weights), {args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} threads; `python3 benchmarks/diff.py --images {args.images} --size {args.size}`\n")
    print("| images | command | wall s | x analyze | peak RSS MB |")
    print("|---:|---|---:|---:|---:|")
    for n, name, wall, ratio, rss in rows:
        print(f"| {n} | {name} | {wall:.1f} | {ratio:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()

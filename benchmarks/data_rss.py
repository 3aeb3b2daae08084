"""Check: peak memory of a pass over streamed data does not grow with the data set (issue 9, item 3).

    python3 benchmarks/data_rss.py [--sizes 1000 10000] [--side 64] [--workers 2] [--batch-size 64]

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/data_rss.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

For each kind of data (a folder of JPEGs, an uncompressed .npz, a plain IDX file), written at both sizes in
a temporary folder, one fresh subprocess per (kind, size) opens it as `cnnvis analyze` does
(`open_dataset`), reads every batch through `ds.batches(..., workers=N)` (reducing it, so every pixel is
decoded), and reads 9 random images with `ds.get` (what learned-feature crops do); it reports its peak RSS
(ru_maxrss of the process) and that of its largest DataLoader worker. The in-memory loader
(`load_dataset`) is measured side by side for contrast. Exit status 1 when a streamed kind's peak at the
largest size exceeds its peak at the smallest by 10% or more.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


KINDS = ("folder", "npz", "idx")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="numbers of images (default 1000 10000)")
    p.add_argument("--side", type=int, default=64, help="image side in pixels (default 64; RGB, grey for IDX)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--child", nargs=3, metavar=("LOADER", "PATH", "WORKERS"), help=argparse.SUPPRESS)
    return p.parse_args()


def child(loader: str, path: str, workers: int, batch_size: int) -> None:
    import numpy as np

    from cnnvis.data import load_dataset, open_dataset

    t = time.perf_counter()
    ds = open_dataset(path) if loader == "streamed" else load_dataset(path)
    total, n = 0.0, 0
    for idx, images, labels in ds.batches(batch_size, workers=workers):
        total += float(images.double().sum())
        n += len(idx)
    crops = ds.get(np.random.default_rng(0).choice(len(ds), 9, replace=False))
    assert n == len(ds) and crops.shape[0] == 9
    print(json.dumps({"n": n, "seconds": time.perf_counter() - t, "checksum": total,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def write_data(root: Path, n: int, side: int, rng) -> dict:
    import numpy as np
    from PIL import Image

    out = {}
    labels = (np.arange(n) % 10).astype(np.uint8)
    rgb = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    folder = root / f"folder{n}"
    for k in range(10):
        (folder / f"class{k}").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rgb[i]).save(folder / f"class{labels[i]}" / f"{i:06d}.jpg", quality=90)
    out["folder"] = folder
    np.savez(root / f"data{n}.npz", images=rgb, labels=labels)
    out["npz"] = root / f"data{n}.npz"
    idx = root / f"idx{n}"
    idx.mkdir()
    for name, arr in ((f"train-images-idx3-ubyte", rgb[..., 0]), ("train-labels-idx1-ubyte", labels)):
        head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
        (idx / name).write_bytes(head + arr.tobytes())
    out["idx"] = idx
    return out


def measure(loader: str, path: Path, workers: int, batch_size: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--batch-size", str(batch_size),
           "--child", loader, str(path), str(workers)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"child failed: {shlex.join(cmd)}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    args = parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.batch_size)
        return 0
    import numpy as np

    rng = np.random.default_rng(0)
    lo, hi = min(args.sizes), max(args.sizes)
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="cnnvis-rss-") as tmp:
        data = {n: write_data(Path(tmp), n, args.side, rng) for n in sorted(set(args.sizes))}
        for kind in KINDS:
            for loader in ("streamed", "in-memory"):
                workers = args.workers if loader == "streamed" else 0
                res = {n: measure(loader, data[n][kind], workers, args.batch_size) for n in (lo, hi)}
                ratio = res[hi]["rss_mb"] / res[lo]["rss_mb"]
                wratio = (res[hi]["worker_rss_mb"] / res[lo]["worker_rss_mb"]) if res[lo]["worker_rss_mb"] else None
                if loader == "in-memory":  # both loaders saw the same pixels
                    for n in (lo, hi):
                        a, b = res[n]["checksum"], rows[-1][3 if n == lo else 4]["checksum"]
                        if abs(a - b) > 1e-6 * abs(a):
                            raise SystemExit(f"{kind} @{n}: streamed sum {b} != in-memory sum {a}")
                ok = ratio < 1.10 and (wratio is None or wratio < 1.10)
                if loader == "streamed" and not ok:
                    failed.append(kind)
                rows.append((kind, loader, workers, res[lo], res[hi], ratio, wratio, ok))
    print(f"\nPeak RSS of one pass over {lo} vs {hi} images of {args.side}x{args.side}, batch {args.batch_size} "
          f"(`{shlex.join(['python3', 'benchmarks/data_rss.py'] + sys.argv[1:])}`)\n")
    print(f"| data | loader | workers | main MB @{lo} | main MB @{hi} | ratio | worker MB @{lo} | "
          f"worker MB @{hi} | ratio | s @{hi} | < 1.10 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, loader, workers, a, b, ratio, wratio, ok in rows:
        w = (f"{a['worker_rss_mb']:.0f} | {b['worker_rss_mb']:.0f} | {wratio:.3f}" if wratio is not None
             else "- | - | -")
        print(f"| {kind} | {loader} | {workers} | {a['rss_mb']:.0f} | {b['rss_mb']:.0f} | {ratio:.3f} | {w} | "
              f"{b['seconds']:.1f} | {'yes' if ok else 'no'} |")
    if failed:
        print(f"\nFAIL: streamed peak RSS grows with the data set for {', '.join(failed)}")
        return 1
    print("\nOK: streamed peak RSS stays within 10% from the smallest to the largest data set")
    return 0


if __name__ == "__main__":
    sys.exit(main())

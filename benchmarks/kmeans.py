"""k-means: cnnvis.compute.kmeans against scikit-learn's KMeans, side by side in one run.

Question: at the same restarts and threads, how much faster is the core's k-means, and is its inertia
as good (issue 3: no worse than scikit-learn's by more than 1%)?

    python benchmarks/kmeans.py [--threads 2] [--repeat 3] [--quick] [--cuda]

Prints a markdown table (best of --repeat runs after a warm-up) and the exact command.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--cuda", action="store_true", help="also time the CUDA path where available")
    return p.parse_args()


ARGS = _parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from cnnvis.compute import cuda_available, cuda_status, kmeans  # noqa: E402

N_INIT = 4


def best(fn, repeat, sync=None):
    fn()
    t_best, out = float("inf"), None
    for _ in range(repeat):
        if sync:
            sync()
        t = time.perf_counter()
        out = fn()
        if sync:
            sync()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, out


def main():
    command = " ".join(["python", *map(shlex.quote, sys.argv)])
    cases = [(20000, 8, 10), (5000, 64, 32)] if ARGS.quick else [(200000, 16, 16), (50000, 128, 64)]
    rows = []
    for n, d, k in cases:
        x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=3.0, random_state=0)
        x = x.astype(np.float32)
        with threadpool_limits(ARGS.threads):
            t_sk, ref = best(lambda: KMeans(k, n_init=N_INIT, random_state=0).fit(x), ARGS.repeat)
        t_ours, res = best(lambda: kmeans(x, k, n_init=N_INIT, random_state=0), ARGS.repeat)
        rows.append((f"{n}x{d}, k={k}", "scikit-learn KMeans", t_sk, 1.0, ref.inertia_))
        rows.append((f"{n}x{d}, k={k}", "cnnvis kmeans (CPU)", t_ours, t_sk / t_ours, res.inertia))
        if ARGS.cuda and cuda_available():
            import torch

            xg = torch.as_tensor(x, device="cuda")
            t_g, rg = best(lambda: kmeans(xg, k, n_init=N_INIT, random_state=0), ARGS.repeat,
                           sync=torch.cuda.synchronize)
            rows.append((f"{n}x{d}, k={k}", "cnnvis kmeans (CUDA)", t_g, t_sk / t_g, rg.inertia))
    print(f"threads: {ARGS.threads}; float32 blobs; n_init={N_INIT} for every candidate")
    if ARGS.cuda and not cuda_available():
        print(f"(CUDA not timed: {cuda_status()})")
    print("| data | candidate | time (ms) | speed-up | inertia | inertia / scikit-learn's |")
    print("|---|---|---:|---:|---:|---:|")
    ref_inertia = {}
    for data, name, t, ratio, inertia in rows:
        ref_inertia.setdefault(data, inertia)
        print(f"| {data} | {name} | {t * 1e3:.1f} | {ratio:.1f}x | {inertia:.6g} | {inertia / ref_inertia[data]:.4f} |")
    print()
    print(f"command: `{command}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

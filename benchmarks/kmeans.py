"""k-means: cnnvis.compute.kmeans against scikit-learn's KMeans, side by side in one run.

Question: at the same restarts and threads, how much faster is the core's k-means, and is its inertia
as good (issue 3: no worse than scikit-learn's by more than 1%)?

    python benchmarks/kmeans.py [--threads 2] [--repeat 3] [--quick] [--cuda]

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/kmeans.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

Prints a markdown table (best of --repeat runs after a warm-up) and the exact command.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from _bench import best_time, pin_threads  # benchmarks/ is on sys.path when run as a script


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--cuda", action="store_true", help="also time the CUDA path where available")
    return p.parse_args()


ARGS = _parse()
pin_threads(ARGS.threads)  # before numpy, scikit-learn or the core load their thread pools

import numpy as np  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from cnnvis.compute import cuda_available, cuda_status, kmeans  # noqa: E402

N_INIT = 4
QUALITY_SEEDS = 8  # one seed compares two random draws; the mean over seeds compares the algorithms


def main():
    command = " ".join(["python", *map(shlex.quote, sys.argv)])
    cases = [(20000, 8, 10), (5000, 64, 32)] if ARGS.quick else [(200000, 16, 16), (50000, 128, 64)]
    rows, quality = [], []
    for n, d, k in cases:
        x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=3.0, random_state=0)
        x = x.astype(np.float32)
        with threadpool_limits(ARGS.threads):
            t_sk, ref = best_time(lambda: KMeans(k, n_init=N_INIT, random_state=0).fit(x), ARGS.repeat)
        t_ours, res = best_time(lambda: kmeans(x, k, n_init=N_INIT, random_state=0), ARGS.repeat)
        rows.append((f"{n}x{d}, k={k}", "scikit-learn KMeans", t_sk, 1.0, ref.inertia_))
        rows.append((f"{n}x{d}, k={k}", "cnnvis kmeans (CPU)", t_ours, t_sk / t_ours, res.inertia))
        if ARGS.cuda and cuda_available():
            import torch

            xg = torch.as_tensor(x, device="cuda")
            t_g, rg = best_time(lambda: kmeans(xg, k, n_init=N_INIT, random_state=0), ARGS.repeat,
                           sync=torch.cuda.synchronize)
            rows.append((f"{n}x{d}, k={k}", "cnnvis kmeans (CUDA)", t_g, t_sk / t_g, rg.inertia))
        with threadpool_limits(ARGS.threads):
            sk = [KMeans(k, n_init=N_INIT, random_state=s).fit(x).inertia_ for s in range(QUALITY_SEEDS)]
        ours = [kmeans(x, k, n_init=N_INIT, random_state=s).inertia for s in range(QUALITY_SEEDS)]
        quality.append((f"{n}x{d}, k={k}", np.mean(sk), np.mean(ours), min(sk), min(ours)))
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
    print(f"Inertia over random_state 0..{QUALITY_SEEDS - 1} (n_init={N_INIT} each):")
    print("| data | scikit-learn mean | cnnvis mean | mean ratio | best ratio |")
    print("|---|---:|---:|---:|---:|")
    for data, sk_mean, our_mean, sk_best, our_best in quality:
        print(f"| {data} | {sk_mean:.6g} | {our_mean:.6g} | {our_mean / sk_mean:.4f} | {our_best / sk_best:.4f} |")
    print()
    print(f"command: `{command}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

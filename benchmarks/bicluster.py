"""Spectral co-/biclustering: cnnvis's core against scikit-learn, side by side in one run.

Question: how much faster than scikit-learn are cnnvis.bicluster.spectral_cocluster / spectral_bicluster
on planted float32 data with 10 clusters, at equal or better consensus score (issue 3 targets: >= 10x
SpectralCoclustering(svd_method="randomized"), >= 30x SpectralBiclustering() defaults on 2 CPU threads;
<= 25 ms for a 16384 x 16384 co-clustering on the GPU)?

    python benchmarks/bicluster.py [--quick] [--threads 2] [--repeat 3]
    python benchmarks/bicluster.py --cuda

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/bicluster.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

Prints a markdown table and the exact command. Times are the best of --repeat runs after a warm-up (the
best of several resists load from other processes on shared cores); scikit-learn's co-clustering is timed
twice and its biclustering, which takes seconds, once.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from _bench import best_time, pin_threads  # benchmarks/ is on sys.path when run as a script


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes for CI (seconds)")
    p.add_argument("--cuda", action="store_true", help="time the GPU path (16384 x 16384 co-clustering)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every candidate (default 2)")
    p.add_argument("--repeat", type=int, default=5,
                   help="timed runs of cnnvis (default 5; scikit-learn: 2 for co-clustering, 1 for biclustering)")
    p.add_argument("--clusters", type=int, default=10)
    return p.parse_args()


ARGS = _parse()
pin_threads(ARGS.threads)  # before numpy, scikit-learn or the core load their thread pools

import numpy as np  # noqa: E402
from sklearn.cluster import SpectralBiclustering, SpectralCoclustering  # noqa: E402
from sklearn.datasets import make_biclusters, make_checkerboard  # noqa: E402
from sklearn.metrics import consensus_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from cnnvis.bicluster import spectral_bicluster, spectral_cocluster  # noqa: E402
from cnnvis.compute import cuda_available, cuda_status  # noqa: E402

NOISE_CO = 1.0
NOISE_BI = 10.0


def cocluster_sets(rows, cols, k):
    return np.vstack([rows == c for c in range(k)]), np.vstack([cols == c for c in range(k)])


def checkerboard_sets(rows, cols, k):
    return (np.vstack([rows == a for a in range(k) for _ in range(k)]),
            np.vstack([cols == b for _ in range(k) for b in range(k)]))


def _cpu_case(task, data, ours, sk_name, sk_fit, sk_repeat, sets, ours_name, target, factor, repeat):
    """Rows (scikit-learn, cnnvis) for one task on planted data (x, rows, cols)."""
    x, tr, tc = data
    x = np.ascontiguousarray(x, dtype=np.float32)  # C order, as torch activations / weights
    t_ours, (r, c) = best_time(lambda: ours(x), repeat)
    s_ours = consensus_score(sets(r, c), (tr, tc))
    with threadpool_limits(ARGS.threads):
        t_sk, est = best_time(lambda: sk_fit(x), sk_repeat, warmup=False)
    s_sk = consensus_score(est.biclusters_, (tr, tc))
    ratio = t_sk / t_ours
    return [(task, x.shape, sk_name, t_sk, 1.0, s_sk, "", ""),
            (task, x.shape, ours_name, t_ours, ratio, s_ours, f">= {factor}x",
             _met(ratio >= factor and s_ours >= s_sk - EQUAL))]


def cpu_rows(shape, k, repeat):
    co = _cpu_case("co-clustering", make_biclusters(shape, k, noise=NOISE_CO, random_state=0),
                   lambda x: spectral_cocluster(x, k, random_state=0),
                   "scikit-learn SpectralCoclustering(randomized)",
                   lambda x: SpectralCoclustering(k, svd_method="randomized", random_state=0).fit(x), 2,
                   lambda r, c: cocluster_sets(r, c, k), "cnnvis spectral_cocluster (CPU)", 10, repeat)
    bi = _cpu_case("biclustering", make_checkerboard(shape, k, noise=NOISE_BI, random_state=0),
                   lambda x: spectral_bicluster(x, k, random_state=0), "scikit-learn SpectralBiclustering()",
                   lambda x: SpectralBiclustering(k, random_state=0).fit(x), 1,
                   lambda r, c: checkerboard_sets(r, c, k), "cnnvis spectral_bicluster (CPU)", 30, repeat)
    return co + bi


# "Equal" consensus: within this of scikit-learn's (both are printed).
EQUAL = 0.005


def _met(ok):
    return "yes" if ok else "NO"


def planted_gpu(n, k, noise, seed=0):
    """A block-diagonal planted matrix generated on the GPU (no 1 GB host copy): (matrix, rows, cols)."""
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    rows = torch.randint(k, (n,), device="cuda", generator=g)
    cols = torch.randint(k, (n,), device="cuda", generator=g)
    level = 10 + 90 * torch.rand(k, device="cuda", generator=g)
    x = (rows[:, None] == cols[None, :]).float() * level[rows][:, None]
    x += noise * torch.randn(n, n, device="cuda", generator=g)
    return x, rows.cpu().numpy(), cols.cpu().numpy()


def cuda_rows(k, repeat):
    import torch

    rows = []
    n = 16384
    x, tr, tc = planted_gpu(n, k, NOISE_CO)
    truth = (np.vstack([tr == c for c in range(k)]), np.vstack([tc == c for c in range(k)]))
    sync = torch.cuda.synchronize
    t_gpu, (r, c) = best_time(lambda: spectral_cocluster(x, k, random_state=0), max(repeat, 5), sync=sync)
    s_gpu = consensus_score(cocluster_sets(r, c, k), truth)
    rows.append(("co-clustering", (n, n), "cnnvis spectral_cocluster (CUDA)", t_gpu, None, s_gpu, "<= 25 ms",
                 _met(t_gpu <= 0.025)))
    t_bi, (r, c) = best_time(lambda: spectral_bicluster(x, k, random_state=0), repeat, sync=sync)
    rows.append(("biclustering", (n, n), "cnnvis spectral_bicluster (CUDA)", t_bi, None, float("nan"), "", ""))
    # The same data on the CPU cores of this machine (the result the GPU must match).
    m = 4096
    xs, sr, sc = planted_gpu(m, k, NOISE_CO, seed=1)
    truth = (np.vstack([sr == c for c in range(k)]), np.vstack([sc == c for c in range(k)]))
    t_g, (rg, cg) = best_time(lambda: spectral_cocluster(xs, k, random_state=0), repeat, sync=sync)
    host = xs.cpu().numpy()
    t_c, (rc, cc) = best_time(lambda: spectral_cocluster(host, k, random_state=0), 1)
    rows.append(("co-clustering", (m, m), "cnnvis spectral_cocluster (CPU)", t_c, 1.0,
                 consensus_score(cocluster_sets(rc, cc, k), truth), "", ""))
    rows.append(("co-clustering", (m, m), "cnnvis spectral_cocluster (CUDA)", t_g, t_c / t_g,
                 consensus_score(cocluster_sets(rg, cg, k), truth), "", ""))
    return rows


def print_table(rows, command):
    print("| task | shape | candidate | time (ms) | speed-up | consensus | target | met |")
    print("|---|---|---|---:|---:|---:|---|---|")
    for task, shape, name, t, ratio, score, target, met in rows:
        sp = "" if ratio is None else f"{ratio:.1f}x"
        sc = "" if score != score else f"{score:.3f}"
        print(f"| {task} | {shape[0]}x{shape[1]} | {name} | {t * 1e3:.1f} | {sp} | {sc} | {target} | {met} |")
    print()
    print(f"command: `{command}`")


def main():
    command = " ".join(["python", *map(shlex.quote, sys.argv)])
    if ARGS.cuda:
        if not cuda_available():
            print(f"bicluster --cuda: skipped, {cuda_status()}")
            return 0
        print_table(cuda_rows(ARGS.clusters, ARGS.repeat), command)
        return 0
    shapes = [(8000, 256), (1024, 1024)] if ARGS.quick else [(50000, 512), (4096, 4096)]
    rows = []
    for shape in shapes:
        rows += cpu_rows(shape, ARGS.clusters, ARGS.repeat)
    print(f"threads: {ARGS.threads} (OMP_NUM_THREADS and scikit-learn's thread pools); float32; "
          f"{ARGS.clusters} planted clusters; noise {NOISE_CO} (make_biclusters), {NOISE_BI} (make_checkerboard); "
          f"C-contiguous input; met = speed-up at target and consensus >= scikit-learn's - {EQUAL}")
    print_table(rows, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())

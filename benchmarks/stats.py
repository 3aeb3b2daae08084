"""Benchmark: the fused per-class statistics kernel against the straightforward torch version and against
the memory limit (one plain full reduction over the same bytes), side by side in one run, same threads.

    python3 benchmarks/stats.py [--threads 2] [--repeats 15] [--classes 10] [--cuda]

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/stats.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

Candidates per shape (K = --classes classes, random labels):
  call        cnnvis.stats.class_statistics: the public call (validation, views, the kernel, the result)
  kernel      the kernel alone: _core.ClassMoments(K, C).update_cpu on the (N, C, S) view, then take_result
  torch       a spatial mean pass and a spatial amax pass, then squares, > 0 and index_add_ on (N, C)
  torch+argmax  the same with max/argmax (what a pipeline that also wants the position would run)
  sum         tensor.sum(): one plain read of the same bytes, the memory-bound limit
Times are medians of --repeats rounds after a warm-up, the candidates interleaved in each round, with
the CPU caches evicted before every call (all candidates read x from memory; the call's Python code is
evicted too, which costs it 0.2-0.4 ms on a 2-core Zen 3). "kernel/sum per round" is the median of the
ratios within a round (kernel and sum run back to back), steadier than the ratio of the medians on a
machine that others load. The torch versions run in rounds of their own: the (4096, 4096) ones take
0.3-0.5 s, after which the next call ran up to 1.2x slower.
"compute floor" is the kernel on a view whose images all alias image 0 (stride 0 over N): the same work
with x in the caches, so what the kernel costs when memory is free. Where the floor comes near the plain
read, the kernel is bound by its arithmetic, not by memory.
--cuda times the CUDA kernel against a device-to-device copy of the same bytes instead.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="OpenMP and torch threads (default 2)")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds per candidate (default 15)")
    p.add_argument("--classes", type=int, default=10, help="K, the number of classes (default 10)")
    p.add_argument("--cuda", action="store_true", help="time the CUDA kernel against a D2D copy")
    return p.parse_args()


ARGS = parse_args()
# Before torch and cnnvis load their OpenMP runtimes, so both use the same thread count.
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cnnvis import _core  # noqa: E402
from cnnvis.compute import cuda_available, cuda_status  # noqa: E402
from cnnvis.stats import class_statistics  # noqa: E402

warnings.filterwarnings("ignore", message="index_reduce")
K = ARGS.classes
CPU_SHAPES = [(256, 256, 28, 28), (256, 512, 7, 7), (4096, 4096)]
CUDA_SHAPES = [(2048, 256, 28, 28), (2048, 512, 14, 14), (65536, 4096)]


def torch_stats(x, labels, n_classes, argmax=False):
    """The straightforward version: two passes over x, then cheap work on the (N, C) results."""
    rows = x.flatten(2) if x.dim() > 2 else x.unsqueeze(2)
    r = rows.mean(dim=2)
    m = rows.max(dim=2).values if argmax else rows.amax(dim=2)
    r64, m64 = r.double(), m.double()
    c = x.shape[1]
    zeros = lambda: torch.zeros(n_classes, c, dtype=torch.float64, device=x.device)  # noqa: E731
    count = torch.zeros(n_classes, dtype=torch.float64, device=x.device).index_add_(
        0, labels, torch.ones_like(labels, dtype=torch.float64))
    s1 = zeros().index_add_(0, labels, r64)
    s2 = zeros().index_add_(0, labels, r64 * r64)
    act = zeros().index_add_(0, labels, (m64 > 0).double())
    mx = torch.full((n_classes, c), -float("inf"), dtype=torch.float64, device=x.device)
    mx.index_reduce_(0, labels, m64, "amax")  # a beta API; its warning is filtered above
    n = count[:, None]
    mean = s1 / n
    return count, mean, (s2 / n - mean * mean).clamp_min(0).sqrt(), mx, act / n


def check_agree(fused, reference) -> None:
    """The candidates compute the same thing (torch's float32 means differ in the last digits)."""
    for name, ours, theirs in zip(("mean", "std", "max", "active"), fused[1:], reference[1:]):
        np.testing.assert_allclose(ours, theirs.cpu().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def median_ms(fns: dict, repeats: int, sync=lambda: None, before=lambda: None, ratios=()) -> dict:
    """Median wall time (ms) of each candidate, interleaved round by round after one warm-up each;
    `before` runs untimed ahead of every call. Each (a, b) in ratios adds "a/b": the median of the
    per-round ratios."""
    for fn in fns.values():
        fn()
    sync()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            before()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append((time.perf_counter() - t0) * 1e3)
    out = {name: statistics.median(v) for name, v in times.items()}
    for a, b in ratios:
        out[f"{a}/{b}"] = statistics.median(x / y for x, y in zip(times[a], times[b]))
    return out


def evict_caches(scratch=np.ones(64 << 20 >> 3)) -> None:
    """Read 64 MiB (twice the L3 here), so every candidate reads x from memory, not from what the
    previous candidate left in the cache (matters for shapes that fit in L3). Reading, not writing:
    dirty lines would be written back during the next timed call."""
    scratch.sum()


def kernel_call(rows: np.ndarray, labels: np.ndarray):
    """The kernel alone on an (N, C, S) view: the binding's state, one update, the finalised arrays."""
    moments = _core.ClassMoments(K, rows.shape[1])
    moments.update_cpu(rows, labels)
    return moments.take_result()


def cpu_table() -> list[str]:
    torch.set_num_threads(ARGS.threads)
    lines = ["| shape (float32) | MB | call ms | kernel ms | compute floor ms | torch ms | torch+argmax ms | sum ms | "
             "torch/call | call/sum | kernel/sum per round | floor/sum per round | kernel GB/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for shape in CPU_SHAPES:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=g)
        labels = torch.randint(0, K, (shape[0],), generator=g)
        labels_np = labels.numpy()
        rows = x.numpy().reshape(shape[0], shape[1], -1)
        aliased = np.lib.stride_tricks.as_strided(rows, strides=(0,) + rows.strides[1:])  # every image is image 0
        ms = median_ms({
            "call": lambda: class_statistics(x, labels_np, K),
            "floor": lambda: kernel_call(aliased, labels_np),  # image 0 comes from memory, the rest from cache
            "kernel": lambda: kernel_call(rows, labels_np),
            "sum": lambda: x.sum(),
        }, ARGS.repeats, before=evict_caches, ratios=[("kernel", "sum"), ("floor", "sum")])
        ms |= median_ms({
            "torch": lambda: torch_stats(x, labels, K),
            "argmax": lambda: torch_stats(x, labels, K, argmax=True),
        }, ARGS.repeats, before=evict_caches)
        fused = class_statistics(x, labels_np, K)
        check_agree((fused.count, fused.mean, fused.std, fused.max, fused.active), torch_stats(x, labels, K))
        np.testing.assert_array_equal(kernel_call(rows, labels_np)[1], fused.mean)  # the same kernel
        mb = x.numel() * x.element_size() / 1e6
        lines.append(f"| {shape} | {mb:.0f} | {ms['call']:.2f} | {ms['kernel']:.2f} | {ms['floor']:.2f} | "
                     f"{ms['torch']:.2f} | {ms['argmax']:.2f} | {ms['sum']:.2f} | {ms['torch'] / ms['call']:.2f}x | "
                     f"{ms['call'] / ms['sum']:.2f}x | {ms['kernel/sum']:.2f}x | {ms['floor/sum']:.2f}x | "
                     f"{mb / ms['kernel']:.1f} |")
        del x, rows, aliased
    return lines


def cuda_table() -> list[str]:
    dev = torch.device("cuda")
    lines = ["| shape (float32) | MB | fused ms | D2D copy ms | torch ms | fused GB/s (read) | "
             "copy GB/s (read+write) | fused / copy bandwidth | torch/fused |", "|---|---|---|---|---|---|---|---|---|"]
    for shape in CUDA_SHAPES:
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.randn(shape, generator=g, device=dev)
        labels = torch.randint(0, K, (shape[0],), generator=g, device=dev)
        labels_np = labels.cpu().numpy()  # the kernel groups images by class on the host
        ms = median_ms({
            "fused": lambda: class_statistics(x, labels_np, K),
            "copy": lambda: x.clone(),
            "torch": lambda: torch_stats(x, labels, K),
        }, max(ARGS.repeats, 20), sync=torch.cuda.synchronize)
        fused = class_statistics(x, labels_np, K)
        check_agree((fused.count, fused.mean, fused.std, fused.max, fused.active), torch_stats(x, labels, K))
        nbytes = x.numel() * x.element_size()
        fused_bw = nbytes / ms["fused"] / 1e6
        copy_bw = 2 * nbytes / ms["copy"] / 1e6
        lines.append(f"| {shape} | {nbytes / 1e6:.0f} | {ms['fused']:.3f} | {ms['copy']:.3f} | {ms['torch']:.3f} | "
                     f"{fused_bw:.0f} | {copy_bw:.0f} | {fused_bw / copy_bw:.0%} | "
                     f"{ms['torch'] / ms['fused']:.2f}x |")
        del x
    return lines


def main() -> int:
    command = " ".join(["OMP_NUM_THREADS=" + str(ARGS.threads), "python3"] + [shlex.quote(a) for a in sys.argv])
    load = os.getloadavg()[0]  # other work on the machine skews the times; say how much there was
    if ARGS.cuda:
        if not cuda_available():
            print(f"--cuda: no usable CUDA device ({cuda_status()}); nothing to time.")
            return 0
        lines = cuda_table()
        setting = f"device: {torch.cuda.get_device_name()}; {cuda_status()}"
    else:
        lines = cpu_table()
        setting = (f"threads: OpenMP {_core.omp_max_threads()}, torch {torch.get_num_threads()}; CPU path "
                   f"{_core.cpu_capability()}; numpy {np.__version__}, torch {torch.__version__}; load average "
                   f"before the run {load:.2f}, after {os.getloadavg()[0]:.2f}, on {os.cpu_count()} cores")
    print(f"Per-class statistics, K={K} classes. Command: `{command}`")
    print(setting)
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

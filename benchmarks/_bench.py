"""Shared by the benchmark scripts: thread pinning before numeric imports, best-of-N timing, and which cnnvis
is measured (benchmarks/ is on sys.path when a script runs; the checkout's cnnvis/ is not)."""
from __future__ import annotations

import os
import time


def pin_threads(n: int) -> None:
    """Fix every thread pool to n before numpy, scikit-learn or the core start theirs."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def measured() -> str:
    """Which cnnvis a table measures: the installed package, or the checkout PYTHONPATH put first."""
    import cnnvis

    return f"cnnvis {cnnvis.__version__} from {os.path.dirname(os.path.abspath(cnnvis.__file__))}"


def best_time(fn, repeat: int, *, warmup: bool = True, sync=None):
    """(best wall time in s, last result) of `repeat` calls after an optional warm-up; the best of several
    resists load from other processes on shared cores. `sync` waits for a device before and after."""
    if warmup:
        fn()
    best, out = float("inf"), None
    for _ in range(repeat):
        if sync:
            sync()
        t = time.perf_counter()
        out = fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t)
    return best, out

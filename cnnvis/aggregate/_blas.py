"""Small matrix products on one BLAS thread.

OpenBLAS splits even a (512 x 512) @ (512 x 8) product over its threads; on a 2-core machine with anything
else running (a window drawing, a worker clustering, the JPEG decoder) the threads wait on each other and the
product took 8 ms instead of 0.25 ms. Aggregation's products are of that size (silhouettes of 512 sampled
neurons, one per candidate k), so it runs them on one thread: ResNet-50's first view aggregated in 0.16 s
instead of 0.8 s (`benchmarks/zoom.py`'s "open" holds it). threadpoolctl comes with scikit-learn.
"""
from __future__ import annotations

from contextlib import contextmanager

__all__ = ["one_blas_thread"]


@contextmanager
def one_blas_thread():
    """BLAS calls in the block run on one thread (process-wide while it lasts, as threadpoolctl works)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield

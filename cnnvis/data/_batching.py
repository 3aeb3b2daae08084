"""Batches of any data set, in order: in this process, or decoded by torch DataLoader workers.

A data set here is anything with `labels` (N,) int64 and `get(indices) -> (n, C, H, W) float32`; `batches`
yields `(index np.int64 (b,), images torch.float32 (b, C, H, W), labels torch.int64 (b,))`.
"""
from __future__ import annotations

import numpy as np
import torch

from cnnvis.errors import CnnvisError, DataError

__all__ = ["iter_batches", "row_index"]


def row_index(indices, n: int, name: str) -> np.ndarray:
    """`indices` as int64 row numbers in [0, n), negative ones counted from the end as numpy does."""
    idx = np.asarray(indices)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise DataError(f"{name}: image indices must be a 1-d integer array, got {idx.dtype} of shape {idx.shape}")
    idx = idx.astype(np.int64, copy=False)
    bad = (idx < -n) | (idx >= n)
    if bad.any():
        raise DataError(f"{name}: image index {int(idx[np.flatnonzero(bad)[0]])} is outside [0, {n})")
    return np.where(idx < 0, idx + n, idx)


def iter_batches(ds, batch_size: int, *, indices=None, workers: int = 0):
    if batch_size < 1:
        raise DataError(f"batch size must be >= 1, got {batch_size}")
    if workers < 0:
        raise DataError(f"--workers must be >= 0, got {workers}")
    rows = np.arange(len(ds), dtype=np.int64) if indices is None else row_index(indices, len(ds), ds.name)
    chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    if workers == 0 or len(chunks) <= 1:
        for c in chunks:
            yield c, torch.from_numpy(ds.get(c)), torch.from_numpy(ds.labels[c])
            _release_free_heap()
        return
    # batch_size=None: the sampler hands each worker a whole chunk, so a batch is decoded by one worker and
    # at most workers * prefetch_factor batches are in flight; DataLoader keeps them in sampler order.
    loader = torch.utils.data.DataLoader(_Chunks(ds), batch_size=None, sampler=chunks, num_workers=workers,
                                         worker_init_fn=_one_thread)
    for c, (images, error) in zip(chunks, loader):
        if error is not None:  # raised here, not in the worker: one line, not a worker traceback
            raise DataError(error)
        yield c, images, torch.from_numpy(ds.labels[c])
        _release_free_heap()


def _release_free_heap(_libc=[]):
    """Hand the free pages inside glibc's heap back to the system. Each batch frees the consumer's large
    temporaries while new small objects land between them; measured (benchmarks/data_rss.py) without this,
    the resident heap of a pass over 10,000 images grew 250 -> 900 MB with workers, and by chance."""
    if not _libc:
        import ctypes

        try:  # the process's own symbols: no library search (which would start a subprocess)
            _libc.append(ctypes.CDLL(None).malloc_trim)
        except (OSError, AttributeError):  # not glibc: nothing to do
            _libc.append(None)
    if _libc[0] is not None:
        _libc[0](0)


class _Chunks(torch.utils.data.Dataset):
    def __init__(self, ds):
        self.ds = ds

    def __getitem__(self, rows):
        try:
            return torch.from_numpy(self.ds.get(rows)), None
        except CnnvisError as exc:
            return torch.empty(0), str(exc)

    def __len__(self):
        return len(self.ds)


def _one_thread(_worker_id):
    torch.set_num_threads(1)  # the workers decode in parallel already; more threads only oversubscribe

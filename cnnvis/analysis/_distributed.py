"""Distributed analysis on torch.distributed (gloo on CPU, nccl on GPU): each rank runs the pass on its
shard of the data set, rank 0 merges the partial results exactly and cuts the crops.

Shards are DistributedSampler's without shuffling or padding: rank r takes images r, r + W, r + 2W, ...
Merges: per-class moments by Chan's parallel formula (the accumulators' own merge), top-k by score with
ties to the lower image index (what one process gives), importance sums and counts by addition. A rank
that fails sends its message instead of its results; every rank then raises that message, so no rank
waits forever and nothing is written.
"""
from __future__ import annotations

import atexit

import numpy as np
import torch

from cnnvis.compute._stats import merge_states
from cnnvis.errors import CnnvisError

__all__ = ["world", "shard", "gather_to_root", "init_from_env", "merge_partials"]


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env() -> tuple[int, int]:
    """Initialise the default process group from torchrun's environment (WORLD_SIZE > 1): nccl when CUDA
    is usable, gloo otherwise. Returns (rank, world size); (0, 1) outside torchrun."""
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(_leave)
    return world()


def _leave() -> None:
    """Destroy the process group before the interpreter exits: a rank that left with its gloo group alive
    sometimes aborted in the group's threads ("terminate called without an active exception", exit -6),
    failing a torchrun that had written its file."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(n: int, rank: int, size: int) -> np.ndarray:
    return np.arange(rank, n, size, dtype=np.int64)


def gather_to_root(part, error: CnnvisError | None):
    """All ranks: send (part, error) to rank 0. Rank 0 gets the list of parts; every rank raises the first
    failed rank's error (same class, message prefixed with its rank) if any rank failed."""
    import torch.distributed as dist

    from cnnvis import errors

    rank, size = world()
    statuses = [None] * size
    status = None if error is None else (type(error).__name__, str(error))
    dist.all_gather_object(statuses, status)  # small; tells every rank whether to go on
    failed = [(r, e) for r, e in enumerate(statuses) if e is not None]
    if failed:
        r, (cls, msg) = failed[0]
        cls = getattr(errors, cls, CnnvisError)
        raise (cls if isinstance(cls, type) and issubclass(cls, CnnvisError) else CnnvisError)(f"rank {r}: {msg}")
    parts = [None] * size if rank == 0 else None
    dist.gather_object(part, parts, dst=0)  # our own ranks' numpy arrays: trusted
    return parts


def merge_topk(parts: list, k: int) -> tuple:
    """Top-k (scores, index, pos), each (C, k), of several ranks: by score, ties to the lower image index."""
    scores = np.concatenate([p[0] for p in parts], 1)
    index = np.concatenate([p[1] for p in parts], 1)
    pos = np.concatenate([p[2] for p in parts], 1)
    filled = index >= 0
    big = np.iinfo(np.int64).max
    order = np.lexsort((np.where(filled, index, big), -np.where(filled, scores, -np.inf)), axis=1)[:, :k]
    return (np.take_along_axis(scores, order, 1), np.take_along_axis(index, order, 1),
            np.take_along_axis(pos, order, 1))


def merge_partials(parts: list, k: int) -> dict:
    """One partial result (see _Pass.partial) from every rank's."""
    out = dict(correct=sum(p["correct"] for p in parts), n_selected=sum(p["n_selected"] for p in parts),
               layers=[])
    for per_rank in zip(*(p["layers"] for p in parts)):
        moments = per_rank[0]["moments"]
        for q in per_rank[1:]:
            moments = merge_states(moments, q["moments"])
        out["layers"].append(dict(
            moments=moments, top=merge_topk([q["top"] for q in per_rank], k),
            imp_sum=sum(q["imp_sum"] for q in per_rank),
            imp_max=np.max([q["imp_max"] for q in per_rank], 0),
            contrib_sum=sum(q["contrib_sum"] for q in per_rank)))
    return out

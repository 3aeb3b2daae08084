"""`cnnvis diff`: what changed between two checkpoints or two models, neuron by neuron.

    cnnvis diff --model M --weights A.pt --against B.pt --data D [-o OUT.cnnvis] [--json]
    cnnvis diff --model M --weights A.pt --against-model M2 [--against-model-kwargs ...] --against-weights W ...
    cnnvis diff --demo [--demo-snapshots 1 -1]     # the demo's snapshot after epoch 1 against its last

Without -o and --json it prints one line per weighted layer (one forward-only pass of both models over the
data). -o writes a .cnnvis file of A holding the diff and B's analysis (cnnvis.diff._file; `cnnvis-gl` shows
it): the analyses are made in the diff's own pass (`compare(..., analyses=True)`: per batch A's and B's
analysis passes, forward and backward, the diff observing their layer outputs), not in passes of their own.
Either way a second, forward-only pass follows only for layer pairs that CKA matched and names did not.
Bad input: one line, exit 2 (cnnvis.errors.guard), nothing written.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnnvis.app._data_options import (add_data_options, add_model_options, dataset_from_args, model_from_args,
                                      workers_from_args)
from cnnvis.app.demo import DEMO_DEFAULT
from cnnvis.errors import DataError, ModelError

__all__ = ["parser", "execute", "run"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cnnvis diff", description="Compare two checkpoints or two models neuron by neuron: layers matched "
        "by minibatch CKA, neurons by activation correlation (Hungarian), each neuron stable, drifted or unmatched.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", action="store_true",
                     help="compare two training snapshots of the demo model on scikit-learn's digits")
    add_model_options(p, src)
    p.add_argument("--against", "--against-weights", dest="against", metavar="CKPT.pt",
                   help="model B's weights (B is --model again unless --against-model names another)")
    p.add_argument("--against-model", metavar="PKG.MODULE:FACTORY", help="model B's factory (default: --model)")
    p.add_argument("--against-model-kwargs", nargs="+", default=None, metavar="KEY=VALUE",
                   help="keyword arguments for --against-model (default: --model-kwargs when B is --model)")
    p.add_argument("--demo-model", default=DEMO_DEFAULT, help=f"demo architecture (default {DEMO_DEFAULT})")
    p.add_argument("--epochs", type=int, default=6, help="demo training epochs (default 6)")
    p.add_argument("--demo-snapshots", nargs=2, type=int, default=(1, -1), metavar=("A", "B"),
                   help="which demo snapshots to compare (default 1 -1: after the first epoch, the last; "
                        "0 is the initialisation)")
    add_data_options(p)
    p.add_argument("-o", "--output", metavar="OUT.cnnvis",
                   help="write A's analysis with the diff and B's analysis (for cnnvis-gl)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--batch-size", type=int, default=64,
                   help="images per batch (default 64; >= 4: each batch gives one unbiased HSIC estimate)")
    p.add_argument("--threshold", type=float, default=None,
                   help="correlation beyond chance, (r - chance) / (1 - chance), from which a matched neuron is "
                        "stable (default 0.8; chance: what B's other neurons reach)")
    p.add_argument("--limit", type=int, help="use only the first N images")
    p.add_argument("--top-k", type=int, default=9, help="with -o: learned-feature patches per neuron (default 9)")
    p.add_argument("--patch-size", type=int, default=64, help="with -o: largest stored patch side (default 64)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                   help="where the models run (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def run(argv: list[str]) -> int:
    return execute(parser().parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    out = _check_output(args.output)
    _check_args(args)
    import numpy as np

    from cnnvis.analysis._distributed import init_from_env
    from cnnvis.diff import STABLE_THRESHOLD, compare

    rank, world_size = init_from_env()  # under torchrun: one shard per rank, rank 0 reports
    show = not args.no_progress and rank == 0
    data, model_a, model_b, meta, workers = _inputs(args, show)
    if args.limit:
        data = data.subset(np.arange(min(args.limit, len(data))))
    threshold = STABLE_THRESHOLD if args.threshold is None else args.threshold
    result = compare(model_a, model_b, data, batch_size=args.batch_size, device=args.device, workers=workers,
                     threshold=threshold, show_progress=show, meta=meta, analyses=out is not None,
                     top_k=args.top_k, max_patch=args.patch_size)
    if result is None:  # another rank's shard, merged on rank 0
        return 0
    diff = result if out is None else result[0]
    if out is not None:
        from cnnvis.diff import save_diff

        save_diff(out, *result)
        _say(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): A's analysis, B's, and the diff", True)
    if args.json:
        print(json.dumps(diff.to_dict(), allow_nan=False))
    elif out is None:
        print(diff.format_text())
    return 0


def _check_output(path) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if str(out.parent) and not out.parent.is_dir():
        raise DataError(f"{out}: output folder {out.parent} does not exist")
    if out.is_dir():
        raise DataError(f"{out}: is a folder; give a file name such as {out / 'diff.cnnvis'}")
    return out


def _check_args(args) -> None:
    if args.limit is not None and args.limit < 1:
        raise DataError(f"--limit must be >= 1, got {args.limit}")
    if args.batch_size < 4:
        raise DataError(f"--batch-size must be >= 4 (unbiased HSIC needs 4 images a batch), got {args.batch_size}")
    if args.threshold is not None and not 0 < args.threshold <= 1:
        raise DataError(f"--threshold must be in (0, 1], got {args.threshold}")
    if args.epochs < 1:
        raise DataError(f"--epochs must be >= 1, got {args.epochs}")
    if args.top_k < 1 or args.patch_size < 1:
        raise DataError(f"--top-k and --patch-size must be >= 1, got {args.top_k} and {args.patch_size}")
    if args.demo:
        if args.weights or args.against or args.against_model or args.data:
            raise DataError("--demo brings its own models, weights and data; drop --weights/--against/"
                            "--against-model/--data or use --model")
    elif not args.against:
        raise ModelError("--against CKPT.pt (model B's weights) is required with --model")


def _inputs(args, show: bool):
    """(data, model A, model B, meta, workers) from the arguments."""
    from cnnvis.data import check_fits_model

    if args.demo:
        return _demo_inputs(args, show)
    data = dataset_from_args(args)
    model_a, _ = model_from_args(args)
    b_args = argparse.Namespace(
        model=args.against_model or args.model, weights=args.against,
        model_kwargs=args.against_model_kwargs if args.against_model_kwargs is not None
        else ([] if args.against_model else args.model_kwargs))
    model_b, _ = model_from_args(b_args)
    for m in (model_a, model_b):
        check_fits_model(data, m)
    meta = dict(a=dict(model=args.model, weights=str(args.weights)),
                b=dict(model=b_args.model, weights=str(args.against)))
    return data, model_a, model_b, meta, workers_from_args(args, data)


def _demo_inputs(args, show: bool):
    import torch

    from cnnvis.data import build_model, load_digits
    from cnnvis.data._train import demo_model

    data = load_digits()
    _say(f"demo: {args.demo_model} on scikit-learn digits ({len(data)} images)", show)
    _, result, _ = demo_model(args.demo_model, data, epochs=args.epochs, show_progress=show)
    snaps = result.snapshots
    picked = []
    for k in args.demo_snapshots:
        if not -len(snaps) <= k < len(snaps):
            raise DataError(f"--demo-snapshots: {k} is outside the {len(snaps)} snapshots (0 .. {len(snaps) - 1})")
        picked.append(snaps[k])
    models = []
    for path in picked:
        m = build_model(args.demo_model, n_classes=data.n_classes, in_channels=data.image_shape[0],
                        image_size=data.image_shape[1])
        m.load_state_dict(torch.load(path, weights_only=True))
        models.append(m.eval())
    meta = dict(demo_model=args.demo_model, a=dict(snapshot=picked[0].name), b=dict(snapshot=picked[1].name))
    return data, models[0], models[1], meta, 0


def _say(msg: str, show: bool) -> None:
    if show:
        print(msg, file=sys.stderr)

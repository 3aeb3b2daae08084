"""The `cnnvis` and `cnnvis-gl` commands. Bad input: one line on stderr, exit code 2, no traceback
(`cnnvis.errors.guard`)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnnvis.app._data_options import (FROM_FACTORY, add_data_options, add_model_options, dataset_from_args,
                                      model_from_args, workers_from_args)
from cnnvis.app.demo import DEMO_DEFAULT
from cnnvis.errors import DataError, guard

__all__ = ["main", "main_gl"]


def main(argv=None) -> int:
    return guard(_main, argv, "cnnvis")


def main_gl(argv=None) -> int:
    from cnnvis.app.diff_view import scene_for  # a diff file's view; any other file: app.session's
    from cnnvis.app.gl_command import main as gl_main

    return gl_main(argv, scene_for=scene_for)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnvis", description="Visual analysis of deep CNNs (CNNVis).")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="run a data set through a trained CNN and write a .cnnvis file")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", action="store_true",
                     help="the embedded default: train (or reuse) a demo model on scikit-learn's digits")
    add_model_options(a, src)
    a.add_argument("--demo-model", default=DEMO_DEFAULT,
                   help=f"demo architecture (default {DEMO_DEFAULT}; lenet, lenet-x0.25 ... lenet-x4, deeplenet, "
                        "basecnn, basecnn-x0.25)")
    a.add_argument("--epochs", type=int, default=6, help="demo training epochs (default 6)")
    a.add_argument("--snapshots", nargs="+", metavar="CKPT.pt", default=[],
                   help="training snapshots, oldest first, for the per-layer debugging chart")
    add_data_options(a)
    a.add_argument("-o", "--output", required=True, metavar="OUT.cnnvis")
    a.add_argument("--batch-size", type=int,
                   help="images per batch (default: sized so the pass fits in half the memory available, at most 128)")
    a.add_argument("--top-k", type=int, default=9, help="learned-feature patches kept per neuron (default 9)")
    a.add_argument("--patch-size", type=int, default=64,
                   help="largest stored patch side in pixels; bigger receptive fields are scaled down (default 64)")
    a.add_argument("--classes", help="comma-separated classes the importance is computed over (default all)")
    a.add_argument("--limit", type=int, help="analyse only the first N images")
    a.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                   help="where the model runs during the analysis (default cpu)")
    a.add_argument("--no-progress", action="store_true", help="no progress bars")
    from cnnvis.app.diagnose import parser as diagnose_parser

    sub.add_parser("diagnose", parents=[diagnose_parser()], add_help=False,
                   help="findings in a .cnnvis file (dead, redundant, positive weights, weight change, ...)",
                   description=diagnose_parser().description)
    from cnnvis.app.diff import parser as diff_parser

    sub.add_parser("diff", parents=[diff_parser()], add_help=False, description=diff_parser().description,
                   help="compare two checkpoints or two models neuron by neuron (CKA, correlation, Hungarian)")
    i = sub.add_parser("info", help="describe a .cnnvis file")
    i.add_argument("file")
    i.add_argument("--aggregation", action="store_true",
                   help="also aggregate and explain every layer cluster, neuron cluster count and bundle set")
    return p


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    if args.command == "diagnose":
        from cnnvis.app.diagnose import execute

        return execute(args)
    if args.command == "diff":
        from cnnvis.app.diff import execute as diff_execute

        return diff_execute(args)
    if args.command == "info":
        from cnnvis.analysis import Analysis
        from cnnvis.app.report import describe

        analysis = Analysis.load(args.file)
        print(describe(analysis))
        if args.aggregation:
            from cnnvis.aggregate import aggregate

            print("\naggregation (why each choice was made):")
            print(aggregate(analysis).explain())
        return 0
    return _analyze(args)


def _analyze(args) -> int:
    out = Path(args.output)
    if not out.parent.is_dir() and str(out.parent):
        raise DataError(f"{out}: output folder {out.parent} does not exist")
    if out.is_dir():
        raise DataError(f"{out}: is a folder; give a file name such as {out / 'net.cnnvis'}")
    if args.limit is not None and args.limit < 1:
        raise DataError(f"--limit must be >= 1, got {args.limit}")
    if args.epochs < 1:
        raise DataError(f"--epochs must be >= 1, got {args.epochs}")
    if args.demo and (args.weights or args.snapshots or args.data):
        raise DataError("--demo brings its own model, weights and data; drop --weights/--snapshots/--data "
                        "or use --model")
    from cnnvis.app import _preflight as pre

    pre.check_output_writable(out)  # before the work: a read-only or full file system is one line now
    pre.terminate_as_interrupt()  # SIGTERM unwinds like Ctrl-C: no temporary file left behind
    import torch  # noqa: F401  (deferred: `cnnvis info` does not need it)

    from cnnvis.analysis._distributed import init_from_env

    rank, world_size = init_from_env()  # under torchrun: one shard per rank, rank 0 writes the file
    show = not args.no_progress and rank == 0

    from cnnvis.analysis import analyze
    from cnnvis.data import load_digits

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    workers = 0
    if args.demo:
        from cnnvis.data._train import demo_model

        data = load_digits()
        _say(f"demo: {args.demo_model} on scikit-learn digits ({len(data)} images)", show)
        model, result, _ = demo_model(args.demo_model, data, epochs=args.epochs, show_progress=show)
        snapshots, meta = list(result.snapshots), {"demo_model": args.demo_model,
                                                    "test_accuracy": result.test_accuracy[-1]}
    else:
        data = dataset_from_args(args)
        model, weights = model_from_args(args)
        from cnnvis.data import check_fits_model

        check_fits_model(data, model)
        workers = workers_from_args(args, data)
        snapshots, meta = list(args.snapshots), {"model_spec": args.model, "ranks": world_size,
                                                 "weights": weights}
        if weights == FROM_FACTORY:
            _say(f"weights: {FROM_FACTORY} ({args.model} was given no --weights)", rank == 0)
    if args.limit:
        import numpy as np

        data = data.subset(np.arange(min(args.limit, len(data))))
    n_outputs, per_image = pre.probe(model, data, output=getattr(args, "model_output", None))
    pre.check_labels(data, n_outputs)  # before anything is sized by the number of classes
    top_k = pre.cap_top_k(args.top_k, len(data), lambda m: _say(m, True))
    batch_size, batch_note = args.batch_size, f"batch size {args.batch_size}"
    if batch_size is None:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)  # torchrun: ranks share this machine
        batch_size = pre.auto_batch_size(per_image, pre.available_memory(args.device), processes=local)
        batch_note = (f"batch size {batch_size} (~{pre.PASS_FACTOR * per_image / 2**20:.1f} MB per image, fits "
                      "half the memory available; --batch-size sets it)")
    analysis = analyze(model, data, snapshots=snapshots, batch_size=batch_size, top_k=top_k,
                       importance_classes=classes, show_progress=show, meta=meta, device=args.device,
                       max_patch=args.patch_size, workers=workers, output=getattr(args, "model_output", None))
    if analysis is None:  # another rank's shard, merged into rank 0's file
        return 0
    analysis.save(out)
    _say(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(analysis.graph.layers)} layers, "
         f"{sum(l.n_neurons for l in analysis.graph.layers)} neurons, {len(data)} images, "
         f"accuracy {analysis.meta['accuracy']:.3f}; {batch_note}", True)
    return 0


def _say(msg: str, show: bool) -> None:
    if show:
        print(msg, file=sys.stderr)

"""What a user waits for in `cnnvis-gl FILE`: opening an analysis (load, the aggregation stage by stage, the
findings, the layout) and expanding each layer cluster, on real analysis files (torchvision ResNet-50,
DenseNet-121, EfficientNet-B0) beside synthetic profiles. Question: is exploring a big network interactive?
(issue 9's target: aggregate + layout of ResNet-50 <= 3 s on 2 CPU cores; the summary lines give it.)

    python3 benchmarks/aggregate.py [FILE.cnnvis ...] [--repeat 1] [--quick] [--no-files]

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh);
`PYTHONPATH=. python3 benchmarks/aggregate.py` measures a checkout's dev build (scripts/dev-build.sh) instead.

FILE: analysis files to open (default: resnet50.cnnvis, densenet121.cnnvis and efficientnet_b0.cnnvis in
${XDG_CACHE_HOME:-~/.cache}/cnnvis/bench). A missing file named after one of those three models is made
first, in the torchvision zoo venv (scripts/zoo-env.sh makes it once, several GB; ZOO_PY names another
python with torchvision): the model with random weights (seed 0, 10 classes) analysed by `cnnvis.analyze`
on the first 64 Fashion-MNIST test images (Debian's dataset-fashion-mnist, installed by scripts/setup.sh)
as RGB at 224x224, about a minute per model on 2 cores.

Every file is opened as `cnnvis-gl` opens it (`Analysis.load`, then the app's Session: aggregate, findings,
build_scene); the stages are timed by wrapping the functions those calls make (the real code runs, nothing is
copied), and a stage that no longer runs stops the benchmark. Then each layer cluster of more than one layer
is expanded through the Session (the viewer's double-click: ExpandColumn -> new aggregation and Scene) and
undone. Times are the best of --repeat runs; `other` is what the wrapped stages do not cover.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from _bench import measured

ZOO_MODELS = ("resnet50", "densenet121", "efficientnet_b0")
FASHION = Path("/usr/share/datasets/fashion-mnist")
# stage -> (module, function) pairs the public calls go through; timed where the caller looks them up
STAGES = {
    "layer clustering": [("cnnvis.aggregate._aggregate", "cluster_layers")],
    "neuron clustering": [("cnnvis.aggregate._aggregate", "cluster_neurons"),
                          ("cnnvis.aggregate._edits", "cluster_neurons")],
    "reordering": [("cnnvis.aggregate._aggregate", "class_order"), ("cnnvis.aggregate._aggregate", "neuron_order")],
    "bundling": [("cnnvis.aggregate._aggregate", "bundle_sets_from"), ("cnnvis.aggregate._edits", "bundle_sets_from")],
    "findings": [("cnnvis.diagnose", "diagnose")],
    "layout": [("cnnvis.layout", "build_scene")],
}
OPEN_COLUMNS = ("load", "layer clustering", "neuron clustering", "reordering", "bundling", "findings", "layout",
                "other", "open total")
EXPAND_COLUMNS = ("neuron clustering", "bundling", "layout", "other", "total")


class StageTimer:
    """Wraps the functions of STAGES while active; seconds per stage (outermost calls only) and call counts."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.calls = dict.fromkeys(STAGES, 0)
        self._depth = 0

    def _wrap(self, stage, fn):
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t
                self.calls[stage] += 1
                self._depth -= 1
        return timed

    @contextlib.contextmanager
    def active(self):
        import importlib

        saved = []
        for stage, targets in STAGES.items():
            for module, name in targets:
                mod = importlib.import_module(module)
                if not callable(getattr(mod, name, None)):
                    sys.exit(f"aggregate.py: {module}.{name} is gone: update the stage map (STAGES)")
                saved.append((mod, name, getattr(mod, name)))
                setattr(mod, name, self._wrap(stage, getattr(mod, name)))
        try:
            yield self
        finally:
            for mod, name, fn in saved:
                setattr(mod, name, fn)

    def reset(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.calls = dict.fromkeys(STAGES, 0)


def _require(timer, stages, what):
    missing = [s for s in stages if timer.calls[s] == 0]
    if missing:
        sys.exit(f"aggregate.py: {what} no longer runs {', '.join(missing)} through the wrapped functions: "
                 "update the stage map (STAGES)")


def _best(a: dict | None, b: dict) -> dict:
    return b if a is None else {k: None if b[k] is None else min(a[k], b[k]) for k in b}


def open_file(make, repeat: int, *, expand: bool = True):
    """(best open timings, expansions [(layer cluster, layers, best timings)], facts) of the analysis that
    `make()` returns as (analysis, read from a file?), opened `repeat` times as the viewer opens it."""
    from cnnvis.app.session import Session
    from cnnvis.layout import ExpandColumn, Undo

    timer, best, expands = StageTimer(), None, {}
    with timer.active():
        for _ in range(repeat):
            t0 = time.perf_counter()
            analysis, from_file = make()
            t1 = time.perf_counter()
            timer.reset()
            session = Session(analysis)
            t2 = time.perf_counter()
            _require(timer, STAGES, "opening an analysis")
            load = t1 - t0 if from_file else None
            best = _best(best, {"load": load, **timer.seconds, "other": t2 - t1 - sum(timer.seconds.values()),
                                "open total": (load or 0.0) + t2 - t1})
            for c, lc in enumerate(session.aggregation.layer_clusters if expand else ()):
                if len(lc.layers) < 2:
                    continue
                timer.reset()
                t = time.perf_counter()
                session.on_edit(ExpandColumn(c))
                total = time.perf_counter() - t
                _require(timer, EXPAND_COLUMNS[:3], "expanding a layer cluster")
                row = {s: timer.seconds[s] for s in EXPAND_COLUMNS[:3]}
                row.update(other=total - sum(timer.seconds.values()), total=total)
                expands[lc.name] = (len(lc.layers), _best(expands.get(lc.name, (0, None))[1], row))
                session.on_edit(Undo())
    facts = dict(layers=len(analysis.graph.layers), neurons=sum(l.n_neurons for l in analysis.graph.layers),
                 columns=len(session.aggregation.layer_clusters), curves=session.scene.n_curves,
                 findings=len(session.findings.diagnosis))
    return best, [(name, n, r) for name, (n, r) in expands.items()], facts


def _seconds(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


# -- the zoo files ------------------------------------------------------------------------------------------
def make_zoo_file(model_name: str, path: str) -> None:
    """(In the zoo venv) torchvision's `model_name`, random weights, analysed on 64 Fashion-MNIST images."""
    import numpy as np
    import torch
    import torchvision

    import cnnvis
    from cnnvis.data import ArrayDataset, load_idx

    if not FASHION.is_dir():
        sys.exit(f"aggregate.py: {FASHION} not found: install Debian's dataset-fashion-mnist (scripts/setup.sh)")
    test = load_idx(FASHION, split="test")
    rgb = np.repeat(test.images[:64], 3, axis=1)
    data = ArrayDataset(rgb, test.labels[:64], test.class_names, "fashion-mnist-64-rgb", layout="NCHW",
                        scale=(0.0, 1.0), input_size=224)
    torch.manual_seed(0)
    model = getattr(torchvision.models, model_name)(num_classes=10, weights=None).eval()
    a = cnnvis.analyze(model, data, batch_size=16, show_progress=False, meta={"made_by": "benchmarks/aggregate.py"})
    tmp = f"{path}.partial.cnnvis"
    a.save(tmp)
    os.replace(tmp, path)


def ensure_files(paths: list[str]) -> None:
    missing = [p for p in paths if not os.path.exists(p)]
    unknown = [p for p in missing if Path(p).stem not in ZOO_MODELS]
    if unknown:
        sys.exit(f"aggregate.py: {unknown[0]}: no such file (only {', '.join(ZOO_MODELS)}.cnnvis are made here)")
    if not missing:
        return
    root = Path(__file__).resolve().parents[1]
    zpy = os.environ.get("ZOO_PY") or subprocess.run(["bash", str(root / "scripts" / "zoo-env.sh")], check=True,
                                                     stdout=subprocess.PIPE, text=True).stdout.strip()
    for p in missing:
        print(f"# making {p} with {zpy} (about a minute)", file=sys.stderr, flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        subprocess.run([zpy, os.path.abspath(__file__), "--make-file", Path(p).stem, p], check=True)


def default_files() -> list[str]:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [os.path.join(cache, "cnnvis", "bench", f"{m}.cnnvis") for m in ZOO_MODELS]


# -- main ---------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="analysis files (default: the three zoo files, made when absent)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per network; the best is shown (default 1)")
    ap.add_argument("--quick", action="store_true", help="no 4096-wide synthetic network")
    ap.add_argument("--no-files", action="store_true", help="synthetic profiles only")
    ap.add_argument("--make-file", nargs=2, metavar=("MODEL", "PATH"), help=argparse.SUPPRESS)  # zoo venv child
    args = ap.parse_args(argv)
    if args.make_file:
        return make_zoo_file(*args.make_file)
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")
    files = [] if args.no_files else (args.files or default_files())
    ensure_files(files)

    from cnnvis.analysis import Analysis
    from cnnvis.testing.synthetic import synthetic_network

    cases = [(Path(f).name, lambda f=f: (Analysis.load(f), True)) for f in files]
    cases += [("synthetic ResNet-50 profile", lambda: (synthetic_network("resnet50", patch_size=8).analysis, False)),
              ("synthetic BaseCNN (demo-sized)", lambda: (synthetic_network("vgg").analysis, False))]
    results = []
    for name, make in cases:
        print(f"# {name}", file=sys.stderr, flush=True)
        results.append((name, *open_file(make, args.repeat)))

    cmd = " ".join(["python3", os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))
    print(f"`{cmd}` (best of {args.repeat}; seconds; {os.cpu_count()} CPUs visible; {measured()})\n")
    print("Opening (what `cnnvis-gl FILE` does before its first frame):\n")
    print("| network | layers | neurons | " + " | ".join(OPEN_COLUMNS) + " | columns | curves | findings |")
    print("|---|---:|---:|" + "---:|" * len(OPEN_COLUMNS) + "---:|---:|---:|")
    for name, best, _, info in results:
        print(f"| {name} | {info['layers']} | {info['neurons']} | "
              + " | ".join(_seconds(best[c]) for c in OPEN_COLUMNS)
              + f" | {info['columns']} | {info['curves']} | {info['findings']} |")
    print("\nExpanding each layer cluster of more than one layer (ExpandColumn through the Session):\n")
    print("| network | layer cluster | layers | " + " | ".join(EXPAND_COLUMNS) + " |")
    print("|---|---|---:|" + "---:|" * len(EXPAND_COLUMNS))
    for name, _, expands, _ in results:
        for cluster, n, r in expands:
            print(f"| {name} | {cluster} | {n} | " + " | ".join(_seconds(r[c]) for c in EXPAND_COLUMNS) + " |")
    for name, best, expands, _ in results:
        if expands:
            worst = max(expands, key=lambda e: e[2]["total"])
            staged = sum(best[c] for c in OPEN_COLUMNS[1:5]) + best["layout"]
            print(f"\n{name}: open {best['open total']:.2f} s (aggregate + layout {staged:.2f} s), slowest expand "
                  f"{worst[2]['total']:.2f} s ({worst[0]}, {worst[1]} layers)", end="")
    print("\n\nGrowth with width (the synthetic ResNet-50 profile scaled so its widest layer has the given "
          "width; no file):\n")
    print("| widest layer | neurons | " + " | ".join(OPEN_COLUMNS[1:]) + " | x time of 512 |")
    print("|---:|---:|" + "---:|" * (len(OPEN_COLUMNS) - 1) + "---:|")
    base = None
    for w in (512, 1024, 2048) + (() if args.quick else (4096,)):
        def make(w=w):
            return synthetic_network("resnet50", width_scale=w / 2048, n_snapshots=2, edge_history=False,
                                     patch_size=4).analysis, False
        best, _, info = open_file(make, args.repeat, expand=False)
        base = base or best["open total"]
        print(f"| {w} | {info['neurons']} | " + " | ".join(_seconds(best[c]) for c in OPEN_COLUMNS[1:])
              + f" | {best['open total'] / base:.2f} |")
    return None


if __name__ == "__main__":
    main()

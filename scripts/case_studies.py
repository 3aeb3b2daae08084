"""The paper's case studies (section 5) on Fashion-MNIST, with the findings `cnnvis.diagnose` states.

Question: do the three things the paper's experts found by eye show up as automatic findings on real data?
1. DeepLeNet's first conv group has mostly positive weights where LeNet's first conv layer is mixed
   (positive-weights); 2. LeNet x 4's first conv layer has groups of near-identical neurons
   (redundant-neurons); 3. BaseCNN has neurons whose ReLU input is <= 0 on every image (dead-neurons), and a
   jump of the relative weight change at its third conv group (weight-change), both gone with leaky ReLU.

Each model is trained from scratch (Adam, cosine schedule, `cnnvis.data.train`, a snapshot before training
and after every epoch) on a fixed random subset of the Fashion-MNIST training split, analysed with its
snapshots on a fixed subset of the test split, and diagnosed; sizes are scaled for 2 CPU cores (BaseCNN at
width x 0.25: 24..128 channels), so absolute errors are far from the paper's. Printed side by side: test
error and losses per model (Table 1 and 2 analogues), ReLU against leaky ReLU (Table 3 analogue), and the
expected findings against those found, with their evidence.

    python3 scripts/case_studies.py [--quick] [--train N] [--epochs E] [--test N] [--models a,b]
    scripts/case-studies.sh [--quick]

Runs against the installed cnnvis (scripts/setup.sh); `PYTHONPATH=. python3 scripts/case_studies.py` runs a
checkout's dev build (scripts/dev-build.sh). Recorded results: docs/case-studies/ (quick.md, full.md).

--quick: LeNet, LeNet x 4, DeepLeNet and BaseCNN (ReLU and leaky), 2000 training images: a few minutes on 2
cores. Default: the 7 architectures with ReLU and LeNet, DeepLeNet, BaseCNN with leaky ReLU, 3000 training
images (--all-leaky: all 7 with leaky ReLU).
Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or --data DIR of IDX files.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Every thread pool fixed before numpy, torch or the core start theirs.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = os.environ.get("CNNVIS_THREADS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnnvis.analysis import analyze  # noqa: E402
from cnnvis.data import build_model, load_idx  # noqa: E402
from cnnvis.data._train import train  # noqa: E402
from cnnvis.diagnose import diagnose  # noqa: E402
from cnnvis.diagnose._history import cluster_change, departures  # noqa: E402
from cnnvis.diagnose._neurons import profile_layer, profiles, relative_differences  # noqa: E402
from cnnvis.diagnose._weights import conv_groups, weight_mass  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
LEAKY = "-leaky0.1"
# (label, demo model name): the paper's models, BaseCNN scaled to a quarter of its width for 2 cores.
ARCHS = (("LeNet", "lenet"), ("DeepLeNet", "deeplenet"), ("LeNet x0.25", "lenet-x0.25"),
         ("LeNet x0.5", "lenet-x0.5"), ("LeNet x2", "lenet-x2"), ("LeNet x4", "lenet-x4"),
         ("BaseCNN x0.25", "basecnn-x0.25"))
QUICK = ("lenet", "lenet-x4", "deeplenet", "basecnn-x0.25", "basecnn-x0.25" + LEAKY)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="4 architectures, small subsets (a few minutes)")
    p.add_argument("--train", type=int, help="training images (default 3000; quick 2000)")
    p.add_argument("--epochs", type=int, help="epochs, one snapshot after each (default 3)")
    p.add_argument("--test", type=int, help="test images analysed (default 2000; quick 600)")
    p.add_argument("--models", help="comma-separated demo model names (default: every architecture with ReLU, "
                                    "and LeNet, DeepLeNet, BaseCNN with leaky ReLU; quick: " + ",".join(QUICK) + ")")
    p.add_argument("--all-leaky", action="store_true", help="every architecture with leaky ReLU too")
    p.add_argument("--keep", type=Path, help="keep the trained snapshots in this folder and reuse them on the "
                                             "next run with the same settings (default: train afresh)")
    p.add_argument("--data", type=Path, default=FASHION, help="folder of Fashion-MNIST IDX files")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    n_train = args.train or (2000 if args.quick else 3000)
    epochs = args.epochs or 3
    n_test = args.test or (600 if args.quick else 2000)
    if args.models:
        names = tuple(args.models.split(","))
    elif args.quick:
        names = QUICK
    else:
        leaky = [b for _, b in ARCHS] if args.all_leaky else ["lenet", "deeplenet", "basecnn-x0.25"]
        names = tuple(n for _, base in ARCHS for n in ((base, base + LEAKY) if base in leaky else (base,)))
    torch.set_num_threads(int(os.environ.get("CNNVIS_THREADS", "2")))

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    full_train, full_test = load_idx(args.data, split="train"), load_idx(args.data, split="test")
    train_set = full_train.subset(np.sort(rng.choice(len(full_train), n_train, replace=False)), "fashion-train")
    test_set = full_test.subset(np.sort(rng.choice(len(full_test), n_test, replace=False)), "fashion-test")
    cmd = "python3 scripts/case_studies.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# Case studies on Fashion-MNIST\n\n`{cmd.strip()}`: {n_train} training images x {epochs} epochs, "
          f"{n_test} test images analysed, seed {args.seed}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}\n", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnvis-case-") as tmp:
        root = args.keep or Path(tmp)
        for name in names:
            folder = root / f"{name}-n{n_train}-e{epochs}-s{args.seed}"
            rows.append(run_model(name, train_set, test_set, folder, epochs, args.seed))
            print(f"<!-- {name}: trained in {rows[-1]['train_s']:.0f} s, analysed in {rows[-1]['analyse_s']:.0f} s"
                  f" -->", flush=True)
    print_tables(rows)
    print(f"\nTotal wall time: {time.perf_counter() - t0:.0f} s")
    return 0


def run_model(name, train_set, test_set, folder, epochs, seed) -> dict:
    torch.manual_seed(seed)
    model = build_model(name, n_classes=10, in_channels=1, image_size=28)
    t = time.perf_counter()
    done = folder / "train.json"
    if done.is_file():  # --keep: the same settings were trained before
        meta = json.loads(done.read_text())
        snaps = [folder / s for s in meta["snapshots"]]
        model.load_state_dict(torch.load(snaps[-1], weights_only=True))
        train_loss, train_s = meta["train_loss"], meta["train_s"]
    else:
        result = train(model, train_set, test_set, folder, epochs=epochs, seed=seed, show_progress=False)
        snaps, train_loss, train_s = list(result.snapshots), result.train_loss[-1], time.perf_counter() - t
        done.write_text(json.dumps(dict(snapshots=[p.name for p in snaps], train_loss=train_loss, train_s=train_s)))
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(test_set.images))
        labels = torch.from_numpy(test_set.labels)
        test_loss = float(F.cross_entropy(logits, labels))
        error = float((logits.argmax(1) != labels).float().mean())
    t = time.perf_counter()
    a = analyze(model, test_set, snapshots=snaps, batch_size=200, top_k=4, show_progress=False)
    d = diagnose(a)
    analyse_s = time.perf_counter() - t
    return dict(name=name, analysis=a, diagnosis=d, error=error, train_loss=train_loss,
                test_loss=test_loss, train_s=train_s, analyse_s=analyse_s)


# -- measurements read off an analysis (the same numbers the findings use) ------------------------------
def never_positive(a) -> tuple[int, int]:
    """(neurons whose activation-function input is <= 0 on every image, neurons feeding an activation):
    for ReLU models these are the dead neurons; for leaky ReLU the same count says how many would be dead."""
    g = a.graph
    n_dead = n_all = 0
    for l in g.layers:
        if l.kind == "activation" and len(l.inputs) == 1 and l.inputs[0] in a.stats:
            src = g.layer(l.inputs[0])
            if src.kind in ("conv", "linear"):
                n_dead += int((a.stats[src.name].overall_active() <= 0).sum())
                n_all += src.n_neurons
    return n_dead, n_all


def group_fractions(a) -> list[tuple[str, float]]:
    out = []
    for grp in conv_groups(a):
        m = [weight_mass(a, layer) for layer in grp]
        label = grp[0] if len(grp) == 1 else f"{grp[0]}..{grp[-1].split('.')[-1]}"
        out.append((label, sum(x[0] for x in m) / sum(x[1] for x in m)))
    return out


def change_profile(a, d) -> str:
    from cnnvis.aggregate._layers import cluster_layers

    cols, per_t = cluster_change(a.history, cluster_layers(a))
    v = np.exp(np.log(np.maximum(per_t, 1e-30)).mean(0))
    dep = np.exp(departures(v))
    return ", ".join(f"{c.name} {x:.3f}" + (f" ({r:.2f}x)" if np.isfinite(r) else "")
                     for c, x, r in zip(cols, v, dep))


def nearest_difference(a, layer) -> float:
    """Median over the live neurons of `layer` of the relative profile difference to their nearest other
    neuron (the redundant-neurons measure; a group needs <= 5%)."""
    st = a.stats[profile_layer(a, layer)]
    p = profiles(st)
    live = np.flatnonzero(np.linalg.norm(p, axis=1) > 0)
    d = relative_differences(p[live]) + np.diag(np.full(live.size, np.inf))
    return float(np.median(d.min(1))) if live.size > 1 else float("nan")


def first_conv(a) -> str:
    return next(l.name for l in a.graph.layers if l.kind == "conv")


def redundant_in(d, layer) -> tuple[int, int]:
    fs = [f for f in d.of_kind("redundant-neurons") if f.layer == layer]
    return sum(len(f.neurons) for f in fs), len(fs)


# -- tables ------------------------------------------------------------------------------------------------
def print_tables(rows) -> None:
    by = {r["name"]: r for r in rows}
    print("\n## Models (test error on the analysed test images)\n")
    print("| model | act. | conv layers | test error | train loss | test loss | never-positive neurons | "
          "findings (kind: n) | train s | analyse+diagnose s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, d = r["analysis"], r["diagnosis"]
        nd, na = never_positive(a)
        kinds = {}
        for f in d:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        print(f"| {r['name'].replace(LEAKY, '')} | {'leaky 0.1' if LEAKY in r['name'] else 'ReLU'} | "
              f"{sum(l.kind == 'conv' for l in a.graph.layers)} | {r['error']:.2%} | {r['train_loss']:.3f} | "
              f"{r['test_loss']:.3f} | {nd}/{na} | {', '.join(f'{k}: {v}' for k, v in kinds.items()) or '-'} | "
              f"{r['train_s']:.0f} | {r['analyse_s']:.0f} |")

    pair = [by.get(n) for n in ("lenet", "deeplenet")]
    if all(pair):
        print("\n## Table 1 analogue: depth (paper, MNIST: LeNet 0.87%, DeepLeNet 1.00%)\n")
        print("| model | test error | #conv layers | positive share of the kernel weight mass per conv group |")
        print("|---|---|---|---|")
        for r in pair:
            fr = ", ".join(f"{g} {x:.2f}" for g, x in group_fractions(r["analysis"]))
            print(f"| {r['name']} | {r['error']:.2%} | {sum(l.kind == 'conv' for l in r['analysis'].graph.layers)}"
                  f" | {fr} |")

    widths = [by[n] for n in ("lenet-x4", "lenet-x2", "lenet", "lenet-x0.5", "lenet-x0.25") if n in by]
    if widths:
        print("\n## Table 2 analogue: width (paper, MNIST: errors 0.87, 0.86, 0.87, 1.16, 1.36%)\n")
        print("| model | test error | train loss | test loss | conv1 neurons in redundant groups | groups | "
              "conv1 median nearest-neighbour difference |")
        print("|---|---|---|---|---|---|---|")
        for r in widths:
            a = r["analysis"]
            c1 = first_conv(a)
            n, g = redundant_in(r["diagnosis"], c1)
            print(f"| {r['name']} | {r['error']:.2%} | {r['train_loss']:.4f} | {r['test_loss']:.4f} | "
                  f"{n}/{a.graph.layer(c1).n_neurons} | {g} | {nearest_difference(a, c1):.1%} |")

    leaky_pairs = [(by[n], by[n + LEAKY]) for _, n in ARCHS if n in by and n + LEAKY in by]
    if leaky_pairs:
        print("\n## Table 3 analogue: ReLU against leaky ReLU 0.1 (paper, CIFAR-10 BaseCNN: 11.45% -> 10.35%)\n")
        print("| model | error ReLU | error leaky | dead (ReLU) | never-positive (leaky) | relative weight change "
              "per layer cluster, ReLU (departure from neighbours' trend) |")
        print("|---|---|---|---|---|---|")
        for r, lk in leaky_pairs:
            nd, na = never_positive(r["analysis"])
            ld, la = never_positive(lk["analysis"])
            print(f"| {r['name']} | {r['error']:.2%} | {lk['error']:.2%} | {nd}/{na} | {ld}/{la} | "
                  f"{change_profile(r['analysis'], r['diagnosis'])} |")

    print("\n## Findings expected (paper) vs found\n")
    print("| paper finding | model | expected | found | evidence |")
    print("|---|---|---|---|---|")
    for label, names, check in EXPECTED:
        if all(n in by for n in names):
            expected, found, evidence = check(*(by[n] for n in names))
            print(f"| {label} | {', '.join(names)} | {expected} | {'yes' if found else 'no'} | {evidence} |")

    print("\n## All findings per model (first 6)\n")
    for r in rows:
        d = r["diagnosis"]
        print(f"- **{r['name']}**: {len(d)} findings" + ("; " + "; ".join(d.notes) if d.notes else ""))
        for i, f in enumerate(d.findings[:6], 1):
            print(f"  {i}. [{f.severity}] {f.kind}: {f.message}")


def _evidence(f) -> str:
    keys = {"positive-weights": ("positive_fraction", "rest_positive_fraction"),
            "redundant-neurons": ("n_members", "max_difference"),
            "dead-neurons": ("n_dead", "n_neurons", "max_relu_input"),
            "weight-change": ("ratio", "relative_change", "neighbour_trend")}.get(f.kind, tuple(f.evidence)[:3])
    nums = ", ".join(f"{k}={f.evidence[k]:.3g}" for k in keys if k in f.evidence)
    return f"{f.clusters[0] if f.kind == 'weight-change' and f.clusters else f.layer}: {nums}"


def _hits(r, kind, layers=None):
    return [f for f in r["diagnosis"].of_kind(kind) if layers is None or set(f.layers) & set(layers)]


def _listed(hits) -> str:
    return "; ".join(_evidence(f) for f in hits[:3]) + (f"; +{len(hits) - 3} more" if len(hits) > 3 else "") or "-"


def _positive_first_group(deep, lenet):
    g = conv_groups(deep["analysis"])[0]
    hits = _hits(deep, "positive-weights", g)
    fr = dict(group_fractions(deep["analysis"]))
    fl = dict(group_fractions(lenet["analysis"]))
    ev = (f"share of positive weight mass: DeepLeNet first group {next(iter(fr.values())):.2f} (rest "
          f"{np.mean(list(fr.values())[1:]):.2f}), LeNet conv1 {fl.get('conv1', float('nan')):.2f}; " + _listed(hits))
    return f"positive-weights in {g[0]}..{g[-1]}, none in LeNet conv1", bool(hits) and not _hits(lenet, "positive-weights", ["conv1"]), ev


def _wider_more_redundant(x4, x1):
    s4, s1 = (redundant_in(r["diagnosis"], first_conv(r["analysis"]))[0] / r["analysis"].graph.layer(
        first_conv(r["analysis"])).n_neurons for r in (x4, x1))
    return ("redundant-neurons in conv1, a larger share than in LeNet", s4 > s1 and s4 > 0,
            f"share of conv1 in redundant groups: x4 {s4:.1%}, x1 {s1:.1%}; " + _listed(_hits(x4, "redundant-neurons", ["conv1"])))


def _dead_fixed_by_leaky(relu, leaky):
    hits = _hits(relu, "dead-neurons")
    nd, na = never_positive(relu["analysis"])
    ld, _ = never_positive(leaky["analysis"])
    return ("dead-neurons with ReLU, none with leaky ReLU (no ReLU left)", bool(hits) and not _hits(leaky, "dead-neurons"),
            f"ReLU input <= 0 on every image: ReLU {nd}/{na}, leaky {ld}/{na}; " + _listed(hits))


def _jump_at_third_group(relu, leaky):
    g = conv_groups(relu["analysis"])
    third = g[2] if len(g) > 2 else g[-1]
    hits = _hits(relu, "weight-change", third)
    return (f"weight-change at {third[0]}..{third[-1]} with ReLU, not with leaky",
            bool(hits) and not _hits(leaky, "weight-change", third),
            "ReLU: " + change_profile(relu["analysis"], relu["diagnosis"]) + "; found: " + _listed(
                relu["diagnosis"].of_kind("weight-change")))


# (label, models, check(*rows) -> (expected, found, evidence))
EXPECTED = (
    ("1. DeepLeNet's first conv group mostly positive, LeNet's mixed", ("deeplenet", "lenet"), _positive_first_group),
    ("2. near-identical neurons in conv1 of a too-wide model", ("lenet-x4", "lenet"), _wider_more_redundant),
    ("3. BaseCNN: ReLU input <= 0 on every image, fixed by leaky ReLU", ("basecnn-x0.25", "basecnn-x0.25" + LEAKY),
     _dead_fixed_by_leaky),
    ("3. BaseCNN: jump of the relative weight change at the third conv group",
     ("basecnn-x0.25", "basecnn-x0.25" + LEAKY), _jump_at_third_group),
)


if __name__ == "__main__":
    sys.exit(main())

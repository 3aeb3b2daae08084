"""Time per stage of the aggregation and layout (question: is aggregate + build_scene interactive?).

Stages as `cnnvis.aggregate.aggregate` runs them (layer clustering, neuron clustering with the automatic k,
class/neuron reordering, bundling), then `cnnvis.layout.build_scene`; the "total" row calls the two public
functions end to end. Networks: the synthetic ResNet-50 profile (~26,000 conv neurons, widths up to 2048),
a demo-sized synthetic BaseCNN, the real demo analysis when out/demo.cnnvis exists, and the ResNet profile
scaled to widest layers of 512, 1024, 2048, 4096. Target: total <= 3 s for ResNet-50 on 2 CPU cores.
A last table runs the ResNet-50 case in fresh processes with the OpenMP thread count of the compiled core
left alone and set to 1 (on shared, loaded cores, parallel regions on tiny problems can cost more than
they save).

    python3 benchmarks/aggregate.py [--repeat 2] [--demo out/demo.cnnvis] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cnnvis.aggregate import aggregate  # noqa: E402
from cnnvis.aggregate._aggregate import make_options, sort_bundles  # noqa: E402
from cnnvis.aggregate._bundles import bundle_sets_from  # noqa: E402
from cnnvis.aggregate._layers import cluster_layers  # noqa: E402
from cnnvis.aggregate._neurons import cluster_neurons  # noqa: E402
from cnnvis.aggregate._reorder import class_order, neuron_order  # noqa: E402
from cnnvis.testing.synthetic import synthetic_network  # noqa: E402
from cnnvis.layout import build_scene  # noqa: E402

STAGES = ("layer clustering", "neuron clustering", "reordering", "bundling", "layout", "total")


def stages(analysis) -> dict:
    """Seconds per stage for one run, and the total of the public calls."""
    t = {}
    t0 = time.perf_counter()
    opts = make_options(analysis)
    clusters = cluster_layers(analysis, merge=opts.merge_layers, threshold=opts.layer_similarity)
    t1 = time.perf_counter()
    neurons = [cluster_neurons(analysis, c.representative, opts) for c in clusters]
    t2 = time.perf_counter()
    order, _ = class_order([nc.profiles for nc in neurons])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    neurons = [replace(nc, order=neuron_order(nc.profiles, nc.labels, rank)) for nc in neurons]
    t3 = time.perf_counter()
    bundles = [b for i in range(len(clusters)) for b in bundle_sets_from(analysis, clusters, neurons, i, opts)]
    sort_bundles(bundles, clusters)
    t4 = time.perf_counter()
    t.update(zip(STAGES[:4], (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))
    t5 = time.perf_counter()
    agg = aggregate(analysis)
    t6 = time.perf_counter()
    scene = build_scene(analysis, agg)
    t7 = time.perf_counter()
    t["layout"] = t7 - t6
    t["total"] = t7 - t5
    t["_info"] = (len(agg.layer_clusters), sum(nc.labels.size for nc in agg.neurons), scene.n_rects,
                  scene.n_curves, scene.crossings_before, scene.crossings_after)
    return t


def best_of(analysis, repeat: int) -> dict:
    runs = [stages(analysis) for _ in range(repeat)]
    out = {s: min(r[s] for r in runs) for s in STAGES}
    out["_info"] = runs[0]["_info"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--demo", default=os.path.join(os.path.dirname(__file__), "..", "out", "demo.cnnvis"))
    ap.add_argument("--quick", action="store_true", help="skip the 4096-wide network")
    ap.add_argument("--resnet-json", action="store_true", help=argparse.SUPPRESS)  # child of the thread table
    args = ap.parse_args(argv)
    if args.resnet_json:
        r = best_of(synthetic_network("resnet50", patch_size=8).analysis, args.repeat)
        print(json.dumps({s: r[s] for s in STAGES}))
        return
    cmd = "python3 " + " ".join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))

    cases = [("synthetic ResNet-50", lambda: synthetic_network("resnet50", patch_size=8).analysis),
             ("synthetic BaseCNN (demo-sized)", lambda: synthetic_network("vgg").analysis)]
    if os.path.exists(args.demo):
        from cnnvis.analysis import Analysis

        cases.append((f"demo ({os.path.basename(args.demo)})", lambda: Analysis.load(args.demo)))
    results = []
    for name, make in cases:
        a = make()
        n = sum(l.n_neurons for l in a.graph.layers if l.kind in ("conv", "linear"))
        results.append((name, n, best_of(a, args.repeat)))
        del a

    print(f"`{cmd}` (best of {args.repeat}; seconds; {os.cpu_count()} CPUs visible)\n")
    print("| network | conv+fc neurons | " + " | ".join(STAGES) + " | columns | curves | crossings before -> after |")
    print("|---|---:|" + "---:|" * len(STAGES) + "---:|---:|---|")
    for name, n, r in results:
        cols, _, _, curves, cb, ca = r["_info"]
        times = " | ".join(f"{r[s]:.3f}" for s in STAGES)
        print(f"| {name} | {n} | {times} | {cols} | {curves} | {cb} -> {ca} |")
    target = results[0][2]["total"]
    print(f"\nResNet-50 total {target:.2f} s vs target 3 s: {'met' if target <= 3 else 'MISSED'}\n")

    print("Growth with width (ResNet-50 profile scaled so the widest layer has the given width):\n")
    print("| widest layer | conv+fc neurons | " + " | ".join(STAGES) + " | x time of 512 |")
    print("|---:|---:|" + "---:|" * len(STAGES) + "---:|")
    base = None
    for w in (512, 1024, 2048) + (() if args.quick else (4096,)):
        a = synthetic_network("resnet50", width_scale=w / 2048, n_snapshots=2, edge_history=False,
                              patch_size=4).analysis
        n = sum(l.n_neurons for l in a.graph.layers if l.kind in ("conv", "linear"))
        r = best_of(a, max(1, args.repeat - 1))
        del a
        base = base or r["total"]
        print(f"| {w} | {n} | " + " | ".join(f"{r[s]:.3f}" for s in STAGES) + f" | {r['total'] / base:.2f} |")

    print("\nSynthetic ResNet-50 in fresh processes, by OpenMP threads of the core:\n")
    print("| OMP_NUM_THREADS | " + " | ".join(STAGES) + " | x time of unset |")
    print("|---|" + "---:|" * len(STAGES) + "---:|")
    base = None
    for threads in (None, "1"):
        env = dict(os.environ)
        env.pop("OMP_NUM_THREADS", None)
        if threads:
            env["OMP_NUM_THREADS"] = threads
        out = subprocess.run([sys.executable, __file__, "--resnet-json", "--repeat", str(args.repeat)], env=env,
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        base = base or r["total"]
        times = " | ".join(f"{r[s]:.3f}" for s in STAGES)
        print(f"| {threads or 'unset'} | {times} | {r['total'] / base:.2f} |")


if __name__ == "__main__":
    main()

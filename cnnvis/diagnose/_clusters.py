"""isolated-cluster: a neuron cluster with no strong bundle to any other cluster (from the aggregation).

`cnnvis.aggregate.aggregate` clusters the neurons of each column's representative layer and bundles the
connections between the clusters of connected columns by biclustering; a bundle is weak (the viewer hides it)
when its strength is under `Thresholds.bundle_relative` (default 0.05, the aggregation's default
`bundle_threshold`) of the strongest bundle of its column pair. A neuron cluster of a column that has bundle
sets is isolated when every bundle that holds it, in every bundle set into or out of its column, is weak:
the viewer draws no connection from it (the paper's clusters D1, D2 of BaseCNN, whose neurons turned out to
be inactive). Evidence: n_members, n_neurons, max_bundle_relative (its strongest bundle over the strongest
of that pair; 0 when it is in none), max_pair_relative (its strongest cluster-to-cluster mean strength over
the strongest pair of that set), dead_share (members whose activation is never positive), n_bundle_sets.
Severity: medium when at least half of its members are dead (the paper's case), else low.
"""
from __future__ import annotations

import numpy as np

from cnnvis.diagnose._context import Context, fmt_neurons, plural
from cnnvis.diagnose._findings import Finding

__all__ = ["isolated_clusters"]


def isolated_clusters(ctx: Context) -> list[Finding]:
    agg, thr, a = ctx.aggregated(), ctx.thresholds, ctx.analysis
    out = []
    for lc, nc in zip(agg.layer_clusters, agg.neurons):
        sets = [b for b in agg.bundles if lc.name in (b.src, b.dst)]
        if not sets:
            continue
        st = a.stats.get(nc.layer)
        never = st.overall_active() <= 0 if st is not None else np.zeros(nc.labels.size, bool)
        for c in range(nc.n_clusters):
            members = np.flatnonzero(nc.labels == c)
            if members.size == 0:
                continue
            best_bundle = best_pair = 0.0
            for b in sets:
                outgoing = b.src == lc.name
                mask = b.bundle_src[:, c] if outgoing else b.bundle_dst[:, c]
                if mask.any():
                    best_bundle = max(best_bundle, float(b.bundle_relative[mask].max()))
                for m in (b.positive, b.negative):
                    top = float(m.max()) if m.size else 0.0
                    if top > 0:
                        mine = m[:, c] if outgoing else m[c, :]
                        best_pair = max(best_pair, float(mine.max()) / top)
            if best_bundle >= thr.bundle_relative:
                continue
            dead = float(never[members].mean())
            ev = dict(n_members=int(members.size), n_neurons=int(nc.labels.size), max_bundle_relative=best_bundle,
                      max_pair_relative=best_pair, dead_share=dead, n_bundle_sets=len(sets))
            msg = (f"{nc.layer}: neuron cluster {c} ({plural(members.size, 'neuron')}: {fmt_neurons(members)}) has "
                   f"no strong connection to any other cluster (strongest bundle {best_bundle:.1%} of its pair's "
                   f"strongest); {dead:.0%} of it never fires: check its activations, and prune or retrain it")
            out.append(Finding(kind="isolated-cluster", severity="medium" if dead >= 0.5 else "low",
                               score=1.0 - best_bundle / max(thr.bundle_relative, 1e-12), layer=nc.layer,
                               neurons=tuple(members), evidence=ev, message=msg, facet="edges",
                               clusters=(lc.name,), cluster=c))
    return out

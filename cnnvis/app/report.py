"""Plain-text description of an Analysis (what `cnnvis info` prints)."""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["describe"]


def describe(a) -> str:
    m = a.meta
    lines = [
        f"model      {m.get('model', '?')}" + (f" ({m['demo_model']})" if "demo_model" in m else "")
        + (f", weights {m['weights']}" if "weights" in m else "")
        + (f", captured by {'torch.export' if m['capture'] == 'export' else 'torch.fx'}" if "capture" in m else ""),
        f"data       {m.get('dataset', '?')}: {m.get('n_images', '?')} images of shape "
        f"{tuple(m.get('input_shape', ()))}, {a.n_classes} classes ({', '.join(a.class_names)})",
        f"accuracy   {m.get('accuracy', float('nan')):.4f} on the analysed images"
        + (f" ({m['test_accuracy']:.4f} on the held-out test split)" if "test_accuracy" in m else ""),
        f"network    {len(a.graph.layers)} layers, {sum(l.n_neurons for l in a.graph.layers)} neurons, "
        f"{len(a.graph.connections)} connections ({len(a.graph.weighted_layers())} weighted layers)",
    ]
    holds = [f"statistics ({len(a.stats)} layers)"]
    if a.features:
        f = next(iter(a.features.values()))
        holds.append(f"learned features (top {f.scores.shape[1]} patches per neuron)")
    if a.importance:
        holds.append("importance")
    if a.history is not None:
        holds.append(f"training history ({len(a.history.snapshots)} snapshots)")
    lines.append("holds      " + ", ".join(holds))
    lines.append("")
    from cnnvis.aggregate._dead import relu_inputs

    relu_in = set(relu_inputs(a.graph))
    rows = [("layer", "kind", "neurons", "shape", "inputs", "never fire", "most active class")]
    for l in a.graph.layers:
        s = a.stats.get(l.name)
        dead = top = ""
        if s is not None:
            never = int((a.dead_fraction(l.name) >= 1.0).sum())
            dead = f"{never}" + (" (ReLU in)" if l.name in relu_in and never else "")
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a class with no images: an all-NaN row
                prof = np.nanmean(s.mean, axis=1)
            if np.isfinite(prof).any():
                top = a.class_names[int(np.nanargmax(prof))]
        rows.append((l.name, l.kind, str(l.n_neurons), "x".join(map(str, l.shape)),
                     ", ".join(l.inputs) or "-", dead, top))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if a.history is not None:
        h = a.history
        lines += ["", f"training history over {', '.join(h.snapshots)}:",
                  "  layer".ljust(max(len(n) for n in h.layers) + 4) + "mean |grad| (last)   rel. change (last)"]
        for j, n in enumerate(h.layers):
            lines.append(f"  {n.ljust(max(len(x) for x in h.layers) + 2)}{h.grad_mean[-1, j]:<21.3e}"
                         f"{h.rel_change[-1, j]:.3e}")
    return "\n".join(lines)

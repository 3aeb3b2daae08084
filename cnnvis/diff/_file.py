"""A diff file: a .cnnvis analysis file of model A with the diff and B's analysis as extra members.

So `cnnvis info`, `cnnvis diagnose` and every reader of analysis files open it as A's analysis, and the
viewer finds the diff in it. Members added to A's archive (cnnvis.analysis's format; no pickle):
- manifest key "diff": {"version", "layers_a", "layers_b", "same_architecture", "threshold", "class_names",
  "meta", "layers": [{"a", "b", "cka", "weight_drift", "weight_drift_unaligned"}], "b": B's own manifest}
- arrays "diff/cka" (La, Lb) float64, "diff/alignment" and "diff/best" (La,) int64, and per weighted layer n of A
  "diff/layer/<n>/partner" int64, ".../correlation" float64, ".../status" uint8 (index into STATUSES),
  ".../class_change" (K, Ca) float64, ".../chance" float64 (diff version 2 on; NaN when read from version 1);
- B's analysis arrays under "b/" (its manifest's array names with that prefix).
Written atomically like any analysis file.
"""
from __future__ import annotations

import os

import numpy as np

from cnnvis.analysis import _validate
from cnnvis.analysis._analysis import _from_archive, _to_archive
from cnnvis.analysis._file import FORMAT_VERSION, read_archive, write_archive
from cnnvis.diff._match import STATUSES
from cnnvis.diff._result import Diff, LayerDiff
from cnnvis.errors import AnalysisFileError

__all__ = ["save_diff", "load_diff", "is_diff_file", "path_is_diff", "DIFF_VERSION"]

DIFF_VERSION = 2  # 2: per-neuron chance levels


def save_diff(path: str | os.PathLike, diff: Diff, analysis_a, analysis_b) -> None:
    manifest, arrays = _to_archive(analysis_a)
    manifest_b, arrays_b = _to_archive(analysis_b)
    manifest_b["version"] = FORMAT_VERSION  # (write_archive adds it to A's head only)
    arrays.update({f"b/{k}": v for k, v in arrays_b.items()})
    arrays["diff/cka"] = diff.cka
    arrays["diff/alignment"] = diff.alignment
    arrays["diff/best"] = diff.best
    for n, l in enumerate(diff.layers):
        arrays[f"diff/layer/{n}/partner"] = l.partner
        arrays[f"diff/layer/{n}/correlation"] = l.correlation
        arrays[f"diff/layer/{n}/status"] = np.array([STATUSES.index(s) for s in l.status], np.uint8)
        arrays[f"diff/layer/{n}/class_change"] = l.class_change
        arrays[f"diff/layer/{n}/chance"] = l.chance
    manifest["diff"] = dict(
        version=DIFF_VERSION, layers_a=list(diff.layers_a), layers_b=list(diff.layers_b),
        same_architecture=diff.same_architecture, threshold=diff.threshold, class_names=list(diff.class_names),
        meta=diff.meta, b=manifest_b,
        layers=[dict(a=l.a, b=l.b, cka=_json_float(l.cka), weight_drift=_json_float(l.weight_drift),
                     weight_drift_unaligned=_json_float(l.weight_drift_unaligned)) for l in diff.layers])
    stored = {n for n in arrays if "/sheet/" in n}  # JPEG sheets: compressed already
    write_archive(path, manifest, arrays, stored=stored)


def is_diff_file(head: dict) -> bool:
    return isinstance(head, dict) and isinstance(head.get("diff"), dict)


def path_is_diff(path) -> bool:
    """Whether `path` is a diff file, reading its manifest only (False for anything unreadable: the caller
    opens it as an analysis and reports the problem)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return is_diff_file(json.loads(zf.read("manifest.json")))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False


def load_diff(path: str | os.PathLike):
    """(Diff, analysis of A, analysis of B) from a file `save_diff` wrote."""
    head, arrays = read_archive(path, extra=_diff_plan)
    if not is_diff_file(head):
        raise AnalysisFileError(f"{path}: an analysis file without a diff (write one with `cnnvis diff -o`)")
    d = head["diff"]
    if d.get("version", 0) > DIFF_VERSION:
        raise AnalysisFileError(f"{path}: diff written by a newer cnnvis (diff version {d.get('version')}); "
                                "upgrade cnnvis")
    try:
        b_arrays = {k[2:]: v for k, v in arrays.items() if k.startswith("b/")}
        a_arrays = {k: v for k, v in arrays.items() if not k.startswith(("b/", "diff/"))}
        analysis_a = _from_archive(head, a_arrays, path)
        _validate.check_values(path, d["b"], _validate.plan(path, d["b"]), b_arrays)
        analysis_b = _from_archive(d["b"], b_arrays, path)
        layers = []
        for n, l in enumerate(d["layers"]):
            p = f"diff/layer/{n}/"
            layers.append(LayerDiff(
                a=l["a"], b=l["b"], cka=_float(l["cka"]), partner=arrays[p + "partner"].astype(np.int64),
                correlation=arrays[p + "correlation"].astype(np.float64),
                status=np.array(STATUSES, "<U9")[arrays[p + "status"].astype(np.int64)],
                class_change=arrays[p + "class_change"].astype(np.float64),
                chance=arrays[p + "chance"].astype(np.float64) if p + "chance" in arrays
                else np.full(len(arrays[p + "partner"]), np.nan),
                weight_drift=_float(l["weight_drift"]), weight_drift_unaligned=_float(l["weight_drift_unaligned"])))
        diff = Diff(layers_a=tuple(d["layers_a"]), layers_b=tuple(d["layers_b"]), cka=arrays["diff/cka"],
                    alignment=arrays["diff/alignment"].astype(np.int64),
                    best=arrays["diff/best"].astype(np.int64), layers=tuple(layers),
                    same_architecture=bool(d["same_architecture"]), threshold=float(d["threshold"]),
                    class_names=tuple(d["class_names"]), meta=dict(d.get("meta", {})))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, AnalysisFileError):
            raise
        raise AnalysisFileError(f"{path}: corrupt diff file (missing or malformed {exc})") from None
    return diff, analysis_a, analysis_b


_MAX = 1 << 15  # a free dimension's bound: neurons of a layer, as the analysis reader allows


def _diff_plan(path, head: dict, plan_a) -> "_validate.Plan":
    """The members a diff file adds to A's analysis: B's analysis under b/ (planned from B's manifest, as a
    file of its own) and the diff's arrays, each with its dtype and shape (checked before they are inflated)."""
    p = _validate.Plan()
    d = head.get("diff")
    if not isinstance(d, dict):
        return p
    r = _validate._Reader(path)
    b_head = r.dict(d.get("b"), "diff.b")
    plan_b = _validate.plan(path, b_head)
    p.members.update((f"b/{n}", spec) for n, spec in plan_b.members.items())
    p.stored.update((f"b/{n}", f"b/{m}") for n, m in plan_b.stored.items())
    la = len(r.list(d.get("layers_a"), "diff.layers_a"))
    lb = len(r.list(d.get("layers_b"), "diff.layers_b"))
    k = len(r.list(d.get("class_names"), "diff.class_names"))

    def add(name, shape, kinds, what):
        p.members[name], p.stored[name] = _validate.Spec(shape, kinds, what), name

    add("diff/cka", (la, lb), "f", "layer x layer CKA")
    add("diff/alignment", (la,), "iu", "layer alignment")
    add("diff/best", (la,), "iu", "best layer of B")
    for n, layer in enumerate(r.list(d.get("layers"), "diff.layers")):
        name = r.str(r.dict(layer, f"diff.layers[{n}]").get("a"), f"diff.layers[{n}].a")
        if name not in plan_a.index:
            r.fail(f"diff.layers[{n}].a", f"{name!r} is not a layer of the analysis")
        c = plan_a.neurons[plan_a.index[name]]
        add(f"diff/layer/{n}/partner", (c,), "iu", f"partners of {name}")
        add(f"diff/layer/{n}/correlation", (c,), "f", f"correlations of {name}")
        add(f"diff/layer/{n}/status", (c,), "u1", f"statuses of {name}")
        add(f"diff/layer/{n}/class_change", (k, c), "f", f"class change of {name}")
        if d.get("version", 1) >= 2:
            add(f"diff/layer/{n}/chance", (c,), "f", f"chance levels of {name}")
    return p


def _json_float(v: float):
    return float(v) if np.isfinite(v) else None


def _float(v) -> float:
    return float("nan") if v is None else float(v)

"""What a .cnnvis file may hold, checked once, when it is opened, before anything uses or allocates its data.

`read_archive` (cnnvis.analysis._file) calls, in order:
1. `check_manifest_bytes` on the manifest's raw bytes (size and nesting limits, before JSON parses it);
2. `plan(path, head)`: the manifest's structure and types (unique layer names, inputs naming earlier layers,
   connections between existing layers, counts >= 0, index ranges ...) and, from it, every member the file
   must hold with its dtype kind and shape (`Spec`);
3. `check_header(path, member, spec, dtype, shape, header_bytes, file_size)` on each member's .npy header and
   zip directory entry, before the member is inflated: the header must agree with the spec and the member
   must be exactly as long as its header declares;
4. `check_values(path, head, plan, arrays)`: finiteness where a value must be finite, ranges, indices, the
   sizes that only the arrays together fix (top-k per layer).
Members the manifest does not name are never read. Every failure is an AnalysisFileError of one line naming
the file, the member (or manifest entry) and what is wrong, so opening any file costs memory in proportion to
what its manifest declares, never to what its members claim.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from cnnvis.errors import AnalysisFileError
from cnnvis.graph._network import CONNECTION_MODES, LAYER_KINDS

__all__ = ["MANIFEST_BYTES", "MANIFEST_DEPTH", "MAX_NEURONS", "Spec", "Plan", "check_manifest_bytes", "plan",
           "check_header", "check_values"]

MANIFEST_BYTES = 32 * 2**20  # ResNet-50's manifest: ~0.3 MB
MANIFEST_DEPTH = 32          # the format nests 5 deep
MAX_NEURONS = 1 << 15        # per layer; identity connections become dense (n x n) matrices on use
MAX_TOP_K = 1 << 16          # learned features per neuron, where the manifest does not say
MAX_PATCH_SIDE = 4096        # stored crop side (analyze caps it at --patch-size)
MAX_SHEET_SIDE = 65535       # JPEG's limit
_FLOAT, _INT, _UINT8 = "f", "iu", "u1"


def _fail(path, where: str, what: str):
    raise AnalysisFileError(f"{path}: corrupt analysis file: {where}: {what}")


# -- 1. the manifest's bytes ---------------------------------------------------------------------------------
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def check_manifest_bytes(path, size: int, raw: bytes | None = None) -> None:
    """The declared size (from the zip directory, before reading) and then the nesting depth of the bytes
    (before json.loads, which would recurse once per level)."""
    if size > MANIFEST_BYTES:
        _fail(path, "manifest.json", f"{size} bytes, more than the {MANIFEST_BYTES} a manifest may have")
    if raw is None:
        return
    b = np.frombuffer(_STRINGS.sub(b'""', raw), np.uint8)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int32) - np.isin(b, (ord("]"), ord("}")))
    depth = int(np.cumsum(step).max()) if step.size else 0
    if depth > MANIFEST_DEPTH:
        _fail(path, "manifest.json", f"nested {depth} deep, more than the {MANIFEST_DEPTH} a manifest may be")


# -- 2. the manifest's structure and the members it names -----------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """A member's expected dtype kinds ("f", "iu", or "u1" for uint8) and shape; a dimension given as a
    negative number -b is free up to b (its value is checked across members by check_values)."""

    shape: tuple
    kinds: str
    what: str


@dataclass
class Plan:
    members: dict = field(default_factory=dict)   # logical name -> Spec
    stored: dict = field(default_factory=dict)    # logical name -> the member holding it (aliases resolved)
    names: list = field(default_factory=list)     # per layer
    neurons: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    index: dict = field(default_factory=dict)     # layer name -> position
    edges: set = field(default_factory=set)       # (dst, src) of every connection
    group_refs: dict = field(default_factory=dict)  # crop group -> layers (indices) whose crops point into it


class _Reader:
    """Typed access to manifest values; every failure names the entry."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, what):
        _fail(self.path, f"manifest {where}", what)

    def dict(self, v, where) -> dict:
        if not isinstance(v, dict):
            self.fail(where, f"must be an object, got {_kind(v)}")
        return v

    def list(self, v, where) -> list:
        if not isinstance(v, list):
            self.fail(where, f"must be a list, got {_kind(v)}")
        return v

    def str(self, v, where) -> str:
        if not isinstance(v, str):
            self.fail(where, f"must be a string, got {_kind(v)}")
        return v

    def int(self, v, where, lo: int = 0, hi: int | None = None) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            self.fail(where, f"must be an integer in {rng}, got {_short(v)}")
        return v

    def number(self, v, where, *, optional=False):
        if v is None and optional:
            return None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            self.fail(where, f"must be a finite number, got {_short(v)}")
        return v

    def index_key(self, k, where, n: int) -> int:
        """A JSON object key that holds a layer index."""
        if not (isinstance(k, str) and k.isdigit() and int(k) < n) and not (isinstance(k, int) and 0 <= k < n):
            self.fail(where, f"key {_short(k)} is not a layer index in 0..{n - 1}")
        return int(k)


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), f"{_short(v)}")


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


_META_TYPES = {"n_images": "count", "top_k": "count", "max_patch": "count", "ranks": "count", "world_size": "count",
               "accuracy": "number", "test_accuracy": "number", "input_shape": "shape",
               "model": "str", "dataset": "str", "demo_model": "str", "model_spec": "str", "cnnvis_version": "str",
               "created": "str"}


def plan(path, head: dict) -> Plan:
    """The manifest's structure checked, and every member it names with its expected dtype and shape."""
    r, p = _Reader(path), Plan()
    v1 = head["version"] == 1
    meta = _plan_meta(r, head)
    _plan_layers(r, p, head)
    _plan_connections(r, p, head, v1)
    _plan_per_layer(r, p, head, v1, meta)
    _plan_history(r, p, head)
    _plan_aliases(r, p, head)
    return p


def _plan_meta(r: _Reader, head: dict) -> dict:
    meta = r.dict(head.get("meta") or {}, "meta")
    for key, t in _META_TYPES.items():
        if key in meta:
            v = meta[key]
            if t == "count":
                r.int(v, f"meta.{key}")
            elif t == "number":
                r.number(v, f"meta.{key}")
            elif t == "str":
                r.str(v, f"meta.{key}")
            else:
                for i, s in enumerate(r.list(v, f"meta.{key}")):
                    r.int(s, f"meta.{key}[{i}]", 1)
    classes = r.list(head.get("class_names"), "class_names")
    if not classes:
        r.fail("class_names", "is empty")
    for i, c in enumerate(classes):
        r.str(c, f"class_names[{i}]")
    return meta


def _plan_layers(r: _Reader, p: Plan, head: dict) -> None:
    layers = r.list(head.get("layers"), "layers")
    if not layers:
        r.fail("layers", "is empty")
    for i, d in enumerate(layers):
        where = f"layers[{i}]"
        r.dict(d, where)
        name = r.str(d.get("name"), f"{where}.name")
        if not name:
            r.fail(f"{where}.name", "is empty")
        if name in p.index:
            r.fail(f"{where}.name", f"{name!r} repeats layers[{p.index[name]}]: layer names must be unique")
        kind = r.str(d.get("kind"), f"{where}.kind")
        if kind not in LAYER_KINDS:
            r.fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(LAYER_KINDS)}")
        n = r.int(d.get("n_neurons"), f"{where}.n_neurons", 1, MAX_NEURONS)
        shape = r.list(d.get("shape"), f"{where}.shape")
        if not 1 <= len(shape) <= 4:
            r.fail(f"{where}.shape", f"must have 1 to 4 entries, got {len(shape)}")
        for j, s in enumerate(shape):
            r.int(s, f"{where}.shape[{j}]", 1, 1 << 20)
        if shape[0] != n:
            r.fail(f"{where}.shape", f"starts with {shape[0]}, but the layer has {n} neurons")
        inputs = r.list(d.get("inputs"), f"{where}.inputs")
        for j, src in enumerate(inputs):
            if r.str(src, f"{where}.inputs[{j}]") not in p.index:
                r.fail(f"{where}.inputs[{j}]", f"{src!r} is not an earlier layer")
        for key in ("op", "module"):
            if key in d:
                r.str(d[key], f"{where}.{key}")
        p.index[name] = i
        p.names.append(name)
        p.neurons.append(n)
        p.inputs.append(set(inputs))


def _plan_connections(r: _Reader, p: Plan, head: dict, v1: bool) -> None:
    for i, d in enumerate(r.list(head.get("connections"), "connections")):
        where = f"connections[{i}]"
        r.dict(d, where)
        dst, src = r.str(d.get("dst"), f"{where}.dst"), r.str(d.get("src"), f"{where}.src")
        for key, v in (("dst", dst), ("src", src)):
            if v not in p.index:
                r.fail(f"{where}.{key}", f"{v!r} is not a layer")
        if src not in p.inputs[p.index[dst]]:
            r.fail(where, f"{src!r} is not an input of {dst!r}")
        if (dst, src) in p.edges:
            r.fail(where, f"repeats the connection {dst!r} <- {src!r}")
        p.edges.add((dst, src))
        mode = r.str(d.get("mode"), f"{where}.mode")
        if mode not in CONNECTION_MODES:
            r.fail(f"{where}.mode", f"{mode!r} is not one of {', '.join(CONNECTION_MODES)}")
        nd, ns = p.neurons[p.index[dst]], p.neurons[p.index[src]]
        off = r.int(d.get("offset", 0), f"{where}.offset", 0, nd)
        if mode == "concat" and off + ns > nd:
            r.fail(where, f"concat of {ns} neurons at offset {off} overruns {dst!r}'s {nd}")
        if mode == "identity" and (nd != ns or off):
            r.fail(where, f"identity between {dst!r} ({nd} neurons) and {src!r} ({ns}) at offset {off}")
        if mode != "weight":
            continue
        keys = ["weight", "magnitude"]
        if not v1:  # format 2 leaves out |W| where it is abs() of the signed sums
            if d.get("magnitude") not in ("abs", "stored"):
                r.fail(f"{where}.magnitude", f"must be 'abs' or 'stored', got {_short(d.get('magnitude'))}")
            keys = keys[:1] if d["magnitude"] == "abs" else keys
        for key in keys:
            if d.get(f"{key}_scale") is not None and r.number(d[f"{key}_scale"], f"{where}.{key}_scale") <= 0:
                r.fail(f"{where}.{key}_scale", "must be > 0")
            p.members[f"conn/{i}/{key}"] = Spec((nd, ns), _FLOAT, f"connection {dst!r} <- {src!r}")


def _plan_per_layer(r: _Reader, p: Plan, head: dict, v1: bool, meta: dict) -> None:
    """Statistics, importance and learned features of the layers the manifest lists for each."""
    L, C, K = len(p.names), p.neurons, len(head["class_names"])
    stats = r.list(head.get("stats"), "stats")
    for i, j in enumerate(stats):
        j = r.int(j, f"stats[{i}]", 0, L - 1)
        p.members[f"stats/{j}/count"] = Spec((K,), _INT, f"layer {p.names[j]!r} class counts")
        for f in ("mean", "std", "max", "active"):
            p.members[f"stats/{j}/{f}"] = Spec((K, C[j]), _FLOAT, f"layer {p.names[j]!r} statistics")
    if len(set(stats)) != len(stats):
        r.fail("stats", "repeats a layer")
    for k, classes_j in r.dict(head.get("importance") or {}, "importance").items():
        j = r.index_key(k, "importance", L)
        for i, c in enumerate(r.list(classes_j, f"importance.{k}")):
            r.int(c, f"importance.{k}[{i}]", 0, K - 1)
        for f in ("mean_activation", "max_activation", "contribution"):
            p.members[f"importance/{j}/{f}"] = Spec((C[j],), _FLOAT, f"layer {p.names[j]!r} importance")
    top_k = meta.get("top_k")
    free_k = -(top_k if isinstance(top_k, int) and top_k >= 1 else MAX_TOP_K)
    if v1:
        for i, j in enumerate(r.list(head.get("features") or [], "features")):
            j = r.int(j, f"features[{i}]", 0, L - 1)
            _feature_members(p, j, free_k)
            p.members[f"features/{j}/patches"] = Spec(
                (C[j], free_k, -MAX_PATCH_SIDE, -MAX_PATCH_SIDE, -4), _UINT8, f"layer {p.names[j]!r} patches")
        return
    groups = _patch_plan(r, p, r.dict(head.get("patches"), "patches"))
    for k, g in r.dict(head.get("features") or {}, "features").items():
        j = r.index_key(k, "features", L)
        if not groups:
            r.fail(f"features.{k}", "names a crop group, but patches.groups is empty")
        g = r.int(g, f"features.{k}", 0, len(groups) - 1)
        _feature_members(p, j, free_k)
        p.members[f"features/{j}/crops"] = Spec((C[j], free_k), _INT, f"layer {p.names[j]!r} crop ids")
        p.group_refs.setdefault(g, []).append(j)


def _plan_history(r: _Reader, p: Plan, head: dict) -> None:
    h = head.get("history")
    if not h:
        return
    r.dict(h, "history")
    snaps = r.list(h.get("snapshots"), "history.snapshots")
    if not snaps:
        r.fail("history.snapshots", "is empty")
    for i, s in enumerate(snaps):
        r.str(s, f"history.snapshots[{i}]")
    hl = r.list(h.get("layers"), "history.layers")
    for i, n in enumerate(hl):
        if r.str(n, f"history.layers[{i}]") not in p.index:
            r.fail(f"history.layers[{i}]", f"{n!r} is not a layer")
    if len(set(hl)) != len(hl):
        r.fail("history.layers", "repeats a layer")
    S = len(snaps)
    p.members["history/grad_mean"] = Spec((S, len(hl)), _FLOAT, "training history")
    p.members["history/rel_change"] = Spec((S, len(hl)), _FLOAT, "training history")
    p.members["history/loss"] = Spec((S,), _FLOAT, "training history")
    seen = set()
    for i, e in enumerate(r.list(h.get("edges") or [], "history.edges")):
        e = r.list(e, f"history.edges[{i}]")
        if len(e) != 2 or not all(isinstance(v, str) for v in e) or tuple(e) not in p.edges or tuple(e) in seen:
            r.fail(f"history.edges[{i}]", f"{_short(e)} is not a [dst, src] connection of the graph (or repeats one)")
        seen.add(tuple(e))
        shape = (p.neurons[p.index[e[0]]], p.neurons[p.index[e[1]]])
        p.members[f"history/edge_grad/{i}"] = Spec(shape, _FLOAT, f"edge gradient {e[0]!r} <- {e[1]!r}")
        p.members[f"history/edge_change/{i}"] = Spec(shape, _FLOAT, f"edge change {e[0]!r} <- {e[1]!r}")


def _plan_aliases(r: _Reader, p: Plan, head: dict) -> None:
    """Identical arrays are stored once; the alias's own spec is checked against the stored member too."""
    p.stored = {n: n for n in p.members}
    aliases = r.dict(head.get("aliases") or {}, "aliases")
    for alias, target in aliases.items():
        r.str(target, f"aliases.{alias}")
        if alias not in p.members or target not in p.members or alias == target:
            r.fail(f"aliases.{alias}", f"{_short(target)}: both must be members the manifest names")
        if aliases.get(target) is not None:
            r.fail(f"aliases.{alias}", f"{target!r} is itself an alias")
        if p.members[alias].kinds != p.members[target].kinds:
            r.fail(f"aliases.{alias}", f"{alias!r} and {target!r} hold different kinds of values")
        p.stored[alias] = target


def _feature_members(p: Plan, j: int, free_k: int) -> None:
    C, what = p.neurons[j], f"layer {p.names[j]!r} learned features"
    p.members[f"features/{j}/scores"] = Spec((C, free_k), _FLOAT, what)
    p.members[f"features/{j}/image_index"] = Spec((C, free_k), _INT, what)
    p.members[f"features/{j}/boxes"] = Spec((C, free_k, 4), _INT, what)


def _patch_plan(r: _Reader, p: Plan, entry: dict) -> list:
    codec = entry.get("codec")
    if codec not in ("raw", "jpeg"):
        r.fail("patches.codec", f"unknown patch codec {_short(codec)}")
    groups = r.list(entry.get("groups"), "patches.groups")
    for gi, e in enumerate(groups):
        where = f"patches.groups[{gi}]"
        r.dict(e, where)
        shape = r.list(e.get("shape"), f"{where}.shape")
        if len(shape) != 3:
            r.fail(f"{where}.shape", f"must be [h, w, channels], got {_short(shape)}")
        h, w = (r.int(s, f"{where}.shape[{i}]", 1, MAX_PATCH_SIDE) for i, s in enumerate(shape[:2]))
        ch = r.int(shape[2], f"{where}.shape[2]", 1, 4)
        n = r.int(e.get("n"), f"{where}.n")
        if codec == "raw" or n == 0:
            p.members[f"patches/{gi}/pixels"] = Spec((n, h, w, ch), _UINT8, f"crop group {gi}")
            continue
        if ch not in (1, 3):
            r.fail(f"{where}.shape", f"JPEG sheets hold 1 or 3 channels, got {ch}")
        tile = r.list(e.get("tile"), f"{where}.tile")
        if len(tile) != 2:
            r.fail(f"{where}.tile", f"must be [h, w], got {_short(tile)}")
        th = r.int(tile[0], f"{where}.tile[0]", h, MAX_SHEET_SIDE)
        tw = r.int(tile[1], f"{where}.tile[1]", w, MAX_SHEET_SIDE)
        cols = r.int(e.get("cols"), f"{where}.cols", 1, MAX_SHEET_SIDE // tw)
        rows = r.int(e.get("rows"), f"{where}.rows", 1, MAX_SHEET_SIDE // th)
        sheets = r.int(e.get("sheets"), f"{where}.sheets")
        if sheets != -(-n // (cols * rows)):
            r.fail(f"{where}.sheets", f"{sheets} sheets of {cols}x{rows} tiles cannot hold {n} crops exactly")
        # a JPEG is never much longer than its pixels: bounds a deflated sheet member before it is inflated
        most = 2 * rows * th * cols * tw * ch + (1 << 20)
        for s in range(sheets):
            p.members[f"patches/{gi}/sheet/{s}"] = Spec((-most,), _UINT8, f"crop group {gi} sheet {s}")
    return groups


# -- 3. each member's header and directory entry, before it is inflated ---------------------------------------
def check_header(path, member: str, spec: Spec, dtype: np.dtype, shape: tuple,
                 header_bytes: int, file_size: int) -> None:
    where = f"member {member}.npy ({spec.what})"
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None or \
            not _kind_ok(dtype, spec.kinds):
        want = {"f": "floating point", "iu": "integer", "u1": "uint8"}[spec.kinds]
        _fail(path, where, f"dtype {dtype.str}, expected {want}")
    if len(shape) != len(spec.shape) or any(
            s != e if e >= 0 else s > -e for s, e in zip(shape, spec.shape)):
        _fail(path, where, f"shape {tuple(shape)}, expected {_shape_text(spec.shape)}")
    nbytes = math.prod(shape) * dtype.itemsize
    if header_bytes + nbytes != file_size:
        _fail(path, where, f"holds {file_size} bytes, its header declares {header_bytes + nbytes}")


def _kind_ok(dtype: np.dtype, kinds: str) -> bool:
    if kinds == _UINT8:
        return dtype == np.uint8
    return dtype.kind in kinds and dtype.itemsize <= 8


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) if s >= 0 else f"<={-s}" for s in shape) + (",)" if len(shape) == 1 else ")")


# -- 4. values ------------------------------------------------------------------------------------------------
def check_values(path, head: dict, p: Plan, arrays: dict) -> None:
    """Finiteness, ranges, indices and the sizes fixed by several members together (arrays: logical name ->
    array, aliases resolved)."""
    def bad(name, what):
        stored = p.stored[name]
        _fail(path, f"member {stored}.npy ({p.members[name].what})", what)

    def finite(name, a):
        if not np.isfinite(a).all():
            bad(name, "holds NaN or infinite values")

    for name, a in arrays.items():
        if name.startswith("conn/"):
            finite(name, a)
            if name.endswith("/magnitude") and (a < 0).any():
                bad(name, "holds negative weight magnitudes")
    for name in arrays:
        if name.startswith("stats/") and name.endswith("/count"):
            j = name.split("/")[1]
            count = arrays[name]
            if (count < 0).any():
                bad(name, f"holds a negative count ({int(count.min())})")
            seen = count > 0
            for f in ("mean", "std", "max", "active"):
                key = f"stats/{j}/{f}"
                if not np.isfinite(arrays[key][seen]).all():
                    bad(key, "holds NaN or infinite values for a class with images")
            if (arrays[f"stats/{j}/std"][seen] < 0).any():
                bad(f"stats/{j}/std", "holds a negative standard deviation")
            act = arrays[f"stats/{j}/active"][seen]
            if ((act < 0) | (act > 1)).any():
                bad(f"stats/{j}/active", "holds a fraction outside [0, 1]")
        elif name.startswith("importance/"):
            a = arrays[name]
            if name.endswith("/max_activation"):
                if np.isinf(a).any():
                    bad(name, "holds infinite values")
            else:
                finite(name, a)
                if name.endswith("/contribution") and (a < 0).any():
                    bad(name, "holds negative contributions")
    for name in arrays:
        if name.startswith("features/") and name.endswith("/scores"):
            _check_features(path, p, arrays, name.split("/")[1], bad)
    if head["version"] != 1:
        for g, js in p.group_refs.items():
            n = p.members.get(f"patches/{g}/pixels")
            n = n.shape[0] if n is not None else head["patches"]["groups"][g]["n"]
            refs = sum(arrays[f"features/{j}/crops"].size for j in js)
            if n > refs:
                _fail(path, f"manifest patches.groups[{g}].n", f"{n} crops, more than the {refs} its layers show")
            for j in js:
                crops = arrays[f"features/{j}/crops"]
                if crops.size and (crops.min() < -1 or crops.max() >= n):
                    bad(f"features/{j}/crops", f"holds crop ids outside -1..{n - 1}")


def _check_features(path, p: Plan, arrays: dict, j: str, bad) -> None:
    scores = arrays[f"features/{j}/scores"]
    k = scores.shape[1]
    names = [f"features/{j}/{f}" for f in ("image_index", "boxes", "crops", "patches")]
    for name in names:
        if name in arrays and arrays[name].shape[1] != k:
            bad(name, f"holds {arrays[name].shape[1]} entries per neuron, the scores {k}")
    index = arrays[f"features/{j}/image_index"]
    if index.size and index.min() < -1:
        bad(f"features/{j}/image_index", f"holds image index {int(index.min())}")
    if np.isinf(scores).any():
        bad(f"features/{j}/scores", "holds infinite scores")
    boxes = arrays[f"features/{j}/boxes"]
    if boxes.size and ((boxes < 0).any() or (boxes[..., 2] < boxes[..., 0]).any()
                       or (boxes[..., 3] < boxes[..., 1]).any()):
        bad(f"features/{j}/boxes", "holds a box with negative or reversed corners")

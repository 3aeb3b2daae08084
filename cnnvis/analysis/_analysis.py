"""The Analysis: everything derived from a model and a data set, and its .cnnvis file."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, fields

import numpy as np

from cnnvis.analysis._file import read_archive, write_archive
from cnnvis.analysis._jpeg import decode_groups, encode_groups
from cnnvis.analysis._patch_types import CropGroup, PatchArray
from cnnvis.compute._types import ClassStatistics
from cnnvis.errors import AnalysisFileError, CnnvisError
from cnnvis.graph._network import Connection, Layer, NetworkGraph

__all__ = ["LearnedFeatures", "Importance", "TrainingHistory", "Analysis"]


@dataclass(frozen=True)
class LearnedFeatures:
    """Top-k input patches of each of a layer's C neurons (Girshick et al.: receptive-field crops).

    patches (C, k, Ph, Pw, ch) uint8: the receptive field of each neuron's maximal position cropped from the
    input image (images are in 0..1, stored as 0..255; a field larger than the image gives the whole image,
    one that reaches past the border is shifted inside; crops longer than the analysis's max_patch are
    scaled down by area averaging). An analysis holds it as a PatchArray (array-like: indexing, shape,
    np.asarray) whose crops are shared with the other layers showing the same crop; a plain array works
    too. In a file of more than 16 MB of crops they are JPEG-coded (see cnnvis.analysis._jpeg).
    scores (C, k) float32: the spatial max of the activation, descending; NaN where fewer than k images were seen. image_index (C, k) int64: index into
    the data set, -1 where unfilled. boxes (C, k, 4) int32: y0, x0, y1, x1 of the crop in input pixels.
    """

    patches: np.ndarray
    scores: np.ndarray
    image_index: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class Importance:
    """Importance of each of a layer's C neurons.

    mean_activation, max_activation (C,) float64: mean of the spatial mean and max of the spatial max over the
    images of `classes`; contribution (C,) float64: mean over images of |sum over positions of activation x
    gradient of the predicted-class score| (first-order estimate of the score lost without the neuron).
    """

    mean_activation: np.ndarray
    max_activation: np.ndarray
    contribution: np.ndarray
    classes: tuple[int, ...]


@dataclass(frozen=True)
class TrainingHistory:
    """Debugging values over S training snapshots for the L weighted layers (conv, linear).

    grad_mean (S, L) float64: mean |dLoss/dW| on a fixed batch; rel_change (S, L) float64:
    ||W_t - W_{t-1}|| / ||W_{t-1}||, NaN for the first snapshot; loss (S,) float64 on the fixed batch.
    edge_grad[(dst, src)] (n_dst, n_src) float32: sum over each kernel of |dLoss/dW| at the last snapshot;
    edge_change[(dst, src)] (n_dst, n_src) float32: per neuron pair, sum |W_t - W_{t-1}| / sum |W_{t-1}|
    between the last two snapshots (zeros with one snapshot).
    """

    snapshots: tuple[str, ...]
    layers: tuple[str, ...]
    grad_mean: np.ndarray
    rel_change: np.ndarray
    loss: np.ndarray
    edge_grad: dict = field(default_factory=dict)
    edge_change: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """All derived features of one model on one data set. Saved as one versioned .cnnvis file.

    stats[layer]: ClassStatistics for every layer; features[layer]: LearnedFeatures; importance[layer]:
    Importance; history: TrainingHistory or None; meta: JSON-able facts (model, dataset, n_images,
    input_shape, accuracy, cnnvis_version).
    """

    graph: NetworkGraph
    class_names: tuple[str, ...]
    stats: dict
    features: dict
    importance: dict
    history: TrainingHistory | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def dead_fraction(self, layer: str) -> np.ndarray:
        """(C,) fraction of images on which the neuron's activation is <= 0 at every position.

        For a layer that feeds a ReLU this is the fraction of images on which the ReLU input is <= 0
        everywhere (the ReLU outputs zero there); 1.0 marks a neuron that never fires.
        """
        self.graph.layer(layer)
        return 1.0 - self.stats[layer].overall_active()

    def relu_inputs(self) -> tuple[str, ...]:
        """Layers whose output feeds a ReLU-like activation."""
        out = []
        for l in self.graph.layers:
            if l.kind == "activation" and l.op.lower() in ("relu", "relu6", "f.relu", "torch.relu"):
                out.extend(i for i in l.inputs if i not in out)
        return tuple(out)

    # -- file -----------------------------------------------------------------------------------------
    def prefetch_patches(self) -> int:
        """Start decoding the learned-feature sheets of a loaded file in background threads (a viewer calls
        this before it clusters, so the crops of its first view are ready by the time it lays them out);
        returns the number of sheets started (0 for an analysis held in memory)."""
        from cnnvis.analysis._patch_types import prefetch_sheets

        groups = {id(p.group): p.group for p in (f.patches for f in self.features.values())
                  if isinstance(p, PatchArray)}
        return prefetch_sheets(groups.values())

    def save(self, path: str | os.PathLike) -> None:
        manifest, arrays = _to_archive(self)
        # JPEG sheets are compressed already: deflating them again costs time and saves nothing
        write_archive(path, manifest, arrays, stored={n for n in arrays if "/sheet/" in n})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Analysis":
        head, arrays = read_archive(path)
        try:
            return _from_archive(head, arrays, path)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, CnnvisError):
                raise
            raise AnalysisFileError(f"{path}: corrupt analysis file (missing or malformed {exc})") from None


# -- (de)serialisation: arrays go in as .npy members, everything else in the JSON manifest -------------
# Format 2 (format 1 files still load): learned-feature crops shared between layers, in groups (raw or JPEG
# sheets); identical arrays stored once (manifest "aliases"); |W| matrices that equal abs() of the signed
# one not stored; integer arrays in the narrowest dtype that holds them; connection matrices as scaled
# float16 once their float32 copies would exceed CONNECTIONS_EXACT bytes (ResNet-50's: 60 MB).
CONNECTIONS_EXACT = 32 * 2**20


def _edge_key(dst: str, src: str) -> str:
    return f"{dst}<-{src}"


def _narrow_int(a: np.ndarray) -> np.ndarray:
    for t in (np.int8, np.int16, np.int32):
        info = np.iinfo(t)
        if a.size == 0 or (a.min() >= info.min and a.max() <= info.max):
            return a.astype(t)
    return a


def _half(m: np.ndarray) -> tuple[np.ndarray, float]:
    scale = float(np.abs(m).max()) if m.size else 0.0
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    return (m / scale).astype(np.float16), scale


def _connections(a: Analysis, arrays: dict) -> list:
    weighted = [c for c in a.graph.connections if c.mode == "weight"]
    derived = {id(c): np.array_equal(c.magnitude, np.abs(c.weight)) for c in weighted}
    exact_bytes = sum(c.weight.nbytes + (0 if derived[id(c)] else c.magnitude.nbytes) for c in weighted)
    half = exact_bytes > CONNECTIONS_EXACT
    conns = []
    for i, c in enumerate(a.graph.connections):
        d = dict(dst=c.dst, src=c.src, mode=c.mode, offset=c.offset)
        if c.mode == "weight":
            pairs = [("weight", c.weight)] + ([] if derived[id(c)] else [("magnitude", c.magnitude)])
            d["magnitude"] = "abs" if derived[id(c)] else "stored"
            for key, m in pairs:
                if half:
                    arrays[f"conn/{i}/{key}"], d[f"{key}_scale"] = _half(m)
                else:
                    arrays[f"conn/{i}/{key}"] = m
        conns.append(d)
    return conns


def _patch_groups(features: dict) -> tuple[dict, list]:
    """Each layer's PatchArray (plain arrays wrapped as their own group) and the distinct groups."""
    arrays, groups, seen = {}, [], {}
    for name, f in features.items():
        p = f.patches
        if not isinstance(p, PatchArray):
            p = np.asarray(p, np.uint8)
            C, k = p.shape[:2]
            p = PatchArray(CropGroup(p.shape[2:], p.reshape(C * k, *p.shape[2:])), np.arange(C * k).reshape(C, k))
        if id(p.group) not in seen:
            seen[id(p.group)] = len(groups)
            groups.append(p.group)
        arrays[name] = p
    return arrays, [seen, groups]


def _dedupe(arrays: dict) -> dict:
    """name -> earlier name with the same dtype, shape and bytes (written once)."""
    first, aliases = {}, {}
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        key = (arr.dtype.str, arr.shape, hashlib.blake2b(arr.tobytes(), digest_size=16).digest())
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def _to_archive(a: Analysis) -> tuple[dict, dict]:
    arrays: dict[str, np.ndarray] = {}
    layers = [dict(name=l.name, kind=l.kind, n_neurons=l.n_neurons, inputs=list(l.inputs), shape=list(l.shape),
                   op=l.op, module=l.module) for l in a.graph.layers]
    conns = _connections(a, arrays)
    names = list(a.graph.names)
    for group, per_layer in (("stats", a.stats), ("importance", a.importance)):
        for lname, obj in per_layer.items():
            j = names.index(lname)
            for f in fields(obj):
                v = getattr(obj, f.name)
                if isinstance(v, np.ndarray):
                    arrays[f"{group}/{j}/{f.name}"] = v
    patch_arrays, (group_id, groups) = _patch_groups(a.features)
    feature_groups = {}
    for lname, f in a.features.items():
        j = names.index(lname)
        arrays[f"features/{j}/scores"] = f.scores
        arrays[f"features/{j}/image_index"] = _narrow_int(f.image_index)
        arrays[f"features/{j}/boxes"] = _narrow_int(f.boxes)
        arrays[f"features/{j}/crops"] = patch_arrays[lname].ids
        feature_groups[str(j)] = group_id[id(patch_arrays[lname].group)]
    patches, patch_members = encode_groups(groups)
    arrays.update(patch_members)
    importance_classes = {names.index(k): list(v.classes) for k, v in a.importance.items()}
    hist = None
    if a.history is not None:
        h = a.history
        hist = dict(snapshots=list(h.snapshots), layers=list(h.layers),
                    edges=[[d, s] for (d, s) in h.edge_grad])
        arrays["history/grad_mean"] = h.grad_mean
        arrays["history/rel_change"] = h.rel_change
        arrays["history/loss"] = h.loss
        for i, key in enumerate(h.edge_grad):
            arrays[f"history/edge_grad/{i}"] = h.edge_grad[key]
            arrays[f"history/edge_change/{i}"] = h.edge_change[key]
    aliases = _dedupe(arrays)
    for name in aliases:
        del arrays[name]
    manifest = dict(layers=layers, connections=conns, class_names=list(a.class_names), meta=a.meta,
                    stats=sorted(names.index(k) for k in a.stats),
                    features=feature_groups, patches=patches, aliases=aliases,
                    importance=importance_classes, history=hist)
    return manifest, arrays


def _from_archive(head: dict, arrays: dict, path) -> Analysis:
    """The Analysis of a checked manifest and its arrays (aliases resolved; see cnnvis.analysis._validate)."""
    v1 = head["version"] == 1
    layers = tuple(Layer(name=d["name"], kind=d["kind"], n_neurons=int(d["n_neurons"]),
                         inputs=tuple(d["inputs"]), shape=tuple(int(s) for s in d["shape"]), op=d.get("op", ""),
                         module=d.get("module", ""))
                   for d in head["layers"])
    conns = []
    for i, d in enumerate(head["connections"]):
        w = m = None
        if d["mode"] == "weight":
            w = _matrix(arrays[f"conn/{i}/weight"], d.get("weight_scale"))
            m = np.abs(w) if d.get("magnitude") == "abs" else _matrix(arrays[f"conn/{i}/magnitude"],
                                                                      d.get("magnitude_scale"))
        conns.append(Connection(dst=d["dst"], src=d["src"], mode=d["mode"], weight=w, magnitude=m,
                                offset=int(d["offset"])))
    graph = NetworkGraph(layers=layers, connections=tuple(conns))
    names = graph.names

    def group(prefix, cls, ids, extra=None):
        out = {}
        for j in ids:
            j = int(j)
            kw = {f.name: arrays[f"{prefix}/{j}/{f.name}"] for f in fields(cls) if f.name != "classes"}
            if extra is not None:
                kw.update(extra(j))
            out[names[j]] = cls(**kw)
        return out

    if v1:
        features = group("features", LearnedFeatures, head["features"])
    else:
        crop_groups = decode_groups(head["patches"], arrays, path)
        features = {}
        for j, g in head["features"].items():
            j = int(j)
            features[names[j]] = LearnedFeatures(
                patches=PatchArray(crop_groups[int(g)], arrays[f"features/{j}/crops"]),
                scores=arrays[f"features/{j}/scores"],
                image_index=arrays[f"features/{j}/image_index"].astype(np.int64),
                boxes=arrays[f"features/{j}/boxes"].astype(np.int32))
    imp_classes = {int(k): tuple(v) for k, v in head["importance"].items()}
    history = None
    if head.get("history"):
        h = head["history"]
        edges = [tuple(e) for e in h["edges"]]
        history = TrainingHistory(
            snapshots=tuple(h["snapshots"]), layers=tuple(h["layers"]),
            grad_mean=arrays["history/grad_mean"], rel_change=arrays["history/rel_change"],
            loss=arrays["history/loss"],
            edge_grad={e: arrays[f"history/edge_grad/{i}"] for i, e in enumerate(edges)},
            edge_change={e: arrays[f"history/edge_change/{i}"] for i, e in enumerate(edges)})
    return Analysis(
        graph=graph, class_names=tuple(head["class_names"]),
        stats=group("stats", ClassStatistics, head["stats"]),
        features=features,
        importance=group("importance", Importance, imp_classes, lambda j: {"classes": imp_classes[j]}),
        history=history, meta=dict(head.get("meta") or {}))


def _matrix(stored: np.ndarray, scale) -> np.ndarray:
    if scale is None:
        return stored
    return stored.astype(np.float32) * np.float32(scale)

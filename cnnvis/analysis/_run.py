"""Running a data set through a traced model: statistics, learned features and importance in one pass."""
from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F

import cnnvis
from cnnvis.analysis._analysis import Analysis, Importance, LearnedFeatures
from cnnvis.analysis._receptive import crop_box, receptive_fields
from cnnvis.analysis._snapshots import training_history
from cnnvis.data._datasets import Dataset
from cnnvis.errors import DataError, ModelError
from cnnvis.graph._network import NetworkGraph
from cnnvis.graph._trace import Traced, trace
from cnnvis.progress import progress
from cnnvis.stats import ClassStatsAccumulator

__all__ = ["analyze"]


def analyze(model: torch.nn.Module, data: Dataset, *, snapshots=(), snapshot_names=None, batch_size: int = 128,
            top_k: int = 9, importance_classes=None, show_progress: bool = True, meta: dict | None = None,
            device: str = "cpu", max_patch: int = 64) -> Analysis:
    """Derived features of every neuron of `model` on `data` (one forward + backward pass per batch).

    snapshots: training checkpoints (paths or state dicts, oldest first) for the per-layer debugging values;
    importance_classes: class ids the importance is computed over (default: all). max_patch: learned-feature
    crops larger than this many pixels a side are stored scaled down (deep layers of ImageNet-sized models
    see the whole image; 9 full crops per neuron would not fit in memory). device: where the model
    runs ("cpu", "cuda", "auto"); on CUDA the activations stay on the GPU and the statistics kernel reads
    them there.
    """
    if top_k < 1:
        raise DataError(f"top_k must be >= 1, got {top_k}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if max_patch < 1:
        raise DataError(f"max_patch must be >= 1, got {max_patch}")
    classes = _importance_classes(importance_classes, data)
    dev = _torch_device(device)
    traced = trace(model, torch.from_numpy(data.images[: min(2, len(data))]))  # traces a copy
    traced.module.eval().to(dev)
    graph = traced.graph
    if not any(l.kind == "conv" for l in graph.layers):
        raise ModelError(f"{type(model).__name__} has no convolutional layer; cnnvis analyses CNNs")
    pass_ = _Pass(traced, data, top_k, classes, dev, max_patch)
    n_batches = (len(data) + batch_size - 1) // batch_size
    bar = progress(total=n_batches, desc="analysing", enabled=show_progress)
    for i in range(n_batches):
        pass_.run_batch(slice(i * batch_size, (i + 1) * batch_size))
        bar.update(1)
    bar.close()
    history = None
    if len(snapshots):
        history = training_history(model, graph, snapshots, data, names=snapshot_names,
                                   show_progress=show_progress)
    info = dict(model=type(model).__name__, dataset=data.name, n_images=len(data),
                input_shape=list(data.images.shape[1:]), accuracy=pass_.correct / len(data),
                top_k=top_k, max_patch=max_patch, cnnvis_version=cnnvis.__version__,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    info.update(meta or {})
    return Analysis(graph=graph, class_names=data.class_names, stats=pass_.statistics(),
                    features=pass_.learned_features(), importance=pass_.importance(), history=history,
                    meta=info)


def _torch_device(device: str) -> torch.device:
    if device not in ("auto", "cpu", "cuda"):
        raise DataError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DataError("device='cuda' asked for, but torch sees no CUDA device")
    return torch.device("cuda")


def _importance_classes(classes, data: Dataset) -> tuple[int, ...]:
    if classes is None:
        return tuple(range(data.n_classes))
    out = []
    for c in classes:
        if isinstance(c, str) and c in data.class_names:
            out.append(data.class_names.index(c))
        elif isinstance(c, (int, np.integer)) or (isinstance(c, str) and c.isdigit()):
            k = int(c)
            if not 0 <= k < data.n_classes:
                raise DataError(f"importance class {k} is outside [0, {data.n_classes})")
            out.append(k)
        else:
            raise DataError(f"unknown class {c!r} (classes: {', '.join(data.class_names)})")
    if not out:
        raise DataError("importance classes: the list is empty")
    return tuple(sorted(set(out)))


@dataclass
class _TopK:
    scores: np.ndarray  # (C, k) float32, -inf where empty
    index: np.ndarray   # (C, k) int64 image index
    pos: np.ndarray     # (C, k) int64 flat spatial position


class _Recorder(fx.Interpreter):
    """Runs the traced module and keeps the output of every layer node, with gradients retained."""

    def __init__(self, gm, wanted: dict):
        super().__init__(gm)
        self.wanted = wanted  # fx node -> layer name
        self.outputs: dict[str, torch.Tensor] = {}

    def run_node(self, n):
        out = super().run_node(n)
        name = self.wanted.get(n)
        if name is not None and isinstance(out, torch.Tensor):
            if out.requires_grad:
                out.retain_grad()
            self.outputs[name] = out
        return out


class _Pass:
    def __init__(self, traced: Traced, data: Dataset, top_k: int, classes: tuple[int, ...], device,
                 max_patch: int):
        self.device = device
        self.max_patch = max_patch
        self.graph: NetworkGraph = traced.graph
        self.gm = traced.module
        self.data = data
        self.k = top_k
        self.classes = np.asarray(classes)
        self.correct = 0
        self.node_names = {node: name for name, node in traced.nodes.items()}
        self.fields = receptive_fields(self.graph, traced.nodes, dict(self.gm.named_modules()))
        K = data.n_classes
        self.acc = {l.name: ClassStatsAccumulator(K, l.n_neurons) for l in self.graph.layers}
        self.top = {l.name: _TopK(np.full((l.n_neurons, top_k), -np.inf, np.float32),
                                  np.full((l.n_neurons, top_k), -1, np.int64),
                                  np.zeros((l.n_neurons, top_k), np.int64)) for l in self.graph.layers}
        zeros = {l.name: np.zeros(l.n_neurons) for l in self.graph.layers}
        self.imp_sum = {k: v.copy() for k, v in zeros.items()}
        self.imp_max = {k: np.full_like(v, -np.inf) for k, v in zeros.items()}
        self.contrib_sum = {k: v.copy() for k, v in zeros.items()}
        self.n_selected = 0

    def run_batch(self, sl: slice):
        x = torch.from_numpy(self.data.images[sl]).to(self.device).requires_grad_(True)
        labels = self.data.labels[sl]
        rec = _Recorder(self.gm, self.node_names)
        with torch.enable_grad():
            logits = rec.run(x)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise ModelError(f"the model must return class scores of shape (N, K), got "
                                 f"{getattr(logits, 'shape', type(logits).__name__)}")
            if logits.shape[1] != self.data.n_classes:
                raise ModelError(f"the model outputs {logits.shape[1]} class scores but the data set "
                                 f"{self.data.name!r} has {self.data.n_classes} classes")
            pred = logits.argmax(1)
            logits.gather(1, pred[:, None]).sum().backward()
        self.correct += int((pred.cpu().numpy() == labels).sum())
        sel_np = np.isin(labels, self.classes)
        sel = torch.from_numpy(sel_np).to(self.device)
        labels_dev = torch.from_numpy(labels).to(self.device)
        self.n_selected += int(sel_np.sum())
        start = sl.start
        for layer in self.graph.layers:
            a = rec.outputs[layer.name].detach()
            a3 = a.reshape(a.shape[0], layer.n_neurons, -1)  # (B, C, S); flatten keeps channels
            try:  # the stats kernel checks finiteness in its single read of the activations
                self.acc[layer.name].update(a3, labels_dev if a3.is_cuda else labels)
            except DataError as exc:
                raise DataError(f"layer {layer.name!r}, images {start}..{start + len(labels) - 1}: {exc}") from None
            m, am = a3.max(dim=2)
            self._update_topk(layer.name, m.cpu().numpy(), am.cpu().numpy(), start)
            g = rec.outputs[layer.name].grad
            if sel_np.any():
                self.imp_sum[layer.name] += a3[sel].mean(2).double().sum(0).cpu().numpy()
                self.imp_max[layer.name] = np.maximum(self.imp_max[layer.name],
                                                      m[sel].double().amax(0).cpu().numpy())
                if g is not None:
                    contrib = (a3 * g.reshape(a3.shape)).sum(2).abs()[sel]
                    self.contrib_sum[layer.name] += contrib.double().sum(0).cpu().numpy()

    def _update_topk(self, name: str, m: np.ndarray, am: np.ndarray, start: int):
        t = self.top[name]
        B = m.shape[0]
        scores = np.concatenate([t.scores, m.T.astype(np.float32)], 1)
        index = np.concatenate([t.index, np.broadcast_to(np.arange(start, start + B), (m.shape[1], B))], 1)
        pos = np.concatenate([t.pos, am.T.astype(np.int64)], 1)
        k = min(self.k, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(part, np.argsort(-np.take_along_axis(scores, part, 1), 1, kind="stable"), 1)
        t.scores = np.take_along_axis(scores, order, 1)
        t.index = np.take_along_axis(index, order, 1)
        t.pos = np.take_along_axis(pos, order, 1)

    # -- results -------------------------------------------------------------------------------------------
    def statistics(self) -> dict:
        return {name: acc.result() for name, acc in self.acc.items()}

    def importance(self) -> dict:
        n = max(self.n_selected, 1)
        return {name: Importance(mean_activation=self.imp_sum[name] / n,
                                 max_activation=np.where(np.isfinite(self.imp_max[name]), self.imp_max[name], np.nan),
                                 contribution=self.contrib_sum[name] / n, classes=tuple(int(c) for c in self.classes))
                for name in self.imp_sum}

    def learned_features(self) -> dict:
        images = self.data.images  # (N, ch, H, W) in [0, 1]
        H, W = images.shape[2:]
        out = {}
        for layer in self.graph.layers:
            if layer.kind == "input":
                continue
            t, field = self.top[layer.name], self.fields[layer.name]
            spatial = layer.spatial if field is not None else ()
            C, k = t.scores.shape
            cs, js = np.nonzero(t.index >= 0)
            boxes = np.zeros((C, k, 4), np.int32)
            for c, j in zip(cs, js):
                p = np.unravel_index(int(t.pos[c, j]), spatial) if spatial else ()
                (y0, y1), (x0, x1) = crop_box(field, p, (H, W)) if field is not None else ((0, H), (0, W))
                boxes[c, j] = (y0, x0, y1, x1)
            # every crop of a layer has the same size (fields are shifted inside the image, not clipped)
            probe = crop_box(field, (0,) * len(spatial), (H, W)) if field is not None else ((0, H), (0, W))
            ph, pw = probe[0][1] - probe[0][0], probe[1][1] - probe[1][0]
            oh, ow = patch_shape(ph, pw, self.max_patch)
            patches = np.zeros((C, k, oh, ow, images.shape[1]), np.uint8)
            for start in range(0, len(cs), 512):  # chunks: wide layers with image-sized fields stay bounded
                c, j = cs[start:start + 512], js[start:start + 512]
                b = boxes[c, j]
                crops = np.stack([images[i, :, y0:y1, x0:x1] for i, (y0, x0, y1, x1) in zip(t.index[c, j], b)])
                if (oh, ow) != (ph, pw):
                    crops = F.interpolate(torch.from_numpy(crops), size=(oh, ow), mode="area").numpy()
                patches[c, j] = np.round(crops.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
            scores = np.where(t.index >= 0, t.scores, np.nan).astype(np.float32)
            out[layer.name] = LearnedFeatures(patches=patches, scores=scores, image_index=t.index.copy(),
                                              boxes=boxes)
        return out


def patch_shape(ph: int, pw: int, max_side: int) -> tuple[int, int]:
    """Stored patch size: the crop's, scaled down (area averaging) so its longer side is at most max_side."""
    if max(ph, pw) <= max_side:
        return ph, pw
    s = max_side / max(ph, pw)
    return max(1, round(ph * s)), max(1, round(pw * s))

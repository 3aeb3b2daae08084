"""Running a data set through a traced model: statistics, learned features and importance in one pass.

Every layer is reduced the moment its output exists: a forward hook (an fx Interpreter over the traced
module) takes the spatial mean and max per (image, channel) in torch, on the model's device, and feeds the
small (B, C) results to the statistics, top-k and importance accumulators; a tensor hook on the same output
does the same with activation x gradient when the backward pass reaches it. Nothing holds a layer's output
beyond what autograd keeps for the backward pass anyway (plus, for the few outputs autograd does not keep,
a reference until their gradient arrives). Parameters need no gradients, so the backward pass computes
activation gradients only. Learned-feature crops are cut after the pass, from the few images that won.

analyze() is `prepare` (capture, empty results), `_Pass.run_batch` per batch, the ranks' merge and `finish`
(results, crops, history, meta). cnnvis.diff drives two such passes in step and watches the layer outputs
through run_batch's `observe`.
"""
from __future__ import annotations

import datetime

import numpy as np
import torch
import torch.fx as fx

import cnnvis
from cnnvis._params import DEVICE, Interval, validate
from cnnvis.analysis._analysis import Analysis, Importance
from cnnvis.analysis._crops import learned_features
from cnnvis.analysis._receptive import receptive_fields
from cnnvis.analysis._snapshots import training_history
from cnnvis.analysis._distributed import gather_to_root, merge_partials, shard, world
from cnnvis.compute._stats import finalize
from cnnvis.errors import CnnvisError, DataError, DeviceError, ModelError
from cnnvis.graph._network import Layer
from cnnvis.graph._output import pick_output
from cnnvis.graph._trace import Traced, trace
from cnnvis.progress import progress
from cnnvis.stats import ClassStatsAccumulator

__all__ = ["analyze", "finish", "prepare"]

# analyze()'s parameters (the data-dependent importance classes are checked against the data set).
_PARAMETERS = {"batch_size": Interval(1), "top_k": Interval(1), "max_patch": Interval(1), "workers": Interval(0),
               "device": DEVICE}


def analyze(model: torch.nn.Module, data, *, snapshots=(), snapshot_names=None, batch_size: int = 128,
            top_k: int = 9, importance_classes=None, show_progress: bool = True, meta: dict | None = None,
            device: str = "cpu", max_patch: int = 64, workers: int = 0, output=None) -> Analysis:
    """Derived features of every neuron of `model` on `data` (one forward + backward pass per batch).

    data: a data set offering len(), .labels, .class_names, .n_classes, .name, .image_shape,
    .get(indices) and .batches(batch_size, indices=, workers=) (see cnnvis.data). snapshots: training
    checkpoints (paths or state dicts, oldest first) for the per-layer debugging values;
    importance_classes: class ids the importance is computed over (default: all). max_patch:
    learned-feature crops larger than this many pixels a side are stored scaled down (and further, evenly,
    where the unique crops of a big model would not fit in memory; see cnnvis.analysis._crops).
    device: where the model runs ("cpu", "cuda", "auto"); on CUDA the reductions stay on the GPU.
    workers: data-loading processes handed to data.batches. output: where the class scores are in what the
    model returns (None: a tensor as it is, else `.logits`; an index or a name; see cnnvis.graph._output).

    Under torch.distributed (e.g. torchrun; see cnnvis.analysis._distributed) every rank calls analyze()
    and analyses its shard; rank 0 returns the merged Analysis, the other ranks None.
    """
    validate(_PARAMETERS, dict(batch_size=batch_size, top_k=top_k, max_patch=max_patch, workers=workers,
                               device=device))
    pass_ = prepare(model, data, top_k=top_k, importance_classes=importance_classes, device=device, output=output)
    rank, size = world()
    indices = shard(len(data), rank, size) if size > 1 else None
    n_images = len(data if indices is None else indices)
    bar = progress(total=n_images, desc="analysing", unit="img", enabled=show_progress and rank == 0)
    error = None
    try:
        for index, images, labels in data.batches(batch_size, indices=indices, workers=workers):
            pass_.run_batch(np.asarray(index, np.int64), images, labels)
            bar.update(len(index))
    except CnnvisError as exc:
        if size == 1:
            raise
        error = exc  # every rank learns it below, and raises it
    finally:
        bar.close()
    part = pass_.partial()
    if size > 1:
        parts = gather_to_root(part, error)  # raises on every rank if one failed
        if rank != 0:
            return None
        part = merge_partials(parts, top_k)
    return finish(pass_, part, data, model=model, snapshots=snapshots, snapshot_names=snapshot_names,
                  max_patch=max_patch, show_progress=show_progress, meta=meta, world_size=size)


def prepare(model: torch.nn.Module, data, *, top_k: int = 9, importance_classes=None, device: str = "cpu",
            output=None) -> "_Pass":
    """analyze()'s setup, its parameters already checked: `model` captured (a copy, in eval mode, on the
    device) and the empty running results of its pass. Feed it batches with `_Pass.run_batch`, then hand
    its `partial()` (merged across ranks where there are several) to `finish`. cnnvis.diff drives two of
    these in step."""
    classes = _importance_classes(importance_classes, data)
    dev = _torch_device(device)
    example = torch.from_numpy(np.asarray(data.get(np.arange(min(2, len(data)))), np.float32))
    traced = trace(model, example)  # captures a copy (torch.fx, else torch.export)
    if traced.method == "fx":  # an exported module is captured in eval mode and refuses .eval()
        traced.module.eval()
    traced.module.to(dev)
    if not any(l.kind == "conv" for l in traced.graph.layers):
        raise ModelError(f"{type(model).__name__} has no convolutional layer; cnnvis analyses CNNs")
    return _Pass(traced, data.n_classes, top_k, classes, dev, data.name, output, type(model).__name__)


def finish(pass_: "_Pass", part: dict, data, *, model=None, snapshots=(), snapshot_names=None, max_patch: int = 64,
           show_progress: bool = True, meta: dict | None = None, world_size: int = 1) -> Analysis:
    """analyze()'s last steps on the (merged) raw results `part` of `pass_` over all of `data`: statistics,
    importance, learned-feature crops, the training history of `snapshots` (needs `model`), the meta data."""
    graph, traced = pass_.graph, pass_.traced
    stats, tops, importance = pass_.results(part)
    fields = receptive_fields(graph, traced.sites)
    features = learned_features(graph, tops, fields, data, max_patch=max_patch)
    history = None
    if len(snapshots):
        history = training_history(model, graph, snapshots, data, names=snapshot_names,
                                   show_progress=show_progress, output=pass_.output)
    info = dict(model=pass_.model_name, dataset=data.name, n_images=len(data),
                input_shape=list(data.image_shape), accuracy=part["correct"] / len(data),
                top_k=pass_.k, max_patch=max_patch, cnnvis_version=cnnvis.__version__, capture=traced.method,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    info.update(meta or {})
    if world_size > 1:
        info["world_size"] = world_size
    return Analysis(graph=graph, class_names=tuple(data.class_names), stats=stats,
                    features=features, importance=importance, history=history, meta=info)


def _torch_device(device: str) -> torch.device:
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError("device='cuda' asked for, but torch sees no CUDA device")
    return torch.device("cuda")


def _importance_classes(classes, data) -> tuple[int, ...]:
    names = list(data.class_names)
    if classes is None:
        return tuple(range(data.n_classes))
    out = []
    for c in classes:
        if isinstance(c, str) and c in names:
            out.append(names.index(c))
        elif isinstance(c, (int, np.integer)) or (isinstance(c, str) and c.isdigit()):
            k = int(c)
            if not 0 <= k < data.n_classes:
                raise DataError(f"importance class {k} is outside [0, {data.n_classes})")
            out.append(k)
        else:
            raise DataError(f"unknown class {c!r} (classes: {', '.join(names)})")
    if not out:
        raise DataError("importance classes: the list is empty")
    return tuple(sorted(set(out)))


class _Observed(fx.Interpreter):
    """Runs the traced module and hands every layer node's output to `observe` as soon as it exists; the
    Interpreter frees each value after its last use, so no layer output outlives the forward pass here."""

    def __init__(self, gm: fx.GraphModule, layer_of: dict, observe):
        super().__init__(gm)
        self.extra_traceback = False  # errors pass through unchanged (one-line messages stay one line)
        self.layer_of = layer_of  # fx node -> layer position
        self.observe = observe

    def run_node(self, n):
        out = super().run_node(n)
        i = self.layer_of.get(n)
        if i is not None and isinstance(out, torch.Tensor):
            self.observe(i, out)
        return out


class _LayerState:
    """Running results of one layer: per-class statistics (host), top-k and importance sums (device)."""

    def __init__(self, layer: Layer, n_classes: int, k: int, device, axis: int = 1):
        C = layer.n_neurons
        self.layer = layer
        self.axis = axis  # where the channels are in the node's output (1: NCHW)
        self.acc = ClassStatsAccumulator(n_classes, C)
        self.top_score = torch.full((C, k), -torch.inf, dtype=torch.float32, device=device)
        self.top_index = torch.full((C, k), -1, dtype=torch.int64, device=device)
        self.top_pos = torch.zeros((C, k), dtype=torch.int64, device=device)
        self.imp_sum = torch.zeros(C, dtype=torch.float64, device=device)
        self.imp_max = torch.full((C,), -torch.inf, dtype=torch.float64, device=device)
        self.contrib_sum = torch.zeros(C, dtype=torch.float64, device=device)


class _Pass:
    def __init__(self, traced: Traced, n_classes: int, top_k: int, classes: tuple[int, ...], device,
                 data_name: str, output=None, model_name: str = "the model"):
        self.device = device
        self.traced, self.graph = traced, traced.graph
        self.gm = traced.module
        for p in self.gm.parameters():  # activation gradients only: no weight-gradient convolutions
            p.requires_grad_(False)
        self.n_classes = n_classes
        self.data_name = data_name
        self.k = top_k
        self.classes = np.asarray(classes)
        self.correct = 0
        self.n_selected = 0
        self.output, self.model_name = output, model_name
        self.layers = [_LayerState(l, n_classes, top_k, device, traced.axes.get(l.name, 1))
                       for l in traced.graph.layers]
        self.layer_of = {traced.nodes[s.layer.name]: i for i, s in enumerate(self.layers)}
        self.relu_of = _relu_partners(self.layers, traced.nodes)
        self.relu_out_of = set(self.relu_of.values())

    def run_batch(self, index: np.ndarray, images: torch.Tensor, labels: torch.Tensor, observe=None) -> np.ndarray:
        """One batch, forward and backward; returns the predicted classes (numpy).

        observe(i, a, r), if given, sees every layer output as this pass reduced it: i the layer's position in
        the graph's layers, a the detached (B, C, positions) map (channels first, a view of the output: keep
        it only as long as needed), r its (B, C) spatial mean in the map's dtype."""
        labels_np = np.asarray(labels, np.int64)
        sel_np = np.isin(labels_np, self.classes)
        self._batch = dict(index=index, index_dev=torch.from_numpy(index).to(self.device),
                           labels=labels_np, labels_dev=torch.from_numpy(labels_np).to(self.device),
                           sel=torch.from_numpy(sel_np).to(self.device), any_sel=bool(sel_np.any()),
                           all_sel=bool(sel_np.all()), relu_out={}, observe=observe)
        self.n_selected += int(sel_np.sum())
        x = images.to(self.device, torch.float32).detach().requires_grad_(True)  # not the caller's tensor
        with torch.enable_grad():
            logits = pick_output(_Observed(self.gm, self.layer_of, self._forward).run(x), self.output,
                                 model=self.model_name)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                raise ModelError(f"the model must return class scores of shape (N, K), got "
                                 f"{getattr(logits, 'shape', type(logits).__name__)}")
            if logits.shape[1] != self.n_classes:
                raise ModelError(f"the model outputs {logits.shape[1]} class scores but the data set "
                                 f"{self.data_name!r} has {self.n_classes} classes")
            pred = logits.argmax(1)
            logits.gather(1, pred[:, None]).sum().backward()
        pred = pred.cpu().numpy()
        self.correct += int((pred == labels_np).sum())
        del self._batch
        return pred

    # -- hooks -------------------------------------------------------------------------------------------
    def _forward(self, i: int, out: torch.Tensor):
        s, b = self.layers[i], self._batch
        a = channels_first(out.detach(), s.axis, s.layer.n_neurons)  # (B, C, S); flatten keeps channels
        r, m, am = _spatial_mean_max(a)
        pairs = _mean_max_pairs(r, m)
        try:  # the stats kernel checks finiteness in its read of the (B, C, 2) pairs
            s.acc.update(pairs, b["labels_dev"] if pairs.is_cuda else b["labels"])
        except DataError as exc:
            raise self._non_finite(s.layer, pairs, b["index"]) or exc from None
        self._update_topk(s, m, am, b["index_dev"])
        if b["observe"] is not None:
            b["observe"](i, a, r)
        if b["any_sel"]:
            rs, ms = (r, m) if b["all_sel"] else (r[b["sel"]], m[b["sel"]])
            s.imp_sum += rs.sum(0, dtype=torch.float64)
            s.imp_max = torch.maximum(s.imp_max, ms.amax(0).double())
            if out.requires_grad:
                if i in self.relu_out_of:  # a ReLU: its output stands in for its input's
                    b["relu_out"][i] = a
                if i in self.relu_of:
                    j = self.relu_of[i]
                    out.register_hook(lambda g, s=s, j=j: self._backward(s, b["relu_out"][j], g))
                else:
                    out.register_hook(lambda g, s=s, a=a: self._backward(s, a, g))

    def _backward(self, s: _LayerState, a: torch.Tensor, g: torch.Tensor):
        contrib = _spatial_dot(a, channels_first(g, s.axis, a.shape[1])).abs()
        if not self._batch["all_sel"]:
            contrib = contrib[self._batch["sel"]]
        s.contrib_sum += contrib.sum(0, dtype=torch.float64)

    def _update_topk(self, s: _LayerState, m: torch.Tensor, am: torch.Tensor, index: torch.Tensor):
        B, C = m.shape
        scores = torch.cat([s.top_score, m.T.float()], 1)
        # stable: among equal scores the earlier column wins (kept entries, then images in index order)
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :self.k]
        s.top_score = scores.gather(1, order)
        s.top_index = torch.cat([s.top_index, index[None, :].expand(C, B)], 1).gather(1, order)
        s.top_pos = torch.cat([s.top_pos, am.T.long()], 1).gather(1, order)

    def _non_finite(self, layer: Layer, pairs: torch.Tensor, index: np.ndarray) -> DataError | None:
        bad = (~torch.isfinite(pairs)).any(2).cpu().numpy()  # (B, C)
        if not bad.any():
            return None
        b, c = (int(v[0]) for v in np.nonzero(bad))
        if layer.kind == "input":
            return DataError(f"{self.data_name}: image {int(index[b])} is NaN or infinite after loading "
                             f"(channel {c})")
        return DataError(f"layer {layer.name!r}, images {int(index.min())}..{int(index.max())}: non-finite "
                         f"activation (NaN or inf) first in image {int(index[b])}, channel {c}")

    # -- results -----------------------------------------------------------------------------------------
    def partial(self) -> dict:
        """This process's raw results as numpy (what ranks send to be merged)."""
        return dict(correct=self.correct, n_selected=self.n_selected, layers=[dict(
            moments=s.acc._moments.state(),
            top=(s.top_score.cpu().numpy(), s.top_index.cpu().numpy(), s.top_pos.cpu().numpy()),
            imp_sum=s.imp_sum.cpu().numpy(), imp_max=s.imp_max.cpu().numpy(),
            contrib_sum=s.contrib_sum.cpu().numpy()) for s in self.layers])

    def results(self, part: dict) -> tuple[dict, dict, dict]:
        """(statistics, top-k (scores, image index, flat position) per layer, importance) of raw results."""
        n = max(part["n_selected"], 1)
        stats, tops, importance = {}, {}, {}
        classes = tuple(int(c) for c in self.classes)
        for s, p in zip(self.layers, part["layers"]):
            name = s.layer.name
            stats[name] = finalize(*p["moments"])
            tops[name] = p["top"]
            mx = p["imp_max"]
            importance[name] = Importance(mean_activation=p["imp_sum"] / n,
                                          max_activation=np.where(np.isfinite(mx), mx, np.nan),
                                          contribution=p["contrib_sum"] / n, classes=classes)
        return stats, tops, importance


def channels_first(t: torch.Tensor, axis: int, n_channels: int) -> torch.Tensor:
    """A layer's output as (B, C, positions): the channel axis moved to 1 (a view for the NHWC tensors a
    permute of NCHW made), then the rest flattened in order (a flatten's vector is channel-major)."""
    if axis != 1 and t.ndim > 2:
        t = t.movedim(axis, 1)
    return t.reshape(t.shape[0], n_channels, -1)


# Per-layer reductions, one read of the map each. On the CPU numpy's SIMD max/argmax/mean/vecdot run on
# zero-copy views (torch's max-with-indices is ~30x slower there, its a * g needs a full-size temporary);
# on CUDA torch keeps everything on the device.
def _spatial_mean_max(a: torch.Tensor):
    """Spatial mean, max and first argmax (B, C) of a (B, C, S) map."""
    if a.is_cuda:
        m, am = a.max(2)
        return a.mean(2), m, am
    an = _host(a)
    am = an.argmax(2)  # one pass; the max is then a gather (max and argmax would read the map twice)
    m = np.take_along_axis(an, am[..., None], 2)[..., 0]
    return torch.from_numpy(np.asarray(an.mean(2, dtype=an.dtype))), torch.from_numpy(m), torch.from_numpy(am)


def _host(t: torch.Tensor) -> np.ndarray:
    return (t if t.dtype in (torch.float32, torch.float64) else t.float()).numpy()  # bfloat16: no numpy dtype


def _spatial_dot(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """sum over positions of a * g, (B, C)."""
    if a.is_cuda:
        return torch.linalg.vecdot(a, g, dim=2)
    an, gn = _host(a), _host(g)
    if hasattr(np, "vecdot"):  # numpy >= 2.0
        return torch.from_numpy(np.vecdot(an, gn, axis=2))
    return torch.from_numpy(np.einsum("bcs,bcs->bc", an, gn))


_RELUS = ("ReLU", "relu", "ReLU6", "relu6")


def _relu_partners(layers: list, nodes: dict) -> dict:
    """layer position -> position of the ReLU that is its only consumer.

    For such a layer (a batchnorm or add before its ReLU) activation x gradient is computed from the ReLU's
    output, which autograd keeps anyway, so the layer's own output can be freed as soon as the ReLU has
    run. Exact: the gradient reaching the layer is zero wherever relu(a) != a (a <= 0, and a >= 6 for
    ReLU6), so a * g == relu(a) * g element by element.
    """
    pos = {nodes[s.layer.name]: i for i, s in enumerate(layers)}
    out = {}
    for i, s in enumerate(layers):
        users = list(nodes[s.layer.name].users)
        if len(users) == 1 and users[0] in pos:
            j = pos[users[0]]
            r = layers[j].layer
            if r.kind == "activation" and r.op in _RELUS and r.shape == s.layer.shape:
                out[i] = j
    return out


def _mean_max_pairs(r: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(B, C, 2) [m, 2r - m] in the maps' dtype (the kernel accumulates in float64): its spatial mean is r
    and its spatial max is m, so the statistics kernel, reading two values per (image, channel) instead of
    the whole map, gives exactly the statistics of the full activation (mean and std of the spatial mean, max of the max, fraction with max > 0).
    NaN or +-inf anywhere in the map makes a pair non-finite, which the kernel reports."""
    return torch.stack([m, torch.minimum(2 * r - m, m)], 2)

"""`compare(model_a, model_b, data)`: both models see the same images in one streamed, forward-only pass.

Per batch, A runs first (cnnvis.analysis's fx Interpreter hooking every layer output); each layer's output is
reduced at once to its per-image channel means (CKA's features, the per-class sums), and only the outputs of
A's weighted layers that have a candidate partner in B are held until B produces that partner's output; then
their cross moments are added (float64, in chunks of images so the extra memory stays small) and A's output
is dropped. Candidates before any CKA is known: B's layer of the same name, kind and shape. After the pass
the weighted layers are aligned by CKA (order-preserving, one-to-one; cnnvis.diff._match); a matched pair that was no candidate (other architectures, or CKA preferring
another layer) gets its cross moments from a second forward pass over the data for those pairs alone.
Under torchrun every rank streams its shard; rank 0 merges the sums exactly and returns the Diff. Images are
streamed in a fixed random order (seed 0), so that every batch is a random sample (what minibatch CKA assumes).
"""
from __future__ import annotations

import numpy as np
import torch

from cnnvis.analysis._distributed import gather_to_root, shard, world
from cnnvis.analysis._run import _Observed, _torch_device, channels_first
from cnnvis.diff._match import STABLE_THRESHOLD, best_match, match_neurons, monotone_alignment, weight_drift
from cnnvis.diff._result import Diff, LayerDiff
from cnnvis.diff._sums import CrossMoments, HSICSums
from cnnvis.errors import CnnvisError, DataError
from cnnvis.graph._trace import trace
from cnnvis.progress import progress

__all__ = ["compare"]

_WEIGHTED = ("conv", "linear")
_PASS_THROUGH = ("batchnorm", "activation", "pool", "dropout", "flatten", "add")  # channels kept as they are
_CHUNK_BYTES = 64 * 2**20  # float64 working memory of one cross-moment chunk


class _Side:
    """One model, traced, its layers (input excluded) and the fx node -> layer position map."""

    def __init__(self, model, example, device):
        self.traced = trace(model, example)  # a copy
        if self.traced.method == "fx":  # an exported module is captured in eval mode and refuses .eval()
            self.traced.module.eval()
        self.module = self.traced.module.to(device)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.layers = [l for l in self.traced.graph.layers if l.kind != "input"]
        self.names = [l.name for l in self.layers]
        self.layer_of = {self.traced.nodes[l.name]: i for i, l in enumerate(self.layers)}
        self.axes = [self.traced.axes.get(l.name, 1) for l in self.layers]  # channels wherever they sit
        self.weighted = [i for i, l in enumerate(self.layers) if l.kind in _WEIGHTED]

    def signature(self):
        return [(l.name, l.kind, l.shape) for l in self.layers]

    def weight(self, i: int) -> np.ndarray | None:
        w = getattr(dict(self.module.named_modules()).get(self.layers[i].module), "weight", None)
        return None if w is None else w.detach().cpu().double().numpy()


def compare(model_a: torch.nn.Module, model_b: torch.nn.Module, data, *, batch_size: int = 64,
            device: str = "cpu", workers: int = 0, threshold: float = STABLE_THRESHOLD,
            show_progress: bool = True, meta: dict | None = None) -> Diff | None:
    """The neuron-level diff of model A against model B on `data` (a cnnvis data set).

    batch_size: images per batch, >= 4 (each batch's unbiased HSIC needs 4; CKA's variance falls with it,
    memory grows with it). Under torch.distributed every rank calls this; rank 0 returns the Diff, the
    others None.
    """
    if batch_size < 4:
        raise DataError(f"batch_size must be >= 4 (unbiased HSIC needs 4 images a batch), got {batch_size}")
    if not 0 < threshold <= 1:
        raise DataError(f"threshold must be in (0, 1], got {threshold}")
    dev = _torch_device(device)
    example = torch.from_numpy(np.asarray(data.get(np.arange(min(2, len(data)))), np.float32))
    a, b = _Side(model_a, example, dev), _Side(model_b, example, dev)
    same = a.signature() == b.signature()
    rank, size = world()
    # A fixed random order: each batch's HSIC estimates the population's only if the batch is a random sample
    # (image folders come sorted by class, and a class-sorted batch would measure within-class dependence).
    indices = np.random.default_rng(0).permutation(len(data))
    if size > 1:
        indices = indices[shard(len(data), rank, size)]

    by_name = {n: j for j, n in enumerate(b.names)}
    candidates = {i: by_name[a.names[i]] for i in a.weighted
                  if a.names[i] in by_name and _fits(a.layers[i], b.layers[by_name[a.names[i]]])}
    part = _stream(a, b, data, indices, batch_size, workers, candidates, first=True,
                   show=show_progress and rank == 0, dev=dev)
    part = _gathered(part, rank, size)
    missing = None
    if rank == 0:
        cka = part["hsic"].cka()
        pairs = _weighted_alignment(a, b, cka)
        missing = {i: j for i, j in pairs.items() if j >= 0 and candidates.get(i) != j}
    if size > 1:
        import torch.distributed as dist

        box = [missing]
        dist.broadcast_object_list(box, src=0)
        missing = box[0]
    if missing:
        more = _stream(a, b, data, indices, batch_size, workers, missing, first=False,
                       show=show_progress and rank == 0, dev=dev)
        more = _gathered(more, rank, size)
        if rank == 0:
            part["cross"].update(more["cross"])
    if rank != 0:
        return None
    alignment, best = monotone_alignment(cka), best_match(cka)
    layers = _layer_diffs(a, b, part, cka, pairs, threshold, data.n_classes)
    n = part["images"]
    info = dict(n_images=n, batch_size=batch_size, batches=part["hsic"].batches,
                images_without_cka=part["hsic"].skipped, dataset=data.name,
                model_a=type(model_a).__name__, model_b=type(model_b).__name__,
                accuracy_a=part["correct_a"] / max(n, 1), accuracy_b=part["correct_b"] / max(n, 1),
                prediction_agreement=part["agree"] / max(n, 1), second_pass_pairs=len(missing or ()))
    if size > 1:
        info["world_size"] = size
    info.update(meta or {})
    return Diff(layers_a=tuple(a.names), layers_b=tuple(b.names), cka=cka, alignment=alignment, best=best,
                layers=tuple(layers), same_architecture=same, threshold=float(threshold),
                class_names=tuple(data.class_names), meta=info)


def _fits(la, lb) -> bool:
    """Neurons of la and lb can be correlated over images x positions: same kind and spatial size."""
    return la.kind == lb.kind and tuple(la.spatial) == tuple(lb.spatial)


def _weighted_alignment(a: _Side, b: _Side, cka: np.ndarray) -> dict:
    """A's weighted layer position -> B's weighted layer position (-1: none fits): the order-preserving
    one-to-one alignment of the weighted layers by CKA among the pairs whose neurons can be correlated."""
    sub = cka[np.ix_(a.weighted, b.weighted)]
    ok = np.array([[_fits(a.layers[i], b.layers[j]) for j in b.weighted] for i in a.weighted], bool).reshape(sub.shape)
    cols = monotone_alignment(sub, ok)
    return {i: (b.weighted[c] if c >= 0 else -1) for i, c in zip(a.weighted, cols)}


def _gathered(part: dict, rank: int, size: int):
    if size == 1:
        return part
    parts = gather_to_root(part, part.pop("error"))
    return _merge(parts) if rank == 0 else None


def _merge(parts: list) -> dict:
    out = parts[0]
    for p in parts[1:]:
        for key in ("images", "correct_a", "correct_b", "agree"):
            out[key] += p[key]
        out["counts"] = out["counts"] + p["counts"]
        for side in ("class_a", "class_b"):
            out[side] = {i: v + p[side][i] for i, v in out[side].items()}
        if out["hsic"] is not None:
            out["hsic"] = out["hsic"].merge(p["hsic"])
        cross = dict(p["cross"])  # a rank with no images has no moments for a pair
        out["cross"] = {k: out["cross"][k].merge(cross.pop(k)) if k in cross else out["cross"][k]
                        for k in out["cross"]} | cross
    return out


def _stream(a: _Side, b: _Side, data, indices, batch_size: int, workers: int, pairs: dict, *, first: bool,
            show: bool, dev) -> dict:
    """One pass: cross moments of `pairs` (A position -> B position); on the first pass also the HSIC
    sums, per-class activation sums of the weighted layers, accuracies. Returns the (partial) sums."""
    K = data.n_classes
    state = dict(images=0, correct_a=0, correct_b=0, agree=0, counts=np.zeros(K, np.int64),
                 class_a={i: np.zeros((K, a.layers[i].n_neurons)) for i in a.weighted},
                 class_b={j: np.zeros((K, b.layers[j].n_neurons)) for j in b.weighted},
                 hsic=HSICSums(len(a.layers), len(b.layers)) if first else None,
                 cross={}, error=None)
    users = {}
    for i, j in pairs.items():
        users.setdefault(j, []).append(i)
    n_total = len(indices)
    bar = progress(total=n_total, desc="diff" if first else "diff (pairs)", unit="img", enabled=show)
    try:
        for _, images, labels in data.batches(batch_size, indices=indices, workers=workers):
            _batch(a, b, images, np.asarray(labels, np.int64), pairs, users, state, first, dev)
            bar.update(len(labels))
    except CnnvisError as exc:
        if world()[1] == 1:
            raise
        state["error"] = exc
    finally:
        bar.close()
    return state


def _batch(a: _Side, b: _Side, images, labels: np.ndarray, pairs: dict, users: dict, state: dict, first: bool,
           dev) -> None:
    x = images.to(dev, torch.float32)
    pooled_a, pooled_b = [None] * len(a.layers), [None] * len(b.layers)
    held = {}

    def see_a(i, out):
        m = channels_first(out.detach(), a.axes[i], a.layers[i].n_neurons)
        if first:
            pooled_a[i] = _channel_means(m)
        if i in pairs:
            held[i] = m

    def see_b(j, out):
        m = channels_first(out.detach(), b.axes[j], b.layers[j].n_neurons)
        if first:
            pooled_b[j] = _channel_means(m)
        for i in users.get(j, ()):
            part = _cross(held.pop(i), m)
            state["cross"][(i, j)] = state["cross"][(i, j)].merge(part) if (i, j) in state["cross"] else part

    with torch.no_grad():
        logits_a = _Observed(a.module, a.layer_of, see_a).run(x)
        logits_b = _Observed(b.module, b.layer_of, see_b).run(x)
    if not first:
        return
    state["images"] += len(labels)
    onehot = np.zeros((len(labels), len(state["counts"])))
    onehot[np.arange(len(labels)), labels] = 1.0
    state["counts"] += onehot.sum(0).astype(np.int64)
    for i in a.weighted:
        state["class_a"][i] += onehot.T @ pooled_a[i]
    for j in b.weighted:
        state["class_b"][j] += onehot.T @ pooled_b[j]
    state["hsic"].update(pooled_a, pooled_b)
    pa, pb = _predictions(logits_a), _predictions(logits_b)
    if pa is not None and pb is not None:
        state["correct_a"] += int((pa == labels).sum())
        state["correct_b"] += int((pb == labels).sum())
        state["agree"] += int((pa == pb).sum())


def _channel_means(m: torch.Tensor) -> np.ndarray:
    """(n, C) float64 spatial means of an (n, C, S) map (numpy's SIMD mean on the CPU: torch's is ~5x slower)."""
    if m.is_cuda:
        return m.double().mean(2).cpu().numpy()
    x = m.numpy() if m.dtype in (torch.float32, torch.float64) else m.float().numpy()
    return x.mean(2, dtype=np.float64)


def _predictions(logits) -> np.ndarray | None:
    from cnnvis.errors import ModelError
    from cnnvis.graph._output import pick_output

    try:  # a tensor, or the .logits of a HuggingFace-style output
        logits = pick_output(logits)
    except ModelError:
        return None
    if logits.ndim == 2:
        return logits.argmax(1).cpu().numpy()
    return None


def _cross(xa: torch.Tensor, xb: torch.Tensor) -> CrossMoments:
    """Cross moments of (n, Ca, S) and (n, Cb, S) over the n x S rows, float64, in chunks of images."""
    n, ca, s = xa.shape
    step = max(1, _CHUNK_BYTES // (8 * s * (ca + xb.shape[1])))
    acc = None
    for k in range(0, n, step):
        (p, mp, m2p), (q, mq, m2q) = _centred(xa[k:k + step]), _centred(xb[k:k + step])
        # the product in torch on either device: on the CPU numpy's BLAS threads would fight torch's OpenMP
        # pool, which spins on after each layer (measured 7x slower on 2 cores)
        part = CrossMoments(p.shape[1], mp, mq, m2p, m2q, (p @ q.T).cpu().numpy())
        acc = part if acc is None else acc.merge(part)
    return acc


def _centred(x: torch.Tensor):
    """(z, mean, sum of squares): z the (C, rows) float64 copy of an (n, C, S) map minus its channel means
    (a torch tensor on x's device), mean and sum of squared deviations per channel (numpy)."""
    if x.is_cuda:
        z = x.transpose(0, 1).reshape(x.shape[1], -1).to(torch.float64, copy=True)
        mean = z.mean(1)
        z -= mean[:, None]
        return z, mean.cpu().numpy(), (z * z).sum(1).cpu().numpy()
    src = x.numpy() if x.dtype in (torch.float32, torch.float64) else x.float().numpy()
    z = np.empty((x.shape[1], x.shape[0], x.shape[2]), np.float64)
    z[...] = src.transpose(1, 0, 2)  # one converting copy, channels first
    z = z.reshape(x.shape[1], -1)
    mean = z.mean(1)
    z -= mean[:, None]
    return torch.from_numpy(z), mean, np.einsum("cr,cr->c", z, z)


def _feeder(side: _Side, i: int):
    """The weighted layer whose channels reach layer i's input unchanged in order (through element-wise
    layers, pools, flattens and, along its first input, adds): its position; "input" for the model input;
    None where another layer reorders or mixes channels (a concat)."""
    graph = side.traced.graph
    pos = {n: k for k, n in enumerate(side.names)}
    src = side.layers[i].inputs[0] if side.layers[i].inputs else None
    while src is not None:
        layer = graph.layer(src)
        if layer.kind == "input":
            return "input"
        if layer.kind in _WEIGHTED:
            return pos[src]
        if layer.kind not in _PASS_THROUGH or not layer.inputs:
            return None
        src = layer.inputs[0]
    return None


def _layer_diffs(a: _Side, b: _Side, part: dict, cka: np.ndarray, pairs: dict, threshold: float,
                 n_classes: int) -> list[LayerDiff]:
    counts = np.maximum(part["counts"], 1)[:, None]
    out, perms = [], {}
    for i in a.weighted:
        j = pairs.get(i, -1)
        ca = a.layers[i].n_neurons
        if j < 0:
            nan = np.full(ca, np.nan)
            out.append(LayerDiff(a.names[i], None, float("nan"), np.full(ca, -1, np.int64), nan,
                                 np.full(ca, "unmatched", "<U9"), np.full((n_classes, ca), np.nan)))
            continue
        partner, r, status, chance = match_neurons(part["cross"][(i, j)].correlation(), threshold)
        mean_a = part["class_a"][i] / counts
        mean_b = part["class_b"][j] / counts
        change = np.where(partner >= 0, mean_b[:, np.maximum(partner, 0)] - mean_a, np.nan)
        change[part["counts"] == 0] = np.nan
        wa, wb = a.weight(i), b.weight(j)
        drift = raw = float("nan")
        if wa is not None and wb is not None and wa.shape == wb.shape:
            raw = weight_drift(wa, wb)
            feeder = _feeder(a, i)
            perm_in = None if feeder == "input" else perms.get(feeder, False)
            if perm_in is not False and (partner >= 0).all():
                drift = weight_drift(wa, wb, partner, perm_in)
        if (partner >= 0).all() and len(partner) == b.layers[j].n_neurons:
            perms[i] = partner
        out.append(LayerDiff(a.names[i], b.names[j], float(cka[i, j]), partner, r, status, change, drift, raw,
                             chance))
    return out

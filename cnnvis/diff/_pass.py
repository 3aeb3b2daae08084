"""`compare(model_a, model_b, data)`: both models see the same images in one streamed, forward-only pass.

Per batch, A runs first (cnnvis.analysis's fx Interpreter hooking every layer output); each layer's output is
reduced at once to its per-image channel means (CKA's features, the per-class sums), and only the outputs of
A's weighted layers that have a candidate partner in B are held until B produces that partner's output; then
their cross moments are added (float64 sums of float32 products on the CPU, in chunks of images so the extra
memory stays small) and A's output is dropped. Candidates before any CKA is known: B's layer of the same name,
kind and shape. After the pass the weighted layers are aligned by CKA (order-preserving, one-to-one;
cnnvis.diff._match); a matched pair that was no candidate (other architectures, or CKA preferring another
layer) gets its cross moments from a second forward pass over the data for those pairs alone.
Under torchrun every rank streams its shard; rank 0 merges the sums exactly and returns the Diff. Images are
streamed in a fixed random order (seed 0), so that every batch is a random sample (what minibatch CKA assumes).

`compare(..., analyses=True)` also analyses both models in the same pass (what `cnnvis diff -o` writes): per
batch A's and B's cnnvis.analysis passes run one after the other (forward and backward each, as
`cnnvis.analyze`), and the diff observes the layer outputs they reduce, taking their spatial means (float32,
the analysis' own, where the forward-only pass takes float64 means of the same maps) and holding A's detached
weighted-layer outputs through A's backward until B's partner output appears. The analyses see the images in
the diff's order, not the data set's, so they equal separate analyze() runs up to float rounding of their
sums and the order of tied top-k images; the second pass, for pairs found by CKA, stays forward-only.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from cnnvis._params import Interval, validate
from cnnvis.analysis._distributed import gather_to_root, merge_partials, shard, world
from cnnvis.analysis._run import _Observed, _torch_device, channels_first, finish, prepare
from cnnvis.diff._match import STABLE_THRESHOLD, best_match, match_neurons, monotone_alignment, weight_drift
from cnnvis.diff._result import Diff, LayerDiff
from cnnvis.diff._sums import CrossMoments, HSICSums
from cnnvis.errors import CnnvisError, DataError
from cnnvis.graph._trace import trace
from cnnvis.progress import progress

__all__ = ["compare"]

_WEIGHTED = ("conv", "linear")
_PASS_THROUGH = ("batchnorm", "activation", "pool", "dropout", "flatten", "add")  # channels kept as they are
_CHUNK_BYTES = 64 * 2**20  # working memory of one cross-moment chunk
_CHUNK_ROWS = 16384  # rows (images x positions) summed in one float32 product
# the analyses' options (compare's own batch_size and threshold are checked with their historical messages)
_ANALYSIS_PARAMETERS = {"top_k": Interval(1), "max_patch": Interval(1)}


class _Side:
    """One model, traced, its layers (input excluded) and the fx node -> layer position map."""

    def __init__(self, traced, device):
        self.traced = traced  # a copy of the model (cnnvis.graph.trace)
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
        position = {n: i for i, n in enumerate(self.names)}
        # graph layer position (what an analysis pass observes) -> position here (None: the input)
        self.of_graph = [position.get(l.name) for l in self.traced.graph.layers]

    @classmethod
    def of(cls, model, example, device) -> "_Side":
        return cls(trace(model, example), device)

    def signature(self):
        return [(l.name, l.kind, l.shape) for l in self.layers]

    def weight(self, i: int) -> np.ndarray | None:
        w = getattr(dict(self.module.named_modules()).get(self.layers[i].module), "weight", None)
        return None if w is None else w.detach().cpu().double().numpy()


def compare(model_a: torch.nn.Module, model_b: torch.nn.Module, data, *, batch_size: int = 64,
            device: str = "cpu", workers: int = 0, threshold: float = STABLE_THRESHOLD,
            show_progress: bool = True, meta: dict | None = None, analyses: bool = False, top_k: int = 9,
            max_patch: int = 64):
    """The neuron-level diff of model A against model B on `data` (a cnnvis data set).

    batch_size: images per batch, >= 4 (each batch's unbiased HSIC needs 4; CKA's variance falls with it,
    memory grows with it). analyses: also analyse each model (cnnvis.analyze's statistics, learned features
    with `top_k` crops of at most `max_patch` pixels a side, importance) in the same pass over the data, and
    return (Diff, Analysis of A, Analysis of B), each analysis's meta being `meta` plus diff_side "A" / "B".
    Under torch.distributed every rank calls this; rank 0 returns the Diff (or the triple), the others None.
    """
    if batch_size < 4:
        raise DataError(f"batch_size must be >= 4 (unbiased HSIC needs 4 images a batch), got {batch_size}")
    if not 0 < threshold <= 1:
        raise DataError(f"threshold must be in (0, 1], got {threshold}")
    dev = _torch_device(device)
    passes = None
    if analyses:
        validate(_ANALYSIS_PARAMETERS, dict(top_k=top_k, max_patch=max_patch))
        passes = [prepare(m, data, top_k=top_k, device=device) for m in (model_a, model_b)]
        a, b = (_Side(p.traced, dev) for p in passes)  # the passes' captures: each model traced once
    else:
        example = torch.from_numpy(np.asarray(data.get(np.arange(min(2, len(data)))), np.float32))
        a, b = _Side.of(model_a, example, dev), _Side.of(model_b, example, dev)
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
                   show=show_progress and rank == 0, dev=dev, passes=passes)
    part = _gathered(part, rank, size, top_k)
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
        more = _gathered(more, rank, size, top_k)
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
    diff = Diff(layers_a=tuple(a.names), layers_b=tuple(b.names), cka=cka, alignment=alignment, best=best,
                layers=tuple(layers), same_architecture=same, threshold=float(threshold),
                class_names=tuple(data.class_names), meta=info)
    if not analyses:
        return diff
    return (diff, *(finish(p, q, data, max_patch=max_patch, show_progress=show_progress,
                           meta=dict(meta or {}, diff_side=side), world_size=size)
                    for p, q, side in zip(passes, part["analyses"], "AB")))


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


def _gathered(part: dict, rank: int, size: int, top_k: int):
    if size == 1:
        return part
    parts = gather_to_root(part, part.pop("error"))
    return _merge(parts, top_k) if rank == 0 else None


def _merge(parts: list, top_k: int) -> dict:
    out = parts[0]
    if out["analyses"] is not None:  # the analysis passes' partials, merged as cnnvis.analyze merges them
        out["analyses"] = [merge_partials(list(side), top_k) for side in zip(*(p["analyses"] for p in parts))]
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
            show: bool, dev, passes=None) -> dict:
    """One pass: cross moments of `pairs` (A position -> B position); on the first pass also the HSIC
    sums, per-class activation sums of the weighted layers, accuracies, and with `passes` (A's and B's
    analysis passes) their partial results under "analyses". Returns the (partial) sums."""
    K = data.n_classes
    state = dict(images=0, correct_a=0, correct_b=0, agree=0, counts=np.zeros(K, np.int64),
                 class_a={i: np.zeros((K, a.layers[i].n_neurons)) for i in a.weighted},
                 class_b={j: np.zeros((K, b.layers[j].n_neurons)) for j in b.weighted},
                 hsic=HSICSums(len(a.layers), len(b.layers)) if first else None,
                 cross={}, analyses=None, error=None)
    users = {}
    for i, j in pairs.items():
        users.setdefault(j, []).append(i)
    n_total = len(indices)
    desc = ("diff + analyses" if passes else "diff") if first else "diff (pairs)"
    bar = progress(total=n_total, desc=desc, unit="img", enabled=show)
    try:
        for index, images, labels in data.batches(batch_size, indices=indices, workers=workers):
            meeting = _Meeting(a, b, pairs, users, state, first)
            labels = np.asarray(labels, np.int64)
            if passes is None:
                preds = _forward_only(a, b, images, meeting, dev)
            else:
                preds = _in_step(a, b, passes, np.asarray(index, np.int64), images, labels, meeting)
            if first:
                _tally(state, labels, meeting, *preds)
            bar.update(len(labels))
    except CnnvisError as exc:
        if world()[1] == 1:
            raise
        state["error"] = exc
    finally:
        bar.close()
    if passes is not None:
        state["analyses"] = [p.partial() for p in passes]
    return state


class _Meeting:
    """One batch's encounter of A's and B's layer outputs: the pooled (n, C) features of every layer (on the
    first pass) and the cross moments of `pairs`, A's map held (detached) until B's partner output appears."""

    def __init__(self, a: _Side, b: _Side, pairs: dict, users: dict, state: dict, first: bool):
        self.pairs, self.users, self.state, self.first = pairs, users, state, first
        self.pooled_a, self.pooled_b = [None] * len(a.layers), [None] * len(b.layers)
        self.held = {}

    def see_a(self, i: int, m: torch.Tensor, r: torch.Tensor | None = None):
        """A's layer i as a detached (n, C, S) map; r: its spatial means when already taken."""
        if self.first:
            self.pooled_a[i] = _channel_means(m) if r is None else _float64(r)
        if i in self.pairs:
            self.held[i] = m

    def see_b(self, j: int, m: torch.Tensor, r: torch.Tensor | None = None):
        if self.first:
            self.pooled_b[j] = _channel_means(m) if r is None else _float64(r)
        cross = self.state["cross"]
        for i in self.users.get(j, ()):
            part = _cross(self.held.pop(i), m)
            cross[(i, j)] = cross[(i, j)].merge(part) if (i, j) in cross else part


def _forward_only(a: _Side, b: _Side, images, meeting: _Meeting, dev):
    """Both models' forward passes under no_grad; (A's, B's) predictions (None where the output has no
    (N, K) class scores)."""
    x = images.to(dev, torch.float32)

    def see_a(i, out):
        meeting.see_a(i, channels_first(out.detach(), a.axes[i], a.layers[i].n_neurons))

    def see_b(j, out):
        meeting.see_b(j, channels_first(out.detach(), b.axes[j], b.layers[j].n_neurons))

    with torch.no_grad():
        logits_a = _Observed(a.module, a.layer_of, see_a).run(x)
        logits_b = _Observed(b.module, b.layer_of, see_b).run(x)
    return _predictions(logits_a), _predictions(logits_b)


def _in_step(a: _Side, b: _Side, passes, index: np.ndarray, images, labels: np.ndarray, meeting: _Meeting):
    """A's analysis pass, then B's, on the batch (forward and backward each), the meeting seeing the maps and
    spatial means they reduce; their predictions. A's held maps are detached views: they outlive A's autograd
    graph (what they cost: A's candidate layers' outputs of one batch, as in the forward-only pass)."""

    def see_a(k, m, r):
        i = a.of_graph[k]
        if i is not None:
            meeting.see_a(i, m, r)

    def see_b(k, m, r):
        j = b.of_graph[k]
        if j is not None:
            meeting.see_b(j, m, r)

    pa = passes[0].run_batch(index, images, labels, observe=see_a)
    pb = passes[1].run_batch(index, images, labels, observe=see_b)
    return pa, pb


def _tally(state: dict, labels: np.ndarray, meeting: _Meeting, pa, pb) -> None:
    """The first pass's per-batch sums: images, class counts and sums, HSIC, accuracies and agreement."""
    pooled_a, pooled_b = meeting.pooled_a, meeting.pooled_b
    state["images"] += len(labels)
    onehot = np.zeros((len(labels), len(state["counts"])))
    onehot[np.arange(len(labels)), labels] = 1.0
    state["counts"] += onehot.sum(0).astype(np.int64)
    for i, sums in state["class_a"].items():  # the weighted layers
        sums += onehot.T @ pooled_a[i]
    for j, sums in state["class_b"].items():
        sums += onehot.T @ pooled_b[j]
    state["hsic"].update(pooled_a, pooled_b)
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


def _float64(r: torch.Tensor) -> np.ndarray:
    """(n, C) float64 numpy copy of spatial means taken by an analysis pass."""
    return r.detach().to(torch.float64).cpu().numpy()


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
    """Cross moments of (n, Ca, S) and (n, Cb, S) over the n x S rows, in chunks of at most _CHUNK_ROWS rows.

    On the CPU the co-moment product is a float32 GEMM (half the time of float64, which was a third of what
    `diff -o` adds to two analyses) of the maps shifted by their chunk means (float32 sums), summed into
    float64 chunk by chunk: with the data centred and each product's sum at most _CHUNK_ROWS terms long, the
    correlations stay within ~1e-6 of a float64 computation (tests/test_diff.py checks 1e-5 against numpy on
    the whole data). Means and squared deviations are float64 throughout; on a GPU the product is float64."""
    n, ca, s = xa.shape
    width = 4 if not xa.is_cuda else 8
    step = max(1, min(_CHUNK_BYTES // (width * s * (ca + xb.shape[1])), _CHUNK_ROWS // s))
    acc = None
    for k in range(0, n, step):
        (p, shift_p, d_p, m2_p), (q, shift_q, d_q, m2_q) = _shifted(xa[k:k + step]), _shifted(xb[k:k + step])
        rows = p.shape[1]
        # the product in torch on either device: on the CPU numpy's BLAS threads would fight torch's OpenMP
        # pool, which spins on after each layer (measured 7x slower on 2 cores)
        co = -rows * np.outer(d_p, d_q)  # about the means
        for r in range(0, rows, _CHUNK_ROWS):  # an image wider than _CHUNK_ROWS positions is cut too
            co += (p[:, r:r + _CHUNK_ROWS] @ q[:, r:r + _CHUNK_ROWS].T).cpu().numpy()
        part = CrossMoments(rows, shift_p + d_p, shift_q + d_q, m2_p, m2_q, co)
        acc = part if acc is None else acc.merge(part)
    return acc


def _shifted(x: torch.Tensor):
    """(z, shift, d, m2) of an (n, C, S) map: z the (C, rows) copy minus `shift` per channel (a torch tensor on
    x's device; float32 on the CPU, float64 on a GPU), shift (float64 values of what was subtracted: near the
    chunk mean), d = mean - shift and m2 the sum of squared deviations from the mean, both
    float64 (numpy). Shifting keeps the moments exact: sum (x - mean)(y - mean)' = sum z_x z_y' - rows d_x d_y'."""
    if x.is_cuda:
        z = x.transpose(0, 1).reshape(x.shape[1], -1).to(torch.float64, copy=True)
        mean = z.mean(1)
        z -= mean[:, None]
        zero = np.zeros(len(mean))
        return z, mean.cpu().numpy(), zero, (z * z).sum(1).cpu().numpy()
    src = x.numpy() if x.dtype == torch.float32 else x.float().numpy()
    n, c, s = src.shape
    # the channel means from numpy's pairwise float32 sums (torch's reductions over these maps took 10x the
    # time here): a shift near the mean keeps the float32 sums below from cancelling; d puts the rest back
    shift = src.sum(2).sum(0) / np.float32(n * s)
    z = np.empty((c, n, s), np.float32)
    np.subtract(src.transpose(1, 0, 2), shift[:, None, None], out=z)  # one pass, channels first
    z = z.reshape(c, n * s)
    rows = z.shape[1]
    d = z.sum(1).astype(np.float64) / rows  # numpy's pairwise float32 sums
    m2 = _sum_of_squares(z) - rows * d * d
    return torch.from_numpy(z), shift.astype(np.float64), d, np.maximum(m2, 0.0)


def _sum_of_squares(z: np.ndarray) -> np.ndarray:
    """Per row of a (C, rows) float32 array, the float64 sum of squares: einsum's float32 sums over blocks of
    at most 1024 (1e-6 relative, where one float32 sum of 50,000 terms is off by 7e-5; 4x faster than numpy's
    pairwise sum of a squared copy), added in float64."""
    c, rows = z.shape
    block = _block(rows)
    if block < 64:  # no usable divisor: the slower pairwise sum
        return np.square(z).sum(1, dtype=np.float64)
    blocks = z.reshape(c, rows // block, block)
    return np.einsum("cbr,cbr->cb", blocks, blocks).sum(1, dtype=np.float64)


@functools.lru_cache(maxsize=None)
def _block(rows: int) -> int:
    """The largest divisor of rows up to 1024 (a layer's chunks repeat their row counts batch after batch)."""
    return max(b for b in range(1, min(rows, 1024) + 1) if rows % b == 0)


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

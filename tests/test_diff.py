"""cnnvis diff: running statistics against numpy float64 references, the alignments against brute force, and
planted changes (a permutation, five re-initialised channels, two seeds, two widths) recovered end to end."""
import copy
import itertools

import numpy as np
import pytest
import torch

from cnnvis.data import LeNet, load_digits
from cnnvis.diff import (CrossMoments, HSICSums, best_match, compare, match_neurons, monotone_alignment,
                         weight_drift)
from cnnvis.diff._sums import grams, unbiased_hsic
from cnnvis.errors import CnnvisError


# -- references (float64, written from the papers' formulas, independent of cnnvis.diff) --------------------
def hsic_unbiased_ref(x, y):
    """Song et al. (2012) eq. 5 with explicit Grams and ones vectors."""
    n = len(x)
    K, L = x @ x.T, y @ y.T
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    k1, l1 = K.sum(1), L.sum(1)  # K 1, L 1 (K, L symmetric: tr(KL) is the sum of K * L)
    return ((K * L).sum() + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * k1 @ l1) / (n * (n - 3))


def cka_unbiased_ref(x, y):
    return hsic_unbiased_ref(x, y) / np.sqrt(hsic_unbiased_ref(x, x) * hsic_unbiased_ref(y, y))


def cka_biased_ref(x, y):
    """Kornblith et al. (2019): ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) of centred features."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return LeNet().eval()


def pooled(model, data, names):
    """(N, C) spatial means of the named modules' outputs, by forward hooks on the model itself."""
    out, hooks = {}, []
    for name, mod in model.named_modules():
        if name in names:
            hooks.append(mod.register_forward_hook(lambda m, i, o, name=name: out.__setitem__(
                name, o.detach().reshape(o.shape[0], o.shape[1], -1).mean(2).double().numpy())))
    with torch.no_grad():
        model(torch.from_numpy(data.images))
    for h in hooks:
        h.remove()
    return [out[n] for n in names]


# -- running statistics ----------------------------------------------------------------------------------
def test_cross_moments_merged_in_any_split_equal_numpy_corrcoef():
    rng = np.random.default_rng(0)
    xa = rng.normal(3.0, 2.0, (1000, 6)) + 1e4  # a large offset: raw sums would cancel
    xb = xa[:, [2, 0, 1]] * rng.uniform(0.5, 2, 3) + rng.normal(0, 0.5, (1000, 3))
    ref = np.corrcoef(xa.T, xb.T)[:6, 6:]
    for cuts in ([1000], [1, 999], [300, 300, 400], [7] * 142 + [6]):
        parts, start = [], 0
        for c in cuts:
            parts.append(CrossMoments.of(xa[start:start + c], xb[start:start + c]))
            start += c
        acc = parts[0]
        for p in parts[1:]:
            acc = acc.merge(p)
        np.testing.assert_allclose(acc.correlation(), ref, atol=1e-10)
        assert acc.count == 1000


@pytest.mark.parametrize("shape_a, cb, chunk_rows", [((5, 37, 11), 13, 16384), ((9, 3, 49), 70, 100),
                                                     ((2, 64, 3136), 32, 16384), ((13, 1, 1), 2, 4),
                                                     ((3, 6, 300), 5, 128)])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no usable CUDA device for torch")])])
def test_streamed_cross_moments_equal_float64_numpy(monkeypatch, shape_a, cb, chunk_rows, device):
    """The pass's float32 products (shifted by the chunk means, summed in float64 chunk by chunk, chunks of
    at most chunk_rows rows) give numpy's float64 correlations over images x positions within 1e-5, also for
    maps far from zero (a large offset would cancel in unshifted float32 sums)."""
    from cnnvis.diff import _pass

    monkeypatch.setattr(_pass, "_CHUNK_ROWS", chunk_rows)
    g = torch.Generator().manual_seed(sum(shape_a) + cb)
    n, ca, s = shape_a
    xa = torch.relu(torch.randn(shape_a, generator=g) + 0.3) * 3 + 50
    mix = torch.randn(cb, ca, generator=g) / ca ** 0.5
    xb = torch.einsum("dc,ncs->nds", mix, xa) + 0.5 * torch.randn(n, cb, s, generator=g)
    got = _pass._cross(xa.to(device), xb.to(device))
    rows = lambda x: x.double().transpose(1, 2).reshape(-1, x.shape[1]).numpy()  # noqa: E731
    ref = np.corrcoef(rows(xa).T, rows(xb).T)[:ca, ca:]
    assert got.count == n * s
    np.testing.assert_allclose(got.correlation(), ref, atol=1e-5)
    np.testing.assert_allclose(got.mean_a, rows(xa).mean(0), rtol=1e-9)
    np.testing.assert_allclose(got.m2_b, ((rows(xb) - rows(xb).mean(0)) ** 2).sum(0), rtol=1e-5)


def test_constant_channel_has_nan_correlation():
    x = np.c_[np.ones(50), np.arange(50.0)]
    r = CrossMoments.of(x, x).correlation()
    assert np.isnan(r[0]).all() and r[1, 1] == pytest.approx(1.0)


def test_one_batch_of_minibatch_cka_is_the_full_batch_unbiased_cka():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 7)) + 2
    ys = [x @ rng.normal(size=(7, 5)) + rng.normal(size=(40, 5)), rng.normal(size=(40, 3))]
    s = HSICSums(1, 2)
    s.update([x], ys)
    np.testing.assert_allclose(s.cka()[0], [cka_unbiased_ref(x, y) for y in ys], atol=1e-12)
    ga = grams([x])
    np.testing.assert_allclose(unbiased_hsic(ga, ga, 40, pairs=False), [hsic_unbiased_ref(x, x)], rtol=1e-12)


def test_minibatch_cka_agrees_with_full_batch_cka_on_lenet(digits, lenet):
    """LeNet's conv/ReLU layers (random weights) on all 1797 digits, batches of 600 in a random order: the
    same estimator as full-batch unbiased CKA within 1e-3 (its minibatch variance; the fully connected
    layers, 500-dimensional and less alike, vary more between batchings: within 0.03), and full-batch
    unbiased within 2e-3 of the classic biased CKA."""
    names = ["conv1", "relu1", "conv2", "relu2", "fc1", "fc2"]
    torch.manual_seed(5)
    other = LeNet().eval()
    xa, xb = pooled(lenet, digits, names), pooled(other, digits, names)
    order = np.random.default_rng(0).permutation(len(digits))
    s = HSICSums(len(names), len(names))
    for k in range(0, len(order), 600):
        ix = order[k:k + 600]
        s.update([x[ix] for x in xa], [y[ix] for y in xb])
    full = np.array([[cka_unbiased_ref(x, y) for y in xb] for x in xa])
    biased = np.array([[cka_biased_ref(x, y) for y in xb] for x in xa])
    assert s.batches == 3
    np.testing.assert_allclose(s.cka()[:4, :4], full[:4, :4], atol=1e-3)
    np.testing.assert_allclose(s.cka(), full, atol=0.03)
    np.testing.assert_allclose(full, biased, atol=2e-3)


def test_a_constant_layer_has_nan_cka_and_a_weakly_varying_one_does_not():
    """A layer varying at 1e-5 of its mean keeps CKA 1 with itself (uncentred Grams cancelled it to float64
    noise: CKA 0.0 against an exact copy), a constant one has NaN; HSIC itself is unchanged by centring."""
    rng = np.random.default_rng(0)
    h = HSICSums(3, 3)
    base = rng.normal(size=12)
    for _ in range(3):
        const = np.tile(base, (8, 1))  # the same logits for every image
        weak = base + 1e-5 * rng.normal(size=(8, 12))
        strong = rng.normal(size=(8, 5))
        h.update([const, weak, strong], [const.copy(), weak.copy(), strong.copy()])
    cka = h.cka()
    assert np.isnan(cka[0]).all() and np.isnan(cka[:, 0]).all()
    assert cka[1, 1] == pytest.approx(1, abs=1e-9) and cka[2, 2] == pytest.approx(1, abs=1e-12)
    x, y = rng.normal(size=(9, 7)) + 3, rng.normal(size=(9, 4)) - 5
    shifted = unbiased_hsic(grams([x, y]), grams([x + 1e3, y - 7]), 9)
    np.testing.assert_allclose(shifted, unbiased_hsic(grams([x, y]), grams([x, y]), 9), rtol=1e-9)


def test_batches_smaller_than_four_are_counted_not_used():
    s = HSICSums(1, 1)
    s.update([np.ones((3, 2))], [np.ones((3, 2))])
    assert (s.batches, s.skipped) == (0, 3) and np.isnan(s.cka()).all()


# -- matching -------------------------------------------------------------------------------------------
def _brute_alignment(score, ok):
    """The most matched rows, then the largest sum, over every strictly increasing partial assignment."""
    La, Lb = score.shape
    best = (-1, -np.inf)
    for rows in itertools.product(*[[-1] + list(range(Lb))] * La):
        m = [j for j in rows if j >= 0]
        if any(b <= a for a, b in zip(m, m[1:])) or any(j >= 0 and not ok[i, j] for i, j in enumerate(rows)):
            continue
        best = max(best, (len(m), sum(score[i, j] for i, j in enumerate(rows) if j >= 0)))
    return best


def test_monotone_alignment_is_optimal_against_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(120):
        La, Lb = rng.integers(1, 5, 2)
        score, ok = rng.random((La, Lb)), rng.random((La, Lb)) > 0.3
        got = monotone_alignment(score, ok)
        m = got[got >= 0]
        assert (np.diff(m) > 0).all() and all(ok[i, j] for i, j in enumerate(got) if j >= 0)
        n, total = _brute_alignment(score, ok)
        assert len(m) == n and sum(score[i, j] for i, j in enumerate(got) if j >= 0) == pytest.approx(total)


def test_best_match_is_the_feasible_argmax():
    score = np.array([[0.1, 0.9, 0.5], [0.8, np.nan, 0.2], [0.3, 0.4, 0.6]])
    ok = np.array([[1, 0, 1], [1, 1, 1], [0, 0, 0]], bool)
    assert best_match(score, ok).tolist() == [2, 0, -1]


def test_match_neurons_recovers_a_permutation_and_leaves_the_extra_rows_unmatched():
    rng = np.random.default_rng(3)
    perm = rng.permutation(6)
    corr = rng.uniform(-0.3, 0.0, (8, 6))
    corr[perm, np.arange(6)] = rng.uniform(0.81, 1.0, 6)  # A's neuron perm[j] is B's neuron j
    corr[perm[0], 0] = 0.6                                  # matched, but below the threshold
    partner, r, status, chance = match_neurons(corr, 0.8)
    assert (partner[perm] == np.arange(6)).all()
    assert sorted(set(range(8)) - set(perm)) == np.flatnonzero(partner < 0).tolist()
    assert status[perm[0]] == "drifted" and (status[perm[1:]] == "stable").all()
    assert (chance[perm] == 0).all()  # every other neuron of B anticorrelates: no chance level to remove
    assert (status[partner < 0] == "unmatched").all() and np.isnan(r[partner < 0]).all() and np.isnan(chance[partner < 0]).all()


def test_stable_means_correlation_beyond_what_other_neurons_reach():
    """A partner at r = 0.9 is stable when B's other neurons reach 0.1 and drifted when they reach 0.7
    (0.9 is then only (0.9 - 0.7) / 0.3 = 0.67 beyond chance); an exact copy is stable whatever the rest."""
    rng = np.random.default_rng(5)
    for level, expect in ((0.1, "stable"), (0.7, "drifted")):
        corr = np.full((1, 21), level) + rng.uniform(-0.01, 0.0, (1, 21))
        corr[0, 20] = level  # the 90th percentile of the 20 others is `level` (within 0.01)
        corr[0, 7] = 0.9
        m = match_neurons(corr, 0.8)
        assert m.partner[0] == 7 and m.correlation[0] == 0.9 and m.chance[0] == pytest.approx(level, abs=0.01)
        assert m.status[0] == expect, level
    corr = np.full((2, 2), 1.0)
    assert (match_neurons(corr).status == "stable").all()  # exact copies (chance 1 too)
    one = match_neurons(np.array([[0.85], [0.2]]))  # B has one neuron: chance 0
    assert one.status.tolist() == ["stable", "unmatched"] and one.chance[0] == 0


@pytest.mark.parametrize("shape", [(7, 1), (5, 2), (40, 33), (300, 257)])
def test_chance_level_is_numpys_nanpercentile(shape):
    """The vectorised per-row percentile equals np.nanpercentile, NaNs (constant channels, the partner) and
    rows without a finite entry included."""
    import warnings

    from cnnvis.diff._match import CHANCE_PERCENTILE, _row_percentile

    rng = np.random.default_rng(shape[0])
    x = rng.uniform(-1, 1, shape)
    x[rng.random(shape) < 0.2] = np.nan
    x[0] = np.nan
    with warnings.catch_warnings():  # numpy warns of the all-NaN row
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanpercentile(x, CHANCE_PERCENTILE, axis=1)
    np.testing.assert_allclose(_row_percentile(x, CHANCE_PERCENTILE), ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("ca, cb, noise", [(1, 1, 0.1), (5, 9, 0.1), (64, 64, 0.1), (64, 64, 2.0), (33, 40, 1.0)])
def test_assignment_is_scipys_optimum(ca, cb, noise):
    """The row-argmax shortcut (taken when every row's best column differs) and the Hungarian fallback reach
    scipy's optimal total on planted permutations, strong (shortcut) and weak (fallback)."""
    from scipy.optimize import linear_sum_assignment

    from cnnvis.diff._match import _assignment

    rng = np.random.default_rng(ca * cb)
    z = rng.normal(0, noise, (ca, cb))
    z[np.arange(ca), rng.permutation(cb)[:ca]] += 3.0
    rows, cols = _assignment(z)
    ref_rows, ref_cols = linear_sum_assignment(z, maximize=True)
    assert len(set(cols)) == len(cols) == ca and (np.sort(rows) == np.arange(ca)).all()
    assert z[rows, cols].sum() == pytest.approx(z[ref_rows, ref_cols].sum(), abs=1e-12)


def test_weight_drift_after_permuting_out_and_in_channels():
    rng = np.random.default_rng(4)
    wa = rng.normal(size=(5, 3, 3, 3))
    po, pi = rng.permutation(5), rng.permutation(3)
    wb = wa[np.argsort(po)][:, np.argsort(pi)]  # B's out channel po[i] is A's i, its in channel pi[k] A's k
    assert weight_drift(wa, wb, po, pi) == pytest.approx(0.0, abs=1e-12)
    assert weight_drift(wa, wb) > 0.5
    lin_a = rng.normal(size=(4, 3 * 6))  # a linear layer after flattening 3 channels of 6 positions
    lin_b = lin_a.reshape(4, 3, 6)[:, np.argsort(pi)].reshape(4, 18)
    assert weight_drift(lin_a, lin_b, None, pi) == pytest.approx(0.0, abs=1e-12)


# -- planted changes, end to end -------------------------------------------------------------------------
def permuted_lenet(model, perm):
    """The same function with conv2's output channels permuted (B's channel j is A's perm[j]) and fc1's
    inputs (conv2's channels x 7 x 7 positions, flattened) permuted to match."""
    out = copy.deepcopy(model)
    sd = out.state_dict()
    sd["conv2.weight"], sd["conv2.bias"] = sd["conv2.weight"][perm], sd["conv2.bias"][perm]
    w = sd["fc1.weight"]
    sd["fc1.weight"] = w.reshape(w.shape[0], len(perm), -1)[:, perm].reshape(w.shape)
    out.load_state_dict(sd)
    return out.eval()


def test_permuted_conv2_is_recovered_exactly(digits, lenet):
    perm = np.random.default_rng(3).permutation(50)
    other = permuted_lenet(lenet, perm)
    data = digits.subset(np.arange(600))
    x = torch.from_numpy(data.images[:8])
    assert torch.allclose(lenet(x), other(x), atol=1e-5)  # the same function
    d = compare(lenet, other, data, batch_size=100, show_progress=False)
    conv2 = d.layer("conv2")
    assert conv2.b == "conv2" and conv2.cka == pytest.approx(1.0, abs=1e-6)
    assert (conv2.partner == np.argsort(perm)).all()  # A's neuron i is B's channel j with perm[j] == i
    for l in d.layers:
        assert (l.status == "stable").all(), l.a
        assert l.weight_drift == pytest.approx(0.0, abs=1e-6), l.a  # aligned by both in- and out-channels
    assert d.layer("fc1").weight_drift_unaligned > 0.1  # fc1's inputs moved: raw drift is not zero
    assert d.meta["second_pass_pairs"] == 0 and d.meta["prediction_agreement"] == 1.0


class _ShapeChecked(torch.nn.Module):
    """forward() refuses other image sizes, as published classifiers do: torch.fx cannot trace it (export can)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        if x.shape[-2:] != (28, 28):
            raise ValueError(f"expected 28x28 digits, got {tuple(x.shape[-2:])}")
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class _ChannelsLast(torch.nn.Module):
    """A ConvNeXt-style MLP over the channels of an NHWC tensor: pw1's 20 units are its last axis."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.pw1 = torch.nn.Linear(6, 20)
        self.pw2 = torch.nn.Linear(20, 6)
        self.head = torch.nn.Linear(6, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.pw2(torch.nn.functional.gelu(self.pw1(x.permute(0, 2, 3, 1))))
        return self.head((x + y.permute(0, 3, 1, 2)).mean((2, 3)))


@pytest.mark.parametrize("kind", ["shape-checked", "channels-last"])
def test_permutation_recovered_in_models_fx_cannot_trace_or_that_keep_channels_last(digits, kind):
    """Any model: the shape-checked net is captured by torch.export, pw1's units sit on the last axis; B is A
    with one layer's units permuted (the next layer's inputs to match: the same function)."""
    torch.manual_seed(0)
    a = (_ShapeChecked() if kind == "shape-checked" else _ChannelsLast()).eval()
    b = copy.deepcopy(a)
    name, nxt = ("conv2", "fc") if kind == "shape-checked" else ("pw1", "pw2")
    width = getattr(a, name).weight.shape[0]
    perm = np.random.default_rng(5).permutation(width)
    with torch.no_grad():
        getattr(b, name).weight.copy_(getattr(a, name).weight[perm])
        getattr(b, name).bias.copy_(getattr(a, name).bias[perm])
        w = getattr(a, nxt).weight  # its inputs: the units (pw2), or the units x 7 x 7 positions (fc)
        blocks = w.reshape(w.shape[0], width, -1)[:, perm].reshape(w.shape)
        getattr(b, nxt).weight.copy_(blocks)
    data = digits.subset(np.arange(400))
    x = torch.from_numpy(data.images[:8])
    assert torch.allclose(a(x), b(x), atol=1e-5)
    from cnnvis.graph._trace import trace

    assert trace(a, x[:2]).method == ("export" if kind == "shape-checked" else "fx")
    d = compare(a, b, data, batch_size=50, show_progress=False)
    layer = d.layer(name)
    assert layer.b == name and layer.cka == pytest.approx(1.0, abs=1e-6)
    assert (layer.partner == np.argsort(perm)).all()
    assert all((l.status == "stable").all() for l in d.layers), [(l.a, set(l.status)) for l in d.layers]


@pytest.fixture(scope="module")
def two_seeds(digits):
    """BaseCNN x0.125 (10 conv + 2 fc layers) trained briefly from two seeds (2 epochs on 600 digits)."""
    import tempfile
    from pathlib import Path

    from cnnvis.data import BaseCNN
    from cnnvis.data._train import train

    train_set, test_set = digits.split(0.2, seed=0)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = BaseCNN(n_classes=10, in_channels=1, image_size=28, width=0.125)
        with tempfile.TemporaryDirectory() as tmp:
            train(m, train_set.subset(np.arange(600)), test_set, Path(tmp), epochs=2, seed=seed, show_progress=False)
        models.append(m.eval())
    return models, test_set


def test_two_seeds_layer_correspondences(two_seeds):
    """The reported alignment is order-preserving and one-to-one, so for two models with the same layers it
    pairs each layer with its namesake by construction. Not asserted: the unconstrained per-row argmax
    (Kornblith et al.'s sanity check), which on these briefly trained seeds recovers only ~40-60% of the
    weighted layers (adjacent convolutions of a stage have CKA within 0.01 of each other); `best` reports it."""
    (a, b), data = two_seeds
    d = compare(a, b, data, batch_size=120, show_progress=False)
    assert np.mean([d.layers_b[j] == n for n, j in zip(d.layers_a, d.alignment)]) >= 0.9
    assert [l.b for l in d.layers] == [l.a for l in d.layers]
    assert d.best.shape == d.alignment.shape and (d.best >= 0).all()
    assert all(np.isfinite(l.weight_drift) and l.weight_drift > 0 for l in d.layers)
    assert d.layers[0].cka > d.layers[-3].cka  # early layers agree more between seeds than late ones


def test_reinitialised_channels_are_flagged_and_no_other(two_seeds):
    """Five re-initialised channels of conv3_1 (He init, as BaseCNN's) are flagged, and no other: unchanged
    neurons keep correlation 1 with their copies. A random filter over ReLU inputs may still correlate
    0.8-0.95 with the trained one (raw r >= 0.8 for at least one of the five in about 28% of draws); the
    chance correction flags them anyway (scripts/diff_chance.py: about 1% of draws keep one stable)."""
    (a, _), data = two_seeds
    b = copy.deepcopy(a)
    conv = b.features.conv3_1
    five = np.sort(np.random.default_rng(1).choice(conv.out_channels, 5, replace=False))
    torch.manual_seed(7)
    fresh = torch.empty_like(conv.weight)
    torch.nn.init.kaiming_normal_(fresh, mode="fan_out", nonlinearity="relu")
    with torch.no_grad():
        conv.weight[five] = fresh[five]
        conv.bias[five] = 0
    strict = compare(a, b, data, batch_size=120, threshold=0.97, show_progress=False).layer("features.conv3_1")
    assert np.flatnonzero(strict.status != "stable").tolist() == five.tolist()
    others = np.setdiff1d(np.arange(conv.out_channels), five)
    assert (strict.partner[others] == others).all() and (strict.correlation[others] > 0.9999).all()
    default = compare(a, b, data, batch_size=120, show_progress=False).layer("features.conv3_1")
    assert np.flatnonzero(default.status != "stable").tolist() == five.tolist()
    assert (default.status[others] == "stable").all() and (default.chance[others] < 0.99).all()


def test_two_widths_compare_with_unmatched_neurons(digits):
    torch.manual_seed(0)
    wide, narrow = LeNet(width=2).eval(), LeNet().eval()
    d = compare(wide, narrow, digits.subset(np.arange(300)), batch_size=100, show_progress=False)
    c1 = d.layer("conv1")
    assert c1.b == "conv1" and c1.counts()["unmatched"] == 20 and len(c1.partner) == 40
    assert sorted(c1.partner[c1.partner >= 0].tolist()) == list(range(20))  # one-to-one onto B's 20
    assert np.isnan(c1.weight_drift) and not d.same_architecture
    assert d.layer("fc2").counts()["unmatched"] == 0


# -- the diff and both analyses in one pass --------------------------------------------------------------
def assert_analyses_match(got, ref, *, rtol, atol):
    """Two analyses of one model on one data set whose images were streamed in different orders (the diff's
    random permutation, the data set's order or shards): per-class moments and importance sums are added in
    another order, and an image's float32 activations may differ in their last bits with the batch it sits in
    (BLAS blocks a linear layer's rows by batch position): `rtol`, plus `atol` for means near zero. The top-k
    scores agree as closely, and so do the images, boxes and crops wherever a score is apart from its
    neighbours' by more than that (tied images, e.g. a dead ReLU's zeros, are kept in order of arrival)."""
    assert got.graph.names == ref.graph.names and got.class_names == ref.class_names
    assert got.meta["accuracy"] == ref.meta["accuracy"] and got.meta["n_images"] == ref.meta["n_images"]
    for name in ref.graph.names:
        for f in ("count", "mean", "std", "max", "active"):
            np.testing.assert_allclose(getattr(got.stats[name], f), getattr(ref.stats[name], f), rtol=rtol,
                                       atol=atol, err_msg=f"{name}.{f}")
        for f in ("mean_activation", "max_activation", "contribution"):
            np.testing.assert_allclose(getattr(got.importance[name], f), getattr(ref.importance[name], f),
                                       rtol=rtol, atol=atol, err_msg=f"{name}.{f}")
        if name in ref.features:
            a, b = ref.features[name], got.features[name]
            np.testing.assert_allclose(b.scores, a.scores, rtol=rtol, atol=atol, err_msg=name)
            near = lambda x, y: np.isclose(x, y, rtol=rtol, atol=atol)  # noqa: E731 (may swap within rounding)
            untied = a.scores != 0  # a zero may tie with an image left out of the top k
            untied[:, 1:] &= ~near(a.scores[:, 1:], a.scores[:, :-1])
            untied[:, :-1] &= ~near(a.scores[:, :-1], a.scores[:, 1:])
            assert untied.mean() > 0.3, name  # the check has teeth
            np.testing.assert_array_equal(b.image_index[untied], a.image_index[untied], err_msg=name)
            np.testing.assert_array_equal(b.boxes[untied], a.boxes[untied])
            np.testing.assert_array_equal(np.asarray(b.patches)[untied], np.asarray(a.patches)[untied])


def assert_diffs_match(got, ref, *, atol):
    """The same alignments, partners and statuses; CKA, correlations and class changes within `atol`."""
    assert (got.layers_a, got.layers_b) == (ref.layers_a, ref.layers_b)
    assert got.same_architecture == ref.same_architecture
    assert (got.alignment == ref.alignment).all() and (got.best == ref.best).all()
    np.testing.assert_allclose(got.cka, ref.cka, atol=atol)
    for g, r in zip(got.layers, ref.layers, strict=True):
        assert (g.a, g.b) == (r.a, r.b) and (g.partner == r.partner).all() and (g.status == r.status).all()
        np.testing.assert_allclose(g.cka, r.cka, atol=atol)
        np.testing.assert_allclose(g.correlation, r.correlation, atol=atol)
        np.testing.assert_allclose(g.class_change, r.class_change, atol=atol)
        np.testing.assert_allclose([g.weight_drift, g.weight_drift_unaligned],
                                   [r.weight_drift, r.weight_drift_unaligned], rtol=1e-12)


def test_one_pass_gives_the_diff_and_the_separate_analyses(digits, lenet):
    """compare(..., analyses=True), `cnnvis diff -o`'s single pass: its diff is compare()'s (within 1e-6: it
    takes the analysis pass's float32 spatial means where the forward-only pass takes float64 means of the
    same maps) and its analyses are analyze()'s on each model (to float32 rounding: the diff streams the
    images in its random order, analyze in the data set's; see assert_analyses_match). 330 images in
    batches of 64: the last batch is short (10)."""
    from cnnvis.analysis import analyze

    torch.manual_seed(5)
    other = LeNet().eval()
    data = digits.subset(np.arange(330))
    ref = compare(lenet, other, data, batch_size=64, show_progress=False, meta=dict(run="x"))
    got, ga, gb = compare(lenet, other, data, batch_size=64, show_progress=False, meta=dict(run="x"),
                          analyses=True, top_k=5, max_patch=8)
    assert_diffs_match(got, ref, atol=1e-6)
    assert got.meta == ref.meta
    for model, analysis, side in ((lenet, ga, "A"), (other, gb, "B")):
        assert analysis.meta["diff_side"] == side and analysis.meta["run"] == "x" and analysis.meta["top_k"] == 5
        alone = analyze(model, data, batch_size=64, top_k=5, max_patch=8, show_progress=False)
        assert_analyses_match(analysis, alone, rtol=1e-5, atol=1e-7)


def test_one_pass_checks_the_analysis_options(digits, lenet):
    for kw, message in ((dict(top_k=0), "top_k must be in >= 1, got 0"),
                        (dict(max_patch=2.5), r"max_patch must be an integer, got 2.5 \(float\)")):
        with pytest.raises(CnnvisError, match=message):
            compare(lenet, lenet, digits.subset(np.arange(20)), analyses=True, show_progress=False, **kw)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, lenet):
    folder = tmp_path_factory.mktemp("diff")
    perm = np.random.default_rng(3).permutation(50)
    torch.save(lenet.state_dict(), folder / "a.pt")
    torch.save(permuted_lenet(lenet, perm).state_dict(), folder / "b.pt")
    return folder, perm


def _cnnvis(argv, capsys):
    from cnnvis.app.commands import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _args(folder, *extra):
    return ["diff", "--model", "cnnvis.data:LeNet", "--weights", str(folder / "a.pt"), "--against",
            str(folder / "b.pt"), "--data", "digits", "--limit", "200", "--batch-size", "50", "--no-progress", *extra]


def test_cli_json_contract(checkpoints, capsys):
    import json

    folder, perm = checkpoints
    code, out, err = _cnnvis(_args(folder, "--json"), capsys)
    assert code == 0, err
    d = json.loads(out)
    sizes = {"conv1": 20, "conv2": 50, "fc1": 500, "fc2": 10}
    assert [l["a"] for l in d["layers"]] == list(sizes)
    for l in d["layers"]:
        assert set(l) >= {"a", "b", "cka", "partner", "correlation", "status", "weight_drift", "counts"}
        assert len(l["partner"]) == len(l["correlation"]) == len(l["status"]) == sizes[l["a"]]
        assert set(l["status"]) <= {"stable", "drifted", "unmatched"} and isinstance(l["cka"], float)
    conv2 = d["layers"][1]
    assert conv2["partner"] == np.argsort(perm).tolist() and set(conv2["status"]) == {"stable"}
    assert d["summary"]["stable"] == 580 and d["summary"]["neurons"] == 580
    assert len(d["cka"]["matrix"]) == len(d["cka"]["a"]) == len(d["alignment"])
    assert d["threshold"] == 0.8 and d["same_architecture"] is True


def test_cli_output_file_holds_both_analyses_and_the_diff(checkpoints, capsys, tmp_path):
    from cnnvis.analysis import Analysis
    from cnnvis.diff import load_diff

    folder, perm = checkpoints
    out = tmp_path / "d.cnnvis"
    code, stdout, err = _cnnvis(_args(folder, "-o", str(out)), capsys)
    assert code == 0, err and stdout == ""
    diff, a, b = load_diff(out)
    assert (diff.layer("conv2").partner == np.argsort(perm)).all()
    assert a.graph.names == b.graph.names and a.meta["diff_side"] == "A" and b.meta["diff_side"] == "B"
    # B's conv2 neurons are A's, permuted: their per-class means follow the permutation
    np.testing.assert_allclose(b.stats["conv2"].mean[:, np.argsort(perm)], a.stats["conv2"].mean, rtol=1e-4,
                               atol=1e-6)
    assert Analysis.load(out).graph.names == a.graph.names  # still an analysis file of A
    code, info, _ = _cnnvis(["info", str(out)], capsys)
    assert code == 0 and "conv2" in info


@pytest.mark.parametrize("change, message", [
    (lambda a: a[:5] + a[7:], "--against"),                          # argv[5:7]: --against B
    (lambda a: a[:6] + ["/nonexistent/b.pt"] + a[7:], "b.pt"),
    (lambda a: a + ["--batch-size", "3"], "--batch-size must be >= 4"),
    (lambda a: a + ["--threshold", "1.5"], "--threshold"),
    (lambda a: a + ["-o", "/nonexistent/folder/d.cnnvis"], "does not exist"),
    (lambda a: ["diff", "--demo", "--data", "digits"], "--demo brings its own"),
])
def test_cli_bad_input_is_one_line_and_exit_2(checkpoints, capsys, tmp_path, change, message):
    folder, _ = checkpoints
    argv = change(_args(folder))
    code, out, err = _cnnvis(argv, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_viewer_scene_of_a_diff_file(checkpoints, capsys, tmp_path):
    """cnnvis-gl's hook on a diff file: A's Scene, the CKA and stable-fraction series first in the chart, one
    finding per layer with drifted neurons first in the list (its neurons marked), the diagnosis after."""
    from cnnvis.app.diff_view import SERIES, scene_for

    folder, _ = checkpoints
    lenet_b = torch.load(folder / "a.pt", weights_only=True)
    lenet_b["conv2.weight"][[1, 2, 3]] = torch.randn_like(lenet_b["conv2.weight"][[1, 2, 3]])
    torch.save(lenet_b, tmp_path / "b3.pt")
    out = tmp_path / "d.cnnvis"
    argv = _args(folder, "-o", str(out))
    argv[6] = str(tmp_path / "b3.pt")
    assert _cnnvis(argv, capsys)[0] == 0
    scene, on_edit = scene_for(out)
    assert scene.chart_names[:2] == SERIES and len(scene.chart_names) == len(scene.chart_na) == len(scene.chart_legend)
    col = list(scene.column_names).index("conv2")
    assert scene.chart_values[0, -1, col] < 1 and 0 < scene.chart_values[1, -1, col] < 1
    kinds = [m.kind for m in scene.findings]
    ours = scene.findings[:kinds.count("diff")]
    assert all(m.kind == "diff" for m in ours) and "diff" not in kinds[len(ours):]  # the diagnosis after
    conv2 = next(m for m in ours if m.layer == "conv2")
    assert set(conv2.neurons) >= {1, 2, 3} and conv2.column == col and len(conv2.neuron_row) == len(conv2.neurons)
    assert [m.number for m in scene.findings] == list(range(1, len(scene.findings) + 1))


# -- distributed: 2 gloo processes against one ----------------------------------------------------------------
def _diff_worker(rank, init, states, x, y, out, analyses=False):
    import json

    import torch.distributed as dist

    from cnnvis.data import Dataset, build_model

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        models = []
        for state in states:
            m = build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12)
            m.load_state_dict(state)
            models.append(m.eval())
        d = compare(*models, Dataset(x, y, ("a", "b", "c"), "random"), batch_size=10, show_progress=False,
                    analyses=analyses, top_k=4)
        if rank != 0:
            assert d is None
        elif analyses:
            from cnnvis.diff import save_diff

            save_diff(out, *d)
        else:
            out.write_text(json.dumps(d.to_dict()))
    finally:
        dist.destroy_process_group()


def _gloo_inputs():
    from cnnvis.data import Dataset, build_model

    rng = np.random.default_rng(5)
    data = Dataset(rng.random((40, 1, 12, 12), dtype=np.float32), rng.integers(0, 3, 40), ("a", "b", "c"), "random")
    states = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        states.append(build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12).state_dict())
    models = []
    for state in states:
        m = build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12)
        m.load_state_dict(state)
        models.append(m.eval())
    return data, states, models


def test_two_gloo_processes_merge_the_correlations_exactly(tmp_path):
    """Each rank streams its shard; rank 0's merged correlations, partners and per-class changes are those of
    one process: within 1e-5, the float32 rounding of the activations themselves (a rank's batches hold other
    images than one process's, so BLAS sums them in another order; the merge itself is exact to 1e-10 above).
    CKA is not compared: its minibatch estimate depends on which images share a batch."""
    import json

    import torch.multiprocessing as mp

    data, states, models = _gloo_inputs()
    one = compare(*models, data, batch_size=10, show_progress=False).to_dict()
    out = tmp_path / "two.json"
    mp.spawn(_diff_worker, args=(f"file://{tmp_path / 'rendezvous'}", states, data.images, data.labels, out),
             nprocs=2)
    two = json.loads(out.read_text())
    assert two["meta"]["world_size"] == 2 and two["meta"]["n_images"] == 40
    for l1, l2 in zip(one["layers"], two["layers"]):
        assert (l1["a"], l1["b"], l1["partner"], l1["status"]) == (l2["a"], l2["b"], l2["partner"], l2["status"])
        np.testing.assert_allclose(np.array(l2["correlation"], float), np.array(l1["correlation"], float), atol=1e-5)
        np.testing.assert_allclose(np.array(l2["class_change"], float), np.array(l1["class_change"], float),
                                   atol=1e-5)


def test_two_gloo_processes_merge_the_one_pass_analyses_and_diff(tmp_path):
    """compare(..., analyses=True) under two ranks: rank 0 merges both analysis passes' partials (as
    cnnvis.analyze merges them) and the diff's sums. Against one process: the diff as above (within 1e-5),
    the analyses within float32 rounding (each rank streams other images in other batches; see
    assert_analyses_match)."""
    import torch.multiprocessing as mp

    from cnnvis.diff import load_diff

    data, states, models = _gloo_inputs()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks
    try:
        one, one_a, one_b = compare(*models, data, batch_size=10, show_progress=False, analyses=True, top_k=4)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "two.cnnvis"
    mp.spawn(_diff_worker, args=(f"file://{tmp_path / 'rendezvous'}", states, data.images, data.labels, out, True),
             nprocs=2)
    two, two_a, two_b = load_diff(out)
    assert two.meta["world_size"] == 2 and two.meta["n_images"] == 40
    for l1, l2 in zip(one.layers, two.layers, strict=True):
        assert (l1.a, l1.b) == (l2.a, l2.b) and (l1.partner == l2.partner).all() and (l1.status == l2.status).all()
        np.testing.assert_allclose(l2.correlation, l1.correlation, atol=1e-5)
        np.testing.assert_allclose(l2.class_change, l1.class_change, atol=1e-5)
    for got, ref, side in ((two_a, one_a, "A"), (two_b, one_b, "B")):
        assert got.meta["world_size"] == 2 and got.meta["diff_side"] == side
        assert_analyses_match(got, ref, rtol=1e-5, atol=1e-7)

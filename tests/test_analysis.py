"""The analysis pass against direct references, and the .cnnvis file (round trip, bad files, atomicity)."""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from cnnvis.analysis import Analysis, analyze
from cnnvis.analysis._receptive import crop_box, receptive_fields
from cnnvis.analysis._snapshots import apply_checkpoint, load_checkpoint, training_history
from cnnvis.data import Dataset, build_model
from cnnvis.errors import AnalysisFileError, DataError, ModelError
from cnnvis.graph._trace import trace
from cnnvis.stats import class_statistics


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    x = rng.random((37, 1, 12, 12), dtype=np.float32)
    y = rng.integers(0, 3, 37).astype(np.int64)
    y[:3] = [0, 1, 2]
    data = Dataset(x, y, ("a", "b", "c"), "random")
    torch.manual_seed(1)
    model = build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12).eval()
    snaps = []
    for t in range(3):  # three "snapshots": perturbed copies of the weights
        snaps.append({k: v + 0.01 * t * torch.randn_like(v) for k, v in model.state_dict().items()})
    apply_checkpoint(model, snaps[-1], "last")
    a = analyze(model, data, snapshots=snaps, batch_size=10, top_k=4, importance_classes=[0, 2],
                show_progress=False)
    return data, model, snaps, a


class _Recorder(torch.fx.Interpreter):
    """The slow, obvious reference: keeps every layer node's output for the whole batch, grads retained."""

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


def _all_activations(model, data):
    traced = trace(model, torch.from_numpy(data.images[:2]))
    outs = {}
    x = torch.from_numpy(data.images).requires_grad_(True)
    rec = _Recorder(traced.module, {n: k for k, n in traced.nodes.items()})
    logits = rec.run(x)
    logits.gather(1, logits.argmax(1)[:, None]).sum().backward()
    for layer in traced.graph.layers:
        t = rec.outputs[layer.name]
        a = t.detach().reshape(t.shape[0], layer.n_neurons, -1).double().numpy()
        g = t.grad.reshape(a.shape).double().numpy()
        outs[layer.name] = (a, g)
    return traced.graph, outs


def test_statistics_match_a_one_shot_reference(small):
    data, model, _, a = small
    graph, outs = _all_activations(model, data)
    for layer in graph.layers:
        ref = class_statistics(outs[layer.name][0], data.labels, 3)
        got = a.stats[layer.name]
        for f in ("count", "mean", "std", "max", "active"):
            np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=1e-5, atol=1e-6, err_msg=f)


def test_importance_matches_direct_computation(small):
    data, model, _, a = small
    graph, outs = _all_activations(model, data)
    sel = np.isin(data.labels, [0, 2])
    for layer in graph.layers:
        act, grad = outs[layer.name]
        imp = a.importance[layer.name]
        assert imp.classes == (0, 2)
        np.testing.assert_allclose(imp.mean_activation, act[sel].mean(2).mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(imp.max_activation, act[sel].max(2).max(0), rtol=1e-5, atol=1e-6)
        ref = np.abs((act * grad).sum(2))[sel].mean(0)
        np.testing.assert_allclose(imp.contribution, ref, rtol=1e-4, atol=1e-7)


def test_topk_patches_are_the_best_images_and_their_receptive_fields(small):
    data, model, _, a = small
    graph, outs = _all_activations(model, data)
    traced = trace(model, torch.from_numpy(data.images[:2]))
    fields = receptive_fields(traced.graph, traced.sites)
    for name in ("conv1", "relu2", "fc1"):
        act = outs[name][0]
        m = act.max(2)  # (N, C)
        f = a.features[name]
        order = np.argsort(-m, axis=0, kind="stable")[:4].T  # (C, 4)
        np.testing.assert_array_equal(np.sort(f.image_index, 1), np.sort(order, 1))
        np.testing.assert_allclose(f.scores, np.take_along_axis(m.T, f.image_index, 1), rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(f.scores, axis=1) <= 0)
        layer = graph.layer(name)
        for c in range(min(3, layer.n_neurons)):
            i = f.image_index[c, 0]
            pos = np.unravel_index(int(act[i, c].argmax()), layer.spatial) if layer.spatial else ()
            (y0, y1), (x0, x1) = crop_box(fields[name], pos, (12, 12)) if fields[name] else ((0, 12), (0, 12))
            np.testing.assert_array_equal(f.boxes[c, 0], (y0, x0, y1, x1))
            crop = np.round(data.images[i, 0, y0:y1, x0:x1] * 255).astype(np.uint8)
            np.testing.assert_array_equal(f.patches[c, 0, :, :, 0], crop)


class _Linearised(nn.Module):
    """All-ones convs and average pools: the input support of one output position is its receptive field."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 1, 5, padding=2, bias=False)
        self.p1 = nn.AvgPool2d(2)
        self.c2 = nn.Conv2d(1, 1, 3, padding=0, bias=False, dilation=2)
        self.c3 = nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
        for c in (self.c1, self.c2, self.c3):
            nn.init.ones_(c.weight)

    def forward(self, x):
        return self.c3(self.c2(self.p1(self.c1(x))))


@pytest.mark.parametrize("layer,pos", [("c1", (9, 11)), ("p1", (6, 5)), ("c2", (4, 6)), ("c3", (2, 3))])
def test_receptive_field_matches_gradient_support(layer, pos):
    m = _Linearised()
    x = torch.zeros(1, 1, 32, 32, requires_grad=True)
    traced = trace(m, x.detach())
    fields = receptive_fields(traced.graph, traced.sites)
    outs = {}
    h = getattr(m, layer).register_forward_hook(lambda mod, i, o: outs.setdefault("o", o))
    m(x)
    h.remove()
    outs["o"][0, 0][pos].backward()
    ys, xs = np.nonzero(x.grad[0, 0].numpy())
    (y0, y1), (x0, x1) = crop_box(fields[layer], pos, (32, 32))
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (y0, y1, x0, x1)


def test_training_history_matches_manual_norms(small):
    data, model, snaps, a = small
    h = a.history
    assert h.layers == ("conv1", "conv2", "fc1", "fc2")
    assert h.grad_mean.shape == (3, 4) and np.isnan(h.rel_change[0]).all()
    for t in (1, 2):
        for j, n in enumerate(h.layers):
            w1, w0 = snaps[t][f"{n}.weight"].double(), snaps[t - 1][f"{n}.weight"].double()
            np.testing.assert_allclose(h.rel_change[t, j], float((w1 - w0).norm() / w0.norm()), rtol=1e-6)
    ref = training_history(model, a.graph, snaps[-1:], data, show_progress=False)
    np.testing.assert_allclose(h.grad_mean[-1], ref.grad_mean[0], rtol=1e-6)
    assert h.edge_grad[("conv2", "pool1")].shape == (a.graph.layer("conv2").n_neurons, 5)
    assert (h.edge_change[("fc1", "flatten")] > 0).all()


def test_dead_fraction_is_one_minus_overall_active(small):
    data, model, _, a = small
    graph, outs = _all_activations(model, data)
    act = outs["conv2"][0]
    np.testing.assert_allclose(a.dead_fraction("conv2"), (act.max(2) <= 0).mean(0), atol=1e-12)
    assert "conv1" in a.relu_inputs() and "fc1" in a.relu_inputs()


# -- the file ---------------------------------------------------------------------------------------------
def _assert_same(a, b):
    assert a.graph.layers == b.graph.layers and a.class_names == b.class_names and a.meta == b.meta
    for d, s in a.graph.edges():
        np.testing.assert_array_equal(a.graph.connection(d, s), b.graph.connection(d, s))
    for group in ("stats", "features", "importance"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert ga.keys() == gb.keys()
        for k in ga:
            for f, v in vars(ga[k]).items():
                if isinstance(v, np.ndarray):
                    np.testing.assert_array_equal(v, getattr(gb[k], f))
                    assert v.dtype == getattr(gb[k], f).dtype
                else:
                    assert v == getattr(gb[k], f)
    for k, v in a.history.edge_grad.items():
        np.testing.assert_array_equal(v, b.history.edge_grad[k])
    np.testing.assert_array_equal(a.history.rel_change, b.history.rel_change)


def test_file_round_trip_is_exact_and_holds_no_pickle(small, tmp_path):
    a = small[3]
    p = tmp_path / "a.cnnvis"
    a.save(p)
    _assert_same(a, Analysis.load(p))
    with zipfile.ZipFile(p) as zf:
        assert all(n == "manifest.json" or n.endswith(".npy") for n in zf.namelist())
        for n in zf.namelist():
            if n.endswith(".npy"):
                with zf.open(n) as fh:
                    np.lib.format.read_array(fh, allow_pickle=False)
    assert list(tmp_path.iterdir()) == [p]


def test_truncated_corrupt_and_foreign_files_give_clear_errors(small, tmp_path):
    a = small[3]
    good = tmp_path / "good.cnnvis"
    a.save(good)
    raw = good.read_bytes()
    (tmp_path / "trunc.cnnvis").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AnalysisFileError, match=r"trunc\.cnnvis: truncated or corrupt"):
        Analysis.load(tmp_path / "trunc.cnnvis")
    (tmp_path / "junk.cnnvis").write_bytes(b"not a zip at all" * 10)
    with pytest.raises(AnalysisFileError, match=r"junk\.cnnvis"):
        Analysis.load(tmp_path / "junk.cnnvis")
    with pytest.raises(AnalysisFileError, match="no such analysis file"):
        Analysis.load(tmp_path / "missing.cnnvis")
    # a flipped byte inside an array member is caught by the zip CRC
    with zipfile.ZipFile(good) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".npy") and i.file_size > 200)
    bad = bytearray(raw)
    bad[info.header_offset + 30 + len(info.filename) + 150] ^= 0xFF
    (tmp_path / "flip.cnnvis").write_bytes(bytes(bad))
    with pytest.raises(AnalysisFileError, match="flip.cnnvis"):
        Analysis.load(tmp_path / "flip.cnnvis")


def _rewrite_manifest(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "manifest.json":
                head = json.loads(data)
                change(head)
                data = json.dumps(head).encode()
            zout.writestr(item, data)


def test_newer_version_and_missing_members_are_refused(small, tmp_path):
    a = small[3]
    good = tmp_path / "good.cnnvis"
    a.save(good)
    _rewrite_manifest(good, tmp_path / "new.cnnvis", lambda h: h.update(version=99))
    with pytest.raises(AnalysisFileError, match=r"newer cnnvis \(file format 99"):
        Analysis.load(tmp_path / "new.cnnvis")
    _rewrite_manifest(good, tmp_path / "foreign.cnnvis", lambda h: h.update(format="something-else"))
    with pytest.raises(AnalysisFileError, match="not a cnnvis analysis file"):
        Analysis.load(tmp_path / "foreign.cnnvis")
    _rewrite_manifest(good, tmp_path / "extra.cnnvis", lambda h: h["stats"].append(999))
    with pytest.raises(AnalysisFileError, match="corrupt analysis file"):
        Analysis.load(tmp_path / "extra.cnnvis")


def test_failed_save_leaves_nothing_behind(small, tmp_path):
    a = small[3]
    with pytest.raises(AnalysisFileError, match="does not exist"):
        a.save(tmp_path / "no" / "such" / "x.cnnvis")
    broken = Analysis(graph=a.graph, class_names=a.class_names, stats=a.stats, features=a.features,
                      importance={k: type(v)(np.array([object()], dtype=object), v.max_activation,
                                             v.contribution, v.classes) for k, v in a.importance.items()},
                      history=None, meta=a.meta)
    with pytest.raises(TypeError, match="no pickles"):
        broken.save(tmp_path / "x.cnnvis")
    assert list(tmp_path.iterdir()) == []


# -- bad input ------------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_problem(small, tmp_path):
    data, model, snaps, _ = small
    with pytest.raises(DataError, match="label 7 of image 0 is outside"):
        Dataset(data.images, np.full(len(data), 7), data.class_names, "bad")
    with pytest.raises(DataError, match="NaN"):
        Dataset(np.full_like(data.images, np.nan), data.labels, data.class_names, "nan")
    with pytest.raises(DataError, match="37 images but labels of shape"):
        Dataset(data.images, data.labels[:5], data.class_names, "short")
    with pytest.raises(DataError, match="unknown class 'zebra'"):
        analyze(model, data, importance_classes=["zebra"], show_progress=False)
    no_conv = nn.Sequential(nn.Flatten(), nn.Linear(144, 3))
    with pytest.raises(ModelError, match="no convolutional layer"):
        analyze(no_conv, data, show_progress=False)
    wrong_k = build_model("lenet-x0.25", n_classes=5, in_channels=1, image_size=12)
    with pytest.raises(ModelError, match="outputs 5 class scores but the data set 'random' has 3"):
        analyze(wrong_k, data, show_progress=False)
    other = build_model("lenet-x0.5", n_classes=3, in_channels=1, image_size=12)
    with pytest.raises(ModelError, match=r"does not fit LeNet: .*shape mismatch conv1.weight"):
        apply_checkpoint(other, snaps[0], "ckpt.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match=r"bad\.pt: not a loadable weights-only checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_non_finite_activations_name_the_layer(small):
    data = small[0]
    m = build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12)
    with torch.no_grad():
        m.conv2.weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(DataError, match=r"layer 'conv2', images 0\.\.9: .*non-finite"):
        analyze(m, data, batch_size=10, show_progress=False)


def test_large_receptive_fields_are_stored_scaled_down(small):
    import torch.nn.functional as F

    data, model, _, full = small
    a = analyze(model, data, batch_size=10, top_k=4, max_patch=5, show_progress=False)
    for name in ("conv1", "conv2", "fc1"):
        big, f = full.features[name], a.features[name]
        np.testing.assert_array_equal(f.image_index, big.image_index)
        np.testing.assert_array_equal(f.boxes, big.boxes)
        assert max(f.patches.shape[2:4]) <= 5
        if big.patches.shape[2:4] == f.patches.shape[2:4]:
            np.testing.assert_array_equal(f.patches, big.patches)  # small fields are kept as they are
            continue
        y0, x0, y1, x1 = f.boxes[0, 0]
        crop = torch.from_numpy(data.images[f.image_index[0, 0]][None, :, y0:y1, x0:x1])
        ref = F.interpolate(crop, size=f.patches.shape[2:4], mode="area")[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(f.patches[0, 0], np.round(ref * 255).astype(np.uint8))
    assert full.features["fc1"].patches.shape[2:4] == (12, 12) and a.features["fc1"].patches.shape[2:4] == (5, 5)


def test_random_byte_flips_and_cuts_never_escape_as_other_errors(small, tmp_path):
    a = small[3]
    a.save(tmp_path / "good.cnnvis")
    raw = (tmp_path / "good.cnnvis").read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.cnnvis"
    for pos in rng.integers(0, len(raw), 40):
        b = bytearray(raw)
        b[pos] ^= 0xFF
        bad.write_bytes(bytes(b))
        try:  # a flip in the data is caught by the zip CRCs; one in a timestamp changes nothing
            loaded = Analysis.load(bad)
        except AnalysisFileError as exc:
            assert "bad.cnnvis" in str(exc)
        else:
            _assert_same(a, loaded)
    for cut in (3, 50, len(raw) // 2, len(raw) - 1):
        bad.write_bytes(raw[:cut])
        with pytest.raises(AnalysisFileError, match="bad.cnnvis"):
            Analysis.load(bad)


# -- real architectures: a module called at several places, streaming, shared crops, file format 2 ------------


def test_each_call_of_a_reused_module_has_its_own_statistics_importance_and_topk(small):
    data = small[0]
    torch.manual_seed(4)
    from resnets import ThreeCalls

    model = ThreeCalls().eval()
    a = analyze(model, data, batch_size=8, top_k=3, show_progress=False)
    graph, outs = _all_activations(model, data)
    assert [l.name for l in a.graph.layers if l.module == "act"] == ["act", "act_1", "act_2"]
    for name, channels in (("act", 4), ("act_1", 6), ("act_2", 6)):
        act, grad = outs[name]
        assert act.shape[1] == channels
        ref = class_statistics(act, data.labels, 3)
        for f in ("count", "mean", "std", "max", "active"):
            np.testing.assert_allclose(getattr(a.stats[name], f), getattr(ref, f), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.importance[name].contribution, np.abs((act * grad).sum(2)).mean(0),
                                   rtol=1e-4, atol=1e-7)
        m = act.max(2)
        np.testing.assert_allclose(a.features[name].scores, -np.sort(-m.T, 1)[:, :3], rtol=1e-5, atol=1e-6)
    # the three calls really differ (the old graph merged them into one layer)
    assert not np.allclose(a.stats["act"].mean[:, :4], a.stats["act_1"].mean[:, :4])


def test_resnet50_shaped_net_analyses_aggregates_and_round_trips(tmp_path):
    from resnets import resnet50

    from cnnvis.aggregate import aggregate

    torch.manual_seed(0)
    model = resnet50(num_classes=3, width=4).eval()
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((6, 3, 32, 32), dtype=np.float32), np.array([0, 1, 2, 0, 1, 2]), ("a", "b", "c"),
                   "r")
    a = analyze(model, data, batch_size=4, top_k=2, snapshots=[model.state_dict()], show_progress=False)
    assert len(a.history.layers) == 54  # the 53 convs (4 downsamples included) and the fc, once each
    for p in ("layer1.0.", "layer4.2."):
        planes = 4 if p == "layer1.0." else 32
        assert [a.stats[p + n].mean.shape[1] for n in ("relu", "relu_1", "relu_2")] == [planes, planes, 4 * planes]
    agg = aggregate(a)
    members = [n for lc in agg.layer_clusters for n in lc.layers]
    assert len(agg.layer_clusters) >= 2 and len(members) == len(set(members))
    assert {"layer1.0.relu", "layer1.0.relu_1", "layer1.0.relu_2"} <= set(members)
    a.save(tmp_path / "r.cnnvis")
    b = Analysis.load(tmp_path / "r.cnnvis")
    _assert_same(a, b)


class _NanAt:
    """A data set (the analysis's interface) whose image `bad` turns NaN after loading."""

    def __init__(self, data, bad):
        self.d, self.bad = data, bad
        self.labels, self.class_names, self.n_classes = data.labels, data.class_names, data.n_classes
        self.name, self.image_shape = "nan-set", data.image_shape

    def __len__(self):
        return len(self.d)

    def get(self, indices):
        x = self.d.get(indices).copy()
        x[np.asarray(indices) == self.bad] = np.nan
        return x

    def batches(self, batch_size, *, indices=None, workers=0):
        for idx, x, y in self.d.batches(batch_size, indices=indices):
            yield idx, torch.from_numpy(self.get(idx)), y


def test_non_finite_images_name_the_first_bad_image(small):
    data, model = small[0], small[1]
    with pytest.raises(DataError, match=r"nan-set: image 13 is NaN or infinite after loading"):
        analyze(model, _NanAt(data, 13), batch_size=10, show_progress=False)


def test_element_wise_layers_share_their_units_crops(small):
    a = small[3]
    conv, relu = a.features["conv1"], a.features["relu1"]
    assert relu.patches.group is conv.patches.group  # one store for the unit
    same = (relu.image_index == conv.image_index) & np.all(relu.boxes == conv.boxes, -1)
    assert same.mean() > 0.5
    np.testing.assert_array_equal(relu.patches.ids[same], conv.patches.ids[same])
    # distinct crops are stored once: fewer than one per (layer, neuron, rank)
    groups = {id(f.patches.group): f.patches.group for f in a.features.values()}
    assert sum(g.n for g in groups.values()) < sum(f.image_index.size for f in a.features.values())


def test_patch_array_indexes_like_the_array_it_stands_for(small):
    f = small[3].features["conv2"]
    full = np.asarray(f.patches)
    assert full.shape == f.patches.shape and full.dtype == np.uint8 and len(f.patches) == full.shape[0]
    for key in [(1, 0), 2, (slice(1, 3),), (0, 1, slice(None), 2), (np.array([0, 2]), 1), (Ellipsis, 0),
                (3, slice(None, None, -1), 1, 1, 0)]:
        np.testing.assert_array_equal(f.patches[key], full[key])
    assert f.patches == full and not (f.patches == np.zeros_like(full))


def test_the_crop_memory_budget_lowers_the_stored_side_evenly():
    from cnnvis.analysis._crops import _side_for_budget

    ph, pw = np.array([40] * 10 + [8] * 5), np.array([40] * 10 + [8] * 5)
    assert _side_for_budget(ph, pw, 3, 64, 10**9) == 64
    # 10 crops of side s plus 5 of 8x8 in 3 channels: 30 s^2 + 960 <= 20000 -> s = 25
    assert _side_for_budget(ph, pw, 3, 64, 20000) == 25


def test_big_files_use_jpeg_sheets_and_half_precision_weights(small, tmp_path, monkeypatch):
    import cnnvis.analysis._analysis as A
    import cnnvis.analysis._jpeg as P

    a = small[3]
    monkeypatch.setattr(P, "LOSSLESS_LIMIT", 0)
    monkeypatch.setattr(A, "CONNECTIONS_EXACT", 0)
    a.save(tmp_path / "big.cnnvis")
    with zipfile.ZipFile(tmp_path / "big.cnnvis") as zf:
        names = zf.namelist()
        head = json.loads(zf.read("manifest.json"))
    assert any("/sheet/" in n for n in names) and not any(n.endswith("/pixels.npy") for n in names)
    assert head["patches"]["codec"] == "jpeg" and head["version"] == 2
    b = Analysis.load(tmp_path / "big.cnnvis")
    for name, f in a.features.items():
        g = b.features[name]
        for field in ("scores", "image_index", "boxes"):
            np.testing.assert_array_equal(getattr(g, field), getattr(f, field))
        want, got = np.asarray(f.patches).astype(int), np.asarray(g.patches).astype(int)
        assert got.shape == want.shape
        assert np.abs(got - want).mean() < 4 and np.abs(got - want).max() < 64  # JPEG 90, no subsampling
    # one crop read from a fresh load decodes only the sheet holding it, and reads as the whole decode does
    name = next(iter(a.features))
    pa = Analysis.load(tmp_path / "big.cnnvis").features[name].patches
    one = pa[0, 0]
    assert pa.group._pixels is None and len(pa.group._sheets) == 1
    np.testing.assert_array_equal(one, np.asarray(b.features[name].patches)[0, 0])
    # prefetching decodes every sheet in the background; the crops read after it are the same
    fresh = Analysis.load(tmp_path / "big.cnnvis")
    groups = {id(f.patches.group): f.patches.group for f in fresh.features.values()}
    assert fresh.prefetch_patches() == sum(g.n_sheets for g in groups.values()) > 0
    for name, f in fresh.features.items():
        np.testing.assert_array_equal(np.asarray(f.patches[:, 0]), np.asarray(b.features[name].patches)[:, 0])
    assert Analysis.load(tmp_path / "big.cnnvis").prefetch_patches() and a.prefetch_patches() == 0
    for d, s in a.graph.edges():
        w = a.graph.connection(d, s)
        np.testing.assert_allclose(b.graph.connection(d, s), w, atol=1e-3 * np.abs(w).max())
        np.testing.assert_allclose(b.graph.magnitude(d, s), a.graph.magnitude(d, s),
                                   atol=1e-3 * np.abs(a.graph.magnitude(d, s)).max())
    for group in ("stats", "importance"):  # the numbers the views are computed from stay exact
        for k, v in getattr(a, group).items():
            np.testing.assert_array_equal(getattr(b, group)[k].mean if group == "stats" else
                                          getattr(b, group)[k].contribution,
                                          v.mean if group == "stats" else v.contribution)


def test_a_noisy_rgb_sheet_is_coded_too():
    """Pillow's optimize=True holds the JPEG in w*h bytes; 4:4:4 RGB noise at quality 90 needs more."""
    from PIL import Image

    from cnnvis.analysis._jpeg import _jpeg

    sheet = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    raw = _jpeg(sheet)
    assert raw.size > 1024 * 1024
    back = np.asarray(Image.open(io.BytesIO(raw.tobytes())).convert("RGB")).astype(int)
    assert back.shape == sheet.shape and np.abs(back - sheet).mean() < 20


def test_format_1_files_still_load(small, tmp_path):
    from dataclasses import fields as dc_fields

    from cnnvis.analysis._file import write_archive

    a = small[3]
    names = list(a.graph.names)
    arrays, conns = {}, []
    for i, c in enumerate(a.graph.connections):
        conns.append(dict(dst=c.dst, src=c.src, mode=c.mode, offset=c.offset))
        if c.mode == "weight":
            arrays[f"conn/{i}/weight"], arrays[f"conn/{i}/magnitude"] = c.weight, c.magnitude
    for group in ("stats", "features", "importance"):
        for lname, obj in getattr(a, group).items():
            for f in dc_fields(obj):
                v = getattr(obj, f.name)
                if f.name != "classes":
                    arrays[f"{group}/{names.index(lname)}/{f.name}"] = np.asarray(v)
    layers = [dict(name=l.name, kind=l.kind, n_neurons=l.n_neurons, inputs=list(l.inputs), shape=list(l.shape),
                   op=l.op) for l in a.graph.layers]  # format 1 had no `module`
    manifest = dict(version=1, layers=layers, connections=conns, class_names=list(a.class_names), meta=a.meta,
                    stats=sorted(names.index(k) for k in a.stats),
                    features=sorted(names.index(k) for k in a.features),
                    importance={names.index(k): list(v.classes) for k, v in a.importance.items()}, history=None)
    write_archive(tmp_path / "v1.cnnvis", manifest, arrays)
    b = Analysis.load(tmp_path / "v1.cnnvis")
    assert [l.name for l in b.graph.layers] == names and b.history is None
    for k, f in a.features.items():
        np.testing.assert_array_equal(b.features[k].patches, np.asarray(f.patches))
        np.testing.assert_array_equal(b.features[k].image_index, f.image_index)
    np.testing.assert_array_equal(b.stats["conv2"].mean, a.stats["conv2"].mean)


# -- distributed: 2 gloo processes against one ----------------------------------------------------------------
def _dist_worker(rank, init, state, x, y, out, bad):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    torch.set_num_threads(1)  # as the reference: BLAS rounding follows the thread split
    try:
        model = build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12)
        model.load_state_dict(state)
        data = Dataset(x, y, ("a", "b", "c"), "random")
        if bad is not None:
            data = _NanAt(data, bad)
        try:
            a = analyze(model.eval(), data, batch_size=10, top_k=4, importance_classes=[0, 2], show_progress=False)
        except DataError as exc:
            (out.parent / f"error{rank}.txt").write_text(str(exc))
            return
        if rank == 0:
            a.save(out)
        else:
            assert a is None
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_give_the_single_process_result(small, tmp_path):
    import torch.multiprocessing as mp

    model = small[1]
    rng = np.random.default_rng(5)
    # 40 images in batches of 10: one process and each of the two shards run the same batch shapes, so the
    # float32 activations agree bit for bit and what remains is the merge (BLAS rounding follows the shape)
    data = Dataset(rng.random((40, 1, 12, 12), dtype=np.float32), rng.integers(0, 3, 40), ("a", "b", "c"),
                   "random")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = analyze(model, data, batch_size=10, top_k=4, importance_classes=[0, 2], show_progress=False)
    finally:
        torch.set_num_threads(threads)
    init = f"file://{tmp_path / 'rendezvous'}"
    out = tmp_path / "two.cnnvis"
    mp.spawn(_dist_worker, args=(init, model.state_dict(), data.images, data.labels, out, None), nprocs=2)
    two = Analysis.load(tmp_path / "two.cnnvis")
    assert two.meta["world_size"] == 2 and two.meta["n_images"] == len(data)
    assert two.meta["accuracy"] == one.meta["accuracy"]
    for name in one.graph.names:
        for f in ("count", "mean", "std", "max", "active"):
            np.testing.assert_allclose(getattr(two.stats[name], f), getattr(one.stats[name], f), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name}.{f}")
        for f in ("mean_activation", "max_activation"):
            np.testing.assert_allclose(getattr(two.importance[name], f), getattr(one.importance[name], f),
                                       rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(two.importance[name].contribution, one.importance[name].contribution,
                                   rtol=1e-9, atol=1e-12)
        if name in one.features:
            a, b = one.features[name], two.features[name]
            np.testing.assert_allclose(b.scores, a.scores, rtol=1e-6)
            untied = np.ones(a.scores.shape, bool)  # a rank whose score ties a neighbour's may swap with it
            untied[:, 1:] &= a.scores[:, 1:] != a.scores[:, :-1]
            untied[:, :-1] &= a.scores[:, :-1] != a.scores[:, 1:]
            np.testing.assert_array_equal(b.image_index[untied], a.image_index[untied])
            np.testing.assert_array_equal(b.boxes[untied], a.boxes[untied])
            np.testing.assert_array_equal(np.asarray(b.patches)[untied], np.asarray(a.patches)[untied])


def test_a_failing_rank_ends_the_run_with_its_message_and_no_file(small, tmp_path):
    import torch.multiprocessing as mp

    data, model = small[0], small[1]
    init = f"file://{tmp_path / 'rendezvous'}"
    out = tmp_path / "two.cnnvis"
    mp.spawn(_dist_worker, args=(init, model.state_dict(), data.images, data.labels, out, 13), nprocs=2)
    for rank in (0, 1):  # image 13 is in rank 1's shard (13, 15, ...); both ranks report it
        assert (tmp_path / f"error{rank}.txt").read_text() == \
            "rank 1: nan-set: image 13 is NaN or infinite after loading (channel 0)"
    assert not out.exists()


def test_analyze_is_public_and_importing_cnnvis_loads_no_torch():
    import cnnvis
    import cnnvis.analysis._run

    assert cnnvis.analyze is analyze is cnnvis.analysis._run.analyze and "analyze" in cnnvis.__all__
    code = ("import sys, cnnvis, cnnvis.analysis, cnnvis.diagnose; cnnvis.Analysis; "
            "print('torch' in sys.modules)")
    root = str(Path(cnnvis.__file__).parents[1])  # the cnnvis under test, from its own folder
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root,
                       env=dict(os.environ, PYTHONPATH=root))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


@pytest.mark.parametrize("kw, message", [
    (dict(batch_size=0), r"^batch_size must be in >= 1, got 0$"),
    (dict(top_k=2.5), r"^top_k must be an integer, got 2.5 \(float\)$"),
    (dict(max_patch=-3), r"^max_patch must be in >= 1, got -3$"),
    (dict(workers=-1), r"^workers must be in >= 0, got -1$"),
])
def test_analyze_checks_its_parameter_table_first(small, kw, message):
    from cnnvis.errors import CnnvisError

    with pytest.raises(CnnvisError, match=message):
        analyze(small[1], small[0], show_progress=False, **kw)


def test_analyze_checks_the_device_like_every_entry_point(small):
    from cnnvis.errors import DeviceError

    with pytest.raises(DeviceError, match=r"^device must be 'auto', 'cpu' or 'cuda', got 'gpu'$"):
        analyze(small[1], small[0], device="gpu", show_progress=False)
    if torch.cuda.is_available():  # a GPU machine: the same analysis there
        assert analyze(small[1], small[0], device="cuda", show_progress=False).stats.keys() == small[3].stats.keys()
    else:
        with pytest.raises(DeviceError, match="device='cuda' asked for, but torch sees no CUDA device"):
            analyze(small[1], small[0], device="cuda", show_progress=False)


def test_arrays_deflate_does_not_shrink_are_stored_raw(tmp_path):
    """Random float32 (trained weights look like it to deflate) is written without compression, zeros and
    small arrays deflated; both read back exactly."""
    import io

    from cnnvis.analysis._file import write_archive

    rng = np.random.default_rng(0)
    arrays = {"noise": rng.normal(size=(300, 301)).astype(np.float32), "zeros": np.zeros((300, 301), np.float32),
              "small": rng.normal(size=(7, 3))}
    write_archive(tmp_path / "a.cnnvis", {}, arrays)
    with zipfile.ZipFile(tmp_path / "a.cnnvis") as zf:
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
        assert kinds["noise.npy"] == zipfile.ZIP_STORED
        assert kinds["zeros.npy"] == kinds["small.npy"] == zipfile.ZIP_DEFLATED
        for k, v in arrays.items():
            np.testing.assert_array_equal(np.load(io.BytesIO(zf.read(f"{k}.npy"))), v)

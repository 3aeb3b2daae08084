"""The analysis pass against direct references, and the .cnnvis file (round trip, bad files, atomicity)."""
import json
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn

from cnnvis.analysis import Analysis
from cnnvis.analysis._receptive import crop_box, receptive_fields
from cnnvis.analysis._run import analyze
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
    fields = receptive_fields(traced.graph, traced.nodes, dict(traced.module.named_modules()))
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
    fields = receptive_fields(traced.graph, traced.nodes, dict(traced.module.named_modules()))
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

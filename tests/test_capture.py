"""Any model a user has: forward()s torch.fx cannot trace (captured by torch.export), channels wherever they
sit, receptive fields along the spatial path, any output structure, factories with their own weights. Each
against an independent reference: the fx capture of an fx-friendly twin, forward hooks and numpy, gradients."""
import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnvis.analysis import Analysis
from cnnvis.analysis._receptive import crop_box, receptive_fields
from cnnvis.analysis import analyze
from cnnvis.data import Dataset
from cnnvis.errors import ModelError
from cnnvis.graph._trace import trace

SRC = '''
import dataclasses
import torch, torch.nn as nn, torch.nn.functional as F


class MNISTNet(nn.Module):
    """Written like published classifiers: forward() refuses images of the wrong size."""

    def __init__(self, input_size=12, n_classes=3, check=True):
        super().__init__()
        self.input_size, self.check = input_size, check
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 3 * 3, n_classes)

    def forward(self, x):
        if self.check and x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"expected {self.input_size}x{self.input_size} images, got {tuple(x.shape[-2:])}")
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def pretrained():
    """A factory that loads its own weights (here: seeded)."""
    torch.manual_seed(7)
    return MNISTNet()


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.gate = Gate()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.gate(self.conv(x)).mean((2, 3)))


class Gate(nn.Module):
    def forward(self, y):
        if y.mean() > 0:  # a branch on a tensor value
            return y.relu()
        return -y


@dataclasses.dataclass
class Out:
    scores: torch.Tensor
    features: torch.Tensor


class Outputs(MNISTNet):
    def __init__(self, kind="dict"):
        super().__init__(check=False)
        self.kind = kind

    def forward(self, x):
        logits = super().forward(x)
        if self.kind == "dict":
            return {"scores": logits, "aux": logits * 2}
        if self.kind == "tuple":
            return (x.mean(), logits)
        return Out(logits, x)
'''


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    (d / "anymodels.py").write_text(SRC)
    sys.path.insert(0, str(d))
    import anymodels

    yield d, anymodels
    sys.path.remove(str(d))
    sys.modules.pop("anymodels", None)


def _data(n=12, size=12, ch=1, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.standard_normal((n, ch, size, size)).astype(np.float32), np.arange(n) % k,
                   tuple(f"c{i}" for i in range(k)), "random")


def _layers(graph):
    return [(l.name, l.kind, l.n_neurons, l.shape, l.inputs) for l in graph.layers]


def test_shape_checked_classifier_is_captured_by_export_like_its_fx_twin(models):
    _, m = models
    torch.manual_seed(0)
    net = m.MNISTNet().eval()
    twin = m.MNISTNet(check=False).eval()
    twin.load_state_dict(net.state_dict())
    x = torch.randn(2, 1, 12, 12)
    with pytest.raises(ModelError, match="torch.fx cannot trace MNISTNet"):
        trace(net, x, "fx")
    got, ref = trace(net, x), trace(twin, x, "fx")
    assert got.method == "export" and ref.method == "fx"
    assert _layers(got.graph) == _layers(ref.graph)
    for c in ref.graph.connections:
        np.testing.assert_array_equal(got.graph.connection(c.dst, c.src), ref.graph.connection(c.dst, c.src))
    # and the pass over the exported graph measures what the fx pass measures
    data = _data()
    a = analyze(net, data, batch_size=5, top_k=3, show_progress=False)
    b = analyze(twin, data, batch_size=5, top_k=3, show_progress=False)
    assert a.meta["capture"] == "export" and b.meta["capture"] == "fx"
    for l in ref.graph.layers:
        np.testing.assert_allclose(a.stats[l.name].mean, b.stats[l.name].mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.importance[l.name].contribution, b.importance[l.name].contribution,
                                   rtol=1e-4, atol=1e-7)
        if l.name in b.features:
            np.testing.assert_array_equal(a.features[l.name].image_index, b.features[l.name].image_index)


class _ConvNeXtish(nn.Module):
    """A ConvNeXt block: depthwise conv, then LayerNorm and an MLP over the channels of an NHWC tensor."""

    def __init__(self, dim=6, hidden=20, n_classes=3):
        super().__init__()
        self.stem = nn.Conv2d(1, dim, 3, padding=1)
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(hidden, dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        x = x + y.permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize("method", ["fx", "export"])
def test_channels_last_layers_have_their_channels_as_neurons(method):
    torch.manual_seed(0)
    net = _ConvNeXtish().eval()
    data = _data(n=10, size=9)
    traced = trace(net, torch.from_numpy(data.images[:2]), method)
    g = traced.graph
    assert [g.layer(n).n_neurons for n in ("norm", "pw1", "act", "pw2")] == [6, 20, 20, 6]
    assert g.layer("pw1").shape == (20, 9, 9)
    np.testing.assert_array_equal(g.connection("pw2", "act"), net.pw2.weight.detach().numpy())
    assert g.connection("pw2", "act").shape == (6, 20)
    a = analyze(net, data, batch_size=4, top_k=2, show_progress=False)
    # reference: forward hooks, channels on the last axis, per-image spatial mean and max, class moments
    seen = {}
    hooks = [getattr(net, n).register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, o.detach()))
             for n in ("pw1", "act", "norm")]
    with torch.no_grad():
        net(torch.from_numpy(data.images))
    for h in hooks:
        h.remove()
    for name in ("pw1", "act", "norm"):
        out = seen[name].double().numpy()  # (N, H, W, C)
        r = out.mean((1, 2))
        mx = out.max((1, 2))
        s = a.stats[name]
        for k in range(3):
            sel = data.labels == k
            np.testing.assert_allclose(s.mean[k], r[sel].mean(0), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s.max[k], mx[sel].max(0), rtol=1e-5, atol=1e-6)


class _SENet(nn.Module):
    """Two 3x3 convs, then a squeeze-excitation gate (global pool -> 1x1 convs -> sigmoid) times the map."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(4, 2, 1)
        self.fc2 = nn.Conv2d(2, 4, 1)
        self.gate = nn.Sigmoid()
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        y = torch.relu(self.c2(torch.relu(self.c1(x))))
        y = self.gate(self.fc2(torch.relu(self.fc1(self.pool(y))))) * y
        return self.head(self.c3(y).mean((2, 3)))


@pytest.mark.parametrize("method", ["fx", "export"])
def test_receptive_fields_follow_the_spatial_path_past_a_gate(method):
    torch.manual_seed(0)
    net = _SENet().eval()
    x = torch.randn(2, 1, 16, 16)
    traced = trace(net, x, method)
    fields = receptive_fields(traced.graph, traced.sites)
    assert "gate" in traced.graph.layer("mul").inputs
    for name in ("mul", "c3"):
        layer = traced.graph.layer(name)
        h, w = layer.spatial
        for p in [(0, 0), (h // 2, w // 2), (h - 1, w - 2)]:
            box = crop_box(fields[name], p, (16, 16))
            # reference: the input pixels whose gradient reaches this position, through the spatial path only
            # (the gate is held constant, as the field ignores a 1 x 1 operand)
            xi = x[:1].clone().requires_grad_(True)
            out = _spatial_path(net, xi, name)
            out[0, :, p[0], p[1]].sum().backward()
            nz = np.nonzero(xi.grad[0, 0].abs().numpy() > 0)
            ref = tuple((int(v.min()), int(v.max()) + 1) for v in nz)
            assert all(lo <= rlo and rhi <= hi for (lo, hi), (rlo, rhi) in zip(box, ref)), (name, p, box, ref)
            assert all(hi - lo <= {"mul": 5, "c3": 9}[name] for lo, hi in box), (name, box)  # 3+2, then +2x2: local


def _spatial_path(net, x, upto):
    y = torch.relu(net.c2(torch.relu(net.c1(x))))
    g = net.gate(net.fc2(torch.relu(net.fc1(net.pool(y))))).detach()
    y = g * y
    return y if upto != "c3" else net.c3(y)


def test_output_structures_are_picked(models):
    _, m = models
    data = _data()
    for kind, spec in (("dict", "scores"), ("tuple", 1), ("tuple", "1"), ("dataclass", "scores")):
        torch.manual_seed(0)
        a = analyze(m.Outputs(kind).eval(), data, batch_size=6, top_k=2, show_progress=False, output=spec)
        assert 0 <= a.meta["accuracy"] <= 1 and a.stats["fc"].mean.shape == (3, 3)
    with pytest.raises(ModelError, match=r"returns a dict of \{scores: \d+x3, aux: \d+x3\}; choose the class "
                                         r"scores with --model-output"):
        analyze(m.Outputs("dict").eval(), data, show_progress=False)
    with pytest.raises(ModelError, match=r"--model-output logits: Outputs returns a Out of \{scores: .*"
                                         r"names no tensor"):
        analyze(m.Outputs("dataclass").eval(), data, show_progress=False, output="logits")


# -- through the command line ---------------------------------------------------------------------------
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cnnvis").__file__)))


def _run(args, cwd, entry="main"):
    """The tested package's command (`main` is cnnvis, `main_gl` cnnvis-gl) in a fresh process."""
    env = {**os.environ, "PYTHONPATH": f"{PKG_ROOT}{os.pathsep}{cwd}", "CNNVIS_PROGRESS": "0",
           "EGL_PLATFORM": "surfaceless", "PYOPENGL_PLATFORM": "egl"}
    return subprocess.run([sys.executable, "-c", f"import sys; from cnnvis.app import {entry}; sys.exit({entry}())",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cli_files(models):
    d, m = models
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", images=rng.random((18, 12, 12)).astype(np.float32), labels=np.arange(18) % 3)
    torch.manual_seed(3)
    torch.save(m.MNISTNet().state_dict(), d / "w.pt")
    return d


@pytest.mark.slow
def test_cli_shape_checked_classifier_analyse_info_scene_render(cli_files):
    d = cli_files
    r = _run(["analyze", "--model", "anymodels:MNISTNet", "--weights", "w.pt", "--data", "data.npz",
              "-o", "shape.cnnvis", "--no-progress"], d)
    assert r.returncode == 0, r.stderr
    r = _run(["info", "shape.cnnvis"], d)
    assert r.returncode == 0 and "captured by torch.export" in r.stdout and "weights w.pt" in r.stdout, r.stdout
    a = Analysis.load(d / "shape.cnnvis")
    from cnnvis.aggregate import aggregate
    from cnnvis.layout import build_scene

    build_scene(a, aggregate(a)).validate()
    r = _run(["shape.cnnvis", "--screenshot", "shape.png", "--size", "640x400"], d, entry="main_gl")
    assert r.returncode == 0, r.stderr
    from PIL import Image

    img = np.asarray(Image.open(d / "shape.png"))
    assert img.shape[:2] == (400, 640) and len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 20


@pytest.mark.slow
def test_cli_factory_with_its_own_weights(cli_files):
    d = cli_files
    r = _run(["analyze", "--model", "anymodels:pretrained", "--data", "data.npz", "-o", "own.cnnvis",
              "--no-progress"], d)
    assert r.returncode == 0, r.stderr
    assert "weights: from the factory" in r.stderr
    assert Analysis.load(d / "own.cnnvis").meta["weights"] == "from the factory"
    assert "weights from the factory" in _run(["info", "own.cnnvis"], d).stdout


@pytest.mark.parametrize("args,message", [
    (["--model", "anymodels:Branchy"], r"cannot trace module 'gate' \(Gate\): a branch or a size depends on "
                                       r"tensor values"),
    (["--model", "anymodels:Outputs", "--model-output", "nothing"],
     r"--model-output nothing: Outputs returns a dict of \{scores: .*\}, where 'nothing' names no tensor"),
    (["--model", "anymodels:Outputs"], r"Outputs returns a dict of \{scores: 1?\d?x?.*--model-output"),
])
def test_cli_models_that_cannot_be_analysed_fail_in_one_line(cli_files, args, message):
    d = cli_files
    r = _run(["analyze", *args, "--data", "data.npz", "-o", "bad.cnnvis", "--no-progress"], d)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if not l.startswith("weights: from the factory")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("cnnvis: error: ") and re.search(message, lines[0]), lines[0]
    assert not (d / "bad.cnnvis").exists() and not [p for p in d.iterdir() if p.name.startswith(".bad.cnnvis")]


def test_dataclass_fields_are_described():
    from cnnvis.graph._output import describe_output

    @dataclasses.dataclass
    class O:
        a: torch.Tensor
        b: int

    assert describe_output(O(torch.zeros(2, 3), 1)) == "a O of {a: 2x3, b: int}"
    assert describe_output((torch.zeros(1), 3)) == "a tuple of 2 ([0] 1, [1] int)"

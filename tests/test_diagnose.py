"""Findings: each kind planted in a small torch model built for it, found at the right layer and neurons; a
control model gives none; the criteria's helpers against direct references; bad input; the command."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn

import cnnvis.diagnose
from cnnvis.analysis import analyze
from cnnvis.data import Dataset, build_model
from cnnvis.diagnose import KINDS, Diagnosis, Finding, Thresholds, diagnose
from cnnvis.app.diagnose import format_text, run, to_json
from cnnvis.diagnose._history import departures
from cnnvis.diagnose._neurons import complete_linkage_groups, relative_differences
from cnnvis.diagnose._weights import conv_groups, weight_mass
from cnnvis.errors import AnalysisFileError, CnnvisError

K = 4


@pytest.fixture(scope="module")
def data():
    """96 images 1x12x12 in [0, 1]: noise plus a bright quadrant that depends on the class."""
    rng = np.random.default_rng(0)
    y = np.arange(96) % K
    x = 0.4 * rng.random((96, 1, 12, 12), dtype=np.float32)
    for k in range(K):
        r, c = divmod(k, 2)
        x[y == k, 0, r * 6:(r + 1) * 6, c * 6:(c + 1) * 6] += 0.6
    return Dataset(x, y.astype(np.int64), tuple("abcd"), "quadrants")


class Net(nn.Module):
    """Four columns: conv1 (12x12), conv2 (6x6), conv3 (3x3), fc; `stack` adds conv1b at conv1's resolution."""

    def __init__(self, act=nn.ReLU, stack=False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.relu1 = act()
        if stack:
            self.conv1b = nn.Conv2d(6, 6, 3, padding=1)
            self.relu1b = act()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.relu2 = act()
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu3 = act()
        self.pool3 = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8, K)
        self.stack = stack

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        if self.stack:
            x = self.relu1b(self.conv1b(x))
        x = self.pool2(self.relu2(self.conv2(self.pool1(x))))
        return self.fc(self.flatten(self.pool3(self.relu3(self.conv3(x)))))


def control(act=nn.ReLU, stack=False, seed=2):
    """Distinct random kernels of mixed sign, small positive biases (no ReLU cut on every image)."""
    torch.manual_seed(seed)
    m = Net(act, stack)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(mod.weight, std=(2.0 / mod.weight[0].numel()) ** 0.5)
                mod.bias.fill_(0.05)
    return m.eval()


def snapshots(model, scale=None, steps=4, seed=1):
    """Snapshots t = 0..steps-1: each weight tensor moved by t * scale[layer] (default 2%) of its mean |w|
    (biases stay: the relative weight change is measured on weights)."""
    scale = scale or {}
    g = torch.Generator().manual_seed(seed)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    noise = {k: torch.randn(v.shape, generator=g) for k, v in base.items()}
    out = []
    for t in range(steps):
        out.append({k: v + t * scale.get(k.split(".")[0], 0.02) * v.abs().mean() * noise[k]
                    if k.endswith("weight") else v for k, v in base.items()})
    return out


def run_analysis(model, data, snaps=()):
    if snaps:
        model.load_state_dict(snaps[-1])
    return analyze(model.eval(), data, snapshots=snaps, batch_size=32, top_k=2, show_progress=False)


@pytest.fixture(scope="module")
def control_diagnosis(data):
    m = control()
    return run_analysis(m, data, snapshots(m)), m


def test_control_model_gives_no_finding(control_diagnosis):
    a, _ = control_diagnosis
    d = diagnose(a)
    assert d.findings == (), format_text(d)
    assert d.notes == ()
    assert format_text(d) == "no findings"


def test_control_with_a_conv_stack_gives_no_finding(data):
    m = control(stack=True, seed=2)
    d = diagnose(run_analysis(m, data, snapshots(m)))
    assert d.findings == (), format_text(d)


# -- dead neurons -------------------------------------------------------------------------------------------
def test_a_bias_that_kills_a_relu_is_a_dead_neuron_finding(data):
    m = control()
    with torch.no_grad():
        m.conv2.bias[[1, 6]] = -50.0  # far below any input the kernels can produce
    a = run_analysis(m, data, snapshots(m))
    d = diagnose(a)
    dead = d.of_kind("dead-neurons")
    assert len(dead) == 1
    f = dead[0]
    assert (f.layer, f.neurons, f.facet) == ("conv2", (1, 6), "matrix")
    assert f.evidence["n_dead"] == 2 and f.evidence["n_neurons"] == 8
    assert f.evidence["n_images"] == len(data)
    assert f.evidence["max_relu_input"] < -40  # the largest input any of them got, far below zero
    assert f.severity == "high"  # 2 of 8 = 25%
    assert f.clusters == ("conv2",)
    # the aggregation set them apart in a cluster of their own: the finding names it
    from cnnvis.aggregate import aggregate

    nc = aggregate(a).neuron_clusters("relu2")
    assert f.cluster == nc.dead_cluster >= 0
    assert tuple(np.flatnonzero(nc.labels == f.cluster)) == (1, 6)
    # the reported relu input is the conv's own statistic
    assert f.evidence["max_relu_input"] == pytest.approx(float(a.stats["conv2"].max[:, [1, 6]].max()))


def test_leaky_relu_and_smooth_activations_get_no_dead_neuron_finding(data):
    for act in (lambda: nn.LeakyReLU(0.1), nn.Tanh):
        m = control(act)
        with torch.no_grad():
            m.conv2.bias[[1, 6]] = -50.0
        d = diagnose(run_analysis(m, data), kinds=["dead-neurons"])
        assert d.findings == ()
        assert len(d.notes) == 1 and "ReLU" in d.notes[0]


# -- redundant neurons ------------------------------------------------------------------------------------------
def test_duplicated_filters_are_one_redundant_group_each(data):
    m = control()
    with torch.no_grad():
        m.conv1.weight[[2, 4]] = m.conv1.weight[0].clone()
        m.conv1.bias[[2, 4]] = m.conv1.bias[0].clone()
        m.conv2.weight[5] = m.conv2.weight[3] * 1.001  # near-identical, not identical
        m.conv2.bias[5] = m.conv2.bias[3]
    d = diagnose(run_analysis(m, data), kinds=["redundant-neurons"])
    got = {(f.layer, f.neurons) for f in d}
    assert got == {("conv1", (0, 2, 4)), ("conv2", (3, 5))}, format_text(d)
    c1 = next(f for f in d if f.layer == "conv1")
    assert c1.evidence["max_difference"] < 1e-6 and c1.evidence["n_members"] == 3
    assert "min_weight_cosine" not in c1.evidence  # conv1 sees 1 input channel: nothing to compare
    c2 = next(f for f in d if f.layer == "conv2")
    assert c2.evidence["min_weight_cosine"] > 0.999
    assert 0 < c2.evidence["max_difference"] < 0.01
    assert c1.severity == "medium" and c2.severity == "low"  # a group of 3, a pair
    assert d[0] is c1  # more severe first


def test_relative_differences_and_complete_linkage_against_direct_loops():
    rng = np.random.default_rng(4)
    p = rng.normal(size=(7, 5))
    p[3] = p[1] * 1.01
    p[6] = 0.0
    d = relative_differences(p)
    for i in range(7):
        for j in range(7):
            den = max(np.linalg.norm(p[i]), np.linalg.norm(p[j]))
            ref = 0.0 if i == j or den == 0 else np.linalg.norm(p[i] - p[j]) / den
            assert d[i, j] == pytest.approx(ref, abs=1e-12)
    # chained pairs (0-1, 1-2 close; 0-2 not): complete linkage keeps 0 and 2 apart
    dist = np.array([[0, .5, 1.5, 9], [.5, 0, .6, 9], [1.5, .6, 0, 9], [9, 9, 9, 0]])
    groups = complete_linkage_groups(dist)
    assert len(groups) == 1 and len(groups[0]) == 2 and 1 in groups[0]
    assert complete_linkage_groups(np.full((3, 3), 5.0) - 5 * np.eye(3)) == []


# -- positive weights -----------------------------------------------------------------------------------------
def test_all_positive_kernels_of_a_conv_group_are_one_finding(data):
    m = control(stack=True, seed=2)
    with torch.no_grad():
        m.conv1.weight.abs_()
        m.conv1b.weight.abs_()
    a = run_analysis(m, data)
    assert conv_groups(a) == [["conv1", "conv1b"], ["conv2"], ["conv3"]]
    d = diagnose(a, kinds=["positive-weights"])
    assert len(d) == 1
    f = d[0]
    assert (f.layer, f.layers, f.neurons, f.facet) == ("conv1", ("conv1", "conv1b"), (), "edges")
    assert f.evidence["positive_fraction"] == pytest.approx(1.0)
    rest = [m.conv2.weight, m.conv3.weight]
    rest = [w.detach() for w in rest]
    ref = sum(float(w[w > 0].sum()) for w in rest) / sum(float(w.abs().sum()) for w in rest)
    assert f.evidence["rest_positive_fraction"] == pytest.approx(ref, rel=1e-5)
    assert f.severity == "high" and f.evidence["n_layers"] == 2


def test_a_single_mostly_positive_layer_outside_a_positive_group(data):
    m = control(seed=3)
    with torch.no_grad():
        w = m.conv3.weight
        w.copy_(w.abs() * torch.where(torch.rand(w.shape) < 0.1, -1.0, 1.0))  # ~90% positive
    d = diagnose(run_analysis(m, data), kinds=["positive-weights"])
    assert [(f.layer, f.layers) for f in d] == [("conv3", ("conv3",))]
    w = m.conv3.weight.detach()
    assert d[0].evidence["positive_fraction"] == pytest.approx(float(w[w > 0].sum() / w.abs().sum()), rel=1e-5)


def test_weight_mass_is_the_positive_share_of_the_raw_kernels_grouped_conv_too(data):
    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 3)
            self.conv2 = nn.Conv2d(6, 6, 3, groups=3)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(6, K)

        def forward(self, x):
            return self.fc(self.pool(self.conv2(self.conv1(x))).flatten(1))

    torch.manual_seed(7)
    m = G().eval()
    a = run_analysis(m, data)
    for name in ("conv1", "conv2"):
        w = getattr(m, name).weight.detach().double()
        pos, tot = weight_mass(a, name)
        assert tot == pytest.approx(float(w.abs().sum()), rel=1e-5)
        assert pos == pytest.approx(float(w[w > 0].sum()), rel=1e-5)


# -- weight change ------------------------------------------------------------------------------------------------
def test_a_jump_of_the_relative_weight_change_is_found_at_its_cluster(data):
    m = control()
    a = run_analysis(m, data, snapshots(m, {"conv2": 0.2}))
    d = diagnose(a, kinds=["weight-change"])
    assert len(d) == 1, format_text(d)
    f = d[0]
    assert (f.layer, f.layers, f.facet) == ("conv2", ("conv2",), "chart")
    assert f.clusters == ("conv2", "conv1", "conv3")  # its own, then the neighbours
    assert f.evidence["ratio"] > 5 and f.severity == "high"
    rc = np.nanmean(a.history.rel_change[1:], axis=0)  # per weighted layer; one layer per column here
    j = list(a.history.layers).index("conv2")
    assert f.evidence["relative_change"] == pytest.approx(np.exp(np.log(a.history.rel_change[1:, j]).mean()))
    assert f.evidence["neighbour_trend"] == pytest.approx(np.sqrt(rc[j - 1] * rc[j + 1]), rel=0.05)


def test_a_drop_is_found_too_and_the_ends_are_never_reported(data):
    m = control()
    d = diagnose(run_analysis(m, data, snapshots(m, {"conv3": 0.002, "conv1": 0.3})), kinds=["weight-change"])
    assert [(f.layer, f.evidence["ratio"] < 0.5) for f in d] == [("conv3", True)], format_text(d)


def test_departures_are_log_ratios_to_the_neighbours_geometric_mean():
    v = np.array([1.0, 1.0, 8.0, 1.0, 4.0])
    d = departures(v)
    assert np.isnan(d[0]) and np.isnan(d[-1])
    np.testing.assert_allclose(d[1:-1], np.log([1 / np.sqrt(8), 8 / 1, 1 / np.sqrt(32)]))


# -- gradient ---------------------------------------------------------------------------------------------------
class Stack(nn.Module):
    def __init__(self, act, n=6):
        super().__init__()
        self.convs = nn.Sequential(*[m for i in range(n) for m in (nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1),
                                                                    act())])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, K)

    def forward(self, x):
        return self.fc(self.pool(self.convs(x)).flatten(1))


def test_a_saturating_stack_has_a_vanishing_gradient(data):
    torch.manual_seed(0)
    m = Stack(nn.Sigmoid).eval()
    a = run_analysis(m, data, snapshots(m))
    d = diagnose(a, kinds=["gradient"])
    assert len(d) == 1, format_text(d)
    f = d[0]
    g = a.history.grad_mean
    assert (f.layer, f.layers) == ("convs.0", ("convs.0", "fc"))
    ref = np.exp(np.mean(np.log(g[:, 0]) - np.log(g[:, -1])))
    assert f.evidence["ratio"] == pytest.approx(ref) and ref < 1e-2
    assert "vanishing" in f.message
    # the same stack with He-initialised ReLUs keeps its gradients within two orders of magnitude
    torch.manual_seed(0)
    m = Stack(nn.ReLU).eval()
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
    assert diagnose(run_analysis(m, data, snapshots(m)), kinds=["gradient"]).findings == ()


def test_a_gradient_growing_toward_the_input_is_exploding(data):
    m = control()
    with torch.no_grad():  # tiny last activations, huge classifier: dL/dW shrinks at fc, grows at conv1
        m.conv3.weight.mul_(1e-3)
        m.conv3.bias.mul_(1e-3)
        m.fc.weight.mul_(1e3)
    a = run_analysis(m, data, snapshots(m))
    d = diagnose(a, kinds=["gradient"])
    assert [(f.layer, f.evidence["ratio"] > 100, "explodes" in f.message) for f in d] == [("conv1", True, True)]


def test_non_finite_gradients_are_a_high_exploding_finding(control_diagnosis):
    a, _ = control_diagnosis
    g = a.history.grad_mean.copy()
    g[2:, 1] = np.inf
    d = diagnose(replace(a, history=replace(a.history, grad_mean=g)), kinds=["gradient"])
    assert [(f.layer, f.severity, f.evidence["first_snapshot"], f.evidence["n_nonfinite"]) for f in d] == [
        (a.history.layers[1], "high", 2, 2)]
    json.loads(to_json(d))  # evidence stays finite
    # NaN with a finite loss: that layer got no gradient (frozen); left out, with a note, not an explosion
    g = a.history.grad_mean.copy()
    g[:, 1] = np.nan
    d = diagnose(replace(a, history=replace(a.history, grad_mean=g)), kinds=["gradient"])
    assert d.findings == () and len(d.notes) == 1 and a.history.layers[1] in d.notes[0]


# -- isolated clusters --------------------------------------------------------------------------------------------
def test_a_cluster_without_connections_is_isolated(data):
    m = control()
    with torch.no_grad():
        cut = [0, 2, 3]
        m.conv2.weight[cut] = 0.0  # nothing comes in ...
        m.conv2.bias[cut] = -1.0  # ... so they are dead ...
        m.conv3.weight[:, cut] = 0.0  # ... and nothing goes out
    a = run_analysis(m, data)
    d = diagnose(a)
    iso = d.of_kind("isolated-cluster")
    assert len(iso) == 1, format_text(d)
    f = iso[0]
    assert (f.layer, f.neurons, f.clusters, f.facet) == ("relu2", (0, 2, 3), ("conv2",), "edges")
    assert f.evidence["max_bundle_relative"] == 0.0 and f.evidence["dead_share"] == 1.0
    assert f.severity == "medium"
    # the same neurons are dead, and the dead finding names the same cluster
    (dead,) = d.of_kind("dead-neurons")
    assert dead.neurons == (0, 2, 3) and dead.cluster == f.cluster


# -- the diagnosis as a whole ------------------------------------------------------------------------------------
def test_findings_are_ordered_most_severe_first_and_frozen(data):
    m = control()
    with torch.no_grad():
        m.conv1.weight[[2, 4]] = m.conv1.weight[0].clone()
        m.conv1.bias[[2, 4]] = m.conv1.bias[0].clone()
        m.conv2.bias[[1, 6]] = -50.0
    d = diagnose(run_analysis(m, data))
    ranks = [("high", "medium", "low").index(f.severity) for f in d]
    assert ranks == sorted(ranks) and [f.kind for f in d][:2] == ["dead-neurons", "redundant-neurons"]
    with pytest.raises(AttributeError):
        d[0].layer = "x"
    assert isinstance(d, Diagnosis) and all(isinstance(f, Finding) for f in d)


def test_without_snapshots_the_snapshot_kinds_are_skipped_with_one_note(data):
    a = run_analysis(control(), data)
    d = diagnose(a)
    assert not [f for f in d if f.kind in ("weight-change", "gradient")]
    assert len(d.notes) == 1 and "snapshots" in d.notes[0] and "skipped" in d.notes[0]
    assert format_text(d).splitlines()[-1] == f"note: {d.notes[0]}"


def test_bad_kinds_and_thresholds_name_the_problem(control_diagnosis):
    a, _ = control_diagnosis
    with pytest.raises(CnnvisError, match=r"^kind must be one of 'dead-neurons', .*'isolated-cluster', got 'dead'$"):
        diagnose(a, kinds=["dead"])
    with pytest.raises(CnnvisError, match=r"^threshold must be one of 'dead_active', .*, got 'positive'$"):
        diagnose(a, positive=0.8)
    with pytest.raises(CnnvisError, match=r"^positive_fraction must be in \[0.5, 1.0\], got 2$"):
        diagnose(a, positive_fraction=2)
    with pytest.raises(CnnvisError, match=r"^change_ratio must be a finite number, got 'x' \(str\)$"):
        diagnose(a, thresholds=Thresholds(change_ratio="x"))
    with pytest.raises(ValueError, match="evidence must be finite numbers; not so: x"):
        Finding(kind="gradient", severity="low", score=0.0, layer="a", neurons=(), evidence={"x": float("nan")},
                message="", facet="chart")
    assert Thresholds().positive_fraction == 0.7


def test_the_package_is_callable_as_cnnvis_diagnose(control_diagnosis):
    import cnnvis

    a, _ = control_diagnosis
    assert cnnvis.diagnose(a, kinds=["positive-weights"]).findings == ()
    assert set(KINDS) == {"dead-neurons", "redundant-neurons", "positive-weights", "weight-change", "gradient",
                          "isolated-cluster"}


# -- the command -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted_file(data, tmp_path_factory):
    m = control()
    with torch.no_grad():
        m.conv2.bias[[1, 6]] = -50.0
    path = tmp_path_factory.mktemp("diag") / "planted.cnnvis"
    run_analysis(m, data, snapshots(m, {"conv2": 0.2})).save(path)
    plain = tmp_path_factory.mktemp("diag") / "plain.cnnvis"
    run_analysis(control(), data).save(plain)
    return path, plain


def test_command_prints_one_line_per_finding_and_json(planted_file, capsys):
    path, plain = planted_file
    assert run([str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1. [high] dead-neurons: conv2: 2 of 8 neurons (#1, #6) never fire")
    assert any("weight-change" in line for line in lines)
    assert run([str(path), "--json"]) == 0
    out = capsys.readouterr()
    objs = json.loads(out.out)
    assert out.err == ""
    assert objs[0]["kind"] == "dead-neurons" and objs[0]["layer"] == "conv2" and objs[0]["neurons"] == [1, 6]
    for o in objs:
        assert {"kind", "layer", "neurons", "evidence", "message", "facet", "severity", "clusters"} <= set(o)
        assert all(isinstance(v, (int, float)) for v in o["evidence"].values())
    assert run([str(path), "--kind", "weight-change"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(f"{i}. [") and "weight-change" in line for i, line in enumerate(lines, 1))
    assert run([str(plain), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == [] or all(o["kind"] not in ("weight-change", "gradient") for o in json.loads(out.out))
    assert out.err.count("\n") == 1 and "no training snapshots" in out.err


def test_command_bad_input(tmp_path, capsys):
    with pytest.raises(AnalysisFileError, match="no such analysis file"):
        run([str(tmp_path / "missing.cnnvis")])
    junk = tmp_path / "junk.cnnvis"
    junk.write_bytes(b"not a zip")
    with pytest.raises(AnalysisFileError, match="not a cnnvis analysis file"):
        run([str(junk)])
    with pytest.raises(SystemExit) as exc:
        run(["--kind", "nonsense", str(junk)])
    assert exc.value.code == 2


def test_leaky_demo_models_keep_names_and_swap_only_the_activation():
    plain = build_model("lenet", n_classes=10, in_channels=1, image_size=28)
    leaky = build_model("lenet-leaky0.1", n_classes=10, in_channels=1, image_size=28)
    pn, ln = dict(plain.named_modules()), dict(leaky.named_modules())
    assert list(pn) == list(ln)
    for k, mod in pn.items():
        if isinstance(mod, nn.ReLU):
            assert isinstance(ln[k], nn.LeakyReLU) and ln[k].negative_slope == 0.1
        else:
            assert type(ln[k]) is type(mod)
    for name in ("deeplenet-leaky0.1", "basecnn-x0.25-leaky0.1", "lenet-x4-leaky0.1"):
        m = build_model(name, n_classes=10, in_channels=1, image_size=28)
        assert any(isinstance(x, nn.LeakyReLU) for x in m.modules())
        assert not any(type(x) is nn.ReLU for x in m.modules())


def test_import_cnnvis_diagnose_needs_no_torch():
    code = "import sys, cnnvis.diagnose; import cnnvis.app.diagnose; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

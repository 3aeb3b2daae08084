"""Model -> DAG: layer kinds, neuron counts, inputs, and connection matrices against hand computations."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnvis.data import DEMO_MODELS, build_model
from cnnvis.errors import ModelError
from cnnvis.graph import LAYER_KINDS, from_torch


def _kinds(g):
    return {l.name: l.kind for l in g.layers}


def test_sequential_lenet_layers_and_connections():
    m = build_model("lenet", n_classes=10, in_channels=1, image_size=28)
    g = from_torch(m, torch.zeros(2, 1, 28, 28))
    assert [l.name for l in g.layers] == ["x", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                                          "fc1", "relu3", "fc2"]
    k = _kinds(g)
    assert (k["x"], k["conv1"], k["relu1"], k["pool1"], k["flatten"], k["fc1"]) == \
        ("input", "conv", "activation", "pool", "flatten", "linear")
    assert g.layer("conv2").n_neurons == 50 and g.layer("conv2").shape == (50, 14, 14)
    assert g.layer("flatten").n_neurons == 50 and g.layer("flatten").shape == (50, 7, 7)
    assert g.layer("fc1").inputs == ("flatten",)
    # conv: strength of input channel i to output j is the sum of its kernel
    w = m.conv2.weight.detach().double().numpy()
    np.testing.assert_allclose(g.connection("conv2", "pool1"), w.sum((2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.magnitude("conv2", "pool1"), np.abs(w).sum((2, 3)), rtol=1e-5, atol=1e-6)
    # linear fed by a flattened 50x7x7 map groups its inputs by channel
    w1 = m.fc1.weight.detach().double().numpy().reshape(500, 50, 49)
    np.testing.assert_allclose(g.connection("fc1", "flatten"), w1.sum(-1), rtol=1e-5, atol=1e-6)
    # element-wise layers connect each neuron to itself
    np.testing.assert_array_equal(g.connection("relu1", "conv1"), np.eye(20, dtype=np.float32))
    assert all(l.kind in LAYER_KINDS for l in g.layers)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        y = self.conv_b(torch.relu(self.conv_a(x)))
        z = x + y
        z = F.adaptive_avg_pool2d(z, 1).flatten(1)
        return self.head(z)


def test_residual_add_has_both_inputs_and_identity_connections():
    g = from_torch(_Residual(), torch.zeros(2, 3, 9, 7))
    k = _kinds(g)
    assert k["bn"] == "batchnorm"
    add = [l for l in g.layers if l.kind == "add"]
    assert len(add) == 1 and len(add[0].inputs) == 2
    for src in add[0].inputs:
        np.testing.assert_array_equal(g.connection(add[0].name, src), np.eye(8, dtype=np.float32))
    relus = [l for l in g.layers if l.kind == "activation"]
    assert len(relus) == 2  # F.relu and torch.relu calls become layers named by their nodes
    assert g.layer("head").inputs and g.layer("head").kind == "linear"
    # topological order: every input appears before its consumer
    seen = set()
    for l in g.layers:
        assert set(l.inputs) <= seen
        seen.add(l.name)


class _Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 3, 3, padding=1)
        self.b = nn.Conv2d(2, 5, 1)
        self.fuse = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.fuse(torch.cat([self.a(x), self.b(x)], dim=1)).mean((2, 3))


def test_concat_connects_each_source_to_its_slice():
    g = from_torch(_Concat(), torch.zeros(1, 2, 6, 6))
    cat = next(l for l in g.layers if l.kind == "concat")
    assert cat.n_neurons == 8 and cat.inputs == ("a", "b")
    ca, cb = g.connection(cat.name, "a"), g.connection(cat.name, "b")
    assert ca.shape == (8, 3) and cb.shape == (8, 5)
    np.testing.assert_array_equal(ca[:3], np.eye(3)) and np.testing.assert_array_equal(ca[3:], 0)
    np.testing.assert_array_equal(cb[3:], np.eye(5)) and np.testing.assert_array_equal(cb[:3], 0)


@pytest.mark.parametrize("groups,cin,cout", [(2, 6, 4), (3, 9, 9), (7, 7, 14)])
def test_grouped_and_depthwise_conv_are_block_diagonal(groups, cin, cout):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(cin, cout, 3, groups=groups))
    g = from_torch(m, torch.zeros(1, cin, 5, 5))
    c = g.connection("0", g.layers[0].name)
    w = m[0].weight.detach().double().numpy().sum((2, 3))  # (cout, cin/groups)
    ref = np.zeros((cout, cin))
    og, ig = cout // groups, cin // groups
    for gi in range(groups):
        ref[gi * og:(gi + 1) * og, gi * ig:(gi + 1) * ig] = w[gi * og:(gi + 1) * og]
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(DEMO_MODELS))
def test_demo_models_trace_and_every_connection_has_the_right_shape(name):
    size = 32 if name.startswith("basecnn") else 28
    g = from_torch(build_model(name, n_classes=10, in_channels=1, image_size=size), torch.zeros(1, 1, size, size))
    for dst, src in g.edges():
        assert g.connection(dst, src).shape == (g.layer(dst).n_neurons, g.layer(src).n_neurons)
    assert sum(l.kind == "conv" for l in g.layers) >= 2


class _Untraceable(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return x
        return -x


class _Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.branchy = _Untraceable()

    def forward(self, x):
        return self.branchy(self.conv(x))


def test_untraceable_module_is_named_in_the_error():
    with pytest.raises(ModelError, match=r"cannot trace module 'branchy' \(_Untraceable\)"):
        from_torch(_Wrapper(), torch.zeros(1, 1, 5, 5))


def test_shape_error_names_the_input_shape():
    m = build_model("lenet", n_classes=10, in_channels=1, image_size=28)
    with pytest.raises(ModelError, match=r"example input of shape \(1, 1, 20, 20\)"):
        from_torch(m, torch.zeros(1, 1, 20, 20))


def test_unknown_layer_lookup_names_it():
    g = from_torch(nn.Sequential(nn.Conv2d(1, 2, 3)), torch.zeros(1, 1, 5, 5))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        g.layer("nope")
    with pytest.raises(ValueError, match="does not feed"):
        g.connection(g.layers[0].name, "0")


class _RepeatCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 3, 1)
        self.b = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        a = self.a(x)
        return torch.cat([a, self.b(x), a], dim=-3).mean((2, 3))


def test_concat_with_a_repeated_operand_and_negative_dim():
    g = from_torch(_RepeatCat(), torch.zeros(1, 2, 4, 4))
    cat = next(l for l in g.layers if l.kind == "concat")
    assert cat.n_neurons == 8 and cat.inputs == ("a", "b")
    ca, cb = g.connection(cat.name, "a"), g.connection(cat.name, "b")
    np.testing.assert_array_equal(ca[:3], np.eye(3))
    np.testing.assert_array_equal(ca[5:], np.eye(3))
    np.testing.assert_array_equal(ca[3:5], 0)
    np.testing.assert_array_equal(cb[3:5], np.eye(2))
    # every concat neuron has exactly one source neuron
    np.testing.assert_array_equal(ca.sum(1) + cb.sum(1), np.ones(8))


def test_tracing_leaves_the_callers_model_alone():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
    from_torch(m, torch.zeros(1, 1, 5, 5))
    assert m[1].inplace is True


# -- a module called at several places: one layer per call ------------------------------------------------


def test_a_module_called_three_times_gives_three_layers_in_call_order():
    from resnets import ThreeCalls

    g = from_torch(ThreeCalls(in_channels=2), torch.zeros(2, 2, 9, 9))
    acts = [l for l in g.layers if l.module == "act"]
    assert [l.name for l in acts] == ["act", "act_1", "act_2"]
    assert [l.n_neurons for l in acts] == [4, 6, 6]
    assert [l.shape for l in acts] == [(4, 9, 9), (6, 4, 4), (6, 4, 4)]
    assert acts[0].inputs == ("c1",) and acts[1].inputs == ("c2",)
    add = next(l for l in g.layers if l.kind == "add")
    assert acts[2].inputs == (add.name,) and set(add.inputs) == {"c3", "act_1"}
    assert g.layer("c2").inputs == ("act",) and g.layer("c3").inputs == ("act_1",)
    # every call has its own connections, of its own shape
    np.testing.assert_array_equal(g.connection("act", "c1"), np.eye(4, dtype=np.float32))
    np.testing.assert_array_equal(g.connection("act_1", "c2"), np.eye(6, dtype=np.float32))
    assert g.connection("c2", "act").shape == (6, 4)
    assert len(set(g.names)) == len(g.names)


def test_a_suffixed_name_never_takes_an_existing_module_name():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)
            self.relu = nn.ReLU()
            self.relu_1 = nn.ReLU()  # a module whose own name looks like a second call of `relu`

        def forward(self, x):
            return self.relu(self.relu_1(self.relu(self.conv(x))))

    g = from_torch(M(), torch.zeros(1, 1, 3, 3))
    assert g.names[1:] == ("conv", "relu", "relu_1", "relu_2")
    assert [g.layer(n).module for n in g.names[2:]] == ["relu", "relu_1", "relu"]


def test_resnet50_shaped_net_has_one_layer_per_call_with_its_own_channels():
    from resnets import resnet50

    m = resnet50(num_classes=10, width=8)  # torchvision's structure at 1/8 of the channels
    g = from_torch(m, torch.zeros(1, 3, 64, 64))
    names = g.names
    for i, blocks in enumerate((3, 4, 6, 3), start=1):
        planes = 8 * 2 ** (i - 1)
        for b in range(blocks):
            p = f"layer{i}.{b}."
            r0, r1, r2 = (g.layer(p + n) for n in ("relu", "relu_1", "relu_2"))
            assert (r0.n_neurons, r1.n_neurons, r2.n_neurons) == (planes, planes, 4 * planes)
            assert r0.inputs == (p + "bn1",) and r1.inputs == (p + "bn2",)
            assert g.layer(p + "conv2").inputs == (p + "relu",) and g.layer(p + "conv3").inputs == (p + "relu_1",)
            add = g.layer(r2.inputs[0])
            assert add.kind == "add" and p + "bn3" in add.inputs
            assert (p + "downsample.1" in add.inputs) == (b == 0)
            assert p + "relu_3" not in names
    assert g.layer("relu").inputs == ("bn1",) and "relu_1" not in names  # the stem's relu is called once
    for dst, src in g.edges():
        assert g.connection(dst, src).shape == (g.layer(dst).n_neurons, g.layer(src).n_neurons)
    assert len(set(names)) == len(names) == len(g.layers)

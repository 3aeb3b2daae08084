"""Any model a user has, in the zoo venv (scripts/test-zoo.sh: torchvision, timm, transformers): timm families
torch.fx cannot trace (captured by torch.export), HuggingFace classifiers returning ImageClassifierOutput,
torchvision ConvNeXt's channels-last MLPs against a forward-hook reference, EfficientNet-B0's local crops.
The acceptance models go through the command line: analyse, `cnnvis info`, the Scene and an offscreen render."""
import os
import subprocess
import sys

import numpy as np
import pytest

try:
    import timm
    import torchvision
    import transformers
except ImportError:
    if os.environ.get("CNNVIS_ZOO_REQUIRED") == "1":
        raise
    pytest.skip("timm/torchvision/transformers are not importable here; scripts/test-zoo.sh runs these tests in "
                "its venv", allow_module_level=True)
import torch  # noqa: E402

import cnnvis  # noqa: E402
from cnnvis.analysis import Analysis  # noqa: E402
from cnnvis.analysis._receptive import crop_box, receptive_fields  # noqa: E402
from cnnvis.analysis import analyze  # noqa: E402
from cnnvis.data import Dataset  # noqa: E402
from cnnvis.graph._trace import trace  # noqa: E402

pytestmark = pytest.mark.zoo
PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cnnvis.__file__)))
N, K, SIZE = 6, 10, 64

HF_SRC = '''
from transformers import (ConvNextConfig, ConvNextForImageClassification, ResNetConfig,
                          ResNetForImageClassification)


def resnet():
    return ResNetForImageClassification(ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                                     depths=[1, 1, 1, 1], num_labels=10))


def convnext():
    return ConvNextForImageClassification(ConvNextConfig(hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                                                         num_labels=10))
'''


def _data(size=SIZE, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset(rng.random((n, 3, size, size), dtype=np.float32), np.arange(n) % K,
                   tuple(f"c{k}" for k in range(K)), "random")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("anymodel")
    (d / "hfmodels.py").write_text(HF_SRC)
    data = _data()
    np.savez(d / "data.npz", images=data.images, labels=data.labels, class_names=np.array(data.class_names))
    return d


def _cli(args, cwd, entry="main"):
    # the tested cnnvis: a checkout's goes first on the path; an installed one is found by this venv itself
    # (its site-packages on PYTHONPATH would put the system's torch ahead of the venv's)
    checkout = os.path.exists(os.path.join(PKG_ROOT, "pyproject.toml"))
    path = os.pathsep.join(([PKG_ROOT] if checkout else []) + [str(cwd)])
    env = {**os.environ, "PYTHONPATH": path, "CNNVIS_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-c", f"import sys; from cnnvis.app import {entry}; sys.exit({entry}())",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


# model -> (--model, --model-kwargs)
ACCEPTANCE = {
    "timm-mobilevit_xxs": ("timm:create_model", ["model_name='mobilevit_xxs'"]),
    "timm-efficientvit_b0": ("timm:create_model", ["model_name='efficientvit_b0'"]),
    "timm-tf_efficientnet_b0": ("timm:create_model", ["model_name='tf_efficientnet_b0'"]),
    "timm-convnext_atto": ("timm:create_model", ["model_name='convnext_atto'"]),
    "hf-resnet": ("hfmodels:resnet", []),
    "hf-convnext": ("hfmodels:convnext", []),
}


@pytest.mark.parametrize("name", list(ACCEPTANCE))
def test_cli_analyse_info_scene_render(files, name):
    spec, kwargs = ACCEPTANCE[name]
    if spec.startswith("timm"):
        kwargs = kwargs + ["pretrained=False", f"num_classes={K}"]
    out = f"{name}.cnnvis"
    args = ["analyze", "--model", spec, "--data", "data.npz", "--batch-size", "3", "--top-k", "2",
            "--patch-size", "16", "-o", out, "--no-progress"]
    if kwargs:
        args[3:3] = ["--model-kwargs", *kwargs]
    r = _cli(args, files)
    assert r.returncode == 0, r.stderr
    assert "weights: from the factory" in r.stderr
    a = Analysis.load(files / out)
    assert a.meta["n_images"] == N and any(l.kind == "conv" for l in a.graph.layers)
    r = _cli(["info", out], files)
    assert r.returncode == 0 and "weights from the factory" in r.stdout, r.stderr
    from cnnvis.aggregate import aggregate
    from cnnvis.layout import build_scene

    build_scene(a, aggregate(a)).validate()
    png = files / f"{name}.png"
    r = _cli([out, "--screenshot", str(png), "--size", "480x300"], files, entry="main_gl")
    assert r.returncode == 0, r.stderr
    from PIL import Image

    img = np.asarray(Image.open(png))
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 20, f"{name}: the render is nearly blank"


# timm families that analyse (fx or export), beyond the acceptance four: each keeps analysing
TIMM_FAMILIES = ["resnet18", "efficientnet_b0", "mobilenetv3_small_100", "regnetx_002", "densenet121",
                 "ghostnet_100", "rexnet_100", "dpn68", "vgg11_bn", "cspresnet50", "dla34", "hrnet_w18_small",
                 "repvgg_a0", "res2net50_14w_8s", "mixnet_s", "lcnet_050", "fbnetc_100", "dm_nfnet_f0"]


@pytest.mark.parametrize("family", TIMM_FAMILIES)
def test_timm_family_analyses(family):
    torch.manual_seed(0)
    model = timm.create_model(family, pretrained=False, num_classes=K).eval()
    a = analyze(model, _data(n=4), batch_size=2, top_k=2, show_progress=False, max_patch=16)
    convs = [l for l in a.graph.layers if l.kind == "conv"]
    assert convs and np.isfinite(a.stats[convs[-1].name].mean[:4]).all()  # the 4 classes with images
    assert a.meta["capture"] in ("fx", "export")


def test_torchvision_convnext_mlp_channels_against_hooks():
    torch.manual_seed(0)
    model = torchvision.models.convnext_tiny(num_classes=K).eval()
    data = _data(n=8)
    a = analyze(model, data, batch_size=4, top_k=2, show_progress=False, max_patch=16)
    g = a.graph
    assert g.layer("features.1.0.block.3").n_neurons == 384 and g.layer("features.1.0.block.5").n_neurons == 96
    w = model.features[1][0].block[5].weight.detach().numpy()
    np.testing.assert_array_equal(g.connection("features.1.0.block.5", "features.1.0.block.4"), w)
    assert w.shape == (96, 384)
    seen = {}
    mods = {"features.1.0.block.2": model.features[1][0].block[2], "features.1.0.block.3": model.features[1][0].block[3]}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, o.detach())) for n, m in mods.items()]
    with torch.no_grad():
        model(torch.from_numpy(data.images))
    for h in hooks:
        h.remove()
    for name, out in seen.items():
        out = out.double().numpy()  # (N, H, W, C): the channels are last
        r, mx = out.mean((1, 2)), out.max((1, 2))
        for k in np.unique(data.labels):
            sel = data.labels == k
            np.testing.assert_allclose(a.stats[name].mean[k], r[sel].mean(0), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(a.stats[name].max[k], mx[sel].max(0), rtol=1e-4, atol=1e-5)


def test_efficientnet_b0_learned_features_are_local():
    torch.manual_seed(0)
    model = torchvision.models.efficientnet_b0(num_classes=K).eval()
    size = 128
    traced = trace(model, torch.zeros(2, 3, size, size))
    fields = receptive_fields(traced.graph, traced.sites)
    # reference: back-project along the spatial path with every stride and kernel of features.0 .. features.4's
    # first block, which torchvision builds from 3x3/5x5 convs (stride 2 at the start of features.2/3/4)
    sizes = {}
    for l in traced.graph.layers:
        if l.name.startswith("features.4.0") and l.spatial and fields[l.name] is not None:
            sizes[l.name] = fields[l.name].size
    assert sizes, "features.4.0 has no spatial layers"
    expected = _back_projected(model, "features.4.0.block.1.0")
    assert sizes["features.4.0.block.1.0"] == (expected, expected)
    se_out = [l for l in traced.graph.layers if "features.4.0.block.2.scale_activation" in l.inputs][0]
    assert fields[se_out.name].size == fields["features.4.0.block.1.2"].size  # the gate does not widen it
    box = crop_box(fields[se_out.name], (4, 4), (size, size))
    assert all(hi - lo < size for lo, hi in box), box  # a crop, not the whole image


def _back_projected(model, upto):
    """Receptive field side of `upto` from the convs on the path (r += (k - 1) * jump; jump *= stride)."""
    r, jump = 1, 1
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1 or (isinstance(m, torch.nn.Conv2d)
                                                                       and m.stride[0] > 1):
            if ".block.2." in name:  # the squeeze-excitation branch is not on the spatial path
                continue
            r += (m.kernel_size[0] - 1) * m.dilation[0] * jump
            jump *= m.stride[0]
        if name == upto:
            return float(r)
    raise AssertionError(upto)

"""Models and checkpoints as users have them: --model with literal kwargs, nested and prefixed state dicts,
GPU-saved files on a CPU machine, and the errors for each kind of misfit."""
import argparse
import collections
import contextlib
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.serialization as ser

from cnnvis.app._data_options import (add_data_options, add_model_options, dataset_from_args, model_from_args,
                                      workers_from_args)
from cnnvis.data import apply_checkpoint, load_checkpoint, load_model, parse_model_kwargs
from cnnvis.errors import DataError, ModelError


class Opaque:
    """Any class outside weights_only's allow-list."""


def _net():
    torch.manual_seed(0)
    return nn.Sequential(collections.OrderedDict(conv=nn.Conv2d(1, 3, 3), bn=nn.BatchNorm2d(3), relu=nn.ReLU(),
                                                 flat=nn.Flatten(), fc=nn.Linear(3 * 4 * 4, 2)))


def _same(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "model", "nested", "ddp", "ddp_nested", "compiled"])
def test_checkpoints_as_training_loops_save_them(tmp_path, wrap):
    src = _net()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p))
    sd = src.state_dict()
    ddp = {f"module.{k}": v for k, v in sd.items()}
    obj = {"bare": sd, "state_dict": {"state_dict": sd, "epoch": 3}, "model": {"model": sd, "step": 10},
           "nested": {"checkpoint": 1, "model": {"state_dict": sd}}, "ddp": ddp,
           "ddp_nested": {"state_dict": ddp, "best_acc": 0.9},
           "compiled": {f"_orig_mod.{k}": v for k, v in sd.items()}}[wrap]
    torch.save(obj, tmp_path / "ck.pt")
    dst = _net()
    apply_checkpoint(dst, load_checkpoint(tmp_path / "ck.pt"), "ck.pt")
    _same(src, dst)


def test_a_real_module_called_module_keeps_its_prefix():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)

    a, b = Holder(), Holder()
    nn.init.constant_(a.module.weight, 0.5)
    apply_checkpoint(b, a.state_dict(), "x")
    _same(a, b)


@contextlib.contextmanager
def _saving_as_if_on_a_gpu():
    """torch.save records each storage's device through registered taggers: one that tags CPU storages
    'cuda:0' writes the file a GPU machine writes, on this CPU machine."""
    entry = (1, lambda obj: "cuda:0" if obj.device.type == "cpu" else None, lambda obj, loc: None)
    ser._package_registry.append(entry)
    ser._package_registry.sort(key=lambda e: e[0])
    try:
        yield
    finally:
        ser._package_registry.remove(entry)


def test_a_gpu_saved_checkpoint_loads_on_the_cpu(tmp_path):
    src = _net()
    with _saving_as_if_on_a_gpu():
        torch.save({"state_dict": src.state_dict()}, tmp_path / "gpu.pt")
    if not torch.cuda.is_available():  # the file really asks for a GPU: plain torch.load fails here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "gpu.pt", weights_only=True)
    state = load_checkpoint(tmp_path / "gpu.pt")
    assert all(v.device.type == "cpu" for v in state.values())
    dst = _net()
    nn.init.zeros_(dst.conv.weight)
    apply_checkpoint(dst, state, "gpu.pt")
    _same(src, dst)


def test_misfits_list_a_few_keys(tmp_path):
    sd = _net().state_dict()
    extra = {**{k: v for k, v in sd.items() if not k.startswith("bn.")},
             **{f"head{i}.weight": torch.zeros(1) for i in range(7)}}
    with pytest.raises(ModelError) as e:
        apply_checkpoint(_net(), extra, "ck.pt")
    msg = str(e.value)
    assert msg.startswith("ck.pt: checkpoint does not fit Sequential: ")
    assert "5 missing (bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked)" in msg
    assert "7 unexpected (head0.weight, head1.weight, head2.weight, head3.weight, head4.weight ...)" in msg
    assert "\n" not in msg
    torch.save({"optimizer": {"lr": 0.1}, "epoch": 3}, tmp_path / "opt.pt")
    with pytest.raises(ModelError, match=r"opt\.pt: the checkpoint holds no state dict of tensors "
                                         r"\(top level: optimizer, epoch\)"):
        load_checkpoint(tmp_path / "opt.pt")
    torch.save({"net": Opaque()}, tmp_path / "pickled.pt")  # loading it would run an unpickle
    with pytest.raises(ModelError, match=r"pickled\.pt: not a loadable weights-only checkpoint"):
        load_checkpoint(tmp_path / "pickled.pt")
    with pytest.raises(ModelError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "none.pt")


def test_model_kwargs_are_literals_only():
    assert parse_model_kwargs(["num_classes=10", "p=0.5", "name='x y'", "sizes=(1, [2, 3])", "w=None",
                               "flag=True", "d={'a': -1}"]) == \
        {"num_classes": 10, "p": 0.5, "name": "x y", "sizes": (1, [2, 3]), "w": None, "flag": True, "d": {"a": -1}}
    assert parse_model_kwargs(None) == {}
    for bad, pattern in (("num_classes=ten", r"'ten' is not a Python literal"),
                         ("x=__import__('os').system('true')", "is not a Python literal"),
                         ("x=[1, 2", "is not a Python literal"), ("10", "expected KEY=VALUE"),
                         ("2x=1", "expected KEY=VALUE"), ("x=" + "[" * 10000 + "]" * 10000, "not a Python literal")):
        with pytest.raises(ModelError, match=pattern):
            parse_model_kwargs([bad])


def test_load_model_specs_and_their_errors(tmp_path, monkeypatch):
    (tmp_path / "cnnvis_test_models.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, width=2, bias=True):
                super().__init__()
                self.conv = nn.Conv2d(1, width, 3, bias=bias)

            @classmethod
            def small(cls):
                return cls(width=1)

            def forward(self, x):
                return self.conv(x)

        def not_a_module():
            return 42

        def broken(**kw):
            raise RuntimeError("no GPU here\\nsecond line")
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", sys.path[:])  # load_model puts the working folder on it
    m = load_model("cnnvis_test_models:Net", {"width": 5, "bias": False})
    assert m.conv.out_channels == 5 and m.conv.bias is None
    assert load_model("cnnvis_test_models:Net.small").conv.out_channels == 1
    for spec, kw, pattern in (("cnnvis_test_models", None, "expected PKG.MODULE:FACTORY"),
                              ("nope_not_here:Net", None, "cannot import 'nope_not_here'"),
                              ("cnnvis_test_models:Missing", None, "has no callable 'Missing'"),
                              ("cnnvis_test_models:not_a_module", None, "returned int, not a torch.nn.Module"),
                              ("cnnvis_test_models:Net", {"depth": 3}, r"Net\(depth=3\) failed: TypeError: .*'depth'"),
                              ("cnnvis_test_models:broken", {}, r"broken\(\) failed: RuntimeError: no GPU here$")):
        with pytest.raises(ModelError, match=pattern):
            load_model(spec, kw)


def _parser():
    p = argparse.ArgumentParser(prog="cnnvis")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--demo", action="store_true")
    add_model_options(p, g)
    add_data_options(p)
    p.add_argument("--snapshots", nargs="+", default=[])
    return p


def test_options_end_to_end(tmp_path, monkeypatch):
    (tmp_path / "cnnvis_test_net.py").write_text("import torch.nn as nn\n"
                                     "def make(k=2):\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), "
                                     "nn.Linear(4 * 6 * 6, k))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", sys.path[:])  # load_model puts the working folder on it
    torch.manual_seed(1)
    ref = load_model("cnnvis_test_net:make", {"k": 3})
    torch.save({"model": {f"module.{k}": v for k, v in ref.state_dict().items()}}, tmp_path / "w.pt")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", images=rng.random((5, 8, 8, 3)), labels=np.arange(5) % 3)
    args = _parser().parse_args(["--model", "cnnvis_test_net:make", "--model-kwargs", "k=3", "--weights", "w.pt",
                                 "--data", "d.npz", "--normalize", "imagenet", "--input-size", "6"])
    (model, weights), data = model_from_args(args), dataset_from_args(args)
    assert weights == "w.pt"
    _same(ref, model)
    assert data.image_shape == (3, 6, 6) and workers_from_args(args, data) == 0
    from cnnvis.data import check_fits_model

    with pytest.raises(DataError, match=r"d: images of shape 3x6x6 do not fit Sequential \(.*\); --input-size"):
        check_fits_model(data, model)  # the linear layer wants 8x8 inputs
    check_fits_model(dataset_from_args(_parser().parse_args(["--demo", "--data", "d.npz"])), model)
    args = _parser().parse_args(["--model", "cnnvis_test_net:make", "--data", "d.npz"])
    torch.manual_seed(1)
    model, weights = model_from_args(args)  # no weights: the model as the factory made it
    torch.manual_seed(1)
    _same(load_model("cnnvis_test_net:make", {}), model)
    assert weights == "from the factory"
    args = _parser().parse_args(["--model", "cnnvis_test_net:make", "--model-kwargs", "k=3", "--snapshots", "a.pt", "w.pt"])
    _same(ref, model_from_args(args)[0])  # the last snapshot's weights
    with pytest.raises(DataError, match="--data is required"):
        dataset_from_args(args)
    for bad in (["--demo", "--workers", "-1"], ["--demo", "--input-size", "0"], ["--demo", "--input-size", "x"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(bad)

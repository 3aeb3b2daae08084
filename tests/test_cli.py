"""The commands end to end: the demo on a small budget, a user model, and bad input (exit 2, one line)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnvis
from cnnvis.analysis import Analysis
from cnnvis.data import build_model
from cnnvis.testing.snapshots import lenet_snapshots

PKG_ROOT = str(Path(cnnvis.__file__).resolve().parents[1])


def run(args, cwd, cache):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, CNNVIS_CACHE=str(cache), CNNVIS_PROGRESS="0")
    return subprocess.run([sys.executable, "-c", "import sys; from cnnvis.app import main; sys.exit(main())", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_demo_end_to_end_small_budget_and_cache_reuse(tmp_path):
    cache = tmp_path / "cache"
    args = ["analyze", "--demo", "--demo-model", "lenet-x0.25", "--epochs", "1", "--limit", "300", "-o", "d.cnnvis"]
    r = run(args, tmp_path, cache)
    assert r.returncode == 0, r.stderr
    a = Analysis.load(tmp_path / "d.cnnvis")
    assert a.meta["n_images"] == 300 and a.meta["demo_model"] == "lenet-x0.25"
    assert len(a.history.snapshots) == 2 and a.features["conv1"].patches.shape[:2] == (5, 9)
    assert len(list(cache.glob("*/result.json"))) == 1
    r2 = run(args[:-1] + ["d2.cnnvis"], tmp_path, cache)  # the cached model is reused
    assert r2.returncode == 0, r2.stderr
    b = Analysis.load(tmp_path / "d2.cnnvis")
    np.testing.assert_array_equal(a.stats["fc2"].mean, b.stats["fc2"].mean)
    info = run(["info", "d.cnnvis"], tmp_path, cache)
    assert info.returncode == 0
    assert "conv1" in info.stdout and "training history over snap_000, snap_001" in info.stdout
    why = run(["info", "d.cnnvis", "--aggregation"], tmp_path, cache)
    assert why.returncode == 0, why.stderr
    assert "best silhouette" in why.stdout and "representative layer" in why.stdout
    # the viewer draws the real analysis offscreen: clusters and curves leave many non-background pixels
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, EGL_PLATFORM="surfaceless", PYOPENGL_PLATFORM="egl")
    gl = subprocess.run([sys.executable, "-c", "import sys; from cnnvis.app import main_gl; sys.exit(main_gl())",
                         "d.cnnvis", "--screenshot", "d.png", "--size", "640x400"], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=600)
    assert gl.returncode == 0, gl.stderr
    from vispy.io import read_png

    img = read_png(str(tmp_path / "d.png"))
    assert img.shape[:2] == (400, 640)
    background = np.all(img[..., :3] == img[5, 5, :3], axis=-1)
    assert 0.05 < 1 - background.mean() < 0.95
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 50  # patches, curves, text: not a flat fill


MODEL_SRC = """
from cnnvis.data import build_model
def make():
    return build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12)
def make_mlp():
    import torch.nn as nn
    return nn.Sequential(nn.Flatten(), nn.Linear(144, 3))
"""


@pytest.fixture()
def user_files(tmp_path):
    (tmp_path / "mymodels.py").write_text(MODEL_SRC)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", images=rng.random((20, 12, 12)).astype(np.float32),
             labels=rng.integers(0, 3, 20))
    lenet_snapshots(tmp_path, n_classes=3, image_size=12)
    return tmp_path


def test_user_model_with_weights_and_snapshots(user_files):
    t = user_files
    r = run(["analyze", "--model", "mymodels:make", "--weights", "s1.pt", "--snapshots", "s0.pt", "s1.pt",
             "--data", "data.npz", "--classes", "0,2", "-o", "u.cnnvis"], t, t / "cache")
    assert r.returncode == 0, r.stderr
    a = Analysis.load(t / "u.cnnvis")
    assert a.history.snapshots == ("s0", "s1")
    assert a.importance["conv1"].classes == (0, 2)
    np.testing.assert_allclose(a.history.rel_change[1, 0], 0.1, rtol=1e-5)  # conv1 scaled by 1.1


BAD = [
    (["--model", "mymodels:make", "--weights", "s1.pt", "--data", "nowhere.npz"], "nowhere.npz: no such data file"),
    (["--model", "mymodels:make", "--weights", "junk.pt", "--data", "data.npz"], "junk.pt: not a loadable"),
    (["--model", "mymodels:make", "--weights", "wrong.pt", "--data", "data.npz"], "does not fit LeNet"),
    (["--model", "mymodels:make_mlp", "--weights", "mlp.pt", "--data", "data.npz"], "no convolutional layer"),
    (["--model", "nosuchpkg.mod:make", "--weights", "s1.pt", "--data", "data.npz"], "cannot import 'nosuchpkg.mod'"),
    (["--model", "mymodels:make", "--weights", "s1.pt", "--data", "badlabels.npz"], "label 9 of image 0 is outside"),
    (["--model", "mymodels:make", "--weights", "s1.pt", "--data", "corrupt.npz"], "corrupt.npz: cannot read"),
    (["--model", "mymodels:make", "--weights", "s1.pt", "--data", "big.npz"], r"big: images of shape 1x16x16 do not fit LeNet .*--input-size"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m.split(":")[0][:24] for _, m in BAD])
def test_bad_input_one_line_exit_2_and_no_output(user_files, args, message):
    t = user_files
    (t / "junk.pt").write_bytes(b"\x00\x01garbage")
    torch.save(build_model("lenet-x0.5", n_classes=3, in_channels=1, image_size=12).state_dict(), t / "wrong.pt")
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 3)).state_dict(), t / "mlp.pt")
    np.savez(t / "badlabels.npz", images=np.zeros((3, 12, 12)), labels=np.array([9, 0, 1]),
             class_names=np.array(["a", "b", "c"]))
    (t / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    np.savez(t / "big.npz", images=np.zeros((3, 16, 16)), labels=np.array([0, 1, 2]))
    r = run(["analyze", *args, "-o", "out.cnnvis"], t, t / "cache")
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnvis: error: "), r.stderr
    import re

    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in r.stderr
    assert not (t / "out.cnnvis").exists()
    assert not [p for p in t.iterdir() if p.name.startswith(".out.cnnvis")]


def test_info_on_a_corrupt_file_and_a_missing_output_folder(tmp_path):
    (tmp_path / "x.cnnvis").write_bytes(b"garbage")
    r = run(["info", "x.cnnvis"], tmp_path, tmp_path / "cache")
    assert r.returncode == 2 and r.stderr.startswith("cnnvis: error: x.cnnvis: ") and "Traceback" not in r.stderr
    r = run(["analyze", "--demo", "-o", "no/dir/x.cnnvis"], tmp_path, tmp_path / "cache")
    assert r.returncode == 2 and "output folder no/dir does not exist" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--demo", "--epochs", "0", "-o", "x.cnnvis"], "--epochs must be >= 1, got 0"),
    (["--demo", "--data", "digits", "-o", "x.cnnvis"], "--demo brings its own model"),
    (["--demo", "-o", "."], "is a folder"),
])
def test_demo_argument_errors(tmp_path, args, message):
    r = run(["analyze", *args], tmp_path, tmp_path / "cache")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.cnnvis").exists() and not (tmp_path / "cache").exists()


def test_viewer_on_a_foreign_file_says_what_it_is_not(tmp_path, capsys):
    from cnnvis.app import main_gl

    np.savez(tmp_path / "weights.npz", a=np.zeros(3))
    (tmp_path / "notes.cnnvis").write_text("my notes, not an analysis")
    for name, says in (("weights.npz", "not a cnnvis scene file"), ("notes.cnnvis", "not a cnnvis analysis file")):
        rc = main_gl([str(tmp_path / name), "--screenshot", str(tmp_path / "o.png")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and says in err and name in err, err
        assert not (tmp_path / "o.png").exists()


def test_diagnose_is_a_cnnvis_command(tmp_path):
    from cnnvis.testing.synthetic import synthetic_network

    synthetic_network([16, 16], n_clusters=2, seed=3).analysis.save(tmp_path / "n.cnnvis")
    r = run(["diagnose", "n.cnnvis", "--json"], tmp_path, tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    import json

    assert isinstance(json.loads(r.stdout), list)
    bad = run(["diagnose", "missing.cnnvis"], tmp_path, tmp_path / "cache")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "missing.cnnvis" in bad.stderr


@pytest.mark.slow
def test_torchrun_two_ranks_write_the_file_of_one_process(user_files):
    """`torchrun --nproc-per-node 2 -m cnnvis analyze ...` (gloo): rank 0 writes what one process writes."""
    t = user_files
    args = ["analyze", "--model", "mymodels:make", "--weights", "s1.pt", "--snapshots", "s0.pt", "s1.pt",
            "--data", "data.npz", "--batch-size", "4"]
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, CNNVIS_PROGRESS="0", OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "cnnvis", *args, "-o", "one.cnnvis"], cwd=t, env=env,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", "29517", "-m", "cnnvis", *args, "-o", "two.cnnvis"],
                         cwd=t, env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr
    a, b = Analysis.load(t / "one.cnnvis"), Analysis.load(t / "two.cnnvis")
    assert b.meta["ranks"] == 2 and a.meta["ranks"] == 1 and b.meta["n_images"] == a.meta["n_images"] == 20
    for layer in ("conv1", "fc1"):
        for field in ("count", "mean", "std", "max", "active"):
            # float32 activations of other batch compositions: the merge itself is exact (test_analysis, 1e-9)
            np.testing.assert_allclose(getattr(b.stats[layer], field), getattr(a.stats[layer], field),
                                       rtol=1e-5, atol=1e-7, err_msg=f"{layer}.{field}")
        np.testing.assert_array_equal(b.features[layer].image_index, a.features[layer].image_index)
    # a failing rank ends the run with its message and no file
    images = np.random.default_rng(1).random((8, 12, 12)).astype(np.float32)
    images[3, 5, 5] = np.nan  # caught as the data opens, on every rank (a failure inside one rank's shard:
    #                           test_analysis's gloo test)
    np.savez(t / "nan.npz", images=images, labels=np.arange(8) % 3)
    bad = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", "29518", "-m", "cnnvis", *args[:-4], "--data", "nan.npz",
                          "-o", "bad.cnnvis"], cwd=t, env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and not (t / "bad.cnnvis").exists()
    assert "nan: image 3 is NaN or infinite" in bad.stderr, bad.stderr

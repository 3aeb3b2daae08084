"""`cnnvis analyze` fails before the work and bounds its memory (cnnvis.app._preflight), and the clear words
of the other commands: exit code 2 and one line, nothing left on disk."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnvis
from cnnvis.analysis import Analysis
from cnnvis.analysis._file import remove_stale_temporaries
from cnnvis.app import _preflight as pre
from cnnvis.app import main
from cnnvis.data import build_model

PKG_ROOT = str(Path(cnnvis.__file__).resolve().parents[1])

MODEL_SRC = """
from cnnvis.data import build_model
def make():
    return build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12)
"""


@pytest.fixture()
def t(tmp_path, monkeypatch):
    """A user model (3 classes, 12x12), its weights and 20 images, in the current folder."""
    (tmp_path / "mymodels.py").write_text(MODEL_SRC)
    (tmp_path / "boom.py").write_text("raise RuntimeError('the GPU driver is too old')\n")
    (tmp_path / "quits.py").write_text("import sys\nsys.exit('needs a licence')\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", images=rng.random((20, 12, 12)).astype(np.float32), labels=np.arange(20) % 3)
    torch.manual_seed(0)
    torch.save(build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12).state_dict(), tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNVIS_PROGRESS", "0")
    term = signal.getsignal(signal.SIGTERM)
    yield tmp_path
    signal.signal(signal.SIGTERM, term)  # main() installed its SIGTERM handler in this process


USER = ["analyze", "--model", "mymodels:make", "--weights", "w.pt", "--data", "data.npz", "--no-progress"]


def one_line_exit_2(capsys, argv, pattern):
    import re

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err
    return err[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".cnnvis")


# -- the output location, before the pass ---------------------------------------------------------------------
def test_an_unwritable_output_folder_fails_before_the_pass(t, capsys, monkeypatch):
    def no_pass(*a, **k):
        raise AssertionError("the pass ran")

    monkeypatch.setattr("cnnvis.analysis._run.analyze", no_pass)
    one_line_exit_2(capsys, USER + ["-o", "/sys/out.cnnvis"], r"^cnnvis: error: /sys/out\.cnnvis: cannot write in /sys")


@pytest.mark.parametrize("err, words", [(errno.EROFS, "read-only file system"),
                                        (errno.ENOSPC, "no space left on the device")])
def test_a_read_only_or_full_file_system_is_one_line_and_leaves_nothing(t, capsys, monkeypatch, err, words):
    """(Simulated: the probe's write or its creation fails as those file systems fail.)"""
    def fail(*a, **k):
        raise OSError(err, os.strerror(err))

    if err == errno.ENOSPC:
        monkeypatch.setattr(pre.os, "fsync", fail)
    else:
        monkeypatch.setattr(pre.tempfile, "mkstemp", fail)
    one_line_exit_2(capsys, USER + ["-o", "out.cnnvis"], rf"out\.cnnvis: cannot write in \. \({words}\)")
    assert leftovers(t) == []


# -- labels against the model, before anything is sized by them ---------------------------------------------------
CHILD = """
import resource, sys
from cnnvis.app import main
rc = main(sys.argv[1:])
print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


def run_child(args, cwd):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, CNNVIS_PROGRESS="0")
    r = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=600)
    lines = r.stderr.strip().splitlines()
    rss = int(lines[-1].split()[1])
    return r.returncode, lines[:-1], rss


def test_a_label_of_ten_million_is_named_before_anything_is_sized_by_it(t):
    labels = np.arange(50) % 3
    labels[7] = 10**7
    np.savez(t / "huge.npz", images=np.random.default_rng(1).random((50, 12, 12)).astype(np.float32), labels=labels)
    rc, err, rss_kb = run_child(USER[:5] + ["--data", "huge.npz", "-o", "o.cnnvis"], t)
    assert rc == 2 and len(err) == 1, err
    assert "huge: label 10000000 of image 7 is outside the model's 3 class scores [0, 3)" in err[0]
    # torch and the model: 0.25 GB alone, up to 1.8 GB seen inside the whole suite (before: 20 GB, two minutes)
    assert rss_kb < 2 << 20, rss_kb
    assert leftovers(t) == []
    from cnnvis.data._base import ClassNumbers

    names = ClassNumbers(10**7)  # the names of a file without class_names are made on demand
    assert len(names) == 10**7 and names[7] == "7" and names[-1] == "9999999" and names[:3] == ("0", "1", "2")
    assert ClassNumbers(3) == ("0", "1", "2") and ClassNumbers(3) != ("0", "1")


def test_labels_and_class_counts_are_checked_against_the_model(t, capsys):
    np.savez(t / "two.npz", images=np.zeros((4, 12, 12), np.float32), labels=np.array([0, 1, 1, 0]))
    one_line_exit_2(capsys, USER[:5] + ["--data", "two.npz", "-o", "o.cnnvis"],
                    "outputs 3 class scores but the data set 'two' has 2 classes")


# -- --top-k, --batch-size ------------------------------------------------------------------------------------------
def test_top_k_beyond_the_images_is_capped_with_a_note_and_the_batch_is_sized(t, capsys):
    assert main(USER + ["--top-k", "100000", "-o", "k.cnnvis"]) == 0
    err = capsys.readouterr().err
    assert "note: --top-k 100000 is more than the 20 images; keeping 20 patches per neuron" in err
    a = Analysis.load(t / "k.cnnvis")
    assert a.features["conv1"].scores.shape[1] == 20 and a.meta["top_k"] == 20


def test_the_automatic_batch_fits_half_the_memory():
    per_image = 70 << 20
    assert pre.auto_batch_size(per_image, 64 << 30) == pre.MAX_AUTO_BATCH
    b = pre.auto_batch_size(per_image, 4 << 30)
    assert b == int(2 * 2**30 // (pre.PASS_FACTOR * per_image))  # half of 4 GiB
    assert pre.auto_batch_size(per_image, 4 << 30, processes=4) == max(1, b // 4)
    assert pre.auto_batch_size(per_image, 1 << 20) == 1


def test_the_probe_counts_what_autograd_keeps_and_restores_the_model():
    class Data:
        def get(self, idx):
            return np.ones((len(idx), 1, 12, 12), np.float32)

        def __len__(self):
            return 2

    m = build_model("lenet-x0.25", n_classes=3, in_channels=1, image_size=12).train()
    k, per_image = pre.probe(m, Data(), n=2)
    assert k == 3 and m.training and all(p.requires_grad for p in m.parameters())
    # at least every conv output and relu output once (float32), at most a few times all outputs
    outs = []
    hooks = [mod.register_forward_hook(lambda mod, i, o: outs.append(o.numel() // 2))
             for mod in m.modules() if not list(mod.children())]
    with torch.no_grad():
        m.eval()(torch.ones(2, 1, 12, 12))
    for h in hooks:
        h.remove()
    assert 4 * outs[0] < per_image < 4 * 4 * sum(outs), (per_image, outs)


def test_without_batch_size_the_chosen_batch_is_printed(t):
    rc, err, _ = run_child(USER[:-1] + ["-o", "b.cnnvis"], t)
    assert rc == 0, err
    line = next(l for l in err if l.startswith("wrote b.cnnvis"))  # the last line says which batch was used
    assert line.endswith("MB per image, fits half the memory available; --batch-size sets it)")
    assert 1 <= int(line.split("batch size ")[1].split()[0]) <= pre.MAX_AUTO_BATCH


# -- the model module ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("module, words", [("boom", "RuntimeError: the GPU driver is too old"),
                                           ("quits", "SystemExit: needs a licence")])
def test_any_error_while_importing_the_model_module_is_one_line(t, capsys, module, words):
    one_line_exit_2(capsys, ["analyze", "--model", f"{module}:make", "--weights", "w.pt", "--data", "data.npz",
                             "-o", "o.cnnvis"], rf"cannot import '{module}' \({words}\)")


# -- temporary files: SIGTERM while saving, stale ones --------------------------------------------------------------
SIGTERM_WHILE_SAVING = """
import os, signal, sys
import numpy as np
from cnnvis.app import main
write = np.lib.format.write_array
def write_then_term(*a, **k):
    os.kill(os.getpid(), signal.SIGTERM)
    return write(*a, **k)
np.lib.format.write_array = write_then_term
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_saving_removes_the_temporary_file(t):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, CNNVIS_PROGRESS="0")
    r = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_SAVING, *USER, "--batch-size", "8", "-o", "s.cnnvis"],
                       cwd=t, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 130 and r.stderr.strip() == "cnnvis: interrupted", r.stderr
    assert leftovers(t) == []


def test_stale_temporaries_of_the_same_output_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".net.cnnvis.{dead.pid}.k2j4.tmp"
    old = tmp_path / ".net.cnnvis.x8f3k2a9.tmp"  # an older cnnvis's name, two hours old
    live = tmp_path / f".net.cnnvis.{os.getpid()}.a1b2.tmp"  # a write in progress
    other = tmp_path / f".other.cnnvis.{dead.pid}.zz.tmp"  # another output's
    for p in (stale, old, live, other):
        p.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert sorted(remove_stale_temporaries(tmp_path / "net.cnnvis")) == sorted([stale, old])
    assert live.exists() and other.exists()


# -- the demo cache: two runs at once on an empty cache --------------------------------------------------------------
@pytest.mark.slow
def test_two_demo_runs_at_once_on_an_empty_cache_both_succeed(tmp_path):
    env = dict(os.environ, PYTHONPATH=PKG_ROOT, CNNVIS_CACHE=str(tmp_path / "cache"), CNNVIS_PROGRESS="0",
               OMP_NUM_THREADS="1")
    args = ["analyze", "--demo", "--demo-model", "lenet-x0.25", "--epochs", "1", "--limit", "40", "--top-k", "2",
            "--no-progress", "-o"]
    procs = [subprocess.Popen([sys.executable, "-m", "cnnvis", *args, f"d{i}.cnnvis"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    for i in range(2):
        Analysis.load(tmp_path / f"d{i}.cnnvis")
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_two_writers_of_one_cache_file_interleaved_both_succeed(tmp_path, monkeypatch):
    """The race of two demo runs made certain: the other run saves the same snapshot between this run's write
    and its rename (with a fixed temporary name, this run's rename then found no file)."""
    from cnnvis.data import _train

    model = torch.nn.Linear(2, 2)
    target = tmp_path / "snap_001.pt"
    replace, other = os.replace, []

    def replace_after_the_other_run(src, dst):
        if not other:
            other.append(1)
            _train._save(model, target)
        replace(src, dst)

    monkeypatch.setattr(_train.os, "replace", replace_after_the_other_run)
    assert _train._save(model, target) == target and other
    torch.testing.assert_close(torch.load(target, weights_only=True)["weight"], model.weight.detach())
    assert [p.name for p in tmp_path.iterdir()] == ["snap_001.pt"]


def test_a_damaged_cache_entry_is_a_miss_not_an_error(tmp_path):
    from cnnvis.data._train import _cached

    (tmp_path / "snap_000.pt").write_bytes(b"x")
    good = '{"snapshots": ["snap_000.pt"], "test_accuracy": [0.5], "train_loss": [1.0]}'
    (tmp_path / "result.json").write_text(good)
    assert _cached(tmp_path).snapshots == (tmp_path / "snap_000.pt",)
    for bad in (good[:30], '{"snapshots": 3}', '{"snapshots": ["gone.pt"], "test_accuracy": [], "train_loss": []}'):
        (tmp_path / "result.json").write_text(bad)
        assert _cached(tmp_path) is None, bad


# -- clear words ------------------------------------------------------------------------------------------------
def test_a_folder_where_a_file_is_expected(t, capsys):
    (t / "folder.cnnvis").mkdir()
    one_line_exit_2(capsys, ["info", "folder.cnnvis"], r"folder\.cnnvis: is a folder, not an analysis file")
    one_line_exit_2(capsys, ["diagnose", "folder.cnnvis"], r"folder\.cnnvis: is a folder, not an analysis file")
    one_line_exit_2(capsys, USER[:4] + ["folder.cnnvis", "--data", "data.npz", "-o", "o.cnnvis"],
                    r"folder\.cnnvis: is a folder, not a checkpoint file")
    from cnnvis.app import main_gl

    assert main_gl(["folder.cnnvis", "--screenshot", "x.png"]) == 2
    assert "folder.cnnvis: is a folder; give a .cnnvis file" in capsys.readouterr().err


def test_weights_that_are_not_a_checkpoint(t, capsys):
    (t / "notes.txt").write_text("remember to train longer\n")
    one_line_exit_2(capsys, USER[:4] + ["notes.txt", "--data", "data.npz", "-o", "o.cnnvis"],
                    r"notes\.txt: not a loadable weights-only checkpoint: not a file torch\.save writes .*"
                    r"starts with b'remember'")


def test_a_screenshot_path_that_cannot_be_written(t, capsys):
    from cnnvis.app import main_gl
    from cnnvis.testing.synthetic import synthetic_network

    synthetic_network([8, 8], n_clusters=2).analysis.save(t / "n.cnnvis")
    for target, words in (("/sys/shot.png", "Permission denied"), ("nowhere/shot.png", "No such file or directory"),
                          (".", "Is a directory")):
        assert main_gl(["n.cnnvis", "--screenshot", target]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"cnnvis-gl: error: {target}: cannot write the screenshot ({words})"]
    assert not (t / "nowhere").exists()

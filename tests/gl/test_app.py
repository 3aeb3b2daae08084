"""The cnnvis-gl command: offscreen screenshots, the no-display message, errors, and a real glfw window
under Xvfb driven with xdotool."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnvis.errors import CnnvisError
from cnnvis.gl._scenefile import load_scene, save_scene
from cnnvis.app.gl_command import run
from glhelpers import plain_scene, start_xvfb, stop_processes

pytestmark = pytest.mark.gl


def test_screenshot_renders_offscreen_through_the_scene_hook(tmp_path, capsys):
    from vispy.io import read_png

    asked = []

    def scene_for(path):
        asked.append(path)
        return plain_scene()

    out = tmp_path / "shot.png"
    assert run(["--demo", "--screenshot", str(out), "--size", "320x200"], scene_for=scene_for) == 0
    assert asked == [None]
    img = read_png(str(out))
    assert img.shape[:2] == (200, 320)
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50, "a picture, not a blank"
    assert "wrote" in capsys.readouterr().out


def test_npz_scene_file_round_trips_and_opens(tmp_path):
    s = plain_scene()
    save_scene(s, tmp_path / "s.npz")
    t = load_scene(tmp_path / "s.npz")
    assert t.class_names == s.class_names and np.array_equal(t.rect_box, s.rect_box)
    assert run([str(tmp_path / "s.npz"), "--screenshot", str(tmp_path / "a.png"), "--size", "200x160"]) == 0
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(CnnvisError, match="bad.npz"):
        run([str(tmp_path / "bad.npz"), "--screenshot", str(tmp_path / "b.png")])


def test_without_a_display_it_says_how_to_get_a_picture(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run(["--demo"], scene_for=lambda p: plain_scene()) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--screenshot" in err


@pytest.mark.parametrize("argv, match", [
    ([], "FILE.cnnvis"),
    (["x.cnnvis", "--demo"], "not both"),
    (["missing.cnnvis", "--screenshot", "o.png"], "no such file"),
])
def test_bad_command_lines_raise_cnnvis_error(argv, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CnnvisError, match=match):
        run(argv, scene_for=lambda p: plain_scene())


def test_bad_size_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        run(["--demo", "--screenshot", "o.png", "--size", "big"])
    assert exc.value.code == 2


# -------------------------------------------------------------------------- a real window under Xvfb --
def _xdo(display, *args):
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True, timeout=20,
                   capture_output=True)


def _wait(path: Path, proc, seconds=60.0):
    end = time.time() + seconds
    while time.time() < end:
        if path.exists() and path.stat().st_size:
            time.sleep(0.2)
            return
        if proc.poll() is not None:
            raise AssertionError(f"cnnvis-gl exited: {proc.communicate()[1][-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {path}")


@pytest.mark.slow
def test_real_window_under_xvfb_reacts_to_mouse_and_keys(tmp_path):
    # scripts/setup.sh installs Xvfb and xdotool; their absence is a setup failure, not a reason to skip
    assert shutil.which("Xvfb") and shutil.which("xdotool"), "Xvfb and xdotool are missing: run scripts/setup.sh"
    from vispy.io import read_png

    from cnnvis.gl._chart import chart_height
    from cnnvis.gl._panel import panel_widgets, panel_width
    from cnnvis.gl._state import ViewState

    scene = plain_scene()
    save_scene(scene, tmp_path / "scene.npz")
    size = (640, 440)
    xvfb, env = start_xvfb()
    display = env["DISPLAY"]
    app = None
    try:
        prefix = str(tmp_path / "dump")
        app = subprocess.Popen([sys.executable, "-m", "cnnvis.app.gl_command", str(tmp_path / "scene.npz"), "--size",
                                f"{size[0]}x{size[1]}", "--dump", prefix], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        _wait(Path(prefix + ".ready"), app)
        out = subprocess.run(["xdotool", "search", "--sync", "--name", "cnnvis-gl"], env=env, text=True,
                             capture_output=True, timeout=20).stdout.split()
        win = out[0]

        def dump(n):
            _xdo(display, "key", "--window", win, "p")
            _wait(Path(f"{prefix}.{n}.json"), app)
            return json.loads(Path(f"{prefix}.{n}.json").read_text()), read_png(f"{prefix}.{n}.png")

        state0, frame0 = dump(0)
        # Click the panel's "Matrix" facet button where the panel lays it out.
        button = next(w for w in panel_widgets(ViewState(), scene, size) if w.label == "Matrix")
        x0, y0, x1, y1 = button.box
        _xdo(display, "mousemove", "--window", win, str(int((x0 + x1) / 2)), str(int(size[1] - (y0 + y1) / 2)))
        time.sleep(0.3)
        _xdo(display, "click", "1")
        time.sleep(0.3)
        # Drag the view 80 px to the right with the left button (a pan).
        for cmd in (["mousemove", "--window", win, "100", "150"], ["mousedown", "1"],
                    ["mousemove", "--window", win, "140", "150"], ["mousemove", "--window", win, "180", "150"],
                    ["mouseup", "1"]):
            _xdo(display, *cmd)
            time.sleep(0.25)
        _xdo(display, "key", "--window", win, "g")   # gradient colour mode
        time.sleep(0.3)
        state1, frame1 = dump(1)
        # Double-click the cluster at world (250, 225) in layer cluster 1: an animated zoom that lands
        # with an ExpandColumn request; the two clicks of the pair leave the cluster's facet alone.
        W, H = size
        pw, ch = panel_width(size), chart_height(size)
        cx, cy = state1["center"]
        px = (250 - cx) * state1["zoom"] + (W - pw) / 2
        py = (225 - cy) * state1["zoom"] + ch + (H - ch) / 2
        _xdo(display, "mousemove", "--window", win, str(int(px)), str(int(H - py)))
        time.sleep(0.3)
        _xdo(display, "click", "--repeat", "2", "--delay", "60", "1")
        time.sleep(1.5)
        state2, frame2 = dump(2)
    finally:
        stop_processes(app, xvfb)
    assert state0["facet"] == "features" and state1["facet"] == "matrix"
    assert state1["edge_mode"] == "gradient"
    assert state1["zoom"] == pytest.approx(state0["zoom"])
    assert (state0["center"][0] - state1["center"][0]) * state0["zoom"] == pytest.approx(80, abs=2)
    assert np.abs(frame1.astype(int) - frame0).sum(-1).mean() > 1, "the picture changed"
    assert state2["center"][0] == pytest.approx(250) and state2["zoom"] > state1["zoom"], "on column 1"
    assert state2["edits"] == ["ExpandColumn(column=1)"]
    assert state2["cluster_facet"] == []


def test_foreign_scene_files_are_one_clean_error(tmp_path):
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 broken")
    for name in ("array.npz", "broken.npz"):
        with pytest.raises(CnnvisError, match=f"{name}: not a readable scene file"):
            load_scene(tmp_path / name)


def _shooter(tmp_path, s):
    """shot(*options): a 320x200 screenshot of the scene `s` with these command-line options."""
    from vispy.io import read_png

    save_scene(s, tmp_path / "s.npz")

    def shot(*extra):
        out = tmp_path / f"shot{len(list(tmp_path.iterdir()))}.png"
        assert run([str(tmp_path / "s.npz"), "--screenshot", str(out), "--size", "320x200", *extra]) == 0
        return read_png(str(out))

    return shot


def test_view_options_change_the_screenshot_and_bad_ones_are_named(tmp_path):
    s = plain_scene()
    shot = _shooter(tmp_path, s)

    base = shot()
    assert not np.array_equal(base, shot("--facet", "matrix"))
    assert not np.array_equal(base, shot("--edges", "gradient"))
    assert not np.array_equal(base, shot("--threshold", "1.0"))
    assert not np.array_equal(base, shot("--classes", s.class_names[0]))
    for extra, match in ((["--classes", "zebra"], "unknown class 'zebra'"),
                         (["--threshold", "2"], r"--threshold must be in \[0, 1\]"),
                         (["--series", "nope"], "no chart series 'nope'")):
        with pytest.raises(CnnvisError, match=match):
            run([str(tmp_path / "s.npz"), "--screenshot", str(tmp_path / "x.png"), *extra])


def test_choices_on_the_command_line_ignore_case(tmp_path):
    shot = _shooter(tmp_path, plain_scene())
    assert np.array_equal(shot("--facet", "MATRIX"), shot("--facet", "matrix"))
    assert np.array_equal(shot("--edges", "Gradient"), shot("--edges", "gradient"))
    assert np.array_equal(shot("--series", "CHANGE"), shot("--series", "change"))
    assert np.array_equal(shot("--classes", "CAT"), shot("--classes", "cat"))

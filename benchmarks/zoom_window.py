"""Does zooming ever stall a real window? (issue 17) A glfw window under Xvfb on an analysis file, driven by
xdotool as a person would: wait for the first frame and the session's background work, double-click the
biggest column (expand), double-click again on the first new column (collapse), then Ctrl+Z (undo) and
Ctrl+Shift+Z (redo). The window logs every frame's time (cnnvis-gl --dump); per action the table gives how long
until the first frame after the input, and the longest interval between frames while the view moves.

    python3 benchmarks/zoom_window.py FILE.cnnvis [FILE ...] [--column NAME] [--wait 30]

Runs against the installed cnnvis (the README's setup); `PYTHONPATH=. python3 benchmarks/zoom_window.py ...`
measures a checkout's dev build. Needs Xvfb and xdotool (scripts/setup.sh installs both). Targets: the first
frame within 100 ms of a double-click, no frame interval over 100 ms during an expand, collapse, undo or redo.
The window draws only when something changes, so an interval can also be idle (nothing to draw); the column
"longest while the camera flies" takes only the intervals after a frame drawn mid-flight (the window owed the
next frame at once), from the flag cnnvis-gl --dump writes per frame.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = (1280, 800)


def _xdo(display, *args):
    subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), check=True, timeout=30)


def _frames(path: Path) -> list[tuple[float, bool]]:
    """(time, whether the camera was still flying after that frame) per frame the window drew."""
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [(float(r[0]), len(r) > 2 and r[2].strip() == "1") for r in rows]


def _measure(frames: list[tuple[float, bool]], t0: float, settle: float) -> tuple:
    """(first frame after t0 - t0, median and longest interval between frames after t0, the longest interval
    after a frame drawn while the camera still flew (the window owed the next frame at once: a stall shows
    here, an idle window that has nothing to draw does not), frames)."""
    import statistics

    after = [(t, m) for t, m in frames if t0 < t <= t0 + settle]
    if not after:
        return float("inf"), float("inf"), float("inf"), float("inf"), 0
    gaps = [b[0] - a[0] for a, b in zip(after, after[1:])] or [0.0]
    moving = [b[0] - a[0] for a, b in zip(after, after[1:]) if a[1]] or [0.0]
    return after[0][0] - t0, statistics.median(gaps), max(gaps), max(moving), len(after)


def run_one(path: str, column: str | None, wait: float, display: str) -> list[tuple]:
    prefix = tempfile.mktemp(prefix="zoomwin-")
    env = dict(os.environ, DISPLAY=display)
    env.pop("PYOPENGL_PLATFORM", None)
    env.pop("EGL_PLATFORM", None)
    cmd = [sys.executable, "-c", "import sys; from cnnvis.app import main_gl; sys.exit(main_gl())", path,
           "--size", f"{SIZE[0]}x{SIZE[1]}", "--dump", prefix]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t_start = time.monotonic()
        while not Path(prefix + ".ready").exists():
            if proc.poll() is not None:
                sys.exit(f"cnnvis-gl {path} ended: {proc.stderr.read()[-2000:]}")
            if time.monotonic() - t_start > 300:
                sys.exit(f"cnnvis-gl {path}: no first frame in 300 s")
            time.sleep(0.05)
        first = time.monotonic() - t_start
        heads = json.loads(Path(prefix + ".columns.json").read_text())
        time.sleep(wait)  # the session precomputes expansions and findings meanwhile
        if column is None:
            target = max(heads, key=lambda h: _blocks(h[3]))
        else:
            target = next(h for h in heads if h[3].split(" \u00b7 ")[0] == column)
        x = int((target[2][0] + target[2][2]) / 2)
        y = int(SIZE[1] * 0.45)
        win = subprocess.run(["xdotool", "search", "--sync", "--name", "cnnvis-gl"], env=env, text=True,
                             capture_output=True, timeout=30).stdout.split()[0]
        _xdo(display, "mousemove", "--window", win, str(x), str(y))
        rows, log = [], Path(prefix + ".frames")
        click = ("click", "--window", win, "--repeat", "2", "--delay", "80", "1")
        steps = [("expand " + target[3].split(" \u00b7 ")[0], click), ("collapse", click),
                 ("undo", ("key", "--window", win, "ctrl+z")), ("redo", ("key", "--window", win, "ctrl+shift+z"))]
        for name, action in steps:
            t0 = time.monotonic()
            _xdo(display, *action)
            time.sleep(3.5)
            rows.append((Path(path).stem, name, first, *_measure(_frames(log), t0, 3.5)))
            if name.startswith("expand"):  # the first new column sits where the expanded one was
                time.sleep(0.5)
        return rows
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _blocks(full: str) -> int:
    digits = "".join(ch if ch.isdigit() else " " for ch in full.split(" \u00b7 ")[-1]).split()
    return int(digits[0]) if digits and " \u00b7 " in full else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+")
    p.add_argument("--column", default=None, help="the column to expand (default: the one with most blocks)")
    p.add_argument("--wait", type=float, default=30.0, help="seconds after the first frame before the input")
    args = p.parse_args()
    display = ":94"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        rows = [r for f in args.files for r in run_one(f, args.column, args.wait, display)]
    finally:
        xvfb.terminate()
    print(f"\nreal glfw window under Xvfb, {SIZE[0]}x{SIZE[1]}, llvmpipe; command: python3 "
          f"benchmarks/zoom_window.py {' '.join(sys.argv[1:])}\n")
    print("| file | action | open to first frame (s) | input to next frame (ms) | median frame interval (ms) "
          "| longest frame interval (ms) | longest while the camera flies (ms) | frames in 3.5 s |")
    print("|---|---|---|---|---|---|---|---|")
    for f, name, first, lat, med, gap, moving, n in rows:
        print(f"| {f} | {name} | {first:.2f} | {lat * 1e3:.0f} | {med * 1e3:.0f} | {gap * 1e3:.0f} | "
              f"{moving * 1e3:.0f} | {n} |")


if __name__ == "__main__":
    main()

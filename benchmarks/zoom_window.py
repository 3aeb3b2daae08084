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
"longest within 1 s of the input" takes only the frames of the flight and the swap.
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
FLIGHT_S = 1.0  # a double-click's flight to the column (0.35 s) and the zoom onto what it opened


def _xdo(display, *args):
    subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), check=True, timeout=30)


def _frames(path: Path) -> list[float]:
    return [float(line.split("\t")[0]) for line in path.read_text().splitlines() if line.strip()]


def _measure(frames: list[float], t0: float, settle: float) -> tuple[float, float, float, float, int]:
    """(first frame after t0 - t0, median and longest interval between frames after t0, the longest interval
    between two frames both within FLIGHT_S of t0 (while the view moves: a window with nothing to draw does not
    draw, so later gaps can be idle), frames)."""
    import statistics

    after = [t for t in frames if t0 < t <= t0 + settle]
    if not after:
        return float("inf"), float("inf"), float("inf"), float("inf"), 0
    gaps = [b - a for a, b in zip(after, after[1:])] or [0.0]
    early = [t for t in after if t <= t0 + FLIGHT_S]
    moving = [b - a for a, b in zip(early, early[1:])] or [0.0]
    return after[0] - t0, statistics.median(gaps), max(gaps), max(moving), len(after)


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
          f"| longest frame interval (ms) | longest within {FLIGHT_S:g} s of the input (ms) | frames in 3.5 s |")
    print("|---|---|---|---|---|---|---|---|")
    for f, name, first, lat, med, gap, moving, n in rows:
        print(f"| {f} | {name} | {first:.2f} | {lat * 1e3:.0f} | {med * 1e3:.0f} | {gap * 1e3:.0f} | "
              f"{moving * 1e3:.0f} | {n} |")


if __name__ == "__main__":
    main()

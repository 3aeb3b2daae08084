"""Idle CPU of a real viewer window: starts Xvfb, opens `python -m cnnvis.app.gl_command SCENE.npz` (a glfw window),
waits for its first frame, then reads the process's CPU time from /proc/PID/stat over a spell with no
input, and prints a markdown table (CPU % of one core). `--tree DIR` runs another checkout's code (e.g. an
export of main, or `--tree .` for this checkout's dev build) side by side with the installed cnnvis.

    python3 benchmarks/idle_window.py SCENE.npz [--seconds 30] [--tree /tmp/main-export]

Runs against the installed cnnvis (the README's setup: scripts/setup.sh or scripts/demo.sh); each --tree
DIR is measured too, its cnnvis/ first on PYTHONPATH (it needs a built core: scripts/dev-build.sh).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def idle_cpu(tree: Path | None, scene: str, seconds: float, display: str) -> float:
    """Idle CPU % of a viewer window running `tree`'s cnnvis (None: the installed one)."""
    ready = Path(f"/tmp/idle-{os.getpid()}-{tree.name if tree else 'installed'}")
    env = dict(os.environ, DISPLAY=display)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    else:
        env.pop("PYTHONPATH", None)
    env.pop("PYOPENGL_PLATFORM", None)
    env.pop("EGL_PLATFORM", None)
    p = subprocess.Popen([sys.executable, "-m", "cnnvis.app.gl_command", scene, "--size", "1280x800",
                          "--dump", str(ready)],
                         cwd=tree or "/", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while not Path(str(ready) + ".ready").exists():
            if p.poll() is not None or time.time() - t0 > 120:
                raise SystemExit(f"viewer did not start: {p.stderr.read().decode()[-500:]}")
            time.sleep(0.2)
        time.sleep(2.0)   # let start-up settle
        c0, w0 = _cpu_seconds(p.pid), time.time()
        time.sleep(seconds)
        return 100.0 * (_cpu_seconds(p.pid) - c0) / (time.time() - w0)
    finally:
        p.terminate()
        p.wait(10)
        Path(str(ready) + ".ready").unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scene")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--tree", action="append", default=[], help="another checkout to measure too")
    a = ap.parse_args()
    display = ":77"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        print(f"| checkout | idle CPU over {a.seconds:.0f} s (% of one core) |\n|---|---|")
        for tree in [Path(t).resolve() for t in a.tree] + [None]:
            print(f"| {tree or 'installed cnnvis'} | {idle_cpu(tree, os.path.abspath(a.scene), a.seconds, display):.1f} |", flush=True)
    finally:
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    main()

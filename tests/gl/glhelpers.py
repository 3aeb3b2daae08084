"""Helpers shared by the GL tests (imported as `glhelpers`: pytest puts tests/gl on sys.path, and the
tests must also run with `python -P`, where the checkout root is not importable)."""
import numpy as np

from cnnvis.layout import RECT_CLUSTER, RECT_COLUMN, Scene

SIZE = (480, 320)   # small: the CI machine has two shared cores and no GPU


def pixel(viewer, world, image):
    """RGBA of `image` (a render of `viewer`) at a world point."""
    x, y = viewer.camera.to_pixel(world)
    return image[viewer.size[1] - 1 - int(y), int(x)].astype(int)


def window_xy(viewer, world):
    """Window coordinates (origin top left) of a world point."""
    x, y = viewer.camera.to_pixel(world)
    return float(x), float(viewer.size[1] - y)


def plain_scene(with_matrices: bool = True) -> Scene:
    """Two columns of two clusters with distinct saturated fills, no patches, two curves from
    column 0 to column 1: a strong positive one (curve 0) and a weak one (curve 1)."""
    f32 = np.float32
    boxes = [(0, 0, 100, 300), (200, 0, 300, 300),                 # columns
             (10, 160, 90, 290), (10, 10, 90, 150),                # clusters of column 0
             (210, 160, 290, 290), (210, 10, 290, 150)]            # clusters of column 1
    fill = [(0.9, 0.9, 0.9, 1), (0.9, 0.9, 0.9, 1), (1, 0, 0, 1), (0, 0.8, 0, 1), (0, 0, 1, 1), (1, 1, 0, 1)]
    kind = [RECT_COLUMN, RECT_COLUMN, RECT_CLUSTER, RECT_CLUSTER, RECT_CLUSTER, RECT_CLUSTER]
    act = np.array([[1, 1], [1, 1], [1.0, 0.1], [0.1, 1.0], [0.9, 0.2], [0.2, 0.3]], f32)
    ctrl = np.array([[(90, 220), (150, 220), (150, 80), (210, 80)],
                     [(90, 40), (150, 40), (150, 40), (210, 40)]], f32)
    m = 4 if with_matrices else 0
    matrix_atlas = np.tile(np.linspace(0, 1, 2, dtype=f32), (8, 1))
    return Scene(
        bounds=np.array([0, -100, 300, 320], f32), rect_box=np.array(boxes, f32), rect_fill=np.array(fill, f32),
        rect_border=np.tile(np.array([0.3, 0.3, 0.3, 1], f32), (6, 1)), rect_kind=np.array(kind, np.int8),
        rect_column=np.array([0, 1, 0, 0, 1, 1], np.int32), rect_cluster=np.array([-1, -1, 0, 1, 0, 1], np.int32),
        rect_size=np.array([1, 2, 5, 7, 3, 4], np.int32), rect_importance=np.array([1, 1, 0.9, 0.2, 0.5, 0.5], f32),
        rect_class_activation=act,
        curve_ctrl=ctrl, curve_width=np.array([6, 6], f32), curve_bundle=np.array([0, 1], np.int32),
        curve_values=np.array([[1.0, 0.9, 0.6], [0.1, 0.1, 0.1]], f32),
        atlas=np.zeros((1, 1, 4), np.uint8), patch_box=np.zeros((0, 4), f32), patch_uv=np.zeros((0, 4), f32),
        patch_rect=np.zeros(0, np.int32),
        matrix_atlas=matrix_atlas, matrix_box=np.array(boxes[2:2 + m], f32).reshape(-1, 4),
        matrix_uv=np.tile(np.array([0, 0, 1, 1], f32), (m, 1)), matrix_rect=np.arange(2, 2 + m, dtype=np.int32),
        chart_names=("gradient", "change"), chart_snapshots=("s1", "s2"),
        chart_values=np.array([[[np.nan, 0.5], [np.nan, 0.2]], [[np.nan, 0.1], [np.nan, 0.9]]], f32),
        chart_x=np.array([50, 250], f32), chart_box=np.array([0, -100, 300, -10], f32),
        label_text=("conv1", "fc"), label_pos=np.array([[0, 305], [200, 305]], f32),
        label_size=np.array([14, 14], f32), class_names=("cat", "dog"), column_names=("conv1", "fc"),
    ).validate()


def animation(viewer, dt: float, most: int = 600):
    """Step the viewer's camera animation, yielding after each step that moved; fails instead of hanging when
    it still moves after `most` frames (a `while viewer.step(dt)` loop would spin forever)."""
    for _ in range(most):
        if not viewer.step(dt):
            return
        yield
    raise AssertionError(f"the animation still moves after {most} frames of {dt:.3f} s")


def settle(viewer, dt: float = 1 / 60) -> None:
    """Run the viewer's camera animation to its end (bounded, as `animation`)."""
    for _ in animation(viewer, dt):
        pass


def stop_processes(*procs) -> None:
    """Terminate each started process still running (None: never started), killing one that ignores it."""
    import subprocess

    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_xvfb(size: str = "800x600x24"):
    """(Xvfb process, environment for a window on it): DISPLAY set, the EGL variables of the offscreen
    tests dropped, and the cnnvis under test importable by a child process."""
    import os
    import subprocess
    from pathlib import Path

    import cnnvis

    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", size, "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = ":" + xvfb.stdout.readline().strip()
    env = {k: v for k, v in os.environ.items() if k not in ("PYOPENGL_PLATFORM", "EGL_PLATFORM")}
    env.update(DISPLAY=display, PYTHONPATH=os.pathsep.join(
        [str(Path(cnnvis.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]))
    return xvfb, env

import re

import numpy as np
import pytest

from cnnvis.gl import _shaders
from cnnvis.gl._shaders import PROGRAM_NAMES, load_shader, shader_dir, shader_source

pytestmark = pytest.mark.gl


@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_every_shader_loads_with_includes_expanded_and_a_documented_header(name):
    vert, frag = shader_source(name)
    for src in (vert, frag):
        assert "#include" not in src
        assert src.lstrip().startswith("//")
    # Every attribute and uniform the vertex shader declares is named in its header comment.
    header = "\n".join(line for line in vert.splitlines() if line.startswith("//"))
    for var in re.findall(r"^(?:attribute|uniform)\s+\w+\s+(\w+);", vert, re.MULTILINE):
        assert var in header, f"{name}.vert: {var} is not documented in the header"
    for var in re.findall(r"^uniform\s+sampler2D\s+(\w+);", frag, re.MULTILINE):
        assert var.startswith("t_") and var in frag.split("uniform")[0]


def test_shared_snippet_is_included_once_even_when_asked_twice(tmp_path, monkeypatch):
    (tmp_path / "rect.vert").write_text('#include "a.glsl"\n#include "a.glsl"\nvoid main() {}\n')
    (tmp_path / "a.glsl").write_text("float helper() { return 1.0; }\n")
    monkeypatch.setattr(_shaders, "shader_dir", lambda: tmp_path)
    load_shader.cache_clear()
    try:
        assert load_shader("rect.vert").count("float helper()") == 1
    finally:
        load_shader.cache_clear()


def test_loader_finds_the_checkout_shaders():
    assert (shader_dir() / "curve.vert").is_file()
    with pytest.raises(ValueError, match="not found"):
        load_shader("nonexistent.vert")


def test_every_program_compiles_links_and_draws(make_viewer):
    """GLSL compiles at the first draw, and VisPy raises there with the compiler's message."""
    from cnnvis.testing.scenes import synthetic_scene

    import dataclasses

    import numpy as np

    s = synthetic_scene(3, 2)
    # column titles are the overlay's; a label of the scene's own (at the first column) is the text program's
    s = dataclasses.replace(s, label_text=("note",) + s.label_text,
                            label_pos=np.vstack([s.rect_box[:1, :2], s.label_pos]).astype(np.float32),
                            label_size=np.append(s.label_size[:1], s.label_size).astype(np.float32))
    v = make_viewer(s)
    image = v.render((96, 64))
    assert image.shape == (64, 96, 4)
    for name in PROGRAM_NAMES:
        assert v.programs[name].count > 0, f"{name} drew nothing, so it was not compiled"
    assert v.renderer.chart.count > 0 and v.renderer.ui_over.text.count > 0


def test_a_broken_shader_raises_at_draw(make_viewer, monkeypatch):
    from cnnvis.gl import _programs
    from cnnvis.testing.scenes import synthetic_scene

    v = make_viewer(synthetic_scene(2, 1))
    vert, frag = shader_source("rect")
    monkeypatch.setattr(_programs, "shader_source", lambda name: (vert.replace("void main", "vec2 oops main"), frag))
    bad = _programs.InstancedProgram("rect", "a_corner", np.zeros((4, 2), np.float32))
    bad.set("static", np.zeros(1, _programs.RECT_STATIC))
    with pytest.raises(RuntimeError, match="Shader compilation error"):
        bad.draw()
        v.render((32, 32))


@pytest.mark.parametrize("layout, expected", [
    ("wheel", "cnnvis/shaders"),      # CMake installs shaders/ into the package
    ("checkout", "shaders"),          # <repo>/shaders next to <repo>/cnnvis
])
def test_loader_finds_shaders_in_a_wheel_and_in_a_checkout(tmp_path, layout, expected):
    import importlib.util
    import shutil

    gl = tmp_path / "cnnvis" / "gl"
    gl.mkdir(parents=True)
    shutil.copy(_shaders.__file__, gl / "_shaders.py")
    where = tmp_path / expected
    where.mkdir(parents=True, exist_ok=True)
    (where / "rect.vert").write_text("// " + layout + "\n")
    spec = importlib.util.spec_from_file_location("_shaders_copy", gl / "_shaders.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.shader_dir() == where
    assert mod.load_shader("rect.vert").startswith("// " + layout)

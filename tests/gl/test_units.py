"""The pure parts: camera maths, easing, panel layout and hit testing, text layout, synthetic scenes."""
import numpy as np
import pytest

from cnnvis.gl import FACETS, ViewState
from cnnvis.testing.scenes import sized_scene, synthetic_scene
from cnnvis.gl._camera import Camera, ease_in_out
from cnnvis.gl._panel import panel_widgets, panel_width
from cnnvis.gl._widgets import hit_widget, slider_value
from cnnvis.gl._text import layout_text, text_width

pytestmark = pytest.mark.gl


def test_ease_in_out_is_monotonic_symmetric_and_pinned():
    u = np.linspace(0, 1, 101)
    e = np.array([ease_in_out(x) for x in u])
    assert e[0] == 0 and e[-1] == 1 and e[50] == pytest.approx(0.5)
    assert np.all(np.diff(e) >= 0)
    assert np.allclose(e, 1 - e[::-1])
    assert ease_in_out(0.1) < 0.1 < 0.9 < ease_in_out(0.9)


def test_camera_maps_fits_and_zooms_about_a_point():
    cam = Camera(region=(0, 100, 400, 300))
    cam.fit((0, 0, 200, 100), margin=0)
    assert cam.zoom == pytest.approx(2.0)
    assert np.allclose(cam.to_pixel((100, 50)), (200, 250))
    assert np.allclose(cam.to_world(cam.to_pixel((13, 7))), (13, 7))
    p = cam.to_pixel((30, 20))
    cam.zoom_about(3.0, p)
    assert np.allclose(cam.to_pixel((30, 20)), p)
    cam.pan(10, -5)
    assert np.allclose(cam.to_pixel((30, 20)), p + (10, -5))


def test_camera_flight_can_be_stepped_and_is_interrupted_by_a_pan():
    cam = Camera(region=(0, 0, 100, 100))
    cam.fit((0, 0, 100, 100), margin=0)
    cam.fly_to((0, 0, 10, 10), duration=0.3, margin=0)
    assert cam.step(0.15) and 1.0 < cam.zoom < 10.0
    cam.pan(1, 1)
    assert not cam.animating and not cam.step(0.1)
    cam.fly_to((0, 0, 10, 10), duration=0, margin=0)
    assert cam.zoom == pytest.approx(10.0) and not cam.animating


def test_panel_widgets_fit_the_panel_and_hit_testing_finds_them():
    s = synthetic_scene(4, 2)
    size = (1000, 700)
    ws = panel_widgets(ViewState(), s, size)
    pw = panel_width(size)
    for w in ws:
        x0, y0, x1, y1 = w.box
        assert size[0] - pw <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1], w
    buttons = [w for w in ws if w.kind == "button"]
    assert {w.action for w in buttons} >= {("facet", f) for f in FACETS}
    for w in buttons:   # no two clickable widgets overlap; a disabled one is still found (its tip says why)
        x0, y0, x1, y1 = w.box
        assert hit_widget(ws, (x0 + x1) / 2, (y0 + y1) / 2) is w
    assert hit_widget(ws, 10, 10) is None
    slider = next(w for w in ws if w.kind == "slider")
    assert slider_value(slider, slider.box[0]) == 0 and slider_value(slider, slider.box[2]) == 1
    active = [w.label for w in panel_widgets(ViewState(facet="matrix", edge_mode="change"), s, size) if w.active]
    assert "Matrix" in active and "Change" in active


def test_text_layout_places_glyphs_along_the_baseline():
    g = layout_text(["ab c", "x"], [(10, 20), (0, 0)], [12, 24], (0, 0, 0, 1))
    assert len(g) == 4                       # the space draws nothing
    assert np.all(g["a_anchor"][:3] == (10, 20)) and g["a_size"][3] == 24
    assert np.all(np.diff(g["a_quad"][:3, 0]) > 0)
    assert text_width("abc", 24) == pytest.approx(2 * text_width("abc", 12))
    assert text_width("\u4e00", 12) == pytest.approx(text_width("?", 12)), "unknown glyphs as '?'"


@pytest.mark.parametrize("n", [10, 1000])
def test_synthetic_scenes_are_valid_and_sized(n):
    s = sized_scene(n)
    s.validate()
    assert abs(s.n_rects - n) <= n * 0.1 + 4 and s.n_curves == n
    assert s.rect_box[:, 2:].min() >= 0 and np.all(s.rect_box[:, 2:] >= s.rect_box[:, :2])


def test_glyph_atlas_is_cached_on_disk_and_rebuilt_from_a_bad_cache(tmp_path, monkeypatch):
    """The atlas read back from the cache equals the one rasterised (what every later process draws with);
    a damaged cache file is replaced, not trusted."""
    from cnnvis.gl import _text

    monkeypatch.setenv("CNNVIS_CACHE", str(tmp_path))
    made = _text._make_atlas()
    path = _text._cache_path()
    assert path.parent == tmp_path and not path.exists()
    _text.glyph_atlas.cache_clear()
    try:
        first = _text.glyph_atlas()
        assert path.is_file()
        _text.glyph_atlas.cache_clear()
        again = _text.glyph_atlas()
        for atlas in (first, again):
            assert np.array_equal(atlas.image, made.image)
            assert atlas.quad == made.quad and atlas.uv == made.uv and atlas.advance == made.advance
        path.write_bytes(b"not an npz")
        _text.glyph_atlas.cache_clear()
        assert np.array_equal(_text.glyph_atlas().image, made.image)
        assert _text._read_atlas(path).advance == made.advance  # rewritten
    finally:
        _text.glyph_atlas.cache_clear()

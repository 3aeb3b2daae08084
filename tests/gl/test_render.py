"""Offscreen renders with pixel read-back: what the Scene says is where the pixels are."""
import numpy as np
import pytest

from glhelpers import pixel, plain_scene

from cnnvis.gl._chart import chart_height

pytestmark = pytest.mark.gl

BACKGROUND = np.array([251, 251, 252])


def rgb(p):
    return np.asarray(p[:3], int)


def close(a, b, tol=12):
    return bool(np.all(np.abs(rgb(a) - np.asarray(b)[:3]) <= tol))


def test_rectangles_appear_where_the_scene_puts_them(make_viewer):
    s = plain_scene(with_matrices=False)
    v = make_viewer(s)
    v.set_facet("matrix")   # no matrices in this scene: clusters show their plain fill
    img = v.render()
    for r in range(2, 6):
        x0, y0, x1, y1 = s.rect_box[r]
        want = np.round(s.rect_fill[r, :3] * 255)
        assert close(pixel(v, ((x0 + x1) / 2, (y0 + y1) / 2), img), want), f"cluster {r} centre"
        assert close(pixel(v, (x0 + 4 / v.camera.zoom, (y0 + y1) / 2), img), want), f"cluster {r} inside left edge"
        assert not close(pixel(v, (x0 - 4 / v.camera.zoom, (y0 + y1) / 2), img), want), f"cluster {r} outside"
    # Between the columns, away from the curves: background.
    assert close(pixel(v, (150, 280), img), BACKGROUND, 4)
    assert img[..., 3].min() == 255


def test_curves_are_drawn_between_the_columns_and_coloured_by_mode(make_viewer):
    v = make_viewer(plain_scene())
    mid_strong, mid_weak = (150, 150), (150, 40)   # Bezier midpoints of curves 0 and 1
    img = v.render()
    strong = rgb(pixel(v, mid_strong, img))
    assert strong[2] > strong[0] + 60, f"positive weight draws blue, got {strong}"
    ctrl = v.scene.curve_ctrl[0].astype(float)
    for t in (0.25, 0.75):   # on the cubic, away from the chord: the vertex shader evaluates the Bezier
        b = (1 - t) ** 3 * ctrl[0] + 3 * (1 - t) ** 2 * t * ctrl[1] + 3 * (1 - t) * t ** 2 * ctrl[2] + t ** 3 * ctrl[3]
        assert not close(pixel(v, b, img), BACKGROUND, 30), f"curve passes B({t})"
    weak = rgb(pixel(v, mid_weak, img))
    assert not close(weak, BACKGROUND, 4), "the weak curve is drawn, faintly"
    v.set_edge_mode("gradient")
    grad = rgb(pixel(v, mid_strong, v.render()))
    assert grad[2] > grad[1] + 40 and grad[0] > grad[1] + 20, f"gradient mode draws purple, got {grad}"
    v.set_edge_mode("change")
    change = rgb(pixel(v, mid_strong, v.render()))
    assert change[1] > change[0] + 40, f"change mode draws green, got {change}"
    # Negative weights in vermilion; the layout's suggested colour wins where it is given.
    v.set_edge_mode("weight")
    v.set_scene(v.scene.replace(curve_values=v.scene.curve_values * np.float32([-1, 1, 1])))
    neg = rgb(pixel(v, mid_strong, v.render()))
    assert neg[0] > neg[2] + 60, f"negative weight draws vermilion, got {neg}"
    green = np.array([[0, 0.6, 0, 1], [0, 0.6, 0, 1]], np.float32)
    assert v.set_scene(v.scene.replace(curve_color=green)) == {"curves"}
    sug = rgb(pixel(v, mid_strong, v.render()))
    assert sug[1] > sug[0] + 60 and sug[1] > sug[2] + 60, f"suggested colour, got {sug}"


def test_edge_threshold_hides_weak_curves_only(make_viewer):
    v = make_viewer(plain_scene())
    v.set_edge_threshold(0.5)
    img = v.render()
    assert close(pixel(v, (150, 40), img), BACKGROUND, 3), "weak curve (0.1) hidden"
    assert not close(pixel(v, (150, 150), img), BACKGROUND, 30), "strong curve (1.0) kept"
    assert v.visible_curves().tolist() == [True, False]
    v.set_edge_mode("change")        # the strong curve's change is 0.6: the filter follows the mode
    v.set_edge_threshold(0.7)
    assert close(pixel(v, (150, 150), v.render()), BACKGROUND, 3)
    assert not v.visible_curves().any()
    with pytest.raises(ValueError, match="0..1"):
        v.set_edge_threshold(1.5)


def test_facet_switch_changes_pixels_inside_the_cluster_only(make_viewer):
    from cnnvis.testing.scenes import synthetic_scene

    s = synthetic_scene(3, 2)
    v = make_viewer(s)
    before = v.render().astype(int)
    r = int(np.flatnonzero(s.rect_kind == 1)[0])
    v.set_facet("matrix", rect=r)
    after = v.render().astype(int)
    x0, y0, x1, y1 = v.camera.to_pixel(s.rect_box[r].reshape(2, 2)).ravel()
    H = v.size[1]
    inside = np.zeros(before.shape[:2], bool)
    inside[H - int(y1) + 2:H - int(y0) - 2, int(x0) + 2:int(x1) - 2] = True
    diff = np.abs(after - before).sum(-1)
    assert diff[inside].mean() > 20, "the cluster's pixels change with its facet"
    # The panel redraws nothing but its facet buttons; the rest of the view is unchanged.
    view = np.zeros_like(inside)
    view[:H - int(v.camera.region[1]), :int(v.camera.region[2])] = True
    grown = np.zeros_like(inside)
    grown[H - int(y1) - 3:H - int(y0) + 3, int(x0) - 3:int(x1) + 3] = True
    assert diff[view & ~grown].max() == 0
    # Importance facet: a bar in the accent colour, as high as the importance.
    v.set_facet("importance")
    img = v.render()
    k = int(np.argmax(np.where(s.rect_kind == 1, s.rect_importance, -1)))
    bx0, by0, bx1, by1 = s.rect_box[k]
    p = rgb(pixel(v, ((bx0 + bx1) / 2, by0 + 0.1 * (by1 - by0)), img))
    assert p[0] > p[2] + 80, f"importance bar is orange, got {p}"
    with pytest.raises(ValueError, match="facet must be one of"):
        v.set_facet("nope")


def test_class_selection_makes_clusters_low_on_the_classes_translucent(make_viewer):
    s = plain_scene(with_matrices=False)
    v = make_viewer(s)
    v.set_facet("matrix")
    centres = {r: ((s.rect_box[r, 0] + s.rect_box[r, 2]) / 2, (s.rect_box[r, 1] + s.rect_box[r, 3]) / 2)
               for r in range(2, 6)}
    before = {r: rgb(pixel(v, c, v.render())) for r, c in centres.items()}
    v.select_classes(["cat"])         # activations on cat: r2 1.0, r3 0.1, r4 0.9, r5 0.2
    img = v.render()
    after = {r: rgb(pixel(v, c, img)) for r, c in centres.items()}
    column = np.round(s.rect_fill[0, :3] * 255)
    for r in (2, 4):
        assert close(after[r], before[r], 2), f"cluster {r} stays opaque"
    for r in (3, 5):
        assert not close(after[r], before[r], 30), f"cluster {r} fades"
        assert np.abs(after[r] - column).sum() < np.abs(before[r] - column).sum() / 3, "towards the column"
    v.select_classes([])
    assert all(close(rgb(pixel(v, c, v.render())), before[r], 2) for r, c in centres.items())
    with pytest.raises(ValueError, match="unknown class"):
        v.select_classes(["horse"])


def test_animated_zoom_moves_the_camera_eased_and_ends_on_the_column(make_viewer):
    s = plain_scene()
    v = make_viewer(s)
    c0, z0 = v.camera.center.copy(), v.camera.zoom
    v.zoom_to_column(1, duration=0.4)
    assert v.camera.animating
    target = v.camera.target
    xs = []
    for _ in range(8):
        v.step(0.05)
        xs.append(v.camera.center[0])
    assert not v.camera.animating
    assert np.allclose((*v.camera.center, v.camera.zoom), target)
    steps = np.diff([c0[0]] + xs)
    assert np.all(steps >= 0) and steps[0] < steps[3] and steps[-1] < steps[3], "eased: slow, fast, slow"
    assert v.camera.zoom > z0
    # The column now fills the view: its centre is at the view centre and its width near the view width.
    box = v.column_box(1)
    x, y, w, h = v.camera.region
    assert np.allclose(v.camera.to_pixel(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)), (x + w / 2, y + h / 2))
    img = v.render()
    assert close(pixel(v, ((box[0] + box[2]) / 2, 200), img), (0, 0, 255), 12), "the blue cluster at the centre"


def test_pan_and_zoom_move_the_pixels(make_viewer):
    s = plain_scene(with_matrices=False)
    v = make_viewer(s)
    v.set_facet("matrix")
    img0 = v.render()
    red = (50, 225)
    x0, y0 = v.camera.to_pixel(red)
    v.pan(30, 20)   # right and down, in window pixels
    img1 = v.render()
    x1, y1 = v.camera.to_pixel(red)
    assert np.allclose((x1 - x0, y1 - y0), (30, -20))
    H = v.size[1]
    assert close(img1[H - 1 - int(y1), int(x1)], img0[H - 1 - int(y0), int(x0)], 2)
    before = v.camera.to_pixel(red)
    v.zoom(2.0, at=(before[0], H - before[1]))
    assert np.allclose(v.camera.to_pixel(red), before), "the point under the cursor stays put"
    assert v.camera.zoom == pytest.approx(2 * v.camera.zoom / 2)


def test_chart_follows_the_series_and_snapshot_choice(make_viewer):
    v = make_viewer(plain_scene())
    strip = lambda im: im[-int(v.camera.region[1]):, :int(v.camera.region[2])].astype(int)  # noqa: E731
    a = strip(v.render())
    v.set_series("change")
    b = strip(v.render())
    assert np.abs(a - b).sum(-1).max() > 100, "the chart redraws for another series"
    v.set_snapshot(0)
    c = strip(v.render())
    assert np.abs(b - c).sum(-1).max() > 100, "the chosen snapshot's line moves"
    # The chart's points sit under the columns: the marker x equals the column centre x on screen.
    _, _, ox, _ = v.camera.transform()
    xs = np.asarray(v.scene.chart_x) * v.camera.zoom + ox
    blue = (np.abs(c - [56, 115, 214, 255]).sum(-1) < 60)
    cols = np.flatnonzero(blue.any(0))
    assert abs(cols.max() - xs[1]) <= 6, "the last point is under the last column"


def test_a_scene_with_only_rectangles_renders(make_viewer):
    f32 = np.float32
    s = plain_scene().replace(
        curve_ctrl=np.zeros((0, 4, 2), f32), curve_width=np.zeros(0, f32), curve_bundle=np.zeros(0, np.int32),
        curve_values=np.zeros((0, 3), f32), matrix_atlas=np.zeros((0, 0), f32), matrix_box=np.zeros((0, 4), f32),
        matrix_uv=np.zeros((0, 4), f32), matrix_rect=np.zeros(0, np.int32), chart_names=(), chart_snapshots=(),
        chart_values=np.zeros((0, 0, 0), f32), chart_x=np.zeros(0, f32), label_text=(),
        label_pos=np.zeros((0, 2), f32), label_size=np.zeros(0, f32))
    v = make_viewer(s)
    img = v.render()
    assert close(pixel(v, (50, 225), img), (255, 0, 0))
    assert v.hover(*v.camera.to_pixel((150, 150)) * (1, -1) + (0, v.size[1])) == ()


def test_an_atlas_taller_than_the_texture_limit_is_repacked(make_viewer):
    from cnnvis.gl._textures import fit_atlas

    rng = np.random.default_rng(0)
    atlas = rng.random((40, 3)).astype(np.float32)
    uv = np.array([[0, i / 10, 1, (i + 1) / 10] for i in range(10)], np.float32)
    packed, uv2 = fit_atlas(atlas, uv, 16)
    assert max(packed.shape) <= 16
    for a, b in zip(uv, uv2):
        ra = atlas[int(a[1] * 40):int(a[3] * 40), int(a[0] * 3):int(a[2] * 3)]
        h, w = packed.shape
        rb = packed[int(round(b[1] * h)):int(round(b[3] * h)), int(round(b[0] * w)):int(round(b[2] * w))]
        assert np.array_equal(ra, rb)
    # Drawn through the viewer with a tiny limit, the matrices look as they do with the real one.
    m = plain_scene()
    blocks = np.repeat(np.linspace(0, 1, 8, dtype=np.float32).reshape(4, 2, 1), 2, axis=2).reshape(8, 2)
    m = m.replace(matrix_atlas=blocks, matrix_uv=np.array([[0, i / 4, 1, (i + 1) / 4] for i in range(4)], np.float32))
    a = make_viewer(m)
    a.set_facet("matrix")
    want = a.render()
    b = make_viewer(m)
    b.set_facet("matrix")
    b.renderer.max_texture = 4
    b.set_scene(m.replace(matrix_atlas=blocks * 0.5))
    assert "matrix_atlas" in b.set_scene(m)
    assert b.renderer.matrix_tex.shape[:2] == (4, 4)
    assert np.array_equal(want, b.render())


def test_labels_show_by_level_of_detail(make_viewer):
    s = plain_scene()   # Scene labels other than column names (those are the overlay's titles, at every zoom)
    v = make_viewer(s.replace(label_text=("note a", "note b"), label_pos=np.array([[0, 500], [200, 500]], np.float32)))

    def ink_near(world):
        img = v.render()
        x, y = v.camera.to_pixel(world)
        H = v.size[1]
        patch = img[max(0, H - int(y) - 14):H - int(y) + 2, max(0, int(x)):int(x) + 30, :3].astype(int)
        return int((patch.sum(-1) < 400).sum())

    assert ink_near((0, 500)) > 10, "label drawn at the fit zoom"
    v.camera.zoom_about(0.2 / v.camera.zoom, v.camera.to_pixel((0, 500)))
    assert v.camera.zoom * 14 < 4.5
    assert ink_near((0, 500)) == 0, "too small at this zoom: culled"


def test_the_chart_strip_is_captioned_with_the_scene_chart_legend(make_viewer):
    """The chart's legend is Scene.chart_legend (the layout no longer writes it into the labels for the
    viewer to strip); without one the strip shows the series name."""
    s = plain_scene()
    plain = make_viewer(s).render()
    v = make_viewer(s.replace(chart_legend=("mean gradient of the layer cluster", "change")))
    legend = v.render()
    H = v.size[1]
    strip = slice(H - int(chart_height(v.size)), H - int(chart_height(v.size)) + 24)
    assert np.abs(legend[strip].astype(int) - plain[strip]).sum() > 1000, "the caption changed"
    rest = slice(0, H - int(chart_height(v.size)))
    assert np.array_equal(legend[rest], plain[rest]), "and nothing above the chart strip"

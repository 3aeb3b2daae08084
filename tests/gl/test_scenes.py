"""The scene fixtures: the parametric synthetic_scene fills what the layout fills, as the layout does."""
from dataclasses import fields

import numpy as np
import pytest

from cnnvis.layout import Scene
from cnnvis.testing.scenes import layout_scene, sized_scene, synthetic_scene


# trailing dimensions that vary with the content (class count, snapshot and column counts, atlas sizes)
_FREE_TAIL = {"atlas": 2, "chart_values": 3, "rect_class_activation": 2, "matrix_atlas": 2}


def _shape(name, v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype, v.ndim, v.shape[_FREE_TAIL.get(name, 1):], v.size > 0)
    if isinstance(v, tuple):
        return ("tuple", len(v) > 0)
    return (type(v).__name__,)


@pytest.fixture(scope="module")
def real():
    return layout_scene()


@pytest.mark.parametrize("make", [lambda: synthetic_scene(3, 3), lambda: sized_scene(300)])
def test_synthetic_scenes_fill_the_fields_the_layout_fills(real, make):
    s = make()
    for f in fields(Scene):
        if f.name not in ("crossings_before", "crossings_after"):   # counts the layout measures
            assert _shape(f.name, getattr(s, f.name)) == _shape(f.name, getattr(real, f.name)), f.name
    assert s.chart_names == real.chart_names and s.chart_legend == real.chart_legend


def test_synthetic_bundle_ids_name_the_column_pair_of_their_curves():
    s = synthetic_scene(4, 3)
    cols = s.rect_column[s.rect_kind == 1]
    x_src = s.curve_ctrl[:, 0, 0]
    src_col = np.searchsorted(np.unique(s.rect_box[s.rect_kind == 0, 0]), x_src, side="right") - 1
    assert (s.bundle_id[s.curve_bundle, 0] == src_col).all()
    assert (s.bundle_id[:, 1] == s.bundle_id[:, 0] + 1).all() and cols.max() == 3
    # activations and matrices carry the layout's display scale: each row's largest value is 1
    m = s.matrix_atlas[:8]
    assert np.allclose(m.max(1), 1.0) and s.rect_class_activation.max() <= 1.0

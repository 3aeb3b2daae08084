"""The viewer on a ResNet-shaped net (tests/resnets.py: torchvision's Bottleneck structure, narrow): the real
analysis -> Session -> Scene, and an expand of its biggest layer cluster flies the camera there."""
import numpy as np
import pytest
import torch  # a dependency of cnnvis: always there, never a reason to skip
from glhelpers import animation, settle


@pytest.fixture(scope="module")
def resnet_analysis():
    from resnets import resnet50

    from cnnvis.analysis import analyze
    from cnnvis.data import Dataset

    torch.manual_seed(0)
    model = resnet50(num_classes=3, width=4).eval()
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((6, 3, 32, 32), dtype=np.float32), np.array([0, 1, 2, 0, 1, 2]), ("a", "b", "c"), "r")
    return analyze(model, data, batch_size=6, top_k=2, show_progress=False)


@pytest.fixture
def resnet_session(resnet_analysis):
    from cnnvis.app.session import Session

    return Session(resnet_analysis)   # one per test: edits change it


def _on_screen(v, column):
    x0, y0, x1, y1 = v.column_box(column)
    (px0, py0), (px1, py1) = v.camera.to_pixel((x0, y0)), v.camera.to_pixel((x1, y1))
    rx, ry, rw, rh = v.camera.region
    return px0 >= rx - 1 and px1 <= rx + rw + 1 and py0 >= ry - 1 and py1 <= ry + rh + 1


def test_expanding_the_biggest_resnet_layer_cluster_animates_the_camera_onto_its_layers(resnet_session,
                                                                                        make_viewer):
    session = resnet_session
    lcs = session.aggregation.layer_clusters
    big = max(range(len(lcs)), key=lambda i: len(lcs[i].layers))
    assert len(lcs[big].layers) > 10, "16 bottlenecks in a handful of layer clusters: one holds many layers"
    v = make_viewer(session.scene, on_edit=session.on_edit, size=(800, 500))
    before = v.render()
    start = (v.camera.center.copy(), v.camera.zoom)
    v.expand_column(big)
    s = v.scene
    group = np.flatnonzero(s.column_group == s.column_group[v.state.focus_column])
    assert s is session.scene and len(group) == len(lcs[big].children)   # a stage opens into its blocks
    assert v.camera.animating, "the expand starts a camera flight"
    tx, ty, tz = v.camera.target
    # the flight: the camera starts where it was and moves monotonically (eased) to the target
    assert np.allclose(v.camera.center, start[0]) and v.camera.zoom == pytest.approx(start[1])
    dist = [np.hypot(*(v.camera.center - (tx, ty))) + abs(np.log(v.camera.zoom / tz))]
    frames = [v.render()]
    for _ in animation(v, 1 / 30):
        dist.append(np.hypot(*(v.camera.center - (tx, ty))) + abs(np.log(v.camera.zoom / tz)))
        frames.append(v.render())
    assert 5 <= len(dist) <= 20, "0.35 s at 30 frames a second"
    assert all(b < a for a, b in zip(dist, dist[1:])) and dist[0] > 0
    assert v.camera.zoom == pytest.approx(tz) and np.allclose(v.camera.center, (tx, ty))
    from cnnvis.gl._viewer import FIT_COLUMNS

    left = sorted(group, key=lambda c: v.column_box(int(c))[0])
    shown = [bool(_on_screen(v, int(c))) for c in left]
    # landed on the group's first FIT_COLUMNS columns (a wide group would be a thin band)
    assert shown[:FIT_COLUMNS] == [True] * min(FIT_COLUMNS, len(left)) and not any(shown[FIT_COLUMNS + 1:])
    changed = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])]
    assert sum(c > 0.05 for c in changed) >= len(changed) // 2, "the picture moves during the flight"
    assert np.abs(frames[-1].astype(int) - before).mean() > 1


def test_an_expand_without_animation_jumps_and_collapse_flies_back(resnet_session, make_viewer):
    session = resnet_session
    lcs = session.aggregation.layer_clusters
    big = max(range(len(lcs)), key=lambda i: len(lcs[i].layers))
    v = make_viewer(session.scene, on_edit=session.on_edit, size=(800, 500))
    v.expand_column(big, animate=False)
    assert not v.camera.animating and v.state.focus_column >= 0
    group = sorted(np.flatnonzero(v.scene.column_group >= 0), key=lambda c: v.column_box(int(c))[0])
    assert all(_on_screen(v, int(c)) for c in group[:12]) and len(group) == len(lcs[big].children) >= 2
    v.collapse_column()
    assert v.camera.animating and (v.scene.column_group < 0).all()
    settle(v, 1 / 30)
    assert _on_screen(v, big)


def test_the_resnet_overview_names_its_stages_by_module_path(resnet_session):
    # torch.fx calls a Bottleneck's `out += identity` "add", "add_1", ...: the stage still reads "layer2"
    names = [lc.name for lc in resnet_session.aggregation.layer_clusters]
    assert names == ["conv1 \u00b7 conv+bn+relu+pool", "layer1 \u00b7 3 blocks", "layer2 \u00b7 4 blocks",
                     "layer3 \u00b7 6 blocks", "layer4 \u00b7 3 blocks", "fc \u00b7 fc"]

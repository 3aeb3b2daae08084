"""`cnnvis-gl` on a diff file (issue 18, item 5): each neuron's patch framed in its status's colour (read back
from offscreen renders), clusters that split or merged in B outlined, a click on a patch opening its
partner's card in the panel, the split/merge rule on a hand-made case, and `--screenshot` headless.

The diff file is `cnnvis diff -o` on two LeNets: A at seed 0, B the same with three of conv2's filters
re-drawn at random (tests/test_diff.py's setting), on 200 digits."""
import dataclasses

import numpy as np
import pytest
import torch

from cnnvis.app import main_gl
from cnnvis.app.diff_view import DiffMarks
from cnnvis.app.session import Session
from cnnvis.diff import cluster_flow, load_diff
from cnnvis.gl._renderer import MARK_WIDTH
from cnnvis.gl._scenefile import load_scene, save_scene
from cnnvis.layout import RECT_CLUSTER
from cnnvis.layout import _palette as pal
from glhelpers import window_xy

pytestmark = pytest.mark.gl
SIZE = (900, 640)


@pytest.fixture(scope="module")
def diff_file(tmp_path_factory):
    from cnnvis.app.commands import main
    from cnnvis.data import LeNet

    folder = tmp_path_factory.mktemp("diffview")
    torch.manual_seed(0)
    a = LeNet().eval().state_dict()
    torch.save(a, folder / "a.pt")
    b = {k: v.clone() for k, v in a.items()}
    g = torch.Generator().manual_seed(1)
    b["conv2.weight"][[1, 2, 3]] = torch.randn(b["conv2.weight"][[1, 2, 3]].shape, generator=g)
    torch.save(b, folder / "b.pt")
    out = folder / "d.cnnvis"
    assert main(["diff", "--model", "cnnvis.data:LeNet", "--weights", str(folder / "a.pt"), "--against",
                 str(folder / "b.pt"), "--data", "digits", "--limit", "200", "--batch-size", "50", "--no-progress",
                 "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def loaded(diff_file):
    return load_diff(diff_file)


def diff_scene(loaded, diff=None):
    """A's Scene with the diff's marks, as cnnvis-gl builds it (app.diff_view.scene_for), for `diff` (default
    the file's)."""
    d, a, b = loaded
    s = Session(a, findings=False)
    marks = DiffMarks(diff or d, a, b)
    return marks.attach(s.scene, s.aggregation), s


def status_of(loaded, scene, p, diff=None):
    """The status the diff gives the neuron of patch p: its column is named after its weighted layer here
    (LeNet: conv1 conv2 fc1 fc2), whose neurons are the representative's (relu1 of conv1, ...)."""
    d = diff or loaded[0]
    column = scene.column_names[scene.rect_column[scene.patch_rect[p]]]
    return str(d.layer(column).status[scene.patch_neuron[p]])


def rgb(c) -> np.ndarray:
    return np.round(np.asarray(c[:3], float) * 255)


def frame_pixel(v, img, box):
    """The pixel 1 px inside a patch's left edge, halfway up (inside its frame)."""
    (x0, y0), (x1, y1) = v.camera.to_pixel(box[:2]), v.camera.to_pixel(box[2:])
    return img[v.size[1] - 1 - int(0.5 * (y0 + y1)), int(np.ceil(x0)) + 1, :3].astype(float)


def big_patch(v, scene, patches):
    """The patch of `patches` largest on screen after zooming to its column."""
    p = max(patches, key=lambda i: scene.patch_box[i, 2] - scene.patch_box[i, 0])
    v.zoom_to_column(int(scene.rect_column[scene.patch_rect[p]]), animate=False)
    return p


def test_drifted_and_stable_patches_are_framed_in_their_colours(loaded, make_viewer):
    scene, _ = diff_scene(loaded)
    status = np.array([status_of(loaded, scene, p) for p in range(scene.n_patches)])
    assert {"stable", "drifted"} <= set(status)
    want = {"stable": pal.STABLE, "drifted": pal.DRIFTED, "unmatched": pal.UNMATCHED}
    assert all(np.allclose(scene.patch_tint[p], want[s]) for p, s in enumerate(status))
    for st in ("drifted", "stable"):
        v = make_viewer(scene, size=SIZE)
        p = big_patch(v, scene, np.flatnonzero(status == st))
        img = v.render()
        assert np.abs(frame_pixel(v, img, scene.patch_box[p]) - rgb(want[st])).max() <= 10, st
        # the frame is the tint's: the same patch without tints shows no such colour there
        bare = make_viewer(scene.replace(patch_tint=np.zeros((0, 4), np.float32)), size=SIZE)
        bare.zoom_to_column(int(scene.rect_column[scene.patch_rect[p]]), animate=False)
        assert np.abs(frame_pixel(bare, bare.render(), scene.patch_box[p]) - rgb(want[st])).max() > 40, st


def test_an_unmatched_neuron_is_grey_and_its_card_says_unmatched(loaded, make_viewer):
    d = loaded[0]
    conv2 = d.layer("conv2")
    scene0, _ = diff_scene(loaded)
    col = list(scene0.column_names).index("conv2")
    p0 = int(np.flatnonzero(scene0.rect_column[scene0.patch_rect] == col)[0])
    n = int(scene0.patch_neuron[p0])
    partner, status = conv2.partner.copy(), conv2.status.copy()
    partner[n], status[n] = -1, "unmatched"
    corr = conv2.correlation.copy()
    corr[n] = np.nan
    layers = tuple(dataclasses.replace(l, partner=partner, status=status, correlation=corr) if l.a == "conv2" else l
                   for l in d.layers)
    d2 = dataclasses.replace(d, layers=layers)
    scene, _ = diff_scene(loaded, d2)
    p = int(np.flatnonzero((scene.rect_column[scene.patch_rect] == col) & (scene.patch_neuron == n))[0])
    assert np.allclose(scene.patch_tint[p], pal.UNMATCHED)
    v = make_viewer(scene, size=SIZE)
    v.zoom_to_column(col, animate=False)
    img = v.render()
    assert np.abs(frame_pixel(v, img, scene.patch_box[p]) - rgb(pal.UNMATCHED)).max() <= 10
    box = scene.patch_box[p]
    v.click(*window_xy(v, (0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]))))
    notes = [w.label for w in v.widgets() if w.kind == "note"]
    assert f"relu2 \u00b7 neuron {n}: unmatched" in notes
    assert "unmatched: no partner in B's conv2" in notes
    assert not any(w.kind == "image" and w.label.startswith("B:") for w in v.widgets())


def test_clicking_a_patch_shows_its_partner_in_b_in_the_panel(loaded, make_viewer):
    d, a, b = loaded
    scene, _ = diff_scene(loaded)
    fc1 = d.layer("fc1")
    col = list(scene.column_names).index("fc1")
    ps = np.flatnonzero((scene.rect_column[scene.patch_rect] == col))
    p = int(next(i for i in ps if fc1.partner[scene.patch_neuron[i]] >= 0))
    n = int(scene.patch_neuron[p])
    v = make_viewer(scene, size=SIZE)
    v.zoom_to_column(col, animate=False)
    before = v.render()
    box = scene.patch_box[p]
    hit = v.click(*window_xy(v, (0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]))))
    assert hit == ("patch", p) and v.state.detail == ("diff", "relu3", n)
    assert v.state.cluster_facet == {} and v.state.facet == "features"   # the click opened the card only
    partner, r = int(fc1.partner[n]), float(fc1.correlation[n])
    notes = [w.label for w in v.widgets() if w.kind == "note"]
    assert f"relu3 \u00b7 neuron {n}: {fc1.status[n]}" in notes
    assert f"partner in B: relu3 \u00b7 neuron {partner} (matched on fc1)" in notes
    assert f"correlation r = {r:.3f}" in notes
    images = [w for w in v.widgets() if w.kind == "image"]
    assert {w.label for w in images} == {f"A: relu3 \u00b7 neuron {n}", f"B: relu3 \u00b7 neuron {partner}"}
    # the B pictures are B's learned-feature patches of the partner, drawn over the panel
    card = v.detail()
    b_row = dict(card.image_rows)[f"B: relu3 \u00b7 neuron {partner}"]
    want = np.asarray(b.features["relu3"].patches[partner, :len(b_row)])
    u0, v0, u1, v1 = scene.detail_uv[b_row[0]]
    H, W = scene.detail_atlas.shape[:2]
    got = scene.detail_atlas[int(round(v0 * H)):int(round(v1 * H)), int(round(u0 * W)):int(round(u1 * W)), 0]
    assert np.array_equal(got, want[0][..., 0])
    img = v.render()
    w = next(w for w in images if w.label.startswith("B:"))
    x0, y0, x1, y1 = (int(round(c)) for c in w.box)
    H = v.size[1]
    region, old = img[H - y1:H - y0, x0:x1, :3].astype(int), before[H - y1:H - y0, x0:x1, :3].astype(int)
    assert region.std() > 20 and np.abs(region - old).mean() > 20, "a picture where the panel was plain"
    # the clicked neuron is ringed; a second click closes the card
    v.click(*window_xy(v, (0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]))))
    assert v.state.detail == () and not any(w.kind == "image" for w in v.widgets())


def test_the_card_stays_open_over_an_edit_and_closes_with_its_button(loaded, make_viewer):
    d, a, b = loaded
    scene, s = diff_scene(loaded)
    marks = DiffMarks(d, a, b)
    build = s._build
    s._build = lambda agg: marks.attach(build(agg), agg)
    v = make_viewer(scene, on_edit=s.on_edit, size=SIZE)
    p = int(np.flatnonzero(scene.patch_detail >= 0)[0])
    v.show_detail(p)
    key = v.state.detail
    col = int(scene.rect_column[scene.patch_rect[p]])
    other = np.flatnonzero((scene.rect_kind == RECT_CLUSTER) & (scene.rect_column == col)
                           & (np.arange(scene.n_rects) != scene.patch_rect[p]))
    q = int(np.flatnonzero((scene.patch_rect != scene.patch_rect[p]) & (scene.rect_column[scene.patch_rect] == col))[0]) \
        if len(other) else p
    v.move_neuron(q, int(other[0]) if len(other) else int(scene.patch_rect[p]))
    assert v.scene is not scene and v.state.detail == key and v.detail() is not None
    close = next(w for w in v.widgets() if w.action == ("detail_close",))
    v.click(0.5 * (close.box[0] + close.box[2]), v.size[1] - 0.5 * (close.box[1] + close.box[3]))
    assert v.state.detail == ()


def test_split_and_merge_on_a_hand_made_case():
    #            A's neurons:  0  1  2  3  4  5  6  7
    labels_a = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    partner = np.array([0, 1, 2, 3, 4, 5, -1, 7])     # neuron 6 unmatched
    corr = np.array([.9, .9, .9, .9, .9, .9, np.nan, np.nan])   # 7: matched to a constant neuron
    labels_b = np.array([0, 0, 1, 1, 1, 2, 0, 0])
    f = cluster_flow(labels_a, partner, labels_b, corr)
    # A0 -> B0, B0, B1: split; A1 -> B1, B1; A2 -> B2 (6 unmatched, 7 not counted)
    assert f.counts.tolist() == [[2, 1, 0], [0, 2, 0], [0, 0, 1]]
    assert f.split == {0: (0, 1)}
    assert f.merged == {1: (0, 1)}       # B1 takes A0's neuron 2 and A1's 3, 4
    assert f.merged_into(0) == (1,) and f.merged_into(1) == (1,) and f.merged_into(2) == ()
    # without correlations, neuron 7 counts: A2 now splits into B2 and B0, and B0 merges A0 and A2
    g = cluster_flow(labels_a, partner, labels_b)
    assert g.split == {0: (0, 1), 2: (0, 2)} and g.merged == {0: (0, 2), 1: (0, 1)}
    # only the stable pairs count: with neuron 2 drifted, A0 goes whole into B0 and B1 holds A1 alone
    stable = np.array([1, 1, 0, 1, 1, 1, 0, 1], bool)
    h = cluster_flow(labels_a, partner, labels_b, corr, counted=stable)
    assert h.counts.tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 1]] and h.split == {} and h.merged == {}
    # a part under min_share of the cluster is a stray neuron, no split: A0 sends 1 of 3 to B1
    assert cluster_flow(labels_a, partner, labels_b, corr, min_share=0.4).split == {}
    assert cluster_flow(labels_a, partner, labels_b, corr, min_share=0.3).split == {0: (0, 1)}
    with pytest.raises(ValueError, match="partner names neuron 9"):
        cluster_flow(labels_a, np.r_[partner[:-1], 9], labels_b)


def test_split_or_merged_clusters_are_outlined_and_badged(loaded, make_viewer):
    # the file's own diff: conv1 and conv2 keep their clusters in B, and fc1/fc2 have no stable neuron whose
    # partner could say where a cluster went (drifted partners marked nearly every cluster before)
    plain, _ = diff_scene(loaded)
    assert not (plain.rect_mark[:, 3] > 0).any() and not any(plain.rect_badge)
    # conv2's neurons as stable partners of B's neurons in a random order: A's clusters scatter over B's
    d = loaded[0]
    perm = np.random.default_rng(0).permutation(50)
    layers = tuple(dataclasses.replace(l, partner=perm, status=np.full(50, "stable", "<U9"), correlation=np.full(50, 0.99))
                   if l.a == "conv2" else l for l in d.layers)
    scene, s = diff_scene(loaded, dataclasses.replace(d, layers=layers))
    marked = np.flatnonzero(scene.rect_mark[:, 3] > 0)
    assert len(marked) and "split" in " ".join(scene.rect_badge[r] for r in marked)
    assert set(scene.rect_column[marked].tolist()) == {1}  # conv2's column only
    for r in marked:
        assert np.allclose(scene.rect_mark[r], pal.SPLIT_MERGE) and scene.rect_kind[r] == RECT_CLUSTER
        assert scene.rect_badge[r] in ("split", "merged", "split + merged")
        assert all(word in scene.rect_note[r] for word in scene.rect_badge[r].split(" + "))
    assert not any(scene.rect_badge[r] for r in np.flatnonzero(scene.rect_mark[:, 3] == 0))
    # the badges agree with cluster_flow of A's labels, the partners and B's labels as the note names them
    r = int(max(marked, key=lambda i: scene.rect_box[i, 3] - scene.rect_box[i, 1]))
    v = make_viewer(scene, size=SIZE)
    v.zoom_to_column(int(scene.rect_column[r]), animate=False)
    img = v.render()
    (x0, y0), (x1, y1) = v.camera.to_pixel(scene.rect_box[r, :2]), v.camera.to_pixel(scene.rect_box[r, 2:])
    ym = v.size[1] - 1 - int(0.5 * (y0 + y1))
    edge = img[ym, int(round(x0)) - 1:int(round(x0)) + int(MARK_WIDTH), :3].astype(float)
    assert (np.abs(edge - rgb(pal.SPLIT_MERGE)).max(1) <= 12).any(), "the violet outline on the left edge"
    tips = v.hover(*window_xy(v, (scene.rect_box[r, 0] + 2, 0.5 * (scene.rect_box[r, 1] + scene.rect_box[r, 3]))))
    assert scene.rect_note[r] in tips
    titles = [t for t, _ in scene.legend_extra]
    assert titles == ["DIFF WITH B (PATCH FRAME)", "CLUSTERS IN B"]
    drawn = {text for _, text, _ in v.renderer.overlay.legend}
    assert {"unmatched: no partner", "split / merged: outline and badge"} <= drawn


def test_the_marks_survive_a_saved_scene(loaded, tmp_path):
    scene, _ = diff_scene(loaded)
    save_scene(scene, tmp_path / "s.npz")
    back = load_scene(tmp_path / "s.npz")
    assert back.details == scene.details and back.legend_extra == scene.legend_extra
    assert back.rect_badge == scene.rect_badge and np.array_equal(back.patch_tint, scene.patch_tint)
    assert np.array_equal(back.detail_atlas, scene.detail_atlas)


def test_screenshot_of_a_diff_file_headless(diff_file, tmp_path, capsys):
    from vispy.io import read_png

    out = tmp_path / "d.png"
    assert main_gl([str(diff_file), "--screenshot", str(out), "--size", "1000x700"]) == 0
    img = read_png(str(out))[..., :3].astype(float)
    for c in (pal.STABLE, pal.DRIFTED, pal.SPLIT_MERGE):
        assert (np.abs(img - rgb(c)).max(-1) <= 6).sum() > 30, c


def test_edits_and_undo_keep_the_diff_on_the_scene(diff_file, make_viewer):
    """Every Scene the diff view's session shows carries the diff's findings and chart series, also after an
    edit computed off the window's thread and its undo (the diagnosis used to be re-attached over them)."""
    import time

    from cnnvis.app.diff_view import scene_for

    scene, request = scene_for(diff_file)[:2]
    v = make_viewer(scene, on_edit=request, size=SIZE)

    def settled():
        end = time.monotonic() + 120
        while v.transient.poll is not None:
            assert time.monotonic() < end, "the edit never finished"
            v.poll()
            time.sleep(0.01)
        return v.scene

    def diff_parts(s):
        return [f.number for f in s.findings if f.kind == "diff"], s.chart_names[:2]

    first = diff_parts(scene)
    assert first[0] and first[1] == ("CKA with B", "stable neurons")
    clusters = np.flatnonzero(scene.rect_kind == RECT_CLUSTER)
    col = next(c for c in np.unique(scene.rect_column[clusters]) if (scene.rect_column[clusters] == c).sum() > 1)
    src, dst = clusters[scene.rect_column[clusters] == col][:2]
    v.move_neuron(int(np.flatnonzero(scene.patch_rect == src)[0]), int(dst))
    moved = settled()
    assert moved is not scene and diff_parts(moved) == first
    v.undo()
    assert diff_parts(settled()) == first

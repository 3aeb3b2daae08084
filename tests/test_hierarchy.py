"""The first view and the expansions follow the model's own module hierarchy (cnnvis.aggregate._hierarchy), on
nets shaped like torchvision's ResNet-50, DenseNet-121 and EfficientNet-B0 (tests/resnets.py, tests/zoonets.py).

The reference for "which column holds a layer" is the model's own `named_modules()` (a layer sits in the
column of the module whose qualified name prefixes its own), independent of the traced graph's containers.
"""
import numpy as np
import pytest
import resnets
import torch
import zoonets

from cnnvis.aggregate import aggregate, collapse_layer_clusters, expand_layer_cluster
from cnnvis.analysis._run import analyze
from cnnvis.data import Dataset
from cnnvis.errors import CnnvisError
from cnnvis.layout import build_scene

NETS = {"resnet50": lambda: resnets.ResNet(width=4, num_classes=10),
        "densenet121": lambda: zoonets.densenet121(growth=2, init=4),
        "efficientnet_b0": lambda: zoonets.efficientnet_b0(width=1)}
FIRST_VIEW = {
    "resnet50": ["conv1 \u00b7 conv+bn+relu+pool", "layer1 \u00b7 3 blocks", "layer2 \u00b7 4 blocks",
                 "layer3 \u00b7 6 blocks", "layer4 \u00b7 3 blocks", "fc \u00b7 fc"],
    "densenet121": ["conv0 \u00b7 conv+bn+relu+pool+cat", "denseblock1 \u00b7 6\u00d7 denselayer",
                    "transition1 \u00b7 bn+relu+conv+pool+cat", "denseblock2 \u00b7 12\u00d7 denselayer",
                    "transition2 \u00b7 bn+relu+conv+pool+cat", "denseblock3 \u00b7 24\u00d7 denselayer",
                    "transition3 \u00b7 bn+relu+conv+pool+cat", "denseblock4 \u00b7 16\u00d7 denselayer",
                    "classifier \u00b7 fc"],
    "efficientnet_b0": ["features.0 \u00b7 conv+bn+silu", "features.1 \u00b7 1 block", "features.2 \u00b7 2 blocks",
                        "features.3 \u00b7 2 blocks", "features.4 \u00b7 3 blocks", "features.5 \u00b7 3 blocks",
                        "features.6 \u00b7 4 blocks", "features.7 \u00b7 1 block",
                        "features.8 \u00b7 conv+bn+silu+pool+flat", "classifier \u00b7 drop+fc"],
}


@pytest.fixture(scope="module", params=list(NETS))
def net(request):
    torch.manual_seed(0)
    model = NETS[request.param]().eval()
    rng = np.random.default_rng(0)
    data = Dataset(rng.random((4, 3, 16, 16), dtype=np.float32), np.arange(4, dtype=np.int64), tuple("abcdefghij"),
                   "random")
    analysis = analyze(model, data, batch_size=4, top_k=1, show_progress=False, max_patch=4)
    return request.param, model, analysis, aggregate(analysis)


def test_first_view_is_the_models_stages_named_in_words(net):
    name, model, a, agg = net
    names = [lc.name for lc in agg.layer_clusters]
    assert names == FIRST_VIEW[name]
    assert len(names) <= 12 and len(set(names)) == len(names)
    # every layer once, in order
    assert [n for lc in agg.layer_clusters for n in lc.layers] == [l.name for l in a.graph.layers
                                                                   if l.kind != "input"]
    # a column named after a module holds every layer of that module (the model's own named_modules)
    for lc in agg.layer_clusters:
        module = lc.name.split(" ")[0]
        full = next((n for n, _ in model.named_modules() if n == module or n.endswith("." + module)), None)
        if full is None or not len(list(dict(model.named_modules())[full].children())):
            continue
        inside = {l.name for l in a.graph.layers if l.module.startswith(full + ".")}
        assert inside and inside <= set(lc.layers), (lc.name, sorted(inside - set(lc.layers))[:3])


def test_header_boxes_are_disjoint_and_inside_their_column_pitch(net):
    _, _, a, agg = net
    sc = build_scene(a, agg)
    boxes = sc.column_header_box
    assert boxes.shape == (len(sc.column_names), 4)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a0, b0 = boxes[i], boxes[j]
            apart = a0[2] <= b0[0] or b0[2] <= a0[0] or a0[3] <= b0[1] or b0[3] <= a0[1]
            assert apart, (sc.column_names[i], sc.column_names[j])
    # the drawn name labels are the header texts (shortened to fit where needed)
    assert all(t in sc.label_text for t in (n for n in sc.column_names if len(n) < 40))


def _expand_all(a, agg, column):
    new = expand_layer_cluster(a, agg, column)
    lc = agg.layer_clusters[agg.column(column)]
    opened = [c for c in new.layer_clusters if c.expanded_from is not None and c.expanded_from.name == lc.name]
    return new, opened


def test_a_stage_opens_into_blocks_a_block_into_weighted_layers(net):
    name, model, a, agg = net
    g = a.graph
    big = max(range(len(agg.layer_clusters)), key=lambda c: len(agg.layer_clusters[c].layers))
    new, blocks = _expand_all(a, agg, big)
    assert 2 <= len(blocks) <= 12 and len({c.name for c in new.layer_clusters}) == len(new.layer_clusters)
    # open further until single weighted layers: every column holds a weighted layer, a join is never a column
    cur, depth = new, 0
    while True:
        openable = [c for c, lc in enumerate(cur.layer_clusters) if lc.children]
        if not openable or depth > 4:
            break
        cur = expand_layer_cluster(a, cur, openable[0])
        depth += 1
    for lc in cur.layer_clusters:
        kinds = [g.layer(n).kind for n in lc.layers]
        assert "conv" in kinds or "linear" in kinds, lc.name
        assert g.layer(lc.representative).kind not in ("concat",) or len(lc.children), lc.name
    leaf = next(lc for lc in cur.layer_clusters if not lc.children and lc.expanded_from is not None)
    with pytest.raises(CnnvisError, match="nothing to expand"):
        expand_layer_cluster(a, cur, leaf.name)
    # collapse restores the column and its neighbours
    back = collapse_layer_clusters(a, new, blocks[0].name)
    assert [c.name for c in back.layer_clusters] == [c.name for c in agg.layer_clusters]


@pytest.mark.parametrize("net", ["densenet121"], indirect=True)
def test_densenet_block_of_24_opens_into_12_pairs_then_layers(net):
    name, _, a, agg = net
    col = [lc.name for lc in agg.layer_clusters].index("denseblock3 \u00b7 24\u00d7 denselayer")
    new, pairs = _expand_all(a, agg, col)
    assert len(pairs) == 12 and pairs[0].name == "denseblock3.denselayer1\u20132 \u00b7 2\u00d7 denselayer"
    new2, layers = _expand_all(a, new, pairs[0].name)
    assert [c.name for c in layers] == ["denseblock3.denselayer1 \u00b7 2 layers", "denseblock3.denselayer2 \u00b7 2 layers"]
    # a dense layer: its bottleneck conv (with the norm and ReLU before it) and its 3x3 conv with the concat
    _, convs = _expand_all(a, new2, layers[0].name)
    assert [g.split(".")[-1] for g in (convs[0].representative, convs[1].representative)] == ["relu2", "conv2"]


def test_a_narrow_header_keeps_the_module_name_not_the_tail_of_the_contents():
    from cnnvis.gl._names import abbreviate
    from cnnvis.gl._text import text_width

    name = "denseblock2 \u00b7 12\u00d7 denselayer"
    assert abbreviate(name, text_width(name, 12) + 1, 12) == name
    assert abbreviate(name, text_width("denseblock2", 12) + 1, 12) == "denseblock2"
    short = "\u2026denselayer1\u20132"   # the head shortened as any path is: its last component
    assert abbreviate("denseblock3.denselayer1\u20132 \u00b7 2\u00d7 denselayer", text_width(short, 12) + 1, 12) == short

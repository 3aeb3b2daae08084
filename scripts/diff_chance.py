"""How often a re-initialised channel passes for unchanged: raw correlation vs the chance-corrected status.

    python3 scripts/diff_chance.py [--draws 300] [--epochs 2]

Trains BaseCNN x0.125 on 600 digits (as tests/test_diff.py's fixture), then per draw re-initialises five
random channels of conv3_1 (He init) and computes the exact correlation of every channel of the trained
layer with every channel of the edited one on the test images; matching and status as cnnvis.diff does
(cnnvis.diff.match_neurons). Prints, over the draws, how often the five are not exactly the flagged ones,
with the raw r >= threshold rule and with the chance-corrected one.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from cnnvis.data import BaseCNN, load_digits
from cnnvis.data._train import train
from cnnvis.diff import STABLE_THRESHOLD, match_neurons


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    train_set, test_set = load_digits().split(0.2, seed=0)
    torch.manual_seed(0)
    m = BaseCNN(n_classes=10, in_channels=1, image_size=28, width=0.125)
    with tempfile.TemporaryDirectory() as tmp:
        train(m, train_set.subset(np.arange(600)), test_set, Path(tmp), epochs=args.epochs, seed=0,
              show_progress=False)
    m.eval()
    conv = m.features.conv3_1
    seen = {}
    hook = conv.register_forward_hook(lambda mod, i, o: seen.update(x=i[0], y=o))
    with torch.no_grad():
        m(torch.from_numpy(np.asarray(test_set.get(np.arange(len(test_set))), np.float32)))
    hook.remove()
    rows = lambda t: t.transpose(0, 1).reshape(t.shape[1], -1).double().numpy()  # noqa: E731
    ya, c = rows(seen["y"]), conv.out_channels
    raw_wrong = corrected_wrong = 0
    for s in range(args.draws):
        five = np.sort(np.random.default_rng(s).choice(c, 5, replace=False))
        torch.manual_seed(1000 + s)
        fresh = torch.empty_like(conv.weight)
        torch.nn.init.kaiming_normal_(fresh, mode="fan_out", nonlinearity="relu")
        w, b = conv.weight.detach().clone(), conv.bias.detach().clone()
        w[five], b[five] = fresh[five], 0
        with torch.no_grad():
            yb = rows(torch.nn.functional.conv2d(seen["x"], w, b, padding=conv.padding))
        corr = np.corrcoef(np.vstack([ya, yb]))[:c, c:]
        match = match_neurons(corr, STABLE_THRESHOLD)
        expect = np.ones(c, bool)
        expect[five] = False
        raw_wrong += ((match.correlation >= STABLE_THRESHOLD) != expect).any()
        corrected_wrong += ((match.status == "stable") != expect).any()
    print(f"{args.draws} draws of five re-initialised channels of conv3_1 ({c} channels), threshold "
          f"{STABLE_THRESHOLD}: flagged set wrong with raw r: {raw_wrong} ({raw_wrong / args.draws:.0%}); "
          f"with the chance-corrected status: {corrected_wrong} ({corrected_wrong / args.draws:.0%})")


if __name__ == "__main__":
    main()

"""Two training snapshots with a planted change, for tests of `--snapshots` and the history they give."""
from __future__ import annotations

from pathlib import Path

__all__ = ["lenet_snapshots"]


def lenet_snapshots(folder, *, n_classes: int, image_size: int, seed: int = 0):
    """lenet-x0.25 (seeded), saved as FOLDER/s0.pt, then with conv1's weights scaled by 1.1 saved as
    FOLDER/s1.pt (a known relative change of 0.1 in one layer, none elsewhere). Returns the model (= s1)."""
    import torch

    from cnnvis.data import build_model

    folder = Path(folder)
    torch.manual_seed(seed)
    model = build_model("lenet-x0.25", n_classes=n_classes, in_channels=1, image_size=image_size)
    torch.save(model.state_dict(), folder / "s0.pt")
    with torch.no_grad():
        model.conv1.weight.mul_(1.1)
    torch.save(model.state_dict(), folder / "s1.pt")
    return model

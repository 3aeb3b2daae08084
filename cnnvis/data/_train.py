"""Training with snapshots (the input of the snapshot metrics), and the cached demo model."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnvis._atomic import atomic_write  # runs sharing the cache never see half a file
from cnnvis.data._datasets import Dataset
from cnnvis.data._models import build_model
from cnnvis.errors import DataError
from cnnvis.progress import progress

__all__ = ["TrainResult", "train", "demo_model", "cache_dir"]


@dataclass(frozen=True)
class TrainResult:
    """snapshots: state-dict files (oldest first, the last is the trained model); test_accuracy per epoch."""

    snapshots: tuple[Path, ...]
    test_accuracy: tuple[float, ...]
    train_loss: tuple[float, ...]


def train(model: nn.Module, train_set: Dataset, test_set: Dataset, out_dir: Path, *, epochs: int = 6,
          batch_size: int = 64, lr: float = 2e-3, seed: int = 0, show_progress: bool = True) -> TrainResult:
    """Adam on cross-entropy; saves a state dict before training and after every epoch (snap_000.pt ...)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    x, y = torch.from_numpy(train_set.images), torch.from_numpy(train_set.labels)
    snaps = [_save(model, out_dir / "snap_000.pt")]
    accs, losses = [], []
    n_batches = (len(train_set) + batch_size - 1) // batch_size
    bar = progress(total=epochs * len(train_set), desc="training", unit="img", enabled=show_progress)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_set)))
        total = 0.0
        bar.set_postfix(epoch=f"{epoch}/{epochs}", **({"loss": f"{losses[-1]:.3f}", "test_acc": f"{accs[-1]:.3f}"}
                                                      if losses else {}))
        for i in range(n_batches):
            idx = order[i * batch_size:(i + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            bar.update(len(idx))
        sched.step()
        losses.append(total / len(train_set))
        accs.append(evaluate(model, test_set))
        snaps.append(_save(model, out_dir / f"snap_{epoch:03d}.pt"))
    bar.close()
    model.eval()
    return TrainResult(tuple(snaps), tuple(accs), tuple(losses))


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        xb = torch.from_numpy(data.images[i:i + batch_size])
        correct += int((model(xb).argmax(1).numpy() == data.labels[i:i + batch_size]).sum())
    return correct / max(len(data), 1)


def _save(model: nn.Module, path: Path) -> Path:
    atomic_write(path, lambda fh: torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, fh))
    return path


def _cached(folder: Path) -> TrainResult | None:
    """The cached training result in `folder`, or None where it is missing or damaged."""
    try:
        meta = json.loads((folder / "result.json").read_text())
        snaps = tuple(folder / str(s) for s in meta["snapshots"])
        result = TrainResult(snaps, tuple(meta["test_accuracy"]), tuple(meta["train_loss"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if snaps and all(s.is_file() for s in snaps) else None


def cache_dir() -> Path:
    root = os.environ.get("CNNVIS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "cnnvis")
    return Path(root)


def demo_model(name: str, data: Dataset, *, epochs: int = 6, seed: int = 0, show_progress: bool = True):
    """Train (or reuse from the cache) a demo model on `data`; returns (model, TrainResult, test split)."""
    if epochs < 1:
        raise DataError(f"epochs must be >= 1, got {epochs}")
    train_set, test_set = data.split(0.2, seed=seed)
    shape = data.images.shape
    model = build_model(name, n_classes=data.n_classes, in_channels=shape[1], image_size=shape[2])
    key = json.dumps(dict(model=name, data=data.name, n=len(data), shape=list(shape), epochs=epochs,
                          seed=seed, torch=torch.__version__.split("+")[0], v=1), sort_keys=True)
    folder = cache_dir() / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    info = folder / "result.json"
    cached = _cached(folder)
    if cached is not None:
        try:
            model.load_state_dict(torch.load(cached.snapshots[-1], weights_only=True))
            model.eval()
            return model, cached, test_set
        except Exception:  # a damaged cache entry is trained again, not an error  # noqa: BLE001
            pass
    torch.manual_seed(seed)
    model = build_model(name, n_classes=data.n_classes, in_channels=shape[1], image_size=shape[2])
    result = train(model, train_set, test_set, folder, epochs=epochs, seed=seed, show_progress=show_progress)
    text = json.dumps(dict(key=json.loads(key), snapshots=[s.name for s in result.snapshots],
                           test_accuracy=result.test_accuracy, train_loss=result.train_loss))
    atomic_write(info, lambda fh: fh.write(text.encode()))
    return model, result, test_set


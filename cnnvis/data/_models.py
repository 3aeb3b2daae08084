"""The case-study models of the CNNVis paper: LeNet, DeepLeNet, LeNet x w and BaseCNN (VGG-style).

Each takes `leaky`: 0 gives ReLUs (the paper's models); a positive slope replaces every ReLU by a leaky ReLU
of that negative slope (Maas et al. 2013; the paper's fix for BaseCNN's dead neurons), same module names.
"""
from __future__ import annotations

from collections import OrderedDict

import torch.nn as nn

from cnnvis.errors import ModelError

__all__ = ["LeNet", "DeepLeNet", "BaseCNN", "DEMO_MODELS", "build_model"]


def _width(n: int, w: float) -> int:
    return max(1, int(round(n * w)))


def _act(leaky: float) -> nn.Module:
    if leaky < 0:
        raise ModelError(f"the leaky ReLU slope must be >= 0, got {leaky}")
    return nn.LeakyReLU(leaky) if leaky > 0 else nn.ReLU()


class LeNet(nn.Module):
    """Caffe's LeNet (conv 20, conv 50, fc 500, fc K) with ReLUs; `width` scales the conv channels
    (LeNet x w of the paper's case study)."""

    def __init__(self, n_classes=10, in_channels=1, image_size=28, width=1.0, leaky=0.0):
        super().__init__()
        c1, c2 = _width(20, width), _width(50, width)
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.relu1 = _act(leaky)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.relu2 = _act(leaky)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        s = image_size // 4
        self.fc1 = nn.Linear(c2 * s * s, 500)
        self.relu3 = _act(leaky)
        self.fc2 = nn.Linear(500, n_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


class DeepLeNet(nn.Module):
    """LeNet with each conv replaced by a stack of 4 conv + ReLU (the paper's DeepLeNet)."""

    def __init__(self, n_classes=10, in_channels=1, image_size=28, width=1.0, leaky=0.0):
        super().__init__()
        c1, c2 = _width(20, width), _width(50, width)
        self.group1 = _stack(in_channels, c1, 4, leaky=leaky)
        self.pool1 = nn.MaxPool2d(2)
        self.group2 = _stack(c1, c2, 4, leaky=leaky)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        s = image_size // 4
        self.fc1 = nn.Linear(c2 * s * s, 500)
        self.relu = _act(leaky)
        self.fc2 = nn.Linear(500, n_classes)

    def forward(self, x):
        x = self.pool2(self.group2(self.pool1(self.group1(x))))
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


def _stack(cin, cout, n, prefix="", kernel=5, leaky=0.0):
    layers = OrderedDict()
    for i in range(1, n + 1):
        layers[f"conv{prefix}{i}"] = nn.Conv2d(cin if i == 1 else cout, cout, kernel, padding=kernel // 2)
        layers[f"relu{prefix}{i}"] = _act(leaky)
    return nn.Sequential(layers)


class BaseCNN(nn.Module):
    """The paper's BaseCNN: 4 groups of 2, 2, 3, 3 conv layers (3x3) with 96, 128, 256, 512 channels, a
    max-pool after each group, 2 fully connected layers. `width` scales every channel count for CPU use."""

    GROUPS = ((2, 96), (2, 128), (3, 256), (3, 512))

    def __init__(self, n_classes=10, in_channels=3, image_size=32, width=1.0, leaky=0.0):
        super().__init__()
        feats, cin, s = OrderedDict(), in_channels, image_size
        for g, (n, c) in enumerate(self.GROUPS, start=1):
            c = _width(c, width)
            for i in range(1, n + 1):
                feats[f"conv{g}_{i}"] = nn.Conv2d(cin, c, 3, padding=1)
                feats[f"relu{g}_{i}"] = _act(leaky)
                cin = c
            feats[f"pool{g}"] = nn.MaxPool2d(2)
            s //= 2
        if s < 1:
            raise ModelError(f"BaseCNN needs images of at least 16 pixels (4 poolings), got {image_size}")
        self.features = nn.Sequential(feats)
        hidden = _width(512, width)
        self.classifier = nn.Sequential(OrderedDict(
            flatten=nn.Flatten(), fc1=nn.Linear(cin * s * s, hidden), relu=_act(leaky),
            dropout=nn.Dropout(0.3), fc2=nn.Linear(hidden, n_classes)))
        # He initialisation (as in VGG/ResNet training): with PyTorch's default init a 10-conv ReLU stack
        # without batch norm does not start learning on small data.
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=leaky, mode="fan_out",
                                        nonlinearity="leaky_relu" if leaky > 0 else "relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.features(x))


_RELU_MODELS = {
    "lenet": (LeNet, 1.0), "lenet-x0.25": (LeNet, 0.25), "lenet-x0.5": (LeNet, 0.5), "lenet-x2": (LeNet, 2.0),
    "lenet-x4": (LeNet, 4.0), "deeplenet": (DeepLeNet, 1.0), "basecnn": (BaseCNN, 1.0),
    "basecnn-x0.25": (BaseCNN, 0.25),
}
LEAKY_SLOPE = 0.1  # the paper's Table 3: among the best slopes for BaseCNN
# name -> (class, width, leaky slope); "<name>-leaky0.1" is <name> with leaky ReLUs.
DEMO_MODELS = {**{k: (c, w, 0.0) for k, (c, w) in _RELU_MODELS.items()},
               **{f"{k}-leaky{LEAKY_SLOPE:g}": (c, w, LEAKY_SLOPE) for k, (c, w) in _RELU_MODELS.items()}}


def build_model(name: str, *, n_classes: int, in_channels: int, image_size: int) -> nn.Module:
    try:
        cls, width, leaky = DEMO_MODELS[name]
    except KeyError:
        raise ModelError(f"unknown demo model {name!r} (choose from {', '.join(DEMO_MODELS)})") from None
    return cls(n_classes=n_classes, in_channels=in_channels, image_size=image_size, width=width, leaky=leaky)

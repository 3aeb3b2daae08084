"""Test nets shaped like torchvision's DenseNet and EfficientNet (module names, nesting, the joins), small
enough for the main suite and built without torchvision (tests/resnets.py does the same for ResNet).

`densenet121(growth)`: the block sizes (6, 12, 24, 16) of DenseNet-121, each dense layer's concatenation
inside its forward as torchvision's `_DenseLayer` does it, `torch.cat(features, 1)` closing each block, a
functional ReLU, pool and flatten before `classifier`. `efficientnet_b0(width)`: `features.0`..`features.8`
as in EfficientNet-B0 (stages of 1, 2, 2, 3, 3, 4, 1 MBConv blocks, each a `block` Sequential of an expand
conv, a depthwise conv, a squeeze-and-excitation module and a projection, a stochastic-depth module and the
residual add where the block keeps its shape), `avgpool` and `classifier` (dropout, linear).
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


class _DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int, bn_size: int = 2):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, n: int, c_in: int, growth: int):
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(c_in + i * growth, growth))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(OrderedDict(norm=nn.BatchNorm2d(c_in), relu=nn.ReLU(inplace=True),
                                     conv=nn.Conv2d(c_in, c_out, 1, bias=False), pool=nn.AvgPool2d(2, 2)))


class DenseNet(nn.Module):
    def __init__(self, blocks=(6, 12, 24, 16), growth: int = 4, init: int = 8, num_classes: int = 10,
                 in_channels: int = 3):
        super().__init__()
        parts = OrderedDict(conv0=nn.Conv2d(in_channels, init, 3, padding=1, bias=False),
                            norm0=nn.BatchNorm2d(init), relu0=nn.ReLU(inplace=True),
                            pool0=nn.MaxPool2d(2, 2))
        c = init
        for i, n in enumerate(blocks):
            parts[f"denseblock{i + 1}"] = _DenseBlock(n, c, growth)
            c += n * growth
            if i != len(blocks) - 1:
                parts[f"transition{i + 1}"] = _Transition(c, c // 2)
                c //= 2
        parts["norm5"] = nn.BatchNorm2d(c)
        self.features = nn.Sequential(parts)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        out = F.relu(self.features(x), inplace=True)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1))


def densenet121(growth: int = 4, **kw) -> DenseNet:
    return DenseNet((6, 12, 24, 16), growth=growth, **kw)


def _cna(c_in, c_out, k=1, stride=1, groups=1, act=True) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: children 0 (conv), 1 (batch norm), 2 (SiLU)."""
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, *([nn.SiLU(inplace=True)] if act else []))


class SqueezeExcitation(nn.Module):
    def __init__(self, c: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class StochasticDepth(nn.Module):
    def forward(self, x):   # eval: the identity, as torchvision's
        return x


class MBConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, expand: int, k: int, stride: int):
        super().__init__()
        mid = c_in * expand
        layers = [_cna(c_in, mid)] if expand != 1 else []
        layers += [_cna(mid, mid, k, stride, groups=mid), SqueezeExcitation(mid, max(1, c_in // 4)),
                   _cna(mid, c_out, act=False)]
        self.block = nn.Sequential(*layers)
        self.use_res = stride == 1 and c_in == c_out
        self.stochastic_depth = StochasticDepth()

    def forward(self, x):
        out = self.block(x)
        if self.use_res:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNet(nn.Module):
    # (expand ratio, kernel, stride, channels / width, repeats) of EfficientNet-B0's seven stages
    STAGES = ((1, 3, 1, 2, 1), (6, 3, 2, 3, 2), (6, 5, 2, 5, 2), (6, 3, 2, 10, 3), (6, 5, 1, 14, 3),
              (6, 5, 2, 24, 4), (6, 3, 1, 40, 1))

    def __init__(self, width: int = 2, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        c = 4 * width
        feats = [_cna(in_channels, c, 3, 2)]
        for e, k, s, ch, n in self.STAGES:
            out = ch * width
            feats.append(nn.Sequential(*[MBConv(c if i == 0 else out, out, e, k, s if i == 0 else 1)
                                         for i in range(n)]))
            c = out
        feats.append(_cna(c, 4 * c))
        self.features = nn.Sequential(*feats)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * c, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def efficientnet_b0(width: int = 2, **kw) -> EfficientNet:
    return EfficientNet(width, **kw)

"""Backbone registry and pretrained weights.

A backbone maps images (B, 3, H, W) to features (B, C, H/32, W/32) and exposes ``out_channels``.
ResNets are written here with torchvision's parameter names, so torchvision's ImageNet checkpoints
load into them unchanged; this keeps torchvision (and its CUDA-coupled wheels) out of the
dependencies. Register a new backbone with ``@register_backbone("name")``.

ImageNet weights (:mod:`.weights`, a table that planning the workflow reads without torch) live in a cache folder (torch hub's ``$TORCH_HOME/hub/checkpoints`` unless told
otherwise), under the file name of their URL. :func:`fetch_weights` downloads them there on a
machine with network and checks their SHA-256; training reads them from there offline.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import torch
from torch import nn

from ..errors import InputError
from .weights import PRETRAINED, Weights, default_weights_dir, fetch_weights, weights_of  # noqa: F401  (the registry's weights)


BACKBONES: dict[str, Callable[[], nn.Module]] = {}


def register_backbone(name: str, weights: Weights | None = None):
    def wrap(factory: Callable[[], nn.Module]):
        BACKBONES[name] = factory
        if weights:
            PRETRAINED[name] = weights
        return factory

    return wrap


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def create_backbone(name: str, pretrained: bool | str = False, allow_random_init: bool = False) -> nn.Module:
    """Build a registered backbone; ``pretrained`` is False, True (ImageNet) or a weights file."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r} (registered: {', '.join(list_backbones())})")
    model = BACKBONES[name]()
    if pretrained:
        load_pretrained(model, name, pretrained, allow_random_init=allow_random_init)
    return model


def load_pretrained(model: nn.Module, name: str, source: bool | str, allow_random_init: bool = False) -> None:
    """Load weights from a file path, or (``source is True``) ImageNet's from the cache folder.

    A cache without the file is filled from the web when there is network. Without either, the
    run stops with an error naming the fix, unless ``allow_random_init``
    (``model.allow_random_init_fallback``): then it warns and keeps the random initialisation.
    """
    if isinstance(source, str):
        if not os.path.isfile(source):
            raise InputError(source, "backbone weights file not found (model.backbone_pretrained)")
        path = source
    else:
        weights = weights_of(name)
        folder = default_weights_dir()
        try:
            path = fetch_weights(weights, folder)
        except OSError as err:  # no network on this node (URLError is an OSError), or no write access
            problem = f"no verified ImageNet weights for {name} here and the download failed ({getattr(err, 'reason', err)})"
            if not allow_random_init:
                fix = f"run `python scripts/fetch_weights.py --dir {folder} {name}` (or `snakemake fetch_weights`) on a machine with network, or set model.backbone_pretrained to a weights file"
                raise InputError(folder / weights.file_name, f"{problem}; {fix}") from None
            warnings.warn(f"{folder / weights.file_name}: {problem}; using random initialisation (model.allow_random_init_fallback)")
            return
    from .. import checkpoints  # imports the models itself

    state = checkpoints.load(path, what="weights")
    state = state.get("state_dict", state)
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    if missing:
        raise InputError(path, f"weights for backbone {name} lack parameters: {missing[:5]}")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride here: ResNet v1.5
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _shortcut(inplanes: int, outplanes: int, stride: int) -> nn.Module | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))


class ResNet(nn.Module):
    """ResNet trunk without pooling and classifier: stride 32 features."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            stage = [block(inplanes, planes, stride)]
            inplanes = planes * block.expansion
            stage += [block(inplanes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.out_channels = inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@register_backbone("resnet18")
def resnet18() -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2])


@register_backbone("resnet34")
def resnet34() -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3])


@register_backbone("resnet50")
def resnet50() -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3])


@register_backbone("resnet101")
def resnet101() -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3])

"""Backbone registry.

A backbone maps images (B, 3, H, W) to features (B, C, H/32, W/32) and exposes ``out_channels``.
ResNets are written here with torchvision's parameter names, so torchvision's ImageNet checkpoints
load into them unchanged; this keeps torchvision (and its CUDA-coupled wheels) out of the
dependencies. Register a new backbone with ``@register_backbone("name")``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch
from torch import nn

BACKBONES: dict[str, Callable[[], nn.Module]] = {}
PRETRAINED_URLS: dict[str, str] = {}


def register_backbone(name: str, url: str | None = None):
    def wrap(factory: Callable[[], nn.Module]):
        BACKBONES[name] = factory
        if url:
            PRETRAINED_URLS[name] = url
        return factory

    return wrap


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def create_backbone(name: str, pretrained: bool | str = False) -> nn.Module:
    """Build a registered backbone; ``pretrained`` is False, True (ImageNet) or a weights file."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r} (registered: {', '.join(list_backbones())})")
    model = BACKBONES[name]()
    if pretrained:
        load_pretrained(model, name, pretrained)
    return model


def load_pretrained(model: nn.Module, name: str, source: bool | str) -> None:
    """Load weights from a file path, or (``source is True``) from the torch hub cache or the web.

    Offline, a missing download leaves the random initialisation in place and warns, so clusters
    whose compute nodes have no internet still run (pre-fill ``$TORCH_HOME`` or pass a file path).
    """
    from .. import checkpoints  # imports the models itself
    from ..errors import InputError

    if isinstance(source, str):
        if not os.path.isfile(source):
            raise InputError(source, "backbone weights file not found (model.backbone_pretrained)")
        state = checkpoints.load(source, what="weights")
        state = state.get("state_dict", state)
    else:
        url = PRETRAINED_URLS.get(name)
        if url is None:
            warnings.warn(f"no pretrained weights known for backbone {name!r}; using random initialisation")
            return
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        try:
            if not cached.is_file():
                cached.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(url, str(cached), progress=False)
        except Exception as err:  # no network on the node: any failure of the download ends here
            warnings.warn(f"could not load ImageNet weights for {name} ({err}); using random initialisation")
            return
        state = checkpoints.load(cached, what="weights")
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    if missing:
        raise ValueError(f"pretrained weights for {name} lack parameters: {missing[:5]}")


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


_TV = "https://download.pytorch.org/models/"


@register_backbone("resnet18", _TV + "resnet18-f37072fd.pth")
def resnet18() -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2])


@register_backbone("resnet34", _TV + "resnet34-b627a593.pth")
def resnet34() -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3])


@register_backbone("resnet50", _TV + "resnet50-11ad3fa6.pth")
def resnet50() -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3])


@register_backbone("resnet101", _TV + "resnet101-cd907fc2.pth")
def resnet101() -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3])

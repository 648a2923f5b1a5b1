"""ResNet trunks (18/34/50/101) without pooling or classifier: images -> stride-32 features.

Written here rather than taken from timm because a prediction job pays for every import before its
first frame: ``import timm`` imports torchvision, which imports torch's compiler (``torch._dynamo``),
about 2 s of a job's start on the H200 machine (docs/benchmarks.md, "Cold start"). The ResNets are the
default backbones, so a job predicting with one imports neither.

The network is timm's and torchvision's ResNet (v1.5: a Bottleneck strides in its 3x3 conv) with their
parameter names, so torchvision's ImageNet files and checkpoints trained with timm's ResNet load
unchanged. Its modules are also registered in the same order and initialised the same way as
timm's (``zero_init_last=False``), so a seed gives the same weights and the same random stream after them:
``tests/test_models.py`` compares the two.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet(nn.Module):
    """The trunk: ``conv1, bn1, maxpool, layer1..layer4``; ``out_channels`` features at stride 32."""

    stride = 32

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            stride = 1 if index == 0 else 2
            outplanes = planes * block.expansion
            downsample = None
            if stride != 1 or inplanes != outplanes:
                downsample = nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride, bias=False), nn.BatchNorm2d(outplanes))
            stage = [block(inplanes, planes, stride, downsample)]
            stage += [block(outplanes, planes, 1, None) for _ in range(depth - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
            inplanes = outplanes
        self.out_channels = inplanes
        # Each conv draws its init in the order the modules are registered (a block's downsample
        # last), as timm's; BatchNorm keeps its own init: weight 1, bias 0.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


DEPTHS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


def resnet(name: str) -> ResNet:
    block, depths = DEPTHS[name]
    return ResNet(block, depths)

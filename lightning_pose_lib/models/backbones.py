"""Backbone registry and pretrained weights.

A backbone maps images (B, 3, H, W) to features (B, C, H/s, W/s) and exposes ``out_channels`` and
``stride`` (s). The ResNets are written here (:mod:`.resnet`: a job predicting with one does not
import timm), the others come from timm; the registry names the ones whose features suit the heatmap
head and says where their pretrained weights come from: torchvision's ImageNet files for the ResNets
(as upstream Lightning Pose), timm's Hugging Face files for the others. Register a new backbone with
``register_backbone("name", Weights(...))(factory)``.

Pretrained weights (:mod:`.weights`, a table that planning the workflow reads without torch) live
in a cache folder (torch hub's ``$TORCH_HOME/hub/checkpoints`` unless told otherwise), under a file
name of their own. :func:`fetch_weights` downloads them there on a machine with network and checks
their SHA-256; training reads them from there offline.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import torch
from torch import nn

from ..errors import InputError
from .resnet import resnet
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
    """Load weights from a file path, or (``source is True``) the registered ones from the cache folder.

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
            problem = f"no verified pretrained weights for {name} here and the download failed ({getattr(err, 'reason', err)})"
            if not allow_random_init:
                fix = f"run `python scripts/fetch_weights.py --dir {folder} {name}` (or `snakemake fetch_weights`) on a machine with network, or set model.backbone_pretrained to a weights file"
                raise InputError(folder / weights.file_name, f"{problem}; {fix}") from None
            warnings.warn(f"{folder / weights.file_name}: {problem}; using random initialisation (model.allow_random_init_fallback)")
            return
    from .. import checkpoints  # imports the models itself

    state = checkpoints.load(path, what="weights")
    state = state.get("state_dict", state)
    # A classifier's own layers (fc., head., classifier.) have no place in the trunk: strict=False
    # drops them; everything the trunk has must be there.
    target = getattr(model, "net", model)
    missing, unexpected = target.load_state_dict(state, strict=False)
    if missing:
        raise InputError(path, f"weights for backbone {name} lack parameters: {missing[:5]}")


class ResNetBackbone(nn.Module):
    """A ResNet trunk (:mod:`.resnet`) under ``net.``, where timm's ResNet had it: checkpoints of
    either load."""

    def __init__(self, name: str):
        super().__init__()
        self.net = resnet(name)
        self.out_channels, self.stride = self.net.out_channels, self.net.stride
        self._register_load_state_dict_pre_hook(_older_key_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TimmBackbone(nn.Module):
    """A timm network without its classifier: images (B, 3, H, W) -> features (B, C, H/s, W/s).

    ``stride`` is s (32 for the convolutional networks, 16 for the ViT); ``out_channels`` is C.
    A ViT's patch tokens are laid out on their grid (class token dropped), at any input size.
    """

    def __init__(self, timm_name: str, **options):
        super().__init__()
        with warnings.catch_warnings():  # timm's import touches APIs torch has deprecated
            warnings.simplefilter("ignore", FutureWarning)
            import timm

        self.net = timm.create_model(timm_name, pretrained=False, num_classes=0, global_pool="", **options)
        self.out_channels = self.net.num_features
        self.stride = self.net.feature_info[-1]["reduction"]
        self.prefix_tokens = getattr(self.net, "num_prefix_tokens", 0)
        self._register_load_state_dict_pre_hook(_older_key_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # forward_head without pooling or classifier keeps the map and applies what some networks
        # put after their last stage (ConvNeXt's LayerNorm): every parameter gets a gradient.
        features = self.net.forward_head(self.net.forward_features(x), pre_logits=True)
        if features.ndim == 3:  # ViT: (B, prefix + h * w, C) tokens
            h, w = x.shape[-2] // self.stride, x.shape[-1] // self.stride
            features = features[:, self.prefix_tokens :].transpose(1, 2).reshape(x.shape[0], -1, h, w)
        return features


def _older_key_names(state_dict, prefix, *args):
    """Checkpoints written before the backbones came from timm name the ResNet's parameters
    without ``net.`` (``backbone.layer1...``); the ResNets have the same names below it."""
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "net.")]:
        state_dict[prefix + "net." + key[len(prefix):]] = state_dict.pop(key)


def _register_timm(name: str, timm_name: str, **options) -> None:
    register_backbone(name)(lambda: TimmBackbone(timm_name, **options))


# The ResNets are initialised as timm's with zero_init_last=False (the residual branches' last
# BatchNorm starts at 1, as in torchvision), which the accuracy figures in docs/benchmarks.md were
# measured with. Their weights and the others': .weights.PRETRAINED.
for _name in ("resnet18", "resnet34", "resnet50", "resnet101"):
    register_backbone(_name)(lambda name=_name: ResNetBackbone(name))
_register_timm("convnext_tiny", "convnext_tiny")
_register_timm("efficientnet_b0", "efficientnet_b0")
_register_timm("vits_dino", "vit_small_patch16_224", dynamic_img_size=True)  # stride 16, any input size

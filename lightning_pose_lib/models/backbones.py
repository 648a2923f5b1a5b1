"""Backbone registry and pretrained weights.

A backbone maps images (B, 3, H, W) to features (B, C, H/s, W/s) and exposes ``out_channels`` and
``stride`` (s). The networks come from timm; the registry names the ones whose features suit the
heatmap head and says where their pretrained weights come from: torchvision's ImageNet files for
the ResNets (as upstream Lightning Pose), timm's Hugging Face files for the others. Register a new
backbone with ``register_backbone("name", Weights(...))(factory)``.

Pretrained weights live in a cache folder (torch hub's ``$TORCH_HOME/hub/checkpoints`` unless told
otherwise), under a file name of their own. :func:`fetch_weights` downloads them there on a
machine with network and checks their SHA-256; training reads them from there offline.
"""

from __future__ import annotations

import os
import re
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import InputError
from ..io import atomic_path, file_sha256


@dataclass(frozen=True)
class Weights:
    """Where a backbone's pretrained weights come from, and the SHA-256 of the file.

    Without a pinned ``sha256`` (timm's Hugging Face files), a download is checked against the
    SHA-256 the server states for it (``X-Linked-Etag``), and the file's digest is printed.
    """

    url: str
    sha256: str | None = None
    file_name: str = ""

    def __post_init__(self):
        if not self.file_name:
            object.__setattr__(self, "file_name", self.url.rsplit("/", 1)[-1])

    @classmethod
    def hugging_face(cls, repo: str) -> "Weights":
        return cls(f"https://huggingface.co/{repo}/resolve/main/model.safetensors", file_name=repo.split("/")[-1] + ".safetensors")


BACKBONES: dict[str, Callable[[], nn.Module]] = {}
PRETRAINED: dict[str, Weights] = {}


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


def default_weights_dir() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where ``true`` looks."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_of(name: str) -> Weights:
    if name not in PRETRAINED:
        raise InputError("config", f"no pretrained weights are known for backbone {name!r} (model.backbone_pretrained); known: {', '.join(sorted(PRETRAINED))}")
    return PRETRAINED[name]


def fetch_weights(weights: Weights, folder: str | os.PathLike, timeout: float = 30.0) -> Path:
    """``folder/<file name>``, downloaded first unless a file with the right checksum is there.

    The download goes to a temporary name and becomes the file only once its SHA-256 matches, so a
    cut connection or a wrong file never leaves something that looks like the weights.
    """
    target = Path(folder) / weights.file_name
    if target.is_file() and (weights.sha256 is None or file_sha256(target) == weights.sha256):
        return target
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(weights.url, timeout=timeout) as response, open(tmp, "wb") as out:
            stated = (response.headers.get("X-Linked-Etag") or response.headers.get("ETag") or "").strip('"')
            while block := response.read(1 << 20):
                out.write(block)
        expected = weights.sha256 or (stated if re.fullmatch(r"[0-9a-f]{64}", stated) else None)
        found = file_sha256(tmp)
        if expected and found != expected:
            raise InputError(weights.url, f"downloaded file has SHA-256 {found}, expected {expected}; nothing was saved")
    return target


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
    without ``net.`` (``backbone.layer1...``); timm's ResNet has the same names below it."""
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "net.")]:
        state_dict[prefix + "net." + key[len(prefix):]] = state_dict.pop(key)


def _register_timm(name: str, timm_name: str, weights: Weights, **options) -> None:
    register_backbone(name, weights)(lambda: TimmBackbone(timm_name, **options))


# ResNets with torchvision's ImageNet weights (resnet18/34: IMAGENET1K_V1, resnet50/101:
# IMAGENET1K_V2), as upstream Lightning Pose; timm's ResNet has torchvision's parameter names. Their
# file names carry the first 8 hex digits of the SHA-256, which torch hub checks; we check all 64.
# zero_init_last=False: the residual branches' last BatchNorm starts at 1, as in torchvision, which
# the accuracy figures in docs/benchmarks.md were measured with.
_TV = "https://download.pytorch.org/models/"
for _name, _file, _sha256 in [
    ("resnet18", "resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"),
    ("resnet34", "resnet34-b627a593.pth", "b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f"),
    ("resnet50", "resnet50-11ad3fa6.pth", "11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca"),
    ("resnet101", "resnet101-cd907fc2.pth", "cd907fc2a0de2292b2ba2b27d2216bc672d84632d1cf20058d01c0c03b5e020e"),
]:
    _register_timm(_name, _name, Weights(_TV + _file, _sha256), zero_init_last=False)

# timm's own weights, from its Hugging Face repositories (safetensors). The ViT is upstream
# Lightning Pose's ``vits_dino``: ViT-S/16 trained with DINO, stride 16, any input size.
_register_timm("convnext_tiny", "convnext_tiny", Weights.hugging_face("timm/convnext_tiny.in12k_ft_in1k"))
_register_timm("efficientnet_b0", "efficientnet_b0", Weights.hugging_face("timm/efficientnet_b0.ra_in1k"))
_register_timm("vits_dino", "vit_small_patch16_224", Weights.hugging_face("timm/vit_small_patch16_224.dino"), dynamic_img_size=True)

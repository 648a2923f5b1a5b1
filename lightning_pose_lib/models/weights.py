"""Pretrained weights of the registered backbones: where they come from, their checksum, and where
they are cached. Without torch, so that planning the workflow (which lists the weights files that
trainings need) does not import it; the backbones themselves are in :mod:`.backbones`.
"""

from __future__ import annotations

import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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


# The ResNets: torchvision's ImageNet files (resnet18/34: IMAGENET1K_V1, resnet50/101:
# IMAGENET1K_V2), as upstream Lightning Pose; .resnet has torchvision's parameter names. Their file
# names carry the first 8 hex digits of the SHA-256, which torch hub checks; we check all 64.
# The others: timm's own files in its Hugging Face repositories (safetensors); vits_dino is
# upstream's name for ViT-S/16 trained with DINO.
_TV = "https://download.pytorch.org/models/"


PRETRAINED: dict[str, Weights] = {
    "resnet18": Weights(_TV + "resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"),
    "resnet34": Weights(_TV + "resnet34-b627a593.pth", "b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f"),
    "resnet50": Weights(_TV + "resnet50-11ad3fa6.pth", "11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca"),
    "resnet101": Weights(_TV + "resnet101-cd907fc2.pth", "cd907fc2a0de2292b2ba2b27d2216bc672d84632d1cf20058d01c0c03b5e020e"),
    "convnext_tiny": Weights.hugging_face("timm/convnext_tiny.in12k_ft_in1k"),
    "efficientnet_b0": Weights.hugging_face("timm/efficientnet_b0.ra_in1k"),
    "vits_dino": Weights.hugging_face("timm/vit_small_patch16_224.dino"),
}


def default_weights_dir() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where ``true`` looks."""
    import torch

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

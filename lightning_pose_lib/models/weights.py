"""ImageNet weights of the registered backbones: where they come from, their checksum, and where
they are cached. Without torch, so that planning the workflow (which lists the weights files that
trainings need) does not import it; the backbones themselves are in :mod:`.backbones`.
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io import atomic_path, file_sha256


@dataclass(frozen=True)
class Weights:
    """Where a backbone's ImageNet weights come from, and the SHA-256 of the file."""

    url: str
    sha256: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# torchvision's ImageNet weights (resnet18/34: IMAGENET1K_V1, resnet50/101: IMAGENET1K_V2). Their
# file names carry the first 8 hex digits of the SHA-256, which torch hub checks; we check all 64.
_TV = "https://download.pytorch.org/models/"


PRETRAINED: dict[str, Weights] = {
    "resnet18": Weights(_TV + "resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"),
    "resnet34": Weights(_TV + "resnet34-b627a593.pth", "b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f"),
    "resnet50": Weights(_TV + "resnet50-11ad3fa6.pth", "11ad3fa62ca79e40addfd354a8ec4b7c75143b3038b8d2a807fbc68deab379ca"),
    "resnet101": Weights(_TV + "resnet101-cd907fc2.pth", "cd907fc2a0de2292b2ba2b27d2216bc672d84632d1cf20058d01c0c03b5e020e"),
}


def default_weights_dir() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where ``true`` looks."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_of(name: str) -> Weights:
    if name not in PRETRAINED:
        raise InputError("config", f"no ImageNet weights are known for backbone {name!r} (model.backbone_pretrained); known: {', '.join(sorted(PRETRAINED))}")
    return PRETRAINED[name]


def fetch_weights(weights: Weights, folder: str | os.PathLike, timeout: float = 30.0) -> Path:
    """``folder/<file name>``, downloaded first unless a file with the right checksum is there.

    The download goes to a temporary name and becomes the file only once its SHA-256 matches, so a
    cut connection or a wrong file never leaves something that looks like the weights.
    """
    target = Path(folder) / weights.file_name
    if target.is_file() and file_sha256(target) == weights.sha256:
        return target
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(weights.url, timeout=timeout) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        found = file_sha256(tmp)
        if found != weights.sha256:
            raise InputError(weights.url, f"downloaded file has SHA-256 {found}, expected {weights.sha256}; nothing was saved")
    return target

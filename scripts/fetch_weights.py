#!/usr/bin/env python
"""Download backbones' ImageNet weights into a cache folder, checking their SHA-256:
``fetch_weights.py [--dir DIR] [--config model.yaml ...] [BACKBONE ...]``.

Run it on a machine with network (a cluster's login node); trainings then read the files offline.
The backbones are those named, plus that of the model config (``--config``, repeatable, later
files override earlier ones) when it has ``model.backbone_pretrained: true``. DIR defaults to torch
hub's folder, ``$TORCH_HOME/hub/checkpoints``, where ``backbone_pretrained: true`` looks; the
workflow uses its ``weights_dir`` (rules download_weights and fetch_weights). A file already there
with the right checksum is kept; a download is written under a temporary name and kept only when
its checksum matches.
"""

import argparse
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.config import load_config
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.io import file_sha256
from lightning_pose_lib.models.weights import default_weights_dir, fetch_weights, weights_of


def fetch(backbones, folder):
    for name in dict.fromkeys(backbones):  # each once, in order
        weights = weights_of(name)
        try:
            path = fetch_weights(weights, folder)
        except OSError as err:  # no network, or the folder is not writable
            raise InputError(weights.url, f"download failed ({getattr(err, 'reason', err)})") from None
        print(f"{name}: {path} (SHA-256 {weights.sha256 or file_sha256(path)})", flush=True)


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=None, help="cache folder (default: $TORCH_HOME/hub/checkpoints)")
    parser.add_argument("--config", action="append", default=[], help="model config YAML whose backbone to fetch (repeatable)")
    parser.add_argument("backbones", nargs="*", help="backbone names, e.g. resnet50")
    args = parser.parse_args(argv)
    backbones = list(args.backbones)
    if args.config:
        model_cfg = load_config(*args.config)["model"]
        if model_cfg["backbone_pretrained"] is True:
            backbones.append(model_cfg["backbone"])
    if not backbones:
        parser.error("nothing to fetch: name a backbone, or give a model config with model.backbone_pretrained: true")
    fetch(backbones, args.dir or default_weights_dir())


def rule_main(smk):
    fetch([smk.params.backbone], Path(smk.output[0]).parent)


if __name__ == "__main__":
    run(cli_main, rule_main)

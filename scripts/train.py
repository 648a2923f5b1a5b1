#!/usr/bin/env python
"""Train one model: ``train.py --config model.yaml [--config more.yaml] --model-dir DIR [key=value ...]``.

Later configs override earlier ones; dotted ``key=value`` overrides come last
(``training.max_epochs=11 model.losses_to_use=[temporal]``).

With ``training.num_gpus`` > 1, Lightning runs this script once more per further device (the
``ddp`` strategy re-launches ``sys.argv`` with LOCAL_RANK set); those runs print nothing.
"""

import argparse
import json

from lightning_pose_lib.cli import ArgumentParser, exit_now, run
from lightning_pose_lib.config import load_config

# lightning_pose_lib.train (torch, Lightning) is imported where needed: this script's top level runs
# again in every process that multiprocessing starts from it, and --help should not wait for it.


def cli_main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", default=[], help="model config YAML (repeatable)")
    parser.add_argument("--model-dir", required=True, help="output folder of the trained model")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. training.max_epochs=11")
    args = parser.parse_args(argv)
    cfg = load_config(*args.config, overrides=args.overrides)
    from lightning_pose_lib.train import train

    report(train(cfg, args.model_dir))


def rule_main(smk):
    from lightning_pose_lib.config import load_config
    from lightning_pose_lib.train import train

    # The workflow passes the keys the model's layers set; the library's defaults fill the rest.
    report(train(load_config(smk.params.model_settings), smk.params.model_dir))


def report(metrics):
    if metrics is not None:  # None: another rank of a multi-device run; rank 0 reports
        print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    run(cli_main, rule_main)
    exit_now()  # the model folder is written: tearing down torch and Lightning (1.3 s on a 2-core machine) saves nothing

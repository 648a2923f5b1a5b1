#!/usr/bin/env python
"""Import another tool's project as a dataset folder (see lightning_pose_lib.formats).

``import_dataset.py SOURCE OUT_DIR``: SOURCE is a DeepLabCut project (folder or config.yaml), SLEAP
labels (.slp, .pkg.slp) or a Lightning Pose config; OUT_DIR gets CollectedData.csv, the images
(links or extracted frames) and videos/ (links). The source's files are only read.

From the workflow (workflow/rules/import.smk) SOURCE is ``params.source`` and OUT_DIR the folder of
the ``labels`` output.
"""

import argparse
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.formats import detect, import_dataset


def imported(source, out_dir):
    csv_file = import_dataset(source, out_dir)
    print(f"imported {detect(source)} project {source} into {out_dir} ({csv_file.name})")


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="DeepLabCut project or config.yaml, SLEAP .slp / .pkg.slp, or Lightning Pose config")
    parser.add_argument("out_dir", type=Path, help="dataset folder to write")
    args = parser.parse_args(argv)
    imported(args.source, args.out_dir)


def rule_main(smk):
    imported(Path(smk.params.source), Path(smk.output.labels).parent)


if __name__ == "__main__":
    run(cli_main, rule_main)

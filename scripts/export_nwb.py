#!/usr/bin/env python
"""Write a video's predictions as NWB (ndx-pose PoseEstimation; see lightning_pose_lib.formats.nwb).

``export_nwb.py PREDICTIONS VIDEO OUT.nwb [--scorer NAME]``: PREDICTIONS is the video's
``video_preds/<video>.h5`` (full precision; or the ``.csv``); the timestamps are the video's frame presentation times.

From the workflow (workflow/rules/export.smk) the files are the rule's input and output and the
scorer is the model's id.
"""

import argparse
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.formats.nwb import write_nwb


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path, help="the video's predictions (.csv or .h5)")
    parser.add_argument("video", type=Path, help="the predicted video")
    parser.add_argument("out", type=Path, help="NWB file to write")
    parser.add_argument("--scorer", default=None, help="model name stored in the file (default: the table's scorer)")
    args = parser.parse_args(argv)
    table = read_pose_table(args.predictions)
    write_nwb(table, args.video, args.out, args.scorer or str(table.columns.get_level_values("scorer")[0]))


def rule_main(smk):
    write_nwb(read_pose_table(smk.input.predictions), smk.input.video, smk.output.nwb, smk.wildcards.model)


if __name__ == "__main__":
    run(cli_main, rule_main)

#!/usr/bin/env python
"""Generate the synthetic example dataset (see lightning_pose_lib.example).

``make_example.py OUT_DIR [--seed N] [--sessions N] [--frames N] [--labeled N] [--cameras 2|3]``

``--cameras``: the multi-camera variant (the animal filmed by 2 or 3 synchronized cameras, one
video and one label CSV per camera, and their calibration) instead of the two-view mirrored frame.

From the workflow (workflow/rules/example.smk) the settings come from ``params.settings`` and the
dataset folder is the folder of the ``labels`` output.
"""

import argparse
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.example import make_example


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description="Render the synthetic two-view example dataset.")
    parser.add_argument("out_dir", type=Path, help="dataset folder to write (created if needed)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--sessions", type=int, default=3, help="videos to render (default 3)")
    parser.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    parser.add_argument("--labeled", type=int, default=120, help="labeled frames in total (default 120)")
    parser.add_argument("--cameras", type=int, choices=[2, 3], default=0, help="film the animal with this many synchronized cameras (one video and label CSV each)")
    args = parser.parse_args(argv)
    try:
        result = make_example(args.out_dir, seed=args.seed, n_sessions=args.sessions, frames_per_session=args.frames, n_labeled=args.labeled, cameras=args.cameras)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {result['csv_file']}, {len(result['videos'])} videos and {result['example_yaml']}")


def rule_main(smk):
    settings = smk.params.settings
    make_example(
        Path(smk.output.labels[0] if isinstance(smk.output.labels, list) else smk.output.labels).parent,
        seed=settings["seed"],
        n_sessions=settings["sessions"],
        frames_per_session=settings["frames"],
        n_labeled=settings["labeled"],
        cameras=settings["cameras"],
    )


if __name__ == "__main__":
    run(cli_main, rule_main)

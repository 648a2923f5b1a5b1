"""Generate the synthetic example dataset (see lightning_pose_lib.example).

Command line:
    python scripts/make_example.py OUT_DIR [--seed N] [--sessions N] [--frames N] [--labeled N]

The workflow runs this file through Snakemake's ``script:`` directive (workflow/rules/example.smk),
which defines ``snakemake``: the settings come from ``params.settings`` and the dataset folder is the
folder of the ``labels`` output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_pose_lib.example import make_example


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the synthetic two-view example dataset.")
    parser.add_argument("out_dir", type=Path, help="dataset folder to write (created if needed)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--sessions", type=int, default=3, help="videos to render (default 3)")
    parser.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    parser.add_argument("--labeled", type=int, default=120, help="labeled frames in total (default 120)")
    args = parser.parse_args(argv)
    try:
        result = make_example(
            args.out_dir,
            seed=args.seed,
            n_sessions=args.sessions,
            frames_per_session=args.frames,
            n_labeled=args.labeled,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {result['csv_file']} and {len(result['videos'])} videos; config fields in {result['example_yaml']}")


def run_from_snakemake(smk) -> None:
    sys.stderr = open(smk.log[0], "w")  # the workflow keeps each job's messages in its log file
    settings = smk.params.settings
    make_example(
        Path(smk.output.labels).parent,
        seed=settings["seed"],
        n_sessions=settings["sessions"],
        frames_per_session=settings["frames"],
        n_labeled=settings["labeled"],
    )


if "snakemake" in globals():
    run_from_snakemake(snakemake)  # noqa: F821 (defined by Snakemake's script: directive)
elif __name__ == "__main__":
    main()

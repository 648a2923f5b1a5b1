#!/usr/bin/env python
"""Serve the FiftyOne App on a dataset built by the workflow (target fiftyone_<dataset>):
``fiftyone_app.py DATASET [--port 5151] [--address localhost] [--database-dir results/fiftyone_db]``.

Then open the address it prints, http://localhost:5151/datasets/DATASET?view=worst-labeled-frames:
the labeled frames with the largest pixel error first (the saved view worst_labeled_frames). On a
cluster node, run it there and forward the port from your computer:
``ssh -N -L 5151:localhost:5151 <node>``. Ctrl-C stops it.
Needs the optional extra: ``pip install -e '.[fiftyone]'``.
"""

import argparse
import signal
import sys

from lightning_pose_lib.cli import ArgumentParser, run
from lightning_pose_lib.viz.fiftyone_view import WORST_LABELED, open_app


def cli_main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="dataset name (as in config/config.yaml)")
    parser.add_argument("--database-dir", default="results/fiftyone_db", help="fiftyone.database_dir of the workflow config")
    parser.add_argument("--port", type=int, default=5151)
    parser.add_argument("--address", default="localhost", help="0.0.0.0 to serve other machines directly")
    args = parser.parse_args(argv)
    # A kill stops like Ctrl-C, so FiftyOne stops its App server and database with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    session = open_app(args.dataset, args.database_dir, args.port, args.address)
    print(f"FiftyOne App of {args.dataset!r}: http://{args.address}:{args.port}/datasets/{args.dataset}?view={WORST_LABELED.replace('_', '-')}", flush=True)
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()  # stops the App server, which would otherwise outlive this process


if __name__ == "__main__":
    run(cli_main, lambda smk: None)

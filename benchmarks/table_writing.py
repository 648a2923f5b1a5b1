#!/usr/bin/env python
"""What writing one video's prediction files costs, with pandas' CSV writer as the baseline.

    python scripts/benchmark.py table_writing [--frames 1000] [--keypoints 17] [--repeats 20]

Times, on this machine's CPU, one prediction table (frames x keypoints x (x, y, likelihood)):
pandas' ``to_csv(float_format="%.4f")`` (what prediction used before), ``io.write_csv`` (the same
bytes), and the H5 file as h5py arrays (the layout before, gzip level 1 after shuffling, which
pandas cannot read) and as ``write_pose_table`` writes it now (pandas' PyTables "table" format, as
DeepLabCut does); prints ms per table and the ratios.
"""

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from lightning_pose_lib.data.labels import pose_table, write_pose_table
from lightning_pose_lib.io import write_csv


def per_call_ms(run, repeats: int) -> float:
    run()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--keypoints", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    keypoints = (rng.random((args.frames, args.keypoints, 2)) * 400).astype(np.float32)
    table = pose_table(keypoints, [f"kp{k}" for k in range(args.keypoints)], "heatmap_tracker", rng.random(keypoints.shape[:2]).astype(np.float32))
    out = Path(tempfile.mkdtemp())

    def h5py_arrays(name):  # the values alone, as write_pose_table stored them before
        with h5py.File(out / name, "w") as f:
            f.create_group("df_with_missing").create_dataset("values", data=table.to_numpy(dtype=np.float64), compression="gzip", compression_opts=1, shuffle=True)

    def previous():  # what write_pose_table did before
        write_csv(table, out / "previous.csv")
        h5py_arrays("previous.h5")

    pandas_csv = per_call_ms(lambda: table.to_csv(out / "pandas.csv", float_format="%.4f"), args.repeats)
    ours_csv = per_call_ms(lambda: write_csv(table, out / "ours.csv"), args.repeats)
    assert (out / "pandas.csv").read_bytes() == (out / "ours.csv").read_bytes()
    old_h5 = per_call_ms(lambda: h5py_arrays("h5py.h5"), args.repeats)
    new_h5 = per_call_ms(lambda: table.astype(np.float64).to_hdf(out / "pandas.h5", key="df_with_missing", format="table", mode="w"), args.repeats)
    before = per_call_ms(previous, args.repeats)
    both = per_call_ms(lambda: write_pose_table(table, out / "both.csv", out / "both.h5"), args.repeats)
    print(f"table: {args.frames} frames x {args.keypoints} keypoints")
    print(f"CSV  pandas to_csv {pandas_csv:7.2f} ms   write_csv {ours_csv:6.2f} ms   ratio {pandas_csv / ours_csv:5.2f}x (same bytes)")
    size = lambda name: (out / name).stat().st_size / 1e3  # noqa: E731
    print(f"H5   h5py arrays (gzip 1 + shuffle) {old_h5:6.2f} ms ({size('h5py.h5'):.0f} kB)   pandas table format {new_h5:6.2f} ms ({size('pandas.h5'):.0f} kB)   ratio {new_h5 / old_h5:5.2f}x")
    print(f"CSV + H5 of one video: write_csv + h5py arrays {before:6.2f} ms, write_pose_table now {both:6.2f} ms (pandas-readable H5), ratio {both / before:5.2f}x")


if __name__ == "__main__":
    main()

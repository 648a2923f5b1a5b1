#!/usr/bin/env python
"""Decode throughput of each video backend on the same video, in the same run.

    python benchmarks/decode.py VIDEO [--batch 96] [--repeats 3] [--size 256 256]

For each available backend (PyAV on CPU, DALI on the GPU when present): frames/s of a full pass
(decode + resize + normalise to the model input on the GPU when there is one), with every frame
checked to arrive exactly once. Prints each figure and its ratio to PyAV.
"""

import argparse
import time

import numpy as np
import torch

from lightning_pose_lib.data.transforms import to_model_input
from lightning_pose_lib.video import dali_available, open_video


def one_pass(video, backend, batch, size, device):
    start = time.perf_counter()
    seen = 0
    with open_video(video, backend=backend) as reader:
        expected = reader.info.num_frames
        order = []
        for indices, frames in reader.iter_batches(batch):
            x = to_model_input(frames, size, device)
            order.append(indices)
            seen += len(indices)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    assert np.concatenate(order).tolist() == list(range(expected)), f"{backend}: frames missing or out of order"
    assert x.shape[-2:] == tuple(size)
    return seen / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, default=[256, 256])
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backends = ["pyav"] + (["dali"] if dali_available() and device.type == "cuda" else [])
    print(f"device: {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}; video {args.video}; batch {args.batch}")
    results = {}
    for backend in backends:
        one_pass(args.video, backend, args.batch, args.size, device)  # warm-up (DALI builds its pipeline)
        rates = [one_pass(args.video, backend, args.batch, args.size, device) for _ in range(args.repeats)]
        results[backend] = float(np.median(rates))
        print(f"{backend}: {results[backend]:.0f} frames/s (median of {args.repeats}; decode + resize + normalise, every frame once)")
    for backend, rate in results.items():
        print(f"ratio {backend}/pyav: {rate / results['pyav']:.2f}")


if __name__ == "__main__":
    main()

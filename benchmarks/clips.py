#!/usr/bin/env python
"""How fast do the unlabeled clips of semi-supervised training arrive, with nothing else running?

    python benchmarks/clips.py VIDEO [--copies 4] [--lengths 16 32] [--clips 60] [--pipelines 1 2]

On copies of VIDEO, clips/s (and frames/s handed over) of:
- ``DaliUnlabeledClips`` as training uses it on a GPU: runs of up to 128 consecutive frames
  decoded after each seek, cut into clips shuffled through a buffer, from 1, 2 ... pipelines;
- the same with one clip per seek (``run_frames`` = the clip length): how clips came before runs;
- training's DALI pipeline in file order (``_sequences``, unshuffled): decoding without seeks, the
  ceiling;
- ``UnlabeledClips`` through one PyAV worker (the CPU path).
A training step takes one clip, so clips/s bounds the semi-supervised steps/s.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from lightning_pose_lib.data.unlabeled import DaliUnlabeledClips, unlabeled_loader
from lightning_pose_lib.video.dali_backend import _sequences


def rate(clips, count):
    iterator = iter(clips)
    for _ in range(3):  # pipeline set-up and first fill
        next(iterator)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def frames_of(pipe):
    """Endless clips out of a DALI pipeline whose reader is named "reader"."""
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    iterator = DALIGenericIterator(pipe, ["frames"], reader_name="reader", last_batch_policy=LastBatchPolicy.DROP, auto_reset=True)
    while True:
        for batch in iterator:
            yield batch[0]["frames"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--pipelines", type=int, nargs="+", default=[1, 2], help="DALI pipelines taking turns (training's clips)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(args.copies):
            files.append(os.path.join(tmp, f"copy{i}{args.video.suffix}"))
            os.symlink(args.video.resolve(), files[-1])
        print(f"gpu: {torch.cuda.get_device_name(0)}, {args.copies} copies of {args.video.name}, {args.clips} clips each")
        for length in args.lengths:
            sources = {
                **{f"DaliUnlabeledClips, {k} pipeline(s)": DaliUnlabeledClips(files, length, (256, 256), seed=0, pipelines=k) for k in args.pipelines},
                **{f"one clip per seek, {k} pipeline(s)": DaliUnlabeledClips(files, length, (256, 256), seed=0, pipelines=k, run_frames=length) for k in args.pipelines},
                "file order, no seeks": frames_of(_sequences(files, length, "gpu", shuffle=False, seed=0, numbered=False)),
                "PyAV UnlabeledClips, 1 worker": unlabeled_loader(files, length, (256, 256), seed=0, backend="pyav"),
            }
            for name, source in sources.items():
                try:
                    clips = rate(source, args.clips)
                    print(f"  length {length:3d}  {name:36s} {clips:7.1f} clips/s  {clips * length:8.0f} frames/s", flush=True)
                except Exception as err:
                    print(f"  length {length:3d}  {name:36s} failed: {type(err).__name__}: {str(err)[:200]}", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Draw a model's predictions on a video: ``labeled_video.py --model-dir DIR VIDEO [VIDEO ...]``.

Writes ``DIR/video_preds/labeled_videos/<video>_labeled.mp4`` (H.264, the source's size and frame
rate) from ``DIR/video_preds/<video>.csv``: one colour per keypoint (``eval.colormap``), a filled
disc where the likelihood reaches ``eval.confidence_thresh_for_vid``, a ring below it, and the
frame number. ``--clip-frames N`` keeps the first N frames only.
"""

import argparse
from pathlib import Path

from lightning_pose_lib.cli import run
from lightning_pose_lib.config import read_yaml
from lightning_pose_lib.data.labels import read_pose_table
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.viz import make_labeled_video


def labeled_video(model_dir, video, predictions_csv, output, clip_frames=None) -> int:
    cfg = read_yaml(Path(model_dir) / "config.yaml")
    if not Path(predictions_csv).is_file():
        raise InputError(predictions_csv, "predictions not found: predict the video first (predict.py)")
    return make_labeled_video(
        video, read_pose_table(predictions_csv), output,
        threshold=cfg["eval"]["confidence_thresh_for_vid"], colormap=cfg["eval"]["colormap"], clip_frames=clip_frames,
    )


def cli_main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--clip-frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("videos", nargs="+")
    args = parser.parse_args(argv)
    preds = Path(args.model_dir) / "video_preds"
    for video in args.videos:
        stem = Path(video).stem
        out = preds / "labeled_videos" / f"{stem}_labeled.mp4"
        count = labeled_video(args.model_dir, video, preds / f"{stem}.csv", out, args.clip_frames)
        print(f"{out}: {count} frames")


def rule_main(smk):
    labeled_video(smk.params.model_dir, smk.input.video, smk.input.predictions, smk.output[0], smk.params.clip_frames)


if __name__ == "__main__":
    run(cli_main, rule_main)

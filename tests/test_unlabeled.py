"""The unlabeled clip stream for the unsupervised losses (PyAV path; the DALI path is in test_video_dali)."""

from itertools import islice

import numpy as np
import torch

from lightning_pose_lib.data.unlabeled import UnlabeledClips, list_videos


def test_clips_are_consecutive_frames_and_each_epoch_draws_new_ones(example_dir):
    def make():
        return UnlabeledClips(list_videos(example_dir / "videos"), length=6, size_hw=(32, 64), seed=3)

    def starts(items):
        return [(int(i["video"]), int(i["frame_indices"][0])) for i in items]

    clips = make()
    epoch_a = list(islice(iter(clips), 4))
    epoch_b = list(islice(iter(clips), 4))  # a new epoch, as a persistent DataLoader worker starts one
    for item in epoch_a + epoch_b:
        assert item["frames"].shape == (6, 3, 32, 64) and item["frames"].dtype == torch.uint8
        assert (np.diff(item["frame_indices"].numpy()) == 1).all()
    assert starts(epoch_a) != starts(epoch_b)
    assert starts(islice(iter(make()), 4)) == starts(epoch_a)  # same seed, same stream

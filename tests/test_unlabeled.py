"""The unlabeled clip stream for the unsupervised losses (PyAV path; the DALI path is in test_video_dali)."""

from itertools import islice

import numpy as np
import pytest
import torch

from lightning_pose_lib.data.unlabeled import UnlabeledClips, probe_clip_sources
from lightning_pose_lib.video import list_videos
from lightning_pose_lib.errors import InputError


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


def test_no_videos_or_only_short_ones_stop_with_a_clear_message(example_dir):
    """The check both clip sources (PyAV and DALI) make before drawing anything."""
    videos = list_videos(example_dir / "videos")
    with pytest.raises(InputError, match="need unlabeled videos"):
        probe_clip_sources([], length=6)
    with pytest.raises(InputError, match="shorter than a clip"):
        probe_clip_sources(videos, length=61)  # 60 frames each
    assert [i.num_frames for i in probe_clip_sources(videos, length=60)] == [60, 60]
    with pytest.raises(InputError, match="shorter than a clip"):
        UnlabeledClips(videos, length=61, size_hw=(32, 64), seed=0)

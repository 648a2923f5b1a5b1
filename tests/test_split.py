import numpy as np
import pytest

from lightning_pose_lib.data.split import split_labels, split_sizes


def test_sizes_follow_upstream_rule():
    assert split_sizes(200, 0.95, 0.05) == (190, 10, 0)  # leftover < 5 goes to train
    assert split_sizes(100, 0.8, 0.1) == (80, 10, 10)
    assert split_sizes(10, 0.95, 0.01) == (9, 1, 0)  # at least one validation frame


def test_split_is_seeded_and_complete():
    a = split_labels(100, 0.8, 0.1, seed=3)
    b = split_labels(100, 0.8, 0.1, seed=3)
    c = split_labels(100, 0.8, 0.1, seed=4)
    assert (a == b).all() and not (a == c).all()
    assert {s: int((a == s).sum()) for s in ("train", "validation", "test")} == {"train": 80, "validation": 10, "test": 10}


def test_train_frames_keeps_validation_and_test_fixed():
    full = split_labels(100, 0.8, 0.1, seed=0)
    fraction = split_labels(100, 0.8, 0.1, seed=0, train_frames=0.5)
    count = split_labels(100, 0.8, 0.1, seed=0, train_frames=20)
    for sets in (fraction, count):
        for name in ("validation", "test"):
            assert ((sets == name) == (full == name)).all()
    assert (fraction == "train").sum() == 40 and (count == "train").sum() == 20
    assert (count == "unused").sum() == 60
    assert np.isin(np.flatnonzero(count == "train"), np.flatnonzero(full == "train")).all()
    with pytest.raises(ValueError):
        split_labels(100, 0.8, 0.1, seed=0, train_frames=500)

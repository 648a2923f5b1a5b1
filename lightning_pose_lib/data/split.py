"""The seeded train / validation / test split of labeled frames.

Rule (as upstream Lightning Pose): ``n_train = floor(train_prob * N)``, ``n_val = max(1,
floor(val_prob * N))``, the rest is the test set, except that a rest of fewer than 5 frames goes to
training. Frames are assigned by a permutation seeded with ``training.rng_seed_data_pt``.
``training.train_frames`` then keeps only the first frames of the training set (a fraction when
<= 1, a count when > 1); the frames it drops are marked ``unused``. Validation and test sets do not
depend on ``train_frames``, so sweeps over it are evaluated on the same frames.
"""

from __future__ import annotations

import math

import numpy as np

SETS = ("train", "validation", "test", "unused")


def split_sizes(n: int, train_prob: float, val_prob: float) -> tuple[int, int, int]:
    if n < 2:
        raise ValueError(f"need at least 2 labeled frames to split into training and validation, got {n}")
    n_val = max(1, math.floor(val_prob * n))
    n_train = min(math.floor(train_prob * n), n - n_val)
    n_test = n - n_train - n_val
    if n_test < 5:
        n_train, n_test = n_train + n_test, 0
    return n_train, n_val, n_test


def split_labels(n: int, train_prob: float, val_prob: float, seed: int, train_frames: float = 1) -> np.ndarray:
    """The set of each labeled frame: an array of ``n`` strings from :data:`SETS`."""
    n_train, n_val, _ = split_sizes(n, train_prob, val_prob)
    order = np.random.default_rng(seed).permutation(n)
    sets = np.empty(n, dtype=object)
    sets[order[:n_train]] = "train"
    sets[order[n_train : n_train + n_val]] = "validation"
    sets[order[n_train + n_val :]] = "test"
    keep = n_train if train_frames == 1 else (math.floor(train_frames * n_train) if train_frames < 1 else int(train_frames))
    if keep < 1 or keep > n_train:
        raise ValueError(f"training.train_frames={train_frames} selects {keep} of {n_train} training frames")
    sets[order[keep:n_train]] = "unused"
    return sets

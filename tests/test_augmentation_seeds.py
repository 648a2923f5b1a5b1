"""benchmarks/augmentation_seeds.py: its statistics and its two kornia variants."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from lightning_pose_lib.data import augment

spec = importlib.util.spec_from_file_location("augmentation_seeds", Path(__file__).parents[1] / "benchmarks/augmentation_seeds.py")
seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seeds)


def test_sign_test_matches_the_binomial_tail():
    assert seeds.sign_test(19, 6) == pytest.approx(0.01463, abs=1e-5)  # 2 P(X <= 6), X ~ Bin(25, 1/2)
    assert seeds.sign_test(3, 3) == 1.0
    assert seeds.sign_test(0, 0) == 1.0
    assert seeds.sign_test(0, 10) == pytest.approx(2 / 2**10)


def test_fisher_exact_matches_known_tables():
    assert seeds.fisher_exact(1, 9, 11, 3) == pytest.approx(0.002759, abs=1e-6)  # the tea-tasting style textbook table
    assert seeds.fisher_exact(5, 5, 5, 5) == 1.0
    p = seeds.fisher_exact(2, 23, 7, 18)
    assert 0.05 < p < 1.0 and p == pytest.approx(seeds.fisher_exact(7, 18, 2, 23)) == pytest.approx(seeds.fisher_exact(23, 2, 18, 7))
    total = sum(math.comb(10, x) * math.comb(10, 10 - x) for x in range(11)) / math.comb(20, 10)
    assert total == pytest.approx(1.0)


@pytest.mark.parametrize("variant", ["old", "hybrid"])
def test_kornia_variants_move_images_and_keypoints(variant, monkeypatch):
    monkeypatch.setattr(augment, "AFFINE_P", augment.AFFINE_P)  # the hybrid switches ours off: restore after
    torch.manual_seed(0)
    made = seeds.old_augmentation() if variant == "old" else seeds.hybrid_augmentation()
    module = made("dlc")
    images = torch.rand(16, 3, 32, 48)
    keypoints = torch.rand(16, 4, 2) * torch.tensor([47.0, 31.0])
    keypoints[0, 1] = float("nan")
    out, points = module(images, keypoints)
    assert out.shape == images.shape and points.shape == keypoints.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert torch.isnan(points[0, 1]).all()  # missing stays missing
    assert not torch.equal(out, images)
    moved = ~torch.isclose(points, keypoints, atol=1e-4).all(-1) & ~torch.isnan(points).any(-1)
    assert moved.any()  # some samples got the affine step
    assert made("none")(images, keypoints)[0] is images

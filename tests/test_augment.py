import math

import pytest
import torch

from lightning_pose_lib.data import augment
from lightning_pose_lib.data.augment import Augmentation

NAN = float("nan")
PROBABILITIES = ("AFFINE_P", "BLUR_P", "COLOR_P", "NOISE_P", "ERASE_P")


def only(monkeypatch, **probabilities):
    """Every transform off except those given."""
    for name in PROBABILITIES:
        monkeypatch.setattr(augment, name, probabilities.get(name, 0.0))


def blobs(points, h, w, sigma=1.5):
    """(B, 3, h, w) images with a bright Gaussian at each point of (B, K, 2)."""
    ys = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    spots = torch.exp(-((xs - points[..., 0, None, None]) ** 2 + (ys - points[..., 1, None, None]) ** 2) / (2 * sigma**2))
    return spots.amax(1, keepdim=True).expand(-1, 3, -1, -1).contiguous()


def test_keypoints_follow_the_image(monkeypatch):
    only(monkeypatch, AFFINE_P=1.0)
    torch.manual_seed(0)
    h, w = 48, 64
    points = torch.tensor([[[20.0, 20.0]], [[40.0, 25.0]], [[32.0, 24.0]], [[15.0, 30.0]]])
    images, moved = Augmentation("dlc")(blobs(points, h, w), points)
    assert not torch.allclose(moved, points)  # they did move
    for image, point in zip(images, moved[:, 0]):
        peak = image[0].flatten().argmax()
        assert abs(int(peak % w) - point[0]) <= 1.0 and abs(int(peak // w) - point[1]) <= 1.0


def test_off_frame_and_missing_keypoints_are_nan(monkeypatch):
    only(monkeypatch, AFFINE_P=1.0)
    torch.manual_seed(1)
    points = torch.tensor([[[0.0, 0.0], [NAN, NAN], [16.0, 12.0]]]).repeat(64, 1, 1)
    _, moved = Augmentation("dlc")(torch.rand(64, 3, 24, 32), points)
    assert torch.isnan(moved[:, 1]).all()
    assert not torch.isnan(moved[:, 2]).any()  # the centre never leaves the frame
    assert torch.isnan(moved[:, 0]).any() and not torch.isnan(moved[:, 0]).all()  # a corner sometimes does


def test_each_transform_touches_about_its_share_of_the_batch(monkeypatch):
    torch.manual_seed(2)
    images = torch.rand(2000, 3, 8, 8) * 0.5 + 0.25
    for name in PROBABILITIES:
        only(monkeypatch, **{name: getattr(augment, name)})
        out, _ = Augmentation("dlc")(images, torch.full((2000, 1, 2), 4.0))
        changed = (out != images).flatten(1).any(1).float().mean().item()
        assert changed == pytest.approx(getattr(augment, name), abs=0.05), name
        assert out.min() >= 0 and out.max() <= 1


def test_erasing_blanks_one_small_rectangle(monkeypatch):
    only(monkeypatch, ERASE_P=1.0)
    torch.manual_seed(3)
    out, _ = Augmentation("dlc")(torch.ones(200, 3, 64, 64), torch.zeros(200, 1, 2))
    erased = (out[:, 0] == 0).float().mean(dim=(1, 2))
    low, high = augment.ERASE_AREA
    assert (erased >= low * 0.5).all() and (erased <= high * 2).all()


def test_context_frames_share_one_transform(monkeypatch):
    only(monkeypatch, AFFINE_P=1.0, BLUR_P=1.0, COLOR_P=1.0, ERASE_P=1.0)
    torch.manual_seed(4)
    frame = torch.rand(6, 1, 3, 24, 32)
    out, moved = Augmentation("dlc")(frame.expand(-1, 5, -1, -1, -1), torch.full((6, 2, 2), 12.0))
    assert out.shape == (6, 5, 3, 24, 32) and moved.shape == (6, 2, 2)
    assert torch.equal(out, out[:, :1].expand_as(out))
    assert not torch.equal(out[0, 0], out[1, 0])  # but each sample its own


def test_seeded_and_none():
    images, points = torch.rand(4, 3, 16, 16), torch.full((4, 2, 2), 8.0)
    torch.manual_seed(5)
    first = Augmentation("dlc")(images, points)
    torch.manual_seed(5)
    second = Augmentation("dlc")(images, points)
    torch.testing.assert_close(first, second, rtol=0, atol=0, equal_nan=True)
    same = Augmentation("none")(images, points)
    assert same[0] is images and same[1] is points
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmentation("imgaug")


def test_affine_matrix_is_inverted_exactly():
    u = dict(zip(augment.DRAWS, torch.rand(len(augment.DRAWS), 8, dtype=torch.float64)))
    m = augment.affine_matrices(u, 30, 40)
    assert torch.allclose(augment.invert_affine(m) @ m, torch.eye(3, dtype=torch.float64).expand(8, 3, 3), atol=1e-12)
    angle = torch.atan2(m[:, 1, 0], m[:, 0, 0]).abs().max()
    assert angle <= math.radians(augment.MAX_DEGREES) + 1e-9


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_motion_kernels_match_kornia(mode):
    kornia_filters = pytest.importorskip("kornia.filters")
    angle = torch.tensor([0.0, 30.0, -75.0, 90.0, 12.5, -33.3])
    direction = torch.tensor([0.0, 0.5, -0.5, 1.0, -0.2, 0.3])
    expected = kornia_filters.get_motion_kernel2d(5, angle, direction, mode=mode)
    torch.testing.assert_close(augment.motion_kernels(5, angle, direction, mode), expected, atol=1e-5, rtol=1e-5)

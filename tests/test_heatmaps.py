import numpy as np
import torch

from lightning_pose_lib.data.heatmaps import heatmaps_to_keypoints, make_heatmaps
from lightning_pose_lib.data.transforms import rescale_points, to_model_input


def test_targets_peak_at_the_point_and_sum_to_one():
    points = torch.tensor([[[10.0, 5.0], [float("nan"), 3.0], [40.0, 5.0]]])
    maps = make_heatmaps(points, (16, 32))
    assert maps.shape == (1, 3, 16, 32)
    assert torch.isclose(maps[0, 0].sum(), torch.tensor(1.0))
    assert divmod(int(maps[0, 0].argmax()), 32) == (5, 10)
    assert maps[0, 1].sum() == 0  # unlabeled
    assert maps[0, 2].sum() == 0  # outside the map


def test_subpixel_keypoints_recover_the_target_position():
    rng = np.random.default_rng(0)
    points = torch.tensor(rng.uniform(3, 28, (4, 5, 2)), dtype=torch.float32)
    maps = make_heatmaps(points, (32, 32))
    found, likelihood = heatmaps_to_keypoints(maps)
    assert torch.allclose(found, points, atol=0.05)
    assert ((likelihood > 0.85) & (likelihood <= 1.0)).all()


def test_likelihood_of_a_flat_map_is_low():
    maps = torch.full((1, 1, 32, 32), 1.0 / 1024)
    _, likelihood = heatmaps_to_keypoints(maps)
    assert torch.isclose(likelihood, torch.tensor(9 / 1024))  # peak at the corner: window zero-padded


def test_rescale_points_round_trip_and_pixel_centres():
    points = torch.tensor([[0.0, 0.0], [99.0, 49.0]])
    there = rescale_points(points, (50, 100), (200, 400))
    assert torch.allclose(there, torch.tensor([[1.5, 1.5], [397.5, 197.5]]))
    assert torch.allclose(rescale_points(there, (200, 400), (50, 100)), points)
    assert np.allclose(rescale_points(points.numpy(), (50, 100), (50, 100)), points.numpy())


def test_to_model_input_resizes_to_unit_range():
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 60, 3), dtype=np.uint8)
    x = to_model_input(frames, (32, 64))
    assert x.shape == (2, 3, 32, 64) and x.min() >= 0 and x.max() <= 1
    same = to_model_input(frames, (40, 60))
    assert torch.allclose(same, torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)

"""Resizing to the model input and mapping points between image sizes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_pose_lib.data.transforms import rescale_points, to_model_input, to_model_uint8


def test_model_input_is_torch_antialiased_bilinear_resize():
    frames = torch.randint(0, 256, (3, 37, 53, 3), dtype=torch.uint8)
    expected = F.interpolate(frames.permute(0, 3, 1, 2).double() / 255, size=(16, 24), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    resized = to_model_input(frames, (16, 24))
    assert resized.shape == (3, 3, 16, 24) and resized.dtype == torch.float32
    assert (resized.double() - expected).abs().max() < 1e-5
    upsized = to_model_input(frames.numpy(), (50, 70))  # enlarging too, from numpy
    expected = F.interpolate(frames.permute(0, 3, 1, 2).double() / 255, size=(50, 70), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    assert (upsized.double() - expected).abs().max() < 1e-5
    same = to_model_input(frames, (37, 53))
    assert torch.equal(same, frames.permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(to_model_uint8(frames, (37, 53)), frames.permute(0, 3, 1, 2))


def test_rescale_points_round_trips_with_sizes_as_tuples_arrays_or_tensors():
    points = torch.rand(4, 5, 2) * 60
    there = rescale_points(points, (64, 128), (396, 406))
    np.testing.assert_allclose(rescale_points(there, (396, 406), (64, 128)).numpy(), points.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(rescale_points(points.numpy(), (64, 128), (396, 406)), there.numpy(), rtol=1e-5)
    per_image = torch.tensor([[396.0, 406.0]] * 4)[:, None]  # (B, 1, 2) sizes, e.g. orig_hw on the device
    torch.testing.assert_close(rescale_points(points, (64, 128), per_image), there)
    # pixel centres: the centre of the image maps to the centre
    assert torch.allclose(rescale_points(torch.tensor([63.5, 31.5]), (64, 128), (396, 406)), torch.tensor([202.5, 197.5]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_model_input_matches_cpu():
    frames = torch.randint(0, 256, (4, 396, 406, 3), dtype=torch.uint8)
    gpu = to_model_input(frames, (256, 256), "cuda").cpu()
    assert (gpu - to_model_input(frames, (256, 256))).abs().max() < 0.5 / 255

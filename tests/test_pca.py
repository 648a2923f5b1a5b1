import numpy as np
import pytest
import torch

from lightning_pose_lib.data.labels import read_labels
from lightning_pose_lib.pca import PosePCA, fit_pca


def test_singleview_hand_computation():
    # Poses on a line: x2 = x1 + 10, y's constant -> one component explains everything.
    rng = np.random.default_rng(0)
    x1 = rng.uniform(0, 50, 40)
    keypoints = np.stack([np.stack([x1, np.full(40, 5.0)], -1), np.stack([x1 + 10, np.full(40, 7.0)], -1)], axis=1)
    pca = fit_pca("singleview", keypoints, [[0, 1]], components_to_keep=0.99, epsilon=None)
    assert pca.num_components == 1
    assert np.allclose(pca.reconstruction_error(keypoints), 0, atol=1e-9)
    moved = keypoints[:1].copy()
    moved[0, 1, 1] += 3.0  # y of keypoint 1 off the model by 3 px
    error = pca.reconstruction_error(moved)[0]
    # residual of (0, 0, 0, 3) projected off the x-direction component (1, 0, 1, 0)/sqrt(2): (0, 0, 0, 3)
    assert error[0] == pytest.approx(0.0, abs=1e-9) and error[1] == pytest.approx(3.0)


def test_nan_rows_are_used_for_the_fit_and_give_nan_errors():
    rng = np.random.default_rng(1)
    keypoints = rng.normal(size=(60, 3, 2))
    keypoints[::7, 2] = np.nan
    pca = fit_pca("singleview", keypoints, [[0, 1, 2]], components_to_keep=3)
    errors = pca.reconstruction_error(keypoints)
    assert np.isnan(errors[::7]).all() and np.isfinite(errors[1]).all()
    assert pca.epsilon == pytest.approx(np.nanpercentile(errors, 99))


def test_multiview_layout_and_three_dimensional_parts():
    # 2 views of 3D points: view A sees (x, y), view B sees (x + 100, z); 4 numbers in a 3D subspace.
    rng = np.random.default_rng(2)
    world = rng.uniform(0, 50, (30, 4, 3))
    top = world[..., [0, 1]]
    bottom = np.stack([world[..., 0] + 100, world[..., 2]], -1)
    keypoints = np.concatenate([top, bottom], axis=1)  # parts 0-3 in view 0, 4-7 in view 1
    pca = fit_pca("multiview", keypoints, [[0, 1, 2, 3], [4, 5, 6, 7]], components_to_keep=3)
    assert pca.rows(keypoints).shape == (30 * 4, 4)
    assert np.allclose(pca.reconstruction_error(keypoints), 0, atol=1e-6)
    bad = keypoints.copy()
    bad[0, 5, 0] += 4.0  # view 1's x of part 1 disagrees with view 0's x
    error = pca.reconstruction_error(bad)[0]
    assert error[5] > 1.0 and error[1] > 1.0  # both views of that part are off the model
    assert np.allclose(np.delete(error, [1, 5]), 0, atol=1e-6)


def test_torch_and_numpy_agree_and_save_load(tmp_path):
    rng = np.random.default_rng(3)
    keypoints = rng.normal(size=(50, 4, 2)) * 10
    pca = fit_pca("singleview", keypoints, [[0, 1, 3]], components_to_keep=2, epsilon=1.5)
    assert pca.epsilon == 1.5
    via_torch = pca.reconstruction_error(torch.tensor(keypoints, dtype=torch.float64)).numpy()
    assert np.allclose(via_torch, pca.reconstruction_error(keypoints), equal_nan=True)
    assert np.isnan(via_torch[:, 2]).all()  # not in the PCA
    pca.save(tmp_path / "p.npz")
    back = PosePCA.load(tmp_path / "p.npz")
    assert np.allclose(back.reconstruction_error(keypoints), pca.reconstruction_error(keypoints), equal_nan=True)


def test_too_few_labels_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot fit the singleview PCA"):
        fit_pca("singleview", np.zeros((3, 4, 2)), [[0, 1, 2, 3]], 0.99)


def test_example_labels_fit_multiview(example_dir):
    labels = read_labels(example_dir / "CollectedData.csv")
    pca = fit_pca("multiview", labels.keypoints, [list(range(6)), list(range(6, 12))], 3)
    errors = pca.reconstruction_error(labels.keypoints)
    assert np.isnan(labels.keypoints).any()  # some labels are missing...
    assert np.nanmax(errors) < 0.01  # ...and still two linear views of 3D parts fit exactly (pairwise covariances: 1.7 px)


def test_missing_values_do_not_bend_the_subspace():
    rng = np.random.default_rng(4)
    world = rng.uniform(0, 50, (40, 4, 3))
    keypoints = np.concatenate([world[..., [0, 1]], np.stack([world[..., 0] * 0.8 + 100, world[..., 2]], -1)], axis=1)
    holes = keypoints.copy()
    holes[rng.random(holes.shape[:2]) < 0.05] = np.nan  # 5% of the labels missing, at random
    pca = fit_pca("multiview", holes, [[0, 1, 2, 3], [4, 5, 6, 7]], components_to_keep=3)
    assert np.allclose(pca.reconstruction_error(keypoints), 0, atol=1e-3)  # the complete poses lie on it

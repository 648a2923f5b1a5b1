"""Visual checks: keypoints drawn where they are, labeled videos as long and large as their source,
galleries ranked worst first, and every comparison plot titled, labelled and with a legend."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lightning_pose_lib.data.labels import Labels, pose_table
from lightning_pose_lib.video import open_video, probe_video, write_video
from lightning_pose_lib.viz import draw_keypoints, keypoint_colours, make_labeled_video, plots
from lightning_pose_lib.viz.gallery import make_gallery, worst_frames


def test_confident_keypoints_are_discs_and_doubtful_ones_rings():
    image = np.zeros((100, 120, 3), np.uint8)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    points = np.array([[20.0, 30.0], [80.0, 60.0], [np.nan, np.nan]])
    out = draw_keypoints(image, points, np.array([0.95, 0.2, 1.0]), colours, threshold=0.9)
    assert out.shape == image.shape and not image.any()  # a copy; the input stays as it was
    assert tuple(out[30, 20]) == (255, 0, 0)  # filled at the centre
    assert tuple(out[60, 80]) == (0, 0, 0)  # a ring: hollow at the centre...
    ring = out[57:64, 77:84].reshape(-1, 3)
    assert (ring == [0, 255, 0]).all(axis=1).sum() >= 8  # ...green around it
    assert out[:, :, 2].max() == 0  # the NaN keypoint (blue) is not drawn
    assert out[out.any(axis=-1)].shape[0] < 200  # markers are small


def test_keypoint_colours_follow_the_colormap():
    colours = keypoint_colours(3, "cool")
    assert colours.shape == (3, 3) and colours.dtype == np.uint8
    assert tuple(colours[0]) == (0, 255, 255) and tuple(colours[-1]) == (255, 0, 255)  # cyan to magenta


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    """A grey video with a white square moving right by 2 px per frame, and its exact track."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames, track = [], []
    for t in range(12):
        frame = np.full((48, 64, 3), 90, np.uint8)
        frame[20:28, 10 + 2 * t : 18 + 2 * t] = 255
        frames.append(frame)
        track.append([[13.5 + 2 * t, 23.5]])
    write_video(path, frames, fps=25)
    table = pose_table(np.array(track), ["square"], "truth", np.ones((12, 1)))
    return path, table


def test_labeled_video_has_the_source_size_and_length_and_marks_the_object(small_video, tmp_path):
    video, table = small_video
    count = make_labeled_video(video, table, tmp_path / "clip_labeled.mp4", threshold=0.9, colormap="cool")
    source, labeled = probe_video(video), probe_video(tmp_path / "clip_labeled.mp4")
    assert count == 12 and (labeled.num_frames, labeled.height, labeled.width, labeled.fps) == (12, 48, 64, 25)
    with open_video(tmp_path / "clip_labeled.mp4") as reader:
        frame = reader.read_frames([5])[0].astype(int)
    # The marker (cyan: the colormap's first colour) sits on the square, which is at x 20-27 in frame 5.
    cyan = (frame[..., 0] < 90) & (frame[..., 1] > 180) & (frame[..., 2] > 180)
    ys, xs = np.nonzero(cyan)
    assert len(xs) > 5 and abs(xs.mean() - 23.5) < 1.5 and abs(ys.mean() - 23.5) < 1.5
    clipped = make_labeled_video(video, table, tmp_path / "short.mp4", clip_frames=5)
    assert clipped == 5 and probe_video(tmp_path / "short.mp4").num_frames == 5


def test_labeled_video_refuses_predictions_of_another_length(small_video, tmp_path):
    from lightning_pose_lib.errors import InputError

    video, table = small_video
    with pytest.raises(InputError, match="12 frames but its predictions have 11 rows"):
        make_labeled_video(video, table.iloc[:11], tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def error_table(values, sets):
    table = pd.DataFrame(values, index=[f"img{i}.png" for i in range(len(values))], columns=["a", "b"])
    table["set"] = sets
    return table


def test_worst_frames_are_held_out_and_ranked_by_the_mean_over_models():
    sets = ["train", "validation", "test", "test"]
    one = error_table([[100, 100], [1, 3], [5, np.nan], [2, 2]], sets)
    two = error_table([[100, 100], [1, 1], [1, np.nan], [9, 9]], sets)
    # mean over keypoints then models: img1 1.5, img2 3, img3 5.5; img0 is a training frame
    assert worst_frames({"one": one, "two": two}, 2) == ["img3.png", "img2.png"]
    assert worst_frames({"one": error_table([[1, 1], [2, 2]], ["train", "train"])}, 5) == ["img1.png", "img0.png"]


def test_gallery_draws_frames_worst_first(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((40, 60, 3), 60 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    truth = np.array([[[10, 10], [30, 20]], [[12, 10], [31, 22]], [[14, 10], [np.nan, np.nan]]], float)
    labels = Labels([f"img{i}.png" for i in range(3)], truth, ["a", "b"], "me")
    preds = {m: pose_table(truth + shift, ["a", "b"], "m", np.ones((3, 2)), labels.image_paths) for m, shift in (("m1", 1.0), ("m2", 3.0))}
    errors = {m: error_table(np.linalg.norm(np.full((3, 2, 2), s), axis=-1) * [[1], [2], [3]], ["test"] * 3) for m, s in (("m1", 1.0), ("m2", 3.0))}
    frames = make_gallery(tmp_path, labels, preds, errors, tmp_path / "gallery.png", count=2)
    assert frames == ["img2.png", "img1.png"]
    with Image.open(tmp_path / "gallery.png") as image:
        assert image.width > image.height / 2 and image.width > 500


def figure_texts(fig):
    """Title, axis labels and legend texts of each axes of a figure."""
    texts = []
    for ax in fig.axes:
        legend = ax.get_legend()
        texts.append((ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), [t.get_text() for t in legend.get_texts()] if legend else []))
    plt.close(fig)
    return texts


def test_comparison_plots_have_titles_units_and_legends():
    per_keypoint = {"test": {"m1": {"a": 1.0, "b": 2.0}, "m2": {"a": 3.0, "b": 1.0}}}
    [(title, xlabel, ylabel, legend)] = figure_texts(plots.pixel_error_per_keypoint(per_keypoint))
    assert "test frames" in title and xlabel == "keypoint" and "px" in ylabel and legend == ["m1", "m2"]

    table = pd.DataFrame({"variant": ["v", "v", "v", "w"], "train_frames": [10, 10, 40, 40], "test_pixel_error": [5.0, 7.0, 3.0, 4.0]})
    [(title, xlabel, ylabel, legend)] = figure_texts(plots.pixel_error_vs_train_frames(table))
    assert "training frames" in title and "count" in xlabel and "px" in ylabel and len(legend) == 2

    values = {"temporal_norm": {"m1": np.array([0.0, 1, 2, np.nan]), "m2": np.array([1.0, 5])}, "pca_singleview_error": {"m1": np.array([1.0]), "m2": np.array([2.0])}}
    fig = plots.video_metric_distributions(values)
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["m1", "m2"]
    texts = figure_texts(fig)
    assert [t[0] for t in texts] == ["Temporal norm on videos", "Pose PCA error on videos"]
    assert all("(px)" in t[2] and t[1] == "model" for t in texts)

    trace = pd.DataFrame({"x": [1.0, 2], "y": [3.0, 4], "likelihood": [1.0, 0.5]})
    texts = figure_texts(plots.keypoint_trace({"m1": trace, "m2": trace}, "nose", "s0", None))
    assert "s0" in texts[0][0] and "nose" in texts[0][0] and texts[0][3] == ["m1", "m2"]
    assert [t[2] for t in texts] == ["x (px)", "y (px, down)", "likelihood"] and texts[2][1] == "frame"


def test_plots_are_written_as_png(tmp_path):
    plots.pixel_error_per_keypoint({"validation": {"m1": {"a": 1.0}}}, tmp_path / "p.png")
    with open(tmp_path / "p.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

"""Visual checks of predictions: keypoints drawn on frames (labeled videos, galleries) and the
plots that compare the models of a dataset. Everything renders off-screen (matplotlib's Agg
backend, Pillow for drawing on frames), so it runs in cluster jobs without a display."""

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: no display on cluster nodes

from .draw import draw_keypoints, keypoint_colours  # noqa: E402
from .labeled_video import make_labeled_video  # noqa: E402

__all__ = ["draw_keypoints", "keypoint_colours", "make_labeled_video"]

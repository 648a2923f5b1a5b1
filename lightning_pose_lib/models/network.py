"""The pose network: backbone + head(s), from images to keypoints. Prediction needs nothing else.

Inputs are float images in [0, 1] at the model size, (B, 3, H, W), or (B, 5, 3, H, W) frames
t-2..t+2 for the context model; ImageNet normalisation happens here. Keypoints come out in
model-input pixels; callers map them to original frames with
:func:`~lightning_pose_lib.data.transforms.rescale_points`.

Training (losses, optimiser, Lightning) is :class:`~lightning_pose_lib.models.pose_model.PoseModel`,
a subclass with the same parameters: a prediction job loads a checkpoint into this class and so
never imports Lightning, which costs a fresh process more than a second.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.heatmaps import heatmaps_to_keypoints, spatial_softmax
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, rescale_points
from .backbones import create_backbone
from .heads import ContextHead, HeatmapHead, RegressionHead

HEATMAP_STRIDE = 4
CONTEXT = 2  # frames on each side of the centre frame for heatmap_mhcrnn


class PoseNetwork(nn.Module):
    def __init__(self, cfg: dict[str, Any], num_keypoints: int, keypoint_names: list[str] | None = None):
        super().__init__()
        self.cfg = cfg
        self.num_keypoints = num_keypoints
        self.keypoint_names = keypoint_names
        model_cfg = cfg["model"]
        self.model_type = model_cfg["model_type"]
        self.is_context = self.model_type == "heatmap_mhcrnn"
        # Several cameras: every view's frames go through this one network, stacked into the batch.
        self.num_views = len(cfg["data"]["view_names"] or [None])
        dims = cfg["data"]["image_resize_dims"]
        self.input_hw = (dims["height"], dims["width"])
        self.heatmap_hw = (dims["height"] // HEATMAP_STRIDE, dims["width"] // HEATMAP_STRIDE)
        self.backbone = create_backbone(model_cfg["backbone"])  # random init; weights come from a checkpoint or PoseModel.setup
        if self.model_type == "regression":
            self.head = RegressionHead(self.backbone.out_channels, num_keypoints)
        else:
            self.head = HeatmapHead(self.backbone.out_channels, num_keypoints, self.backbone.stride)
        if self.is_context:
            self.context_head = ContextHead(self.backbone.out_channels, num_keypoints, self.backbone.stride)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features of any leading shape (..., 3, H, W) -> (..., C, H/s, W/s), s the backbone's stride."""
        lead = images.shape[:-3]
        out = self.backbone(((images.flatten(0, -4) if lead else images[None]) - self.mean) / self.std)
        return out.view(*lead, *out.shape[1:])

    def _keypoints(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        heatmaps = spatial_softmax(logits)
        points, likelihood = heatmaps_to_keypoints(heatmaps)
        return {"heatmaps": heatmaps, "keypoints": rescale_points(points, self.heatmap_hw, self.input_hw), "likelihood": likelihood}

    def heads(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features (B, C, h, w), or (B, 5, C, h, w) for the context model -> predictions."""
        if self.model_type == "regression":
            normalized = self.head(features).float()
            keypoints = rescale_points(normalized - 0.5, (1, 1), self.input_hw)  # (0, 1) box -> pixels
            return {"normalized_keypoints": normalized, "keypoints": keypoints, "likelihood": torch.ones_like(keypoints[..., 0])}
        if not self.is_context:
            return self._keypoints(self.head(features))
        static = self._keypoints(self.head(features[:, CONTEXT]))
        context = self._keypoints(self.context_head(features))
        # Each keypoint takes the more confident head.
        use_context = context["likelihood"] > static["likelihood"]
        return {
            "heatmaps": static["heatmaps"],
            "context_heatmaps": context["heatmaps"],
            "static_keypoints": static["keypoints"],
            "static_likelihood": static["likelihood"],
            "context_keypoints": context["keypoints"],
            "context_likelihood": context["likelihood"],
            "keypoints": torch.where(use_context[..., None], context["keypoints"], static["keypoints"]),
            "likelihood": torch.maximum(context["likelihood"], static["likelihood"]),
        }

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images in [0, 1] -> {"keypoints" (B, K, 2) model-input pixels, "likelihood" (B, K), ...}."""
        return self.heads(self.features(images))

    def forward_sequence(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Consecutive frames (T, 3, H, W) -> predictions for each frame; the backbone runs once per
        frame. For the context model the output covers frames 2..T-3 (those with full context)."""
        return self.sequence_heads(self.features(frames), [len(frames)])

    def sequence_heads(self, features: torch.Tensor, lengths: list[int], pad_to: int | None = None, heads=None) -> dict[str, torch.Tensor]:
        """Predictions from the backbone features of several runs of consecutive frames (of
        ``lengths``, concatenated; rows after them are ignored), so one batch can hold pieces of
        several videos. For the context model each run of T frames gives outputs for its frames
        2..T-3; all outputs are in order. ``pad_to``: run the heads on exactly this many rows
        (zeros after the real ones), so every batch has one shape and tuned kernels are reused;
        ``heads``: what runs the heads (default :meth:`heads`; prediction passes a CUDA graph)."""
        if self.is_context:
            windows, start = [], 0
            for n in lengths:
                run = features[start : start + n]
                windows.append(torch.stack([run[i : n - 2 * CONTEXT + i] for i in range(2 * CONTEXT + 1)], dim=1))
                start += n
            rows = torch.cat(windows) if len(windows) > 1 else windows[0]
        else:
            rows = features[: sum(lengths)]
        count = len(rows)
        if pad_to is not None and count < pad_to:
            rows = torch.cat([rows, rows.new_zeros(pad_to - count, *rows.shape[1:])])
        out = (heads or self.heads)(rows)
        return out if len(rows) == count else {key: value[:count] for key, value in out.items()}

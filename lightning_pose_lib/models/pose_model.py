"""The Lightning module: backbone + head, its losses, optimiser and schedule.

Inputs are float images (B, 3, H, W) in [0, 1] at the model size; ImageNet normalisation happens
here. Keypoints come out in model-input pixels; callers map them to original frames with
:func:`~lightning_pose_lib.data.transforms.rescale_points`.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..data.augment import Augmentation
from ..data.heatmaps import heatmaps_to_keypoints, make_heatmaps, spatial_softmax
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, rescale_points
from ..losses import build_loss
from .backbones import create_backbone
from .heads import HeatmapHead, RegressionHead

HEATMAP_STRIDE = 4


class PoseModel(pl.LightningModule):
    def __init__(self, cfg: dict[str, Any], num_keypoints: int, keypoint_names: list[str] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = cfg
        self.num_keypoints = num_keypoints
        model_cfg = cfg["model"]
        self.model_type = model_cfg["model_type"]
        dims = cfg["data"]["image_resize_dims"]
        self.input_hw = (dims["height"], dims["width"])
        self.heatmap_hw = (dims["height"] // HEATMAP_STRIDE, dims["width"] // HEATMAP_STRIDE)
        self.backbone = create_backbone(model_cfg["backbone"], model_cfg["backbone_pretrained"])
        if self.model_type == "regression":
            self.head = RegressionHead(self.backbone.out_channels, num_keypoints)
            self.supervised_loss = build_loss("regression_mse")
        else:
            self.head = HeatmapHead(self.backbone.out_channels, num_keypoints)
            self.supervised_loss = build_loss(f"heatmap_{model_cfg['heatmap_loss_type']}")
        self.augment = Augmentation(cfg["training"]["imgaug"])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ----- inference -------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images in [0, 1] -> {"keypoints" (B, K, 2) model-input pixels, "likelihood" (B, K), ...}."""
        features = self.backbone((images - self.mean) / self.std)
        if self.model_type == "regression":
            normalized = self.head(features).float()
            size = normalized.new_tensor([self.input_hw[1], self.input_hw[0]])
            keypoints = normalized * size - 0.5
            return {"normalized_keypoints": normalized, "keypoints": keypoints, "likelihood": torch.ones_like(keypoints[..., 0])}
        heatmaps = spatial_softmax(self.head(features))
        points, likelihood = heatmaps_to_keypoints(heatmaps)
        keypoints = rescale_points(points, self.heatmap_hw, self.input_hw)
        return {"heatmaps": heatmaps, "keypoints": keypoints, "likelihood": likelihood}

    # ----- training --------------------------------------------------------------------------
    def _supervised(self, batch: dict, stage: str, augment: bool) -> tuple[torch.Tensor, dict]:
        images, keypoints = batch["image"], batch["keypoints"]
        if augment:
            images, keypoints = self.augment(images, keypoints)
        out = self(images)
        if self.model_type == "regression":
            size = keypoints.new_tensor([self.input_hw[1], self.input_hw[0]])
            out["target_normalized_keypoints"] = (keypoints + 0.5) / size
        else:
            points = rescale_points(keypoints, self.input_hw, self.heatmap_hw)
            out["target_heatmaps"] = make_heatmaps(points, self.heatmap_hw)
        loss = self.supervised_loss(out)
        self.log(f"{stage}_{self.supervised_loss.name}_loss", loss, batch_size=len(images), prog_bar=stage == "val")
        return loss, {**out, "target_keypoints": keypoints}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._supervised(batch, "train", augment=True)
        self.log("train_total_loss", loss, batch_size=len(batch["image"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, out = self._supervised(batch, "val", augment=False)
        error = self.pixel_error(out["keypoints"], out["target_keypoints"], batch["orig_hw"])
        labeled = ~torch.isnan(error)
        if labeled.any():
            self.log("val_pixel_error", error[labeled].mean(), batch_size=int(labeled.sum()), prog_bar=True)

    def pixel_error(self, pred: torch.Tensor, target: torch.Tensor, orig_hw: torch.Tensor) -> torch.Tensor:
        """Euclidean error (B, K) in original-frame pixels; NaN where the target is unlabeled."""
        errors = []
        for p, t, hw in zip(pred.float(), target.float(), orig_hw):
            size = tuple(hw.tolist())
            errors.append(torch.linalg.norm(rescale_points(p, self.input_hw, size) - rescale_points(t, self.input_hw, size), dim=-1))
        return torch.stack(errors)

    def configure_optimizers(self):
        train = self.cfg["training"]
        lr = train["optimizer_params"]["learning_rate"]
        optimizer_class = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[train["optimizer"]]
        head_params = [p for name, p in self.named_parameters() if not name.startswith("backbone.")]
        optimizer = optimizer_class(
            [{"params": self.backbone.parameters(), "lr": lr}, {"params": head_params, "lr": lr}], lr=lr
        )
        step = train["lr_scheduler_params"]["multisteplr"]
        schedule = StepSchedule(step["milestones"], step["gamma"])
        warmup = BackboneWarmup(train["unfreezing_epoch"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [warmup.combined(schedule), schedule])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


class StepSchedule:
    """Learning-rate factor of a multi-step schedule: gamma ** (milestones passed)."""

    def __init__(self, milestones: list[int], gamma: float):
        self.milestones, self.gamma = sorted(milestones), gamma

    def __call__(self, epoch: int) -> float:
        return self.gamma ** sum(epoch >= m for m in self.milestones)


class BackboneWarmup:
    """Backbone factor: 0 before ``unfreezing_epoch``, then 0.1 growing x1.5 per epoch up to 1 (upstream)."""

    def __init__(self, unfreezing_epoch: int):
        self.unfreezing_epoch = unfreezing_epoch

    def __call__(self, epoch: int) -> float:
        if self.unfreezing_epoch == 0:
            return 1.0
        if epoch < self.unfreezing_epoch:
            return 0.0
        return min(1.0, 0.1 * 1.5 ** (epoch - self.unfreezing_epoch))

    def combined(self, schedule: StepSchedule):
        return _Product(self, schedule)


class _Product:
    # A picklable product of two schedules (LambdaLR stores its callables in checkpoints).
    def __init__(self, a, b):
        self.a, self.b = a, b

    def __call__(self, epoch: int) -> float:
        return self.a(epoch) * self.b(epoch)

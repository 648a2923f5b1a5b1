"""The Lightning module that trains a :class:`~lightning_pose_lib.models.network.PoseNetwork`:
losses, optimiser and schedule, around the same parameters (a checkpoint of either loads into the other).

Training steps take a labeled batch, or ``{"labeled": ..., "unlabeled": ...}`` for semi-supervised
models, whose unsupervised losses (``model.losses_to_use``) act on the predictions for unlabeled
clips in original-frame pixels, weighted by ``1 / (2 exp(log_weight))`` and annealed in over epochs.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..data.augment import Augmentation
from ..data.heatmaps import make_heatmaps
from ..data.transforms import rescale_points
from ..errors import InputError
from ..losses import build_loss, weight_from_log_weight
from .backbones import load_pretrained
from .cuda_graphs import TrainingGraph
from .network import PoseNetwork
from .schedules import BackboneWarmup, StepSchedule


class PoseModel(PoseNetwork, pl.LightningModule):
    def __init__(self, cfg: dict[str, Any], num_keypoints: int, keypoint_names: list[str] | None = None):
        super().__init__(cfg, num_keypoints, keypoint_names)
        self.save_hyperparameters()
        model_cfg = cfg["model"]
        self.supervised_loss = build_loss("regression_mse" if self.model_type == "regression" else f"heatmap_{model_cfg['heatmap_loss_type']}")
        self.augment = Augmentation(cfg["training"]["imgaug"])
        self.unsupervised = nn.ModuleDict()  # filled by use_unsupervised_losses() for training
        # The annealing factor of the unsupervised losses, set before each step: on the device, so a
        # captured training step reads the current value.
        self.register_buffer("importance", torch.zeros(()), persistent=False)
        self.step_graph: TrainingGraph | bool | None = None  # see training_step

    def use_unsupervised_losses(self, pcas: dict) -> None:
        """Build the losses of ``model.losses_to_use``; ``pcas`` are the fitted Pose PCAs by kind."""
        settings = self.cfg["losses"]
        for name in self.cfg["model"]["losses_to_use"]:
            params = dict(settings[name])
            if name.startswith("pca_"):
                kind = name.removeprefix("pca_")
                if kind not in pcas:
                    key = "columns_for_singleview_pca" if kind == "singleview" else "mirrored_column_matches (or data.view_names)"
                    raise InputError("config", f"loss {name} needs data.{key}")
                params["pca"] = pcas[kind]
            self.unsupervised[name] = build_loss(name, **params)

    @staticmethod
    def _unit_range(images: torch.Tensor) -> torch.Tensor:
        """Frames travel as uint8 (0-255); the model takes floats in [0, 1]."""
        return images.float().div_(255.0) if images.dtype == torch.uint8 else images

    def _supervised_loss(self, out: dict, keypoints: torch.Tensor) -> torch.Tensor:
        if self.model_type == "regression":
            width, height = self.input_hw[1], self.input_hw[0]
            out["target_normalized_keypoints"] = torch.stack([(keypoints[..., 0] + 0.5) / width, (keypoints[..., 1] + 0.5) / height], -1)
            return self.supervised_loss(out)
        targets = make_heatmaps(rescale_points(keypoints, self.input_hw, self.heatmap_hw), self.heatmap_hw)
        loss = self.supervised_loss({"heatmaps": out["heatmaps"], "target_heatmaps": targets})
        if self.is_context:  # both heads learn from the labels, equally
            context_loss = self.supervised_loss({"heatmaps": out["context_heatmaps"], "target_heatmaps": targets})
            loss = (loss + context_loss) / 2
        return loss

    def unsupervised_importance(self) -> float:
        """Annealing factor of the unsupervised losses at the current epoch (0 until
        ``freeze_until_epoch``, then growing linearly to ``final_val``); a pure function of the
        epoch, so a resumed run continues the same schedule."""
        a = self.cfg["callbacks"]["anneal_weight"]
        if self.current_epoch < a["freeze_until_epoch"]:
            return 0.0
        return min(a["init_val"] + (self.current_epoch - a["freeze_until_epoch"]) * a["increase_factor"], a["final_val"])

    def _unsupervised(self, features: torch.Tensor, orig_hw: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unsupervised losses on the backbone features (C, T, ...) of C clips of T frames: each
        loss, each weighted (``importance`` x weight x loss), and their sum under "total"."""
        outs = [self.sequence_heads(clip, [len(clip)]) for clip in features]
        heads = ("static_", "context_") if self.is_context else ("",)
        losses = {"total": features.new_zeros((), dtype=torch.float32)}
        for name, loss_fn in self.unsupervised.items():
            values = []
            for prefix in heads:
                keypoints = torch.stack([rescale_points(o[f"{prefix}keypoints"], self.input_hw, hw) for o, hw in zip(outs, orig_hw)])
                likelihood = torch.stack([o[f"{prefix}likelihood"] for o in outs])
                if name == "pca_multiview" and self.num_views > 1:
                    # The clips are the views of each session's clip (view-major): lay each
                    # frame's views side by side, as the multiview PCA was fitted.
                    keypoints, likelihood = self.views_side_by_side(keypoints), self.views_side_by_side(likelihood)
                values.append(loss_fn({"keypoints": keypoints, "likelihood": likelihood}))
            value = torch.stack(values).mean()
            weighted = self.importance * weight_from_log_weight(self.cfg["losses"][name]["log_weight"]) * value
            losses[f"{name}_loss"], losses[f"{name}_loss_weighted"] = value, weighted
            losses["total"] = losses["total"] + weighted
        return losses

    def views_side_by_side(self, values: torch.Tensor) -> torch.Tensor:
        """(C x V, T, K, ...) per-view clip values, the V views of each clip in a row -> (C, T, V x K, ...)."""
        views = values.unflatten(0, (-1, self.num_views))  # (C, V, T, K, ...)
        return views.transpose(1, 2).flatten(2, 3)

    def stack_views(self, batch: dict, keys: tuple[str, ...]) -> dict:
        """Several cameras: each item's views (dim 1) become items of their own, view-major within
        each item, so one network sees every view's frames."""
        if self.num_views == 1:
            return batch
        return {**batch, **{key: batch[key].flatten(0, 1) for key in keys}}

    def on_train_epoch_start(self) -> None:
        # Once an epoch, not in every step: logging a number copies it to the GPU, and that copy
        # makes the CPU wait for the GPU.
        if len(self.unsupervised):
            self.log("unsupervised_importance", self.unsupervised_importance(), on_step=False, on_epoch=True)

    def training_losses(self, images: torch.Tensor, keypoints: torch.Tensor, frames: torch.Tensor | None = None,
                        clips_hw: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One training step's losses from its tensors alone: the labeled ``images`` (uint8 or
        float) and ``keypoints``, and for the unsupervised losses the uint8 clips ``frames``
        (C, T, 3, H, W) with their original sizes ``clips_hw`` (C, 2). The total (to minimise) is
        under "total_loss"; the parts are detached, for logging. No value is read back and no tensor
        made from host data, so a GPU can capture it as a CUDA graph."""
        images, keypoints = self.augment(self._unit_range(images), keypoints)
        if frames is None:
            features = self.features(images)
        else:
            # One backbone pass over the labeled frames and the unlabeled clips together (as
            # FixMatch does; batch norm sees both): the step is bound by the CPU queuing kernels,
            # and a second pass queued the backbone's kernels twice (benchmarks/train_step.py).
            lead = images.shape[:-3]
            both = self.features(torch.cat([images.flatten(0, -4), self._unit_range(frames).flatten(0, 1)]))
            split = lead.numel()
            features = both[:split].view(*lead, *both.shape[1:])
            clip_features = both[split:].view(*frames.shape[:2], *both.shape[1:])
        supervised = self._supervised_loss(self.heads(features), keypoints)
        losses = {f"{self.supervised_loss.name}_loss": supervised}
        total = supervised
        if frames is not None:
            unsupervised = self._unsupervised(clip_features, clips_hw)
            total = total + unsupervised.pop("total")
            losses.update(unsupervised)
        return {**{name: value.detach() for name, value in losses.items()}, "total_loss": total}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        labeled = self.stack_views(batch["labeled"] if "labeled" in batch else batch, ("image", "keypoints", "orig_hw"))
        inputs = [labeled["image"], labeled["keypoints"]]
        if "unlabeled" in batch and len(self.unsupervised):
            unlabeled = self.stack_views(batch["unlabeled"], ("frames", "orig_hw"))
            inputs += [unlabeled["frames"], unlabeled["orig_hw"]]
        self.importance.fill_(self.unsupervised_importance())  # a number as kernel argument: no copy
        losses = self._graphed_training_losses(inputs)
        if self._writes_step_logs():
            for name, value in losses.items():
                self.log(f"train_{name}", value, batch_size=len(labeled["keypoints"]))
        return losses["total_loss"]

    def _writes_step_logs(self) -> bool:
        # Whether Lightning writes this step's logged values (every log_every_n_steps; the test is
        # the one its own LearningRateMonitor makes). Each self.log costs ~0.3 ms of the CPU that
        # queues the GPU's work, and values logged on other steps are dropped unread.
        trainer = self._trainer
        return trainer is None or trainer._logger_connector.should_update_logs

    def _graphed_training_losses(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`training_losses`, on a GPU (``training.cuda_graphs``) as CUDA graphs replayed:
        the step is bound by the CPU queuing its hundreds of kernels, not by the GPU
        (benchmarks/train_step.py). Captured at the first step, for its shapes; steps of other
        shapes run eagerly, and so does everything if the capture fails."""
        if not (inputs[0].is_cuda and torch.is_grad_enabled() and self.cfg["training"]["cuda_graphs"]) or self.step_graph is False:
            return self.training_losses(*inputs)
        if self.step_graph is None:
            try:
                self.step_graph = TrainingGraph(self.training_losses, inputs, self.parameters(), state=list(self.buffers()))
            except RuntimeError as err:
                warnings.warn(f"capturing the training step as a CUDA graph failed, training eagerly: {err}")
                self.step_graph = False
                return self.training_losses(*inputs)
        return self.step_graph(*inputs) if self.step_graph.fits(inputs) else self.training_losses(*inputs)

    def setup(self, stage: str) -> None:
        # Pretrained weights are loaded when training starts, not when the model is built: a model
        # loaded from its checkpoint (prediction) then needs neither the network nor the weights
        # cache. A resumed training loads them and Lightning then restores the checkpoint over them;
        # model.checkpoint's weights take their place.
        model_cfg = self.cfg["model"]
        if stage == "fit" and model_cfg["backbone_pretrained"] and not model_cfg["checkpoint"]:
            load_pretrained(self.backbone, model_cfg["backbone"], model_cfg["backbone_pretrained"], allow_random_init=model_cfg["allow_random_init_fallback"])

    def on_validation_epoch_start(self) -> None:
        # Under DDP every rank's batch-norm statistics follow its own batches (the strategy does not
        # broadcast buffers each step; train._strategy): every rank validates rank 0's model, the
        # one checkpoints hold.
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            for buffer in self.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        batch = self.stack_views(batch, ("image", "keypoints", "orig_hw"))
        out = self(self._unit_range(batch["image"]))
        loss = self._supervised_loss(out, batch["keypoints"])
        # Validation values are averaged over the devices of a multi-device run (sync_dist): every
        # rank then agrees on the best epoch. (Training values are logged by rank 0 alone.)
        self.log(f"val_{self.supervised_loss.name}_loss", loss, batch_size=len(batch["keypoints"]), prog_bar=True, sync_dist=True)
        error = self.pixel_error(out["keypoints"], batch["keypoints"], batch["orig_hw"])
        labeled = ~torch.isnan(error)
        if labeled.any():
            self.log("val_pixel_error", error[labeled].mean(), batch_size=int(labeled.sum()), prog_bar=True, sync_dist=True)

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
            [{"params": self.backbone.parameters(), "lr": lr}, {"params": head_params, "lr": lr}], lr=lr,
            fused=self.device.type == "cuda",  # one kernel for all parameters instead of several per tensor
        )
        step = train["lr_scheduler_params"]["multisteplr"]
        schedule = StepSchedule(step["milestones"], step["gamma"])
        warmup = BackboneWarmup(train["unfreezing_epoch"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [warmup.combined(schedule), schedule])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

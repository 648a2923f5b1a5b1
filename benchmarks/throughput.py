#!/usr/bin/env python
"""Prediction and training throughput against the model's own ceiling, measured in one run.

    python benchmarks/throughput.py --data DATASET_DIR --out OUT [--copies 32] [--backbone resnet50]
        [--size 256] [--context] [--decoders 8] [--train-epochs 20]

On whatever device it finds (a GPU when there is one), with a model trained briefly on DATASET_DIR
(a label CSV + videos/, e.g. the mirror-mouse example) so that its heatmaps are real:

(a) model-only frames/s: forward + keypoint extraction on frames already on the device (bf16 on GPU);
(b) end-to-end prediction frames/s over ``--copies`` copies of the dataset's first video (decode,
    resize, normalise, forward, keypoints, CSV + H5 writing): ``predict_videos`` with concurrent
    decoders, and a plain one-video-at-a-time loop (decode a batch, then forward, fp32) as baseline;
(c) training steps/s of a semi-supervised model with its real data loading (labeled batches +
    unlabeled clips) and with the same shapes as synthetic tensors already on the device;
plus the bf16-vs-fp32 keypoint difference on the same frames and peak GPU memory. Prints ratios
(b)/(a), (b)/(baseline), (c real)/(c synthetic) and writes everything to OUT/throughput.json.
"""

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch

import lightning_pose_lib
from lightning_pose_lib.config import load_config
from lightning_pose_lib.data.labeled import LabeledFrames
from lightning_pose_lib.data.transforms import rescale_points, to_model_input
from lightning_pose_lib.data.unlabeled import list_videos
from lightning_pose_lib.dataset import load_dataset
from lightning_pose_lib.predict import _autocast, default_device, load_model, predict_videos
from lightning_pose_lib.train import _fit_pcas, _train_loader, train
from lightning_pose_lib.models.pose_model import PoseModel
from lightning_pose_lib.video import choose_backend, open_video


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def model_only(model, batch, repeats=20):
    """Frames/s of the model alone on frames already on the device, keypoints included (the
    context model runs over a sequence, its backbone once per frame, as in prediction)."""
    extra = 4 if model.is_context else 0
    frames = torch.rand(batch + extra, 3, *model.input_hw, device=model.device)
    run = model.forward_sequence if model.is_context else model
    with torch.inference_mode(), _autocast(model, "auto"):
        for _ in range(3):
            run(frames)
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            run(frames)["keypoints"].sum().item()
        sync()
    return batch * repeats / (time.perf_counter() - start)


def plain_loop(model, videos, batch, backend):
    """Baseline: one video at a time, decode a batch then run the model on it, fp32 (the context
    model over each batch as a sequence)."""
    run = model.forward_sequence if model.is_context else model
    start = time.perf_counter()
    frames_done = 0
    for video in videos:
        with open_video(video, backend=backend) as reader, torch.inference_mode():
            for indices, frames in reader.iter_batches(batch):
                out = run(to_model_input(frames, model.input_hw, model.device))
                rescale_points(out["keypoints"], model.input_hw, (reader.info.height, reader.info.width)).cpu()
                frames_done += len(indices)
    sync()
    return frames_done / (time.perf_counter() - start)


def training_rates(cfg, steps=30):
    """Steps/s with the real loaders vs with synthetic tensors of the same shapes on the device."""
    dataset = load_dataset(cfg)
    size_hw = (cfg["data"]["image_resize_dims"]["height"], cfg["data"]["image_resize_dims"]["width"])
    train_set = LabeledFrames(dataset.labels, dataset.data_dir, size_hw, dataset.rows("train"), context=cfg["model"]["do_context"])
    device = default_device()
    model = PoseModel(cfg, dataset.labels.num_keypoints).to(device)
    model.use_unsupervised_losses(_fit_pcas(cfg, dataset, None))
    model.log = lambda *a, **k: None
    model.unsupervised_importance = lambda: 1.0  # no trainer here: use the losses at full weight
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    precision = cfg["training"]["precision"]
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and precision == "bf16-mixed")

    def step(batch):
        with amp:
            loss = model.training_step(batch, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def to_device(batch):
        if isinstance(batch, dict):
            return {k: to_device(v) for k, v in batch.items()}
        return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch

    loader = _train_loader(cfg, dataset, train_set, size_hw)
    iterator = iter(loader)
    item = next(iterator)
    batch0 = to_device(item[0] if isinstance(item, (list, tuple)) else item)
    for _ in range(3):
        step(batch0)
    sync()
    start, done = time.perf_counter(), 0
    while done < steps:
        try:
            item = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        step(to_device(item[0] if isinstance(item, (list, tuple)) else item))
        done += 1
    sync()
    real = steps / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch0)
    sync()
    synthetic = steps / (time.perf_counter() - start)
    return real, synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=32)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--decoders", type=int, default=8)
    parser.add_argument("--context", action="store_true", help="the heatmap_mhcrnn context model")
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = default_device()
    overrides = [
        f"data.data_dir={args.data}", "data.video_dir=videos", f"model.backbone={args.backbone}", "model.backbone_pretrained=false",
        f"data.image_resize_dims.height={args.size}", f"data.image_resize_dims.width={args.size}",
        f"training.max_epochs={args.train_epochs}", "training.min_epochs=1", "training.unfreezing_epoch=0",
        "training.check_val_every_n_epoch=5", "training.train_prob=0.8", "training.val_prob=0.1",
        f"training.precision={'bf16-mixed' if device.type == 'cuda' else '32-true'}",
    ]
    if args.context:
        overrides += ["model.model_type=heatmap_mhcrnn", "model.do_context=true"]
    cfg = load_config(overrides=overrides)
    model_dir = args.out / ("context" if args.context else "model")
    if not (model_dir / "checkpoints" / "best.ckpt").exists():
        train(cfg, model_dir)
    model = load_model(model_dir, device).to(memory_format=torch.channels_last)
    size_hw = model.input_hw
    results = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "versions": {"lightning_pose_lib": lightning_pose_lib.__version__, "torch": torch.__version__, "cuda": torch.version.cuda},
        "model": f"{'heatmap_mhcrnn' if args.context else 'heatmap'} {args.backbone} {args.size}x{args.size}",
        "backend": choose_backend(args.backend),
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    results["model_only_fps"] = model_only(model, args.batch)

    video = sorted(list_videos(args.data / "videos"))[0]
    copies_dir = args.out / "copies"
    copies_dir.mkdir(exist_ok=True)
    videos = []
    for i in range(args.copies):
        copy = copies_dir / f"copy{i:03d}{Path(video).suffix}"
        if not copy.exists():
            copy.symlink_to(Path(video).resolve())
        videos.append(copy)
    jobs = [(v, args.out / "preds" / f"{v.stem}.csv", args.out / "preds" / f"{v.stem}.h5") for v in videos]
    predict_videos(model, jobs[:2], args.batch, args.backend, progress=False, decoders=2)  # warm-up
    start = time.perf_counter()
    outcome = predict_videos(model, jobs, args.batch, args.backend, progress=False, decoders=args.decoders)
    sync()
    total = sum(len(r.outcome) for r in outcome)
    results["end_to_end_fps"] = total / (time.perf_counter() - start)
    results["plain_loop_fps"] = plain_loop(model, videos[: max(2, args.copies // 8)], args.batch, args.backend)
    if device.type == "cuda":
        results["predict_peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9

    # bf16 vs fp32 on the same frames: keypoints of the first video
    fp32 = predict_videos(model, jobs[:1], args.batch, args.backend, progress=False, precision="fp32", decoders=1)[0].outcome
    bf16 = outcome[0].outcome
    diff = np.abs(fp32.to_numpy().reshape(len(fp32), -1, 3)[..., :2] - bf16.to_numpy().reshape(len(bf16), -1, 3)[..., :2])
    results["bf16_vs_fp32_px"] = {"mean": float(np.linalg.norm(diff, axis=-1).mean()), "median": float(np.median(np.linalg.norm(diff, axis=-1))), "p99": float(np.percentile(np.linalg.norm(diff, axis=-1), 99))}

    semi = load_config(overrides=overrides + ["model.losses_to_use=[temporal]"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    results["train_steps_per_s_real"], results["train_steps_per_s_synthetic"] = training_rates(semi)
    if device.type == "cuda":
        results["train_peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9

    results["ratio_end_to_end_over_model_only"] = results["end_to_end_fps"] / results["model_only_fps"]
    results["ratio_end_to_end_over_plain_loop"] = results["end_to_end_fps"] / results["plain_loop_fps"]
    results["ratio_train_real_over_synthetic"] = results["train_steps_per_s_real"] / results["train_steps_per_s_synthetic"]
    (args.out / "throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(args.out / "preds", ignore_errors=True)
    for key, value in results.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()

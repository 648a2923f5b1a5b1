#!/usr/bin/env python
"""What resizing the decoded frames to the model input costs on the GPU, next to the model itself.

    python benchmarks/preprocess.py [--batch 128] [--size 256] [--frame 396 406]

Frames/s (uint8 frames already on the GPU, batches queued back to back, one sync at the end) of:
the model alone on channels-last and on NCHW input; each way of resizing alone; and each way of
resizing followed by the model. ResNet-50 heatmap model, bf16, channels-last weights.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from lightning_pose_lib.config import load_config
from lightning_pose_lib.models.pose_model import PoseModel


def rate(fn, batch, repeats=40):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frame", type=int, nargs=2, default=[396, 406])
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    size = (args.size, args.size)
    cfg = load_config(overrides=["model.backbone=resnet50", "model.backbone_pretrained=false", f"data.image_resize_dims.height={args.size}", f"data.image_resize_dims.width={args.size}"])
    model = PoseModel(cfg, 14).cuda().eval().to(memory_format=torch.channels_last)
    frames = torch.randint(0, 256, (args.batch, *args.frame, 3), dtype=torch.uint8, device="cuda")
    ready_cl = torch.rand(args.batch, 3, *size, device="cuda").contiguous(memory_format=torch.channels_last)
    ready_nchw = torch.rand(args.batch, 3, *size, device="cuda")
    resizes = {
        "interpolate antialias fp32": lambda: F.interpolate(frames.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", antialias=True).div_(255),
        "interpolate antialias fp32 NCHW": lambda: F.interpolate(frames.permute(0, 3, 1, 2).contiguous().float(), size=size, mode="bilinear", antialias=True).div_(255),
        "interpolate no antialias fp32": lambda: F.interpolate(frames.permute(0, 3, 1, 2).float(), size=size, mode="bilinear").div_(255),
    }
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, batch {args.batch}, frames {args.frame} -> {size}")
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        base = rate(lambda: model(ready_cl), args.batch)
        print(f"{'model alone, channels-last input':45s} {base:8.0f} frames/s  1.00")
        value = rate(lambda: model(ready_nchw), args.batch)
        print(f"{'model alone, NCHW input':45s} {value:8.0f} frames/s  {value / base:.2f}")
        for name, resize in resizes.items():
            alone = rate(resize, args.batch)
            both = rate(lambda: model(resize()), args.batch)
            print(f"{'resize: ' + name:45s} {alone:8.0f} frames/s; with the model {both:8.0f} frames/s  {both / base:.2f}")


if __name__ == "__main__":
    main()

"""How long the Ensemble Kalman Smoother takes per 1,000 frames and keypoint, on CPU.

Members' predictions are simulated (smooth trajectories of body parts seen in two mirrored views,
Gaussian noise and occasional large errors per member) so that any frame and keypoint count can be
timed. Prints the fusion time of the library's smoother (lightning_pose_lib.ensemble.fuse), single
view and mirrored, with the smoothing parameter chosen per keypoint (the usual case) and given;
with ``--eks-python`` (a Python that has the ensemble-kalman-smoother package), the package's time
on the same input too (it runs in its own process: that time includes its imports and JIT).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lightning_pose_lib.ensemble import fuse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def simulate(frames: int, parts: int, members: int, seed: int = 0):
    """Truth (N, 2P, 2) and members' points (M, N, 2P, 2) and likelihoods: P body parts, each seen
    in a top view (keypoints 0..P-1) and a mirrored side view (P..2P-1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (3, parts))
    world = np.stack([100 + 40 * np.sin(t / 50 + phase[0]), 100 + 30 * np.cos(t / 70 + phase[1]), 10 + 5 * np.sin(t / 25 + phase[2])], -1)
    truth = np.concatenate([world[..., :2], np.stack([400 - world[..., 0], 300 - 0.8 * world[..., 1] - 0.5 * world[..., 2]], -1)], axis=1)
    noise = rng.normal(0, 1.5, (members, *truth.shape))
    outliers = rng.random((members, frames, 2 * parts)) < 0.05
    noise[outliers] += rng.normal(0, 15, (int(outliers.sum()), 2))
    likelihood = np.where(outliers, 0.5, 0.95) + rng.uniform(-0.05, 0.05, outliers.shape)
    return truth, truth[None] + noise, likelihood


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--parts", type=int, default=8, help="body parts; keypoints = 2 x parts (two views)")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="the best of this many runs is reported")
    parser.add_argument("--eks-python", help="a Python with the ensemble-kalman-smoother package, to time it too")
    args = parser.parse_args()
    truth, points, likelihood = simulate(args.frames, args.parts, args.members)
    keypoints = 2 * args.parts
    views = [list(range(args.parts)), list(range(args.parts, keypoints))]
    unit = args.frames / 1000 * keypoints
    error = lambda p: float(np.linalg.norm(p - truth, axis=-1).mean())  # noqa: E731
    print(f"{args.members} members, {args.frames} frames x {keypoints} keypoints; CPU, {os.environ['OMP_NUM_THREADS']} thread(s)")
    print(f"member error {np.mean([error(p) for p in points]):.2f} px")
    for name, kwargs in (("single view, s chosen", {}), ("single view, s given", {"smooth_param": 1.0}),
                         ("mirrored, s chosen", {"views": views}), ("mirrored, s given", {"views": views, "smooth_param": 1.0})):
        best = np.inf
        for _ in range(args.repeats):
            start = time.perf_counter()
            fused = fuse(points, likelihood, **kwargs)
            best = min(best, time.perf_counter() - start)
        print(f"{name:24s} {best:7.2f} s = {best / unit * 1000:6.1f} ms per 1,000 frames and keypoint; "
              f"error median {error(fused.average):.2f} px, EKS {error(fused.keypoints):.2f} px")
    if args.eks_python:
        with tempfile.TemporaryDirectory() as tmp:
            for name, view_array in (("single view", np.zeros((0, 0), int)), ("mirrored", np.asarray(views))):
                np.savez(f"{tmp}/in.npz", points=points, likelihood=likelihood, views=view_array, smooth_param=np.nan)
                start = time.perf_counter()
                subprocess.run([args.eks_python, str(ROOT / "tests" / "eks_reference.py"), f"{tmp}/in.npz", f"{tmp}/out.npz"],
                               check=True, capture_output=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
                seconds = time.perf_counter() - start
                theirs = np.load(f"{tmp}/out.npz")
                print(f"package, {name + ', s chosen':15s} {seconds:7.2f} s = {seconds / unit * 1000:6.1f} ms per 1,000 frames and keypoint "
                      f"(with imports and JIT); error EKS {error(theirs['keypoints']):.2f} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())

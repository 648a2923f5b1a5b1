"""A synthetic example dataset rendered by the project's own code: a small animal seen in two views.

The animal walks in a 3D arena (x along it, y across it, z up). Each frame shows two orthographic
views side by side: on the left the top view (x, y), on the right a mirrored front view from above
(-x, and a mix of y and z). Both views are linear in the 3D position, so the four coordinates of a
body part seen in both views lie in a 3D subspace (what the multiview PCA loss exploits), and the
motion is smooth (what the temporal loss exploits). Each body part carries a coloured marker so a
small CNN can learn it. Everything is deterministic per seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from lightning_pose_lib.data.labels import pose_table, write_pose_table
from lightning_pose_lib.io import atomic_path
from lightning_pose_lib.video import open_video, write_video

PARTS = ["nose", "ear_l", "ear_r", "body", "tail_base", "tail_tip"]
VIEWS = ["top", "bot"]
KEYPOINTS = [f"{part}_{view}" for view in VIEWS for part in PARTS]
SCORER = "synthetic"

# Marker colour of each part (RGB): saturated, far from the grey floor and the brown fur.
PART_COLOURS = np.array(
    [
        [230, 40, 40],  # nose: red
        [40, 200, 60],  # ear_l: green
        [50, 90, 240],  # ear_r: blue
        [240, 220, 40],  # body: yellow
        [220, 60, 220],  # tail_base: magenta
        [40, 220, 230],  # tail_tip: cyan
    ],
    dtype=np.float32,
)
FUR = np.array([95, 70, 50], dtype=np.float32)
OUTLINE = np.array([20, 20, 20], dtype=np.float32)

# Geometry in units of "scale" (1 unit = 1 pixel for a 128-pixel view).
MARKER_RADIUS = 2.2
MAX_HEIGHT = 16.0  # no part rises higher than this above the floor
SIDE_Y, SIDE_Z = 0.5, 0.85  # the bottom view's row moves this much per unit of y and of z


def _scale(view_size: tuple[int, int]) -> float:
    return min(view_size) / 128


def _rotate(heading: float, forward: float, left: float) -> np.ndarray:
    """Body-frame (forward, left) offset to arena (x, y)."""
    c, s = np.cos(heading), np.sin(heading)
    return np.array([c * forward - s * left, s * forward + c * left])


def simulate_trajectory(rng: np.random.Generator, n_frames: int, view_size: tuple[int, int]) -> np.ndarray:
    """3D positions (x, y, z) of every part in every frame, shape (n_frames, len(PARTS), 3).

    x, y are top-view pixels; z is the height above the floor in the same units. Turning rate, speed
    and head pitch change smoothly, so consecutive frames differ by a few pixels at most.
    """
    height, width = view_size
    k = _scale(view_size)
    margin = (MARKER_RADIUS + 3) * k  # keeps whole markers inside both views
    position = np.array([width / 2, height / 2]) + rng.uniform(-10, 10, size=2) * k
    heading = rng.uniform(-np.pi, np.pi)
    turn_rate, speed, phase, pitch, pitch_target = 0.0, 0.8, rng.uniform(0, 2 * np.pi), 0.0, 0.0
    world = np.empty((n_frames, len(PARTS), 3))
    for t in range(n_frames):
        # Steer back towards the middle when the point ahead of the nose leaves the inner arena.
        ahead = position + _rotate(heading, 30 * k, 0)
        if not (35 * k < ahead[0] < width - 35 * k and 35 * k < ahead[1] < height - 35 * k):
            to_centre = np.arctan2(height / 2 - position[1], width / 2 - position[0])
            steer = 0.12 * np.sign(np.angle(np.exp(1j * (to_centre - heading))))
        else:
            steer = 0.0
        turn_rate = 0.92 * turn_rate + 0.015 * rng.standard_normal()
        heading += np.clip(turn_rate + steer, -0.15, 0.15)
        speed = np.clip(speed + 0.08 * rng.standard_normal() - 0.05 * (speed - 0.9), 0.05, 1.8)
        position = position + _rotate(heading, speed * k, 0)
        phase += 0.25 + 0.3 * speed  # the gait cycle runs faster when the animal runs
        if rng.random() < 0.02:  # now and then the animal lowers its nose to sniff, or looks up
            pitch_target = rng.uniform(-6, 3)
        pitch += 0.08 * (pitch_target - pitch)

        body_z = 8 + 0.8 * np.sin(phase)  # bobbing with each step
        swing = 0.5 * np.sin(phase / 2)  # the tail swings once every two steps
        offsets = [  # (forward, left, height above the floor) per part
            (15, 0, body_z + pitch + 0.6 * np.sin(phase + 1)),  # nose
            (8, 4.5, body_z + 4),  # ear_l
            (8, -4.5, body_z + 4),  # ear_r
            (0, 0.8 * np.sin(phase), body_z + 2),  # body: the top of the back sways a little
            (-14, 0, body_z - 1),  # tail_base
            (-14 - 18 * np.cos(swing), 18 * np.sin(swing), 1.0),  # tail_tip drags on the floor
        ]
        parts = np.array([[*(position + _rotate(heading, f * k, l * k)), z * k] for f, l, z in offsets])
        # Walls push the whole animal back inside, so it slides along them instead of jumping.
        low, high = margin, np.array([width, height]) - 1 - margin
        push = np.maximum(low - parts[:, :2].min(axis=0), 0) - np.maximum(parts[:, :2].max(axis=0) - high, 0)
        parts[:, :2] += push
        position = position + push
        world[t] = parts
    return world



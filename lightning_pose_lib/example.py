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
# The bottom view looks down at the arena from the front, 60 degrees below the horizon: steep
# enough that no two markers stay lined up along its view ray (at 30 degrees the nose hid behind
# an ear a quarter of the time). Its rows move SIDE_Y per unit of y and SIDE_Z per unit of z.
SIDE_Y, SIDE_Z = np.sin(np.radians(60)), np.cos(np.radians(60))


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
        # Steer back towards the middle when a point a little ahead of the animal leaves the inner arena.
        ahead = position + _rotate(heading, 20 * k, 0)
        if not (25 * k < ahead[0] < width - 25 * k and 25 * k < ahead[1] < height - 25 * k):
            to_centre = np.arctan2(height / 2 - position[1], width / 2 - position[0])
            steer = 0.08 * np.sign(np.angle(np.exp(1j * (to_centre - heading))))
        else:
            steer = 0.0
        turn_rate = 0.92 * turn_rate + 0.015 * rng.standard_normal()
        heading += np.clip(turn_rate + steer, -0.1, 0.1)
        speed = np.clip(speed + 0.08 * rng.standard_normal() - 0.05 * (speed - 0.9), 0.05, 1.8)
        position = position + _rotate(heading, speed * k, 0)
        phase += 0.2 + 0.25 * speed  # the gait cycle runs faster when the animal runs
        if rng.random() < 0.02:  # now and then the animal lowers its nose to sniff, or looks up
            pitch_target = rng.uniform(-4, 2)
        pitch += 0.08 * (pitch_target - pitch)

        body_z = 8 + 0.8 * np.sin(phase)  # bobbing with each step
        swing = 0.4 * np.sin(phase / 2)  # the tail swings once every two steps
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


def _bottom_view_origin(view_size: tuple[int, int]) -> float:
    """Row of the floor's near edge in the bottom view, chosen to centre the arena vertically."""
    height, _ = view_size
    return (height - 1) / 2 + (SIDE_Z * MAX_HEIGHT * _scale(view_size) + SIDE_Y * (height - 1)) / 2


def _views(view_size: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per view: (matrix 2x3, offset 2) mapping arena points to full-frame pixels (x right, y down),
    and the direction pointing away from that view's camera (larger = farther, drawn first)."""
    _, width = view_size
    top = (np.array([[1.0, 0, 0], [0, 1, 0]]), np.zeros(2), np.array([0.0, 0, -1]))
    # Mirrored in x (like a mirror beside the arena) and seen from the front and above: far (large y)
    # and high (large z) points appear higher up.
    bottom = (
        np.array([[-1.0, 0, 0], [0, -SIDE_Y, -SIDE_Z]]),
        np.array([2.0 * width - 1, _bottom_view_origin(view_size)]),
        np.array([0.0, SIDE_Z, -SIDE_Y]),
    )
    return [top, bottom]


def project_keypoints(world: np.ndarray, view_size: tuple[int, int]) -> np.ndarray:
    """Full-frame pixel coordinates of every keypoint (in KEYPOINTS order): (..., len(KEYPOINTS), 2)."""
    return np.concatenate([world @ m.T + offset for m, offset, _ in _views(view_size)], axis=-2)


def make_background(rng: np.random.Generator, view_size: tuple[int, int]) -> np.ndarray:
    """A session's static background, float32 (H, 2W, 3): a mottled floor, and a wall in the bottom view."""
    height, width = view_size
    tint = rng.uniform(95, 150) + rng.uniform(-12, 12, size=3)  # each session is lit a bit differently
    views = []
    for _ in VIEWS:
        # A coarse random grid, bilinearly upsampled, gives low-frequency blotches; then fine grain.
        coarse = rng.normal(0, 12, size=(height // 16 + 2, width // 16 + 2))
        rows = np.linspace(0, coarse.shape[0] - 1, height)
        cols = np.linspace(0, coarse.shape[1] - 1, width)
        blotches = np.array([np.interp(cols, np.arange(coarse.shape[1]), row) for row in coarse])
        blotches = np.array([np.interp(rows, np.arange(coarse.shape[0]), col) for col in blotches.T]).T
        views.append(tint + (blotches + rng.normal(0, 5, size=(height, width)))[..., None])
    far_edge = _bottom_view_origin(view_size) - SIDE_Y * (height - 1)  # where the floor meets the wall
    views[1][: int(far_edge)] *= 0.7
    return np.concatenate(views, axis=1).astype(np.float32)


def _window(canvas: np.ndarray, centre: np.ndarray, half: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Pixels around ``centre`` (clipped to the canvas): top row, left column, x and y of their centres."""
    x0, y0 = np.maximum(np.floor(centre - half), 0).astype(int)
    x1 = min(int(np.ceil(centre[0] + half[0])), canvas.shape[1] - 1)
    y1 = min(int(np.ceil(centre[1] + half[1])), canvas.shape[0] - 1)
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32)
    return y0, x0, xs, ys


def _blend(canvas: np.ndarray, top: int, left: int, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Paint ``colour`` (RGB, or one per pixel) with opacity ``alpha`` onto the window at (top, left)."""
    window = canvas[top : top + alpha.shape[0], left : left + alpha.shape[1]]
    a = alpha[..., None]
    window *= 1 - a
    window += a * colour


def _draw_disk(canvas: np.ndarray, centre: np.ndarray, radius: float, colour: np.ndarray) -> None:
    top, left, xs, ys = _window(canvas, centre, np.full(2, radius + 1))
    distance = np.hypot(xs - centre[0], ys - centre[1])
    _blend(canvas, top, left, np.clip(radius + 0.5 - distance, 0, 1), colour)  # 1-pixel soft edge


def _draw_segment(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float, colour: np.ndarray) -> None:
    top, left, xs, ys = _window(canvas, (start + end) / 2, np.abs(end - start) / 2 + radius + 1)
    direction = end - start
    along = ((xs - start[0]) * direction[0] + (ys - start[1]) * direction[1]) / max(direction @ direction, 1e-6)
    along = along.clip(0, 1)
    distance = np.hypot(xs - start[0] - along * direction[0], ys - start[1] - along * direction[1])
    _blend(canvas, top, left, np.clip(radius + 0.5 - distance, 0, 1), colour)


def _draw_ellipse(canvas: np.ndarray, centre: np.ndarray, shape: np.ndarray, colour: np.ndarray) -> None:
    """Fill {centre + d : d^T shape^-1 d <= 1}, lighter in the middle so the body looks rounded."""
    top, left, xs, ys = _window(canvas, centre, np.sqrt(np.diag(shape)) + 1)
    dx, dy = xs - centre[0], ys - centre[1]
    inverse = np.linalg.inv(shape)
    radius = np.sqrt(inverse[0, 0] * dx**2 + 2 * inverse[0, 1] * dx * dy + inverse[1, 1] * dy**2)
    # Pixels from the outline along the ray from the centre, for a 1-pixel soft edge.
    to_edge = (1 - radius) * np.hypot(dx, dy) / np.maximum(radius, 1e-6)
    shade = (1.25 - 0.4 * radius).clip(0.85, 1.25)[..., None]
    _blend(canvas, top, left, np.clip(to_edge + 0.5, 0, 1), colour * shade)


def _ellipsoid(
    front: np.ndarray, back: np.ndarray, half_length: float, half_width: float, half_height: float
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and 3x3 shape matrix of an ellipsoid whose long axis runs from ``back`` to ``front``."""
    axis = (front - back) / np.linalg.norm(front - back)
    side = np.cross([0.0, 0, 1], axis)
    side /= np.linalg.norm(side)
    up = np.cross(axis, side)
    shape = sum(r**2 * np.outer(v, v) for r, v in ((half_length, axis), (half_width, side), (half_height, up)))
    return (front + back) / 2, shape


def render_frame(
    parts: np.ndarray, background: np.ndarray, view_size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """One frame, uint8 (H, 2W, 3), from the 3D positions ``parts`` (len(PARTS), 3) of one time step.

    The markers' centres are exactly at :func:`project_keypoints` of ``parts``.
    """
    height, width = view_size
    k = _scale(view_size)
    nose, ear_l, ear_r, _, tail_base, tail_tip = parts
    ears = (ear_l + ear_r) / 2
    lower = np.array([0, 0, 2 * k])  # the fur's centre line runs below the ear and back markers
    body = _ellipsoid(ears - lower, tail_base - lower, np.linalg.norm(ears - tail_base) / 2 + 3 * k, 7 * k, 6 * k)
    head = _ellipsoid(nose, ears - lower, np.linalg.norm(nose - ears) / 2 + 2.5 * k, 4.5 * k, 4 * k)
    frame = background.copy()
    for view, (matrix, offset, away) in enumerate(_views(view_size)):
        canvas = frame[:, view * width : (view + 1) * width]  # drawing is clipped to the view
        offset = offset - [view * width, 0]  # full-frame to view pixels
        tail_start, tail_end = matrix @ tail_base + offset, matrix @ tail_tip + offset
        _draw_segment(canvas, tail_start, tail_end, 1.3 * k, FUR * 0.8)
        for centre, shape in (body, head):
            _draw_ellipse(canvas, matrix @ centre + offset, matrix @ shape @ matrix.T, FUR)
        # Markers, farthest first, so nearer ones cover them where they overlap.
        for part in np.argsort(-(parts @ away), kind="stable"):
            centre = matrix @ parts[part] + offset
            _draw_disk(canvas, centre, (MARKER_RADIUS + 1) * k, OUTLINE)
            _draw_disk(canvas, centre, MARKER_RADIUS * k, PART_COLOURS[part])
    frame += 3 * rng.standard_normal(frame.shape, dtype=np.float32)  # sensor noise, new every frame
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _labeled_per_session(view_size: tuple[int, int], n_sessions: int, frames_per_session: int, n_labeled: int) -> np.ndarray:
    """Checks the settings; the labeled frames of each session."""
    height, width = view_size
    if height % 2 or width % 2 or min(view_size) < 64:
        raise ValueError(f"view_size must be even and at least 64 pixels, got {view_size}")
    if n_sessions < 1 or not 1 <= n_labeled <= n_sessions * frames_per_session:
        raise ValueError(
            f"need n_sessions >= 1 and 1 <= n_labeled <= {n_sessions} x {frames_per_session} frames, "
            f"got {n_sessions} sessions and n_labeled={n_labeled}"
        )
    labeled_per_session = np.full(n_sessions, n_labeled // n_sessions)
    labeled_per_session[: n_labeled % n_sessions] += 1
    return labeled_per_session


def _save_frames(video: Path, frames: np.ndarray, folder: Path, n_frames: int) -> None:
    """Labeled frames as PNGs decoded from ``video`` (so they carry its compression), with their
    neighbours n-2..n+2 (unlabeled), as the Lightning Pose app does, for the context model."""
    context = np.unique(np.clip(frames[:, None] + np.arange(-2, 3), 0, n_frames - 1))
    with open_video(video, backend="pyav") as reader:  # numpy frames, on any machine
        images = dict(zip(context.tolist(), reader.read_frames(context)))
    for frame, image in images.items():
        with atomic_path(folder / f"img{frame:08d}.png") as tmp:
            Image.fromarray(image).save(tmp)


def make_example(
    out_dir: str | os.PathLike,
    seed: int = 0,
    n_sessions: int = 3,
    frames_per_session: int = 300,
    n_labeled: int = 120,
    view_size: tuple[int, int] = (128, 128),
    fps: float = 30.0,
    missing_prob: float = 0.03,
    cameras: int = 0,
) -> dict:
    """Write the example dataset to ``out_dir`` and return its paths and config fields.

    Writes ``videos/session{i}.mp4`` with ``videos/session{i}_truth.csv`` (every frame's keypoints,
    prediction layout), ``labeled-data/session{i}/img{frame:08d}.png`` (decoded video frames),
    ``CollectedData.csv`` (the labels, a fraction ``missing_prob`` of them left empty) and
    ``example.yaml`` (the fields to copy into a model config). ``view_size`` is (height, width) of
    one view; frames are two views wide.

    ``cameras`` = 2 or 3 writes the multi-camera variant instead (:func:`make_multicamera_example`).
    """
    if cameras:
        return make_multicamera_example(out_dir, cameras, seed, n_sessions, frames_per_session, n_labeled, view_size, fps, missing_prob)
    height, width = view_size
    labeled_per_session = _labeled_per_session(view_size, n_sessions, frames_per_session, n_labeled)
    out_dir = Path(out_dir)
    label_rng = np.random.default_rng(seed)  # which frames are labeled, which labels are missing

    videos, truth_files, image_paths, labels = [], [], [], []
    for session in range(n_sessions):
        # Its own stream per session, so adding sessions leaves the earlier ones unchanged.
        scene_rng = np.random.default_rng([seed, session])
        world = simulate_trajectory(scene_rng, frames_per_session, view_size)
        keypoints = project_keypoints(world, view_size)
        background = make_background(scene_rng, view_size)
        video = out_dir / "videos" / f"session{session}.mp4"
        write_video(video, (render_frame(parts, background, view_size, scene_rng) for parts in world), fps)
        truth = video.with_name(f"session{session}_truth.csv")
        write_pose_table(pose_table(keypoints, KEYPOINTS, SCORER, np.ones(keypoints.shape[:2])), truth)
        videos.append(str(video))
        truth_files.append(str(truth))

        frames = np.sort(label_rng.choice(frames_per_session, labeled_per_session[session], replace=False))
        _save_frames(video, frames, out_dir / f"labeled-data/session{session}", frames_per_session)
        for frame in frames.tolist():
            image_paths.append(f"labeled-data/session{session}/img{frame:08d}.png")
            labels.append(keypoints[frame])

    labels = np.round(np.stack(labels), 2)
    labels[label_rng.random(labels.shape[:2]) < missing_prob] = np.nan  # empty x and y: not labeled
    csv_file = out_dir / "CollectedData.csv"
    with atomic_path(csv_file) as tmp:
        pose_table(labels, KEYPOINTS, SCORER, index=image_paths).to_csv(tmp)

    n_parts = len(PARTS)
    fields = {
        "keypoint_names": list(KEYPOINTS),
        "num_keypoints": len(KEYPOINTS),
        "mirrored_column_matches": [list(range(n_parts)), list(range(n_parts, 2 * n_parts))],
        "columns_for_singleview_pca": list(range(n_parts)),
        "image_height": height,
        "image_width": 2 * width,
        "fps": float(fps),
        "seed": seed,
    }
    example_yaml = out_dir / "example.yaml"
    with atomic_path(example_yaml) as tmp:
        tmp.write_text(
            "# The synthetic example's settings; copy the keypoint fields into the model config's data section.\n"
            + yaml.safe_dump(fields, sort_keys=False, default_flow_style=None)
        )
    return {
        **fields,
        "out_dir": str(out_dir),
        "csv_file": str(csv_file),
        "videos": videos,
        "truth_files": truth_files,
        "example_yaml": str(example_yaml),
    }


# --- Several synchronized cameras -----------------------------------------------------------------
# The same animal filmed by 2-3 pinhole cameras around the arena, one video per camera. Each camera
# looks at the arena's centre from (azimuth, elevation) in degrees, from CAMERA_DISTANCE view widths
# away: far enough that the views are nearly affine (the multiview PCA's 3D subspace fits them to a
# fraction of a pixel), near enough that they are true perspective views for triangulation.
CAMERA_NAMES = ("cam0", "cam1", "cam2")
CAMERA_ANGLES = ((-30.0, 60.0), (90.0, 50.0), (210.0, 65.0))
CAMERA_DISTANCE = 4.0


def make_cameras(n_cameras: int, view_size: tuple[int, int]):
    """The example's cameras (:class:`~lightning_pose_lib.calibration.Camera`), each with a focal
    length that fits the whole arena into its view."""
    from .calibration import Camera, rodrigues_vector

    if not 2 <= n_cameras <= len(CAMERA_NAMES):
        raise ValueError(f"cameras must be 2 or 3, got {n_cameras}")
    height, width = view_size
    k = _scale(view_size)
    centre = np.array([width / 2, height / 2, MAX_HEIGHT * k / 2])
    corners = np.array([[x, y, z] for x in (0, width - 1) for y in (0, height - 1) for z in (0, MAX_HEIGHT * k)])
    cameras = []
    for name, (azimuth, elevation) in zip(CAMERA_NAMES, CAMERA_ANGLES[:n_cameras]):
        a, e = np.radians(azimuth), np.radians(elevation)
        position = centre + CAMERA_DISTANCE * max(view_size) * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
        forward = (centre - position) / np.linalg.norm(centre - position)
        right = np.cross(forward, [0.0, 0, 1])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])
        translation = -rotation @ position
        cam = corners @ rotation.T + translation
        reach = np.abs(cam[:, :2] / cam[:, 2:3]).max(axis=0)  # normalized half-extent of the arena
        focal = 0.95 * min((width - 1) / 2 / reach[0], (height - 1) / 2 / reach[1])
        matrix = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
        cameras.append(Camera(name, (width, height), matrix, np.zeros(5), rodrigues_vector(rotation), translation))
    return cameras


def render_camera_frame(parts: np.ndarray, background: np.ndarray, camera, view_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One camera's frame, uint8 (H, W, 3), of the 3D ``parts`` of one time step: the animal drawn
    as in :func:`render_frame`, each shape mapped by the camera's local (affine) projection, the
    markers' centres exactly at ``camera.project(parts)``."""
    k = _scale(view_size)
    focal = camera.matrix[0, 0]
    rotation = camera.extrinsics()[:, :3]

    def jacobian(point: np.ndarray) -> np.ndarray:  # d pixel / d world at ``point``
        x, y, z = camera.to_camera(point)
        return focal / z * np.array([[1, 0, -x / z], [0, 1, -y / z]]) @ rotation

    def pixel_radius(point: np.ndarray, radius: float) -> float:
        return radius * focal / camera.to_camera(point)[2]

    nose, ear_l, ear_r, _, tail_base, tail_tip = parts
    ears = (ear_l + ear_r) / 2
    lower = np.array([0, 0, 2 * k])
    body = _ellipsoid(ears - lower, tail_base - lower, np.linalg.norm(ears - tail_base) / 2 + 3 * k, 7 * k, 6 * k)
    head = _ellipsoid(nose, ears - lower, np.linalg.norm(nose - ears) / 2 + 2.5 * k, 4.5 * k, 4 * k)
    canvas = background.copy()
    _draw_segment(canvas, camera.project(tail_base), camera.project(tail_tip), pixel_radius(tail_base, 1.3 * k), FUR * 0.8)
    # Body before head when the head is nearer the camera, else the other way round.
    shapes = sorted((body, head), key=lambda s: -camera.to_camera(s[0])[2])
    for centre, shape in shapes:
        j = jacobian(centre)
        _draw_ellipse(canvas, camera.project(centre), j @ shape @ j.T, FUR)
    depth = camera.to_camera(parts)[:, 2]
    for part in np.argsort(-depth, kind="stable"):  # farthest first
        centre = camera.project(parts[part])
        _draw_disk(canvas, centre, pixel_radius(parts[part], (MARKER_RADIUS + 1) * k), OUTLINE)
        _draw_disk(canvas, centre, pixel_radius(parts[part], MARKER_RADIUS * k), PART_COLOURS[part])
    canvas += 3 * rng.standard_normal(canvas.shape, dtype=np.float32)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def make_multicamera_example(
    out_dir: str | os.PathLike,
    n_cameras: int = 3,
    seed: int = 0,
    n_sessions: int = 3,
    frames_per_session: int = 300,
    n_labeled: int = 120,
    view_size: tuple[int, int] = (128, 128),
    fps: float = 30.0,
    missing_prob: float = 0.03,
) -> dict:
    """The example animal filmed by ``n_cameras`` synchronized cameras, in upstream Lightning
    Pose's multiview layout. Writes per session and camera ``videos/session{i}_{cam}.mp4`` with
    ``videos/session{i}_{cam}_truth.csv`` (every frame's keypoints), the labeled frames
    ``labeled-data/session{i}_{cam}/img{frame:08d}.png`` (the same frames in every camera), one
    label CSV per camera ``CollectedData_{cam}.csv`` (rows aligned: row i is the same instant in
    every file), the cameras' ``calibration.toml`` (aniposelib's format) and ``example.yaml``."""
    from .calibration import write_calibration

    height, width = view_size
    labeled_per_session = _labeled_per_session(view_size, n_sessions, frames_per_session, n_labeled)
    cameras = make_cameras(n_cameras, view_size)
    views = [c.name for c in cameras]
    out_dir = Path(out_dir)
    label_rng = np.random.default_rng(seed)
    videos, truth_files, rows, labels = [], [], [], []
    for session in range(n_sessions):
        scene_rng = np.random.default_rng([seed, session])
        world = simulate_trajectory(scene_rng, frames_per_session, view_size)
        frames = np.sort(label_rng.choice(frames_per_session, labeled_per_session[session], replace=False))
        per_view = []
        for cam in cameras:
            background = make_background(scene_rng, view_size)[:, :width]  # its floor half
            video = out_dir / "videos" / f"session{session}_{cam.name}.mp4"
            write_video(video, (render_camera_frame(parts, background, cam, view_size, scene_rng) for parts in world), fps)
            keypoints = cam.project(world)
            truth = video.with_name(f"{video.stem}_truth.csv")
            write_pose_table(pose_table(keypoints, PARTS, SCORER, np.ones(keypoints.shape[:2])), truth)
            videos.append(str(video))
            truth_files.append(str(truth))
            _save_frames(video, frames, out_dir / f"labeled-data/session{session}_{cam.name}", frames_per_session)
            per_view.append(keypoints[frames])
        rows += [(session, frame) for frame in frames.tolist()]
        labels.append(np.stack(per_view))  # (V, n, K, 2)
    labels = np.round(np.concatenate(labels, axis=1), 2)
    labels[label_rng.random(labels.shape[:3]) < missing_prob] = np.nan
    csv_files = []
    for v, name in enumerate(views):
        csv_file = out_dir / f"CollectedData_{name}.csv"
        paths = [f"labeled-data/session{s}_{name}/img{f:08d}.png" for s, f in rows]
        with atomic_path(csv_file) as tmp:
            pose_table(labels[v], PARTS, SCORER, index=paths).to_csv(tmp)
        csv_files.append(str(csv_file))
    calibration = out_dir / "calibration.toml"
    write_calibration(calibration, cameras)
    fields = {
        "view_names": views,
        "csv_file": [Path(f).name for f in csv_files],
        "keypoint_names": list(PARTS),
        "num_keypoints": len(PARTS),
        "columns_for_singleview_pca": list(range(len(PARTS))),
        "calibration_file": calibration.name,
        "image_height": height,
        "image_width": width,
        "fps": float(fps),
        "seed": seed,
    }
    example_yaml = out_dir / "example.yaml"
    with atomic_path(example_yaml) as tmp:
        tmp.write_text(
            "# The synthetic multi-camera example's settings; copy the data fields into the model config's data section.\n"
            + yaml.safe_dump(fields, sort_keys=False, default_flow_style=None)
        )
    return {**fields, "out_dir": str(out_dir), "csv_files": csv_files, "videos": videos, "truth_files": truth_files, "example_yaml": str(example_yaml)}

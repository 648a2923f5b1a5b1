"""Camera calibrations in the TOML format aniposelib reads and writes, and 3D from several views.

A calibration file has one ``[cam_N]`` table per camera: ``name``, ``size = [width, height]``,
``matrix`` (3x3 intrinsics), ``distortions`` (OpenCV's k1, k2, p1, p2, k3), ``rotation`` (a
Rodrigues vector) and ``translation``; a world point X is at ``R X + t`` in the camera's frame
(x right, y down, z forward), pixel centres at integer coordinates, as OpenCV.

Triangulation is the linear (DLT) least-squares point of the views that see a keypoint; its
reprojection error, per view, is how far the 3D point lands from that view's 2D keypoint.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InputError
from .io import write_text_atomic


def rodrigues_matrix(vector) -> np.ndarray:
    """Rotation matrix of a Rodrigues vector (axis times angle in radians)."""
    vector = np.asarray(vector, dtype=np.float64)
    angle = np.linalg.norm(vector)
    if angle < 1e-12:
        return np.eye(3)
    x, y, z = vector / angle
    cross = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def rodrigues_vector(matrix) -> np.ndarray:
    """The Rodrigues vector of a rotation matrix, through its unit quaternion (Shepperd's method:
    stable for every angle, pi included)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = np.trace(m)
    i = int(np.argmax([trace, m[0, 0], m[1, 1], m[2, 2]]))
    if i == 0:
        w = np.sqrt(1 + trace) / 2
        q = np.array([w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)])
    else:
        a, b, c = i - 1, i % 3, (i + 1) % 3
        v = np.empty(3)
        v[a] = np.sqrt(1 + m[a, a] - m[b, b] - m[c, c]) / 2
        v[b] = (m[b, a] + m[a, b]) / (4 * v[a])
        v[c] = (m[c, a] + m[a, c]) / (4 * v[a])
        q = np.array([(m[c, b] - m[b, c]) / (4 * v[a]), *v])
    if q[0] < 0:
        q = -q
    sin_half = np.linalg.norm(q[1:])
    if sin_half < 1e-12:
        return np.zeros(3)
    return q[1:] / sin_half * 2 * np.arctan2(sin_half, q[0])


@dataclass(frozen=True)
class Camera:
    name: str
    size: tuple[int, int]  # width, height
    matrix: np.ndarray  # (3, 3)
    distortions: np.ndarray  # (5,): k1, k2, p1, p2, k3
    rotation: np.ndarray  # (3,) Rodrigues
    translation: np.ndarray  # (3,)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in this camera's frame."""
        return np.asarray(points, dtype=np.float64) @ rodrigues_matrix(self.rotation).T + self.translation

    def _distort(self, normalized: np.ndarray) -> np.ndarray:
        k1, k2, p1, p2, k3 = self.distortions
        x, y = normalized[..., 0], normalized[..., 1]
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        return np.stack([x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], axis=-1)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of world points (..., 3)."""
        cam = self.to_camera(points)
        distorted = self._distort(cam[..., :2] / cam[..., 2:3])
        return distorted @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def normalize(self, pixels: np.ndarray, iterations: int = 20) -> np.ndarray:
        """Undistorted normalized image coordinates (..., 2) of pixels (..., 2): the inverse of
        the distortion by fixed-point iteration, as OpenCV's undistortPoints."""
        pixels = np.asarray(pixels, dtype=np.float64)
        distorted = np.linalg.solve(self.matrix[:2, :2], (pixels - self.matrix[:2, 2]).reshape(-1, 2).T).T.reshape(pixels.shape)
        if not np.any(self.distortions):
            return distorted
        k1, k2, p1, p2, k3 = self.distortions
        point = distorted.copy()
        for _ in range(iterations):
            x, y = point[..., 0], point[..., 1]
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
            tangential = np.stack([2 * p1 * x * y + p2 * (r2 + 2 * x * x), p1 * (r2 + 2 * y * y) + 2 * p2 * x * y], axis=-1)
            point = (distorted - tangential) / radial[..., None]
        return point

    def extrinsics(self) -> np.ndarray:
        """(3, 4) [R | t]."""
        return np.hstack([rodrigues_matrix(self.rotation), self.translation[:, None]])


def read_calibration(path: str | os.PathLike, view_names: Sequence[str]) -> list[Camera]:
    """The cameras of ``view_names``, in that order, from an aniposelib calibration file;
    :class:`InputError` naming the file when it is unreadable or lacks a view."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "calibration file not found (data.calibration_file)")
    try:
        tables = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a TOML calibration file ({err})") from None
    by_name = {}
    for key, table in tables.items():
        if not key.startswith("cam_") or not isinstance(table, dict):
            continue
        try:
            by_name[str(table["name"])] = Camera(
                str(table["name"]),
                (int(table["size"][0]), int(table["size"][1])),
                np.asarray(table["matrix"], dtype=np.float64).reshape(3, 3),
                np.pad(np.asarray(table.get("distortions", []), dtype=np.float64).ravel(), (0, 5))[:5],
                np.asarray(table["rotation"], dtype=np.float64).reshape(3),
                np.asarray(table["translation"], dtype=np.float64).reshape(3),
            )
        except (KeyError, ValueError, TypeError, IndexError) as err:
            raise InputError(path, f"[{key}] is not a camera (name, size, matrix, distortions, rotation, translation): {err}") from None
    missing = [v for v in view_names if v not in by_name]
    if missing:
        raise InputError(path, f"no camera named {', '.join(missing)} (cameras: {', '.join(by_name) or 'none'}); camera names must be data.view_names")
    return [by_name[v] for v in view_names]


def write_calibration(path: str | os.PathLike, cameras: Sequence[Camera]) -> None:
    """Write ``cameras`` in aniposelib's layout, atomically."""

    def numbers(values) -> str:
        return "[ " + ", ".join(repr(float(v)) for v in np.ravel(values)) + ",]"

    lines = []
    for i, cam in enumerate(cameras):
        matrix = "[ " + ", ".join(numbers(row) for row in cam.matrix) + ",]"
        lines += [
            f"[cam_{i}]",
            f'name = "{cam.name}"',
            f"size = [ {cam.size[0]}, {cam.size[1]},]",
            f"matrix = {matrix}",
            f"distortions = {numbers(cam.distortions)}",
            f"rotation = {numbers(cam.rotation)}",
            f"translation = {numbers(cam.translation)}",
            "",
        ]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    write_text_atomic(path, "\n".join(lines))


def triangulate(cameras: Sequence[Camera], points: np.ndarray) -> np.ndarray:
    """3D points (..., 3) from 2D points (V, ..., 2) of the V cameras, by DLT over the views in
    which a point is present (not NaN); NaN where fewer than two views have it."""
    points = np.asarray(points, dtype=np.float64)
    shape = points.shape[1:-1]
    flat = points.reshape(len(cameras), -1, 2)
    normalized = np.stack([cam.normalize(p) for cam, p in zip(cameras, flat)])  # (V, M, 2)
    projections = np.stack([cam.extrinsics() for cam in cameras])  # (V, 3, 4)
    present = ~np.isnan(normalized).any(axis=-1)  # (V, M)
    # Two equations per view: x P3 - P1 = 0, y P3 - P2 = 0; absent views get zero rows.
    rows = np.concatenate([
        normalized[..., 0:1] * projections[:, None, 2] - projections[:, None, 0],
        normalized[..., 1:2] * projections[:, None, 2] - projections[:, None, 1],
    ], axis=0)  # (2V, M, 4)
    rows = np.where(np.concatenate([present, present])[..., None], np.nan_to_num(rows), 0.0)
    _, _, vt = np.linalg.svd(rows.transpose(1, 0, 2))  # (M, 4, 4)
    homogeneous = vt[:, -1]
    out = homogeneous[:, :3] / homogeneous[:, 3:4]
    out[present.sum(axis=0) < 2] = np.nan
    return out.reshape(*shape, 3)


def reprojection_error(cameras: Sequence[Camera], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate 2D points (V, ..., 2) and reproject: (3D points (..., 3), per-view distance
    between each 2D point and its reprojection (V, ...) in pixels, NaN where not triangulated)."""
    world = triangulate(cameras, points)
    reprojected = np.stack([cam.project(world) for cam in cameras])
    return world, np.linalg.norm(reprojected - np.asarray(points, dtype=np.float64), axis=-1)

"""Pose PCA: low-dimensional models of the labeled poses, used by the PCA losses and metrics.

Two kinds, both fitted on the training labels in original-frame pixels and applied in that same
frame (upstream Lightning Pose fits in resized coordinates and applies in original ones):

- ``singleview``: one row per frame, the x, y of the keypoints in ``data.columns_for_singleview_pca``;
- ``multiview``: one row per (frame, body part), the x, y of that body part in every view
  (``data.mirrored_column_matches``, or every keypoint of the cameras of ``data.view_names``, whose
  views are laid side by side); a body part in 3D seen by V cameras spans 3 dimensions.

The fit is NaN-aware, so frames with missing labels still contribute. Upstream takes the mean and
covariance over every pair of values present; that estimate bends the subspace when a few labels
are missing (on the example, 11 of 480 missing, the multiview PCA then reconstructed its own
exactly-3D labels with errors up to 1.7 px). Here that estimate only picks the number of
components; the subspace is then fitted by alternating between filling each missing value from the
current model and refitting on the filled rows, which converges to a subspace that fits the
present values. Epsilon, the error below which the loss is zero, is a percentile of the training
labels' own reconstruction errors unless set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .io import atomic_path


@dataclass(frozen=True)
class PosePCA:
    kind: str  # "singleview" or "multiview"
    groups: np.ndarray  # (views, parts) keypoint indices; singleview: (1, parts)
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (C, D), orthonormal rows
    epsilon: float
    explained_variance: np.ndarray  # (C,) fraction of variance of each kept component

    @property
    def num_components(self) -> int:
        return len(self.components)

    def rows(self, keypoints, index=None):
        """(N, K, 2) keypoints -> (M, D) rows in this PCA's layout (numpy or torch); ``index``: the
        groups' keypoint indices already on the keypoints' device (see :meth:`tensors`)."""
        views, parts = self.groups.shape
        picked = keypoints[:, self.groups.reshape(-1) if index is None else index].reshape(len(keypoints), views, parts, 2)
        if self.kind == "singleview":
            return picked.reshape(len(keypoints), parts * 2)
        # (N, V, P, 2) -> (N, P, V, 2) -> (N * P, 2V)
        order = picked.permute(0, 2, 1, 3) if isinstance(picked, torch.Tensor) else picked.transpose(0, 2, 1, 3)
        return order.reshape(len(keypoints) * parts, views * 2)

    def tensors(self, device=None, dtype=torch.float32) -> dict[str, torch.Tensor]:
        """The PCA as tensors ``mean``, ``basis`` and ``index`` (the groups' keypoint indices, flat).
        A loss keeps them on its device: copying them there at every step would make the CPU wait
        for the GPU each time."""
        return {
            "mean": torch.as_tensor(self.mean, dtype=dtype, device=device),
            "basis": torch.as_tensor(self.components, dtype=dtype, device=device),
            "index": torch.as_tensor(self.groups.reshape(-1), device=device),
        }

    def reconstruction_error(self, keypoints, tensors: dict[str, torch.Tensor] | None = None):
        """Distance (pixels) between each keypoint and its PCA reconstruction: (N, K), NaN for
        keypoints the PCA does not cover and for rows with a missing value. numpy or torch in,
        the same type out; ``tensors``: :meth:`tensors` on the keypoints' device and dtype."""
        is_torch = isinstance(keypoints, torch.Tensor)
        points = keypoints if is_torch else torch.from_numpy(np.asarray(keypoints, dtype=np.float64))
        tensors = tensors or self.tensors(points.device, points.dtype)
        mean, basis, index = tensors["mean"], tensors["basis"], tensors["index"]
        rows = self.rows(points, index)
        centred = rows - mean
        residual = centred - (centred @ basis.T) @ basis
        per_point = torch.linalg.norm(residual.reshape(len(rows), -1, 2), dim=-1)  # (M, D / 2)
        n, k = points.shape[:2]
        views, parts = self.groups.shape
        if self.kind == "singleview":
            per_frame = per_point.reshape(n, 1, parts)
        else:
            per_frame = per_point.reshape(n, parts, views).transpose(1, 2)  # (N, V, P)
        out = torch.full((n, k), float("nan"), dtype=points.dtype, device=points.device)
        out[:, index] = per_frame.reshape(n, -1)
        return out if is_torch else out.numpy()

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, kind=self.kind, groups=self.groups, mean=self.mean, components=self.components,
                         epsilon=self.epsilon, explained_variance=self.explained_variance)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PosePCA":
        with np.load(path) as data:
            return cls(str(data["kind"]), data["groups"], data["mean"], data["components"], float(data["epsilon"]), data["explained_variance"])


def _pairwise_pca(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, eigenvectors (as rows, by decreasing variance) and explained-variance fractions, from
    the mean and covariance of the values present (each pair of columns on the rows with both)."""
    mean = np.nanmean(rows, axis=0)
    covariance = np.ma.cov(np.ma.masked_invalid(rows), rowvar=False).filled(0.0)
    return (mean, *_eigen(covariance))


def _eigen(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    return vectors[:, order].T, values / max(values.sum(), 1e-12)


def _filled_pca(rows: np.ndarray, count: int, iterations: int = 200, tolerance: float = 1e-9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_pairwise_pca`'s outputs for a ``count``-component model fitted to the values
    present: missing values are filled from the model and the model refitted, until the filled
    values stop moving (``tolerance`` in pixels). Rows with nothing present are left out."""
    rows = rows[~np.isnan(rows).all(axis=1)]
    missing = np.isnan(rows)
    mean, vectors, explained = _pairwise_pca(rows)
    if not missing.any():
        return mean, vectors, explained
    filled = np.where(missing, mean, rows)
    for _ in range(iterations):
        mean = filled.mean(axis=0)
        vectors, explained = _eigen(np.cov(filled, rowvar=False))
        basis = vectors[:count]
        model = mean + ((filled - mean) @ basis.T) @ basis
        step = np.abs(model[missing] - filled[missing]).max()
        filled[missing] = model[missing]
        if step < tolerance:
            break
    return mean, vectors, explained


def fit_pca(
    kind: str,
    keypoints: np.ndarray,
    groups: list[list[int]],
    components_to_keep: float,
    epsilon: float | None = None,
    percentile: float = 99.0,
) -> PosePCA:
    """Fit on training keypoints (N, K, 2) in original-frame pixels.

    ``components_to_keep`` < 1 keeps the fewest components explaining that fraction of the
    variance; >= 1 keeps that many.
    """
    if kind not in ("singleview", "multiview"):
        raise ValueError(f"unknown PCA kind {kind!r}")
    groups = np.asarray(groups, dtype=np.int64).reshape(len(groups) if kind == "multiview" else 1, -1)
    shell = PosePCA(kind, groups, np.zeros(0), np.zeros((0, 0)), 0.0, np.zeros(0))
    rows = shell.rows(np.asarray(keypoints, dtype=np.float64))
    complete = rows[~np.isnan(rows).any(axis=1)]
    if len(complete) < rows.shape[1]:
        raise ValueError(
            f"cannot fit the {kind} PCA: {len(complete)} fully labeled rows for {rows.shape[1]} dimensions "
            "(label more frames or choose fewer keypoints)"
        )
    _, _, explained = _pairwise_pca(rows)
    if components_to_keep < 1:
        count = int(np.searchsorted(np.cumsum(explained), components_to_keep) + 1)
    else:
        count = int(components_to_keep)
    count = min(count, rows.shape[1])
    mean, vectors, explained = _filled_pca(rows, count)
    pca = PosePCA(kind, groups, mean, vectors[:count], 0.0, explained[:count])
    if epsilon is None:
        errors = pca.reconstruction_error(np.asarray(keypoints, dtype=np.float64))
        epsilon = float(np.nanpercentile(errors, percentile))
    return PosePCA(kind, groups, mean, vectors[:count], float(epsilon), explained[:count])


def pca_path(model_dir: str | os.PathLike, kind: str) -> Path:
    return Path(model_dir) / f"pca_{kind}.npz"


def fit_model_pcas(cfg: dict, keypoints: np.ndarray, model_dir: str | os.PathLike | None = None) -> dict[str, PosePCA]:
    """The PCAs a config asks for (a loss or a metric), fitted on training keypoints; saved when
    ``model_dir`` is given, so prediction and metrics never refit them."""
    data, losses = cfg["data"], cfg["losses"]
    pcas = {}
    views = len(data["view_names"] or [1])
    if data["columns_for_singleview_pca"]:
        s = losses["pca_singleview"]
        # Several cameras: one PCA for every view's poses (the network is shared by the views).
        per_view = keypoints.reshape(len(keypoints), views, -1, 2).reshape(len(keypoints) * views, -1, 2)
        pcas["singleview"] = fit_pca("singleview", per_view, [data["columns_for_singleview_pca"]], s["components_to_keep"], s["epsilon"], s["empirical_epsilon_percentile"])
    groups = multiview_groups(cfg, keypoints.shape[1])
    if groups:
        m = losses["pca_multiview"]
        pcas["multiview"] = fit_pca("multiview", keypoints, groups, m["components_to_keep"], m["epsilon"], m["empirical_epsilon_percentile"])
    if model_dir is not None:
        for kind, pca in pcas.items():
            pca.save(pca_path(model_dir, kind))
    return pcas


def multiview_groups(cfg: dict, num_keypoints: int) -> list[list[int]] | None:
    """The multiview PCA's keypoint groups (one list per view) for keypoints laid out as one
    frame of ``num_keypoints``: ``data.mirrored_column_matches``, or with several cameras every
    keypoint of every view (view v's keypoint k is v * K + k); None without views."""
    data = cfg["data"]
    if data["view_names"]:
        per_view = num_keypoints // len(data["view_names"])
        return [list(range(v * per_view, (v + 1) * per_view)) for v in range(len(data["view_names"]))]
    return data["mirrored_column_matches"] or None


def load_model_pcas(model_dir: str | os.PathLike) -> dict[str, PosePCA]:
    return {kind: PosePCA.load(path) for kind in ("singleview", "multiview") if (path := pca_path(model_dir, kind)).exists()}

"""Ensembles of pose models and the Ensemble Kalman Smoother (EKS), in NumPy.

Several models (seeds, data splits) predict the same video; their average is a better estimate
than most members, and their spread says where they disagree. EKS (Biderman, Whiteway et al.,
Nature Methods 2024; the ``ensemble-kalman-smoother`` package) treats the ensemble average as a
noisy observation of the true keypoint, with the ensemble variance as that frame's observation
noise, and smooths it over time with a random-walk Kalman smoother. Frames where the members
agree are followed closely; where they disagree, the smoother leans on the neighbouring frames.

The model of one keypoint (single view) or one body part seen in several mirrored views:

    z[t+1] = z[t] + w[t],   w[t] ~ N(0, s * Q)          (latent position, random walk)
    y[t]   = C z[t] + v[t], v[t] ~ N(0, diag(var[t]))   (ensemble average, ensemble variance)

Single view: z is (x, y), C = Q = I. Mirrored views: y stacks the body part's (x, y) in every
view, z is 3-dimensional (the part's position in space), C holds the first three principal
components of the ensemble averages, and Q the covariance of their frame-to-frame changes.

The smoothing parameter ``s`` (larger follows the observations more closely, smaller smooths
more) is chosen per keypoint as the package does: the value that maximises the Kalman filter's
marginal likelihood of the observations, with the observation noise held at its median over the
video. The package climbs that likelihood with Adam on log s; here it is maximised directly
(grids over log s in [-8, 8], each finer around the best of the last), which finds the same
optimum or a higher likelihood.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .metrics import keypoint_array

AVERAGES = ("mean", "median")
VARIANCES = ("confidence_weighted", "plain")
# The package's floor of the time-constant observation noise used to choose s (px^2), and the
# variance it gives a keypoint that no member predicted.
MIN_CHOICE_VARIANCE = 1e-4
MISSING_VARIANCE = 1000.0
LOG_S_BOUNDS = (-8.0, 8.0)


@dataclass
class Fusion:
    """An ensemble's result on one video; arrays are (frames, keypoints[, 2])."""

    keypoints: np.ndarray  # the smoothed (or, without smoother, averaged) positions
    likelihood: np.ndarray  # the members' mean likelihood
    average: np.ndarray  # the ensemble mean or median
    ensemble_variance: np.ndarray  # per coordinate, px^2
    posterior_variance: np.ndarray  # per coordinate, px^2
    smooth_param: np.ndarray  # (keypoints,), NaN without smoother


def ensemble_statistics(points: np.ndarray, likelihood: np.ndarray, average: str = "median", variance: str = "confidence_weighted"):
    """Average (N, K, 2), variance (N, K, 2) and mean likelihood (N, K) of the members'
    ``points`` (M, N, K, 2) and ``likelihood`` (M, N, K), as the package computes them: the
    variance across members (divided by the mean likelihood when ``confidence_weighted``, so
    that uncertain frames count less); one member's variance is 1 / its likelihood."""
    if average not in AVERAGES or variance not in VARIANCES:
        raise ValueError(f"average must be one of {AVERAGES} and variance one of {VARIANCES}")
    members = len(points)
    confidence = likelihood.mean(axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a keypoint no member predicted: NaN, then MISSING_VARIANCE
        centre = np.nanmedian(points, axis=0) if average == "median" else np.nanmean(points, axis=0)
        if members == 1:
            spread = np.repeat(1.0 / np.maximum(confidence, 1e-5)[..., None], 2, axis=-1)
        else:
            spread = np.nanvar(points, axis=0)
            if variance == "confidence_weighted":
                spread = spread / confidence[..., None]
    return centre, np.nan_to_num(spread, nan=MISSING_VARIANCE), confidence


# --- The random-walk Kalman filter and smoother, batched over independent series ---------------


def _filter(y, R, C, Q, m0, S0, s):
    """Kalman filter of ``y`` (B, T, O) with diagonal noise ``R`` (B, T, O) or (B, O), emission
    ``C`` (B, O, D), dynamics covariance ``s * Q`` ((B,) times (B, D, D)), prior ``m0``, ``S0``.
    A frame with a missing observation (NaN) only predicts. Returns filtered means (B, T, D),
    covariances (B, T, D, D) and the marginal log-likelihood (B,)."""
    B, T, O = y.shape
    D = C.shape[-1]
    if O == D == 1:
        return _filter_1d(y[..., 0], R.reshape(B, -1), C[:, 0, 0], s * Q[:, 0, 0], m0[:, 0], S0[:, 0, 0])
    sQ = s[:, None, None] * Q
    Ct = np.swapaxes(C, 1, 2)
    means, covs = np.empty((B, T, D)), np.empty((B, T, D, D))
    loglik = np.zeros(B)
    m, P = m0.astype(np.float64), S0.astype(np.float64)
    for t in range(T):
        if t:
            P = P + sQ
        observed = ~np.isnan(y[:, t]).any(axis=1)
        noise = R[:, t] if R.ndim == 3 else R
        PCt = P @ Ct
        S = C @ PCt + noise[:, :, None] * np.eye(O)
        S_inv = np.linalg.inv(S)
        gain = PCt @ S_inv
        residual = np.where(observed[:, None], y[:, t] - np.einsum("bod,bd->bo", C, m), 0.0)
        m = m + np.einsum("bdo,bo->bd", gain, residual)
        P = np.where(observed[:, None, None], P - gain @ S @ np.swapaxes(gain, 1, 2), P)
        P = (P + np.swapaxes(P, 1, 2)) / 2
        _, logdet = np.linalg.slogdet(S)
        quad = np.einsum("bo,bop,bp->b", residual, S_inv, residual)
        loglik += np.where(observed, -0.5 * (O * np.log(2 * np.pi) + logdet + quad), 0.0)
        means[:, t], covs[:, t] = m, P
    return means, covs, loglik


def _filter_1d(y, R, c, q, m, P):
    """:func:`_filter` of scalar series (O = D = 1: y (B, T), R (B, T) or (B, 1), emission c,
    dynamics variance q, prior m, P (B,)), elementwise: many times faster than 1 x 1 matrices."""
    B, T = y.shape
    means, variances, loglik = np.empty((B, T)), np.empty((B, T)), np.zeros(B)
    m, P = m.astype(np.float64), P.astype(np.float64)
    for t in range(T):
        if t:
            P = P + q
        observed = ~np.isnan(y[:, t])
        S = c * c * P + R[:, t if R.shape[1] > 1 else 0]
        gain = P * c / S
        residual = np.where(observed, y[:, t] - c * m, 0.0)
        m = m + gain * residual
        P = np.where(observed, P - gain * gain * S, P)
        loglik += np.where(observed, -0.5 * (np.log(2 * np.pi) + np.log(S) + residual * residual / S), 0.0)
        means[:, t], variances[:, t] = m, P
    return means[..., None], variances[..., None, None], loglik


def _smooth(y, R, C, Q, m0, S0, s):
    """Rauch-Tung-Striebel smoother: smoothed means (B, T, D) and covariances (B, T, D, D)."""
    means, covs, _ = _filter(y, R, C, Q, m0, S0, s)
    if C.shape[1:] == (1, 1):  # scalar series, elementwise
        m, P, q = means[..., 0], covs[..., 0, 0], (s * Q[:, 0, 0])[:, None]
        for t in range(y.shape[1] - 2, -1, -1):
            gain = P[:, t] / (P[:, t] + q[:, 0])
            m[:, t] = m[:, t] + gain * (m[:, t + 1] - m[:, t])
            P[:, t] = P[:, t] + gain * gain * (P[:, t + 1] - P[:, t] - q[:, 0])
        return means, covs
    sQ = s[:, None, None] * Q
    out_m, out_P = means.copy(), covs.copy()
    for t in range(y.shape[1] - 2, -1, -1):
        P = covs[:, t]
        gain = P @ np.linalg.inv(P + sQ)  # the prediction of t + 1 is z[t] itself (random walk)
        out_m[:, t] = means[:, t] + np.einsum("bde,be->bd", gain, out_m[:, t + 1] - means[:, t])
        out_P[:, t] = P + gain @ (out_P[:, t + 1] - P - sQ) @ np.swapaxes(gain, 1, 2)
    return out_m, out_P


@dataclass
class StateSpace:
    """Independent series (B) of the random-walk model: observations ``y`` (B, T, O), their
    noise variances ``R`` (B, T, O), emission ``C`` (B, O, D), dynamics covariance shape ``Q``
    (B, D, D) and the prior ``m0`` (B, D), ``S0`` (B, D, D)."""

    y: np.ndarray
    R: np.ndarray
    C: np.ndarray
    Q: np.ndarray
    m0: np.ndarray
    S0: np.ndarray

    def smooth(self, s: np.ndarray):
        return _smooth(self.y, np.clip(self.R, 1e-12, None), self.C, self.Q, self.m0, self.S0, s)

    def choice_nll(self, log_s: np.ndarray, pairs: int = 1) -> np.ndarray:
        """The criterion ``s`` is chosen by, at candidates ``log_s`` (B / pairs, G): the filter's
        negative log-likelihood with the noise held at its median over time (floored at 1e-4
        px^2), summed over each run of ``pairs`` consecutive series that share one ``s``."""
        G = log_s.shape[1]
        R = np.maximum(np.nanmedian(self.R, axis=1), MIN_CHOICE_VARIANCE)
        rep = lambda a: np.repeat(a, G, axis=0)  # noqa: E731 -- every candidate of every series side by side
        s = np.exp(np.repeat(log_s, pairs, axis=0)).reshape(-1)
        _, _, loglik = _filter(rep(self.y), rep(R), rep(self.C), rep(self.Q), rep(self.m0), rep(self.S0), s)
        nll = np.where(np.isfinite(loglik), -loglik, np.inf).reshape(-1, pairs, G).sum(axis=1)
        return nll

    def choose_smooth_param(self, pairs: int = 1, steps=(1.0, 0.1, 0.01)) -> np.ndarray:
        """The ``s`` minimising :meth:`choice_nll` per run of ``pairs`` series, as the package
        chooses it: log s on a grid over [-8, 8], then finer grids around the best value (one
        filter pass each)."""
        low, high = LOG_S_BOUNDS
        best, half = np.full(len(self.y) // pairs, (low + high) / 2), (high - low) / 2
        for step in steps:
            candidates = np.clip(best[:, None] + np.arange(-half, half + step / 2, step), low, high)
            best, half = candidates[np.arange(len(best)), np.argmin(self.choice_nll(candidates, pairs), axis=1)], step
        return np.exp(best)


def _smooth_param(given, count: int) -> np.ndarray:
    """A given smoothing parameter (a number, or one per keypoint) as ``count`` values."""
    values = np.broadcast_to(np.asarray(given, dtype=np.float64), (count,)).copy()
    if not np.all(values > 0):
        raise ValueError(f"the smoothing parameter must be positive, got {given}")
    return values


# --- EKS, single view and mirrored views ----------------------------------------------------------


def singleview_model(average: np.ndarray, variance: np.ndarray) -> StateSpace:
    """The single-view model of ``average`` (N, K, 2) with noise ``variance`` (N, K, 2): per
    keypoint (x, y) with C = Q = I, the prior centred on its mean position with its variance. All
    of it is diagonal, so x and y are independent scalar walks: series 2k and 2k + 1."""
    y = average.transpose(1, 2, 0).reshape(-1, len(average), 1)  # (2K, N, 1): x of keypoint 0, its y, x of keypoint 1, ...
    R = variance.transpose(1, 2, 0).reshape(y.shape)
    ones = np.ones((len(y), 1, 1))
    return StateSpace(y, R, ones, ones, np.nanmean(y, axis=1), np.nanvar(y, axis=1)[:, :, None])


def eks_singleview(average: np.ndarray, variance: np.ndarray, smooth_param=None):
    """Smooth each keypoint of ``average`` (N, K, 2) with observation noise ``variance`` (N, K, 2).
    Returns smoothed positions (N, K, 2), posterior variances (N, K, 2) and ``s`` (K,), one per
    keypoint: chosen for its x and y together, whose likelihoods add up (the package's model)."""
    N, K, _ = average.shape
    model = singleview_model(average, variance)
    if smooth_param is None:
        s = model.choose_smooth_param(pairs=2)
    else:
        s = _smooth_param(smooth_param, K)
    means, covs = model.smooth(np.repeat(s, 2))
    return means[..., 0].reshape(K, 2, N).transpose(2, 0, 1), covs[..., 0, 0].reshape(K, 2, N).transpose(2, 0, 1), s


def mirrored_model(average: np.ndarray, variance: np.ndarray, views: np.ndarray, keep_quantile: float = 50.0, latent: int = 3):
    """One series per body part (``views[v][j]``: its keypoint column in view v): its (x, y) in
    every view, centred, in a ``latent``-dimensional space of principal components fitted on the
    frames whose largest ensemble variance is within the ``keep_quantile`` percentile. Returns
    the model and the centre (J, O) of each part's observations."""
    V, J = views.shape
    N = len(average)
    O, D = 2 * V, min(latent, 2 * V)
    y = average[:, views.T].reshape(N, J, O).swapaxes(0, 1)  # (J, N, O): x, y of view 0, then view 1, ...
    R = variance[:, views.T].reshape(N, J, O).swapaxes(0, 1)
    good = R.max(axis=2) <= np.percentile(R.max(axis=2), keep_quantile, axis=1)[:, None]  # (J, N)
    centre = np.stack([np.nanmean(y[j, good[j]], axis=0) for j in range(J)])
    y = y - centre[:, None]
    C, S0, Q = np.empty((J, O, D)), np.empty((J, D, D)), np.empty((J, D, D))
    for j in range(J):
        kept = y[j, good[j]]
        kept = kept[~np.isnan(kept).any(axis=1)] - np.nanmean(kept, axis=0)
        C[j] = np.linalg.svd(kept, full_matrices=False)[2][:D].T
        latents = kept @ C[j]
        S0[j] = np.diag(latents.var(axis=0))
        steps = np.cov(np.diff(latents, axis=0).T).reshape(D, D)
        Q[j] = steps / np.abs(steps).max() if np.abs(steps).max() > 0 else steps
    return StateSpace(y, R, C, Q, np.zeros((J, D)), S0), centre


def eks_mirrored(average: np.ndarray, variance: np.ndarray, views: Sequence[Sequence[int]], smooth_param=None, keep_quantile: float = 50.0, latent: int = 3):
    """Smooth the body parts seen in several views of one frame (``views[v][j]``: the keypoint
    column of body part j in view v, as ``data.mirrored_column_matches``) jointly
    (:func:`mirrored_model`); keypoints in no view group are smoothed on their own. A given
    ``smooth_param`` per keypoint applies to a body part with its view-0 keypoint's value.
    Returns positions (N, K, 2), posterior variances (N, K, 2) of the observed coordinates (the
    package's: the smoothed latent's variance seen through C, plus the ensemble variance) and
    ``s`` (K,): a body part's value for each of its keypoints."""
    views = np.asarray(views, dtype=int)  # (V, J)
    N, K, _ = average.shape
    model, centre = mirrored_model(average, variance, views, keep_quantile, latent)
    given = None if smooth_param is None else _smooth_param(smooth_param, K)
    s = model.choose_smooth_param() if given is None else given[views[0]]
    means, covs = model.smooth(s)
    fitted = np.einsum("jod,jnd->jno", model.C, means) + centre[:, None]
    spread = np.einsum("jod,jnde,joe->jno", model.C, covs, model.C) + model.R
    points, posterior, s_per_keypoint = np.empty((N, K, 2)), np.empty((N, K, 2)), np.empty(K)
    rest = np.setdiff1d(np.arange(K), views.ravel())
    if len(rest):
        rest_s = None if given is None else given[rest]
        points[:, rest], posterior[:, rest], s_per_keypoint[rest] = eks_singleview(average[:, rest], variance[:, rest], rest_s)
    for v in range(len(views)):
        points[:, views[v]] = fitted[:, :, 2 * v : 2 * v + 2].swapaxes(0, 1)
        posterior[:, views[v]] = spread[:, :, 2 * v : 2 * v + 2].swapaxes(0, 1)
        s_per_keypoint[views[v]] = s
    return points, posterior, s_per_keypoint


def fuse(points: np.ndarray, likelihood: np.ndarray, smoother: str = "eks", average: str = "median", variance: str = "confidence_weighted", views=None, smooth_param=None) -> Fusion:
    """The ensemble of members' ``points`` (M, N, K, 2) and ``likelihood`` (M, N, K).
    ``smoother``: ``eks`` (single-view, or mirrored when ``views`` groups the keypoint columns)
    or ``none`` (the ensemble average, whose posterior variance is the ensemble variance)."""
    centre, spread, confidence = ensemble_statistics(points, likelihood, average, variance)
    if smoother == "none":
        return Fusion(centre, confidence, centre, spread, spread, np.full(centre.shape[1], np.nan))
    if smoother != "eks":
        raise ValueError(f"smoother must be 'eks' or 'none', got {smoother!r}")
    if views:
        smoothed, posterior, s = eks_mirrored(centre, spread, views, smooth_param)
    else:
        smoothed, posterior, s = eks_singleview(centre, spread, smooth_param)
    return Fusion(smoothed, confidence, centre, spread, posterior, s)


# --- Tables: members' prediction tables in, the ensemble's table out -------------------------------


def fusion_columns(average: str) -> list[str]:
    """The coords of each keypoint in an ensemble's table: a model's three first (evaluation and
    every reader of predictions use those), then the ensemble's, named as the package names them."""
    return ["x", "y", "likelihood", f"x_ens_{average}", f"y_ens_{average}", "x_ens_var", "y_ens_var", "x_posterior_var", "y_posterior_var"]


def fusion_table(fusion: Fusion, keypoint_names: list[str], average: str, scorer: str = "ensemble") -> pd.DataFrame:
    """The ensemble's table, in the layout of a model's predictions (scorer, bodyparts, coords;
    one row per frame) with the columns of :func:`fusion_columns`."""
    fields = [fusion.keypoints[..., 0], fusion.keypoints[..., 1], fusion.likelihood, fusion.average[..., 0], fusion.average[..., 1],
              fusion.ensemble_variance[..., 0], fusion.ensemble_variance[..., 1], fusion.posterior_variance[..., 0], fusion.posterior_variance[..., 1]]
    coords = fusion_columns(average)
    n, k = fusion.likelihood.shape
    columns = pd.MultiIndex.from_tuples([(scorer, name, c) for name in keypoint_names for c in coords], names=["scorer", "bodyparts", "coords"])
    return pd.DataFrame(np.stack(fields, axis=-1).reshape(n, k * len(coords)), columns=columns, index=np.arange(n))


def member_arrays(tables: Sequence[pd.DataFrame], sources: Sequence[str]):
    """Points (M, N, K, 2), likelihoods (M, N, K) and keypoint names of the members' prediction
    tables of one video; :class:`InputError` naming the member that does not fit the first."""
    arrays = [keypoint_array(t) for t in tables]
    names = arrays[0][2]
    for (points, _, member_names), source in zip(arrays, sources):
        if member_names != names or len(points) != len(arrays[0][0]):
            raise InputError(source, f"{len(points)} frames of keypoints {member_names}, but the ensemble's first member has {len(arrays[0][0])} frames of {names}")
    return np.stack([a[0] for a in arrays]), np.stack([a[1] for a in arrays]), names


_FRAME_NUMBER = re.compile(r"\d+")


def video_frame_of(image_path: str) -> tuple[str, int] | None:
    """(video stem, frame index) of a labeled image ``labeled-data/<video stem>/<name with the
    frame number>.png``, the layout of Lightning Pose, DeepLabCut and the example; None otherwise."""
    path = PurePosixPath(image_path)
    found = _FRAME_NUMBER.search(path.stem)
    if len(path.parts) < 2 or found is None:
        return None
    return path.parent.name, int(found.group())


def labeled_frames_from_videos(image_paths: Sequence[str], videos: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Predictions on labeled frames taken from the predictions of the videos they were cut from
    (``videos``: stem -> table): one row per image, in order; empty where its video was not predicted."""
    first = next(iter(videos.values()))
    rows = np.full((len(image_paths), first.shape[1]), np.nan)
    for i, image in enumerate(image_paths):
        found = video_frame_of(image)
        if found is not None and found[0] in videos and found[1] < len(videos[found[0]]):
            rows[i] = videos[found[0]].iloc[found[1]].to_numpy(dtype=np.float64)
    return pd.DataFrame(rows, columns=first.columns, index=list(image_paths))

"""Run the ensemble-kalman-smoother package on members' predictions saved by test_ensemble.py:
``python eks_reference.py IN.npz OUT.npz [IN.npz OUT.npz ...]`` with the package's own Python (it needs jax <= 0.4.36
and dynamax <= 1.0.1, which the project's environment does not have). IN holds ``points``
(M, N, K, 2), ``likelihood`` (M, N, K), ``views`` (V, J; empty for single view) and
``smooth_param`` (NaN: chosen by the package). OUT gets ``keypoints``, ``average``,
``ensemble_variance``, ``posterior_variance`` (N, K, 2) and ``smooth_param``."""

import sys

import numpy as np
from eks.marker_array import MarkerArray
from eks.multicam_smoother import ensemble_kalman_smoother_multicam
from eks.singlecam_smoother import ensemble_kalman_smoother_singlecam

FIELDS = ["x", "y", "likelihood", "x_ens_median", "y_ens_median", "x_ens_var", "y_ens_var", "x_posterior_var", "y_posterior_var"]


def fields(frame, count):
    values = frame.to_numpy(dtype=np.float64).reshape(len(frame), count, len(FIELDS))
    pick = lambda a, b: values[..., [FIELDS.index(a), FIELDS.index(b)]]  # noqa: E731
    return {"keypoints": pick("x", "y"), "average": pick("x_ens_median", "y_ens_median"),
            "ensemble_variance": pick("x_ens_var", "y_ens_var"), "posterior_variance": pick("x_posterior_var", "y_posterior_var")}


def main(source, target):
    data = np.load(source)
    points, likelihood, views = data["points"], data["likelihood"], data["views"]
    s = None if np.isnan(data["smooth_param"]) else float(data["smooth_param"])
    members = np.concatenate([points, likelihood[..., None]], axis=-1)  # (M, N, K, 3)
    M, N, K, _ = members.shape
    if views.size == 0:
        array = MarkerArray(members[:, None], data_fields=["x", "y", "likelihood"])
        frame, s_final = ensemble_kalman_smoother_singlecam(array, [f"k{k}" for k in range(K)], smooth_param=s)
        out = fields(frame, K)
        out["smooth_param"] = np.asarray(s_final, dtype=np.float64)
    else:
        V, J = views.shape
        per_view = np.stack([members[:, :, views[v]] for v in range(V)], axis=1)  # (M, V, N, J, 3)
        array = MarkerArray(per_view, data_fields=["x", "y", "likelihood"])
        frames, s_final, _ = ensemble_kalman_smoother_multicam(array, [f"p{j}" for j in range(J)], [f"view{v}" for v in range(V)], smooth_param=s)
        out = {key: np.empty((N, K, 2)) for key in ("keypoints", "average", "ensemble_variance", "posterior_variance")}
        for v, frame in enumerate(frames):
            for key, value in fields(frame, J).items():
                out[key][:, views[v]] = value
        out["smooth_param"] = np.asarray(s_final, dtype=np.float64)  # one per body part
    np.savez(target, **out)


if __name__ == "__main__":
    for i in range(1, len(sys.argv), 2):  # one process for all: jax's import and compilation take seconds
        main(sys.argv[i], sys.argv[i + 1])

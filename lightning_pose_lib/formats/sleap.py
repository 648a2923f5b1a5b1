"""SLEAP labels (``.slp``, or ``.pkg.slp`` with the labeled frames embedded), read with sleap-io.

Each labeled frame's user-labeled instance gives the keypoints (the skeleton's nodes, in order);
predicted instances are not labels and are left out. The frames are extracted as PNGs to
``labeled-data/<video>/img<frame>.png``: from the package where it embeds them, else from the
video, then with the two frames either side (unlabeled) for the context model. A frame with more
than one labeled animal stops the import: multi-animal projects are not supported.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.labels import Labels
from ..errors import InputError
from ..io import atomic_path

log = logging.getLogger(__name__)

SCORER = "sleap"
CONTEXT = 2  # frames either side of a labeled frame, extracted where the video is at hand


def _load(source: Path, open_videos: bool):
    import sleap_io

    try:
        return sleap_io.load_slp(str(source), open_videos=open_videos)
    except Exception as err:  # sleap-io raises whatever h5py or its parsers raise
        raise InputError(source, f"not readable as SLEAP labels ({type(err).__name__}: {err})") from None


def _embedded(video) -> bool:
    return bool((video.backend_metadata or {}).get("has_embedded_images"))


def _original(video) -> Path:
    """The video file the frames were recorded in."""
    if _embedded(video):
        return Path(video.source_video.filename) if video.source_video is not None else Path(video.filename)
    return Path(video.filename)


def inputs(source: Path) -> list[Path]:
    return [source]


@functools.lru_cache(maxsize=None)
def _videos(source: Path) -> tuple[Path, ...]:
    originals = [_original(v) for v in _load(source, open_videos=False).videos]
    missing = [str(p) for p in originals if not p.is_file()]
    if missing:
        log.warning("%s: videos not found, not predicted: %s", source, ", ".join(missing))
    return tuple(p for p in originals if p.is_file())


def videos(source: Path) -> list[Path]:
    return list(_videos(source))


def model_config(source: Path) -> dict:
    return {}


def write(source: Path, out_dir: Path) -> Labels:
    from ..video import open_video

    labels = _load(source, open_videos=True)
    if len(labels.skeletons) != 1:
        raise InputError(source, f"{len(labels.skeletons)} skeletons: one is supported")
    names = list(labels.skeletons[0].node_names)
    folders = _folder_names([_original(v) for v in labels.videos])
    paths, keypoints = [], []
    for video, folder in zip(labels.videos, folders):
        frames = {}
        for lf in labels.find(video):
            if len(lf.user_instances) > 1:
                raise InputError(source, f"frame {lf.frame_idx} of {_original(video)} has {len(lf.user_instances)} labeled animals: multi-animal projects are not supported")
            if lf.user_instances:
                frames[int(lf.frame_idx)] = lf.user_instances[0].numpy()
        if not frames:
            continue
        wanted = sorted(frames)
        if _embedded(video):
            images = {i: video[i] for i in wanted}
        else:
            path = _original(video)
            if not path.is_file():
                raise InputError(source, f"video {path} not found: its labeled frames cannot be extracted")
            with open_video(path, backend="pyav") as reader:
                near = np.unique(np.clip(np.array(wanted)[:, None] + np.arange(-CONTEXT, CONTEXT + 1), 0, reader.info.num_frames - 1))
                images = dict(zip(near.tolist(), reader.read_frames(near)))
        for i, image in images.items():
            image = np.asarray(image)
            with atomic_path(out_dir / "labeled-data" / folder / f"img{i:08d}.png") as tmp:
                Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(tmp)
        for i in wanted:
            paths.append(f"labeled-data/{folder}/img{i:08d}.png")
            keypoints.append(frames[i][:, :2])
    if not paths:
        raise InputError(source, "no user-labeled frames")
    points = np.stack(keypoints).astype(np.float64)
    points[np.isnan(points).any(axis=-1)] = np.nan
    return Labels(paths, points, names, SCORER)


def _folder_names(videos: list[Path]) -> list[str]:
    """A folder per video: the video's name, numbered where two share one."""
    stems = [v.stem for v in videos]
    return [s if stems.count(s) == 1 else f"{s}_{i}" for i, s in enumerate(stems)]

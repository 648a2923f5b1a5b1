"""A video's predictions as an NWB file: ndx-pose's ``PoseEstimation`` in the processing module
``behavior`` (where pynwb users and the movement package look), one ``PoseEstimationSeries`` per
keypoint with x, y in pixels, the likelihood as confidence, and the video's presentation times
(its frames' pts) as timestamps.
"""

from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import atomic_path

MODULE, NAME = "behavior", "PoseEstimation"


def write_nwb(table: pd.DataFrame, video: str | os.PathLike, target: str | os.PathLike, scorer: str) -> None:
    """Write ``table`` (a video's predictions: x, y, likelihood per keypoint, one row per frame)
    to ``target``, atomically; ``scorer`` names the model."""
    from importlib.metadata import version

    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile

    from ..video.pyav_backend import frame_times, probe_video

    video = Path(video)
    times = frame_times(video)
    if len(times) != len(table):
        raise InputError(video, f"{len(times)} frames, but its predictions have {len(table)} rows")
    info = probe_video(video)
    names = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    series = []
    for name in names:
        part = table.xs(name, axis=1, level="bodyparts").droplevel("scorer", axis=1)
        series.append(
            PoseEstimationSeries(
                name=name,
                description=f"{name}: x, y of the model's prediction",
                data=part[["x", "y"]].to_numpy(dtype=np.float64),
                unit="pixels",
                reference_frame="(0, 0) is the top left corner of the video frame, x to the right, y down",
                # One array of times, shared: the other series link to the first.
                timestamps=times if not series else series[0],
                confidence=part["likelihood"].to_numpy(dtype=np.float64),
                confidence_definition="heatmap peak value (likelihood of the prediction, 0 to 1)",
            )
        )
    skeleton = Skeleton(name="skeleton", nodes=names, edges=np.zeros((0, 2), dtype=np.uint8))
    pose = PoseEstimation(
        name=NAME,
        pose_estimation_series=series,
        description=f"Pose predicted by model {scorer} on video {video.name}",
        original_videos=[str(video)],
        dimensions=np.array([[info.width, info.height]], dtype=np.uint16),
        scorer=scorer,
        source_software="lightning_pose_lib",
        source_software_version=version("lightning_pose_lib"),
        skeleton=skeleton,
    )
    # The same inputs give the same file's content: identifier and start time from the video.
    start = datetime.datetime.fromtimestamp(int(video.stat().st_mtime), tz=datetime.timezone.utc)
    nwbfile = NWBFile(
        session_description=f"Pose of the animal in {video.name}",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{video.resolve()}#{scorer}")),
        session_start_time=start,
    )
    behavior = nwbfile.create_processing_module(name=MODULE, description="pose estimated from video")
    behavior.add(Skeletons(skeletons=[skeleton]))
    behavior.add(pose)
    with atomic_path(target) as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)


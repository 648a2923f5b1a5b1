"""Sessions of several synchronized cameras: videos named ``<session>_<view>.<ext>`` (the view's
name is the last ``_`` token, as upstream Lightning Pose), every view's video of a session with the
same frame count. Light (no torch), for the workflow's planning too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import InputError


def split_view(stem: str, view_names: Sequence[str]) -> tuple[str, str] | None:
    """(session, view) of a video file stem ``<session>_<view>``, or None if it names no view."""
    session, sep, view = stem.rpartition("_")
    return (session, view) if sep and session and view in view_names else None


def group_sessions(videos: Sequence[str | os.PathLike], view_names: Sequence[str]) -> dict[str, list[str]]:
    """{session: [its video of each view, in ``view_names`` order]}; :class:`InputError` naming a
    video whose name ends in no view name, or a session that lacks a view."""
    sessions: dict[str, dict[str, str]] = {}
    for video in videos:
        parsed = split_view(Path(video).stem, view_names)
        if parsed is None:
            raise InputError(video, f"the file name must be <session>_<view> with a view of data.view_names ({', '.join(view_names)})")
        sessions.setdefault(parsed[0], {})[parsed[1]] = os.fspath(video)
    out = {}
    for session, found in sorted(sessions.items()):
        missing = [v for v in view_names if v not in found]
        if missing:
            some = Path(next(iter(found.values())))
            raise InputError(some.with_name(f"{session}_{missing[0]}{some.suffix}"), f"video of view {missing[0]} of session {session} not found (every session needs a video per view)")
        out[session] = [found[v] for v in view_names]
    return out


def check_frame_counts(session_videos: Sequence[str | os.PathLike]) -> int:
    """The common frame count of one session's view videos; :class:`InputError` naming the first
    video whose count differs."""
    from ..video import probe_video

    counts = [probe_video(v).num_frames for v in session_videos]
    for video, count in zip(session_videos, counts):
        if count != counts[0]:
            raise InputError(video, f"has {count} frames but {Path(session_videos[0]).name} has {counts[0]}: all views of a session must have the same frame count")
    return counts[0]

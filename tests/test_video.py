"""Tests for lightning_pose_lib.video: writer round trip, reader contract, validation errors."""

from __future__ import annotations

import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from lightning_pose_lib.errors import InputError
from lightning_pose_lib.video import BACKENDS, PyAVReader, VideoInfo, open_video, probe_video, write_video
from lightning_pose_lib.video.yuv import YUV420Frames

# The shared data sits next to the checkout (../shared), or inside it on machines that copy the tree.
_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [root / "shared/data/mirror-mouse-example/videos/test_vid.mp4" for root in (_REPO.parent, _REPO)]
MIRROR_MOUSE_VIDEO = next((path for path in _CANDIDATES if path.exists()), _CANDIDATES[0])


def smooth_frames(n: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Gradients and a moving square: smooth content, so yuv420p chroma subsampling loses little."""
    rows, cols = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(n):
        frame = np.stack([cols * 255 // width, rows * 255 // height, np.full_like(rows, 8 * t % 256)], axis=-1)
        frame[10:22, 2 * t % (width - 12) : 2 * t % (width - 12) + 12] = (250, 250, 40)
        frames.append(frame.astype(np.uint8))
    return frames


def decode_all(path: Path) -> np.ndarray:
    with open_video(path, backend="pyav") as reader:
        return np.concatenate([frames for _, frames in reader.iter_batches(16)])


def has_reordered_frames(path: Path) -> bool:
    """True when packets arrive out of presentation order, i.e. the stream has B-frames."""
    with av.open(str(path)) as container:
        pts = [p.pts for p in container.demux(container.streams.video[0]) if p.size > 0]
    return pts != sorted(pts)


@pytest.mark.parametrize("crf, max_mean_diff", [(0, 3.0), (18, 4.0)])
def test_round_trip(tmp_path: Path, crf: int, max_mean_diff: float) -> None:
    frames = smooth_frames(20)
    path = tmp_path / "clip.mp4"
    write_video(path, iter(frames), fps=25.0, crf=crf)

    info = probe_video(path)
    assert info == VideoInfo(path=str(path), num_frames=20, fps=25.0, height=48, width=64, codec="h264")
    decoded = decode_all(path)
    assert decoded.shape == (20, 48, 64, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(float) - np.stack(frames)).mean() < max_mean_diff
    assert not list(tmp_path.glob(".*")), "the temporary file must be renamed away"


def test_ntsc_rate_survives(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    write_video(path, smooth_frames(5), fps=30000 / 1001)
    assert probe_video(path).fps == pytest.approx(30000 / 1001)


def test_writer_rejects_bad_frames(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="even"):
        write_video(path, [np.zeros((47, 64, 3), np.uint8)], fps=30)
    with pytest.raises(ValueError, match="uint8"):
        write_video(path, [np.zeros((48, 64, 3), np.float32)], fps=30)
    with pytest.raises(ValueError, match="same shape"):
        write_video(path, [np.zeros((48, 64, 3), np.uint8), np.zeros((48, 32, 3), np.uint8)], fps=30)
    with pytest.raises(ValueError, match="no frames"):
        write_video(path, [], fps=30)
    assert list(tmp_path.iterdir()) == [], "a failed write leaves nothing behind"


def test_iter_batches_covers_every_frame_once(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, smooth_frames(23), fps=30)
    with open_video(path, backend="pyav") as reader:
        batches = list(reader.iter_batches(5))
    assert [len(indices) for indices, _ in batches] == [5, 5, 5, 5, 3]
    for indices, frames in batches:
        assert indices.dtype == np.int64 and frames.shape == (len(indices), 48, 64, 3)
    np.testing.assert_array_equal(np.concatenate([indices for indices, _ in batches]), np.arange(23))


@pytest.mark.parametrize("gop", [None, 7])
def test_read_frames_matches_sequential_decode(tmp_path: Path, gop: int | None) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, smooth_frames(40), fps=30, crf=23, gop=gop)
    assert has_reordered_frames(path), "x264's defaults should give B-frames"
    sequential = decode_all(path)

    indices = [39, 3, 17, 0, 17, 8, 7, 21, 22, 23, 14, 38]  # unsorted, repeated, around keyframes
    with open_video(path, backend="pyav") as reader:
        np.testing.assert_array_equal(reader.read_frames(indices), sequential[indices])
        np.testing.assert_array_equal(reader.read_frames(range(10, 18)), sequential[10:18])
        assert reader.read_frames([]).shape == (0, 48, 64, 3)
        with pytest.raises(IndexError):
            reader.read_frames([40])


def test_missing_file() -> None:
    with pytest.raises(InputError, match="nowhere.mp4: file not found"):
        probe_video("/nonexistent/nowhere.mp4")


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames\n" * 100)
    with pytest.raises(InputError, match="notes.mp4: cannot decode video"):
        open_video(path)


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "sound.wav"
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(bytes(1600))
    with pytest.raises(InputError, match="no video stream"):
        probe_video(path)


def test_video_without_frames(tmp_path: Path) -> None:
    # An mp4 without samples loses its track altogether; avi keeps the stream header.
    path = tmp_path / "empty.avi"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    with pytest.raises(InputError, match="empty.avi: video has no frames"):
        probe_video(path)


def encode_with_timestamps(path: Path, pts: list[int], time_base: Fraction, rate: Fraction = Fraction(30)) -> None:
    """Encode len(pts) frames with the given timestamps, bypassing write_video's constant rate."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = 64, 48
        for image, timestamp in zip(smooth_frames(len(pts)), pts):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = timestamp, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_variable_frame_rate_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mp4"
    encode_with_timestamps(path, [0, 1, 2, 4, 5, 9, 10, 11, 15, 16, 17, 20], Fraction(1, 30))
    with pytest.raises(InputError, match="vfr.mp4: variable frame rate"):
        probe_video(path)


def test_rounded_timestamps_are_a_constant_rate(tmp_path: Path) -> None:
    # Matroska stores milliseconds: 29.97 fps becomes steps of 33 and 34 ms.
    path = tmp_path / "ntsc.mkv"
    encode_with_timestamps(path, [round(n * 1001 / 30) for n in range(30)], Fraction(1, 1000), Fraction(30000, 1001))
    info = probe_video(path)
    assert info.num_frames == 30
    assert info.fps == pytest.approx(30000 / 1001)  # the header's exact rate, not 29.969 from the timestamps


def test_unknown_backend(tmp_path: Path) -> None:
    assert "pyav" in BACKENDS
    with pytest.raises(ValueError, match="auto, pyav"):
        open_video(tmp_path / "clip.mp4", backend="gstreamer")


@pytest.mark.skipif(not MIRROR_MOUSE_VIDEO.exists(), reason="mirror-mouse example data not present")
def test_mirror_mouse_video() -> None:
    info = probe_video(MIRROR_MOUSE_VIDEO)
    assert (info.num_frames, info.fps, info.height, info.width, info.codec) == (994, 250.0, 406, 396, "h264")

    wanted = [993, 5, 433, 192, 191, 700, 701]  # around the keyframes at 192 and 432, and the end
    with open_video(MIRROR_MOUSE_VIDEO, backend="pyav") as reader:
        sequential = {}
        count = 0
        for indices, frames in reader.iter_batches(128):
            count += len(indices)
            sequential.update({int(i): f for i, f in zip(indices, frames) if i in wanted})
        assert count == 994
        random_access = reader.read_frames(wanted)
    for i, frame in zip(wanted, random_access):
        np.testing.assert_array_equal(frame, sequential[i], err_msg=f"frame {i}")


def encode_gradient(path: Path, pix_fmt: str, colorspace: int, color_range: int) -> None:
    """Ten 48 x 64 frames of colour gradients, tagged with the given colour matrix and range."""
    rows, cols = np.mgrid[0:48, 0:64]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        stream.codec_context.colorspace, stream.codec_context.color_range = colorspace, color_range
        for t in range(10):
            image = np.stack([cols * 4, rows * 5, np.full_like(rows, 20 * t)], axis=-1).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def planes_to_rgb(path: Path, batch_size: int) -> np.ndarray:
    """The frames as the GPU path makes them (raw 4:2:0 planes, converted by video.yuv), on the CPU."""
    reader = PyAVReader(path)
    with av.open(str(path)) as container:
        return torch.cat(list(reader._planes_on_device(container.decode(container.streams.video[0]), batch_size))).numpy()


# (pixel format, colour matrix, range): untagged BT.601 TV range, full range, BT.709 in both ranges
@pytest.mark.parametrize("pix_fmt, colorspace, color_range", [("yuv420p", 2, 0), ("yuvj420p", 2, 2), ("yuv420p", 1, 1), ("yuv420p", 1, 2)])
def test_planes_become_the_rgb_ffmpeg_makes(tmp_path: Path, pix_fmt: str, colorspace: int, color_range: int) -> None:
    path = tmp_path / "clip.mp4"
    encode_gradient(path, pix_fmt, colorspace, color_range)
    expected = decode_all(path)
    converted = planes_to_rgb(path, batch_size=4)  # two full batches, one partial: both buffers reused
    assert converted.shape == expected.shape and converted.dtype == np.uint8
    difference = np.abs(converted.astype(int) - expected)
    assert difference.mean() < 1.5 and difference.max() <= 3  # swscale rounds in fixed point


@pytest.mark.skipif(not MIRROR_MOUSE_VIDEO.exists(), reason="mirror-mouse example data not present")
def test_planes_of_the_mirror_mouse_video() -> None:
    difference = np.abs(planes_to_rgb(MIRROR_MOUSE_VIDEO, 128)[:200].astype(int) - decode_all(MIRROR_MOUSE_VIDEO)[:200])
    assert difference.mean() < 1.0 and difference.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_pyav_frames_on_a_gpu(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, iter(smooth_frames(20)), fps=25.0)
    with open_video(path, backend="pyav", device="cuda") as reader:
        batches = list(reader.iter_batches(8))
    assert [len(i) for i, _ in batches] == [8, 8, 4] and all(f.is_cuda for _, f in batches)
    difference = np.abs(torch.cat([f for _, f in batches]).cpu().numpy().astype(int) - decode_all(path))
    assert difference.mean() < 1.5 and difference.max() <= 3


def test_decoder_process_hands_over_every_frame(tmp_path: Path) -> None:
    """The worker process behind PyAV's GPU stream (run here on the CPU): every frame once and in
    order, as FFmpeg's RGB; a video in another pixel format is decoded in this process instead."""
    from lightning_pose_lib.video.pyav_backend import _planes_from_worker

    paths = [tmp_path / "a.mp4", tmp_path / "odd.mp4", tmp_path / "b.mp4"]
    write_video(paths[0], iter(smooth_frames(20)), fps=25.0)
    encode_gradient(paths[1], "yuv444p", 2, 0)  # not 4:2:0
    write_video(paths[2], iter(smooth_frames(9, height=32, width=40)), fps=25.0)
    events = list(_planes_from_worker([str(p) for p in paths], batch_size=8, device=torch.device("cpu")))
    assert [(e[0], e[1]) for e in events if e[0] != "batch"] == [("start", 0), ("end", 0), ("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    for i, path in enumerate(paths):
        batches = [e for e in events if e[0] == "batch" and e[1] == i]
        np.testing.assert_array_equal(np.concatenate([e[2] for e in batches]), np.arange(len(decode_all(path))))
        frames = np.concatenate([np.asarray(e[3].rgb() if isinstance(e[3], YUV420Frames) else e[3]) for e in batches])
        assert np.abs(frames.astype(int) - decode_all(path)).max() <= 3


def test_decoder_process_validates_and_keeps_its_slots_between_streams(tmp_path: Path) -> None:
    """The worker validates each video itself (a bad one is reported with its path, the next go
    on), makes larger slots when a video needs them, and keeps them for the next stream. A stream
    prepared ahead is decoded before it is asked for."""
    from lightning_pose_lib.video.pyav_backend import _DecoderProcess, _planes_from_worker

    small, big, broken = tmp_path / "small.mp4", tmp_path / "big.mp4", tmp_path / "broken.mp4"
    write_video(small, iter(smooth_frames(11, height=32, width=40)), fps=25.0)
    write_video(big, iter(smooth_frames(13, height=64, width=96)), fps=25.0)
    broken.write_bytes(b"not a video at all" * 100)
    cpu = torch.device("cpu")
    first = [small, broken, big, small]
    PyAVReader.prepare([[str(p) for p in first]], 4, device="cuda")  # what prediction on a GPU does
    (begun,) = _DecoderProcess._begun[(tuple(map(str, first)), 4)]
    deadline = time.monotonic() + 60
    while begun.filled.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not begun.filled.empty(), "the prepared worker sent nothing before its stream was asked for"
    for paths in (first, [big, small]):
        events = list(_planes_from_worker([str(p) for p in paths], batch_size=4, device=cpu))
        for i, path in enumerate(paths):
            if path == broken:
                (error,) = [e[2] for e in events if e[1] == i]
                assert isinstance(error, InputError) and str(broken) in str(error) and "cannot decode video" in str(error)
                continue
            batches = [e for e in events if e[0] == "batch" and e[1] == i]
            np.testing.assert_array_equal(np.concatenate([e[2] for e in batches]), np.arange(len(decode_all(path))))
            frames = np.concatenate([e[3].rgb().numpy() for e in batches])
            assert np.abs(frames.astype(int) - decode_all(path)).max() <= 3
    assert not _DecoderProcess._begun  # handed over, and nothing kept of it
    worker = _DecoderProcess._borrow()  # the one both streams used, given back after each
    assert worker is begun and worker.slots and all(slot.numel() >= 4 * 64 * 96 * 3 // 2 for slot in worker.slots)
    worker.give_back()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_pyav_stream_to_a_gpu(tmp_path: Path) -> None:
    paths = [tmp_path / "a.mp4", tmp_path / "missing.mp4", tmp_path / "b.mp4"]
    write_video(paths[0], iter(smooth_frames(20)), fps=25.0)
    write_video(paths[2], iter(smooth_frames(9)), fps=25.0)
    events = list(PyAVReader.stream([str(p) for p in paths], 8, device="cuda"))
    assert [(e[0], e[1]) for e in events if e[0] != "batch"] == [("start", 0), ("end", 0), ("error", 1), ("start", 2), ("end", 2)]
    assert "file not found" in str(events[[e[1] for e in events].index(1)][2])
    for i in (0, 2):
        frames = torch.cat([e[3].rgb() for e in events if e[0] == "batch" and e[1] == i])
        assert frames.is_cuda and np.abs(frames.cpu().numpy().astype(int) - decode_all(paths[i])).max() <= 3


@pytest.mark.parametrize("source", ["gradient", "mirror-mouse"])
def test_planes_resized_before_conversion_match_resized_rgb(tmp_path: Path, source: str) -> None:
    """YUV420Frames.model_input (resize, then convert) against to_model_input of FFmpeg's RGB."""
    from lightning_pose_lib.data.transforms import to_model_input
    from lightning_pose_lib.video.pyav_backend import _colour, _write_planes
    from lightning_pose_lib.video.yuv import frame_bytes

    if source == "mirror-mouse" and not MIRROR_MOUSE_VIDEO.exists():
        pytest.skip("mirror-mouse example data not present")
    path = MIRROR_MOUSE_VIDEO if source == "mirror-mouse" else tmp_path / "clip.mp4"
    if source == "gradient":
        encode_gradient(path, "yuv420p", 1, 1)
    rows = []
    with av.open(str(path)) as container:
        for frame, _ in zip(container.decode(video=0), range(32)):
            rows.append(np.empty(frame_bytes(frame.height, frame.width), np.uint8))
            _write_planes(frame, rows[-1])
    frames = YUV420Frames(torch.from_numpy(np.stack(rows)), frame.height, frame.width, *_colour(frame))
    difference = (to_model_input(frames, (40, 56)) - to_model_input(decode_all(path)[: len(rows)], (40, 56))).abs() * 255
    assert difference.mean() < 1.5 and difference.max() < 12  # swscale rounds in fixed point; edges differ most


def test_decoder_process_that_dies_fails_the_unfinished_videos(tmp_path: Path) -> None:
    from lightning_pose_lib.video.pyav_backend import _planes_from_worker

    paths = [tmp_path / f"{name}.mp4" for name in "abc"]
    for path in paths:
        write_video(path, iter(smooth_frames(40)), fps=25.0)
    cpu = torch.device("cpu")
    abandoned = _planes_from_worker([str(p) for p in paths], batch_size=8, device=cpu)
    assert next(abandoned)[0] == "start"
    abandoned.close()  # stopped midway: its worker is killed, the next stream gets another
    stream = _planes_from_worker([str(p) for p in paths], batch_size=8, device=cpu)
    events = [next(stream)]
    stream.gi_frame.f_locals["worker"].process.kill()
    events += list(stream)  # the worker is at most three batches ahead: it cannot have finished
    errors = {e[1]: e[2] for e in events if e[0] == "error"}
    assert sorted(errors) == [0, 1, 2] and all("decoder process died" in str(err) for err in errors.values())
    assert not [e for e in events if e[0] == "end"]

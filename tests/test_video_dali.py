"""The DALI backend against the PyAV backend on the same files.

Without a GPU DALI decodes only VP9/VP8/MJPEG, so CPU runs use VP9 and MJPEG copies; with a GPU the
H.264 test runs too. Skipped where nvidia-dali is not installed.
"""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from lightning_pose_lib.data.transforms import to_model_input, to_model_uint8
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.video import DaliReader, open_video, write_video

pytest.importorskip("nvidia.dali")


def transcode(src, dst, codec: str, limit: int | None = None) -> None:
    """Re-encode ``src`` with ``codec`` (libvpx-vp9 or mjpeg), short GOP, constant frame rate."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        rate = Fraction(inp.streams.video[0].average_rate)
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = inp.streams.video[0].width, inp.streams.video[0].height
        if codec == "mjpeg":
            stream.pix_fmt = "yuvj420p"
            stream.options = {"q:v": "3"}
        else:
            stream.pix_fmt = "yuv420p"
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b:v": "0", "g": "16"}
        for n, frame in enumerate(inp.decode(video=0)):
            if limit is not None and n >= limit:
                break
            frame = frame.reformat(format=stream.pix_fmt)
            frame.pts, frame.time_base = n, 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.fixture(scope="module")
def small_h264(tmp_path_factory):
    # Smooth moving colour patterns: like camera images, unlike noise (whose chroma the decoders'
    # different upsampling filters would render differently).
    path = tmp_path_factory.mktemp("dali") / "clip.mp4"
    y, x = np.mgrid[0:128, 0:192].astype(float)  # NVDEC decodes 128 x 128 and up

    def frame(i):
        channels = [np.sin(x / 30 + i / 4), np.cos(y / 25 - i / 6), np.sin((x + y) / 40 + i / 5)]
        return ((np.stack(channels, -1) + 1) * 100 + 20).astype(np.uint8)

    write_video(path, (frame(i) for i in range(45)), fps=30)
    return path


# Colour edges are upsampled from 4:2:0 chroma slightly differently by the two decoders: mean
# differences of 1-1.5 grey levels on this colourful fixture; on grey camera video (below) MJPEG
# is bit-exact and VP9 within one level.
@pytest.mark.parametrize("codec, suffix, tolerance", [("libvpx-vp9", ".webm", 2.0), ("mjpeg", ".avi", 2.0)])
def test_dali_cpu_matches_pyav(small_h264, tmp_path, codec, suffix, tolerance):
    video = tmp_path / f"clip{suffix}"
    transcode(small_h264, video, codec)
    with open_video(video, backend="pyav") as reader:
        reference = {int(i): f for idx, frames in reader.iter_batches(16) for i, f in zip(idx, frames)}
    with DaliReader(video, device="cpu") as reader:
        batches = list(reader.iter_batches(16))
    indices = np.concatenate([i for i, _ in batches])
    assert indices.tolist() == list(range(45))  # every frame once, in order, the partial tail included
    assert [len(i) for i, _ in batches] == [16, 16, 13]
    frames = torch.cat([f.cpu() for _, f in batches]).numpy()
    difference = np.abs(frames.astype(float) - np.stack([reference[i] for i in range(45)]).astype(float))
    assert difference.mean() <= tolerance
    # resize + normalise are the same torch code for both backends
    a = to_model_input(frames, (32, 64))
    b = to_model_input(np.stack([reference[i] for i in range(45)]), (32, 64))
    assert (a - b).abs().mean() < 0.01


def test_dali_read_frames_matches_sequential(small_h264, tmp_path):
    video = tmp_path / "clip.avi"
    transcode(small_h264, video, "mjpeg")
    with DaliReader(video, device="cpu") as reader:
        picked = reader.read_frames([30, 2, 44, 2]).cpu().numpy()
    with open_video(video, backend="pyav") as reader:
        expected = reader.read_frames([30, 2, 44, 2])
    assert np.abs(picked.astype(float) - expected.astype(float)).mean() < 2.0
    assert np.abs(picked[1].astype(float) - picked[3].astype(float)).max() == 0  # the same frame twice


@pytest.mark.parametrize("codec, suffix, mean_limit, max_limit", [("libvpx-vp9", ".webm", 0.6, 1), ("mjpeg", ".avi", 0.0, 0)])
def test_dali_cpu_on_real_video(mirror_mouse, tmp_path, codec, suffix, mean_limit, max_limit):
    video = tmp_path / f"mouse{suffix}"
    transcode(mirror_mouse / "videos" / "test_vid.mp4", video, codec, limit=40)
    with open_video(video, backend="pyav") as reader:
        expected = reader.read_frames(range(40)).astype(float)
    with DaliReader(video, device="cpu") as reader:
        frames = np.concatenate([f.cpu().numpy() for _, f in reader.iter_batches(16)]).astype(float)
    difference = np.abs(frames - expected)
    assert difference.mean() <= mean_limit and difference.max() <= max_limit


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only behaviour")
def test_h264_on_cpu_is_a_clear_error(small_h264):
    with pytest.raises(InputError, match="only on a GPU"):
        open_video(small_h264, backend="dali")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_dali_gpu_h264_matches_pyav(small_h264):
    with open_video(small_h264, backend="pyav") as reader:
        reference = np.concatenate([f for _, f in reader.iter_batches(16)])
    with open_video(small_h264, backend="dali") as reader:
        batches = list(reader.iter_batches(16))
    assert np.concatenate([i for i, _ in batches]).tolist() == list(range(45))
    frames = torch.cat([f for _, f in batches])
    assert frames.is_cuda
    assert np.abs(frames.cpu().numpy().astype(float) - reference.astype(float)).mean() < 2.0


def test_dali_unlabeled_clips_are_consecutive_frames(small_h264, tmp_path):
    from lightning_pose_lib.data.unlabeled import DaliUnlabeledClips

    videos = []
    for name in ("a", "b"):
        videos.append(tmp_path / f"{name}.webm")
        transcode(small_h264, videos[-1], "libvpx-vp9")
    with open_video(videos[0], backend="pyav") as reader:
        reference = to_model_uint8(reader.read_frames(range(45)), (32, 48)).float()
    clips = iter(DaliUnlabeledClips(videos, length=8, size_hw=(32, 48), seed=1))
    for _ in range(12):  # more clips than one pass over the two videos holds (5 whole clips each)
        item = next(clips)
        assert item["frames"].shape == (1, 8, 3, 32, 48) and item["frames"].dtype == torch.uint8
        assert item["orig_hw"].tolist() == [[128.0, 192.0]]
        # the clip is 8 consecutive frames of the video (both copies have the same frames)
        clip = item["frames"][0].float().cpu()
        start = int((reference[:38] - clip[0]).abs().mean(dim=(1, 2, 3)).argmin())
        assert (reference[start : start + 8] - clip).abs().mean() < 2.0
    # a new epoch continues the same stream (no new pipeline, no replay of the same clips)
    source = DaliUnlabeledClips(videos, length=8, size_hw=(32, 48), seed=1)
    assert iter(source) is iter(source)
    # runs of 5 clips (all a 45-frame video holds); the same seed draws the same clips, another seed others
    assert source.run == 5
    streams = [iter(DaliUnlabeledClips(videos, length=8, size_hw=(32, 48), seed=seed)) for seed in (1, 1, 2)]
    first, second, third = ([next(stream)["frames"] for _ in range(6)] for stream in streams)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, c) for a, c in zip(first, third))
    with pytest.raises(InputError, match="need unlabeled videos"):  # not an IndexError
        DaliUnlabeledClips([], length=8, size_hw=(32, 48), seed=1)


def test_dali_stream_decodes_many_videos_in_one_pass(small_h264, tmp_path):
    """One pipeline over a list of videos: every frame of each, in order, tagged with its video;
    a file that is not a video is reported by name and the others still decode."""
    videos = []
    for name, limit in (("a", None), ("b", 20), ("c", 45)):
        videos.append(tmp_path / f"{name}.webm")
        transcode(small_h264, videos[-1], "libvpx-vp9", limit=limit)
    broken = tmp_path / "broken.webm"
    broken.write_text("not a video")
    paths = [str(videos[0]), str(broken), str(videos[1]), str(videos[2])]
    events = list(DaliReader.stream(paths, 16))
    errors = {e[1]: e[2] for e in events if e[0] == "error"}
    assert list(errors) == [1] and "broken.webm" in str(errors[1])
    for position, count in ((0, 45), (2, 20), (3, 45)):
        mine = [e for e in events if e[1] == position]
        assert mine[0][0] == "start" and mine[0][2].num_frames == count and mine[-1] == ("end", position)
        assert np.concatenate([e[2] for e in mine if e[0] == "batch"]).tolist() == list(range(count))
    with open_video(videos[1], backend="pyav") as reader:
        expected = reader.read_frames(range(20)).astype(float)
    frames = torch.cat([e[3].cpu() for e in events if e[0] == "batch" and e[1] == 2]).numpy().astype(float)
    assert np.abs(frames - expected).mean() < 2.0

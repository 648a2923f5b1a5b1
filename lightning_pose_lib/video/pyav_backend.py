"""CPU video backend on PyAV (FFmpeg): validation, sequential decode and frame-exact random access.

Frame indices come from presentation timestamps, not from the container header: the demuxed packets
of the video stream are counted and their pts sorted, so frame ``i`` is the packet with the ``i``-th
smallest pts. Demuxing reads no pixels, so this costs milliseconds even for long videos.
"""

from __future__ import annotations

import concurrent.futures
import fractions
import os
import queue
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import av
import numpy as np

from lightning_pose_lib.errors import InputError
from lightning_pose_lib.workers import context, exit_without
from lightning_pose_lib.video.base import VideoInfo, VideoReader
from lightning_pose_lib.video.yuv import FULL_RANGE, YUV420Frames, frame_bytes, plane_shapes

PLANAR_420 = ("yuv420p", "yuvj420p")  # the pixel formats handed to a GPU as planes (yuvj: full range)


@dataclass(frozen=True)
class _FrameIndex:
    """Where each frame sits in the stream, for seeking."""

    pts: np.ndarray  # presentation timestamp of each frame, increasing
    frame_of_pts: dict[int, int]  # the inverse of pts
    seek_frames: np.ndarray  # sorted frame indices one can seek to: keyframes, and frame 0
    time_base: fractions.Fraction  # seconds per pts tick


def _scan(path: str | os.PathLike) -> tuple[VideoInfo, _FrameIndex]:
    """Validate ``path`` by demuxing its video packets and decoding one frame."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise InputError(path, "cannot decode video: the file has no video stream")
            stream = container.streams.video[0]
            # PyAV ends the demux with an empty flush packet; packets an edit list discards are
            # never shown, so neither is a frame.
            packets = [
                (packet.pts, packet.is_keyframe)
                for packet in container.demux(stream)
                if packet.size > 0 and not packet.is_discard
            ]
            if not packets:
                raise InputError(path, "video has no frames")
            if any(pts is None for pts, _ in packets):
                raise InputError(path, "cannot read frame timestamps; re-encode the video as .mp4")
            # Demuxing succeeds on streams the decoder rejects, so decode one frame to be sure.
            container.seek(0)
            if next(container.decode(stream), None) is None:
                raise InputError(path, "cannot decode video: no frame could be decoded")
            time_base = stream.time_base
            codec = stream.codec_context.name
            height, width = stream.codec_context.height, stream.codec_context.width
            header_rate = stream.guessed_rate
    except av.FFmpegError as error:
        raise InputError(path, f"cannot decode video: {error}") from error

    pts = np.sort(np.array([p for p, _ in packets], dtype=np.int64))
    steps = np.diff(pts)
    if steps.size:
        span = int(pts[-1] - pts[0])  # ticks from the first frame to the last
        mean_step = span / steps.size
        # One tick of rounding (e.g. 29.97 fps in a millisecond time base) is still a constant rate.
        if np.any(np.abs(steps - mean_step) > max(1.0, 0.01 * mean_step)):
            raise InputError(
                path,
                f"variable frame rate (frame spacing varies from {steps.min()} to {steps.max()} "
                f"ticks of {time_base} s); frame numbers would not match time. Re-encode it at a "
                "constant rate, e.g. ffmpeg -i IN -fps_mode cfr -r FPS OUT.mp4",
            )
        fps = steps.size / (span * time_base)
        # The header's rate is exact where timestamps are rounded (a millisecond time base turns
        # 30000/1001 fps into 29.969): prefer it when it places the last frame to within a tick.
        if header_rate and abs(steps.size / header_rate - span * time_base) <= time_base:
            fps = header_rate
    else:
        fps = header_rate or 0  # a single frame has no spacing; trust the header

    frame_of_pts = {int(p): i for i, p in enumerate(pts)}
    keyframes = {frame_of_pts[packet_pts] for packet_pts, is_keyframe in packets if is_keyframe}
    # Frame 0 is always a seek point: seeking to its pts reaches the start of the stream.
    seek_frames = np.array(sorted(keyframes | {0}), dtype=np.int64)
    index = _FrameIndex(pts=pts, frame_of_pts=frame_of_pts, seek_frames=seek_frames, time_base=time_base)
    info = VideoInfo(path=path, num_frames=len(pts), fps=float(fps), height=height, width=width, codec=codec)
    return info, index


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Exact frame count, rate and size of ``path``; InputError if it is not a usable video.

    Rejects: a missing file, a file FFmpeg cannot decode or without a video stream, a video without
    frames, and a variable frame rate (frame ``i`` must be at time ``i / fps``).
    """
    return _scan(path)[0]


def frame_times(path: str | os.PathLike) -> np.ndarray:
    """Each frame's presentation time in seconds (its pts in the stream's time base)."""
    index = _scan(path)[1]
    return index.pts * float(index.time_base)


def _open_decoder(path: str) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    container = av.open(path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads: about 2x faster on 2 cores
    return container, stream


class PyAVReader(VideoReader):
    """Decodes on the CPU with FFmpeg; the file is validated (:func:`probe_video`) on opening.

    ``device``: where :meth:`iter_batches` delivers frames. On the CPU (the default) they are
    numpy RGB from FFmpeg; on a GPU, 4:2:0 video goes there as its raw planes and becomes RGB
    there (:mod:`lightning_pose_lib.video.yuv`), which is several times faster than converting
    on the CPU."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device | None = None):
        import torch

        self.info, self._index = _scan(path)
        self.device = torch.device(device or "cpu")
        # Random access keeps one container open across read_frames calls; iter_batches opens its
        # own, so a prediction loop and clip sampling on the same reader do not disturb each other.
        self._random_access: tuple[av.container.InputContainer, av.video.stream.VideoStream] | None = None

    @classmethod
    def stream(cls, paths: Sequence[str], batch_size: int, device=None) -> Iterator[tuple]:
        """For a GPU, the videos are validated and decoded in a worker process
        (:func:`_decode_planes`) and handed over in shared memory as 4:2:0 planes, which go to the
        GPU as they are: batches are :class:`YUV420Frames` there (``to_model_input`` resizes and
        converts them in one go). In a thread of this process, decoding would hold the interpreter
        lock that the model's thread needs (decoder threads in one process reach about half the
        frames/s of processes), and so would validating: its demuxing is a Python loop over every
        packet (on the H200 machine, validating each thread's 8 videos before decoding any held
        back the first batch by a second)."""
        import torch

        if device is None or torch.device(device).type != "cuda":
            yield from super().stream(paths, batch_size, device)
            return
        cls._check_batch_size(batch_size)
        if paths:
            yield from _planes_from_worker(list(paths), batch_size, torch.device(device))

    @classmethod
    def prepare(cls, streams: list[list[str]], batch_size: int, device=None) -> None:
        """For a GPU: each stream's worker process starts on its videos now, so that its first
        batches are decoded by the time they are asked for (while the caller sets up the model)."""
        import torch

        if device is not None and torch.device(device).type == "cuda":
            for paths in streams:
                _DecoderProcess.begin(paths, batch_size)

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | torch.Tensor]]:
        self._check_batch_size(batch_size)
        container, stream = _open_decoder(self.info.path)
        planar = self.device.type == "cuda" and stream.codec_context.pix_fmt in PLANAR_420
        with container:
            count = 0
            for frames in (self._planes_on_device if planar else self._rgb)(container.decode(stream), batch_size):
                yield np.arange(count, count + len(frames), dtype=np.int64), frames
                count += len(frames)
        if count != self.info.num_frames:
            raise _short(self.info, count)

    def _rgb(self, frames: Iterator[av.VideoFrame], batch_size: int) -> Iterator[np.ndarray | torch.Tensor]:
        """Batches of RGB converted by FFmpeg (numpy; copied to ``device`` if that is not the CPU)."""
        batch: list[np.ndarray] = []
        for frame in frames:
            batch.append(frame.to_ndarray(format="rgb24"))
            if len(batch) == batch_size:
                yield self._to_device(np.stack(batch))
                batch = []
        if batch:
            yield self._to_device(np.stack(batch))

    def _to_device(self, frames: np.ndarray) -> np.ndarray | torch.Tensor:
        import torch

        return frames if self.device.type == "cpu" else torch.from_numpy(frames).to(self.device)

    def _planes_on_device(self, frames: Iterator[av.VideoFrame], batch_size: int) -> Iterator[torch.Tensor]:
        """Batches of 4:2:0 planes copied into pinned buffers (two, taking turns), sent to the
        device without waiting, and converted to RGB there on the current CUDA stream."""
        import torch

        height, width = self.info.height, self.info.width
        on_gpu = self.device.type == "cuda"
        buffers = [torch.empty((batch_size, frame_bytes(height, width)), dtype=torch.uint8, pin_memory=on_gpu) for _ in range(2)]
        sent: list[torch.cuda.Event | None] = [None, None]  # each buffer's copy to the device
        slot, rows, colour = 0, 0, None

        def send(rows: int) -> torch.Tensor:
            planes = buffers[slot][:rows].to(self.device, non_blocking=True)
            if on_gpu:
                sent[slot] = torch.cuda.Event()
                sent[slot].record()
            return YUV420Frames(planes, height, width, *colour).rgb()

        for frame in frames:
            if rows == 0 and sent[slot] is not None:
                sent[slot].synchronize()  # long done: the other buffer was filled meanwhile
            colour = colour or _colour(frame)
            _write_planes(frame, buffers[slot][rows].numpy())
            rows += 1
            if rows == batch_size:
                yield send(rows)
                slot, rows = 1 - slot, 0
        if rows:
            yield send(rows)

    def read_frames(self, indices: Sequence[int]) -> np.ndarray:
        indices = self._check_indices(indices)
        if not indices.size:
            return np.empty((0, self.info.height, self.info.width, 3), dtype=np.uint8)
        frames: dict[int, np.ndarray] = {}
        decoder: Iterator[tuple[int, av.VideoFrame]] | None = None
        position = -1  # index of the last frame the current decoder produced
        for target in np.unique(indices).tolist():
            seek_frames = self._index.seek_frames
            key = int(seek_frames[np.searchsorted(seek_frames, target, side="right") - 1])
            # Decoding on is cheaper than seeking, unless a keyframe lies between here and the target.
            if decoder is None or key > position:
                decoder = self._decode_from(key)
            for position, frame in decoder:
                if position >= target:
                    break
            if position != target:
                raise RuntimeError(f"{self.info.path}: seeking did not reach frame {target}")
            frames[target] = frame.to_ndarray(format="rgb24")
        return np.stack([frames[i] for i in indices.tolist()])

    def _decode_from(self, key: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Seek to the keyframe ``key`` and yield (index, frame) from it on, in presentation order."""
        if self._random_access is None:
            self._random_access = _open_decoder(self.info.path)
        container, stream = self._random_access
        # FFmpeg's mp4 demuxer seeks by pts: the keyframe's own pts lands exactly on it (its dts,
        # which is smaller with B-frames, lands on the keyframe before).
        container.seek(int(self._index.pts[key]), stream=stream, backward=True)
        for frame in container.decode(stream):
            index = self._index.frame_of_pts[frame.pts]
            # Frames shown before the keyframe but decoded after it (open-GOP B-frames) reference the
            # previous GOP, which was skipped: their pixels are wrong.
            if index >= key:
                yield index, frame

    def close(self) -> None:
        if self._random_access is not None:
            self._random_access[0].close()
            self._random_access = None


class _DecoderProcess:
    """A worker process that validates and decodes lists of videos into shared-memory slots
    (:func:`_serve`). Workers are kept between streams: starting one takes seconds, as it imports
    the main script; so are their slots, which the worker makes (it alone knows the frame sizes
    before decoding) and sends once."""

    _idle: list[_DecoderProcess] = []
    _begun: dict[tuple, list[_DecoderProcess]] = {}  # (paths, batch size) -> workers already on that job
    _lock = threading.Lock()

    def __init__(self):
        forkserver = context()
        self.jobs, self.free, self.filled = forkserver.Queue(), forkserver.Queue(), forkserver.Queue()
        self.process = forkserver.Process(target=_serve, args=(self.jobs, self.free, self.filled, os.getpid()), daemon=True)
        self.process.start()
        self.slots: list[torch.Tensor] = []  # the worker's latest slots, as received

    @classmethod
    def begin(cls, paths: list[str], batch_size: int) -> None:
        """Give a worker the job of decoding ``paths`` now; :meth:`take` hands it over later."""
        worker = cls._borrow()
        worker.jobs.put((paths, batch_size))
        with cls._lock:
            cls._begun.setdefault((tuple(paths), batch_size), []).append(worker)

    @classmethod
    def take(cls, paths: list[str], batch_size: int) -> _DecoderProcess:
        """A worker decoding ``paths``: the one :meth:`begin` started on them, or one started now."""
        key = (tuple(paths), batch_size)
        with cls._lock:
            begun = cls._begun.get(key)
            worker = begun.pop() if begun else None
            if begun == []:  # a long-lived process predicts many lists of videos: keep no empty entries
                del cls._begun[key]
        if worker is None:
            worker = cls._borrow()
            worker.jobs.put((paths, batch_size))
        return worker

    @classmethod
    def _borrow(cls) -> _DecoderProcess:
        with cls._lock:
            worker = cls._idle.pop() if cls._idle else None
        return worker if worker is not None and worker.process.is_alive() else cls()

    def give_back(self) -> None:
        with self._lock:
            self._idle.append(self)

    def kill(self) -> None:
        self.process.kill()
        self.process.join()


SLOTS = 3  # shared-memory batches per worker: one being filled, one being copied, one spare


def _planes_from_worker(paths: list[str], batch_size: int, device: torch.device) -> Iterator[tuple]:
    """The stream events of ``paths``, validated and decoded by a worker process into
    shared-memory slots, each slot copied to ``device`` and handed back to the worker."""
    import torch.multiprocessing  # noqa: F401  (registers how tensors go to another process)

    worker = _DecoderProcess.take(paths, batch_size)
    infos: dict[int, VideoInfo] = {}
    remaining = set(range(len(paths)))
    finished = False
    try:
        while True:
            try:
                message = worker.filled.get(timeout=1.0)
            except queue.Empty:
                if worker.process.is_alive():
                    continue
                break
            kind = message[0]
            if kind == "done":
                finished = True
                break
            if kind == "slots":  # sent only while every earlier slot is back with the worker
                worker.slots = message[1]
                continue
            i = message[1]
            if kind in ("end", "error", "not planar"):
                remaining.discard(i)
            if kind == "start":
                infos[i] = message[2]
                yield ("start", i, infos[i])
            elif kind == "batch":
                _, _, slot, first, rows, colour = message
                info = infos[i]
                size = frame_bytes(info.height, info.width)
                planes = worker.slots[slot][: rows * size].view(rows, size).to(device, copy=True)  # the slot is read on return
                worker.free.put(slot)
                yield ("batch", i, np.arange(first, first + rows, dtype=np.int64), YUV420Frames(planes, info.height, info.width, *colour))
            elif kind == "end":
                yield ("end", i) if message[2] == infos[i].num_frames else ("error", i, _short(infos[i], message[2]))
            elif kind == "error":
                yield ("error", i, InputError(paths[i], message[2]))
            elif kind == "not planar":  # another pixel format: decoded here, converted by FFmpeg
                for event in super(PyAVReader, PyAVReader).stream([paths[i]], batch_size, device):
                    yield (event[0], i, *event[2:])
        for i in sorted(remaining):  # the worker died before finishing them
            yield ("error", i, InputError(paths[i], "the decoder process died"))
    finally:
        if finished:
            worker.give_back()
        else:  # died, or the stream was abandoned midway: its queues hold stale messages
            worker.kill()


def _serve(jobs, free, filled, parent: int) -> None:
    """Worker process: validate and decode each job of ``jobs`` (:func:`_decode_planes`) until
    told to stop (None). Its slots outlive the jobs."""
    from torch import multiprocessing as _  # noqa: F401  (sends the slots as shared memory)

    exit_without(parent)
    slots = _Slots(free, filled)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as scanner:
        while (job := jobs.get()) is not None:
            paths, batch_size = job
            _decode_planes(paths, batch_size, slots, scanner, filled)


class _Slots:
    """The worker's shared-memory batches: handed out while free, made anew (and sent to the
    reading process) only when a batch needs more room than they have and all are back."""

    def __init__(self, free, filled):
        self.free, self.filled = free, filled
        self.tensors: list[torch.Tensor] = []
        self.arrays: list[np.ndarray] = []
        self.unused: list[int] = []

    def take(self, nbytes: int) -> tuple[int, np.ndarray]:
        import torch

        if not self.arrays or self.arrays[0].size < nbytes:
            while len(self.unused) < len(self.arrays):  # every slot back before any is replaced
                self.unused.append(self.free.get())
            tensors = [torch.empty(nbytes, dtype=torch.uint8).share_memory_() for _ in range(SLOTS)]
            self.filled.put(("slots", tensors))
            self.tensors, self.unused = tensors, list(range(SLOTS))  # the tensors own the shared memory
            self.arrays = [t.numpy() for t in tensors]
        while not self.unused:
            self.unused.append(self.free.get())
        slot = self.unused.pop()
        return slot, self.arrays[slot]

    def give_back(self, slot: int) -> None:
        self.unused.append(slot)


def _decode_planes(paths: list[str], batch_size: int, slots: _Slots, scanner, filled) -> None:
    """Validate (:func:`_scan`, one video ahead in the ``scanner`` thread) and decode ``paths`` in
    order. Each video is announced on ``filled`` as ("start", position, VideoInfo); each batch of
    its frames, written into a free slot as rows of 4:2:0 planes (luma, then both chroma planes,
    without padding), as ("batch", position, slot, first frame, rows, (colorspace, full range));
    then ("end", position, frames decoded). A video that fails is ("error", position, problem);
    one in a pixel format other than 4:2:0 is ("not planar", position). ("done",) at the end."""

    def scan(path: str) -> VideoInfo | str:
        try:
            return _scan(path)[0]
        except InputError as err:
            return err.problem
        except Exception as err:
            return f"cannot decode video: {type(err).__name__}: {err}"

    scans = [scanner.submit(scan, paths[0])] if paths else []
    for position, path in enumerate(paths):
        if position + 1 < len(paths):
            scans.append(scanner.submit(scan, paths[position + 1]))
        info = scans[position].result()
        if isinstance(info, str):
            filled.put(("error", position, info))
            continue
        slot, count, rows = None, 0, 0
        try:
            container, stream = _open_decoder(path)
            with container:
                if stream.codec_context.pix_fmt not in PLANAR_420:
                    filled.put(("not planar", position))
                    continue
                filled.put(("start", position, info))
                size = frame_bytes(stream.codec_context.height, stream.codec_context.width)
                colour = None
                for frame in container.decode(stream):
                    if slot is None:
                        slot, planes = slots.take(batch_size * size)
                    colour = colour or _colour(frame)
                    _write_planes(frame, planes[rows * size : (rows + 1) * size])
                    rows += 1
                    count += 1
                    if rows == batch_size:
                        filled.put(("batch", position, slot, count - rows, rows, colour))
                        slot, rows = None, 0
                if rows:
                    filled.put(("batch", position, slot, count - rows, rows, colour))
                    slot = None
            filled.put(("end", position, count))
        except Exception as err:  # this video fails; the next ones go on
            if slot is not None:
                slots.give_back(slot)
            filled.put(("error", position, f"cannot decode video: {type(err).__name__}: {err}"))
    filled.put(("done",))


def _short(info: VideoInfo, count: int) -> InputError:
    """The error for a video whose decoder gave ``count`` frames, not as many as it has packets."""
    return InputError(info.path, f"decoded {count} frames but the stream has {info.num_frames} packets")


def _colour(frame: av.VideoFrame) -> tuple[int, bool]:
    """What :class:`YUV420Frames` needs to know of a frame: its colour matrix, and full range or not."""
    return frame.colorspace, frame.color_range == FULL_RANGE or frame.format.name == "yuvj420p"


def _write_planes(frame: av.VideoFrame, row: np.ndarray) -> None:
    """A 4:2:0 frame's planes into ``row`` (uint8, :func:`frame_bytes` long), without their padding."""
    offset = 0
    for plane, (h, w) in zip(frame.planes, plane_shapes(frame.height, frame.width)):
        row[offset : offset + h * w].reshape(h, w)[:] = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w]
        offset += h * w

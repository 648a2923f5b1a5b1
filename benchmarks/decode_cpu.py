#!/usr/bin/env python
"""How fast can this machine's CPUs decode a video, and what does converting to RGB cost?

    python benchmarks/decode_cpu.py VIDEO

PyAV (FFmpeg) decodes every frame of VIDEO and copies it out either as RGB (``to_ndarray(format=
"rgb24")``: FFmpeg's swscale converts on the CPU) or as its raw 4:2:0 planes (``to_ndarray()``:
no conversion), with one decoder thread or FFmpeg's frame threads (``thread_type="AUTO"``); first
in this process alone, then in pools of 4 to 16 processes, each decoding whole copies. Prints
frames/s. The planes are what PyAV hands to a GPU (lightning_pose_lib.video.yuv).
"""

import multiprocessing
import os
import sys
import time

import av


def decode(job: tuple[str, str | None, str | None]) -> int:
    """Frames of the video decoded and copied out as ``pixels`` (rgb24, or None: planes)."""
    path, pixels, threads = job
    with av.open(path) as container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = threads
        count = 0
        for frame in container.decode(stream):
            frame.to_ndarray(format=pixels) if pixels else frame.to_ndarray()
            count += 1
    return count


def main() -> None:
    path = sys.argv[1]
    print("cpus:", os.cpu_count(), flush=True)
    for pixels in ("rgb24", None):
        for threads in (None, "AUTO"):
            start = time.perf_counter()
            frames = decode((path, pixels, threads))
            print(f"{pixels or 'planes'}, {threads or 'one thread'}, 1 process: {frames / (time.perf_counter() - start):.0f} frames/s", flush=True)
    forkserver = multiprocessing.get_context("forkserver")
    for pixels, threads in (("rgb24", None), (None, None), (None, "AUTO")):
        for workers in (4, 8, 12, 16):
            with forkserver.Pool(workers) as pool:
                pool.map(decode, [(path, pixels, threads)] * workers)  # workers started and warm
                start = time.perf_counter()
                frames = sum(pool.map(decode, [(path, pixels, threads)] * (4 * workers)))
                print(f"{pixels or 'planes'}, {threads or 'one thread'}, {workers} processes: {frames / (time.perf_counter() - start):.0f} frames/s", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Which video decode settings feed a GPU model fastest: DALI reader options and CPU decoders.

    python benchmarks/decode_settings.py VIDEO [--copies 32]

Every figure is frames/s of a full pass over copies of VIDEO, frames arriving as uint8 (L, H, W, 3)
(on the GPU for DALI, on the CPU for PyAV), measured in the same run. The pipeline-build time of
DALI is reported separately, because the workflow's prediction jobs pay it once per pipeline.
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import torch


def dali_pipe(files, length, batch, pad, frame_num, labels):
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=batch, num_threads=2, device_id=0, seed=0, prefetch_queue_depth=2)
    def pipe():
        kwargs = dict(device="gpu", filenames=files, sequence_length=length, step=length, pad_mode=pad, random_shuffle=False, name="reader", pad_last_batch=True)
        if frame_num:
            kwargs["enable_frame_num"] = "sequence"
        if labels:
            kwargs["labels"] = list(range(len(files)))
        outputs = fn.experimental.readers.video(**kwargs)
        return tuple(outputs) if isinstance(outputs, (list, tuple)) else outputs

    return pipe()


def legacy_pipe(files, length, batch):
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=batch, num_threads=2, device_id=0, seed=0, prefetch_queue_depth=2)
    def pipe():
        video, label, frame = fn.readers.video(
            device="gpu", filenames=files, labels=list(range(len(files))), sequence_length=length, step=length,
            pad_sequences=True, enable_frame_num=True, random_shuffle=False, name="reader", pad_last_batch=True,
        )
        return video, label, frame

    return pipe()


def run_pipe(make, n_out):
    """(build seconds, frames decoded, decode seconds) of one pass over a pipeline of ``n_out`` outputs."""
    from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

    start = time.perf_counter()
    pipe = make()
    pipe.build()
    built = time.perf_counter()
    names = [f"o{i}" for i in range(n_out)]
    iterator = DALIGenericIterator(pipe, names, reader_name="reader", last_batch_policy=LastBatchPolicy.PARTIAL, auto_reset=False)
    frames = 0
    for batch in iterator:
        video = batch[0]["o0"]
        frames += video.shape[0] * video.shape[1]
    torch.cuda.synchronize()
    return built - start, frames, time.perf_counter() - built


def parallel(makers, n_out):
    results = [None] * len(makers)

    def work(i):
        results[i] = run_pipe(makers[i], n_out)

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(makers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    frames = sum(r[1] for r in results)
    return frames / wall, max(r[0] for r in results)


class PyAVBatches(torch.utils.data.IterableDataset):
    """Each DataLoader worker decodes its share of ``files`` with PyAV, in batches of uint8 frames
    that reach the main process through shared memory."""

    def __init__(self, files, batch):
        self.files, self.batch = files, batch

    def __iter__(self):
        from lightning_pose_lib.video import PyAVReader

        worker = torch.utils.data.get_worker_info()
        mine = self.files[worker.id :: worker.num_workers] if worker else self.files
        for path in mine:
            with PyAVReader(path) as reader:
                for _, frames in reader.iter_batches(self.batch):
                    yield torch.from_numpy(frames)


def pyav_processes(files, workers, batch=128, pin=False):
    """Frames/s reaching the main process (on the GPU if ``pin``), from the first batch on (so
    without the workers' start-up)."""
    loader = torch.utils.data.DataLoader(PyAVBatches(files, batch), batch_size=None, num_workers=workers, pin_memory=pin, prefetch_factor=4)
    frames, start = 0, None
    for tensor in loader:
        if pin:
            tensor = tensor.cuda(non_blocking=True)
        if start is None:
            start = time.perf_counter()
            continue
        frames += len(tensor)
    torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--copies", type=int, default=32)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    files = []
    for i in range(args.copies):
        (tmp / f"c{i:03d}.mp4").symlink_to(args.video.resolve())
        files.append(str(tmp / f"c{i:03d}.mp4"))
    print("gpu:", torch.cuda.get_device_name(0), "cpus:", os.cpu_count(), flush=True)

    def report(name, fps, build=None):
        print(f"{name:60s} {fps:8.0f} frames/s" + (f"   build {build:.2f} s" if build is not None else ""), flush=True)

    one = files[:1]
    if not args.only or "single" in args.only:
        for length, batch, pad, fnum in [(64, 1, "none", False), (64, 1, "constant", False), (64, 1, "constant", True), (64, 1, "none", True),
                                         (256, 1, "constant", True), (16, 4, "constant", True), (64, 4, "constant", True), (64, 4, "none", False)]:
            build, frames, secs = run_pipe(lambda: dali_pipe(one * 2, length, batch, pad, fnum, False), 1 + fnum)
            report(f"1 pipe, 2 files, seq {length} batch {batch} pad {pad} frame_num {fnum}", frames / secs, build)
        build, frames, secs = run_pipe(lambda: legacy_pipe(one * 2, 64, 1), 3)
        report("legacy readers.video 1 pipe, 2 files, seq 64 batch 1 pad_sequences", frames / secs, build)
        build, frames, secs = run_pipe(lambda: legacy_pipe(one * 2, 64, 4), 3)
        report("legacy readers.video 1 pipe, 2 files, seq 64 batch 4 pad_sequences", frames / secs, build)
    if not args.only or "parallel" in args.only:
        for pipes in (4, 8, 16):
            chunks = [files[i::pipes] for i in range(pipes)]
            for length, batch, pad, fnum in [(64, 1, "constant", True), (64, 4, "constant", True), (64, 4, "none", False), (128, 2, "constant", True)]:
                fps, build = parallel([lambda c=c: dali_pipe(c, length, batch, pad, fnum, True) for c in chunks], 2 + fnum)
                report(f"{pipes} pipes x {len(chunks[0])} files, seq {length} batch {batch} pad {pad} frame_num {fnum}", fps, build)
            fps, build = parallel([lambda c=c: legacy_pipe(c, 64, 4) for c in chunks], 3)
            report(f"legacy {pipes} pipes x {len(chunks[0])} files, seq 64 batch 4", fps, build)
    if not args.only or "cpu" in args.only:
        for workers in (1, 4, 8, 12, 15):
            report(f"PyAV {workers} DataLoader workers -> main process", pyav_processes(files, workers))
            report(f"PyAV {workers} DataLoader workers -> pinned -> GPU", pyav_processes(files, workers, pin=True))

if __name__ == "__main__":
    main()

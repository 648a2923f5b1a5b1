"""CUDA streams for the model's work: its own stream, optionally confined to part of the GPU.

The video decoder (DALI on NVDEC) converts and hands over one frame at a time with small kernels.
When the network's kernels fill every SM, each of those small kernels waits for a network kernel
to finish, and decoding slows to half its speed (docs/benchmarks.md). DALI ignores stream
priorities, so instead the network can run in a CUDA *green context* holding all but
``reserve_sms`` SMs: the decoder's kernels then always find SMs free. Green contexts need CUDA
driver 12.4 or newer; they are created through the driver API, so any PyTorch build can use them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import warnings

import torch

_SM_RESOURCE = 1  # CU_DEV_RESOURCE_TYPE_SM
_RESOURCE_BYTES = 4096  # more than CUdevResource takes in any CUDA version (144 bytes in 12.x)
_SM_COUNT_OFFSET = 96  # CUdevResource: type (4 bytes), 92 bytes of padding, then the SM count


@contextlib.contextmanager
def compute_stream(reserve_sms: int = 0):
    """Run the block's GPU work on a CUDA stream of its own (a no-op without a GPU). On the default
    stream it would wait for, and hold up, any copy a decoder makes there. ``reserve_sms``: leave
    that many SMs to other work (see the module docstring); 0, or where green contexts are not
    supported (with a warning), the stream may use the whole GPU. Work before and after the block
    is ordered with it."""
    if not torch.cuda.is_available():
        yield
        return
    device = torch.cuda.current_device()
    stream = sm_limited_stream(device, reserve_sms) if reserve_sms > 0 else None
    stream = stream or torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield
    torch.cuda.current_stream().wait_stream(stream)


@functools.cache
def sm_limited_stream(device: int, reserve_sms: int) -> torch.cuda.Stream | None:
    """A stream of a green context with every SM of ``device`` but ``reserve_sms`` (rounded as
    the GPU partitions SMs, e.g. to multiples of 8 on Hopper), made once per process; None,
    with a warning, where the driver cannot make one."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        total = torch.cuda.get_device_properties(device).multi_processor_count
        dev = ctypes.c_int()
        _check(cuda.cuDeviceGet(ctypes.byref(dev), device), "cuDeviceGet")
        whole, part, rest = (ctypes.create_string_buffer(_RESOURCE_BYTES) for _ in range(3))
        _check(cuda.cuDeviceGetDevResource(dev, whole, _SM_RESOURCE), "cuDeviceGetDevResource")
        groups = ctypes.c_uint(1)
        _check(cuda.cuDevSmResourceSplitByCount(part, ctypes.byref(groups), whole, rest, 0, max(1, total - reserve_sms)), "cuDevSmResourceSplitByCount")
        desc, context, stream = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        _check(cuda.cuDevResourceGenerateDesc(ctypes.byref(desc), part, 1), "cuDevResourceGenerateDesc")
        _check(cuda.cuGreenCtxCreate(ctypes.byref(context), desc, dev, 1), "cuGreenCtxCreate")  # 1: with a default stream
        _check(cuda.cuGreenCtxStreamCreate(ctypes.byref(stream), context, 1, 0), "cuGreenCtxStreamCreate")  # 1: non-blocking
    except (OSError, AttributeError, RuntimeError) as err:
        warnings.warn(f"cannot keep {reserve_sms} SMs free for the decoder ({err}); the model uses the whole GPU")
        return None
    limited = torch.cuda.ExternalStream(stream.value, device=device)
    limited.sm_count = ctypes.c_uint.from_buffer(part, _SM_COUNT_OFFSET).value  # as the driver rounded it
    return limited


def _check(status: int, call: str) -> None:
    if status != 0:
        raise RuntimeError(f"{call} returned CUDA error {status}")

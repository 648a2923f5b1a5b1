"""The CUDA stream the model's work runs on."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def compute_stream():
    """Run the block's GPU work on a CUDA stream of its own (a no-op without a GPU). On the default
    stream it would wait for, and hold up, any copy a decoder makes there. Work before and after
    the block is ordered with it."""
    if not torch.cuda.is_available():
        yield
        return
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        yield
    torch.cuda.current_stream().wait_stream(stream)

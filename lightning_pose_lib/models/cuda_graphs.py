"""A module's training forward and backward captured as CUDA graphs and replayed.

The training step is bound by the CPU queuing kernels, not by the GPU (benchmarks/train_step.py:
the GPU idles over half of each step, and the backbone's forward and backward are most of the
CPU's work). Replayed graphs queue the backbone's hundreds of kernels with two launches, so the
CPU runs ahead of the GPU and halving the batch per GPU (DDP) shortens the step.
"""

from __future__ import annotations

import torch
from torch import nn


class TrainingGraph:
    """``module``'s forward and the backward to its parameters for inputs of ``sample``'s shape,
    dtype and device, each captured once as a CUDA graph, in the autocast settings active at
    capture. ``graph(x)`` replays them for such inputs (differentiable, as ``module(x)``); use
    :meth:`fits` to check first and call the module itself otherwise.

    The module's parameters and buffers must stay where they are (no ``.to()`` after capture);
    batch-norm statistics are updated by each replay, as by an eager step, but not by the capture.
    Each call's activations and gradients live in the graph's own memory, overwritten by the next
    call: one call per backward, and no gradient accumulation over several steps.
    """

    def __init__(self, module: nn.Module, sample: torch.Tensor):
        self.module = module
        self.params = tuple(p for p in module.parameters() if p.requires_grad)
        self.input = sample.detach().clone()
        device = sample.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        # No weight-cast cache: cached casts made during the capture would be freed after it.
        amp = torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False)
        statistics = [b.clone() for b in module.buffers()]
        side = torch.cuda.Stream(sample.device)  # warm-up outside the capture: cuDNN's plans, allocations
        side.wait_stream(torch.cuda.current_stream(sample.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                with amp:
                    out = module(self.input)
                torch.autograd.grad(out, self.params, torch.ones_like(out))
        torch.cuda.current_stream(sample.device).wait_stream(side)
        with torch.no_grad():  # the warm-up must not count as training steps
            for buffer, saved in zip(module.buffers(), statistics):
                buffer.copy_(saved)
        # thread_local: the data loaders' threads (DALI, pinning) may keep using the GPU meanwhile.
        self.forward_graph, self.backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.forward_graph, capture_error_mode="thread_local"):
            with amp:
                self.output = module(self.input)
        self.grad_output = torch.empty_like(self.output)
        with torch.cuda.graph(self.backward_graph, pool=self.forward_graph.pool(), capture_error_mode="thread_local"):
            self.grads = torch.autograd.grad(self.output, self.params, self.grad_output)

    def fits(self, x: torch.Tensor) -> bool:
        return x.shape == self.input.shape and x.dtype == self.input.dtype and x.device == self.input.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _Replay.apply(self, x, *self.params)


class _Replay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, graph: TrainingGraph, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        ctx.graph = graph
        graph.input.copy_(x)
        graph.forward_graph.replay()
        return graph.output.detach()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        graph = ctx.graph
        graph.grad_output.copy_(grad)
        graph.backward_graph.replay()
        return (None, None, *(g.detach() for g in graph.grads))

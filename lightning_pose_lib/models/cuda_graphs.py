"""Work captured once as CUDA graphs and replayed: one launch instead of hundreds of kernels.

Without them, both prediction and training are bound by the CPU queuing kernels, not by the GPU
(benchmarks/train_step.py: the GPU idled over half of each training step). :class:`InferenceGraph`
replays a function of one tensor (prediction's backbone and heads); :class:`TrainingGraph` a
training step's forward and backward, so the CPU runs ahead of the GPU and halving the batch per GPU
(DDP) shortens the step.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterable

import torch


class TrainingGraph:
    """``fn(*inputs) -> {name: tensor}`` and the backward from its outputs that require gradients
    to ``params``, each captured once as a CUDA graph for inputs of the shapes, dtypes and device of
    ``inputs``, in the autocast settings active at capture. ``graph(*inputs)`` replays them for such
    inputs and is differentiable as ``fn`` is; check :meth:`fits` first and call ``fn`` otherwise.

    What the graphs read and write stays at the addresses of capture: parameters and buffers must
    not be moved or replaced afterwards (in-place updates, as optimisers make, are what they read).
    ``state`` (e.g. batch-norm statistics) is restored after the warm-up runs, so they do not count
    as steps; each replay updates it as an eager step would. Random numbers drawn in ``fn`` come
    fresh at each replay. Outputs and gradients live in the graphs' memory, overwritten by the next
    call: one call per backward, and no gradient accumulation over several calls.
    """

    def __init__(self, fn: Callable[..., dict], inputs: Iterable[torch.Tensor], params: Iterable[torch.Tensor], state: Iterable[torch.Tensor] = ()):
        self.params = tuple(p for p in params if p.requires_grad)
        self.inputs = tuple(x.detach().clone() for x in inputs)
        device = self.inputs[0].device
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
        # No weight-cast cache: casts cached during the capture would be freed after it.
        amp = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False)
        state = list(state)
        saved = [t.clone() for t in state]

        def backward(outputs: tuple, grad_outputs: list) -> tuple:
            differentiable = [o for o in outputs if o.requires_grad]
            return torch.autograd.grad(differentiable, self.params, grad_outputs, allow_unused=True)

        def step():
            with amp:
                outputs = tuple(fn(*self.inputs).values())
            backward(outputs, [torch.ones_like(o) for o in outputs if o.requires_grad])

        _warm_up(step, device)
        with torch.no_grad():
            for tensor, value in zip(state, saved):
                tensor.copy_(value)
        # thread_local: the data loaders' threads (DALI, pinning) may use the GPU meanwhile.
        self.forward_graph, self.backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.forward_graph, capture_error_mode="thread_local"):
            with amp:
                named = fn(*self.inputs)
        self.names, self.outputs = list(named), tuple(named.values())
        self.differentiable = [i for i, o in enumerate(self.outputs) if o.requires_grad]
        self.grad_outputs = [torch.empty_like(self.outputs[i]) for i in self.differentiable]
        with torch.cuda.graph(self.backward_graph, pool=self.forward_graph.pool(), capture_error_mode="thread_local"):
            self.grads = backward(self.outputs, self.grad_outputs)
        # Let the capture's autograd graph go: it held the parameters' gradient accumulators made
        # on the capture's stream, which later backward passes would otherwise reuse (and then
        # wait across streams: "AccumulateGrad node's stream does not match").
        self.outputs = tuple(o.detach() for o in self.outputs)

    def fits(self, inputs: Iterable[torch.Tensor]) -> bool:
        inputs = tuple(inputs)
        return len(inputs) == len(self.inputs) and all(
            x.shape == y.shape and x.dtype == y.dtype and x.device == y.device for x, y in zip(inputs, self.inputs)
        )

    def __call__(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, _Replay.apply(self, *inputs, *self.params)))


class _Replay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, graph: TrainingGraph, *args: torch.Tensor):
        ctx.graph = graph
        for static, x in zip(graph.inputs, args):
            static.copy_(x)
        graph.forward_graph.replay()
        outputs = tuple(o.detach() for o in graph.outputs)
        ctx.mark_non_differentiable(*(o for i, o in enumerate(outputs) if i not in graph.differentiable))
        return outputs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: torch.Tensor):
        graph = ctx.graph
        for static, i in zip(graph.grad_outputs, graph.differentiable):
            static.copy_(grads[i])
        graph.backward_graph.replay()
        return (None, *(None for _ in graph.inputs), *(g.detach() if g is not None else None for g in graph.grads))


class InferenceGraph:
    """``fn`` captured as a CUDA graph for its first input's shape, then replayed (any other shape
    runs eagerly). The outputs are the graph's own tensors, overwritten by the next call; callers
    may write the next input straight into ``input``."""

    def __init__(self, fn):
        self.fn, self.graph = fn, None

    def __call__(self, x: torch.Tensor):
        if self.graph is None:
            self.input = x.clone()
            _warm_up(lambda: self.fn(self.input), x.device)
            self.graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(self.graph):
                    self.output = self.fn(self.input)
            except RuntimeError as err:  # e.g. another thread used the GPU meanwhile: stay eager
                warnings.warn(f"CUDA graph capture failed, running eagerly: {err}")
                self.graph = False
        if self.graph is False or x.shape != self.input.shape:
            return self.fn(x)
        if x is not self.input:
            self.input.copy_(x)
        self.graph.replay()
        return self.output


def _warm_up(run: Callable[[], object], device: torch.device, times: int = 2) -> None:
    """``run()`` a few times on a side stream before a capture: cuDNN picks its plans and the
    allocator its blocks outside the graph."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(times):
            run()
    torch.cuda.current_stream(device).wait_stream(side)

"""Learning-rate factors by epoch, as picklable objects: LambdaLR keeps their attributes in
checkpoints, which :mod:`~lightning_pose_lib.checkpoints` reads with an allow-list of types."""

from __future__ import annotations


class StepSchedule:
    """Learning-rate factor of a multi-step schedule: gamma ** (milestones passed)."""

    def __init__(self, milestones: list[int], gamma: float):
        self.milestones, self.gamma = sorted(milestones), gamma

    def __call__(self, epoch: int) -> float:
        return self.gamma ** sum(epoch >= m for m in self.milestones)


class BackboneWarmup:
    """Backbone factor: 0 before ``unfreezing_epoch``, then 0.1 growing x1.5 per epoch up to 1 (upstream)."""

    def __init__(self, unfreezing_epoch: int):
        self.unfreezing_epoch = unfreezing_epoch

    def __call__(self, epoch: int) -> float:
        if self.unfreezing_epoch == 0:
            return 1.0
        if epoch < self.unfreezing_epoch:
            return 0.0
        return min(1.0, 0.1 * 1.5 ** (epoch - self.unfreezing_epoch))

    def combined(self, schedule: StepSchedule):
        return _Product(self, schedule)


class _Product:
    # A picklable product of two schedules (LambdaLR stores its callables in checkpoints).
    def __init__(self, a, b):
        self.a, self.b = a, b

    def __call__(self, epoch: int) -> float:
        return self.a(epoch) * self.b(epoch)

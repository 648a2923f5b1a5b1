from __future__ import annotations

import math
from typing import Any

from torch import nn

LOSSES: dict[str, type[nn.Module]] = {}


def register_loss(name: str):
    def wrap(cls: type[nn.Module]):
        cls.name = name
        LOSSES[name] = cls
        return cls

    return wrap


def build_loss(name: str, **params: Any) -> nn.Module:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r} (registered: {', '.join(sorted(LOSSES))})")
    return LOSSES[name](**params)


def weight_from_log_weight(log_weight: float) -> float:
    """Upstream Lightning Pose's weighting, applied once: 1 / (2 exp(log_weight))."""
    return 1.0 / (2.0 * math.exp(log_weight))

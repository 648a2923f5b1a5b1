"""Loss registry. Each loss is an ``nn.Module`` whose forward takes the model's output dict and
returns an unweighted scalar; ``register_loss`` adds one under its config name."""

from .registry import LOSSES, build_loss, register_loss, weight_from_log_weight  # noqa: F401
from . import supervised, unsupervised  # noqa: F401  (registering)

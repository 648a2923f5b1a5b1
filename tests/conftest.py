import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIRROR_MOUSE = ROOT.parent / "shared" / "data" / "mirror-mouse-example"

# Small and fast: CPU tests must stay quick on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def example_dir(tmp_path_factory) -> Path:
    """A small synthetic example dataset made by the project's generator (shared by tests)."""
    from lightning_pose_lib.example import make_example

    out = tmp_path_factory.mktemp("example")
    make_example(out, seed=0, n_sessions=2, frames_per_session=60, n_labeled=40)
    return out


@pytest.fixture(scope="session")
def mirror_mouse() -> Path:
    if not MIRROR_MOUSE.exists():
        pytest.skip("../shared/data/mirror-mouse-example absent")
    return MIRROR_MOUSE


def tiny_overrides(data_dir, **extra) -> list[str]:
    items = {
        "data.data_dir": str(data_dir),
        "data.image_resize_dims.height": 64,
        "data.image_resize_dims.width": 128,
        "model.backbone": "resnet18",
        "model.backbone_pretrained": "false",
        "training.min_epochs": 1,
        "training.max_epochs": 2,
        "training.check_val_every_n_epoch": 1,
        "training.unfreezing_epoch": 0,
        "training.train_batch_size": 8,
        "training.train_prob": 0.7,
        "training.val_prob": 0.15,
        **extra,
    }
    return [f"{k}={v}" for k, v in items.items()]


def logged_scalars(model_dir) -> set[str]:
    """The scalar tags a training wrote to TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((model_dir / "tb_logs").rglob("events.out.tfevents.*"))))
    events.Reload()
    return set(events.Tags()["scalars"])


# Half a unit of the 4th decimal, which the CSV keeps; a tie (74.90625 written 74.9062) reaches it
# exactly, and its float64 difference is a hair above.
CSV_ROUNDING = 5e-5 + 1e-9

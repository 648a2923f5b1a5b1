"""The model folder lock: training alone, predictions together, released however a process ends."""

import subprocess
import sys
import time

import pytest

from conftest import ROOT
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.locks import model_lock

HOLD = "import sys, time; from lightning_pose_lib.locks import model_lock\nwith model_lock(sys.argv[1], shared=sys.argv[2] == 'shared'):\n    print('held', flush=True); time.sleep(600)"


def holder(model_dir, shared: bool) -> subprocess.Popen:
    """Another process holding the lock until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(model_dir), "shared" if shared else "alone"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout.readline() == "held\n"
    return process


def test_training_is_alone_predictions_share(tmp_path):
    model_dir = tmp_path / "model"
    training = holder(model_dir, shared=False)
    try:
        for shared in (False, True):
            with pytest.raises(InputError, match=r"in use by another process \(training, process \d+ on "):
                with model_lock(model_dir, shared=shared):
                    pass
    finally:
        training.kill()
        training.wait()
    prediction = holder(model_dir, shared=True)
    try:
        with model_lock(model_dir, shared=True):  # a second prediction
            pass
        with pytest.raises(InputError, match=r"in use by another process \(predicting\)"):
            with model_lock(model_dir):
                pass
    finally:
        prediction.kill()
        prediction.wait()
    with model_lock(model_dir):  # SIGKILL released it
        assert (model_dir / ".lock").exists()


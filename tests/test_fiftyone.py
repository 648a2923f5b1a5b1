"""The FiftyOne view's parts that need no database; the dataset itself and the App are checked on
the workflow's finished run (test_workflow.py, fiftyone_checks.py)."""

import subprocess
import sys

import pytest

from conftest import ROOT
from lightning_pose_lib.errors import InputError
from lightning_pose_lib.viz.fiftyone_view import field_names, sampled_frames

# The script as a user runs it, with `import fiftyone` failing as it does where the extra is missing.
WITHOUT_FIFTYONE = "import runpy, sys; sys.modules['fiftyone'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


@pytest.mark.parametrize("script, args", [("fiftyone_dataset.py", ["--name", "x", "--output", "x.json", "model"]), ("fiftyone_app.py", ["x"])])
def test_a_missing_fiftyone_is_one_line_with_the_install_command(tmp_path, script, args):
    out = subprocess.run([sys.executable, "-c", WITHOUT_FIFTYONE, str(ROOT / "scripts" / script), *args], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["error: FiftyOne is not installed (it is an optional extra): pip install -e '.[fiftyone]'"]
    assert not list(tmp_path.iterdir())  # nothing read or written before


def test_model_ids_become_field_names():
    assert field_names(["supervised__seed=0", "context__train_frames=0.5__seed=1"]) == {
        "supervised__seed=0": "supervised__seed_0", "context__train_frames=0.5__seed=1": "context__train_frames_0_5__seed_1",
    }
    with pytest.raises(InputError, match=r"models \['a=1', 'a.1'\] get the same FiftyOne field name"):
        field_names(["a=1", "a.1"])
    with pytest.raises(InputError, match="ground_truth"):
        field_names(["ground_truth"])


def test_sampled_frames_spread_over_the_video():
    assert sampled_frames(40, 3) == [0, 20, 39]
    assert sampled_frames(5, 10) == [0, 1, 2, 3, 4]
    assert sampled_frames(100, 1) == [0]


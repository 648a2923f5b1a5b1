import subprocess
import sys
from pathlib import Path

import pytest

from lightning_pose_lib.config import defaults, load_config, parse_overrides
from lightning_pose_lib.errors import InputError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_match_upstream_lightning_pose():
    cfg = defaults()
    assert cfg["training"]["train_batch_size"] == 16
    assert cfg["training"]["min_epochs"] == 300
    assert cfg["training"]["max_epochs"] == 750
    assert cfg["model"]["model_type"] == "heatmap"
    assert cfg["model"]["do_context"] is False
    assert cfg["model"]["losses_to_use"] == []
    assert cfg["dali"]["base"]["train"]["sequence_length"] == 32
    assert cfg["dali"]["base"]["predict"]["sequence_length"] == 96
    assert cfg["dali"]["context"]["train"]["batch_size"] == 16
    assert cfg["dali"]["context"]["predict"]["sequence_length"] == 96
    assert cfg["data"]["columns_for_singleview_pca"] is None
    assert cfg["data"]["mirrored_column_matches"] is None
    assert cfg["losses"]["temporal"]["epsilon"] == 20.0


def test_layers_and_dotted_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("training:\n  max_epochs: 20\n  min_epochs: 1\nmodel:\n  backbone: resnet18\n")
    cfg = load_config(base, {"training": {"max_epochs": 30}}, overrides=["training.max_epochs=11", "model.losses_to_use=[temporal]"])
    assert cfg["training"]["max_epochs"] == 11
    assert cfg["model"]["backbone"] == "resnet18"
    assert cfg["model"]["losses_to_use"] == ["temporal"]
    assert cfg["training"]["min_epochs"] == 1
    assert cfg["training"]["train_batch_size"] == 16  # untouched default


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  max_epoch: 20\n")
    with pytest.raises(InputError) as err:
        load_config(bad)
    assert str(bad) in str(err.value) and "training.max_epoch" in str(err.value)


def test_unknown_override_and_wrong_type():
    with pytest.raises(InputError, match=r"command line.*'trainig'"):
        load_config(overrides=["trainig.max_epochs=3"])
    with pytest.raises(InputError, match=r"training.max_epochs.*not of type 'integer'"):
        load_config(overrides=["training.max_epochs=abc"])
    with pytest.raises(InputError, match="not of the form"):
        parse_overrides(["training.max_epochs"])


def test_context_flag_must_agree_with_model_type():
    with pytest.raises(InputError, match="do_context"):
        load_config(overrides=["model.do_context=true"])
    with pytest.raises(InputError, match="do_context"):
        load_config(overrides=["model.model_type=heatmap_mhcrnn"])


def test_config_readme_lists_every_key():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_docs.py")], capture_output=True, text=True, check=True).stdout
    readme = (ROOT / "config" / "README.md").read_text()
    assert out.strip() in readme, "config/README.md is stale: run scripts/config_docs.py --write config/README.md"


def test_shipped_configs_are_valid():
    load_config(ROOT / "config" / "model.yaml")

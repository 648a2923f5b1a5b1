"""Sweeps: a rerun after a config edit retrains exactly the models whose config changed.

Trains real (one-epoch) models with the real workflow, edits config/config.yaml the way a user
would, and asks Snakemake (dry run) which training jobs it would run.
"""

import copy
import os
import re

import pytest
import yaml

from test_workflow import TINY_MODEL, snakemake, workdir_with

CONFIG = {
    "model_config": "config/model.yaml",
    "datasets": {
        "a": {"data_dir": "resources/example", "example": {"seed": 0, "sessions": 2, "frames": 40, "labeled": 40}},
        # A second dataset on the same files: enough to show that datasets are independent.
        "b": {"data_dir": "resources/example"},
    },
    "variants": {
        "supervised": {"model_config": {"model": {"model_type": "heatmap"}}, "sweep": {"training.train_frames": [20, 1.0]}},
        "regression": {"model_config": {"model": {"model_type": "regression"}}},
    },
}
MODELS = {
    "a": ["supervised__train_frames=20__seed=0", "supervised__train_frames=1.0__seed=0", "regression__seed=0"],
    "b": ["supervised__train_frames=20__seed=0", "supervised__train_frames=1.0__seed=0", "regression__seed=0"],
}


def train_targets(config: dict) -> list[str]:
    """The training outputs of every model of ``config`` (model ids as the workflow names them)."""
    targets = []
    for dataset in config["datasets"]:
        for name, variant in config["variants"].items():
            values = [[]]
            for key, options in variant.get("sweep", {}).items():
                values = [v + [f"{key.split('.')[-1]}={o}"] for v in values for o in options]
            for parts in values:
                for seed in variant.get("seeds", [0]):
                    model = "__".join([name, *parts, f"seed={seed}"])
                    targets.append(f"results/{dataset}/models/{model}/train_status.json")
    return targets


def planned_trainings(workdir, config: dict) -> set[str]:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    out = snakemake(workdir, "-n", *train_targets(config))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # Each planned training job prints its message (rule train: "Training <dataset>/<model>").
    return set(re.findall(r"^Job \d+: Training (\S+)$", out.stdout + out.stderr, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = workdir_with(tmp_path_factory.mktemp("sweeps"), CONFIG)
    tiny = copy.deepcopy(TINY_MODEL)
    tiny["training"].update(max_epochs=1, min_epochs=1)
    (workdir / "config" / "model.yaml").write_text(yaml.safe_dump(tiny))
    assert planned_trainings(workdir, CONFIG) == {f"{d}/{m}" for d, models in MODELS.items() for m in models}
    out = snakemake(workdir, *train_targets(CONFIG))
    assert out.returncode == 0, out.stderr[-5000:]
    assert planned_trainings(workdir, CONFIG) == set()
    return workdir


def test_model_ids_name_their_sweep_values_and_seed(trained):
    for dataset, models in MODELS.items():
        assert sorted(p.name for p in (trained / "results" / dataset / "models").iterdir()) == sorted(models)


def test_a_new_seed_or_sweep_value_plans_only_the_new_models(trained):
    config = copy.deepcopy(CONFIG)
    config["variants"]["regression"]["seeds"] = [0, 7]
    config["variants"]["supervised"]["sweep"]["training.train_frames"] = [20, 1.0, 30]
    assert planned_trainings(trained, config) == {
        f"{d}/{m}" for d in ("a", "b") for m in ("regression__seed=7", "supervised__train_frames=30__seed=0")
    }


def test_editing_one_variant_retrains_only_its_models(trained):
    config = copy.deepcopy(CONFIG)
    config["variants"]["regression"]["model_config"]["training"] = {"optimizer_params": {"learning_rate": 0.005}}
    assert planned_trainings(trained, config) == {"a/regression__seed=0", "b/regression__seed=0"}


def test_editing_one_dataset_retrains_only_its_models(trained):
    config = copy.deepcopy(CONFIG)
    config["datasets"]["b"]["model_config"] = {"training": {"val_prob": 0.2}}
    assert planned_trainings(trained, config) == {f"b/{m}" for m in MODELS["b"]}


def test_a_key_the_library_adds_with_its_default_retrains_nothing(trained, tmp_path, monkeypatch):
    """A later version of the library with one more model config key (and its default): the
    trained models stay, since a training job is given only the keys its config layers set."""
    (tmp_path / "sitecustomize.py").write_text(
        "from lightning_pose_lib.config import schema\n"
        "schema()['properties']['training']['properties']['added_later'] = {'type': 'integer', 'default': 5}\n"
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert planned_trainings(trained, CONFIG) == set()
    # The key is really there: set in the base config, it is a change of every model's settings.
    base = trained / "config" / "model.yaml"
    saved = base.read_text()
    try:
        base.write_text(yaml.safe_dump({**yaml.safe_load(saved), "training": {**yaml.safe_load(saved)["training"], "added_later": 6}}))
        assert planned_trainings(trained, CONFIG) == {f"{d}/{m}" for d, models in MODELS.items() for m in models}
    finally:
        base.write_text(saved)


def test_settings_outside_the_model_config_retrain_nothing(trained):
    config = copy.deepcopy(CONFIG)
    config["predict"] = {"batch_size": 7, "videos_per_job": 3}
    assert planned_trainings(trained, config) == set()

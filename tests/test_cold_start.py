"""A job's fixed cost: the entry scripts and what planning imports leave torch alone until they
need it; prediction's ``auto`` video backend follows the CPUs the job may use; the cold-start
benchmark runs the real entry points."""

import json
import os
import subprocess
import sys

import pytest
import torch

import lightning_pose_lib.video as video
from conftest import ROOT, tiny_overrides
from lightning_pose_lib.video import PYAV_MIN_CPUS, prediction_backend


def imported_modules(*python_args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", *python_args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("script", ["predict.py", "train.py"])
def test_entry_scripts_import_no_torch_before_they_work(script):
    modules = imported_modules(str(ROOT / "scripts" / script), "--help")
    assert not {"torch", "pytorch_lightning", "pandas"} & modules


@pytest.fixture(scope="module")
def model_dir(example_dir, tmp_path_factory):
    from lightning_pose_lib.config import load_config
    from lightning_pose_lib.train import train

    model_dir = tmp_path_factory.mktemp("cold") / "model"
    train(load_config(overrides=tiny_overrides(example_dir, **{"training.max_epochs": 1, "training.limit_train_batches": 1, "model.losses_to_use": "[]"})), model_dir)
    return model_dir


def test_prediction_imports_only_what_it_uses(example_dir, model_dir, tmp_path):
    """Lightning, and the torchmetrics, scipy and matplotlib it imports, cost a fresh process more
    than a second; so does timm, which imports torchvision and with it torch's compiler. A
    prediction job loads a ResNet network (the default backbones) without any of them, and
    validates no config (jsonschema)."""
    video = example_dir / "videos" / "session0.mp4"
    modules = imported_modules(str(ROOT / "scripts/predict.py"), "--model-dir", str(model_dir), "--output-dir", str(tmp_path / "preds"), str(video))
    assert (tmp_path / "preds" / "session0.h5").exists()
    assert "torch" in modules
    assert not {"pytorch_lightning", "lightning_fabric", "torchmetrics", "timm", "torchvision", "torch._dynamo", "jsonschema"} & modules


def test_the_prediction_module_leaves_pandas_to_the_thread_that_makes_tables():
    """pandas is for the tables: the thread that makes them imports it while the first batches are
    predicted, not the job before its first batch (on the H100 machine a job's first batch of 8
    videos came 0.26 s sooner)."""
    probe = "import sys, lightning_pose_lib.predict; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("script", ["predict.py", "train.py"])
def test_a_job_ends_without_tearing_down_the_interpreter(script, example_dir, model_dir, tmp_path):
    """The interpreter's teardown of torch (and Lightning) took a second or more of each job: the
    entry scripts end once their files are written and Python's exit handlers (worker processes,
    logging) have run, without it."""
    if script == "predict.py":
        args = ["--model-dir", str(model_dir), "--output-dir", str(tmp_path / "preds"), str(example_dir / "videos" / "session0.mp4")]
        outputs = [tmp_path / "preds" / "session0.csv", tmp_path / "preds" / "session0.h5"]
        logged = "session0.mp4: 60 frames"
    else:
        overrides = tiny_overrides(example_dir, **{"training.max_epochs": 1, "training.limit_train_batches": 1, "model.losses_to_use": "[]"})
        args = ["--model-dir", str(tmp_path / "model"), *overrides]
        outputs = [tmp_path / "model" / "predictions.csv", tmp_path / "model" / "train_status.json"]
        logged = "training done and written"
    probe = (
        "import atexit, runpy, sys\n"
        "class Teardown:\n"
        "    def __del__(self):\n"
        "        print('interpreter torn down', flush=True)\n"
        "keep = Teardown()\n"
        "atexit.register(lambda: print('exit handlers ran', flush=True))\n"
        f"sys.argv = [{script!r}, *{args!r}]\n"
        f"runpy.run_path({str(ROOT / 'scripts' / script)!r}, run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-1] == "exit handlers ran" and "interpreter torn down" not in out.stdout
    assert all(path.exists() for path in outputs)
    assert logged in out.stderr  # the log, flushed


def test_the_worker_server_ends_with_the_process(tmp_path):
    """The decoders' and writers' fork server holds the process's stdout and stderr: the process
    ends it at its exit instead of leaving it to its own teardown (torch's: half a second), for
    which whatever reads the job's output would wait. This server's teardown takes a minute."""
    (tmp_path / "slow_teardown.py").write_text("import atexit, time\natexit.register(time.sleep, 60)\n")
    probe = (
        "from lightning_pose_lib import workers\n"
        "workers.PRELOAD = [*workers.PRELOAD, 'slow_teardown']\n"
        "workers.start_server()\n"
        "worker = workers.context().Process(target=int)  # started once the server has preloaded\n"
        "worker.start(); worker.join()\n"
        "print('worker exit code', worker.exitcode, flush=True)\n"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))  # the server's own sys.path
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=40, env={**os.environ, "PYTHONPATH": path})
    assert out.returncode == 0 and "worker exit code 0" in out.stdout, out.stdout + out.stderr[-2000:]


def test_the_worker_server_leaves_pandas_to_the_table_writers():
    """The fork server forks no worker before its imports are done: it imports what the decoders
    need, not pandas, which each table writer imports as it starts, before any table is due."""
    probe = (
        "import concurrent.futures\n"
        "from lightning_pose_lib import workers\n"
        "from lightning_pose_lib.table_writers import table_writers\n"
        "has_pandas = \"'pandas' in __import__('sys').modules\"\n"
        "with concurrent.futures.ProcessPoolExecutor(1, mp_context=workers.context()) as worker:\n"
        "    print('decoder', worker.submit(eval, has_pandas).result())\n"
        "print('writer', table_writers().submit(eval, has_pandas).result(), flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["decoder", "False", "writer", "True"]


def test_the_worker_server_starts_before_the_model_loads(tmp_path):
    """The decoder and writer processes come from one fork server whose start-up imports torch: it
    starts before the model loads, so that the two run side by side."""
    (tmp_path / "model").mkdir()
    probe = (
        "import multiprocessing.forkserver, runpy, sys\n"
        "import lightning_pose_lib.predict as predict\n"
        "def load_model(*args, **kwargs):\n"
        "    print('server started:', multiprocessing.forkserver._forkserver._forkserver_pid is not None)\n"
        "    sys.exit(0)\n"
        "predict.load_model = load_model\n"
        f"sys.argv = ['predict.py', '--model-dir', {str(tmp_path / 'model')!r}, '--output-dir', {str(tmp_path)!r}, 'video.mp4']\n"
        f"runpy.run_path({str(ROOT / 'scripts/predict.py')!r}, run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "server started: True" in out.stdout, out.stdout + out.stderr[-2000:]


def test_planning_imports_no_torch():
    # What workflow/rules/common.smk imports from the library.
    modules = imported_modules("-c", "import lightning_pose_lib.config, lightning_pose_lib.formats, lightning_pose_lib.metrics, lightning_pose_lib.video, lightning_pose_lib.models.weights")
    assert "torch" not in modules


@pytest.fixture
def gpu_with_dali(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(video, "dali_available", lambda: True)


@pytest.mark.parametrize("cpus, expected", [(2, "dali"), (PYAV_MIN_CPUS - 1, "dali"), (PYAV_MIN_CPUS, "pyav"), (16, "pyav")])
def test_auto_backend_follows_the_cpus_the_job_may_use(gpu_with_dali, monkeypatch, cpus, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    backend, why = prediction_backend("auto")
    assert backend == expected
    assert f"{cpus} CPUs available to this job" in why


@pytest.mark.parametrize("cpus, backend, expected", [(2, "pyav", 2), (16, "pyav", 6), (2, "dali", 6)])
def test_pyav_decodes_at_most_one_video_per_cpu_by_default(monkeypatch, cpus, backend, expected):
    from lightning_pose_lib.predict import decoder_count

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert decoder_count(None, 8, backend) == expected
    assert decoder_count(None, 1, backend) == 1  # never more than the videos
    assert decoder_count(4, 8, backend) == 4  # asked for


def test_auto_backend_with_the_cpus_for_pyav_does_not_import_dali(monkeypatch):
    """Importing DALI is a cost on a job's way to its first batch, for a backend it would not use."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(video, "dali_available", lambda: pytest.fail("DALI looked for"))
    assert prediction_backend("auto", cpus=PYAV_MIN_CPUS)[0] == "pyav"


def test_auto_backend_without_gpu_or_dali_is_pyav(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert prediction_backend("auto", cpus=2) == ("pyav", "no GPU: DALI decodes H.264 only on a GPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(video, "dali_available", lambda: False)
    assert prediction_backend("auto", cpus=2) == ("pyav", "DALI is not installed")
    assert prediction_backend("dali", cpus=64) == ("dali", "asked for")


def test_cold_start_benchmark_runs_the_entry_points(example_dir, tmp_path):
    overrides = tiny_overrides(example_dir, **{"model.losses_to_use": "[]"})
    sets = [arg for item in overrides if not item.startswith(("data.data_dir", "training.min_epochs", "training.max_epochs")) for arg in ("--set", item)]
    command = [sys.executable, str(ROOT / "scripts/benchmark.py"), "cold_start", "--out", str(tmp_path), "--data", str(example_dir), "--epochs", "1", "--videos", "1", "--device", "cpu", *sets]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads((tmp_path / "cold_start.json").read_text())
    train = figures["train"]
    assert train["epochs"] == 1 and train["wall_s"] > 0
    assert 0 < train["start_s"] and 0 <= train["fit_s"] and 0 <= train["end_s"] and 0 <= train["exit_s"]
    assert train["start_s"] + train["fit_s"] + train["end_s"] + train["exit_s"] == pytest.approx(train["wall_s"], abs=0.5)
    (job,) = figures["predict"]
    assert job["videos"] == 1 and job["frames"] == 60 and job["backend"] == "pyav"
    assert 0 < job["fixed_cost_s"] < job["wall_s"] and 0 <= job["exit_s"] < job["wall_s"] - job["fixed_cost_s"]
    assert job["warm_fps"] > 0 and job["first_pass_fps"] > 0
    assert "predict: 1 videos, 60 frames (pyav)" in out.stdout

"""Every command in README.md, config/README.md and profiles/README.md runs as written on a fresh clone.

The commands are read from the documents: the lines of fenced ``bash`` blocks (continuation lines
joined, comments dropped) and inline code that starts like a command. Each is either run as written
(cheap ones) or, where running it takes minutes, a cluster, a server or the user's own data,
replaced by a stand-in that starts the same entry point without doing the work (a dry run, its
``--help``). A command in neither list fails the test: a new documented command needs a decision.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DOCS = ["README.md", "config/README.md", "profiles/README.md"]
COMMAND_STARTS = ("bash ", "python ", "snakemake ", "tensorboard ", "conda ", ".venv/bin/")

AS_WRITTEN = {
    ".venv/bin/snakemake --report report.html",  # on a fresh clone: a report of nothing yet
    ".venv/bin/snakemake --profile profiles/default -n",
    ".venv/bin/snakemake --summary",
    "snakemake --unlock",
    "snakemake -n",
    "python scripts/benchmark.py",  # lists the benchmarks
}

SCRIPT_HELP = {
    script: f"python scripts/{script}.py --help"
    for script in ("train", "predict", "evaluate", "labeled_video", "summarize", "gallery", "make_example", "ensemble")
}

STAND_INS = {
    "bash scripts/run.sh demo": "bash scripts/run.sh demo -n",
    "bash scripts/run.sh test": "bash scripts/run.sh test --collect-only -q tests/test_docs.py",
    ".venv/bin/tensorboard --logdir results/example/models": ".venv/bin/tensorboard --help",  # a server: runs until stopped
    ".venv/bin/snakemake --profile profiles/default dataset_example": ".venv/bin/snakemake --profile profiles/default dataset_example -n",
    ".venv/bin/snakemake --profile profiles/default results/example/models/supervised__seed=0/metrics/summary.json":
        ".venv/bin/snakemake --profile profiles/default results/example/models/supervised__seed=0/metrics/summary.json -n",
    ".venv/bin/snakemake --profile profiles/default --config 'datasets={example: {variants: [supervised]}}'":
        ".venv/bin/snakemake --profile profiles/default --config 'datasets={example: {variants: [supervised]}}' -n",
    "snakemake --profile profiles/default": "snakemake --profile profiles/default -n",
    "snakemake --profile profiles/default results/cams/summary.csv --configfile config/multicam.yaml":
        "snakemake --profile profiles/default results/cams/summary.csv --configfile config/multicam.yaml -n",
    "snakemake --profile profiles/slurm": "snakemake --profile profiles/slurm -n",  # submits nothing
    "snakemake --profile profiles/slurm benchmark_all": "snakemake --profile profiles/slurm benchmark_all -n",
    "snakemake --profile profiles/slurm results/benchmarks/example/throughput_context.json":
        "snakemake --profile profiles/slurm results/benchmarks/example/throughput_context.json -n",
    "snakemake benchmark_all": "snakemake benchmark_all -n",
    "snakemake --profile profiles/slurm fetch_weights": "snakemake --profile profiles/slurm fetch_weights -n",  # downloads
    # A user's imported dataset, named in the README's example config: the same kind of target here.
    "snakemake --profile profiles/default results/walk/summary.csv": "snakemake --profile profiles/default results/example/summary.csv -n",
    "python scripts/fetch_weights.py resnet50": "python scripts/fetch_weights.py --help",  # needs network
    **{f"python scripts/benchmark.py {name}": f"python scripts/benchmark.py {name} --help" for name in ("ddp_scaling", "train_step", "planning", "throughput", "cold_start")},
    # Compiling a whole environment's packages takes minutes: the same command on the library.
    "python -m compileall": "python -m compileall -q lightning_pose_lib",
    # No conda here: the environment file it reads must name the environment the command activates.
    "conda env create -f environment.yml && conda activate lightning-pose-lib":
        "python -c \"import yaml; assert yaml.safe_load(open('environment.yml'))['name'] == 'lightning-pose-lib'\"",
    # The user's own data and model folders: the scripts' command lines are checked by their --help.
    "python scripts/train.py --config config/model.yaml --model-dir runs/m1 data.data_dir=/data/my_dataset training.max_epochs=100": SCRIPT_HELP["train"],
    "python scripts/train.py --config a.yaml --config b.yaml --model-dir DIR training.max_epochs=11 model.losses_to_use=[temporal]": SCRIPT_HELP["train"],
    "python scripts/predict.py --model-dir runs/m1 --output-dir runs/m1/video_preds /data/my_dataset/videos/*.mp4": SCRIPT_HELP["predict"],
    "python scripts/evaluate.py --model-dir runs/m1": SCRIPT_HELP["evaluate"],
    "python scripts/labeled_video.py --model-dir runs/m1 --clip-frames 300 /data/my_dataset/videos/a.mp4": SCRIPT_HELP["labeled_video"],
    "python scripts/summarize.py --output-dir runs/compare runs/m1 runs/m2": SCRIPT_HELP["summarize"],
    "python scripts/gallery.py --output runs/compare/gallery.png runs/m1 runs/m2": SCRIPT_HELP["gallery"],
    "python scripts/make_example.py /tmp/example --seed 1": SCRIPT_HELP["make_example"],  # writes outside the clone
    # The FiftyOne extra: the extra is declared, the target plans, the App (a server) and the figure start.
    ".venv/bin/pip install -e '.[fiftyone]'":
        ".venv/bin/python -c \"import tomllib; assert 'fiftyone' in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']\"",
    ".venv/bin/snakemake --profile profiles/default fiftyone_example": ".venv/bin/snakemake --profile profiles/default fiftyone_example -n",
    ".venv/bin/python scripts/fiftyone_app.py example": ".venv/bin/python scripts/fiftyone_app.py --help",
    ".venv/bin/python tests/fiftyone_checks.py . example docs/fiftyone.png": ".venv/bin/python -c \"import sys; sys.path.insert(0, 'tests'); import fiftyone_checks\"",
    "python scripts/ensemble.py --out-dir DIR MODEL_DIR MODEL_DIR ...": SCRIPT_HELP["ensemble"],
    "python scripts/make_example.py /tmp/cams --cameras 3": SCRIPT_HELP["make_example"],  # writes outside the clone
}


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for every command of the documents, in order, without repeats."""
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
            for line in re.sub(r"\\\n\s*", "", block).splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command:
                    found.append((doc, command))
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        for span in re.findall(r"`([^`]+)`", prose):
            command = " ".join(span.split())
            if command.startswith(COMMAND_STARTS):
                found.append((doc, command))
    return list(dict.fromkeys(found))


COMMANDS = documented_commands()


def test_documents_have_commands_and_every_one_is_covered():
    assert len(COMMANDS) >= 10
    missing = [f"{doc}: {command}" for doc, command in COMMANDS if command not in AS_WRITTEN and command not in STAND_INS]
    assert not missing, "documented commands neither run as written nor given a stand-in in tests/test_docs.py:\n" + "\n".join(missing)
    documented = {command for _, command in COMMANDS}
    assert not (AS_WRITTEN | set(STAND_INS)) - documented, "commands listed here that the documents no longer have"


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The repository's files (tracked, and new ones not ignored) in a new folder, with its .venv
    the environment running these tests and nothing run yet."""
    clone = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes(source.read_bytes())
    (clone / ".venv").symlink_to(Path(sys.prefix))
    return clone


@pytest.mark.parametrize("doc, command", COMMANDS, ids=[command[:70] for _, command in COMMANDS])
def test_documented_command_runs(doc, command, fresh_clone):
    run = command if command in AS_WRITTEN else STAND_INS.get(command)
    if run is None:
        pytest.fail(f"{doc}: not covered: {command}")
    env = {
        **os.environ,
        "PATH": f"{fresh_clone / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",  # `python`, `snakemake`: the environment's
        "PYTHONPATH": str(fresh_clone),
        "LP_NO_EKS": "1",  # `run.sh test` would install the ensemble-kalman-smoother package into the clone
    }
    done = subprocess.run(["bash", "-c", run], cwd=fresh_clone, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{doc}: {run}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_a_command_split_over_lines_is_read_whole():
    train = [command for _, command in COMMANDS if command.startswith("python scripts/train.py --config config/model.yaml")]
    assert train and shlex.split(train[0])[-1] == "training.max_epochs=100"

"""scripts/benchmark.py, the benchmarks' one entry point: it lists them, runs one by name with its
arguments, and refuses an unknown name in one line."""

import subprocess
import sys

from conftest import ROOT

ENTRY = [sys.executable, str(ROOT / "scripts" / "benchmark.py")]


def test_lists_every_benchmark_with_its_summary():
    out = subprocess.run(ENTRY, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ")}
    assert listed == {path.stem for path in (ROOT / "benchmarks").glob("*.py")}
    assert "throughput          Prediction and training throughput" in out.stdout


def test_runs_a_benchmark_by_name_with_its_arguments():
    out = subprocess.run([*ENTRY, "table_writing", "--frames", "50", "--keypoints", "3", "--repeats", "1"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("table: 50 frames x 3 keypoints")


def test_an_unknown_name_is_one_line_naming_the_choices():
    out = subprocess.run([*ENTRY, "decode_overlap"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr.strip() == "error: no benchmark named 'decode_overlap' (available: augmentation_seeds, cold_start, ddp_scaling, ensemble_fusion, multicam, planning, table_writing, throughput, train_step)"

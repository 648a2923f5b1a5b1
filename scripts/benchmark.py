#!/usr/bin/env python
"""The benchmarks' one entry point: ``benchmark.py NAME [ARGUMENTS]`` runs benchmarks/NAME.py with
those arguments; ``benchmark.py`` alone lists the benchmarks, ``benchmark.py NAME --help`` one's
arguments. Figures and how to read them: docs/benchmarks.md.

In the workflow (rule benchmark, workflow/rules/benchmark.smk) this script runs the throughput
benchmark in a work folder that is emptied first and removed once the benchmark's figures
(WORK/throughput.json) are moved to the rule's output; the printout goes to the rule's log.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lightning_pose_lib.cli import run

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def available() -> dict[str, str]:
    """{name: the first sentence of its docstring} of every Python benchmark."""
    out = {}
    for path in sorted(BENCHMARKS.glob("*.py")):
        summary = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split("\n\n")[0].split())
        out[path.stem] = re.split(r"(?<=[.?])\s", summary)[0]
    return out


def run_benchmark(name: str, args: list[str]) -> int:
    script = BENCHMARKS / f"{name}.py"
    if not script.is_file():
        sys.exit(f"error: no benchmark named {name!r} (available: {', '.join(available())})")
    # Our stdout and stderr: in the workflow they are the rule's log (lightning_pose_lib.cli.run).
    return subprocess.run([sys.executable, str(script), *args], stdout=sys.stdout, stderr=sys.stderr).returncode


def throughput_into(args, json_out, work_dir):
    work_dir, json_out = Path(work_dir), Path(json_out)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    print("running: benchmarks/throughput.py", " ".join(map(str, args)), "--out", work_dir, flush=True)
    sys.stderr.flush()
    status = run_benchmark("throughput", [*map(str, args), "--out", str(work_dir)])
    if status != 0:
        print(f"error: benchmarks/throughput.py failed with exit status {status} (its output is above; {work_dir} kept)", file=sys.stderr, flush=True)
        sys.exit(status)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work_dir / "throughput.json", json_out)  # same file system: atomic
    shutil.rmtree(work_dir)
    print(f"wrote {json_out}")


def cli_main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python scripts/benchmark.py NAME [ARGUMENTS]   (NAME --help: its arguments; docs/benchmarks.md: figures)\n")
        width = max(map(len, available()))
        for name, summary in available().items():
            print(f"  {name:<{width}}  {summary}")
        return
    sys.exit(run_benchmark(sys.argv[1], sys.argv[2:]))


def rule_main(smk):
    throughput_into(smk.params.args, smk.output.json, smk.params.work_dir)


if __name__ == "__main__":
    run(cli_main, rule_main)

#!/usr/bin/env python
"""Run the throughput benchmark into a fresh work folder and keep only its figures:
``benchmark.py --json OUT.json --work-dir DIR [benchmarks/throughput.py arguments except --out]``.

benchmarks/throughput.py trains its model in DIR (resuming only a training of the same config), its
video copies and predictions go there too; DIR is emptied first and, on success, removed once the
benchmark's DIR/throughput.json is moved to OUT.json.
The benchmark's printout (figures, ratios, GPU name, versions) goes to stdout; in the workflow
(rule benchmark, workflow/rules/benchmark.smk) to the rule's log.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lightning_pose_lib.cli import run


def benchmark(script, args, json_out, work_dir):
    work_dir, json_out = Path(work_dir), Path(json_out)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    command = [sys.executable, str(script), *map(str, args), "--out", str(work_dir)]
    print("running:", " ".join(command), flush=True)
    sys.stderr.flush()
    status = subprocess.run(command, stdout=sys.stdout, stderr=sys.stderr).returncode
    if status != 0:
        print(f"error: {script} failed with exit status {status} (its output is above; {work_dir} kept)", file=sys.stderr, flush=True)
        sys.exit(status)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work_dir / "throughput.json", json_out)  # same file system: atomic
    shutil.rmtree(work_dir)
    print(f"wrote {json_out}")


def cli_main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True, help="where the figures go")
    parser.add_argument("--work-dir", required=True, help="the benchmark's scratch folder (emptied first, removed on success)")
    args, rest = parser.parse_known_args()
    if "--out" in rest:
        parser.error("--out is set by this script (--work-dir)")
    benchmark(Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py", rest, args.json, args.work_dir)


def rule_main(smk):
    benchmark(smk.params.script, smk.params.args, smk.output.json, smk.params.work_dir)


if __name__ == "__main__":
    run(cli_main, rule_main)

#!/usr/bin/env bash
# The README's two commands:
#   bash scripts/run.sh demo   the whole workflow on the bundled (generated) example, on CPU
#   bash scripts/run.sh test   the test suite (what .ci/run calls)
# Each creates .venv with the pinned dependencies of environment.yml when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LP_VENV:-.venv}"
PY="$VENV/bin/python"

setup() {
    if [ -x "$PY" ] && "$PY" -c "import lightning_pose_lib, snakemake, pytest, av, kornia, nvidia.dali, tables, sleap_io, ndx_pose" 2>/dev/null; then
        return
    fi
    echo "[run.sh] creating $VENV with the pinned dependencies of environment.yml" >&2
    python3 -m venv "$VENV"
    # The pins are the pip entries of environment.yml (lines '      - name==version').
    sed -n 's/^ *- \([A-Za-z0-9_.-]*==[^ #]*\).*$/\1/p' environment.yml > "$VENV/pins.txt"
    # torch first and alone: on CPU machines the exact pin takes the CPU wheel.
    "$PY" -m pip install --quiet --disable-pip-version-check "$(grep '^torch==' "$VENV/pins.txt")"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$VENV/pins.txt"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps -e .
}

case "${1:-}" in
    demo)
        setup
        shift
        export PATH="$(cd "$VENV" && pwd)/bin:$PATH"  # LP_VENV may be relative or absolute
        snakemake --profile profiles/default "$@"
        echo "[run.sh] done: see results/example/summary.csv and results/example/plots/; report: .venv/bin/snakemake --report report.html" >&2
        ;;
    test)
        setup
        # The test-only pins of environment.yml (lines '      # test: name==version').
        if ! "$PY" -c "import movement" 2>/dev/null; then
            "$PY" -m pip install --quiet --disable-pip-version-check $(sed -n 's/^ *# test: \([^ ]*==[^ ]*\).*$/\1/p' environment.yml)
        fi
        # The optional FiftyOne extra (lines '      # fiftyone: name==version'), for its tests.
        if ! "$PY" -c "import fiftyone" 2>/dev/null; then
            "$PY" -m pip install --quiet --disable-pip-version-check $(sed -n 's/^ *# fiftyone: \([^ ]*==[^ ]*\).*$/\1/p' environment.yml)
        fi
        # The ensemble-kalman-smoother package in a venv of its own (environment.yml's
        # '# eks-reference:' line): tests/test_ensemble.py compares the library's smoother with it
        # (LP_NO_EKS=1: not installed, those tests skip).
        EKS_VENV="${LP_EKS_VENV:-.venv-eks}"
        if [ -z "${LP_NO_EKS:-}" ] && ! "$EKS_VENV/bin/python" -c "import eks" 2>/dev/null; then
            echo "[run.sh] creating $EKS_VENV with the ensemble-kalman-smoother package" >&2
            python3 -m venv "$EKS_VENV"
            "$EKS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check $(sed -n 's/^ *# eks-reference: \(.*\)$/\1/p' environment.yml)
        fi
        if [ -x "$EKS_VENV/bin/python" ]; then export EKS_PYTHON="$(cd "$EKS_VENV" && pwd)/bin/python"; fi
        shift
        export PATH="$(cd "$VENV" && pwd)/bin:$PATH"  # LP_VENV may be relative or absolute
        "$PY" -m pytest -q "$@"
        ;;
    *)
        echo "usage: bash scripts/run.sh demo|test [extra arguments]" >&2
        exit 64
        ;;
esac

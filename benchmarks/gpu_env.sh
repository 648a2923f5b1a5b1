# Sourced by the GPU scripts: installs the wheels carried to a lent GPU machine (DALI in parts under
# /tmp/dali, the rest under /tmp/whl; see benchmarks/gpu_proof.sh) once, sets PYTHONPATH and $out.
out=${OUT:-/tmp/out}
mkdir -p "$out"
if [ ! -d /tmp/site/nvidia/dali ]; then
    cat /tmp/dali/part* > /tmp/nvidia_dali_cuda120-2.4.0-py3-none-manylinux_2_28_x86_64.whl
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
        /tmp/nvidia_dali_cuda120-2.4.0-py3-none-manylinux_2_28_x86_64.whl /tmp/whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1

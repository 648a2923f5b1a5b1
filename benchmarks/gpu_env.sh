# Sourced by the GPU scripts: installs the wheels carried to a lent GPU machine (DALI in parts under
# /tmp/dali, the rest under /tmp/whl; see benchmarks/gpu_proof.sh) once, sets PYTHONPATH and $out.
# Without /tmp/dali (runs that use only PyAV), the other wheels are installed alone.
out=${OUT:-/tmp/out}
mkdir -p "$out"
if [ ! -d /tmp/site/lightning_pose_lib_wheels_done ]; then
    wheels=(/tmp/whl/*.whl)
    if ls /tmp/dali/part* >/dev/null 2>&1; then
        cat /tmp/dali/part* > /tmp/nvidia_dali_cuda120-2.4.0-py3-none-manylinux_2_28_x86_64.whl
        wheels+=(/tmp/nvidia_dali_cuda120-2.4.0-py3-none-manylinux_2_28_x86_64.whl)
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${wheels[@]}" || exit 1
    mkdir -p /tmp/site/lightning_pose_lib_wheels_done
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1

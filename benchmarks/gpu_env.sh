# Sourced by benchmarks/gpu_speed.sh and gpu_cold_start.sh: installs what benchmarks/gpu_bundle.sh packed and was copied
# to /tmp/carry (wheels, and DALI unpacked) into /tmp/site once, sets PYTHONPATH and $out, and
# records the machine in $out/gpu.txt.
out=${OUT:-/tmp/out}
mkdir -p "$out"
if [ ! -d /tmp/site/lightning_pose_lib_bundle_done ]; then
    rm -rf /tmp/bundle && mkdir -p /tmp/bundle /tmp/site
    parts=/tmp/carry; ls $parts/part* >/dev/null 2>&1 || parts=.dali/bundle  # copied there, or carried in the tree
    cat $parts/part* | tar -C /tmp/bundle -xf - || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/bundle/whl/*.whl || exit 1
    if [ -f /tmp/bundle/dali312.tar.xz ]; then  # absent from a --no-dali bundle
        xz -dc /tmp/bundle/dali312.tar.xz | tar -C /tmp/site -xf - || exit 1
    fi
    rm -rf /tmp/bundle
    mkdir -p /tmp/site/lightning_pose_lib_bundle_done
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
echo "$(nproc) CPUs" | tee -a "$out/gpu.txt"

#!/usr/bin/env bash
# Packs what a GPU machine without network lacks (it has Python 3.12 and torch) into parts of
# 62 MB: the wheels kornia, av, jsonschema, tables (pandas' HDF5 writer, for the .h5 predictions)
# and DALI's pure dependencies for Python 3.12, and DALI itself unpacked for 3.12 alone and
# recompressed with xz (236 MB instead of the 424 MB wheel). Run it in the repository root of a
# machine with network:
#   bash benchmarks/gpu_bundle.sh            -> .dali/bundle/part00 ... (ignored by git)
#   bash benchmarks/gpu_bundle.sh --no-dali  -> .dali/bundle/part00 alone (about 50 MB: one call
#                                               carries it; enough for PyAV prediction and
#                                               training without unlabeled video)
# Copy the parts to /tmp/carry/ on the GPU machine; benchmarks/gpu_env.sh (sourced by
# benchmarks/gpu_speed.sh and benchmarks/gpu_cold_start.sh) then installs everything into /tmp/site.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.dali/' .git/info/exclude 2>/dev/null || echo '/.dali/' >> .git/info/exclude
work=.dali/build
rm -rf "$work" .dali/bundle && mkdir -p "$work/whl" .dali/bundle
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
download() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" -d "$1" "${@:2}"; }
# Versions as in environment.yml; the rest are what kornia, jsonschema and DALI import.
# tables imports neither blosc2's Python package nor its other dependencies' (checked on the GPU image).
download "$work/whl" kornia==0.9.0 kornia_rs==0.2.0 av==18.1.0 jsonschema==4.26.0 jsonschema-specifications referencing rpds-py \
    tables==3.11.1 numexpr py-cpuinfo
packed=(whl)
if [ "${1:-}" != --no-dali ]; then
    download "$work/whl" astunparse gast optree makefun "libcst~=1.8"
    download "$work" nvidia-dali-cuda120==2.4.0
    mkdir "$work/dali"
    python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$work"/nvidia_dali_cuda120-*.whl "$work/dali"
    find "$work/dali" -name '*cpython-3*' ! -name '*cpython-312-*' -delete  # other Pythons' extensions
    tar -C "$work/dali" -cf - . | xz -T0 -6 > "$work/dali312.tar.xz"
    packed+=(dali312.tar.xz)
fi
tar -C "$work" -cf - "${packed[@]}" | split -b 62000000 -d - .dali/bundle/part
rm -rf "$work"
ls -l .dali/bundle

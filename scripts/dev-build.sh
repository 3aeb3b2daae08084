#!/usr/bin/env bash
# Incremental developer build: compiles cnnvis/_core*.so into the source tree, so `python -m pytest`
# and `python -m cnnvis` run straight from the checkout. Usage:
#   scripts/dev-build.sh [build-dir]        (default build/dev; CNNVIS_CUDA=OFF to skip nvcc,
#                                             CUDA_ARCHS="90" to compile one architecture only)
set -euo pipefail
cd "$(dirname "$0")/.."
bdir=${1:-build/dev}
args=(-DCNNVIS_INPLACE=ON -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)"
      -DPython_EXECUTABLE="$(command -v python3)" -DCNNVIS_CUDA="${CNNVIS_CUDA:-ON}")
[ -n "${CUDA_ARCHS:-}" ] && args+=(-DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS}")
cmake -S . -B "$bdir" -G Ninja "${args[@]}" >/dev/null
cmake --build "$bdir"

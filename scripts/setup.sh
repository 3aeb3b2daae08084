#!/usr/bin/env bash
# Idempotent setup on a fresh machine: Debian's GL/X packages for the viewer, the CPU torch wheel where no
# torch is present, then cnnvis itself (compiled core with CUDA kernels when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Mesa (EGL + llvmpipe) for offscreen rendering; the X libraries of the glfw wheel; Xvfb and xdotool for the
# real-window test.
APT_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libopengl0 libglx-mesa0 libx11-6 libxrandr2 libxinerama1 libxcursor1 libxi6 xvfb xauth xdotool"
# Real IDX files (Fashion-MNIST) for the loader test and for users who want a bigger data set than digits.
APT_PACKAGES="$APT_PACKAGES dataset-fashion-mnist"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# An unpinned torch with no torch present would pull a multi-GB CUDA build: take the CPU wheel on disk first.
if ! $PY -c "import torch" >/dev/null 2>&1; then
  wheel=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ]; then
    echo "setup: installing torch from $wheel" >&2
    $PY -m pip install -q "$wheel"
  else
    echo "setup: no local CPU torch wheel found; installing torch from the package index" >&2
    $PY -m pip install -q "torch>=2.1"
  fi
fi

export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
$PY -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" ninja "cmake>=3.24"
# --no-build-isolation: reuse the build tools above and the incremental build folder build/{wheel_tag}.
echo "setup: building and installing cnnvis (compiled core)" >&2
$PY -m pip install -q --no-build-isolation ".[test]"
$PY -P -c "import cnnvis._core as c; print('setup: cnnvis installed;', c.cuda_status())" >&2

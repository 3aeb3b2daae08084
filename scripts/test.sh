#!/usr/bin/env bash
# Setup, then the whole test suite against the installed package (python -P: the checkout's cnnvis/
# folder, which has no compiled core in a fresh clone, must not shadow it), then the torchvision zoo tests
# in their own venv (scripts/test-zoo.sh: torch 2.14.1 + torchvision 0.29.1 from local disk, made once).
# CNNVIS_SKIP_ZOO=1 leaves the zoo out (a quick local run); CI never sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# PYTHONSAFEPATH: what -P does, for every Python the tests start too (`python -c` in the checkout, spawned
# workers), so none of them imports the core-less cnnvis/ of a fresh clone either.
export EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl PYTHONSAFEPATH=1
python3 -P -m pytest -q -ra --ignore=tests/zoo "$@"
if [ "${CNNVIS_SKIP_ZOO:-0}" != 1 ]; then
  echo "test: the torchvision zoo (scripts/test-zoo.sh)" >&2
  bash scripts/test-zoo.sh
fi

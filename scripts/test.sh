#!/usr/bin/env bash
# Setup, then the whole test suite against the installed package (python -P: the checkout's cnnvis/
# folder, which has no compiled core in a fresh clone, must not shadow it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl
python3 -P -m pytest -q -ra "$@"

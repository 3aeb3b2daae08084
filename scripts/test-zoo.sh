#!/usr/bin/env bash
# The torchvision zoo tests (tests/zoo) in the zoo venv that scripts/zoo-env.sh makes (idempotent; the first
# run installs torch 2.14.1 + torchvision 0.29.1 from local disk, ~2 minutes). The venv sees the system's
# site-packages, so it tests the cnnvis installed there (python -P), as scripts/test.sh does; with
# CNNVIS_ZOO_CHECKOUT=1 it tests this checkout instead (its cnnvis/ must hold a built _core).
# Extra arguments go to pytest, e.g. scripts/test-zoo.sh -k resnet50.
set -euo pipefail
cd "$(dirname "$0")/.."
ZPY=$(bash scripts/zoo-env.sh)
export EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl
if [ "${CNNVIS_ZOO_CHECKOUT:-0}" = 1 ]; then
  exec "$ZPY" -m pytest -q -ra -m zoo tests/zoo "$@"
fi
exec "$ZPY" -P -m pytest -q -ra -m zoo tests/zoo "$@"

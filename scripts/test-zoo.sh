#!/usr/bin/env bash
# The torchvision zoo tests (tests/zoo) in the venv that scripts/zoo-env.sh makes (idempotent; the first run
# installs torch 2.14.1 + torchvision 0.29.1 from local disk, ~2 minutes, ~5.5 GB). The venv sees the
# system's site-packages: a checkout whose cnnvis/ holds a built _core is tested as it is (a developer's);
# otherwise (a fresh clone, CI after scripts/setup.sh) the installed cnnvis, with python -P as in test.sh.
# Extra arguments go to pytest, e.g. scripts/test-zoo.sh -k resnet50.
set -euo pipefail
cd "$(dirname "$0")/.."
ZPY=$(bash scripts/zoo-env.sh)
export EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl CNNVIS_ZOO_REQUIRED=1  # no skipping here
if compgen -G "cnnvis/_core*.so" >/dev/null; then
  exec "$ZPY" -m pytest -q -ra -m zoo tests/zoo "$@"
fi
export PYTHONSAFEPATH=1  # as -P, for the Pythons the tests start too (see scripts/test.sh)
exec "$ZPY" -P -m pytest -q -ra -m zoo tests/zoo "$@"

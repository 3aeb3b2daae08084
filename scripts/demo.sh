#!/usr/bin/env bash
# The main job on the embedded default: train (or reuse) the demo CNN on scikit-learn's digits, analyse it,
# and draw the CNNVis view offscreen. Writes out/demo.cnnvis and out/demo.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
cnnvis analyze --demo -o out/demo.cnnvis
cnnvis info out/demo.cnnvis
if [ -n "${DISPLAY:-}" ] && [ -z "${CNNVIS_HEADLESS:-}" ]; then
  cnnvis-gl out/demo.cnnvis
else
  EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl cnnvis-gl out/demo.cnnvis --screenshot out/demo.png --size 1600x1000
  echo "demo: wrote out/demo.png (no display; run 'cnnvis-gl out/demo.cnnvis' on a desktop for the window)" >&2
fi

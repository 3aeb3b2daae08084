#!/usr/bin/env bash
# Idempotent: a venv for the zoo tests (torchvision, timm, HuggingFace transformers). torchvision here pairs only with torch 2.14.1 (a CUDA
# build, ~5.5 GB, from local disk), while the system has the CPU torch 2.13; the venv sees the system's
# site-packages (numpy, vispy, scikit-learn, the installed cnnvis) and shadows only torch and torchvision.
# Prints the venv's python on stdout (the only line it prints there); progress goes to stderr.
#   CNNVIS_ZOO_VENV  where the venv lives (default ${XDG_CACHE_HOME:-~/.cache}/cnnvis/zoo-venv)
set -euo pipefail
PY=${PYTHON:-python3}
TORCH=2.14.1
VISION=0.29.1
TIMM=1.0.31
TRANSFORMERS=5.25.0
VENV=${CNNVIS_ZOO_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cnnvis/zoo-venv}

ready() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$TORCH" "$VISION" "$TIMM" "$TRANSFORMERS" >/dev/null 2>&1 <<'EOF'
import sys, torch, torchvision, timm, transformers
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
assert torchvision.__version__.split("+")[0] == sys.argv[2], torchvision.__version__
assert timm.__version__ == sys.argv[3], timm.__version__
assert transformers.__version__ == sys.argv[4], transformers.__version__
EOF
}

mkdir -p "$(dirname "$VENV")"
# One creator at a time (the lead's test.sh and a developer may start together); the others wait.
exec 9>"$VENV.lock"
flock 9
if ! ready; then
  echo "zoo-env: installing torch==$TORCH torchvision==$VISION timm==$TIMM transformers==$TRANSFORMERS into $VENV" \
       "(several GB, a few minutes)" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
  # Only these two (and what they need that the system lacks): the system's numpy & co. stay in use.
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    "$VENV/bin/python" -m pip install -q "torch==$TORCH" "torchvision==$VISION" "timm==$TIMM" \
    "transformers==$TRANSFORMERS" >&2
  ready || { echo "zoo-env: $VENV/bin/python cannot import torch $TORCH, torchvision $VISION, timm $TIMM and" \
                  "transformers $TRANSFORMERS" >&2; exit 1; }
fi
echo "$VENV/bin/python"

#!/usr/bin/env bash
# ResNet-50 in the viewer (issue 9 item 7): make the analysis file, time it, screenshot it, time frames.
#
#   scripts/resnet50-view.sh [OUTDIR]        # default /tmp/cnnvis-r50; ~10 min on 2 CPU cores
#
# Makes docs/resnet50.png's picture ($OUTDIR/r50.png) and prints benchmarks/render.py's table for the file.
# torchvision's resnet50 (random weights, num_classes=10) from the zoo venv (scripts/zoo-env.sh; ZOO_PY to
# name another python); tests/resnets.py's ResNet-50-shaped net when torchvision is missing. Runs the
# installed cnnvis, or the checkout's when it holds a built core (scripts/dev-build.sh), as test-zoo.sh.
# 64 Fashion-MNIST test images (Debian's /usr/share/datasets/fashion-mnist) upscaled to 224x224 RGB uint8.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/cnnvis-r50}
PY=${ZOO_PY:-$(bash scripts/zoo-env.sh || echo python3)}   # no zoo venv: the system torch, tests/resnets.py
P=-P   # python -P: a fresh clone's core-less cnnvis/ must not shadow the installed package
if compgen -G "cnnvis/_core*.so" >/dev/null; then P=; export PYTHONPATH=$PWD; fi   # a dev build: measure it
N=${N_IMAGES:-64}
mkdir -p "$OUT"
export EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl

"$PY" - "$OUT" "$N" <<'PY'
import gzip, sys
import numpy as np, torch
out, n = sys.argv[1], int(sys.argv[2])
src = "/usr/share/datasets/fashion-mnist/t10k-"
with gzip.open(src + "images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
with gzip.open(src + "labels-idx1-ubyte.gz") as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
idx = np.random.default_rng(0).choice(len(x), n, replace=False)
big = torch.nn.functional.interpolate(torch.from_numpy(x[idx]).float()[:, None], size=224, mode="bilinear",
                                      align_corners=False).clamp(0, 255).round().to(torch.uint8)
names = np.array(["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"])
np.savez(f"{out}/fashion224.npz", images=big.expand(-1, 3, -1, -1).numpy(), labels=y[idx], class_names=names)
torch.manual_seed(0)
try:
    import torchvision
    model, spec = torchvision.models.resnet50(num_classes=10), "torchvision.models:resnet50"
except ImportError:
    sys.path.insert(0, "tests")
    import resnets
    model, spec = resnets.resnet50(num_classes=10), "resnets:resnet50"
torch.save(model.state_dict(), f"{out}/resnet50.pt")
open(f"{out}/model.txt", "w").write(spec)
print(f"{n} images {tuple(big.shape)} -> {out}/fashion224.npz; {spec} weights -> {out}/resnet50.pt")
PY

MODEL=$(cat "$OUT/model.txt")
PYTHONPATH=tests${PYTHONPATH:+:$PYTHONPATH} /usr/bin/time -v -o "$OUT/analyze.time" "$PY" $P -m cnnvis analyze --model "$MODEL" \
    --model-kwargs num_classes=10 --weights "$OUT/resnet50.pt" --data "$OUT/fashion224.npz" \
    -o "$OUT/resnet50.cnnvis" --no-progress
grep -E "Elapsed|Maximum resident" "$OUT/analyze.time"
ls -l "$OUT/resnet50.cnnvis"

/usr/bin/time -v -o "$OUT/screenshot.time" python3 $P -c "import sys; from cnnvis.app import main_gl; sys.exit(main_gl())" "$OUT/resnet50.cnnvis" \
    --screenshot "$OUT/r50.png" --size 1600x1000
grep -E "Elapsed|Maximum resident" "$OUT/screenshot.time"
python3 benchmarks/render.py --file "$OUT/resnet50.cnnvis" --size 1600x1000

#!/usr/bin/env bash
# The paper's case studies on Fashion-MNIST (Debian's dataset-fashion-mnist): train LeNet, DeepLeNet,
# LeNet x0.25..x4 and BaseCNN (x0.25 for 2 cores) with ReLU and leaky ReLU, analyse each on the test split
# with its snapshots, and print the paper's tables and the findings expected vs found (markdown).
#   scripts/case-studies.sh [--quick] [more options of scripts/case_studies.py]
# --quick: a few minutes on 2 cores; the full run: under 20 minutes there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] && [[ " $* " != *" --data "* ]]; then
  echo "case-studies: Fashion-MNIST not found; install Debian's dataset-fashion-mnist or pass --data DIR" >&2
  exit 2
fi
exec python3 scripts/case_studies.py "$@"

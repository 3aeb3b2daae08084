#!/usr/bin/env bash
# GPU check for a machine with an H200-class GPU and no network (issue 3): builds the core for sm_90 in
# place, runs the GPU tests and the GPU benchmarks, and prints one report (tee'd into $OUT/gpu_check.md
# when $OUT is set). Step limits (200 + 100 + 45 + 60 + 60 s) keep the whole check under 8 minutes.
#   bash scripts/gpu-check.sh
# The benchmarks run on the core built here (PYTHONPATH=.), not on an installed cnnvis.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v python || command -v python3)
LOG=$(mktemp -d)
REPORT="$LOG/report.md"
STEPS="$LOG/steps.md"
: >"$STEPS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}

# run NAME LIMIT_S CMD...: runs a step, keeps its output in $LOG/NAME.out, adds a row to the step table.
run() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc
  timeout "$limit" "$@" >"$LOG/$name.out" 2>&1
  rc=$?
  local secs=$((SECONDS - t0)) result
  case $rc in
    0) result="ok" ;;
    124) result="TIMED OUT after ${limit} s" ;;
    *) result="FAILED (exit $rc)" ;;
  esac
  if [ "$name" = pytest ]; then
    local summary
    summary=$(grep -E '(passed|failed|skipped|error)' "$LOG/pytest.out" | tail -1 | sed 's/=//g' | xargs)
    # on the GPU machine a skipped GPU test means CUDA was not usable: that is a failure, not a pass
    if [ $rc -eq 0 ] && echo "$summary" | grep -q skipped; then rc=1; result="FAILED (GPU tests skipped)"; fi
    result="$result: $summary"
  fi
  printf '| %s | `%s` | %s | %d |\n' "$name" "$*" "$result" "$secs" >>"$STEPS"
  return $rc
}

run build 200 env CUDA_ARCHS=90 CNNVIS_CUDA=ON scripts/dev-build.sh build/gpu-check
run pytest 100 "$PY" -m pytest -q -rs tests/test_stats_gpu.py tests/test_cluster_gpu.py "tests/test_diff.py::test_streamed_cross_moments_equal_float64_numpy"
run stats-bench 45 env PYTHONPATH=. "$PY" benchmarks/stats.py --cuda
run bicluster-bench 60 env PYTHONPATH=. "$PY" benchmarks/bicluster.py --cuda
# Issue 5's GPU target: 100k rectangles + 100k curves at 1920x1080 at >= 60 frames per second (<= 16.7 ms),
# rendered through EGL on the GPU (see the device notes for the EGL vendor files it may need).
run render-bench 60 env PYTHONPATH=. "$PY" benchmarks/render.py --counts 100000 --naive-max 0 --size 1920x1080

{
  echo "# gpu_check ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "device: $("$PY" -c 'from cnnvis import _core; print(_core.cuda_status())' 2>&1 | tail -1)"
  echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
  echo
  echo "| step | command | result | seconds |"
  echo "|---|---|---|---:|"
  cat "$STEPS"
  for name in stats-bench bicluster-bench render-bench; do
    echo
    echo "## $name"
    echo
    cat "$LOG/$name.out"
  done
  for name in build pytest; do
    if ! grep -q "| $name | .* | ok" "$STEPS"; then
      echo
      echo "## $name output (last 40 lines)"
      echo
      echo '```'
      tail -40 "$LOG/$name.out"
      echo '```'
    fi
  done
} >"$REPORT"

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  tee "$OUT/gpu_check.md" <"$REPORT"
else
  cat "$REPORT"
fi

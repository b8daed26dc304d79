#!/usr/bin/env bash
# Development build: compiles one ISA level (default v4, or $FASTNN_ISA_LEVELS) straight into
# python/fastnn/, so `PYTHONPATH=python pytest` runs against the fresh kernels.
#   tools/build_inplace.sh            # v4 only (fast)
#   FASTNN_ISA_LEVELS=all tools/build_inplace.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
levels="${FASTNN_ISA_LEVELS:-v4}"
build="$here/build/inplace-${levels//;/-}"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFASTNN_ISA_LEVELS="$levels" -DFASTNN_INPLACE=ON -DPython_EXECUTABLE="$(command -v "$py")" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"

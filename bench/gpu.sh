#!/usr/bin/env bash
# The GPU run-book: every GPU measurement in one command and one table (bench/gpu.py says what).
#   bench/gpu.sh            one CUDA device, under 8 minutes
#   bench/gpu.sh --smoke    tiny sizes on the CPU (the test suite runs this)
# Python: $PYTHON, else the repository's .venv, else python3 on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec "$PY" -m bench.gpu "$@"

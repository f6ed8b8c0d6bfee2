#!/bin/sh
# gemmaclf training recipe, end to end.  Usage: train/run.sh [--smoke] [--out DIR] [--seed N]
# PYTHON overrides the interpreter (default: the project venv).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$HERE/../.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" "$HERE/recipe.py" "$@"

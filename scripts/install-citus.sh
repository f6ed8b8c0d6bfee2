#!/usr/bin/env bash
# Builds and installs Citus 13.2.2 (the distributed engine for PostgreSQL) into the PostgreSQL 15
# install dirs, from the source kept in $GC_SHARED/vendor/citus (Debian does not package Citus and
# CI reaches no source host). Used by the scale-out tests (test/citus/). Run as root (or with sudo).
#   - skips when Citus 13.2.2 is already installed there (citus.control + the version in citus.so);
#   - installs the Debian packages the build needs when they are missing;
#   - builds in a temporary folder (removed on exit), output to a log shown only on failure.
# Environment: GC_SHARED (default ../shared), PG_CONFIG (default: PostgreSQL 15's), JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."

CITUS_VERSION=13.2.2
CITUS_EXTVERSION=13.2-1      # citus.control default_version of every 13.2.x release
CITUS_SHA256=dd2453caec20a830e5e63f1def5c5a98cb6f57ae510407cdcd800916fcdab430
JOBS=${JOBS:-2}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config || true)

die() { echo "install-citus: $*" >&2; exit 1; }
[ -n "$PG_CONFIG" ] && [ -x "$PG_CONFIG" ] ||
  die "pg_config not found (install postgresql-server-dev-15 or set PG_CONFIG)"
case "$("$PG_CONFIG" --version)" in
  "PostgreSQL 15."*) ;;
  *) die "Citus $CITUS_VERSION is built here for PostgreSQL 15, $PG_CONFIG is $("$PG_CONFIG" --version)" ;;
esac
libdir=$("$PG_CONFIG" --pkglibdir)
control=$("$PG_CONFIG" --sharedir)/extension/citus.control

installed() {
  [ -f "$control" ] && [ -f "$libdir/citus.so" ] &&
    grep -q "^default_version = '$CITUS_EXTVERSION'" "$control" &&
    grep -aq "Citus $CITUS_VERSION" "$libdir/citus.so"
}
if installed; then
  echo "install-citus: Citus $CITUS_VERSION already installed in $libdir, nothing to do"
  exit 0
fi

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
GC_SHARED=$(cd "${GC_SHARED:-../shared}" 2>/dev/null && pwd) || die "reference folder not found (set GC_SHARED)"
src=$GC_SHARED/vendor/citus
tarball=$src/citus-$CITUS_VERSION.tar.gz
[ -f "$tarball" ] || die "$tarball not found"
echo "$CITUS_SHA256  $tarball" | sha256sum -c --quiet - >/dev/null 2>&1 ||
  die "$tarball: sha256 differs from $CITUS_SHA256"

# The libraries Citus' configure checks for (lz4, zstd) and those PostgreSQL's own build links
# (Makefile.global LIBS: krb5, selinux, pam, ...); libcurl only serves Citus' usage statistics.
pkgs=(build-essential liblz4-dev libzstd-dev libkrb5-dev libssl-dev libicu-dev libselinux1-dev
      libxslt1-dev libpam0g-dev libreadline-dev uuid-dev postgresql-server-dev-15)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-citus: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install failed"
fi

# Two builds at once would only fight for the cores and the install dir.
exec 9>/tmp/gemmaclf-citus-install.lock
flock 9
if installed; then
  echo "install-citus: Citus $CITUS_VERSION installed meanwhile by another run, nothing to do"
  exit 0
fi

work=$(mktemp -d /tmp/citus-build-XXXXXX)
trap 'rm -rf "$work"' EXIT
log=$work/build.log
start=$(date +%s)
step() {   # step NAME COMMAND...: runs it into the log; on failure shows the log's tail
  echo "install-citus: $1"
  shift
  if ! "$@" >>"$log" 2>&1; then
    tail -40 "$log" >&2
    die "failed: $* (log above)"
  fi
}
tar xzf "$tarball" -C "$work"
cd "$work/citus-$CITUS_VERSION"
step "patch (PostgreSQL 15 minor-release build fix)" patch -p1 -i "$src/pg15-minor-release.patch"
step "configure" ./configure --without-libcurl PG_CONFIG="$PG_CONFIG"
step "make -j$JOBS" make -j"$JOBS"
step "make install" $SUDO make install
installed || die "installed, but $control / $libdir/citus.so do not show Citus $CITUS_VERSION"
echo "install-citus: Citus $CITUS_VERSION installed into $libdir in $(( $(date +%s) - start )) s"

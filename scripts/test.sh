#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (redis-server
# and prometheus, from Debian's packages; moto's S3 server and schemathesis, from PyPI) if
# missing, then runs the whole suite. The tests start their own
# redis-server processes on free ports and their own hospital servers; nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs a Debian package when its command is missing.
need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  echo "installing $pkg (Debian package)..."
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$pkg" >/dev/null
}
need redis-server redis-server
# tests/e2e/prometheus.rs runs a real Prometheus and promtool.
need prometheus prometheus
need promtool prometheus
# tests/e2e/openapi.rs runs Schemathesis (from PyPI, pinned) against the real server.
SCHEMATHESIS_VERSION=4.32.5
if ! command -v st >/dev/null 2>&1 || ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION (PyPI)..."
  python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
# The package starts a system-wide redis on :6379; the tests do not use it.

# The object storage tests (objects/tests/backends.rs, tests/e2e/files.rs) run a real
# S3-compatible server: moto in server mode (`moto_server`, started by the tests on free ports).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server] (PyPI)..."
  python3 -m pip install --quiet 'moto[server]' || python3 -m pip install --quiet --break-system-packages 'moto[server]'
  hash -r
  # pyenv installs console scripts behind shims that need a rehash.
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# The ScyllaDB backend is behind a feature (its driver is large); keep it compiling, and run its
# conformance test where a cluster is at hand.
if [ -n "${SCYLLA_URI:-}" ]; then
  cargo test -p hospital-store --features scylla --locked --test conformance scylla_backend
else
  echo "SCYLLA_URI not set: ScyllaDB conformance skipped (checking that the backend compiles)"
  cargo check -p hospital-store --features scylla --tests --locked --quiet
  cargo check -p hospital --features scylla --bins --locked --quiet
fi

# The production build leaves the sandboxes and the conformance suite out (they are features the
# demo binary and the tests turn on): keep it compiling.
cargo check -p hospital --no-default-features --bins --locked --quiet

cargo test --workspace --locked --no-fail-fast "$@"

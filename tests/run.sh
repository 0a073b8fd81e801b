#!/usr/bin/env bash
# Installs what the tests need (Debian packages, the cached kube-apiserver/etcd control plane)
# and runs every tier: unit, integration over HTTPS, and end-to-end against a real API server.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/e2e/lib/install.sh
cargo test --locked -- --include-ignored

#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) with cargo-fuzz (libFuzzer), seeded with
# the regression corpus in tests/corpus/. cargo-fuzz needs nightly features: on the stable
# toolchain RUSTC_BOOTSTRAP=1 enables them for this build only.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in reference review config catalog; do
  mkdir -p "$work/$target"
  case $target in
    review) cp tests/corpus/review/* tests/fixtures/admission-reviews/*.json "$work/$target/" ;;
    config) cp tests/corpus/config/* deploy/base/config.yaml "$work/$target/" ;;
    catalog) cp tests/corpus/catalog/* src/catalog/default.yaml deploy/base/catalog.yaml "$work/$target/" ;;
    reference) printf 'nginx' >"$work/$target/seed" ;;
  esac
  echo "fuzzing $target for ${SECONDS_EACH}s"
  log="$work/$target.log"
  if ! cargo fuzz run --fuzz-dir tests/fuzz "$target" "$work/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $target failed (see tests/fuzz/artifacts/$target/ for the input)" >&2
    exit 1
  fi
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log"
  # A crash leaves an artifact: fail loudly, and keep it as a regression input.
  if compgen -G "tests/fuzz/artifacts/$target/*" >/dev/null; then
    echo "fuzz target $target found a failing input: tests/fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz: 4 targets ran ${SECONDS_EACH}s each without a crash"

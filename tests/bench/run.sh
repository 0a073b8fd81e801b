#!/usr/bin/env bash
# Load benchmark: fipsgate (no cluster, catalogue results) against a baseline server on the same
# TLS + HTTP/2 stack that answers a fixed AdmissionReview, both driven by h2load in one run.
#   tests/bench/run.sh [REQUESTS]      (default 20000 per run)
# Prints requests/s, latency p50/p99, CPU time per request, peak RSS, and fipsgate/baseline.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20000}

command -v h2load >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client
}
cargo build --release --quiet --bin fipsgate --example baseline
BIN=$PWD/target/release/fipsgate
BASE=$PWD/target/release/examples/baseline

W=$(mktemp -d /tmp/fipsgate-bench.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

"$BIN" certs --out "$W/certs" --host 127.0.0.1 >/dev/null 2>&1
# An allowed pod: the captured create without its non-FIPS init container.
jq -c '.request.object.spec.initContainers = []' \
  tests/fixtures/admission-reviews/pod-create-init-and-containers.json >"$W/review.json"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 did not open" >&2
  return 1
}

FG_PORT=$(free_port)
(cd "$W" && RUST_LOG=${FIPSGATE_BENCH_LOG:-info} exec "$BIN" serve --dev --listen "127.0.0.1:$FG_PORT" --admin-listen 127.0.0.1:0 \
  --tls-cert certs/tls.crt --tls-key certs/tls.key 2>"$W/fipsgate.log") &
pids+=($!)
FG_PID=$!
BASE_PORT=$(free_port)
"$BASE" "127.0.0.1:$BASE_PORT" "$W/certs/tls.crt" "$W/certs/tls.key" 2>"$W/baseline.log" &
pids+=($!)
BASE_PID=$!
wait_port "$FG_PORT"
wait_port "$BASE_PORT"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

# run NAME PID PORT CONNECTIONS STREAMS_PER_CONNECTION -> "rps p50_ms p99_ms cpu_us_per_req rss_mib"
run() {
  local pid=$2 port=$3 c=$4 m=$5 log="$W/h2load-$1-$4.log"
  # Warm-up: connections, caches, allocator.
  h2load -n 2000 -c "$c" -m "$m" -H 'content-type: application/json' -d "$W/review.json" \
    "https://127.0.0.1:$port/validate?timeout=5s" >/dev/null
  local before; before=$(cpu_ticks "$pid")
  local out
  out=$(h2load -n "$N" -c "$c" -m "$m" -H 'content-type: application/json' -d "$W/review.json" \
    --log-file="$log" "https://127.0.0.1:$port/validate?timeout=5s")
  local after; after=$(cpu_ticks "$pid")
  local ok; ok=$(echo "$out" | awk '/^status codes:/ {print $3}')
  [[ "$ok" == "$N" ]] || { echo "$1: only $ok of $N requests succeeded" >&2; echo "$out" >&2; exit 1; }
  local rps; rps=$(echo "$out" | awk '/^finished in/ {print $4}')
  # h2load's log: start time, status, elapsed microseconds (one line per request).
  local pcts; pcts=$(awk '{print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  local cpu; cpu=$(awk -v d=$((after - before)) -v t="$TICKS" -v n="$N" 'BEGIN {printf "%.1f", d / t * 1e6 / n}')
  local rss; rss=$(awk -v k="$(hwm_kib "$pid")" 'BEGIN {printf "%.1f", k / 1024}')
  echo "$rps $pcts $cpu $rss"
}

printf '%-9s %-5s %-8s %10s %9s %9s %12s %9s\n' server conns streams "req/s" "p50 ms" "p99 ms" "cpu us/req" "rss MiB"
for c in 1 16; do
  # 64 streams in all, at most 32 per connection: what the server allows (more are refused).
  m=$((64 / c > 32 ? 32 : 64 / c))
  read -r b_rps b_p50 b_p99 b_cpu b_rss <<<"$(run baseline "$BASE_PID" "$BASE_PORT" "$c" "$m")"
  read -r f_rps f_p50 f_p99 f_cpu f_rss <<<"$(run fipsgate "$FG_PID" "$FG_PORT" "$c" "$m")"
  printf '%-9s %-5s %-8s %10s %9s %9s %12s %9s\n' baseline "$c" "$((c * m))" "$b_rps" "$b_p50" "$b_p99" "$b_cpu" "$b_rss"
  printf '%-9s %-5s %-8s %10s %9s %9s %12s %9s\n' fipsgate "$c" "$((c * m))" "$f_rps" "$f_p50" "$f_p99" "$f_cpu" "$f_rss"
  awk -v f="$f_rps" -v b="$b_rps" -v fc="$f_cpu" -v bc="$b_cpu" -v c="$c" \
    'BEGIN {printf "ratio fipsgate/baseline at %d connection(s): throughput %.2f, cpu per request %.2f\n", c, f / b, fc / bc}'
done
echo "requests per run: $N; machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); h2load and both servers share the cores"

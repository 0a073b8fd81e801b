#!/usr/bin/env bash
# End-to-end suite: fipsgate serving a real kube-apiserver (v1.20.2 from lib/install.sh),
# registered from deploy/base/webhook.yaml, checked the way a user sees it: kubectl output and
# exit codes, the API server's audit log, fipsgate's log and /metrics.
#
# Usage: bash tests/e2e/run.sh   (root; exit 0 iff every scenario passed)
# Environment:
#   FIPSGATE_BIN=PATH                 use this fipsgate binary (default: cargo build --release)
#   FIPSGATE_E2E_SABOTAGE=allow-all   start fipsgate with a config exempting every test
#                                     namespace: a broken webhook that the suite must catch
#   FIPSGATE_E2E_KEEP=1               keep the workdir even when everything passed
# Output: one `PASS scenario N: ...` / `FAIL scenario N: ... (expected vs seen)` line per
# scenario, then `e2e: N passed, M failed`. On failure the workdir (fipsgate.log, apiserver and
# controller-manager logs, audit.log) is kept and its path printed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
suite_t0=${EPOCHREALTIME/./}

log() { printf '[e2e] %s\n' "$*" >&2; }

FIPS_API=us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4
FIPS_DNS=gcr.io/spectro-images-fips/coredns:v1.12.1
SCENARIOS=14
DENIED='admission webhook "pods.fipsgate.io" denied the request'
sabotage=${FIPSGATE_E2E_SABOTAGE:-}
case $sabotage in
  "" | allow-all) ;;
  *)
    log "FIPSGATE_E2E_SABOTAGE=$sabotage: only allow-all is known"
    exit 2
    ;;
esac

# shellcheck source=tests/e2e/lib/cluster.sh
source "$here/lib/cluster.sh"

# --- workdir, teardown --------------------------------------------------------------------------
work=""
passed=0 failed=0 summary_done=0
fg_pid="" loop_pid=""

# Stop the recorded fipsgate process (only if its command line still names the workdir).
fipsgate_stop() {
  local pid=$fg_pid i
  fg_pid=""
  [[ -n $pid ]] || return 0
  if grep -F -- "$work" <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) >/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "fipsgate (pid $pid) ignored SIGTERM for 10s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

summary() {
  ((summary_done)) && return 0
  summary_done=1
  if ((passed + failed < SCENARIOS)); then
    # Aborted (setup failure, signal): scenarios that did not finish did not pass.
    log "aborted: $((SCENARIOS - passed - failed)) scenario(s) did not run to the end"
    failed=$((SCENARIOS - passed))
  fi
  echo "e2e: $passed passed, $failed failed"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n $loop_pid ]] && kill -0 "$loop_pid" 2>/dev/null; then
    kill -TERM "$loop_pid" 2>/dev/null
    wait "$loop_pid" 2>/dev/null
  fi
  fipsgate_stop
  [[ -n $work ]] && cluster_down "$work"
  summary
  ((failed > 0 && rc == 0)) && rc=1
  local secs=$(((${EPOCHREALTIME/./} - suite_t0) / 1000000))
  if [[ -z $work ]]; then
    log "done in ${secs}s"
  elif ((rc == 0)) && [[ -z ${FIPSGATE_E2E_KEEP:-} ]]; then
    rm -rf "$work"
    log "done in ${secs}s"
  else
    log "done in ${secs}s; workdir kept: $work (fipsgate.log, kube-apiserver.log, kube-controller-manager.log, audit.log)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Setup failed: report it; the EXIT trap counts the scenarios that did not run.
abort() {
  echo "FAIL setup: $*"
  exit 1
}

# --- prerequisites ------------------------------------------------------------------------------
bash "$here/lib/install.sh" || abort "tests/e2e/lib/install.sh failed"
if [[ -n ${FIPSGATE_BIN:-} ]]; then
  bin=$FIPSGATE_BIN
else
  log "cargo build --release --bin fipsgate"
  (cd "$root" && cargo build --release --bin fipsgate) || abort "cargo build failed"
  bin=$root/target/release/fipsgate
fi
[[ -x $bin ]] || abort "$bin is not an executable"

work=$(mktemp -d "${TMPDIR:-/tmp}/fipsgate-e2e.XXXXXX")

# --- helpers ------------------------------------------------------------------------------------
k() { timeout 30 kubectl --request-timeout=20s "$@"; }

# retry TIMEOUT CMD...: run CMD every 0.25 s until it succeeds or TIMEOUT seconds pass.
retry() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

now_us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { # secs_since T0_US -> "1.23"
  local d=$(($(now_us) - $1))
  printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

# try CMD...: run CMD; $out holds stdout+stderr, $rc the exit status.
try() {
  rc=0
  out=$("$@" 2>&1) || rc=$?
}

oneline() { # collapse to one line, at most 400 characters
  local s=${1//$'\n'/ | }
  ((${#s} > 400)) && s="${s:0:400}..."
  printf '%s' "$s"
}

# Assertions on the last `try`: they set $why and return 1 on failure.
why=""
fail() {
  why=$*
  return 1
}
expect_ok() { # expect_ok WHAT
  ((rc == 0)) || fail "$1: expected success, saw exit $rc: $(oneline "$out")"
}
expect_denied() { # expect_denied WHAT
  ((rc != 0)) || fail "$1: expected a denial by pods.fipsgate.io, but it succeeded: $(oneline "$out")"
  [[ $out == *"$DENIED"* ]] || fail "$1: expected a denial by pods.fipsgate.io, saw exit $rc: $(oneline "$out")"
}
expect_out() { # expect_out WHAT TEXT
  [[ $out == *"$2"* ]] || fail "$1: expected output containing '$2', saw: $(oneline "$out")"
}
expect_no_out() { # expect_no_out WHAT TEXT
  [[ $out != *"$2"* ]] || fail "$1: expected no '$2' in the output, saw: $(oneline "$out")"
}
pod_exists() { k -n "$1" get pod "$2" -o name >/dev/null 2>&1; }
expect_pod() { # expect_pod NS NAME
  pod_exists "$1" "$2" || fail "pod $1/$2: expected it to exist, it does not"
}
expect_no_pod() { # expect_no_pod NS NAME
  if pod_exists "$1" "$2"; then
    fail "pod $1/$2: expected it not to exist, but it does"
  fi
}

# audit_annotations NS NAME: the annotations of the last completed `create pods NAME` in NS.
audit_annotations() {
  jq -R -c --arg ns "$1" --arg n "$2" '
    fromjson? | select(.stage == "ResponseComplete" and .verb == "create"
      and .objectRef.resource == "pods" and (.objectRef.subresource // "") == ""
      and .objectRef.namespace == $ns and .objectRef.name == $n) | .annotations // {}' \
    "$FIPSGATE_AUDIT_LOG" | tail -n 1
}
# audit_has NS NAME KEY SUBSTRING: that create carries pods.fipsgate.io/KEY containing SUBSTRING.
audit_has() {
  local a
  a=$(audit_annotations "$1" "$2") || return 1
  [[ -n $a ]] || return 1
  jq -e --arg k "pods.fipsgate.io/$3" --arg v "$4" '(.[$k] // "") | contains($v)' <<<"$a" >/dev/null
}
expect_audit() { # expect_audit NS NAME KEY SUBSTRING (polls: the audit log is written async)
  if ! retry 10 audit_has "$@"; then
    local a
    a=$(audit_annotations "$1" "$2")
    fail "audit log: expected pods.fipsgate.io/$3 containing '$4' on create pods $1/$2, saw annotations: ${a:-<no event>}"
  fi
}

metrics() { curl -sf --max-time 5 "http://127.0.0.1:$admin_port/metrics"; }
# metric_at_least REGEX N: a sample line matching REGEX (name and labels) has a value >= N.
metric_at_least() {
  local m
  m=$(metrics) || return 1
  grep -E -- "$1" <<<"$m" | awk -v n="$2" '$NF + 0 >= n { f = 1 } END { exit !f }'
}
expect_metric() { # expect_metric REGEX N
  if ! retry 5 metric_at_least "$1" "$2"; then
    local name=${1#^} m
    name=${name%%\\*}
    m=$(metrics | grep -E "^$name" || true)
    fail "/metrics: expected a sample matching $1 with a value >= $2, saw: $(oneline "${m:-<none>}")"
  fi
}

# scenario N TITLE FUNCTION: run one scenario, print PASS/FAIL with its duration.
scenario() {
  local n=$1 title=$2 fn=$3 t0 took
  t0=$(now_us)
  why="" note=""
  if "$fn" && [[ -z $why ]]; then
    took=$(secs_since "$t0")
    echo "PASS scenario $n: $title [${took}s]${note:+ ($note)}"
    passed=$((passed + 1))
  else
    took=$(secs_since "$t0")
    if [[ -z $fg_pid ]] || ! kill -0 "$fg_pid" 2>/dev/null; then
      why="${why:+$why; }fipsgate is not running"
    fi
    echo "FAIL scenario $n: $title [${took}s] (${why:-failed without detail})"
    failed=$((failed + 1))
  fi
}

# make_ns NAME [KEY=VALUE...]: a namespace created with its labels in one request (so the
# namespace watch never sees it unlabelled), including kubernetes.io/metadata.name, which v1.20
# does not set but deploy/'s namespaceSelector relies on.
make_ns() {
  local ns=$1 l
  shift
  {
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n' "$ns"
    for l in "kubernetes.io/metadata.name=$ns" "$@"; do
      printf '    %s: "%s"\n' "${l%%=*}" "${l#*=}"
    done
  } | k create -f - >/dev/null
}
ns_ready() { # pods need the default ServiceAccount's token secret
  [[ -n $(k -n "$1" get serviceaccount default -o jsonpath='{.secrets[0].name}' 2>/dev/null) ]]
}

# --- fipsgate -----------------------------------------------------------------------------------
fipsgate_ready() { curl -sf --max-time 2 "http://127.0.0.1:$admin_port/readyz" >/dev/null; }

# fipsgate_start [ARGS...]: start `fipsgate serve` (extra ARGS appended), wait for /readyz.
fipsgate_start() {
  local attempt deadline
  for attempt in 1 2 3; do
    printf -- '--- fipsgate serve %s (attempt %s, %s)\n' "$*" "$attempt" "$(date -u +%FT%TZ)" \
      >>"$work/fipsgate.log"
    "$bin" serve \
      --listen "127.0.0.1:$webhook_port" \
      --admin-listen "127.0.0.1:$admin_port" \
      --tls-cert "$work/tls/tls.crt" \
      --tls-key "$work/tls/tls.key" \
      --config "$work/config.yaml" \
      --cert-reload-interval 1s \
      --shutdown-delay 0s \
      --drain-timeout 5s \
      --log-format json \
      "$@" </dev/null >>"$work/fipsgate.log" 2>&1 &
    fg_pid=$!
    echo "$fg_pid" >"$work/fipsgate.pid"
    deadline=$((SECONDS + 30))
    until fipsgate_ready; do
      if ! kill -0 "$fg_pid" 2>/dev/null; then
        wait "$fg_pid" 2>/dev/null || true
        fg_pid=""
        break
      fi
      if ((SECONDS >= deadline)); then
        log "fipsgate not ready after 30s; tail of $work/fipsgate.log:"
        tail -n 20 "$work/fipsgate.log" >&2
        return 1
      fi
      sleep 0.2
    done
    [[ -n $fg_pid ]] && return 0
    log "fipsgate exited at start-up (attempt $attempt); tail of $work/fipsgate.log:"
    tail -n 5 "$work/fipsgate.log" >&2
    sleep 1 # e.g. the port of the previous instance not released yet
  done
  return 1
}

# The webhook answers for namespace NS: a server-side dry run of nginx is denied.
webhook_denies() {
  try k -n "$1" run e2e-probe --image=nginx --dry-run=server
  ((rc != 0)) && [[ $out == *"$DENIED"* ]]
}

webhook_admits() {
  try k -n "$1" run e2e-probe --image=nginx --dry-run=server
  ((rc == 0))
}

# --- setup --------------------------------------------------------------------------------------
log "workdir $work${sabotage:+ (SABOTAGE: $sabotage)}"
cluster_up "$work" || abort "cluster_up failed (logs in $work)"

webhook_port=$(_cluster_free_port) || abort "no free port"
admin_port=$(_cluster_free_port "$webhook_port") || abort "no free port"

ca_bundle=$("$bin" certs --out "$work/tls" --host 127.0.0.1 2>>"$work/certs.log") ||
  abort "fipsgate certs failed: $(cat "$work/certs.log")"
[[ -s $work/tls/tls.crt && -s $work/tls/tls.key && -n $ca_bundle ]] ||
  abort "fipsgate certs wrote no certificate or printed no caBundle"

# Test namespaces and their labels.
namespaces=(
  "e2e-defaults"
  "e2e-enforce fipsgate.io/enforce=strict"
  "e2e-warn fipsgate.io/enforce=off fipsgate.io/warn=strict fipsgate.io/audit=off"
  "e2e-audit fipsgate.io/enforce=off fipsgate.io/warn=off fipsgate.io/audit=strict"
  "e2e-exempt fipsgate.io/enforce=strict"
  "e2e-bogus fipsgate.io/enforce=bogus"
  "e2e-dryrun fipsgate.io/enforce=strict"
  "e2e-rotate fipsgate.io/enforce=strict"
  "e2e-relabel fipsgate.io/enforce=off fipsgate.io/warn=off fipsgate.io/audit=off"
)
ns_names=()
for spec in "${namespaces[@]}"; do
  ns_names+=("${spec%% *}")
done

exempt_namespaces=e2e-exempt
if [[ $sabotage == allow-all ]]; then
  exempt_namespaces=$(IFS=,; echo "${ns_names[*]}")
  echo "SABOTAGE: fipsgate exempts every test namespace ($exempt_namespaces); scenarios must fail"
fi
cat >"$work/config.yaml" <<EOF
defaults: {enforce: baseline, warn: strict, audit: strict}
certificates: {historical: ignore}
exemptions:
  namespaces: [$exempt_namespaces]
  usernames: [exempt-user]
EOF

# kube-system keeps its exclusion on v1.20 too.
k label namespace kube-system kubernetes.io/metadata.name=kube-system --overwrite >/dev/null ||
  abort "cannot label kube-system"
for spec in "${namespaces[@]}"; do
  # shellcheck disable=SC2086  # "name key=value..."
  make_ns $spec || abort "cannot create namespace ${spec%% *}"
done
for ns in "${ns_names[@]}"; do
  retry 30 ns_ready "$ns" || abort "namespace $ns: no default ServiceAccount token after 30s"
done

t0=$(now_us)
fipsgate_start || abort "fipsgate did not become ready (see $work/fipsgate.log)"
log "fipsgate ready in $(secs_since "$t0")s (webhook 127.0.0.1:$webhook_port, admin 127.0.0.1:$admin_port)"

# Register the webhook from deploy/, with only clientConfig rewritten for this local server.
k create --dry-run=client -o json -f "$root/deploy/base/webhook.yaml" >"$work/webhook.orig.json" ||
  abort "cannot read deploy/base/webhook.yaml"
jq --arg url "https://127.0.0.1:$webhook_port/validate" --arg ca "$ca_bundle" '
  def rewrite: .webhooks |= map(.clientConfig = {url: $url, caBundle: $ca});
  if .kind == "List" then .items |= map(rewrite) else rewrite end' \
  "$work/webhook.orig.json" >"$work/webhook.json" || abort "cannot rewrite clientConfig"
k create -f "$work/webhook.json" >/dev/null || abort "cannot register the webhook"
t0=$(now_us)
if [[ $sabotage == allow-all ]]; then
  sleep 2 # nothing is ever denied: just give the API server time to load the configuration
elif ! retry 30 webhook_denies e2e-enforce; then
  abort "the webhook never denied nginx in e2e-enforce within 30s; last: $(oneline "$out")"
fi
log "webhook active in $(secs_since "$t0")s"

# --- scenarios ----------------------------------------------------------------------------------
s1_defaults() {
  local ns=e2e-defaults
  try k -n $ns run s1-nginx --image=nginx
  expect_denied "nginx in a namespace without labels" || return
  expect_out "denial" "Pod \"s1-nginx\" violates the baseline FIPS policy of namespace \"$ns\" (1 of 1 container): container \"s1-nginx\" (nginx) is not a FIPS-compliant component" || return
  expect_no_pod $ns s1-nginx || return
  try k -n $ns run s1-fips --image=$FIPS_API
  expect_ok "catalogue image $FIPS_API" || return
  expect_no_out "catalogue image under warn=strict" "Warning:" || return
  expect_pod $ns s1-fips || return
  expect_audit $ns s1-fips policy "enforce=baseline,warn=strict,audit=strict" || return
  expect_audit $ns s1-fips decision "allow"
}

s2_enforce() {
  local ns=e2e-enforce
  try k -n $ns run s2-nginx --image=nginx
  expect_denied "nginx under enforce=strict" || return
  expect_out "denial" "Pod \"s2-nginx\" violates the strict FIPS policy of namespace \"$ns\" (1 of 1 container): container \"s2-nginx\" (nginx) is not a FIPS-compliant component" || return
  expect_no_pod $ns s2-nginx || return
  try k -n $ns run s2-fips --image=$FIPS_DNS
  expect_ok "catalogue image $FIPS_DNS under enforce=strict" || return
  expect_no_out "catalogue image" "Warning:" || return
  expect_pod $ns s2-fips
}

s3_warn() {
  local ns=e2e-warn
  try k -n $ns run s3-nginx --image=nginx
  expect_ok "nginx under enforce=off,warn=strict" || return
  expect_out "kubectl warning" 'Warning: [strict] container "s3-nginx" (nginx): is not a FIPS-compliant component' || return
  expect_pod $ns s3-nginx
}

s4_audit() {
  local ns=e2e-audit
  try k -n $ns run s4-nginx --image=nginx
  expect_ok "nginx under enforce=off,warn=off,audit=strict" || return
  expect_no_out "warn=off" "Warning:" || return
  expect_audit $ns s4-nginx violations 'container "s4-nginx" nginx: is not a FIPS-compliant component' || return
  expect_audit $ns s4-nginx decision allow || return
  expect_audit $ns s4-nginx policy "enforce=off,warn=off,audit=strict"
}

s5_dry_run() {
  local ns=e2e-enforce
  try k -n $ns run s5-nginx --image=nginx --dry-run=server
  expect_denied "kubectl run --dry-run=server nginx under enforce=strict" || return
  expect_out "dry-run denial" "Pod \"s5-nginx\" violates the strict FIPS policy of namespace \"$ns\"" || return
  expect_no_pod $ns s5-nginx || return
  try k -n $ns run s5-fips --image=$FIPS_API --dry-run=server
  expect_ok "kubectl run --dry-run=server of a catalogue image" || return
  expect_out "dry-run create" "pod/s5-fips created (server dry run)" || return
  expect_no_pod $ns s5-fips
}

s6_set_image() {
  local ns=e2e-enforce image
  try k -n $ns run s6 --image=$FIPS_API
  expect_ok "catalogue image" || return
  try k -n $ns set image pod/s6 s6=nginx
  expect_denied "kubectl set image pod/s6 s6=nginx" || return
  expect_out "update denial" 'container "s6" (nginx) is not a FIPS-compliant component' || return
  image=$(k -n $ns get pod s6 -o jsonpath='{.spec.containers[0].image}')
  [[ $image == "$FIPS_API" ]] || fail "pod s6 image: expected $FIPS_API after the denied update, saw '$image'"
}

# FailedCreate events of the ReplicaSets owned by Deployment s7 that carry fipsgate's denial.
s7_events() {
  k -n e2e-enforce get events --field-selector involvedObject.kind=ReplicaSet,reason=FailedCreate -o json |
    jq -e --arg d "$DENIED" '
      any(.items[]; (.involvedObject.name | startswith("s7-"))
        and (.message | contains($d) and contains("violates the strict FIPS policy")
          and contains("(nginx) is not a FIPS-compliant component")))' >/dev/null
}
s7_deployment() {
  local ns=e2e-enforce t0 n msgs
  try k -n $ns create deployment s7 --image=nginx
  expect_ok "kubectl create deployment s7 --image=nginx (only pods are checked)" || return
  t0=$(now_us)
  if ! retry 30 s7_events; then
    msgs=$(k -n $ns get events -o jsonpath='{range .items[*]}{.involvedObject.kind}/{.involvedObject.name} {.reason}: {.message}{"\n"}{end}' 2>&1 || true)
    fail "expected a FailedCreate event on ReplicaSet s7-* with fipsgate's denial within 30s, saw events: $(oneline "$msgs")"
    return
  fi
  note="event after $(secs_since "$t0")s"
  n=$(k -n $ns get pods -l app=s7 -o name | wc -l)
  ((n == 0)) || fail "expected no pods of Deployment s7, saw $n" || return
  # Stop the ReplicaSet controller's retries (they would reach the dry-run instance of 10).
  k -n $ns delete deployment s7 --wait=false >/dev/null || true
}

s8_exemptions() {
  try k -n e2e-exempt run s8-ns --image=nginx
  expect_ok "nginx in exempt namespace e2e-exempt (enforce=strict)" || return
  expect_no_out "exempt namespace" "Warning:" || return
  expect_audit e2e-exempt s8-ns exempt namespace || return
  expect_audit e2e-exempt s8-ns decision allow || return
  try k --kubeconfig "$FIPSGATE_KUBECONFIG_EXEMPT" -n e2e-enforce run s8-user --image=nginx
  expect_ok "nginx by exempt-user in e2e-enforce" || return
  expect_audit e2e-enforce s8-user exempt user || return
  expect_metric '^fipsgate_exemptions_total\{kind="namespace"\}' 1 || return
  expect_metric '^fipsgate_exemptions_total\{kind="user"\}' 1
}

s9_invalid_label() {
  local ns=e2e-bogus
  local err='invalid value "bogus" for label fipsgate.io/enforce: evaluated as strict'
  try k -n $ns run s9-nginx --image=nginx
  expect_denied "nginx under fipsgate.io/enforce=bogus" || return
  expect_out "denial" "violates the strict FIPS policy of namespace \"$ns\"" || return
  expect_out "kubectl warning with the denial" "Warning: $err" || return
  expect_audit $ns s9-nginx error "$err" || return
  try k -n $ns run s9-fips --image=$FIPS_DNS
  expect_ok "catalogue image under fipsgate.io/enforce=bogus" || return
  expect_out "kubectl warning" "Warning: $err" || return
  expect_audit $ns s9-fips error "$err"
}

s10_dry_run_checks() {
  local ns=e2e-dryrun
  try k -n $ns run s10-nginx --image=nginx
  expect_ok "nginx under enforce=strict with fipsgate --dry-run" || return
  expect_out "kubectl warning" "Warning: [dry-run] would deny under enforce=strict: container \"s10-nginx\" (nginx) is not a FIPS-compliant component" || return
  expect_pod $ns s10-nginx || return
  expect_audit $ns s10-nginx decision would-deny || return
  expect_metric '^fipsgate_admission_requests_total\{[^}]*decision="would_deny",mode="dry_run"\}' 1
}
s10_dry_run_mode() {
  local ok=1 dry_why
  fipsgate_stop
  if fipsgate_start --dry-run; then
    s10_dry_run_checks && [[ -z $why ]] && ok=0
  else
    fail "fipsgate --dry-run did not become ready"
  fi
  dry_why=$why
  # Back to enforcing, whatever happened: the later scenarios need it.
  fipsgate_stop
  fipsgate_start || {
    fail "fipsgate did not become ready again after the dry-run instance${dry_why:+; $dry_why}"
    return
  }
  ((ok == 0)) || {
    why=$dry_why
    return 1
  }
  try k -n e2e-dryrun run s10-after --image=nginx
  expect_denied "nginx after restarting fipsgate without --dry-run" || return
  note="two restarts included"
}

served_fingerprint() {
  openssl s_client -connect "127.0.0.1:$webhook_port" -noservername </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
serves() { [[ $(served_fingerprint) == "$1" ]]; }
s11_progress() { (($(wc -l <"$work/s11.results") >= $1)); }
file_fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$work/tls/tls.crt"; }
s11_rotation() {
  local ns=e2e-rotate before after on_disk bundle i n bad reloads
  before=$(served_fingerprint)
  [[ -n $before ]] || {
    fail "cannot read the served certificate before the rotation"
    return
  }
  : >"$work/s11.results"
  (
    for ((i = 1; i <= 40; i++)); do
      r=0
      o=$(k -n "$ns" run "s11-$i" --image="$FIPS_DNS" 2>&1) || r=$?
      printf '%s %s %s\n' "$i" "$r" "${o//$'\n'/ | }" >>"$work/s11.results"
      sleep 0.1
    done
  ) &
  loop_pid=$!
  # Rotate once about a quarter of the creates are done.
  retry 20 s11_progress 10 || true
  bundle=$("$bin" certs --out "$work/tls" --host 127.0.0.1 --renew 2>>"$work/certs.log") || {
    fail "fipsgate certs --renew failed: $(tail -n 3 "$work/certs.log")"
    return
  }
  on_disk=$(file_fingerprint)
  local deadline=$((SECONDS + 60))
  while kill -0 "$loop_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  wait "$loop_pid" 2>/dev/null || true
  loop_pid=""
  n=$(wc -l <"$work/s11.results")
  bad=$(awk '$2 != 0' "$work/s11.results")
  [[ -z $bad ]] || {
    fail "expected every create to be admitted during the rotation, saw failures: $(oneline "$bad")"
    return
  }
  ((n == 40)) || {
    fail "expected 40 creates, saw $n"
    return
  }
  [[ $bundle == "$ca_bundle" ]] ||
    fail "fipsgate certs --renew printed a different caBundle (CA not reused)" || return
  retry 10 grep -F "serving certificate reloaded" "$work/fipsgate.log" >/dev/null ||
    fail "expected 'serving certificate reloaded' in fipsgate's log" || return
  retry 10 serves "$on_disk" || true
  after=$(served_fingerprint)
  [[ $after == "$on_disk" && $after != "$before" ]] ||
    fail "expected the webhook to serve the renewed certificate ($on_disk), saw $after (before: $before)" || return
  reloads=$(grep -cF "serving certificate reloaded" "$work/fipsgate.log" || true)
  note="40/40 admitted, $reloads reload(s)"
}

s12_relabel() {
  local ns=e2e-relabel t0 t_on t_off
  try k -n $ns run s12-before --image=nginx
  expect_ok "nginx under enforce=off" || return
  t0=$(now_us)
  try k label namespace $ns fipsgate.io/enforce=strict --overwrite
  expect_ok "kubectl label ns $ns fipsgate.io/enforce=strict --overwrite" || return
  retry 15 webhook_denies $ns || {
    fail "expected nginx to be denied within 15s of labelling enforce=strict, last: $(oneline "$out")"
    return
  }
  t_on=$(secs_since "$t0")
  t0=$(now_us)
  try k label namespace $ns fipsgate.io/enforce=off --overwrite
  expect_ok "kubectl label ns $ns fipsgate.io/enforce=off --overwrite" || return
  retry 15 webhook_admits $ns || {
    fail "expected nginx to be admitted within 15s of labelling enforce=off, last: $(oneline "$out")"
    return
  }
  t_off=$(secs_since "$t0")
  note="enforce=strict effective after ${t_on}s, enforce=off after ${t_off}s"
}

# put_ephemeral NS POD NAME IMAGE: add an ephemeral container through the v1.20
# pods/ephemeralcontainers subresource (an EphemeralContainers object; kubectl debug of today's
# clients only speaks the v1.22+ Pod form).
put_ephemeral() {
  local cur
  cur=$(k get --raw "/api/v1/namespaces/$1/pods/$2/ephemeralcontainers") || return 1
  jq --arg n "$3" --arg i "$4" \
    '.ephemeralContainers += [{name: $n, image: $i, imagePullPolicy: "IfNotPresent",
      terminationMessagePolicy: "File"}]' <<<"$cur" >"$work/ephemeral.json" || return 1
  k replace --raw "/api/v1/namespaces/$1/pods/$2/ephemeralcontainers" -f "$work/ephemeral.json"
}
s13_ephemeral() {
  local ns=e2e-enforce names
  try k -n $ns run s13 --image=$FIPS_DNS
  expect_ok "catalogue image" || return
  try put_ephemeral $ns s13 debugger busybox:1.36
  expect_denied "ephemeral container busybox:1.36 under enforce=strict" || return
  expect_out "denial" 'ephemeral container "debugger" (busybox:1.36) is not a FIPS-compliant component' || return
  try put_ephemeral $ns s13 fips-debugger $FIPS_DNS
  expect_ok "ephemeral container with a catalogue image" || return
  names=$(k -n $ns get pod s13 -o jsonpath='{.spec.ephemeralContainers[*].name}')
  [[ $names == fips-debugger ]] || fail "pod s13 ephemeral containers: expected 'fips-debugger', saw '$names'"
}

s14_metrics() {
  expect_metric '^fipsgate_admission_requests_total\{operation="CREATE",decision="deny",mode="enforce"\}' 1 || return
  expect_metric '^fipsgate_violations_total\{mode="enforce",level="strict"\}' 1
}

scenario 1 "namespace without labels gets the configured defaults (nginx denied, catalogue image admitted)" s1_defaults
scenario 2 "fipsgate.io/enforce=strict denies nginx naming container and image; catalogue image admitted" s2_enforce
scenario 3 "fipsgate.io/warn=strict (enforce=off): pod created, kubectl prints Warning: [strict]" s3_warn
scenario 4 "fipsgate.io/audit=strict (enforce=off, warn=off): audit log carries violations and decision" s4_audit
scenario 5 "kubectl run --dry-run=server: same verdict, nothing created" s5_dry_run
scenario 6 "kubectl set image to nginx on an admitted pod is denied" s6_set_image
scenario 7 "Deployment with nginx: ReplicaSet FailedCreate events carry fipsgate's message" s7_deployment
scenario 8 "exempt namespace and exempt user admitted, exemption audited and counted" s8_exemptions
scenario 9 "invalid label fipsgate.io/enforce=bogus evaluated as strict, with warning and error annotation" s9_invalid_label
scenario 10 "fipsgate --dry-run denies nothing and warns [dry-run]; enforcing again after restart" s10_dry_run_mode
scenario 11 "certificate renewed on disk during 40 creates: none fails, new certificate served" s11_rotation
scenario 12 "namespace label change takes effect without restarting fipsgate" s12_relabel
scenario 13 "pods/ephemeralcontainers: busybox debug container denied, catalogue image admitted" s13_ephemeral
scenario 14 "/metrics counts denials" s14_metrics

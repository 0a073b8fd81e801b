#!/usr/bin/env bash
# End-to-end suite: fipsgate serving a real kube-apiserver (v1.20.2 from lib/install.sh),
# registered from the rendered deploy/overlays/self-signed (certificates from `fipsgate certs`
# in a copy of deploy/; only each webhook's clientConfig is pointed at the local server),
# checked the way a user sees it: kubectl output and exit codes, the API server's audit log,
# fipsgate's log and /metrics, `fipsgate audit`, `fipsgate doctor`; every overlay's rendered
# objects are also checked against the API server with a server-side dry run.
#
# Usage: bash tests/e2e/run.sh   (root; exit 0 iff every scenario passed)
# Environment:
#   FIPSGATE_BIN=PATH                 use this fipsgate binary (default: cargo build --release)
#   FIPSGATE_E2E_SABOTAGE=allow-all   start fipsgate with a config exempting every test
#                                     namespace: a broken webhook that the suite must catch
#   FIPSGATE_E2E_KEEP=1               keep the workdir even when everything passed
# Output: one `PASS scenario N: ...` / `FAIL scenario N: ... (expected vs seen)` line per
# scenario, then `e2e: N passed, M failed`. On failure the workdir (fipsgate.log, apiserver and
# controller-manager logs, audit.log, render/ with the rendered overlays) is kept and its path
# printed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
suite_t0=${EPOCHREALTIME/./}

log() { printf '[e2e] %s\n' "$*" >&2; }

FIPS_API=us-docker.pkg.dev/palette-images-fips/k8s/kube-apiserver:v1.30.4
FIPS_DNS=gcr.io/spectro-images-fips/coredns:v1.12.1
LONGHORN_FIPS=us-docker.pkg.dev/palette-images-fips/packs/csi-longhorn/1.5.3/longhorn-manager:v1.5.3
SCENARIOS=27
# Pods are judged by pods.fipsgate.io (namespaces that opted into enforcement, fail closed) or
# pods-default.fipsgate.io (the rest, fail open); both deny with this.
DENIED='.fipsgate.io" denied the request'
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
  [[ -n ${reg_pid:-} ]] && kill -TERM "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
  [[ -n ${svc_pid:-} ]] && svc_stop
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

# try_split CMD...: like try, but $out holds stdout only and $err stderr (for parsed output).
try_split() {
  rc=0
  out=$("$@" 2>"$work/stderr") || rc=$?
  err=$(cat "$work/stderr")
}

# Multi-document YAML as `kubectl kustomize` writes it (documents separated by `---`, top-level
# keys at column 0, so `kind:` at column 0 is the document's kind).
# yaml_docs keep|drop KIND_REGEX: the documents whose kind does (keep) / does not (drop) match.
yaml_docs() {
  awk -v mode="$1" -v re="^($2)\$" '
    function flush() {
      if (doc != "" && ((kind ~ re) == (mode == "keep"))) printf "---\n%s", doc
      doc = ""
      kind = ""
    }
    /^---$/ { flush(); next }
    /^kind: / { kind = substr($0, 7) }
    { doc = doc $0 "\n" }
    END { flush() }'
}
# yaml_kinds: "apiVersion kind" of each document, one a line.
yaml_kinds() {
  awk '/^---$/ { if (k != "") print v, k; v = k = ""; next }
    /^apiVersion: / { v = substr($0, 13) } /^kind: / { k = substr($0, 7) }
    END { if (k != "") print v, k }'
}
# yaml_set_api_version KIND FROM TO: rewrite `apiVersion: FROM` to TO in the documents of KIND.
yaml_set_api_version() {
  awk -v k="$1" -v from="apiVersion: $2" -v to="apiVersion: $3" '
    function flush(i) {
      for (i = 1; i <= n; i++) print (kind == k && lines[i] == from) ? to : lines[i]
      n = 0
      kind = ""
    }
    /^---$/ { flush(); print; next }
    /^kind: / { kind = substr($0, 7) }
    { lines[++n] = $0 }
    END { flush() }'
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
  ((rc != 0)) || fail "$1: expected a denial by fipsgate's pod webhook, but it succeeded: $(oneline "$out")"
  [[ $out == *'admission webhook "pods'*"$DENIED"* ]] ||
    fail "$1: expected a denial by fipsgate's pod webhook, saw exit $rc: $(oneline "$out")"
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
# audit_has NS NAME KEY SUBSTRING: that create carries KEY, under the prefix of either pod
# webhook (pods.fipsgate.io/ or pods-default.fipsgate.io/), containing SUBSTRING.
audit_has() {
  local a
  a=$(audit_annotations "$1" "$2") || return 1
  [[ -n $a ]] || return 1
  jq -e --arg k "pods.fipsgate.io/$3" --arg d "pods-default.fipsgate.io/$3" --arg v "$4" \
    '(.[$k] // .[$d] // "") | contains($v)' <<<"$a" >/dev/null
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
# Ready, or with fg_ready=healthz only alive (an instance whose namespace watch cannot sync).
fipsgate_ready() { curl -sf --max-time 2 "http://127.0.0.1:$admin_port/${fg_ready:-readyz}" >/dev/null; }

# fipsgate_start [ARGS...]: start `fipsgate serve` (extra ARGS appended), wait for /readyz.
fipsgate_start() {
  local attempt deadline
  for attempt in 1 2 3; do
    printf -- '--- fipsgate serve %s (attempt %s, %s)\n' "$*" "$attempt" "$(date -u +%FT%TZ)" \
      >>"$work/fipsgate.log"
    "$bin" serve \
      --listen "127.0.0.1:$webhook_port" \
      --admin-listen "127.0.0.1:$admin_port" \
      --tls-cert "$tls_dir/tls.crt" \
      --tls-key "$tls_dir/tls.key" \
      --config "$work/config.yaml" \
      --cert-reload-interval 1s \
      --shutdown-delay 0s \
      --drain-timeout 5s \
      --log-format json \
      --client-ca "$tls_dir/ca.crt" \
      --client-name kube-apiserver \
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

webhook_port=$(_cluster_free_port) || abort "no free port"
admin_port=$(_cluster_free_port "$webhook_port") || abort "no free port"

# The self-signed overlay as its README says, in a copy of deploy/ (never a developer's certs/):
# `fipsgate certs --out overlays/self-signed/certs --client-name kube-apiserver`, then `kubectl
# kustomize`. fipsgate serves that tls.crt/tls.key, requires the API server's client
# certificate (--client-ca ca.crt --client-name kube-apiserver), and the webhook is registered
# with the rendered caBundle. The API server gets its client certificate through the generated
# AdmissionConfiguration and kubeconfig, whose user is renamed from the Service's DNS name to
# this local server's host:port (how the API server picks credentials for a URL webhook).
deploy_copy=$work/deploy
cp -R "$root/deploy" "$deploy_copy" || abort "cannot copy deploy/"
rm -rf "$deploy_copy/overlays/self-signed/certs"
# The locked-down overlay's one cluster-specific value: where the API server connects from.
echo "API_SERVER_CIDR=127.0.0.1/32" >"$deploy_copy/overlays/locked-down/apiserver.env"
tls_dir=$deploy_copy/overlays/self-signed/certs
mkdir -p "$work/render"
printed_bundle=$("$bin" certs --out "$tls_dir" --host 127.0.0.1 --client-name kube-apiserver \
  2>>"$work/certs.log") || abort "fipsgate certs failed: $(cat "$work/certs.log")"
[[ -s $tls_dir/tls.crt && -s $tls_dir/tls.key && -n $printed_bundle ]] ||
  abort "fipsgate certs wrote no certificate or printed no caBundle"
[[ -s $tls_dir/client.crt && -s $tls_dir/admission-configuration.yaml ]] ||
  abort "fipsgate certs --client-name wrote no client certificate or AdmissionConfiguration"
sed "s|name: fipsgate.fipsgate-system.svc$|name: 127.0.0.1:$webhook_port|" \
  "$tls_dir/apiserver-kubeconfig.yaml" >"$work/apiserver-kubeconfig.yaml" || abort "kubeconfig"
grep -qF "name: 127.0.0.1:$webhook_port" "$work/apiserver-kubeconfig.yaml" ||
  abort "the generated kubeconfig has no user named after the Service"
sed "s|kubeConfigFile: .*|kubeConfigFile: $work/apiserver-kubeconfig.yaml|" \
  "$tls_dir/admission-configuration.yaml" >"$work/admission-configuration.yaml" ||
  abort "admission configuration"
# audit-only brings its own certificates (the same ones here); a user's overlay installs into
# another namespace.
rm -rf "$deploy_copy/overlays/audit-only/certs"
cp -R "$tls_dir" "$deploy_copy/overlays/audit-only/certs" || abort "cannot copy the certificates"
mkdir -p "$deploy_copy/overlays/user-security"
printf 'namespace: security\nresources: [../cert-manager]\n' >"$deploy_copy/overlays/user-security/kustomization.yaml"
kubectl kustomize "$deploy_copy/overlays/self-signed" >"$work/render/self-signed.yaml" 2>"$work/render/self-signed.err" ||
  abort "kubectl kustomize deploy/overlays/self-signed failed: $(oneline "$(cat "$work/render/self-signed.err")")"

CLUSTER_ADMISSION_CONFIG=$work/admission-configuration.yaml \
  CLUSTER_RESERVED_PORTS="$webhook_port $admin_port" cluster_up "$work" ||
  abort "cluster_up failed (logs in $work)"

# Test namespaces and their labels.
namespaces=(
  "e2e-defaults"
  "e2e-enforce fipsgate.io/enforce=strict"
  "e2e-warn fipsgate.io/enforce=off fipsgate.io/warn=strict fipsgate.io/audit=off"
  "e2e-audit fipsgate.io/enforce=off fipsgate.io/warn=off fipsgate.io/audit=strict"
  "e2e-exempt fipsgate.io/enforce=strict"
  "e2e-expired fipsgate.io/enforce=strict"
  "e2e-bogus fipsgate.io/enforce=bogus"
  "e2e-dryrun fipsgate.io/enforce=strict fipsgate.io/warn=strict"
  "e2e-rotate fipsgate.io/enforce=strict"
  "e2e-relabel fipsgate.io/enforce=off fipsgate.io/warn=off fipsgate.io/audit=off"
  "e2e-inventory fipsgate.io/enforce=off fipsgate.io/warn=strict"
  "e2e-workloads fipsgate.io/enforce=strict"
  "e2e-tighten fipsgate.io/enforce=off fipsgate.io/warn=off"
  "e2e-down fipsgate.io/enforce=off fipsgate.io/warn=off"
  "e2e-binding fipsgate.io/enforce=strict"
  "e2e-nsfail fipsgate.io/enforce=off fipsgate.io/warn=off fipsgate.io/audit=off"
  "e2e-scan fipsgate.io/enforce=strict"
  "e2e-scan-baseline fipsgate.io/enforce=baseline fipsgate.io/warn=off"
  "e2e-scan-audit fipsgate.io/enforce=off fipsgate.io/warn=off fipsgate.io/audit=off"
)
ns_names=()
for spec in "${namespaces[@]}"; do
  ns_names+=("${spec%% *}")
done

exempt_namespaces=""
if [[ $sabotage == allow-all ]]; then
  exempt_namespaces=$(IFS=,; echo "${ns_names[*]}")
  echo "SABOTAGE: fipsgate exempts every test namespace ($exempt_namespaces); scenarios must fail"
fi
cat >"$work/config.yaml" <<EOF
defaults: {enforce: baseline, warn: strict, audit: strict}
certificates: {historical: ignore}
exemptions:
  namespaces:
    - {name: e2e-exempt, reason: "e2e: an exemption in force", ticket: POAM-0001, expires: 2099-12-31}
    - {name: e2e-expired, reason: "e2e: a plan of action past its date", ticket: POAM-0042, expires: 2020-01-31}
$(for ns in ${exempt_namespaces//,/ }; do echo "    - $ns"; done)
  usernames: [exempt-user]
  images:
    - {image: registry.example/e2e/exempt-tool, reason: "e2e: a tool under review", ticket: POAM-0100, expires: 2099-06-30}
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

# Register the rendered ValidatingWebhookConfiguration with only each webhook's clientConfig
# rewritten for this local server: {url, the rendered caBundle}; rules, failurePolicy,
# selectors and timeouts as rendered. `kubectl apply` (not create), so that scenario 15's dry-run
# apply of the rendered original computes its patch from a last-applied configuration.
yaml_docs keep ValidatingWebhookConfiguration <"$work/render/self-signed.yaml" |
  k create --dry-run=client -o json -f - >"$work/webhook.rendered.json" ||
  abort "no ValidatingWebhookConfiguration in the rendered self-signed overlay"
ca_bundle=$(jq -r '[.webhooks[].clientConfig.caBundle] | unique |
  if length == 1 and .[0] != null then .[0] else error("caBundles: \(.)") end' \
  "$work/webhook.rendered.json") || abort "the rendered webhooks do not share one caBundle"
# kustomize wraps the Secret's base64 (and so the caBundle copied from it) at 70 columns; the API
# server's base64 decoding skips the line breaks. Registered as rendered, compared without them.
ca_bundle=${ca_bundle//$'\n'/}
[[ $ca_bundle == "$printed_bundle" ]] ||
  abort "the rendered caBundle is not the one \`fipsgate certs\` printed"
jq --arg url "https://127.0.0.1:$webhook_port/validate" '
  .webhooks |= map(.clientConfig = {url: $url, caBundle: .clientConfig.caBundle})' \
  "$work/webhook.rendered.json" >"$work/webhook.json" || abort "cannot rewrite clientConfig"
log "registering $(jq -r '[.webhooks[] | "\(.name) (\(.failurePolicy))"] | join(", ")' "$work/webhook.json")"
k apply -f "$work/webhook.json" >/dev/null || abort "cannot register the webhook"
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
  expect_out "kubectl warning" 'Warning: fipsgate: [strict] container "s3-nginx" (nginx): is not a FIPS-compliant component' || return
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
  expect_metric '^fipsgate_exemptions_total\{kind="user"\}' 1 || return
  s8_expired
}

# An exemption past its last day exempts nothing, and every answer says so; the metric gives
# each time-boxed exemption's end (2020-02-01T00:00Z); audit lists it expired, with its ticket.
s8_expired() {
  local got
  try k -n e2e-expired run s8-expired --image=nginx
  expect_denied "nginx in e2e-expired, whose exemption ended on 2020-01-31" || return
  expect_out "the denial says it expired" 'the exemption of namespace "e2e-expired" (POAM-0042) expired on 2020-01-31' || return
  expect_metric '^fipsgate_exemption_expiry_timestamp_seconds\{kind="namespace",name="e2e-expired"\}' 1580515200 || return
  expect_metric '^fipsgate_exemption_expiry_timestamp_seconds\{kind="namespace",name="e2e-exempt"\}' 4102444800 || return
  # A Deployment is admitted with warnings: audit judges it as if never exempt.
  try k -n e2e-expired create deployment s8-expired --image=nginx
  expect_ok "a Deployment in e2e-expired (workloads are warned about, not denied)" || return
  try_split timeout 60 "$bin" audit -n e2e-expired --workloads --config "$work/config.yaml" -o json
  got=$(jq -c '[.exemptions[] | select(.kind == "namespace" and .ticket != null) | {name, state, daysLeft}]' <<<"$out" 2>/dev/null)
  [[ $got == '[{"name":"e2e-exempt","state":"active","daysLeft":'*'},{"name":"e2e-expired","state":"expired","daysLeft":0}]' ]] ||
    fail "audit: expected e2e-exempt active and e2e-expired expired, saw $got: $(oneline "$err")" || return
  got=$(jq -c '.namespaces["e2e-expired"] | {exempt, wouldDeny}' <<<"$out" 2>/dev/null)
  [[ $got == '{"exempt":0,"wouldDeny":1}' ]] ||
    fail "audit: expected the Deployment in e2e-expired judged (exempt 0, wouldDeny 1), saw $got" || return
  note="an expired exemption denies with its ticket and date; metric and audit list it"
}

s9_invalid_label() {
  local ns=e2e-bogus
  local err='invalid value "bogus" for label fipsgate.io/enforce: evaluated as strict'
  try k -n $ns run s9-nginx --image=nginx
  expect_denied "nginx under fipsgate.io/enforce=bogus" || return
  expect_out "denial" "violates the strict FIPS policy of namespace \"$ns\"" || return
  expect_out "kubectl warning with the denial" "Warning: fipsgate: $err" || return
  expect_audit $ns s9-nginx error "$err" || return
  try k -n $ns run s9-fips --image=$FIPS_DNS
  expect_ok "catalogue image under fipsgate.io/enforce=bogus" || return
  expect_out "kubectl warning" "Warning: fipsgate: $err" || return
  expect_audit $ns s9-fips error "$err"
}

s10_dry_run_checks() {
  local ns=e2e-dryrun n
  try k -n $ns run s10-nginx --image=nginx
  expect_ok "nginx under enforce=strict with fipsgate --dry-run" || return
  expect_out "kubectl warning" "Warning: fipsgate: [dry-run] would deny under enforce=strict: container \"s10-nginx\" (nginx) is not a FIPS-compliant component" || return
  # warn=strict too: still one warning for the one container, not a [dry-run] and a [strict].
  n=$(grep -c '^Warning: ' <<<"$out" || true)
  ((n == 1)) || fail "expected one warning for the one container, saw $n: $(oneline "$out")" || return
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
file_fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$tls_dir/tls.crt"; }
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
  bundle=$("$bin" certs --out "$tls_dir" --host 127.0.0.1 --renew 2>>"$work/certs.log") || {
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
  expect_metric '^fipsgate_admission_requests_total\{operation="CREATE",kind="Pod",decision="deny",mode="enforce"\}' 1 || return
  expect_metric '^fipsgate_violations_total\{mode="enforce",level="strict"\}' 1
}

# Known gaps of this v1.20 API server, accommodated only when the server does not serve the
# rendered apiVersion: "KIND FROM TO WHY".
accommodations=(
  "PodDisruptionBudget policy/v1 policy/v1beta1 policy/v1 PodDisruptionBudget is served from Kubernetes 1.21"
)
s15_render() { # s15_render OVERLAY -> $work/render/OVERLAY.yaml (base: deploy/base)
  local dir=$deploy_copy/overlays/$1
  [[ $1 == base ]] && dir=$deploy_copy/base
  [[ -s $work/render/$1.yaml ]] && return 0
  kubectl kustomize "$dir" >"$work/render/$1.yaml" 2>"$work/render/$1.err"
}
s15_manifests() {
  local served overlay f n a kind from to reason kinds dry total=0 rewrites=0
  served=$(k api-versions) || fail "kubectl api-versions failed" || return
  # The Namespace for real: a server-side dry run of namespaced objects needs it to exist.
  try k apply -f <(yaml_docs keep Namespace <"$work/render/self-signed.yaml")
  expect_ok "kubectl apply of the rendered Namespace fipsgate-system" || return
  for overlay in base self-signed audit-only cert-manager digest-pinning locked-down user-security; do
    s15_render "$overlay" ||
      fail "kubectl kustomize $overlay failed: $(oneline "$(cat "$work/render/$overlay.err")")" || return
    if [[ $overlay == user-security ]]; then
      try k apply -f <(yaml_docs keep Namespace <"$work/render/$overlay.yaml")
      expect_ok "kubectl apply of the rendered Namespace security" || return
    fi
    f=$work/render/$overlay.dryrun.yaml
    if [[ $overlay == cert-manager || $overlay == digest-pinning || $overlay == user-security ]]; then
      kinds=$(yaml_docs keep 'Issuer|Certificate' <"$work/render/$overlay.yaml" | yaml_kinds |
        awk '{ print $2 }' | sort | uniq -c | awk '{ printf "%s%s %s", s, $1, $2; s = ", " }')
      echo "    s15 $overlay: not applied (cert-manager CRDs, not installed here): $kinds"
      yaml_docs drop 'Issuer|Certificate' <"$work/render/$overlay.yaml" >"$f"
    else
      cp "$work/render/$overlay.yaml" "$f"
    fi
    for a in "${accommodations[@]}"; do
      read -r kind from to reason <<<"$a"
      grep -qxF -- "$from" <<<"$served" && continue
      yaml_kinds <"$f" | grep -qxF -- "$from $kind" || continue
      yaml_set_api_version "$kind" "$from" "$to" <"$f" >"$f.tmp" && mv "$f.tmp" "$f"
      echo "    s15 $overlay: v1.20 accommodation: $kind apiVersion $from -> $to ($reason; this server does not serve $from)"
      rewrites=$((rewrites + 1))
    done
    n=$(yaml_kinds <"$f" | wc -l)
    try k apply --dry-run=server -f "$f"
    expect_ok "kubectl apply --dry-run=server -f <rendered $overlay> ($n objects)" || return
    dry=$(grep -c '(server dry run)$' <<<"$out" || true)
    ((dry == n)) ||
      fail "$overlay: expected $n objects in the server dry run, kubectl reported $dry: $(oneline "$out")" || return
    echo "    s15 $overlay: $n objects accepted: $(yaml_kinds <"$f" | awk '{ printf "%s%s", s, $2; s = " " }')"
    total=$((total + n))
  done
  # The dry run did not touch the registered configuration.
  n=$(k get validatingwebhookconfiguration fipsgate -o json |
    jq --arg url "https://127.0.0.1:$webhook_port/validate" '[.webhooks[] | select(.clientConfig.url == $url)] | length')
  ((n == 4)) || fail "after the dry run: expected 4 webhooks still calling the local fipsgate, saw $n" || return
  note="$total objects in the base, 5 overlays and one into namespace security, $rewrites apiVersion rewrite(s)"
}

inv_dep_pod() { # the name of the first pod of Deployment inv-busybox
  dep_pod=$(k -n e2e-inventory get pods -l app=inv-busybox -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)
  [[ -n $dep_pod ]]
}
inv_rs() { [[ -n $(k -n e2e-inventory get replicasets -l app=inv-busybox -o name 2>/dev/null) ]]; }
s16_audit() {
  local ns=e2e-inventory dep_pod="" want seen summary args lines
  try k -n $ns run inv-nginx --image=nginx
  expect_ok "nginx under enforce=off,warn=strict" || return
  try k -n $ns run inv-fips --image=$FIPS_API
  expect_ok "catalogue image $FIPS_API" || return
  try k -n $ns create deployment inv-busybox --image=busybox:1.36
  expect_ok "kubectl create deployment inv-busybox --image=busybox:1.36" || return
  retry 30 inv_rs || fail "no ReplicaSet of Deployment inv-busybox after 30s" || return
  retry 30 inv_dep_pod || fail "no pod of Deployment inv-busybox after 30s" || return
  # The suite's configuration (certificates.historical: ignore, exemptions) as the webhook's.
  args=(audit -n "$ns" --workloads --level strict --config "$work/config.yaml")
  try_split timeout 60 "$bin" "${args[@]}" -o json
  ((rc == 1)) || fail "fipsgate ${args[*]} -o json: expected exit 1 (would deny), saw $rc: $(oneline "$err $out")" || return
  want=$(printf '%s\n' "Deployment/inv-busybox" "Pod/$dep_pod" "Pod/inv-nginx" | sort | paste -sd' ')
  seen=$(jq -r '.findings[] | "\(.kind)/\(.name)"' <<<"$out" 2>/dev/null | sort | paste -sd' ') ||
    fail "fipsgate audit -o json: not JSON: $(oneline "$out")" || return
  [[ $seen == "$want" ]] || fail "audit findings: expected {$want}, saw {$seen}" || return
  summary=$(jq -c --arg ns $ns '{namespaces: (.namespaces | keys), s: .namespaces[$ns]}' <<<"$out")
  [[ $summary == '{"namespaces":["'$ns'"],"s":{"levels":{"enforce":"strict","warn":"strict","audit":"strict"},"objects":4,"compliant":1,"partial":0,"nonCompliant":3,"exempt":0,"wouldDeny":3}}' ]] ||
    fail "audit summary: expected only $ns with objects 4 (2 pods + deployment's pod + Deployment; its ReplicaSet not counted), compliant 1, nonCompliant 3, wouldDeny 3, saw $summary" || return
  try_split timeout 60 "$bin" "${args[@]}"
  ((rc == 1)) || fail "fipsgate ${args[*]}: expected exit 1, saw $rc: $(oneline "$err $out")" || return
  echo "    s16 \$ fipsgate ${args[*]//"$work"/\$WORK}"
  mapfile -t lines <<<"$out"
  printf '    s16 | %s\n' "${lines[@]}"
  expect_out "table" "Deployment/inv-busybox" || return
  expect_no_out "table" "ReplicaSet/" || return
  try_split timeout 60 "$bin" "${args[@]}" -o policyreport
  ((rc == 1)) || fail "fipsgate ${args[*]} -o policyreport: expected exit 1, saw $rc: $(oneline "$err $out")" || return
  expect_out "policyreport" "kind: PolicyReport" || return
  expect_out "policyreport" "apiVersion: wgpolicyk8s.io/v1alpha2" || return
  expect_out "policyreport" "namespace: $ns" || return
  s16_namespaced_user "$ns" "$want" || return
  # A namespace's invalid label is in the report, with the level it is evaluated at.
  try_split timeout 60 "$bin" audit -n e2e-bogus --config "$work/config.yaml" -o json
  summary=$(jq -c '.namespaces["e2e-bogus"] | {enforce: .levels.enforce, errors: .labelErrors}' <<<"$out" 2>/dev/null)
  [[ $summary == '{"enforce":"strict","errors":["invalid value \"bogus\" for label fipsgate.io/enforce: evaluated as strict"]}' ]] ||
    fail "audit -n e2e-bogus: expected enforce strict and the label error, saw $summary: $(oneline "$err")" || return
  s16_installed_config || return
  note="findings: $seen; the same as a user who may only read $ns; e2e-bogus's label error reported; the installed configuration used without --config"
}

# Without --config, audit judges with what the installed fipsgate runs with: the ConfigMap its
# Deployment mounts (the shipped defaults.enforce is off; the built-in default is baseline).
s16_installed_config() {
  local enforce
  try_split timeout 60 "$bin" audit -n e2e-defaults -o json
  enforce=$(jq -r '.namespaces["e2e-defaults"].levels.enforce' <<<"$out" 2>/dev/null)
  [[ $enforce == baseline && $err == *"the installed configuration cannot be read"* ]] ||
    fail "audit without --config, nothing installed: expected the built-in defaults (enforce baseline) and a note, saw enforce=$enforce: $(oneline "$err")" || return
  try k apply -f <(yaml_docs keep 'ConfigMap|Deployment' <"$work/render/self-signed.yaml")
  expect_ok "kubectl apply of the rendered ConfigMap and Deployment" || return
  try_split timeout 60 "$bin" audit -n e2e-defaults -o json
  k -n fipsgate-system delete deployment fipsgate --cascade=foreground --timeout=30s >/dev/null 2>&1
  enforce=$(jq -r '.namespaces["e2e-defaults"].levels.enforce' <<<"$out" 2>/dev/null)
  [[ $enforce == off && $err == *"configuration of the installed fipsgate: ConfigMap fipsgate-system/fipsgate-config-"* ]] ||
    fail "audit without --config: expected the installed ConfigMap's defaults (enforce off), saw enforce=$enforce: $(oneline "$err")" || return
}

# s16_namespaced_user NS WANT: `fipsgate audit --kubeconfig -n NS` as a user who may read that
# namespace and its workloads but list no namespace: the same findings, from NS's own labels.
s16_namespaced_user() {
  local ns=$1 want=$2 seen
  k apply -f - >/dev/null <<EOF || fail "cannot grant user nobody read access to $ns" || return
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: s16-reader, namespace: $ns}
rules:
  - apiGroups: ["", apps, batch]
    resources: [pods, replicationcontrollers, deployments, replicasets, statefulsets, daemonsets, jobs, cronjobs]
    verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: s16-reader, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: s16-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: nobody}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: s16-namespace-reader}
rules:
  - apiGroups: [""]
    resources: [namespaces]
    resourceNames: [$ns]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: s16-namespace-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: s16-namespace-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: nobody}]
EOF
  try kubectl --kubeconfig "$FIPSGATE_KUBECONFIG_NOBODY" get namespaces
  ((rc != 0)) || fail "user nobody can list namespaces: the check proves nothing" || return
  try_split timeout 60 "$bin" audit --kubeconfig "$FIPSGATE_KUBECONFIG_NOBODY" -n "$ns" --workloads \
    --config "$work/config.yaml" -o json
  # enforce=off there: nothing would be denied (exit 0), the findings are listed all the same.
  ((rc == 0)) || fail "audit --kubeconfig (user nobody) -n $ns: expected exit 0, saw $rc: $(oneline "$err $out")" || return
  seen=$(jq -r '.findings[] | "\(.kind)/\(.name)"' <<<"$out" 2>/dev/null | sort | paste -sd' ')
  [[ $seen == "$want" ]] || fail "audit as user nobody: expected {$want}, saw {$seen}" || return
}

s17_workload_warning() {
  local ns=e2e-workloads
  try k -n $ns create deployment web --image=nginx
  expect_ok "kubectl create deployment web --image=nginx under enforce=strict (workloads are never denied)" || return
  expect_out "kubectl warning" 'Warning: fipsgate: [enforce=strict] pods would be denied: container "nginx" (nginx): is not a FIPS-compliant component' || return
  k -n $ns get deployment web -o name >/dev/null 2>&1 || fail "deployment $ns/web: expected it to exist, it does not" || return
  # Its ReplicaSet's pods are denied; stop the controller's retries.
  k -n $ns delete deployment web --wait=false >/dev/null || true
}

s18_tighten() {
  local ns=e2e-tighten label
  try k -n $ns run tighten-nginx --image=nginx
  expect_ok "nginx under enforce=off,warn=off" || return
  expect_no_out "warn=off" "Warning:" || return
  try k label ns $ns fipsgate.io/enforce=strict --overwrite
  expect_ok "kubectl label ns $ns fipsgate.io/enforce=strict --overwrite" || return
  expect_out "kubectl warning" 'Warning: fipsgate: existing pod "tighten-nginx" would be denied under enforce=strict: tighten-nginx (nginx)' || return
  label=$(k get ns $ns -o jsonpath='{.metadata.labels.fipsgate\.io/enforce}')
  [[ $label == strict ]] || fail "namespace $ns: expected label fipsgate.io/enforce=strict, saw '$label'"
}

s19_down() {
  local ns=e2e-down label t0 ok=1 down_why
  fipsgate_stop
  t0=$(now_us)
  {
    # Not opted into enforcement (labelled enforce=off): pods-default.fipsgate.io fails open,
    # so fipsgate down blocks nothing there.
    try k -n $ns run down-open --image=nginx
    expect_ok "a pod where enforcement is not opted into, with fipsgate stopped (pods-default.fipsgate.io: failurePolicy Ignore)" &&
      try k label ns $ns fipsgate.io/enforce=strict --overwrite &&
      expect_ok "kubectl label ns $ns with fipsgate stopped (namespaces.fipsgate.io: failurePolicy Ignore)" &&
      label=$(k get ns $ns -o jsonpath='{.metadata.labels.fipsgate\.io/enforce}') &&
      { [[ $label == strict ]] || fail "namespace $ns: expected label fipsgate.io/enforce=strict, saw '$label'"; } &&
      try k -n $ns create deployment down-web --image=$FIPS_DNS &&
      expect_ok "kubectl create deployment with fipsgate stopped (workloads.fipsgate.io: failurePolicy Ignore)" &&
      try k -n $ns run down-fips --image=$FIPS_DNS &&
      { ((rc != 0)) && [[ $out == *'failed calling webhook "pods.fipsgate.io"'* ]] ||
        fail "pod with fipsgate stopped: expected a failure calling pods.fipsgate.io (failurePolicy Fail), saw exit $rc: $(oneline "$out")"; } &&
      ok=0
  } || true
  down_why=$why
  fipsgate_start || {
    fail "fipsgate did not become ready again${down_why:+; $down_why}"
    return
  }
  note="fipsgate down for $(secs_since "$t0")s, restart included"
  k -n $ns delete deployment down-web --wait=false >/dev/null 2>&1 || true
  ((ok == 0)) || {
    why=$down_why
    return 1
  }
  # The label set while fipsgate was down is in force once it is back.
  retry 15 webhook_denies $ns ||
    fail "expected nginx denied in $ns (labelled enforce=strict while fipsgate was down) within 15s of the restart, last: $(oneline "$out")"
}

# --- scenario 20: evidence bound to the digest that runs ---------------------------------------
# A real registry (Debian's docker-registry) holds one image; a user catalogue pins its digest.
# fipsgate resolves the tag there (attestations enabled, so the registry is asked) and, with
# `evidence.binding: require`, refuses the tag reference and admits the one with the digest.
# The mutating webhook (/mutate, deploy/overlays/digest-pinning) is not registered here: this
# v1.20.2 kube-apiserver, built with Go 1.19 against reflect2 1.0.1, segfaults when it records
# any webhook's JSONPatch (reflect2 before 1.0.2 breaks map iteration on Go >= 1.18). /mutate is
# tested against the real router and a real registry in tests/integration/attestations.rs.
registry_start() {
  local port
  command -v docker-registry >/dev/null || {
    fail "docker-registry is not installed (tests/run.sh installs it)"
    return 1
  }
  port=$(_cluster_free_port "$webhook_port") || return 1
  mkdir -p "$work/registry"
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "127.0.0.1:%s"}\n' \
    "$work/registry/data" "$port" >"$work/registry/config.yml"
  docker-registry serve "$work/registry/config.yml" >>"$work/registry.log" 2>&1 &
  reg_pid=$!
  reg_host=127.0.0.1:$port
  retry 10 curl -sf -o /dev/null "http://$reg_host/v2/" || fail "the registry did not start"
}

# push_blob REPO FILE: uploads FILE, prints its digest.
push_blob() {
  local d loc
  d="sha256:$(sha256sum "$2" | cut -d' ' -f1)"
  loc=$(curl -sf -D - -o /dev/null -X POST "http://$reg_host/v2/$1/blobs/uploads/" |
    awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
  [[ $loc == http* ]] || loc="http://$reg_host$loc"
  if [[ $loc == *\?* ]]; then loc="$loc&digest=$d"; else loc="$loc?digest=$d"; fi
  curl -sf -o /dev/null -X PUT -H 'content-type: application/octet-stream' \
    --data-binary @"$2" "$loc" && echo "$d"
}

# push_image REPO TAG: a one-layer OCI image; prints its manifest digest.
push_image() {
  local dir=$work/registry/$1 cd ld
  mkdir -p "$dir"
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$dir/config"
  printf 'e2e layer of %s:%s' "$1" "$2" >"$dir/layer"
  cd=$(push_blob "$1" "$dir/config") && ld=$(push_blob "$1" "$dir/layer") || return 1
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
    "$cd" "$(wc -c <"$dir/config")" "$ld" "$(wc -c <"$dir/layer")" >"$dir/manifest"
  curl -sf -o /dev/null -X PUT -H 'content-type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$dir/manifest" "http://$reg_host/v2/$1/manifests/$2" || return 1
  echo "sha256:$(sha256sum "$dir/manifest" | cut -d' ' -f1)"
}

s20_binding() {
  local ns=e2e-binding digest image
  registry_start || return
  digest=$(push_image team/app v1) || {
    fail "cannot push an image to $reg_host"
    return
  }
  image=$reg_host/team/app:v1
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout 2>/dev/null \
    >"$work/s20-key.pub"
  printf 'components:\n  - {id: e2e-app, name: E2E app, category: auxiliary, status: full, digests: ["%s"]}\n' \
    "$digest" >"$work/s20-catalog.yaml"
  cp "$work/config.yaml" "$work/config.base.yaml"
  {
    cat "$work/config.base.yaml"
    echo "evidence: {binding: require}"
    echo "catalog: {includeDefault: true, files: [$work/s20-catalog.yaml]}"
    echo "attestations: {enabled: true, keys: [$work/s20-key.pub], insecureRegistries: [\"$reg_host\"]}"
  } >"$work/config.yaml"
  fipsgate_stop
  if fipsgate_start; then
    s20_checks "$ns" "$image" "$digest"
  else
    fail "fipsgate with the pinning configuration did not become ready"
  fi
  # Back to the suite's configuration, whatever happened.
  cp "$work/config.base.yaml" "$work/config.yaml"
  fipsgate_stop
  fipsgate_start || fail "fipsgate did not become ready again"
}

s20_checks() {
  local ns=$1 image=$2 digest=$3 stored
  try k -n "$ns" run s20-tag --image="$image"
  expect_denied "a tag reference under binding: require" || return
  expect_out "the message gives the reference to use" "use $image@$digest" || return
  try k -n "$ns" run s20-digest --image="$image@$digest"
  ((rc == 0)) || fail "the reference with its digest: expected created, saw: $(oneline "$out")" || return
  stored=$(k -n "$ns" get pod s20-digest -o jsonpath='{.spec.containers[0].image}')
  note="admitted $stored"
}

# --- scenario 25: scanned and attested images under evidence.minimum: scan -------------------
# Real binaries (tests/fixtures/scan/build.sh) in small images pushed to the registry of
# scenario 20: each image's root filesystem is scanned (`fipsgate scan --rootfs`) and the result
# attested for the pushed digest (`fipsgate attest --scan-result --digest`, a key from openssl).
# fipsgate then requires scan evidence: the Go program without cryptography (full) is admitted
# under strict; the BoringCrypto program whose FIPS 140-2 certificate went historical, accepted
# by an exception, is partial (admitted under baseline, denied under strict); the trap built
# with boringcrypto but linking Go's standard crypto is denied with what the scan found, and an
# image nobody attested is denied. Only the test registry is asked (attestations.registries).
s25_attest() { # s25_attest REPO FIXTURE [SCAN ARGS...] -> prints the digest attested
  local repo=$1 fixture=$2 digest
  shift 2
  digest=$(push_image "$repo" v1) || return 1
  # Exit 1 is a scan that found the image not full: still a result to attest.
  "$bin" scan --rootfs "$s25_fixtures/rootfs/$fixture" -o json "$@" >"$work/s25-$fixture.json" ||
    (($? == 1)) || return 1
  "$bin" attest "$reg_host/$repo:v1" --key "$work/s25-key.pem" --scan-result "$work/s25-$fixture.json" \
    --digest "$digest" --insecure-registry "$reg_host" >>"$work/s25-attest.log" 2>&1 || return 1
  echo "$digest"
}

s25_scan() {
  local app partial trap plain
  s25_fixtures=${FIPSGATE_SCAN_FIXTURES:-$(bash "$root/tests/fixtures/scan/build.sh" 2>>"$work/s25-fixtures.log")}
  [[ -d $s25_fixtures/rootfs ]] || fail "no scan fixtures (FIPSGATE_SCAN_FIXTURES; tests/fixtures/scan/build.sh)" || return
  [[ -n ${reg_host:-} ]] || registry_start || return
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/s25-key.pem" 2>/dev/null &&
    openssl pkey -in "$work/s25-key.pem" -pubout -out "$work/s25-key.pub" 2>/dev/null ||
    fail "openssl could not make a P-256 key" || return
  printf 'exceptions:\n  - {paths: [/usr/local/bin/], error: CertificateHistorical, reason: "140-2 module until the rebuild"}\n' \
    >"$work/s25-exceptions.yaml"
  app=$(s25_attest scan/nocrypto go-nocrypto) &&
    partial=$(s25_attest scan/boring go-boring-static --exceptions "$work/s25-exceptions.yaml") &&
    trap=$(s25_attest scan/trap go-boring-nocgo) &&
    plain=$(push_image scan/unattested v1) ||
    fail "scan, push or attest failed: $(oneline "$(tail -n 5 "$work/s25-attest.log" 2>/dev/null)")" || return
  grep -q 'no referrers API' "$work/s25-attest.log" ||
    fail "attest did not say the registry has no referrers API: $(oneline "$(cat "$work/s25-attest.log")")" || return
  cp "$work/config.yaml" "$work/config.s25.yaml"
  {
    cat "$work/config.s25.yaml"
    echo "evidence: {minimum: scan}"
    echo "attestations: {enabled: true, keys: [{key: $work/s25-key.pub, repositories: [\"$reg_host/scan/**\"], predicateTypes: [https://fipsgate.io/attestation/fips-scan/v1]}], insecureRegistries: [\"$reg_host\"], registries: [\"$reg_host\"]}"
  } >"$work/config.yaml"
  cp "$work/config.yaml" "$work/config.s25-attest.yaml"
  fipsgate_stop
  if fipsgate_start; then
    s25_checks "$reg_host/scan" "$app" "$partial" "$trap" "$plain"
  else
    fail "fipsgate requiring scan evidence did not become ready"
  fi
  cp "$work/config.s25.yaml" "$work/config.yaml"
  fipsgate_stop
  fipsgate_start || fail "fipsgate did not become ready again"
}

s25_checks() {
  local r=$1 app=$2 partial=$3 trap=$4 plain=$5
  try k -n e2e-scan run s25-app --image="$r/nocrypto@$app"
  ((rc == 0)) || fail "the scanned full image under strict: expected created, saw: $(oneline "$out")" || return
  try k -n e2e-scan run s25-partial --image="$r/boring@$partial"
  expect_denied "a partial scan under strict" || return
  expect_out "the denial names the accepted file" "only partially FIPS-compliant (not FIPS: /usr/local/bin/go-boring-static (CertificateHistorical))" || return
  try k -n e2e-scan-baseline run s25-partial --image="$r/boring@$partial"
  ((rc == 0)) || fail "the partial scan under baseline: expected created, saw: $(oneline "$out")" || return
  try k -n e2e-scan run s25-trap --image="$r/trap@$trap"
  expect_denied "the GoBoringNotLinked trap" || return
  expect_out "the denial says what the scan found" "scan found GoBoringNotLinked in /usr/local/bin/go-boring-nocgo" || return
  try k -n e2e-scan run s25-plain --image="$r/unattested@$plain"
  expect_denied "an image without a scan attestation" || return
  expect_out "the denial says none was found" "no FIPS attestation for $plain" || return
  try k -n e2e-scan run s25-catalogue --image="$FIPS_API"
  expect_denied "a catalogue image matched by repository only" || return
  expect_out "the denial asks for scan evidence" "is matched by repository only; scan evidence is required" || return
  note="full admitted (strict), partial admitted (baseline) and denied (strict), trap, unattested and repository-only denied"
}

# --- scenario 26: fipsgate audit --scan ---------------------------------------------------------
# Images holding the real fixture binaries are pushed to the test registry. The pod of
# scanaudit/app:v1 reports (in its status, as a kubelet would) that it runs the digest of the Go
# FIPS module build; the tag was then moved to a build on Go's standard crypto. `audit --scan`
# scans what runs (full), not what the tag names now, and the GoBoringNotLinked trap (none);
# exit 1. A second audit reads both scans from the cache.
push_rootfs() { # push_rootfs REPO TAG DIR -> prints the manifest digest
  local repo=$1 tag=$2 dir=$work/registry/$1-$2 cd ld diff
  mkdir -p "$dir"
  tar -C "$3" --sort=name --owner=0 --group=0 --mtime=@0 -cf "$dir/layer" . || return 1
  diff="sha256:$(sha256sum "$dir/layer" | cut -d' ' -f1)"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$diff" >"$dir/config"
  cd=$(push_blob "$repo" "$dir/config") && ld=$(push_blob "$repo" "$dir/layer") || return 1
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
    "$cd" "$(wc -c <"$dir/config")" "$ld" "$(wc -c <"$dir/layer")" >"$dir/manifest"
  curl -sf -o /dev/null -X PUT -H 'content-type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$dir/manifest" "http://$reg_host/v2/$repo/manifests/$tag" || return 1
  echo "sha256:$(sha256sum "$dir/manifest" | cut -d' ' -f1)"
}

s26_audit_scan() {
  local ns=e2e-scan-audit fx running moved r got
  fx=${FIPSGATE_SCAN_FIXTURES:-$(bash "$root/tests/fixtures/scan/build.sh" 2>>"$work/s26-fixtures.log")}
  [[ -d $fx/rootfs ]] || fail "no scan fixtures (FIPSGATE_SCAN_FIXTURES; tests/fixtures/scan/build.sh)" || return
  [[ -n ${reg_host:-} ]] || registry_start || return
  r=$reg_host/scanaudit
  running=$(push_rootfs scanaudit/app v1 "$fx/rootfs/go126-fips-v1.0.0") &&
    moved=$(push_rootfs scanaudit/app v1 "$fx/rootfs/go126-standard") &&
    push_rootfs scanaudit/trap v1 "$fx/rootfs/go-boring-nocgo" >/dev/null ||
    fail "cannot push the fixture images to $reg_host" || return
  [[ $running != "$moved" ]] || fail "the two builds have one digest" || return
  try k -n "$ns" run s26-app --image="$r/app:v1"
  expect_ok "creating s26-app" || return
  try k -n "$ns" run s26-trap --image="$r/trap:v1"
  expect_ok "creating s26-trap" || return
  try k -n "$ns" patch pod s26-app --subresource=status --type=merge -p \
    "{\"status\":{\"containerStatuses\":[{\"name\":\"s26-app\",\"image\":\"$r/app:v1\",\"imageID\":\"$r/app@$running\",\"ready\":false,\"restartCount\":0,\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]}}"
  expect_ok "reporting the running digest in s26-app's status" || return
  local args=(audit -n "$ns" --config "$work/config.yaml" --scan --scan-cache "$work/s26-cache"
    --insecure-registry "$reg_host")
  try_split timeout 120 "$bin" "${args[@]}" -o json
  ((rc == 1)) || fail "audit --scan: expected exit 1 (the trap is not full), saw $rc: $(oneline "$err $out")" || return
  got=$(jq -c '[.scans[] | {reference, status, cached, objects, error: (.problems[0].error // .error)}]' <<<"$out" 2>/dev/null)
  [[ $got == "[{\"reference\":\"$r/app:v1@$running\",\"status\":\"full\",\"cached\":false,\"objects\":1,\"error\":null},{\"reference\":\"$r/trap:v1\",\"status\":\"none\",\"cached\":false,\"objects\":1,\"error\":\"GoBoringNotLinked\"}]" ]] ||
    fail "audit --scan: expected the running digest full and the trap none (GoBoringNotLinked), saw $got: $(oneline "$err")" || return
  try_split timeout 120 "$bin" "${args[@]}" -o wide
  ((rc == 1)) || fail "audit --scan again: expected exit 1, saw $rc: $(oneline "$err $out")" || return
  echo "    s26 \$ fipsgate ${args[*]//"$work"/\$WORK} -o wide"
  mapfile -t lines <<<"$out"
  printf '    s26 | %s\n' "${lines[@]}"
  [[ $(grep -c ' cache ' <<<"$out") == 2 ]] || fail "audit --scan again: expected both scans from the cache, saw: $(oneline "$out")" || return
  expect_out "the trap's detail" "/usr/local/bin/go-boring-nocgo: GoBoringNotLinked" || return
  note="running digest full (the tag moved to a standard-crypto build), trap none; the second audit from the cache"
}

# --- scenario 27: reports for assessors ---------------------------------------------------------
# The whole e2e cluster audited (namespaces at every level; compliant, partial, non-compliant and
# exempt pods; an expired exemption) into JSON, and the JSON turned into the HTML page and OSCAL
# off-cluster (`fipsgate report --from`). Headless Chromium loads the page: no request but the
# page, no console message, the summary and the namespace bars drawn (a screenshot is kept in
# $FIPSGATE_E2E_ARTIFACTS when set). compliance-trestle validates the OSCAL document.
s27_reports() {
  local py=${FIPSGATE_TEST_PYTHON:-} seen seen_counts
  [[ -n $py ]] || fail "FIPSGATE_TEST_PYTHON is not set (tests/run.sh makes the venv)" || return
  # A partially compliant workload (admitted under baseline) and an exempt image.
  try k -n e2e-defaults run s27-partial --image="$LONGHORN_FIPS"
  expect_ok "a partial image under baseline" || return
  try k -n e2e-enforce run s27-exempt --image=registry.example/e2e/exempt-tool:1
  expect_ok "an exempt image under strict" || return
  try_split timeout 120 "$bin" audit --config "$work/config.yaml" --workloads -o json
  ((rc <= 1)) || fail "audit -o json: exit $rc: $(oneline "$err")" || return
  printf '%s\n' "$out" >"$work/s27-audit.json"
  "$bin" report --from "$work/s27-audit.json" -o html >"$work/s27-report.html" &&
    "$bin" report --from "$work/s27-audit.json" -o oscal >"$work/s27-oscal.json" ||
    fail "fipsgate report --from failed" || return
  try "$py" "$root/tests/interop/html_report.py" "$work/s27-report.html" "$work/s27-report.png"
  ((rc == 0)) || fail "the HTML report in headless Chromium: $(oneline "$out")" || return
  seen=$out
  [[ -n ${FIPSGATE_E2E_ARTIFACTS:-} ]] && mkdir -p "$FIPSGATE_E2E_ARTIFACTS" &&
    cp "$work/s27-report.png" "$work/s27-report.html" "$work/s27-audit.json" "$work/s27-oscal.json" "$FIPSGATE_E2E_ARTIFACTS/"
  grep -q 'class="deny">expired' "$work/s27-report.html" ||
    fail "the HTML report does not show the expired exemption" || return
  seen_counts=$(jq -c '[.images[] | .status] | group_by(.) | map({(.[0]): length}) | add' "$work/s27-audit.json" 2>/dev/null)
  [[ $seen_counts == *'"partial":'* && $seen_counts == *'"exempt":'* && $seen_counts == *'"full":'* && $seen_counts == *'"none":'* ]] ||
    fail "the audit lacks a full, partial, non-compliant or exempt image: $seen_counts" || return
  try "$py" "$root/tests/interop/oscal.py" "$work/s27-oscal.json"
  ((rc == 0)) || fail "the OSCAL document does not validate: $(oneline "$out")" || return
  note="Chromium: $(jq -c '{requests: (.requests | length), console: (.console | length), bars}' <<<"$seen" 2>/dev/null); OSCAL: $out"
}

# --- scenario 28: warm after a restart -----------------------------------------------------------
# fipsgate restarted with scenario 25's attestation configuration looks up the images of the pods
# that scenario created (listed from the API server) in the background, after it is ready and
# before any admission asks; the next admission of one is answered from the cache without a
# registry request. At stop it writes its warm state for the next replica.
s28_lookups() { metrics | awk '/^fipsgate_attestation_lookups_total\{.*source="resolve"/ { n += $NF } END { print n + 0 }'; }
s28_warm() {
  local image warmed lookups line
  [[ -f $work/config.s25-attest.yaml ]] || fail "scenario 25 did not run" || return
  image=$(k -n e2e-scan get pod s25-app -o jsonpath='{.spec.containers[0].image}') &&
    [[ -n $image ]] || fail "scenario 25's pod s25-app is not there" || return
  cp "$work/config.yaml" "$work/config.s28.yaml"
  cp "$work/config.s25-attest.yaml" "$work/config.yaml"
  fipsgate_stop
  rm -f "$work/warm.json"
  if fipsgate_start --warm-state "$work/warm.json"; then
    s28_checks "$image"
  else
    fail "fipsgate with attestations did not become ready"
  fi
  fipsgate_stop
  [[ -z $why ]] && { jq -e --arg i "$image" 'any(.images[]; .image == $i)' "$work/warm.json" >/dev/null 2>&1 ||
    fail "the warm state written at stop does not list $image: $(head -c 300 "$work/warm.json" 2>/dev/null)"; }
  cp "$work/config.s28.yaml" "$work/config.yaml"
  fipsgate_start || fail "fipsgate did not become ready again"
}

s28_checks() {
  local image=$1 line warmed lookups
  retry 20 grep -q '"registry cache warmed"' "$work/fipsgate.log" ||
    fail "no 'registry cache warmed' line within 20 s" || return
  line=$(grep '"registry cache warmed"' "$work/fipsgate.log" | tail -n 1)
  warmed=$(jq -r '.fields.looked_up // .looked_up // 0' <<<"$line" 2>/dev/null)
  ((warmed >= 2)) || fail "warming looked up $warmed images, expected scenario 25's pods' 2 or more: $(oneline "$line")" || return
  lookups=$(s28_lookups)
  ((lookups >= 2)) || fail "no registry resolutions counted while warming ($lookups)" || return
  try k -n e2e-scan run s28-app --image="$image"
  ((rc == 0)) || fail "the warmed image: expected created, saw: $(oneline "$out")" || return
  (($(s28_lookups) == lookups)) || fail "the admission of a warmed image went to the registry ($lookups, then $(s28_lookups) resolutions)" || return
  note="$warmed images warmed before any admission; $image admitted from the cache"
}

# --- scenario 21: a namespace whose labels cannot be read is strict ----------------------------
# fipsgate runs as a user the API server grants nothing: its namespace watch never syncs and the
# live look-up of every namespace is forbidden. A namespace labelled enforce=off is then
# evaluated as strict: a failure never opens the gate.
s21_namespace_fail_closed() {
  local ns=e2e-nsfail ok=1 fail_why
  fipsgate_stop
  if KUBECONFIG=$FIPSGATE_KUBECONFIG_NOBODY fg_ready=healthz fipsgate_start; then
    s21_checks "$ns" && [[ -z $why ]] && ok=0
  else
    fail "fipsgate as user nobody did not start"
  fi
  fail_why=$why
  fipsgate_stop
  fipsgate_start || {
    fail "fipsgate did not become ready again${fail_why:+; $fail_why}"
    return
  }
  ((ok == 0)) || {
    why=$fail_why
    return 1
  }
}

s21_checks() {
  try k -n "$1" run s21-nginx --image=nginx
  expect_denied "nginx in $1 (enforce=off, but its labels cannot be read)" || return
  expect_out "the namespace is evaluated as strict" "violates the strict FIPS policy" || return
  try grep -F "\"$1\"" "$FIPSGATE_AUDIT_LOG"
  expect_out "the audit log records why" "forbidden" || return
}

# --- scenario 22: only the API server may call the webhook --------------------------------------
# Every scenario above went through the API server with its client certificate. A caller that
# reaches the port without it (any pod, with the CA to trust the server even) is refused in the
# TLS handshake, a forged namespace relabel included; with the certificate it is answered.
s22_client_auth() {
  local url="https://127.0.0.1:$webhook_port/validate" review relabel
  review=$root/tests/fixtures/admission-reviews/pod-create-dry-run.json
  relabel=$root/tests/fixtures/admission-reviews/namespace-update-enforce-label.json
  local post=(curl -sS --max-time 5 --cacert "$tls_dir/ca.crt" -H 'content-type: application/json')
  try "${post[@]}" --data-binary @"$review" "$url"
  ((rc != 0)) || fail "a caller without a client certificate was answered: $(oneline "$out")" || return
  try "${post[@]}" --data-binary @"$relabel" "$url"
  ((rc != 0)) || fail "a forged relabel without a client certificate was answered: $(oneline "$out")" || return
  try "${post[@]}" --cert "$tls_dir/client.crt" --key "$tls_dir/client.key" --data-binary @"$review" "$url"
  expect_ok "the same review with the API server's client certificate" || return
  expect_out "an AdmissionReview answer" '"allowed":' || return
  webhook_denies e2e-enforce || fail "the API server itself is no longer served: $(oneline "$out")" || return
  note="no certificate: refused in the handshake; API server's certificate: answered"
}

# --- scenario 23: the vendor's real paths -----------------------------------------------------
# Every line of tests/fixtures/real-paths.tsv through the API server under enforce=strict: a
# full FIPS component admitted, the partial Longhorn Manager, the non-FIPS twins and the
# look-alikes denied.
s23_real_paths() {
  local image id want n=0 admitted=0
  while IFS=$'\t' read -r image id; do
    [[ -z $image || $image == \#* ]] && continue
    want=denied
    [[ $id != - && $id != longhorn-manager ]] && want=admitted
    try k -n e2e-enforce run "s23-$n" --image="$image" --dry-run=server
    n=$((n + 1))
    if [[ $want == admitted ]]; then
      expect_ok "$image ($id) under enforce=strict" || return
      admitted=$((admitted + 1))
    else
      expect_denied "$image ($id) under enforce=strict" || return
    fi
  done <"$root/tests/fixtures/real-paths.tsv"
  note="$n paths: $admitted admitted, $((n - admitted)) denied, each as the document implies"
}

# --- scenario 24: fipsgate doctor ----------------------------------------------------------------
# `fipsgate doctor` against this installation (registered by URL; its admin port by
# --admin-url; the API server's client certificate by --client-cert): every check passes (the
# v1.20 API server, a non-FIPS build and e2e-bogus's label are warnings). Then three faults, each
# named: workloads.fipsgate.io's caBundle from another CA, a namespace with an invalid and an
# unknown fipsgate.io/ label, and kube-system without kubernetes.io/metadata.name and labelled
# enforce=strict (so pods.fipsgate.io, failurePolicy Fail, matches it); exit 1, and -o json names
# the failing checks. Then everything restored, and doctor passes again. Last, where this host
# has an address other than loopback, a Service install: the rendered Secret and Service in
# fipsgate-system, a pod (never run: no kubelet) marked ready at that address where a second
# fipsgate listens, and a webhook configuration pointing at the Service that no namespace
# matches; doctor reads the Secret, the endpoints, and /readyz through the API server's proxy.
svc_pid=""
doctor() { try_split timeout 60 "$bin" doctor "$@"; }
# doctor_line STATUS CHECK TEXT: a line of the last doctor run is "[STATUS] CHECK ...TEXT...".
doctor_line() {
  grep -E "^\[$1\] +$2 " <<<"$out" | grep -qF -- "$3" ||
    fail "doctor: expected a line '[$1] $2 ...$3...', saw: $(oneline "$(grep -E " $2 " <<<"$out")")"
}
s24_args() {
  printf '%s\n' --admin-url "http://127.0.0.1:$admin_port" --client-cert "$tls_dir/client.crt"
}
s24_healthy() {
  local url="https://127.0.0.1:$webhook_port/validate" args
  mapfile -t args < <(s24_args)
  doctor "${args[@]}"
  ((rc == 0)) || fail "doctor on the healthy installation: expected exit 0, saw $rc: $(oneline "$err $out")" || return
  doctor_line warn kubernetes-version "Kubernetes v1.20.2: older than 1.21" || return
  doctor_line ok webhook-configuration "fipsgate: pods.fipsgate.io (Fail), pods-default.fipsgate.io (Ignore), workloads.fipsgate.io (Ignore), namespaces.fipsgate.io (Ignore)" || return
  doctor_line ok ca-bundle "pods.fipsgate.io, pods-default.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: the caBundle verifies the certificate of $url" || return
  doctor_line ok endpoints "$url answers (TLS)" || return
  doctor_line ok serving-certificate "$url (CN=fipsgate.fipsgate-system.svc) expires" || return
  doctor_line ok client-certificate "$tls_dir/client.crt (CN=kube-apiserver) expires" || return
  doctor_line ok readiness "http://127.0.0.1:$admin_port is ready" || return
  doctor_line '(ok|warn)' fips-mode "http://127.0.0.1:$admin_port: " || return
  doctor_line ok failure-policy "namespaces fail closed (pod creation there stops while fipsgate is down): " || return
  doctor_line ok failure-policy "e2e-enforce" || return
  doctor_line warn namespace-labels 'e2e-bogus: invalid value "bogus" for label fipsgate.io/enforce: evaluated as strict (and fails open while fipsgate is down)' || return
  doctor_line ok excluded-namespaces "kube-system: matched by no webhook (kubernetes.io/metadata.name set by hand: Kubernetes v1.20.2 does not set it)" || return
  expect_out "the summary" "0 fail" || return
  [[ -z $err ]] || fail "doctor wrote to stderr: $(oneline "$err")"
}
# The index of workloads.fipsgate.io in the registered configuration, and its caBundle there.
s24_workloads() {
  k get validatingwebhookconfiguration fipsgate -o json |
    jq -r '.webhooks | to_entries[] | select(.value.name == "workloads.fipsgate.io") | "\(.key) \(.value.clientConfig.caBundle)"'
}
s24_set_bundle() { # s24_set_bundle INDEX BASE64: the caBundle of the INDEXth webhook
  k patch validatingwebhookconfiguration fipsgate --type=json -p "$(jq -cn --arg p "/webhooks/$1/clientConfig/caBundle" \
    --arg v "$2" '[{op: "replace", path: $p, value: $v}]')" >/dev/null
}
s24_break() {
  local other index bundle
  other=$("$bin" certs --out "$work/s24-other-ca" --host 127.0.0.1 2>>"$work/certs.log") ||
    fail "fipsgate certs for another CA failed" || return
  read -r index bundle < <(s24_workloads)
  [[ -n $index ]] || fail "no workloads.fipsgate.io in the registered configuration" || return
  s24_set_bundle "$index" "$other" || fail "cannot set another CA's caBundle on workloads.fipsgate.io" || return
  make_ns e2e-doctor fipsgate.io/enforce=bogus fipsgate.io/enfroce=strict ||
    fail "cannot create namespace e2e-doctor" || return
  k label ns kube-system kubernetes.io/metadata.name- fipsgate.io/enforce=strict >/dev/null 2>&1 ||
    fail "cannot relabel kube-system" || return
}
s24_broken() {
  local url="https://127.0.0.1:$webhook_port/validate" args failing lines
  mapfile -t args < <(s24_args)
  doctor "${args[@]}"
  ((rc == 1)) || fail "doctor on the broken installation: expected exit 1, saw $rc: $(oneline "$err $out")" || return
  doctor_line fail ca-bundle "workloads.fipsgate.io: the caBundle does not verify the certificate of $url: the caBundle holds a CA named CN=fipsgate CA, but not the one that signed it" || return
  doctor_line ok ca-bundle "pods.fipsgate.io, pods-default.fipsgate.io, namespaces.fipsgate.io: the caBundle verifies" || return
  doctor_line warn namespace-labels 'e2e-doctor: invalid value "bogus" for label fipsgate.io/enforce: evaluated as strict' || return
  doctor_line warn namespace-labels 'e2e-doctor: unknown label fipsgate.io/enfroce' || return
  doctor_line fail excluded-namespaces "kube-system: matched by pods.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: it lacks kubernetes.io/metadata.name=kube-system, which Kubernetes v1.20.2 does not set (fails closed" || return
  expect_out "the hint" "hint: kubectl label ns kube-system kubernetes.io/metadata.name=kube-system" || return
  expect_out "the summary" "2 fail" || return
  echo "    s24 \$ fipsgate doctor --admin-url http://127.0.0.1:\$ADMIN --client-cert \$WORK/client.crt  # broken"
  mapfile -t lines <<<"$out"
  printf '    s24 | %s\n' "${lines[@]}"
  doctor "${args[@]}" -o json
  ((rc == 1)) || fail "doctor -o json: expected exit 1, saw $rc: $(oneline "$err")" || return
  failing=$(jq -r '[.checks[] | select(.status == "fail") | .name] | join(" ")' <<<"$out" 2>/dev/null) ||
    fail "doctor -o json: not JSON: $(oneline "$out")" || return
  [[ $failing == "ca-bundle excluded-namespaces" ]] ||
    fail "doctor -o json: expected the failing checks 'ca-bundle excluded-namespaces', saw '$failing'" || return
  jq -e '.summary.fail == 2 and ([.checks[] | select(.status != "ok") | .hint | strings] | length) == ([.checks[] | select(.status != "ok")] | length)
    and any(.checks[]; .name == "failure-policy" and (.detail | contains("kube-system")))' <<<"$out" >/dev/null ||
    fail "doctor -o json: expected summary.fail 2, a hint on every warning and failure, kube-system failing closed: $(oneline "$out")" || return
  doctor "${args[@]}" -o yaml
  ((rc == 1)) && [[ $out == *"status: fail"* ]] || fail "doctor -o yaml: expected exit 1 and 'status: fail', saw $rc: $(oneline "$out")"
}
s24_restore() {
  local index bundle original ok=0
  # As registered: the rendered caBundle (kustomize wraps it; the API server stores it unwrapped).
  original=$(jq -r '.webhooks[] | select(.name == "workloads.fipsgate.io") | .clientConfig.caBundle' "$work/webhook.json")
  original=${original//$'\n'/}
  read -r index bundle < <(s24_workloads)
  if [[ -n $index && $bundle != "$original" ]]; then
    s24_set_bundle "$index" "$original" || ok=1
  fi
  k label ns kube-system fipsgate.io/enforce- kubernetes.io/metadata.name=kube-system --overwrite >/dev/null 2>&1 || ok=1
  k delete ns e2e-doctor --wait=false >/dev/null 2>&1 || true
  return $ok
}
s24_doctor() {
  local broke=1 healthy_why
  s24_healthy || return
  s24_break && s24_broken && broke=0
  healthy_why=$why
  s24_restore || fail "cannot restore the installation${healthy_why:+; $healthy_why}" || return
  ((broke == 0)) || {
    why=$healthy_why
    return 1
  }
  # Restored: doctor passes again, and the pod webhook still answers.
  s24_healthy || { why="after restoring: $why"; return 1; }
  retry 10 webhook_denies e2e-enforce || fail "after restoring: nginx no longer denied in e2e-enforce: $(oneline "$out")" || return
  s24_service || return
  note="healthy: exit 0; broken: exit 1 naming ca-bundle (workloads.fipsgate.io), namespace-labels (e2e-doctor), excluded-namespaces (kube-system); restored: exit 0${svc_note:+; $svc_note}"
}

# --- scenario 24, a Service install --------------------------------------------------------------
svc_note=""
svc_stop() {
  local pid=$svc_pid
  svc_pid=""
  [[ -n $pid ]] || return 0
  if grep -F -- "$work" <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) >/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
svc_ready() { [[ $(k -n fipsgate-system get endpoints fipsgate -o jsonpath='{.subsets[0].addresses[0].targetRef.name}' 2>/dev/null) == fipsgate-e2e ]]; }
s24_service() {
  local ip ok=1 svc_why
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }')
  if [[ -z $ip || $ip == 127.* ]]; then
    svc_note="Service install not checked: this host has no address other than loopback"
    return 0
  fi
  s24_service_up "$ip" && s24_service_checks "$ip" && [[ -z $why ]] && ok=0
  svc_why=$why
  svc_stop
  k delete validatingwebhookconfiguration fipsgate-service --ignore-not-found >/dev/null 2>&1
  k -n fipsgate-system delete pod fipsgate-e2e --grace-period=0 --force --ignore-not-found >/dev/null 2>&1
  k -n fipsgate-system delete service fipsgate --ignore-not-found >/dev/null 2>&1
  k -n fipsgate-system delete secret fipsgate-tls --ignore-not-found >/dev/null 2>&1
  ((ok == 0)) || {
    why=$svc_why
    return 1
  }
}
s24_service_up() {
  local ip=$1 https admin
  https=$(_cluster_free_port "$webhook_port $admin_port") && admin=$(_cluster_free_port "$webhook_port $admin_port $https") ||
    fail "no free port" || return
  "$bin" serve --listen "$ip:$https" --admin-listen "$ip:$admin" --tls-cert "$tls_dir/tls.crt" \
    --tls-key "$tls_dir/tls.key" --config "$work/config.yaml" --shutdown-delay 0s --drain-timeout 1s \
    </dev/null >>"$work/fipsgate-service.log" 2>&1 &
  svc_pid=$!
  retry 30 curl -sf --max-time 2 -o /dev/null "http://$ip:$admin/readyz" ||
    fail "the second fipsgate (on $ip) did not become ready: $(oneline "$(tail -n 5 "$work/fipsgate-service.log")")" || return
  # fipsgate-system exists since scenario 15; its Secret and Service as rendered.
  retry 30 ns_ready fipsgate-system || fail "namespace fipsgate-system: no default ServiceAccount token" || return
  try k apply -f <(yaml_docs keep 'Secret|Service' <"$work/render/self-signed.yaml")
  expect_ok "kubectl apply of the rendered Secret and Service" || return
  k create -f - >/dev/null <<EOF || fail "cannot create pod fipsgate-system/fipsgate-e2e" || return
apiVersion: v1
kind: Pod
metadata: {name: fipsgate-e2e, namespace: fipsgate-system, labels: {app.kubernetes.io/name: fipsgate}}
spec:
  nodeName: e2e-no-node
  containers:
    - name: fipsgate
      image: fipsgate:latest
      ports: [{name: https, containerPort: $https}, {name: admin, containerPort: $admin}]
EOF
  # No kubelet: the pod is marked running and ready at the address the second fipsgate serves.
  k get --raw /api/v1/namespaces/fipsgate-system/pods/fipsgate-e2e |
    jq --arg ip "$ip" '.status = {phase: "Running", podIP: $ip, podIPs: [{ip: $ip}], conditions: [{type: "Ready", status: "True"}]}' \
      >"$work/s24-pod.json" &&
    k replace --raw /api/v1/namespaces/fipsgate-system/pods/fipsgate-e2e/status -f "$work/s24-pod.json" >/dev/null ||
    fail "cannot mark pod fipsgate-e2e ready" || return
  retry 30 svc_ready || fail "Service fipsgate-system/fipsgate: no ready endpoint fipsgate-e2e after 30s" || return
  # The rendered configuration as it is (service clientConfig), matching no namespace.
  jq '.metadata.name = "fipsgate-service" | .webhooks |= map(.failurePolicy = "Ignore"
      | .namespaceSelector = {matchLabels: {"e2e.fipsgate.io/never": "true"}})' "$work/webhook.rendered.json" |
    k apply -f - >/dev/null || fail "cannot register the configuration fipsgate-service" || return
}
s24_service_checks() {
  local svc="Service fipsgate-system/fipsgate:443"
  doctor --webhook-config fipsgate-service
  ((rc == 0)) || fail "doctor --webhook-config fipsgate-service: expected exit 0, saw $rc: $(oneline "$err $out")" || return
  doctor_line ok ca-bundle "pods.fipsgate.io, pods-default.fipsgate.io, workloads.fipsgate.io, namespaces.fipsgate.io: the caBundle verifies the certificate of $svc" || return
  doctor_line ok endpoints "$svc: fipsgate-e2e ready" || return
  doctor_line ok serving-certificate "Secret fipsgate-system/fipsgate-tls (CN=fipsgate.fipsgate-system.svc) expires" || return
  doctor_line ok serving-certificate "pod fipsgate-system/fipsgate-e2e serves one that expires" || return
  doctor_line ok client-certificate "fipsgate does not ask for a client certificate" || return
  doctor_line ok readiness "pod fipsgate-system/fipsgate-e2e is ready" || return
  doctor_line '(ok|warn)' fips-mode "pod fipsgate-system/fipsgate-e2e: " || return
  doctor_line ok failure-policy "no namespace fails closed" || return
  # The pod gone from the endpoints: nothing serves the Service.
  k -n fipsgate-system delete pod fipsgate-e2e --grace-period=0 --force >/dev/null 2>&1
  retry 30 svc_gone || fail "Service fipsgate-system/fipsgate: endpoint fipsgate-e2e still there after 30s" || return
  doctor --webhook-config fipsgate-service
  ((rc == 1)) || fail "doctor without a ready pod: expected exit 1, saw $rc: $(oneline "$err $out")" || return
  doctor_line fail endpoints "$svc has no ready endpoints" || return
  svc_note="a Service install: Secret, endpoints and /readyz through the API server's proxy; without its pod, endpoints fail"
}
svc_gone() { ! svc_ready; }

scenario 1 "namespace without labels gets the configured defaults (nginx denied, catalogue image admitted)" s1_defaults
scenario 2 "fipsgate.io/enforce=strict denies nginx naming container and image; catalogue image admitted" s2_enforce
scenario 3 "fipsgate.io/warn=strict (enforce=off): pod created, kubectl prints Warning: fipsgate: [strict]" s3_warn
scenario 4 "fipsgate.io/audit=strict (enforce=off, warn=off): audit log carries violations and decision" s4_audit
scenario 5 "kubectl run --dry-run=server: same verdict, nothing created" s5_dry_run
scenario 6 "kubectl set image to nginx on an admitted pod is denied" s6_set_image
scenario 7 "Deployment with nginx: ReplicaSet FailedCreate events carry fipsgate's message" s7_deployment
scenario 8 "exempt namespace and exempt user admitted, exemption audited and counted; an expired exemption exempts nothing" s8_exemptions
scenario 9 "invalid label fipsgate.io/enforce=bogus evaluated as strict, with warning and error annotation" s9_invalid_label
scenario 10 "fipsgate --dry-run denies nothing and warns [dry-run]; enforcing again after restart" s10_dry_run_mode
scenario 11 "certificate renewed on disk during 40 creates: none fails, new certificate served" s11_rotation
scenario 12 "namespace label change takes effect without restarting fipsgate" s12_relabel
scenario 13 "pods/ephemeralcontainers: busybox debug container denied, catalogue image admitted" s13_ephemeral
scenario 14 "/metrics counts denials" s14_metrics
scenario 15 "every overlay's rendered objects (CRD kinds aside) accepted by the API server (apply --dry-run=server)" s15_manifests
scenario 16 "fipsgate audit --workloads lists exactly the violating pods and Deployment (not its ReplicaSet)" s16_audit
scenario 17 "kubectl create deployment under enforce=strict: created, with fipsgate's warning about its pods" s17_workload_warning
scenario 18 "kubectl label ns enforce=strict: applied, with a warning naming the existing non-FIPS pod" s18_tighten
scenario 19 "fipsgate stopped: pods where enforcement is not opted into, namespace label and Deployment admitted (Ignore); pods where it is refused (Fail)" s19_down
scenario 20 "evidence.binding: require refuses a tag reference (naming the digest to use) and admits it with its digest" s20_binding
scenario 21 "fipsgate cannot read namespaces (RBAC): a namespace labelled enforce=off is evaluated as strict" s21_namespace_fail_closed
scenario 22 "--client-ca: a caller without the API server's client certificate is refused, the API server served" s22_client_auth
scenario 23 "the vendor's real FIPS paths, their non-FIPS twins and look-alikes: the document's verdict under enforce=strict" s23_real_paths
scenario 24 "fipsgate doctor: a healthy install passes; a broken one names each fault" s24_doctor
scenario 25 "evidence.minimum: scan: a scanned and attested image admitted, the GoBoringNotLinked trap denied with what the scan found" s25_scan
scenario 26 "fipsgate audit --scan: the digest each pod runs is pulled and scanned, a second audit reads the cache" s26_audit_scan
scenario 27 "reports for assessors: the cluster's audit as HTML (clean in headless Chromium) and OSCAL (valid for compliance-trestle)" s27_reports
scenario 28 "warm after a restart: the images of running pods looked up in the background, the next admission served from the cache, the warm state written at stop" s28_warm

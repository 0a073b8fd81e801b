#!/usr/bin/env bash
# Smoke test of the local control plane (install.sh + cluster.sh).
# Usage: bash tests/e2e/smoke.sh   (root; exit 0 iff every step passed)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/lib/install.sh"
# shellcheck source=tests/e2e/lib/cluster.sh
source "$here/lib/cluster.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/fipsgate-smoke.XXXXXX")
# shellcheck disable=SC2064  # expand $work now
trap "cluster_down '$work'; rm -rf '$work'" EXIT
cluster_up "$work"

passed=0 failed=0
step() { # step NAME CMD... : run CMD, print PASS/FAIL
  local name=$1
  shift
  if "$@" >"$work/step.out" 2>&1; then
    echo "PASS: $name"
    passed=$((passed + 1))
  else
    echo "FAIL: $name"
    sed 's/^/    /' "$work/step.out" | tail -n 20
    failed=$((failed + 1))
  fi
}
k() { timeout 30 kubectl --request-timeout=20s "$@"; }
# retry TIMEOUT CMD... : poll CMD every 0.5 s for up to TIMEOUT seconds
retry() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

ns=smoke
server_version() { [[ $(k version -o json | jq -r .serverVersion.gitVersion) == v1.20.2 ]]; }
ns_ready() { # pods need the default SA and its token secret (SA admission)
  [[ -n $(k -n "$ns" get serviceaccount default -o jsonpath='{.secrets[0].name}') ]]
}
pod_pending() { [[ $(k -n "$ns" get pod p -o jsonpath='{.status.phase}') == Pending ]]; }
rs_pods() { [[ $(k -n "$ns" get pods -l app=d -o name | wc -l) -eq 2 ]]; }
dry_run() {
  k -n "$ns" run p2 --image=nginx --dry-run=server -o name &&
    ! k -n "$ns" get pod p2 2>/dev/null
}
audit_has() { # audit_has USER VERB RESOURCE NAME
  jq -n -e --arg u "$1" --arg v "$2" --arg r "$3" --arg n "$4" \
    'any(inputs; .user.username == $u and .verb == $v and .objectRef.resource == $r
                 and .objectRef.name == $n and .objectRef.namespace == "smoke")' \
    "$FIPSGATE_AUDIT_LOG"
}
ephemeral_api() { k get --raw /api/v1 | jq -e '.resources[] | select(.name == "pods/ephemeralcontainers")'; }
webhook_config() {
  local port
  k api-versions | grep -x admissionregistration.k8s.io/v1 >/dev/null || return 1
  port=$(_cluster_free_port)
  k apply -f - <<EOF || return 1
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: smoke-webhook
webhooks:
- name: smoke.fipsgate.test
  clientConfig:
    url: https://127.0.0.1:$port/validate
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  namespaceSelector:
    matchLabels:
      fipsgate-smoke-nothing: "true"
  failurePolicy: Ignore
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: 5
EOF
  k -n "$ns" run p3 --image=nginx && k delete validatingwebhookconfiguration smoke-webhook
}

step "server version is v1.20.2" server_version
step "create namespace" k create namespace "$ns"
step "label namespace" k label namespace "$ns" fipsgate-smoke=yes
step "namespace default SA + token" retry 30 ns_ready
step "kubectl run pod (stays Pending)" k -n "$ns" run p --image=nginx
step "pod is Pending" retry 10 pod_pending
step "deployment -> ReplicaSet -> 2 pods" k -n "$ns" create deployment d --image=nginx --replicas=2
step "ReplicaSet pods created" retry 60 rs_pods
step "kubectl --dry-run=server run" dry_run
step "act as exempt-user" k --kubeconfig "$FIPSGATE_KUBECONFIG_EXEMPT" -n "$ns" run px --image=nginx
step "audit: admin created pod p" retry 10 audit_has admin create pods p
step "audit: exempt-user created pod px" retry 10 audit_has exempt-user create pods px
step "pods/ephemeralcontainers served" ephemeral_api
step "admissionregistration/v1 ValidatingWebhookConfiguration (url, Ignore)" webhook_config

echo "smoke: $passed passed, $failed failed"
((failed == 0))

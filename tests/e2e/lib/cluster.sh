# shellcheck shell=bash
# Local envtest-style control plane: etcd + kube-apiserver + kube-controller-manager
# (v1.20.2, built by install.sh), all on 127.0.0.1 with free random ports.
# No kubelet/scheduler: pods stay Pending.
#
# Source this file, then:
#   cluster_up WORKDIR     start everything, wait until ready, export env (below)
#   cluster_down WORKDIR   stop the processes recorded in WORKDIR/pids
#
# After cluster_up (also written to WORKDIR/env, sourceable):
#   KUBECONFIG                 WORKDIR/kubeconfig          (user admin, system:masters)
#   FIPSGATE_KUBECONFIG_EXEMPT WORKDIR/kubeconfig-exempt   (user exempt-user, system:masters)
#   FIPSGATE_KUBECONFIG_NOBODY WORKDIR/kubeconfig-nobody   (user nobody: no RBAC rights at all)
#   FIPSGATE_APISERVER_URL     https://127.0.0.1:PORT
#   FIPSGATE_APISERVER_CA      apiserver's self-signed cert bundle (cert-dir)
#   FIPSGATE_AUDIT_LOG         WORKDIR/audit.log (JSON lines, level Metadata)
#   FIPSGATE_ADMIN_TOKEN, FIPSGATE_EXEMPT_TOKEN, FIPSGATE_EXEMPT_USER, FIPSGATE_ETCD_URL
# Logs: WORKDIR/{etcd,kube-apiserver,kube-controller-manager}.log
# Before cluster_up: CLUSTER_ADMISSION_CONFIG=FILE starts the API server with
# --admission-control-config-file FILE (webhook client credentials); CLUSTER_RESERVED_PORTS
# lists ports the cluster must not take.

FIPSGATE_KUBE_VERSION=${FIPSGATE_KUBE_VERSION:-v1.20.2}
FIPSGATE_KUBE_BIN=${FIPSGATE_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/fipsgate-e2e/$FIPSGATE_KUBE_VERSION}
FIPSGATE_CLUSTER_TIMEOUT=${FIPSGATE_CLUSTER_TIMEOUT:-60}

_cluster_log() { printf '[cluster] %s\n' "$*" >&2; }

# Print a free TCP port on 127.0.0.1, below the ephemeral range and not in $1
# (space-separated list of ports already handed out).
_cluster_free_port() {
  local taken=" ${1:-} " p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ $taken == *" $p "* ]] && continue
    # Connection refused => nothing listens there.
    if ! (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  _cluster_log "no free port found"
  return 1
}

# Start "$@" in the background with its log, record "name pid" in WORKDIR/pids.
_cluster_spawn() {
  local workdir=$1 name=$2
  shift 2
  "$@" </dev/null >"$workdir/$name.log" 2>&1 &
  echo "$name $!" >>"$workdir/pids"
}

# True if every recorded process is still alive.
_cluster_alive() {
  local workdir=$1 name pid
  while read -r name pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _cluster_log "$name (pid $pid) exited; tail of $workdir/$name.log:"
      tail -n 20 "$workdir/$name.log" >&2 || true
      return 1
    fi
  done <"$workdir/pids"
}

# Poll "$@" (every 0.5 s) until it succeeds, a process dies, or $timeout s pass.
_cluster_wait() {
  local workdir=$1 timeout=$2 what=$3 deadline
  shift 3
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    _cluster_alive "$workdir" || return 1
    if ((SECONDS >= deadline)); then
      _cluster_log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

_cluster_kubeconfig() {
  local file=$1 url=$2 ca=$3 user=$4 token=$5
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fipsgate-e2e
  cluster:
    server: $url
    certificate-authority: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: fipsgate-e2e
  context:
    cluster: fipsgate-e2e
    user: $user
current-context: fipsgate-e2e
EOF
  chmod 600 "$file"
}

cluster_up() {
  local workdir=${1:?usage: cluster_up WORKDIR}
  local bin=$FIPSGATE_KUBE_BIN timeout=$FIPSGATE_CLUSTER_TIMEOUT
  local etcd_port peer_port api_port admin_token exempt_token url ca start=$SECONDS

  local b
  for b in kube-apiserver kube-controller-manager; do
    [[ -x $bin/$b ]] || { _cluster_log "$bin/$b missing: run tests/e2e/lib/install.sh"; return 1; }
  done
  mkdir -p "$workdir" || return 1
  workdir=$(cd "$workdir" && pwd) || return 1
  if [[ -s $workdir/pids ]]; then
    _cluster_log "$workdir/pids exists: cluster already up? run cluster_down first"
    return 1
  fi
  : >"$workdir/pids"

  # CLUSTER_RESERVED_PORTS: ports the caller has picked already (its own servers).
  local reserved=${CLUSTER_RESERVED_PORTS:-}
  etcd_port=$(_cluster_free_port "$reserved") || return 1
  peer_port=$(_cluster_free_port "$reserved $etcd_port") || return 1
  api_port=$(_cluster_free_port "$reserved $etcd_port $peer_port") || return 1
  url=https://127.0.0.1:$api_port
  ca=$workdir/certs/apiserver.crt

  # Credentials: service-account key pair, static tokens, audit policy.
  mkdir -p "$workdir/certs" "$workdir/etcd" || return 1
  if ! { openssl genrsa -out "$workdir/certs/sa.key" 2048 &&
    openssl rsa -in "$workdir/certs/sa.key" -pubout -out "$workdir/certs/sa.pub"; } 2>/dev/null; then
    _cluster_log "openssl failed"
    return 1
  fi
  admin_token=$(openssl rand -hex 16) && exempt_token=$(openssl rand -hex 16) &&
    nobody_token=$(openssl rand -hex 16) || return 1
  cat >"$workdir/tokens.csv" <<EOF
$admin_token,admin,admin-uid,"system:masters"
$exempt_token,exempt-user,exempt-user-uid,"system:masters"
$nobody_token,nobody,nobody-uid
EOF
  chmod 600 "$workdir/tokens.csv"
  cat >"$workdir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: ""
    resources: ["pods", "pods/ephemeralcontainers", "namespaces"]
  - group: "apps"
    resources: ["deployments", "replicasets"]
- level: None
EOF

  _cluster_log "starting etcd on 127.0.0.1:$etcd_port"
  _cluster_spawn "$workdir" etcd etcd \
    --name default \
    --data-dir "$workdir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port"
  _cluster_wait "$workdir" "$timeout" etcd \
    curl -sf "http://127.0.0.1:$etcd_port/health" || { cluster_down "$workdir"; return 1; }

  _cluster_log "starting kube-apiserver on $url"
  _cluster_spawn "$workdir" kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$api_port" \
    --insecure-port 0 \
    --cert-dir "$workdir/certs" \
    --token-auth-file "$workdir/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-key-file "$workdir/certs/sa.pub" \
    --service-account-signing-key-file "$workdir/certs/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true \
    --audit-log-path "$workdir/audit.log" \
    --audit-policy-file "$workdir/audit-policy.yaml" \
    --feature-gates EphemeralContainers=true \
    ${CLUSTER_ADMISSION_CONFIG:+--admission-control-config-file "$CLUSTER_ADMISSION_CONFIG"} \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount
  # The self-signed cert appears once the apiserver has started serving.
  _cluster_wait "$workdir" "$timeout" "apiserver cert" test -s "$ca" || { cluster_down "$workdir"; return 1; }
  _cluster_kubeconfig "$workdir/kubeconfig" "$url" "$ca" admin "$admin_token"
  _cluster_kubeconfig "$workdir/kubeconfig-exempt" "$url" "$ca" exempt-user "$exempt_token"
  _cluster_kubeconfig "$workdir/kubeconfig-nobody" "$url" "$ca" nobody "$nobody_token"
  _cluster_wait "$workdir" "$timeout" "apiserver /readyz" \
    kubectl --kubeconfig "$workdir/kubeconfig" get --raw /readyz || { cluster_down "$workdir"; return 1; }

  _cluster_log "starting kube-controller-manager"
  _cluster_spawn "$workdir" kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$workdir/kubeconfig" \
    --service-account-private-key-file "$workdir/certs/sa.key" \
    --root-ca-file "$ca" \
    --use-service-account-credentials=false \
    --controllers '*' \
    --leader-elect=false \
    --bind-address 127.0.0.1 \
    --secure-port 0 \
    --port 0
  _cluster_wait "$workdir" "$timeout" "default ServiceAccount" \
    kubectl --kubeconfig "$workdir/kubeconfig" -n default get serviceaccount default ||
    { cluster_down "$workdir"; return 1; }

  export KUBECONFIG=$workdir/kubeconfig
  export FIPSGATE_KUBECONFIG_EXEMPT=$workdir/kubeconfig-exempt
  export FIPSGATE_KUBECONFIG_NOBODY=$workdir/kubeconfig-nobody
  export FIPSGATE_APISERVER_URL=$url
  export FIPSGATE_APISERVER_CA=$ca
  export FIPSGATE_AUDIT_LOG=$workdir/audit.log
  export FIPSGATE_ADMIN_TOKEN=$admin_token
  export FIPSGATE_EXEMPT_TOKEN=$exempt_token
  export FIPSGATE_EXEMPT_USER=exempt-user
  export FIPSGATE_ETCD_URL=http://127.0.0.1:$etcd_port
  local v
  for v in KUBECONFIG FIPSGATE_KUBECONFIG_EXEMPT FIPSGATE_APISERVER_URL FIPSGATE_APISERVER_CA \
    FIPSGATE_AUDIT_LOG FIPSGATE_ADMIN_TOKEN FIPSGATE_EXEMPT_TOKEN FIPSGATE_EXEMPT_USER FIPSGATE_ETCD_URL; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done >"$workdir/env"
  _cluster_log "ready in $((SECONDS - start))s: $url (KUBECONFIG=$KUBECONFIG)"
}

cluster_down() {
  local workdir=${1:?usage: cluster_down WORKDIR}
  local name pid pids=() i
  [[ -f $workdir/pids ]] || return 0
  workdir=$(cd "$workdir" && pwd) || return 1
  while read -r name pid; do
    [[ $pid =~ ^[0-9]+$ ]] && pids=("$pid" "${pids[@]}")
  done <"$workdir/pids"
  # Reverse start order (etcd last, so the apiserver can shut down cleanly).
  for pid in "${pids[@]}"; do
    # Only a pid whose command line still mentions WORKDIR (every process we
    # start has a WORKDIR path in its args): a recycled pid is never hit.
    grep -F -- "$workdir" <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) >/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      _cluster_log "pid $pid ignored SIGTERM for 5s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reap it if it is our child (no-op otherwise).
    wait "$pid" 2>/dev/null || true
  done
  rm -f "$workdir/pids"
}

#!/usr/bin/env bash
# Idempotent installer for the e2e control plane (run as root on Debian bookworm).
#  - apt: etcd-server, golang-go, make, rsync, jq, curl, openssl, nghttp2-client
#  - kube-apiserver + kube-controller-manager v1.20.2 built from Debian's
#    `kubernetes` source package (all Go deps vendored: no network but apt).
# Binaries are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/fipsgate-e2e/v1.20.2/;
# a second run only checks them (seconds).
set -euo pipefail

KUBE_VERSION=v1.20.2
# Debian's version string for the same source ("1.20.5+really1.20.2-...").
DEB_SRC_MATCH='really1.20.2'
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/fipsgate-e2e
BIN_DIR=$CACHE_ROOT/$KUBE_VERSION
SRC_LIST=/etc/apt/sources.list.d/fipsgate-src.list
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"

# --- apt packages (apt-get update at most once, only if needed) -----------------
apt_updated=0
apt_update_once() {
  if [[ $apt_updated -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

pkgs=(etcd-server golang-go make rsync jq curl openssl nghttp2-client)
# kubectl normally comes with the machine; fall back to Debian's 1.20 client.
command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
missing=()
for p in "${pkgs[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt_update_once
  log "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- cached binaries ---------------------------------------------------------------
bins_ok() {
  local dir=$1 b
  for b in kube-apiserver kube-controller-manager; do
    [[ -x $dir/$b ]] || return 1
    [[ $("$dir/$b" --version 2>/dev/null) == "Kubernetes $KUBE_VERSION" ]] || return 1
  done
}

# Signed-By of the existing Debian entries: apt refuses two entries for the same
# repository with different Signed-By values.
debian_keyring() {
  local f k=/usr/share/keyrings/debian-archive-keyring.gpg
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    if grep -qsi "signed-by.*$k" "$f"; then
      echo "$k"
      return
    fi
  done
}

# True if some other apt source already has deb-src for Debian's main archive.
have_deb_src() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f && $f != "$SRC_LIST" ]] || continue
    grep -qsE '^[[:space:]]*deb-src[[:space:]].*deb\.debian\.org/debian/? ' "$f" && return 0
    # deb822: a stanza whose Types include deb-src (good enough for Debian's layout)
    grep -qsE '^Types:.*deb-src' "$f" && grep -qsE '^URIs:.*deb\.debian\.org/debian/?$' "$f" && return 0
  done
  return 1
}

ensure_deb_src() {
  if [[ ! -f $SRC_LIST ]] && ! have_deb_src; then
    local codename opts='' key
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    key=$(debian_keyring)
    [[ -n $key ]] && opts="[signed-by=$key] "
    log "adding deb-src entry in $SRC_LIST"
    printf 'deb-src %shttp://deb.debian.org/debian %s main\n' "$opts" "$codename" >"$SRC_LIST"
    apt_updated=0
    apt_update_once
  fi
  # Source indexes may be missing (first run) or stale.
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep "^Version: .*$DEB_SRC_MATCH" >/dev/null; then
    apt_update_once
  fi
  apt-cache showsrc kubernetes 2>/dev/null | grep "^Version: .*$DEB_SRC_MATCH" >/dev/null ||
    die "no 'kubernetes' source package matching $DEB_SRC_MATCH in apt"
}

build_kube() {
  local tmp src go_bin_dir start
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/fipsgate-kube-build.XXXXXX")
  # shellcheck disable=SC2064  # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  trap 'exit 130' INT TERM
  # Let apt's sandbox user write the download (avoids an "unsandboxed" warning).
  chmod 755 "$tmp"
  mkdir "$tmp/dl" "$tmp/home"
  if id _apt >/dev/null 2>&1; then chown _apt "$tmp/dl"; fi

  log "downloading Debian 'kubernetes' source package"
  (cd "$tmp/dl" && apt-get source -qq --download-only kubernetes >/dev/null)
  local orig=("$tmp"/dl/kubernetes_*"$DEB_SRC_MATCH".orig.tar.*)
  [[ -f ${orig[0]} ]] || die "orig tarball not found"
  # The plain upstream tarball builds as is (Debian's patches only touch kubectl).
  tar -xf "${orig[0]}" -C "$tmp"
  src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | sed -n 1p)
  [[ -n $src ]] || die "unpacked source tree not found"

  # The archive carries its git metadata (export-subst), so hack/lib/version.sh
  # stamps gitVersion=v1.20.2 without a git checkout.
  go_bin_dir=/usr/lib/go/bin
  log "building kube-apiserver + kube-controller-manager in $src (takes ~5 min)"
  start=$SECONDS
  (
    cd "$src"
    env PATH="$go_bin_dir:$PATH" HOME="$tmp/home" GOPATH="$tmp/gopath" \
      CGO_ENABLED=0 GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=vendor \
      make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$tmp/build.log" 2>&1
  ) || {
    tail -n 40 "$tmp/build.log" >&2
    die "kubernetes build failed"
  }
  log "build took $((SECONDS - start))s"

  # Atomic publish: stage next to the target, then rename the directory.
  local out=$src/_output/local/bin/linux/amd64 stage
  mkdir -p "$CACHE_ROOT"
  stage=$(mktemp -d "$CACHE_ROOT/.$KUBE_VERSION.XXXXXX")
  cp "$out/kube-apiserver" "$out/kube-controller-manager" "$stage/"
  chmod 755 "$stage"
  bins_ok "$stage" || die "built binaries do not report $KUBE_VERSION"
  rm -rf "$BIN_DIR"
  mv "$stage" "$BIN_DIR"

  rm -rf "$tmp"
  trap - EXIT INT TERM
}

if bins_ok "$BIN_DIR"; then
  log "cached binaries OK in $BIN_DIR"
else
  ensure_deb_src
  build_kube
fi

log "versions:"
"$BIN_DIR/kube-apiserver" --version
"$BIN_DIR/kube-controller-manager" --version
etcd --version | sed -n 1p
kubectl version --client 2>/dev/null | sed -n 1p

#!/usr/bin/env bash
# Builds the real peers the tests run against (etcd, kube-apiserver, kube-controller-manager, Backrest,
# restic, restic's rest-server, helm, actionlint) from the Go module proxy, and takes VolSync's CRDs from its module. Everything lands in
# the user cache dir keyed by version, so only the first run pays; a finished peer is never rebuilt.
# kubectl is built from the same k8s.io/kubernetes release as kube-apiserver (its kustomize included), so
# no test depends on whatever kubectl a machine happens to have.
# Usage: tests/peers/build.sh [peer...]   (no argument: all of them). Prints "<peer> <version> <path>".
set -euo pipefail

ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.36.3
BACKREST_VERSION=v1.14.1
RESTIC_VERSION=v0.19.1
REST_SERVER_VERSION=v0.14.0
HELM_VERSION=v3.22.0
VOLSYNC_VERSION=v0.16.0
ACTIONLINT_VERSION=v1.7.12

CACHE="${BVO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backrest-volsync-operator}"
PEERS="$CACHE/peers"
WORK="$CACHE/build"
mkdir -p "$PEERS" "$WORK"
export CGO_ENABLED="${CGO_ENABLED:-0}" GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath" GOTOOLCHAIN=local

log() { printf '%s\n' "$*" >&2; }

# done_dir NAME VERSION -> prints the cache dir; a peer is complete once its .done marker exists.
peer_dir() { printf '%s/%s-%s' "$PEERS" "$1" "$2"; }
finish() { touch "$1/.done"; }

# A throwaway wrapper module that requires MODULE@VERSION and builds the given main packages.
# Extra replace lines come from stdin.
wrapper_build() {
  local name=$1 module=$2 version=$3 out=$4; shift 4
  local dir="$WORK/$name-$version"
  rm -rf "$dir"; mkdir -p "$dir"
  {
    printf 'module bvo.local/peers/%s\n\ngo 1.26\n\nrequire %s %s\n\n' "$name" "$module" "$version"
    cat
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local pkg; for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
    printf ')\n'
  } >"$dir/tools.go"
  (cd "$dir" && go mod tidy >&2)
  local pkg; for pkg in "$@"; do
    (cd "$dir" && go build -o "$out/$(basename "$pkg")" ${LDFLAGS:+-ldflags "$LDFLAGS"} "$pkg")
  done
}

build_etcd() {
  local d; d=$(peer_dir etcd "$ETCD_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building etcd $ETCD_VERSION (first run only)"
    mkdir -p "$d"
    # etcd's main package lives in the root module, whose replace directives block `go install`;
    # the server module exposes the same entry point.
    local dir="$WORK/etcd-$ETCD_VERSION"; rm -rf "$dir"; mkdir -p "$dir"
    printf 'module bvo.local/peers/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$dir/main.go"
    (cd "$dir" && go mod tidy >&2 && go build -o "$d/etcd" .)
    finish "$d"
  fi
  echo "etcd $ETCD_VERSION $d/etcd"
}

build_kube() {
  local d; d=$(peer_dir kube "$KUBE_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building kube-apiserver and kube-controller-manager $KUBE_VERSION (first run only, 10-20 min)"
    mkdir -p "$d"
    local gomod staging minor
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    staging="v0${KUBE_VERSION#v1}"
    minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
      wrapper_build kube k8s.io/kubernetes "$KUBE_VERSION" "$d" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager < <(
        printf 'replace (\n'
        sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | while read -r m; do
          printf '\t%s => %s %s\n' "$m" "$m" "$staging"
        done
        printf ')\n'
      )
    finish "$d"
  fi
  echo "kube-apiserver $KUBE_VERSION $d/kube-apiserver"
  echo "kube-controller-manager $KUBE_VERSION $d/kube-controller-manager"
}

build_backrest() {
  local d; d=$(peer_dir backrest "$BACKREST_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building backrest $BACKREST_VERSION (first run only)"
    mkdir -p "$d"
    local src dir="$WORK/backrest-$BACKREST_VERSION"
    src=$(go mod download -json "github.com/garethgeorge/backrest@$BACKREST_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
    rm -rf "$dir"; cp -r "$src" "$dir"; chmod -R u+w "$dir"
    # The web UI is embedded from webui/dist, which the module does not ship; the API needs none of it.
    mkdir -p "$dir/webui/dist"
    printf '<!doctype html><title>backrest (test build, no web UI)</title>\n' >"$dir/webui/dist/index.html"
    (cd "$dir" && go build -ldflags "-s -w -X main.version=$BACKREST_VERSION" -o "$d/backrest" ./cmd/backrest)
    finish "$d"
  fi
  echo "backrest $BACKREST_VERSION $d/backrest"
}

build_restic() {
  local d; d=$(peer_dir restic "$RESTIC_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building restic $RESTIC_VERSION (first run only)"
    mkdir -p "$d"
    GOBIN="$d" go install "github.com/restic/restic/cmd/restic@$RESTIC_VERSION"
    finish "$d"
  fi
  echo "restic $RESTIC_VERSION $d/restic"
}

build_rest_server() {
  local d; d=$(peer_dir rest-server "$REST_SERVER_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building rest-server $REST_SERVER_VERSION (first run only)"
    mkdir -p "$d"
    # `go install module@version` asks the proxy for the module's version list, which it refuses for this
    # module; a wrapper module needs only the pinned version.
    wrapper_build rest-server github.com/restic/rest-server "$REST_SERVER_VERSION" "$d" \
      github.com/restic/rest-server/cmd/rest-server </dev/null
    finish "$d"
  fi
  echo "rest-server $REST_SERVER_VERSION $d/rest-server"
}

build_helm() {
  local d; d=$(peer_dir helm "$HELM_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building helm $HELM_VERSION (first run only)"
    mkdir -p "$d"
    GOBIN="$d" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    finish "$d"
  fi
  echo "helm $HELM_VERSION $d/helm"
}

build_actionlint() {
  local d; d=$(peer_dir actionlint "$ACTIONLINT_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building actionlint $ACTIONLINT_VERSION (first run only)"
    mkdir -p "$d"
    GOBIN="$d" go install -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
    finish "$d"
  fi
  echo "actionlint $ACTIONLINT_VERSION $d/actionlint"
}

# The replace block that lets a wrapper module build k8s.io/kubernetes: every staging module at its release.
kube_staging_replaces() {
  local gomod staging
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  staging="v0${KUBE_VERSION#v1}"
  printf 'replace (\n'
  sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | while read -r m; do
    printf '\t%s => %s %s\n' "$m" "$m" "$staging"
  done
  printf ')\n'
}

build_kubectl() {
  local d; d=$(peer_dir kubectl "$KUBE_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "building kubectl $KUBE_VERSION (first run only, 5-10 min)"
    mkdir -p "$d"
    local minor; minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
    LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
      wrapper_build kubectl k8s.io/kubernetes "$KUBE_VERSION" "$d" k8s.io/kubernetes/cmd/kubectl \
      < <(kube_staging_replaces)
    finish "$d"
  fi
  echo "kubectl $KUBE_VERSION $d/kubectl"
}

fetch_volsync() {
  local d; d=$(peer_dir volsync "$VOLSYNC_VERSION")
  if [ ! -e "$d/.done" ]; then
    log "fetching VolSync $VOLSYNC_VERSION CRDs"
    mkdir -p "$d"
    local src
    src=$(go mod download -json "github.com/backube/volsync@$VOLSYNC_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
    cp "$src/config/crd/bases/volsync.backube_replicationsources.yaml" \
      "$src/config/crd/bases/volsync.backube_replicationdestinations.yaml" "$d/"
    chmod u+w "$d"/*.yaml
    finish "$d"
  fi
  echo "volsync-crds $VOLSYNC_VERSION $d"
}

want=("$@"); [ ${#want[@]} -gt 0 ] || want=(volsync restic rest-server etcd backrest helm actionlint kube)
[ $# -gt 0 ] || want+=(kubectl)
for p in "${want[@]}"; do
  case "$p" in
    etcd) build_etcd ;; kube) build_kube ;; backrest) build_backrest ;;
    restic) build_restic ;; rest-server) build_rest_server ;; helm) build_helm ;;
    actionlint) build_actionlint ;; volsync) fetch_volsync ;;
    kubectl) build_kubectl ;;
    *) log "unknown peer: $p (known: etcd kube backrest restic rest-server helm actionlint volsync)"; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# Builds the real peers the tests run against (etcd, kube-apiserver, kube-controller-manager, kubectl,
# Backrest with its web UI, restic, restic's rest-server, helm, actionlint, promtool, kube-score, and the
# kube-apiserver of the oldest supported Kubernetes) from the Go module proxy and npm,
# and takes VolSync's CRDs from its module. Everything lands in the user cache dir keyed by version, so
# only the first run pays; a finished peer is never rebuilt, and two runs never build one peer at once.
# Usage: tests/peers/build.sh [peer|dev|all...]   (no argument: all; `dev`: what `task dev` needs).
# Prints "<peer> <version> <path>" on stdout; progress (one line when a build starts, one when it ends)
# on stderr; Go's and npm's own output in $CACHE/build/logs/<peer>.log.
# kubectl is built from the same k8s.io/kubernetes release as kube-apiserver (its kustomize included), so
# no test depends on whatever kubectl a machine happens to have.
set -euo pipefail

ETCD_VERSION=v3.6.16
KUBE_VERSION=v1.36.3
# The oldest Kubernetes the CRDs and the chart support (Chart.yaml's kubeVersion, the README's minimum):
# its kube-apiserver is built too, and the CRDs, the chart and a Binding are tested on it.
KUBE_MIN_VERSION=v1.30.14
BACKREST_VERSION=v1.14.1
RESTIC_VERSION=v0.19.1
REST_SERVER_VERSION=v0.14.0
HELM_VERSION=v3.22.0
VOLSYNC_VERSION=v0.16.0
ACTIONLINT_VERSION=v1.7.12
# An S3 server (in memory) standing in for tenants' S3 storage: restic's s3 backend against the real wire
# protocol, with credentials of the repository's own.
GOFAKES3_VERSION=v1.2.0
# kube-score: the chart's default render is checked against its critical findings.
KUBE_SCORE_VERSION=v1.20.0
# promtool of Prometheus 3.16.0 (the Go module's v0.<major><minor>.<patch> tag).
PROMETHEUS_VERSION=v0.316.0
# Backrest's web UI: its lockfile is pnpm's; pnpm itself comes from npm. The two inlang plugins are what
# the UI's project.inlang loads from a CDN at `@4` and `@2`; here they come from npm, pinned.
PNPM_VERSION=9.15.9
INLANG_MESSAGE_FORMAT_VERSION=4.4.4
INLANG_M_FUNCTION_MATCHER_VERSION=2.2.16

CACHE="${BVO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backrest-volsync-operator}"
PEERS="$CACHE/peers"
WORK="$CACHE/build"
LOGS="$WORK/logs"
mkdir -p "$PEERS" "$WORK" "$LOGS"
export CGO_ENABLED="${CGO_ENABLED:-0}" GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath" GOTOOLCHAIN=local

ALL=(volsync restic rest-server etcd kube backrest helm actionlint promtool kubectl gofakes3 kube-min kube-score)
DEV=(volsync restic rest-server etcd kube backrest)

say() { printf 'peers: %s\n' "$*" >&2; }

version_of() {
  case $1 in
    etcd) echo "$ETCD_VERSION" ;; kube | kubectl) echo "$KUBE_VERSION" ;; backrest) echo "$BACKREST_VERSION" ;;
    restic) echo "$RESTIC_VERSION" ;; rest-server) echo "$REST_SERVER_VERSION" ;; helm) echo "$HELM_VERSION" ;;
    actionlint) echo "$ACTIONLINT_VERSION" ;; volsync) echo "$VOLSYNC_VERSION" ;;
    promtool) echo "$PROMETHEUS_VERSION" ;; gofakes3) echo "$GOFAKES3_VERSION" ;;
    kube-min) echo "$KUBE_MIN_VERSION" ;; kube-score) echo "$KUBE_SCORE_VERSION" ;;
  esac
}

# The cache dir of a peer: its name is the cache key. Backrest's says "webui" since it carries the real UI
# (the older backrest-<version> held a placeholder page and is left alone).
dir_of() {
  case $1 in
    backrest) printf '%s/backrest-webui-%s' "$PEERS" "$BACKREST_VERSION" ;;
    # "kv": built with the Kubernetes version helm assumes without a cluster (helm-<version> lacked it)
    helm) printf '%s/helm-kv-%s' "$PEERS" "$HELM_VERSION" ;;
    *) printf '%s/%s-%s' "$PEERS" "$1" "$(version_of "$1")" ;;
  esac
}

# Cold build time in minutes, measured on a 2-core machine shared with other work (load 5-10), with empty
# Go module and build caches, in the order of ALL: 31 min for `task dev`'s peers, 43 for all but kubectl
# (built separately before, about 6 min: not re-measured in this order). restic, built
# first, also compiles Go's standard library for the rest.
minutes_of() {
  case $1 in
    kube) echo 18 ;; etcd) echo 2 ;; backrest) echo 3 ;; restic) echo 7 ;; rest-server) echo 1 ;;
    helm) echo 5 ;; actionlint) echo 1 ;; promtool) echo 8 ;; volsync) echo 1 ;; kubectl) echo 6 ;;
    gofakes3) echo 2 ;; kube-min) echo 14 ;; kube-score) echo 2 ;;
  esac
}

# What a peer prints on stdout once it is there.
print_peer() {
  local d; d=$(dir_of "$1")
  case $1 in
    kube)
      echo "kube-apiserver $KUBE_VERSION $d/kube-apiserver"
      echo "kube-controller-manager $KUBE_VERSION $d/kube-controller-manager"
      ;;
    volsync) echo "volsync-crds $VOLSYNC_VERSION $d" ;;
    kube-min) echo "kube-apiserver-min $KUBE_MIN_VERSION $d/kube-apiserver" ;;
    *) echo "$1 $(version_of "$1") $d/$1" ;;
  esac
}

elapsed() {
  local s=$(($SECONDS - $1))
  if [ $s -ge 60 ]; then printf '%d min %d s' $((s / 60)) $((s % 60)); else printf '%d s' $s; fi
}

module_dir() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p'; }

# A throwaway wrapper module that requires MODULE@VERSION and builds the given main packages in one
# `go build` (shared packages compile once, the links run in parallel). Extra go.mod lines from stdin.
# `-mod=mod` resolves and downloads only what this linux build imports; `go mod tidy` would fetch every
# module any build tag or OS could import (for Kubernetes, dozens more).
wrapper_build() {
  local name=$1 module=$2 version=$3 out=$4; shift 4
  local dir="$WORK/$name-$version"
  rm -rf "$dir"; mkdir -p "$dir"
  {
    printf 'module bvo.local/peers/%s\n\ngo 1.26\n\nrequire %s %s\n\n' "$name" "$module" "$version"
    cat
  } >"$dir/go.mod"
  (cd "$dir" && go build -mod=mod -o "$out/" ${LDFLAGS:+-ldflags "$LDFLAGS"} "$@")
  rm -rf "$dir"
}

build_etcd() {
  local d=$1
  # etcd's main package lives in the root module, whose replace directives block `go install`;
  # the server module exposes the same entry point.
  local dir="$WORK/etcd-$ETCD_VERSION"; rm -rf "$dir"; mkdir -p "$dir"
  printf 'module bvo.local/peers/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$dir/main.go"
  (cd "$dir" && go build -mod=mod -ldflags "-s -w" -o "$d/etcd" .)
  rm -rf "$dir"
}

# Kubernetes' main packages from k8s.io/kubernetes at a release (default $KUBE_VERSION), every staging
# module at that release.
kube_build() {
  local name=$1 d=$2 version=${KUBE_BUILD_VERSION:-$KUBE_VERSION} gomod staging minor; shift 2
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  staging="v0${version#v1}"
  minor=$(echo "$version" | cut -d. -f2)
  LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
    wrapper_build "$name" k8s.io/kubernetes "$version" "$d" "$@" < <(
      printf 'replace (\n'
      sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | while read -r m; do
        printf '\t%s => %s %s\n' "$m" "$m" "$staging"
      done
      printf ')\n'
    )
}

build_kube() {
  kube_build kube "$1" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
}

build_kubectl() {
  kube_build kubectl "$1" k8s.io/kubernetes/cmd/kubectl
}

# Only the apiserver of the oldest supported release: tests run the CRDs, the chart and a Binding on it.
build_kube_min() {
  KUBE_BUILD_VERSION=$KUBE_MIN_VERSION kube_build kube-min "$1" k8s.io/kubernetes/cmd/kube-apiserver
}

# Backrest as its release build makes it (.goreleaser.yaml): `pnpm install` in webui/, then
# `go generate ./...` (webui's directives: `npm run clean`, `npm run build`, with BACKREST_BUILD_VERSION),
# then `go build ./cmd/backrest` embedding webui/dist. Differences, each forced by this machine's reach
# (npm, apt and the Go module proxy only):
# - three dev-only packages leave devDependencies, since the build uses none of them: @inlang/cli (the
#   npm registry here has no version 3.1.14, which the lockfile pins), @google/generative-ai (the
#   translation script), @playwright/test (Backrest's own browser tests); pnpm then installs with the
#   lockfile unfrozen, which keeps every other locked version;
# - project.inlang loads its two plugins from a CDN (cdn.jsdelivr.net, unreachable): without them not one
#   of the UI's messages is compiled. The same plugins are npm packages; their dist/index.js is what the
#   CDN serves from npm, so the project points at those files instead;
# - no `tray` build tag (it needs cgo and a desktop).
build_backrest() {
  local d=$1 src dir="$WORK/backrest-webui-$BACKREST_VERSION"
  # Vite 8's engines field: ^20.19.0 || >=22.12.0.
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then
    echo "Backrest's web UI (Vite 8) needs Node.js ^20.19 or >=22.12; found $(node --version 2>/dev/null || echo none)"
    return 1
  fi
  src=$(module_dir "github.com/garethgeorge/backrest@$BACKREST_VERSION")
  rm -rf "$dir"; cp -r "$src" "$dir"; chmod -R u+w "$dir"
  local plugins="$dir/webui/.inlang-plugins"
  mkdir -p "$plugins"
  (cd "$plugins" &&
    npm pack --silent "@inlang/plugin-message-format@$INLANG_MESSAGE_FORMAT_VERSION" \
      "@inlang/plugin-m-function-matcher@$INLANG_M_FUNCTION_MATCHER_VERSION" &&
    mkdir message-format m-function-matcher &&
    tar -xzf "inlang-plugin-message-format-$INLANG_MESSAGE_FORMAT_VERSION.tgz" -C message-format &&
    tar -xzf "inlang-plugin-m-function-matcher-$INLANG_M_FUNCTION_MATCHER_VERSION.tgz" -C m-function-matcher)
  (cd "$dir/webui" && node -e '
    const fs = require("fs");
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
    for (const name of ["@inlang/cli", "@google/generative-ai", "@playwright/test"]) {
      if (!(name in pkg.devDependencies)) throw new Error(`${name} is no longer a devDependency`);
      delete pkg.devDependencies[name];
    }
    fs.writeFileSync("package.json", JSON.stringify(pkg, null, 2) + "\n");
    const file = "project.inlang/settings.json";
    const settings = JSON.parse(fs.readFileSync(file, "utf8"));
    const cdn = ["https://cdn.jsdelivr.net/npm/@inlang/plugin-message-format@4/dist/index.js",
      "https://cdn.jsdelivr.net/npm/@inlang/plugin-m-function-matcher@2/dist/index.js"];
    if (JSON.stringify(settings.modules) !== JSON.stringify(cdn)) throw new Error("project.inlang modules changed");
    settings.modules = process.argv.slice(1);
    fs.writeFileSync(file, JSON.stringify(settings, null, 2) + "\n");
  ' "$plugins/message-format/package/dist/index.js" "$plugins/m-function-matcher/package/dist/index.js")
  (cd "$dir/webui" && npx --yes "pnpm@$PNPM_VERSION" install --no-frozen-lockfile --reporter=append-only \
    --store-dir "$WORK/pnpm-store")
  (cd "$dir" && BACKREST_BUILD_VERSION="${BACKREST_VERSION#v}" go generate ./webui/)
  # A UI built without its messages has no text; the compiled catalogue holds one module per message.
  local messages; messages=$(ls "$dir/webui/src/paraglide/messages" | wc -l)
  if [ ! -e "$dir/webui/dist/index.html" ] || [ "$messages" -lt 100 ]; then
    echo "the web UI build is incomplete (dist/index.html, $messages compiled messages)"
    return 1
  fi
  (cd "$dir" && go build -ldflags "-s -w -X main.version=${BACKREST_VERSION#v}" -o "$d/backrest" ./cmd/backrest)
  rm -rf "$dir" # node_modules alone is half a gigabyte; webui/dist is inside the binary now
}

build_restic() {
  GOBIN="$1" go install -ldflags "-s -w" "github.com/restic/restic/cmd/restic@$RESTIC_VERSION"
}

build_rest_server() {
  # `go install module@version` asks the proxy for the module's version list, which it refuses for this
  # module; a wrapper module needs only the pinned version.
  wrapper_build rest-server github.com/restic/rest-server "$REST_SERVER_VERSION" "$1" \
    github.com/restic/rest-server/cmd/rest-server </dev/null
}

# As helm's own release build: the Kubernetes version that `helm template` and `helm lint` assume without
# a cluster is the one of the client-go helm is built with (one major above its v0 tag), not v1.20.
build_helm() {
  local gomod kv major minor
  gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  kv=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")
  major=${kv#v}; major=$((${major%%.*} + 1)); minor=$(echo "$kv" | cut -d. -f2)
  GOBIN="$1" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_actionlint() {
  GOBIN="$1" go install -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
}

# promtool checks and unit-tests the chart's alerting rules. `remove_all_sd` leaves out the service
# discovery plugins (cloud SDKs) that rule checks never use.
build_promtool() {
  local v="${PROMETHEUS_VERSION#v0.}"
  local semver="3.$((10#${v%%.*} - 300)).${v#*.}"
  GOFLAGS="$GOFLAGS -tags=remove_all_sd" \
    LDFLAGS="-s -w -X github.com/prometheus/common/version.Version=$semver" \
    wrapper_build promtool github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "$1" \
    github.com/prometheus/prometheus/cmd/promtool </dev/null
}

build_volsync() {
  local src; src=$(module_dir "github.com/backube/volsync@$VOLSYNC_VERSION")
  cp "$src/config/crd/bases/volsync.backube_replicationsources.yaml" \
    "$src/config/crd/bases/volsync.backube_replicationdestinations.yaml" "$1/"
  chmod u+w "$1"/*.yaml
}

build_kube_score() {
  GOBIN="$1" go install -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION#v}" "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
}

build_gofakes3() {
  wrapper_build gofakes3 github.com/johannesboyne/gofakes3 "$GOFAKES3_VERSION" "$1" \
    github.com/johannesboyne/gofakes3/cmd/gofakes3 </dev/null
}

# Builds one peer unless it is there, holding a lock so a second run waits instead of building it again.
ensure() {
  local p=$1 d; d=$(dir_of "$p")
  [ -e "$d/.done" ] && return 0
  local lock
  exec {lock}>"$d.lock"
  if ! flock -n "$lock"; then
    say "$p $(version_of "$p"): another run is building it; waiting"
    flock "$lock"
  fi
  if [ ! -e "$d/.done" ]; then
    local log="$LOGS/$p.log" start=$SECONDS rc
    say "$p $(version_of "$p"): building (about $(minutes_of "$p") min cold; output in $log)"
    rm -rf "$d"; mkdir -p "$d"
    set +e
    (set -e; "build_${p//-/_}" "$d") >"$log" 2>&1
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then
      say "$p $(version_of "$p"): FAILED after $(elapsed "$start"); the end of $log:"
      tail -n 30 "$log" >&2
      exit 1
    fi
    touch "$d/.done"
    say "$p $(version_of "$p"): done in $(elapsed "$start")"
  fi
  exec {lock}>&-
}

want=()
for arg in "${@:-all}"; do
  case "$arg" in
    all) want+=("${ALL[@]}") ;;
    dev) want+=("${DEV[@]}") ;;
    *)
      [ -n "$(version_of "$arg")" ] || { say "unknown peer: $arg (known: ${ALL[*]}, or dev, all)"; exit 2; }
      want+=("$arg")
      ;;
  esac
done

missing=() total=0
for p in "${want[@]}"; do
  if [ ! -e "$(dir_of "$p")/.done" ] && [[ " ${missing[*]} " != *" $p "* ]]; then
    missing+=("$p"); total=$((total + $(minutes_of "$p")))
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  list=""; for p in "${missing[@]}"; do list+="${list:+, }$p (~$(minutes_of "$p") min)"; done
  say "${#missing[@]} peer(s) missing, built once and cached in $PEERS: $list"
  say "about $total min in all on 2 cores with nothing cached (less when Go's module cache is warm)"
fi

for p in "${want[@]}"; do
  ensure "$p"
  print_peer "$p"
done

#!/usr/bin/env bash
# Builds the Kubernetes test lab's server binaries (kube-apiserver, kube-controller-manager v1.20.2 and etcd 3.4)
# into a cache directory outside git, using nothing but the Debian registry: Debian bookworm's `kubernetes` source
# package is the only complete apiserver source Debian carries, and no registry reachable here ships the binaries.
# Recipe and pitfalls: tests/lab/README.md.
#
# Idempotent: when the cache's stamp matches this recipe (patch list included) it does nothing. Needs root (or
# sudo) only for `apt-get update/install` of the build tools; etcd is unpacked from its .deb with `dpkg -x`, because
# installing the etcd-server package would start a system-wide etcd service.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${DRAUDITOR_LAB_CACHE:-$HOME/.cache/drauditor-lab}"
stamp="$cache/stamp"
build_pkgs=(golang-go rsync make openssl patch
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)

die() { echo "tests/lab/build.sh: FAILED: $*" >&2; exit 1; }
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

# What the cached binaries must have been built with. A change here (or in a patch file) forces a rebuild.
wanted_stamp() {
  echo "recipe 1: kubernetes (Debian bookworm source package) make WHAT=cmd/kube-apiserver cmd/kube-controller-manager"
  echo "vendor-swap: github.com/modern-go/reflect2 github.com/json-iterator/go from Debian's -dev packages"
  local p
  for p in "$here"/patches/*.patch; do
    echo "patch: $(basename "$p") sha256=$(sha256sum "$p" | cut -d' ' -f1)"
  done
  echo "etcd: Debian etcd-server (apt-get download + dpkg -x)"
}

mkdir -p "$cache"
exec 9>"$cache/lock" # one build at a time: a second scripts/test waits here, then finds the cache current
flock 9

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(wanted_stamp)" ] \
   && [ -x "$cache/bin/kube-apiserver" ] && [ -x "$cache/bin/kube-controller-manager" ] && [ -x "$cache/bin/etcd" ]; then
  echo "lab binaries up to date in $cache/bin"
  exit 0
fi

start=$(date +%s)
phase_start=$start
phase() { # prints how long the previous phase took, then names the next one
  local now; now=$(date +%s)
  [ -z "${phase_name:-}" ] || echo "  ${phase_name}: $((now - phase_start)) s"
  phase_name="$1"; phase_start=$now
  [ "$1" = done ] || echo "lab build: $1 ..."
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "installing build tools needs root or sudo: ${build_pkgs[*]}"
  fi
}

echo "building the Kubernetes lab binaries into $cache (first run: about 7-10 min on 2 vCPU, ~200 MB downloads)"
work="$cache/build"
rm -rf "$work"
mkdir -p "$work" "$cache/bin"
trap 'rm -rf "$work"' EXIT

phase "installing missing build tools from Debian"
as_root apt-get update -qq
missing_pkgs=()
for p in "${build_pkgs[@]}"; do # install only what is missing: 'apt-get install' would upgrade the rest
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_pkgs+=("$p")
done
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  echo "  apt-get install ${missing_pkgs[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
fi
go version | grep -qE 'go1\.(1[89]|[2-9][0-9])' || die "need Go >= 1.18 from Debian, got: $(go version)"

phase "downloading the kubernetes source package (private deb-src list; the system's apt config is untouched)"
apt_dir="$work/apt"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
# deb-src twins of the system's Debian bookworm entries (same mirrors and keyring), in a private list and state dir.
apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(ORIGIN)' 'Identifier: Packages' \
  | awk '$4 == "Debian" && $3 == "main" && $2 ~ /^bookworm/ {print "deb-src " $1 " " $2 " main"}' | sort -u \
  > "$apt_dir/sources.list.d/debian-src.list"
[ -s "$apt_dir/sources.list.d/debian-src.list" ] || die "no Debian bookworm 'main' entry in this machine's apt sources"
apt_private=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list.d/debian-src.list"
  -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d" -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=$(id -un)")
apt-get "${apt_private[@]}" update -qq
(cd "$work" && apt-get "${apt_private[@]}" source --download-only kubernetes >/dev/null)
orig=$(ls "$work"/kubernetes_*.orig.tar.gz) || die "apt-get source did not deliver kubernetes_*.orig.tar.gz"
source_version=$(basename "$work"/kubernetes_*.dsc .dsc | sed 's/^kubernetes_//')

phase "unpacking and patching the source"
tar xzf "$orig" -C "$work"
tree=$(find "$work" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[ -n "$tree" ] && [ -d "$tree/cmd/kube-apiserver" ] || die "the source package holds no cmd/kube-apiserver"
# Go >= 1.18 crashes the vendored reflect2 (SIGSEGV on the first custom-resource create): use Debian's newer trees.
gocode_dir() { # the source tree a Debian Go -dev package ships for an import path
  local d; d=$(dpkg -L "$1" | grep -E "/gocode/src/$2\$" | sed -n 1p)
  [ -n "$d" ] && [ -d "$d" ] || die "$1 does not ship $2"
  echo "$d"
}
reflect2=$(gocode_dir golang-github-modern-go-reflect2-dev github.com/modern-go/reflect2)
jsoniter=$(gocode_dir golang-github-json-iterator-go-dev github.com/json-iterator/go)
rm -rf "$tree/vendor/github.com/modern-go/reflect2" "$tree/vendor/github.com/json-iterator/go"
cp -rL "$reflect2" "$tree/vendor/github.com/modern-go/reflect2"
cp -rL "$jsoniter" "$tree/vendor/github.com/json-iterator/go"
for p in "$here"/patches/*.patch; do
  patch -d "$tree" -p1 --forward --quiet < "$p" || die "patch $(basename "$p") does not apply"
done

phase "compiling kube-apiserver + kube-controller-manager (make, offline)"
# hack/lib/golang.sh puts GOPATH and GOCACHE under _output/ inside the tree, so they go with it.
(cd "$tree" && GOPROXY=off CGO_ENABLED=0 KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean KUBE_BUILD_PLATFORMS=linux/amd64 \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/make.log" 2>&1) \
  || { tail -n 40 "$work/make.log" >&2; die "make failed (last 40 lines above)"; }

phase "unpacking etcd from Debian's etcd-server .deb (not installed: that would start a system service)"
(cd "$work" && apt-get -o "APT::Sandbox::User=$(id -un)" download etcd-server >/dev/null)
dpkg -x "$work"/etcd-server_*.deb "$work/etcd"
etcd_version=$(dpkg-deb -f "$work"/etcd-server_*.deb Version)

phase "installing into $cache/bin"
for b in kube-apiserver kube-controller-manager; do
  install -m 0755 "$tree/_output/bin/$b" "$cache/bin/$b"
done
install -m 0755 "$work/etcd/usr/bin/etcd" "$cache/bin/etcd"
"$cache/bin/kube-apiserver" --version | grep -q 'v1.20.2' || die "built kube-apiserver does not report v1.20.2"
"$cache/bin/etcd" --version >/dev/null
{
  echo "kubernetes source package: $source_version"
  echo "etcd-server package: $etcd_version"
  echo "go: $(go version)"
  echo "reflect2: $(dpkg-query -W -f '${Version}' golang-github-modern-go-reflect2-dev)"
  echo "json-iterator: $(dpkg-query -W -f '${Version}' golang-github-json-iterator-go-dev)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$cache/versions.txt"
wanted_stamp >"$stamp"

phase "removing the build tree"
rm -rf "$work"
phase done
echo "lab binaries built in $(($(date +%s) - start)) s: $cache/bin ($(tr '\n' ';' <"$cache/versions.txt"))"

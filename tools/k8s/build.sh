#!/usr/bin/env bash
# Build the upstream Kubernetes binaries once per machine and print their directory.
#
#   tools/k8s/build.sh            -> /var/cache/polyglot/k8s/<key>/bin   (on stdout)
#
# The binaries (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
# kubectl) come from the Go module proxy through the wrapper module next to this script
# (go.mod pins k8s.io/kubernetes and its staging modules). <key> is the first 12 hex digits of
# sha256(go.mod + go.sum), so a clone with the same pins reuses the binaries; when they are all
# there the script returns in well under a second. A cold build takes about 6-7 minutes on two
# cores, one binary at a time (each link peaks near 2 GB), under the machine-wide heavy-build lock.
#
# Binaries are built into <root>/.<key>.partial/ and the directory is renamed into place only
# when all of them exist, so a killed build never leaves a half cache (the finished binaries of
# an interrupted run are kept in .partial and reused by the next one).
#
# It also makes sure etcd is installed (Debian's etcd-server) without its packaged daemon running.
#
# Environment:
#   POLYGLOT_K8S_CACHE  cache root (default /var/cache/polyglot/k8s)
#   GO                  go binary (default /usr/local/go/bin/go, else go on PATH)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${POLYGLOT_K8S_CACHE:-/var/cache/polyglot/k8s}
heavy_lock=/tmp/polyglot-heavy.lock

# Built in this order: the first one pays for compiling the shared dependencies.
bins=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl)
declare -A expect=(
    [kube-apiserver]="3-4 min cold, 1-2 min warm"
    [kube-controller-manager]="about 1 min"
    [kube-scheduler]="under 1 min"
    [kube-proxy]="under 1 min"
    [kubelet]="1-2 min"
    [kubectl]="under 1 min"
)

say() { printf '%s\n' "$*" >&2; }
die() {
    say "build.sh: $*"
    exit 1
}

key=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
dest=$cache_root/$key
bindir=$dest/bin

have_all() {
    local b
    for b in "${bins[@]}"; do
        [[ -x $1/$b ]] || return 1
    done
}

# etcd from Debian. Its package ships a SysV script and a systemd unit that would start a
# daemon on 127.0.0.1:2379; control-plane.sh runs its own etcd per state directory, so the
# packaged one is stopped and disabled if the install started it.
ensure_etcd() {
    if command -v etcd >/dev/null; then
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "etcd is missing: apt-get install -y etcd-server (as root)"
    say "==> installing etcd-server (Debian)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >&2 ||
        die "apt-get install etcd-server failed"
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now etcd.service >&2 2>&1 || true
    elif [[ -x /etc/init.d/etcd ]]; then
        /etc/init.d/etcd stop >&2 2>&1 || true
        update-rc.d etcd disable >&2 2>&1 || true
    fi
}

ensure_etcd

if have_all "$bindir"; then
    printf '%s\n' "$bindir"
    exit 0
fi

if [[ -z ${GO:-} ]]; then
    if [[ -x /usr/local/go/bin/go ]]; then
        GO=/usr/local/go/bin/go
    else
        GO=$(command -v go) || die "no Go toolchain (expected /usr/local/go/bin/go)"
    fi
fi
mkdir -p "$cache_root" || die "cannot create '$cache_root' (run as root or set POLYGLOT_K8S_CACHE)"

# One builder per key; a second caller waits here and then finds the binaries.
exec 9>"$cache_root/.$key.lock"
flock 9
if have_all "$bindir"; then
    printf '%s\n' "$bindir"
    exit 0
fi

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0
version=$(cd "$here" && "$GO" list -m -f '{{.Version}}' k8s.io/kubernetes) ||
    die "cannot resolve k8s.io/kubernetes from $here/go.mod"
[[ $version =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected version '$version'"
pkg=k8s.io/component-base/version
# -s -w and the tags are upstream's own release flags (hack/lib/golang.sh); buildDate stays at
# its zero default so that the same pins give the same binaries.
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=${BASH_REMATCH[1]}"
ldflags+=" -X $pkg.gitMinor=${BASH_REMATCH[2]} -X $pkg.gitTreeState=clean"
tags=selinux,notest,grpcnotrace

partial=$cache_root/.$key.partial
mkdir -p "$partial/bin"
say "==> Kubernetes $version into $bindir ($($GO version | cut -d' ' -f3), CGO_ENABLED=0)"
total_start=$SECONDS
for b in "${bins[@]}"; do
    if [[ -x $partial/bin/$b ]]; then
        say "==> $b already built by an interrupted run"
        continue
    fi
    say "==> building $b (${expect[$b]})..."
    start=$SECONDS
    # go build writes its output in place, so it goes to a temporary name first.
    (cd "$here" && flock "$heavy_lock" "$GO" build -trimpath -tags "$tags" -ldflags "$ldflags" \
        -o "$partial/bin/.$b.tmp" "./cmd/$b") || die "building $b failed"
    mv -f "$partial/bin/.$b.tmp" "$partial/bin/$b"
    say "    $b: $((SECONDS - start)) s, $(du -m "$partial/bin/$b" | cut -f1) MB"
done
{
    echo "kubernetes $version"
    "$GO" version
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - total_start)) s"
} >"$partial/BUILD-INFO"
rm -rf "$dest"
mv "$partial" "$dest"
say "==> all binaries built in $((SECONDS - total_start)) s"
printf '%s\n' "$bindir"

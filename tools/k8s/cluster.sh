#!/usr/bin/env bash
# The local single-node Kubernetes cluster, inside a network namespace of its own (workshops and
# tests/k8s/cluster_test.sh; tools/k8s/NODE.md, "single-node cluster", explains each part).
#
#   cluster.sh up [STATE] [--images DIR]  start the cluster (idempotent), load DIR's OCI archives,
#                                        print the kubeconfig's path
#   cluster.sh load [STATE] DIR|FILE...   load OCI archives (*.tar) into the node's containerd
#   cluster.sh down [STATE]              stop everything; no process, mount, rule or netns stays
#   cluster.sh status [STATE]            what runs, the node and the pods
#   cluster.sh exec [STATE] -- CMD...    run CMD in the cluster's network namespace (curl a
#                                        Service: every address is inside the namespace)
#   cluster.sh kubeconfig [STATE]        print the kubeconfig's path
#   cluster.sh env [STATE]               print `export KUBECONFIG=... PATH=...` (eval it: kubectl
#                                        and deploy/k8s/secrets.sh then talk to this cluster)
#   cluster.sh kubectl [STATE] ARGS...   the matching kubectl, pointed at the cluster
#
# STATE defaults to /var/lib/polyglot/k8s-node (machine-wide: one cluster per machine, whose
# image store survives `down` so that the next `up` loads only what changed); the commands
# other than `up` default to the running cluster's. Needs root.
#
# The network namespace `polyglot-k8s` has the node's address 10.201.0.2 on a veth whose host
# end is 10.201.0.1 (kubectl on the host reaches the API server there); pods get 10.244.0.0/24
# on a bridge, Services 10.96.0.0/16 (DNS 10.96.0.10). There is no default route: nothing in
# the cluster can send a packet anywhere but the namespace's own addresses.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_DIR=$ROOT/tools/k8s
NS=polyglot-k8s
HOST_IF=pk8s-host
NODE_IF=pk8s-node
HOST_IP=10.201.0.1
NODE_IP=10.201.0.2
NODE_NAME=polyglot-k8s
NET=10.201.0.0/24
SERVICE_CIDR=10.96.0.0/16
POINTER=/run/polyglot-k8s.state
CACHE=/var/cache/polyglot/k8s
COREDNS_VERSION=v1.12.4
KUBE_ROUTER_VERSION=v2.1.0
COREDNS_IMAGE=localhost/polyglot/coredns:${COREDNS_VERSION#v}
PAUSE_IMAGE=localhost/polyglot/pause:3.10
# The kubelet sets these host-wide kernel settings when it starts (protectKernelDefaults false);
# `up` records them first and `down` puts them back.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

T0=$(date +%s%N)
say() { printf '==> [%5.1fs] %s\n' "$((($(date +%s%N) - T0) / 1000000))e-3" "$*"; }
die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

# ---- what the cluster needs on the machine -----------------------------------------------------

ensure_packages() {
    local missing=() p
    for p in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
        iptables:iptables conntrack:conntrack ipset:ipset etcd:etcd-server jq:jq curl:curl \
        gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev nsenter:util-linux; do
        if [[ ${p%%:*} == /* ]]; then [[ -e ${p%%:*} ]]; else command -v "${p%%:*}" >/dev/null; fi ||
            missing+=("${p#*:}")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
        --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
            "${missing[@]}" >/dev/null; } || die "apt-get install ${missing[*]} failed"
    # Debian's packages start nothing here (no systemd), but make sure no host-wide containerd
    # or etcd was started by a package script.
}

# go_tool NAME MODULE@VERSION: the binary of a pinned Go module, built once per machine under
# /var/cache/polyglot/k8s/NAME-VERSION (statically, from the Go module proxy).
go_tool() {
    local name=$1 mod=$2 dir
    dir=$CACHE/$name-${mod##*@}
    if [[ ! -x $dir/$name ]]; then
        command -v go >/dev/null || die "go is needed to build $name"
        say "building $name ${mod##*@} from the Go module proxy (once per machine)" >&2
        mkdir -p "$dir.tmp"
        flock /tmp/polyglot-heavy.lock env GOBIN="$dir.tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
            go install -trimpath -ldflags='-s -w' "$mod" >&2 || die "building $mod failed"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    echo "$dir/$name"
}

binaries() {
    K8S_BIN=$("$K8S_DIR/build.sh") || die "tools/k8s/build.sh failed"
    [[ -x $K8S_BIN/kubelet && -x $K8S_BIN/kubectl ]] || die "no kubelet in '$K8S_BIN'"
    COREDNS=$(go_tool coredns "github.com/coredns/coredns@$COREDNS_VERSION")
    KUBE_ROUTER=$(go_tool kube-router \
        "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION")
    export K8S_BIN KUBE_ROUTER
}

# ---- the namespaces -----------------------------------------------------------------------------

# holder_pid [STATE]: the pid of the process holding the node's namespaces, if it runs.
holder_pid() {
    local pid
    pid=$(cat "${1:-$STATE}/run/holder.pid" 2>/dev/null) && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(stat -L -c %i "/proc/$pid/ns/net") == $(stat -L -c %i "/run/netns/$NS" 2>/dev/null) ]] &&
        echo "$pid"
}

# in_node CMD...: CMD in the node's network and mount namespaces.
in_node() { nsenter -t "$HOLDER" -n -m -- "$@"; }

create_namespace() {
    if ip -4 route show | grep -q "^${NET%/*}\|10\.201\.0\."; then
        die "$NET is already routed on this machine: the cluster's addresses would clash"
    fi
    ip netns add "$NS"
    ip link add "$HOST_IF" type veth peer name "$NODE_IF" netns "$NS"
    ip addr add "$HOST_IP/24" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    ip -n "$NS" link set lo up
    ip -n "$NS" addr add "$NODE_IP/24" dev "$NODE_IF"
    ip -n "$NS" link set "$NODE_IF" up
    # The node's own connections to a Service need a route for kube-proxy's translation to see
    # them; an address nobody translates gets no answer to its ARP request (the host neither
    # owns it nor forwards): no packet leaves the namespace.
    ip -n "$NS" route add "$SERVICE_CIDR" dev "$NODE_IF" src "$NODE_IP"
}

start_holder() {
    rm -f "$STATE/run/holder.pid"
    setsid nsenter --net="/run/netns/$NS" unshare --mount --propagation private -- \
        "$K8S_DIR/node.sh" hold "$STATE" >>"$STATE/logs/holder.log" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 50; i++)); do
        HOLDER=$(holder_pid) && return 0
        sleep 0.1
    done
    cat "$STATE/logs/holder.log" >&2
    die "the node's namespaces did not come up (log: $STATE/logs/holder.log)"
}

save_sysctls() {
    [[ -s $STATE/run/sysctl.orig ]] && return 0
    local s
    for s in "${KUBELET_SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$STATE/run/sysctl.orig"
}

restore_sysctls() {
    [[ -s $STATE/run/sysctl.orig ]] || return 0
    sysctl -q -p "$STATE/run/sysctl.orig" >/dev/null || echo "cluster.sh: could not restore" \
        "the kernel settings in $STATE/run/sysctl.orig" >&2
    rm -f "$STATE/run/sysctl.orig"
}

# ---- images -------------------------------------------------------------------------------------

# oci_archive REF FILE OUT [USER]: a one-layer OCI archive of FILE as /bin/app, its entrypoint.
# Enough for the cluster's own static programs (pause, CoreDNS): no base image, no registry.
oci_archive() {
    local ref=$1 file=$2 out=$3 user=${4:-65532:65532} w lsha lsize csha csize msha msize
    w=$(mktemp -d)
    mkdir -p "$w/root/bin" "$w/oci/blobs/sha256"
    cp "$file" "$w/root/bin/app"
    tar -C "$w/root" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$w/layer" bin
    lsha=$(sha256sum "$w/layer" | cut -d' ' -f1)
    lsize=$(stat -c %s "$w/layer")
    mv "$w/layer" "$w/oci/blobs/sha256/$lsha"
    printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/app"],"User":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$user" "$lsha" >"$w/config"
    csha=$(sha256sum "$w/config" | cut -d' ' -f1)
    csize=$(stat -c %s "$w/config")
    mv "$w/config" "$w/oci/blobs/sha256/$csha"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$csha" "$csize" "$lsha" "$lsize" >"$w/manifest"
    msha=$(sha256sum "$w/manifest" | cut -d' ' -f1)
    msize=$(stat -c %s "$w/manifest")
    mv "$w/manifest" "$w/oci/blobs/sha256/$msha"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$msha" "$msize" "$ref" "${ref##*:}" >"$w/oci/index.json"
    tar -C "$w/oci" -cf "$out" .
    rm -rf "$w"
}

has_image() { in_node ctr -n k8s.io images ls -q "name==$1" | grep -q .; }

# import_archive FILE: loads an OCI archive unless this very file was loaded already.
import_archive() {
    local f=$1 stamp
    stamp=$STATE/containerd/imported/$(realpath "$f" | sha256sum | cut -c1-16)
    if [[ -e $stamp && ! $f -nt $stamp ]]; then
        return 0
    fi
    local t=$SECONDS out
    out=$(in_node ctr -n k8s.io images import --no-unpack=false "$f" 2>&1) ||
        die "importing $f failed: $out"
    mkdir -p "${stamp%/*}"
    touch -r "$f" "$stamp"
    printf '    %-60s %3ds  %s\n' "${f##*/}" "$((SECONDS - t))" \
        "$(sed -n 's/^unpacking \([^ ]*\) .*/\1/p' <<<"$out" | paste -sd' ')"
}

load_images() {
    local a f files=()
    for a in "$@"; do
        if [[ -d $a ]]; then
            for f in "$a"/*.tar; do [[ -e $f ]] && files+=("$f"); done
        elif [[ -f $a ]]; then
            files+=("$a")
        else
            die "no image archive or folder '$a'"
        fi
    done
    ((${#files[@]})) || die "no *.tar archive in $*"
    say "loading ${#files[@]} image archive(s) into the node's containerd"
    for f in "${files[@]}"; do import_archive "$(realpath "$f")"; done
}

# The cluster's own images: the pause image (unless k8s-images' archive brought one) and
# CoreDNS, both single static binaries.
own_images() {
    local w
    w=$(mktemp -d)
    if ! has_image "$PAUSE_IMAGE"; then
        say "building $PAUSE_IMAGE (a static C program)"
        cat >"$w/pause.c" <<'EOF'
/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, stops on a signal. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) ; }
static void quit(int s) { (void)s; _exit(0); }
int main(void)
{
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;)
        pause();
}
EOF
        gcc -O2 -static -o "$w/pause" "$w/pause.c" || die "building the pause program failed"
        oci_archive "$PAUSE_IMAGE" "$w/pause" "$w/pause.tar"
        in_node ctr -n k8s.io images import "$w/pause.tar" >/dev/null
    fi
    if ! has_image "$COREDNS_IMAGE"; then
        say "building $COREDNS_IMAGE"
        oci_archive "$COREDNS_IMAGE" "$COREDNS" "$w/coredns.tar"
        in_node ctr -n k8s.io images import "$w/coredns.tar" >/dev/null
    fi
    rm -rf "$w"
}

# ---- the cluster --------------------------------------------------------------------------------

kubectl_() { "$K8S_BIN/kubectl" --kubeconfig="$KUBECONFIG_PATH" "$@"; }

# The control plane (tools/k8s/control-plane.sh: etcd, API server, controller-manager, scheduler)
# on the node's address, its state in STATE/cp.
control_plane_up() {
    if in_node "$K8S_DIR/control-plane.sh" status "$STATE/cp" >/dev/null 2>&1; then
        cp_paths
        return 0
    fi
    # Some component stopped: restart them all (etcd's data and the PKI are kept).
    in_node "$K8S_DIR/control-plane.sh" down "$STATE/cp" >>"$STATE/logs/control-plane.log" 2>&1 ||
        true
    in_node env K8S_BIN="$K8S_BIN" "$K8S_DIR/control-plane.sh" up "$STATE/cp" \
        --address "$NODE_IP" --components all --node-name "$NODE_NAME" \
        >>"$STATE/logs/control-plane.log" 2>&1 ||
        { tail -n 30 "$STATE/logs/control-plane.log" >&2; die "the control plane did not start" \
            "(log: $STATE/logs/control-plane.log)"; }
    cp_paths
}

# The control plane's PKI (tools/k8s/pki.sh): a kubeconfig per component.
cp_paths() {
    PKI=$STATE/cp/pki
    KUBECONFIG_PATH=$PKI/admin.kubeconfig
    [[ -s $KUBECONFIG_PATH && -s $PKI/kubelet.kubeconfig ]] ||
        die "the control plane left no kubeconfig in $PKI"
}

addons() {
    kubectl_ apply -f - >/dev/null <<'EOF2'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: polyglot-local
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: polyglot.dev/hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF2
    kubectl_ apply -f "$K8S_DIR/coredns/coredns.yaml" >/dev/null
}

wait_node_ready() {
    local deadline=$((SECONDS + 90))
    until kubectl_ get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; do
        ((SECONDS < deadline)) || die "the node is not Ready after 90 s (logs: $STATE/logs)"
        sleep 0.5
    done
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "needs root (network namespace, containerd, kubelet)"
    local images=()
    while (($#)); do
        case $1 in
        --images) images+=("$2") && shift 2 ;;
        *) die "unknown argument '$1'" ;;
        esac
    done
    local other
    other=$(cat "$POINTER" 2>/dev/null || true)
    if [[ -n $other && $other != "$STATE" ]]; then
        if holder_pid "$other" >/dev/null; then
            die "a cluster with state $other is up: tools/k8s/cluster.sh down $other first"
        fi
        say "cleaning up after a cluster that did not stop ($other)"
        (cmd_down "$other") || true
    fi
    ensure_packages
    binaries
    mkdir -p "$STATE/run" "$STATE/logs"
    if HOLDER=$(holder_pid); then
        say "the node's namespaces are up already (holder $HOLDER)"
    else
        # Whatever a node that did not stop left (its netns, orphaned containers, the kernel
        # settings to restore) goes first.
        cmd_down "$STATE" >/dev/null
        mkdir -p "$STATE/run" "$STATE/logs"
        say "creating network namespace $NS ($NODE_IP, host side $HOST_IP)"
        echo "$STATE" >"$POINTER"
        save_sysctls
        create_namespace
        start_holder
    fi
    say "containerd"
    in_node "$K8S_DIR/node.sh" containerd "$STATE"
    ((${#images[@]} == 0)) || load_images "${images[@]}"
    own_images
    say "control plane (etcd, kube-apiserver, controller-manager, scheduler) on $NODE_IP"
    control_plane_up
    say "kubelet, kube-proxy"
    in_node "$K8S_DIR/node.sh" kubelet "$STATE" "$PKI"
    in_node "$K8S_DIR/node.sh" kube-proxy "$STATE" "$PKI/kube-proxy.kubeconfig"
    wait_node_ready
    say "NetworkPolicy controller (kube-router, firewall only), volume provisioner"
    in_node "$K8S_DIR/node.sh" netpol "$STATE" "$KUBECONFIG_PATH"
    in_node "$K8S_DIR/node.sh" provisioner "$STATE" "$KUBECONFIG_PATH"
    say "cluster DNS (CoreDNS on 10.96.0.10), default StorageClass polyglot-local"
    addons
    kubectl_ -n kube-system rollout status deployment/coredns --timeout=90s >/dev/null ||
        die "CoreDNS did not become ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)"
    check_dev_null
    say "cluster up: node polyglot-k8s Ready, $(rss_mb) MB RSS in all"
    echo "KUBECONFIG=$KUBECONFIG_PATH"
}

cmd_load() {
    HOLDER=$(holder_pid) || die "the cluster is not up (tools/k8s/cluster.sh up)"
    (($#)) || die "usage: cluster.sh load [STATE] DIR|FILE..."
    load_images "$@"
}

# Resident memory of every process of the cluster: those in its network namespace (node
# daemons, control plane, shims) and their descendants (the containers, in their pods'
# namespaces).
all_pids() {
    local pending seen=" " p c
    pending=$(ip netns pids "$NS" 2>/dev/null || true)
    while [[ -n $pending ]]; do
        local next=""
        for p in $pending; do
            [[ $seen == *" $p "* ]] && continue
            seen+="$p "
            for c in $(pgrep -P "$p" 2>/dev/null || true); do next+="$c "; done
        done
        pending=$next
    done
    tr ' ' '\n' <<<"$seen" | grep . || true
}

rss_mb() {
    local total=0 p kb
    for p in $(all_pids); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo $((total / 1024))
}

check_dev_null() {
    if [[ ! -c /dev/null || $(stat -c '%t,%T' /dev/null) != "1,3" ]]; then
        rm -f /dev/null && mknod -m 666 /dev/null c 1 3
        die "/dev/null was replaced (now restored as the character device 1,3)"
    fi
}

cmd_down() {
    local state=${1:-$STATE}
    STATE=$state
    if HOLDER=$(holder_pid); then
        say "stopping containers and node daemons"
        K8S_BIN=${K8S_BIN:-} in_node "$K8S_DIR/node.sh" stop "$STATE" || true
        if [[ -x $K8S_DIR/control-plane.sh ]]; then
            say "stopping the control plane"
            in_node "$K8S_DIR/control-plane.sh" down "$STATE/cp" >>"$STATE/logs/control-plane.log" 2>&1 ||
                true
        fi
    fi
    # Whatever still runs in the namespace is the cluster's (nothing else enters it).
    local pids p i
    for i in 1 2 3; do
        pids=$(all_pids)
        [[ -z $pids ]] && break
        for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
        sleep 1
    done
    pids=$(all_pids)
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    # A container whose shim was killed (a node that did not stop) lives on, orphaned, in the
    # cgroups containerd made for it: those under k8s.io are the node's.
    pids+=" $(cat /sys/fs/cgroup/*/k8s.io/*/cgroup.procs 2>/dev/null | sort -u | paste -sd' ' || true)"
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    [[ -z ${pids// /} ]] || sleep 0.5
    if ip netns list | grep -qw "$NS"; then
        say "deleting network namespace $NS"
        ip netns del "$NS" || true
    fi
    ip link del "$HOST_IF" 2>/dev/null || true
    local d
    if [[ -s $STATE/run/created-dirs ]]; then
        while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$STATE/run/created-dirs"
    fi
    restore_sysctls
    # runc removes a container's cgroups with the container; the parents containerd made for
    # its k8s.io namespace stay, empty (rmdir refuses a cgroup that still has processes).
    local cg
    for cg in /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/unified/k8s.io; do
        [[ -d $cg ]] || continue
        find "$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
        rmdir "$cg" 2>/dev/null || true
    done
    # The next up starts a new cluster; only the image store and the logs are kept.
    rm -rf "$STATE/cp" "$STATE/kubelet" "$STATE/kube-proxy" "$STATE/node" "$STATE/cni" \
        "$STATE/volumes" "$STATE/run" "$STATE/containerd/state"
    [[ $(cat "$POINTER" 2>/dev/null) == "$STATE" ]] && rm -f "$POINTER"
    leftovers
    check_dev_null
    say "cluster down"
}

# Nothing of the cluster may stay: no process, no mount of its state, no netns, no host rule.
leftovers() {
    local bad=()
    [[ -z $(all_pids) ]] || bad+=("processes $(all_pids | paste -sd' ')")
    ! ip netns list | grep -qw "$NS" || bad+=("network namespace $NS")
    ! grep -q " $STATE" /proc/self/mountinfo || bad+=("mounts under $STATE")
    ! ip link show "$HOST_IF" >/dev/null 2>&1 || bad+=("link $HOST_IF")
    ! compgen -G '/sys/fs/cgroup/*/k8s.io' >/dev/null || bad+=("cgroups /sys/fs/cgroup/*/k8s.io" \
        "($(cat /sys/fs/cgroup/*/k8s.io/*/cgroup.procs 2>/dev/null | sort -u | paste -sd' ' || true))")
    ! iptables-save 2>/dev/null | grep -qE 'KUBE-|KUBE-ROUTER|CNI-|10\.244\.' ||
        bad+=("iptables rules on the host")
    ((${#bad[@]} == 0)) || die "left behind: ${bad[*]}"
}

cmd_status() {
    if ! HOLDER=$(holder_pid); then
        echo "cluster: down (state $STATE)"
        return 1
    fi
    binaries >/dev/null 2>&1 || true
    cp_paths
    echo "cluster: up (state $STATE, holder $HOLDER, $(rss_mb) MB RSS)"
    echo "KUBECONFIG=$KUBECONFIG_PATH"
    local n
    for n in containerd kubelet kube-proxy kube-router provisioner; do
        printf '  %-12s %s\n' "$n" "$(kill -0 "$(cat "$STATE/run/$n.pid" 2>/dev/null)" 2>/dev/null &&
            echo "pid $(cat "$STATE/run/$n.pid")" || echo "not running")"
    done
    kubectl_ get nodes -o wide 2>&1 | sed 's/^/  /'
    kubectl_ get pods -A -o wide 2>&1 | sed 's/^/  /'
}

cmd_exec() {
    HOLDER=$(holder_pid) || die "the cluster is not up"
    [[ ${1:-} == -- ]] && shift
    (($#)) || die "usage: cluster.sh exec [STATE] -- CMD..."
    exec nsenter -t "$HOLDER" -n -- "$@"
}

[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0 # sourced (tests): functions only

# ---- main ---------------------------------------------------------------------------------------

(($#)) || die "usage: cluster.sh up|load|down|status|exec|kubeconfig [STATE] ..."
cmd=$1
shift
# Without a STATE argument: the running cluster's (see POINTER), else the default.
STATE=${POLYGLOT_K8S_STATE:-}
if [[ ${1:-} == /* ]]; then
    STATE=${1%/}
    shift
fi
[[ -n $STATE || $cmd == up ]] || STATE=$(cat "$POINTER" 2>/dev/null || true)
STATE=${STATE:-/var/lib/polyglot/k8s-node}
case $cmd in
up) cmd_up "$@" ;;
load) cmd_load "$@" ;;
down) cmd_down "$STATE" ;;
status) cmd_status ;;
exec) cmd_exec "$@" ;;
kubeconfig) cp_paths && echo "$KUBECONFIG_PATH" ;;
env)
    cp_paths
    K8S_BIN=$("$K8S_DIR/build.sh")
    printf 'export KUBECONFIG=%q PATH=%q\n' "$KUBECONFIG_PATH" "$K8S_BIN:$PATH"
    ;;
kubectl)
    cp_paths
    K8S_BIN=$("$K8S_DIR/build.sh")
    exec "$K8S_BIN/kubectl" --kubeconfig="$KUBECONFIG_PATH" "$@"
    ;;
*) die "unknown command '$cmd'" ;;
esac

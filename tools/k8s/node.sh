#!/usr/bin/env bash
# The node of the local single-node cluster: what runs INSIDE its network and mount namespaces.
# tools/k8s/cluster.sh creates the namespaces and calls this script in them; it is not meant to
# be run by hand (tools/k8s/NODE.md, "single-node cluster").
#
#   node.sh hold STATE              (in a fresh mount namespace) make the mounts private to the
#                                   node, then stay as the namespaces' holder process
#   node.sh containerd STATE        write containerd's config and start it; wait for its socket
#   node.sh kubelet STATE PKI             start the kubelet (PKI: tools/k8s/pki.sh's folder)
#   node.sh kube-proxy STATE KUBECONFIG   start kube-proxy (iptables mode)
#   node.sh netpol STATE KUBECONFIG       start kube-router's NetworkPolicy controller only
#   node.sh provisioner STATE KUBECONFIG  start the hostPath volume provisioner loop
#   node.sh provision-loop STATE KUBECONFIG  (that loop itself)
#   node.sh stop STATE              stop every container and every daemon started here
#
# Environment: K8S_BIN (kubelet, kube-proxy, kubectl), KUBE_ROUTER (its binary).
#
# Every path the node's programs write to is under STATE or on a tmpfs of the node's own mount
# namespace: the host keeps no mount, no file and no rule of the node once it is gone.
set -euo pipefail

NODE_NAME=polyglot-k8s
NODE_IP=10.201.0.2
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10

die() {
    echo "node.sh: $*" >&2
    exit 1
}

# Directories the node needs at fixed places (hard-coded in kubelet, containerd's shims, CNI):
# each is an empty mount point on the host, backed by STATE or a tmpfs in the node's own mount
# namespace. The ones this script had to create are listed in STATE/run/created-dirs so that
# cluster.sh down removes them again.
FIXED_DIRS=(/run/containerd /var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers
    /var/lib/kube-router)

# daemon NAME CMD...: starts CMD detached, logging to STATE/logs/NAME.log, pid in
# STATE/run/NAME.pid.
daemon() {
    local name=$1
    shift
    setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/run/$name.pid"
}

# live PID: the process exists and is not a zombie. A daemon's parent (this script) is gone by
# the time it stops, and this machine's pid 1 reaps orphans only every second or two.
live() { [[ -r /proc/$1/stat && $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

alive() {
    local pid
    pid=$(cat "$STATE/run/$1.pid" 2>/dev/null) && [[ -n $pid ]] && live "$pid"
}

# wait_for WHAT SECONDS CMD...: polls CMD every 0.2 s; dies with the log's tail after SECONDS.
wait_for() {
    local what=$1 secs=$2 log=$3
    shift 3
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$STATE/logs/$log.log" >&2 || true
            die "$what not ready after ${secs}s (log: $STATE/logs/$log.log)"
        fi
        sleep 0.2
    done
}

cmd_hold() {
    mkdir -p "$STATE/run" "$STATE/logs"
    : >"$STATE/run/created-dirs.new"
    local d
    for d in "${FIXED_DIRS[@]}"; do
        [[ -d $d ]] || { mkdir -p "$d" && echo "$d" >>"$STATE/run/created-dirs.new"; }
    done
    cat "$STATE/run/created-dirs.new" >>"$STATE/run/created-dirs"
    rm -f "$STATE/run/created-dirs.new"

    # A sysfs of the node's network namespace (CNI and cadvisor read /sys/class/net), with the
    # host's cgroup hierarchies moved over from the old one (runc and the kubelet need them).
    local hold=$STATE/run/cgroup-hold
    mkdir -p "$hold"
    mount --rbind /sys/fs/cgroup "$hold"
    umount -l /sys
    mount -t sysfs sysfs /sys
    mount --move "$hold" /sys/fs/cgroup

    mount -t tmpfs -o mode=0755 polyglot-k8s /run/containerd
    # containerd bind-mounts each pod's network namespace under /run/netns: on a tmpfs of ours
    # they vanish with the node instead of piling up in the host's `ip netns list`.
    mount -t tmpfs -o mode=0755 polyglot-k8s /run/netns
    for d in kubelet cni pod-logs containers-logs kube-router; do mkdir -p "$STATE/node/$d"; done
    mount --bind "$STATE/node/kubelet" /var/lib/kubelet
    mount --bind "$STATE/node/cni" /var/lib/cni
    mount --bind "$STATE/node/pod-logs" /var/log/pods
    mount --bind "$STATE/node/containers-logs" /var/log/containers
    mount --bind "$STATE/node/kube-router" /var/lib/kube-router

    # Forwarding between the pods' bridge and the node, and bridged pod-to-pod traffic through
    # iptables (kube-proxy's DNAT replies and kube-router's policies need it): this network
    # namespace's own settings.
    sysctl -qw net.ipv4.ip_forward=1
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
    sysctl -qw net.bridge.bridge-nf-call-ip6tables=1

    echo $$ >"$STATE/run/holder.pid"
    exec sleep infinity
}

cmd_containerd() {
    alive containerd && return 0
    mkdir -p "$STATE/containerd/root" "$STATE/containerd/state" "$STATE/cni/net.d" \
        "$STATE/cni/ipam"
    # The pods' network: one bridge on the node, host-local addresses from the pod CIDR, a
    # route to everything through the bridge (the node routes and kube-proxy translates).
    cat >"$STATE/cni/net.d/10-polyglot.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "polyglot",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    # restrict_oom_score_adj: root here has no CAP_SYS_RESOURCE, so containerd may only raise
    # a container's oom_score_adj. Plugins that would write outside STATE (opt) or that this
    # machine cannot use are disabled.
    cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/polyglot/pause:3.10"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
    daemon containerd containerd --config "$STATE/containerd/config.toml"
    wait_for containerd 30 containerd ctr version
}

cmd_kubelet() {
    local pki=$1
    alive kubelet && return 0
    mkdir -p "$STATE/kubelet"
    # The pods' resolv.conf is made from this file plus clusterDNS: the cluster is offline, so
    # there is no upstream resolver and pods with dnsPolicy Default resolve nothing.
    cat >"$STATE/kubelet/resolv.conf" <<EOF
# the local cluster has no upstream resolver: only cluster names resolve (CoreDNS, $DNS_IP)
nameserver 127.0.0.1
EOF
    # cgroupfs without per-QoS cgroups and without node allocatable enforcement: this VM has
    # cgroup v1 and no systemd, and root cannot raise resource limits. Evictions only when the
    # disk or memory is really short: the machine is shared with the local stack.
    cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
failCgroupV1: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $STATE/kubelet/resolv.conf
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 60
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
shutdownGracePeriod: 0s
EOF
    daemon kubelet "$K8S_BIN/kubelet" --config="$STATE/kubelet/config.yaml" \
        --kubeconfig="$pki/kubelet.kubeconfig" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
        --root-dir=/var/lib/kubelet --v=1
    wait_for kubelet 60 kubelet curl -fsS http://127.0.0.1:10248/healthz
}

cmd_kube_proxy() {
    local kubeconfig=$1
    alive kube-proxy && return 0
    mkdir -p "$STATE/kube-proxy"
    # conntrack: 0 leaves the kernel's (host-wide) limits and timeouts as they are.
    cat >"$STATE/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$NODE_IP/32]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {minSyncPeriod: 0s, syncPeriod: 30s}
EOF
    daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$STATE/kube-proxy/config.yaml" --v=1
    wait_for kube-proxy 60 kube-proxy curl -fsS http://127.0.0.1:10256/healthz
}

cmd_netpol() {
    local kubeconfig=$1
    alive kube-router && return 0
    # Only the firewall controller: pods keep the bridge network and kube-proxy; kube-router
    # turns NetworkPolicies into iptables chains and ipsets on this node.
    daemon kube-router env NODE_NAME="$NODE_NAME" "$KUBE_ROUTER" --kubeconfig="$kubeconfig" \
        --run-firewall=true --run-router=false --run-service-proxy=false \
        --enable-cni=false --enable-ipv6=false --hostname-override="$NODE_NAME" \
        --service-cluster-ip-range="$SERVICE_CIDR" --health-port=20244 --metrics-port=0 \
        --iptables-sync-period=1m --v=1
    wait_for kube-router 60 kube-router curl -fsS http://127.0.0.1:20244/healthz
}

cmd_provisioner() {
    local kubeconfig=$1
    alive provisioner && return 0
    daemon provisioner "$0" provision-loop "$STATE" "$kubeconfig"
}

# A PersistentVolume on a directory under STATE/volumes for every Pending claim of the
# polyglot-local StorageClass (the cluster's default), pre-bound to its claim; a Released one
# is deleted with its directory. Sizes are recorded, not enforced (hostPath has no quota).
cmd_provision_loop() {
    local kubeconfig=$1
    local k=("$K8S_BIN/kubectl" --kubeconfig="$kubeconfig" --request-timeout=10s)
    mkdir -p "$STATE/volumes"
    while :; do
        "${k[@]}" get pvc -A -o json 2>/dev/null | jq -r '.items[]
            | select(.status.phase == "Pending" and (.spec.volumeName // "") == ""
                and (.spec.storageClassName // "polyglot-local") == "polyglot-local")
            | [.metadata.namespace, .metadata.name, .metadata.uid,
               .spec.resources.requests.storage, (.spec.accessModes | join(","))] | @tsv' |
            while IFS=$'\t' read -r ns name uid size modes; do
                local dir=$STATE/volumes/$ns-$name
                mkdir -p "$dir"
                # Engines run as their own non-root users and hostPath has no fsGroup.
                chmod 0777 "$dir"
                jq -n --arg ns "$ns" --arg name "$name" --arg uid "$uid" --arg size "$size" \
                    --arg dir "$dir" --arg modes "$modes" '{
                    apiVersion: "v1", kind: "PersistentVolume",
                    metadata: {name: ("pvc-" + $uid), labels: {"polyglot.dev/provisioner": "hostpath"},
                               annotations: {"pv.kubernetes.io/provisioned-by": "polyglot.dev/hostpath"}},
                    spec: {capacity: {storage: $size}, accessModes: ($modes | split(",")),
                           persistentVolumeReclaimPolicy: "Delete",
                           storageClassName: "polyglot-local", volumeMode: "Filesystem",
                           hostPath: {path: $dir, type: "Directory"},
                           claimRef: {namespace: $ns, name: $name, uid: $uid}}}' |
                    "${k[@]}" create -f - >/dev/null 2>&1 &&
                    echo "provisioned $ns/$name ($size) in $dir"
            done
        "${k[@]}" get pv -l polyglot.dev/provisioner=hostpath -o json 2>/dev/null |
            jq -r '.items[] | select(.status.phase == "Released" or .status.phase == "Failed")
                | [.metadata.name, .spec.hostPath.path] | @tsv' |
            while IFS=$'\t' read -r pv dir; do
                "${k[@]}" delete pv "$pv" --wait=false >/dev/null 2>&1 || continue
                [[ $dir == "$STATE/volumes/"* ]] && rm -rf "$dir"
                echo "deleted $pv and $dir"
            done
        sleep 2
    done
}

# stop_daemons SECONDS NAME...: TERM to each one's process group at once, KILL to what still
# runs after SECONDS.
stop_daemons() {
    local secs=$1 name pid pids=() i
    shift
    for name in "$@"; do
        pid=$(cat "$STATE/run/$name.pid" 2>/dev/null) || continue
        rm -f "$STATE/run/$name.pid"
        { [[ -n $pid ]] && live "$pid"; } || continue
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    done
    for ((i = 0; i < secs * 10; i++)); do
        for pid in "${pids[@]}"; do live "$pid" && break; done || return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
}

# Every container is killed and removed through containerd, so that its shim, its cgroups and
# its mounts go with it; then the daemons stop. (containerd's CRI deletes a task itself once it
# has exited: a failed `tasks delete` is that, not an error.)
cmd_stop() {
    stop_daemons 10 provisioner kube-router kubelet kube-proxy
    if alive containerd; then
        local ids id
        ids=$(ctr -n k8s.io tasks ls -q 2>/dev/null || true)
        for id in $ids; do ctr -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
        for id in $ids; do ctr -n k8s.io tasks delete "$id" >/dev/null 2>&1 || true; done
        for id in $(ctr -n k8s.io containers ls -q 2>/dev/null || true); do
            ctr -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
        done
    fi
    stop_daemons 10 containerd
}

[[ $# -ge 2 ]] || die "usage: node.sh hold|containerd|kubelet|kube-proxy|netpol|provisioner|stop STATE ..."
cmd=$1
STATE=$2
shift 2
mkdir -p "$STATE/run" "$STATE/logs"
case $cmd in
hold) cmd_hold ;;
containerd) cmd_containerd ;;
kubelet) cmd_kubelet "$@" ;;
kube-proxy) cmd_kube_proxy "$@" ;;
netpol) cmd_netpol "$@" ;;
provisioner) cmd_provisioner "$@" ;;
provision-loop) cmd_provision_loop "$@" ;;
stop) cmd_stop ;;
*) die "unknown command '$cmd'" ;;
esac

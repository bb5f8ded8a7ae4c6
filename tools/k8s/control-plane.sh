#!/usr/bin/env bash
# Start and stop a local Kubernetes control plane: etcd, kube-apiserver and, with
# `--components all`, kube-controller-manager and kube-scheduler.
#
#   tools/k8s/control-plane.sh up   STATE_DIR [--address IP] [--components apiserver|all]
#                                             [--node-name NAME] [--timeout SECONDS]
#   tools/k8s/control-plane.sh down STATE_DIR
#   tools/k8s/control-plane.sh status STATE_DIR
#
# `up` makes the PKI (pki.sh) in STATE_DIR/pki, picks free ports above 40000 on the address
# (kept across restarts in STATE_DIR/ports.env), starts each component in its own process group
# (pid in STATE_DIR/run/<name>.pid, log in STATE_DIR/logs/<name>.log) and returns when the
# apiserver's /readyz answers through the admin kubeconfig (and, with `all`, when the
# controller-manager and scheduler are healthy and the controllers have made the `default`
# ServiceAccount). It fails, printing the tail of the guilty log, if a component exits or the
# deadline passes. It then writes STATE_DIR/env (source it: KUBECONFIG, K8S_BIN, APISERVER_URL,
# the ports) and prints the admin kubeconfig's path on stdout.
#
# `down` stops every component (SIGTERM to its process group, SIGKILL after 15 s) and leaves
# nothing running; the state (etcd data, PKI) stays for the next `up` until STATE_DIR is removed.
#
#   --address IP      where everything listens (default 127.0.0.1). Run it inside a network
#                     namespace with that namespace's own node IP to serve a node there.
#   --components      apiserver (etcd + kube-apiserver; default) or all
#   --node-name NAME  the kubelet's node name, for its certificate (see pki.sh)
#   --timeout S       readiness deadline per component (default 90)
# Environment: K8S_BIN (the binaries; default: the output of tools/k8s/build.sh), ETCD (default
# etcd on PATH).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}
say() { printf '%s\n' "$*" >&2; }
die() {
    say "control-plane.sh: $*"
    exit 1
}

[[ $# -ge 2 ]] || usage
action=$1
state=$2
shift 2
address=127.0.0.1
components=apiserver
node_name=
timeout=90
while [[ $# -gt 0 ]]; do
    case $1 in
    --address) address=${2:?--address needs an IP} && shift 2 ;;
    --components) components=${2:?--components needs apiserver or all} && shift 2 ;;
    --node-name) node_name=${2:?--node-name needs a name} && shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds} && shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1'" ;;
    esac
done
case $components in apiserver | all) ;; *) die "--components must be apiserver or all" ;; esac

# Stopped in this order; started in the reverse one.
all_components=(kube-scheduler kube-controller-manager kube-apiserver etcd)

pid_of() { # NAME -> the pid if that component is running
    local f=$state/run/$1.pid pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    kill -0 "$pid" 2>/dev/null || return 1
    printf '%s' "$pid"
}

stop_one() { # NAME
    local pid i
    pid=$(pid_of "$1") || {
        rm -f "$state/run/$1.pid"
        return 0
    }
    # Each component leads its own process group (setsid), so the group is its pid.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "==> $1 ignored SIGTERM for 15 s: SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    kill -0 "$pid" 2>/dev/null && die "$1 (pid $pid) does not stop"
    rm -f "$state/run/$1.pid"
    say "==> stopped $1"
}

down() {
    local c
    [[ -d $state ]] || return 0
    for c in "${all_components[@]}"; do
        stop_one "$c"
    done
}

status() {
    local c pid rc=0
    for c in "${all_components[@]}"; do
        if pid=$(pid_of "$c"); then
            printf '%-24s running (pid %s)\n' "$c" "$pid"
        else
            printf '%-24s stopped\n' "$c"
            rc=3
        fi
    done
    return $rc
}

port_free() { # PORT: nothing listens on it in this network namespace
    [[ -z $(ss -Htln "sport = :$1") ]]
}

# Ports above the NodePort range (30000-32767), so that kube-proxy on a node sharing this
# address never collides with them; kept in ports.env so a restart finds etcd where it was.
pick_ports() {
    local name p
    declare -gA port=()
    if [[ -f $state/ports.env ]]; then
        while IFS='=' read -r name p; do
            [[ $name =~ ^[A-Z_]+_PORT$ ]] && port[$name]=$p
        done <"$state/ports.env"
    fi
    : >"$state/ports.env.new"
    for name in ETCD_PORT ETCD_PEER_PORT APISERVER_PORT CONTROLLER_MANAGER_PORT SCHEDULER_PORT; do
        p=${port[$name]:-}
        if [[ -z $p ]] || ! port_free "$p"; then
            for ((;;)); do
                p=$((40000 + RANDOM % 20000))
                port_free "$p" && ! [[ " ${port[*]} " == *" $p "* ]] && break
            done
        fi
        port[$name]=$p
        echo "$name=$p" >>"$state/ports.env.new"
    done
    mv "$state/ports.env.new" "$state/ports.env"
}

start() { # NAME COMMAND...: in its own session and process group, detached from us
    local name=$1
    shift
    # setsid execs in place (this background child is no group leader), so $! is the group.
    setsid "$@" </dev/null >>"$state/logs/$name.log" 2>&1 &
    echo $! >"$state/run/$name.pid"
    say "==> started $name (pid $!, log $state/logs/$name.log)"
}

# NAME DESCRIPTION COMMAND...: poll COMMAND until it succeeds, the component dies, or the deadline.
await() {
    local name=$1 what=$2 deadline=$((SECONDS + timeout))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ! pid_of "$name" >/dev/null; then
            say "control-plane.sh: $name exited before $what; last lines of its log:"
            tail -n 30 "$state/logs/$name.log" >&2
            down
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            say "control-plane.sh: $name: no $what after $timeout s; last lines of its log:"
            tail -n 30 "$state/logs/$name.log" >&2
            down
            exit 1
        fi
        sleep 0.25
    done
    say "==> $name: $what"
}

healthy() { # URL: an https /healthz that answers ok (always-allowed path, no credentials)
    [[ $(curl -sfk --max-time 2 "$1") == ok ]]
}

up() {
    local bin etcd kc pki t0=$SECONDS p c
    for c in "${all_components[@]}"; do
        if p=$(pid_of "$c"); then
            die "$c is already running in '$state' (pid $p): run '$0 down $state' first"
        fi
    done
    [[ $address =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--address '$address' is not an IPv4 address"
    if [[ -z ${K8S_BIN:-} ]]; then
        K8S_BIN=$("$here/build.sh") || die "tools/k8s/build.sh failed"
    fi
    bin=$K8S_BIN
    etcd=${ETCD:-$(command -v etcd)} || die "etcd is missing: apt-get install -y etcd-server"
    mkdir -p "$state/logs" "$state/run" "$state/etcd"
    chmod 700 "$state/etcd"
    state=$(cd "$state" && pwd)
    pki=$state/pki
    kc=$pki/admin.kubeconfig

    pick_ports
    local url=https://$address:${port[APISERVER_PORT]}
    "$here/pki.sh" "$pki" --address "$address" --server "$url" ${node_name:+--node-name "$node_name"}

    local etcd_url=http://$address:${port[ETCD_PORT]}
    local peer_url=http://$address:${port[ETCD_PEER_PORT]}
    # Plain HTTP: etcd listens only on the address of this machine or of the caller's network
    # namespace, for the apiserver next to it.
    start etcd "$etcd" --name polyglot --data-dir "$state/etcd" \
        --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
        --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
        --initial-cluster "polyglot=$peer_url" --initial-cluster-state new \
        --quota-backend-bytes 1073741824
    await etcd "healthy at $etcd_url" curl -sf --max-time 2 "$etcd_url/health"

    start kube-apiserver "$bin/kube-apiserver" \
        --advertise-address "$address" --bind-address "$address" \
        --secure-port "${port[APISERVER_PORT]}" \
        --etcd-servers "$etcd_url" \
        --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --client-ca-file "$pki/ca.crt" \
        --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
        --allow-privileged=true \
        --service-cluster-ip-range 10.96.0.0/16 \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$pki/sa.pub" \
        --service-account-signing-key-file "$pki/sa.key" \
        --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types InternalIP \
        --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
        --requestheader-allowed-names front-proxy-client \
        --requestheader-username-headers X-Remote-User \
        --requestheader-group-headers X-Remote-Group \
        --requestheader-extra-headers-prefix X-Remote-Extra- \
        --proxy-client-cert-file "$pki/front-proxy-client.crt" \
        --proxy-client-key-file "$pki/front-proxy-client.key" \
        --profiling=false
    await kube-apiserver "ready at $url" \
        "$bin/kubectl" --kubeconfig "$kc" get --raw /readyz --request-timeout 2s

    if [[ $components == all ]]; then
        start kube-controller-manager "$bin/kube-controller-manager" \
            --kubeconfig "$pki/controller-manager.kubeconfig" \
            --authentication-kubeconfig "$pki/controller-manager.kubeconfig" \
            --authorization-kubeconfig "$pki/controller-manager.kubeconfig" \
            --bind-address "$address" --secure-port "${port[CONTROLLER_MANAGER_PORT]}" \
            --controllers '*' --use-service-account-credentials=true \
            --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
            --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
            --service-cluster-ip-range 10.96.0.0/16 --cluster-name polyglot \
            --leader-elect=false --profiling=false
        start kube-scheduler "$bin/kube-scheduler" \
            --kubeconfig "$pki/scheduler.kubeconfig" \
            --authentication-kubeconfig "$pki/scheduler.kubeconfig" \
            --authorization-kubeconfig "$pki/scheduler.kubeconfig" \
            --bind-address "$address" --secure-port "${port[SCHEDULER_PORT]}" \
            --leader-elect=false --profiling=false
        await kube-controller-manager healthy \
            healthy "https://$address:${port[CONTROLLER_MANAGER_PORT]}/healthz"
        await kube-scheduler healthy healthy "https://$address:${port[SCHEDULER_PORT]}/healthz"
        # What a user needs first from the controllers: a namespace's token-less default account.
        await kube-controller-manager "ServiceAccount default/default made" \
            "$bin/kubectl" --kubeconfig "$kc" get serviceaccount default -n default
    fi

    {
        echo "# written by tools/k8s/control-plane.sh up; source it"
        echo "export KUBECONFIG=$kc"
        echo "export K8S_BIN=$bin"
        echo "export APISERVER_URL=$url"
        echo "export ETCD_URL=$etcd_url"
        for p in "${!port[@]}"; do
            echo "export $p=${port[$p]}"
        done
    } >"$state/env"
    say "==> control plane ($components) ready at $url in $((SECONDS - t0)) s; . $state/env"
    printf '%s\n' "$kc"
}

case $action in
up) up ;;
down) down ;;
status) status ;;
*) usage ;;
esac

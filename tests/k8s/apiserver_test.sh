#!/usr/bin/env bash
# Every overlay of deploy/k8s against a real Kubernetes API server: apply, diff, delete.
#
#   tests/k8s/apiserver_test.sh
#
# Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1 in a
# temporary state directory (tools/k8s/control-plane.sh; binaries from tools/k8s/build.sh, built
# once per machine), then for each deploy/k8s/overlays/<name>:
#   - deploy/k8s/secrets.sh <name> creates the namespace's Secrets;
#   - `kubectl apply --server-side -k` must succeed: the server validates what offline schemas
#     cannot (selectors against template labels, quantities, duplicate port names, names...);
#   - the controllers must create every workload's pods (no node: they stay Pending), so that
#     admission (Pod Security, service accounts) has accepted the pods the manifests make; a
#     FailedCreate event fails the test with its message;
#   - `kubectl diff --server-side -k` must then report nothing (the diff is printed otherwise);
#   - `kubectl delete -k --wait` must remove everything: the namespace and every object of the
#     overlay are gone. The controller-manager is what finalizes a deleted namespace.
# A self-test first proves the checks can fail: a Deployment whose selector does not match its
# template, a bad quantity and duplicate port names must be rejected, a good object accepted,
# and a diff against an object changed behind kubectl's back must be reported.
# Everything is stopped and removed on exit. About 1-2 minutes once the binaries are built.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cp_sh=$root/tools/k8s/control-plane.sh
manager=polyglot-apiserver-test
t_start=$SECONDS

say() { printf '==> %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

say "Kubernetes binaries (tools/k8s/build.sh; built once per machine, a cold build takes minutes)"
K8S_BIN=$("$root/tools/k8s/build.sh") || fail "tools/k8s/build.sh failed"
export K8S_BIN
# secrets.sh and everything below use the kubectl that matches the server.
export PATH=$K8S_BIN:$PATH

state=$(mktemp -d /tmp/polyglot-k8s-apiserver.XXXXXX)
work=$state/work
mkdir -p "$work"
cleanup() {
    local rc=$?
    if [[ $rc != 0 && -d $state/logs ]]; then
        printf '\n--- last lines of %s ---\n' "$state/logs/kube-apiserver.log" >&2
        tail -n 15 "$state/logs/kube-apiserver.log" >&2 || true
    fi
    "$cp_sh" down "$state" >/dev/null 2>&1 || "$cp_sh" down "$state" || true
    rm -rf "$state"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "control plane on 127.0.0.1 (state $state)"
"$cp_sh" up "$state" --address 127.0.0.1 --components all >/dev/null
# shellcheck source=/dev/null
. "$state/env"
kubectl version | sed 's/^/    /'
# diff_settled OUT KUBECTL-DIFF-ARGS...: `kubectl diff --server-side`, whose output goes to OUT.
# kubectl diffs without its resourceVersion lock when a controller keeps writing the object
# (a Deployment's revision annotation right after it is created...), and then reports that
# write: a difference that the manifests cause stays across three tries, 2 s apart; a race does
# not. Returns the last exit code (0 no difference, 1 difference, >1 error).
diff_settled() {
    local out=$1 try rc
    shift
    for try in 1 2 3; do
        rc=0
        kubectl diff --server-side --field-manager "$manager" "$@" >"$out" 2>&1 || rc=$?
        [[ $rc == 1 && $try -lt 3 ]] || return $rc
        sleep 2
    done
}
apiserver_rss() { ps -o rss= -p "$(<"$state/run/kube-apiserver.pid")" | awk '{print int($1/1024)}'; }

# ---- self-test: the checks below can fail ----------------------------------------------------
say "self-test: invalid objects are rejected by the server"
ns=apiserver-selftest
kubectl create namespace "$ns" >/dev/null
good_deploy() { # REPLICAS SELECTOR_APP MEMORY
    cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: selftest, namespace: $ns}
spec:
  replicas: $1
  selector: {matchLabels: {app: $2}}
  template:
    metadata: {labels: {app: selftest}}
    spec:
      containers:
        - name: c
          image: localhost/none:dev
          resources: {requests: {memory: $3}}
EOF
}
# NAME EXPECTED-MESSAGE: the manifest on stdin must be refused with that message
expect_rejected() {
    local out
    if out=$(kubectl apply --server-side --field-manager "$manager" -f - 2>&1); then
        fail "self-test: $1 was accepted by the server: $out"
    fi
    grep -qF -- "$2" <<<"$out" || fail "self-test: $1 was refused, but not for '$2': $out"
    printf '    rejected as expected: %s\n' "$1"
}
good_deploy 1 other 64Mi | expect_rejected "a Deployment whose selector does not match its template" \
    "selector\` does not match template \`labels\`"
good_deploy 1 selftest 64Mo | expect_rejected "a memory request of 64Mo" \
    "quantities must match the regular expression"
expect_rejected "a Service with two ports named http" 'Duplicate value: "http"' <<EOF
apiVersion: v1
kind: Service
metadata: {name: selftest, namespace: $ns}
spec:
  selector: {app: selftest}
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: http, port: 81, targetPort: 8081}
EOF
good_deploy 2 selftest 64Mi >"$work/selftest.yaml"
kubectl apply --server-side --field-manager "$manager" -f "$work/selftest.yaml" >/dev/null ||
    fail "self-test: a valid Deployment was refused"
printf '    accepted as expected: a valid Deployment\n'
diff_settled "$work/selftest.diff" -f "$work/selftest.yaml" ||
    fail "self-test: kubectl diff reports a change right after apply: $(cat "$work/selftest.diff")"
# The live object changes (the same manager applies 3 replicas): the file's 2 must show up.
good_deploy 3 selftest 64Mi | kubectl apply --server-side --field-manager "$manager" -f - >/dev/null
rc=0
kubectl diff --server-side --field-manager "$manager" -f "$work/selftest.yaml" >/dev/null || rc=$?
[[ $rc == 1 ]] || fail "self-test: kubectl diff exited $rc (want 1) on a changed Deployment"
printf '    diff reported as expected: a Deployment changed since the file was applied\n'
kubectl delete namespace "$ns" --wait --timeout 120s >/dev/null

# ---- every overlay -------------------------------------------------------------------------
# OVERLAY NAMESPACE: wait until every workload of the namespace has its pods; fail on the first
# FailedCreate event (admission refused a pod the manifests make).
await_pods() {
    local ns=$2 deadline=$((SECONDS + 90)) missing events kind tpl out
    local -A lacking=(
        [deployments]='{{range .items}}{{if ne (or .status.replicas 0) .spec.replicas}}deployment/{{.metadata.name}} {{end}}{{end}}'
        [statefulsets]='{{range .items}}{{if not .status.replicas}}statefulset/{{.metadata.name}} {{end}}{{end}}'
        [jobs]='{{range .items}}{{if not (or .status.active .status.succeeded .status.failed)}}job/{{.metadata.name}} {{end}}{{end}}'
    )
    while :; do
        events=$(kubectl -n "$ns" get events --field-selector type=Warning,reason=FailedCreate \
            -o go-template='{{range .items}}{{.involvedObject.kind}}/{{.involvedObject.name}}: {{.message}}{{"\n"}}{{end}}') ||
            fail "$1: listing the events of $ns failed"
        [[ -z $events ]] || fail "$1: a controller could not create its pods:"$'\n'"$events"
        # Deployments: every replica created; StatefulSets (ordered): the first pod; Jobs: a
        # pod running or done.
        missing=
        for kind in "${!lacking[@]}"; do
            tpl=${lacking[$kind]}
            out=$(kubectl -n "$ns" get "$kind" -o go-template="$tpl") || fail "$1: listing $kind failed"
            missing+=$out
        done
        [[ -n $missing ]] || return 0
        ((SECONDS < deadline)) || fail "$1: no pods after 90 s for: $missing"
        sleep 1
    done
}

summary=()
overlays=("$root"/deploy/k8s/overlays/*/)
[[ -d ${overlays[0]} ]] || fail "no overlays under deploy/k8s/overlays"
for dir in "${overlays[@]}"; do
    dir=${dir%/}
    name=${dir##*/}
    t0=$SECONDS
    say "overlay $name"
    kubectl kustomize "$dir" >"$work/$name.yaml" || fail "$name: kubectl kustomize failed"
    # The namespaces the overlay's objects live in, and those it creates itself.
    namespaces=$(kubectl apply --dry-run=client -f "$work/$name.yaml" \
        -o go-template='{{range .items}}{{with .metadata.namespace}}{{.}}{{"\n"}}{{end}}{{end}}' | sort -u)
    own_namespaces=$(kubectl apply --dry-run=client -f "$work/$name.yaml" \
        -o go-template='{{range .items}}{{if eq .kind "Namespace"}}{{.metadata.name}}{{"\n"}}{{end}}{{end}}')
    if [[ -x $root/deploy/k8s/secrets.sh ]]; then
        t=$SECONDS
        "$root/deploy/k8s/secrets.sh" "$name" >"$work/$name.secrets" 2>&1 || {
            cat "$work/$name.secrets" >&2
            fail "$name: deploy/k8s/secrets.sh failed"
        }
        printf '    deploy/k8s/secrets.sh %s: %s Secrets created (%s s)\n' "$name" \
            "$(grep -c ' created$' "$work/$name.secrets")" "$((SECONDS - t))"
    fi
    t=$SECONDS

    if ! kubectl apply --server-side --field-manager "$manager" -k "$dir" -o name \
        >"$work/$name.applied" 2>"$work/$name.err"; then
        cat "$work/$name.err" >&2
        fail "$name: the server refused the overlay (above)"
    fi
    applied=$(wc -l <"$work/$name.applied")
    warnings=$(grep -c '^Warning:' "$work/$name.err" || true)
    printf '    applied %s objects (%s warnings%s) (%s s)\n' "$applied" "$warnings" \
        "$( ((warnings == 0)) || printf ': %s' "$(sort -u "$work/$name.err" | tr '\n' ' ')")" \
        "$((SECONDS - t))"
    t=$SECONDS
    rendered=$(grep -c '^kind:' "$work/$name.yaml")
    [[ $applied == "$rendered" ]] || fail "$name: $rendered objects rendered but $applied applied"

    for ns in $namespaces; do
        await_pods "$name" "$ns"
    done
    pods=0
    for ns in $namespaces; do
        pods=$((pods + $(kubectl -n "$ns" get pods -o name | wc -l)))
    done
    printf '    every workload created its pods (%s pods, Pending: no node) (%s s)\n' "$pods" \
        "$((SECONDS - t))"
    t=$SECONDS

    rc=0
    diff_settled "$work/$name.diff" -k "$dir" || rc=$?
    if [[ $rc != 0 ]]; then
        cat "$work/$name.diff" >&2
        # An apply that leaves every field as it was but still bumps the generation: the stored
        # form differs from the manifest's (a NetworkPolicy's `egress: []` is stored as absent).
        if ! grep -E '^[-+] ' "$work/$name.diff" | grep -vqE '^[-+]  generation: [0-9]+$'; then
            say "hint: only metadata.generation differs, so every apply rewrites these objects:" >&2
            say "an empty list such as 'ingress: []' or 'egress: []' (stored as absent) does that" >&2
        fi
        fail "$name: kubectl diff exited $rc after apply (want 0: no difference)"
    fi
    printf '    kubectl diff: no difference (%s s)\n' "$((SECONDS - t))"
    t=$SECONDS

    kubectl delete -k "$dir" --wait --timeout 180s >/dev/null || fail "$name: kubectl delete -k failed"
    left=$(kubectl get -f "$work/$name.yaml" --ignore-not-found -o name 2>&1) ||
        fail "$name: listing what is left failed: $left"
    [[ -z $left ]] || fail "$name: objects left after delete: $left"
    for ns in $own_namespaces; do
        if kubectl get namespace "$ns" >/dev/null 2>&1; then
            fail "$name: namespace $ns still exists after delete --wait"
        fi
    done
    printf '    deleted: every object of the overlay is gone (namespaces: %s) (%s s)\n' \
        "${own_namespaces//$'\n'/ }" "$((SECONDS - t))"
    # Namespaces the overlay uses but does not own (the Secrets of secrets.sh live there): gone
    # too, so that the next overlay starts clean.
    for ns in $namespaces; do
        kubectl delete namespace "$ns" --ignore-not-found --wait --timeout 120s >/dev/null
    done
    summary+=("$(printf '%-10s %3s objects applied, %2s pods created, diff clean, deleted, %3s s' \
        "$name" "$applied" "$pods" "$((SECONDS - t0))")")
done

say "summary (kube-apiserver RSS $(apiserver_rss) MB, $((SECONDS - t_start)) s in all)"
printf '    %s\n' "${summary[@]}"
say "PASS"

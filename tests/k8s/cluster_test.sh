#!/usr/bin/env bash
# The platform on a real single-node Kubernetes cluster (tools/k8s/cluster.sh): the images are
# loaded, the `local` overlay is applied, every rollout finishes, a registration gets its welcome
# message through the cluster's Services, a purchase goes through cart-svc's checkout, and the
# NetworkPolicies hold: a pod of each service reaches its own engine and no other service's.
# Everything is torn down at the end, whatever happened.
#
#   tests/k8s/cluster_test.sh
#
# Environment:
#   K8S_IMAGES_DIR   OCI archives to load (default: built by tools/images/build.sh --save)
#   K8S_TEST_STATE   the cluster's state folder (default /var/tmp/polyglot-k8s-test; its image
#                    store is kept between runs, so a rerun loads only images that changed)
#   K8S_DEADLINE_S   how long the rollouts may take (default 420)
#   K8S_KEEP=1       leave the cluster up at the end (debugging; tools/k8s/cluster.sh down STATE)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=$ROOT/tools/k8s/cluster.sh
STATE=${K8S_TEST_STATE:-/var/tmp/polyglot-k8s-test}
DEADLINE_S=${K8S_DEADLINE_S:-420}
NSP=polyglot
T0=$(date +%s%N)
declare -A TIMES=()
ORDER=()

ms() { echo $((($(date +%s%N) - T0) / 1000000)); }
say() { printf '==> [%6.1fs] %s\n' "$(ms)e-3" "$*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
# lap NAME: records how long the step that just ended took.
LAP=0
lap() {
    local now
    now=$(ms)
    TIMES[$1]=$((now - LAP))
    ORDER+=("$1")
    LAP=$now
}

[[ $(id -u) == 0 ]] || fail "needs root (it starts a cluster in a network namespace)"

finish() {
    local rc=$?
    set +e
    if ((rc != 0)) && [[ -n ${KUBECONFIG:-} ]]; then
        echo "---- the namespace's pods at the failure ----" >&2
        kubectl -n "$NSP" get pods -o wide >&2
        kubectl -n "$NSP" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 25 >&2
    fi
    if [[ ${K8S_KEEP:-0} == 1 ]]; then
        say "K8S_KEEP=1: the cluster stays up ($CLUSTER down $STATE)"
    else
        say "tearing the cluster down"
        "$CLUSTER" down "$STATE" || rc=1
        lap down
    fi
    if [[ ! -c /dev/null || $(stat -c '%t,%T' /dev/null) != 1,3 ]]; then
        echo "FAIL: /dev/null is no longer the character device 1,3 (restored)" >&2
        rm -f /dev/null && mknod -m 666 /dev/null c 1 3
        rc=1
    fi
    if ((${#ORDER[@]})); then
        echo "timings:"
        local n
        for n in "${ORDER[@]}"; do printf '  %-28s %7.1f s\n' "$n" "${TIMES[$n]}e-3"; done
        printf '  %-28s %7.1f s\n' total "$(ms)e-3"
    fi
    ((rc == 0)) && echo "cluster_test: 1 passed, 0 failed" || echo "cluster_test: 0 passed, 1 failed"
    exit "$rc"
}
trap finish EXIT

# ---- the images --------------------------------------------------------------------------------

IMAGES=${K8S_IMAGES_DIR:-}
if [[ -z $IMAGES ]]; then
    IMAGES=$STATE/images
    say "building the images (tools/images/build.sh --save $IMAGES)"
    mkdir -p "$STATE/logs"
    "$ROOT/tools/images/build.sh" --save "$IMAGES" 2>&1 | tee "$STATE/logs/images.log" |
        grep --line-buffered '^==>' | sed 's/^/    /' ||
        { tail -n 30 "$STATE/logs/images.log" >&2; fail "tools/images/build.sh failed"; }
    lap images
fi

# ---- the cluster --------------------------------------------------------------------------------

say "starting the cluster ($CLUSTER up $STATE)"
"$CLUSTER" up "$STATE" --images "$IMAGES" 2>&1 | sed 's/^/    /' ||
    fail "the cluster did not come up (logs: $STATE/logs)"
KUBECONFIG=$("$CLUSTER" kubeconfig "$STATE")
export KUBECONFIG
K8S_BIN=$("$ROOT/tools/k8s/build.sh")
PATH=$K8S_BIN:$PATH
lap cluster-up

in_ns() { "$CLUSTER" exec "$STATE" -- "$@"; }

say "creating the namespace and its Secrets (deploy/k8s/secrets.sh local)"
"$ROOT/deploy/k8s/secrets.sh" local >/dev/null || fail "deploy/k8s/secrets.sh local failed"
say "applying deploy/k8s/overlays/local"
kubectl apply -k "$ROOT/deploy/k8s/overlays/local" >/dev/null || fail "kubectl apply -k failed"
lap apply

# ---- every rollout -------------------------------------------------------------------------------

# rollout_state: one line per workload, "kind/name ready desired".
rollout_state() {
    kubectl -n "$NSP" get deployments,statefulsets,jobs -o json | jq -r '.items[]
        | if .kind == "Job" then
            "job/\(.metadata.name) \(.status.succeeded // 0) \(.spec.completions // 1)"
          else
            "\(.kind | ascii_downcase)/\(.metadata.name) \(.status.readyReplicas // 0) \(.spec.replicas)"
          end'
}

say "waiting for every Deployment, StatefulSet and Job (deadline ${DEADLINE_S}s)"
deadline=$((SECONDS + DEADLINE_S))
last_print=0
while :; do
    state=$(rollout_state) || state=""
    total=$(grep -c . <<<"$state" || true)
    pending=$(awk '$2 < $3 {print $1}' <<<"$state" | paste -sd' ')
    ((total > 0)) && [[ -z $pending ]] && break
    failed_jobs=$(kubectl -n "$NSP" get jobs -o json | jq -r '.items[]
        | select(any(.status.conditions[]?; .type == "Failed" and .status == "True"))
        | .metadata.name' | paste -sd' ')
    [[ -z $failed_jobs ]] || fail "job(s) failed: $failed_jobs (kubectl -n $NSP logs job/NAME)"
    if ((SECONDS >= deadline)); then
        kubectl -n "$NSP" get pods -o wide >&2
        for w in $pending; do
            echo "---- $w" >&2
            kubectl -n "$NSP" describe "$w" 2>&1 | tail -n 15 >&2
            kubectl -n "$NSP" logs "$w" --all-containers --tail=20 2>&1 | sed 's/^/    /' >&2
        done
        fail "not ready after ${DEADLINE_S}s: $pending"
    fi
    if ((SECONDS - last_print >= 10)); then
        printf '    %3ds  %d/%d ready; waiting for %s\n' "$((DEADLINE_S - deadline + SECONDS))" \
            "$((total - $(wc -w <<<"$pending")))" "$total" "$pending"
        last_print=$SECONDS
    fi
    sleep 2
done
say "all $total workloads ready"
kubectl -n "$NSP" get pods -o wide | sed 's/^/    /'
"$CLUSTER" status "$STATE" | sed -n "s/^cluster: /    cluster: /p"
lap rollouts

# ---- register -> welcome, through the Services, from inside the cluster's network ---------------

svc_url() { echo "http://$(kubectl -n "$NSP" get svc "$1" -o jsonpath='{.spec.clusterIP}'):8080"; }
USER_URL=$(svc_url user-svc)
MSG_URL=$(svc_url message-svc)

# req METHOD URL [BODY] [HEADER]: sets $code and $body; curl runs in the cluster's namespace.
req() {
    local resp
    resp=$(in_ns curl -sS --max-time 10 -w '\n%{http_code}' -X "$1" \
        ${3:+-H 'Content-Type: application/json' --data "$3"} ${4:+-H "$4"} "$2" 2>&1) ||
        resp=$'\n000'
    code=${resp##*$'\n'}
    body=${resp%$'\n'*}
}

email="k8s-$(date +%s)-$$@example.com"
say "registering $email through user-svc ($USER_URL, the Service's ClusterIP)"
req POST "$USER_URL/v1/users" "$(jq -cn --arg e "$email" '{email: $e, name: "Ada Lovelace"}')"
[[ $code == 201 ]] || fail "POST /v1/users answered HTTP $code: $body"
user_id=$(jq -r .id <<<"$body")
t0=$(ms)
found=""
while (($(ms) - t0 < 60000)); do
    req GET "$MSG_URL/v1/users/$user_id/messages?limit=10"
    if [[ $code == 200 ]]; then
        found=$(jq -c 'first(.items[] | select(.sender == "system"))' <<<"$body" 2>/dev/null || true)
        [[ -n $found ]] && break
    fi
    sleep 0.2
done
[[ -n $found ]] || fail "no welcome message for $user_id in message-svc after 60 s (last: HTTP $code $body)"
say "welcome message after $(($(ms) - t0)) ms: \"$(jq -r .subject <<<"$found")\""
lap register-welcome

# ---- a purchase: cart-svc's checkout saga over product-svc and user-svc -------------------------

PRODUCT_URL=$(svc_url product-svc)
CART_URL=$(svc_url cart-svc)
word="k8s$(date +%s)$$"
say "a purchase: product $word in product-svc, credit, cart, checkout (cart-svc's saga)"
req POST "$PRODUCT_URL/v1/products" "$(jq -cn --arg w "$word" '{sku: ("K8S-" + $w),
    name: ("Kettle " + $w), category: "k8s", description: "a kettle bought on Kubernetes",
    price_cents: 2500, currency: "EUR", stock: 3}')"
[[ $code == 201 ]] || fail "POST /v1/products answered HTTP $code: $body"
product_id=$(jq -r .id <<<"$body")
req POST "$USER_URL/v1/users/$user_id/wallet/credits" \
    "$(jq -cn --arg id "$(cat /proc/sys/kernel/random/uuid)" '{credit_id: $id, amount_cents: 5000}')"
[[ $code == 201 ]] || fail "crediting the wallet answered HTTP $code: $body"
# cart-svc knows the user once it has consumed user.registered.
t0=$(ms)
while :; do
    req PUT "$CART_URL/v1/carts/$user_id/items/$product_id" '{"quantity":1}'
    [[ $code == 200 ]] && break
    [[ $code == 404 && $body == *user-not-known* && $(($(ms) - t0)) -lt 60000 ]] ||
        fail "adding to the cart answered HTTP $code: $body"
    sleep 0.2
done
req POST "$CART_URL/v1/carts/$user_id/checkout" "" "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)"
[[ $code == 202 ]] || fail "checkout answered HTTP $code: $body"
order_id=$(jq -r .id <<<"$body")
t0=$(ms)
while :; do
    req GET "$CART_URL/v1/orders/$order_id"
    status=$(jq -r .status <<<"$body" 2>/dev/null || echo "?")
    [[ $status == placed || $status == failed ]] && break
    (($(ms) - t0 < 60000)) || fail "order $order_id still '$status' after 60 s"
    sleep 0.2
done
[[ $status == placed ]] || fail "the order failed: $body"
say "order $order_id placed after $(($(ms) - t0)) ms"
lap checkout

# ---- cluster DNS and the NetworkPolicies, from pods of each service ------------------------------

# Engines and their owners (deploy/k8s: polyglot.dev/owner); kafka is shared.
ENGINES=(postgres:5432 redis:6379 search:9200 clickhouse:8123 mongodb:27017 kafka:9092)
declare -A OWNER=([postgres]=user-svc [redis]=cart-svc [search]=product-svc
    [clickhouse]=analytics-svc [mongodb]=message-svc [kafka]=shared)
SERVICES=(user-svc product-svc cart-svc analytics-svc message-svc)
PROBE_IMAGE=${K8S_PROBE_IMAGE:-localhost/polyglot/postgres:15}

# A throwaway pod with a service's labels (so the service's NetworkPolicy applies to it) and an
# engine image that has bash: it resolves names through cluster DNS and tries a TCP connection
# to every engine. Never Ready (its readiness probe fails), so no Service sends it traffic.
probe_pod() {
    local name=$1 as=$2 targets=${ENGINES[*]}
    kubectl -n "$NSP" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels:
    app.kubernetes.io/name: $as
    app.kubernetes.io/part-of: polyglot
    app.kubernetes.io/component: probe
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: probe
      image: $PROBE_IMAGE
      imagePullPolicy: IfNotPresent
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      readinessProbe:
        exec: {command: ["false"]}
      command:
        - bash
        - -c
        - |
          for n in kafka postgres.polyglot.svc.cluster.local kafka-0.kafka; do
              echo "dns \$n \$(getent hosts \$n | awk '{print \$1}' | head -n 1)"
          done
          for t in $targets; do
              timeout 4 bash -c "exec 3<>/dev/tcp/\${t%:*}/\${t#*:}" 2>/dev/null
              case \$? in 0) r=open ;; 124) r=timeout ;; *) r=refused ;; esac
              echo "tcp \$t \$r"
          done
EOF
}

say "probing from a pod of each service (and one of no service): DNS, then every engine"
kubectl -n "$NSP" delete pod -l app.kubernetes.io/component=probe --wait=true >/dev/null 2>&1 || true
for s in "${SERVICES[@]}" nobody; do probe_pod "probe-$s" "$s"; done
t0=$(ms)
for s in "${SERVICES[@]}" nobody; do
    until [[ $(kubectl -n "$NSP" get pod "probe-$s" -o jsonpath='{.status.phase}') == Succeeded ]]; do
        phase=$(kubectl -n "$NSP" get pod "probe-$s" -o jsonpath='{.status.phase}')
        [[ $phase == Failed ]] && fail "probe-$s failed: $(kubectl -n "$NSP" logs "probe-$s" 2>&1)"
        (($(ms) - t0 < 120000)) || fail "probe-$s still $phase after 120 s"
        sleep 0.5
    done
done
lap probes

dns=$(kubectl -n "$NSP" logs probe-user-svc | awk '$1 == "dns"')
awk '{print "    resolves " $2 " -> " $3}' <<<"$dns"
awk '$3 == "" {exit 1}' <<<"$dns" || fail "cluster DNS did not resolve every name: $dns"

# The matrix: a row per probe, a column per engine. The owner reaches its engine; every other
# service's engine is unreachable (timeout or refusal); kafka is shown, not judged here.
printf '    %-14s' "from \\ to"
for e in "${ENGINES[@]}"; do printf ' %-11s' "${e%:*}"; done
echo
bad=()
for s in "${SERVICES[@]}" nobody; do
    out=$(kubectl -n "$NSP" logs "probe-$s" | awk '$1 == "tcp"')
    printf '    %-14s' "$s"
    for e in "${ENGINES[@]}"; do
        r=$(awk -v t="$e" '$2 == t {print $3}' <<<"$out")
        printf ' %-11s' "${r:-?}"
        owner=${OWNER[${e%:*}]}
        if [[ $owner == "$s" && $r != open ]]; then
            bad+=("$s cannot reach its own ${e%:*} ($r)")
        elif [[ $owner != "$s" && $owner != shared && $r == open ]]; then
            bad+=("$s reaches ${e%:*}, owned by $owner")
        elif [[ $s == nobody && $r == open ]]; then
            bad+=("a pod of no service reaches ${e%:*}")
        fi
    done
    echo
done
((${#bad[@]} == 0)) || fail "isolation broken: ${bad[*]}"
say "each service reaches its own engine and no other service's"
kubectl -n "$NSP" delete pod -l app.kubernetes.io/component=probe --wait=false >/dev/null 2>&1 || true
lap isolation

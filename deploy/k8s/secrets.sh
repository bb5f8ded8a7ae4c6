#!/usr/bin/env bash
# The platform's Secrets in the namespace polyglot, with random passwords: never committed.
#
#   deploy/k8s/secrets.sh OVERLAY            create the namespace and every missing Secret
#   deploy/k8s/secrets.sh OVERLAY --print    write them all as YAML to stdout (fresh passwords;
#                                            no cluster needed: for tests and reviews)
#
# OVERLAY is upstream, upstream-opensearch or local (the folder under deploy/k8s/overlays/):
# message-svc's URL differs (locally its engine is FerretDB, which has no authentication).
# Idempotent: a Secret that exists is never changed (passwords are not rotated). Run it before
# `kubectl apply -k deploy/k8s/overlays/OVERLAY`, with kubectl pointed at the cluster.
#
# Who gets what (the owner is the first part of the name; tests/k8s/policy_check.py checks that
# no pod mounts a Secret of someone else):
#   <engine>-admin         the engine's superuser and the password of its service's user: the
#                          engine's pod and its setup Job only
#   <svc>-credentials      what one service needs: its engine URL or password with its own user,
#                          nothing of any other service's
set -euo pipefail

NS=polyglot

die() {
    printf 'secrets.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
OVERLAY=$1
shift
PRINT=0
case ${1:-} in
'') ;;
--print) PRINT=1 ;;
*) usage ;;
esac
case $OVERLAY in
upstream | upstream-opensearch | local) ;;
*) die "unknown overlay '$OVERLAY' (known: upstream, upstream-opensearch, local)" ;;
esac
command -v kubectl >/dev/null || die "kubectl is needed"
command -v openssl >/dev/null || die "openssl is needed"

# Hex: safe in URLs, XML, JSON and redis ACL files without escaping.
rand() { openssl rand -hex 24; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
umask 077

exists() {
    [ "$PRINT" = 0 ] && kubectl -n "$NS" get secret "$1" >/dev/null 2>&1
}

# existing_key SECRET KEY: a value of an existing Secret (to derive a service's Secret from its
# engine's, so both carry the same password).
existing_key() {
    kubectl -n "$NS" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d
}

# emit NAME OWNER COMPONENT KEY=VALUE...: the Secret's YAML, printed (--print) or applied when
# it does not exist yet. Values go through files, never the command line.
emit() {
    local name=$1 owner=$2 component=$3 kv args=()
    shift 3
    if exists "$name"; then
        printf '==> %s exists: kept\n' "$name" >&2
        return 0
    fi
    mkdir -p "$WORK/$name"
    for kv in "$@"; do
        printf '%s' "${kv#*=}" >"$WORK/$name/${kv%%=*}"
        args+=("--from-file=${kv%%=*}=$WORK/$name/${kv%%=*}")
    done
    kubectl create secret generic "$name" -n "$NS" "${args[@]}" --dry-run=client -o yaml |
        kubectl label --local -f - -o yaml app.kubernetes.io/name="$owner" \
            app.kubernetes.io/part-of=polyglot app.kubernetes.io/component="$component" \
            >"$WORK/$name.yaml"
    if [ "$PRINT" = 1 ]; then
        printf -- '---\n'
        cat "$WORK/$name.yaml"
    else
        kubectl apply -f "$WORK/$name.yaml" >/dev/null
        printf '==> %s created\n' "$name" >&2
    fi
}

# The password of a service's user on an engine: the engine's Secret's when it exists, else new.
# A service Secret without its engine's would leave the two out of step: refused.
service_password() {
    local engine=$1 key=$2 svc=$3
    if exists "$engine-admin"; then
        existing_key "$engine-admin" "$key"
    elif exists "$svc-credentials"; then
        die "$svc-credentials exists but $engine-admin does not: delete $svc-credentials (kubectl -n $NS delete secret $svc-credentials) and run again"
    else
        rand
    fi
}

if [ "$PRINT" = 0 ]; then
    kubectl get namespace "$NS" >/dev/null 2>&1 || {
        kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
        printf '==> namespace %s created\n' "$NS" >&2
    }
fi

pg=$(service_password postgres USER_SVC_PASSWORD user-svc)
redis=$(service_password redis CART_SVC_PASSWORD cart-svc)
ch=$(service_password clickhouse ANALYTICS_SVC_PASSWORD analytics-svc)
search=$(service_password search PRODUCT_SVC_PASSWORD product-svc)
mongo=$(service_password mongodb MESSAGE_SVC_PASSWORD message-svc)

emit postgres-admin postgres engine "POSTGRES_PASSWORD=$(rand)" "USER_SVC_PASSWORD=$pg"
emit redis-admin redis engine "ADMIN_PASSWORD=$(rand)" "CART_SVC_PASSWORD=$redis"
emit clickhouse-admin clickhouse engine "ADMIN_PASSWORD=$(rand)" "ANALYTICS_SVC_PASSWORD=$ch"
emit search-admin search engine "ELASTIC_PASSWORD=$(rand)" "PRODUCT_SVC_PASSWORD=$search"
emit mongodb-admin mongodb engine "MONGO_INITDB_ROOT_USERNAME=root" \
    "MONGO_INITDB_ROOT_PASSWORD=$(rand)" "MESSAGE_SVC_PASSWORD=$mongo"

emit user-svc-credentials user-svc service \
    "PG_DSN=postgresql://user_svc:$pg@postgres:5432/users"
emit product-svc-credentials product-svc service "OPENSEARCH_PASSWORD=$search"
emit cart-svc-credentials cart-svc service "REDIS_URL=redis://cart_svc:$redis@redis:6379/0"
# PSEUDONYM_KEY: keep it (a new key makes a new hash of a deleted user's id).
emit analytics-svc-credentials analytics-svc service \
    "CLICKHOUSE_PASSWORD=$ch" "PSEUDONYM_KEY=$(rand)"
if [ "$OVERLAY" = local ]; then
    # FerretDB 1.24 (SQLite) has no authentication: SCRAM is refused, so no credentials
    # (docs/local.md). The NetworkPolicy is what keeps others off it.
    uri="mongodb://mongodb:27017/messages?retryWrites=false"
else
    uri="mongodb://message_svc:$mongo@mongodb:27017/messages?retryWrites=false"
fi
emit message-svc-credentials message-svc service "MONGODB_URI=$uri"

[ "$PRINT" = 1 ] || printf '==> Secrets of namespace %s ready for overlay %s\n' "$NS" "$OVERLAY" >&2

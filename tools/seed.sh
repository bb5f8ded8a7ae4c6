#!/usr/bin/env bash
# make seed: loads the deterministic catalog (tools/catalog, catalog-gen) into the running
# product-svc, through its bulk import, POST /v1/products:import (NDJSON).
#
#   tools/seed.sh                    (or `make seed`, `make seed SEED=7 COUNT=500`)
#
# Environment, with defaults:
#   SEED=42          the catalog's seed: the same seed loads the same products
#   COUNT=10000      products 0 to COUNT-1 of that catalog (at most 1,000,000)
#   SEED_CHUNK=500   products per import request (at most 1000, the endpoint's limit)
#   BUILD_DIR=build/debug   where catalog-gen was built (`make build`)
#
# product-svc must be running and ready (`make up`); its port is read from the stack's env file
# (.local/env/product-svc.env, or $POLYGLOT_STATE/env/). Products are identified by their SKU
# (SKU-<seed>-<index>), so running it again is harmless: the second run reports every product as
# existing and writes nothing. Any answer but 200 stops it with the service's problem details
# (a 400 names the invalid lines and wrote nothing; a 207 names the lines that failed, the engine
# being unavailable, say); what was loaded stays, so running it again resumes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../deploy/local/common.sh
. "$root/deploy/local/common.sh"

SEED=${SEED:-42}
COUNT=${COUNT:-10000}
CHUNK=${SEED_CHUNK:-500}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/debug}
GEN=$BUILD_DIR/tools/catalog/catalog-gen
ENV_FILE=$ENVDIR/product-svc.env

die() {
    printf 'seed: %s\n' "$*" >&2
    exit 1
}

[[ $SEED =~ ^[0-9]{1,19}$ ]] ||
    die "SEED must be a whole number below 10^19, not '$SEED'"
[[ $COUNT =~ ^[0-9]{1,7}$ && $((10#$COUNT)) -le 1000000 ]] ||
    die "COUNT must be a whole number from 0 to 1000000, not '$COUNT'"
[[ $CHUNK =~ ^[1-9][0-9]{0,3}$ && $CHUNK -le 1000 ]] ||
    die "SEED_CHUNK must be from 1 to 1000 (the import's limit per request), not '$CHUNK'"
[ -x "$GEN" ] || die "$GEN is missing: run 'make build' first"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
apt_install jq

[ -r "$ENV_FILE" ] || die "no settings for product-svc ($ENV_FILE is missing): run 'make up' first"
PORT=$(sed -n 's/^HTTP_PORT=//p' "$ENV_FILE" | tail -n 1)
[[ $PORT =~ ^[0-9]+$ ]] || die "no HTTP_PORT in $ENV_FILE"
URL=http://127.0.0.1:$PORT

if ! ready=$(curl -sS --max-time 3 "$URL/readyz" 2>&1); then
    die "product-svc is not answering on 127.0.0.1:$PORT ($ready); start it with 'make up'" \
        "(log: $LOGS/product-svc.log)"
fi
jq -e '.status == "ready"' >/dev/null 2>&1 <<<"$ready" ||
    die "product-svc on 127.0.0.1:$PORT is not ready: $ready (log: $LOGS/product-svc.log)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/seed.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# problem FILE START: the answer in FILE in readable lines, line numbers of the chunk (from 1)
# as product indices of the catalog: a problem+json (its errors), or a 207 (the lines that
# failed while the others were written).
problem() {
    jq -r --argjson start "$2" '
        if .results then
            "\(.failed // 0) products not written (the others were; run again to retry them)",
            (.results | map(select(.status != "created" and .status != "exists")) | .[:20][]
             | "  product \($start + .line - 1) (line \(.line), \(.sku)): \(.status)")
        else
            "\(.title // "error")\(if .detail then ": " + .detail else "" end)",
            (.errors // [] | .[:20][]
             | "  product \($start + .line - 1) (line \(.line)): \(.detail)")
        end
    ' "$1" 2>/dev/null || head -c 2000 "$1"
}

created=0 existed=0
log "seeding $COUNT products of catalog seed $SEED into product-svc ($URL), $CHUNK a request"
for ((start = 0; start < COUNT; start += CHUNK)); do
    n=$((COUNT - start < CHUNK ? COUNT - start : CHUNK))
    # product i does not depend on where a run starts: each chunk is generated on its own.
    "$GEN" --seed "$SEED" --start "$start" --count "$n" >"$TMP/chunk.ndjson" ||
        die "catalog-gen failed for products $start to $((start + n - 1))"
    if ! code=$(curl -sS --max-time 120 -o "$TMP/answer.json" -w '%{http_code}' \
        -X POST -H 'Content-Type: application/x-ndjson' --data-binary "@$TMP/chunk.ndjson" \
        "$URL/v1/products:import" 2>"$TMP/curl.err"); then
        die "product-svc stopped answering on $URL: $(cat "$TMP/curl.err")" \
            "(log: $LOGS/product-svc.log)"
    fi
    if [ "$code" != 200 ]; then
        die "import of products $start to $((start + n - 1)) failed with HTTP $code:"$'\n'"$(
            problem "$TMP/answer.json" "$start")"
    fi
    read -r c e r < <(jq -r '"\(.created) \(.existing) \(.results | length)"' "$TMP/answer.json") ||
        die "cannot read the import's answer: $(head -c 500 "$TMP/answer.json")"
    [[ $c =~ ^[0-9]+$ && $e =~ ^[0-9]+$ && $((c + e)) -eq $n && $r == "$n" ]] ||
        die "the import answered for $((c + e)) products ($r results), $n were sent:" \
            "$(head -c 500 "$TMP/answer.json")"
    created=$((created + c))
    existed=$((existed + e))
    printf 'seed: %d/%d products (%d created, %d existed)\n' $((start + n)) "$COUNT" \
        "$created" "$existed"
done
log "catalog seed $SEED: $COUNT products in product-svc ($created created, $existed existed)"

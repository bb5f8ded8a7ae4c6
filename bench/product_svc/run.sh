#!/usr/bin/env bash
# bench/product_svc: product-svc of the running local stack next to its search engine, two pairs
# measured in the same run, each side driven by wrk -t1 -cBENCH_CONNECTIONS --latency
# (requests.lua draws every request at random from a file):
#
#   get     GET /v1/products/{id} on product-svc   vs  GET /products/_doc/{id} on the engine,
#           over BENCH_IDS ids of the seeded catalog (goal: product-svc >= 0.5 of the engine)
#   search  GET /v1/products?q=<word>&category=<c>&sort=relevance&limit=20 on product-svc  vs
#           POST /products/_search on the engine with the body product-svc's store sends for it
#           (goal: >= 0.8 of the engine: the engine's work dominates)
#
# A 2-second warm-up of each, not counted, then BENCH_ROUNDS rounds, each running both sides of
# both pairs back to back (who goes first alternates by round). Per run: rate, p50, p99, CPU µs
# per request of product-svc and of the engine's process; then the medians, the ratio
# product-svc / engine of each column, the rate ratio round by round, and the goals.
#
#   bench/product_svc/run.sh          (or `make bench-product`; --help prints this)
#
# Needs the running stack (`make up`) with product-svc ready; the engine's settings
# (OPENSEARCH_URL, and OPENSEARCH_USER / OPENSEARCH_PASSWORD when the engine checks them) come
# from .local/env/product-svc.env: the engine side runs with product-svc's own credentials, sent
# to curl through a config file and to wrk through its environment, never on a command line.
# What is measured is a release build of product-svc (as bench/user_svc measures user-svc's)
# that this script starts on a free port with those settings and HTTP_THREADS =
# BENCH_HTTP_THREADS, and stops at the end; the stack's own product-svc (a debug build) only
# seeds the catalog.
# When the catalog is empty it seeds it first (tools/seed.sh: BENCH_PRODUCTS products of catalog
# BENCH_SEED). The ids come from importing products 0 to BENCH_IDS-1 of that catalog again,
# which writes nothing for products that exist and answers every product's id.
#
# Keeping the search pair honest: engine_search_body() below is search_body() of
# product-svc/product_store.c written in jq (size limit+1, bool filter deleted=false and
# category, must multi_match cross_fields over name^3/description/tags with operator and, should
# match_phrase on name with boost 2, sort _score desc then id asc, track_total_hits,
# seq_no_primary_term, _source without holds, outbox and description, aggs categories/tags terms of size
# PROD_FACET_MAX and prices range over PROD_PRICE_RANGES, highlight of name and description).
# When the store's query changes, change it here in the same commit. Before measuring, the
# script checks for every query that both sides find the same total, the same first page of
# ids and the same category counts, and stops ("out of sync") when they do not.
#
# Environment, with defaults:
#   BENCH_SECONDS=10        length of one wrk run (at most 120)
#   BENCH_ROUNDS=5          rounds (at most 50)
#   BENCH_CONNECTIONS=16    wrk connections, both sides
#   BENCH_HTTP_THREADS=     product-svc HTTP_THREADS (default: BENCH_CONNECTIONS; a handler
#                           blocks on its engine call, so this is product-svc's concurrency)
#   BENCH_IDS=1000          catalog products whose ids the get pair draws from (at most 1000)
#   BENCH_SEED=42           the catalog (tools/catalog) seeded and read
#   BENCH_PRODUCTS=10000    products seeded when the catalog is empty (at most 1000000)
#   BENCH_PAIR=all          get or search: one pair only
#   BENCH_ENGINE_INDEX=products  the index (or alias) product-svc reads; another only when
#                           product-svc runs with an index prefix (tests do)
#   BENCH_MAX_LOAD=1.5      before measuring, wait until the 1-minute load average is below
#                           this (0: do not wait) ...
#   BENCH_LOAD_WAIT=600     ... for at most this many seconds, then measure anyway
#   BENCH_OUT=              also write every run's figures to this file (tab-separated)
#
# Traffic goes to 127.0.0.1 only and is bounded: 4 x ROUNDS runs and 4 warm-ups, each killed if
# it outlives its duration by 30 s (about 4 minutes with the defaults, plus the wait for a quiet
# machine and a first seeding). Nothing is deleted: the seeded catalog stays for the next run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--help]  (settings through BENCH_* variables)" >&2; exit 2; }
# shellcheck source=../lib.sh
. "$here/../lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_HTTP_THREADS:-$CONNS}
NIDS=${BENCH_IDS:-1000}
SEED=${BENCH_SEED:-42}
PRODUCTS=${BENCH_PRODUCTS:-10000}
PAIR=${BENCH_PAIR:-all}
INDEX=${BENCH_ENGINE_INDEX:-products}
MAX_LOAD=${BENCH_MAX_LOAD:-1.5}
LOAD_WAIT=${BENCH_LOAD_WAIT:-600}
OUT=${BENCH_OUT:-}
WARMUP_SECONDS=2
UP="make up"
ENV_FILE=$ENVDIR/product-svc.env

for v in SECONDS_PER_RUN ROUNDS CONNS THREADS NIDS PRODUCTS LOAD_WAIT; do
    [[ ${!v} =~ ^[1-9][0-9]{0,8}$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $SEED =~ ^[0-9]{1,19}$ ]] || die "BENCH_SEED must be a whole number below 10^19, not '$SEED'"
[[ $MAX_LOAD =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_MAX_LOAD must be a number, not '$MAX_LOAD'"
[[ $PAIR =~ ^(all|get|search)$ ]] || die "BENCH_PAIR must be all, get or search, not '$PAIR'"
[[ $INDEX =~ ^[a-z0-9][a-z0-9_.-]{0,99}$ ]] || die "BENCH_ENGINE_INDEX '$INDEX' is not an index name"
[ "$SECONDS_PER_RUN" -le 120 ] || die "BENCH_SECONDS is capped at 120"
[ "$ROUNDS" -le 50 ] || die "BENCH_ROUNDS is capped at 50"
[ "$CONNS" -le 256 ] || die "BENCH_CONNECTIONS is capped at 256"
[ "$THREADS" -le 256 ] || die "BENCH_HTTP_THREADS is capped at 256"
[ "$NIDS" -le 1000 ] || die "BENCH_IDS is capped at 1000 (one import request)"
[ "$PRODUCTS" -le 1000000 ] || die "BENCH_PRODUCTS is capped at 1000000"
[ "$NIDS" -le "$PRODUCTS" ] || NIDS=$PRODUCTS
PAIRS=(get search)
[ "$PAIR" = all ] || PAIRS=("$PAIR")

# ---- set-up --------------------------------------------------------------------------------

apt_install wrk curl jq

[ -r "$ENV_FILE" ] || die "$ENV_FILE is missing: start the local stack first ($UP)"
# env_get KEY: a value of product-svc's env file. Only the keys asked for leave it.
env_get() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }
SVC_PORT=$(env_get HTTP_PORT)
[[ $SVC_PORT =~ ^[0-9]+$ ]] || die "$ENV_FILE has no HTTP_PORT"
SVC_URL=http://127.0.0.1:$SVC_PORT
ENGINE_URL=$(env_get OPENSEARCH_URL)
ENGINE_URL=${ENGINE_URL%/}
[[ $ENGINE_URL =~ ^https?://(127\.0\.0\.1|localhost):[0-9]+$ ]] ||
    die "OPENSEARCH_URL of $ENV_FILE is '$ENGINE_URL': this benchmark runs against the local" \
        "stack's engine on 127.0.0.1 only"
ENGINE_USER=$(env_get OPENSEARCH_USER)
ENGINE_PASSWORD=$(env_get OPENSEARCH_PASSWORD)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_product_svc.XXXXXX")
BENCH_SVC_PID=
trap 'stop_proc "$BENCH_SVC_PID"; rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The engine's credentials, when product-svc has some: for curl a config file only this user
# can read, for wrk (requests.lua) BENCH_AUTHORIZATION in its environment only.
: >"$TMP/engine.curl"
chmod 600 "$TMP/engine.curl"
AUTHORIZATION=''
if [ -n "$ENGINE_USER" ]; then
    esc() { local s=${1//\\/\\\\}; printf '%s' "${s//\"/\\\"}"; }
    printf 'user = "%s:%s"\n' "$(esc "$ENGINE_USER")" "$(esc "$ENGINE_PASSWORD")" \
        >"$TMP/engine.curl"
    AUTHORIZATION="Basic $(printf '%s:%s' "$ENGINE_USER" "$ENGINE_PASSWORD" | base64 -w0)"
fi
# engine METHOD PATH [BODY-FILE]: the engine's answer on stdout; fails on anything but 2xx.
engine() {
    local data=()
    [ -n "${3:-}" ] && data=(-H 'Content-Type: application/json' --data-binary "@$3")
    curl -fsS --max-time 30 -K "$TMP/engine.curl" -X "$1" "${data[@]}" "$ENGINE_URL$2"
}
# svc PATH: product-svc's answer on stdout; fails on anything but 2xx.
svc() { curl -fsS --max-time 30 "$SVC_URL$1"; }

ready=$(curl -sS --max-time 5 "$SVC_URL/readyz" 2>&1) ||
    die "product-svc does not answer $SVC_URL/readyz ($ready): start the stack with $UP"
jq -e '.status == "ready"' >/dev/null 2>&1 <<<"$ready" ||
    die "product-svc on $SVC_URL is not ready: $ready (log: $LOGS/product-svc.log)"
engine GET / >/dev/null 2>"$TMP/engine.err" ||
    die "the engine does not answer $ENGINE_URL with product-svc's settings:" \
        "$(cat "$TMP/engine.err")"

# The processes whose CPU is counted: product-svc and the engine (deploy/local's pid files, or
# whoever listens on the port).
listener() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -c5-; }
SVC_PID=$(pid_of product-svc)
[ -n "$SVC_PID" ] || SVC_PID=$(listener "$SVC_PORT")
ENGINE_PID=$(pid_of opensearch)
[ -n "$ENGINE_PID" ] || ENGINE_PID=$(listener "${ENGINE_URL##*:}")
[ -n "$SVC_PID" ] || warn "product-svc's process not found: its CPU is not measured"
[ -n "$ENGINE_PID" ] || warn "the engine's process not found: its CPU is not measured"

# catalog-gen, for the ids (and tools/seed.sh): built with the release preset, as the other
# benchmarks build what they run.
log "building catalog-gen and product-svc (release preset)"
(cd "$ROOT" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target catalog-gen product-svc) \
    >"$LOGS/bench-build-product-svc.log" 2>&1 ||
    { tail_log "$LOGS/bench-build-product-svc.log"; die "build failed"; }
GEN_DIR=$ROOT/build/release

total=$(svc '/v1/products?limit=1' | jq -r '.total') ||
    die "GET $SVC_URL/v1/products failed: is product-svc's search working?"
if [ "$total" = 0 ]; then
    log "the catalog is empty: seeding $PRODUCTS products of catalog $SEED (tools/seed.sh)"
    SEED=$SEED COUNT=$PRODUCTS BUILD_DIR=$GEN_DIR "$ROOT/tools/seed.sh" >"$TMP/seed.log" 2>&1 ||
        { tail_log "$TMP/seed.log"; die "seeding the catalog failed"; }
fi

# The ids: products 0 to NIDS-1 of the catalog imported again (created if missing, else
# "exists"), every line's id in the answer.
"$GEN_DIR/tools/catalog/catalog-gen" --seed "$SEED" --count "$NIDS" >"$TMP/ids.ndjson"
code=$(curl -sS --max-time 120 -o "$TMP/ids.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/x-ndjson' --data-binary "@$TMP/ids.ndjson" \
    "$SVC_URL/v1/products:import") || die "product-svc stopped answering"
[ "$code" = 200 ] || die "POST /v1/products:import answered $code: $(head -c 1000 "$TMP/ids.json")"
jq -r '.results[].id' "$TMP/ids.json" >"$TMP/ids.txt"
[ "$(grep -c . "$TMP/ids.txt")" -eq "$NIDS" ] ||
    die "the import answered $(grep -c . "$TMP/ids.txt") ids for $NIDS products"
# From here on, the release build is what is measured: started with product-svc's own settings,
# in its own session so that a Ctrl-C reaches this script first.
BENCH_SVC_PORT=$(free_port "$SVC_PORT")
BENCH_SVC_LOG=$LOGS/bench-product-svc.log
log "starting product-svc (release) on 127.0.0.1:$BENCH_SVC_PORT: HTTP_THREADS=$THREADS"
HTTP_BIND=127.0.0.1 HTTP_PORT=$BENCH_SVC_PORT HTTP_THREADS=$THREADS ACCESS_LOG=false \
    LOG_LEVEL=info OPENSEARCH_URL=$ENGINE_URL OPENSEARCH_USER=$ENGINE_USER \
    OPENSEARCH_PASSWORD=$ENGINE_PASSWORD KAFKA_BROKERS=$(env_get KAFKA_BROKERS) \
    setsid "$GEN_DIR/product-svc/product-svc" </dev/null >/dev/null 2>"$BENCH_SVC_LOG" &
BENCH_SVC_PID=$!
wait_http "http://127.0.0.1:$BENCH_SVC_PORT/readyz" "$BENCH_SVC_PID" ||
    { tail_log "$BENCH_SVC_LOG"; die "product-svc (release) did not become ready"; }
SVC_URL=http://127.0.0.1:$BENCH_SVC_PORT
SVC_PID=$BENCH_SVC_PID

# Documents written just now become searchable at the engine's next refresh: make it now, so
# that both sides of the search pair see the same catalog.
engine POST "/$INDEX/_refresh" >/dev/null || die "refreshing the index $INDEX failed"
CATALOG=$(svc '/v1/products?limit=1' | jq -r '.total')

# ---- the search pair's queries ---------------------------------------------------------------

# Words of each category's names and descriptions (tools/catalog/catalog.c), with the category:
# one word, or two (both required: the store's multi_match has operator "and").
QUERIES=("steel:kitchen" "chef knife:kitchen" "wireless:electronics"
    "bluetooth speaker:electronics" "guide:books" "python handbook:books" "cedar:garden"
    "garden hose:garden" "wooden:toys" "jigsaw puzzle:toys" "carbon:sports" "yoga mat:sports"
    "cotton:clothing" "rain jacket:clothing" "lavender:beauty" "face cream:beauty" "oak:home"
    "table lamp:home" "leather:office" "office chair:office" "steel:automotive"
    "dash cam:automotive" "dog bed:pets" "bamboo:pets")

# engine_search_body Q CATEGORY LIMIT: what product_store.c's search_body() sends for
# q=Q&category=CATEGORY&sort=relevance&limit=LIMIT (see the header: keep the two in sync).
engine_search_body() {
    jq -cn --arg q "$1" --arg c "$2" --argjson limit "$3" '
        def ranges: [0, 1000, 2500, 5000, 10000, 25000] as $r
            | [range(0; $r | length) as $i
               | if $i + 1 < ($r | length)
                 then {key: "\($r[$i])-\($r[$i + 1])", from: $r[$i], to: $r[$i + 1]}
                 else {key: "\($r[$i])-", from: $r[$i]} end];
        {size: ($limit + 1),
         query: {bool: {
             filter: [{term: {deleted: false}}, {term: {category: $c}}],
             must: [{multi_match: {query: $q, type: "cross_fields",
                                   fields: ["name^3", "description", "tags"],
                                   operator: "and"}}],
             should: [{match_phrase: {name: {query: $q, boost: 2}}}]}},
         sort: [{_score: "desc"}, {id: "asc"}],
         track_total_hits: true,
         seq_no_primary_term: true,
         _source: {excludes: ["holds", "outbox", "description"]},
         aggs: {categories: {terms: {field: "category", size: 20}},
                tags: {terms: {field: "tags", size: 20}},
                prices: {range: {field: "price_cents", ranges: ranges}}},
         highlight: {encoder: "html", pre_tags: ["<em>"], post_tags: ["</em>"],
                     fields: {name: {number_of_fragments: 0},
                              description: {fragment_size: 160, number_of_fragments: 1}}}}'
}

# Both sides must find the same products for every query: the same total, the same first page
# (ids in order) and the same category counts. Queries that find nothing are left out.
: >"$TMP/svc_search.txt"
: >"$TMP/engine_search.ndjson"
for qc in "${QUERIES[@]}"; do
    q=${qc%%:*} c=${qc#*:}
    qs="q=$(jq -rn --arg q "$q" '$q | @uri')&category=$c&sort=relevance&limit=20"
    engine_search_body "$q" "$c" 20 >"$TMP/body.json"
    svc "/v1/products?$qs" >"$TMP/svc.json" || die "GET /v1/products?$qs failed"
    engine POST "/$INDEX/_search" "$TMP/body.json" >"$TMP/engine.json" ||
        die "the engine refused the search body of '$qs' (bench/product_svc/run.sh," \
            "engine_search_body): $(head -c 500 "$TMP/engine.json")"
    a=$(jq -c '[.total, [.items[].id], [.facets.category[] | [.value, .count]]]' "$TMP/svc.json")
    b=$(jq -c '[.hits.total.value, [.hits.hits[:20][]._id],
                [.aggregations.categories.buckets[] | [.key, .doc_count]]]' "$TMP/engine.json")
    if [ "$a" != "$b" ]; then
        printf '    product-svc: %s\n    engine:      %s\n' "${a:0:300}" "${b:0:300}" >&2
        die "out of sync: for '$qs' product-svc and the engine body of this script find" \
            "different products; update engine_search_body() after product_store.c's search_body()"
    fi
    n=$(jq -r '.total' "$TMP/svc.json")
    if [ "$n" -eq 0 ]; then
        warn "'$qs' finds nothing in this catalog: left out"
        continue
    fi
    printf '%s\n' "$qs" >>"$TMP/svc_search.txt"
    cat "$TMP/body.json" >>"$TMP/engine_search.ndjson"
done
[ -s "$TMP/svc_search.txt" ] ||
    die "no query finds anything: seed the catalog (make seed) and run again"

# The get pair: one id answered by both.
id=$(head -n 1 "$TMP/ids.txt")
svc "/v1/products/$id" | jq -e --arg id "$id" '.id == $id' >/dev/null ||
    die "GET /v1/products/$id did not answer the product"
engine GET "/$INDEX/_doc/$id" | jq -e '.found' >/dev/null ||
    die "GET /products/_doc/$id on the engine did not find the product"

# ---- measuring -------------------------------------------------------------------------------

RESULTS=$TMP/results.tsv
printf 'round\tpair\tside\trate\tp50_ms\tp99_ms\trequests\tbad\tsvc_cpu_us\tengine_cpu_us\n' \
    >"$RESULTS"

# ticks_of [PID]: cpu_ticks of PID, 0 without one.
ticks_of() { if [ -n "$1" ]; then cpu_ticks "$1"; else echo 0; fi; }

# run ROUND PAIR SIDE SECONDS: one wrk run, its figures appended to RESULTS (ROUND "-" for
# warm-ups).
run() {
    local round=$1 pair=$2 side=$3 secs=$4 out url s0 s1 e0 e1 scpu ecpu auth='' args=()
    out=$TMP/$pair-$side-$round.txt
    case $pair-$side in
    get-svc) url=$SVC_URL args=(get "$TMP/ids.txt" /v1/products/%s) ;;
    get-engine) url=$ENGINE_URL args=(get "$TMP/ids.txt" "/$INDEX/_doc/%s") ;;
    search-svc) url=$SVC_URL args=(get "$TMP/svc_search.txt" "/v1/products?%s") ;;
    search-engine) url=$ENGINE_URL args=(post "$TMP/engine_search.ndjson" "/$INDEX/_search") ;;
    esac
    [ "$side" = engine ] && auth=$AUTHORIZATION
    s0=$(ticks_of "$SVC_PID")
    e0=$(ticks_of "$ENGINE_PID")
    BENCH_AUTHORIZATION=$auth timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" \
        --timeout 5s --latency -s "$here/requests.lua" "$url" -- "${args[@]}" >"$out" 2>&1 ||
        { tail_log "$out"; die "wrk failed ($pair, $side)"; }
    s1=$(ticks_of "$SVC_PID")
    e1=$(ticks_of "$ENGINE_PID")
    wrk_results "$out"
    [[ $WRK_REQS =~ ^[0-9]+$ && $WRK_REQS -gt 0 && -n $WRK_RPS ]] ||
        { tail_log "$out"; die "cannot read the output of wrk ($pair, $side)"; }
    read -r scpu ecpu < <(awk -v s="$((s1 - s0))" -v e="$((e1 - e0))" -v n="$WRK_REQS" \
        -v hz="$(getconf CLK_TCK)" -v sp="$SVC_PID" -v ep="$ENGINE_PID" 'BEGIN {
            printf "%s %s\n", sp == "" ? "-" : sprintf("%.2f", s * 1e6 / hz / n),
                               ep == "" ? "-" : sprintf("%.2f", e * 1e6 / hz / n) }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$pair" "$side" "$WRK_RPS" \
        "$WRK_P50" "$WRK_P99" "$WRK_REQS" "$WRK_BAD" "$scpu" "$ecpu" >>"$RESULTS"
    printf '  %-3s %-7s %-7s %9.0f /s  p50 %8s ms  p99 %8s ms  cpu us/req: svc %7s engine %7s%s\n' \
        "$round" "$pair" "$side" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$scpu" "$ecpu" \
        "$([ "$WRK_BAD" -gt 0 ] && printf '  (%s bad)' "$WRK_BAD")"
}

# median PAIR SIDE COLUMN: over the numbered rounds.
median() {
    awk -F'\t' -v p="$1" -v s="$2" -v c="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 ~ /^[0-9]+$/ && $2 == p && $3 == s { print $col[c] }' "$RESULTS" | median_of
}

log "catalog: $CATALOG products; get over $NIDS ids, search over $(wc -l <"$TMP/svc_search.txt")" \
    "queries (words and category); wrk -t1 -c$CONNS, $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
wait_for_quiet "$MAX_LOAD" "$LOAD_WAIT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up (${WARMUP_SECONDS}s each, not counted)"
for pair in "${PAIRS[@]}"; do
    run - "$pair" svc "$WARMUP_SECONDS" >/dev/null
    run - "$pair" engine "$WARMUP_SECONDS" >/dev/null
done
log "measuring: $ROUNDS rounds of ${SECONDS_PER_RUN}s runs, load average $LOAD_START"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(engine svc); else order=(svc engine); fi
    for pair in "${PAIRS[@]}"; do
        for side in "${order[@]}"; do
            run "$r" "$pair" "$side" "$SECONDS_PER_RUN"
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report --------------------------------------------------------------------------------

echo
machine_line
printf 'Medians of %d rounds of %ds, %d connections, 127.0.0.1; catalog of %s products\n' \
    "$ROUNDS" "$SECONDS_PER_RUN" "$CONNS" "$CATALOG"
printf '%-34s %10s %9s %9s %9s %10s\n' "" rate/s p50_ms p99_ms svc_cpu engine_cpu
printf '%-34s %10s %9s %9s %9s %10s\n' "" "" "" "" us/req us/req
declare -A GOAL=([get]=0.5 [search]=0.8)
declare -A LABEL=([get-engine]="engine GET /products/_doc/id"
    [get-svc]="product-svc GET /v1/products/id"
    [search-engine]="engine POST /products/_search"
    [search-svc]="product-svc GET /v1/products?q=..")
summary=()
for pair in "${PAIRS[@]}"; do
    for side in engine svc; do
        printf '%-34s %10.0f %9.3f %9.3f %9s %10s\n' "${LABEL[$pair-$side]}" \
            "$(median "$pair" "$side" rate)" "$(median "$pair" "$side" p50_ms)" \
            "$(median "$pair" "$side" p99_ms)" "$(median "$pair" "$side" svc_cpu_us)" \
            "$(median "$pair" "$side" engine_cpu_us)"
    done
    rate_ratio=$(ratio "$(median "$pair" svc rate)" "$(median "$pair" engine rate)")
    printf '%-34s %10s %9s %9s %9s %10s\n' "ratio $pair product-svc/engine" "$rate_ratio" \
        "$(ratio "$(median "$pair" svc p50_ms)" "$(median "$pair" engine p50_ms)")" \
        "$(ratio "$(median "$pair" svc p99_ms)" "$(median "$pair" engine p99_ms)")" - \
        "$(ratio "$(median "$pair" svc engine_cpu_us)" "$(median "$pair" engine engine_cpu_us)")"
    mapfile -t rr < <(awk -F'\t' -v p="$pair" '
        NR > 1 && $1 ~ /^[0-9]+$/ && $2 == p { v[$1, $3] = $4; n = $1 > n ? $1 : n }
        END { for (i = 1; i <= n; i++)
                  if (v[i, "engine"] > 0) printf "%.2f\n", v[i, "svc"] / v[i, "engine"] }' \
        "$RESULTS")
    printf '  %s rate ratio round by round: %s; their median %s\n' "$pair" "${rr[*]}" \
        "$(printf '%s\n' "${rr[@]}" | median_of)"
    summary+=("$(printf 'goal: %s rate >= %s x the engine: %s (ratio of the medians %s)' "$pair" \
        "${GOAL[$pair]}" "$(awk -v x="$rate_ratio" -v g="${GOAL[$pair]}" \
        'BEGIN { print (x + 0 >= g) ? "met" : "NOT met" }')" "$rate_ratio")")
done
echo "(svc_cpu: product-svc's process; engine_cpu: the engine's whole process, a JVM)"
printf 'load average: %s at the start of the rounds, %s at the end\n' "$LOAD_START" "$LOAD_END"
printf 'bad answers (non-2xx, socket errors) over all runs: %s\n' \
    "$(awk -F'\t' 'NR > 1 { n += $8 } END { print n + 0 }' "$RESULTS")"
printf '%s\n' "${summary[@]}"
echo
print_runs "$RESULTS" "$OUT"

#!/usr/bin/env bash
# bench/cart_svc: cart-svc of the running local stack, two measurements in one run:
#
#   get       GET /v1/carts/{user_id} on cart-svc, driven by wrk -t1 -cBENCH_CONNECTIONS, vs
#             the same Redis reads issued directly by redis_load (redis_load.c, built here) with
#             as many threads, one connection each: what cart_store.c's read_cart() sends for
#             one GET, one command after the other (HGETALL user:{id}, HGETALL cart:{id},
#             PTTL cart:{id}). Both draw users at random from BENCH_USERS users, each with a
#             cart of 3 lines of the seeded catalog. A 2-second warm-up of each, then
#             BENCH_ROUNDS rounds of both, who goes first alternating by round; medians, the
#             ratio cart-svc / Redis (goal: >= 0.5).
#   checkout  the whole saga: BENCH_CHECKOUTS users with credited wallets and one-line carts of
#             in-stock products (one product each) check out at once (one curl, at most
#             BENCH_CHECKOUT_PARALLEL requests in flight, an Idempotency-Key each); every order
#             is then polled until placed or failed. Reports orders/s (all orders over the time
#             from the first checkout sent to the last order placed) and p50/p99 of checkout ->
#             placed, from each order's own created_at and updated_at (cart-svc's clock, ms).
#
#   bench/cart_svc/run.sh          (or `make bench-cart`; --help prints this)
#
# Needs the running stack (`make up`) with user-svc, product-svc and cart-svc ready; seeds the
# catalog (tools/seed.sh, catalog 42) when it is empty. The settings come from
# .local/env/cart-svc.env (REDIS_URL, KAFKA_BROKERS, PRODUCT_SVC_URL, USER_SVC_URL): what is
# measured is a release build of cart-svc that this script starts on a free port with those
# settings, HTTP_THREADS = BENCH_HTTP_THREADS and ACCESS_LOG=false, and stops at the end. The
# stack's own cart-svc keeps running next to it (same Redis, same consumer group): either may
# consume a user's user.registered, both write the same read model, and the checkouts' sagas are
# run by the instance they were sent to (it is kicked by the checkout; the other only looks at
# open orders every SAGA_RESUME). REDIS_URL holds a password: it reaches redis_load through its
# environment only, never a command line.
#
# Users are registered through user-svc (BENCH_USERS + BENCH_CHECKOUTS) and deleted through it at
# the end (BENCH_KEEP_USERS=1 keeps them); their orders stay. Each checkout takes one unit of a
# catalog product's stock for good (a placed order is not undone).
#
# Environment, with defaults:
#   BENCH_SECONDS=10        length of one wrk or redis_load run (at most 120)
#   BENCH_ROUNDS=5          rounds of the get pair (at most 50)
#   BENCH_CONNECTIONS=16    wrk connections = redis_load threads (at most 256)
#   BENCH_HTTP_THREADS=     cart-svc HTTP_THREADS (default: BENCH_CONNECTIONS)
#   BENCH_REDIS_POOL=       cart-svc REDIS_POOL (default: BENCH_HTTP_THREADS + 4: the handlers
#                           and the saga worker, consumer and relay)
#   BENCH_USERS=200         users with a 3-line cart for the get pair (at most 2000)
#   BENCH_CHECKOUTS=200     checkouts of the saga measurement (at most 1000; 0: skip it)
#   BENCH_CHECKOUT_PARALLEL=50  checkout requests in flight at once (at most 300)
#   BENCH_MAX_LOAD=1.5      before measuring, wait until the 1-minute load average is below
#                           this (0: do not wait) ...
#   BENCH_LOAD_WAIT=600     ... for at most this many seconds, then measure anyway
#   BENCH_KEEP_USERS=0      1: keep the users registered here
#   BENCH_OUT=              also write every run's figures to this file (tab-separated)
#
# Traffic goes to 127.0.0.1 only and is bounded: 2 x ROUNDS runs and 2 warm-ups, each killed if
# it outlives its duration by 30 s, the set-up's requests (a few per user), BENCH_CHECKOUTS
# checkouts and their polling for at most 120 s (about 3 minutes with the defaults, plus the
# wait for a quiet machine).
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
POOL=${BENCH_REDIS_POOL:-$((THREADS + 4))}
NUSERS=${BENCH_USERS:-200}
CHECKOUTS=${BENCH_CHECKOUTS:-200}
PARALLEL=${BENCH_CHECKOUT_PARALLEL:-50}
MAX_LOAD=${BENCH_MAX_LOAD:-1.5}
LOAD_WAIT=${BENCH_LOAD_WAIT:-600}
KEEP_USERS=${BENCH_KEEP_USERS:-0}
OUT=${BENCH_OUT:-}
WARMUP_SECONDS=2
POLL_SECONDS=120
UP="make up"
ENV_FILE=$ENVDIR/cart-svc.env

for v in SECONDS_PER_RUN ROUNDS CONNS THREADS POOL NUSERS PARALLEL LOAD_WAIT; do
    [[ ${!v} =~ ^[1-9][0-9]{0,8}$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $CHECKOUTS =~ ^[0-9]{1,9}$ ]] || die "BENCH_CHECKOUTS must be a whole number, not '$CHECKOUTS'"
[[ $MAX_LOAD =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_MAX_LOAD must be a number, not '$MAX_LOAD'"
[[ $KEEP_USERS =~ ^[01]$ ]] || die "BENCH_KEEP_USERS must be 0 or 1, not '$KEEP_USERS'"
[ "$SECONDS_PER_RUN" -le 120 ] || die "BENCH_SECONDS is capped at 120"
[ "$ROUNDS" -le 50 ] || die "BENCH_ROUNDS is capped at 50"
[ "$CONNS" -le 256 ] || die "BENCH_CONNECTIONS is capped at 256"
[ "$THREADS" -le 256 ] || die "BENCH_HTTP_THREADS is capped at 256"
[ "$POOL" -le 300 ] || die "BENCH_REDIS_POOL is capped at 300"
[ "$NUSERS" -le 2000 ] || die "BENCH_USERS is capped at 2000"
[ "$CHECKOUTS" -le 1000 ] || die "BENCH_CHECKOUTS is capped at 1000"
[ "$PARALLEL" -le 300 ] || die "BENCH_CHECKOUT_PARALLEL is capped at 300"

# ---- set-up --------------------------------------------------------------------------------

apt_install wrk curl jq
[ -r "$ENV_FILE" ] || die "$ENV_FILE is missing: start the local stack first ($UP)"
# env_get KEY: a value of cart-svc's env file. Only the keys asked for leave it.
env_get() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }
REDIS_URL=$(env_get REDIS_URL)
KAFKA_BROKERS=$(env_get KAFKA_BROKERS)
PRODUCT_URL=$(env_get PRODUCT_SVC_URL)
PRODUCT_URL=${PRODUCT_URL%/}
USER_URL=$(env_get USER_SVC_URL)
USER_URL=${USER_URL%/}
STACK_CART_URL=http://127.0.0.1:$(env_get HTTP_PORT)
# Only the host part is checked: the URL's credentials are never printed.
[[ $REDIS_URL =~ ^redis://([^@/]*@)?(127\.0\.0\.1|localhost):[0-9]+(/[0-9]+)?$ ]] ||
    die "REDIS_URL of $ENV_FILE is not a Redis on 127.0.0.1: this benchmark runs against the" \
        "local stack only"
for u in "$PRODUCT_URL" "$USER_URL"; do
    [[ $u =~ ^http://(127\.0\.0\.1|localhost):[0-9]+$ ]] ||
        die "$ENV_FILE names $u: this benchmark runs against the local stack on 127.0.0.1 only"
done
for pair in "user-svc $USER_URL" "product-svc $PRODUCT_URL" "cart-svc $STACK_CART_URL"; do
    name=${pair%% *} url=${pair#* }
    curl -fsS --max-time 5 "$url/readyz" 2>/dev/null | jq -e '.status == "ready"' >/dev/null 2>&1 ||
        die "$name on $url is not ready (log: $LOGS/$name.log): start the stack with $UP"
done
REDIS_PID=$(pid_of redis)
[ -n "$REDIS_PID" ] || warn "Redis' process not found: its CPU is not measured"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_cart_svc.XXXXXX")
BENCH_SVC_PID=
USERS_MADE=
cleanup() {
    stop_proc "$BENCH_SVC_PID"
    if [ "$KEEP_USERS" = 0 ] && [ -n "$USERS_MADE" ] && [ -s "$USERS_MADE" ]; then
        log "deleting the $(wc -l <"$USERS_MADE") users registered here (BENCH_KEEP_USERS=1 keeps them)"
        : >"$TMP/del.cfg"
        while read -r id; do
            block "$TMP/del.cfg" DELETE "$USER_URL/v1/users/$id" "$id"
        done <"$USERS_MADE"
        batch "$TMP/del.cfg" >/dev/null 2>&1 || warn "deleting the users failed"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# block CFG METHOD URL TAG [BODY] [HEADER]: appends one request to the curl config CFG; its answer
# goes to $TMP/answers/TAG, and batch prints "TAG CODE" for it.
mkdir "$TMP/answers"
block() {
    local cfg=$1 method=$2 url=$3 tag=$4 body=${5:-} header=${6:-}
    [ -s "$cfg" ] && echo next >>"$cfg"
    {
        printf 'url = "%s"\nrequest = "%s"\nsilent\nshow-error\nmax-time = 30\n' "$url" "$method"
        printf 'output = "%s"\nwrite-out = "%s %%{http_code}\\n"\n' "$TMP/answers/$tag" "$tag"
        if [ -n "$body" ]; then
            printf 'header = "Content-Type: application/json"\ndata = "%s"\n' "${body//\"/\\\"}"
        fi
        [ -z "$header" ] || printf 'header = "%s"\n' "$header"
    } >>"$cfg"
}
# batch CFG [PARALLEL]: the requests of CFG, at most PARALLEL (default 16) at once; "TAG CODE"
# lines on stdout (code 000: no answer).
batch() { curl -Z --parallel-max "${2:-16}" -K "$1" 2>"$TMP/curl.err" || true; }
answer() { cat "$TMP/answers/$1" 2>/dev/null || true; }

log "building cart-svc and catalog-gen (release preset), redis_load (cc -O2)"
(cd "$ROOT" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target cart-svc catalog-gen) \
    >"$LOGS/bench-build-cart-svc.log" 2>&1 ||
    { tail_log "$LOGS/bench-build-cart-svc.log"; die "build failed"; }
GEN_DIR=$ROOT/build/release
{ command -v pkg-config >/dev/null && pkg-config --exists hiredis; } ||
    die "hiredis not found by pkg-config: run deploy/local/deps.sh (libhiredis-dev)"
LOAD=$TMP/redis_load
# The source before the libraries, so that the link keeps them also with --as-needed.
# shellcheck disable=SC2046 # pkg-config's output is a list of words
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$LOAD" "$here/redis_load.c" \
    $(pkg-config --cflags --libs hiredis) -pthread >"$TMP/cc.log" 2>&1 ||
    { tail_log "$TMP/cc.log"; die "building redis_load failed"; }

total=$(curl -fsS --max-time 30 "$PRODUCT_URL/v1/products?limit=1" | jq -r .total) ||
    die "GET $PRODUCT_URL/v1/products failed"
if [ "$total" = 0 ]; then
    log "the catalog is empty: seeding 10000 products of catalog 42 (tools/seed.sh)"
    SEED=42 COUNT=10000 BUILD_DIR=$GEN_DIR "$ROOT/tools/seed.sh" >"$TMP/seed.log" 2>&1 ||
        { tail_log "$TMP/seed.log"; die "seeding the catalog failed"; }
fi

# From here on, the release build is what is measured, in its own session so that a Ctrl-C
# reaches this script first.
BENCH_PORT=$(free_port "$(env_get HTTP_PORT)")
BENCH_SVC_LOG=$LOGS/bench-cart-svc.log
CART_URL=http://127.0.0.1:$BENCH_PORT
log "starting cart-svc (release) on 127.0.0.1:$BENCH_PORT: HTTP_THREADS=$THREADS REDIS_POOL=$POOL"
HTTP_BIND=127.0.0.1 HTTP_PORT=$BENCH_PORT HTTP_THREADS=$THREADS REDIS_POOL=$POOL \
    ACCESS_LOG=false LOG_LEVEL=info REDIS_URL=$REDIS_URL KAFKA_BROKERS=$KAFKA_BROKERS \
    PRODUCT_SVC_URL=$PRODUCT_URL USER_SVC_URL=$USER_URL \
    setsid "$GEN_DIR/cart-svc/cart-svc" </dev/null >/dev/null 2>"$BENCH_SVC_LOG" &
BENCH_SVC_PID=$!
wait_http "$CART_URL/readyz" "$BENCH_SVC_PID" ||
    { tail_log "$BENCH_SVC_LOG"; die "cart-svc (release) did not become ready"; }

# Products: EUR ones of the catalog (a cart holds one currency), newest first, 100 a page; those
# with 3 or more units available go to the checkouts, one each, the others fill the get pair's
# carts.
log "picking products of the catalog"
: >"$TMP/products.tsv"
cursor=''
need_stock=$CHECKOUTS
for ((page = 0; page < 100; page++)); do
    curl -fsS --max-time 30 "$PRODUCT_URL/v1/products?limit=100${cursor:+&cursor=$cursor}" \
        >"$TMP/page.json" || die "GET $PRODUCT_URL/v1/products failed"
    jq -r '.items[] | select(.currency == "EUR") | [.id, .available, .price_cents] | @tsv' \
        "$TMP/page.json" >>"$TMP/products.tsv"
    cursor=$(jq -r '.next_cursor // empty' "$TMP/page.json")
    n=$(awk -F'\t' '$2 >= 3' "$TMP/products.tsv" | wc -l)
    [ "$n" -ge "$need_stock" ] && [ "$(wc -l <"$TMP/products.tsv")" -ge 30 ] && break
    [ -n "$cursor" ] || break
done
awk -F'\t' '$2 >= 3' "$TMP/products.tsv" | head -n "$CHECKOUTS" >"$TMP/stock.tsv"
[ "$(wc -l <"$TMP/stock.tsv")" -ge "$CHECKOUTS" ] ||
    die "only $(wc -l <"$TMP/stock.tsv") EUR products with 3 units available for $CHECKOUTS checkouts"
mapfile -t GET_PRODUCTS < <(cut -f1 "$TMP/products.tsv" | head -n 30)
[ "${#GET_PRODUCTS[@]}" -ge 3 ] || die "fewer than 3 EUR products in the catalog"

# Users: NUSERS for the get pair, CHECKOUTS for the saga, registered through user-svc.
run_id=$(date +%s)-$$
NALL=$((NUSERS + CHECKOUTS))
log "registering $NALL users through user-svc"
: >"$TMP/reg.cfg"
for ((i = 0; i < NALL; i++)); do
    block "$TMP/reg.cfg" POST "$USER_URL/v1/users" "u$i" \
        "{\"email\":\"bench-cart-$run_id-$i@example.com\",\"name\":\"Bench Cart $i\"}"
done
batch "$TMP/reg.cfg" >"$TMP/reg.out"
USERS_MADE=$TMP/users_made.txt
: >"$USERS_MADE"
for ((i = 0; i < NALL; i++)); do
    id=$(answer "u$i" | jq -r '.id // empty' 2>/dev/null || true)
    [ -n "$id" ] || die "registering user $i failed: $(answer "u$i" | head -c 300)" \
        "$(head -c 300 "$TMP/curl.err")"
    printf '%s\n' "$id" >>"$USERS_MADE"
done
head -n "$NUSERS" "$USERS_MADE" >"$TMP/users.txt"
tail -n "$CHECKOUTS" "$USERS_MADE" >"$TMP/buyers.txt"

# put_lines FILE: the cart lines of FILE ("user product" a line) through cart-svc's PUT,
# quantity 1; a 404 user-not-known (cart-svc has not consumed the user.registered yet) is tried
# again every 0.2 s for at most 60 s, anything else but 200 stops the benchmark.
put_lines() {
    local pending=$1 deadline=$((SECONDS + 60)) i code tag
    while [ -s "$pending" ]; do
        : >"$TMP/put.cfg"
        i=0
        while read -r u p; do
            block "$TMP/put.cfg" PUT "$CART_URL/v1/carts/$u/items/$p" "p$i" '{"quantity":1}'
            i=$((i + 1))
        done <"$pending"
        batch "$TMP/put.cfg" >"$TMP/put.out"
        : >"$TMP/retry.txt"
        i=0
        while read -r u p; do
            code=$(awk -v t="p$i" '$1 == t { print $2 }' "$TMP/put.out")
            tag=p$i
            i=$((i + 1))
            [ "$code" = 200 ] && continue
            if [ "$code" = 404 ] && answer "$tag" | grep -q user-not-known; then
                printf '%s %s\n' "$u" "$p" >>"$TMP/retry.txt"
                continue
            fi
            die "PUT /v1/carts/$u/items/$p answered ${code:-nothing}: $(answer "$tag" | head -c 300)"
        done <"$pending"
        mv "$TMP/retry.txt" "$pending"
        if [ -s "$pending" ]; then
            [ "$SECONDS" -lt "$deadline" ] ||
                die "cart-svc did not hear of $(wc -l <"$pending") users' user.registered in 60 s"
            sleep 0.2
        fi
    done
}

log "filling $NUSERS carts with 3 lines each, $CHECKOUTS with one in-stock product each"
: >"$TMP/lines.txt"
i=0
while read -r u; do
    for k in 0 1 2; do
        printf '%s %s\n' "$u" "${GET_PRODUCTS[$(((i * 3 + k) % ${#GET_PRODUCTS[@]}))]}" \
            >>"$TMP/lines.txt"
    done
    i=$((i + 1))
done <"$TMP/users.txt"
paste -d' ' "$TMP/buyers.txt" <(cut -f1 "$TMP/stock.tsv") >>"$TMP/lines.txt"
put_lines "$TMP/lines.txt"

u=$(head -n 1 "$TMP/users.txt")
curl -fsS --max-time 10 "$CART_URL/v1/carts/$u" | jq -e '.lines | length == 3' >/dev/null ||
    die "GET /v1/carts/$u does not answer the 3 lines put"
REDIS_URL=$REDIS_URL "$LOAD" 1 1 "$TMP/users.txt" >"$TMP/check.txt" 2>&1 ||
    { tail_log "$TMP/check.txt"; die "redis_load cannot read the carts"; }
grep -q ' bad 0$' "$TMP/check.txt" ||
    { tail_log "$TMP/check.txt"; die "redis_load finds users unknown to the read model"; }

# ---- the get pair ----------------------------------------------------------------------------

RESULTS=$TMP/results.tsv
printf 'round\tside\trate\tp50_ms\tp99_ms\trequests\tbad\tsvc_cpu_us\tredis_cpu_us\n' >"$RESULTS"
ticks_of() { if [ -n "$1" ]; then cpu_ticks "$1"; else echo 0; fi; }

# run ROUND SIDE SECONDS: one run of cart-svc (wrk) or Redis (redis_load), its figures appended
# to RESULTS (ROUND "-" for warm-ups).
run() {
    local round=$1 side=$2 secs=$3 out s0 s1 r0 r1 scpu rcpu
    out=$TMP/$side-$round.txt
    s0=$(ticks_of "$BENCH_SVC_PID")
    r0=$(ticks_of "$REDIS_PID")
    if [ "$side" = svc ]; then
        timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s --latency \
            -s "$here/../random_get.lua" "$CART_URL" -- "$TMP/users.txt" /v1/carts/%s \
            >"$out" 2>&1 || { tail_log "$out"; die "wrk failed"; }
        wrk_results "$out"
    else
        REDIS_URL=$REDIS_URL timeout $((secs + 30)) "$LOAD" "$secs" "$CONNS" "$TMP/users.txt" \
            >"$out" 2>"$out.err" || { tail_log "$out.err"; die "redis_load failed"; }
        read -r _ WRK_REQS _ _ _ WRK_RPS _ WRK_P50 _ WRK_P99 _ WRK_BAD <"$out"
    fi
    s1=$(ticks_of "$BENCH_SVC_PID")
    r1=$(ticks_of "$REDIS_PID")
    [[ $WRK_REQS =~ ^[0-9]+$ && $WRK_REQS -gt 0 && -n $WRK_RPS ]] ||
        { tail_log "$out"; die "cannot read the output of the $side run"; }
    read -r scpu rcpu < <(awk -v s="$((s1 - s0))" -v r="$((r1 - r0))" -v n="$WRK_REQS" \
        -v hz="$(getconf CLK_TCK)" -v side="$side" -v rp="$REDIS_PID" 'BEGIN {
            printf "%s %s\n", side == "svc" ? sprintf("%.2f", s * 1e6 / hz / n) : "-",
                               rp == "" ? "-" : sprintf("%.2f", r * 1e6 / hz / n) }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$WRK_RPS" "$WRK_P50" \
        "$WRK_P99" "$WRK_REQS" "$WRK_BAD" "$scpu" "$rcpu" >>"$RESULTS"
    printf '  %-3s %-5s %9.0f /s  p50 %8s ms  p99 %8s ms  cpu us/req: svc %7s redis %7s%s\n' \
        "$round" "$side" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$scpu" "$rcpu" \
        "$([ "$WRK_BAD" -gt 0 ] && printf '  (%s bad)' "$WRK_BAD")"
}
median() {
    awk -F'\t' -v s="$1" -v c="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 ~ /^[0-9]+$/ && $2 == s { print $col[c] }' "$RESULTS" | median_of
}

log "get: $NUSERS users with 3-line carts; wrk -t1 -c$CONNS vs redis_load with $CONNS threads"
wait_for_quiet "$MAX_LOAD" "$LOAD_WAIT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up (${WARMUP_SECONDS}s each, not counted)"
run - svc "$WARMUP_SECONDS" >/dev/null
run - redis "$WARMUP_SECONDS" >/dev/null
log "measuring: $ROUNDS rounds of ${SECONDS_PER_RUN}s runs, load average $LOAD_START"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(redis svc); else order=(svc redis); fi
    for side in "${order[@]}"; do run "$r" "$side" "$SECONDS_PER_RUN"; done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the checkout saga -----------------------------------------------------------------------

CO_SUMMARY=()
if [ "$CHECKOUTS" -gt 0 ]; then
    log "checkout: crediting $CHECKOUTS wallets"
    : >"$TMP/credit.cfg"
    i=0
    while read -r u; do
        block "$TMP/credit.cfg" POST "$USER_URL/v1/users/$u/wallet/credits" "c$i" \
            "{\"credit_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"amount_cents\":10000000}"
        i=$((i + 1))
    done <"$TMP/buyers.txt"
    batch "$TMP/credit.cfg" >"$TMP/credit.out"
    bad=$(awk '$2 != 201' "$TMP/credit.out" | wc -l)
    [ "$(awk '$2 == 201' "$TMP/credit.out" | wc -l)" -eq "$CHECKOUTS" ] ||
        die "crediting the wallets failed ($bad answers not 201): $(head -c 300 "$TMP/curl.err")"

    : >"$TMP/co.cfg"
    i=0
    while read -r u; do
        block "$TMP/co.cfg" POST "$CART_URL/v1/carts/$u/checkout" "o$i" '' \
            "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)"
        i=$((i + 1))
    done <"$TMP/buyers.txt"
    log "checkout: $CHECKOUTS checkouts at once (at most $PARALLEL in flight)"
    fire_ms=$(date +%s%3N)
    batch "$TMP/co.cfg" "$PARALLEL" >"$TMP/co.out"
    fired_ms=$(date +%s%3N)
    : >"$TMP/orders.txt"
    for ((i = 0; i < CHECKOUTS; i++)); do
        code=$(awk -v t="o$i" '$1 == t { print $2 }' "$TMP/co.out")
        [ "$code" = 202 ] || die "checkout $i answered ${code:-nothing}: $(answer "o$i" | head -c 300)"
        answer "o$i" | jq -r .id >>"$TMP/orders.txt"
    done
    # Polling: every open order, all in one curl, until each is placed or failed.
    cp "$TMP/orders.txt" "$TMP/open.txt"
    : >"$TMP/done.ndjson"
    deadline=$((SECONDS + POLL_SECONDS))
    while [ -s "$TMP/open.txt" ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
        : >"$TMP/poll.cfg"
        while read -r o; do block "$TMP/poll.cfg" GET "$CART_URL/v1/orders/$o" "g$o"; done \
            <"$TMP/open.txt"
        batch "$TMP/poll.cfg" >/dev/null
        : >"$TMP/still.txt"
        while read -r o; do
            if answer "g$o" | jq -e '.status == "placed" or .status == "failed"' >/dev/null 2>&1; then
                answer "g$o" | jq -c . >>"$TMP/done.ndjson"
            else
                printf '%s\n' "$o" >>"$TMP/still.txt"
            fi
        done <"$TMP/open.txt"
        mv "$TMP/still.txt" "$TMP/open.txt"
    done
    open=$(wc -l <"$TMP/open.txt")
    # Timestamps are RFC 3339 UTC with milliseconds: ms since the epoch.
    jq -r 'def ms: (.[0:19] + "Z" | fromdateiso8601) * 1000 + (.[20:23] | tonumber);
           [.status, (.created_at | ms), (.updated_at | ms), .failed_step // "-",
            (.reason // "-" | gsub("[\t\n]"; " "))] | @tsv' "$TMP/done.ndjson" >"$TMP/co.tsv"
    placed=$(awk -F'\t' '$1 == "placed"' "$TMP/co.tsv" | wc -l)
    failed=$(awk -F'\t' '$1 == "failed"' "$TMP/co.tsv" | wc -l)
    CO_P50=$(awk -F'\t' '$1 == "placed" { print $3 - $2 }' "$TMP/co.tsv" | median_of)
    CO_P99=$(awk -F'\t' '$1 == "placed" { print $3 - $2 }' "$TMP/co.tsv" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
                                  i = int(NR * 0.99); if (i < NR * 0.99) i++; print v[i] }')
    last_ms=$(awk -F'\t' '$1 == "placed" { m = $3 > m ? $3 : m } END { printf "%.0f\n", m }' "$TMP/co.tsv")
    CO_RATE=$(awk -v n="$placed" -v a="$fire_ms" -v b="$last_ms" \
        'BEGIN { if (n > 0 && b > a) printf "%.1f\n", n * 1000 / (b - a); else print "nan" }')
    CO_ACCEPT=$(awk -v n="$CHECKOUTS" -v a="$fire_ms" -v b="$fired_ms" \
        'BEGIN { printf "%.1f\n", (b > a) ? n * 1000 / (b - a) : 0 }')
    CO_SUMMARY+=("$(printf 'checkout: %d orders: %d placed, %d failed, %d still open after %ds' \
        "$CHECKOUTS" "$placed" "$failed" "$open" "$POLL_SECONDS")")
    CO_SUMMARY+=("$(printf '  %s orders/s placed (first checkout sent -> last order placed);' \
        "$CO_RATE") $(printf 'checkouts accepted at %s/s' "$CO_ACCEPT")")
    CO_SUMMARY+=("$(printf '  checkout -> placed (created_at -> updated_at): p50 %s ms, p99 %s ms' \
        "$CO_P50" "$CO_P99")")
    if [ "$failed" -gt 0 ]; then
        CO_SUMMARY+=("  failures, by step and reason:")
        while read -r line; do CO_SUMMARY+=("    $line"); done < <(awk -F'\t' \
            '$1 == "failed" { n[$4 ": " $5]++ } END { for (k in n) print n[k] " x " k }' \
            "$TMP/co.tsv")
    fi
fi

# ---- report --------------------------------------------------------------------------------

echo
machine_line
printf 'get: medians of %d rounds of %ds, %d connections / threads, 127.0.0.1; %d users, 3-line carts\n' \
    "$ROUNDS" "$SECONDS_PER_RUN" "$CONNS" "$NUSERS"
printf '%-34s %10s %9s %9s %9s %9s\n' "" rate/s p50_ms p99_ms svc_cpu redis_cpu
printf '%-34s %10s %9s %9s %9s %9s\n' "" "" "" "" us/req us/req
printf '%-34s %10.0f %9.3f %9.3f %9s %9s\n' "Redis (redis_load, 3 commands)" \
    "$(median redis rate)" "$(median redis p50_ms)" "$(median redis p99_ms)" - \
    "$(median redis redis_cpu_us)"
printf '%-34s %10.0f %9.3f %9.3f %9s %9s\n' "cart-svc GET /v1/carts/{id}" \
    "$(median svc rate)" "$(median svc p50_ms)" "$(median svc p99_ms)" \
    "$(median svc svc_cpu_us)" "$(median svc redis_cpu_us)"
rate_ratio=$(ratio "$(median svc rate)" "$(median redis rate)")
printf '%-34s %10s %9s %9s\n' "ratio cart-svc/Redis" "$rate_ratio" \
    "$(ratio "$(median svc p50_ms)" "$(median redis p50_ms)")" \
    "$(ratio "$(median svc p99_ms)" "$(median redis p99_ms)")"
mapfile -t rr < <(awk -F'\t' 'NR > 1 && $1 ~ /^[0-9]+$/ { v[$1, $2] = $3; n = $1 > n ? $1 : n }
    END { for (i = 1; i <= n; i++) if (v[i, "redis"] > 0) printf "%.2f\n", v[i, "svc"] / v[i, "redis"] }' \
    "$RESULTS")
printf '  rate ratio round by round: %s; their median %s\n' "${rr[*]}" \
    "$(printf '%s\n' "${rr[@]}" | median_of)"
echo "(svc_cpu: cart-svc's process; redis_cpu: Redis' process, whoever its clients)"
printf 'load average: %s at the start of the rounds, %s at the end\n' "$LOAD_START" "$LOAD_END"
printf 'bad answers (non-2xx, socket errors, failed commands) over all runs: %s\n' \
    "$(awk -F'\t' 'NR > 1 { n += $7 } END { print n + 0 }' "$RESULTS")"
printf 'goal: get rate >= 0.5 x Redis: %s (ratio of the medians %s)\n' \
    "$(awk -v x="$rate_ratio" 'BEGIN { print (x + 0 >= 0.5) ? "met" : "NOT met" }')" "$rate_ratio"
[ "${#CO_SUMMARY[@]}" -eq 0 ] || printf '%s\n' "${CO_SUMMARY[@]}"
echo
print_runs "$RESULTS" "$OUT"
if [ "$CHECKOUTS" -gt 0 ] && [ "$placed" -ne "$CHECKOUTS" ]; then
    die "$((CHECKOUTS - placed)) of $CHECKOUTS orders did not end placed"
fi

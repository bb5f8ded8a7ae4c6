#!/usr/bin/env bash
# bench/analytics_svc: analytics-svc (a release build this script starts) against ClickHouse
# doing the same work, three measurements in one run:
#
#   ingest    BENCH_EVENTS events of tools/eventgen (a fresh seed and an hour of their own each
#             round) produced first to the round's own topics, then read by the bench's
#             analytics-svc (a group of its own): events/s from the first row visible in
#             ClickHouse to the last (count() polled every 100 ms). Baseline: the same rows,
#             exported with SELECT ... FORMAT JSONEachRow, inserted raw in batches of BATCH_MAX
#             (one curl, keep-alive, one after the other, the store's insert URL) into a scratch
#             database with the same migrations (materialized views included), which the admin
#             user `default` creates and drops. BENCH_INGEST_ROUNDS rounds; goal >= 0.5.
#   steady    BENCH_STEADY_RATE events/s for BENCH_STEADY_SECONDS, each send time written by the
#             producer (an_produce.c); count() of the run's topics polled every 50 ms, the n-th
#             event sent matched with the first poll that counts n events: p50/p99/max of
#             sent -> visible. Goal: p99 < 1 s.
#   query     each endpoint on one million events (eventgen seed 2002, 2002-03-01, produced and
#             ingested once and kept: its count is checked first) driven by wrk -t1
#             -cBENCH_CONNECTIONS, against the same SQL POSTed by wrk to ClickHouse's HTTP
#             interface as analytics_svc (ch_query.lua). The SQL is what the store sent, taken
#             from system.query_log (deploy/local/engines/clickhouse.sh logs analytics_svc's
#             queries). BENCH_ROUNDS rounds of BENCH_QUERY_SECONDS runs, who goes first
#             alternating; medians and the ratio; goal >= 0.8.
#
#   bench/analytics_svc/run.sh          (or `make bench-analytics`; --help prints this)
#
# Needs the running stack (`make up`) with ClickHouse and Kafka, restarted with the query log
# (a stack started before clickhouse.sh configured it: `deploy/local/stack.sh stop clickhouse &&
# deploy/local/stack.sh up clickhouse`). The settings come from .local/env/analytics-svc.env;
# the admin password from .local/conf/secrets/clickhouse_admin; both reach curl and wrk through
# mode-600 files or the environment, never a command line. The analytics-svc measured is started
# here on a free port with those settings plus ANALYTICS_TOPICS/ANALYTICS_GROUP of its own,
# ACCESS_LOG=false, and stopped at the end. Every run's topics (bench-an-<run>-*) stay in Kafka
# and its events in analytics.events, in windows of their own (2003-2019, and the 2002 day).
#
# Environment, with defaults:
#   BENCH_EVENTS=100000         events per ingest round (1000 to 1000000)
#   BENCH_INGEST_ROUNDS=3       ingest rounds (at most 10; 0 skips the part)
#   BENCH_STEADY_RATE=1000      events/s of the steady part (1 to 20000)
#   BENCH_STEADY_SECONDS=30     its length (0 skips the part; at most 300)
#   BENCH_QUERY_EVENTS=1000000  events of the query part's data set (its size is its identity:
#                               another size is another data set, on 2002-03-02)
#   BENCH_ROUNDS=3              rounds of the query part (at most 20; 0 skips the part)
#   BENCH_QUERY_SECONDS=4       length of one wrk run (at most 60)
#   BENCH_CONNECTIONS=4         wrk connections, both sides (at most 64)
#   BENCH_MAX_LOAD=1.5          before measuring, wait until the 1-minute load average is below
#                               this (0: do not wait) ...
#   BENCH_LOAD_WAIT=600         ... for at most this many seconds, then measure anyway
#   BENCH_OUT=                  also write every run's figures to this file (tab-separated)
#
# Traffic goes to 127.0.0.1 only and is bounded: every wait has a deadline (ingest 600 s a round,
# steady 60 s after the last send, the data set 900 s), every wrk run is killed 30 s after its
# duration. About 6 minutes with the defaults once the data set exists (its first ingest adds a
# few minutes).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--help]  (settings through BENCH_* variables)" >&2; exit 2; }
# shellcheck source=../lib.sh
. "$here/../lib.sh"

EVENTS=${BENCH_EVENTS:-100000}
INGEST_ROUNDS=${BENCH_INGEST_ROUNDS:-3}
STEADY_RATE=${BENCH_STEADY_RATE:-1000}
STEADY_SECONDS=${BENCH_STEADY_SECONDS:-30}
QEVENTS=${BENCH_QUERY_EVENTS:-1000000}
ROUNDS=${BENCH_ROUNDS:-3}
QSECONDS=${BENCH_QUERY_SECONDS:-4}
CONNS=${BENCH_CONNECTIONS:-4}
MAX_LOAD=${BENCH_MAX_LOAD:-1.5}
LOAD_WAIT=${BENCH_LOAD_WAIT:-600}
OUT=${BENCH_OUT:-}
ENV_FILE=$ENVDIR/analytics-svc.env
ADMIN_SECRET=$CONF/secrets/clickhouse_admin
UP="make up"

for v in EVENTS STEADY_RATE QEVENTS QSECONDS CONNS LOAD_WAIT; do
    [[ ${!v} =~ ^[1-9][0-9]{0,8}$ ]] || die "$v must be a positive integer, not '${!v}'"
done
for v in INGEST_ROUNDS STEADY_SECONDS ROUNDS; do
    [[ ${!v} =~ ^[0-9]{1,4}$ ]] || die "$v must be a whole number, not '${!v}'"
done
[[ $MAX_LOAD =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_MAX_LOAD must be a number, not '$MAX_LOAD'"
{ [ "$EVENTS" -ge 1000 ] && [ "$EVENTS" -le 1000000 ]; } || die "BENCH_EVENTS must be 1000 to 1000000"
[ "$INGEST_ROUNDS" -le 10 ] || die "BENCH_INGEST_ROUNDS is capped at 10"
[ "$STEADY_RATE" -le 20000 ] || die "BENCH_STEADY_RATE is capped at 20000"
[ "$STEADY_SECONDS" -le 300 ] || die "BENCH_STEADY_SECONDS is capped at 300"
[ "$QEVENTS" -le 2000000 ] || die "BENCH_QUERY_EVENTS is capped at 2000000"
[ "$ROUNDS" -le 20 ] || die "BENCH_ROUNDS is capped at 20"
[ "$QSECONDS" -le 60 ] || die "BENCH_QUERY_SECONDS is capped at 60"
[ "$CONNS" -le 64 ] || die "BENCH_CONNECTIONS is capped at 64"

# ---- set-up --------------------------------------------------------------------------------

apt_install wrk curl jq
[ -r "$ENV_FILE" ] || die "$ENV_FILE is missing: start the local stack first ($UP)"
[ -r "$ADMIN_SECRET" ] || die "$ADMIN_SECRET is missing: start the local stack first ($UP)"
env_get() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }
CH_URL=$(env_get CLICKHOUSE_URL)
CH_URL=${CH_URL%/}
KAFKA_BROKERS=$(env_get KAFKA_BROKERS)
BATCH=$(env_get BATCH_MAX)
BATCH=${BATCH:-1000}
[[ $CH_URL =~ ^http://(127\.0\.0\.1|localhost):[0-9]+$ ]] ||
    die "CLICKHOUSE_URL of $ENV_FILE is not on 127.0.0.1: this benchmark runs against the local stack only"
[[ $KAFKA_BROKERS =~ ^(127\.0\.0\.1|localhost):[0-9]+$ ]] ||
    die "KAFKA_BROKERS of $ENV_FILE is not on 127.0.0.1: this benchmark runs against the local stack only"
[ "$(curl -fsS --max-time 3 "$CH_URL/ping" 2>/dev/null)" = "Ok." ] ||
    die "ClickHouse does not answer on $CH_URL: start the stack with $UP"
CH_PID=$(pid_of clickhouse)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_analytics_svc.XXXXXX")
SVC_PID=
POLL_PID=
SCRATCH=
cleanup() {
    [ -z "$POLL_PID" ] || { kill "$POLL_PID" 2>/dev/null || true; wait "$POLL_PID" 2>/dev/null || true; }
    stop_proc "$SVC_PID"
    [ -z "$SCRATCH" ] || ch admin "DROP DATABASE IF EXISTS $SCRATCH" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Credentials as curl config files (mode 600): headers, as the store sends them.
(
    umask 077
    printf 'header = "X-ClickHouse-User: %s"\nheader = "X-ClickHouse-Key: %s"\n' \
        "$(env_get CLICKHOUSE_USER)" "$(env_get CLICKHOUSE_PASSWORD)" >"$TMP/svc.curl"
    printf 'header = "X-ClickHouse-User: default"\nheader = "X-ClickHouse-Key: %s"\n' \
        "$(cat "$ADMIN_SECRET")" >"$TMP/admin.curl"
)
# ch WHO SQL [DATABASE]: the answer of SQL (POSTed) as WHO (svc: analytics_svc, admin: default).
ch() {
    curl -sS --fail-with-body --max-time 120 -K "$TMP/$1.curl" --data-binary "$2" \
        "$CH_URL/?database=${3:-analytics}&output_format_json_quote_64bit_integers=0"
}

log "building analytics-svc, eventgen and polyglot-topics (release preset), an_produce (cc -O2)"
(cd "$ROOT" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target analytics-svc eventgen polyglot-topics) \
    >"$LOGS/bench-build-analytics-svc.log" 2>&1 ||
    { tail_log "$LOGS/bench-build-analytics-svc.log"; die "build failed"; }
REL=$ROOT/build/release
PRODUCE=$TMP/an_produce
# shellcheck disable=SC2046 # pkg-config's output is a list of words
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$PRODUCE" "$here/an_produce.c" \
    $(pkg-config --cflags --libs rdkafka jansson) >"$TMP/cc.log" 2>&1 ||
    { tail_log "$TMP/cc.log"; die "building an_produce failed"; }

run_id=$(date +%s)-$$
# topics PREFIX: the three platform topics (and their .dlq) under PREFIX.
topics() {
    printf '%suser-events 3\n%sproduct-events 3\n%scart-events 3\n' "$1" "$1" "$1" >"$TMP/topics.conf"
    "$REL/tools/topics/polyglot-topics" --brokers "$KAFKA_BROKERS" --file "$TMP/topics.conf" \
        >"$TMP/topics.log" 2>&1 || { tail_log "$TMP/topics.log"; die "creating topics $1* failed"; }
}
topic_list() { printf '%suser-events,%sproduct-events,%scart-events' "$1" "$1" "$1"; }
topic_in() { printf "'%suser-events','%sproduct-events','%scart-events'" "$1" "$1" "$1"; }

# start_svc PREFIX GROUP: the bench's analytics-svc on the topics under PREFIX, ready.
SVC_LOG=$LOGS/bench-analytics-svc.log
start_svc() {
    local port
    port=$(free_port "$(env_get HTTP_PORT)")
    SVC_URL=http://127.0.0.1:$port
    (
        set -a
        # shellcheck disable=SC1090 # the stack's env file
        . "$ENV_FILE"
        set +a
        HTTP_BIND=127.0.0.1 HTTP_PORT=$port ACCESS_LOG=false LOG_LEVEL=info \
            ANALYTICS_TOPICS=$(topic_list "$1") ANALYTICS_GROUP=$2 \
            exec setsid "$REL/analytics-svc/analytics-svc" </dev/null >/dev/null 2>>"$SVC_LOG"
    ) &
    SVC_PID=$!
    wait_http "$SVC_URL/readyz" "$SVC_PID" ||
        { tail_log "$SVC_LOG"; die "analytics-svc (release) did not become ready"; }
}
stop_svc() { stop_proc "$SVC_PID"; SVC_PID=; }

# wait_count WHERE TARGET SECONDS INTERVAL FILE: polls count() of events WHERE until it reaches
# TARGET, "ms count" lines into FILE (the ms at which each poll was sent); fails after SECONDS.
wait_count() {
    local where=$1 target=$2 secs=$3 every=$4 file=$5 t c deadline
    deadline=$(($(date +%s) + secs))
    : >"$file"
    while :; do
        t=$(date +%s%3N)
        c=$(ch svc "SELECT count() FROM events WHERE $where") || c=-1
        printf '%s %s\n' "$t" "$c" >>"$file"
        [ "$c" -ge "$target" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] ||
            die "only $c of $target events visible after ${secs}s (log: $SVC_LOG)"
        sleep "$every"
    done
}
# A window of its own: a random hour of 2003-2019 (a whole minute), as RFC 3339 and SQL.
window() {
    local s=$((1041379200 + (RANDOM * 32768 + RANDOM) % (17 * 365 * 24) * 3600))
    WIN_START=$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%SZ)
    WIN_WHERE="event_time >= toDateTime('$(date -u -d "@$s" '+%F %T')') AND
        event_time < toDateTime('$(date -u -d "@$((s + $1 * 60))" '+%F %T')')"
}
seed() { printf '%s\n' "$(((RANDOM << 30) | (RANDOM << 15) | RANDOM))"; }

RESULTS=$TMP/results.tsv
printf 'part\tround\tside\trate\tp50_ms\tp99_ms\textra\n' >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
median() {
    awk -F'\t' -v p="$1" -v s="$2" -v c="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == p && $2 ~ /^[0-9]+$/ && $3 == s { print $col[c] }' "$RESULTS" | median_of
}
SUMMARY=()

wait_for_quiet "$MAX_LOAD" "$LOAD_WAIT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- ingest --------------------------------------------------------------------------------

for ((r = 1; r <= INGEST_ROUNDS; r++)); do
    prefix=bench-an-$run_id-i$r-
    window 60
    s=$(seed)
    log "ingest $r/$INGEST_ROUNDS: eventgen --seed $s --count $EVENTS --start $WIN_START --minutes 60"
    "$REL/tools/eventgen/eventgen" --seed "$s" --start "$WIN_START" --minutes 60 --users 1000 \
        --count "$EVENTS" --events "$TMP/ingest.ndjson" >"$TMP/eventgen.log" 2>&1 ||
        { tail_log "$TMP/eventgen.log"; die "eventgen failed"; }
    topics "$prefix"
    "$PRODUCE" "$KAFKA_BROKERS" "$prefix" "$TMP/ingest.ndjson" 0 >"$TMP/produce.out" 2>&1 ||
        { tail_log "$TMP/produce.out"; die "producing failed"; }
    where="$WIN_WHERE AND topic IN ($(topic_in "$prefix"))"
    start_svc "$prefix" "bench-an-$run_id-i$r"
    wait_count "$where" "$EVENTS" 600 0.1 "$TMP/ingest.polls"
    stop_svc
    # From the first poll that saw rows to the first that saw them all: the rows after the first
    # poll's, over that time.
    svc_rate=$(awk '$2 > 0 && !f { f = 1; t0 = $1; c0 = $2 } END { t1 = $1; n = $2
        if (t1 > t0) printf "%.0f\n", (n - c0) * 1000 / (t1 - t0); else print "nan" }' \
        "$TMP/ingest.polls")

    # The baseline: the same rows, raw, into a scratch database with the same schema.
    ch svc "SELECT * FROM events WHERE $where FORMAT JSONEachRow" >"$TMP/rows.ndjson" ||
        die "exporting the rows failed"
    SCRATCH=bench_an_$(date +%s)_$$
    ch admin "CREATE DATABASE $SCRATCH" default >/dev/null || die "creating database $SCRATCH failed"
    for m in "$ROOT"/analytics-svc/migrations/*.sql; do
        # Statements end with ';' at the end of a line (the file's own rule); comments dropped.
        awk '!/^[ \t]*--/ { buf = buf $0 "\n" } /;[ \t]*$/ { print buf; printf "%c", 0; buf = "" }' \
            "$m" >"$TMP/stmts"
        while IFS= read -r -d '' stmt; do
            stmt=${stmt%;*}
            ch admin "$stmt" "$SCRATCH" >/dev/null || die "applying $m to $SCRATCH failed: $stmt"
        done <"$TMP/stmts"
    done
    rm -f "$TMP"/chunk.*
    split -l "$BATCH" -a 4 "$TMP/rows.ndjson" "$TMP/chunk."
    : >"$TMP/insert.curl"
    sep=
    for f in "$TMP"/chunk.*; do
        {
            [ -z "$sep" ] || echo "$sep"
            sep=next
            printf 'url = "%s/?database=%s&date_time_input_format=best_effort&query=INSERT%%20INTO%%20events%%20FORMAT%%20JSONEachRow"\n' \
                "$CH_URL" "$SCRATCH"
            cat "$TMP/admin.curl"
            printf 'data-binary = "@%s"\nfail\nsilent\nshow-error\noutput = "/dev/null"\n' "$f"
        } >>"$TMP/insert.curl"
    done
    nbatch=$(find "$TMP" -name 'chunk.*' | wc -l)
    t0=$(date +%s%3N)
    curl -K "$TMP/insert.curl" >"$TMP/insert.log" 2>&1 || { tail_log "$TMP/insert.log"; die "the raw insert failed"; }
    t1=$(date +%s%3N)
    got=$(ch admin "SELECT count() FROM events" "$SCRATCH")
    [ "$got" = "$EVENTS" ] || die "the raw insert wrote $got rows of $EVENTS"
    orders=$(ch admin "SELECT count() FROM orders" "$SCRATCH")
    ch admin "DROP DATABASE $SCRATCH" >/dev/null
    SCRATCH=
    ch_rate=$(awk -v n="$EVENTS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n * 1000 / (b - a) }')
    record ingest "$r" svc "$svc_rate" - - "$(wc -l <"$TMP/ingest.polls") polls"
    record ingest "$r" clickhouse "$ch_rate" - - "$nbatch inserts, $orders orders rows"
    printf '  ingest %d: analytics-svc %s events/s, raw insert %s events/s (%s batches of %s)\n' \
        "$r" "$svc_rate" "$ch_rate" "$nbatch" "$BATCH"
done
if [ "$INGEST_ROUNDS" -gt 0 ]; then
    ir=$(ratio "$(median ingest svc rate)" "$(median ingest clickhouse rate)")
    SUMMARY+=("$(printf 'ingest of %d events, medians of %d rounds: analytics-svc %s events/s, raw batched insert (%s rows a batch) %s events/s; ratio %s; goal >= 0.5: %s' \
        "$EVENTS" "$INGEST_ROUNDS" "$(median ingest svc rate)" "$BATCH" \
        "$(median ingest clickhouse rate)" "$ir" \
        "$(awk -v x="$ir" 'BEGIN { print (x + 0 >= 0.5) ? "met" : "NOT met" }')")")
fi

# ---- steady --------------------------------------------------------------------------------

if [ "$STEADY_SECONDS" -gt 0 ]; then
    n=$((STEADY_RATE * STEADY_SECONDS))
    prefix=bench-an-$run_id-s-
    window $(((STEADY_SECONDS + 59) / 60))
    s=$(seed)
    log "steady: $STEADY_RATE events/s for ${STEADY_SECONDS}s ($n events, eventgen --seed $s --start $WIN_START)"
    "$REL/tools/eventgen/eventgen" --seed "$s" --start "$WIN_START" --users 1000 \
        --minutes $(((STEADY_SECONDS + 59) / 60)) --count "$n" --events "$TMP/steady.ndjson" \
        >"$TMP/eventgen.log" 2>&1 || { tail_log "$TMP/eventgen.log"; die "eventgen failed"; }
    topics "$prefix"
    start_svc "$prefix" "bench-an-$run_id-s"
    # Assigned: its lag series for the run's topics exist.
    for ((i = 0; i < 300; i++)); do
        curl -fsS --max-time 2 "$SVC_URL/metrics" 2>/dev/null | grep -q "^kafka_consumer_lag{topic=\"${prefix}" && break
        sleep 0.1
    done
    where="$WIN_WHERE AND topic IN ($(topic_in "$prefix"))"
    (wait_count "$where" "$n" $((STEADY_SECONDS + 60)) 0.05 "$TMP/steady.polls") >/dev/null 2>&1 &
    POLL_PID=$!
    "$PRODUCE" "$KAFKA_BROKERS" "$prefix" "$TMP/steady.ndjson" "$STEADY_RATE" "$TMP/sent.txt" \
        >"$TMP/produce.out" 2>&1 || { tail_log "$TMP/produce.out"; die "producing failed"; }
    wait "$POLL_PID" || die "the steady events did not all become visible (log: $SVC_LOG)"
    POLL_PID=
    stop_svc
    # Event i (in sending order) is visible at the first poll counting more than i events.
    awk 'BEGIN { i = 0 } NR == FNR { s[NR - 1] = $1; next } { while (i < $2 && i in s) { print $1 - s[i]; i++ } }' \
        "$TMP/sent.txt" "$TMP/steady.polls" | sort -g >"$TMP/lat.txt"
    read -r sp50 sp99 smax < <(awk '{ v[NR] = $1 } END {
        i50 = int(NR * 0.5); if (i50 < NR * 0.5) i50++; i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
        printf "%.0f %.0f %.0f\n", v[i50], v[i99], v[NR] }' "$TMP/lat.txt")
    record steady 1 svc "$(awk '{ print $6 }' "$TMP/produce.out")" "$sp50" "$sp99" "max $smax ms"
    SUMMARY+=("$(printf 'steady %s events/s (%s sent) for %ss: sent -> visible p50 %s ms, p99 %s ms, max %s ms (polls every 50 ms); goal p99 < 1000 ms: %s' \
        "$STEADY_RATE" "$(awk '{ print $6 }' "$TMP/produce.out")" "$STEADY_SECONDS" "$sp50" "$sp99" \
        "$smax" "$([ "$sp99" -lt 1000 ] && echo met || echo NOT met)")")
fi

# ---- query ---------------------------------------------------------------------------------

if [ "$ROUNDS" -gt 0 ]; then
    # The data set: its size names its day (the default on 2002-03-01).
    day=$((1014940800 + (QEVENTS != 1000000) * 86400))
    QF=$(date -u -d "@$day" +%Y-%m-%dT%H:%M:%SZ)
    QT=$(date -u -d "@$((day + 86400))" +%Y-%m-%dT%H:%M:%SZ)
    qwhere="event_time >= toDateTime('$(date -u -d "@$day" '+%F %T')') AND event_time < toDateTime('$(date -u -d "@$((day + 86400))" '+%F %T')')"
    have=$(ch svc "SELECT count() FROM events WHERE $qwhere")
    prefix=bench-an-$run_id-q-
    topics "$prefix"
    if [ "$have" != "$QEVENTS" ]; then
        log "query: the data set ($QEVENTS events on $QF) holds $have: producing it (eventgen --seed 2002)"
        "$REL/tools/eventgen/eventgen" --seed 2002 --start "$QF" --minutes 1440 --users 2000 \
            --count "$QEVENTS" --events "$TMP/q.ndjson" >"$TMP/eventgen.log" 2>&1 ||
            { tail_log "$TMP/eventgen.log"; die "eventgen failed"; }
        "$PRODUCE" "$KAFKA_BROKERS" "$prefix" "$TMP/q.ndjson" 0 >"$TMP/produce.out" 2>&1 ||
            { tail_log "$TMP/produce.out"; die "producing failed"; }
        rm -f "$TMP/q.ndjson"
        start_svc "$prefix" "bench-an-$run_id-q"
        wait_count "$qwhere" "$QEVENTS" 900 1 "$TMP/q.polls"
    else
        start_svc "$prefix" "bench-an-$run_id-q"
    fi
    ENDPOINTS=(
        "summary /v1/summary?from=$QF&to=$QT"
        "revenue-minute /v1/revenue?from=$QF&to=$QT&interval=minute"
        "revenue-hour /v1/revenue?from=$QF&to=$QT&interval=hour"
        "revenue-day /v1/revenue?from=$QF&to=$QT&interval=day"
        "top-units /v1/top-products?from=$QF&to=$QT&by=units&limit=10"
        "top-revenue /v1/top-products?from=$QF&to=$QT&by=revenue&limit=10"
        "funnel /v1/funnel?from=$QF&to=$QT"
        "events /v1/events?type=order.placed&limit=20"
        "freshness /v1/freshness"
    )
    # The SQL of each endpoint, from the query log: what analytics_svc ran, finished, in the
    # seconds around one request, less what its consumers run (inserts, the id check, pings).
    log "query: reading each endpoint's SQL from system.query_log"
    mkdir "$TMP/sql"
    for e in "${ENDPOINTS[@]}"; do
        name=${e%% *} path=${e#* }
        ch admin "SYSTEM FLUSH LOGS" default >/dev/null || die "SYSTEM FLUSH LOGS failed"
        since=$(ch admin "SELECT toUInt32(now())" default)
        sleep 1
        curl -fsS --max-time 30 -o "$TMP/answer.json" "$SVC_URL$path" || die "GET $path failed"
        sleep 1
        ch admin "SYSTEM FLUSH LOGS" default >/dev/null
        ch admin "SELECT query FROM system.query_log WHERE user = 'analytics_svc'
                  AND type = 2 AND event_time > toDateTime($since)
                  AND query NOT LIKE 'INSERT%' AND query != 'SELECT 1'
                  AND query NOT LIKE 'SELECT DISTINCT toString(id) AS id FROM events WHERE id IN%'
                  AND query NOT LIKE '%system.query_log%'
                  ORDER BY query_start_time FORMAT JSONEachRow" default >"$TMP/q.json" ||
            die "reading system.query_log failed"
        # The statements as files, one each (jq decodes them from JSON strings).
        k=0
        while IFS= read -r -d '' q; do
            k=$((k + 1))
            printf '%s' "$q" >"$TMP/sql/$name.$k.sql"
        done < <(jq -j '.query, "\u0000"' "$TMP/q.json")
        [ "$k" -gt 0 ] || die "no query of $name in system.query_log: is log_queries on for" \
            "analytics_svc? (restart ClickHouse: deploy/local/stack.sh stop clickhouse &&" \
            "deploy/local/stack.sh up clickhouse)"
        printf '%s\n' "$k" >"$TMP/sql/$name.count"
    done

    # run ROUND NAME SIDE SECS
    run() {
        local round=$1 name=$2 side=$3 secs=$4 out path k c0 c1
        out=$TMP/$name-$side-$round.txt
        path=$(printf '%s\n' "${ENDPOINTS[@]}" | awk -v n="$name" '$1 == n { print $2 }')
        k=$(cat "$TMP/sql/$name.count")
        c0=$(cpu_ticks "$CH_PID")
        if [ "$side" = svc ]; then
            timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 10s --latency \
                "$SVC_URL$path" >"$out" 2>&1 || { tail_log "$out"; die "wrk failed"; }
            wrk_results "$out"
        else
            CH_USER=$(env_get CLICKHOUSE_USER) CH_KEY=$(env_get CLICKHOUSE_PASSWORD) \
                timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 10s --latency \
                -s "$here/ch_query.lua" "$CH_URL/?database=analytics&output_format_json_quote_64bit_integers=0" \
                -- "$TMP/sql/$name".*.sql >"$out" 2>&1 || { tail_log "$out"; die "wrk failed"; }
            wrk_results "$out"
            # k statements make one of the service's requests.
            WRK_RPS=$(awk -v r="$WRK_RPS" -v k="$k" 'BEGIN { printf "%.2f\n", r / k }')
        fi
        c1=$(cpu_ticks "$CH_PID")
        [ "$round" = - ] && return 0
        record "$name" "$round" "$side" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$WRK_BAD bad, ch cpu $((c1 - c0)) ticks"
        printf '  %-3s %-15s %-10s %9.1f /s  p50 %8s ms  p99 %8s ms%s\n' "$round" "$name" "$side" \
            "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$([ "$WRK_BAD" -gt 0 ] && printf '  (%s bad)' "$WRK_BAD")"
    }
    log "query: warm-up (1 s each side of each endpoint, not counted)"
    for e in "${ENDPOINTS[@]}"; do
        run - "${e%% *}" svc 1
        run - "${e%% *}" clickhouse 1
    done
    log "query: $ROUNDS rounds of ${QSECONDS}s runs, wrk -t1 -c$CONNS"
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order=(clickhouse svc); else order=(svc clickhouse); fi
        for e in "${ENDPOINTS[@]}"; do
            for side in "${order[@]}"; do run "$r" "${e%% *}" "$side" "$QSECONDS"; done
        done
    done
    stop_svc
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report --------------------------------------------------------------------------------

echo
machine_line
printf 'load average: %s at the start, %s at the end\n' "$LOAD_START" "$LOAD_END"
[ "${#SUMMARY[@]}" -eq 0 ] || printf '%s\n' "${SUMMARY[@]}"
if [ "$ROUNDS" -gt 0 ]; then
    printf 'query: %d events on %s, medians of %d rounds of %ds, wrk -t1 -c%d (ClickHouse: the same SQL, per request of the service)\n' \
        "$QEVENTS" "${QF%%T*}" "$ROUNDS" "$QSECONDS" "$CONNS"
    printf '  %-15s %5s %11s %11s %7s %9s %9s %9s %9s\n' endpoint sql svc_rate/s ch_rate/s ratio \
        svc_p50 ch_p50 svc_p99 ch_p99
    unmet=()
    for e in "${ENDPOINTS[@]}"; do
        name=${e%% *}
        x=$(ratio "$(median "$name" svc rate)" "$(median "$name" clickhouse rate)")
        printf '  %-15s %5s %11.1f %11.1f %7s %9s %9s %9s %9s\n' "$name" "$(cat "$TMP/sql/$name.count")" \
            "$(median "$name" svc rate)" "$(median "$name" clickhouse rate)" "$x" \
            "$(median "$name" svc p50_ms)" "$(median "$name" clickhouse p50_ms)" \
            "$(median "$name" svc p99_ms)" "$(median "$name" clickhouse p99_ms)"
        awk -v x="$x" 'BEGIN { exit !(x + 0 < 0.8) }' && unmet+=("$name")
    done
    printf 'goal: every endpoint >= 0.8 x ClickHouse: %s\n' \
        "$([ "${#unmet[@]}" -eq 0 ] && echo met || echo "NOT met (${unmet[*]})")"
fi
echo
print_runs "$RESULTS" "$OUT"

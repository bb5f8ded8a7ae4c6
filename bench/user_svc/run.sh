#!/usr/bin/env bash
# bench/user_svc: GET /v1/users/{id} on user-svc (release build), driven by wrk, next to pgbench
# running the same prepared SELECT that user-svc runs for it, with the same number of clients,
# against the same PostgreSQL, from this one script. Prints req/s against transactions/s, p50 and
# p99 latency, CPU per request, the ratio user-svc/pgbench (medians over the rounds) and
# user-svc's RSS idle and under load.
#
#   bench/user_svc/run.sh          (or `make bench-user`)
#
# Needs the local stack's PostgreSQL and Kafka (`deploy/local/stack.sh up postgres kafka`); it
# uses only user-svc's own settings from .local/env/user-svc.env (PG_DSN, KAFKA_BROKERS): the
# user_svc role and its `users` database, for the service and for pgbench alike.
#
# Environment, with defaults:
#   BENCH_SECONDS=10        length of one wrk or pgbench run
#   BENCH_ROUNDS=5          rounds; each runs both, the order alternating
#   BENCH_CONNECTIONS=16    wrk connections = pgbench clients
#   BENCH_HTTP_THREADS=     user-svc HTTP_THREADS (default: BENCH_CONNECTIONS; a handler blocks
#                           on its query, so this is user-svc's concurrency)
#   BENCH_PG_POOL=          user-svc PG_POOL (default: BENCH_HTTP_THREADS)
#   BENCH_USERS=1000        users created through the API; both sides pick among their ids
#   BENCH_MAX_LOAD=1.5      before measuring, wait until the 1-minute load average is below
#                           this (0: do not wait) ...
#   BENCH_LOAD_WAIT=600     ... for at most this many seconds, then measure anyway
#   BENCH_KEEP_USERS=0      1: keep the created users (by default they are deleted through the
#                           API at the end, also after Ctrl-C or a failure while user-svc runs;
#                           deleting leaves their tombstones)
#   BENCH_OUT=              also write every run's figures to this file (tab-separated)
#
# Traffic goes to 127.0.0.1 only and is bounded: 2 x ROUNDS runs and 2 short warm-ups, each
# killed if it outlives its duration by 30 s (about 2 minutes with the defaults, plus the wait
# for a quiet machine). Every process started here is stopped on exit.
# Any other user-svc variable (user-svc --help) passes through: HTTP_CONN_MEMORY=8192 run.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_HTTP_THREADS:-$CONNS}
POOL=${BENCH_PG_POOL:-$THREADS}
USERS=${BENCH_USERS:-1000}
MAX_LOAD=${BENCH_MAX_LOAD:-1.5}
LOAD_WAIT=${BENCH_LOAD_WAIT:-600}
KEEP_USERS=${BENCH_KEEP_USERS:-0}
OUT=${BENCH_OUT:-}
WARMUP_SECONDS=2
BIN=$ROOT/build/release/user-svc/user-svc
ENV_FILE=$ENVDIR/user-svc.env
STORE_SRC=$ROOT/user-svc/user_store.c

for v in SECONDS_PER_RUN ROUNDS CONNS THREADS POOL USERS LOAD_WAIT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $MAX_LOAD =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_MAX_LOAD must be a number, not '$MAX_LOAD'"
[ "$SECONDS_PER_RUN" -le 120 ] || die "BENCH_SECONDS is capped at 120"
[ "$ROUNDS" -le 50 ] || die "BENCH_ROUNDS is capped at 50"
[ "$CONNS" -le 256 ] || die "BENCH_CONNECTIONS is capped at 256"
[ "$THREADS" -le 256 ] && [ "$POOL" -le 256 ] || die "HTTP_THREADS and PG_POOL are capped at 256"
[ "$USERS" -le 10000 ] || die "BENCH_USERS is capped at 10000"

# ---- set-up --------------------------------------------------------------------------------

"$LOCAL_DIR/deps.sh"
apt_install wrk curl
UP="deploy/local/stack.sh up postgres kafka"
for tool in pgbench psql pg_isready; do
    command -v "$tool" >/dev/null ||
        die "$tool not found: it comes with the local stack's PostgreSQL 15 ($UP)"
done

[ -r "$ENV_FILE" ] || die "$ENV_FILE is missing: start the local stack first ($UP)"
# env_get KEY: a value of user-svc's env file. Only the keys asked for leave it: nothing of it is
# exported to this script's other programs.
env_get() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }
PG_DSN=$(env_get PG_DSN)
KAFKA_BROKERS=$(env_get KAFKA_BROKERS)
[ -n "$PG_DSN" ] && [ -n "$KAFKA_BROKERS" ] || die "$ENV_FILE lacks PG_DSN or KAFKA_BROKERS"

# pgbench and psql get the DSN's parts through libpq's variables, the password only through
# PGPASSWORD, never on a command line. postgresql://USER:PASSWORD@HOST:PORT/DB[?...]
[[ $PG_DSN =~ ^postgres(ql)?://([^:@/]+):([^@/]*)@([^:/?]+):([0-9]+)/([^?]+) ]] ||
    die "cannot read PG_DSN of $ENV_FILE (expected postgresql://user:password@host:port/db)"
urldecode() { printf '%b' "${1//%/\\x}"; }
export PGUSER PGPASSWORD PGHOST PGPORT PGDATABASE
PGUSER=$(urldecode "${BASH_REMATCH[2]}")
PGPASSWORD=$(urldecode "${BASH_REMATCH[3]}")
PGHOST=${BASH_REMATCH[4]}
PGPORT=${BASH_REMATCH[5]}
PGDATABASE=$(urldecode "${BASH_REMATCH[6]}")
export PGCONNECT_TIMEOUT=5 PGAPPNAME=bench-pgbench
[ "$PGHOST" = 127.0.0.1 ] || [ "$PGHOST" = localhost ] ||
    die "PG_DSN points at $PGHOST: this benchmark runs against the local stack on 127.0.0.1 only"
# The service's connections get their own application_name (the DSN's wins over user-svc's).
SVC_DSN=$PG_DSN$([[ $PG_DSN == *\?* ]] && echo '&' || echo '?')application_name=bench-user-svc

pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 3 ||
    die "PostgreSQL does not answer on $PGHOST:$PGPORT: start it with $UP"
kafka_addr=${KAFKA_BROKERS%%,*}
port_free "${kafka_addr##*:}" &&
    die "Kafka does not answer on $kafka_addr: start it with $UP"
psql_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
slots=$(psql_q -c "SELECT current_setting('max_connections')::int - count(*)
                   FROM pg_stat_activity") ||
    die "cannot connect to PostgreSQL as $PGUSER with the settings of $ENV_FILE"
# user-svc's pool and relay, pgbench's clients, psql, and room for everybody else.
need=$((POOL + CONNS + 10))
[ "$slots" -ge "$need" ] ||
    die "PostgreSQL has $slots free connections, this needs $need: lower BENCH_CONNECTIONS"

log "building user-svc (release preset)"
(cd "$ROOT" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target user-svc) >"$LOGS/bench-build-user-svc.log" 2>&1 ||
    { tail_log "$LOGS/bench-build-user-svc.log"; die "build failed"; }

# The statement user-svc prepares for GET /v1/users/{id}, read from the store's source through
# the C preprocessor (it is built from macros), so that pgbench runs exactly what the service
# runs, also after the statement changes.
get_sql() {
    {
        awk '/^#define (MS|USER_COLS)[( ]/ { on = 1 }
             on { print } on && !/\\$/ { on = 0 }' "$STORE_SRC"
        awk '/\[ST_USER_GET\] *=/ { on = 1 } on { print } on && /}, *$/ { on = 0 }' "$STORE_SRC"
    } | cpp -P - | tr '\n' ' ' | grep -o '"[^"]*"' | tail -n +2 | sed 's/^"//; s/"$//' | tr -d '\n'
}
SQL=$(get_sql) || true
[[ $SQL == SELECT*'WHERE id = $1'* ]] && [[ $SQL != *'$2'* ]] ||
    die "cannot find the user_get statement in $STORE_SRC (found: '$SQL'): update get_sql()"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_user_svc.XXXXXX")
SVC_PID='' SAMPLER_PID='' SVC_LOG=$TMP/user-svc.log USERS_CREATED=0

cleanup() {
    stop_proc "$SAMPLER_PID"
    # Interrupted or failed after creating the users: delete them while the service still runs.
    if [ "$USERS_CREATED" = 1 ] && [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null; then
        delete_users || true
    fi
    stop_proc "$SVC_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# check_svc: die with user-svc's exit status and the end of its log if it died.
check_svc() {
    kill -0 "$SVC_PID" 2>/dev/null && return 0
    local status
    status=$(exit_status "$SVC_PID")
    tail_log "$SVC_LOG" 40
    die "user-svc (pid $SVC_PID) died: $status"
}

# pg_ticks: CPU clock ticks of the whole PostgreSQL cluster so far: the postmaster, its live
# children, and the children that already ended (pgbench's backends end with each run). Other
# sessions on the cluster count too; their share is small next to a benchmark run's.
PG_MAIN=$(pid_of postgres)
if [ -z "$PG_MAIN" ]; then
    # Not started by deploy/local: the process listening on the port.
    PG_MAIN=$(ss -Hltnp "sport = :$PGPORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -c5-)
    [ -n "$PG_MAIN" ] || warn "PostgreSQL's main process not found: its CPU is not measured"
fi
pg_ticks() {
    local pid line f sum
    { read -r line <"/proc/$PG_MAIN/stat"; } 2>/dev/null || { echo 0; return 0; }
    read -r -a f <<<"${line##*) }"
    # The postmaster's own time, and (cutime, cstime) that of the children it has reaped.
    sum=$((f[11] + f[12] + f[13] + f[14]))
    for pid in $(pgrep -P "$PG_MAIN"); do
        sum=$((sum + $(stat_ticks "$pid")))
    done
    echo "$sum"
}

# child_us VAR: CPU time (user+system) of this shell's ended children so far (wrk or pgbench,
# once they ran in the foreground), in microseconds, into VAR. `times` must run in this shell:
# a $(...) subshell would report its own children.
child_us() {
    times >"$TMP/times.txt"
    printf -v "$1" '%s' "$(awk 'NR == 2 { split($1 " " $2, t, /[ms ]+/)
        printf "%.0f\n", (t[1] * 60 + t[2] + t[3] * 60 + t[4]) * 1e6 }' "$TMP/times.txt")"
}

# stat_ticks PID: utime+stime of PID (0 once it is gone), without starting a program.
stat_ticks() {
    local line f
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return 0; }
    # After the command name, which sits in parentheses and may hold spaces: utime and stime
    # are fields 14 and 15 of stat, so 12 and 13 after the ')'.
    read -r -a f <<<"${line##*) }"
    echo $((f[11] + f[12]))
}

SVC_PORT=$(free_port)
log "$(machine_line)"
log "versions: $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), $(pgbench --version), PostgreSQL \
$(psql_q -c 'SHOW server_version'), \
libpq $(dpkg-query -W -f='${Version}' libpq5 2>/dev/null || echo '?')"
log "starting user-svc on 127.0.0.1:$SVC_PORT: HTTP_THREADS=$THREADS PG_POOL=$POOL ACCESS_LOG=false"
# In its own session, so that a Ctrl-C reaches this script and not the service: the clean-up
# still needs it to delete the users.
HTTP_BIND=127.0.0.1 HTTP_PORT=$SVC_PORT HTTP_THREADS=$THREADS PG_POOL=$POOL ACCESS_LOG=false \
    LOG_LEVEL=info PG_DSN=$SVC_DSN KAFKA_BROKERS=$KAFKA_BROKERS setsid "$BIN" </dev/null \
    >/dev/null 2>"$SVC_LOG" &
SVC_PID=$!
wait_http "http://127.0.0.1:$SVC_PORT/readyz" "$SVC_PID" ||
    { check_svc; tail_log "$SVC_LOG"; die "user-svc did not become ready"; }
sleep 1
RSS_IDLE=$(rss_kb "$SVC_PID")

# ---- users ---------------------------------------------------------------------------------

# Created through the API in one curl (one keep-alive connection); their ids come back in the
# Location headers.
IDS=$TMP/ids.txt
tag=$(date +%s)-$$
log "creating $USERS users through POST /v1/users"
for ((i = 1; i <= USERS; i++)); do
    printf 'url = "http://127.0.0.1:%s/v1/users"\nrequest = "POST"\n' "$SVC_PORT"
    printf 'header = "Content-Type: application/json"\n'
    printf 'data = "{\\"email\\": \\"bench-%s-%d@example.com\\", ' "$tag" "$i"
    printf '\\"name\\": \\"Bench User %d\\"}"\n' "$i"
    printf 'output = "/dev/null"\nwrite-out = "%%{http_code} %%header{location}\\n"\n'
    printf 'max-time = 10\n'
    [ "$i" -lt "$USERS" ] && printf 'next\n'
done >"$TMP/create.curl"
curl -sS -K "$TMP/create.curl" >"$TMP/created.txt" 2>"$TMP/curl.err" ||
    { check_svc; tail_log "$TMP/curl.err"; die "creating users failed"; }
awk '$1 == 201 { sub(/.*\//, "", $2); print $2 }' "$TMP/created.txt" >"$IDS"
USERS_CREATED=1
created=$(wc -l <"$IDS")
if [ "$created" -ne "$USERS" ]; then
    awk '$1 != 201 { print "    status", $1 }' "$TMP/created.txt" | sort | uniq -c | head >&2
    die "created $created of $USERS users"
fi
# delete_users: through the API, unless BENCH_KEEP_USERS=1; once.
delete_users() {
    USERS_CREATED=0
    [ "$KEEP_USERS" = 1 ] && { log "kept the $USERS users (bench-$tag-*@example.com)"; return 0; }
    local id n=0
    while read -r id; do
        [ "$n" -gt 0 ] && printf 'next\n'
        printf 'url = "http://127.0.0.1:%s/v1/users/%s"\nrequest = "DELETE"\n' "$SVC_PORT" "$id"
        printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nmax-time = 10\n'
        n=$((n + 1))
    done <"$IDS" >"$TMP/delete.curl"
    n=$(curl -sS -K "$TMP/delete.curl" | grep -c '^204$' || true)
    log "deleted $n of $(wc -l <"$IDS") users through DELETE /v1/users/{id} (tombstones stay)"
}
RSS_SEEDED=$(rss_kb "$SVC_PID")

first=$(head -n 1 "$IDS")
got=$(curl -sS --max-time 5 -w ' %{http_code}' "http://127.0.0.1:$SVC_PORT/v1/users/$first")
[[ $got == *"\"$first\""*' 200' ]] || die "GET /v1/users/$first does not return the user: $got"
log "keep-alive: user-svc $(keepalive "http://127.0.0.1:$SVC_PORT/v1/users/$first")"

# ---- pgbench's script ----------------------------------------------------------------------

# One draw k in 1..USERS, then the service's statement with its $1 replaced by the k-th of the
# same ids: a constant array in the prepared statement, so each execution sends one integer,
# subscripts the array in O(1) (uuid has a fixed size) and does the same one lookup in the
# primary key that user-svc's execution does.
ARRAY="('{$(paste -sd, "$IDS")}'::uuid[])"
pgb_arg="$ARRAY[:k]" psql_arg="$ARRAY[\$1]"
PGB_SQL=${SQL//'$1'/"$pgb_arg"}
PSQL_SQL=${SQL//'$1'/"$psql_arg"}
printf '\\set k random(1, %d)\n%s;\n' "$USERS" "$PGB_SQL" >"$TMP/get_user.sql"
# Checked once with psql (through stdin: the statement may be too long for a command line).
check=$(psql_q <<EOF
PREPARE b(int) AS $PSQL_SQL;
EXECUTE b(1);
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE b(1);
EOF
)
[[ $check == "$first|"* ]] || die "pgbench's statement does not return the first user: $check"
[[ $check == *'Index Scan using users_pkey on users'* ]] ||
    die "pgbench's statement does not use the primary key: $check"
log "pgbench's statement: ${SQL%% FROM *} FROM users WHERE id = ('{<$USERS ids>}'::uuid[])[:k] \
AND deleted_at IS NULL (generic plan: Index Scan using users_pkey on users)"
log "user-svc's statement: $SQL"

# ---- runs ----------------------------------------------------------------------------------

RESULTS=$TMP/results.tsv
printf '%s\t' round side rate p50_ms p99_ms requests bad svc_cpu_us pg_cpu_us client_cpu_us \
    >"$RESULTS"
printf 'rss_max_kb\n' >>"$RESULTS"

# percentiles FILE: p50 and p99, in ms, of pgbench's per-transaction log (latency in µs is the
# third field).
percentiles() {
    awk '{ print $3 }' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan"; exit }
        i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
        i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
        printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }'
}

# bench ROUND SIDE SECONDS: one run of wrk against user-svc (SIDE user-svc) or of pgbench
# (SIDE pgbench), its figures appended to $RESULTS (ROUND "-" for warm-ups).
bench() {
    local round=$1 side=$2 secs=$3 out rss_file rss_max s0 s1 p0 p1 c0 c1 rps p50 p99 reqs bad
    local scpu pcpu ccpu
    out=$TMP/$side-$round.txt
    rss_file=$TMP/rss-$side-$round.txt
    : >"$rss_file"
    sample_rss "$rss_file" "$SVC_PID" &
    SAMPLER_PID=$!
    s0=$(cpu_ticks "$SVC_PID")
    p0=$(pg_ticks)
    child_us c0
    if [ "$side" = user-svc ]; then
        timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s --latency \
            -s "$here/../random_get.lua" "http://127.0.0.1:$SVC_PORT" -- "$IDS" /v1/users/%s \
            >"$out" 2>&1 ||
            { check_svc; tail_log "$out"; die "wrk failed"; }
    else
        rm -f "$TMP/pgb-$round".*
        timeout $((secs + 30)) pgbench -n -M prepared -c "$CONNS" -j 1 -T "$secs" \
            -f "$TMP/get_user.sql" -l --log-prefix="$TMP/pgb-$round" >"$out" 2>&1 ||
            { tail_log "$out"; die "pgbench failed"; }
    fi
    child_us c1
    # pgbench's backends are reaped by the postmaster just after pgbench ends.
    [ "$side" = pgbench ] && sleep 0.2
    p1=$(pg_ticks)
    check_svc
    s1=$(cpu_ticks "$SVC_PID")
    stop_proc "$SAMPLER_PID"
    SAMPLER_PID=''
    rss_max=$(sort -n "$rss_file" | tail -n 1)
    if [ "$side" = user-svc ]; then
        wrk_results "$out"
        rps=$WRK_RPS p50=$WRK_P50 p99=$WRK_P99 reqs=$WRK_REQS bad=$WRK_BAD
    else
        rps=$(awk '/^tps = / { print $3 }' "$out")
        read -r p50 p99 < <(percentiles "$TMP/pgb-$round".*)
        reqs=$(awk -F': ' '/^number of transactions actually processed/ {
            split($2, a, "/"); print a[1] }' "$out")
        bad=$(awk -F': ' '/^number of failed transactions/ { print $2 + 0 }' "$out")
    fi
    [ -n "$rps" ] && [ -n "$reqs" ] && [ "$reqs" -gt 0 ] ||
        { tail_log "$out"; die "cannot read the output of $side's run"; }
    read -r scpu pcpu ccpu < <(awk -v s="$((s1 - s0))" -v p="$((p1 - p0))" -v c="$((c1 - c0))" \
        -v hz="$(getconf CLK_TCK)" -v n="$reqs" -v side="$side" \
        'BEGIN { svc = side == "pgbench" ? "-" : sprintf("%.2f", s * 1e6 / hz / n)
                 printf "%s %.2f %.2f\n", svc, p * 1e6 / hz / n, c / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$rps" "$p50" "$p99" \
        "$reqs" "${bad:-0}" "$scpu" "$pcpu" "$ccpu" "${rss_max:-}" >>"$RESULTS"
    printf '  %-3s %-8s %9.0f /s  p50 %7s ms  p99 %7s ms' "$round" "$side" "$rps" "$p50" "$p99"
    printf '  cpu us/req: svc %6s pg %6s client %6s%s\n' "$scpu" "$pcpu" "$ccpu" \
        "$([ "${bad:-0}" -gt 0 ] && printf '  (%s bad)' "$bad")"
}

# median SIDE COLUMN: over the numbered rounds.
median() {
    awk -F'\t' -v s="$1" -v c="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 ~ /^[0-9]+$/ && $2 == s { print $col[c] }' "$RESULTS" | median_of
}

wait_for_quiet "$MAX_LOAD" "$LOAD_WAIT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up (${WARMUP_SECONDS}s each, not counted)"
bench - user-svc "$WARMUP_SECONDS" >/dev/null
bench - pgbench "$WARMUP_SECONDS" >/dev/null
RSS_WARM=$(rss_kb "$SVC_PID")

log "measuring: $ROUNDS rounds of ${SECONDS_PER_RUN}s, $CONNS clients each (wrk -t1 -c$CONNS, \
pgbench -M prepared -c$CONNS -j1), load average $LOAD_START"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(pgbench user-svc); else order=(user-svc pgbench); fi
    for side in "${order[@]}"; do
        bench "$r" "$side" "$SECONDS_PER_RUN"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
RSS_AFTER=$(rss_kb "$SVC_PID")
HWM=$(hwm_kb "$SVC_PID")
RSS_LOAD=$(awk -F'\t' 'NR > 1 && $2 == "user-svc" && $11 > m { m = $11 } END { print m + 0 }' \
    "$RESULTS")
[ "$RSS_LOAD" -gt "$HWM" ] && HWM=$RSS_LOAD
delete_users

# ---- report --------------------------------------------------------------------------------

echo
printf 'Medians of %d rounds of %ds, %d clients, 127.0.0.1; user-svc HTTP_THREADS=%d PG_POOL=%d\n' \
    "$ROUNDS" "$SECONDS_PER_RUN" "$CONNS" "$THREADS" "$POOL"
printf '%-26s %10s %9s %9s %9s %9s %9s\n' "" rate/s p50_ms p99_ms svc_cpu pg_cpu client_cpu
printf '%-26s %10s %9s %9s %9s %9s %9s\n' "" "" "" "" "us/req" "us/req" "us/req"
for side in pgbench user-svc; do
    label="user-svc GET /v1/users/id"
    [ "$side" = pgbench ] && label="pgbench (prepared SELECT)"
    printf '%-26s %10.0f %9.3f %9.3f %9s %9.2f %9.2f\n' "$label" "$(median "$side" rate)" \
        "$(median "$side" p50_ms)" "$(median "$side" p99_ms)" \
        "$([ "$side" = pgbench ] && echo - || printf '%.2f' "$(median "$side" svc_cpu_us)")" \
        "$(median "$side" pg_cpu_us)" "$(median "$side" client_cpu_us)"
done
printf '%-26s %10s %9s %9s %9s %9s %9s\n' "ratio user-svc/pgbench" \
    "$(ratio "$(median user-svc rate)" "$(median pgbench rate)")" \
    "$(ratio "$(median user-svc p50_ms)" "$(median pgbench p50_ms)")" \
    "$(ratio "$(median user-svc p99_ms)" "$(median pgbench p99_ms)")" - \
    "$(ratio "$(median user-svc pg_cpu_us)" "$(median pgbench pg_cpu_us)")" \
    "$(ratio "$(median user-svc client_cpu_us)" "$(median pgbench client_cpu_us)")"
echo "(pg_cpu: every PostgreSQL process of the local cluster; client: wrk or pgbench)"
mapfile -t rr < <(awk -F'\t' 'NR > 1 && $1 ~ /^[0-9]+$/ { v[$1, $2] = $3; n = $1 > n ? $1 : n }
    END { for (i = 1; i <= n; i++)
              if (v[i, "pgbench"] > 0) printf "%.2f\n", v[i, "user-svc"] / v[i, "pgbench"] }' \
    "$RESULTS")
RATIO=$(printf '%s\n' "${rr[@]}" | median_of)
printf 'rate ratio round by round: %s; their median %s\n' "${rr[*]}" "$RATIO"
printf 'load average: %s at the start of the rounds, %s at the end\n' "$LOAD_START" "$LOAD_END"
echo
mib() { awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }
printf 'user-svc RSS: idle after start %s KiB (%s MiB), after creating the users %s KiB,\n' \
    "$RSS_IDLE" "$(mib "$RSS_IDLE")" "$RSS_SEEDED"
printf '  after warm-up %s KiB, under load max %s KiB (%s MiB), ' "$RSS_WARM" "$RSS_LOAD" \
    "$(mib "$RSS_LOAD")"
printf 'idle after the load %s KiB, peak %s KiB\n' "$RSS_AFTER" "$HWM"
printf 'bad answers (non-2xx, socket errors, failed transactions) over all runs: %s\n' \
    "$(awk -F'\t' 'NR > 1 { n += $7 } END { print n + 0 }' "$RESULTS")"
rate_ratio=$(ratio "$(median user-svc rate)" "$(median pgbench rate)")
printf 'goal: user-svc rate >= 0.5 x pgbench: %s (ratio of the medians %s)\n' \
    "$(awk -v x="$rate_ratio" 'BEGIN { print (x >= 0.5) ? "met" : "NOT met" }')" "$rate_ratio"
echo
print_runs "$RESULTS" "$OUT"

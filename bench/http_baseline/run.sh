#!/usr/bin/env bash
# bench/http_baseline: libsvc's HTTP server (examples/echo-svc, release build) against nginx
# answering a fixed 200, both on 127.0.0.1, driven by wrk from this one script so that both see
# the same machine at the same time. Prints req/s, p50 and p99 latency, CPU per request, the
# ratio echo-svc/nginx (medians over the rounds), and echo-svc's RSS idle and under load.
#
#   bench/http_baseline/run.sh          (or `make bench-http`)
#
# Environment, with defaults:
#   BENCH_SECONDS=10       length of one wrk run
#   BENCH_ROUNDS=5         rounds; each runs every route on both servers, the order alternating
#   BENCH_CONNECTIONS=64   concurrent keep-alive connections
#   BENCH_WORKERS=1        nginx worker_processes = echo-svc HTTP_THREADS
#   BENCH_WRK_THREADS=1    wrk threads
#   BENCH_ACCESS_LOG=1     afterwards, per route, one run with echo-svc's access log on next to
#                          one with it off (0: skip)
#   BENCH_OUT=             also write every run's figures to this file (tab-separated)
#
# Traffic goes to 127.0.0.1 only and is bounded: 2 routes x 2 servers x ROUNDS wrk runs, 4 for
# the access log and 5 short warm-ups, each killed if it outlives its duration by 30 s. Every
# process started here is stopped on exit. The nginx used is a private instance: its config,
# pid, logs and temp files live in a temporary folder; the system's nginx config is never read.
# Any other echo-svc variable (echo-svc --help) passes through: HTTP_CONN_MEMORY=8192 run.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../deploy/local/common.sh
. "$here/../../deploy/local/common.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNECTIONS:-64}
WORKERS=${BENCH_WORKERS:-1}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
ACCESS_LOG_RUN=${BENCH_ACCESS_LOG:-1}
OUT=${BENCH_OUT:-}
WARMUP_SECONDS=2
BIN=$ROOT/build/release/examples/echo-svc

for v in SECONDS_PER_RUN ROUNDS CONNS WORKERS WRK_THREADS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[ "$SECONDS_PER_RUN" -le 120 ] || die "BENCH_SECONDS is capped at 120"
[ "$ROUNDS" -le 50 ] || die "BENCH_ROUNDS is capped at 50"
[ "$CONNS" -le 1000 ] || die "BENCH_CONNECTIONS is capped at 1000 (echo-svc's default limit is 1024)"
[ "$WRK_THREADS" -le "$CONNS" ] || die "BENCH_WRK_THREADS must not exceed BENCH_CONNECTIONS"

# ---- set-up --------------------------------------------------------------------------------

"$LOCAL_DIR/deps.sh"
apt_install wrk nginx-light curl

log "building echo-svc (release preset)"
(cd "$ROOT" && cmake --preset release >/dev/null && cmake --build --preset release --target echo-svc) \
    >"$LOGS/bench-build.log" 2>&1 || { tail_log "$LOGS/bench-build.log"; die "build failed"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/http_baseline.XXXXXX")
# nginx's workers drop to an unprivileged user when started as root: let them into the folder.
chmod 755 "$TMP"
NGINX_PID='' SVC_PID='' LOG_PID='' SAMPLER_PID=''

# stop_proc PID: TERM, up to 10 s to exit, then KILL. Only processes this script started.
stop_proc() {
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_proc "$SAMPLER_PID"
    stop_proc "$LOG_PID"
    stop_proc "$SVC_PID"
    stop_proc "$NGINX_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port: a port nobody listens on, from a random start (two calls give two ports).
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 30000))
        if port_free "$p" && [ "$p" != "${NGINX_PORT:-}" ]; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    die "no free port found on 127.0.0.1"
}

# wait_http URL PID: until URL answers 200, failing early if PID died; at most 15 s.
wait_http() {
    local url=$1 pid=$2 i
    for ((i = 0; i < 150; i++)); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID...: user+system clock ticks of the processes (all their threads) so far.
cpu_ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        # Fields after the command name, which sits in parentheses and may hold spaces:
        # utime and stime are fields 14 and 15 of stat, so 12 and 13 after the ')'.
        t=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
        sum=$((sum + t))
    done
    printf '%s\n' "$sum"
}

nginx_pids() { printf '%s\n' "$NGINX_PID" && pgrep -P "$NGINX_PID" || true; }

start_nginx() {
    local d=$TMP/nginx
    mkdir -p "$d/tmp"
    NGINX_PORT=$(free_port)
    # The same body and type as echo-svc's /healthz; POST /v1/echo gets a fixed answer too (nginx
    # reads and discards the body). keepalive_requests is raised from its default of 1000 so that
    # nginx, like libmicrohttpd, keeps each connection for the whole run.
    cat >"$d/nginx.conf" <<EOF
# generated by bench/http_baseline/run.sh; a private instance, gone when the script ends
daemon off;
master_process on;
worker_processes $WORKERS;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    server_tokens off;
    keepalive_requests 1000000;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /healthz {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
        location = /v1/echo {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }
}
EOF
    nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" -t >"$d/check.log" 2>&1 ||
        { tail_log "$d/check.log"; die "the generated nginx.conf is not valid"; }
    nginx -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" </dev/null >>"$d/error.log" 2>&1 &
    NGINX_PID=$!
    wait_http "http://127.0.0.1:$NGINX_PORT/healthz" "$NGINX_PID" ||
        { tail_log "$d/error.log"; die "nginx did not start"; }
}

# start_svc ACCESS_LOG(true|false): echo-svc on a free port, its stderr (logs, and the access
# log when on, as a deployment would keep them) into a file. Sets SVC_PID, SVC_PORT, SVC_LOG.
start_svc() {
    SVC_PORT=$(free_port)
    SVC_LOG=$TMP/echo-svc-$1.log
    HTTP_BIND=127.0.0.1 HTTP_PORT=$SVC_PORT HTTP_THREADS=$WORKERS ACCESS_LOG=$1 LOG_LEVEL=info \
        "$BIN" </dev/null >/dev/null 2>"$SVC_LOG" &
    SVC_PID=$!
    wait_http "http://127.0.0.1:$SVC_PORT/healthz" "$SVC_PID" ||
        { tail_log "$SVC_LOG"; die "echo-svc did not start"; }
}

# server_pid SERVER, server_port SERVER, server_log SERVER: of nginx, echo-svc (access log off)
# or echo-svc+log (access log on).
server_pid() {
    case $1 in nginx) echo "$NGINX_PID" ;; echo-svc) echo "$SVC_PID" ;; *) echo "$LOG_PID" ;; esac
}
server_port() {
    case $1 in nginx) echo "$NGINX_PORT" ;; echo-svc) echo "$SVC_PORT" ;; *) echo "$LOG_PORT" ;; esac
}
server_log() {
    case $1 in nginx) echo "$TMP/nginx/error.log" ;; echo-svc) echo "$SVC_LOG" ;; *) echo "$LOG_LOG" ;; esac
}

# check_alive SERVER: die with the server's exit status and the end of its log if it died.
check_alive() {
    local pid logf status=0
    pid=$(server_pid "$1")
    logf=$(server_log "$1")
    kill -0 "$pid" 2>/dev/null && return 0
    wait "$pid" || status=$?
    [ "$status" -gt 128 ] && status="signal $((status - 128)) ($(kill -l $((status - 128))))"
    tail_log "$logf" 40
    die "$1 (pid $pid) died during the run: exit status $status"
}

# keepalive URL: "yes" when curl sends a second request over the first one's connection.
keepalive() {
    if curl -sv -o /dev/null -o /dev/null --max-time 5 "$1" "$1" 2>&1 |
        grep -q 'Re-using existing connection'; then
        echo yes
    else
        echo NO
    fi
}

# to_ms VALUE: a wrk duration (850.00us, 1.52ms, 2.01s, 1.00m) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) { print "nan"; exit }
        printf "%.3f\n", n * f
    }'
}

RESULTS=$TMP/results.tsv
printf 'round\troute\tserver\treq_s\tp50_ms\tp99_ms\trequests\tbad\tcpu_us_per_req\trss_max_kb\n' \
    >"$RESULTS"

# sample_rss FILE PID...: the processes' summed VmRSS every 100 ms into FILE (one number a line)
# until killed.
sample_rss() {
    local file=$1 pid sum
    shift
    while kill -0 "$1" 2>/dev/null; do
        sum=0
        for pid in "$@"; do
            sum=$((sum + $(rss_kb "$pid" 2>/dev/null || echo 0)))
        done
        printf '%s\n' "$sum" >>"$file"
        sleep 0.1
    done
}

# bench ROUND ROUTE SERVER SECONDS: one wrk run, its figures appended to $RESULTS (ROUND "-"
# for runs kept out of the medians).
bench() {
    local round=$1 route=$2 server=$3 secs=$4 url script=() out pids t0 t1 rss_file rss_max
    local rps p50 p99 reqs bad cpu
    url=http://127.0.0.1:$(server_port "$server")
    if [ "$server" = nginx ]; then
        mapfile -t pids < <(nginx_pids)
    else
        pids=("$(server_pid "$server")")
    fi
    if [ "$route" = echo ]; then
        url=$url/v1/echo
        script=(-s "$here/echo.lua")
    else
        url=$url/healthz
    fi
    out=$TMP/wrk-$round-$route-$server.txt
    rss_file=$TMP/rss-$round-$route-$server.txt
    : >"$rss_file"
    sample_rss "$rss_file" "${pids[@]}" &
    SAMPLER_PID=$!
    t0=$(cpu_ticks "${pids[@]}")
    timeout $((secs + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${secs}s" --timeout 5s --latency \
        "${script[@]}" "$url" >"$out" 2>&1 ||
        { check_alive "$server"; tail_log "$out"; die "wrk failed against $url"; }
    check_alive "$server"
    t1=$(cpu_ticks "${pids[@]}")
    stop_proc "$SAMPLER_PID"
    SAMPLER_PID=''
    rss_max=$(sort -n "$rss_file" | tail -n 1)
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    reqs=$(awk '/ requests in / { print $1 }' "$out")
    # Non-2xx answers and socket errors (connect, read, write, timeout) all count as bad.
    bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
               /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
               END { print n + 0 }' "$out")
    [ -n "$rps" ] && [ -n "$reqs" ] && [ "$reqs" -gt 0 ] ||
        { tail_log "$out"; die "cannot read wrk's output"; }
    cpu=$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
        'BEGIN { printf "%.2f\n", t * 1e6 / hz / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$route" "$server" "$rps" "$p50" \
        "$p99" "$reqs" "$bad" "$cpu" "${rss_max:-}" >>"$RESULTS"
    printf '  %-6s %-8s %-8s %10s req/s  p50 %8s ms  p99 %8s ms  %6s us cpu/req%s\n' \
        "$round" "$route" "$server" "$rps" "$p50" "$p99" "$cpu" \
        "$([ "$bad" -gt 0 ] && printf '  (%s bad answers)' "$bad")"
}

# median ROUTE SERVER COLUMN: the median of a column over the numbered rounds (not the warm-up
# and access-log runs).
median() {
    awk -F'\t' -v r="$1" -v s="$2" -v c="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 ~ /^[0-9]+$/ && $2 == r && $3 == s { print $col[c] }' "$RESULTS" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "nan"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# round_ratios ROUTE COLUMN: echo-svc/nginx of a column within each numbered round (the two ran
# back to back, so a slow minute of the machine hits both), one per line.
round_ratios() {
    awk -F'\t' -v r="$1" -v c="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 ~ /^[0-9]+$/ && $2 == r { v[$1, $3] = $col[c]; n = $1 > n ? $1 : n }
        END { for (i = 1; i <= n; i++) if (v[i, "nginx"] > 0) printf "%.2f\n", v[i, "echo-svc"] / v[i, "nginx"] }' \
        "$RESULTS"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "nan" }'; }

# ---- run -----------------------------------------------------------------------------------

log "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), \
kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "versions: $(nginx -v 2>&1 | sed 's/^nginx version: //'), \
$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), \
libmicrohttpd $(dpkg-query -W -f='${Version}' libmicrohttpd12 2>/dev/null || echo '?')"
log "wrk -t$WRK_THREADS -c$CONNS -d${SECONDS_PER_RUN}s, $ROUNDS rounds; nginx worker_processes \
$WORKERS, echo-svc HTTP_THREADS=$WORKERS ACCESS_LOG=false"

start_nginx
start_svc false
sleep 1
SVC_RSS_IDLE=$(rss_kb "$SVC_PID")
NGINX_RSS_IDLE=0
while read -r p; do
    NGINX_RSS_IDLE=$((NGINX_RSS_IDLE + $(rss_kb "$p")))
done < <(nginx_pids)
log "nginx on 127.0.0.1:$NGINX_PORT (pid $NGINX_PID), echo-svc on 127.0.0.1:$SVC_PORT (pid $SVC_PID)"
log "keep-alive: nginx $(keepalive "http://127.0.0.1:$NGINX_PORT/healthz"), \
echo-svc $(keepalive "http://127.0.0.1:$SVC_PORT/healthz")"
echo_check=$(curl -sS --max-time 5 -H 'Content-Type: application/json' \
    --data-binary '{"ping":1}' "http://127.0.0.1:$SVC_PORT/v1/echo")
case $echo_check in
*'"ping": 1'* | *'"ping":1'*) ;;
*) die "POST /v1/echo does not echo: $echo_check" ;;
esac

log "warm-up (${WARMUP_SECONDS}s per route and server, not counted)"
for route in healthz echo; do
    for server in nginx echo-svc; do
        bench - "$route" "$server" "$WARMUP_SECONDS" >/dev/null
    done
done
SVC_RSS_WARM=$(rss_kb "$SVC_PID")

log "measuring"
for ((r = 1; r <= ROUNDS; r++)); do
    for route in healthz echo; do
        # Alternate who goes first, so that a drift in the machine's load hits both alike.
        if ((r % 2)); then order=(nginx echo-svc); else order=(echo-svc nginx); fi
        for server in "${order[@]}"; do
            bench "$r" "$route" "$server" "$SECONDS_PER_RUN"
        done
    done
done
SVC_RSS_AFTER=$(rss_kb "$SVC_PID")
SVC_HWM=$(hwm_kb "$SVC_PID")
# The maximum under load counts the warm-up runs too.
SVC_RSS_LOAD=$(awk -F'\t' 'NR > 1 && $3 == "echo-svc" && $10 > m { m = $10 } END { print m + 0 }' \
    "$RESULTS")
# The kernel updates VmHWM lazily, so a 100 ms sample can exceed it: the peak is the larger.
[ "$SVC_RSS_LOAD" -gt "$SVC_HWM" ] && SVC_HWM=$SVC_RSS_LOAD

if [ "$ACCESS_LOG_RUN" != 0 ]; then
    # A second echo-svc with the access log on, measured right after the first (log off): the
    # pair runs back to back, so their ratio is fair even though it is a single run.
    log "access log: one run per route with ACCESS_LOG=true, next to one with it off"
    main_pid=$SVC_PID main_port=$SVC_PORT main_log=$SVC_LOG
    start_svc true
    LOG_PID=$SVC_PID LOG_PORT=$SVC_PORT LOG_LOG=$SVC_LOG
    SVC_PID=$main_pid SVC_PORT=$main_port SVC_LOG=$main_log
    bench - healthz echo-svc+log "$WARMUP_SECONDS" >/dev/null
    before=$(wc -l <"$LOG_LOG")
    for route in healthz echo; do
        bench nolog "$route" echo-svc "$SECONDS_PER_RUN"
        bench log "$route" echo-svc+log "$SECONDS_PER_RUN"
    done
    after=$(wc -l <"$LOG_LOG")
    logged_reqs=$(awk -F'\t' '$1 == "log" { n += $7 } END { print n + 0 }' "$RESULTS")
    log "access log: $((after - before)) lines written for $logged_reqs requests counted by wrk \
($(du -h "$LOG_LOG" | cut -f1) in all)"
fi

# ---- report --------------------------------------------------------------------------------

echo
printf 'Medians of %d rounds, wrk -t%d -c%d -d%ds, %d worker(s) each, 127.0.0.1\n' \
    "$ROUNDS" "$WRK_THREADS" "$CONNS" "$SECONDS_PER_RUN" "$WORKERS"
printf '%-15s %-9s %10s %9s %9s %12s\n' route server req/s p50_ms p99_ms cpu_us/req
for route in healthz echo; do
    label=$([ "$route" = echo ] && echo "POST /v1/echo" || echo "GET /healthz")
    for server in nginx echo-svc; do
        printf '%-15s %-9s %10.0f %9.3f %9.3f %12.2f\n' "$label" "$server" \
            "$(median "$route" "$server" req_s)" "$(median "$route" "$server" p50_ms)" \
            "$(median "$route" "$server" p99_ms)" "$(median "$route" "$server" cpu_us_per_req)"
    done
    printf '%-15s %-9s %10s %9s %9s %12s\n' "" ratio \
        "$(ratio "$(median "$route" echo-svc req_s)" "$(median "$route" nginx req_s)")" \
        "$(ratio "$(median "$route" echo-svc p50_ms)" "$(median "$route" nginx p50_ms)")" \
        "$(ratio "$(median "$route" echo-svc p99_ms)" "$(median "$route" nginx p99_ms)")" \
        "$(ratio "$(median "$route" echo-svc cpu_us_per_req)" "$(median "$route" nginx cpu_us_per_req)")"
done
echo "(ratio = echo-svc / nginx: above 1 is better for req/s, worse for latency and cpu)"
for route in healthz echo; do
    mapfile -t rr < <(round_ratios "$route" req_s)
    printf 'req/s ratio %-8s round by round: %s; their median %s\n' "$route" "${rr[*]}" \
        "$(printf '%s\n' "${rr[@]}" | sort -g | awk '{ v[NR] = $1 } END {
            if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
done
if [ "$ACCESS_LOG_RUN" != 0 ]; then
    for route in healthz echo; do
        on=$(awk -F'\t' -v r="$route" '$1 == "log" && $2 == r { print $4 "\t" $9 }' "$RESULTS")
        off=$(awk -F'\t' -v r="$route" '$1 == "nolog" && $2 == r { print $4 "\t" $9 }' "$RESULTS")
        printf 'access log %-8s on %6.0f req/s %6.2f us cpu/req, off %6.0f req/s %6.2f us cpu/req' \
            "$route" "${on%%$'\t'*}" "${on##*$'\t'}" "${off%%$'\t'*}" "${off##*$'\t'}"
        printf ': on/off %s req/s, %s cpu\n' "$(ratio "${on%%$'\t'*}" "${off%%$'\t'*}")" \
            "$(ratio "${on##*$'\t'}" "${off##*$'\t'}")"
    done
fi
bad_total=$(awk -F'\t' 'NR > 1 { n += $8 } END { print n + 0 }' "$RESULTS")
echo
printf 'echo-svc RSS: idle after start %s KiB (%.1f MiB), after warm-up %s KiB, under load max %s KiB\n' \
    "$SVC_RSS_IDLE" "$(awk -v k="$SVC_RSS_IDLE" 'BEGIN { print k / 1024 }')" "$SVC_RSS_WARM" \
    "$SVC_RSS_LOAD"
printf '              idle after load %s KiB, peak %s KiB; nginx idle (master+workers) %s KiB\n' \
    "$SVC_RSS_AFTER" "$SVC_HWM" "$NGINX_RSS_IDLE"
printf 'bad answers (non-2xx, socket errors) over all runs: %s\n' "$bad_total"
rps_ratio=$(ratio "$(median healthz echo-svc req_s)" "$(median healthz nginx req_s)")
printf 'goals: /healthz req/s >= nginx: %s (ratio %s); idle RSS < 10 MiB: %s\n' \
    "$(awk -v x="$rps_ratio" 'BEGIN { print (x >= 1) ? "met" : "NOT met" }')" "$rps_ratio" \
    "$([ "$SVC_RSS_IDLE" -lt 10240 ] && echo met || echo 'NOT met')"
echo
echo "every run:"
if command -v column >/dev/null; then
    column -t -s $'\t' "$RESULTS" | sed 's/^/  /'
else
    sed 's/^/  /' "$RESULTS"
fi
if [ -n "$OUT" ]; then
    cp "$RESULTS" "$OUT"
    log "figures of every run written to $OUT"
fi

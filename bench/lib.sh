# Shared helpers of the benchmarks under bench/. Sourced, never run:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#
# It sources deploy/local/common.sh first (ROOT, LOGS, log, warn, die, tail_log, apt_install,
# port_free, ...), so a benchmark needs only this one line. Everything here works on processes
# the calling script started itself and on 127.0.0.1 only.

# shellcheck source=../deploy/local/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/common.sh"

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

# free_port [PORT...]: a port nobody listens on, from a random start, and none of the PORTs
# given (ports already handed out but not listened on yet).
free_port() {
    local p i x taken
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 30000))
        taken=0
        for x in "$@"; do [ "$x" = "$p" ] && taken=1; done
        if [ "$taken" = 0 ] && port_free "$p"; then
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
# private_kb PID: what of its RSS is the process's own (Private_Clean + Private_Dirty of
# smaps_rollup): RSS less the pages of shared libraries and files that other processes map too.
private_kb() {
    awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n + 0 }' "/proc/$1/smaps_rollup"
}
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

# exit_status PID: after PID died, "exit status N" or "signal N (NAME)", for failure messages.
exit_status() {
    local status=0
    wait "$1" 2>/dev/null || status=$?
    if [ "$status" -gt 128 ]; then
        printf 'signal %s (%s)\n' "$((status - 128))" "$(kill -l $((status - 128)))"
    else
        printf 'exit status %s\n' "$status"
    fi
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

# wrk_results FILE: the figures of a `wrk --latency` run's output FILE, into WRK_RPS, WRK_P50
# and WRK_P99 (ms), WRK_REQS, and WRK_BAD: non-2xx answers and socket errors (connect, read,
# write, timeout) together.
wrk_results() {
    WRK_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
    WRK_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$1")")
    WRK_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$1")")
    WRK_REQS=$(awk '/ requests in / { print $1 }' "$1")
    WRK_BAD=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
                   /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                   END { print n + 0 }' "$1")
}

# median_of: the median of the numbers on stdin, one a line ("nan" when there are none).
median_of() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "nan" }'; }

# machine_line: CPUs, model, kernel and load average, for the report's first line.
machine_line() {
    printf '%s CPUs, %s, kernel %s, load average %s\n' "$(nproc)" \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# wait_for_quiet MAX SECONDS: wait until the 1-minute load average is below MAX, checking every
# 10 s, for at most SECONDS; then go on anyway with a warning. MAX 0 does not wait. Other work on
# a shared machine (builds, test suites) moves absolute figures far more than it moves ratios,
# but it still widens their spread.
wait_for_quiet() {
    local max=$1 secs=$2 start load
    awk -v m="$max" 'BEGIN { exit !(m > 0) }' || return 0
    start=$(date +%s)
    while :; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        awk -v l="$load" -v m="$max" 'BEGIN { exit !(l < m) }' && return 0
        if [ $(($(date +%s) - start)) -ge "$secs" ]; then
            warn "load average still $load (>= $max) after ${secs}s: measuring anyway"
            return 0
        fi
        [ $(($(date +%s) - start)) -eq 0 ] &&
            log "waiting for the 1-minute load average ($load) to drop below $max (at most ${secs}s)"
        sleep 10
    done
}

# print_runs RESULTS [OUT]: every run's figures (a tab-separated file with a header line) as an
# aligned table, and a copy in OUT when given.
print_runs() {
    echo "every run:"
    if command -v column >/dev/null; then
        column -t -s $'\t' "$1" | sed 's/^/  /'
    else
        sed 's/^/  /' "$1"
    fi
    if [ -n "${2:-}" ]; then
        cp "$1" "$2"
        log "figures of every run written to $2"
    fi
}

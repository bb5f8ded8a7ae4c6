#!/usr/bin/env bash
# bench/message_svc: message-svc of the running local stack, in two parts.
#
#   1. Reads, next to the raw engine: GET /v1/messages/{id} (one find by _id, the simplest read)
#      and GET /v1/users/{id}/messages (three finds by _id for a one-message inbox). Each round
#      runs both operations on both sides, back to back, who goes first alternating by round:
#      - message-svc, driven by wrk -t1 -cBENCH_CONNECTIONS --latency (bench/random_get.lua
#        picks a random id among BENCH_READ_USERS users and their welcome messages);
#      - the raw engine, driven by mongo_load (mongo_load.c, built here into the temporary
#        folder): BENCH_LOAD_THREADS C threads, each with its own client of one
#        mongoc_client_pool, sending MongoDB (FerretDB locally; MONGODB_URI of
#        .local/env/message-svc.env) exactly the finds message-svc sends for the same request,
#        drawing from the same ids. It only reads.
#      A 2-second warm-up of each, not counted, then BENCH_ROUNDS rounds: medians of req/s, p50,
#      p99, CPU µs per request of message-svc, of FerretDB and of the client, the ratio
#      message-svc / raw engine (goal for the simplest read: at least 0.5), message-svc's RSS.
#   2. The event path: BENCH_USERS users registered through user-svc (BENCH_PARALLEL curl
#      processes, each one keep-alive connection), as fast as it accepts them or paced at
#      BENCH_RATE registrations/s; meanwhile the inboxes of a sample of them (BENCH_SAMPLE,
#      spread evenly over the order they were sent, the last one always in) are polled
#      round-robin (a pass over the pending ones shared among BENCH_POLLERS curl processes,
#      50 ms pause, deadline BENCH_DEADLINE s after the last registration) until the welcome
#      message is visible. Prints p50/p99/max of registration -> visible over the sample, and the
#      event rate achieved (all the registrations, from the first sent to the last sampled welcome
#      visible). Polling only a sample keeps the poll itself from loading the engine the events
#      are written to (every poll is three reads on FerretDB). The users are deleted through
#      user-svc at the end.
#
#   bench/message_svc/run.sh          (or `make bench-message`)
#
# Needs the running stack (`make up`): user-svc and message-svc, their ports read from
# .local/env/user-svc.env and .local/env/message-svc.env. It starts no service of its own: it
# measures the stack's message-svc as it runs (its build, HTTP_THREADS and MONGODB_POOL). Part 1
# also needs a C compiler and libmongoc's headers (deploy/local/deps.sh installs both).
#
# Part 2 measures the event path only if message-svc has caught up with user-events
# (kafka_consumer_lag on its /metrics is 0): otherwise a welcome message waits behind the backlog
# and the delay measured is the backlog's. The script waits up to BENCH_LAG_WAIT seconds for it,
# printing the lag; if it is still behind, part 2 is skipped with a warning. Part 1 then reads the
# inboxes of users message-svc already knows (found through user-svc's GET /v1/users), since
# freshly registered users would not be known yet.
#
# Environment, with defaults:
#   BENCH_SECONDS=10        length of one wrk or mongo_load run (at most 120)
#   BENCH_ROUNDS=3          rounds of part 1 (at most 50)
#   BENCH_CONNECTIONS=16    wrk connections
#   BENCH_LOAD_THREADS=     mongo_load threads (default: BENCH_CONNECTIONS; at most 256)
#   BENCH_READ_USERS=10     users whose inboxes (and welcome messages) part 1 reads
#   BENCH_OUT=              also write every run of part 1 to this file (tab-separated)
#   BENCH_USERS=100         users registered in part 2 (at most 5000)
#   BENCH_PARALLEL=4        curl processes registering them
#   BENCH_RATE=0            registrations/s in total, spread over the BENCH_PARALLEL processes
#                           (curl --rate); 0: as fast as user-svc accepts them
#   BENCH_SAMPLE=100        users of part 2 whose inboxes are polled (at most BENCH_USERS)
#   BENCH_POLLERS=2         curl processes polling
#   BENCH_DEADLINE=120      seconds part 2 (and part 1's set-up) wait for welcome messages
#   BENCH_LAG_WAIT=300      seconds to wait for message-svc to catch up before part 2
#   BENCH_PART=all          1 or 2: run one part only
#   BENCH_IGNORE_LAG=0      1: run part 2 even while message-svc is behind (tests the script;
#                           the delays are then the backlog's)
#
# Traffic goes to 127.0.0.1 only and is bounded: part 1 is 4 x ROUNDS runs and 4 warm-ups, each
# killed if it outlives its duration by 30 s (about 2.5 minutes with the defaults). Users this
# script registers are deleted through user-svc on exit, also after Ctrl-C or a failure
# (deleting leaves their tombstones).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-16}
LOAD_THREADS=${BENCH_LOAD_THREADS:-$CONNS}
READ_USERS=${BENCH_READ_USERS:-10}
OUT=${BENCH_OUT:-}
USERS=${BENCH_USERS:-100}
PARALLEL=${BENCH_PARALLEL:-4}
RATE=${BENCH_RATE:-0}
SAMPLE=${BENCH_SAMPLE:-100}
POLLERS=${BENCH_POLLERS:-2}
DEADLINE=${BENCH_DEADLINE:-120}
LAG_WAIT=${BENCH_LAG_WAIT:-300}
PART=${BENCH_PART:-all}
IGNORE_LAG=${BENCH_IGNORE_LAG:-0}
WARMUP_SECONDS=2
UP="make up"

for v in SECONDS_PER_RUN ROUNDS CONNS LOAD_THREADS READ_USERS USERS PARALLEL SAMPLE POLLERS \
    DEADLINE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $RATE =~ ^[0-9]+$ ]] || die "BENCH_RATE must be a number of registrations/s, not '$RATE'"
[[ $LAG_WAIT =~ ^[0-9]+$ ]] || die "BENCH_LAG_WAIT must be a number of seconds, not '$LAG_WAIT'"
[[ $PART =~ ^(all|1|2)$ ]] || die "BENCH_PART must be all, 1 or 2, not '$PART'"
[ "$SECONDS_PER_RUN" -le 120 ] || die "BENCH_SECONDS is capped at 120"
[ "$ROUNDS" -le 50 ] || die "BENCH_ROUNDS is capped at 50"
[ "$CONNS" -le 256 ] || die "BENCH_CONNECTIONS is capped at 256"
[ "$LOAD_THREADS" -le 256 ] || die "BENCH_LOAD_THREADS is capped at 256"
[ "$READ_USERS" -le 100 ] || die "BENCH_READ_USERS is capped at 100"
[ "$USERS" -le 5000 ] || die "BENCH_USERS is capped at 5000"
[ "$PARALLEL" -le 32 ] || die "BENCH_PARALLEL is capped at 32"
[ "$POLLERS" -le 32 ] || die "BENCH_POLLERS is capped at 32"
[ "$SAMPLE" -le "$USERS" ] || SAMPLE=$USERS
[ "$DEADLINE" -le 600 ] || die "BENCH_DEADLINE is capped at 600"
# Pacing: each curl process gets RATE/PARALLEL transfers a second, given to curl per minute for
# resolution. curl spaces transfer starts by 60000/N ms (whole milliseconds) and ignores a rate
# above 1000/s.
REG_IV=0 PER_PROC=0
if [ "$RATE" -gt 0 ]; then
    PER_PROC=$((RATE * 60 / PARALLEL))
    [ "$PER_PROC" -ge 1 ] || die "BENCH_RATE $RATE is too low for $PARALLEL curl processes"
    [ "$PER_PROC" -le 60000 ] ||
        die "BENCH_RATE is capped at 1000 x BENCH_PARALLEL (curl --rate ignores more)"
    REG_IV=$((60000 / PER_PROC))
fi

# ---- set-up --------------------------------------------------------------------------------

apt_install wrk curl

# port_of SERVICE: HTTP_PORT of the service's env file.
port_of() {
    local f=$ENVDIR/$1.env p
    [ -r "$f" ] || die "$f is missing: start the local stack first ($UP)"
    p=$(sed -n 's/^HTTP_PORT=//p' "$f" | tail -n 1)
    [[ $p =~ ^[0-9]+$ ]] || die "$f has no HTTP_PORT"
    printf '%s\n' "$p"
}
USER_URL=http://127.0.0.1:$(port_of user-svc)
MSG_URL=http://127.0.0.1:$(port_of message-svc)
for svc in user-svc message-svc; do
    url=$USER_URL
    [ "$svc" = message-svc ] && url=$MSG_URL
    curl -fsS -o /dev/null --max-time 10 "$url/readyz" 2>/dev/null ||
        die "$svc does not answer $url/readyz: start the stack with $UP"
done
MSG_PID=$(pid_of message-svc)
if [ -z "$MSG_PID" ]; then
    MSG_PID=$(ss -Hltnp "sport = :${MSG_URL##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' |
        head -n 1 | cut -c5-)
fi
[ -n "$MSG_PID" ] || warn "message-svc's process not found: its RSS and CPU are not measured"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_message_svc.XXXXXX")
OURS=$TMP/ours.txt # every user id this script registered, deleted on exit
: >"$OURS"
tag=$(date +%s)-$$

# delete_ours: through user-svc, once.
delete_ours() {
    [ -s "$OURS" ] || return 0
    local id n=0
    while read -r id; do
        [ "$n" -gt 0 ] && printf 'next\n'
        printf 'url = "%s/v1/users/%s"\nrequest = "DELETE"\n' "$USER_URL" "$id"
        printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nmax-time = 10\n'
        n=$((n + 1))
    done <"$OURS" >"$TMP/delete.curl"
    n=$(curl -sS -K "$TMP/delete.curl" 2>/dev/null | grep -c '^204$' || true)
    log "deleted $n of $(wc -l <"$OURS") users through user-svc's DELETE /v1/users/{id}"
    : >"$OURS"
}

REG_PIDS=() SAMPLER_PID=''
cleanup() {
    local p
    stop_proc "$SAMPLER_PID"
    # Interrupted while registering: stop the curl processes, then delete what they registered.
    if [ ${#REG_PIDS[@]} -gt 0 ]; then
        for p in "${REG_PIDS[@]}"; do stop_proc "$p"; done
        REG_PIDS=()
        registered | cut -d' ' -f2 >>"$OURS"
    fi
    delete_ours || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }

# lag: message-svc's kafka_consumer_lag summed over its partitions ("nan" without the metric).
lag() {
    curl -fsS --max-time 5 "$MSG_URL/metrics" 2>/dev/null |
        awk '/^kafka_consumer_lag[{ ]/ { n += $NF; seen = 1 } END { print seen ? n : "nan" }'
}

# ---- the raw engine's side -----------------------------------------------------------------

MSG_ENV=$ENVDIR/message-svc.env
# env_get KEY: a value of message-svc's env file. Only the keys asked for leave it, and
# MONGODB_URI (a real one holds a password) only to mongo_load, through its environment.
env_get() { sed -n "s/^$1=//p" "$MSG_ENV" | tail -n 1; }
LOAD=$TMP/mongo_load
MONGO_URI='' FERRET_PID=''
if [ "$PART" != 2 ]; then
    MONGO_URI=$(env_get MONGODB_URI)
    [ -n "$MONGO_URI" ] || die "$MSG_ENV has no MONGODB_URI"
    # mongodb://[user:password@]host[:port][/database][?options], one host, on loopback.
    [[ $MONGO_URI =~ ^mongodb://([^@/]*@)?([^:/?,@]+)(:([0-9]+))?(/|\?|$) ]] ||
        die "cannot read MONGODB_URI of $MSG_ENV (expected mongodb://host:port/messages?...)"
    mongo_host=${BASH_REMATCH[2]}
    mongo_port=${BASH_REMATCH[4]:-27017}
    [ "$mongo_host" = 127.0.0.1 ] || [ "$mongo_host" = localhost ] ||
        die "MONGODB_URI points at $mongo_host: this benchmark runs against the local stack only"
    FERRET_PID=$(pid_of ferretdb)
    if [ -z "$FERRET_PID" ]; then
        # Not started by deploy/local: the process listening on the port.
        FERRET_PID=$(ss -Hltnp "sport = :$mongo_port" 2>/dev/null | grep -o 'pid=[0-9]*' |
            head -n 1 | cut -c5-)
    fi
    [ -n "$FERRET_PID" ] ||
        warn "the engine's process (port $mongo_port) not found: its CPU is not measured"
    command -v cc >/dev/null ||
        die "no C compiler (cc) to build mongo_load: run deploy/local/deps.sh (build-essential)"
    command -v pkg-config >/dev/null && pkg-config --exists libmongoc-1.0 ||
        die "libmongoc-1.0 not found by pkg-config: run deploy/local/deps.sh (libmongoc-dev)"
    log "building mongo_load (libmongoc $(pkg-config --modversion libmongoc-1.0))"
    # The source before the libraries, so that the link keeps them also with --as-needed.
    # shellcheck disable=SC2046 # pkg-config's output is a list of words
    cc -std=c11 -O2 -Wall -Wextra -Werror -o "$LOAD" "$here/mongo_load.c" \
        $(pkg-config --cflags --libs libmongoc-1.0) -pthread >"$TMP/cc.log" 2>&1 ||
        { tail_log "$TMP/cc.log"; die "building mongo_load failed"; }
fi

# ticks PID: user+system clock ticks of PID (all its threads) so far; 0 without a PID or once it
# is gone. Reads /proc without starting a program.
ticks() {
    local line f
    [ -n "$1" ] || { echo 0; return 0; }
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return 0; }
    # After the command name, which sits in parentheses and may hold spaces: utime and stime
    # are fields 14 and 15 of stat, so 12 and 13 after the ')'.
    read -r -a f <<<"${line##*) }"
    echo $((f[11] + f[12]))
}

# child_us VAR: CPU time (user+system) of this shell's ended children so far (wrk or mongo_load,
# once they ran in the foreground), in microseconds, into VAR. `times` must run in this shell:
# a $(...) subshell would report its own children.
child_us() {
    times >"$TMP/times.txt"
    printf -v "$1" '%s' "$(awk 'NR == 2 { split($1 " " $2, t, /[ms ]+/)
        printf "%.0f\n", (t[1] * 60 + t[2] + t[3] * 60 + t[4]) * 1e6 }' "$TMP/times.txt")"
}

# ---- registering users ---------------------------------------------------------------------

# register_start COUNT PREFIX: starts registering COUNT users through user-svc's POST /v1/users
# from PARALLEL curl processes in the background (REG_PIDS), one keep-alive connection each,
# PER_PROC a minute each when BENCH_RATE is set. Registration i (1..COUNT) is transfer
# (i-1)/PARALLEL+1 of process (i-1)%PARALLEL. Each process writes its start time, then a line
# per transfer as it completes (line-buffered, so that registered() sees them meanwhile).
register_start() {
    local count=$1 prefix=$2 p i f rate_opt=()
    rm -f "$TMP"/reg-*.curl "$TMP"/reg-*.out
    for ((i = 1; i <= count; i++)); do
        p=$(((i - 1) % PARALLEL))
        {
            [ -s "$TMP/reg-$p.curl" ] && printf 'next\n'
            printf 'url = "%s/v1/users"\nrequest = "POST"\n' "$USER_URL"
            printf 'header = "Content-Type: application/json"\n'
            printf 'data = "{\\"email\\": \\"%s-%s-%d@example.com\\", ' "$prefix" "$tag" "$i"
            printf '\\"name\\": \\"Bench User %d\\"}"\n' "$i"
            printf 'output = "/dev/null"\n'
            # The final "." tells a whole line from one still being written.
            printf 'write-out = "%%{http_code} %%{time_total} %%header{location} .\\n"\n'
            printf 'max-time = 10\n'
        } >>"$TMP/reg-$p.curl"
    done
    [ "$PER_PROC" -gt 0 ] && rate_opt=(--rate "$PER_PROC/m")
    REG_PIDS=()
    for f in "$TMP"/reg-*.curl; do
        # exec: the pid recorded is curl's own, which the clean-up can stop.
        { now_ms; exec stdbuf -oL curl -sS "${rate_opt[@]}" -K "$f" 2>>"$TMP/curl.err"; } \
            >"${f%.curl}.out" &
        REG_PIDS+=($!)
    done
}

# registering: true while a registering curl process runs.
registering() {
    local p
    for p in "${REG_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && return 0
    done
    return 1
}

# registered: "seq id completion_ms" of each registration answered 201 so far, seq being its
# number i of register_start. A transfer's completion is its start plus its curl-measured time;
# it started when the previous one ended, or, paced, REG_IV ms after the previous one started if
# that is later (how curl --rate spaces them); the first one at its process's start.
registered() {
    local f p
    for f in "$TMP"/reg-*.out; do
        [ -e "$f" ] || continue
        p=${f##*/reg-}
        p=${p%.out}
        # printf %.0f, not %d: mawk's %d stops at 2^31, far below a time in milliseconds.
        awk -v p="$p" -v par="$PARALLEL" -v iv="$REG_IV" '
            NR == 1 { t = $1; next }
            $NF != "." || NF < 3 { next }
            {
                i++
                s = (i == 1) ? t : ((ps + iv > pe) ? ps + iv : pe)
                e = s + $2 * 1000
                ps = s; pe = e
            }
            $1 == 201 && NF == 4 {
                id = $3; sub(/.*\//, "", id)
                printf "%d %s %.0f\n", (i - 1) * par + p + 1, id, e
            }' "$f"
    done
}

# register_wait COUNT OUT: waits for the registering processes; OUT gets "id completion_ms" of
# every registration in the order they were sent, and every id goes to OURS (deleted at exit).
# Dies unless all COUNT were answered 201.
register_wait() {
    local count=$1 out=$2 p made
    for p in "${REG_PIDS[@]}"; do wait "$p" || true; done
    REG_PIDS=()
    registered | sort -n | cut -d' ' -f2- >"$out"
    cut -d' ' -f1 "$out" >>"$OURS"
    made=$(wc -l <"$out")
    if [ "$made" -ne "$count" ]; then
        cat "$TMP"/reg-*.out | awk '$NF == "." && $1 != 201 { print "    status", $1 }' |
            sort | uniq -c | head >&2
        tail_log "$TMP/curl.err" 2>/dev/null || true
        die "registered $made of $count users"
    fi
}

# register COUNT PREFIX OUT: COUNT users, waiting for them all; OUT as register_wait's.
register() {
    register_start "$1" "$2"
    register_wait "$1" "$3"
}

# poll_pass IDS VISIBLE: one pass over the ids of IDS not yet in VISIBLE, shared among POLLERS
# curl processes (one keep-alive connection each); those whose inbox now holds a message are
# appended to VISIBLE as "id visible_ms", visible_ms being the completion of the request that
# saw it (its process's start plus the curl-measured times of its transfers so far). A message
# is seen at most one pass after it became visible: the pass time is the resolution.
poll_pass() {
    local ids=$1 visible=$2 f p
    rm -f "$TMP"/poll-*.curl "$TMP"/poll-*.out "$TMP"/inbox-*
    # FILENAME, not NR == FNR: VISIBLE is empty on the first pass.
    awk 'FILENAME == ARGV[1] { seen[$1] = 1; next } !($1 in seen) { print $1 }' "$visible" "$ids" \
        >"$TMP/pending.txt"
    [ -s "$TMP/pending.txt" ] || return 0
    awk -v par="$POLLERS" -v url="$MSG_URL" -v dir="$TMP" '{
        f = dir "/poll-" ((NR - 1) % par) ".curl"
        if (n[f]++) print "next" > f
        printf "url = \"%s/v1/users/%s/messages?limit=1\"\noutput = \"%s/inbox-%s\"\n", url, $1, dir, $1 > f
        printf "write-out = \"%%{http_code} %s %%{time_total}\\n\"\nmax-time = 10\n", $1 > f
    }' "$TMP/pending.txt"
    local pids=()
    for f in "$TMP"/poll-*.curl; do
        { now_ms; curl -sS -K "$f" 2>/dev/null; } >"${f%.curl}.out" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    for f in "$TMP"/poll-*.out; do
        # printf %.0f, not %d: mawk's %d stops at 2^31, far below a time in milliseconds.
        awk -v dir="$TMP" 'NR == 1 { t = $1; next }
            { t += $3 * 1000 }
            $1 == 200 {
                file = dir "/inbox-" $2; seen = 0
                while ((getline line < file) > 0) if (line ~ /"items": *\[ *\{/) seen = 1
                close(file)
                if (seen) printf "%s %.0f\n", $2, t
            }' "$f"
    done >>"$visible"
    return 0
}

# wait_visible IDS VISIBLE: poll until every id is visible or DEADLINE seconds passed.
wait_visible() {
    local ids=$1 visible=$2 end total passes=0 p0
    : >"$visible"
    p0=$(now_ms)
    total=$(wc -l <"$ids")
    end=$(($(date +%s) + DEADLINE))
    while [ "$(wc -l <"$visible")" -lt "$total" ] && [ "$(date +%s)" -lt "$end" ]; do
        poll_pass "$ids" "$visible"
        passes=$((passes + 1))
        sleep 0.05
    done
    PASSES=$passes
    PASS_MS=$((($(now_ms) - p0) / (passes > 0 ? passes : 1)))
}

# pct P: the P-th percentile (nearest rank) of the numbers on stdin.
pct() {
    sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        i = int(NR * p / 100); if (i < NR * p / 100) i++; if (i < 1) i = 1
        print v[i] }'
}

LAG0=$(lag)
# No kafka_consumer_lag series yet: message-svc's consumer has just started and is not assigned
# its partitions yet (it reports the lag from its group's committed offsets as soon as it is).
for ((i = 0; i < 30; i++)); do
    [ "$LAG0" = nan ] || break
    [ "$i" -eq 0 ] && log "waiting for message-svc's consumer to be assigned its partitions"
    sleep 1
    LAG0=$(lag)
done
log "message-svc $MSG_URL (pid ${MSG_PID:-?}$([ -n "$MSG_PID" ] &&
    printf ', %s' "$(readlink "/proc/$MSG_PID/exe" 2>/dev/null)")), user-svc $USER_URL; \
consumer lag $LAG0"
log "$(machine_line)"

# ---- part 1: reads, next to the raw engine -------------------------------------------------

# first_messages USERS OUT: the newest message of each user's inbox (a user registered here has
# only its welcome message), one id a line, through GET /v1/users/{id}/messages?limit=1.
first_messages() {
    local users=$1 out=$2 id
    awk -v url="$MSG_URL" -v dir="$TMP" '{
        if (NR > 1) print "next"
        printf "url = \"%s/v1/users/%s/messages?limit=1\"\n", url, $1
        printf "output = \"%s/first-%s\"\nmax-time = 10\n", dir, $1
    }' "$users" >"$TMP/first.curl"
    curl -sS -K "$TMP/first.curl" 2>>"$TMP/curl.err" || true
    while read -r id; do
        tr -d ' \n' <"$TMP/first-$id" 2>/dev/null |
            grep -o '"items":\[{"id":"[0-9a-f-]\{36\}"' | grep -o '[0-9a-f-]\{36\}' || true
    done <"$users" >"$out"
}

# run_side ROUND OP SIDE SECONDS: one run of OP (message: GET /v1/messages/{id}; inbox: GET
# /v1/users/{id}/messages) by mongo_load against the engine (SIDE engine) or by wrk against
# message-svc (SIDE message-svc); its figures appended to $RESULTS and printed, unless ROUND is
# "-" (a warm-up).
run_side() {
    local round=$1 op=$2 side=$3 secs=$4 ids out rss_file rss_max s0 s1 f0 f1 c0 c1
    local rps p50 p99 reqs bad scpu fcpu ccpu
    local path=/v1/users/%s/messages
    ids=$TMP/read-ids.txt
    [ "$op" = message ] && ids=$TMP/read-msgs.txt path=/v1/messages/%s
    out=$TMP/$op-$side-$round.txt
    rss_file=$TMP/rss-$op-$side-$round.txt
    : >"$rss_file"
    SAMPLER_PID=''
    if [ "$side" = message-svc ] && [ -n "$MSG_PID" ]; then
        sample_rss "$rss_file" "$MSG_PID" &
        SAMPLER_PID=$!
    fi
    s0=$(ticks "$MSG_PID")
    f0=$(ticks "$FERRET_PID")
    child_us c0
    if [ "$side" = engine ]; then
        MONGODB_URI=$MONGO_URI timeout $((secs + 30)) "$LOAD" "$op" "$secs" "$LOAD_THREADS" \
            "$ids" >"$out" 2>"$out.err" || { tail_log "$out.err"; die "mongo_load failed"; }
    else
        timeout $((secs + 30)) wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s --latency \
            -s "$here/../random_get.lua" "$MSG_URL" -- "$ids" "$path" >"$out" 2>&1 ||
            { tail_log "$out"; die "wrk failed"; }
    fi
    child_us c1
    f1=$(ticks "$FERRET_PID")
    s1=$(ticks "$MSG_PID")
    stop_proc "$SAMPLER_PID"
    SAMPLER_PID=''
    [ "$round" = - ] && return 0
    rss_max=$(sort -n "$rss_file" | tail -n 1)
    if [ "$side" = engine ]; then
        read -r rps p50 p99 reqs bad < <(awk '{ for (i = 1; i < NF; i += 2) v[$i] = $(i + 1) }
            END { print v["rate"], v["p50_ms"], v["p99_ms"], v["requests"], v["bad"] }' "$out")
        [ "${bad:-0}" = 0 ] || tail_log "$out.err" 5
    else
        wrk_results "$out"
        rps=$WRK_RPS p50=$WRK_P50 p99=$WRK_P99 reqs=$WRK_REQS bad=$WRK_BAD
    fi
    [ -n "$rps" ] && [ -n "$reqs" ] && [ "$reqs" -gt 0 ] ||
        { tail_log "$out"; die "cannot read the output of the $side run"; }
    read -r scpu fcpu ccpu < <(awk -v s="$((s1 - s0))" -v f="$((f1 - f0))" -v c="$((c1 - c0))" \
        -v hz="$(getconf CLK_TCK)" -v n="$reqs" -v side="$side" -v fp="$FERRET_PID" 'BEGIN {
            svc = side == "engine" ? "-" : sprintf("%.1f", s * 1e6 / hz / n)
            fer = fp == "" ? "-" : sprintf("%.1f", f * 1e6 / hz / n)
            printf "%s %s %.1f\n", svc, fer, c / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$op" "$side" "$rps" \
        "$p50" "$p99" "$reqs" "${bad:-0}" "$scpu" "$fcpu" "$ccpu" "${rss_max:-}" >>"$RESULTS"
    printf '  %-3s %-7s %-11s %8.1f /s  p50 %8s ms  p99 %8s ms' "$round" "$op" "$side" "$rps" \
        "$p50" "$p99"
    printf '  cpu us/req: svc %6s ferretdb %6s client %5s%s\n' "$scpu" "$fcpu" "$ccpu" \
        "$([ "${bad:-0}" -gt 0 ] && printf '  (%s bad)' "$bad")"
}

part1() {
    local ids=$TMP/read-ids.txt mids=$TMP/read-msgs.txt
    if [ "$LAG0" = 0 ]; then
        log "part 1: registering $READ_USERS users, waiting for their welcome messages"
        register "$READ_USERS" bench-msg-read "$TMP/read-reg.txt"
        wait_visible "$TMP/read-reg.txt" "$TMP/read-vis.txt"
        cut -d' ' -f1 "$TMP/read-vis.txt" >"$ids"
        [ "$(wc -l <"$ids")" -eq "$READ_USERS" ] ||
            die "only $(wc -l <"$ids") of $READ_USERS welcome messages visible after ${DEADLINE}s"
        READ_SOURCE="$READ_USERS users registered by this script"
    else
        # Behind: users registered now would not be known for a long time. Read the inboxes of
        # users message-svc already has (oldest first in user-svc's list, so consumed first).
        log "part 1: message-svc is $LAG0 events behind: reading inboxes of users it already knows"
        : >"$ids"
        : >"$TMP/known.txt"
        local cursor='' page url
        for ((page = 0; page < 10; page++)); do
            url="$USER_URL/v1/users?limit=100${cursor:+&cursor=$cursor}"
            curl -fsS --max-time 10 "$url" >"$TMP/page.json" || die "GET $url failed"
            grep -o '"id":"[0-9a-f-]\{36\}"' "$TMP/page.json" | cut -d'"' -f4 |
                awk '{ print $1, 0 }' >"$TMP/cand.txt"
            poll_pass "$TMP/cand.txt" "$TMP/known.txt"
            cut -d' ' -f1 "$TMP/known.txt" | head -n "$READ_USERS" >"$ids"
            [ "$(wc -l <"$ids")" -ge "$READ_USERS" ] && break
            cursor=$(grep -o '"next_cursor":"[^"]*"' "$TMP/page.json" | cut -d'"' -f4 || true)
            [ -n "$cursor" ] || break
        done
        [ -s "$ids" ] || die "message-svc knows none of user-svc's first users yet"
        READ_SOURCE="$(wc -l <"$ids") existing users message-svc already knew (lag $LAG0)"
    fi
    first_messages "$ids" "$mids"
    [ -s "$mids" ] || die "none of the $(wc -l <"$ids") inboxes read gives a message id"
    [ "$(wc -l <"$mids")" -eq "$(wc -l <"$ids")" ] ||
        warn "only $(wc -l <"$mids") of the $(wc -l <"$ids") inboxes gave a message id"
    # Both sides must find every id: a read that finds nothing is cheaper, and wrong.
    local got first
    first=$(head -n 1 "$mids")
    got=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$MSG_URL/v1/messages/$first")
    [ "$got" = 200 ] || die "GET /v1/messages/$first answers $got, not 200"

    RESULTS=$TMP/results.tsv
    printf '%s\t' round op side rate p50_ms p99_ms requests bad svc_cpu_us ferret_cpu_us \
        client_cpu_us >"$RESULTS"
    printf 'rss_max_kb\n' >>"$RESULTS"
    RSS_IDLE=$( [ -n "$MSG_PID" ] && rss_kb "$MSG_PID" || echo 0)
    PRIVATE_IDLE=$( [ -n "$MSG_PID" ] && private_kb "$MSG_PID" || echo 0)
    log "versions: $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), libmongoc \
$(pkg-config --modversion libmongoc-1.0), curl $(curl -V | awk 'NR == 1 { print $2 }')"
    log "part 1: warm-up (${WARMUP_SECONDS}s each, not counted)"
    local op side r order
    for op in message inbox; do
        run_side - "$op" engine "$WARMUP_SECONDS"
        run_side - "$op" message-svc "$WARMUP_SECONDS"
    done
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    log "part 1: $ROUNDS rounds of ${SECONDS_PER_RUN}s runs over $READ_SOURCE: wrk -t1 -c$CONNS" \
        "against message-svc, mongo_load with $LOAD_THREADS threads against the engine," \
        "load average $LOAD_START"
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then order=(engine message-svc); else order=(message-svc engine); fi
        for op in message inbox; do
            for side in "${order[@]}"; do
                run_side "$r" "$op" "$side" "$SECONDS_PER_RUN"
            done
        done
    done
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
    part1_report
}

# med OP SIDE COLUMN: the median of COLUMN over the rounds.
med() {
    awk -F'\t' -v o="$1" -v s="$2" -v c="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $2 == o && $3 == s && $col[c] != "-" { print $col[c] }' "$RESULTS" | median_of
}

# num DIGITS VALUE: VALUE with DIGITS decimals; "-" for "nan" (no figure, such as message-svc's
# CPU on the engine's side).
num() {
    awk -v d="$1" -v v="$2" 'BEGIN {
        if (v == "nan" || v == "") print "-"; else printf "%." d "f\n", v }'
}

# round_ratios OP: message-svc's rate / the engine's, round by round, one a line.
round_ratios() {
    awk -F'\t' -v o="$1" 'NR > 1 && $2 == o { v[$1, $3] = $4; n = $1 > n ? $1 : n }
        END { for (i = 1; i <= n; i++)
                  if (v[i, "engine"] > 0) printf "%.2f\n", v[i, "message-svc"] / v[i, "engine"] }' \
        "$RESULTS"
}

part1_report() {
    local op title side label fmt rr rate_ratio
    fmt='%-36s %9s %9s %9s %9s %9s %9s\n'
    echo
    printf 'part 1, medians of %d rounds of %ds over %s;\n' "$ROUNDS" "$SECONDS_PER_RUN" \
        "$READ_SOURCE"
    printf 'wrk -t1 -c%d against message-svc, mongo_load with %d threads against the engine:\n' \
        "$CONNS" "$LOAD_THREADS"
    # shellcheck disable=SC2059 # the format is ours
    printf "$fmt" "" rate/s p50_ms p99_ms svc_cpu ferret_cpu client_cpu
    # shellcheck disable=SC2059
    printf "$fmt" "" "" "" "" us/req us/req us/req
    for op in message inbox; do
        title="GET /v1/messages/{id}"
        [ "$op" = inbox ] && title="GET /v1/users/{id}/messages"
        echo "$title"
        for side in engine message-svc; do
            label="  raw engine (mongo_load)"
            [ "$side" = message-svc ] && label="  message-svc (wrk)"
            # shellcheck disable=SC2059
            printf "$fmt" "$label" "$(num 1 "$(med "$op" "$side" rate)")" \
                "$(num 3 "$(med "$op" "$side" p50_ms)")" "$(num 3 "$(med "$op" "$side" p99_ms)")" \
                "$(num 1 "$(med "$op" "$side" svc_cpu_us)")" \
                "$(num 1 "$(med "$op" "$side" ferret_cpu_us)")" \
                "$(num 1 "$(med "$op" "$side" client_cpu_us)")"
        done
        # shellcheck disable=SC2059
        printf "$fmt" "  ratio message-svc/engine" \
            "$(ratio "$(med "$op" message-svc rate)" "$(med "$op" engine rate)")" \
            "$(ratio "$(med "$op" message-svc p50_ms)" "$(med "$op" engine p50_ms)")" \
            "$(ratio "$(med "$op" message-svc p99_ms)" "$(med "$op" engine p99_ms)")" - \
            "$(ratio "$(med "$op" message-svc ferret_cpu_us)" \
                "$(med "$op" engine ferret_cpu_us)")" \
            "$(ratio "$(med "$op" message-svc client_cpu_us)" \
                "$(med "$op" engine client_cpu_us)")"
    done
    echo "(svc_cpu: all of message-svc, its Kafka consumer included; ferret_cpu: the whole FerretDB"
    echo " process, whoever its clients; client: wrk or mongo_load)"
    for op in message inbox; do
        mapfile -t rr < <(round_ratios "$op")
        printf 'rate ratio round by round, %-28s %s; their median %s\n' "$([ "$op" = message ] &&
            echo "GET /v1/messages/{id}:" || echo "GET /v1/users/{id}/messages:")" "${rr[*]}" \
            "$(printf '%s\n' "${rr[@]}" | median_of)"
    done
    printf 'load average: %s at the start of the rounds, %s at the end\n' "$LOAD_START" "$LOAD_END"
    printf 'message-svc RSS: %s KiB before (%s KiB of it private, the rest shared library pages),\n' \
        "$RSS_IDLE" "$PRIVATE_IDLE"
    printf '  max %s KiB under load; goal idle < 10 MiB resident: %s\n' \
        "$(awk -F'\t' 'NR > 1 && $12 > m { m = $12 } END { print m + 0 }' "$RESULTS")" \
        "$(awk -v r="$RSS_IDLE" 'BEGIN { print (r > 0 && r < 10240) ? "met" : "NOT met" }')"
    printf 'bad answers (non-2xx, socket errors, failed or empty finds) over all runs: %s\n' \
        "$(awk -F'\t' 'NR > 1 { n += $8 } END { print n + 0 }' "$RESULTS")"
    rate_ratio=$(ratio "$(med message message-svc rate)" "$(med message engine rate)")
    printf 'goal: the simplest read, GET /v1/messages/{id}, >= 0.5 x the raw engine: %s' \
        "$(awk -v x="$rate_ratio" 'BEGIN { print (x >= 0.5) ? "met" : "NOT met" }')"
    printf ' (ratio of the medians %s)\n' "$rate_ratio"
    rate_ratio=$(ratio "$(med inbox message-svc rate)" "$(med inbox engine rate)")
    printf 'the inbox read, GET /v1/users/{id}/messages: %s x the raw engine (%s 0.5)\n' \
        "$rate_ratio" "$(awk -v x="$rate_ratio" 'BEGIN { print (x >= 0.5) ? ">=" : "<" }')"
    echo
    print_runs "$RESULTS" "$OUT"
    echo
}

# ---- part 2: the event path ----------------------------------------------------------------

part2() {
    local l start
    l=$(lag)
    start=$(date +%s)
    while [ "$l" != 0 ] && [ "$IGNORE_LAG" != 1 ]; do
        if [ $(($(date +%s) - start)) -ge "$LAG_WAIT" ]; then
            warn "message-svc is still $l events behind user-events after ${LAG_WAIT}s:" \
                "part 2 skipped (its delays would be the backlog's; run it again later)"
            return 0
        fi
        log "part 2: waiting for message-svc to catch up with user-events: lag $l"
        sleep 10
        l=$(lag)
    done
    local pace="as fast as user-svc accepts them"
    [ "$RATE" -gt 0 ] && pace="paced at $(awk -v n="$PARALLEL" -v iv="$REG_IV" \
        'BEGIN { printf "%.0f", n * 1000 / iv }')/s (BENCH_RATE=$RATE; curl --rate \
$PER_PROC/m each)"
    log "part 2: registering $USERS users through user-svc ($PARALLEL curl processes, $pace)," \
        "polling $SAMPLE of their inboxes meanwhile ($POLLERS curl processes, 50 ms between" \
        "passes, deadline ${DEADLINE}s after the last registration)"
    # The sample: SAMPLE registrations spread evenly over the order they were sent, the last one
    # among them. Polled from the start, so that a welcome message is seen when it appears, not
    # when the last registration is done.
    awk -v n="$USERS" -v s="$SAMPLE" \
        'BEGIN { for (j = 1; j <= s; j++) print int((j * n + s - 1) / s) }' >"$TMP/ev-picks.txt"
    local t0 t1 p0 passes=0 end='' finished
    : >"$TMP/ev-vis.txt"
    t0=$(now_ms)
    register_start "$USERS" bench-msg-event
    p0=$(now_ms)
    while :; do
        finished=0
        registering || finished=1
        registered >"$TMP/ev-now.txt"
        awk 'FILENAME == ARGV[1] { pick[$1] = 1; next } $1 in pick { print $2, $3 }' \
            "$TMP/ev-picks.txt" "$TMP/ev-now.txt" >"$TMP/ev-sample.txt"
        poll_pass "$TMP/ev-sample.txt" "$TMP/ev-vis.txt"
        passes=$((passes + 1))
        if [ "$finished" = 1 ]; then
            # The sample read above is complete: registration had ended before it was read.
            [ -n "$end" ] || end=$(($(date +%s) + DEADLINE))
            [ "$(wc -l <"$TMP/ev-vis.txt")" -ge "$(wc -l <"$TMP/ev-sample.txt")" ] && break
            [ "$(date +%s)" -ge "$end" ] && break
        fi
        sleep 0.05
    done
    PASSES=$passes
    PASS_MS=$((($(now_ms) - p0) / passes))
    register_wait "$USERS" "$TMP/ev-reg.txt"
    t1=$(cut -d' ' -f2 "$TMP/ev-reg.txt" | sort -n | tail -n 1)
    local seen last sampled
    sampled=$(wc -l <"$TMP/ev-sample.txt")
    seen=$(wc -l <"$TMP/ev-vis.txt")
    join <(sort "$TMP/ev-sample.txt") <(sort "$TMP/ev-vis.txt") |
        awk '{ print $3 - $2 }' >"$TMP/delays.txt"
    last=$(cut -d' ' -f2 "$TMP/ev-vis.txt" | sort -n | tail -n 1)
    echo
    printf 'part 2, the event path, %d users, %s:\n' "$USERS" "$pace"
    printf '  registration: %d users in %d ms (%.1f/s)\n' "$USERS" "$((t1 - t0))" \
        "$(awk -v n="$USERS" -v ms="$((t1 - t0))" 'BEGIN { print (ms > 0) ? n * 1000 / ms : 0 }')"
    printf '  welcome messages visible: %d of %d sampled users after %d polling passes (%d ms a\n' \
        "$seen" "$sampled" "$PASSES" "$PASS_MS"
    printf '  pass: the resolution of the times below)\n'
    printf '  delay registered -> visible, over the sample: p50 %s ms, p99 %s ms, max %s ms\n' \
        "$(pct 50 <"$TMP/delays.txt")" "$(pct 99 <"$TMP/delays.txt")" \
        "$(pct 100 <"$TMP/delays.txt")"
    # The sample is spread over all registrations, the last one included: its last welcome
    # seen is when the consumer was through them all (to within a polling pass).
    printf '  event rate achieved: %.1f events/s (%d registrations, from the first sent to the\n' \
        "$(awk -v n="$USERS" -v ms="$((${last:-$t0} - t0))" \
            'BEGIN { print (ms > 0) ? n * 1000 / ms : 0 }')" "$USERS"
    printf '  last sampled welcome visible)\n'
    [ "$seen" -eq "$sampled" ] ||
        warn "$((sampled - seen)) sampled welcome messages not visible after ${DEADLINE}s"
    if [ -n "$MSG_PID" ]; then
        printf '  message-svc RSS after part 2: %s KiB\n' "$(rss_kb "$MSG_PID")"
    fi
    echo
}

case $PART in
1) part1 ;;
2) part2 ;;
*) part1; part2 ;;
esac
delete_ours

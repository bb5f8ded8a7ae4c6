#!/usr/bin/env bash
# bench/message_svc: message-svc of the running local stack, in two parts.
#
#   1. Inbox reads: GET /v1/users/{id}/messages driven by wrk (-t1 -c16 --latency, inbox.lua picks
#      a random user among a handful), BENCH_ROUNDS rounds: median req/s, p50, p99, and
#      message-svc's RSS.
#   2. The event path: BENCH_USERS users registered through user-svc as fast as it accepts them
#      (BENCH_PARALLEL curl processes, each one keep-alive connection), then the inboxes of a
#      sample of them (BENCH_SAMPLE, spread evenly over the order of registration, the last one
#      always in) polled round-robin (a pass over the pending ones shared among BENCH_POLLERS
#      curl processes, 50 ms pause, deadline 120 s) until the welcome message is visible. Prints
#      p50/p99/max of registration -> visible over the sample, and the event rate achieved (all
#      the registrations, from the first sent to the last sampled welcome visible). The users are deleted through
#      user-svc at the end. Polling only a sample keeps the poll itself from loading the engine
#      the events are written to (every poll is three reads on FerretDB).
#
#   bench/message_svc/run.sh          (or `make bench-message`)
#
# Needs the running stack (`make up`): user-svc and message-svc, their ports read from
# .local/env/user-svc.env and .local/env/message-svc.env. It starts no service of its own.
#
# Part 2 measures the event path only if message-svc has caught up with user-events
# (kafka_consumer_lag on its /metrics is 0): otherwise a welcome message waits behind the backlog
# and the delay measured is the backlog's. The script waits up to BENCH_LAG_WAIT seconds for it,
# printing the lag; if it is still behind, part 2 is skipped with a warning. Part 1 then reads the
# inboxes of users message-svc already knows (found through user-svc's GET /v1/users), since
# freshly registered users would not be known yet.
#
# Environment, with defaults:
#   BENCH_SECONDS=10        length of one wrk run (at most 120)
#   BENCH_ROUNDS=3          wrk rounds (at most 50)
#   BENCH_CONNECTIONS=16    wrk connections
#   BENCH_READ_USERS=10     users whose inboxes part 1 reads
#   BENCH_USERS=100         users registered in part 2 (at most 5000)
#   BENCH_PARALLEL=4        curl processes registering them
#   BENCH_SAMPLE=100        users of part 2 whose inboxes are polled (at most BENCH_USERS)
#   BENCH_POLLERS=2         curl processes polling
#   BENCH_DEADLINE=120      seconds part 2 (and part 1's set-up) wait for welcome messages
#   BENCH_LAG_WAIT=300      seconds to wait for message-svc to catch up before part 2
#   BENCH_PART=all          1 or 2: run one part only
#   BENCH_IGNORE_LAG=0      1: run part 2 even while message-svc is behind (tests the script;
#                           the delays are then the backlog's)
#
# Traffic goes to 127.0.0.1 only and is bounded; users this script registers are deleted through
# user-svc on exit, also after Ctrl-C or a failure (deleting leaves their tombstones).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-16}
READ_USERS=${BENCH_READ_USERS:-10}
USERS=${BENCH_USERS:-100}
PARALLEL=${BENCH_PARALLEL:-4}
SAMPLE=${BENCH_SAMPLE:-100}
POLLERS=${BENCH_POLLERS:-2}
DEADLINE=${BENCH_DEADLINE:-120}
LAG_WAIT=${BENCH_LAG_WAIT:-300}
PART=${BENCH_PART:-all}
IGNORE_LAG=${BENCH_IGNORE_LAG:-0}
UP="make up"

for v in SECONDS_PER_RUN ROUNDS CONNS READ_USERS USERS PARALLEL SAMPLE POLLERS DEADLINE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ $LAG_WAIT =~ ^[0-9]+$ ]] || die "BENCH_LAG_WAIT must be a number of seconds, not '$LAG_WAIT'"
[[ $PART =~ ^(all|1|2)$ ]] || die "BENCH_PART must be all, 1 or 2, not '$PART'"
[ "$SECONDS_PER_RUN" -le 120 ] || die "BENCH_SECONDS is capped at 120"
[ "$ROUNDS" -le 50 ] || die "BENCH_ROUNDS is capped at 50"
[ "$CONNS" -le 256 ] || die "BENCH_CONNECTIONS is capped at 256"
[ "$READ_USERS" -le 100 ] || die "BENCH_READ_USERS is capped at 100"
[ "$USERS" -le 5000 ] || die "BENCH_USERS is capped at 5000"
[ "$PARALLEL" -le 32 ] || die "BENCH_PARALLEL is capped at 32"
[ "$POLLERS" -le 32 ] || die "BENCH_POLLERS is capped at 32"
[ "$SAMPLE" -le "$USERS" ] || SAMPLE=$USERS
[ "$DEADLINE" -le 600 ] || die "BENCH_DEADLINE is capped at 600"

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
[ -n "$MSG_PID" ] || warn "message-svc's process not found: its RSS is not measured"

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
SAMPLER_PID=''
cleanup() {
    stop_proc "$SAMPLER_PID"
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

# register COUNT PREFIX OUT: COUNT users through user-svc's POST /v1/users, from PARALLEL curl
# processes (one keep-alive connection each); OUT gets "id completion_ms" a line. A transfer's
# completion time is its process's start plus the curl-measured times of its transfers so far.
register() {
    local count=$1 prefix=$2 out=$3 p i t0
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
            printf 'write-out = "%%{http_code} %%header{location} %%{time_total}\\n"\n'
            printf 'max-time = 10\n'
        } >>"$TMP/reg-$p.curl"
    done
    local pids=()
    for f in "$TMP"/reg-*.curl; do
        p=${f%.curl}
        t0=$(now_ms)
        { echo "$t0"; curl -sS -K "$f" 2>>"$TMP/curl.err"; } >"$p.out" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    for f in "$TMP"/reg-*.out; do
        awk 'NR == 1 { t = $1; next }
             { t += $3 * 1000 }
             $1 == 201 { sub(/.*\//, "", $2); printf "%s %.0f\n", $2, t }' "$f"
    done >"$out"
    cut -d' ' -f1 "$out" >>"$OURS"
    local made
    made=$(wc -l <"$out")
    if [ "$made" -ne "$count" ]; then
        cat "$TMP"/reg-*.out | awk 'NF == 3 && $1 != 201 { print "    status", $1 }' |
            sort | uniq -c | head >&2
        tail_log "$TMP/curl.err" 2>/dev/null || true
        die "registered $made of $count users"
    fi
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
log "message-svc $MSG_URL (pid ${MSG_PID:-?}), user-svc $USER_URL; consumer lag $LAG0"
log "$(machine_line)"

# ---- part 1: inbox reads -------------------------------------------------------------------

part1() {
    local ids=$TMP/read-ids.txt
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

    local r out rss_file rss_max rps p50 p99 reqs bad
    RESULTS=$TMP/results.tsv
    printf 'round\trate\tp50_ms\tp99_ms\trequests\tbad\trss_max_kb\n' >"$RESULTS"
    RSS_IDLE=$( [ -n "$MSG_PID" ] && rss_kb "$MSG_PID" || echo 0)
    log "part 1: $ROUNDS rounds of wrk -t1 -c$CONNS -d${SECONDS_PER_RUN}s over $READ_SOURCE"
    for ((r = 1; r <= ROUNDS; r++)); do
        out=$TMP/wrk-$r.txt
        rss_file=$TMP/rss-$r.txt
        : >"$rss_file"
        SAMPLER_PID=''
        if [ -n "$MSG_PID" ]; then
            sample_rss "$rss_file" "$MSG_PID" &
            SAMPLER_PID=$!
        fi
        timeout $((SECONDS_PER_RUN + 30)) wrk -t1 -c"$CONNS" -d"${SECONDS_PER_RUN}s" \
            --timeout 5s --latency -s "$here/inbox.lua" "$MSG_URL" -- "$ids" >"$out" 2>&1 ||
            { tail_log "$out"; die "wrk failed"; }
        stop_proc "$SAMPLER_PID"
        rss_max=$(sort -n "$rss_file" | tail -n 1)
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
        p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
        p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
        reqs=$(awk '/ requests in / { print $1 }' "$out")
        bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
                   /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                   END { print n + 0 }' "$out")
        [ -n "$rps" ] && [ -n "$reqs" ] || { tail_log "$out"; die "cannot read wrk's output"; }
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$rps" "$p50" "$p99" "$reqs" "$bad" \
            "${rss_max:-0}" >>"$RESULTS"
        printf '  %-3s %9.1f /s  p50 %9s ms  p99 %9s ms  requests %s  bad %s\n' \
            "$r" "$rps" "$p50" "$p99" "$reqs" "$bad"
    done
    col() { awk -F'\t' -v c="$1" 'NR > 1 { print $c }' "$RESULTS" | median_of; }
    echo
    printf 'part 1, GET /v1/users/{id}/messages, medians of %d rounds of %ds, %d connections:\n' \
        "$ROUNDS" "$SECONDS_PER_RUN" "$CONNS"
    printf '  %.1f req/s, p50 %s ms, p99 %s ms; bad answers %s\n' "$(col 2)" "$(col 3)" \
        "$(col 4)" "$(awk -F'\t' 'NR > 1 { n += $6 } END { print n + 0 }' "$RESULTS")"
    printf '  message-svc RSS: %s KiB before, max %s KiB under load\n' "$RSS_IDLE" \
        "$(awk -F'\t' 'NR > 1 && $7 > m { m = $7 } END { print m + 0 }' "$RESULTS")"
    print_runs "$RESULTS"
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
    log "part 2: registering $USERS users through user-svc ($PARALLEL curl processes)"
    local t0 t1
    t0=$(now_ms)
    register "$USERS" bench-msg-event "$TMP/ev-reg.txt"
    t1=$(now_ms)
    # The sample: SAMPLE users spread evenly over the order their registrations completed,
    # the last one among them.
    sort -k2,2n "$TMP/ev-reg.txt" | awk -v n="$USERS" -v s="$SAMPLE" '
        BEGIN { for (j = 1; j <= s; j++) pick[int((j * n + s - 1) / s)] = 1 }
        NR in pick' >"$TMP/ev-sample.txt"
    local sampled
    sampled=$(wc -l <"$TMP/ev-sample.txt")
    log "part 2: polling $sampled of their inboxes ($POLLERS curl processes, 50 ms between passes, ${DEADLINE}s deadline)"
    wait_visible "$TMP/ev-sample.txt" "$TMP/ev-vis.txt"
    local seen last
    seen=$(wc -l <"$TMP/ev-vis.txt")
    join <(sort "$TMP/ev-sample.txt") <(sort "$TMP/ev-vis.txt") |
        awk '{ print $3 - $2 }' >"$TMP/delays.txt"
    last=$(cut -d' ' -f2 "$TMP/ev-vis.txt" | sort -n | tail -n 1)
    echo
    printf 'part 2, the event path, %d users:\n' "$USERS"
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
        "$(awk -v n="$USERS" -v ms="$((${last:-$t0} - t0))" 'BEGIN { print (ms > 0) ? n * 1000 / ms : 0 }')" \
        "$USERS"
    printf '  last sampled welcome visible)\n'
    [ "$seen" -eq "$sampled" ] || warn "$((sampled - seen)) sampled welcome messages not visible after ${DEADLINE}s"
    echo
}

case $PART in
1) part1 ;;
2) part2 ;;
*) part1; part2 ;;
esac
delete_ours

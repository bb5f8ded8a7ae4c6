#!/usr/bin/env bash
# The local stack: six engines on 127.0.0.1 and the platform's services, one state folder.
#
#   stack.sh install           install and download what the engines need (cached)
#   stack.sh up [ENGINE...]    install if needed, start engines (all by default), then services
#   stack.sh down              stop services and engines; nothing of ours keeps running
#   stack.sh status            table of engines and services: port, pid, health, log
#   stack.sh reset             down, then wipe the state folder (downloads in cache/ are kept)
#   stack.sh logs [NAME]       the last lines of every log (or of NAME's)
#   stack.sh env SVC           path of a service's env file
#   stack.sh stop ENGINE...    stop some engines (workshops: break the broker on purpose)
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ENGINES=(postgres redis clickhouse kafka opensearch ferretdb)
for e in "${ENGINES[@]}"; do
    # shellcheck source=/dev/null
    . "$LOCAL_DIR/engines/$e.sh"
done

# The platform's services, in start order, with the engine each one owns. A service is started
# only once it exists in the tree and has been built, from the release preset (`make
# stack-build`; `make up` and `make test` do it): optimised, with debug info. Each logs to
# .local/logs/<svc>.log itself (LOG_FILE), renamed to <svc>.log.1 at 50 MiB, so a long
# benchmark cannot fill the disk; what else the process prints (a sanitizer's report, a crash)
# is appended to the same file. malloc keeps two arenas and maps allocations over 128 KiB on
# their own, so memory a large request took goes back (docs/performance.md, "The services'
# memory").
SERVICES=(user-svc:postgres product-svc:opensearch cart-svc:redis analytics-svc:clickhouse
    message-svc:ferretdb gateway:)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/release}

svc_port() {
    case $1 in
    user-svc) echo "$USER_SVC_PORT" ;;
    product-svc) echo "$PRODUCT_SVC_PORT" ;;
    cart-svc) echo "$CART_SVC_PORT" ;;
    analytics-svc) echo "$ANALYTICS_SVC_PORT" ;;
    message-svc) echo "$MESSAGE_SVC_PORT" ;;
    gateway) echo "$GATEWAY_PORT" ;;
    esac
}

svc_binary() { printf '%s/%s/%s\n' "$BUILD_DIR" "$1" "$1"; }

# Each service gets its own connection settings and no one else's. Kafka has no authentication
# locally (see docs/local.md), so every service that publishes or consumes gets the broker list.
write_service_envs() {
    local kafka="KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    write_env user-svc "HTTP_PORT=$USER_SVC_PORT" \
        "PG_DSN=postgresql://user_svc:$(secret user_svc_pg)@127.0.0.1:$PG_PORT/users" "$kafka"
    # cart-svc's checkout calls product-svc and user-svc through their APIs: their base URLs,
    # never their engines' credentials.
    write_env cart-svc "HTTP_PORT=$CART_SVC_PORT" \
        "REDIS_URL=redis://cart_svc:$(secret cart_svc_redis)@127.0.0.1:$REDIS_PORT/0" "$kafka" \
        "PRODUCT_SVC_URL=http://127.0.0.1:$PRODUCT_SVC_PORT" \
        "USER_SVC_URL=http://127.0.0.1:$USER_SVC_PORT"
    write_env analytics-svc "HTTP_PORT=$ANALYTICS_SVC_PORT" \
        "CLICKHOUSE_URL=http://127.0.0.1:$CLICKHOUSE_HTTP_PORT" \
        "CLICKHOUSE_USER=analytics_svc" \
        "CLICKHOUSE_PASSWORD=$(secret analytics_svc_clickhouse)" \
        "CLICKHOUSE_DATABASE=analytics" "PSEUDONYM_KEY=$(secret analytics_pseudonym)" "$kafka"
    write_env product-svc "HTTP_PORT=$PRODUCT_SVC_PORT" \
        "OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_PORT" "OPENSEARCH_USER=product_svc" \
        "OPENSEARCH_PASSWORD=$(secret product_svc_opensearch)" "$kafka"
    write_env message-svc "HTTP_PORT=$MESSAGE_SVC_PORT" \
        "MONGODB_URI=mongodb://127.0.0.1:$FERRETDB_PORT/messages?retryWrites=false" "$kafka"
    write_env gateway "HTTP_PORT=$GATEWAY_PORT" \
        "USER_SVC_URL=http://127.0.0.1:$USER_SVC_PORT" \
        "PRODUCT_SVC_URL=http://127.0.0.1:$PRODUCT_SVC_PORT" \
        "CART_SVC_URL=http://127.0.0.1:$CART_SVC_PORT" \
        "ANALYTICS_SVC_URL=http://127.0.0.1:$ANALYTICS_SVC_PORT" \
        "MESSAGE_SVC_URL=http://127.0.0.1:$MESSAGE_SVC_PORT"
}

svc_health() {
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$(svc_port "$1")/readyz"
}

start_service() {
    local svc=$1 bin
    bin=$(svc_binary "$svc")
    [ -x "$bin" ] || return 0
    if running "$svc"; then
        svc_health "$svc" 2>/dev/null && return 0
        # Running but not ready: reconnecting to an engine that was just restarted (readiness
        # follows its engines), or on its way out (killed, or draining after SIGTERM). Wait for
        # either, as long as a start would get; one that exits is started again below.
        local i
        log "$svc is running but not ready: waiting for it to be ready or to exit"
        for ((i = 0; i < 60; i++)); do
            svc_health "$svc" 2>/dev/null && { log "$svc is ready"; return 0; }
            running "$svc" || break
            sleep 0.5
        done
        if running "$svc"; then
            printf '%serror:%s %s is running but not ready after 30s\n' "$c_red" "$c_off" "$svc" >&2
            tail_log "$LOGS/$svc.log"
            return 1
        fi
        # Its port may take a moment to be released after the exit.
        for ((i = 0; i < 20; i++)); do
            port_free "$(svc_port "$svc")" && break
            sleep 0.25
        done
    fi
    require_port_free "$svc" "$(svc_port "$svc")"
    # The service sees its own env file and nothing of the others'.
    spawn "$svc" "$LOGS/$svc.log" bash -c 'set -a; . "$1"; set +a; LOG_FILE=$3 MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=131072 exec "$2"' _ \
        "$ENVDIR/$svc.env" "$bin" "$LOGS/$svc.log"
    wait_ready "$svc" 30 "$LOGS/$svc.log" svc_health "$svc"
}

# The topics of deploy/topics.conf, each with its .dlq (the broker creates none by itself).
create_topics() {
    local tool=$BUILD_DIR/tools/topics/polyglot-topics
    [ -x "$tool" ] || die "kafka: $tool is missing: build it first (make stack-build), it creates the topics"
    "$tool" --brokers "127.0.0.1:$KAFKA_PORT" --file "$ROOT/deploy/topics.conf" \
        >"$LOGS/topics.log" 2>&1 || { tail_log "$LOGS/topics.log"; die "kafka: the topics of deploy/topics.conf were not created"; }
    log "kafka: $(tail -n 1 "$LOGS/topics.log")"
}

is_engine() {
    local e
    for e in "${ENGINES[@]}"; do [ "$e" = "$1" ] && return 0; done
    return 1
}

cmd_install() {
    local e
    apt_install curl ca-certificates util-linux procps
    for e in "${ENGINES[@]}"; do "${e}_install"; done
}

cmd_up() {
    local want=("$@") e entry failed=()
    [ ${#want[@]} -gt 0 ] || want=("${ENGINES[@]}")
    for e in "${want[@]}"; do is_engine "$e" || die "unknown engine '$e' (known: ${ENGINES[*]})"; done
    for e in "${want[@]}"; do "${e}_install"; done
    for e in "${want[@]}"; do
        if running "$e" && "${e}_health"; then continue; fi
        log "starting $e"
        if ! "${e}_start"; then
            failed+=("$e")
            "${e}_stop" || true
        fi
    done
    [ ${#failed[@]} -eq 0 ] || die "engines that did not start: ${failed[*]} (logs in $LOGS)"
    for e in "${want[@]}"; do [ "$e" = kafka ] && create_topics; done
    write_service_envs
    [ $# -eq 0 ] || return 0
    for entry in "${SERVICES[@]}"; do
        start_service "${entry%%:*}" || failed+=("${entry%%:*}")
    done
    [ ${#failed[@]} -eq 0 ] || die "services that did not start: ${failed[*]} (logs in $LOGS)"
}

cmd_stop() {
    local e
    for e in "$@"; do
        is_engine "$e" || die "unknown engine '$e' (known: ${ENGINES[*]})"
        log "stopping $e"
        "${e}_stop"
    done
}

cmd_down() {
    local i entry
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        entry=${SERVICES[$i]}
        stop_pid "${entry%%:*}" 20
    done
    for ((i = ${#ENGINES[@]} - 1; i >= 0; i--)); do
        if running "${ENGINES[$i]}"; then log "stopping ${ENGINES[$i]}"; fi
        "${ENGINES[$i]}_stop"
    done
}

rss_mib() {
    local pid=$1 pgid
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
    [ -n "$pgid" ] || { echo -; return; }
    ps -o rss= -g "$pgid" 2>/dev/null | awk '{s += $1} END {printf "%.0f", s / 1024}'
}

cmd_status() {
    local e entry svc port pid health logf bad=0 desc
    printf '%-14s %-6s %-8s %-8s %-8s %s\n' NAME PORT PID RSS_MIB HEALTH LOG
    for e in "${ENGINES[@]}"; do
        desc=$("${e}_describe" 2>/dev/null || true)
        port=${desc%% *}
        pid=$(pid_of "$e")
        if running "$e" && "${e}_health"; then
            health="${c_green}healthy${c_off}"
        else
            health="${c_red}down${c_off}"
            bad=1
        fi
        logf=$LOGS/$e.log
        printf '%-14s %-6s %-8s %-8s %-8s %s\n' "$e" "${port:--}" "${pid:--}" \
            "$( [ -n "$pid" ] && rss_mib "$pid" || echo -)" "$health" "${logf#"$ROOT"/}"
    done
    for entry in "${SERVICES[@]}"; do
        svc=${entry%%:*}
        [ -x "$(svc_binary "$svc")" ] || continue
        pid=$(pid_of "$svc")
        if running "$svc" && svc_health "$svc"; then
            health="${c_green}healthy${c_off}"
        else
            health="${c_red}down${c_off}"
            bad=1
        fi
        printf '%-14s %-6s %-8s %-8s %-8s %s\n' "$svc" "$(svc_port "$svc")" "${pid:--}" \
            "$( [ -n "$pid" ] && rss_mib "$pid" || echo -)" "$health" "${LOGS#"$ROOT"/}/$svc.log"
    done
    return $bad
}

cmd_reset() {
    cmd_down
    log "wiping $STATE (keeping downloads in ${CACHE#"$ROOT"/})"
    local d target
    for d in "$DATA"/*; do
        # Data that had to live outside the checkout (see owned_dir) goes too.
        if [ -L "$d" ]; then
            target=$(readlink -f "$d")
            rm -rf "$target"
            rmdir "$(dirname "$target")" 2>/dev/null || true
        fi
    done
    rm -rf "$DATA" "$CONF" "$LOGS" "$RUN" "$ENVDIR"
}

cmd_logs() {
    local f
    for f in "$LOGS"/${1:-*}.log; do
        [ -f "$f" ] || continue
        printf '\n%s== %s ==%s\n' "$c_dim" "${f#"$ROOT"/}" "$c_off"
        tail -n "${LINES_PER_LOG:-20}" "$f"
    done
}

case ${1:-} in
install) cmd_install ;;
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
stop) shift; cmd_stop "$@" ;;
status) cmd_status ;;
reset) cmd_reset ;;
logs) shift; cmd_logs "$@" ;;
env) printf '%s\n' "$ENVDIR/${2:?usage: stack.sh env SVC}.env" ;;
*)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

# Redis 7 from Debian, with ACL users. cart-svc's engine.
# Sourced by deploy/local/stack.sh after common.sh.

redis_install() {
    apt_install redis-server redis-tools
}

redis_admin() {
    timeout 10 redis-cli --no-auth-warning -h 127.0.0.1 -p "$REDIS_PORT" \
        --user admin --pass "$(secret redis_admin)" "$@"
}

redis_health() {
    [ "$(redis_admin ping 2>/dev/null)" = PONG ]
}

redis_start() {
    local conf=$CONF/redis/redis.conf
    if running redis && redis_health; then return 0; fi
    require_port_free redis "$REDIS_PORT"
    mkdir -p "$CONF/redis" "$DATA/redis"
    # The default user is disabled: every client names itself. cart_svc may run every command
    # but the @dangerous ones (FLUSHALL, CONFIG, DEBUG, KEYS, ...); admin is for these scripts.
    (
        umask 077
        cat >"$conf" <<EOF
# written by deploy/local/engines/redis.sh
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
dir $DATA/redis
appendonly yes
appendfsync everysec
save ""
maxmemory 256mb
maxmemory-policy noeviction
user default off
user admin on >$(secret redis_admin) ~* &* +@all
user cart_svc on >$(secret cart_svc_redis) ~* &* +@all -@dangerous +info
EOF
    )
    spawn redis "$LOGS/redis.log" redis-server "$conf"
    wait_ready redis 30 "$LOGS/redis.log" redis_health
}

redis_stop() {
    stop_pid redis 30
}

redis_describe() {
    printf '%s Redis %s\n' "$REDIS_PORT" "$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')"
}

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

# What cart_svc may touch and run (see redis_start), one ACL rule each.
CART_SVC_KEYS="~cart:* ~user:* ~product:* ~product-carts:* ~order:* ~order-log:* ~user-orders:*
~checkout-key:* ~orders-open ~seen:* ~outbox ~test:*"
CART_SVC_COMMANDS="+auth +ping +acl|whoami +get +set +exists +del +pexpire +pttl +hget +hgetall
+hset +hdel +sadd +srem +smembers +rpush +lrange +zadd +zcount +zrange +zrevrangebyscore +watch
+unwatch +multi +exec +xadd +xlen +xrange +xgroup|create +xreadgroup +xack +xdel +xautoclaim
+xpending +xclaim +scan"

redis_start() {
    local conf=$CONF/redis/redis.conf
    if running redis && redis_health; then return 0; fi
    require_port_free redis "$REDIS_PORT"
    mkdir -p "$CONF/redis" "$DATA/redis"
    # The default user is disabled: every client names itself; admin is for these scripts.
    # cart_svc may run only the commands cart-svc/cart_store.c sends, on its own keys:
    # - keys: those cart_store.c's header lists (cart:, user:, product:, product-carts:, order:,
    #   order-log:, user-orders:, checkout-key:, orders-open, seen:, the outbox stream), and
    #   test:* for the integration tests, which put every key of theirs under a test: prefix;
    # - data: GET SET EXISTS DEL PEXPIRE PTTL, HGET HGETALL HSET HDEL, SADD SREM SMEMBERS, RPUSH
    #   LRANGE, ZADD ZCOUNT ZRANGE ZREVRANGEBYSCORE; WATCH UNWATCH MULTI EXEC (no Lua: no EVAL);
    # - the outbox: XADD XLEN XRANGE, the relay's group XGROUP CREATE XREADGROUP XACK XDEL
    #   XAUTOCLAIM, and XPENDING XCLAIM (the tests play a crashed relay with them);
    # - the session: AUTH PING, and ACL WHOAMI (a test checks who it is). No SELECT: cart-svc
    #   lives in database 0 and its URL must say /0 (another database answers NOPERM at start);
    # - SCAN, for cart_redis_drop_all() (tests only). SCAN is not held to the key patterns: it
    #   lists every key name of the database, all of them cart-svc's here (Redis has no other
    #   tenant), never their values.
    # No EVAL, FUNCTION, SELECT, FLUSHALL/FLUSHDB, CONFIG, KEYS, DEBUG, MONITOR, CLIENT, pub/sub.
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
user cart_svc on >$(secret cart_svc_redis) resetchannels ${CART_SVC_KEYS//$'\n'/ } -@all ${CART_SVC_COMMANDS//$'\n'/ }
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

# ClickHouse 18.16 from Debian, HTTP interface. analytics-svc's engine.
# Sourced by deploy/local/stack.sh after common.sh.

clickhouse_install() {
    apt_install clickhouse-server clickhouse-client curl
}

ch_url() { printf 'http://127.0.0.1:%s/' "$CLICKHOUSE_HTTP_PORT"; }

# ch_admin SQL: run one statement as the scripts' admin user (the `default` user, passworded).
ch_admin() {
    curl -fsS --max-time 10 -u "default:$(secret clickhouse_admin)" --data-binary "$1" "$(ch_url)"
}

clickhouse_health() {
    [ "$(curl -fsS --max-time 2 "$(ch_url)ping" 2>/dev/null)" = "Ok." ]
}

clickhouse_start() {
    local conf=$CONF/clickhouse data=$DATA/clickhouse
    if running clickhouse && clickhouse_health; then return 0; fi
    require_port_free clickhouse "$CLICKHOUSE_HTTP_PORT"
    require_port_free clickhouse "$CLICKHOUSE_TCP_PORT"
    mkdir -p "$conf/users.d" "$data/tmp" "$data/user_files" "$data/format_schemas"
    # A complete config of our own rather than the package's /etc one: its paths, ports and
    # 5-8 GiB caches are for a dedicated server.
    cat >"$conf/config.xml" <<EOF
<?xml version="1.0"?>
<!-- written by deploy/local/engines/clickhouse.sh -->
<yandex>
    <logger>
        <level>information</level>
        <log>$LOGS/clickhouse.log</log>
        <errorlog>$LOGS/clickhouse.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$CLICKHOUSE_HTTP_PORT</http_port>
    <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
    <interserver_http_port>$CLICKHOUSE_INTERSERVER_PORT</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
    <path>$data/</path>
    <tmp_path>$data/tmp/</tmp_path>
    <user_files_path>$data/user_files/</user_files_path>
    <format_schema_path>$data/format_schemas/</format_schema_path>
    <users_config>$conf/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <!-- Every statement of the users whose profile says log_queries (analytics_svc's): the SQL
         analytics-svc sends for each request, for workshops and bench/analytics_svc. -->
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
EOF
    # `default` is the scripts' admin, passworded; analytics_svc may use only `analytics`.
    (
        umask 077
        cat >"$conf/users.xml" <<EOF
<?xml version="1.0"?>
<!-- written by deploy/local/engines/clickhouse.sh -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>1000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <analytics_svc>
            <profile>default</profile>
            <log_queries>1</log_queries>
        </analytics_svc>
    </profiles>
    <users>
        <default>
            <password>$(secret clickhouse_admin)</password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <analytics_svc>
            <password>$(secret analytics_svc_clickhouse)</password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>analytics_svc</profile>
            <quota>default</quota>
            <allow_databases><database>analytics</database></allow_databases>
        </analytics_svc>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
    )
    spawn clickhouse "$LOGS/clickhouse.stdout.log" clickhouse-server --config-file="$conf/config.xml"
    # ClickHouse answers once it has loaded every table's parts: with many parts (a mutation,
    # pseudonymisation's ALTER ... UPDATE, rewrites them) that takes minutes on a small machine.
    wait_ready clickhouse 600 "$LOGS/clickhouse.err.log" clickhouse_health || return 1
    ch_admin 'CREATE DATABASE IF NOT EXISTS analytics' >/dev/null ||
        die "clickhouse: creating database 'analytics' failed"
}

clickhouse_stop() {
    stop_pid clickhouse 30
}

clickhouse_describe() {
    local v
    v=$(curl -fsS --max-time 2 -u "default:$(secret clickhouse_admin)" \
        --data-binary 'SELECT version()' "$(ch_url)" 2>/dev/null || echo '?')
    printf '%s ClickHouse %s (HTTP; native protocol on %s)\n' "$CLICKHOUSE_HTTP_PORT" "$v" \
        "$CLICKHOUSE_TCP_PORT"
}

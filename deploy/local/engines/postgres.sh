# PostgreSQL 15 from Debian, a private cluster in the state folder. user-svc's engine.
# Sourced by deploy/local/stack.sh after common.sh.

PG_BIN=/usr/lib/postgresql/15/bin

postgres_install() {
    apt_install postgresql-15 postgresql-client-15
}

# Superuser access for the scripts only, over TCP with a password; services never use it.
pg_admin() {
    PGPASSWORD=$(secret pg_admin) "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

postgres_health() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2
}

postgres_start() {
    local dir
    if running postgres && postgres_health; then return 0; fi
    require_port_free postgres "$PG_PORT"
    dir=$(owned_dir postgres)
    if [ ! -s "$dir/PG_VERSION" ]; then
        log "postgres: creating a cluster in $dir"
        local pwfile
        pwfile=$(mktemp)
        secret pg_admin >"$pwfile"
        chown "$ENGINE_USER:" "$pwfile"
        # initdb refuses to run as root: it runs as the engine user.
        if ! setpriv --reuid="$ENGINE_USER" --regid="$ENGINE_USER" --init-groups \
            "$PG_BIN/initdb" -D "$dir" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
            -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1; then
            rm -f "$pwfile"
            tail_log "$LOGS/postgres-initdb.log"
            die "postgres: initdb failed"
        fi
        rm -f "$pwfile"
    fi
    # Regenerated on every start, so a port change in ports.env takes effect.
    cat >"$dir/postgresql.auto.conf" <<EOF
# written by deploy/local/engines/postgres.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 100
shared_buffers = 64MB
password_encryption = 'scram-sha-256'
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    # Only two ways in: the scripts' superuser, and user_svc to its own database.
    cat >"$dir/pg_hba.conf" <<'EOF'
# written by deploy/local/engines/postgres.sh
# TYPE  DATABASE  USER      ADDRESS        METHOD
host    all       postgres  127.0.0.1/32   scram-sha-256
host    users     user_svc  127.0.0.1/32   scram-sha-256
host    all       all       0.0.0.0/0      reject
EOF
    chown "$ENGINE_USER:" "$dir/postgresql.auto.conf" "$dir/pg_hba.conf"
    spawn_as_engine_user postgres "$LOGS/postgres.log" "$PG_BIN/postgres" -D "$dir"
    wait_ready postgres 60 "$LOGS/postgres.log" postgres_health || return 1
    postgres_provision
}

# user_svc owns the users database and nothing else; PUBLIC loses CONNECT on the others.
postgres_provision() {
    local pw
    pw=$(secret user_svc_pg)
    pg_admin -d postgres -v pw="$pw" <<'EOF' || die "postgres: creating role 'user_svc' failed"
SELECT format('CREATE ROLE user_svc LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'user_svc') \gexec
ALTER ROLE user_svc PASSWORD :'pw';
SELECT 'CREATE DATABASE users OWNER user_svc'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'users') \gexec
REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE users FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE users TO user_svc;
EOF
}

postgres_stop() {
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stop_pid postgres 30 INT
}

postgres_describe() {
    printf '%s PostgreSQL %s\n' "$PG_PORT" "$("$PG_BIN/postgres" --version | awk '{print $3}')"
}

#!/bin/bash
# Entrypoint of localhost/polyglot/postgres:15: the upstream postgres image's interface, on
# Debian's PostgreSQL 15.
#
# On the first start (no $PGDATA/PG_VERSION) it runs initdb with scram-sha-256 and the
# superuser's password from POSTGRES_PASSWORD (or the file POSTGRES_PASSWORD_FILE names),
# listens on every address with `host all all all scram-sha-256`, creates POSTGRES_DB, runs
# /docker-entrypoint-initdb.d/*.sql and *.sh against a server that listens on its socket only,
# then replaces itself with postgres (PID 1; STOPSIGNAL SIGINT, a fast shutdown).
# `docker-entrypoint.sh postgres -c x=y` passes the options on; any other command just runs.
set -euo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%F %T UTC')" "$*" >&2; }

if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi
[ "$(id -u)" != 0 ] || { log "refusing to run PostgreSQL as root: run as uid 999 (the image's USER)"; exit 1; }

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi

# The socket directory libpq and psql look in by default (Debian: /var/run/postgresql); /tmp if
# that one cannot be written (another uid, a read-only root).
SOCKETS=/var/run/postgresql
[ -w "$SOCKETS" ] || SOCKETS=/tmp

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        log "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is required for a new cluster in $PGDATA"
        exit 1
    fi
    log "initdb in $PGDATA (superuser '$POSTGRES_USER', scram-sha-256)"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, as upstream's
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >&2
    rm -f "$pwfile"
    cat >>"$PGDATA/postgresql.conf" <<CONF

# added by the image's docker-entrypoint.sh
listen_addresses = '*'
password_encryption = 'scram-sha-256'
unix_socket_directories = '$SOCKETS'
# Debian's libLLVM (110 MB) is left out of the image: no JIT.
jit = off
CONF
    printf '%s\n' '# added by the image'"'"'s docker-entrypoint.sh' \
        'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"

    # The setup server: its socket only, so nobody connects before the setup is done.
    pg_ctl -D "$PGDATA" -w -t 60 -o "-c listen_addresses='' -c unix_socket_directories=$SOCKETS" start >&2
    export PGPASSWORD=$POSTGRES_PASSWORD
    psql=(psql -X -v ON_ERROR_STOP=1 -h "$SOCKETS" -U "$POSTGRES_USER" --no-password)
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" -d postgres -v db="$POSTGRES_DB" >&2 <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        # shellcheck disable=SC1090 # the scripts a user mounts
        case $f in
        *.sh) log "running $f"; . "$f" ;;
        *.sql) log "running $f"; "${psql[@]}" -d "$POSTGRES_DB" -f "$f" >&2 ;;
        *) log "ignoring $f" ;;
        esac
    done
    unset PGPASSWORD
    pg_ctl -D "$PGDATA" -m fast -w stop >&2
    log "initialisation done"
fi

exec "$@"

# FerretDB 1.24 (MongoDB wire protocol) on SQLite. message-svc's engine.
# Sourced by deploy/local/stack.sh after common.sh.
#
# `go install .../cmd/ferretdb` builds a binary that panics at start (no generated version.txt,
# upstream #2982), so deploy/local/ferretdb/ is a small main module of ours that embeds the
# github.com/FerretDB/FerretDB/ferretdb package; that path never starts telemetry. It is built
# once into $CACHE/bin with every Go download under $CACHE/go, and rebuilt only when its
# sources change. No authentication: FerretDB 1.24 on SQLite checks no credentials, so
# message-svc's local URI carries none.

FERRETDB_SRC=$LOCAL_DIR/ferretdb
FERRETDB_BIN=$CACHE/bin/ferretdb-wrapper

# Go, with every download and build cache inside $CACHE, never a newer toolchain fetched.
ferretdb_go() {
    env GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/cache" \
        GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 go "$@"
}

ferretdb_built() {
    local f
    [ -x "$FERRETDB_BIN" ] || return 1
    for f in main.go go.mod go.sum; do
        [ "$FERRETDB_BIN" -nt "$FERRETDB_SRC/$f" ] || return 1
    done
}

ferretdb_install() {
    ferretdb_built && return 0
    command -v go >/dev/null 2>&1 ||
        die "ferretdb: Go 1.24 or newer is needed to build deploy/local/ferretdb (Debian's golang-go 1.19 is too old)"
    # FerretDB v1.24.2's go.mod says `go 1.24`; GOTOOLCHAIN=local refuses to fetch a newer one.
    local v
    v=$(go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    # shellcheck disable=SC2086
    set -- $v
    if [ -z "$v" ] || [ "$1" -lt 1 ] || { [ "$1" -eq 1 ] && [ "$2" -lt 24 ]; }; then
        die "ferretdb: Go 1.24 or newer is needed, found $(go env GOVERSION 2>/dev/null || echo none)"
    fi
    log "building the FerretDB wrapper (a cold build downloads ~120 MB of modules and takes about 3 minutes)"
    mkdir -p "$CACHE/bin" "$CACHE/go"
    # Only the SQLite backend: leaving PostgreSQL out makes the build smaller.
    if ! (cd "$FERRETDB_SRC" && ferretdb_go build -trimpath -tags ferretdb_no_postgresql \
        -o "$FERRETDB_BIN.tmp" .) >"$LOGS/ferretdb-build.log" 2>&1; then
        tail_log "$LOGS/ferretdb-build.log"
        die "ferretdb: go build of deploy/local/ferretdb failed (log: $LOGS/ferretdb-build.log)"
    fi
    mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
}

# A real round trip: TCP connect, then an OP_MSG `ping` answered with ok: 1 (the wrapper's
# -ping mode; Debian has no mongosh).
ferretdb_health() {
    [ -x "$FERRETDB_BIN" ] || return 1
    "$FERRETDB_BIN" -ping "127.0.0.1:$FERRETDB_PORT" -timeout 1500ms >/dev/null 2>&1
}

ferretdb_start() {
    if running ferretdb && ferretdb_health; then return 0; fi
    require_port_free ferretdb "$FERRETDB_PORT"
    [ -x "$FERRETDB_BIN" ] || ferretdb_install
    # No config file: listen address and data folder are flags. One SQLite file per database.
    # synchronous=normal (WAL, fsync at checkpoints): like Redis's appendfsync everysec here, a
    # killed process loses nothing, an OS crash or power loss may lose the last commits; about
    # 1.5x the event rate of an fsync per commit (docs/local.md). FERRETDB_SQLITE_SYNCHRONOUS=full
    # gives the fsync back.
    mkdir -p "$DATA/ferretdb"
    spawn ferretdb "$LOGS/ferretdb.log" "$FERRETDB_BIN" \
        -listen "127.0.0.1:$FERRETDB_PORT" -sqlite-dir "$DATA/ferretdb" \
        -log-level "${FERRETDB_LOG_LEVEL:-info}" \
        -synchronous "${FERRETDB_SQLITE_SYNCHRONOUS:-normal}"
    wait_ready ferretdb 30 "$LOGS/ferretdb.log" ferretdb_health
}

ferretdb_stop() {
    stop_pid ferretdb 20
}

ferretdb_describe() {
    local v
    v=$(sed -n 's|^[[:space:]]*github.com/FerretDB/FerretDB v\([0-9.]*\).*|\1|p' "$FERRETDB_SRC/go.mod" | head -n 1)
    printf '%s FerretDB %s (MongoDB wire protocol, SQLite backend, no auth)\n' "$FERRETDB_PORT" "${v:-?}"
}

#!/usr/bin/env bash
# tests/k8s/images_test.sh: the images of tools/images/build.sh work as the manifests use them.
#
# Builds the images that are missing (all of them with POLYGLOT_IMAGES_REBUILD=1; the build's
# caches make that a matter of seconds once warm), then with podman, every port published on
# 127.0.0.1 only:
#   - each service image starts its binary with its libraries (--version), runs as 65532, and
#     user-svc, serving /healthz against the postgres image, stops on SIGTERM well inside the
#     grace period;
#   - postgres: the superuser's password from POSTGRES_PASSWORD is accepted over TCP and a wrong
#     one refused, psql is there, uid 999;
#   - redis: PING with the password, refused without it; /bin/sh is there; uid 999;
#   - clickhouse: /ping, and a query as `default` with the password a users.d file gives it;
#   - kafka: KRaft from a server.properties, kafka-topics.sh --create then --list;
#   - opensearch: cluster health with the Basic user from a mounted passwords directory, 401
#     without;
#   - ferretdb: a MongoDB OP_MSG ping through the published port;
#   - pause: exits 0 at once on SIGTERM.
# Reports each engine's time to ready and stop, and the image sizes; checks /dev/null is still
# the character device 1,3 at the end (KUBERNETES.md "A hazard"). Needs root (rootful podman).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CONTAINERS_CONF=$ROOT/tools/images/containers.conf
PREFIX=localhost/polyglot
SERVICES=(user-svc product-svc cart-svc analytics-svc message-svc)
IMAGES=("${SERVICES[@]/%/:dev}" postgres:15 redis:7.0 clickhouse:18.16 kafka:4.1.2
    opensearch:2.19.6 ferretdb:1.24.2 pause:3.10)
LABEL=polyglot.test=images-$$
TMP=$(mktemp -d /tmp/polyglot-images-test.XXXXXX)
REPORT=()

log() { printf '==> %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

check_dev_null() {
    if [ "$(stat -c '%F %t,%T' /dev/null)" != "character special file 1,3" ]; then
        printf 'FAIL: /dev/null is no longer the character device 1,3: %s; restoring it\n' \
            "$(stat -c '%F %U %t,%T' /dev/null)" >&2
        rm -f /dev/null && mknod -m 666 /dev/null c 1 3
        return 1
    fi
}

cleanup() {
    local rc=$? ids
    ids=$(podman ps -aq --filter "label=$LABEL" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one id per word
    [ -z "$ids" ] || podman rm -f -t 0 $ids >/dev/null 2>&1 || true
    rm -rf "$TMP"
    check_dev_null || rc=1
    exit "$rc"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (rootful podman, as tools/images/build.sh)"
command -v podman >/dev/null 2>&1 || "$ROOT/tools/images/build.sh" --help >/dev/null
command -v podman >/dev/null 2>&1 || fail "podman is missing (tools/images/build.sh installs it)"
command -v curl >/dev/null 2>&1 || fail "curl is missing"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME IMAGE [PODMAN-RUN-ARGS...] -- [COMMAND...]: a detached, labelled container.
start() {
    local name=$1 image=$2
    shift 2
    local args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    [ $# -eq 0 ] || shift
    podman run -d --name "$name-$$" --label "$LABEL" "${args[@]}" "$PREFIX/$image" "$@" >/dev/null ||
        fail "$name: podman run failed"
}

# wait_for NAME SECONDS CMD...: until CMD succeeds; prints the logs and fails at the deadline or
# when the container exits. Sets READY_S (seconds, one decimal).
wait_for() {
    local name=$1 limit=$2 t0 now
    shift 2
    t0=$(date +%s%N)
    while ! "$@" >/dev/null 2>&1; do
        now=$(date +%s%N)
        if [ "$(podman inspect -f '{{.State.Running}}' "$name-$$")" != true ]; then
            podman logs --tail 30 "$name-$$" >&2 || true
            fail "$name exited before it was ready"
        fi
        if [ $(((now - t0) / 1000000000)) -ge "$limit" ]; then
            podman logs --tail 30 "$name-$$" >&2 || true
            fail "$name not ready within ${limit}s"
        fi
        sleep 0.2
    done
    now=$(date +%s%N)
    READY_S=$(awk -v d=$((now - t0)) 'BEGIN { printf "%.1f", d / 1e9 }')
}

# stop NAME GRACE: podman stop; fails when it took the whole grace period (the signal was not
# handled) or the exit code is not one of a clean stop. Sets STOP_S.
stop() {
    local name=$1 grace=$2 t0 now code
    t0=$(date +%s%N)
    podman stop -t "$grace" "$name-$$" >/dev/null
    now=$(date +%s%N)
    STOP_S=$(awk -v d=$((now - t0)) 'BEGIN { printf "%.1f", d / 1e9 }')
    code=$(podman inspect -f '{{.State.ExitCode}}' "$name-$$")
    awk -v s="$STOP_S" -v g="$grace" 'BEGIN { exit !(s < g - 1) }' ||
        fail "$name: podman stop took ${STOP_S}s of a ${grace}s grace: the stop signal was not handled"
    # 0, or 128+15 / 128+2 for a JVM that exits through its shutdown hooks.
    case $code in 0 | 130 | 143) ;; *)
        podman logs --tail 20 "$name-$$" >&2 || true
        fail "$name: exit code $code after stop"
        ;;
    esac
}

report() { REPORT+=("$(printf '%-12s ready %6ss   stop %5ss   %s' "$1" "$READY_S" "$STOP_S" "$2")"); }

uid_of() { podman exec "$1-$$" id -u; }

# --- images --------------------------------------------------------------------------------------
missing=()
for image in "${IMAGES[@]}"; do
    if [ "${POLYGLOT_IMAGES_REBUILD:-0}" = 1 ] || ! podman image exists "$PREFIX/$image"; then
        missing+=("${image%%:*}")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    log "building ${missing[*]}"
    "$ROOT/tools/images/build.sh" "${missing[@]}"
fi

# --- services ------------------------------------------------------------------------------------
for svc in "${SERVICES[@]}"; do
    out=$(podman run --rm --label "$LABEL" "$PREFIX/$svc:dev" --version 2>&1) ||
        fail "$svc: the image cannot run its binary: $out"
    user=$(podman image inspect -f '{{.Config.User}}' "$PREFIX/$svc:dev")
    [ "$user" = 65532:65532 ] || fail "$svc: runs as '$user', want 65532:65532"
    if podman run --rm --label "$LABEL" --entrypoint /bin/sh "$PREFIX/$svc:dev" -c true >/dev/null 2>&1; then
        fail "$svc: the image has a shell"
    fi
    log "$svc: $out (user 65532, no shell)"
done

# --- postgres ------------------------------------------------------------------------------------
pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
pg_port=$(free_port)
log "postgres: starting on 127.0.0.1:$pg_port"
start postgres postgres:15 -p "127.0.0.1:$pg_port:5432" -e POSTGRES_PASSWORD="$pw" \
    -e PGDATA=/var/lib/postgresql/data/pgdata
wait_for postgres 60 podman exec "postgres-$$" pg_isready -q -h 127.0.0.1
pg_ready=$READY_S
got=$(podman exec -e PGPASSWORD="$pw" "postgres-$$" psql -X -At -h 127.0.0.1 -U postgres -c 'SHOW password_encryption')
[ "$got" = scram-sha-256 ] || fail "postgres: psql with the password over TCP answered '$got'"
if podman exec -e PGPASSWORD=wrong "postgres-$$" psql -X -At -h 127.0.0.1 -U postgres -c 'SELECT 1' >/dev/null 2>&1; then
    fail "postgres: a wrong password was accepted"
fi
[ "$(uid_of postgres)" = 999 ] || fail "postgres: not running as uid 999"
if [ -x /usr/lib/postgresql/15/bin/psql ]; then
    # From outside the container: it listens on every address, host all all all scram-sha-256.
    got=$(PGPASSWORD=$pw /usr/lib/postgresql/15/bin/psql -X -At -h 127.0.0.1 -p "$pg_port" -U postgres -c 'SELECT 42')
    [ "$got" = 42 ] || fail "postgres: psql through the published port answered '$got'"
fi
log "postgres: password accepted over TCP (scram-sha-256), wrong one refused, uid 999, ready in ${pg_ready}s"

# user-svc against it: serves /healthz, then SIGTERM ends it well inside the grace period.
svc_port=$(free_port)
start user-svc user-svc:dev --network host -e HTTP_BIND=127.0.0.1 -e HTTP_PORT="$svc_port" \
    -e PG_DSN="postgresql://postgres:$pw@127.0.0.1:$pg_port/postgres" -e KAFKA_BROKERS=127.0.0.1:9
wait_for user-svc 30 curl -fsS -m 2 "http://127.0.0.1:$svc_port/healthz"
[ "$(podman top "user-svc-$$" user | tail -n 1 | tr -d ' ')" = 65532 ] || fail "user-svc: not running as 65532"
stop user-svc 30
report user-svc "/healthz 200 as uid 65532; SIGTERM: exit $(podman inspect -f '{{.State.ExitCode}}' "user-svc-$$")"
podman rm "user-svc-$$" >/dev/null

READY_S=$pg_ready
stop postgres 30
report postgres "psql with POSTGRES_PASSWORD over TCP; wrong password refused"

# --- redis ---------------------------------------------------------------------------------------
port=$(free_port)
start redis redis:7.0 -p "127.0.0.1:$port:6379" -- --requirepass "$pw"
wait_for redis 30 podman exec "redis-$$" redis-cli --no-auth-warning -a "$pw" PING
got=$(podman exec "redis-$$" redis-cli --no-auth-warning -a "$pw" PING)
[ "$got" = PONG ] || fail "redis: PING answered '$got'"
got=$(podman exec "redis-$$" redis-cli PING 2>&1 || true)
case $got in *NOAUTH*) ;; *) fail "redis: PING without the password answered '$got'" ;; esac
[ "$(podman exec "redis-$$" /bin/sh -c 'echo sh')" = sh ] || fail "redis: no /bin/sh"
[ "$(uid_of redis)" = 999 ] || fail "redis: not running as uid 999"
stop redis 30
report redis "PING with the password = PONG, NOAUTH without; /bin/sh; uid 999"

# --- clickhouse ----------------------------------------------------------------------------------
port=$(free_port)
mkdir -p "$TMP/ch-users.d"
cat >"$TMP/ch-users.d/default.xml" <<EOF
<yandex><users><default>
  <password>$pw</password>
  <networks replace="replace"><ip>::/0</ip></networks>
</default></users></yandex>
EOF
chmod -R a+rX "$TMP"
start clickhouse clickhouse:18.16 -p "127.0.0.1:$port:8123" \
    -v "$TMP/ch-users.d:/etc/clickhouse-server/users.d:ro"
wait_for clickhouse 60 curl -fsS -m 2 "http://127.0.0.1:$port/ping"
[ "$(curl -fsS -m 2 "http://127.0.0.1:$port/ping")" = Ok. ] || fail "clickhouse: /ping"
got=$(curl -fsS -m 5 -u "default:$pw" --data-binary 'SELECT version()' "http://127.0.0.1:$port/")
case $got in 18.16.*) ;; *) fail "clickhouse: SELECT version() answered '$got'" ;; esac
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -u default:wrong --data-binary 'SELECT 1' "http://127.0.0.1:$port/")
[ "$code" != 200 ] || fail "clickhouse: a wrong password was accepted"
[ "$(uid_of clickhouse)" = 101 ] || fail "clickhouse: not running as uid 101"
stop clickhouse 30
report clickhouse "/ping Ok.; version $got with the users.d password, wrong one refused; uid 101"

# --- kafka ---------------------------------------------------------------------------------------
port=$(free_port)
mkdir -p "$TMP/kafka"
sed -e 's|^log.dirs=.*|log.dirs=/var/lib/kafka/data|' "$ROOT/tools/images/kafka/config/kraft-server.properties" \
    >"$TMP/kafka/server.properties"
chmod -R a+rX "$TMP"
# shellcheck disable=SC2016 # expanded by the container's bash
start kafka kafka:4.1.2 -p "127.0.0.1:$port:9092" -v "$TMP/kafka:/mnt/config:ro" -- \
    bash -c 'kafka-storage.sh format -t "$(kafka-storage.sh random-uuid)" -c /mnt/config/server.properties &&
        exec kafka-server-start.sh /mnt/config/server.properties'
wait_for kafka 120 podman exec "kafka-$$" kafka-broker-api-versions.sh --bootstrap-server localhost:9092
kafka_ready=$READY_S
podman exec "kafka-$$" kafka-topics.sh --bootstrap-server localhost:9092 --create --topic images-test \
    --partitions 3 --replication-factor 1 >/dev/null || fail "kafka: kafka-topics.sh --create failed"
got=$(podman exec "kafka-$$" kafka-topics.sh --bootstrap-server localhost:9092 --list)
[ "$got" = images-test ] || fail "kafka: kafka-topics.sh --list answered '$got'"
[ "$(uid_of kafka)" = 1000 ] || fail "kafka: not running as uid 1000"
READY_S=$kafka_ready
stop kafka 40
report kafka "KRaft from server.properties; kafka-topics.sh --create/--list; uid 1000"

# --- opensearch ----------------------------------------------------------------------------------
port=$(free_port)
mkdir -p "$TMP/os-passwords"
printf '%s' "$pw" >"$TMP/os-passwords/admin"
chmod -R a+rX "$TMP"
start opensearch opensearch:2.19.6 -p "127.0.0.1:$port:9200" \
    -v "$TMP/os-passwords:/etc/opensearch/passwords:ro" -e OPENSEARCH_JAVA_OPTS='-Xms256m -Xmx512m'
wait_for opensearch 180 curl -fsS -m 3 -u "admin:$pw" \
    "http://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=1s"
got=$(curl -fsS -m 3 -u "admin:$pw" "http://127.0.0.1:$port/_cluster/health")
case $got in *'"status":"green"'* | *'"status":"yellow"'*) ;; *) fail "opensearch: health '$got'" ;; esac
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_cluster/health")
[ "$code" = 401 ] || fail "opensearch: anonymous health gave $code, want 401"
[ "$(uid_of opensearch)" = 1000 ] || fail "opensearch: not running as uid 1000"
stop opensearch 60
report opensearch "cluster health as admin (Basic, from a mounted passwords dir); 401 anonymous; uid 1000"

# --- ferretdb ------------------------------------------------------------------------------------
port=$(free_port)
start ferretdb ferretdb:1.24.2 -p "127.0.0.1:$port:27017"
# The wrapper's -ping: a real OP_MSG `ping` answered with ok: 1, here through the published port.
wait_for ferretdb 30 podman run --rm --label "$LABEL" --network host "$PREFIX/ferretdb:1.24.2" \
    -ping "127.0.0.1:$port" -timeout 1500ms
[ "$(podman top "ferretdb-$$" user | tail -n 1 | tr -d ' ')" = 999 ] || fail "ferretdb: not running as uid 999"
stop ferretdb 30
report ferretdb "MongoDB ping through 127.0.0.1:$port; uid 999"

# --- pause ---------------------------------------------------------------------------------------
start pause pause:3.10
wait_for pause 10 true
stop pause 30
report pause "exit $(podman inspect -f '{{.State.ExitCode}}' "pause-$$") on SIGTERM"

check_dev_null || fail "/dev/null was replaced"

printf '\n'
printf '%s\n' "${REPORT[@]}"
printf '\n%-40s %10s\n' IMAGE 'SIZE (MB)'
for image in "${IMAGES[@]}"; do
    printf '%-40s %10.1f\n' "$PREFIX/$image" "$(podman image inspect -f '{{.Size}}' "$PREFIX/$image" | awk '{ print $1 / 1e6 }')"
done
log "every image works; /dev/null is still the character device 1,3"

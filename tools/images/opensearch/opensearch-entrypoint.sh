#!/bin/bash
# Entrypoint of localhost/polyglot/opensearch:2.19.6: writes the node's config, then replaces
# itself with the JVM (PID 1; SIGTERM runs the launcher's shutdown hook, which closes the node).
#
# - opensearch.yml: deploy/local's settings on 0.0.0.0:9200, single node. Any variable whose
#   name contains a dot is a setting, as with the upstream images (cluster.name=x, or
#   discovery.type=...), and wins over the defaults.
# - users: the launcher answers nobody without them. OPENSEARCH_USERS_FILE, if that file
#   exists, is used as it is (name:salt:sha256hex lines, what deploy/local writes); otherwise
#   every file in OPENSEARCH_PASSWORDS_DIR (a Secret mounted as a directory: key = user name,
#   value = password) is hashed here with a fresh salt.
# - OPENSEARCH_JAVA_OPTS: the heap and other JVM options (default deploy/local's).
set -euo pipefail

home=/usr/share/opensearch
conf=${OPENSEARCH_CONFIG_DIR:-$home/config}
mkdir -p "$conf" "$home/data" "$home/logs" "$home/tmp" 2>/dev/null || true
logs=$home/logs
[ -w "$logs" ] || logs=$(mktemp -d)
tmp=$home/tmp
[ -w "$tmp" ] || tmp=$(mktemp -d)

declare -A settings=(
    [cluster.name]=polyglot
    [node.name]=${HOSTNAME:-opensearch-0}
    [path.data]=$home/data
    [path.logs]=$logs
    [network.host]=0.0.0.0
    [http.port]=9200
    [transport.port]=9300
    [discovery.type]=single-node
    [cluster.routing.allocation.disk.threshold_enabled]=false
)
while IFS='=' read -r name _; do
    case $name in *.*) settings[$name]=$(printenv "$name") ;; esac
done < <(env)
{
    echo "# written by opensearch-entrypoint.sh at every start"
    for k in "${!settings[@]}"; do printf '%s: %s\n' "$k" "${settings[$k]}"; done | sort
} >"$conf/opensearch.yml"
cat >"$conf/log4j2.properties" <<'LOG'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
LOG

umask 077
if [ -f "${OPENSEARCH_USERS_FILE:-}" ]; then
    cp "$OPENSEARCH_USERS_FILE" "$conf/users"
elif [ -d "${OPENSEARCH_PASSWORDS_DIR:-}" ]; then
    {
        echo "# written by opensearch-entrypoint.sh from $OPENSEARCH_PASSWORDS_DIR"
        for f in "$OPENSEARCH_PASSWORDS_DIR"/*; do
            name=$(basename "$f")
            # A Secret mounted as a directory also holds ..data and its timestamped folder.
            case $name in ..* | *[!A-Za-z0-9_.-]*) continue ;; esac
            [ -f "$f" ] || continue
            salt=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
            hash=$( { printf '%s' "$salt"; tr -d '\n' <"$f"; } | sha256sum | cut -d' ' -f1)
            printf '%s:%s:%s\n' "$name" "$salt" "$hash"
        done
    } >"$conf/users"
else
    echo "opensearch-entrypoint.sh: no users: mount $OPENSEARCH_USERS_FILE or $OPENSEARCH_PASSWORDS_DIR/<user>" >&2
    exit 1
fi
umask 022

# shellcheck disable=SC2086 # OPENSEARCH_JAVA_OPTS is a list of options
exec "$JAVA_HOME/bin/java" ${OPENSEARCH_JAVA_OPTS:--Xms256m -Xmx512m} \
    -XX:MaxDirectMemorySize=128m -XX:+UseG1GC -XX:-HeapDumpOnOutOfMemoryError \
    -XX:+ExitOnOutOfMemoryError -Xshare:auto \
    -Djava.io.tmpdir="$tmp" -Dfile.encoding=UTF-8 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 \
    -Dopensearch.path.home="$home" \
    -cp "$home/lib/*:$home/launcher.jar" EmbeddedOpenSearch "$conf"

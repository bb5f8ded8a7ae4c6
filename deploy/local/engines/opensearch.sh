# OpenSearch 2.19 for product-svc (Elasticsearch-compatible REST). Sourced after common.sh.
#
# The distribution tarball is not reachable, so the node runs embedded in a plain JVM: the server
# jar and the modules the platform needs come from Maven Central (deploy/local/opensearch/pom.xml)
# and a small launcher (deploy/local/opensearch/EmbeddedOpenSearch.java) loads them as classpath
# plugins. An embedded Node skips the distribution's Bootstrap, so it runs as root too (verified),
# and without its bootstrap checks (vm.max_map_count and friends).
#
# There is no security plugin, so the launcher brings a small one of its own: every REST request
# needs HTTP Basic credentials of a user in $CONF/opensearch/users, which _opensearch_write_users
# writes on every start from the secrets in $CONF/secrets/. product_svc is the owner (its
# password goes only to product-svc's env file); admin is for these scripts.

# Only functions here (the file is sourced by stack.sh): the version and the paths are functions.
_opensearch_version() { printf '2.19.6\n'; }
# The resolved jars and the compiled launcher, kept by `make reset`.
_opensearch_home() { printf '%s/opensearch-%s\n' "$CACHE" "$(_opensearch_version)"; }
_opensearch_src() { printf '%s/opensearch\n' "$LOCAL_DIR"; }

# A JDK 17 (javac for the launcher); OpenSearch 2.19 does not run on the Temurin 25 JDK.
_opensearch_java_home() {
    local h
    for h in "${OPENSEARCH_JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-*; do
        if [ -n "$h" ] && [ -x "$h/bin/javac" ]; then
            printf '%s\n' "$h"
            return 0
        fi
    done
    return 1
}

# What the cached build was made from: a changed pom or launcher rebuilds it.
_opensearch_fingerprint() {
    local src
    src=$(_opensearch_src)
    cat "$src/pom.xml" "$src/EmbeddedOpenSearch.java" | sha256sum | cut -c1-16
}

_opensearch_url() { printf 'http://127.0.0.1:%s%s\n' "$OPENSEARCH_PORT" "$1"; }

# _opensearch_curlrc: the path of a curl config file (mode 600) that logs in as admin, so the
# password never shows on a command line (ps, /proc/PID/cmdline). Written when missing.
_opensearch_curlrc() {
    local f=$CONF/opensearch/admin.curlrc
    if [ ! -s "$f" ]; then
        mkdir -p "$CONF/opensearch"
        (umask 077 && printf 'user = "admin:%s"\n' "$(secret opensearch_admin)" >"$f")
    fi
    printf '%s\n' "$f"
}

# opensearch_admin_curl CURL-ARGS...: curl as the scripts' admin user.
opensearch_admin_curl() {
    curl -K "$(_opensearch_curlrc)" "$@"
}

# _opensearch_write_users CONF: the users file the launcher's BasicAuthPlugin reads at start-up,
# name:salt:sha256(salt password), readable by the node's user only. A fresh salt per user and
# start; the passwords are long random secrets, so a fast hash keeps them out of the file.
_opensearch_write_users() {
    local conf=$1 entry name salt hash
    (
        umask 077
        {
            printf '# written by deploy/local/engines/opensearch.sh on every start; edit that script\n'
            for entry in admin:opensearch_admin product_svc:product_svc_opensearch; do
                name=${entry%%:*}
                salt=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
                hash=$(printf '%s%s' "$salt" "$(secret "${entry#*:}")" | sha256sum | cut -d' ' -f1)
                printf '%s:%s:%s\n' "$name" "$salt" "$hash"
            done
        } >"$conf/users.tmp"
        mv "$conf/users.tmp" "$conf/users"
    )
}

opensearch_install() {
    local jh fp home src stamp ilog=$LOGS/opensearch-install.log
    home=$(_opensearch_home)
    src=$(_opensearch_src)
    stamp=$home/.installed
    command -v curl >/dev/null 2>&1 || apt_install curl
    jh=$(_opensearch_java_home) || {
        apt_install openjdk-17-jdk-headless
        jh=$(_opensearch_java_home) || die "opensearch: no JDK 17 found (need /usr/lib/jvm/java-17-openjdk-*/bin/javac)"
    }
    fp=$(_opensearch_fingerprint)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fp" ] &&
        [ -f "$home/launcher.jar" ]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || apt_install maven
    log "opensearch: resolving OpenSearch $(_opensearch_version) jars from Maven Central (log: $ilog)"
    rm -rf "$home/lib.new" "$home/launcher.new" "$home/launcher.jar.new"
    mkdir -p "$home"
    : >"$ilog"
    JAVA_HOME=$jh mvn -B -q -f "$src/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
        dependency:copy-dependencies -DoutputDirectory="$home/lib.new" >>"$ilog" 2>&1 ||
        { tail_log "$ilog"; die "opensearch: resolving the jars with Maven failed"; }
    log "opensearch: compiling the launcher"
    mkdir -p "$home/launcher.new"
    "$jh/bin/javac" --release 17 -nowarn -cp "$home/lib.new/*" -d "$home/launcher.new" \
        "$src/EmbeddedOpenSearch.java" >>"$ilog" 2>&1 ||
        { tail_log "$ilog"; die "opensearch: compiling EmbeddedOpenSearch.java failed"; }
    # A jar, not a class folder: the JVM's class-data archive (see opensearch_start) refuses
    # non-empty folders on the classpath.
    "$jh/bin/jar" cf "$home/launcher.jar.new" -C "$home/launcher.new" . >>"$ilog" 2>&1 ||
        { tail_log "$ilog"; die "opensearch: packing the launcher failed"; }
    rm -rf "$home/lib" "$home/launcher" "$home/launcher.new" "$home/cds.jsa"
    mv "$home/lib.new" "$home/lib"
    mv "$home/launcher.jar.new" "$home/launcher.jar"
    printf '%s\n' "$fp" >"$stamp"
}

_opensearch_write_config() {
    local conf=$1 data=$2
    mkdir -p "$conf"
    cat >"$conf/opensearch.yml" <<EOF
# Written by deploy/local/engines/opensearch.sh on every start; edit that script instead.
cluster.name: polyglot-local
node.name: local-1
path.data: $data/data
path.logs: $data/logs
network.host: 127.0.0.1
http.port: $OPENSEARCH_PORT
transport.port: $OPENSEARCH_TRANSPORT_PORT
discovery.type: single-node
# A developer disk that is 90% full must not turn indices read-only.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    # Console only: spawn appends it to $LOGS/opensearch.log.
    cat >"$conf/log4j2.properties" <<'EOF'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
EOF
}

opensearch_start() {
    local conf=$CONF/opensearch data=$DATA/opensearch logf=$LOGS/opensearch.log jh home cds cp
    home=$(_opensearch_home)
    if running opensearch; then
        # Healthy already, or still starting from an earlier call: wait for it rather than
        # starting a second node on the same data.
        opensearch_health && return 0
        wait_ready opensearch 180 "$logf" opensearch_health
        return
    fi
    [ -f "$home/launcher.jar" ] || opensearch_install
    jh=$(_opensearch_java_home) || die "opensearch: no JDK 17 found; run opensearch_install"
    require_port_free opensearch "$OPENSEARCH_PORT"
    require_port_free opensearch "$OPENSEARCH_TRANSPORT_PORT"
    mkdir -p "$data/data" "$data/logs" "$data/tmp"
    _opensearch_write_config "$conf" "$data"
    _opensearch_write_users "$conf"
    rm -f "$conf/admin.curlrc" # written again from the current secret
    # Start-up is mostly class loading (painless builds its whitelist from thousands of classes).
    # The first start records the loaded classes in a class-data archive that the JVM writes when
    # it exits (so that first stop takes ~15 s); later starts map it and start about twice as
    # fast. An archive that does not fit this JDK and classpath, or was cut short by a kill, fails
    # the quick -Xshare:on probe and is recorded again.
    cp=$home/lib/*:$home/launcher.jar
    cds=$home/cds.jsa
    if [ -s "$cds" ] && (cd "$data/tmp" && "$jh/bin/java" -XX:SharedArchiveFile="$cds" -Xshare:on \
        -XX:-CreateCoredumpOnCrash -XX:ErrorFile=/dev/null -cp "$cp" -version) >/dev/null 2>&1; then
        set -- -XX:SharedArchiveFile="$cds"
    else
        rm -f "$cds"
        set -- -XX:ArchiveClassesAtExit="$cds"
    fi
    # Small heap (it is one developer's catalogue); Netty's direct buffers capped too.
    spawn opensearch "$logf" "$jh/bin/java" \
        -Xms"${OPENSEARCH_HEAP_MIN:-256m}" -Xmx"${OPENSEARCH_HEAP_MAX:-512m}" \
        -XX:MaxDirectMemorySize=128m -XX:+UseG1GC -XX:-HeapDumpOnOutOfMemoryError \
        "$@" -Xlog:cds*=error \
        -Djava.io.tmpdir="$data/tmp" -Dfile.encoding=UTF-8 \
        -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
        -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
        -Dio.netty.recycler.maxCapacityPerThread=0 \
        -Dopensearch.path.home="$data" \
        -cp "$cp" EmbeddedOpenSearch "$conf"
    wait_ready opensearch 180 "$logf" opensearch_admin_curl -fsS -m 3 -o /dev/null \
        "$(_opensearch_url '/_cluster/health?wait_for_status=yellow&timeout=1s')"
}

opensearch_stop() {
    # SIGTERM runs the launcher's shutdown hook, which closes the node cleanly (about 2 s; up to
    # ~15 s more after the first start, while the JVM writes its class-data archive).
    stop_pid opensearch 60
}

opensearch_health() {
    opensearch_admin_curl -fs -m 1.5 -o /dev/null \
        "$(_opensearch_url '/_cluster/health?wait_for_status=yellow&timeout=1s')"
}

opensearch_describe() {
    printf '%s OpenSearch %s (embedded node, Elasticsearch-compatible REST; transport %s)\n' \
        "$OPENSEARCH_PORT" "$(_opensearch_version)" "$OPENSEARCH_TRANSPORT_PORT"
}

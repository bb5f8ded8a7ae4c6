#!/usr/bin/env bash
# mmdebstrap's hooks are shell snippets it runs with $1 = the new root: single quotes on purpose.
# shellcheck disable=SC2016
# tools/images/build.sh: the platform's container images, built without any registry.
#
#   tools/images/build.sh [--services | --engines | all] [--save DIR] [NAME...]
#
#   --services   localhost/polyglot/<svc>:dev for every service (the default with `all`)
#   --engines    the local engine images: postgres:15, redis:7.0, clickhouse:18.16,
#                kafka:4.1.2, opensearch:2.19.6, ferretdb:1.24.2, pause:3.10
#   all          both (the default)
#   NAME...      only these (user-svc, postgres, pause...)
#   --save DIR   also write each image as DIR/<name>.tar, an OCI archive for
#                `ctr -n k8s.io images import` (the local node loads them that way)
#
# Tool: podman, else buildah, else docker when its daemon answers; with none of them, podman,
# buildah, mmdebstrap and runc are installed with apt. Every root filesystem comes from the
# Debian mirror through mmdebstrap (never a container registry) and is kept under
# $POLYGLOT_IMAGE_CACHE (/var/cache/polyglot/images), keyed on its package list, so a warm
# build only re-runs the image builds (seconds). Service images take the release binaries of
# `make stack-build` (built here when missing); engine images take the same Debian packages,
# Maven jars and FerretDB binary that deploy/local uses (reused from a checkout's .local/cache
# when there, resolved otherwise). Prints a table of image sizes at the end.
set -euo pipefail
# A failure inside $(...) stops the build too.
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tools/images
CACHE=${POLYGLOT_IMAGE_CACHE:-/var/cache/polyglot/images}
MIRROR=${POLYGLOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PREFIX=localhost/polyglot
SERVICES=(user-svc product-svc cart-svc analytics-svc message-svc)
ENGINES=(postgres redis clickhouse kafka opensearch ferretdb pause)
# podman and buildah on this VM need runc, cgroupfs and rlimits under the hard limit.
export CONTAINERS_CONF=$HERE/containers.conf

# The shared base of the service images (and of ferretdb's): no package manager, no shell.
BASE_PACKAGES="base-files,libc6,netbase"
KAFKA_VERSION=4.1.2
OPENSEARCH_VERSION=2.19.6

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'tools/images/build.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

apt_install() {
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >&2 ||
        die "apt-get install $* failed"
}

# --- the container tool ------------------------------------------------------------------------

TOOL=
pick_tool() {
    if command -v podman >/dev/null 2>&1; then
        TOOL=podman
    elif command -v buildah >/dev/null 2>&1; then
        TOOL=buildah
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        TOOL=docker
    else
        apt_install podman buildah mmdebstrap runc
        TOOL=podman
    fi
    command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
    if [ "$TOOL" != docker ] && ! command -v runc >/dev/null 2>&1; then apt_install runc; fi
    log "container tool: $TOOL ($("$TOOL" --version 2>/dev/null | head -n 1))"
}

img_exists() {
    case $TOOL in
    podman) podman image exists "$1" ;;
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
    docker) docker image inspect "$1" >/dev/null 2>&1 ;;
    esac
}

# img_import TAR NAME: a root filesystem tarball as a one-layer image.
img_import() {
    case $TOOL in
    podman) podman import -q "$1" "$2" >/dev/null ;;
    docker) docker import "$1" "$2" >/dev/null ;;
    buildah)
        local c
        c=$(buildah from scratch)
        buildah add "$c" "$1" / >/dev/null
        buildah commit -q --rm "$c" "$2" >/dev/null
        ;;
    esac
}

# img_build DIR NAME: build DIR/Containerfile. The Containerfiles have no RUN step, so nothing
# runs during a build and the network is never needed. No layer cache with podman and buildah:
# buildah 1.28's cache once handed back an image built on the previous root filesystem after
# FROM had changed (seen with clickhouse), and without RUN steps a full build takes seconds.
img_build() {
    case $TOOL in
    podman) podman build -q --layers=false --pull=never --network=none -t "$2" -f "$1/Containerfile" "$1" >/dev/null ;;
    buildah) buildah bud -q --layers=false --pull-never -t "$2" -f "$1/Containerfile" "$1" >/dev/null ;;
    docker) docker build -q -t "$2" -f "$1/Containerfile" "$1" >/dev/null ;;
    esac
}

img_save() {
    rm -f "$2"
    case $TOOL in
    podman) podman save -q --format oci-archive -o "$2" "$1" ;;
    buildah) buildah push -q "$1" "oci-archive:$2:$1" ;;
    # A docker archive: `ctr images import` reads those too.
    docker) docker save -o "$2" "$1" ;;
    esac
}

img_size() {
    case $TOOL in
    podman) podman image inspect --format '{{.Size}}' "$1" ;;
    docker) docker image inspect --format '{{.Size}}' "$1" ;;
    buildah) buildah images --noheading --format '{{.Size}}' "$1" ;;
    esac
}

# --- root filesystems from the Debian mirror -----------------------------------------------------

# What every engine root filesystem drops: documentation (but the copyright files), manual pages,
# translations, apt's lists and caches, logs of the installation.
TRIM_OPTS=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/* "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old'
)

# user_hook NAME UID HOME: a hook adding a system user and its group to the new root (run before
# the packages' maintainer scripts, which then find the user with the uid we want).
user_hook() {
    printf '%s' "echo '$1:x:$2:$2::$3:/usr/sbin/nologin' >>\"\$1/etc/passwd\";" \
        "echo '$1:x:$2:' >>\"\$1/etc/group\";" \
        "echo '$1:*:19000:0:99999:7:::' >>\"\$1/etc/shadow\""
}

# rootfs NAME VARIANT PACKAGES [MMDEBSTRAP-ARGS...]: print the path of a root filesystem
# tarball made by mmdebstrap, building it when the cache has none for these exact arguments.
rootfs() {
    local name=$1 variant=$2 packages=$3 key tar
    shift 3
    key=$(printf '%s\n' "$SUITE" "$MIRROR" "$variant" "$packages" "$@" | sha256sum | cut -c1-12)
    tar=$CACHE/rootfs/$name-$key.tar
    if [ ! -s "$tar" ]; then
        mkdir -p "$CACHE/rootfs"
        log "$name: root filesystem from $MIRROR ($variant: ${packages//,/ })"
        local t0=$SECONDS
        # Its own mount namespace: whatever mmdebstrap mounts in the new root (/proc, /dev in root
        # mode) can never leak into, or outlive on, the host.
        if ! unshare --mount --propagation private \
            mmdebstrap --variant="$variant" --include="$packages" "$@" \
            "$SUITE" "${tar%.tar}.tmp.tar" "$MIRROR" >"$CACHE/rootfs/$name.log" 2>&1; then
            tail -n 20 "$CACHE/rootfs/$name.log" >&2
            rm -f "${tar%.tar}.tmp.tar"
            die "$name: mmdebstrap failed (log: $CACHE/rootfs/$name.log)"
        fi
        mv -f "${tar%.tar}.tmp.tar" "$tar"
        log "$name: $(du -m "$tar" | cut -f1) MB in $((SECONDS - t0)) s"
    fi
    printf '%s\n' "$tar"
}

# import_rootfs NAME TAR: the tarball as localhost/polyglot/NAME:<its key>; prints that name.
import_rootfs() {
    local image key
    key=$(basename "$2" .tar)
    image=$PREFIX/$1:${key##*-}
    if ! img_exists "$image"; then
        log "importing $image"
        img_import "$2" "$image"
    fi
    printf '%s\n' "$image"
}

# The base: base-files, libc6 and netbase unpacked without maintainer scripts (~13 MB), plus what
# those scripts or a package manager would have written: users, name service, /tmp.
base_image() {
    local tar
    tar=$(rootfs bookworm-base extract "$BASE_PACKAGES" \
        --customize-hook='printf "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n" >"$1/etc/passwd"' \
        --customize-hook='printf "root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n" >"$1/etc/group"' \
        --customize-hook='printf "passwd: files\ngroup: files\nhosts: files dns\nservices: files\nprotocols: files\n" >"$1/etc/nsswitch.conf"' \
        --customize-hook='mkdir -p -m 1777 "$1/tmp" && mkdir -p -m 700 "$1/root" && install -d -o 65532 -g 65532 -m 700 "$1/home/nonroot"' \
        --customize-hook='rm -rf "$1"/var/lib/apt "$1"/var/cache/apt "$1"/etc/apt "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*')
    BASE_IMAGE=$(import_rootfs bookworm-base "$tar")
    BASE_TAR=$tar
    # The name other helpers know; the keyed tag says which tarball it came from.
    "$TOOL" tag "$BASE_IMAGE" "$PREFIX/bookworm-base:latest"
}

# --- service images ----------------------------------------------------------------------------

# build_release: the release binaries, as `make stack-build` makes them.
build_release() {
    local svc missing=0
    for svc in "${SERVICES[@]}"; do
        [ -x "$ROOT/build/release/$svc/$svc" ] || missing=1
    done
    [ "$missing" = 0 ] && return 0
    log "building the release binaries (cmake --preset release; --target stack)"
    (cd "$ROOT" && cmake --preset release >/dev/null && cmake --build --preset release --target stack -j2) >&2 ||
        die "building the release binaries failed"
}

# svc_packages BINARY: the Debian packages that own the shared libraries BINARY loads, comma
# separated (libc6 included; mmdebstrap adds their dependencies).
svc_packages() {
    local lib libs pkgs path found
    local -A owner=()
    # ldd: "libpq.so.5 => /lib/x86_64-linux-gnu/libpq.so.5 (0x...)"; the loader has no "=>".
    mapfile -t libs < <(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
    # dpkg knows each file by the path its package ships, /lib/... or /usr/lib/... (merged
    # /usr): ask for every spelling at once (one dpkg -S is a tenth of a second).
    while IFS= read -r found; do
        owner[${found#*: }]=${found%%:*}
    done < <(for lib in "${libs[@]}"; do
        printf '%s\n' "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "/usr$lib"
    done | sort -u | xargs dpkg -S 2>/dev/null | grep -v '^diversion')
    pkgs=()
    for lib in "${libs[@]}"; do
        for path in "$lib" "$(readlink -f "$lib")" "${lib#/usr}" "/usr$lib" ""; do
            [ -n "$path" ] || die "$1: no Debian package ships $lib (a library from outside Debian cannot go into the image)"
            [ -n "${owner[$path]:-}" ] && { pkgs+=("${owner[$path]}"); break; }
        done
    done
    printf '%s\n' "${pkgs[@]}" | sort -u | paste -sd, -
}

build_service() {
    local svc=$1 bin ctx pkgs tar
    bin=$ROOT/build/release/$svc/$svc
    [ -x "$bin" ] || die "$svc: $bin missing"
    pkgs=$(svc_packages "$bin")
    tar=$(rootfs "libs-$svc" extract "$pkgs")
    ctx=$WORK/$svc
    mkdir -p "$ctx/rootfs"
    # Only what the base does not have: every file the base tarball holds is left out.
    tar -tf "$BASE_TAR" | grep -v '/$' >"$WORK/base.files"
    tar -xf "$tar" -C "$ctx/rootfs" --no-wildcards --exclude-from="$WORK/base.files" \
        --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
        --exclude=./usr/share/lintian --exclude=./etc/apt --exclude=./var/lib/apt --exclude=./var/cache/apt
    # Symbols off (a third of the file); the build tree keeps the debuggable binary.
    strip --strip-unneeded -o "$ctx/$svc" "$bin"
    sed -e "s|@SVC@|$svc|g" -e "s|@BASE@|$BASE_IMAGE|g" "$HERE/service/Containerfile.in" >"$ctx/Containerfile"
    log "$svc: building $PREFIX/$svc:dev ($(tr -cd , <<<"$pkgs" | wc -c) packages besides libc6)"
    img_build "$ctx" "$PREFIX/$svc:dev"
    BUILT+=("$PREFIX/$svc:dev")
}

# --- engine images -----------------------------------------------------------------------------

# main_cache: the .local/cache of this checkout, or of the main checkout when this is a git
# worktree (deploy/local fills it once; reusing it saves the downloads).
local_caches() {
    local common
    printf '%s\n' "${POLYGLOT_STATE:-$ROOT/.local}/cache"
    common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    [ -n "$common" ] && printf '%s/.local/cache\n' "$(dirname "$common")"
}

# The Maven repository to resolve into: ours, never a checkout's.
m2() { printf '%s/m2\n' "$CACHE"; }

# engine_context NAME: a fresh build context holding tools/images/NAME/*.
engine_context() {
    local ctx=$WORK/$1
    mkdir -p "$ctx"
    cp -a "$HERE/$1/." "$ctx/"
    mkdir -p "$ctx/empty"
    printf '%s\n' "$ctx"
}

build_engine_from_rootfs() {
    local name=$1 tag=$2 ctx=$3 base=$4
    sed -i "s|@BASE@|$base|g" "$ctx/Containerfile"
    log "$name: building $PREFIX/$name:$tag"
    img_build "$ctx" "$PREFIX/$name:$tag"
    BUILT+=("$PREFIX/$name:$tag")
}

build_postgres() {
    local tar ctx base
    tar=$(rootfs engine-postgres essential postgresql-15,postgresql-client-15 "${TRIM_OPTS[@]}" \
        --essential-hook="$(user_hook postgres 999 /var/lib/postgresql)" \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15' \
        --customize-hook='rm -rf "$1"/usr/lib/postgresql/15/lib/bitcode "$1"/usr/lib/postgresql/15/lib/llvmjit* "$1"/usr/lib/x86_64-linux-gnu/libLLVM-14.so* "$1"/usr/lib/x86_64-linux-gnu/libz3.so*' \
        --customize-hook='install -d -o 999 -g 999 -m 3777 "$1/run/postgresql" && install -d -o 999 -g 999 -m 1777 "$1/var/lib/postgresql/data"')
    base=$(import_rootfs engine-postgres "$tar")
    ctx=$(engine_context postgres)
    build_engine_from_rootfs postgres 15 "$ctx" "$base"
}

build_redis() {
    local tar ctx base
    tar=$(rootfs engine-redis essential redis-server,redis-tools "${TRIM_OPTS[@]}" \
        --essential-hook="$(user_hook redis 999 /var/lib/redis)" \
        --customize-hook='install -d -o 999 -g 999 -m 750 "$1/data"')
    base=$(import_rootfs engine-redis "$tar")
    ctx=$(engine_context redis)
    build_engine_from_rootfs redis 7.0 "$ctx" "$base"
}

build_clickhouse() {
    local tar ctx base
    # tzdata: the server resolves its <timezone> (UTC) in /usr/share/zoneinfo at start.
    tar=$(rootfs engine-clickhouse essential clickhouse-server,clickhouse-client,tzdata "${TRIM_OPTS[@]}" \
        --essential-hook="$(user_hook clickhouse 101 /var/lib/clickhouse)" \
        --customize-hook='rm -rf "$1"/etc/clickhouse-server/config.xml "$1"/etc/clickhouse-server/users.xml' \
        --customize-hook='install -d -o 101 -g 101 -m 750 "$1/var/lib/clickhouse" "$1/var/log/clickhouse-server" && install -d -m 755 "$1/etc/clickhouse-server/users.d" "$1/etc/clickhouse-server/config.d"')
    base=$(import_rootfs engine-clickhouse "$tar")
    ctx=$(engine_context clickhouse)
    build_engine_from_rootfs clickhouse 18.16 "$ctx" "$base"
}

# The JRE both Kafka and OpenSearch run on (one shared layer), as deploy/local uses it.
jre_image() {
    local tar
    # man1: update-alternatives links java.1.gz there, even with the manual pages left out.
    # curl: the manifests' probes and Jobs ask OpenSearch for its health with it.
    tar=$(rootfs engine-jre17 essential openjdk-17-jre-headless,curl "${TRIM_OPTS[@]}" \
        --essential-hook="$(user_hook appuser 1000 /home/appuser)" \
        --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
        --customize-hook='install -d -o 1000 -g 1000 -m 750 "$1/home/appuser"')
    import_rootfs engine-jre17 "$tar"
}

# kafka_libs: the broker's runtime classpath of deploy/local/kafka/pom.xml (the very jar set the
# local stack runs), reused from a checkout's cache when it is complete.
kafka_libs() {
    local sum c dir
    sum=$(md5sum "$ROOT/deploy/local/kafka/pom.xml" | cut -c1-10)
    while read -r c; do
        [ -f "$c/kafka/libs-$sum/.complete" ] && { printf '%s\n' "$c/kafka/libs-$sum"; return 0; }
    done < <(local_caches)
    pom_libs "$ROOT/deploy/local/kafka/pom.xml" kafka-libs "deploy/local/kafka/pom.xml"
}

# kafka_tools_libs: kafka-tools (TopicCommand, AclCommand...) and its runtime dependencies: the
# broker's classpath has no admin tools (deploy/local creates topics with tools/topics).
kafka_tools_libs() {
    pom_libs "$HERE/kafka/tools-pom.xml" kafka-tools "kafka-tools $KAFKA_VERSION"
}

# pom_libs POM NAME WHAT: the runtime dependencies of POM in $CACHE/NAME-<hash of POM>,
# resolved with Maven the first time (saying WHAT), and that folder's path.
pom_libs() {
    local pom=$1 dir
    dir=$CACHE/$2-$(md5sum "$pom" | cut -c1-10)
    if [ ! -f "$dir/.complete" ]; then
        log "kafka: resolving $3 with Maven"
        mvn_copy "$pom" "$dir" -DincludeScope=runtime
    fi
    printf '%s\n' "$dir"
}

# mvn_copy POM DIR [ARGS]: the POM's dependencies into DIR (then marked complete).
mvn_copy() {
    local pom=$1 dir=$2
    shift 2
    command -v mvn >/dev/null 2>&1 || apt_install maven
    rm -rf "$dir.tmp"
    mkdir -p "$CACHE"
    if ! mvn -B -q -f "$pom" -Dmaven.repo.local="$(m2)" dependency:copy-dependencies \
        -DoutputDirectory="$dir.tmp" "$@" >"$dir.log" 2>&1; then
        tail -n 20 "$dir.log" >&2
        die "Maven could not resolve $pom (log: $dir.log)"
    fi
    touch "$dir.tmp/.complete"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
}

build_kafka() {
    local ctx libs tools jar base
    libs=$(kafka_libs)
    tools=$(kafka_tools_libs)
    ctx=$(engine_context kafka)
    mkdir -p "$ctx/libs"
    cp "$libs"/*.jar "$ctx/libs/"
    # The tools' own jars; where they name a jar the broker has in another version, the
    # broker's wins (the broker is what must run exactly as deploy/local runs it).
    for jar in "$tools"/*.jar; do
        jar=$(basename "$jar")
        compgen -G "$ctx/libs/${jar%-[0-9]*.jar}-[0-9]*.jar" >/dev/null || cp "$tools/$jar" "$ctx/libs/"
    done
    cp "$ROOT/deploy/local/kafka/log4j2.xml" "$ctx/config/log4j2.xml"
    base=$(jre_image)
    build_engine_from_rootfs kafka "$KAFKA_VERSION" "$ctx" "$base"
}

# opensearch_home: the jars and compiled launcher of deploy/local/opensearch, reused from a
# checkout's cache when it was built from the same pom and source, built here otherwise.
opensearch_home() {
    local fp c dir jh src=$ROOT/deploy/local/opensearch
    fp=$(cat "$src/pom.xml" "$src/EmbeddedOpenSearch.java" | sha256sum | cut -c1-16)
    while read -r c; do
        dir=$c/opensearch-$OPENSEARCH_VERSION
        if [ -f "$dir/launcher.jar" ] && [ "$(cat "$dir/.installed" 2>/dev/null)" = "$fp" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(local_caches)
    dir=$CACHE/opensearch-$OPENSEARCH_VERSION-$fp
    if [ ! -f "$dir/launcher.jar" ]; then
        jh=/usr/lib/jvm/java-17-openjdk-amd64
        [ -x "$jh/bin/javac" ] || apt_install openjdk-17-jdk-headless
        rm -rf "$dir" && mkdir -p "$dir/classes"
        JAVA_HOME=$jh mvn_copy "$src/pom.xml" "$dir/lib"
        log "opensearch: compiling the launcher"
        "$jh/bin/javac" --release 17 -nowarn -cp "$dir/lib/*" -d "$dir/classes" "$src/EmbeddedOpenSearch.java" >&2 ||
            die "opensearch: compiling EmbeddedOpenSearch.java failed"
        "$jh/bin/jar" cf "$dir/launcher.jar.tmp" -C "$dir/classes" . && mv "$dir/launcher.jar.tmp" "$dir/launcher.jar"
        rm -rf "$dir/classes"
    fi
    printf '%s\n' "$dir"
}

build_opensearch() {
    local ctx home base
    home=$(opensearch_home)
    ctx=$(engine_context opensearch)
    mkdir -p "$ctx/lib"
    cp "$home"/lib/*.jar "$ctx/lib/"
    cp "$home/launcher.jar" "$ctx/"
    base=$(jre_image)
    build_engine_from_rootfs opensearch "$OPENSEARCH_VERSION" "$ctx" "$base"
}

# ferretdb_bin: the binary deploy/local builds from deploy/local/ferretdb (static, CGO off).
ferretdb_bin() {
    local c src=$ROOT/deploy/local/ferretdb f ok sum out
    while read -r c; do
        ok=1
        for f in main.go go.mod go.sum; do
            [ "$c/bin/ferretdb-wrapper" -nt "$src/$f" ] || ok=0
        done
        [ -x "$c/bin/ferretdb-wrapper" ] && [ "$ok" = 1 ] && { printf '%s\n' "$c/bin/ferretdb-wrapper"; return 0; }
    done < <(local_caches)
    sum=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
    out=$CACHE/ferretdb-$sum
    if [ ! -x "$out" ]; then
        command -v go >/dev/null 2>&1 || die "ferretdb: Go 1.24 or newer is needed to build deploy/local/ferretdb"
        log "ferretdb: building deploy/local/ferretdb (cold: ~3 min)"
        (cd "$src" && flock /tmp/polyglot-heavy.lock env GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" \
            GOCACHE="$CACHE/go/cache" GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
            CGO_ENABLED=0 go build -trimpath -tags ferretdb_no_postgresql -o "$out.tmp" .) >&2 ||
            die "ferretdb: go build failed"
        mv -f "$out.tmp" "$out"
    fi
    printf '%s\n' "$out"
}

build_ferretdb() {
    local ctx
    local bin
    bin=$(ferretdb_bin)
    ctx=$(engine_context ferretdb)
    strip --strip-unneeded -o "$ctx/ferretdb" "$bin"
    build_engine_from_rootfs ferretdb 1.24.2 "$ctx" "$BASE_IMAGE"
}

build_pause() {
    local ctx
    ctx=$(engine_context pause)
    command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev
    gcc -static -O2 -Wall -Wextra -Werror -s -o "$ctx/pause" "$HERE/pause/pause.c" ||
        die "pause: gcc -static failed"
    build_engine_from_rootfs pause 3.10 "$ctx" scratch
}

# --- main --------------------------------------------------------------------------------------

main() {
    local want=() save="" name t0=$SECONDS
    while [ $# -gt 0 ]; do
        case $1 in
        --services) want+=("${SERVICES[@]}") ;;
        --engines) want+=("${ENGINES[@]}") ;;
        all) want+=("${SERVICES[@]}" "${ENGINES[@]}") ;;
        --save) save=${2:?--save needs a directory}; shift ;;
        --save=*) save=${1#--save=} ;;
        -h | --help) usage 0 ;;
        -*) usage 2 >&2 ;;
        *) want+=("$1") ;;
        esac
        shift
    done
    [ ${#want[@]} -gt 0 ] || want=("${SERVICES[@]}" "${ENGINES[@]}")
    [ "$(id -u)" = 0 ] || die "run as root (mmdebstrap makes root filesystems as root, in their own mount namespace)"

    pick_tool
    mkdir -p "$CACHE"
    WORK=$(mktemp -d /tmp/polyglot-images.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    BUILT=()
    base_image
    for name in "${want[@]}"; do
        case " ${SERVICES[*]} " in *" $name "*)
            build_release
            break
            ;;
        esac
    done
    for name in "${want[@]}"; do
        case $name in
        *-svc) build_service "$name" ;;
        postgres | redis | clickhouse | kafka | opensearch | ferretdb | pause) "build_$name" ;;
        *) die "unknown image '$name' (services: ${SERVICES[*]}; engines: ${ENGINES[*]})" ;;
        esac
    done
    if [ -n "$save" ]; then
        mkdir -p "$save"
        for name in "${BUILT[@]}"; do
            local file=${name#"$PREFIX"/}
            file=$save/${file%%:*}.tar
            log "saving $name to $file"
            img_save "$name" "$file"
        done
    fi
    printf '\n%-44s %10s\n' IMAGE 'SIZE (MB)'
    for name in "${BUILT[@]}"; do
        printf '%-44s %10s\n' "$name" "$(img_size "$name" | awk '{ if ($1 ~ /^[0-9]+$/) printf "%.1f", $1 / 1e6; else print }')"
    done
    log "built ${#BUILT[@]} images in $((SECONDS - t0)) s"
}

main "$@"

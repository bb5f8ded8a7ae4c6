# Shared helpers for the local engine scripts. Sourced, never run.
#
# Layout of the one state folder (git-ignored, default .local/ in the checkout):
#   $STATE/data/<engine>/   engine data           (wiped by `make reset`)
#   $STATE/conf/<engine>/   generated config       (wiped by `make reset`)
#   $STATE/logs/<name>.log  engine and service logs (wiped by `make reset`)
#   $STATE/run/<name>.pid   pid files              (wiped by `make reset`)
#   $STATE/env/<svc>.env    per-service connection settings (wiped by `make reset`)
#   $STATE/cache/           downloads: Maven jars, Go builds (kept by `make reset`, so a reset
#                           stack comes back without the network)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL_DIR=$ROOT/deploy/local
STATE=${POLYGLOT_STATE:-$ROOT/.local}
DATA=$STATE/data
CONF=$STATE/conf
LOGS=$STATE/logs
RUN=$STATE/run
ENVDIR=$STATE/env
CACHE=$STATE/cache
# PostgreSQL refuses to run as root: it runs as this system user.
ENGINE_USER=${POLYGLOT_ENGINE_USER:-polyglot}

# shellcheck source=ports.env
. "$LOCAL_DIR/ports.env"

mkdir -p "$DATA" "$CONF" "$LOGS" "$RUN" "$ENVDIR" "$CACHE"

if [ -t 1 ]; then
    c_red=$'\e[31m' c_green=$'\e[32m' c_yellow=$'\e[33m' c_dim=$'\e[2m' c_off=$'\e[0m'
else
    c_red='' c_green='' c_yellow='' c_dim='' c_off=''
fi

log() { printf '%s==>%s %s\n' "$c_dim" "$c_off" "$*"; }
warn() { printf '%swarning:%s %s\n' "$c_yellow" "$c_off" "$*" >&2; }
die() {
    printf '%serror:%s %s\n' "$c_red" "$c_off" "$*" >&2
    exit 1
}

# tail_log FILE: the last lines of a log, indented, for failure messages.
tail_log() {
    if [ -s "$1" ]; then
        printf '    last lines of %s:\n' "$1" >&2
        tail -n "${2:-25}" "$1" | sed 's/^/    | /' >&2
    else
        printf '    (%s is empty or missing)\n' "$1" >&2
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: install the Debian packages that are missing, once.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
        as_root apt-get update -q >"$LOGS/apt.log" 2>&1 || { tail_log "$LOGS/apt.log"; die "apt-get update failed"; }
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$LOGS/apt.log" 2>&1 ||
        { tail_log "$LOGS/apt.log"; die "apt-get install ${missing[*]} failed"; }
}

# ensure_engine_user: the unprivileged account for engines that refuse root.
ensure_engine_user() {
    id -u "$ENGINE_USER" >/dev/null 2>&1 && return 0
    as_root useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        "$ENGINE_USER" || die "cannot create system user '$ENGINE_USER'"
}

# owned_dir NAME: a data directory for an engine that runs as $ENGINE_USER. It lives in
# $DATA/NAME when $ENGINE_USER can reach it; when the checkout sits under a directory that user
# cannot traverse (a clone in /root, say), the data goes to /var/tmp and $DATA/NAME is a symlink
# to it, so `make reset` still finds and wipes it.
owned_dir() {
    local name=$1 dir=$DATA/$1
    ensure_engine_user
    if [ -L "$dir" ]; then
        printf '%s\n' "$(readlink -f "$dir")"
        return 0
    fi
    mkdir -p "$dir"
    chown "$ENGINE_USER:" "$dir"
    if setpriv --reuid="$ENGINE_USER" --regid="$ENGINE_USER" --init-groups test -w "$dir" 2>/dev/null; then
        printf '%s\n' "$dir"
        return 0
    fi
    local alt
    alt=/var/tmp/polyglot-$(printf '%s' "$STATE" | md5sum | cut -c1-12)/$name
    # No symlink yet, so this state folder is new: what is there belonged to an earlier
    # checkout at the same path (deleted without `make reset`), with other passwords.
    if [ -e "$alt" ]; then
        log "$name: removing stale data of an earlier checkout at this path ($alt)" >&2
        rm -rf "$alt"
    fi
    mkdir -p "$alt"
    chown "$ENGINE_USER:" "$alt" "$(dirname "$alt")"
    rmdir "$dir" 2>/dev/null || rm -rf "$dir"
    ln -s "$alt" "$dir"
    printf '%s\n' "$alt"
}

pidfile() { printf '%s/%s.pid\n' "$RUN" "$1"; }

# running NAME: true when NAME's pid file names a live process.
running() {
    local pf pid
    pf=$(pidfile "$1")
    [ -f "$pf" ] || return 1
    pid=$(cat "$pf" 2>/dev/null)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A killed process stays a zombie until its parent reaps it, and kill -0 still finds it.
    local st
    st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ "$st" != Z ]
}

pid_of() { cat "$(pidfile "$1")" 2>/dev/null || true; }

# spawn NAME LOGFILE CMD...: start CMD in its own session (so `stop` can end its whole process
# group), detached from the terminal, output appended to LOGFILE, pid recorded.
spawn() {
    local name=$1 logf=$2
    shift 2
    printf '\n--- %s starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$logf"
    # The daemon keeps none of the caller's other descriptors: an engine that a test restarts
    # must not hold the test runner's lock file or pipes open for as long as it runs.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-"; fi
        done
        exec setsid "$@" </dev/null >>"$logf" 2>&1
    ) &
    printf '%s\n' "$!" >"$(pidfile "$name")"
}

# spawn_as_engine_user NAME LOGFILE CMD...: spawn, dropping root for engines that refuse it.
spawn_as_engine_user() {
    local name=$1 logf=$2
    shift 2
    ensure_engine_user
    touch "$logf"
    chown "$ENGINE_USER:" "$logf"
    spawn "$name" "$logf" setpriv --reuid="$ENGINE_USER" --regid="$ENGINE_USER" --init-groups \
        --reset-env env PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 "$@"
}

# stop_pid NAME [SECONDS] [SIGNAL]: signal the process group (TERM by default), wait, then
# KILL. Quiet when not running.
stop_pid() {
    local name=$1 secs=${2:-30} sig=${3:-TERM} pid i
    pid=$(pid_of "$name")
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$(pidfile "$name")"
        return 0
    fi
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name did not stop within ${secs}s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    rm -f "$(pidfile "$name")"
}

# wait_ready NAME SECONDS LOGFILE CHECK...: poll CHECK until it succeeds. Fails early when the
# process died, and on failure names the engine, the reason and the last lines of its log.
wait_ready() {
    local name=$1 secs=$2 logf=$3 start
    shift 3
    start=$(date +%s)
    while :; do
        if "$@" >/dev/null 2>&1; then
            log "$name is ready ($(($(date +%s) - start))s)"
            return 0
        fi
        if ! running "$name"; then
            printf '%serror:%s %s exited during start-up\n' "$c_red" "$c_off" "$name" >&2
            tail_log "$logf"
            return 1
        fi
        if [ $(($(date +%s) - start)) -ge "$secs" ]; then
            printf '%serror:%s %s not ready after %ss (check: %s)\n' "$c_red" "$c_off" \
                "$name" "$secs" "$*" >&2
            tail_log "$logf"
            return 1
        fi
        sleep 0.5
    done
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_port_free NAME PORT: refuse to start over someone else's listener.
require_port_free() {
    port_free "$2" && return 0
    die "$1: port $2 on 127.0.0.1 is already in use by another program (change it in deploy/local/ports.env or the environment)"
}

# write_env SVC KEY=VALUE...: the per-service env file, readable by root only.
write_env() {
    local svc=$1 f
    shift
    f=$ENVDIR/$svc.env
    umask 077
    {
        printf '# connection settings of %s, written by deploy/local; no other service reads this\n' "$svc"
        printf '%s\n' "$@"
    } >"$f.tmp"
    mv "$f.tmp" "$f"
}

# secret NAME: a random password, created once per state folder and kept in $CONF/secrets/.
secret() {
    local f=$CONF/secrets/$1
    if [ ! -s "$f" ]; then
        mkdir -p "$CONF/secrets"
        chmod 700 "$CONF/secrets"
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f")
    fi
    cat "$f"
}

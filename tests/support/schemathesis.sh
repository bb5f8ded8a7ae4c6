#!/usr/bin/env bash
# The property-based API test every service runs the same way: schemathesis generates requests
# from the service's OpenAPI document, valid and invalid, sends them to the running service and
# checks the answers. An integration test: it needs the real service (`make up`) and fails,
# saying so, when nothing answers. Each service's tests/<svc>/schemathesis/run_schemathesis.sh
# calls this with what differs between services.
#
# Usage: schemathesis.sh --service NAME --spec FILE --port PORT --depends WHAT --checks LIST
#                        [--hooks FILE] [BASE_URL]
#   --service       the service's name, as in deploy/local's env files (user-svc)
#   --spec          its OpenAPI document in the tree
#   --port          the port used when .local/env/<service>.env has no HTTP_PORT
#   --depends       what /readyz depends on, for the message when it is not ready
#   --checks        schemathesis' --checks value
#   --hooks         optional: a Python file of schemathesis hooks (and custom checks, which
#                   --checks may then name), loaded through SCHEMATHESIS_HOOKS
#   BASE_URL        defaults to http://127.0.0.1:<HTTP_PORT of .local/env/<service>.env>
# Environment: POLYGLOT_STATE (deploy/local's state folder, default <repo>/.local),
#   SCHEMATHESIS_MAX_EXAMPLES (default 25 per operation), SCHEMATHESIS_TIMEOUT (seconds the
#   whole run may take before it is stopped and fails, default 480), SCHEMATHESIS_SEED (default:
#   a fixed seed, so a failure can be replayed).
# schemathesis is installed from PyPI, at the version schemathesis-requirements.txt (beside this
# script) pins, into a venv under the state folder's cache (.local/cache/venv), once, and shared
# by every service.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
requirements=$root/tests/support/schemathesis-requirements.txt
svc="" spec="" port="" depends="" checks="" hooks=""
while [ $# -gt 0 ]; do
    case $1 in
    --service) svc=$2; shift 2 ;;
    --spec) spec=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --depends) depends=$2; shift 2 ;;
    --checks) checks=$2; shift 2 ;;
    --hooks) hooks=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "schemathesis.sh: unknown option '$1'" >&2; exit 2 ;;
    *) break ;;
    esac
done
for v in svc spec port depends checks; do
    [ -n "${!v}" ] || { echo "schemathesis.sh: --${v/svc/service} is required" >&2; exit 2; }
done

if [ -n "$hooks" ]; then
    [ -r "$hooks" ] || { echo "schemathesis.sh: cannot read the hooks file '$hooks'" >&2; exit 2; }
    # An absolute path: schemathesis runs from the report folder below.
    SCHEMATHESIS_HOOKS=$(cd "$(dirname "$hooks")" && pwd)/$(basename "$hooks")
    export SCHEMATHESIS_HOOKS
else
    # A service's test runs with the hooks its script names, not with ones left in the caller's
    # environment.
    unset SCHEMATHESIS_HOOKS
fi

state=${POLYGLOT_STATE:-$root/.local}
venv=$state/cache/venv
envfile=$state/env/$svc.env

fail() {
    echo "$svc schemathesis: $*" >&2
    exit 1
}

if [ -r "$envfile" ]; then
    p=$(sed -n 's/^HTTP_PORT=//p' "$envfile" | tail -n 1)
    [ -n "$p" ] && port=$p
fi
url=${1:-http://127.0.0.1:$port}

# The service first: a clear message beats a page of connection errors from schemathesis.
if ! curl -fsS -m 5 -o /dev/null "$url/healthz" 2>/dev/null; then
    fail "$svc does not answer on $url/healthz: start it with 'make up' (or deploy/local/stack.sh up)"
fi
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$url/readyz" || true)
[ "$code" = 200 ] || fail "$svc on $url is not ready (/readyz answered $code): is $depends up?"

# The running binary embeds the document it serves; testing an older binary against a newer
# file would report differences that a rebuild removes.
if ! curl -fsS -m 5 "$url/openapi.yaml" | cmp -s - "$spec"; then
    echo "$svc schemathesis: warning: the running $svc serves a different openapi.yaml" \
         "than $spec: rebuild and restart it ('make up') to test the current document" >&2
fi

want=$(sed -n 's/^schemathesis==//p' "$requirements")
[ -n "$want" ] || fail "$requirements pins no schemathesis version"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $want"; then
    echo "$svc schemathesis: installing schemathesis $want into $venv"
    python3 -m venv "$venv" || fail "cannot create a Python venv in $venv (apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" ||
        fail "cannot install schemathesis $want from PyPI into $venv"
fi

# schemathesis keeps a cache (.schemathesis/) and reports in its working directory: keep both
# in the state folder, out of the source tree.
report=$state/cache/schemathesis-$svc
mkdir -p "$report"
cd "$report"
echo "$svc schemathesis: $url against $spec (schemathesis $want${hooks:+, hooks $hooks})"
# Each operation is bounded by --max-examples and the whole run by timeout(1): schemathesis'
# own --max-time is a budget it keeps cycling until it is spent, not a cap, so it would make
# every run last that long.
exec timeout --kill-after=10 "${SCHEMATHESIS_TIMEOUT:-480}" "$venv/bin/schemathesis" run "$spec" \
    --url "$url" \
    --checks "$checks" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    --seed "${SCHEMATHESIS_SEED:-20261124}" \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --report junit --report-dir "$report/report" \
    --no-color

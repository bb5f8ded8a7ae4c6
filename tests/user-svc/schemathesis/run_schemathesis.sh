#!/usr/bin/env bash
# Property-based API test of user-svc (issue 4): schemathesis generates requests from
# user-svc/openapi.yaml, valid and invalid, sends them to the running service and checks that
# no answer is a 5xx and that every answer (status, content type, headers, body) conforms to
# the document. An integration test: it needs the real user-svc (`make up`) and fails, saying
# so, when nothing answers.
#
# Usage: run_schemathesis.sh [BASE_URL]
#   BASE_URL defaults to http://127.0.0.1:<HTTP_PORT of .local/env/user-svc.env, else 8081>.
# Environment: POLYGLOT_STATE (deploy/local's state folder, default <repo>/.local),
#   SCHEMATHESIS_MAX_EXAMPLES (default 25 per operation), SCHEMATHESIS_TIMEOUT (seconds the
#   whole run may take before it is stopped and fails, default 480), SCHEMATHESIS_SEED (default:
#   a fixed seed, so a failure can be replayed).
# schemathesis is installed from PyPI, at the version requirements.txt pins, into a venv under
# the state folder's cache (.local/cache/venv), once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
state=${POLYGLOT_STATE:-$root/.local}
venv=$state/cache/venv
spec=$root/user-svc/openapi.yaml
envfile=$state/env/user-svc.env

fail() {
    echo "user-svc schemathesis: $*" >&2
    exit 1
}

port=8081
if [ -r "$envfile" ]; then
    p=$(sed -n 's/^HTTP_PORT=//p' "$envfile" | tail -n 1)
    [ -n "$p" ] && port=$p
fi
url=${1:-http://127.0.0.1:$port}

# The service first: a clear message beats a page of connection errors from schemathesis.
if ! curl -fsS -m 5 -o /dev/null "$url/healthz" 2>/dev/null; then
    fail "user-svc does not answer on $url/healthz: start it with 'make up' (or deploy/local/stack.sh up)"
fi
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$url/readyz" || true)
[ "$code" = 200 ] || fail "user-svc on $url is not ready (/readyz answered $code): is PostgreSQL up?"

# The running binary embeds the document it serves; testing an older binary against a newer
# file would report differences that a rebuild removes.
if ! curl -fsS -m 5 "$url/openapi.yaml" | cmp -s - "$spec"; then
    echo "user-svc schemathesis: warning: the running user-svc serves a different openapi.yaml" \
         "than $spec: rebuild and restart it ('make up') to test the current document" >&2
fi

want=$(sed -n 's/^schemathesis==//p' "$here/requirements.txt")
[ -n "$want" ] || fail "requirements.txt pins no schemathesis version"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $want"; then
    echo "user-svc schemathesis: installing schemathesis $want into $venv"
    python3 -m venv "$venv" || fail "cannot create a Python venv in $venv (apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" ||
        fail "cannot install schemathesis $want from PyPI into $venv"
fi

# schemathesis keeps a cache (.schemathesis/) and reports in its working directory: keep both
# in the state folder, out of the source tree.
report=$state/cache/schemathesis-user-svc
mkdir -p "$report"
cd "$report"
echo "user-svc schemathesis: $url against $spec (schemathesis $want)"
# Checks: no 5xx, and every answer conforms to the document: its status is documented for the
# operation, its content type and headers are the documented ones, its body validates against
# the documented schema. Following the document's links (stateful phase), a deleted user must
# be gone and a created one must be there. Left out: positive_data_acceptance and
# negative_data_rejection, since the API checks more than a schema can say (an email's rules,
# If-Match against the current version) and trims names and emails before their length counts.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
checks+=,use_after_free,ensure_resource_availability
# Each operation is bounded by --max-examples and the whole run by
# timeout(1): schemathesis' own --max-time is a budget it keeps cycling until it is spent, not a
# cap, so it would make every run last that long.
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

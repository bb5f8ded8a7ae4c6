#!/usr/bin/env bash
# Property-based API test of message-svc (issue 5): schemathesis generates requests from
# message-svc/openapi.yaml, valid and invalid (operators and dotted names among them), sends
# them to the running service and checks that no answer is a 5xx and that every answer (status,
# content type, headers, body) conforms to the document. An integration test: it needs the real
# message-svc (`make up`, port 8085) and fails, saying so, when nothing answers. The common part
# is tests/support/schemathesis.sh, shared with user-svc.
#
# message-svc knows only the users it heard of on `user-events`, so random ids never get past
# 404 `user-not-known`. So this registers a few users through user-svc's API first, waits until
# message-svc knows them (their `user.registered` went through Kafka), and hooks.py puts their
# ids into part of the generated requests; the users are deleted again at the end.
#
# Usage: run_schemathesis.sh [BASE_URL]
#   BASE_URL defaults to http://127.0.0.1:<HTTP_PORT of .local/env/message-svc.env, else 8085>.
# Environment: see tests/support/schemathesis.sh (POLYGLOT_STATE, SCHEMATHESIS_MAX_EXAMPLES,
#   SCHEMATHESIS_TIMEOUT, SCHEMATHESIS_SEED), and
#   USER_SVC_URL        user-svc, default http://127.0.0.1:<HTTP_PORT of .local/env/user-svc.env,
#                       else 8081>
#   KNOWN_USERS_WAIT    seconds message-svc may take to learn the users, default 60
#   KEEP_KNOWN_USERS    1: leave the registered users in place, to look at them after a failure
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
state=${POLYGLOT_STATE:-$root/.local}

fail() {
    echo "message-svc schemathesis: $*" >&2
    exit 1
}

# The port deploy/local gave a service, else its default.
port_of() {
    local p
    p=$(sed -n 's/^HTTP_PORT=//p' "$state/env/$1.env" 2>/dev/null | tail -n 1)
    echo "${p:-$2}"
}

msg_url=${1:-http://127.0.0.1:$(port_of message-svc 8085)}
user_url=${USER_SVC_URL:-http://127.0.0.1:$(port_of user-svc 8081)}
wait_s=${KNOWN_USERS_WAIT:-60}

command -v jq >/dev/null || fail "jq is missing (deploy/local/deps.sh installs it)"
curl -fsS -m 5 -o /dev/null "$msg_url/healthz" 2>/dev/null ||
    fail "message-svc does not answer on $msg_url/healthz: start it with 'make up'"
curl -fsS -m 5 -o /dev/null "$user_url/healthz" 2>/dev/null ||
    fail "user-svc does not answer on $user_url/healthz: this test registers its users there;" \
         "start it with 'make up'"

users=()
forget_users() {
    [ "${KEEP_KNOWN_USERS:-0}" = 1 ] && return
    local id
    for id in "${users[@]}"; do
        curl -sS -m 5 -o /dev/null -X DELETE "$user_url/v1/users/$id" ||
            echo "message-svc schemathesis: warning: cannot delete user '$id' from user-svc" >&2
    done
}
trap forget_users EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Unique emails: an email registered by an earlier run (kept, or not deleted) would be 409.
run=$(date +%s)-$$
for i in 1 2 3; do
    email="schemathesis-$run-$i@example.com"
    req=$(jq -nc --arg email "$email" --arg name "Schemathesis User $i" \
        '{email: $email, name: $name}')
    answer=$(curl -sS -m 10 -w '\n%{http_code}' -H 'Content-Type: application/json' \
        --data "$req" "$user_url/v1/users") ||
        fail "cannot register '$email' with user-svc on $user_url"
    code=${answer##*$'\n'}
    body=${answer%$'\n'*}
    [ "$code" = 201 ] || fail "user-svc answered $code to registering '$email': $body"
    id=$(jq -er .id <<<"$body") || fail "user-svc registered '$email' without an id: $body"
    users+=("$id")
done
echo "message-svc schemathesis: registered ${#users[@]} users with user-svc: ${users[*]}"

# Each user is known once its inbox answers 200 (the welcome message is in it); until then it
# is 404 user-not-known. Other answers (a restart's refused connection, a 503) are waited out
# too, and reported if they are what the wait ends on.
pending=("${users[@]}")
start=$SECONDS
deadline=$((start + wait_s))
polls=0
last=""
while :; do
    left=()
    for id in "${pending[@]}"; do
        code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$msg_url/v1/users/$id/messages" \
            2>/dev/null || true)
        [ "$code" = 200 ] || { left+=("$id"); last=$code; }
    done
    pending=("${left[@]}")
    [ ${#pending[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
        fail "message-svc still does not know ${#pending[@]} of the ${#users[@]} users registered" \
             "$wait_s s ago (GET /v1/users/{id}/messages answered $last for ${pending[*]}):" \
             "does user-svc publish user.registered to Kafka (topic user-events) and does" \
             "message-svc consume it? see .local/logs/user-svc.log and .local/logs/message-svc.log"
    fi
    if [ $((polls % 10)) = 0 ]; then
        echo "message-svc schemathesis: waiting for message-svc to learn" \
             "${#pending[@]} of ${#users[@]} users through Kafka" \
             "($((SECONDS - start)) s of ${wait_s} s)"
    fi
    polls=$((polls + 1))
    sleep 0.5
done
echo "message-svc schemathesis: message-svc knows the ${#users[@]} users"
MESSAGE_SVC_KNOWN_USERS=$(IFS=,; echo "${users[*]}")
export MESSAGE_SVC_KNOWN_USERS

# Checks: no 5xx, and every answer conforms to the document (status, content type, headers,
# body schema); valid data is accepted (positive_data_acceptance: not refused with a 4xx other
# than 404 and 409, as for a user not known or an Idempotency-Key reused; hooks.py waives the
# 400 for a drawn cursor, which the API rightly refuses since only it hands cursors out); a
# valid request between the known users is accepted outright and listing and sending both
# succeed at least once (known_users_accepted, in hooks.py); following the links of a sent
# message, a deleted one must be gone and a sent one must be there. Left out:
# negative_data_rejection, since the API takes any case in UUIDs, which a schema's format does
# not say.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance,positive_data_acceptance
checks+=,known_users_accepted,use_after_free,ensure_resource_availability

# Not exec: the trap above deletes the users once schemathesis is done.
"$root/tests/support/schemathesis.sh" --service message-svc \
    --spec "$root/message-svc/openapi.yaml" --port 8085 \
    --depends "MongoDB (FerretDB)" --checks "$checks" --hooks "$here/hooks.py" -- "$@"

#!/usr/bin/env bash
# Property-based API test of analytics-svc (issue 13): schemathesis generates requests from
# analytics-svc/openapi.yaml, valid and invalid (ranges of every kind, out-of-bounds limits,
# types, subjects and cursors that break their patterns), sends them to the running service and
# checks that no answer is a 5xx and that every answer (status, content type, headers, body)
# conforms to the document. An integration test: it needs the real analytics-svc (`make up`,
# port 8084) and fails, saying so, when nothing answers. The common part (finding the service,
# installing the pinned schemathesis, running it) is tests/support/schemathesis.sh, shared
# with the other services.
#
# Usage: run_schemathesis.sh [BASE_URL]
#   BASE_URL defaults to http://127.0.0.1:<HTTP_PORT of .local/env/analytics-svc.env, else 8084>.
# Environment: see tests/support/schemathesis.sh (POLYGLOT_STATE, SCHEMATHESIS_MAX_EXAMPLES,
#   SCHEMATHESIS_TIMEOUT, SCHEMATHESIS_SEED).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

# Checks: no 5xx, and every answer conforms to the document: its status is documented for the
# operation, its content type and headers are the documented ones, its body validates against
# the documented schema (a dense revenue series, conversion and shares null or in range, a
# freshness verdict per topic). Left out: negative_data_rejection, since a schema's
# `format: date-time` cannot say that both bounds are whole minutes' worth of a range or that a
# cursor must be one this API handed out, and positive_data_acceptance, since valid requests
# are rightly refused for what only their combination decides (`to` not after `from`, a range
# over 366 days, a series of more than 1500 points, a well-formed cursor not made here).
# not_a_server_error also counts the documented 503s as failures: with the stack up (ClickHouse
# is checked first through /readyz) there must be none.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance

exec "$root/tests/support/schemathesis.sh" --service analytics-svc \
    --spec "$root/analytics-svc/openapi.yaml" --port 8084 --depends "ClickHouse" \
    --checks "$checks" -- "$@"

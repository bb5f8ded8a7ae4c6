#!/usr/bin/env bash
# Property-based API test of user-svc (issue 4): schemathesis generates requests from
# user-svc/openapi.yaml, valid and invalid, sends them to the running service and checks that
# no answer is a 5xx and that every answer (status, content type, headers, body) conforms to
# the document. An integration test: it needs the real user-svc (`make up`) and fails, saying
# so, when nothing answers. The common part (finding the service, installing the pinned
# schemathesis, running it) is tests/support/schemathesis.sh, shared with the other services.
#
# Usage: run_schemathesis.sh [BASE_URL]
#   BASE_URL defaults to http://127.0.0.1:<HTTP_PORT of .local/env/user-svc.env, else 8081>.
# Environment: see tests/support/schemathesis.sh (POLYGLOT_STATE, SCHEMATHESIS_MAX_EXAMPLES,
#   SCHEMATHESIS_TIMEOUT, SCHEMATHESIS_SEED).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

# Checks: no 5xx, and every answer conforms to the document: its status is documented for the
# operation, its content type and headers are the documented ones, its body validates against
# the documented schema. Following the document's links (stateful phase), a deleted user must
# be gone and a created one must be there. Left out: positive_data_acceptance and
# negative_data_rejection, since the API checks more than a schema can say (an email's rules,
# If-Match against the current version) and trims names and emails before their length counts.
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
checks+=,use_after_free,ensure_resource_availability

exec "$root/tests/support/schemathesis.sh" --service user-svc --spec "$root/user-svc/openapi.yaml" \
    --port 8081 --depends PostgreSQL --checks "$checks" \
    -- "$@"

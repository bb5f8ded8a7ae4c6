#!/usr/bin/env bash
# Property-based API test of product-svc (issue 11): schemathesis generates requests from
# product-svc/openapi.yaml, valid and invalid (DSL-looking text among them), sends them to the
# running service and checks that no answer is a 5xx and that every answer (status, content
# type, headers, body) conforms to the document. An integration test: it needs the real
# product-svc (`make up`, port 8082) and fails, saying so, when nothing answers. The common part
# (finding the service, installing the pinned schemathesis, running it) is
# tests/support/schemathesis.sh, shared with the other services.
#
# hooks.py teaches schemathesis the import's body (application/x-ndjson: one generated product
# per line).
#
# Usage: run_schemathesis.sh [BASE_URL]
#   BASE_URL defaults to http://127.0.0.1:<HTTP_PORT of .local/env/product-svc.env, else 8082>.
# Environment: see tests/support/schemathesis.sh (POLYGLOT_STATE, SCHEMATHESIS_MAX_EXAMPLES,
#   SCHEMATHESIS_TIMEOUT, SCHEMATHESIS_SEED).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

# Checks: no 5xx, and every answer conforms to the document: its status is documented for the
# operation, its content type and headers are the documented ones, its body validates against
# the documented schema. Following the document's links (stateful phase), a deleted product
# must be gone and a created product or reservation must be there. Left out:
# negative_data_rejection, since the API takes any case in UUIDs and counts q, category, tag
# and prefix in bytes (a schema's format and lengths cannot say either), and
# positive_data_acceptance, since valid requests are rightly refused for what only the data
# decides (If-Match against the current version, a SKU taken, stock short, a cursor this API
# did not hand out, ids given twice in any case).
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
checks+=,use_after_free,ensure_resource_availability

exec "$root/tests/support/schemathesis.sh" --service product-svc \
    --spec "$root/product-svc/openapi.yaml" --port 8082 --depends "OpenSearch" \
    --checks "$checks" --hooks "$here/hooks.py" -- "$@"

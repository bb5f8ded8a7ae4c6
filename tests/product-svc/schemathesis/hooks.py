"""schemathesis hooks for product-svc's property-based test (run_schemathesis.sh).

POST /v1/products:import takes NDJSON (`application/x-ndjson`), which schemathesis does not
serialise by itself. openapi.yaml describes that body as an array of `ProductCreate` objects,
one per line; this serialiser writes each generated item as one line of compact JSON, so the
import is exercised like every other operation. A generated body that is not a list (negative
cases) is sent as one line of its JSON, which the service must refuse with a 4xx.
"""

import json

import schemathesis


def _line(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, list):
        text = "".join(_line(item) + "\n" for item in value)
    else:
        text = _line(value) + "\n"
    return text.encode("utf-8")

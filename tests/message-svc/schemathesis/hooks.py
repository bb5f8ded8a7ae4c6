"""schemathesis hooks for message-svc's property-based test (run_schemathesis.sh).

message-svc knows only the users it heard of on `user-events`, so a request naming a random UUID
is 404 `user-not-known` and never reaches the inbox or the sending code. run_schemathesis.sh
registers a few users through user-svc, waits until message-svc knows them and passes their ids
in MESSAGE_SVC_KNOWN_USERS (comma-separated); these hooks put them into generated requests.

Only part of the ids are replaced, and only ids that are UUIDs: the rest keep what schemathesis
drew, so unknown users (404) and malformed ids (400) are still sent. The choice is a hash of the
request, not a random draw, so a run is replayed exactly from its seed, and it applies in the
coverage, fuzzing and stateful phases alike (the examples phase sends the document's examples
unchanged: unknown users).
"""

import json
import os
import re
import zlib

import schemathesis

_KNOWN = tuple(u.strip().lower() for u in os.environ.get("MESSAGE_SVC_KNOWN_USERS", "").split(",")
               if u.strip())
if not _KNOWN:
    raise RuntimeError("MESSAGE_SVC_KNOWN_USERS is empty: run the test through run_schemathesis.sh")

_UUID = re.compile(r"^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")
_LIST = ("GET", "/v1/users/{id}/messages")
_SEND = ("POST", "/v1/messages")
# One id in this many keeps its drawn value: with two ids in a message, about 4 sends in 9 name
# two known users and the rest are split between an unknown sender and an unknown recipient.
_KEEP_ONE_IN = 3


def _target(case):
    return (case.method.upper(), case.operation.path)


def _request_key(case):
    # A stable digest of what was drawn: Python's hash() of a str changes with every process.
    drawn = {
        "path": case.path_parameters,
        "query": case.query,
        "headers": dict(case.headers or {}),
        "body": case.body if isinstance(case.body, (dict, list, str, int, float, bool)) else None,
    }
    return json.dumps(drawn, sort_keys=True, default=repr).encode()


def _known_or_drawn(value, key, salt):
    """A known user's id in place of a drawn UUID, for two drawn values in three."""
    if not isinstance(value, str) or not _UUID.match(value):
        return value
    h = zlib.crc32(salt.encode(), zlib.crc32(key))
    if h % _KEEP_ONE_IN == 0:
        return value
    known = _KNOWN[(h // _KEEP_ONE_IN) % len(_KNOWN)]
    # Ids are accepted in either case: keep the case the generator chose.
    return known.upper() if value.isupper() else known


@schemathesis.hook
def map_case(context, case):
    target = _target(case)
    if target == _LIST and case.path_parameters:
        key = _request_key(case)
        path = dict(case.path_parameters)
        path["id"] = _known_or_drawn(path.get("id"), key, "id")
        case.path_parameters = path
    elif target == _SEND and isinstance(case.body, dict):
        key = _request_key(case)
        body = dict(case.body)
        for name in ("from_user_id", "to_user_id"):
            if name in body:
                body[name] = _known_or_drawn(body[name], key, name)
        case.body = body
    return case


def _problem_field(response):
    try:
        body = response.json()
    except Exception:
        return None
    return body.get("field") if isinstance(body, dict) else None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    # A cursor is opaque: the schema says only "1 to 88 characters", so schemathesis draws
    # schema-valid cursors that the API never handed out, which are rightly 400 with `field`
    # `cursor`. Every other refusal of valid data stays a failure.
    return not (
        "positive_data_acceptance" in type(failure).checks
        and _target(case) == _LIST
        and response.status_code == 400
        and _problem_field(response) == "cursor"
    )


def _is_positive(case):
    return (case.meta is not None and case.meta.generation.mode.is_positive
            and case.method.upper() == case.operation.method.upper())


def _names_only_known_users(case):
    if _target(case) == _LIST:
        ids = [(case.path_parameters or {}).get("id")]
    elif _target(case) == _SEND and isinstance(case.body, dict):
        ids = [case.body.get("from_user_id"), case.body.get("to_user_id")]
    else:
        return False
    return all(isinstance(i, str) and i.lower() in _KNOWN for i in ids)


@schemathesis.check
class known_users_accepted:  # noqa: N801 - the class name is the check's name in --checks
    """A schema-valid request between known users is accepted, and both operations saw a 2xx.

    positive_data_acceptance takes a 404 for valid data, as it must for unknown users; for the
    users this run registered, a 404 would mean message-svc lost them. The run as a whole fails
    when listing or sending never succeeded, which is what the hooks above are for.
    """

    def __init__(self):
        self.reached = set()

    def after_response(self, ctx, response, case):
        target = _target(case)
        if 200 <= response.status_code < 300:
            self.reached.add(target)
        if not _is_positive(case) or not _names_only_known_users(case):
            return None
        if target == _LIST:
            if "cursor" in (case.query or {}):
                return None  # a drawn cursor is rightly 400, see filter_failure
            expected = {200}
        else:
            # 409: an Idempotency-Key drawn before for another message from the same sender.
            expected = {200, 201, 409}
        if response.status_code not in expected:
            raise AssertionError(
                f"a valid request naming only known users ({', '.join(_KNOWN)}) was answered "
                f"{response.status_code}, expected {' or '.join(map(str, sorted(expected)))}")
        return None

    def after_run(self, ctx):
        missing = [f"{m} {p}" for m, p in (_LIST, _SEND) if (m, p) not in self.reached]
        if missing:
            raise AssertionError("never answered 2xx: " + ", ".join(missing) +
                                 " (are the known users' ids reaching the requests?)")

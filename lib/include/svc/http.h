/*
 * http.h: what a request handler sees.
 *
 * A service declares its routes in a static const table; the server matches the method and
 * path, checks the body limits and the content type, and calls the handler once with the whole
 * request. The handler parses, validates, calls its store and renders one response, ending
 * with one visible return:
 *
 *     static int user_get(struct svc_req *req, struct svc_resp *resp)
 *     {
 *         ...
 *         if (rc == SVC_ENOTFOUND)
 *             return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);
 *         return svc_resp_json(resp, 200, user_to_json(u));
 *     }
 *
 * Memory: every string a request accessor returns belongs to the request's arena and lives
 * until the response has been sent. Handlers allocate from svc_req_arena() and never free.
 */
#ifndef SVC_HTTP_H
#define SVC_HTTP_H

#include "svc/arena.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct svc_req;
struct svc_resp;

enum svc_method {
    SVC_GET = 1u << 0,
    SVC_HEAD = 1u << 1,
    SVC_POST = 1u << 2,
    SVC_PUT = 1u << 3,
    SVC_PATCH = 1u << 4,
    SVC_DELETE = 1u << 5,
    SVC_OPTIONS = 1u << 6,
};

/* Route flags. */
enum {
    /* A request body, when there is one, must be application/json (or a +json type): else 415. */
    SVC_ROUTE_JSON = 1u << 0,
    /* Served while the service is draining and left out of the request metrics' route label
     * cardinality concerns: /healthz, /readyz, /metrics. */
    SVC_ROUTE_INTERNAL = 1u << 1,
};

/* A handler returns 0 or the negative SVC_E* code it rendered with svc_resp_error(). A code
 * returned without a rendered response is rendered as a generic problem. */
typedef int (*svc_handler_fn)(struct svc_req *req, struct svc_resp *resp);

struct svc_route {
    unsigned method;  /* one enum svc_method value; GET routes answer HEAD too */
    const char *path; /* "/v1/users/:id": literal segments and :name parameters */
    svc_handler_fn handler;
    unsigned flags;  /* SVC_ROUTE_* */
    size_t max_body; /* request body cap in bytes; 0 = the server's HTTP_MAX_BODY */
};

#define SVC_ROUTES_END                                                                             \
    {                                                                                              \
        0, NULL, NULL, 0, 0                                                                        \
    }

/* ---- the request ------------------------------------------------------------------------ */

struct svc_arena *svc_req_arena(struct svc_req *req);

/* The service's app pointer (struct svc_def.app). */
void *svc_req_app(struct svc_req *req);

/* "GET", "POST", ... */
const char *svc_req_method(const struct svc_req *req);

/* The raw path as sent (percent-encoded), without the query string. */
const char *svc_req_path(const struct svc_req *req);

/* The matched route's template ("/v1/users/:id"). */
const char *svc_req_route(const struct svc_req *req);

/* A path parameter, percent-decoded; NULL when the route has no parameter NAME. */
const char *svc_req_param(const struct svc_req *req, const char *name);

/* A query parameter, percent-decoded ('+' is a space); NULL when absent. With repeated
 * parameters, the first. An empty value ("?a=&b") is "". */
const char *svc_req_query(const struct svc_req *req, const char *name);

/* A request header (case-insensitive name); NULL when absent. */
const char *svc_req_header(struct svc_req *req, const char *name);

/* The request body (NUL-terminated for convenience; LEN excludes the NUL). "" when none. */
const char *svc_req_body(const struct svc_req *req, size_t *len);

struct svc_json_field;

/*
 * Parses the body as a JSON object (capped at the route's body limit) into *OUT, owned by the
 * request's arena. On failure renders the problem (400 malformed JSON or not an object, 413)
 * into RESP and returns its code.
 */
int svc_req_json(struct svc_req *req, struct svc_resp *resp, json_t **out);

/*
 * svc_req_json(), then reads the object into DST with FIELDS (svc/json.h), rejecting fields the
 * table does not name. A field that breaks its rule renders a 400 whose detail names it
 * ("field 'items[2].qty' must be an integer ≥ 1") and whose `field` member is its path.
 * Strings read live as long as the request.
 */
int svc_req_read_json(struct svc_req *req, struct svc_resp *resp,
                      const struct svc_json_field *fields, void *dst);

/* The request id (the client's valid X-Request-Id, or a generated one). */
const char *svc_req_id(const struct svc_req *req);

/* The W3C trace id of this request (32 hex digits). */
const char *svc_req_trace_id(const struct svc_req *req);

/* The traceparent to send on calls made for this request: same trace, this span as parent. */
const char *svc_req_traceparent(const struct svc_req *req);

/* ---- typed inputs: a bad value renders a 400 naming the input ------------------------- */

/*
 * Every 400 rendered by these helpers names the input twice: in the detail, and in the problem's
 * `field` member (a body member's path, or a path parameter, query parameter or header name), so
 * a client can point at the field without parsing prose.
 */

/* A path parameter that must be a UUID, copied into OUT in lowercase (37 bytes). */
int svc_req_param_uuid(struct svc_req *req, struct svc_resp *resp, const char *name, char out[37]);

/* The Idempotency-Key header: *OUT NULL when absent, else 1 to 128 of [A-Za-z0-9_.:-]. */
int svc_req_idempotency_key(struct svc_req *req, struct svc_resp *resp, const char **out);

/*
 * Each reads query parameter NAME into *OUT, using DEF when it is absent. On a bad value the
 * 400 problem is rendered into RESP and SVC_EINVAL returned, so a handler writes
 *     if ((rc = svc_query_int(req, resp, "limit", 1, 100, 20, &limit)) != 0)
 *         return rc;
 */
int svc_query_int(struct svc_req *req, struct svc_resp *resp, const char *name, long long min,
                  long long max, long long def, long long *out);
/* ALLOWED is NULL-terminated; *OUT is the index of the value in it. */
int svc_query_enum(struct svc_req *req, struct svc_resp *resp, const char *name,
                   const char *const *allowed, int def, int *out);
int svc_query_bool(struct svc_req *req, struct svc_resp *resp, const char *name, int def,
                   int *out); /* def -1: absent stays -1 */
/* Refuses a query parameter not in ALLOWED (NULL-terminated; NULL or empty: none allowed) with a
 * 400 naming it, so that "?unread[$ne]=1" or a misspelt "?limt=5" is an error rather than
 * silently ignored. */
int svc_query_only(struct svc_req *req, struct svc_resp *resp, const char *const *allowed);

/* An opaque pagination cursor: base64url of at most MAX_LEN bytes. *OUT is NULL when absent;
 * else the decoded bytes, NUL-terminated, in the arena. */
int svc_query_cursor(struct svc_req *req, struct svc_resp *resp, const char *name, size_t max_len,
                     const char **out);

/* Encodes LEN bytes of DATA as a base64url cursor (no padding), in the request's arena. */
const char *svc_cursor_encode(struct svc_req *req, const void *data, size_t len);

/*
 * Keyset pagination over (a time in ms, a UUID), the order every list of the platform uses:
 * svc_keyset_cursor() makes the opaque cursor for the position after a page;
 * svc_query_keyset() reads query parameter NAME back into *MS and ID (lowercase), *PRESENT
 * false when absent. Anything but a cursor made here is a 400 naming the parameter.
 */
const char *svc_keyset_cursor(struct svc_req *req, long long ms, const char *id);
int svc_query_keyset(struct svc_req *req, struct svc_resp *resp, const char *name, long long *ms,
                     char id[37], bool *present);

/* 200 with one page of a keyset listing, {"items": ITEMS, "next_cursor": ...}: the cursor of
 * (MS, ID) when MORE, else null. Takes over the caller's reference to ITEMS (a JSON array). */
int svc_resp_page(struct svc_req *req, struct svc_resp *resp, json_t *items, bool more,
                  long long ms, const char *id);

/* ---- the response ----------------------------------------------------------------------- */

/* Adds a response header (copied). */
void svc_resp_header(struct svc_resp *resp, const char *name, const char *value);

/* Renders BODY (taking ownership of the reference) as application/json with STATUS. Returns
 * 0. A NULL body renders an empty response (for 204). */
int svc_resp_json(struct svc_resp *resp, int status, json_t *body);

/* Sets STATUS and copies BODY with CONTENT_TYPE. Returns 0. */
int svc_resp_body(struct svc_resp *resp, int status, const char *content_type, const char *body,
                  size_t len);

/* A response without a body (204, 304, ...). Returns 0. */
int svc_resp_empty(struct svc_resp *resp, int status);

/*
 * Renders an RFC 9457 application/problem+json body for CODE (an SVC_E* value, or one of the
 * service's own registered through svc_def.errors: its status, title and type), with DETAIL from
 * FMT and the request id as `instance`. A 503 also gets `Retry-After: 1`: what is unavailable is a
 * dependency that comes back by itself. Returns CODE, so a handler ends with `return
 * svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);`.
 */
int svc_resp_error(struct svc_resp *resp, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A 400 about one input: DETAIL from FMT, and FIELD in the problem's `field` member. Returns
 * SVC_EINVAL. */
int svc_resp_invalid(struct svc_resp *resp, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds extension members to the problem body already rendered (e.g. "errors"). Takes the
 * reference. Returns 0. */
int svc_resp_problem_extend(struct svc_resp *resp, const char *key, json_t *value);

/* The problem type URI prefix: a problem's `type` is this followed by its slug. A URN, so
 * nothing suggests a page exists; docs/architecture.md lists every slug. */
#define SVC_PROBLEM_BASE "urn:polyglot:problem:"

#endif

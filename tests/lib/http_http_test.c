/*
 * lib/src/http.c as a client sees it: the request accessors, the typed readers of path, query
 * and header inputs (each refusal a 400 naming its input), cursors, and every way of rendering
 * a response. A service of its own runs in-process on port 0; each route hands one helper's
 * result back to the client, which checks status, headers and body.
 */
#include "svc/error.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/server.h"
#include "testenv.h"
#include "testhttp.h"
#include "testsvc.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_app {
    const char *name;
};

static struct test_app app = {"http-test-app"};

/* GET /t/req/:id/:idx: what the request accessors return ("s?" packs NULL as null). Parameter
 * names share a prefix, so that only the whole name finds one. */
static int req_get(struct svc_req *req, struct svc_resp *resp)
{
    struct test_app *a = svc_req_app(req);
    const char *joined = svc_arena_printf(svc_req_arena(req), "%s+%s", svc_req_param(req, "id"),
                                          svc_req_param(req, "idx"));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "app", a->name, "method", svc_req_method(req),
                          "path", svc_req_path(req), "route", svc_req_route(req));

    json_object_update_new(j, json_pack("{s:s, s:s, s:s?}", "id", svc_req_param(req, "id"),
                                        "joined", joined, "nope", svc_req_param(req, "i")));
    json_object_update_new(j, json_pack("{s:s?, s:s?, s:s?}", "q", svc_req_query(req, "q"), "empty",
                                        svc_req_query(req, "empty"), "header",
                                        svc_req_header(req, "x-thing")));
    json_object_update_new(j, json_pack("{s:s, s:s}", "trace_id", svc_req_trace_id(req),
                                        "traceparent", svc_req_traceparent(req)));
    return svc_resp_json(resp, 200, j);
}

/* POST /t/raw: the body back as it came, whatever its type, with its length in a header. */
static int raw_post(struct svc_req *req, struct svc_resp *resp)
{
    size_t len;
    const char *body = svc_req_body(req, &len);
    char n[32];

    snprintf(n, sizeof(n), "%zu", len);
    svc_resp_header(resp, "X-Body-Len", n);
    svc_resp_header(resp, "X-Body-Strlen",
                    svc_arena_printf(svc_req_arena(req), "%zu", strlen(body)));
    return svc_resp_body(resp, 200, "text/plain; charset=utf-8", body, len);
}

/* The values of ?how=, in the order of HOWS below. */
enum how {
    HOW_EMPTY,
    HOW_NULL_JSON,
    HOW_HEADERS,
    HOW_PROBLEM,
    HOW_INVALID,
    HOW_EXTEND,
    HOW_EXTEND_JSON,
    HOW_UNAVAILABLE,
    HOW_RETRY_AFTER,
    HOW_JSON_THEN_ERROR,
    HOW_ERROR_THEN_JSON,
    HOW_CODE_ONLY,
};

/* GET /t/render?how=: the response helpers, and what happens when a handler renders twice. */
static int render_get(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const hows[] = {
        "empty",           "null-json",   "headers",     "problem",     "invalid",
        "extend",          "extend-json", "unavailable", "retry-after", "json-then-error",
        "error-then-json", "code-only",   NULL};
    char value[16];
    int how, rc;

    if ((rc = svc_query_enum(req, resp, "how", hows, 0, &how)) != 0)
        return rc;
    switch (how) {
    case HOW_EMPTY:
        return svc_resp_empty(resp, 204);
    case HOW_NULL_JSON:
        return svc_resp_json(resp, 202, NULL);
    case HOW_HEADERS:
        /* The value is copied: the buffer is reused before the response goes out. */
        snprintf(value, sizeof(value), "first");
        svc_resp_header(resp, "X-One", value);
        snprintf(value, sizeof(value), "second");
        svc_resp_header(resp, "X-Two", value);
        snprintf(value, sizeof(value), "clobbered");
        return svc_resp_body(resp, 201, "application/x-test", "abc", 3);
    case HOW_PROBLEM:
        return svc_resp_error(resp, SVC_EIDEMPOTENCY, "key '%s' was used with %d other fields",
                              "k-1", 2);
    case HOW_INVALID:
        return svc_resp_invalid(resp, "items[3].sku", "field '%s' is unknown", "items[3].sku");
    case HOW_EXTEND:
        svc_resp_error(resp, SVC_EINVAL, "%d fields are wrong", 2);
        svc_resp_problem_extend(resp, "errors", json_pack("[s, s]", "a", "b"));
        return SVC_EINVAL;
    case HOW_EXTEND_JSON:
        /* Nothing to extend: a JSON body is left as it is. */
        svc_resp_json(resp, 200, json_pack("{s:i}", "n", 1));
        rc = svc_resp_problem_extend(resp, "errors", json_string("x"));
        svc_resp_header(resp, "X-Extend-Rc", rc == SVC_EINVAL ? "einval" : "other");
        return 0;
    case HOW_UNAVAILABLE:
        return svc_resp_error(resp, SVC_EUNAVAILABLE, "engine '%s' is down", "db");
    case HOW_RETRY_AFTER:
        svc_resp_header(resp, "Retry-After", "30");
        return svc_resp_error(resp, SVC_EUNAVAILABLE, "engine '%s' is down", "db");
    case HOW_JSON_THEN_ERROR:
        svc_resp_json(resp, 200, json_pack("{s:b}", "ok", 1));
        return svc_resp_error(resp, SVC_ENOTFOUND, "thing '%s' not found", "x");
    case HOW_ERROR_THEN_JSON:
        svc_resp_error(resp, SVC_ENOTFOUND, "thing '%s' not found", "x");
        return svc_resp_json(resp, 200, json_pack("{s:b}", "ok", 1));
    case HOW_CODE_ONLY:
    default:
        /* A code without a rendered response. */
        return SVC_EFORBIDDEN;
    }
}

/* GET /t/uuid/:id */
static int uuid_get(struct svc_req *req, struct svc_resp *resp)
{
    char id[37];
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    return svc_resp_json(resp, 200, json_pack("{s:s}", "id", id));
}

/* POST /t/idem */
static int idem_post(struct svc_req *req, struct svc_resp *resp)
{
    const char *key;
    int rc;

    if ((rc = svc_req_idempotency_key(req, resp, &key)) != 0)
        return rc;
    return svc_resp_json(resp, 200, json_pack("{s:s?}", "key", key));
}

/* GET /t/query?limit=&order=&unread=: the typed query readers, each with its default. */
static int query_get(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const params[] = {"limit", "order", "unread", NULL};
    static const char *const orders[] = {"asc", "desc", "newest", NULL};
    long long limit;
    int order, unread, rc;

    if ((rc = svc_query_only(req, resp, params)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", -5, 100, 20, &limit)) != 0 ||
        (rc = svc_query_enum(req, resp, "order", orders, 1, &order)) != 0 ||
        (rc = svc_query_bool(req, resp, "unread", -1, &unread)) != 0)
        return rc;
    return svc_resp_json(
        resp, 200,
        json_pack("{s:I, s:i, s:i}", "limit", (json_int_t)limit, "order", order, "unread", unread));
}

/* GET /t/none: a route that takes no query parameter at all. */
static int none_get(struct svc_req *req, struct svc_resp *resp)
{
    int rc;

    if ((rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    return svc_resp_empty(resp, 204);
}

/* GET /t/encode?s=: the cursor for the bytes of S. */
static int encode_get(struct svc_req *req, struct svc_resp *resp)
{
    const char *s = svc_req_query(req, "s");

    return svc_resp_json(resp, 200,
                         json_pack("{s:s}", "cursor", svc_cursor_encode(req, s, strlen(s))));
}

/* GET /t/cursor?c=: a cursor of at most 8 bytes decoded (204 when absent). */
static int cursor_get(struct svc_req *req, struct svc_resp *resp)
{
    const char *raw;
    int rc;

    if ((rc = svc_query_cursor(req, resp, "c", 8, &raw)) != 0)
        return rc;
    if (raw == NULL)
        return svc_resp_empty(resp, 204);
    return svc_resp_body(resp, 200, "application/octet-stream", raw, strlen(raw));
}

/* GET /t/keyset?after=: the position a keyset cursor holds, and the cursor for (ms, id). */
static int keyset_get(struct svc_req *req, struct svc_resp *resp)
{
    const char *mint_id = svc_req_query(req, "id");
    long long ms = 0, mint_ms;
    char id[37] = "";
    bool present;
    int rc;

    if ((rc = svc_query_keyset(req, resp, "after", &ms, id, &present)) != 0 ||
        (rc = svc_query_int(req, resp, "ms", 0, INT64_MAX, 0, &mint_ms)) != 0)
        return rc;
    return svc_resp_json(
        resp, 200,
        json_pack(
            "{s:b, s:I, s:s, s:o}", "present", present, "ms", (json_int_t)ms, "id", id, "next",
            mint_id != NULL ? json_string(svc_keyset_cursor(req, mint_ms, mint_id)) : json_null()));
}

struct line {
    const char *sku;
    int64_t qty;
};

struct order {
    struct line *lines;
    size_t nlines;
};

static const struct svc_json_field line_fields[] = {
    {"sku", SVC_JSON_STRING, .required = true, .min = 1, .max = 16,
     .offset = offsetof(struct line, sku)},
    {"qty", SVC_JSON_INT, .required = true, .min = 1, .max = 10,
     .offset = offsetof(struct line, qty)},
    {0},
};

static const struct svc_json_field line_elem = {
    .type = SVC_JSON_OBJECT, .fields = line_fields, .size = sizeof(struct line)};

static const struct svc_json_field order_fields[] = {
    {"lines", SVC_JSON_ARRAY, .required = true, .min = 1, .max = 5, .elem = &line_elem,
     .offset = offsetof(struct order, lines), .count = offsetof(struct order, nlines)},
    {0},
};

/* POST /t/order: a body with nested fields. */
static int order_post(struct svc_req *req, struct svc_resp *resp)
{
    struct order o = {0};
    int rc;

    if ((rc = svc_req_read_json(req, resp, order_fields, &o)) != 0)
        return rc;
    return svc_resp_json(
        resp, 201,
        json_pack("{s:i, s:s}", "lines", (int)o.nlines, "last_sku", o.lines[o.nlines - 1].sku));
}

static const struct svc_route routes[] = {
    {SVC_GET, "/t/req/:id/:idx", req_get, 0, 0},
    {SVC_POST, "/t/raw", raw_post, 0, 0},
    {SVC_GET, "/t/render", render_get, 0, 0},
    {SVC_GET, "/t/uuid/:id", uuid_get, 0, 0},
    {SVC_POST, "/t/idem", idem_post, 0, 0},
    {SVC_GET, "/t/query", query_get, 0, 0},
    {SVC_GET, "/t/none", none_get, 0, 0},
    {SVC_GET, "/t/encode", encode_get, 0, 0},
    {SVC_GET, "/t/cursor", cursor_get, 0, 0},
    {SVC_GET, "/t/keyset", keyset_get, 0, 0},
    {SVC_POST, "/t/order", order_post, SVC_ROUTE_JSON, 0},
    SVC_ROUTES_END,
};

static const struct svc_def def = {
    .name = "http-test",
    .version = "test",
    .routes = routes,
    .app = &app,
};

static void setup(void)
{
    testsvc_start(&def);
}

static void teardown(void)
{
    testsvc_stop();
}

/* GET PATH must be a 200 JSON object; the caller decrefs it. */
static json_t *get_ok(const char *path)
{
    struct testapi_reply *r = testapi_call("GET", path, NULL);

    ck_assert_msg(r->status == 200, "GET %s: %ld %s", path, r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    return testapi_json(r);
}

/* ---- the request ------------------------------------------------------------------------ */

START_TEST(request_accessors)
{
    static const char *const hdr[] = {"X-Thing: some value", NULL};
    struct testapi_reply *r;
    json_t *j;

    r = testapi_call_h("GET", "/t/req/x%2Fy/z?q=a+b%21&q=second&empty=", hdr, NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "app"), "http-test-app");
    ck_assert_str_eq(testapi_str(j, "method"), "GET");
    /* The path as sent, percent-encoding and all, without the query; the parameter decoded. */
    ck_assert_str_eq(testapi_str(j, "path"), "/t/req/x%2Fy/z");
    ck_assert_str_eq(testapi_str(j, "route"), "/t/req/:id/:idx");
    ck_assert_str_eq(testapi_str(j, "id"), "x/y");
    ck_assert_str_eq(testapi_str(j, "joined"), "x/y+z");
    ck_assert(json_is_null(json_object_get(j, "nope")));
    /* '+' is a space, the first of repeated parameters wins, "empty=" is "". */
    ck_assert_str_eq(testapi_str(j, "q"), "a b!");
    ck_assert_str_eq(testapi_str(j, "empty"), "");
    /* Header names are case-insensitive. */
    ck_assert_str_eq(testapi_str(j, "header"), "some value");
    json_decref(j);

    j = get_ok("/t/req/1/2");
    ck_assert(json_is_null(json_object_get(j, "q")));
    ck_assert(json_is_null(json_object_get(j, "empty")));
    ck_assert(json_is_null(json_object_get(j, "header")));
    json_decref(j);
}
END_TEST

START_TEST(traceparent_for_outgoing_calls)
{
    static const char *const tp[] = {
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", NULL};
    /* An all-zero trace id, and upper-case hex, are not valid. */
    static const char *const invalid[][2] = {
        {"traceparent: 00-00000000000000000000000000000000-b7ad6b7169203331-01", NULL},
        {"traceparent: 00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", NULL},
    };
    struct testapi_reply *r;
    const char *out;
    json_t *j;

    r = testapi_call_h("GET", "/t/req/1/2", tp, NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    out = testapi_str(j, "traceparent");
    /* Same trace, this request's own span as the parent. */
    ck_assert_uint_eq(strlen(out), 55);
    ck_assert(strncmp(out, "00-0af7651916cd43dd8448eb211c80319c-", 36) == 0);
    ck_assert_uint_eq(strspn(out + 36, "0123456789abcdef"), 16);
    ck_assert(strncmp(out + 36, "b7ad6b7169203331", 16) != 0);
    ck_assert(strncmp(out + 36, "0000000000000000", 16) != 0);
    ck_assert_str_eq(out + 52, "-01");
    json_decref(j);

    /* Without a valid one, a new trace: the traceparent carries the request's trace id. */
    for (int i = 0; i < 3; i++) {
        r = testapi_call_h("GET", "/t/req/1/2", i == 0 ? NULL : invalid[i - 1], NULL);
        ck_assert_int_eq(r->status, 200);
        j = testapi_json(r);
        out = testapi_str(j, "traceparent");
        ck_assert_uint_eq(strlen(out), 55);
        ck_assert(strncmp(out + 3, testapi_str(j, "trace_id"), 32) == 0);
        ck_assert(strncmp(out + 3, "00000000000000000000000000000000", 32) != 0);
        ck_assert(strncmp(out + 3, "0af7651916cd43dd8448eb211c80319c", 32) != 0);
        json_decref(j);
    }
}
END_TEST

START_TEST(raw_body_in_and_out)
{
    static const char *const text[] = {"Content-Type: text/plain", NULL};
    struct testapi_reply *r;

    r = testapi_call_h("POST", "/t/raw", text, "h\xc3\xa9llo {not json");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "text/plain; charset=utf-8");
    ck_assert_str_eq(r->body, "h\xc3\xa9llo {not json");
    ck_assert_str_eq(testapi_header(r, "X-Body-Len"), "16");
    ck_assert_str_eq(testapi_header(r, "X-Body-Strlen"), "16");

    /* No body: "" of length 0. */
    r = testapi_call_h("POST", "/t/raw", text, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_uint_eq(r->len, 0);
    ck_assert_str_eq(testapi_header(r, "X-Body-Len"), "0");
    ck_assert_str_eq(testapi_header(r, "X-Body-Strlen"), "0");
}
END_TEST

START_TEST(json_body_field_paths)
{
    struct testapi_reply *r;
    json_t *j;

    r = testapi_call("POST", "/t/order",
                     "{\"lines\":[{\"sku\":\"a\",\"qty\":1},{\"sku\":\"b\",\"qty\":2}]}");
    ck_assert_int_eq(r->status, 201);
    j = testapi_json(r);
    ck_assert_int_eq(testapi_num(j, "lines"), 2);
    ck_assert_str_eq(testapi_str(j, "last_sku"), "b");
    json_decref(j);

    r = testapi_call("POST", "/t/order",
                     "{\"lines\":[{\"sku\":\"a\",\"qty\":1},{\"sku\":\"b\",\"qty\":11}]}");
    testapi_assert_problem(r, 400, "invalid-request", "'lines[1].qty'", "lines[1].qty");
    r = testapi_call("POST", "/t/order", "{\"lines\":[{\"sku\":\"a\",\"qty\":1,\"x\":0}]}");
    testapi_assert_problem(r, 400, "invalid-request", "'lines[0].x' is not allowed", "lines[0].x");
    r = testapi_call("POST", "/t/order", "{\"lines\":[]}");
    testapi_assert_problem(r, 400, "invalid-request", "'lines'", "lines");
    /* Malformed JSON is about the body, not a field. */
    r = testapi_call("POST", "/t/order", "{\"lines\":");
    testapi_assert_problem(r, 400, "malformed-json", "malformed JSON", NULL);
}
END_TEST

/* ---- typed inputs ----------------------------------------------------------------------- */

START_TEST(path_uuid)
{
    struct testapi_reply *r;
    json_t *j;

    j = get_ok("/t/uuid/0F8FAD5B-D9CB-469F-A165-70867728950E");
    ck_assert_str_eq(testapi_str(j, "id"), "0f8fad5b-d9cb-469f-a165-70867728950e");
    json_decref(j);

    r = testapi_call("GET", "/t/uuid/not-a-uuid", NULL);
    testapi_assert_problem(r, 400, "invalid-request",
                           "path parameter 'id' must be a UUID, not 'not-a-uuid'", "id");
    r = testapi_call("GET", "/t/uuid/0f8fad5b-d9cb-469f-a165-70867728950", NULL);
    testapi_assert_problem(r, 400, "invalid-request", "must be a UUID", "id");
    /* The value is quoted in the detail, but not without bound. */
    r = testapi_call("GET",
                     "/t/uuid/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "bbbbbbbb",
                     NULL);
    testapi_assert_problem(r, 400, "invalid-request",
                           "not 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
                           "id");
}
END_TEST

START_TEST(idempotency_key_header)
{
    static const char *const good[] = {"Idempotency-Key: Ab9_.:-z", NULL};
    static const char *const space[] = {"Idempotency-Key: two words", NULL};
    static const char *const slash[] = {"Idempotency-Key: a/b", NULL};
    static const char *const empty[] = {"Idempotency-Key;", NULL};
    char max_hdr[160], over_hdr[160];
    const char *max[] = {max_hdr, NULL}, *over[] = {over_hdr, NULL};
    struct testapi_reply *r;
    json_t *j;

    r = testapi_call("POST", "/t/idem", NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    ck_assert(json_is_null(json_object_get(j, "key")));
    json_decref(j);

    r = testapi_call_h("POST", "/t/idem", good, NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "key"), "Ab9_.:-z");
    json_decref(j);

    /* 128 characters is the longest key. */
    snprintf(max_hdr, sizeof(max_hdr), "Idempotency-Key: %0128d", 7);
    r = testapi_call_h("POST", "/t/idem", max, NULL);
    ck_assert_int_eq(r->status, 200);
    snprintf(over_hdr, sizeof(over_hdr), "Idempotency-Key: %0129d", 7);
    r = testapi_call_h("POST", "/t/idem", over, NULL);
    testapi_assert_problem(r, 400, "invalid-request",
                           "header 'Idempotency-Key' must be 1 to 128 of", "Idempotency-Key");

    r = testapi_call_h("POST", "/t/idem", space, NULL);
    testapi_assert_problem(r, 400, "invalid-request", "'Idempotency-Key'", "Idempotency-Key");
    r = testapi_call_h("POST", "/t/idem", slash, NULL);
    testapi_assert_problem(r, 400, "invalid-request", "'Idempotency-Key'", "Idempotency-Key");
    r = testapi_call_h("POST", "/t/idem", empty, NULL);
    testapi_assert_problem(r, 400, "invalid-request", "'Idempotency-Key'", "Idempotency-Key");
}
END_TEST

START_TEST(query_int_bounds_and_syntax)
{
    static const char *const bad[] = {
        "abc", "", "+5", " 5", "5 ", "5x", "0x10", "1.0", "99999999999999999999", NULL};
    char path[96];
    json_t *j;

    j = get_ok("/t/query");
    ck_assert_int_eq(testapi_num(j, "limit"), 20);
    json_decref(j);
    /* Both bounds are included. */
    j = get_ok("/t/query?limit=-5");
    ck_assert_int_eq(testapi_num(j, "limit"), -5);
    json_decref(j);
    j = get_ok("/t/query?limit=100");
    ck_assert_int_eq(testapi_num(j, "limit"), 100);
    json_decref(j);

    testapi_assert_problem(testapi_call("GET", "/t/query?limit=-6", NULL), 400, "invalid-request",
                           "query parameter 'limit' must be from -5 to 100, not -6", "limit");
    testapi_assert_problem(testapi_call("GET", "/t/query?limit=101", NULL), 400, "invalid-request",
                           "not 101", "limit");
    for (int i = 0; bad[i] != NULL; i++) {
        char *esc = testhttp_escape(bad[i]);

        snprintf(path, sizeof(path), "/t/query?limit=%s", esc);
        free(esc);
        testapi_assert_problem(testapi_call("GET", path, NULL), 400, "invalid-request",
                               "query parameter 'limit' must be an integer from -5 to 100",
                               "limit");
    }
}
END_TEST

START_TEST(query_enum_and_bool)
{
    static const struct {
        const char *query;
        int order, unread;
    } ok[] = {
        {"", 1, -1},         {"?order=asc", 0, -1},   {"?order=newest&unread=true", 2, 1},
        {"?unread=1", 1, 1}, {"?unread=false", 1, 0}, {"?unread=0", 1, 0},
    };
    char path[64];
    json_t *j;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(path, sizeof(path), "/t/query%s", ok[i].query);
        j = get_ok(path);
        ck_assert_msg(testapi_num(j, "order") == ok[i].order, "%s: order", path);
        ck_assert_msg(testapi_num(j, "unread") == ok[i].unread, "%s: unread", path);
        json_decref(j);
    }
    testapi_assert_problem(testapi_call("GET", "/t/query?order=ASC", NULL), 400, "invalid-request",
                           "query parameter 'order' must be one of 'asc', 'desc', 'newest'",
                           "order");
    testapi_assert_problem(testapi_call("GET", "/t/query?order=", NULL), 400, "invalid-request",
                           "'order' must be one of", "order");
    testapi_assert_problem(testapi_call("GET", "/t/query?unread=yes", NULL), 400, "invalid-request",
                           "query parameter 'unread' must be true or false", "unread");
    testapi_assert_problem(testapi_call("GET", "/t/query?unread=TRUE", NULL), 400,
                           "invalid-request", "'unread' must be true or false", "unread");
}
END_TEST

START_TEST(query_only_names_the_stranger)
{
    struct testapi_reply *r;

    testapi_assert_problem(testapi_call("GET", "/t/query?limit=5&limt=5", NULL), 400,
                           "invalid-request", "query parameter 'limt' is not accepted here",
                           "limt");
    /* A flag without a value is a parameter too. */
    testapi_assert_problem(testapi_call("GET", "/t/query?debug", NULL), 400, "invalid-request",
                           "'debug' is not accepted here", "debug");
    /* A route that takes none refuses any, and answers without one. */
    testapi_assert_problem(testapi_call("GET", "/t/none?limit=1", NULL), 400, "invalid-request",
                           "'limit' is not accepted here", "limit");
    r = testapi_call("GET", "/t/none", NULL);
    ck_assert_int_eq(r->status, 204);
}
END_TEST

/* ---- cursors ---------------------------------------------------------------------------- */

/* The cursor the service makes for the bytes of S (percent-encoded query text). */
static void assert_encodes(const char *s, const char *want)
{
    char path[128];
    json_t *j;

    snprintf(path, sizeof(path), "/t/encode?s=%s", s);
    j = get_ok(path);
    ck_assert_msg(strcmp(testapi_str(j, "cursor"), want) == 0, "'%s' encoded as '%s', not '%s'", s,
                  testapi_str(j, "cursor"), want);
    json_decref(j);
}

START_TEST(cursor_encoding)
{
    /* RFC 4648 section 10's vectors, in the URL-safe alphabet without padding. */
    assert_encodes("", "");
    assert_encodes("f", "Zg");
    assert_encodes("fo", "Zm8");
    assert_encodes("foo", "Zm9v");
    assert_encodes("foob", "Zm9vYg");
    assert_encodes("fooba", "Zm9vYmE");
    assert_encodes("foobar", "Zm9vYmFy");
    /* The two characters where base64url differs from base64 ('+' and '/'). */
    assert_encodes("%FB%FF", "-_8");
}
END_TEST

START_TEST(cursor_decoding)
{
    static const char *const bad[] = {"",             /* empty */
                                      "Zm9vYg%3D%3D", /* padded */
                                      "Zm9vY",        /* a length no encoding has */
                                      "Zm9vYh", /* leftover bits set: a second spelling of "foob" */
                                      "Zm9v%2BA",     /* '+' is not in the alphabet */
                                      "Zm9vYmFyYmF6", /* 9 bytes, over the limit of 8 */
                                      "AA",           /* a NUL byte */
                                      NULL};
    static const struct {
        const char *cursor, *raw;
    } ok[] = {
        {"Zm9vYg", "foob"},
        {"Zm9vYmFy", "foobar"},
        {"-_8", "\xfb\xff"},
        {"Zm9vYmFyYmE", "foobarba"}, /* 8 bytes, the limit */
    };
    struct testapi_reply *r;
    char path[96];

    r = testapi_call("GET", "/t/cursor", NULL);
    ck_assert_int_eq(r->status, 204);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(path, sizeof(path), "/t/cursor?c=%s", ok[i].cursor);
        r = testapi_call("GET", path, NULL);
        ck_assert_msg(r->status == 200, "%s: %ld %s", path, r->status, r->body);
        ck_assert_str_eq(r->body, ok[i].raw);
    }

    for (int i = 0; bad[i] != NULL; i++) {
        snprintf(path, sizeof(path), "/t/cursor?c=%s", bad[i]);
        testapi_assert_problem(testapi_call("GET", path, NULL), 400, "invalid-request",
                               "query parameter 'c' is not a valid cursor", "c");
    }
}
END_TEST

/* The cursor the service makes for RAW (percent-encoded), copied into OUT. */
static void encode(const char *raw, char *out, size_t cap)
{
    char path[160];
    json_t *j;

    snprintf(path, sizeof(path), "/t/encode?s=%s", raw);
    j = get_ok(path);
    snprintf(out, cap, "%s", testapi_str(j, "cursor"));
    json_decref(j);
}

START_TEST(keyset_cursor_round_trip)
{
    static const char *const bad[] = {
        "abc",
        "1700000000123",                                              /* no id */
        "%3A0f8fad5b-d9cb-469f-a165-70867728950e",                    /* no time */
        "-5%3A0f8fad5b-d9cb-469f-a165-70867728950e",                  /* a sign */
        "1234567890123456789%3A0f8fad5b-d9cb-469f-a165-70867728950e", /* 19 digits */
        "17x%3A0f8fad5b-d9cb-469f-a165-70867728950e",
        "1700000000123%3Anot-a-uuid",
        NULL};
    char path[256], cursor[128];
    json_t *j;

    j = get_ok("/t/keyset");
    ck_assert(json_is_false(json_object_get(j, "present")));
    json_decref(j);

    /* What the service mints, it reads back: the id in lowercase. */
    j = get_ok("/t/keyset?ms=1700000000123&id=0F8FAD5B-D9CB-469F-A165-70867728950E");
    snprintf(cursor, sizeof(cursor), "%s", testapi_str(j, "next"));
    json_decref(j);
    snprintf(path, sizeof(path), "/t/keyset?after=%s", cursor);
    j = get_ok(path);
    ck_assert(json_is_true(json_object_get(j, "present")));
    ck_assert_int_eq(testapi_num(j, "ms"), 1700000000123LL);
    ck_assert_str_eq(testapi_str(j, "id"), "0f8fad5b-d9cb-469f-a165-70867728950e");
    json_decref(j);

    /* 18 digits is the longest time. */
    encode("999999999999999999%3A0f8fad5b-d9cb-469f-a165-70867728950e", cursor, sizeof(cursor));
    snprintf(path, sizeof(path), "/t/keyset?after=%s", cursor);
    j = get_ok(path);
    ck_assert_int_eq(testapi_num(j, "ms"), 999999999999999999LL);
    json_decref(j);

    for (int i = 0; bad[i] != NULL; i++) {
        encode(bad[i], cursor, sizeof(cursor));
        snprintf(path, sizeof(path), "/t/keyset?after=%s", cursor);
        testapi_assert_problem(testapi_call("GET", path, NULL), 400, "invalid-request",
                               "query parameter 'after' is not a valid cursor", "after");
    }
    testapi_assert_problem(testapi_call("GET", "/t/keyset?after=%25%25", NULL), 400,
                           "invalid-request", "'after' is not a valid cursor", "after");
}
END_TEST

/* ---- the response ----------------------------------------------------------------------- */

START_TEST(responses_without_a_body)
{
    struct testapi_reply *r;

    r = testapi_call("GET", "/t/render?how=empty", NULL);
    ck_assert_int_eq(r->status, 204);
    ck_assert_uint_eq(r->len, 0);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "");
    r = testapi_call("GET", "/t/render?how=null-json", NULL);
    ck_assert_int_eq(r->status, 202);
    ck_assert_uint_eq(r->len, 0);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "");
    ck_assert_str_eq(testapi_header(r, "Content-Length"), "0");
}
END_TEST

START_TEST(headers_and_raw_body)
{
    struct testapi_reply *r = testapi_call("GET", "/t/render?how=headers", NULL);

    ck_assert_int_eq(r->status, 201);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/x-test");
    ck_assert_str_eq(r->body, "abc");
    ck_assert_str_eq(testapi_header(r, "X-One"), "first");
    ck_assert_str_eq(testapi_header(r, "X-Two"), "second");
    /* The server's own headers are still there. */
    ck_assert_uint_eq(strlen(testapi_header(r, "X-Request-Id")), 32);
}
END_TEST

START_TEST(problems)
{
    struct testapi_reply *r;
    json_t *j;

    /* A problem type from the table, with its status, title and formatted detail. */
    r = testapi_call("GET", "/t/render?how=problem", NULL);
    testapi_assert_problem(r, 409, "idempotency-key-reused",
                           "key 'k-1' was used with 2 other fields", NULL);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "title"), "Idempotency key reused");
    ck_assert_ptr_null(json_object_get(j, "field"));
    json_decref(j);

    r = testapi_call("GET", "/t/render?how=invalid", NULL);
    testapi_assert_problem(r, 400, "invalid-request", "field 'items[3].sku' is unknown",
                           "items[3].sku");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "title"), "Invalid request");
    json_decref(j);

    /* Extension members go into the problem. */
    r = testapi_call("GET", "/t/render?how=extend", NULL);
    testapi_assert_problem(r, 400, "invalid-request", "2 fields are wrong", NULL);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "errors")), 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "errors"), 1)), "b");
    json_decref(j);
    /* ... and only into a problem. */
    r = testapi_call("GET", "/t/render?how=extend-json", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(r->body, "{\"n\":1}");
    ck_assert_str_eq(testapi_header(r, "X-Extend-Rc"), "einval");

    /* A handler that returns a code without rendering gets that code's problem. */
    r = testapi_call("GET", "/t/render?how=code-only", NULL);
    testapi_assert_problem(r, 403, "forbidden", "Forbidden", NULL);
}
END_TEST

START_TEST(unavailable_says_when_to_retry)
{
    struct testapi_reply *r;
    const char *p;
    int n = 0;

    r = testapi_call("GET", "/t/render?how=unavailable", NULL);
    testapi_assert_problem(r, 503, "unavailable", "engine 'db' is down", NULL);
    ck_assert_str_eq(testapi_header(r, "Retry-After"), "1");

    /* The handler's own Retry-After is kept, and not sent twice. */
    r = testapi_call("GET", "/t/render?how=retry-after", NULL);
    testapi_assert_problem(r, 503, "unavailable", "engine 'db' is down", NULL);
    ck_assert_str_eq(testapi_header(r, "Retry-After"), "30");
    for (p = r->headers; (p = strstr(p, "\nRetry-After:")) != NULL; p++)
        n++;
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(the_last_rendering_wins)
{
    struct testapi_reply *r;

    r = testapi_call("GET", "/t/render?how=json-then-error", NULL);
    testapi_assert_problem(r, 404, "not-found", "thing 'x' not found", NULL);
    r = testapi_call("GET", "/t/render?how=error-then-json", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(r->body, "{\"ok\":true}");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    svc_log_set_level(SVC_LOG_ERROR);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, request_accessors);
    tcase_add_test(tc, traceparent_for_outgoing_calls);
    tcase_add_test(tc, raw_body_in_and_out);
    tcase_add_test(tc, json_body_field_paths);
    tcase_add_test(tc, path_uuid);
    tcase_add_test(tc, idempotency_key_header);
    tcase_add_test(tc, query_int_bounds_and_syntax);
    tcase_add_test(tc, query_enum_and_bool);
    tcase_add_test(tc, query_only_names_the_stranger);
    tcase_add_test(tc, cursor_encoding);
    tcase_add_test(tc, cursor_decoding);
    tcase_add_test(tc, keyset_cursor_round_trip);
    tcase_add_test(tc, responses_without_a_body);
    tcase_add_test(tc, headers_and_raw_body);
    tcase_add_test(tc, problems);
    tcase_add_test(tc, unavailable_says_when_to_retry);
    tcase_add_test(tc, the_last_rendering_wins);
    suite_add_tcase(s, tc);
    rc = testenv_run(s);
    curl_global_cleanup();
    return rc;
}

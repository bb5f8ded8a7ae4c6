/*
 * The HTTP server as a client sees it: echo-svc started in-process on port 0, driven with
 * libcurl. Keep-alive, the error statuses with their problem+json bodies, request ids, trace
 * context, /metrics, /readyz, and graceful shutdown with a request in flight.
 */
#include "echo.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"
#include "testenv.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct svc_def echo_def = {
    .name = "echo-svc",
    .version = "test",
    .routes = echo_routes,
};

static bool engine_up = true;

/* A ready hook as a service writes one: its engine and its producer. */
static void report(void *app, struct svc_health *h)
{
    (void)app;
    svc_health_report(h, "engine", engine_up, engine_up ? NULL : "connection refused on %s",
                      "127.0.0.1:1");
    svc_health_report(h, "kafka", true, NULL);
}

static const struct svc_def echo_def_with_deps = {
    .name = "echo-svc",
    .version = "test",
    .routes = echo_routes,
    .ready = report,
};

static struct svc_server *srv;
static char base[64];

struct reply {
    long status;
    char body[65536];
    size_t len;
    char headers[8192];
    size_t hlen;
    long connects; /* new connections curl had to open for this request */
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = size * n;

    if (r->len + k >= sizeof(r->body))
        k = sizeof(r->body) - r->len - 1;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = size * n;

    if (r->hlen + k >= sizeof(r->headers))
        k = sizeof(r->headers) - r->hlen - 1;
    memcpy(r->headers + r->hlen, p, k);
    r->hlen += k;
    r->headers[r->hlen] = '\0';
    return size * n;
}

/* One request on handle H (reused across calls for keep-alive). HEADERS: NULL-terminated. */
static void call(CURL *h, const char *method, const char *path, const char *const *headers,
                 const char *body, struct reply *r)
{
    char url[512];
    struct curl_slist *hl = NULL;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s%s", base, path);
    for (int i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    rc = curl_easy_perform(h);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_slist_free_all(hl);
}

static void get(const char *path, const char *const *headers, struct reply *r)
{
    CURL *h = curl_easy_init();

    call(h, "GET", path, headers, NULL, r);
    curl_easy_cleanup(h);
}

/* The value of response header NAME, copied into OUT ("" when absent). */
static const char *header(const struct reply *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = r->headers;

    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *end;

            while (*v == ' ')
                v++;
            end = v + strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)(end - v), v);
            return out;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return out;
}

static json_t *body_json(const struct reply *r)
{
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);

    ck_assert_msg(j != NULL, "body is not JSON (%s): %s", err.text, r->body);
    return j;
}

/* Asserts R is an RFC 9457 problem with STATUS whose detail contains WANT and whose instance
 * is the request id. */
static void assert_problem(const struct reply *r, long status, const char *type, const char *want)
{
    char ct[128], rid[160];
    json_t *j;

    ck_assert_int_eq(r->status, status);
    ck_assert_str_eq(header(r, "Content-Type", ct, sizeof(ct)), "application/problem+json");
    j = body_json(r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), type);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "title")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), status);
    ck_assert_msg(strstr(json_string_value(json_object_get(j, "detail")), want) != NULL,
                  "detail '%s' does not say '%s'", json_string_value(json_object_get(j, "detail")),
                  want);
    ck_assert_str_eq(json_string_value(json_object_get(j, "instance")),
                     header(r, "X-Request-Id", rid, sizeof(rid)));
    json_decref(j);
}

static void start(size_t max_body)
{
    struct svc_http_opts o;

    svc_http_opts_default(&o);
    o.max_body = max_body;
    o.shutdown_grace_ms = 3000;
    o.access_log = false;
    srv = svc_server_start(&echo_def, &o);
    ck_assert_ptr_nonnull(srv);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", svc_server_port(srv));
}

static void setup(void)
{
    start(1024);
}

static void teardown(void)
{
    if (srv != NULL)
        ck_assert_int_eq(svc_server_stop(srv), 0);
    srv = NULL;
    svc_metrics_reset();
}

START_TEST(keep_alive_reuses_the_connection)
{
    CURL *h = curl_easy_init();
    struct reply r1, r2;
    char conn[64];

    call(h, "GET", "/v1/items/1", NULL, NULL, &r1);
    call(h, "GET", "/v1/items/2", NULL, NULL, &r2);
    ck_assert_int_eq(r1.status, 200);
    ck_assert_int_eq(r2.status, 200);
    ck_assert_int_eq(r1.connects, 1);
    ck_assert_msg(r2.connects == 0, "the second request opened a new connection");
    ck_assert_str_ne(header(&r1, "Connection", conn, sizeof(conn)), "close");
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(path_parameters_and_typed_query)
{
    struct reply r;
    json_t *j;

    get("/v1/items/a%2Fb?limit=7", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "a/b");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "limit")), 7);
    json_decref(j);

    get("/v1/items/1?limit=abc", NULL, &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request",
                   "query parameter 'limit' must be an integer from 1 to 100");
    get("/v1/items/1?limit=1000", NULL, &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request", "not 1000");
    get("/v1/items/1?limit=%zz", NULL, &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request", "'limit' is not validly");
    get("/v1/items/1?limit=5&unread%5B%24ne%5D=1", NULL, &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request",
                   "query parameter 'unread[$ne]' is not accepted here");
}
END_TEST

START_TEST(unknown_path_is_404_problem)
{
    struct reply r;

    get("/v1/nothing", NULL, &r);
    assert_problem(&r, 404, "urn:polyglot:problem:not-found", "no route for 'GET /v1/nothing'");
    get("/v1/items/missing", NULL, &r);
    assert_problem(&r, 404, "urn:polyglot:problem:not-found", "item 'missing' not found");
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
    CURL *h = curl_easy_init();
    struct reply r;
    char allow[64];

    call(h, "DELETE", "/v1/echo", NULL, NULL, &r);
    assert_problem(&r, 405, "urn:polyglot:problem:method-not-allowed", "'DELETE'");
    ck_assert_str_eq(header(&r, "Allow", allow, sizeof(allow)), "POST");
    /* The built-in routes too, and for methods no route can have. */
    call(h, "POST", "/healthz", NULL, NULL, &r);
    assert_problem(&r, 405, "urn:polyglot:problem:method-not-allowed", "'POST'");
    ck_assert_str_eq(header(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
    call(h, "TRACE", "/metrics", NULL, NULL, &r);
    assert_problem(&r, 405, "urn:polyglot:problem:method-not-allowed", "'TRACE'");
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(oversized_body_is_413)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    CURL *h = curl_easy_init();
    char *big = malloc(4096);
    struct reply r;

    memset(big, ' ', 4095);
    big[0] = '[';
    big[4094] = ']';
    big[4095] = '\0';
    call(h, "POST", "/v1/echo", json, big, &r);
    assert_problem(&r, 413, "urn:polyglot:problem:payload-too-large", "limit of 1024 bytes");
    free(big);
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(wrong_content_type_is_415)
{
    static const char *const text[] = {"Content-Type: text/plain", NULL};
    static const char *const json_utf8[] = {"Content-Type: application/json; charset=utf-8", NULL};
    CURL *h = curl_easy_init();
    struct reply r;

    call(h, "POST", "/v1/echo", text, "{\"a\":1}", &r);
    assert_problem(&r, 415, "urn:polyglot:problem:unsupported-media-type", "'text/plain'");
    call(h, "POST", "/v1/echo", json_utf8, "{\"a\":1}", &r);
    ck_assert_int_eq(r.status, 200);
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(malformed_json_is_400)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    CURL *h = curl_easy_init();
    struct reply r;

    call(h, "POST", "/v1/echo", json, "{\"a\":", &r);
    assert_problem(&r, 400, "urn:polyglot:problem:malformed-json", "malformed JSON at line 1");
    call(h, "POST", "/v1/echo", json, "[1,2]", &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request", "object");
    call(h, "POST", "/v1/echo", json, "{\"a\":1,\"a\":2}", &r);
    assert_problem(&r, 400, "urn:polyglot:problem:malformed-json", "duplicate");
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(typed_body_fields_are_checked_and_named)
{
    static const char *const json[] = {"Content-Type: application/json", NULL};
    CURL *h = curl_easy_init();
    struct reply r;
    json_t *j;

    call(h, "POST", "/v1/items", json, "{\"name\":\"bolt\",\"qty\":3}", &r);
    ck_assert_int_eq(r.status, 201);
    call(h, "POST", "/v1/items", json, "{\"name\":\"bolt\",\"qty\":\"3\"}", &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request", "field 'qty' must be");
    j = body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "field")), "qty");
    json_decref(j);
    call(h, "POST", "/v1/items", json, "{\"name\":\"bolt\",\"qty\":3,\"$where\":1}", &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request", "'$where' is not allowed");
    call(h, "POST", "/v1/items", json, "{\"qty\":3}", &r);
    assert_problem(&r, 400, "urn:polyglot:problem:invalid-request", "'name' is required");
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(chunked_body_over_the_limit_is_413)
{
    static const char *const chunked[] = {"Content-Type: application/json",
                                          "Transfer-Encoding: chunked", NULL};
    CURL *h = curl_easy_init();
    char *big = malloc(8192);
    struct reply r;

    memset(big, ' ', 8191);
    big[0] = '[';
    big[8190] = ']';
    big[8191] = '\0';
    call(h, "POST", "/v1/echo", chunked, big, &r);
    assert_problem(&r, 413, "urn:polyglot:problem:payload-too-large", "limit of 1024 bytes");
    free(big);
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(oversized_headers_are_refused)
{
    CURL *h = curl_easy_init();
    char *hdr = malloc(40000);
    const char *headers[] = {hdr, NULL};
    struct reply r;

    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'a', 40000 - 8);
    hdr[40000 - 1] = '\0';
    call(h, "GET", "/healthz", headers, NULL, &r);
    ck_assert_msg(r.status == 431 || r.status == 413, "a 40 kB header got %ld", r.status);
    free(hdr);
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(request_id_is_honoured_or_generated)
{
    static const char *const good[] = {"X-Request-Id: client-req.42:a_b", NULL};
    static const char *const bad[] = {"X-Request-Id: has spaces<script>", NULL};
    struct reply r;
    char rid[160];

    get("/healthz", good, &r);
    ck_assert_str_eq(header(&r, "X-Request-Id", rid, sizeof(rid)), "client-req.42:a_b");
    get("/healthz", bad, &r);
    header(&r, "X-Request-Id", rid, sizeof(rid));
    ck_assert_uint_eq(strlen(rid), 32);
    ck_assert_uint_eq(strspn(rid, "0123456789abcdef"), 32);
}
END_TEST

START_TEST(traceparent_is_continued_or_started)
{
    static const char *const tp[] = {
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "Content-Type: application/json", NULL};
    static const char *const json[] = {"Content-Type: application/json", NULL};
    CURL *h = curl_easy_init();
    struct reply r;
    json_t *j;

    call(h, "POST", "/v1/echo", tp, "{}", &r);
    ck_assert_int_eq(r.status, 200);
    j = body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "trace_id")),
                     "0af7651916cd43dd8448eb211c80319c");
    json_decref(j);
    call(h, "POST", "/v1/echo", json, "{}", &r);
    j = body_json(&r);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "trace_id"))), 32);
    ck_assert_str_ne(json_string_value(json_object_get(j, "trace_id")),
                     "0af7651916cd43dd8448eb211c80319c");
    json_decref(j);
    curl_easy_cleanup(h);
}
END_TEST

START_TEST(metrics_count_requests_per_route)
{
    struct reply r;

    get("/v1/items/1", NULL, &r);
    get("/v1/items/2", NULL, &r);
    get("/v1/nothing", NULL, &r);
    get("/metrics", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "http_requests_total{route=\"/v1/items/:id\",method=\"GET\","
                                 "status=\"200\"} 2") != NULL,
                  "metrics:\n%s", r.body);
    ck_assert(strstr(r.body, "route=\"unmatched\",method=\"GET\",status=\"404\"} 1") != NULL);
    ck_assert(strstr(r.body, "# TYPE http_request_duration_seconds histogram") != NULL);
    ck_assert(strstr(r.body, "http_request_duration_seconds_count{route=\"/v1/items/:id\","
                             "method=\"GET\"} 2") != NULL);
    ck_assert(strstr(r.body, "process_resident_memory_bytes ") != NULL);
}
END_TEST

START_TEST(readyz_turns_503_when_draining)
{
    struct reply r;
    json_t *j;

    get("/readyz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    svc_server_drain(srv);
    get("/readyz", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    j = body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "draining");
    json_decref(j);
    get("/healthz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(readyz_says_what_is_down)
{
    struct svc_http_opts o;
    struct svc_server *s2;
    struct reply r;
    json_t *j, *engine;
    char url_base[64];

    svc_http_opts_default(&o);
    o.access_log = false;
    s2 = svc_server_start(&echo_def_with_deps, &o);
    ck_assert_ptr_nonnull(s2);
    memcpy(url_base, base, sizeof(base));
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", svc_server_port(s2));

    engine_up = true;
    get("/readyz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    engine_up = false;
    get("/readyz", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    j = body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "not ready");
    engine = json_object_get(json_object_get(j, "checks"), "engine");
    ck_assert(json_is_false(json_object_get(engine, "ok")));
    ck_assert_str_eq(json_string_value(json_object_get(engine, "detail")),
                     "connection refused on 127.0.0.1:1");
    ck_assert(json_is_true(
        json_object_get(json_object_get(json_object_get(j, "checks"), "kafka"), "ok")));
    json_decref(j);
    /* Alive all the same: /healthz does not depend on the engine. */
    get("/healthz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    memcpy(base, url_base, sizeof(base));
    ck_assert_int_eq(svc_server_stop(s2), 0);
}
END_TEST

/* A service of the test's own: one error of its own and an OpenAPI document. */
#define SHOP_ERRNO_MAP(X) X(EPAID, -9001, 402, "payment-required", "Payment required")

enum {
#define SHOP__ERR_ENUM(name, value, status, type, title) SHOP_##name = (value),
    SHOP_ERRNO_MAP(SHOP__ERR_ENUM)
#undef SHOP__ERR_ENUM
};

static const struct svc_err_def shop_errors[] = {SHOP_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

static const unsigned char shop_openapi[] = "openapi: 3.1.0\ninfo: {title: shop, version: '1'}\n";

static int shop_pay(struct svc_req *req, struct svc_resp *resp)
{
    return svc_resp_error(resp, SHOP_EPAID, "item '%s' must be paid for first",
                          svc_req_param(req, "id"));
}

/* Returns the code without rendering it: lib renders it, with its title as the detail. */
static int shop_pay_bare(struct svc_req *req, struct svc_resp *resp)
{
    (void)req;
    (void)resp;
    return SHOP_EPAID;
}

static const struct svc_route shop_routes[] = {
    {SVC_GET, "/v1/items/:id", shop_pay, 0, 0},
    {SVC_GET, "/v1/bare", shop_pay_bare, 0, 0},
    SVC_ROUTES_END,
};

static const struct svc_def shop_def = {
    .name = "shop-svc",
    .version = "test",
    .routes = shop_routes,
    .errors = shop_errors,
    .openapi = shop_openapi,
};

/* Runs on a second server with shop_def; restores BASE. */
static struct svc_server *shop_start(char saved[64])
{
    struct svc_http_opts o;
    struct svc_server *s2;

    svc_http_opts_default(&o);
    o.access_log = false;
    s2 = svc_server_start(&shop_def, &o);
    ck_assert_ptr_nonnull(s2);
    memcpy(saved, base, 64);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", svc_server_port(s2));
    return s2;
}

static void shop_stop(struct svc_server *s2, const char saved[64])
{
    memcpy(base, saved, 64);
    ck_assert_int_eq(svc_server_stop(s2), 0);
}

START_TEST(openapi_yaml_is_served_from_the_declaration)
{
    char saved[64], ct[128], allow[64];
    struct svc_server *s2;
    struct reply r;
    CURL *h;

    /* echo-svc declares no document: no such route. */
    get("/openapi.yaml", NULL, &r);
    assert_problem(&r, 404, "urn:polyglot:problem:not-found", "no route for 'GET /openapi.yaml'");

    s2 = shop_start(saved);
    get("/openapi.yaml", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(header(&r, "Content-Type", ct, sizeof(ct)), "application/yaml");
    ck_assert_str_eq(r.body, (const char *)shop_openapi);
    ck_assert_uint_eq(r.len, sizeof(shop_openapi) - 1);
    h = curl_easy_init();
    call(h, "POST", "/openapi.yaml", NULL, "{}", &r);
    curl_easy_cleanup(h);
    assert_problem(&r, 405, "urn:polyglot:problem:method-not-allowed", "not allowed");
    ck_assert_str_eq(header(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
    shop_stop(s2, saved);
}
END_TEST

START_TEST(a_service_error_is_rendered_from_its_declaration)
{
    char saved[64];
    struct svc_server *s2 = shop_start(saved);
    struct reply r;
    json_t *j;

    get("/v1/items/a1", NULL, &r);
    assert_problem(&r, 402, "urn:polyglot:problem:payment-required",
                   "item 'a1' must be paid for first");
    j = body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "title")), "Payment required");
    json_decref(j);
    get("/v1/bare", NULL, &r);
    assert_problem(&r, 402, "urn:polyglot:problem:payment-required", "Payment required");
    shop_stop(s2, saved);
    /* A second server with the same declaration (tests start them one after another). */
    s2 = shop_start(saved);
    get("/v1/items/b2", NULL, &r);
    assert_problem(&r, 402, "urn:polyglot:problem:payment-required", "item 'b2'");
    shop_stop(s2, saved);
}
END_TEST

struct slow_call {
    struct reply r;
};

static void *slow_request(void *arg)
{
    struct slow_call *c = arg;

    get("/v1/slow?ms=700", NULL, &c->r);
    return NULL;
}

START_TEST(shutdown_finishes_the_request_in_flight)
{
    struct slow_call c;
    pthread_t t;
    int waited = 0;

    pthread_create(&t, NULL, slow_request, &c);
    while (svc_server_inflight(srv) == 0 && waited++ < 200)
        svc_sleep_ms(5);
    ck_assert_int_eq(svc_server_inflight(srv), 1);
    ck_assert_int_eq(svc_server_stop(srv), 0);
    srv = NULL;
    pthread_join(t, NULL);
    ck_assert_int_eq(c.r.status, 200);
    ck_assert(strstr(c.r.body, "\"slept_ms\":700") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("http");
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    svc_log_set_level(SVC_LOG_ERROR);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, keep_alive_reuses_the_connection);
    tcase_add_test(tc, path_parameters_and_typed_query);
    tcase_add_test(tc, unknown_path_is_404_problem);
    tcase_add_test(tc, wrong_method_is_405_with_allow);
    tcase_add_test(tc, oversized_body_is_413);
    tcase_add_test(tc, wrong_content_type_is_415);
    tcase_add_test(tc, malformed_json_is_400);
    tcase_add_test(tc, typed_body_fields_are_checked_and_named);
    tcase_add_test(tc, chunked_body_over_the_limit_is_413);
    tcase_add_test(tc, oversized_headers_are_refused);
    tcase_add_test(tc, request_id_is_honoured_or_generated);
    tcase_add_test(tc, traceparent_is_continued_or_started);
    tcase_add_test(tc, metrics_count_requests_per_route);
    tcase_add_test(tc, readyz_turns_503_when_draining);
    tcase_add_test(tc, readyz_says_what_is_down);
    tcase_add_test(tc, openapi_yaml_is_served_from_the_declaration);
    tcase_add_test(tc, a_service_error_is_rendered_from_its_declaration);
    tcase_add_test(tc, shutdown_finishes_the_request_in_flight);
    suite_add_tcase(s, tc);
    rc = testenv_run(s);
    curl_global_cleanup();
    return rc;
}

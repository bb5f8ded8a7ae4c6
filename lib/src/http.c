/*
 * http.c: the request and response objects handlers work with, problem+json rendering, typed
 * query parameters and the ids (request id, W3C trace context) every request carries.
 */
#include "internal.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/uuid.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

/* ---- ids -------------------------------------------------------------------------------- */

uint64_t svc__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64 per thread: ids need uniqueness, not secrecy, and a syscall per request is waste. */
static _Thread_local uint64_t rng_state;
static _Thread_local bool rng_seeded;

static uint64_t next64(void)
{
    uint64_t z;

    if (!rng_seeded) {
        if (getrandom(&rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state))
            rng_state = svc__now_ns() ^ (uint64_t)(uintptr_t)&rng_state;
        rng_seeded = true;
    }
    z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void svc__random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        uint64_t r = next64();
        size_t k = n < sizeof(r) ? n : sizeof(r);

        memcpy(p, &r, k);
        p += k;
        n -= k;
    }
}

void svc__random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[64];

    if (n > sizeof(bytes))
        n = sizeof(bytes);
    svc__random(bytes, n);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

bool svc__request_id_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        char c = s[n];

        if (n == SVC__REQUEST_ID_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return n > 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
    bool nonzero = false;

    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

/* "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"; all-zero ids are invalid. */
bool svc__traceparent_parse(const char *s, char trace_id[33])
{
    if (strlen(s) != 55 || s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' ||
        s[52] != '-')
        return false;
    if (!is_lower_hex(s + 3, 32) || !is_lower_hex(s + 36, 16))
        return false;
    if (!((s[53] >= '0' && s[53] <= '9') || (s[53] >= 'a' && s[53] <= 'f')) ||
        !((s[54] >= '0' && s[54] <= '9') || (s[54] >= 'a' && s[54] <= 'f')))
        return false;
    memcpy(trace_id, s + 3, 32);
    trace_id[32] = '\0';
    return true;
}

/* ---- the request ------------------------------------------------------------------------ */

struct svc_arena *svc_req_arena(struct svc_req *req)
{
    return req->arena;
}

void *svc_req_app(struct svc_req *req)
{
    return req->app;
}

const char *svc_req_method(const struct svc_req *req)
{
    return req->method_s;
}

const char *svc_req_path(const struct svc_req *req)
{
    return req->path;
}

const char *svc_req_route(const struct svc_req *req)
{
    return req->match.route != NULL ? req->match.route->path : "unmatched";
}

const char *svc_req_param(const struct svc_req *req, const char *name)
{
    for (int i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.params[i].name, name) == 0)
            return req->match.params[i].value;
    return NULL;
}

const char *svc_req_query(const struct svc_req *req, const char *name)
{
    return svc_query_get(&req->query, name);
}

const char *svc_req_header(struct svc_req *req, const char *name)
{
    return req->conn != NULL ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *svc_req_body(const struct svc_req *req, size_t *len)
{
    if (len != NULL)
        *len = req->body.len;
    return svc_buf_str(&req->body);
}

const char *svc_req_id(const struct svc_req *req)
{
    return req->request_id;
}

const char *svc_req_trace_id(const struct svc_req *req)
{
    return req->trace_id;
}

const char *svc_req_traceparent(const struct svc_req *req)
{
    return req->traceparent;
}

int svc_req_json(struct svc_req *req, struct svc_resp *resp, json_t **out)
{
    struct svc_json_error err;
    int rc = svc_json_parse(svc_buf_str(&req->body), req->body.len, req->max_body,
                            SVC_JSON_PARSE_OBJECT, out, &err);

    if (rc != 0)
        return svc_resp_error(resp, rc, "%s", err.msg);
    svc_arena_defer(req->arena, svc_json_decref, *out);
    return 0;
}

int svc_req_read_json(struct svc_req *req, struct svc_resp *resp,
                      const struct svc_json_field *fields, void *dst)
{
    struct svc_json_error err;
    json_t *root;
    int rc;

    if ((rc = svc_req_json(req, resp, &root)) != 0)
        return rc;
    rc = svc_json_read(root, fields, dst, SVC_JSON_REJECT_UNKNOWN, req->arena, &err);
    if (rc == SVC_EINTERNAL) {
        svc_log_error("field table of '%s %s' is wrong: %s", req->method_s, svc_req_route(req),
                      err.msg);
        return svc_resp_error(resp, rc, "the request could not be read");
    }
    if (rc != 0) {
        svc_resp_error(resp, rc, "%s", err.msg);
        svc_resp_problem_extend(resp, "field", json_string(err.path));
        return rc;
    }
    return 0;
}

/* ---- the response ----------------------------------------------------------------------- */

void svc__resp_init(struct svc_resp *resp, struct svc_arena *a, const char *request_id)
{
    memset(resp, 0, sizeof(*resp));
    resp->arena = a;
    resp->request_id = request_id;
    resp->status = 200;
    svc_buf_init(&resp->body, 0);
}

void svc_resp_header(struct svc_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders == SVC__MAX_RESP_HEADERS) {
        svc_log_warn("response header '%s' dropped: more than %d headers", name,
                     SVC__MAX_RESP_HEADERS);
        return;
    }
    resp->headers[resp->nheaders].name = svc_arena_strdup(resp->arena, name);
    resp->headers[resp->nheaders].value = svc_arena_strdup(resp->arena, value);
    resp->nheaders++;
}

static void clear_body(struct svc_resp *resp)
{
    svc_buf_reset(&resp->body);
    if (resp->problem != NULL) {
        json_decref(resp->problem);
        resp->problem = NULL;
    }
}

int svc_resp_json(struct svc_resp *resp, int status, json_t *body)
{
    clear_body(resp);
    resp->status = status;
    resp->rendered = true;
    resp->code = 0;
    if (body == NULL) {
        resp->content_type = NULL;
        return 0;
    }
    resp->content_type = "application/json";
    svc_json_dump(&resp->body, body);
    json_decref(body);
    return 0;
}

int svc_resp_body(struct svc_resp *resp, int status, const char *content_type, const char *body,
                  size_t len)
{
    clear_body(resp);
    resp->status = status;
    resp->rendered = true;
    resp->code = 0;
    resp->content_type = content_type != NULL ? svc_arena_strdup(resp->arena, content_type) : NULL;
    svc_buf_add(&resp->body, body, len);
    return 0;
}

int svc_resp_empty(struct svc_resp *resp, int status)
{
    return svc_resp_json(resp, status, NULL);
}

static int vproblem(struct svc_resp *resp, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int vproblem(struct svc_resp *resp, int code, const char *fmt, va_list ap)
{
    int status = svc_err_status(code);
    const char *type = svc_err_type(code), *title = svc_err_title(code);
    char detail[1024];
    char type_uri[128];

    clear_body(resp);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    snprintf(type_uri, sizeof(type_uri), "%s%s", SVC_PROBLEM_BASE, type);
    resp->problem =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type_uri, "title", title, "status", status,
                  "detail", detail, "instance", resp->request_id != NULL ? resp->request_id : "");
    resp->status = status;
    resp->rendered = true;
    resp->code = code;
    resp->content_type = "application/problem+json";
    if (status == 503) {
        bool has = false;

        for (int i = 0; i < resp->nheaders && !has; i++)
            has = strcasecmp(resp->headers[i].name, "Retry-After") == 0;
        if (!has)
            svc_resp_header(resp, "Retry-After", "1");
    }
    return code;
}

int svc_resp_error(struct svc_resp *resp, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vproblem(resp, code, fmt, ap);
    va_end(ap);
    return code;
}

int svc_resp_invalid(struct svc_resp *resp, const char *field, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vproblem(resp, SVC_EINVAL, fmt, ap);
    va_end(ap);
    svc_resp_problem_extend(resp, "field", json_string(field));
    return SVC_EINVAL;
}

int svc_resp_problem_extend(struct svc_resp *resp, const char *key, json_t *value)
{
    if (resp->problem == NULL) {
        json_decref(value);
        return SVC_EINVAL;
    }
    json_object_set_new(resp->problem, key, value);
    return 0;
}

void svc__resp_finalize(struct svc_resp *resp)
{
    if (resp->problem == NULL)
        return;
    svc_buf_reset(&resp->body);
    svc_json_dump(&resp->body, resp->problem);
    json_decref(resp->problem);
    resp->problem = NULL;
}

/* ---- typed query parameters ------------------------------------------------------------- */

int svc_query_int(struct svc_req *req, struct svc_resp *resp, const char *name, long long min,
                  long long max, long long def, long long *out)
{
    const char *v = svc_req_query(req, name);
    char *end;
    long long n;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (!(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) || *end != '\0' || errno == ERANGE)
        return svc_resp_invalid(resp, name,
                                "query parameter '%s' must be an integer from %lld to %lld", name,
                                min, max);
    if (n < min || n > max)
        return svc_resp_invalid(resp, name,
                                "query parameter '%s' must be from %lld to %lld, not %lld", name,
                                min, max, n);
    *out = n;
    return 0;
}

int svc_query_enum(struct svc_req *req, struct svc_resp *resp, const char *name,
                   const char *const *allowed, int def, int *out)
{
    const char *v = svc_req_query(req, name);
    struct svc_buf list = SVC_BUF_INIT;
    int rc;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    for (int i = 0; allowed[i] != NULL; i++) {
        if (strcmp(v, allowed[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    for (int i = 0; allowed[i] != NULL; i++)
        svc_buf_addf(&list, "%s'%s'", i > 0 ? ", " : "", allowed[i]);
    rc = svc_resp_invalid(resp, name, "query parameter '%s' must be one of %s", name,
                          svc_buf_str(&list));
    svc_buf_release(&list);
    return rc;
}

int svc_query_bool(struct svc_req *req, struct svc_resp *resp, const char *name, int def, int *out)
{
    const char *v = svc_req_query(req, name);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return 0;
    }
    return svc_resp_invalid(resp, name, "query parameter '%s' must be true or false", name);
}

int svc_query_only(struct svc_req *req, struct svc_resp *resp, const char *const *allowed)
{
    for (int i = 0; i < req->query.n; i++) {
        const char *name = req->query.items[i].name;
        bool ok = false;

        for (int j = 0; allowed != NULL && allowed[j] != NULL && !ok; j++)
            ok = strcmp(name, allowed[j]) == 0;
        if (!ok)
            return svc_resp_invalid(resp, name, "query parameter '%s' is not accepted here", name);
    }
    return 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *svc_cursor_encode(struct svc_req *req, const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = svc_arena_alloc(req->arena, (len + 2) / 3 * 4 + 1);
    size_t j = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;

        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[j++] = b64url[(v >> 18) & 63];
        out[j++] = b64url[(v >> 12) & 63];
        if (i + 1 < len)
            out[j++] = b64url[(v >> 6) & 63];
        if (i + 2 < len)
            out[j++] = b64url[v & 63];
    }
    out[j] = '\0';
    return out;
}

static int b64val(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;

    return p != NULL ? (int)(p - b64url) : -1;
}

int svc_query_cursor(struct svc_req *req, struct svc_resp *resp, const char *name, size_t max_len,
                     const char **out)
{
    const char *v = svc_req_query(req, name);
    size_t n, j = 0;
    unsigned char *d;
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    if (v == NULL)
        return 0;
    n = strlen(v);
    if (n == 0 || n % 4 == 1 || n > (max_len + 2) / 3 * 4)
        goto bad;
    d = svc_arena_alloc(req->arena, n * 3 / 4 + 1);
    for (size_t i = 0; i < n; i++) {
        int x = b64val(v[i]);

        if (x < 0)
            goto bad;
        acc = acc << 6 | (uint32_t)x;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[j++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, so every cursor has exactly one spelling. */
    if ((acc & ((1u << bits) - 1)) != 0 || j > max_len || memchr(d, '\0', j) != NULL)
        goto bad;
    d[j] = '\0';
    *out = (const char *)d;
    return 0;
bad:
    return svc_resp_invalid(resp, name, "query parameter '%s' is not a valid cursor", name);
}

const char *svc_keyset_cursor(struct svc_req *req, long long ms, const char *id)
{
    char raw[96];
    int n = snprintf(raw, sizeof(raw), "%lld:%s", ms, id);

    return svc_cursor_encode(req, raw, (size_t)n);
}

int svc_resp_page(struct svc_req *req, struct svc_resp *resp, json_t *items, bool more,
                  long long ms, const char *id)
{
    json_t *next = more ? json_string(svc_keyset_cursor(req, ms, id)) : json_null();

    return svc_resp_json(resp, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

int svc_query_keyset(struct svc_req *req, struct svc_resp *resp, const char *name, long long *ms,
                     char id[37], bool *present)
{
    const char *raw, *colon;
    long long v = 0;
    struct svc_uuid u;
    int rc;

    *present = false;
    if ((rc = svc_query_cursor(req, resp, name, 19 + 1 + 36, &raw)) != 0 || raw == NULL)
        return rc;
    colon = strchr(raw, ':');
    if (colon == NULL || colon == raw || colon - raw > 18)
        goto bad;
    for (const char *p = raw; p < colon; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        v = v * 10 + (*p - '0');
    }
    if (!svc_uuid_parse(colon + 1, strlen(colon + 1), &u))
        goto bad;
    svc_uuid_format(&u, id);
    *ms = v;
    *present = true;
    return 0;
bad:
    return svc_resp_invalid(resp, name, "query parameter '%s' is not a valid cursor", name);
}

int svc_req_param_uuid(struct svc_req *req, struct svc_resp *resp, const char *name, char out[37])
{
    const char *v = svc_req_param(req, name);
    struct svc_uuid u;

    if (v == NULL || !svc_uuid_parse(v, strlen(v), &u))
        return svc_resp_invalid(resp, name, "path parameter '%s' must be a UUID, not '%.64s'", name,
                                v != NULL ? v : "");
    svc_uuid_format(&u, out);
    return 0;
}

int svc_req_idempotency_key(struct svc_req *req, struct svc_resp *resp, const char **out)
{
    const char *k = svc_req_header(req, "Idempotency-Key");
    size_t n = 0;

    *out = NULL;
    if (k == NULL)
        return 0;
    for (; k[n] != '\0'; n++) {
        char c = k[n];

        if (n == 128 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == ':'))
            break;
    }
    if (n == 0 || k[n] != '\0')
        return svc_resp_invalid(resp, "Idempotency-Key",
                                "header 'Idempotency-Key' must be 1 to 128 of A-Z a-z 0-9 _ . : -");
    *out = k;
    return 0;
}

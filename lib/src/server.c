/*
 * server.c: libmicrohttpd glue. One access handler for every request: route, check limits,
 * collect the body, call the service's handler, queue the response; one completion callback:
 * access log, metrics, arena release.
 */
#include "internal.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct svc_server {
    const struct svc_def *def;
    struct svc_http_opts opts;
    struct MHD_Daemon *mhd;
    int port;
    size_t openapi_len;
    atomic_bool draining;
    atomic_int inflight;
    struct svc_metric *requests, *duration;
};

struct svc_health {
    json_t *checks;
    bool ok;
};

void svc_http_opts_default(struct svc_http_opts *o)
{
    o->bind = "127.0.0.1";
    o->port = 0;
    o->threads = 2;
    o->max_body = 1u << 20;
    o->conn_memory = 8u << 10;
    o->conn_limit = 1024;
    o->conn_timeout_s = 30;
    o->shutdown_grace_ms = 10000;
    o->access_log = true;
}

void svc_health_report(struct svc_health *h, const char *component, bool ok, const char *fmt, ...)
{
    json_t *c = json_object();

    json_object_set_new(c, "ok", json_boolean(ok));
    if (fmt != NULL) {
        char detail[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        json_object_set_new(c, "detail", json_string(detail));
    }
    json_object_set_new(h->checks, component, c);
    h->ok &= ok;
}

/* ---- built-in routes -------------------------------------------------------------------- */

static struct svc_server *server_of(struct svc_req *req)
{
    return req->srv;
}

/* A constant: the cheapest answer there is, since probes and load balancers call it most. */
static int healthz(struct svc_req *req, struct svc_resp *resp)
{
    static const char body[] = "{\"status\":\"ok\"}";

    (void)req;
    return svc_resp_body(resp, 200, "application/json", body, sizeof(body) - 1);
}

static int readyz(struct svc_req *req, struct svc_resp *resp)
{
    struct svc_server *s = server_of(req);
    struct svc_health h = {json_object(), true};

    if (atomic_load(&s->draining)) {
        json_decref(h.checks);
        return svc_resp_json(resp, 503, json_pack("{s:s}", "status", "draining"));
    }
    if (s->def->ready != NULL)
        s->def->ready(s->def->app, &h);
    return svc_resp_json(
        resp, h.ok ? 200 : 503,
        json_pack("{s:s, s:o}", "status", h.ok ? "ready" : "not ready", "checks", h.checks));
}

static int metrics(struct svc_req *req, struct svc_resp *resp)
{
    struct svc_buf b = SVC_BUF_INIT;
    int rc;

    (void)req;
    svc_metrics_render(&b);
    rc = svc_resp_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", svc_buf_str(&b),
                       b.len);
    svc_buf_release(&b);
    return rc;
}

static int openapi(struct svc_req *req, struct svc_resp *resp)
{
    struct svc_server *s = server_of(req);

    return svc_resp_body(resp, 200, "application/yaml", (const char *)s->def->openapi,
                         s->openapi_len);
}

static const struct svc_route builtin_routes[] = {
    {SVC_GET, "/healthz", healthz, SVC_ROUTE_INTERNAL, 0},
    {SVC_GET, "/readyz", readyz, SVC_ROUTE_INTERNAL, 0},
    {SVC_GET, "/metrics", metrics, SVC_ROUTE_INTERNAL, 0},
    SVC_ROUTES_END,
};

/* Apart, so that a service without a document has no such route at all (404, not 405). */
static const struct svc_route openapi_routes[] = {
    {SVC_GET, "/openapi.yaml", openapi, 0, 0},
    SVC_ROUTES_END,
};

/* ---- request life ----------------------------------------------------------------------- */

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct svc_req *req = cls;

    (void)kind;
    if (req->early_code == 0 && svc_query_add(&req->query, key, value, req->arena) != 0) {
        req->early_code = SVC_EINVAL;
        req->early_detail =
            req->query.n == SVC_MAX_QUERY
                ? svc_arena_printf(req->arena, "more than %d query parameters", SVC_MAX_QUERY)
                : svc_arena_printf(req->arena, "query parameter '%s' is not validly encoded", key);
    }
    return MHD_YES;
}

static bool is_json_type(const char *ct)
{
    size_t n = strcspn(ct, ";");

    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* application/<anything>+json, e.g. application/merge-patch+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static void early(struct svc_req *req, int code, const char *detail)
{
    if (req->early_code == 0) {
        req->early_code = code;
        req->early_detail = detail;
    }
}

/* The first call of a request: everything that can be decided from the headers alone. */
static struct svc_req *begin(struct svc_server *s, struct MHD_Connection *conn, const char *url,
                             const char *method)
{
    struct svc_arena *a = svc_arena_new();
    struct svc_req *req = svc_arena_calloc(a, sizeof(*req));
    const char *rid, *tp, *cl, *te, *ct;
    int rc;

    req->srv = s;
    req->app = s->def->app;
    req->conn = conn;
    req->arena = a;
    req->start_ns = svc__now_ns();
    req->method_s = svc_arena_strdup(a, method);
    req->method = svc_method_parse(method);
    req->path = svc_arena_strdup(a, url);
    svc_buf_init(&req->body, 0);

    rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid != NULL && svc__request_id_valid(rid))
        memcpy(req->request_id, rid, strlen(rid) + 1);
    else
        svc__random_hex(req->request_id, 16);
    tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    if (tp == NULL || !svc__traceparent_parse(tp, req->trace_id))
        svc__random_hex(req->trace_id, 16);
    svc__random_hex(req->span_id, 8);
    /* "00-<trace id>-<span id>-01", assembled without printf: this runs on every request. */
    memcpy(req->traceparent, "00-", 3);
    memcpy(req->traceparent + 3, req->trace_id, 32);
    req->traceparent[35] = '-';
    memcpy(req->traceparent + 36, req->span_id, 16);
    memcpy(req->traceparent + 52, "-01", 4);
    svc__resp_init(&req->resp, a, req->request_id);

    /* The built-in routes first; the service's only for paths they do not have, so a wrong
     * method on /healthz stays a 405. */
    rc = svc_router_match(builtin_routes, req->method, url, a, &req->match);
    if (rc == SVC_ENOTFOUND && s->def->openapi != NULL)
        rc = svc_router_match(openapi_routes, req->method, url, a, &req->match);
    if (rc == SVC_ENOTFOUND)
        rc = svc_router_match(s->def->routes, req->method, url, a, &req->match);
    if (rc == SVC_ENOTFOUND) {
        early(req, SVC_ENOTFOUND, svc_arena_printf(a, "no route for '%s %s'", method, url));
    } else if (rc == SVC_EMETHOD) {
        char allow[96];

        svc_method_list(req->match.allowed, allow, sizeof(allow));
        svc_resp_header(&req->resp, "Allow", allow);
        early(req, SVC_EMETHOD,
              svc_arena_printf(a, "method '%s' is not allowed on '%s' (allowed: %s)", method, url,
                               allow));
    } else if (rc != 0) {
        early(req, SVC_EINVAL, svc_arena_printf(a, "path '%s' is not validly encoded", url));
    }

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_query_arg, req);

    req->max_body = req->match.route != NULL && req->match.route->max_body != 0
                        ? req->match.route->max_body
                        : s->opts.max_body;
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    if (cl != NULL) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);

        if (*end == '\0' && n > req->max_body)
            early(req, SVC_ETOOBIG,
                  svc_arena_printf(a, "request body of %llu bytes exceeds the limit of %zu bytes",
                                   n, req->max_body));
    }
    ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (req->match.route != NULL && (req->match.route->flags & SVC_ROUTE_JSON) != 0 &&
        ((cl != NULL && strcmp(cl, "0") != 0) || te != NULL) && (ct == NULL || !is_json_type(ct)))
        early(req, SVC_EMEDIATYPE,
              svc_arena_printf(a, "content type '%s' is not accepted here: send application/json",
                               ct != NULL ? ct : "(none)"));
    atomic_fetch_add(&s->inflight, 1);
    return req;
}

static enum MHD_Result send_response(struct svc_req *req)
{
    struct svc_resp *resp = &req->resp;
    struct MHD_Response *r;
    enum MHD_Result ret;
    char *body;
    size_t len;

    svc__resp_finalize(resp);
    body = svc_buf_detach(&resp->body, &len);
    req->bytes_sent = len;
    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    if (resp->content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(r, "X-Request-Id", req->request_id);
    for (int i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    ret = MHD_queue_response(req->conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    req->queued = true;
    return ret;
}

static void run_handler(struct svc_req *req)
{
    struct svc_resp *resp = &req->resp;
    int rc;

    if (req->early_code != 0) {
        svc_resp_error(resp, req->early_code, "%s", req->early_detail);
        return;
    }
    svc_log_set_request(req->request_id, req->trace_id);
    rc = req->match.route->handler(req, resp);
    if (rc < 0 && !resp->rendered) {
        svc_resp_error(resp, rc, "%s", svc_err_title(rc));
    } else if (!resp->rendered) {
        svc_log_error("handler of '%s %s' returned without a response", req->method_s,
                      svc_req_route(req));
        svc_resp_error(resp, SVC_EINTERNAL, "the handler produced no response");
    }
    svc_log_set_request(NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct svc_server *s = cls;
    struct svc_req *req = *req_cls;

    (void)version;
    if (req == NULL) {
        req = begin(s, conn, url, method);
        *req_cls = req;
        /* Answering on this first call makes libmicrohttpd close the connection (see
         * ENGINES.md), so requests are answered on a later call. The exception is a body that
         * Content-Length already says is too big: answer before reading it, and let the
         * connection close. */
        if (req->early_code == SVC_ETOOBIG) {
            run_handler(req);
            return send_response(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* A chunked body can only be found too big while reading: the rest is discarded and
         * the 413 sent at the end. */
        if (req->early_code == 0 && req->body.len + *upload_data_size > req->max_body)
            early(req, SVC_ETOOBIG,
                  svc_arena_printf(req->arena, "request body exceeds the limit of %zu bytes",
                                   req->max_body));
        if (req->early_code == 0 && !req->queued)
            svc_buf_add(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->queued)
        return MHD_YES;
    run_handler(req);
    return send_response(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct svc_server *s = cls;
    struct svc_req *req = *req_cls;
    double secs;
    char status[8];

    (void)conn;
    if (req == NULL)
        return;
    secs = (double)(svc__now_ns() - req->start_ns) / 1e9;
    snprintf(status, sizeof(status), "%d", req->queued ? req->resp.status : 499);
    {
        const char *labels[] = {svc_req_route(req), req->method_s, status};
        const char *hlabels[] = {svc_req_route(req), req->method_s};

        /* Unknown methods would make label values up from input: fold them. */
        if (req->method == 0)
            labels[1] = hlabels[1] = "OTHER";
        svc_counter_inc(s->requests, labels);
        svc_histogram_observe(s->duration, hlabels, secs);
    }
    if (s->opts.access_log) {
        struct svc_buf f = SVC_BUF_INIT;

        svc_buf_adds(&f, "\"method\":");
        svc_buf_add_json_str(&f, req->method_s, strlen(req->method_s));
        svc_buf_adds(&f, ",\"route\":");
        svc_buf_add_json_str(&f, svc_req_route(req), strlen(svc_req_route(req)));
        svc_buf_adds(&f, ",\"path\":");
        svc_buf_add_json_str(&f, req->path, strlen(req->path));
        svc_buf_addf(&f, ",\"status\":%s,\"duration_us\":%llu,\"bytes\":%zu", status,
                     (unsigned long long)(secs * 1e6), req->bytes_sent);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            svc_buf_addf(&f, ",\"terminated\":%d", (int)toe);
        svc_log_set_request(req->request_id, req->trace_id);
        svc_log_fields(SVC_LOG_INFO, svc_buf_str(&f), "request");
        svc_log_set_request(NULL, NULL);
        svc_buf_release(&f);
    }
    svc_buf_release(&req->body);
    svc_buf_release(&req->resp.body);
    if (req->resp.problem != NULL)
        json_decref(req->resp.problem);
    atomic_fetch_sub(&s->inflight, 1);
    svc_arena_free(req->arena);
    *req_cls = NULL;
}

/* We decode paths and query strings ourselves (router.c), so that "%2F" in an id does not
 * become a path separator: libmicrohttpd must hand them over untouched. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    /* libmicrohttpd's own format strings: not literals here, but not ours to check either. */
    vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-diagnostic-format-nonliteral)
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    svc_log_warn("libmicrohttpd: %s", msg);
}

static const char *const request_labels[] = {"route", "method", "status", NULL};
static const char *const duration_labels[] = {"route", "method", NULL};

struct svc_server *svc_server_start(const struct svc_def *def, const struct svc_http_opts *o)
{
    struct svc_server *s;
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;

    if (def->errors != NULL && svc_err_register(def->errors) != 0)
        return NULL;
    s = svc_calloc(1, sizeof(*s));
    s->def = def;
    if (def->openapi != NULL)
        s->openapi_len = strlen((const char *)def->openapi);
    s->opts = *o;
    s->requests = svc_counter_new("http_requests_total", "HTTP requests answered", request_labels);
    s->duration = svc_histogram_new(
        "http_request_duration_seconds", "Time from the first byte of a request to its completion",
        duration_labels, svc_metrics_latency_buckets, svc_metrics_latency_nbuckets);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)o->port);
    if (inet_pton(AF_INET, o->bind, &sa.sin_addr) != 1) {
        svc_log_error("cannot listen: bind address '%s' is not an IPv4 address", o->bind);
        free(s);
        return NULL;
    }
    /* The logger goes first: libmicrohttpd uses its own for anything said before it. */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        o->conn_memory, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->conn_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout_s, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(o->threads > 1 ? o->threads : 0), MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (s->mhd == NULL) {
        svc_log_error("cannot listen on %s:%d (port in use, or not permitted)", o->bind, o->port);
        free(s);
        return NULL;
    }
    info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : o->port;
    return s;
}

int svc_server_port(const struct svc_server *s)
{
    return s->port;
}

int svc_server_inflight(const struct svc_server *s)
{
    return atomic_load(&((struct svc_server *)s)->inflight);
}

void svc_server_drain(struct svc_server *s)
{
    atomic_store(&s->draining, true);
}

int svc_server_stop(struct svc_server *s)
{
    MHD_socket fd;
    uint64_t deadline;
    int left;

    svc_server_drain(s);
    /* Stop accepting; connections already open may finish their requests. The listening
     * socket is closed only after the daemon has stopped: with a thread pool each worker takes
     * it out of its own epoll set when it notices the quiesce, and closing it earlier makes
     * that fail, which libmicrohttpd treats as fatal (seen in CI). */
    fd = MHD_quiesce_daemon(s->mhd);
    deadline = svc__now_ns() + (uint64_t)s->opts.shutdown_grace_ms * 1000000u;
    while (atomic_load(&s->inflight) > 0 && svc__now_ns() < deadline) {
        struct timespec ts = {0, 10L * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    left = atomic_load(&s->inflight);
    if (left > 0)
        svc_log_warn("shutdown grace of %d ms over with %d requests in flight",
                     s->opts.shutdown_grace_ms, left);
    MHD_stop_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    free(s);
    return left;
}

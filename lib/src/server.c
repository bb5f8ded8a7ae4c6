/*
 * server.c: libmicrohttpd glue. One access handler for every request: route, check limits,
 * collect the body, call the service's handler, queue the response; one completion callback:
 * access log, metrics, arena release.
 *
 * The edge: libmicrohttpd 0.9.75 has one timer per connection, an idle timeout that every byte
 * resets, and trusts the framing headers it is sent. So the server keeps its own record of
 * every connection (struct conn, from MHD_OPTION_NOTIFY_CONNECTION): what phase it is in
 * (sending its head, its body, being served, idle) and since when. A watchdog thread closes
 * those past their deadline, a new connection beyond the limit closes the oldest idle or
 * half-sent one, and the first access-handler call refuses ambiguous framing before any body
 * is read.
 */
#include "internal.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * What a connection is doing, for its deadlines. Moves are compare-and-swap, so that exactly one
 * thread wins CONN_CUT: the one that then writes a last response on the socket itself (nobody
 * else writes to it in the phases that can be cut) and shuts it down.
 */
enum conn_phase {
    CONN_HEAD, /* accepted, or its request line arrived: the head is due */
    CONN_BODY, /* head complete, body being read: a minimum rate is due */
    CONN_BUSY, /* being served (handler, response): no deadline of ours */
    CONN_IDLE, /* keep-alive between requests */
    CONN_CUT,  /* shut down by us; libmicrohttpd closes it on its next event */
};

struct conn {
    struct conn *prev, *next; /* svc_server.conns, under svc_server.mu */
    MHD_socket fd;
    atomic_int phase;
    _Atomic uint64_t since_ns;   /* start of the phase */
    _Atomic uint64_t body_bytes; /* of the request in CONN_BODY */
    /* The query string of the request being read, moved out of libmicrohttpd's reach by
     * on_uri (only the connection's own thread touches it). */
    char *query;
    size_t query_cap;
};

struct svc_server {
    const struct svc_def *def;
    struct svc_http_opts opts;
    struct MHD_Daemon *mhd;
    int port;
    size_t openapi_len;
    atomic_bool draining;
    atomic_int inflight;
    struct svc_metric *requests, *duration, *cuts;
    /* The connections, oldest first; MU also guards STOPPING and is WAKE's lock. */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    struct conn conns;
    int nconns;      /* in the list */
    atomic_int ncut; /* of which cut and not yet closed */
    bool stopping;
    pthread_t watchdog;
    bool watchdog_running;
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
    o->head_timeout_ms = 10000;
    o->min_body_rate = 1024;
    o->max_conn_per_ip = 256;
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

/* ---- connections: deadlines and the limit ------------------------------------------------ */

static uint64_t ms_ns(int64_t ms)
{
    return (uint64_t)ms * 1000000u;
}

/* Moves C from phase FROM to TO; false when C was not in FROM (another thread moved it). */
static bool conn_move(struct conn *c, int from, int to)
{
    return atomic_compare_exchange_strong(&c->phase, &from, to);
}

/* Starts phase TO unless C was cut meanwhile; the time first, so that whoever sees the new
 * phase sees its start too. */
static bool conn_enter(struct conn *c, int to)
{
    int cur = atomic_load(&c->phase);

    atomic_store(&c->since_ns, svc__now_ns());
    while (cur != CONN_CUT)
        if (atomic_compare_exchange_weak(&c->phase, &cur, to))
            return true;
    return false;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/*
 * Writes RESP (finalized) on FD as a whole HTTP/1.1 response that closes the connection. Only
 * for a connection nobody else writes to (see enum conn_phase). Best effort: the socket is
 * non-blocking, and a response that does not fit in its buffer at once is cut short, since the
 * connection is being closed for misbehaving anyway.
 */
static size_t send_raw(MHD_socket fd, const struct svc_resp *resp, const char *request_id)
{
    struct svc_buf b = SVC_BUF_INIT;
    const char *reason = MHD_get_reason_phrase_for((unsigned)resp->status);
    size_t off = 0;

    svc_buf_addf(&b, "HTTP/1.1 %d %s\r\n", resp->status, reason != NULL ? reason : "");
    if (resp->content_type != NULL)
        svc_buf_addf(&b, "Content-Type: %s\r\n", resp->content_type);
    svc_buf_addf(&b, "X-Request-Id: %s\r\n", request_id);
    for (int i = 0; i < resp->nheaders; i++)
        svc_buf_addf(&b, "%s: %s\r\n", resp->headers[i].name, resp->headers[i].value);
    svc_buf_addf(&b, "Connection: close\r\nContent-Length: %zu\r\n\r\n", resp->body.len);
    svc_buf_add(&b, resp->body.data, resp->body.len);
    while (off < b.len) {
        ssize_t n = send(fd, b.data + off, b.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    svc_buf_release(&b);
    return resp->body.len;
}

/*
 * Cuts C, which must be in phase FROM: answers CODE with DETAIL when CODE is not 0 (a problem
 * with a fresh request id), then shuts the socket down, which libmicrohttpd notices on its next
 * event for it and closes the connection. REASON labels http_connections_cut_total. False when
 * C had left FROM meanwhile. Callers hold S->mu, so C is not closed under them.
 */
static bool conn_cut(struct svc_server *s, struct conn *c, int from, int code, const char *detail,
                     const char *reason)
{
    const char *labels[] = {reason};

    if (!conn_move(c, from, CONN_CUT))
        return false;
    atomic_fetch_add(&s->ncut, 1);
    if (code != 0) {
        struct svc_arena *a = svc_arena_new();
        struct svc_resp resp;
        char rid[33];

        svc__random_hex(rid, 16);
        svc__resp_init(&resp, a, rid);
        svc_resp_error(&resp, code, "%s", detail);
        svc__resp_finalize(&resp);
        send_raw(c->fd, &resp, rid);
        svc_buf_release(&resp.body);
        svc_arena_free(a);
    }
    shutdown(c->fd, SHUT_RDWR);
    svc_counter_inc(s->cuts, labels);
    return true;
}

/*
 * The limit is exceeded by NEWC: close the connection that costs the least to lose, the one
 * idle or in its head for the longest (an idle one silently, as a keep-alive timeout would;
 * one in its head with a 503), else refuse NEWC itself. Under S->mu.
 */
static void conn_evict(struct svc_server *s, struct conn *newc)
{
    struct conn *victim = NULL;
    uint64_t oldest = UINT64_MAX;
    int phase = CONN_HEAD;

    for (struct conn *c = s->conns.next; c != &s->conns; c = c->next) {
        int p = atomic_load(&c->phase);
        uint64_t since = atomic_load(&c->since_ns);

        if (c != newc && (p == CONN_IDLE || p == CONN_HEAD) && since < oldest) {
            victim = c;
            oldest = since;
            phase = p;
        }
    }
    if (victim != NULL && phase == CONN_IDLE && conn_cut(s, victim, CONN_IDLE, 0, NULL, "evicted"))
        return;
    if (victim != NULL && phase == CONN_HEAD &&
        conn_cut(s, victim, CONN_HEAD, SVC_EUNAVAILABLE,
                 "the server is at its connection limit and this request was the slowest",
                 "evicted"))
        return;
    conn_cut(s, newc, CONN_HEAD, SVC_EUNAVAILABLE,
             "the server is at its connection limit with every connection busy", "refused");
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct svc_server *s = cls;
    struct conn *c;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

        c = svc_calloc(1, sizeof(*c));
        c->fd = info != NULL ? info->connect_fd : MHD_INVALID_SOCKET;
        atomic_store(&c->since_ns, svc__now_ns());
        atomic_store(&c->phase, CONN_HEAD);
        *socket_context = c;
        pthread_mutex_lock(&s->mu);
        c->prev = s->conns.prev;
        c->next = &s->conns;
        s->conns.prev->next = c;
        s->conns.prev = c;
        s->nconns++;
        if (c->fd != MHD_INVALID_SOCKET && s->nconns - atomic_load(&s->ncut) > s->opts.conn_limit)
            conn_evict(s, c);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    c = *socket_context;
    if (c == NULL)
        return;
    /* libmicrohttpd closes the socket only after this notification: under the lock, no
     * cut can reach a descriptor that is already someone else's. */
    pthread_mutex_lock(&s->mu);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    s->nconns--;
    if (atomic_load(&c->phase) == CONN_CUT)
        atomic_fetch_sub(&s->ncut, 1);
    pthread_mutex_unlock(&s->mu);
    free(c->query);
    free(c);
    *socket_context = NULL;
}

/* Every 100 ms: connections past their deadline are cut. */
static void *watchdog(void *arg)
{
    struct svc_server *s = arg;
    uint64_t head_ns = ms_ns(s->opts.head_timeout_ms);
    uint64_t idle_ns = ms_ns((int64_t)s->opts.conn_timeout_s * 1000);
    char detail[160];

    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        uint64_t now = svc__now_ns();
        struct timespec until;

        for (struct conn *c = s->conns.next; c != &s->conns; c = c->next) {
            int p = atomic_load(&c->phase);
            uint64_t since = atomic_load(&c->since_ns);
            uint64_t age = now > since ? now - since : 0;

            if (p == CONN_HEAD && age > head_ns) {
                snprintf(detail, sizeof(detail), "the request head did not arrive within %d ms",
                         s->opts.head_timeout_ms);
                conn_cut(s, c, CONN_HEAD, SVC_EREQTIMEOUT, detail, "head_timeout");
            } else if (p == CONN_BODY && age > head_ns + atomic_load(&c->body_bytes) * 1000000000u /
                                                             (uint64_t)s->opts.min_body_rate) {
                snprintf(detail, sizeof(detail), "the request body arrived slower than %d bytes/s",
                         s->opts.min_body_rate);
                conn_cut(s, c, CONN_BODY, SVC_EREQTIMEOUT, detail, "body_rate");
            } else if (p == CONN_IDLE && age > idle_ns) {
                conn_cut(s, c, CONN_IDLE, 0, NULL, "idle");
            }
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100L * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wake, &s->mu, &until);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/*
 * Called by libmicrohttpd with the request line's target before it parses the query string
 * into one record per parameter in the connection's memory pool, where a few hundred
 * parameters ran the pool out and left the request unanswered until the idle timeout
 * (0.9.75). The query string is moved to C and cut off the target in place (the header allows
 * "processing the URI ... before it is parsed"), so libmicrohttpd parses none, and begin()
 * parses it with a limit of its own. Also: a keep-alive connection's next request has begun.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct conn *c = conn_of(mc);
    char *q = strchr(uri, '?');

    (void)cls;
    if (c == NULL)
        return NULL;
    if (atomic_load(&c->phase) == CONN_IDLE)
        conn_enter(c, CONN_HEAD);
    if (q == NULL) {
        if (c->query != NULL)
            c->query[0] = '\0';
        return NULL;
    }
    {
        size_t n = strlen(q + 1);

        if (n + 1 > c->query_cap) {
            free(c->query);
            c->query_cap = n + 1;
            c->query = svc_malloc(c->query_cap);
        }
        memcpy(c->query, q + 1, n + 1);
        q[1] = '\0';
    }
    return NULL;
}

/* ---- request life ----------------------------------------------------------------------- */

/* The query string on_uri kept: the parameters, at most SVC_MAX_QUERY of them (414). */
static void parse_query(struct svc_req *req, const char *qs)
{
    const char *p = qs;

    while (qs != NULL && *p != '\0' && req->early_code == 0) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);

        if (len > 0) {
            const char *key = svc_arena_strndup(req->arena, p, eq != NULL ? (size_t)(eq - p) : len);
            const char *value =
                eq != NULL ? svc_arena_strndup(req->arena, eq + 1, len - (size_t)(eq - p) - 1)
                           : NULL;

            if (req->query.n == SVC_MAX_QUERY) {
                req->early_code = SVC_EURITOOLONG;
                req->early_detail =
                    svc_arena_printf(req->arena, "more than %d query parameters", SVC_MAX_QUERY);
            } else if (svc_query_add(&req->query, key, value, req->arena) != 0) {
                req->early_code = SVC_EINVAL;
                req->early_detail = svc_arena_printf(
                    req->arena, "query parameter '%s' is not validly encoded", key);
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
}

/* What the framing headers say, gathered in one pass over every header. */
struct head_scan {
    struct svc_req *req;
    int n, ncl, nte, nhost;
    const char *te;
    const char *bad;      /* the first header with a control byte or a bad name, for the detail */
    const char *prev_end; /* just after the previous header's value in libmicrohttpd's buffer */
    const char *prev_key;
};

/*
 * libmicrohttpd 0.9.75 parses the head in place and measures a value with strlen(), so a NUL
 * inside a value silently cuts it short ("a\0b" reads "a"). What it cut off is still in its
 * buffer, between that value's end and the next header's name, where a clean head has only
 * the NULs written over its CR LF (and white space trimmed off the value). A hidden byte
 * there is a NUL-smuggled value. (The last header has no next one to bound it: unchecked.)
 */
static bool hidden_after_nul(const char *end, const char *next)
{
    if (end == NULL || next <= end || next - end > 4096)
        return false;
    for (const char *p = end; p < next; p++)
        if (*p != '\0' && *p != ' ' && *p != '\t')
            return true;
    return false;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct head_scan *h = cls;

    (void)kind;
    h->n++;
    if (strcasecmp(key, "Content-Length") == 0)
        h->ncl++;
    else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        h->nte++;
        h->te = value;
    } else if (strcasecmp(key, "Host") == 0)
        h->nhost++;
    if (h->bad == NULL && hidden_after_nul(h->prev_end, key))
        h->bad = h->prev_key;
    h->prev_end = value != NULL ? value + value_size : NULL;
    h->prev_key = key;
    if (h->bad != NULL)
        return MHD_YES;
    /* libmicrohttpd 0.9.75 keeps control bytes in values: refused (RFC 9110, 5.5), as is a
     * name that is no token ("Content-Length :" would otherwise be a header nobody checks). */
    if (key_size == 0 || strlen(key) != key_size || value == NULL || strlen(value) != value_size)
        h->bad = key;
    for (size_t i = 0; i < key_size && h->bad == NULL; i++)
        if (!is_tchar((unsigned char)key[i]))
            h->bad = key;
    for (size_t i = 0; i < value_size && h->bad == NULL; i++) {
        unsigned char ch = (unsigned char)value[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            h->bad = key;
    }
    return MHD_YES;
}

/* The next element of the list at *P (commas and white space between), or false at its end. */
static bool next_coding(const char **p, const char **tok, size_t *len)
{
    *p += strspn(*p, " \t,");
    if (**p == '\0')
        return false;
    *tok = *p;
    *len = strcspn(*p, " \t,;");
    *p += strcspn(*p, ",");
    return true;
}

/*
 * Refuses, before any body is read, what two parsers could frame differently (request
 * smuggling: RFC 9112, 6.1 and 6.3) and what HTTP/1.1 requires: one Content-Length at most (even
 * two equal ones are refused), not both it and Transfer-Encoding, Transfer-Encoding exactly
 * "chunked" (400 when chunked is not the last coding or comes twice, since the body length is
 * then unknown; 501 for another coding before it, which we do not implement), exactly one Host
 * in HTTP/1.1, header names that are tokens and values without control bytes. Each of these is
 * answered on the first call, which makes libmicrohttpd close the connection after the answer.
 */
static void check_head(struct svc_req *req, const char *version)
{
    struct head_scan h = {req, 0, 0, 0, 0, NULL, NULL, NULL, NULL};
    struct svc_arena *a = req->arena;

    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, scan_header, &h);
    req->close = true;
    if (h.bad != NULL) {
        req->early_code = SVC_EINVAL;
        req->early_detail = svc_arena_printf(
            a, "header '%.64s' has a control character or is not a valid field", h.bad);
    } else if (h.ncl > 1) {
        req->early_code = SVC_EINVAL;
        req->early_detail = "more than one Content-Length header";
    } else if (h.nte > 1) {
        req->early_code = SVC_EINVAL;
        req->early_detail = "more than one Transfer-Encoding header";
    } else if (h.ncl == 1 && h.nte == 1) {
        req->early_code = SVC_EINVAL;
        req->early_detail = "Content-Length and Transfer-Encoding together";
    } else if (h.nte == 1) {
        const char *p = h.te, *tok = NULL, *last = NULL, *other = NULL;
        size_t len = 0, last_len = 0, other_len = 0;
        int nchunked = 0, n = 0;

        while (next_coding(&p, &tok, &len)) {
            bool chunked = len == 7 && strncasecmp(tok, "chunked", 7) == 0;

            n++;
            nchunked += chunked;
            if (!chunked && other == NULL) {
                other = tok;
                other_len = len;
            }
            last = tok;
            last_len = len;
        }
        if (n == 0 || last_len != 7 || strncasecmp(last, "chunked", 7) != 0 || nchunked > 1) {
            req->early_code = SVC_EINVAL;
            req->early_detail = svc_arena_printf(
                a, "Transfer-Encoding '%.64s' is not accepted: send 'chunked' only", h.te);
        } else if (n > 1) {
            req->early_code = SVC_ENOTIMPL;
            req->early_detail = svc_arena_printf(a, "transfer coding '%.*s' is not supported",
                                                 (int)(other_len < 64 ? other_len : 64), other);
        }
    } else if (h.nhost == 0 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0) {
        req->early_code = SVC_EINVAL;
        req->early_detail = "HTTP/1.1 request without a Host header";
    } else if (h.nhost > 1) {
        req->early_code = SVC_EINVAL;
        req->early_detail = "more than one Host header";
    }
    if (req->early_code != 0)
        return;
    req->close = false;
    if (h.n > SVC_MAX_HEADERS) {
        req->early_code = SVC_EHEADERS;
        req->early_detail = svc_arena_printf(a, "%d header fields, more than the %d accepted", h.n,
                                             SVC_MAX_HEADERS);
    }
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
                             const char *method, const char *version)
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
    req->edge = conn_of(conn);
    check_head(req, version);

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

    if (req->edge != NULL)
        parse_query(req, req->edge->query);

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

/*
 * The body passed its cap while streaming (chunked: no length to refuse it by earlier).
 * libmicrohttpd 0.9.75 refuses to queue a response while a body is being read
 * (MHD_queue_response answers MHD_NO then), and would otherwise read the whole body first, so
 * the 413 is written on the socket here, on the connection's own thread, which is the only
 * writer, and the connection is closed. What the client already sent is read and dropped (up to
 * 256 KiB) first, so that closing with unread data does not reset the connection under the 413.
 */
static enum MHD_Result refuse_streaming(struct svc_req *req)
{
    struct svc_resp *resp = &req->resp;
    char sink[16384];
    size_t drained = 0;

    if (req->edge == NULL || !conn_move(req->edge, CONN_BODY, CONN_CUT))
        return MHD_NO;
    atomic_fetch_add(&req->srv->ncut, 1);
    svc_resp_error(resp, SVC_ETOOBIG, "request body exceeds the limit of %zu bytes", req->max_body);
    svc__resp_finalize(resp);
    req->bytes_sent = send_raw(req->edge->fd, resp, req->request_id);
    req->queued = true;
    shutdown(req->edge->fd, SHUT_WR);
    while (drained < 256u << 10) {
        ssize_t n = recv(req->edge->fd, sink, sizeof(sink), MSG_DONTWAIT);

        if (n <= 0)
            break;
        drained += (size_t)n;
    }
    {
        const char *labels[] = {"body_too_large"};

        svc_counter_inc(req->srv->cuts, labels);
    }
    return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct svc_server *s = cls;
    struct svc_req *req = *req_cls;

    if (req == NULL) {
        const char *cl;

        req = begin(s, conn, url, method, version);
        *req_cls = req;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        /* Answering on this first call makes libmicrohttpd close the connection (see
         * ENGINES.md), so requests are answered on a later call. The exceptions: framing that
         * cannot be trusted, and a body that Content-Length already says is too big: answer
         * before reading it, and let the connection close. */
        if (req->close || req->early_code == SVC_ETOOBIG) {
            if (req->edge != NULL && !conn_enter(req->edge, CONN_BUSY))
                return MHD_NO;
            run_handler(req);
            svc_resp_header(&req->resp, "Connection", "close");
            return send_response(req);
        }
        if (req->edge != NULL &&
            !conn_enter(req->edge, (cl != NULL && strcmp(cl, "0") != 0) ||
                                           MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                       "Transfer-Encoding") != NULL
                                       ? CONN_BODY
                                       : CONN_BUSY))
            return MHD_NO;
        if (req->edge != NULL)
            atomic_store(&req->edge->body_bytes, 0);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (req->edge != NULL) {
            if (atomic_load(&req->edge->phase) == CONN_CUT)
                return MHD_NO;
            atomic_fetch_add(&req->edge->body_bytes, *upload_data_size);
        }
        /* Counted whether kept or not: a refused request's body is not read for ever. */
        req->body_seen += *upload_data_size;
        if (req->body_seen > req->max_body && !req->queued)
            return refuse_streaming(req);
        if (req->early_code == 0 && !req->queued)
            svc_buf_add(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->queued)
        return MHD_YES;
    if (req->edge != NULL && !conn_enter(req->edge, CONN_BUSY))
        return MHD_NO;
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

    if (req == NULL)
        return;
    /* Keep-alive: the connection waits for its next request (unless it was cut). */
    if (req->edge != NULL && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        conn_enter(req->edge, CONN_IDLE);
    (void)conn;
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
static const char *const cut_labels[] = {"reason", NULL};

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
    s->cuts =
        svc_counter_new("http_connections_cut_total",
                        "Connections closed by the server's edge limits, by reason", cut_labels);
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
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->conns.next = s->conns.prev = &s->conns;
    /* The logger goes first: libmicrohttpd uses its own for anything said before it.
     * libmicrohttpd's own connection limit is only a backstop at twice ours: at its limit it
     * stops accepting (new clients wait in the listen queue behind the stalled ones), and with
     * a thread pool it splits the limit between the threads; our limit is kept by eviction in
     * on_connection, which never lets a new client wait. */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        o->conn_memory, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->conn_limit * 2u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->max_conn_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout_s, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(o->threads > 1 ? o->threads : 0), MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
    if (s->mhd == NULL) {
        svc_log_error("cannot listen on %s:%d (port in use, or not permitted)", o->bind, o->port);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    if (pthread_create(&s->watchdog, NULL, watchdog, s) != 0) {
        svc_log_error("cannot start the connection watchdog thread");
        MHD_stop_daemon(s->mhd);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    s->watchdog_running = true;
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
    uint64_t deadline;
    int left;

    svc_server_drain(s);
    /* The requests in flight get the grace period; the daemon keeps accepting meanwhile
     * (/readyz has said 503 since the drain began, so an orchestrator sends nothing new), and
     * closes the listening socket when it stops. Not MHD_quiesce_daemon(): with a thread pool
     * on epoll, libmicrohttpd 0.9.75 races its own workers there (a worker that sees the
     * quiesce removes the listening socket from its epoll set, the quiescing thread's removal
     * then fails, and libmicrohttpd aborts: "Failed to remove listen FD from epoll set",
     * seen twice in CI). */
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
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (s->watchdog_running)
        pthread_join(s->watchdog, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return left;
}

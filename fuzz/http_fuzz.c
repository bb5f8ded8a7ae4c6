/*
 * lib's request path on arbitrary bytes: what a client can put on the wire (request lines,
 * header fields, framing, query strings, JSON bodies, several pipelined requests) goes through
 * the same libmicrohttpd server a service runs, with lib's edge checks around it (framing,
 * Host, header and parameter counts, the body cap while streaming, the head deadline), its
 * router, query readers and JSON field reader.
 *
 * The server is started once, in-process, on a free port of 127.0.0.1, with small limits so
 * that inputs reach them. Each input is written raw on a new loopback connection, whose writing
 * side is then shut; the server must answer or close within ANSWER_MS. Crashes, leaks and
 * undefined behaviour are what libFuzzer and the sanitizers catch; besides them, an answer that
 * does not start with an HTTP/1.1 status line, a connection left hanging, or a server that no
 * longer answers GET /healthz on a fresh connection abort.
 */
#include "svc/http.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/server.h"
#include "svc/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* How long the server may take to answer (or close) once the client has said everything. */
#define ANSWER_MS 5000
#define HEAD_MS   100
#define MAX_BODY  2048

/* ---- a small service: every reader a handler uses on input ------------------------------- */

struct item_in {
    const char *name, *note, **tags;
    size_t ntags;
    int64_t qty;
    bool gift;
};

static const struct svc_json_field tag = {
    .type = SVC_JSON_STRING, .min = 1, .max = 16, .text = SVC_JSON_TEXT_LINE};

static const struct svc_json_field item_fields[] = {
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .max = 64, .text = SVC_JSON_TEXT_LINE,
     .offset = offsetof(struct item_in, name)},
    {"note", SVC_JSON_STRING, .max = 256, .text = SVC_JSON_TEXT_BLOCK,
     .offset = offsetof(struct item_in, note)},
    {"tags", SVC_JSON_ARRAY, .max = 8, .elem = &tag, .offset = offsetof(struct item_in, tags),
     .count = offsetof(struct item_in, ntags)},
    {"qty", SVC_JSON_INT, .min = 1, .max = 1000, .offset = offsetof(struct item_in, qty)},
    {"gift", SVC_JSON_BOOL, .offset = offsetof(struct item_in, gift)},
    {0},
};

static int item_create(struct svc_req *req, struct svc_resp *resp)
{
    struct item_in in = {.qty = 1};
    const char *key = NULL;
    int rc;

    if ((rc = svc_req_idempotency_key(req, resp, &key)) != 0 ||
        (rc = svc_req_read_json(req, resp, item_fields, &in)) != 0)
        return rc;
    return svc_resp_json(resp, 201,
                         json_pack("{s:s, s:I, s:b, s:i, s:s?}", "name", in.name, "qty",
                                   (json_int_t)in.qty, "gift", in.gift, "tags", (int)in.ntags,
                                   "key", key));
}

static int item_get(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const params[] = {"limit", "sort", "fresh", "cursor", "q", NULL};
    static const char *const sorts[] = {"name", "qty", NULL};
    char id[37];
    long long limit, ms = 0;
    int sort, fresh;
    bool after = false;
    char after_id[37];
    const char *q = svc_req_query(req, "q"), *accept = svc_req_header(req, "Accept");
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, params)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", 1, 100, 20, &limit)) != 0 ||
        (rc = svc_query_enum(req, resp, "sort", sorts, 0, &sort)) != 0 ||
        (rc = svc_query_bool(req, resp, "fresh", -1, &fresh)) != 0 ||
        (rc = svc_query_keyset(req, resp, "cursor", &ms, after_id, &after)) != 0)
        return rc;
    return svc_resp_json(resp, 200,
                         json_pack("{s:s, s:I, s:i, s:i, s:b, s:s?, s:s?}", "id", id, "limit",
                                   (json_int_t)limit, "sort", sort, "fresh", fresh, "after", after,
                                   "q", q, "accept", accept));
}

static int item_delete(struct svc_req *req, struct svc_resp *resp)
{
    char id[37];
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    return svc_resp_empty(resp, 204);
}

static int echo_body(struct svc_req *req, struct svc_resp *resp)
{
    size_t len = 0;
    const char *body = svc_req_body(req, &len);

    return svc_resp_body(resp, 200, "application/octet-stream", body != NULL ? body : "", len);
}

static const struct svc_route routes[] = {
    {SVC_POST, "/v1/items", item_create, SVC_ROUTE_JSON, 0},
    {SVC_GET, "/v1/items/:id", item_get, 0, 0},
    {SVC_DELETE, "/v1/items/:id", item_delete, 0, 0},
    {SVC_PUT, "/v1/raw", echo_body, 0, 512},
    SVC_ROUTES_END,
};

static const struct svc_def def = {
    .name = "fuzz-svc",
    .version = "fuzz",
    .routes = routes,
};

/* ---- the client side ------------------------------------------------------------------- */

static struct svc_server *srv;
static unsigned runs;

static int dial(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        abort();
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)svc_server_port(srv));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "http_fuzz: connect: %s\n", strerror(errno));
        abort();
    }
    return fd;
}

/* Writes what it can of the N bytes at P (the server may close early, on a 413 or a 400) and
 * shuts the writing side. */
static void say(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k <= 0)
            break;
        p += k;
        n -= (size_t)k;
    }
    shutdown(fd, SHUT_WR);
}

/* Whether the N bytes at P hold a blank line, the end of a request head. */
static bool has_head_end(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\n' &&
            (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
            return true;
    return false;
}

/* Whether BUF (LEN bytes) holds a whole first response: its head and the Content-Length bytes
 * after it (none for a HEAD request, a 1xx, 204 or 304). */
static bool whole_answer(const char *buf, size_t len, bool head_request)
{
    const char *end = strstr(buf, "\r\n\r\n"), *cl;
    size_t body = 0;
    int status;

    if (end == NULL || len < 12)
        return false;
    status = (int)strtol(buf + 9, NULL, 10);
    for (cl = buf; (cl = strchr(cl, '\n')) != NULL && cl < end; cl++)
        if (strncasecmp(cl + 1, "Content-Length:", 15) == 0)
            body = (size_t)strtoull(cl + 16, NULL, 10);
    if (head_request || status < 200 || status == 204 || status == 304)
        body = 0;
    return len >= (size_t)(end + 4 - buf) + body;
}

/*
 * Reads the answer into BUF (at most CAP - 1 bytes, NUL-terminated); returns its length. The
 * server keeps a connection open after answering (keep-alive), so the answer ends when the
 * first response is whole and nothing more (a pipelined request's) follows within a moment, or
 * when the server closes. Without a whole request head the server rightly waits for the rest
 * until its head deadline: such an input gets a short look only. Otherwise, no answer and no
 * close within ANSWER_MS is a hang: abort.
 */
static size_t hear(int fd, char *buf, size_t cap, bool head_sent, bool head_request)
{
    int64_t deadline = svc_now_ms() + (head_sent ? ANSWER_MS : 2);
    size_t len = 0;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        bool whole = whole_answer(buf, len, head_request);
        int64_t left = whole ? 2 : deadline - svc_now_ms();
        ssize_t k;

        buf[len] = '\0';
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            if (whole || !head_sent)
                break;
            fprintf(stderr, "http_fuzz: no answer within %d ms, after %zu bytes: %.*s\n", ANSWER_MS,
                    len, (int)len, buf);
            abort();
        }
        if (len + 1 == cap)
            break;
        k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    return len;
}

/* Every answer is HTTP/1.1 with a three-digit status: lib and libmicrohttpd never answer in
 * anything else, whatever the request was. */
static void check_answer(const char *buf, size_t len)
{
    if (len == 0)
        return;
    if (len < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5' ||
        buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9') {
        fprintf(stderr, "http_fuzz: not an HTTP/1.1 answer: '%.*s'\n", (int)(len < 80 ? len : 80),
                buf);
        abort();
    }
}

/* The server still serves a normal client. */
static void check_alive(void)
{
    static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    char buf[2048];
    int fd = dial();
    size_t len;

    say(fd, (const uint8_t *)probe, sizeof(probe) - 1);
    len = hear(fd, buf, sizeof(buf), true, false);
    close(fd);
    if (len < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "http_fuzz: /healthz answered '%.*s'\n", (int)(len < 80 ? len : 80), buf);
        abort();
    }
}

static void start(void)
{
    struct svc_http_opts o;

    svc_log_set_level(SVC_LOG_FATAL);
    svc_http_opts_default(&o);
    o.max_body = MAX_BODY;
    o.head_timeout_ms = HEAD_MS;
    o.conn_timeout_s = 5;
    o.max_conn_per_ip = 0;
    o.access_log = false;
    o.shutdown_grace_ms = 1000;
    srv = svc_server_start(&def, &o);
    if (srv == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[65536];
    size_t len;
    int fd;

    if (srv == NULL)
        start();
    fd = dial();
    say(fd, data, size);
    len = hear(fd, buf, sizeof(buf), has_head_end(data, size),
               size >= 5 && memcmp(data, "HEAD ", 5) == 0);
    close(fd);
    check_answer(buf, len);
    /* HTTP_FUZZ_SHOW=1: what each input got, to see what a seed reaches. */
    if (getenv("HTTP_FUZZ_SHOW") != NULL)
        fprintf(stderr, "http_fuzz: %zu bytes in, %zu out: %.*s\n", size, len,
                (int)strcspn(buf, "\r\n"), buf);
    /* Often enough to pin a wedged server on the input that wedged it, seldom enough not to
     * halve the rate. */
    if (runs++ % 16 == 0)
        check_alive();
    return 0;
}

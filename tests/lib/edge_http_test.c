/*
 * The server's edge as a misbehaving client sees it, over raw sockets (libcurl will not send
 * these requests): ambiguous framing refused before any body is read, a streamed body cut at
 * its cap, too many parameters or headers answered at once, slow heads and bodies cut at their
 * deadlines, the per-address cap, and a full server that still serves a normal client. Every
 * connection is to 127.0.0.1 and closed by the test that opened it.
 */
#include "echo.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"
#include "testenv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct svc_def echo_def = {
    .name = "echo-svc",
    .version = "test",
    .routes = echo_routes,
};

static struct svc_server *srv;

static void start_with(const struct svc_http_opts *o)
{
    srv = svc_server_start(&echo_def, o);
    ck_assert_ptr_nonnull(srv);
}

static void opts(struct svc_http_opts *o)
{
    svc_http_opts_default(o);
    o->max_body = 1024;
    o->shutdown_grace_ms = 3000;
    o->access_log = false;
}

static void setup(void)
{
    struct svc_http_opts o;

    opts(&o);
    start_with(&o);
}

static void teardown(void)
{
    if (srv != NULL)
        ck_assert_int_eq(svc_server_stop(srv), 0);
    srv = NULL;
    svc_metrics_reset();
}

/* ---- raw sockets ------------------------------------------------------------------------ */

static int dial(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)svc_server_port(srv));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

static void put(int fd, const void *p, size_t n)
{
    ck_assert_msg(send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n, "send: %s", strerror(errno));
}

struct raw {
    char data[16384];
    size_t len;
    bool eof;         /* the server closed (or reset) the connection */
    int64_t ms;       /* from the call to the end of reading */
    int64_t first_ms; /* from the call to the first byte of the answer, -1 without one */
    int status;       /* of the first response, 0 if none */
    int nstatus;      /* responses seen ("HTTP/1.1 " at a line start) */
};

/* Reads from FD until the server closes it or WAIT_MS pass without its closing. */
static void slurp(int fd, int wait_ms, struct raw *r)
{
    int64_t t0 = svc_now_ms(), deadline = t0 + wait_ms;

    memset(r, 0, sizeof(*r));
    r->first_ms = -1;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - svc_now_ms();
        ssize_t n;

        if (left < 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = recv(fd, r->data + r->len, sizeof(r->data) - 1 - r->len, 0);
        if (n <= 0) {
            r->eof = true;
            break;
        }
        if (r->len == 0)
            r->first_ms = svc_now_ms() - t0;
        r->len += (size_t)n;
        if (r->len == sizeof(r->data) - 1)
            break;
    }
    r->data[r->len] = '\0';
    r->ms = svc_now_ms() - t0;
    for (const char *p = r->data; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9) {
        if (p == r->data || p[-1] == '\n' || p[-1] == '}') {
            if (r->nstatus++ == 0)
                r->status = (int)strtol(p + 9, NULL, 10);
        }
    }
}

/* Sends REQ (LEN bytes) on a new connection and reads the answer for up to WAIT_MS. */
static void exchange(const char *req, size_t len, int wait_ms, struct raw *r)
{
    int fd = dial();

    put(fd, req, len);
    slurp(fd, wait_ms, r);
    close(fd);
}

static bool has(const struct raw *r, const char *s)
{
    return strstr(r->data, s) != NULL;
}

/* R is one problem+json response with STATUS whose detail says WANT, then the connection
 * closed: nothing after it was served. */
static void assert_refused(const char *name, const struct raw *r, int status, const char *want)
{
    ck_assert_msg(r->status == status, "%s: status %d, want %d: %s", name, r->status, status,
                  r->data);
    ck_assert_msg(r->nstatus == 1, "%s: %d responses: %s", name, r->nstatus, r->data);
    ck_assert_msg(has(r, "Content-Type: application/problem+json"), "%s: %s", name, r->data);
    ck_assert_msg(has(r, "Connection: close"), "%s: no Connection: close: %s", name, r->data);
    ck_assert_msg(has(r, want), "%s: detail does not say '%s': %s", name, want, r->data);
    ck_assert_msg(r->eof, "%s: the connection stayed open", name);
}

/* ---- framing ---------------------------------------------------------------------------- */

#define POST_ECHO "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
#define SMUGGLED  "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

static const struct {
    const char *name, *req;
    size_t len; /* 0: strlen(req) */
    int status;
    const char *want;
} framing[] = {
    {"two Content-Length", POST_ECHO "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}" SMUGGLED,
     0, 400, "more than one Content-Length"},
    {"two equal Content-Length", POST_ECHO "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 0,
     400, "more than one Content-Length"},
    {"Content-Length and chunked",
     POST_ECHO
     "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" SMUGGLED,
     0, 400, "Content-Length and Transfer-Encoding together"},
    {"gzip", POST_ECHO "Transfer-Encoding: gzip\r\n\r\n{}", 0, 400, "Transfer-Encoding 'gzip'"},
    {"identity", POST_ECHO "Transfer-Encoding: identity\r\n\r\n{}", 0, 400, "'identity'"},
    {"chunked twice", POST_ECHO "Transfer-Encoding: chunked, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     0, 400, "'chunked, chunked'"},
    {"gzip then chunked", POST_ECHO "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     0, 501, "transfer coding 'gzip' is not supported"},
    {"two Transfer-Encoding",
     POST_ECHO
     "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     0, 400, "more than one Transfer-Encoding"},
    {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n", 0, 400, "without a Host header"},
    {"two Host", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, 400,
     "more than one Host"},
    {"NUL in a value",
     "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0Content-Length: 5\r\nX-B: c\r\n\r\n",
     sizeof("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0Content-Length: 5\r\nX-B: c\r\n\r\n") - 1,
     400, "header 'X-A'"},
    {"control byte in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\001b\r\n\r\n", 0, 400,
     "header 'X-A'"},
    {"CR in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 0, 400,
     "header 'X-A'"},
    {"space before the colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n", 0,
     400, "header 'Content-Length '"},
};

START_TEST(ambiguous_framing_is_refused_and_the_connection_closed)
{
    for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++) {
        struct raw r;
        size_t len = framing[i].len != 0 ? framing[i].len : strlen(framing[i].req);

        exchange(framing[i].req, len, 2000, &r);
        assert_refused(framing[i].name, &r, framing[i].status, framing[i].want);
    }
}
END_TEST

START_TEST(sound_framing_still_works_and_keeps_the_connection)
{
    static const char two[] =
        POST_ECHO "Transfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" SMUGGLED;
    static const char old[] = "GET /healthz HTTP/1.0\r\n\r\n";
    struct raw r;
    int fd = dial();

    /* A chunked body (the coding's name in any case), then a second request on the same
     * connection: both answered, the connection kept. */
    put(fd, two, sizeof(two) - 1);
    slurp(fd, 500, &r);
    close(fd);
    ck_assert_msg(r.nstatus == 2 && r.status == 200, "%s", r.data);
    ck_assert_msg(has(&r, "{\"status\":\"ok\"}"), "%s", r.data);
    ck_assert(!r.eof);
    /* HTTP/1.0 needs no Host. */
    exchange(old, sizeof(old) - 1, 2000, &r);
    ck_assert_msg(r.status == 200, "%s", r.data);
}
END_TEST

/* ---- sizes ------------------------------------------------------------------------------ */

START_TEST(a_streamed_body_is_cut_at_its_cap)
{
    static const char head[] = POST_ECHO "Transfer-Encoding: chunked\r\n\r\n";
    char chunk[1200 + 16];
    int fd = dial(), n;
    struct raw r;

    /* 1200 bytes in one chunk against a cap of 1024, and the body never ends: the 413 comes
     * at once, not after a last chunk that never comes. */
    n = snprintf(chunk, sizeof(chunk), "%x\r\n", 1200);
    memset(chunk + n, ' ', 1200);
    put(fd, head, sizeof(head) - 1);
    put(fd, chunk, (size_t)n + 1200);
    slurp(fd, 2000, &r);
    close(fd);
    assert_refused("endless chunked body", &r, 413, "exceeds the limit of 1024 bytes");
    ck_assert_msg(r.ms < 1500, "the 413 took %lld ms", (long long)r.ms);
}
END_TEST

START_TEST(too_many_parameters_or_headers_are_answered_at_once)
{
    struct svc_buf q = SVC_BUF_INIT, h = SVC_BUF_INIT;
    struct raw r;

    /* 300 parameters ran libmicrohttpd's pool out: no answer for 30 s. */
    svc_buf_adds(&q, "GET /healthz?");
    for (int i = 0; i < 300; i++)
        svc_buf_addf(&q, "%sa%d=1", i > 0 ? "&" : "", i);
    svc_buf_adds(&q, " HTTP/1.1\r\nHost: x\r\n\r\n");
    exchange(q.data, q.len, 2000, &r);
    ck_assert_msg(r.status == 414, "%s", r.data);
    ck_assert_msg(has(&r, "more than 64 query parameters"), "%s", r.data);
    ck_assert_msg(r.first_ms >= 0 && r.first_ms < 1000, "the 414 took %lld ms",
                  (long long)r.first_ms);

    svc_buf_adds(&h, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 80; i++)
        svc_buf_addf(&h, "X-%d: 1\r\n", i);
    svc_buf_adds(&h, "\r\n");
    exchange(h.data, h.len, 2000, &r);
    ck_assert_msg(r.status == 431, "%s", r.data);
    ck_assert_msg(has(&r, "application/problem+json"), "%s", r.data);
    ck_assert_msg(has(&r, "81 header fields, more than the 64 accepted"), "%s", r.data);
    ck_assert_msg(r.first_ms >= 0 && r.first_ms < 1000, "the 431 took %lld ms",
                  (long long)r.first_ms);
    svc_buf_release(&q);
    svc_buf_release(&h);
}
END_TEST

/* ---- slow clients ----------------------------------------------------------------------- */

static void restart(int head_ms, int rate, int per_ip, int limit)
{
    struct svc_http_opts o;

    ck_assert_int_eq(svc_server_stop(srv), 0);
    opts(&o);
    o.head_timeout_ms = head_ms;
    o.min_body_rate = rate;
    o.max_conn_per_ip = per_ip;
    o.conn_limit = limit;
    start_with(&o);
}

/* Sends S one byte every EVERY_MS until the server closes the connection or S ends. */
static void dribble(int fd, const char *s, int every_ms)
{
    for (; *s != '\0'; s++) {
        struct pollfd p = {fd, POLLIN, 0};

        if (poll(&p, 1, every_ms) > 0)
            return; /* the server answered or closed */
        if (send(fd, s, 1, MSG_NOSIGNAL) != 1)
            return;
    }
}

START_TEST(a_slow_head_is_cut_at_its_deadline)
{
    struct raw r;
    int64_t t0;
    int fd;

    restart(600, 1024, 0, 1024);
    /* One byte every 150 ms: the idle timeout alone never fires. */
    t0 = svc_now_ms();
    fd = dial();
    dribble(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
            150);
    slurp(fd, 2000, &r);
    close(fd);
    ck_assert_msg(r.status == 408 && r.eof, "%s", r.data);
    ck_assert_msg(has(&r, "within 600 ms"), "%s", r.data);
    ck_assert_msg(svc_now_ms() - t0 < 1500, "cut after %lld ms", (long long)(svc_now_ms() - t0));
    /* A connection that sends nothing at all. */
    fd = dial();
    slurp(fd, 2000, &r);
    close(fd);
    ck_assert_msg(r.status == 408 && r.eof && r.ms < 1500, "%lld ms: %s", (long long)r.ms, r.data);
}
END_TEST

START_TEST(a_slow_body_is_cut_at_its_minimum_rate)
{
    static const char head[] = POST_ECHO "Content-Length: 1000\r\n\r\n";
    struct raw r;
    int64_t t0;
    int fd;

    restart(500, 1000, 0, 1024);
    fd = dial();
    put(fd, head, sizeof(head) - 1);
    t0 = svc_now_ms();
    /* 20 bytes in 1 s is far below 1000 bytes/s: cut after the 500 ms grace and 20 ms more. */
    dribble(fd, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]", 50);
    slurp(fd, 2000, &r);
    close(fd);
    ck_assert_msg(r.status == 408 && r.eof, "%s", r.data);
    ck_assert_msg(has(&r, "slower than 1000 bytes/s"), "%s", r.data);
    ck_assert_msg(svc_now_ms() - t0 < 1500, "cut after %lld ms", (long long)(svc_now_ms() - t0));
}
END_TEST

/* A request on a new connection: its status, or 0 when the connection was closed unanswered. */
static int healthz(int wait_ms, int64_t *ms)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct raw r;

    exchange(req, sizeof(req) - 1, wait_ms, &r);
    if (ms != NULL)
        *ms = r.first_ms >= 0 ? r.first_ms : r.ms;
    return r.status;
}

START_TEST(one_address_gets_so_many_connections)
{
    int fds[3];

    restart(10000, 1024, 3, 1024);
    for (int i = 0; i < 3; i++)
        fds[i] = dial();
    /* The fourth is accepted by the kernel, then closed by the server without an answer. */
    ck_assert_int_eq(healthz(2000, NULL), 0);
    close(fds[0]);
    svc_sleep_ms(100);
    ck_assert_int_eq(healthz(2000, NULL), 200);
    close(fds[1]);
    close(fds[2]);
}
END_TEST

START_TEST(a_full_server_still_serves_a_normal_client)
{
    enum { LIMIT = 40, SLOW = 100 };
    int fds[SLOW], refused = 0;
    int64_t ms;

    /* Slow heads on every connection, 2.5 times the limit: libmicrohttpd alone stops accepting
     * at its limit, and a normal client waits in the listen queue until a slow one times out. */
    restart(10000, 1024, 0, LIMIT);
    for (int i = 0; i < SLOW; i++) {
        fds[i] = dial();
        put(fds[i], "GET /healthz HTTP/1.1\r\nHo", 25);
    }
    svc_sleep_ms(300);
    ck_assert_int_eq(healthz(3000, &ms), 200);
    ck_assert_msg(ms < 1000, "the normal client waited %lld ms", (long long)ms);
    /* The slow ones beyond the limit were told why. */
    for (int i = 0; i < SLOW; i++) {
        struct raw r;

        slurp(fds[i], 0, &r);
        refused += r.status == 503;
        close(fds[i]);
    }
    ck_assert_msg(refused >= SLOW - LIMIT, "only %d of the slow connections got a 503", refused);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("edge");
    TCase *tc = tcase_create("http");

    svc_log_set_level(SVC_LOG_ERROR);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, ambiguous_framing_is_refused_and_the_connection_closed);
    tcase_add_test(tc, sound_framing_still_works_and_keeps_the_connection);
    tcase_add_test(tc, a_streamed_body_is_cut_at_its_cap);
    tcase_add_test(tc, too_many_parameters_or_headers_are_answered_at_once);
    tcase_add_test(tc, a_slow_head_is_cut_at_its_deadline);
    tcase_add_test(tc, a_slow_body_is_cut_at_its_minimum_rate);
    tcase_add_test(tc, one_address_gets_so_many_connections);
    tcase_add_test(tc, a_full_server_still_serves_a_normal_client);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

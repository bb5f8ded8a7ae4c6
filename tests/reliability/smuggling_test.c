/*
 * Issue 15, failures 2 and 3: request smuggling and a chunked body that never ends, replayed
 * over raw sockets against user-svc run by the test with the stack's settings (its env file):
 *
 *   two Content-Length, the second covering a hidden    -> one answer, 400, connection closed;
 *     POST /v1/users                                        neither user exists afterwards
 *   Content-Length with Transfer-Encoding: chunked, a   -> the same
 *     hidden POST /v1/users after the chunked body
 *   a chunked POST /v1/users whose chunks never end      -> 413 within 2 s, connection closed,
 *                                                            a bounded number of bytes read
 *
 * "Neither user exists" is what a client sees: GET /v1/users?email= finds nobody, and the
 * hidden request's email can then be registered (201, not 409).
 *
 * Covers lib's HTTP edge (commit c7c69d7: framing refused before any body is read, the body
 * cap enforced while streaming). Before it, libmicrohttpd used the first Content-Length and
 * parsed the rest as a new request, answered 201 to CL+TE and then served the hidden request,
 * and read a chunked body to its end before the 413 (16 GB in 12 s).
 * USER_SVC_BIN in the environment replays against another build (e.g. an older commit's).
 */
#include "testenv.h"
#include "testhttp.h"
#include "testproc.h"
#include "testraw.h"

#include "svc/time.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef USER_SVC_BIN
#error "USER_SVC_BIN: the user-svc binary"
#endif

/* The endless body: how fast the 413 must come, and how much may be sent before it (the route's
 * cap is 16 KiB; the rest is what loopback's socket buffers hold). */
#define ENDLESS_ANSWER_MS  2000
#define ENDLESS_MAX_BYTES  (16L << 20)
#define ENDLESS_GIVE_UP_MS 10000

static struct testproc svc;

static void setup(void)
{
    char dsn[512], kafka[256];
    const char *env[] = {dsn, kafka, NULL};
    const char *bin = getenv("USER_SVC_BIN") != NULL ? getenv("USER_SVC_BIN") : USER_SVC_BIN;

    snprintf(dsn, sizeof(dsn), "PG_DSN=%s", testenv_get("user-svc", "PG_DSN"));
    snprintf(kafka, sizeof(kafka), "KAFKA_BROKERS=%s", testenv_get("user-svc", "KAFKA_BROKERS"));
    testproc_start(&svc, bin, "user-svc", env);
}

static void teardown(void)
{
    if (svc.pid > 0)
        testproc_stop(&svc, SIGTERM);
}

/* A registration body for a fresh email "<prefix>_<pid>_<n>@example.com" (into EMAIL). */
static void user_body(const char *prefix, char *email, size_t ecap, char *body, size_t bcap)
{
    snprintf(email, ecap, "%s@example.com", testenv_unique(prefix));
    snprintf(body, bcap, "{\"email\":\"%s\",\"name\":\"Smuggled\"}", email);
}

/* The hidden request: a whole POST /v1/users of its own. */
static void hidden_request(char *email, size_t ecap, char *out, size_t cap)
{
    char body[256];

    user_body("hidden", email, ecap, body, sizeof(body));
    snprintf(out, cap,
             "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
}

/* How many users GET /v1/users?email=EMAIL finds. */
static size_t users_with(const char *email)
{
    char url[512], *esc = testhttp_escape(email);
    struct testhttp_resp r;
    json_t *v;
    size_t n;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/users?email=%s", svc.port, esc);
    free(esc);
    r = testhttp_call("GET", url, NULL, NULL, NULL);
    ck_assert_msg(r.status == 200, "GET /v1/users?email=%s: HTTP %ld %s %s", email, r.status,
                  r.error, r.body);
    v = json_loads(r.body, 0, NULL);
    ck_assert_msg(json_is_array(json_object_get(v, "items")), "no items: %s", r.body);
    n = json_array_size(json_object_get(v, "items"));
    json_decref(v);
    testhttp_resp_release(&r);
    return n;
}

/* Sends WIRE on a new connection and checks what a smuggler must get: exactly one response,
 * 400, and the connection closed; then that neither FRONT nor HIDDEN was registered, and that
 * HIDDEN still can be. */
static void refused_alone(const char *what, const char *wire, const char *front, const char *hidden)
{
    int fd = testraw_dial(1, svc.port, false);
    bool closed = false;
    char *got, url[128], body[256];
    struct testhttp_resp r;

    ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
    ck_assert(testraw_send(fd, wire, strlen(wire)));
    got = testraw_read_all(fd, 5000, &closed);
    close(fd);
    ck_assert_msg(testraw_responses(got) == 1 && testraw_status(got) == 400,
                  "%s: want one 400; got %d response(s):\n%s", what, testraw_responses(got), got);
    ck_assert_msg(closed, "%s: the connection stayed open after the 400", what);
    free(got);
    ck_assert_msg(users_with(front) == 0, "%s: the front request registered %s", what, front);
    ck_assert_msg(users_with(hidden) == 0, "%s: the hidden request registered %s", what, hidden);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/users", svc.port);
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"Honest\"}", hidden);
    r = testhttp_call("POST", url, NULL, "application/json", body);
    ck_assert_msg(r.status == 201, "%s: registering %s afterwards: HTTP %ld %s", what, hidden,
                  r.status, r.body);
    testhttp_resp_release(&r);
}

START_TEST(two_content_lengths_hide_no_request)
{
    char front[128], body[256], hidden_email[128], hidden[512], wire[2048];

    user_body("front", front, sizeof(front), body, sizeof(body));
    hidden_request(hidden_email, sizeof(hidden_email), hidden, sizeof(hidden));
    /* The first length ends the body before the hidden request, the second covers it. */
    snprintf(wire, sizeof(wire),
             "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nContent-Length: %zu\r\n\r\n%s%s",
             strlen(body), strlen(body) + strlen(hidden), body, hidden);
    refused_alone("two Content-Length", wire, front, hidden_email);
}
END_TEST

START_TEST(content_length_with_chunked_hides_no_request)
{
    char front[128], body[256], hidden_email[128], hidden[512], chunked[512], wire[2048];

    user_body("front", front, sizeof(front), body, sizeof(body));
    hidden_request(hidden_email, sizeof(hidden_email), hidden, sizeof(hidden));
    snprintf(chunked, sizeof(chunked), "%zx\r\n%s\r\n0\r\n\r\n", strlen(body), body);
    /* Content-Length covers the chunked body exactly; the hidden request follows it. */
    snprintf(wire, sizeof(wire),
             "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n\r\n%s%s",
             strlen(chunked), chunked, hidden);
    refused_alone("Content-Length with chunked", wire, front, hidden_email);
}
END_TEST

START_TEST(endless_chunked_body_is_cut_with_413)
{
    static const char head[] =
        "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1\r\n[\r\n";
    static char chunk[4096 + 16];
    size_t chunk_len, off = 0;
    long sent = 0;
    int fd = testraw_dial(1, svc.port, false);
    int64_t t0 = svc_now_ms(), answered_ms = -1;
    bool closed = false;
    char *got;

    ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
    /* One chunk of 4 KiB of filler, sent again and again: it never ends. */
    chunk_len = (size_t)snprintf(chunk, sizeof(chunk), "%x\r\n", 4096);
    memset(chunk + chunk_len, '1', 4096);
    chunk_len += 4096;
    chunk[chunk_len++] = '\r';
    chunk[chunk_len++] = '\n';
    ck_assert(testraw_send(fd, head, strlen(head)));
    while (svc_now_ms() - t0 < ENDLESS_GIVE_UP_MS && sent < ENDLESS_MAX_BYTES * 4) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
        ssize_t w;

        ck_assert_int_ge(poll(&pfd, 1, 100), 0);
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            answered_ms = svc_now_ms() - t0;
            break;
        }
        if (!(pfd.revents & POLLOUT))
            continue;
        w = send(fd, chunk + off, chunk_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (w < 0) {
            answered_ms = svc_now_ms() - t0; /* closed on us: see what it said */
            break;
        }
        sent += w;
        off = (off + (size_t)w) % chunk_len;
    }
    got = testraw_read_all(fd, 3000, &closed);
    close(fd);
    fprintf(stderr, "endless body: %ld bytes sent, answer after %lld ms: %.40s\n", sent,
            (long long)answered_ms, got);
    ck_assert_msg(answered_ms >= 0, "no answer to an endless chunked body after %ld bytes in %d ms",
                  sent, ENDLESS_GIVE_UP_MS);
    ck_assert_msg(testraw_status(got) == 413, "want 413, got: %s", got);
    ck_assert_msg(answered_ms <= ENDLESS_ANSWER_MS, "the 413 took %lld ms", (long long)answered_ms);
    ck_assert_msg(sent <= ENDLESS_MAX_BYTES, "%ld bytes went in before the 413", sent);
    ck_assert_msg(closed, "the connection stayed open after the 413");
    free(got);
    /* And the service is fine. */
    ck_assert_int_eq(testproc_get(&svc, "/readyz", NULL), 200);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability_smuggling");
    TCase *tc = tcase_create("edge");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, two_content_lengths_hide_no_request);
    tcase_add_test(tc, content_length_with_chunked_hides_no_request);
    tcase_add_test(tc, endless_chunked_body_is_cut_with_413);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

/*
 * Issue 15, failure 1: about 1,024 connections locked every client out of a service. Replayed
 * against user-svc run by the test with the stack's settings (its env file, the HTTP defaults
 * of production: HTTP_CONN_LIMIT 1024, HTTP_MAX_CONN_PER_IP 256, HTTP_HEAD_TIMEOUT 10 s):
 *
 *   1,100 connections each sending one header byte every 3 s (slowloris; a connection the
 *   server cuts is opened again 1 s later, as the attack tools do) -> a normal client is served
 *   3,000 keep-alive connections, each served once and then idle      within 1 s, every time
 *
 * The attackers come from several loopback addresses (127.0.0.2...), at most 250 from each, as
 * a distributed attack would: from one address the per-address cap alone refuses them. The
 * normal client comes from 127.0.0.1 and asks GET /v1/users/{id} (a PostgreSQL read, 404) on a
 * new connection every 250 ms.
 *
 * Covers lib's HTTP edge (commit c7c69d7: head deadline, per-address cap, eviction at the
 * connection limit): before it, libmicrohttpd stopped accepting at its limit and the normal
 * client waited in the listen queue until an idle timer (30 s, reset by every byte) ran out.
 * USER_SVC_BIN in the environment replays against another build (e.g. an older commit's).
 */
#include "testenv.h"
#include "testproc.h"
#include "testraw.h"

#include "svc/time.h"
#include "svc/uuid.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef USER_SVC_BIN
#error "USER_SVC_BIN: the user-svc binary"
#endif

#define SLOW_CONNS     1100
#define SLOW_EVERY_MS  3000
#define SLOW_RUN_MS    25000 /* over two head deadlines: the attack is cut and comes back */
#define SLOW_REDIAL_MS 1000
#define IDLE_CONNS     3000
#define IDLE_RUN_MS    15000
#define PER_HOST       250
#define PROBE_EVERY_MS 250
#define PROBE_MAX_MS   1000
#define PROBES_MAX     256

/* ---- the service ------------------------------------------------------------------------- */

static struct testproc svc;

static void start_user_svc(void)
{
    char dsn[512], kafka[256];
    const char *env[] = {dsn, kafka, NULL};
    const char *bin = getenv("USER_SVC_BIN") != NULL ? getenv("USER_SVC_BIN") : USER_SVC_BIN;

    /* The attack's sockets, the service's (it inherits the limit: 2,048 at most for
     * libmicrohttpd's backstop, plus its pools) and the probes'. */
    testraw_nofile(8192);
    snprintf(dsn, sizeof(dsn), "PG_DSN=%s", testenv_get("user-svc", "PG_DSN"));
    snprintf(kafka, sizeof(kafka), "KAFKA_BROKERS=%s", testenv_get("user-svc", "KAFKA_BROKERS"));
    testproc_start(&svc, bin, "user-svc", env);
}

/* ---- the normal client ------------------------------------------------------------------- */

struct probes {
    int port;
    atomic_bool stop;
    int n;
    int status[PROBES_MAX];
    long ms[PROBES_MAX];
};

static void *probe_loop(void *arg)
{
    struct probes *p = arg;

    while (!atomic_load(&p->stop) && p->n < PROBES_MAX) {
        char req[256], id[SVC_UUID_STR_LEN + 1], *resp = NULL;
        int64_t t0 = svc_now_ms();
        int fd = testraw_dial(1, p->port, false);

        svc_uuid_v4_str(id);
        snprintf(req, sizeof(req),
                 "GET /v1/users/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", id);
        if (fd >= 0 && testraw_send(fd, req, strlen(req)))
            resp = testraw_read_all(fd, 5000, NULL);
        if (fd >= 0)
            close(fd);
        p->status[p->n] = resp != NULL ? testraw_status(resp) : 0;
        p->ms[p->n] = (long)(svc_now_ms() - t0);
        p->n++;
        free(resp);
        svc_sleep_ms(PROBE_EVERY_MS);
    }
    return NULL;
}

/* Every probe answered 404 within PROBE_MAX_MS; prints what the client saw. */
static void check_probes(const struct probes *p, const char *what)
{
    long worst = 0;
    int late = 0;

    for (int i = 0; i < p->n; i++) {
        if (p->ms[i] > worst)
            worst = p->ms[i];
        if (p->status[i] != 404 || p->ms[i] > PROBE_MAX_MS)
            late++;
    }
    fprintf(stderr, "%s: normal client: %d requests, slowest %ld ms, %d not served in %d ms\n",
            what, p->n, worst, late, PROBE_MAX_MS);
    for (int i = 0; i < p->n; i++)
        ck_assert_msg(p->status[i] == 404 && p->ms[i] <= PROBE_MAX_MS,
                      "%s: probe %d of %d got %d after %ld ms (want 404 within %d ms); %d of "
                      "them failed, slowest %ld ms",
                      what, i + 1, p->n, p->status[i], p->ms[i], PROBE_MAX_MS, late, worst);
    ck_assert_msg(p->n >= 10, "%s: only %d probes ran", what, p->n);
}

/* ---- the attackers ----------------------------------------------------------------------- */

struct attacker {
    int fd;
    int host;
    size_t sent;     /* bytes of the request sent so far */
    int64_t next_ms; /* slowloris: when the next byte goes */
    bool answered;   /* keep-alive: the response arrived */
};

struct cuts {
    int s408, s503, other, silent, dial_failed;
};

static void note_cut(struct cuts *c, const char *buf, ssize_t n)
{
    int st = n > 0 ? testraw_status(buf) : 0;

    if (st == 408)
        c->s408++;
    else if (st == 503)
        c->s503++;
    else if (st != 0)
        c->other++;
    else
        c->silent++;
}

static void dial_attacker(struct attacker *a, int port, struct cuts *c)
{
    a->fd = testraw_dial(a->host, port, true);
    a->sent = 0;
    a->answered = false;
    if (a->fd < 0)
        c->dial_failed++;
}

static void close_all(struct attacker *a, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i].fd >= 0)
            close(a[i].fd);
}

START_TEST(slow_headers_leave_normal_clients_served)
{
    static const char head[] = "GET /v1/users HTTP/1.1\r\nHost: flood\r\nX-Slow: ";
    static struct attacker a[SLOW_CONNS];
    static struct pollfd pfd[SLOW_CONNS];
    struct probes probes = {0};
    struct cuts cuts = {0};
    pthread_t th;
    int64_t start, end;
    int open_at_end = 0;

    start_user_svc();
    start = svc_now_ms();
    for (int i = 0; i < SLOW_CONNS; i++) {
        a[i].host = 2 + i / PER_HOST;
        a[i].next_ms = start + (int64_t)i * SLOW_EVERY_MS / SLOW_CONNS;
        dial_attacker(&a[i], svc.port, &cuts);
    }
    probes.port = svc.port;
    ck_assert_int_eq(pthread_create(&th, NULL, probe_loop, &probes), 0);
    end = svc_now_ms() + SLOW_RUN_MS;
    while (svc_now_ms() < end) {
        int64_t now = svc_now_ms();

        for (int i = 0; i < SLOW_CONNS; i++) {
            if (a[i].fd < 0 && now >= a[i].next_ms)
                dial_attacker(&a[i], svc.port, &cuts); /* back, with its first byte at once */
            pfd[i] = (struct pollfd){.fd = a[i].fd, .events = POLLIN};
            if (a[i].fd < 0 || now < a[i].next_ms)
                continue;
            {
                const char *byte = a[i].sent < sizeof(head) - 1 ? &head[a[i].sent] : "a";
                ssize_t w = send(a[i].fd, byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (w == 1) {
                    a[i].sent++;
                    a[i].next_ms = now + SLOW_EVERY_MS;
                } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                    pfd[i].events = 0; /* gone: the poll below reports it */
                }
            }
        }
        if (poll(pfd, SLOW_CONNS, 50) < 0 && errno != EINTR)
            ck_abort_msg("poll: %s", strerror(errno));
        for (int i = 0; i < SLOW_CONNS; i++) {
            char buf[512];
            ssize_t r;

            if (a[i].fd < 0 || pfd[i].revents == 0)
                continue;
            r = recv(a[i].fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            buf[r > 0 ? r : 0] = '\0';
            note_cut(&cuts, buf, r);
            close(a[i].fd);
            /* Cut: the attack opens it again a second later (at once, each eviction would
             * evict the next attacker in a loop: a connection-rate flood, not a slow one). */
            a[i].fd = -1;
            a[i].next_ms = svc_now_ms() + SLOW_REDIAL_MS;
        }
    }
    atomic_store(&probes.stop, true);
    pthread_join(th, NULL);
    for (int i = 0; i < SLOW_CONNS; i++)
        open_at_end += a[i].fd >= 0;
    close_all(a, SLOW_CONNS);
    fprintf(stderr,
            "slowloris: %d connections (%d open at the end); cut by the server: %d with 408, "
            "%d with 503, %d other, %d silently; %d dials failed\n",
            SLOW_CONNS, open_at_end, cuts.s408, cuts.s503, cuts.other, cuts.silent,
            cuts.dial_failed);
    ck_assert_int_eq(testproc_get(&svc, "/readyz", NULL), 200);
    testproc_stop(&svc, SIGTERM);
    check_probes(&probes, "slowloris");
}
END_TEST

START_TEST(idle_keep_alive_connections_leave_normal_clients_served)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n";
    static struct attacker a[IDLE_CONNS];
    static struct pollfd pfd[IDLE_CONNS];
    struct probes probes = {0};
    struct cuts cuts = {0};
    pthread_t th;
    int64_t end;
    int answered = 0, open_at_end = 0;

    start_user_svc();
    probes.port = svc.port;
    ck_assert_int_eq(pthread_create(&th, NULL, probe_loop, &probes), 0);
    for (int i = 0; i < IDLE_CONNS; i++) {
        a[i].host = 10 + i / PER_HOST;
        dial_attacker(&a[i], svc.port, &cuts);
    }
    end = svc_now_ms() + IDLE_RUN_MS;
    while (svc_now_ms() < end) {
        for (int i = 0; i < IDLE_CONNS; i++) {
            short ev = a[i].sent < sizeof(req) - 1 ? POLLOUT : POLLIN;

            pfd[i] = (struct pollfd){.fd = a[i].fd, .events = ev};
        }
        if (poll(pfd, IDLE_CONNS, 50) < 0 && errno != EINTR)
            ck_abort_msg("poll: %s", strerror(errno));
        for (int i = 0; i < IDLE_CONNS; i++) {
            char buf[1024];
            ssize_t r;

            if (a[i].fd < 0 || pfd[i].revents == 0)
                continue;
            if (a[i].sent < sizeof(req) - 1 && !(pfd[i].revents & (POLLERR | POLLHUP))) {
                ssize_t w = send(a[i].fd, req + a[i].sent, sizeof(req) - 1 - a[i].sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (w > 0) {
                    a[i].sent += (size_t)w;
                    continue;
                }
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    continue;
            }
            r = recv(a[i].fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (r > 0 && !a[i].answered) {
                a[i].answered = true; /* served; from now on idle, keeping the connection */
                answered++;
                continue;
            }
            if (r > 0)
                continue; /* the rest of the response */
            /* Closed by the server: the idle flood does not come back (the slowloris does). */
            buf[0] = '\0';
            note_cut(&cuts, buf, r);
            close(a[i].fd);
            a[i].fd = -1;
        }
    }
    atomic_store(&probes.stop, true);
    pthread_join(th, NULL);
    for (int i = 0; i < IDLE_CONNS; i++)
        open_at_end += a[i].fd >= 0;
    close_all(a, IDLE_CONNS);
    fprintf(stderr,
            "keep-alive flood: %d connections, %d served once, %d still open at the end, %d "
            "closed by the server; %d dials failed\n",
            IDLE_CONNS, answered, open_at_end, cuts.s408 + cuts.s503 + cuts.other + cuts.silent,
            cuts.dial_failed);
    ck_assert_int_eq(testproc_get(&svc, "/readyz", NULL), 200);
    testproc_stop(&svc, SIGTERM);
    check_probes(&probes, "keep-alive flood");
    ck_assert_int_eq(cuts.dial_failed, 0);
}
END_TEST

/* A failed test leaves no service behind (its sockets die with the test's process). */
static void teardown(void)
{
    if (svc.pid > 0)
        testproc_stop(&svc, SIGKILL);
}

int main(void)
{
    Suite *s = suite_create("reliability_flood");
    TCase *tc = tcase_create("flood");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, slow_headers_leave_normal_clients_served);
    tcase_add_test(tc, idle_keep_alive_connections_leave_normal_clients_served);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

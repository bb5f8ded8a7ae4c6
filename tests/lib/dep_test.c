/*
 * dep_test: a dependency's state as its users and its logs see it: transitions, the rate limit
 * of its warnings, and what a readiness check reads.
 */
#include "svc/dep.h"
#include "svc/log.h"
#include "svc/time.h"
#include "testenv.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- log capture --------------------------------------------------------------------------- */

static int cap_fds[2] = {-1, -1};

static void capture_start(void)
{
    ck_assert_int_eq(pipe(cap_fds), 0);
    /* Non-blocking, so a test that logs more than expected cannot hang on a full pipe. */
    fcntl(cap_fds[1], F_SETFL, O_NONBLOCK);
    svc_log_set_fd(cap_fds[1]);
}

/* Stops capturing; returns the captured "level: msg" lines, one per line (malloc'd). */
static char *capture_stop(void)
{
    static char raw[65536];
    char *out = calloc(1, sizeof(raw));
    size_t len = 0, olen = 0;
    ssize_t n;

    svc_log_set_fd(-1);
    close(cap_fds[1]);
    while ((n = read(cap_fds[0], raw + len, sizeof(raw) - 1 - len)) > 0)
        len += (size_t)n;
    close(cap_fds[0]);
    raw[len] = '\0';
    for (char *line = raw, *nl; *line != '\0'; line = nl + 1) {
        json_t *j;

        nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        j = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(j);
        olen += (size_t)snprintf(out + olen, sizeof(raw) - olen, "%s: %s\n",
                                 json_string_value(json_object_get(j, "level")),
                                 json_string_value(json_object_get(j, "msg")));
        json_decref(j);
    }
    return out;
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(starts_up_and_logs_each_transition)
{
    struct svc_dep *d = svc_dep_new("postgres", 0, NULL);
    char why[64] = "x", *log;

    ck_assert_str_eq(svc_dep_name(d), "postgres");
    ck_assert(svc_dep_is_up(d, why, sizeof(why)));
    ck_assert_str_eq(why, "");

    capture_start();
    svc_dep_up(d); /* up already: nothing to say */
    svc_dep_down(d, "connect", "connection refused\nis the server running?");
    svc_dep_up(d);
    log = capture_stop();
    ck_assert_str_eq(log, "warn: postgres unavailable: connect failed: connection refused\n"
                          "info: postgres reachable again\n");
    free(log);
    svc_dep_free(d);
}
END_TEST

START_TEST(down_says_why_until_up)
{
    struct svc_dep *d = svc_dep_new("mongodb", 0, NULL);
    char why[64], small[8];

    svc_log_set_level(SVC_LOG_FATAL);
    svc_dep_down(d, NULL, "server selection timeout on '%s'", "127.0.0.1:1");
    ck_assert(!svc_dep_is_up(d, why, sizeof(why)));
    ck_assert_str_eq(why, "server selection timeout on '127.0.0.1:1'");
    ck_assert(!svc_dep_is_up(d, small, sizeof(small)));
    ck_assert_str_eq(small, "server ");
    ck_assert(!svc_dep_is_up(d, NULL, 0));
    /* The latest reason wins. */
    svc_dep_down(d, NULL, "connection reset");
    ck_assert(!svc_dep_is_up(d, why, sizeof(why)));
    ck_assert_str_eq(why, "connection reset");
    svc_dep_up(d);
    ck_assert(svc_dep_is_up(d, why, sizeof(why)));
    ck_assert_str_eq(why, "");
    svc_log_set_level(SVC_LOG_INFO);
    svc_dep_free(d);
}
END_TEST

START_TEST(warnings_while_down_are_rate_limited)
{
    struct svc_dep *d = svc_dep_new("postgres", 0, NULL);
    char *log;

    capture_start();
    for (int i = 0; i < 100; i++)
        svc_dep_down(d, "query", "connection lost");
    svc_dep_warn(d, "a related warning, also held back");
    log = capture_stop();
    /* One line for a hundred failures within SVC_DEP_WARN_MS. */
    ck_assert_str_eq(log, "warn: postgres unavailable: query failed: connection lost\n");
    free(log);

    /* A recovery, then a new outage: told at once, with no count carried over. */
    capture_start();
    svc_dep_up(d);
    svc_dep_down(d, NULL, "connection refused");
    log = capture_stop();
    ck_assert_str_eq(log, "info: postgres reachable again\n"
                          "warn: postgres unavailable: connection refused\n");
    free(log);
    svc_dep_free(d);
}
END_TEST

START_TEST(the_rate_limit_counts_what_it_held_back)
{
    struct svc_ratelimit r = SVC_RATELIMIT_INIT(100);
    unsigned held = 99;
    int64_t t0 = svc_now_ms();

    ck_assert(svc_ratelimit_due(&r, &held));
    ck_assert_uint_eq(held, 0);
    ck_assert(!svc_ratelimit_due(&r, &held));
    ck_assert(!svc_ratelimit_due(&r, &held));
    ck_assert(!svc_ratelimit_due(&r, &held));
    while (!svc_ratelimit_due(&r, &held))
        svc_sleep_ms(5);
    ck_assert_int_ge(svc_now_ms() - t0, 100);
    /* The three false answers, and those of the wait loop. */
    ck_assert_uint_ge(held, 3);
    ck_assert(!svc_ratelimit_due(&r, &held));
}
END_TEST

START_TEST(a_dependency_may_start_down_quietly)
{
    struct svc_dep *d = svc_dep_new("kafka", SVC_DEP_OPTIONAL, "no broker connection");
    char why[64], *log;

    capture_start();
    ck_assert(!svc_dep_is_up(d, why, sizeof(why)));
    ck_assert_str_eq(why, "no broker connection");
    svc_dep_up(d); /* nobody was told it was down: no "again" either */
    log = capture_stop();
    ck_assert_str_eq(log, "");
    free(log);
    ck_assert(svc_dep_is_up(d, NULL, 0));
    svc_dep_free(d);
}
END_TEST

struct probe_state {
    struct svc_dep *d;
    bool engine_up;
    int calls;
};

static void probe(void *ctx)
{
    struct probe_state *p = ctx;

    p->calls++;
    if (p->engine_up)
        svc_dep_up(p->d);
    else
        svc_dep_down(p->d, "ping", "no answer");
}

START_TEST(a_check_runs_the_probe_first)
{
    struct probe_state p = {.d = svc_dep_new("redis", 0, NULL), .engine_up = false};
    char why[64];

    svc_log_set_level(SVC_LOG_FATAL);
    ck_assert(svc_dep_check(p.d, why, sizeof(why))); /* no probe: the state as it is */
    svc_dep_set_probe(p.d, probe, &p);
    ck_assert(!svc_dep_check(p.d, why, sizeof(why)));
    ck_assert_str_eq(why, "no answer");
    ck_assert(!svc_dep_is_up(p.d, NULL, 0)); /* reading the state does not probe */
    ck_assert_int_eq(p.calls, 1);
    p.engine_up = true;
    ck_assert(svc_dep_check(p.d, why, sizeof(why)));
    ck_assert_int_eq(p.calls, 2);
    svc_log_set_level(SVC_LOG_INFO);
    svc_dep_free(p.d);
}
END_TEST

/* Many threads failing and recovering at once: the state stays consistent (TSan, ASan). */
static void *flap(void *arg)
{
    struct svc_dep *d = arg;

    for (int i = 0; i < 2000; i++) {
        if (i % 3 == 0)
            svc_dep_up(d);
        else
            svc_dep_down(d, "query", "attempt %d failed", i);
        svc_dep_is_up(d, NULL, 0);
    }
    return NULL;
}

START_TEST(shared_between_threads)
{
    struct svc_dep *d = svc_dep_new("postgres", 0, NULL);
    pthread_t t[4];
    char why[64];

    svc_log_set_level(SVC_LOG_FATAL);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, flap, d), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    svc_dep_down(d, NULL, "finally down");
    ck_assert(!svc_dep_is_up(d, why, sizeof(why)));
    ck_assert_str_eq(why, "finally down");
    svc_log_set_level(SVC_LOG_INFO);
    svc_dep_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dep");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, starts_up_and_logs_each_transition);
    tcase_add_test(tc, down_says_why_until_up);
    tcase_add_test(tc, warnings_while_down_are_rate_limited);
    tcase_add_test(tc, the_rate_limit_counts_what_it_held_back);
    tcase_add_test(tc, a_dependency_may_start_down_quietly);
    tcase_add_test(tc, a_check_runs_the_probe_first);
    tcase_add_test(tc, shared_between_threads);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

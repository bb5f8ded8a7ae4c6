/*
 * pool_test: the connection pool over a fake engine whose connections are heap objects, so
 * what a caller of the pool observes (lent connections, waits, errors, reopening, back-off and
 * the engine's state) is checked without any real engine.
 */
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/pool.h"
#include "svc/time.h"
#include "testenv.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake engine ----------------------------------------------------------------------- */

struct engine {
    atomic_bool up;        /* accepts connections */
    atomic_int generation; /* a restart cuts every connection of an older generation */
    atomic_int opens, open_failures, closes, pings;
    atomic_int live;   /* connections open right now */
    atomic_int in_use; /* connections lent right now (kept by the callers) */
    atomic_int max_in_use;
};

struct fake_conn {
    int generation;
    int serial;
};

static int f_open(void *ctx, void **conn, char *why, size_t cap)
{
    struct engine *e = ctx;
    struct fake_conn *c;

    if (!atomic_load(&e->up)) {
        atomic_fetch_add(&e->open_failures, 1);
        snprintf(why, cap, "connection refused\nis the engine running?");
        return SVC_EUNAVAILABLE;
    }
    c = malloc(sizeof(*c));
    c->generation = atomic_load(&e->generation);
    c->serial = atomic_fetch_add(&e->opens, 1) + 1;
    atomic_fetch_add(&e->live, 1);
    *conn = c;
    return 0;
}

static void f_close(void *ctx, void *conn)
{
    struct engine *e = ctx;

    atomic_fetch_add(&e->closes, 1);
    atomic_fetch_sub(&e->live, 1);
    free(conn);
}

static int f_ping(void *ctx, void *conn, char *why, size_t cap)
{
    struct engine *e = ctx;
    struct fake_conn *c = conn;

    atomic_fetch_add(&e->pings, 1);
    if (!atomic_load(&e->up) || c->generation != atomic_load(&e->generation)) {
        snprintf(why, cap, "server closed the connection unexpectedly");
        return SVC_EUNAVAILABLE;
    }
    return 0;
}

static const struct svc_pool_ops fake_ops = {f_open, f_close, f_ping};

static struct engine eng;
static struct svc_dep *dep;

static void setup(void)
{
    memset(&eng, 0, sizeof(eng));
    atomic_store(&eng.up, true);
    dep = svc_dep_new("fake", 0, NULL);
    svc_log_set_level(SVC_LOG_FATAL);
}

static void teardown(void)
{
    svc_dep_free(dep);
    dep = NULL;
    svc_log_set_level(SVC_LOG_INFO);
}

static struct svc_pool *pool_of(int size, int acquire_timeout_ms, int retry_ms)
{
    struct svc_pool_config cfg = {
        .ops = &fake_ops,
        .ctx = &eng,
        .dep = dep,
        .size = size,
        .acquire_timeout_ms = acquire_timeout_ms,
        .retry_ms = retry_ms,
        .retry_max_ms = retry_ms * 4,
        .readiness_probe = true,
    };

    return svc_pool_new(&cfg);
}

static struct svc_pool_conn *acquired(struct svc_pool *p)
{
    struct svc_pool_conn *c = NULL;
    int rc = svc_pool_acquire(p, 0, &c);

    ck_assert_msg(rc == 0, "acquire: %s", svc_err_name(rc));
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(c->conn);
    return c;
}

static int serial(const struct svc_pool_conn *c)
{
    return ((const struct fake_conn *)c->conn)->serial;
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(opens_lazily_and_reuses)
{
    struct svc_pool *p = pool_of(3, 1000, 100);
    struct svc_pool_conn *a, *b;
    int first;

    ck_assert_int_eq(atomic_load(&eng.opens), 0); /* nothing before it is needed */
    a = acquired(p);
    ck_assert(a->fresh);
    first = serial(a);
    svc_pool_release(p, a, false);
    b = acquired(p);
    ck_assert(!b->fresh);
    ck_assert_int_eq(serial(b), first);
    ck_assert_int_eq(atomic_load(&eng.opens), 1);
    svc_pool_release(p, b, false);
    svc_pool_free(p);
    ck_assert_int_eq(atomic_load(&eng.live), 0); /* freeing closes what is open */
}
END_TEST

START_TEST(bounded_and_times_out_when_all_are_taken)
{
    struct svc_pool *p = pool_of(3, 200, 100);
    struct svc_pool_conn *c[3], *more = (struct svc_pool_conn *)1;
    int64_t t0;

    for (int i = 0; i < 3; i++)
        c[i] = acquired(p);
    ck_assert_int_eq(atomic_load(&eng.live), 3);
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_pool_acquire(p, 0, &more), SVC_EUNAVAILABLE);
    ck_assert_ptr_null(more);
    ck_assert_int_ge(svc_now_ms() - t0, 200); /* it waited for its deadline */
    /* An explicit deadline. */
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_pool_acquire(p, t0 + 50, &more), SVC_EUNAVAILABLE);
    ck_assert_int_ge(svc_now_ms() - t0, 50);
    ck_assert_int_eq(atomic_load(&eng.opens), 3); /* never more than SIZE */
    ck_assert(svc_dep_is_up(dep, NULL, 0));       /* busy is not down */
    svc_pool_release(p, c[1], false);
    more = acquired(p);
    ck_assert_int_eq(serial(more), serial(c[1]));
    svc_pool_release(p, more, false);
    svc_pool_release(p, c[0], false);
    svc_pool_release(p, c[2], false);
    svc_pool_free(p);
}
END_TEST

struct later {
    struct svc_pool *p;
    struct svc_pool_conn *c;
};

static void *release_later(void *arg)
{
    struct later *l = arg;

    svc_sleep_ms(50);
    svc_pool_release(l->p, l->c, false);
    return NULL;
}

START_TEST(a_waiter_gets_the_connection_released_meanwhile)
{
    struct svc_pool *p = pool_of(1, 5000, 100);
    struct later l = {p, acquired(p)};
    struct svc_pool_conn *c;
    pthread_t t;
    int64_t t0 = svc_now_ms();

    ck_assert_int_eq(pthread_create(&t, NULL, release_later, &l), 0);
    c = acquired(p);
    ck_assert_int_lt(svc_now_ms() - t0, 4000); /* woken, not timed out */
    ck_assert_int_eq(atomic_load(&eng.opens), 1);
    pthread_join(t, NULL);
    svc_pool_release(p, c, false);
    svc_pool_free(p);
}
END_TEST

START_TEST(a_broken_connection_is_reopened)
{
    struct svc_pool *p = pool_of(2, 1000, 100);
    struct svc_pool_conn *a = acquired(p), *b = acquired(p);
    int sa = serial(a), sb = serial(b);

    svc_pool_release(p, b, false);
    svc_pool_release(p, a, true); /* the caller saw it fail */
    ck_assert_int_eq(atomic_load(&eng.closes), 1);
    ck_assert_int_eq(atomic_load(&eng.live), 1);
    /* The broken one is lent next (last released first), reopened: a retry gets a new
     * connection, not the other one, which may be just as stale. */
    a = acquired(p);
    ck_assert(a->fresh);
    ck_assert_int_ne(serial(a), sa);
    ck_assert_int_ne(serial(a), sb);
    ck_assert_int_eq(atomic_load(&eng.opens), 3);
    svc_pool_release(p, a, false);
    svc_pool_free(p);
}
END_TEST

START_TEST(open_failures_back_off_and_mark_the_engine_down)
{
    struct svc_pool *p = pool_of(2, 1000, 300);
    struct svc_pool_conn *c = NULL;
    char why[128];
    int64_t t0, t1;

    atomic_store(&eng.up, false);
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_pool_acquire(p, 0, &c), SVC_EUNAVAILABLE);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(atomic_load(&eng.open_failures), 1);
    ck_assert(!svc_dep_is_up(dep, why, sizeof(why)));
    ck_assert_str_eq(why, "connection refused");

    /* Backing off: answered at once, without trying (it cannot have been 300 ms yet unless the
     * machine stalled, which the condition allows for). */
    ck_assert_int_eq(svc_pool_acquire(p, 0, &c), SVC_EUNAVAILABLE);
    t1 = svc_now_ms();
    if (t1 - t0 < 300)
        ck_assert_int_eq(atomic_load(&eng.open_failures), 1);
    ck_assert_int_lt(t1 - t0, 1000); /* no waiting for the acquire timeout */

    /* After the back-off it tries again, fails again, and backs off longer (600 ms). */
    svc_sleep_ms(300 - (svc_now_ms() - t0) + 20);
    t0 = svc_now_ms();
    ck_assert_int_eq(svc_pool_acquire(p, 0, &c), SVC_EUNAVAILABLE);
    ck_assert_int_eq(atomic_load(&eng.open_failures), 2);
    svc_sleep_ms(350);
    ck_assert_int_eq(svc_pool_acquire(p, 0, &c), SVC_EUNAVAILABLE);
    if (svc_now_ms() - t0 < 600)
        ck_assert_int_eq(atomic_load(&eng.open_failures), 2);

    /* The engine is back: once the back-off is over, the next acquire connects. */
    atomic_store(&eng.up, true);
    svc_sleep_ms(600 - (svc_now_ms() - t0) + 20);
    c = acquired(p);
    ck_assert(c->fresh);
    ck_assert(svc_dep_is_up(dep, NULL, 0));
    svc_pool_release(p, c, false);
    svc_pool_free(p);
}
END_TEST

START_TEST(an_open_connection_is_lent_while_backing_off)
{
    struct svc_pool *p = pool_of(2, 1000, 5000);
    struct svc_pool_conn *a = acquired(p), *b = acquired(p);
    int sa = serial(a);

    svc_pool_release(p, a, false);
    svc_pool_release(p, b, true); /* closed, on top of the idle stack */
    atomic_store(&eng.up, false);
    ck_assert_int_eq(svc_pool_acquire(p, 0, &b), SVC_EUNAVAILABLE); /* its reopening fails */
    /* Backing off, with the closed slot on top: the open connection below it is lent rather
     * than refusing the caller. */
    b = acquired(p);
    ck_assert_int_eq(serial(b), sa);
    ck_assert_int_eq(atomic_load(&eng.open_failures), 1);
    svc_pool_release(p, b, false);
    svc_pool_free(p);
}
END_TEST

START_TEST(a_check_pings_and_reconnects_for_readiness)
{
    struct svc_pool *p = pool_of(2, 1000, 100);
    struct svc_pool_conn *c;
    char why[128];

    /* An idle pool with nothing open: the check connects. */
    ck_assert(svc_dep_check(dep, why, sizeof(why)));
    ck_assert_int_eq(atomic_load(&eng.opens), 1);
    /* Open and answering: a ping, nothing opened. */
    ck_assert(svc_dep_check(dep, why, sizeof(why)));
    ck_assert_int_eq(atomic_load(&eng.pings), 1);
    ck_assert_int_eq(atomic_load(&eng.opens), 1);

    /* The engine restarted: the ping fails, the connection is reopened, still ready. */
    atomic_fetch_add(&eng.generation, 1);
    ck_assert(svc_dep_check(dep, why, sizeof(why)));
    ck_assert_int_eq(atomic_load(&eng.opens), 2);
    ck_assert_int_eq(atomic_load(&eng.live), 1);

    /* The engine is down: not ready, and why. */
    atomic_store(&eng.up, false);
    ck_assert(!svc_dep_check(dep, why, sizeof(why)));
    ck_assert_str_eq(why, "connection refused");
    ck_assert_int_eq(atomic_load(&eng.live), 0);

    /* Every connection busy: the check waits for none and reports the state as it is. */
    atomic_store(&eng.up, true);
    svc_sleep_ms(120);
    c = acquired(p);
    ck_assert(svc_dep_is_up(dep, NULL, 0));
    {
        struct svc_pool_conn *d = acquired(p);
        int64_t t0 = svc_now_ms();

        ck_assert(svc_dep_check(dep, why, sizeof(why)));
        ck_assert_int_lt(svc_now_ms() - t0, 500);
        svc_pool_release(p, d, false);
    }
    svc_pool_release(p, c, false);
    svc_pool_free(p);
}
END_TEST

/* ---- many threads -------------------------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 400, SIZE = 3 };

struct worker {
    struct svc_pool *p;
    int failures;
    unsigned seed;
};

static void *work(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < ROUNDS; i++) {
        struct svc_pool_conn *c;
        int n;

        if (svc_pool_acquire(w->p, svc_now_ms() + 10000, &c) != 0) {
            w->failures++;
            continue;
        }
        n = atomic_fetch_add(&eng.in_use, 1) + 1;
        for (int m = atomic_load(&eng.max_in_use); n > m;)
            if (atomic_compare_exchange_weak(&eng.max_in_use, &m, n))
                break;
        if (((struct fake_conn *)c->conn)->serial <= 0)
            w->failures++;
        if (rand_r(&w->seed) % 4 == 0)
            sched_yield();
        atomic_fetch_sub(&eng.in_use, 1);
        svc_pool_release(w->p, c, rand_r(&w->seed) % 10 == 0);
    }
    return NULL;
}

START_TEST(concurrent_acquire_and_release)
{
    struct svc_pool *p = pool_of(SIZE, 1000, 100);
    struct worker w[THREADS];
    pthread_t t[THREADS];

    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.p = p, .seed = (unsigned)i + 1};
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].failures, 0);
    }
    ck_assert_int_le(atomic_load(&eng.max_in_use), SIZE);
    ck_assert_int_ge(atomic_load(&eng.max_in_use), 1);
    ck_assert_int_le(atomic_load(&eng.live), SIZE);
    /* About one release in ten was broken, and each was reopened when next lent. */
    ck_assert_int_gt(atomic_load(&eng.closes), 0);
    ck_assert_int_eq(atomic_load(&eng.opens) - atomic_load(&eng.closes), atomic_load(&eng.live));
    svc_pool_free(p);
    ck_assert_int_eq(atomic_load(&eng.live), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("fake engine");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, opens_lazily_and_reuses);
    tcase_add_test(tc, bounded_and_times_out_when_all_are_taken);
    tcase_add_test(tc, a_waiter_gets_the_connection_released_meanwhile);
    tcase_add_test(tc, a_broken_connection_is_reopened);
    tcase_add_test(tc, open_failures_back_off_and_mark_the_engine_down);
    tcase_add_test(tc, an_open_connection_is_lent_while_backing_off);
    tcase_add_test(tc, a_check_pings_and_reconnects_for_readiness);
    tcase_add_test(tc, concurrent_acquire_and_release);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

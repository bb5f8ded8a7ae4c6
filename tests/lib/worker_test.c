/*
 * The periodic worker: it runs its function at once and then on schedule, a wake cuts a wait
 * short, and a stop is prompt however long the interval.
 */
#include "svc/time.h"
#include "svc/worker.h"
#include "testenv.h"

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define HOUR_MS (3600LL * 1000)

/* What the worker function saw, shared with the test's thread. */
struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    int64_t at[64]; /* svc_now_ms() of each call */
    int64_t ret;    /* what the function returns */
    bool hold;      /* while true, a call waits (to wake or stop during a call) */
    bool in_call;
    bool loop_until_stopping; /* a long call that checks svc_worker_stopping() */
    struct svc_worker *w;
};

static struct probe p;

static void probe_init(int64_t ret)
{
    pthread_mutex_init(&p.mu, NULL);
    svc_cond_init_monotonic(&p.cv);
    p.calls = 0;
    p.ret = ret;
    p.hold = false;
    p.in_call = false;
    p.loop_until_stopping = false;
    p.w = NULL;
}

static int64_t work(void *ctx)
{
    struct probe *q = ctx;
    int64_t ret;

    pthread_mutex_lock(&q->mu);
    if (q->calls < 64)
        q->at[q->calls] = svc_now_ms();
    q->calls++;
    q->in_call = true;
    pthread_cond_broadcast(&q->cv);
    while (q->hold)
        pthread_cond_wait(&q->cv, &q->mu);
    ret = q->ret;
    pthread_mutex_unlock(&q->mu);
    while (q->loop_until_stopping && !svc_worker_stopping(q->w))
        svc_sleep_ms(1);
    pthread_mutex_lock(&q->mu);
    q->in_call = false;
    pthread_mutex_unlock(&q->mu);
    return ret;
}

/* Waits until the function has been called N times, or MS have passed; returns the count. */
static int wait_calls(int n, int64_t ms)
{
    int64_t deadline = svc_now_ms() + ms;
    int calls;

    pthread_mutex_lock(&p.mu);
    while (p.calls < n && svc_cond_wait_until(&p.cv, &p.mu, deadline))
        ;
    calls = p.calls;
    pthread_mutex_unlock(&p.mu);
    return calls;
}

static int calls_now(void)
{
    int calls;

    pthread_mutex_lock(&p.mu);
    calls = p.calls;
    pthread_mutex_unlock(&p.mu);
    return calls;
}

START_TEST(runs_at_once_and_then_every_interval)
{
    struct svc_worker *w;
    int64_t started;

    probe_init(SVC_WORKER_INTERVAL);
    w = svc_worker_new("test", 50, work, &p);
    started = svc_now_ms();
    ck_assert_int_eq(svc_worker_start(w), 0);
    ck_assert_int_eq(wait_calls(4, 10000), 4);
    svc_worker_free(w);
    /* The first call does not wait for the interval; each next one does. */
    ck_assert_int_lt(p.at[0] - started, 50);
    for (int i = 1; i < 4; i++)
        ck_assert_int_ge(p.at[i] - p.at[i - 1], 50);
}
END_TEST

START_TEST(the_function_chooses_its_next_wait)
{
    struct svc_worker *w;

    /* Every call asks for 30 ms, whatever the worker's interval. */
    probe_init(30);
    w = svc_worker_new("test", HOUR_MS, work, &p);
    ck_assert_int_eq(svc_worker_start(w), 0);
    ck_assert_int_eq(wait_calls(3, 10000), 3);
    svc_worker_free(w);
    ck_assert_int_ge(p.at[1] - p.at[0], 30);
    ck_assert_int_ge(p.at[2] - p.at[1], 30);
}
END_TEST

START_TEST(a_wake_cuts_the_wait_short)
{
    struct svc_worker *w;

    probe_init(SVC_WORKER_INTERVAL);
    w = svc_worker_new("test", HOUR_MS, work, &p);
    ck_assert_int_eq(svc_worker_start(w), 0);
    ck_assert_int_eq(wait_calls(1, 10000), 1);
    svc_worker_wake(w);
    ck_assert_int_eq(wait_calls(2, 10000), 2);
    svc_worker_wake(w);
    ck_assert_int_eq(wait_calls(3, 10000), 3);
    svc_worker_free(w);
}
END_TEST

/* A wake that comes while the function runs is not lost: the next call follows at once. */
START_TEST(a_wake_during_a_call_runs_it_again)
{
    struct svc_worker *w;

    probe_init(SVC_WORKER_INTERVAL);
    p.hold = true;
    w = svc_worker_new("test", HOUR_MS, work, &p);
    ck_assert_int_eq(svc_worker_start(w), 0);
    ck_assert_int_eq(wait_calls(1, 10000), 1);
    svc_worker_wake(w);
    pthread_mutex_lock(&p.mu);
    p.hold = false;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    ck_assert_int_eq(wait_calls(2, 10000), 2);
    svc_worker_free(w);
}
END_TEST

START_TEST(a_stop_is_prompt_with_a_long_interval)
{
    struct svc_worker *w;
    int64_t t0;

    probe_init(SVC_WORKER_INTERVAL);
    w = svc_worker_new("test", HOUR_MS, work, &p);
    ck_assert_int_eq(svc_worker_start(w), 0);
    ck_assert_int_eq(wait_calls(1, 10000), 1);
    t0 = svc_now_ms();
    svc_worker_stop(w);
    ck_assert_int_lt(svc_now_ms() - t0, 1000);
    /* Stopped: no further call, whatever wakes it. */
    svc_worker_wake(w);
    svc_sleep_ms(50);
    ck_assert_int_eq(calls_now(), 1);
    svc_worker_stop(w); /* idempotent */
    svc_worker_free(w);
}
END_TEST

/* A long call that checks svc_worker_stopping() returns once a stop is asked for. */
START_TEST(a_long_call_sees_the_stop)
{
    struct svc_worker *w;
    int64_t t0;

    probe_init(0);
    p.loop_until_stopping = true;
    w = svc_worker_new("test", HOUR_MS, work, &p);
    p.w = w;
    ck_assert(!svc_worker_stopping(w));
    ck_assert_int_eq(svc_worker_start(w), 0);
    ck_assert_int_eq(wait_calls(1, 10000), 1);
    t0 = svc_now_ms();
    svc_worker_stop(w);
    ck_assert_int_lt(svc_now_ms() - t0, 1000);
    ck_assert(svc_worker_stopping(w));
    ck_assert_int_eq(calls_now(), 1);
    svc_worker_free(w);
}
END_TEST

START_TEST(stop_and_free_without_a_start_are_safe)
{
    struct svc_worker *w;

    probe_init(SVC_WORKER_INTERVAL);
    w = svc_worker_new("test", 10, work, &p);
    svc_worker_wake(w);
    svc_worker_stop(w);
    svc_worker_stop(w);
    svc_worker_free(w);
    svc_worker_stop(NULL);
    svc_worker_free(NULL);
    ck_assert_int_eq(calls_now(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, runs_at_once_and_then_every_interval);
    tcase_add_test(tc, the_function_chooses_its_next_wait);
    tcase_add_test(tc, a_wake_cuts_the_wait_short);
    tcase_add_test(tc, a_wake_during_a_call_runs_it_again);
    tcase_add_test(tc, a_stop_is_prompt_with_a_long_interval);
    tcase_add_test(tc, a_long_call_sees_the_stop);
    tcase_add_test(tc, stop_and_free_without_a_start_are_safe);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

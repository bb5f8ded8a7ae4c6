#include "svc/time.h"
#include "testenv.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

START_TEST(the_two_clocks)
{
    int64_t mono = svc_now_ms(), wall = svc_wall_ms();

    /* The wall clock is after 2020-01-01 on any machine that runs this; the monotonic one
     * counts from boot, far below that. */
    ck_assert_int_gt(wall, 1577836800000LL);
    ck_assert_int_lt(mono, wall);
    svc_sleep_ms(30);
    ck_assert_int_ge(svc_now_ms() - mono, 30);
    ck_assert_int_lt(svc_now_ms() - mono, 5000);
    svc_sleep_ms(0);
    svc_sleep_ms(-5);
}
END_TEST

START_TEST(a_wait_ends_at_its_deadline)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    int64_t start = svc_now_ms();
    bool woken = true;

    ck_assert_int_eq(svc_cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&mu);
    while (woken)
        woken = svc_cond_wait_until(&cv, &mu, start + 50);
    pthread_mutex_unlock(&mu);
    ck_assert_int_ge(svc_now_ms() - start, 50);
    ck_assert_int_lt(svc_now_ms() - start, 5000);
    /* A deadline already past returns at once. */
    pthread_mutex_lock(&mu);
    ck_assert(!svc_cond_wait_until(&cv, &mu, svc_now_ms() - 1));
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}
END_TEST

struct waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool flag;
};

static void *wake_soon(void *arg)
{
    struct waker *w = arg;

    svc_sleep_ms(20);
    pthread_mutex_lock(&w->mu);
    w->flag = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

START_TEST(a_signal_ends_a_wait_early)
{
    struct waker w = {.mu = PTHREAD_MUTEX_INITIALIZER};
    int64_t start = svc_now_ms();
    pthread_t t;

    svc_cond_init_monotonic(&w.cv);
    pthread_create(&t, NULL, wake_soon, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.flag && svc_cond_wait_until(&w.cv, &w.mu, start + 60000))
        ;
    pthread_mutex_unlock(&w.mu);
    pthread_join(t, NULL);
    ck_assert(w.flag);
    ck_assert_int_lt(svc_now_ms() - start, 30000);
    pthread_cond_destroy(&w.cv);
}
END_TEST

START_TEST(rfc3339_times)
{
    int64_t ms;
    char out[SVC_RFC3339_MS_LEN + 1];

    ck_assert(svc_rfc3339_parse("1970-01-01T00:00:00Z", &ms));
    ck_assert_int_eq(ms, 0);
    ck_assert(svc_rfc3339_parse("2026-11-24T10:00:00.123Z", &ms));
    ck_assert_int_eq(ms, 1795514400123LL);
    svc_rfc3339_format_ms(ms, out);
    ck_assert_str_eq(out, "2026-11-24T10:00:00.123Z");
    ck_assert(svc_rfc3339_parse("2026-11-24T11:30:00.123+01:30", &ms));
    ck_assert_int_eq(ms, 1795514400123LL);
    ck_assert(svc_rfc3339_parse("2026-11-24t05:00:00.1234567-05:00", &ms));
    ck_assert_int_eq(ms, 1795514400123LL);
    ck_assert(svc_rfc3339_parse("2024-02-29T23:59:60z", NULL)); /* leap day, leap second */
    ck_assert(svc_rfc3339_parse("1969-12-31T23:59:59.999Z", &ms));
    ck_assert_int_eq(ms, -1);
    svc_rfc3339_format_ms(-1, out);
    ck_assert_str_eq(out, "1969-12-31T23:59:59.999Z");

    ck_assert(!svc_rfc3339_parse("2023-02-29T00:00:00Z", NULL));
    ck_assert(!svc_rfc3339_parse("2026-13-01T00:00:00Z", NULL));
    ck_assert(!svc_rfc3339_parse("2026-11-24T24:00:00Z", NULL));
    ck_assert(!svc_rfc3339_parse("2026-11-24T10:00:00.Z", NULL));
    ck_assert(!svc_rfc3339_parse("2026-11-24T10:00:00+0100", NULL));
    ck_assert(!svc_rfc3339_parse("2026-11-24T10:00:00+24:00", NULL));
    ck_assert(!svc_rfc3339_parse("2026-11-24T10:00:00Zjunk", NULL));
    ck_assert(!svc_rfc3339_parse("2026-11-24", NULL));
    ck_assert(!svc_rfc3339_parse("", NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, the_two_clocks);
    tcase_add_test(tc, a_wait_ends_at_its_deadline);
    tcase_add_test(tc, a_signal_ends_a_wait_early);
    tcase_add_test(tc, rfc3339_times);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

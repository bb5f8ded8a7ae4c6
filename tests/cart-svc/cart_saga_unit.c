/*
 * cart_saga.c on its own (unit): the saga over an in-memory store and scripted owners, where
 * every path can be forced: each step refused or unanswered, the pause and the give-up after
 * unanswered attempts, the compensations due (and only those), another replica moving the
 * order during a call, and the names the API and the log use.
 */
#include "cart.h"

#include "svc/time.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDER   "0b9f2c1e-7d4a-4e6b-8f3a-2c5d9e1f4a70"
#define LOG_MAX 256

/* ---- the store: one order ----------------------------------------------------------------- */

static struct cart_order order;
static struct cart_log_entry entries[LOG_MAX];
static char details[LOG_MAX][CART_REASON_MAX + 1];
static char failed_step[16], reason[CART_REASON_MAX + 1];
static struct cart_line line = {.product_id = "2eb03aba-0cfa-876a-a48c-b781eb37cc8f",
                                .quantity = 2,
                                .price_cents = 1250,
                                .currency = "EUR",
                                .name = "Steel Kettle"};

static int order_get(void *ctx, struct svc_arena *a, const char *id, struct cart_order *out)
{
    (void)ctx;
    (void)a;
    if (strcmp(id, order.id) != 0)
        return SVC_ENOTFOUND;
    *out = order;
    out->failed_step = failed_step[0] != '\0' ? failed_step : NULL;
    out->reason = reason[0] != '\0' ? reason : NULL;
    return 0;
}

/* When set, another replica fails the order just before the next status change is logged. */
static bool failed_meanwhile;

static int order_log(void *ctx, const char *id, const struct cart_log_entry *e, int status,
                     const char *fstep, const char *why, const char *traceparent)
{
    (void)ctx;
    (void)traceparent;
    ck_assert_str_eq(id, order.id);
    if (failed_meanwhile && status >= 0) {
        failed_meanwhile = false;
        order.status = CART_FAILED;
    }
    /* As the Redis store: a finished order keeps its end. */
    if (status >= 0 && (order.status == CART_PLACED || order.status == CART_FAILED) &&
        (int)order.status != status)
        return SVC_ECONFLICT;
    ck_assert_uint_lt(order.nlog, LOG_MAX);
    entries[order.nlog] = *e;
    entries[order.nlog].detail = NULL;
    if (e->detail != NULL) {
        snprintf(details[order.nlog], sizeof(details[0]), "%s", e->detail);
        entries[order.nlog].detail = details[order.nlog];
    }
    order.nlog++;
    if (status >= 0) {
        order.status = (enum cart_status)status;
        if (status == CART_FAILED) {
            ck_assert_ptr_nonnull(fstep);
            ck_assert_ptr_nonnull(why);
            snprintf(failed_step, sizeof(failed_step), "%s", fstep);
            snprintf(reason, sizeof(reason), "%s", why);
        }
    }
    return 0;
}

static const struct cart_store store = {.order_get = order_get, .order_log = order_log};

/* ---- the owners: scripted ----------------------------------------------------------------- */

enum { N_STEPS = CART_STEP_REFUND + 1 };

static enum cart_remote_result answer[N_STEPS]; /* what each step's call answers */
static int calls[N_STEPS];
static enum cart_status moved_to = (enum cart_status) - 1; /* another replica, during a call */

static enum cart_remote_result answer_of(enum cart_step s, char *why, size_t cap)
{
    calls[s]++;
    if ((int)moved_to >= 0) {
        order.status = moved_to;
        moved_to = (enum cart_status) - 1;
    }
    if (answer[s] == CART_REMOTE_REFUSED)
        snprintf(why, cap, "%s refused by the test", cart_step_name(s));
    else if (answer[s] == CART_REMOTE_RETRY)
        snprintf(why, cap, "%s: no answer in time", cart_step_name(s));
    return answer[s];
}

static enum cart_remote_result reserve(void *ctx, const struct cart_order *o, char *why, size_t cap)
{
    (void)ctx;
    ck_assert_str_eq(o->id, ORDER);
    ck_assert_uint_eq(o->n, 1);
    return answer_of(CART_STEP_RESERVE, why, cap);
}

static enum cart_remote_result charge(void *ctx, const struct cart_order *o, char *why, size_t cap)
{
    (void)ctx;
    ck_assert_int_eq(o->total_cents, 2500);
    return answer_of(CART_STEP_CHARGE, why, cap);
}

static enum cart_remote_result commit(void *ctx, const char *id, char *why, size_t cap)
{
    (void)ctx;
    ck_assert_str_eq(id, ORDER);
    return answer_of(CART_STEP_COMMIT, why, cap);
}

static enum cart_remote_result release(void *ctx, const char *id, char *why, size_t cap)
{
    (void)ctx;
    ck_assert_str_eq(id, ORDER);
    return answer_of(CART_STEP_RELEASE, why, cap);
}

static enum cart_remote_result refund(void *ctx, const char *id, char *why, size_t cap)
{
    (void)ctx;
    ck_assert_str_eq(id, ORDER);
    return answer_of(CART_STEP_REFUND, why, cap);
}

static const struct cart_remote remote = {
    .reserve = reserve, .charge = charge, .commit = commit, .release = release, .refund = refund};

static void setup(void)
{
    memset(&order, 0, sizeof(order));
    memcpy(order.id, ORDER, sizeof(order.id));
    memcpy(order.user_id, "3f1c8a2e-9b4d-4c7a-a1e5-6d2f8b0c3e94", sizeof(order.user_id));
    order.status = CART_PENDING;
    order.lines = &line;
    order.n = 1;
    order.total_cents = 2500;
    order.currency = "EUR";
    order.log = entries;
    order.nlog = 0;
    failed_step[0] = reason[0] = '\0';
    memset(answer, 0, sizeof(answer)); /* CART_REMOTE_OK */
    memset(calls, 0, sizeof(calls));
    moved_to = (enum cart_status) - 1;
}

static int run(void)
{
    return cart_saga_run(&store, &remote, ORDER, -1);
}

/* Entries of STEP in STATE in the log. */
static int logged(enum cart_step step, enum cart_step_state state)
{
    int n = 0;

    for (size_t i = 0; i < order.nlog; i++)
        n += entries[i].step == step && entries[i].state == state;
    return n;
}

/* Makes every entry of the log older by MS, as if that long had passed. */
static void age(int64_t ms)
{
    for (size_t i = 0; i < order.nlog; i++)
        entries[i].at_ms -= ms;
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(test_names)
{
    ck_assert_str_eq(cart_status_name(CART_PENDING), "pending");
    ck_assert_str_eq(cart_status_name(CART_COMPENSATING), "compensating");
    ck_assert_str_eq(cart_status_name(CART_PLACED), "placed");
    ck_assert_str_eq(cart_step_name(CART_STEP_RESERVE), "reserve");
    ck_assert_str_eq(cart_step_name(CART_STEP_REFUND), "refund");
    ck_assert_str_eq(cart_step_state_name(CART_STEP_RETRYING), "retrying");
    ck_assert_str_eq(cart_step_state_name(CART_STEP_SUCCEEDED), "succeeded");
}
END_TEST

START_TEST(test_forward_to_placed)
{
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_PLACED);
    ck_assert_int_eq(calls[CART_STEP_RESERVE] + calls[CART_STEP_CHARGE] + calls[CART_STEP_COMMIT],
                     3);
    ck_assert_int_eq(calls[CART_STEP_RELEASE] + calls[CART_STEP_REFUND], 0);
    /* Each step logged before its call and after its answer, in order. */
    ck_assert_uint_eq(order.nlog, 6);
    ck_assert_int_eq(entries[0].step, CART_STEP_RESERVE);
    ck_assert_int_eq(entries[0].state, CART_STEP_STARTED);
    ck_assert_int_eq(entries[1].state, CART_STEP_SUCCEEDED);
    ck_assert_int_eq(entries[5].step, CART_STEP_COMMIT);
    ck_assert_int_eq(entries[5].state, CART_STEP_SUCCEEDED);
    ck_assert(entries[5].at_ms > 0);
    /* A finished order is left as it is. */
    ck_assert_int_eq(run(), 0);
    ck_assert_uint_eq(order.nlog, 6);
}
END_TEST

START_TEST(test_reserve_refused)
{
    answer[CART_STEP_RESERVE] = CART_REMOTE_REFUSED;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    ck_assert_str_eq(failed_step, "reserve");
    ck_assert_str_eq(reason, "reserve refused by the test");
    /* Nothing was held: nothing to compensate, and nothing else asked. */
    ck_assert_int_eq(calls[CART_STEP_RELEASE] + calls[CART_STEP_CHARGE], 0);
    ck_assert_int_eq(logged(CART_STEP_RESERVE, CART_STEP_FAILED), 1);
}
END_TEST

START_TEST(test_charge_refused_releases)
{
    answer[CART_STEP_CHARGE] = CART_REMOTE_REFUSED;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    ck_assert_str_eq(failed_step, "charge");
    ck_assert_str_eq(reason, "charge refused by the test");
    ck_assert_int_eq(calls[CART_STEP_RELEASE], 1);
    /* The payment was refused: no refund is asked or shown. */
    ck_assert_int_eq(calls[CART_STEP_REFUND], 0);
    ck_assert_int_eq(calls[CART_STEP_COMMIT], 0);
    ck_assert_int_eq(logged(CART_STEP_RELEASE, CART_STEP_SUCCEEDED), 1);
}
END_TEST

START_TEST(test_commit_refused_refunds_then_releases)
{
    answer[CART_STEP_COMMIT] = CART_REMOTE_REFUSED;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    ck_assert_str_eq(failed_step, "commit");
    ck_assert_int_eq(calls[CART_STEP_REFUND], 1);
    ck_assert_int_eq(calls[CART_STEP_RELEASE], 1);
    /* In reverse: the refund before the release. */
    for (size_t i = 0; i < order.nlog; i++)
        if (entries[i].step == CART_STEP_RELEASE) {
            ck_assert_int_eq(logged(CART_STEP_REFUND, CART_STEP_SUCCEEDED), 1);
            ck_assert(i > 0 && entries[i - 1].step == CART_STEP_REFUND);
            break;
        }
}
END_TEST

START_TEST(test_retry_pauses_then_goes_on)
{
    answer[CART_STEP_CHARGE] = CART_REMOTE_RETRY;
    ck_assert_int_eq(run(), SVC_EAGAIN);
    ck_assert_int_eq(order.status, CART_RESERVED);
    ck_assert_int_eq(logged(CART_STEP_CHARGE, CART_STEP_RETRYING), 1);
    /* At once again: in its pause, no call. */
    ck_assert_int_eq(run(), SVC_EAGAIN);
    ck_assert_int_eq(calls[CART_STEP_CHARGE], 1);
    /* After the pause: tried again, and it answers now. */
    age(60000);
    answer[CART_STEP_CHARGE] = CART_REMOTE_OK;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_PLACED);
    ck_assert_int_eq(calls[CART_STEP_CHARGE], 2);
}
END_TEST

START_TEST(test_reserve_gives_up_and_releases)
{
    answer[CART_STEP_RESERVE] = CART_REMOTE_RETRY;
    ck_assert_int_eq(run(), SVC_EAGAIN);
    /* Three minutes of silence: past the give-up age. */
    age(180000);
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    ck_assert_str_eq(failed_step, "reserve");
    ck_assert_str_eq(reason, "reserve: no answer in time");
    /* An unanswered reservation may have been made: it is released. */
    ck_assert_int_eq(calls[CART_STEP_RELEASE], 1);
    ck_assert_int_eq(calls[CART_STEP_RESERVE], 1);
}
END_TEST

START_TEST(test_commit_never_gives_up)
{
    answer[CART_STEP_COMMIT] = CART_REMOTE_RETRY;
    ck_assert_int_eq(run(), SVC_EAGAIN);
    for (int i = 0; i < 30; i++) {
        age(600000);
        ck_assert_int_eq(run(), SVC_EAGAIN);
    }
    ck_assert_int_eq(order.status, CART_CHARGED);
    ck_assert_int_eq(calls[CART_STEP_COMMIT], 31);
    ck_assert_int_eq(calls[CART_STEP_REFUND], 0);
}
END_TEST

START_TEST(test_compensation_retried_until_done)
{
    answer[CART_STEP_CHARGE] = CART_REMOTE_REFUSED;
    answer[CART_STEP_RELEASE] = CART_REMOTE_RETRY;
    ck_assert_int_eq(run(), SVC_EAGAIN);
    ck_assert_int_eq(order.status, CART_COMPENSATING);
    for (int i = 0; i < 25; i++) {
        age(600000);
        ck_assert_int_eq(run(), SVC_EAGAIN);
    }
    ck_assert_int_eq(order.status, CART_COMPENSATING);
    answer[CART_STEP_RELEASE] = CART_REMOTE_OK;
    age(600000);
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    ck_assert_str_eq(failed_step, "charge");
    ck_assert_int_eq(calls[CART_STEP_RELEASE], 27);
}
END_TEST

START_TEST(test_unanswered_charge_is_refunded)
{
    answer[CART_STEP_CHARGE] = CART_REMOTE_RETRY;
    ck_assert_int_eq(run(), SVC_EAGAIN);
    age(60000);
    answer[CART_STEP_CHARGE] = CART_REMOTE_REFUSED;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    /* The first attempt got no answer: it may have taken the money; refunded to be sure. */
    ck_assert_int_eq(calls[CART_STEP_REFUND], 1);
    ck_assert_int_eq(calls[CART_STEP_RELEASE], 1);
}
END_TEST

START_TEST(test_crash_mid_call_resumes)
{
    /* A process died after logging RESERVE started: the next run asks again (idempotent). */
    struct cart_log_entry e = {CART_STEP_RESERVE, CART_STEP_STARTED, svc_wall_ms(), NULL};

    order_log(NULL, ORDER, &e, -1, NULL, NULL, NULL);
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_PLACED);
    ck_assert_int_eq(calls[CART_STEP_RESERVE], 1);
}
END_TEST

START_TEST(test_other_replica_moved_it)
{
    /* During this run's reserve, another replica logs the reservation and moves on: this run
     * does not log its own answer over the other's, and goes on from where the order is. */
    moved_to = CART_RESERVED;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_PLACED);
    ck_assert_int_eq(logged(CART_STEP_RESERVE, CART_STEP_SUCCEEDED), 0);
    ck_assert_int_eq(calls[CART_STEP_CHARGE], 1);
}
END_TEST

START_TEST(test_other_replica_finished_it)
{
    /* Between this run's re-read and its log write, another replica closes the order: the
     * store refuses the change, and the run ends on the order as the other left it. */
    answer[CART_STEP_CHARGE] = CART_REMOTE_REFUSED;
    failed_meanwhile = true;
    ck_assert_int_eq(run(), 0);
    ck_assert_int_eq(order.status, CART_FAILED);
    ck_assert_int_eq(calls[CART_STEP_RESERVE], 1);
    ck_assert_int_eq(calls[CART_STEP_CHARGE], 0);
}
END_TEST

START_TEST(test_unknown_order)
{
    ck_assert_int_eq(cart_saga_run(&store, &remote, "ffffffff-7d4a-4e6b-8f3a-2c5d9e1f4a70", -1),
                     SVC_ENOTFOUND);
}
END_TEST

static Suite *saga_suite(void)
{
    Suite *s = suite_create("cart_saga_unit");
    TCase *tc = tcase_create("saga");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_forward_to_placed);
    tcase_add_test(tc, test_reserve_refused);
    tcase_add_test(tc, test_charge_refused_releases);
    tcase_add_test(tc, test_commit_refused_refunds_then_releases);
    tcase_add_test(tc, test_retry_pauses_then_goes_on);
    tcase_add_test(tc, test_reserve_gives_up_and_releases);
    tcase_add_test(tc, test_commit_never_gives_up);
    tcase_add_test(tc, test_compensation_retried_until_done);
    tcase_add_test(tc, test_unanswered_charge_is_refunded);
    tcase_add_test(tc, test_crash_mid_call_resumes);
    tcase_add_test(tc, test_other_replica_moved_it);
    tcase_add_test(tc, test_other_replica_finished_it);
    tcase_add_test(tc, test_unknown_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(saga_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

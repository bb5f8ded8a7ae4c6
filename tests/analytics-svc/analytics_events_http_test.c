/*
 * analytics-svc's consumer (analytics_events.c) over a fake store, without engines (the
 * `http` tier: in-process, fake store): every event of the generated set (tools/eventgen)
 * decoded into the row analytics.h describes for its type, what is not a platform CloudEvent
 * refused with its reason, an id staged twice written once, and a flush that keeps the batch
 * until the store took all of it (the insert, then the deleted users' pseudonymisation).
 */
#include "analytics_svc.h"
#include "eventgen.h"
#include "testenv.h"

#include "svc/error.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* analytics_events.c's readiness hook names the store's dependency; no store here. */
struct svc_dep *an_ch_dep(struct an_ch *ch)
{
    (void)ch;
    return NULL;
}

/* ---- the fake store ---------------------------------------------------------------------- */

/* What the store was given: copies of the rows of every successful insert (its own strings, as
 * the batch's memory is gone after the flush), and the users forgotten, in order. */
static struct fake {
    json_t *rows;      /* id -> the row as JSON */
    json_t *forgotten; /* user ids */
    int inserts, forgets;
    int insert_fail, forget_fail; /* fail the next N calls */
    size_t last_n;
} fk;

static json_t *row_json(const struct an_row *r)
{
    json_t *lines = json_array();

    for (size_t i = 0; i < r->nlines; i++)
        json_array_append_new(lines, json_pack("{s:s, s:s, s:I, s:I}", "product_id",
                                               r->lines[i].product_id, "name", r->lines[i].name,
                                               "quantity", (json_int_t)r->lines[i].quantity,
                                               "price_cents", (json_int_t)r->lines[i].price_cents));
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
                     "s:o, s:s}",
                     "type", r->type, "source", r->source, "subject", r->subject, "event_ms",
                     (json_int_t)r->event_ms, "topic", r->topic, "partition", (int)r->partition,
                     "offset", (json_int_t)r->offset, "user_id", r->user_id, "order_id",
                     r->order_id, "product_id", r->product_id, "status", r->status, "currency",
                     r->currency, "quantity", (json_int_t)r->quantity, "amount_cents",
                     (json_int_t)r->amount_cents, "lines", lines, "data", r->data);
}

static int fake_insert(void *ctx, const struct an_row *rows, size_t n, size_t *inserted)
{
    (void)ctx;
    fk.inserts++;
    fk.last_n = n;
    if (fk.insert_fail > 0) {
        fk.insert_fail--;
        return SVC_EUNAVAILABLE;
    }
    *inserted = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(strlen(rows[i].id), AN_ID_LEN);
        if (json_object_get(fk.rows, rows[i].id) == NULL)
            (*inserted)++;
        json_object_set_new(fk.rows, rows[i].id, row_json(&rows[i]));
    }
    return 0;
}

static int fake_forget(void *ctx, const char *const *user_ids, size_t n)
{
    (void)ctx;
    fk.forgets++;
    if (fk.forget_fail > 0) {
        fk.forget_fail--;
        return SVC_EUNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(fk.forgotten, json_string(user_ids[i]));
    return 0;
}

static const struct an_store store = {.insert = fake_insert, .forget_users = fake_forget};
static struct an_batch *batch;
static struct svc_buf reason;

static void setup(void)
{
    memset(&fk, 0, sizeof(fk));
    fk.rows = json_object();
    fk.forgotten = json_array();
    batch = an_batch_new(&store);
    svc_buf_init(&reason, 4096);
}

static void teardown(void)
{
    an_batch_free(batch);
    svc_buf_release(&reason);
    json_decref(fk.rows);
    json_decref(fk.forgotten);
}

static enum svc_ev_result stage(const char *topic, int64_t offset, const char *json)
{
    struct svc_kafka_record rec = {.topic = topic,
                                   .partition = 1,
                                   .offset = offset,
                                   .value = json,
                                   .value_len = json != NULL ? strlen(json) : 0,
                                   .attempt = 1};

    svc_buf_reset(&reason);
    return an_stage_record(&rec, &reason, batch);
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    ck_assert_msg(json_is_string(v), "'%s' is not a string", k);
    return json_string_value(v);
}

static int64_t num(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(every_generated_event_becomes_the_row_its_type_describes)
{
    struct eg_opts o = {.seed = 5, .users = 40, .start_ms = INT64_C(983682360000), .minutes = 60};
    char err[160];
    struct eg_set *s = eg_generate(&o, err, sizeof(err));
    size_t n;
    int64_t revenue = 0;

    ck_assert_ptr_nonnull(s);
    n = eg_count(s);
    for (size_t i = 0; i < n; i++) {
        const struct eg_event *e = eg_event_at(s, i);

        ck_assert_msg(stage(e->topic, (int64_t)i, e->json) == SVC_EV_DONE, "event %zu: %s", i,
                      svc_buf_str(&reason));
    }
    ck_assert_uint_eq(an_batch_staged(batch), n);
    ck_assert_int_eq(an_flush(batch), 0);
    ck_assert_uint_eq(an_batch_staged(batch), 0);
    ck_assert_int_eq(fk.inserts, 1);
    ck_assert_uint_eq(json_object_size(fk.rows), n);

    for (size_t i = 0; i < n; i++) {
        const struct eg_event *e = eg_event_at(s, i);
        json_t *env = json_loads(e->json, 0, NULL), *d = json_object_get(env, "data");
        json_t *r = json_object_get(fk.rows, e->id), *data;
        const char *type = e->type;

        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(str(r, "type"), type);
        ck_assert_str_eq(str(r, "source"), str(env, "source"));
        ck_assert_str_eq(str(r, "subject"), e->key);
        ck_assert_int_eq(num(r, "event_ms"), e->t_ms);
        ck_assert_str_eq(str(r, "topic"), e->topic);
        ck_assert_int_eq(num(r, "offset"), (int64_t)i);
        /* The data member as it came, compact. */
        data = json_loads(str(r, "data"), 0, NULL);
        ck_assert(json_equal(data, d));
        json_decref(data);

        if (strncmp(type, "user.", 5) == 0) {
            ck_assert_str_eq(str(r, "user_id"), str(d, "id"));
        } else if (strcmp(type, "cart.item_added") == 0) {
            ck_assert_str_eq(str(r, "user_id"), str(d, "user_id"));
            ck_assert_str_eq(str(r, "product_id"), str(d, "product_id"));
            ck_assert_int_eq(num(r, "quantity"), num(d, "quantity"));
            ck_assert_int_eq(num(r, "amount_cents"), num(d, "price_cents"));
        } else if (strcmp(type, "cart.item_removed") == 0) {
            ck_assert_str_eq(str(r, "product_id"), str(d, "product_id"));
            ck_assert_int_eq(num(r, "quantity"), 0);
        } else if (strcmp(type, "checkout.started") == 0 || strncmp(type, "order.", 6) == 0) {
            json_t *lines = json_object_get(r, "lines"), *want = json_object_get(d, "lines");

            ck_assert_str_eq(str(r, "user_id"), str(d, "user_id"));
            ck_assert_str_eq(str(r, "order_id"), str(d, "order_id"));
            ck_assert_str_eq(str(r, "status"), str(d, "status"));
            ck_assert_str_eq(str(r, "currency"), "EUR");
            ck_assert_int_eq(num(r, "amount_cents"), num(d, "total_cents"));
            ck_assert_uint_eq(json_array_size(lines), json_array_size(want));
            for (size_t k = 0; k < json_array_size(lines); k++) {
                json_t *a = json_array_get(lines, k), *b = json_array_get(want, k);

                ck_assert_str_eq(str(a, "product_id"), str(b, "product_id"));
                ck_assert_str_eq(str(a, "name"), str(b, "name"));
                ck_assert_int_eq(num(a, "quantity"), num(b, "quantity"));
                ck_assert_int_eq(num(a, "price_cents"), num(b, "price_cents"));
            }
            if (strcmp(type, "order.placed") == 0)
                revenue += num(r, "amount_cents");
        } else if (strncmp(type, "product.", 8) == 0) {
            ck_assert_str_eq(str(r, "product_id"), str(d, "id"));
            ck_assert_int_eq(num(r, "amount_cents"), num(d, "price_cents"));
            ck_assert_str_eq(str(r, "user_id"), "");
        } else if (strncmp(type, "stock.", 6) == 0) {
            json_t *lines = json_object_get(r, "lines");

            ck_assert_str_eq(str(r, "status"), str(d, "state"));
            ck_assert_uint_eq(json_array_size(lines), json_array_size(json_object_get(d, "items")));
            ck_assert_str_eq(str(json_array_get(lines, 0), "name"), "");
            ck_assert_int_eq(num(json_array_get(lines, 0), "price_cents"), 0);
        } else if (strncmp(type, "payment.", 8) == 0 || strcmp(type, "wallet.credited") == 0) {
            ck_assert_str_eq(str(r, "user_id"), str(d, "user_id"));
            ck_assert_int_eq(num(r, "amount_cents"), num(d, "amount_cents"));
        }
        json_decref(env);
    }
    ck_assert_int_eq(revenue, json_integer_value(json_object_get(
                                  json_object_get(eg_expect(s), "summary"), "revenue_cents")));
    /* Every deleted user forgotten, after the insert that held their rows. */
    ck_assert(json_equal(fk.forgotten, json_object_get(eg_expect(s), "deleted_users")));
    eg_set_free(s);
}
END_TEST

#define ENV(id, type, data)                                                                        \
    "{\"specversion\":\"1.0\",\"id\":\"" id "\",\"source\":\"/user-svc\",\"type\":\"" type         \
    "\",\"subject\":\"s-1\",\"time\":\"2001-03-04T05:06:07.890Z\",\"data\":" data "}"

START_TEST(what_is_not_a_platform_event_is_poison_with_its_reason)
{
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"not json", "not a CloudEvent"},
        {"[1,2]", "not a CloudEvent"},
        {ENV("nope", "user.registered", "{}"), "'id'"},
        {"{\"specversion\":\"1.0\",\"id\":\"6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4\",\"source\":"
         "\"/x\",\"type\":\"user.registered\",\"subject\":\"s\",\"data\":{}}",
         "'time'"},
        {ENV("6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4", "User Registered", "{}"), "'type'"},
        {ENV("6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4", "user.registered", "{\"email\":\"a@b\"}"),
         "'id'"},
        {ENV("6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4", "order.placed",
             "{\"order_id\":\"6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4\",\"user_id\":"
             "\"6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4\",\"status\":\"placed\",\"lines\":[],"
             "\"total_cents\":0,\"currency\":\"EUR\"}"),
         "'lines'"},
        {ENV("6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4", "cart.item_added",
             "{\"user_id\":\"6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4\",\"product_id\":\"p\","
             "\"quantity\":1,\"price_cents\":5}"),
         "'product_id'"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(stage("user-events", 1, bad[i].json) == SVC_EV_POISON, "accepted: %s",
                      bad[i].json);
        ck_assert_msg(strstr(svc_buf_str(&reason), bad[i].why) != NULL,
                      "reason '%s' does not say %s", svc_buf_str(&reason), bad[i].why);
    }
    ck_assert_int_eq(stage("user-events", 1, NULL), SVC_EV_POISON);
    ck_assert_uint_eq(an_batch_staged(batch), 0);

    /* A type the platform does not have yet is kept with its envelope and data. */
    ck_assert_int_eq(
        stage("user-events", 2,
              ENV("6D1E7D36-3A4B-4A5C-9D6E-7F8091A2B3C4", "user.invited", "{\"who\":\"x\"}")),
        SVC_EV_DONE);
    ck_assert_int_eq(an_flush(batch), 0);
    ck_assert_ptr_nonnull(json_object_get(fk.rows, "6d1e7d36-3a4b-4a5c-9d6e-7f8091a2b3c4"));
}
END_TEST

START_TEST(an_id_staged_twice_is_written_once)
{
    const char *a = ENV("11111111-2222-4333-8444-555555555555", "user.updated",
                        "{\"id\":\"11111111-2222-4333-8444-555555555555\"}");
    const char *upper = ENV("11111111-2222-4333-8444-55555555555A", "user.updated",
                            "{\"id\":\"11111111-2222-4333-8444-555555555555\"}");
    const char *lower = ENV("11111111-2222-4333-8444-55555555555a", "user.updated",
                            "{\"id\":\"11111111-2222-4333-8444-555555555555\"}");

    ck_assert_int_eq(stage("user-events", 1, a), SVC_EV_DONE);
    ck_assert_int_eq(stage("user-events", 2, a), SVC_EV_DONE);
    ck_assert_int_eq(stage("user-events", 3, upper), SVC_EV_DONE);
    ck_assert_int_eq(stage("user-events", 4, lower), SVC_EV_DONE);
    ck_assert_uint_eq(an_batch_staged(batch), 2);
    /* Many more, so that the id set grows under the rows already staged. */
    for (int i = 0; i < 3000; i++) {
        char json[512];

        snprintf(json, sizeof(json),
                 ENV("%08x-2222-4333-8444-555555555555", "user.updated",
                     "{\"id\":\"11111111-2222-4333-8444-555555555555\"}"),
                 (unsigned)i);
        ck_assert_int_eq(stage("user-events", 10 + i, json), SVC_EV_DONE);
        ck_assert_int_eq(stage("user-events", 10 + i, json), SVC_EV_DONE);
    }
    ck_assert_int_eq(stage("user-events", 5, a), SVC_EV_DONE);
    ck_assert_uint_eq(an_batch_staged(batch), 2 + 3000);
    ck_assert_int_eq(an_flush(batch), 0);
    ck_assert_uint_eq(fk.last_n, 3002);
}
END_TEST

START_TEST(a_failed_flush_keeps_the_batch_until_the_store_took_all_of_it)
{
    const char *deleted = ENV("21111111-2222-4333-8444-555555555555", "user.deleted",
                              "{\"id\":\"31111111-2222-4333-8444-555555555555\"}");
    const char *other = ENV("41111111-2222-4333-8444-555555555555", "user.updated",
                            "{\"id\":\"51111111-2222-4333-8444-555555555555\"}");

    ck_assert_int_eq(an_flush(batch), 0); /* nothing staged: nothing asked of the store */
    ck_assert_int_eq(fk.inserts, 0);

    ck_assert_int_eq(stage("user-events", 1, deleted), SVC_EV_DONE);
    ck_assert_int_eq(stage("user-events", 2, other), SVC_EV_DONE);
    fk.insert_fail = 1;
    ck_assert_int_eq(an_flush(batch), SVC_EUNAVAILABLE);
    ck_assert_uint_eq(an_batch_staged(batch), 2);
    ck_assert_int_eq(fk.forgets, 0); /* not before the rows are in */

    fk.forget_fail = 1;
    ck_assert_int_eq(an_flush(batch), SVC_EUNAVAILABLE);
    ck_assert_uint_eq(an_batch_staged(batch), 2);
    ck_assert_uint_eq(json_array_size(fk.forgotten), 0);

    /* Staging goes on meanwhile (the consumer keeps what it staged). */
    ck_assert_int_eq(stage("user-events", 3,
                           ENV("61111111-2222-4333-8444-555555555555", "user.updated",
                               "{\"id\":\"51111111-2222-4333-8444-555555555555\"}")),
                     SVC_EV_DONE);
    ck_assert_int_eq(an_flush(batch), 0);
    ck_assert_int_eq(fk.inserts, 3);
    ck_assert_uint_eq(fk.last_n, 3);
    ck_assert_uint_eq(json_object_size(fk.rows), 3);
    ck_assert_uint_eq(json_array_size(fk.forgotten), 1);
    ck_assert_str_eq(json_string_value(json_array_get(fk.forgotten, 0)),
                     "31111111-2222-4333-8444-555555555555");
    ck_assert_uint_eq(an_batch_staged(batch), 0);
    ck_assert_int_eq(an_flush(batch), 0);
    ck_assert_int_eq(fk.inserts, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analytics_events");
    TCase *tc = tcase_create("consumer");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_generated_event_becomes_the_row_its_type_describes);
    tcase_add_test(tc, what_is_not_a_platform_event_is_poison_with_its_reason);
    tcase_add_test(tc, an_id_staged_twice_is_written_once);
    tcase_add_test(tc, a_failed_flush_keeps_the_batch_until_the_store_took_all_of_it);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

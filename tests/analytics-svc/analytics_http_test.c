/*
 * analytics-svc's HTTP API as a client sees it: the real routes (analytics_http.c) started
 * in-process on port 0 over a fake store that answers from fixed data and counts every call,
 * driven with libcurl. Every endpoint's answer built from the fake's data (the range used, the
 * dense revenue series, conversion and average order and their nulls, the funnel's shares,
 * event pages walked with the cursor, the freshness verdict); every bad input (times, ranges,
 * intervals, limits, types, subjects, cursors, unknown parameters, SQL-looking text in every
 * parameter) refused with a problem before the store is asked anything; the store down as 503
 * with Retry-After on every route; and the contract documents against the error tables.
 */
#include "analytics.h"
#include "analytics_params.h"

#include "svc/error.h"
#include "svc/time.h"
#include "testapi.h"
#include "testenv.h"
#include "testproblems.h"
#include "testsvc.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake store --------------------------------------------------------------------- */

enum call { C_INSERT, C_FORGET, C_SUMMARY, C_REVENUE, C_TOP, C_FUNNEL, C_EVENTS, C_LATENCY };

enum { MAX_EVENTS = 64, MAX_POINTS = 8, TEXT_MAX = 256 };

/* 2026-11-24T00:00:00.000Z */
#define DAY0 INT64_C(1795478400000)
#define MIN  INT64_C(60000)
#define HOUR (60 * MIN)

struct fake {
    struct testfake t; /* the lock, the call counts, the failure */
    /* What the store answers. */
    struct an_summary summary;
    struct an_point points[MAX_POINTS];
    size_t npoints;
    struct an_top_product top[4];
    size_t ntop;
    struct an_funnel funnel;
    struct an_event events[MAX_EVENTS]; /* newest first */
    char ids[MAX_EVENTS][AN_ID_LEN + 1];
    size_t nevents;
    struct an_topic_latency lat[4];
    size_t nlat;
    int64_t lag[3];
    int lag_rc[3];
    /* What the last calls were given. */
    struct an_range range;
    enum an_interval interval;
    enum an_by by;
    int limit;
    struct an_event_query eq;
    char eq_type[TEXT_MAX], eq_subject[TEXT_MAX];
    int64_t window_ms;
};

static struct fake fake;

static int enter(enum call c)
{
    return testfake_enter(&fake.t, c);
}

static int leave(int rc)
{
    return testfake_leave(&fake.t, rc);
}

static int f_insert(void *ctx, const struct an_row *rows, size_t n, size_t *inserted)
{
    int rc = enter(C_INSERT);

    (void)ctx;
    (void)rows;
    (void)n;
    if (rc != 0)
        return rc;
    *inserted = 0;
    return leave(0);
}

static int f_forget(void *ctx, const char *const *user_ids, size_t n)
{
    int rc = enter(C_FORGET);

    (void)ctx;
    (void)user_ids;
    (void)n;
    if (rc != 0)
        return rc;
    return leave(0);
}

static int f_summary(void *ctx, const struct an_range *r, struct an_summary *out)
{
    int rc = enter(C_SUMMARY);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.range = *r;
    *out = fake.summary;
    return leave(0);
}

static int f_revenue(void *ctx, struct svc_arena *a, const struct an_range *r, enum an_interval iv,
                     struct an_point **points, size_t *n)
{
    int rc = enter(C_REVENUE);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.range = *r;
    fake.interval = iv;
    *points = svc_arena_alloc(a, sizeof(fake.points));
    memcpy(*points, fake.points, sizeof(fake.points));
    *n = fake.npoints;
    return leave(0);
}

static int f_top(void *ctx, struct svc_arena *a, const struct an_range *r, enum an_by by, int limit,
                 struct an_top_product **out, size_t *n)
{
    int rc = enter(C_TOP);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.range = *r;
    fake.by = by;
    fake.limit = limit;
    *out = svc_arena_alloc(a, sizeof(fake.top));
    memcpy(*out, fake.top, sizeof(fake.top));
    *n = fake.ntop < (size_t)limit ? fake.ntop : (size_t)limit;
    return leave(0);
}

static int f_funnel(void *ctx, const struct an_range *r, struct an_funnel *out)
{
    int rc = enter(C_FUNNEL);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.range = *r;
    *out = fake.funnel;
    return leave(0);
}

/* (MS, ID) strictly before (AMS, AID) in the listing's order (newest first). */
static bool before(int64_t ms, const char *id, int64_t ams, const char *aid)
{
    return ms < ams || (ms == ams && strcmp(id, aid) < 0);
}

/* Like the real store: filters, then the page after the cursor, newest first. */
static int f_events(void *ctx, struct svc_arena *a, const struct an_event_query *q,
                    struct an_event **out, size_t *n, bool *more)
{
    int rc = enter(C_EVENTS);
    size_t k = 0;

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.eq = *q;
    snprintf(fake.eq_type, sizeof(fake.eq_type), "%s", q->type != NULL ? q->type : "");
    snprintf(fake.eq_subject, sizeof(fake.eq_subject), "%s", q->subject != NULL ? q->subject : "");
    *out = svc_arena_calloc(a, (size_t)q->limit * sizeof(**out));
    *more = false;
    for (size_t i = 0; i < fake.nevents; i++) {
        const struct an_event *e = &fake.events[i];

        if ((q->type != NULL && strcmp(e->type, q->type) != 0) ||
            (q->subject != NULL && strcmp(e->subject, q->subject) != 0) ||
            (q->after && !before(e->event_ms, e->id, q->after_ms, q->after_id)))
            continue;
        if (k == (size_t)q->limit) {
            *more = true;
            break;
        }
        (*out)[k++] = *e;
    }
    *n = k;
    return leave(0);
}

static int f_latency(void *ctx, struct svc_arena *a, int64_t window_ms,
                     struct an_topic_latency **out, size_t *n)
{
    int rc = enter(C_LATENCY);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.window_ms = window_ms;
    *out = svc_arena_alloc(a, sizeof(fake.lat));
    memcpy(*out, fake.lat, sizeof(fake.lat));
    *n = fake.nlat;
    return leave(0);
}

static const char *const topics[] = {"user-events", "product-events", "cart-events", NULL};

static int f_lag(void *ctx, const char *topic, int64_t *lag)
{
    (void)ctx;
    for (int i = 0; topics[i] != NULL; i++) {
        if (strcmp(topics[i], topic) == 0) {
            *lag = fake.lag[i];
            return fake.lag_rc[i];
        }
    }
    return SVC_ENOTFOUND;
}

static struct an_app app = {
    .store =
        {
            .insert = f_insert,
            .forget_users = f_forget,
            .summary = f_summary,
            .revenue = f_revenue,
            .top_products = f_top,
            .funnel = f_funnel,
            .events = f_events,
            .latency = f_latency,
        },
    .topics = topics,
    .lag = f_lag,
};

static const struct svc_def an_def = {
    .name = "analytics-svc",
    .version = "test",
    .routes = an_routes,
    .app = &app,
    .errors = an_errors,
    .openapi = an_openapi_yaml,
};

static int calls(enum call c)
{
    return testfake_calls(&fake.t, c);
}

static int total(void)
{
    return testfake_total(&fake.t);
}

/* Event I of the fake: 45 events a second apart from DAY0 + 1 h, every third an order.placed
 * of subject "order-<i % 5>", the others user.registered of "user-<i % 7>"; two share a time
 * at the end of the first page of 20, so that the id orders them. Data: a JSON object, except event
 * 7's, which is not JSON. */
static void fill_events(void)
{
    fake.nevents = 45;
    for (size_t n = 0; n < fake.nevents; n++) {
        size_t i = fake.nevents - 1 - n; /* newest first */
        struct an_event *e = &fake.events[n];
        char *subject = malloc(16);
        char *data = malloc(64);

        ck_assert_ptr_nonnull(subject);
        ck_assert_ptr_nonnull(data);
        snprintf(fake.ids[n], sizeof(fake.ids[n]), "00000000-0000-4000-8000-%012zu", i);
        e->id = fake.ids[n];
        e->type = i % 3 == 0 ? "order.placed" : "user.registered";
        snprintf(subject, 16, i % 3 == 0 ? "order-%zu" : "user-%zu", i % 3 == 0 ? i % 5 : i % 7);
        e->subject = subject;
        e->source = i % 3 == 0 ? "cart-svc" : "user-svc";
        e->topic = i % 3 == 0 ? "cart-events" : "user-events";
        e->event_ms = DAY0 + HOUR + (int64_t)(i == 25 ? 24 : i) * 1000;
        e->ingest_ms = e->event_ms + 150;
        if (i == 7)
            snprintf(data, 64, "{not json %zu", i);
        else if (i == 8)
            snprintf(data, 64, "\xff{\"n\":\"caf\xc3\"}");
        else
            snprintf(data, 64, "{\"n\":%zu,\"tags\":[\"a\"]}", i);
        e->data = data;
    }
}

static void setup(void)
{
    memset(&fake, 0, sizeof(fake));
    testfake_init(&fake.t);
    fill_events();
    testsvc_start(&an_def);
}

static void teardown(void)
{
    testsvc_stop();
    for (size_t i = 0; i < fake.nevents; i++) {
        free((char *)fake.events[i].subject);
        free((char *)fake.events[i].data);
    }
    testfake_release(&fake.t);
}

/* ---- the client ------------------------------------------------------------------------- */

static void assert_refused(const char *path, const char *field, const char *want)
{
    testsvc_assert_refused(&fake.t, "GET", path, NULL, NULL, field, want);
}

/* PATH is 400 invalid-range naming FIELD, and the store saw nothing. */
static void assert_bad_range(const char *path, const char *field, const char *want)
{
    int before_calls = total();
    struct testapi_reply *r = testapi_call("GET", path, NULL);

    testapi_assert_problem(r, 400, "invalid-range", want, field);
    ck_assert_msg(total() == before_calls, "%s reached the store", path);
}

static json_t *get_json(const char *path, long status)
{
    struct testapi_reply *r = testapi_call("GET", path, NULL);

    ck_assert_msg(r->status == status, "GET %s: %ld, not %ld: %.*s", path, r->status, status,
                  (int)r->len, r->body);
    if (status == 200)
        ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    return testapi_json(r);
}

static int64_t time_of(json_t *j, const char *key)
{
    int64_t ms = -1;

    ck_assert_msg(svc_rfc3339_parse(testapi_str(j, key), &ms), "%s: '%s'", key,
                  testapi_str(j, key));
    ck_assert_int_eq((int)strlen(testapi_str(j, key)), SVC_RFC3339_MS_LEN);
    return ms;
}

/* ---- summary ---------------------------------------------------------------------------- */

START_TEST(summary_answers_the_counts_conversion_and_average_of_the_range_used)
{
    json_t *j;

    fake.summary = (struct an_summary){.signups = 7,
                                       .active_users = 12,
                                       .checkouts = 8,
                                       .orders_placed = 6,
                                       .orders_failed = 2,
                                       .revenue_cents = 12345};
    /* from is taken down to the minute, to up; any offset is read as the instant it names. */
    j = get_json("/v1/summary?from=2026-11-24T10:00:30.5Z&to=2026-11-24T12:00:10%2B01:00", 200);
    ck_assert_str_eq(testapi_str(j, "from"), "2026-11-24T10:00:00.000Z");
    ck_assert_str_eq(testapi_str(j, "to"), "2026-11-24T11:01:00.000Z");
    ck_assert_int_eq(fake.range.from_ms, DAY0 + 10 * HOUR);
    ck_assert_int_eq(fake.range.to_ms, DAY0 + 11 * HOUR + MIN);
    ck_assert_int_eq(testapi_num(j, "signups"), 7);
    ck_assert_int_eq(testapi_num(j, "active_users"), 12);
    ck_assert_int_eq(testapi_num(j, "checkouts"), 8);
    ck_assert_int_eq(testapi_num(j, "orders_placed"), 6);
    ck_assert_int_eq(testapi_num(j, "orders_failed"), 2);
    ck_assert_int_eq(testapi_num(j, "revenue_cents"), 12345);
    ck_assert_double_eq_tol(json_real_value(json_object_get(j, "conversion")), 0.75, 1e-12);
    ck_assert_int_eq(testapi_num(j, "average_order_cents"), 2058); /* 2057.5, rounded */
    ck_assert_int_eq((int)json_object_size(j), 10);
    json_decref(j);
    ck_assert_int_eq(calls(C_SUMMARY), 1);
}
END_TEST

START_TEST(summary_conversion_and_average_are_null_without_checkouts_or_orders)
{
    json_t *j;

    fake.summary = (struct an_summary){.signups = 3, .active_users = 3};
    j = get_json("/v1/summary?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z", 200);
    ck_assert(json_is_null(json_object_get(j, "conversion")));
    ck_assert(json_is_null(json_object_get(j, "average_order_cents")));
    ck_assert_int_eq(testapi_num(j, "signups"), 3);
    json_decref(j);

    /* Orders placed from checkouts started before the range: an average, no conversion. */
    fake.summary = (struct an_summary){.orders_placed = 2, .revenue_cents = 1000};
    j = get_json("/v1/summary?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z", 200);
    ck_assert(json_is_null(json_object_get(j, "conversion")));
    ck_assert_int_eq(testapi_num(j, "average_order_cents"), 500);
    json_decref(j);
}
END_TEST

START_TEST(the_default_range_is_the_last_24_hours_up_to_the_minute)
{
    int64_t before_ms = svc_wall_ms(), after_ms, from, to;
    json_t *j = get_json("/v1/summary", 200);

    after_ms = svc_wall_ms();
    from = time_of(j, "from");
    to = time_of(j, "to");
    ck_assert_int_eq(to % MIN, 0);
    ck_assert_msg(to >= before_ms && to < after_ms + MIN, "to %" PRId64 " for now %" PRId64, to,
                  before_ms);
    ck_assert_int_eq(to - from, AN_RANGE_DEFAULT_MS);
    ck_assert_int_eq(fake.range.from_ms, from);
    ck_assert_int_eq(fake.range.to_ms, to);
    json_decref(j);

    /* Only to: from is 24 hours before it. */
    j = get_json("/v1/funnel?to=2026-11-24T10:00:00Z", 200);
    ck_assert_str_eq(testapi_str(j, "from"), "2026-11-23T10:00:00.000Z");
    ck_assert_str_eq(testapi_str(j, "to"), "2026-11-24T10:00:00.000Z");
    json_decref(j);

    /* Only from: to is now. */
    j = get_json("/v1/summary?from=2026-11-24T10:00:00Z", 200);
    ck_assert_str_eq(testapi_str(j, "from"), "2026-11-24T10:00:00.000Z");
    to = time_of(j, "to");
    ck_assert_msg(to >= before_ms && to % MIN == 0, "to %" PRId64, to);
    json_decref(j);
}
END_TEST

/* ---- revenue ---------------------------------------------------------------------------- */

/* The points of J as "orders/revenue" strings joined by spaces, and the first t. */
static const char *series(json_t *j, int64_t *first_t)
{
    static char out[4096];
    json_t *points = json_object_get(j, "points");
    size_t used = 0;

    ck_assert(json_is_array(points));
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(points); i++) {
        json_t *p = json_array_get(points, i);

        ck_assert_int_eq((int)json_object_size(p), 3);
        if (i == 0)
            *first_t = time_of(p, "t");
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s%lld/%lld", i > 0 ? " " : "",
                                 testapi_num(p, "orders"), testapi_num(p, "revenue_cents"));
        ck_assert(used < sizeof(out));
    }
    return out;
}

START_TEST(revenue_is_a_dense_series_with_empty_buckets_as_zeros)
{
    int64_t first = 0;
    json_t *j;

    fake.points[0] = (struct an_point){DAY0 + 11 * HOUR, 2, 500};
    fake.points[1] = (struct an_point){DAY0 + 13 * HOUR, 1, 250};
    fake.npoints = 2;
    j = get_json("/v1/revenue?from=2026-11-24T10:00:00Z&to=2026-11-24T15:00:00Z&interval=hour",
                 200);
    ck_assert_int_eq(fake.interval, AN_HOUR);
    ck_assert_int_eq(fake.range.from_ms, DAY0 + 10 * HOUR);
    ck_assert_int_eq(fake.range.to_ms, DAY0 + 15 * HOUR);
    ck_assert_str_eq(series(j, &first), "0/0 2/500 0/0 1/250 0/0");
    ck_assert_int_eq(first, DAY0 + 10 * HOUR);
    ck_assert_str_eq(testapi_str(j, "interval"), "hour");
    ck_assert_int_eq(testapi_num(j, "orders"), 3);
    ck_assert_int_eq(testapi_num(j, "revenue_cents"), 750);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "points"), 1), "t")),
        "2026-11-24T11:00:00.000Z");
    json_decref(j);

    /* Buckets on the epoch: a range from 10:30 starts with the 10:00 bucket, and ends with the
     * one holding 12:29. No point at all: zeros. Hour is the default interval. */
    fake.npoints = 0;
    j = get_json("/v1/revenue?from=2026-11-24T10:30:00Z&to=2026-11-24T12:29:00Z", 200);
    ck_assert_str_eq(series(j, &first), "0/0 0/0 0/0");
    ck_assert_int_eq(first, DAY0 + 10 * HOUR);
    ck_assert_str_eq(testapi_str(j, "interval"), "hour");
    json_decref(j);

    /* Minutes and days. */
    fake.points[0] = (struct an_point){DAY0 + 2 * MIN, 1, 99};
    fake.npoints = 1;
    j = get_json("/v1/revenue?from=2026-11-24T00:00:00Z&to=2026-11-24T00:04:00Z&interval=minute",
                 200);
    ck_assert_int_eq(fake.interval, AN_MINUTE);
    ck_assert_str_eq(series(j, &first), "0/0 0/0 1/99 0/0");
    json_decref(j);
    fake.points[0] = (struct an_point){DAY0 + 24 * HOUR, 4, 4000};
    j = get_json("/v1/revenue?from=2026-11-23T12:00:00Z&to=2026-11-26T00:00:00Z&interval=day", 200);
    ck_assert_int_eq(fake.interval, AN_DAY);
    ck_assert_str_eq(series(j, &first), "0/0 0/0 4/4000");
    ck_assert_int_eq(first, DAY0 - 24 * HOUR);
    json_decref(j);
}
END_TEST

START_TEST(revenue_series_bounds_and_a_store_bucket_outside_the_range)
{
    json_t *j;

    /* 1500 minutes is the most; 1501 is refused before the store. */
    j = get_json("/v1/revenue?from=2026-11-24T00:00:00Z&to=2026-11-25T01:00:00Z&interval=minute",
                 200);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "points")), 1500);
    json_decref(j);
    assert_bad_range(
        "/v1/revenue?from=2026-11-24T00:00:00Z&to=2026-11-25T01:01:00Z&interval=minute", "interval",
        "1501 buckets of a minute: at most 1500");
    assert_bad_range(
        "/v1/revenue?interval=minute&from=2026-11-01T00:00:00Z&to=2026-11-30T00:00:00Z", "interval",
        "at most 1500");
    /* A whole year by day is fine; by hour it is not. */
    j = get_json("/v1/revenue?from=2025-11-24T00:00:00Z&to=2026-11-24T00:00:00Z&interval=day", 200);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "points")), 365);
    json_decref(j);
    assert_bad_range("/v1/revenue?from=2025-11-24T00:00:00Z&to=2026-11-24T00:00:00Z", "interval",
                     "buckets of a hour");

    /* A store that answers a bucket outside the range is a defect, not a misplaced sum. */
    fake.points[0] = (struct an_point){DAY0 + 20 * HOUR, 1, 1};
    fake.npoints = 1;
    testapi_assert_problem(
        testapi_call("GET", "/v1/revenue?from=2026-11-24T10:00:00Z&to=2026-11-24T15:00:00Z", NULL),
        500, "internal", "could not be completed", NULL);
}
END_TEST

/* ---- top products and funnel ------------------------------------------------------------ */

START_TEST(top_products_passes_by_and_limit_and_answers_the_products)
{
    json_t *j, *p;

    fake.top[0] = (struct an_top_product){"4d7e1b2a-0000-4000-8000-000000000001", "Mug", 9, 8991};
    fake.top[1] = (struct an_top_product){"4d7e1b2a-0000-4000-8000-000000000002", "Tee", 3, 7500};
    fake.top[2] = (struct an_top_product){"4d7e1b2a-0000-4000-8000-000000000003", "", 1, 10};
    fake.ntop = 3;
    j = get_json("/v1/top-products?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z", 200);
    ck_assert_int_eq(fake.by, AN_BY_UNITS);
    ck_assert_int_eq(fake.limit, AN_TOP_DEFAULT);
    ck_assert_str_eq(testapi_str(j, "by"), "units");
    ck_assert_int_eq(testapi_num(j, "limit"), 10);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "products")), 3);
    p = json_array_get(json_object_get(j, "products"), 0);
    ck_assert_str_eq(testapi_str(p, "product_id"), "4d7e1b2a-0000-4000-8000-000000000001");
    ck_assert_str_eq(testapi_str(p, "name"), "Mug");
    ck_assert_int_eq(testapi_num(p, "units"), 9);
    ck_assert_int_eq(testapi_num(p, "revenue_cents"), 8991);
    ck_assert_str_eq(testapi_str(json_array_get(json_object_get(j, "products"), 2), "name"), "");
    json_decref(j);

    j = get_json("/v1/top-products?by=revenue&limit=2&to=2026-11-25T00:00:00Z", 200);
    ck_assert_int_eq(fake.by, AN_BY_REVENUE);
    ck_assert_int_eq(fake.limit, 2);
    ck_assert_str_eq(testapi_str(j, "by"), "revenue");
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "products")), 2);
    json_decref(j);
    j = get_json("/v1/top-products?limit=100", 200);
    ck_assert_int_eq(fake.limit, 100);
    json_decref(j);
}
END_TEST

START_TEST(funnel_answers_each_step_with_its_share_of_the_one_before)
{
    static const char *const names[] = {"registered", "added_to_cart", "checkout_started",
                                        "placed"};
    static const long long users[] = {10, 5, 4, 1};
    static const double shares[] = {-1, 0.5, 0.8, 0.25};
    json_t *j, *steps;

    fake.funnel = (struct an_funnel){10, 5, 4, 1};
    j = get_json("/v1/funnel?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z", 200);
    ck_assert_int_eq(fake.range.from_ms, DAY0);
    steps = json_object_get(j, "steps");
    ck_assert_int_eq((int)json_array_size(steps), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(steps, i);

        ck_assert_str_eq(testapi_str(s, "step"), names[i]);
        ck_assert_int_eq(testapi_num(s, "users"), users[i]);
        if (i == 0)
            ck_assert(json_is_null(json_object_get(s, "of_previous")));
        else
            ck_assert_double_eq_tol(json_real_value(json_object_get(s, "of_previous")), shares[i],
                                    1e-12);
    }
    json_decref(j);

    /* Nobody registered: every share is null, not a division by zero. */
    fake.funnel = (struct an_funnel){0};
    j = get_json("/v1/funnel", 200);
    steps = json_object_get(j, "steps");
    for (size_t i = 0; i < 4; i++)
        ck_assert(json_is_null(json_object_get(json_array_get(steps, i), "of_previous")));
    json_decref(j);
}
END_TEST

/* ---- events ----------------------------------------------------------------------------- */

START_TEST(events_answers_a_page_with_each_events_data_as_json)
{
    json_t *j, *e, *data;

    j = get_json("/v1/events?limit=3", 200);
    ck_assert_int_eq(fake.eq.limit, 3);
    ck_assert_ptr_null(fake.eq.type);
    ck_assert(!fake.eq.after);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "events")), 3);
    ck_assert(json_is_string(json_object_get(j, "next_cursor")));
    e = json_array_get(json_object_get(j, "events"), 0);
    ck_assert_str_eq(testapi_str(e, "id"), "00000000-0000-4000-8000-000000000044");
    ck_assert_str_eq(testapi_str(e, "type"), "user.registered");
    ck_assert_str_eq(testapi_str(e, "source"), "user-svc");
    ck_assert_str_eq(testapi_str(e, "subject"), "user-2");
    ck_assert_str_eq(testapi_str(e, "topic"), "user-events");
    ck_assert_int_eq(time_of(e, "time"), DAY0 + HOUR + 44000);
    ck_assert_int_eq(time_of(e, "ingested_at"), DAY0 + HOUR + 44150);
    data = json_object_get(e, "data");
    ck_assert(json_is_object(data));
    ck_assert_int_eq(testapi_num(data, "n"), 44);
    ck_assert_int_eq((int)json_object_size(e), 8);
    json_decref(j);

    /* Filters reach the store as given; text that is not JSON is shown as a string. */
    j = get_json("/v1/events?type=user.registered&subject=user-0&limit=100", 200);
    ck_assert_str_eq(fake.eq_type, "user.registered");
    ck_assert_str_eq(fake.eq_subject, "user-0");
    ck_assert(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    j = get_json("/v1/events?subject=user-0&limit=100", 200);
    e = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "events")); i++)
        if (strcmp(testapi_str(json_array_get(json_object_get(j, "events"), i), "id"),
                   "00000000-0000-4000-8000-000000000007") == 0)
            e = json_array_get(json_object_get(j, "events"), i);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "data")), "{not json 7");
    json_decref(j);
    /* Bytes that are not UTF-8 (never stored by the consumer) still make a JSON answer. */
    j = get_json("/v1/events?subject=user-1&limit=100", 200);
    e = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "events")); i++)
        if (strcmp(testapi_str(json_array_get(json_object_get(j, "events"), i), "id"),
                   "00000000-0000-4000-8000-000000000008") == 0)
            e = json_array_get(json_object_get(j, "events"), i);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "data")), "?{\"n\":\"caf?\"}");
    json_decref(j);

    /* The default page. */
    j = get_json("/v1/events", 200);
    ck_assert_int_eq(fake.eq.limit, AN_EVENTS_DEFAULT);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "events")), AN_EVENTS_DEFAULT);
    json_decref(j);
}
END_TEST

START_TEST(events_pages_walk_every_event_once_newest_first)
{
    char path[512], cursor[128] = "";
    bool seen[45] = {false};
    int pages = 0, n = 0;
    int64_t last_ms = INT64_MAX;
    char last_id[AN_ID_LEN + 1] = "~";

    for (;;) {
        json_t *j, *events, *next;

        snprintf(path, sizeof(path), "/v1/events?limit=20%s%s", cursor[0] ? "&cursor=" : "",
                 cursor);
        j = get_json(path, 200);
        events = json_object_get(j, "events");
        pages++;
        for (size_t i = 0; i < json_array_size(events); i++) {
            json_t *e = json_array_get(events, i);
            const char *id = testapi_str(e, "id");
            int64_t ms = time_of(e, "time");
            int k;

            ck_assert_msg(before(ms, id, last_ms, last_id), "%s out of order", id);
            last_ms = ms;
            snprintf(last_id, sizeof(last_id), "%s", id);
            k = (int)strtol(id + 24, NULL, 10);
            ck_assert_msg(!seen[k], "event %d twice", k);
            seen[k] = true;
            n++;
        }
        next = json_object_get(j, "next_cursor");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(j);
        ck_assert_int_lt(pages, 10);
    }
    ck_assert_int_eq(n, 45);
    ck_assert_int_eq(pages, 3);
}
END_TEST

START_TEST(a_cursor_reaches_the_store_as_the_position_it_names)
{
    json_t *j = get_json("/v1/events?limit=2", 200);
    char path[256];

    snprintf(path, sizeof(path), "/v1/events?limit=2&cursor=%s",
             json_string_value(json_object_get(j, "next_cursor")));
    json_decref(j);
    j = get_json(path, 200);
    ck_assert(fake.eq.after);
    ck_assert_int_eq(fake.eq.after_ms, DAY0 + HOUR + 43000);
    ck_assert_str_eq(fake.eq.after_id, "00000000-0000-4000-8000-000000000043");
    ck_assert_str_eq(testapi_str(json_array_get(json_object_get(j, "events"), 0), "id"),
                     "00000000-0000-4000-8000-000000000042");
    json_decref(j);
}
END_TEST

/* ---- refusals --------------------------------------------------------------------------- */

START_TEST(bad_times_and_ranges_are_refused_without_touching_the_store)
{
    static const char *const routes[] = {"/v1/summary", "/v1/revenue", "/v1/top-products",
                                         "/v1/funnel"};
    static const char *const bad_times[] = {
        "yesterday",
        "2026-11-24",
        "2026-11-24%2010:00:00Z",
        "2026-11-24T10:00:00",
        "2026-13-24T10:00:00Z",
        "2026-11-31T10:00:00Z",
        "2026-11-24T25:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1795478400000",
        "",
        "%20",
        "2026-11-24T10:00:00Z%20",
        "2026-11-24T10:00:00.000000000000000000000000000000000000000000000000000000000001Z",
    };
    char path[512];

    for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++) {
        for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
            snprintf(path, sizeof(path), "%s?from=%s", routes[r], bad_times[i]);
            assert_refused(path, "from", "must be an RFC 3339 date-time");
            snprintf(path, sizeof(path), "%s?from=2026-11-24T00:00:00Z&to=%s", routes[r],
                     bad_times[i]);
            assert_refused(path, "to", "must be an RFC 3339 date-time");
        }
        /* to not after from, once both are taken to the minute. */
        snprintf(path, sizeof(path), "%s?from=2026-11-24T10:00:00Z&to=2026-11-24T10:00:00Z",
                 routes[r]);
        assert_bad_range(path, "to", "must be after 'from' (2026-11-24T10:00:00.000Z)");
        snprintf(path, sizeof(path), "%s?from=2026-11-24T10:00:59Z&to=2026-11-24T09:00:00Z",
                 routes[r]);
        assert_bad_range(path, "to", "'to' (2026-11-24T09:00:00.000Z) must be after");
        /* Longer than 366 days, by one minute. */
        snprintf(path, sizeof(path), "%s?from=2025-11-23T00:00:00Z&to=2026-11-24T00:01:00Z",
                 routes[r]);
        assert_bad_range(path, "from", "is longer than 366 days");
        /* A from after now without to: the default to is before it. */
        snprintf(path, sizeof(path), "%s?from=2099-01-01T00:00:00Z", routes[r]);
        assert_bad_range(path, "from", "must be after 'from'");
    }
    /* 366 days exactly is fine (day buckets: 366 points). */
    json_decref(get_json("/v1/summary?from=2025-11-23T00:00:00Z&to=2026-11-24T00:00:00Z", 200));
    json_decref(get_json("/v1/revenue?from=2025-11-23T00:00:00Z&to=2026-11-24T00:00:00Z&"
                         "interval=day",
                         200));
    /* The smallest range: one minute, from two times inside it. */
    json_decref(get_json("/v1/summary?from=2026-11-24T10:00:10Z&to=2026-11-24T10:00:50Z", 200));
    ck_assert_int_eq(fake.range.to_ms - fake.range.from_ms, MIN);
}
END_TEST

START_TEST(bad_interval_by_and_limit_are_refused_without_touching_the_store)
{
    static const char *const bad_limits[] = {
        "0", "-1", "101", "1.5", "1e2", "ten", "", "+5", "%205", "99999999999999999999", "0x10"};
    char path[256];

    assert_refused("/v1/revenue?interval=week", "interval",
                   "query parameter 'interval' must be one of 'minute', 'hour', 'day'");
    assert_refused("/v1/revenue?interval=HOUR", "interval", "must be one of");
    assert_refused("/v1/revenue?interval=", "interval", "must be one of");
    assert_refused("/v1/top-products?by=price", "by",
                   "query parameter 'by' must be one of 'units', 'revenue'");
    assert_refused("/v1/top-products?by=Units", "by", "must be one of");
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
        snprintf(path, sizeof(path), "/v1/top-products?limit=%s", bad_limits[i]);
        assert_refused(path, "limit", "query parameter 'limit' must be");
        snprintf(path, sizeof(path), "/v1/events?limit=%s", bad_limits[i]);
        assert_refused(path, "limit", "query parameter 'limit' must be");
    }
    assert_refused("/v1/top-products?limit=101", "limit", "must be from 1 to 100, not 101");
    assert_refused("/v1/events?limit=0", "limit", "must be from 1 to 100, not 0");
}
END_TEST

START_TEST(bad_types_subjects_and_cursors_are_refused_without_touching_the_store)
{
    static const char *const bad_types[] = {
        "Order.placed",
        "order..placed",
        ".order",
        "order.",
        "order%20placed",
        "order-placed",
        "1order",
        "order.1placed",
        "",
        "order.placed%0A",
        "%C3%A9v%C3%A9nement",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
    };
    static const char *const bad_subjects[] = {"user/1", "user%201", "",      "%C3%A9",
                                               "a,b",    "a*",       "a%27b", "%0A"};
    /* base64url of: "1:<uuid>" with an upper-case id, a leading zero, no id, a time past
     * 2100, letters; and text that is not base64url at all or not canonical. */
    static const char *const bad_cursors[] = {
        "",
        "!!!!",
        "MTc5NTQ4MjA0MzAwMDowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwNDM=", /* padding */
        "MTc5NTQ4MjA0MzAwMDowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwNDN",  /* bits */
        "MTc5NTQ4MjA0MzAwMDpBQkNERUYwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwNDM",  /* upper id */
        "MDE3OTU0ODIwNDMwMDA6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDQz", /* 0179... */
        "MTc5NTQ4MjA0MzAwMDo",                                                  /* no id */
        "OTk5OTk5OTk5OTk5OTowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwNDM",  /* 2286 */
        "YWJjOjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDA0Mw",               /* abc: */
        "LTE6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDQz",                 /* -1: */
        "JyBPUiAxPTEgLS0",                                                      /* SQL */
    };
    char path[512];

    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        snprintf(path, sizeof(path), "/v1/events?type=%s", bad_types[i]);
        assert_refused(path, "type", "query parameter 'type' must be 1 to 64 bytes of lowercase");
    }
    for (size_t i = 0; i < sizeof(bad_subjects) / sizeof(bad_subjects[0]); i++) {
        snprintf(path, sizeof(path), "/v1/events?subject=%s", bad_subjects[i]);
        assert_refused(path, "subject", "query parameter 'subject' must be 1 to 128 of");
    }
    {
        char longest[AN_SUBJECT_MAX + 2];

        memset(longest, 'a', sizeof(longest) - 1);
        longest[AN_SUBJECT_MAX + 1] = '\0';
        snprintf(path, sizeof(path), "/v1/events?subject=%s", longest);
        assert_refused(path, "subject", "must be 1 to 128 of");
        longest[AN_SUBJECT_MAX] = '\0';
        snprintf(path, sizeof(path), "/v1/events?subject=%s&type=a_1.b2.c_", longest);
        json_decref(get_json(path, 200));
        ck_assert_str_eq(fake.eq_subject, longest);
        ck_assert_str_eq(fake.eq_type, "a_1.b2.c_");
    }
    for (size_t i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++) {
        snprintf(path, sizeof(path), "/v1/events?cursor=%s", bad_cursors[i]);
        assert_refused(path, "cursor", "is not a cursor of this API");
    }
    /* The well-formed twin of the cursors above is accepted. */
    json_decref(get_json("/v1/events?cursor="
                         "MTc5NTQ4MjA0MzAwMDowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwNDM",
                         200));
    ck_assert(fake.eq.after);
    ck_assert_int_eq(fake.eq.after_ms, INT64_C(1795482043000));
}
END_TEST

START_TEST(unknown_parameters_are_refused_naming_them)
{
    assert_refused("/v1/summary?from=2026-11-24T00:00:00Z&form=1", "form",
                   "query parameter 'form' is not accepted here");
    assert_refused("/v1/summary?interval=hour", "interval", "is not accepted here");
    assert_refused("/v1/revenue?limit=5", "limit", "is not accepted here");
    assert_refused("/v1/top-products?interval=day", "interval", "is not accepted here");
    assert_refused("/v1/funnel?by=units", "by", "is not accepted here");
    assert_refused("/v1/events?from=2026-11-24T00:00:00Z", "from", "is not accepted here");
    assert_refused("/v1/events?type[$ne]=x", "type[$ne]", "is not accepted here");
    assert_refused("/v1/freshness?topic=cart-events", "topic", "is not accepted here");
    assert_refused("/v1/freshness?verbose", "verbose", "is not accepted here");
}
END_TEST

/* SQL in every parameter of every route: each a 400 that never reaches the store, so no text
 * of a client's ever gets near a query. */
START_TEST(sql_looking_text_in_every_parameter_never_reaches_the_store)
{
    static const struct {
        const char *route, *param, *want;
    } params[] = {
        {"/v1/summary", "from", "must be an RFC 3339"},
        {"/v1/summary", "to", "must be an RFC 3339"},
        {"/v1/revenue", "from", "must be an RFC 3339"},
        {"/v1/revenue", "to", "must be an RFC 3339"},
        {"/v1/revenue", "interval", "must be one of"},
        {"/v1/top-products", "from", "must be an RFC 3339"},
        {"/v1/top-products", "to", "must be an RFC 3339"},
        {"/v1/top-products", "limit", "must be an integer"},
        {"/v1/top-products", "by", "must be one of"},
        {"/v1/funnel", "from", "must be an RFC 3339"},
        {"/v1/funnel", "to", "must be an RFC 3339"},
        {"/v1/events", "type", "must be 1 to 64 bytes"},
        {"/v1/events", "subject", "must be 1 to 128 of"},
        {"/v1/events", "limit", "must be an integer"},
        {"/v1/events", "cursor", "is not a cursor"},
        {"/v1/freshness", "window", "is not accepted here"},
    };
    static const char *const attacks[] = {
        "%27%20OR%201%3D1%20--",                    /* ' OR 1=1 -- */
        "1%20OR%201%3D1",                           /* 1 OR 1=1 */
        "x%27)%3B%20DROP%20TABLE%20events%3B%20--", /* x'); DROP TABLE events; -- */
        "2026-11-24T00:00:00Z%27%20UNION%20SELECT%20*%20FROM%20system.users--",
        "%5C%27",                                /* \' */
        "order.placed%27%20OR%20%271%27%3D%271", /* order.placed' OR '1'='1 */
        "1%3B%20SELECT%20sleep(3)",              /* 1; SELECT sleep(3) */
        "user-1%0AFORMAT%20TabSeparated",        /* a new line, then SQL */
    };
    char path[512];

    for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
        for (size_t a = 0; a < sizeof(attacks) / sizeof(attacks[0]); a++) {
            snprintf(path, sizeof(path), "%s?%s=%s", params[p].route, params[p].param, attacks[a]);
            assert_refused(path, params[p].param, params[p].want);
        }
    }
    ck_assert_int_eq(total(), 0);
}
END_TEST

/* ---- freshness -------------------------------------------------------------------------- */

static json_t *topic_of(json_t *j, const char *topic)
{
    json_t *a = json_object_get(j, "topics");

    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(testapi_str(json_array_get(a, i), "topic"), topic) == 0)
            return json_array_get(a, i);
    ck_abort_msg("no topic '%s'", topic);
    return NULL;
}

START_TEST(freshness_answers_lag_and_latency_per_topic_and_a_verdict)
{
    json_t *j, *t, *l;
    int64_t now = svc_wall_ms();

    fake.lat[0] = (struct an_topic_latency){"user-events", 40, 12.4, 80.6, now - 1500};
    fake.lat[1] = (struct an_topic_latency){"cart-events", 5, 30, 90, now - 200};
    fake.nlat = 2;
    fake.lag[0] = 0;
    fake.lag[1] = 0;
    fake.lag[2] = 3;
    j = get_json("/v1/freshness", 200);
    ck_assert_int_eq(fake.window_ms, AN_FRESH_WINDOW_MS);
    ck_assert(json_is_false(json_object_get(j, "behind")));
    ck_assert_str_eq(testapi_str(j, "state"), "current");
    ck_assert_msg(strstr(testapi_str(j, "verdict"), "every topic is read to its end") != NULL, "%s",
                  testapi_str(j, "verdict"));
    ck_assert_int_eq(testapi_num(j, "window_ms"), AN_FRESH_WINDOW_MS);
    (void)time_of(j, "checked_at");
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "topics")), 3);
    t = topic_of(j, "user-events");
    ck_assert_str_eq(testapi_str(t, "state"), "current");
    ck_assert_int_eq(testapi_num(t, "lag"), 0);
    l = json_object_get(t, "latency");
    ck_assert_int_eq(testapi_num(l, "events"), 40);
    ck_assert_int_eq(testapi_num(l, "p50_ms"), 12);
    ck_assert_int_eq(testapi_num(l, "p99_ms"), 81);
    ck_assert_int_eq(time_of(l, "last_ingest_at"), now - 1500);
    /* A topic without events in the window: zeros and null. */
    l = json_object_get(topic_of(j, "product-events"), "latency");
    ck_assert_int_eq(testapi_num(l, "events"), 0);
    ck_assert_int_eq(testapi_num(l, "p50_ms"), 0);
    ck_assert_int_eq(testapi_num(l, "p99_ms"), 0);
    ck_assert(json_is_null(json_object_get(l, "last_ingest_at")));
    ck_assert_int_eq(testapi_num(topic_of(j, "cart-events"), "lag"), 3);
    json_decref(j);

    /* The broker broken: a lag nobody knows. */
    fake.lag_rc[1] = SVC_ENOTFOUND;
    j = get_json("/v1/freshness", 200);
    ck_assert(json_is_false(json_object_get(j, "behind")));
    ck_assert_str_eq(testapi_str(j, "state"), "unknown");
    ck_assert(json_is_null(json_object_get(topic_of(j, "product-events"), "lag")));
    ck_assert_str_eq(testapi_str(topic_of(j, "product-events"), "state"), "unknown");
    ck_assert_msg(strstr(testapi_str(j, "verdict"), "unknown on 1 topic") != NULL, "%s",
                  testapi_str(j, "verdict"));
    json_decref(j);

    /* ClickHouse slow, records piling up: behind, and the verdict says where. */
    fake.lag[2] = 5000;
    fake.lat[0].p99_ms = 2500;
    j = get_json("/v1/freshness", 200);
    ck_assert(json_is_true(json_object_get(j, "behind")));
    ck_assert_str_eq(testapi_str(j, "state"), "behind");
    ck_assert_str_eq(testapi_str(topic_of(j, "cart-events"), "state"), "behind");
    ck_assert_str_eq(testapi_str(topic_of(j, "user-events"), "state"), "behind");
    ck_assert_msg(strstr(testapi_str(j, "verdict"), "cart-events has 5000 records not yet read") !=
                      NULL,
                  "%s", testapi_str(j, "verdict"));
    ck_assert_msg(strstr(testapi_str(j, "verdict"), "user-events events take 2500 ms (p99)") !=
                      NULL,
                  "%s", testapi_str(j, "verdict"));
    json_decref(j);

    /* No lag callback at all: every lag unknown. */
    app.lag = NULL;
    j = get_json("/v1/freshness", 200);
    app.lag = f_lag;
    ck_assert(json_is_null(json_object_get(topic_of(j, "user-events"), "lag")));
    json_decref(j);
}
END_TEST

/* ---- failures and the contract ---------------------------------------------------------- */

START_TEST(store_unavailable_is_503_with_retry_after_on_every_route)
{
    static const struct testsvc_request reqs[] = {
        {"GET", "/v1/summary", NULL, C_SUMMARY},
        {"GET", "/v1/revenue?interval=minute", NULL, C_REVENUE},
        {"GET", "/v1/top-products?by=revenue", NULL, C_TOP},
        {"GET", "/v1/funnel", NULL, C_FUNNEL},
        {"GET", "/v1/events?type=order.placed", NULL, C_EVENTS},
        {"GET", "/v1/freshness", NULL, C_LATENCY},
    };

    testsvc_assert_unavailable(&fake.t, reqs, sizeof(reqs) / sizeof(reqs[0]), NULL,
                               "the analytics store is unavailable: retry later");
    fake.t.fail = SVC_ETIMEDOUT;
    testapi_assert_problem(testapi_call("GET", "/v1/summary", NULL), 503, "unavailable",
                           "the analytics store is unavailable", NULL);
    ck_assert_str_eq(testapi_header(testapi_call("GET", "/v1/funnel", NULL), "Retry-After"), "1");
    ck_assert_int_eq(calls(C_INSERT) + calls(C_FORGET), 0);
}
END_TEST

START_TEST(openapi_yaml_is_served_and_names_every_route)
{
    static const char *const problems[] = {"invalid-request", "invalid-range", "unavailable",
                                           "internal", NULL};

    testsvc_assert_openapi(an_routes, problems);
}
END_TEST

/* Every problem type analytics-svc can answer is in its openapi.yaml and docs/architecture.md,
 * with its status, and they name no other. */
START_TEST(every_problem_type_is_documented)
{
    static const int uses[] = {SVC_OK};

    testproblems_check_openapi((const char *)an_openapi_yaml, uses, an_errors);
    testproblems_check_docs("analytics-svc", an_errors);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analytics_http");
    TCase *tc = tcase_create("api");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, summary_answers_the_counts_conversion_and_average_of_the_range_used);
    tcase_add_test(tc, summary_conversion_and_average_are_null_without_checkouts_or_orders);
    tcase_add_test(tc, the_default_range_is_the_last_24_hours_up_to_the_minute);
    tcase_add_test(tc, revenue_is_a_dense_series_with_empty_buckets_as_zeros);
    tcase_add_test(tc, revenue_series_bounds_and_a_store_bucket_outside_the_range);
    tcase_add_test(tc, top_products_passes_by_and_limit_and_answers_the_products);
    tcase_add_test(tc, funnel_answers_each_step_with_its_share_of_the_one_before);
    tcase_add_test(tc, events_answers_a_page_with_each_events_data_as_json);
    tcase_add_test(tc, events_pages_walk_every_event_once_newest_first);
    tcase_add_test(tc, a_cursor_reaches_the_store_as_the_position_it_names);
    tcase_add_test(tc, bad_times_and_ranges_are_refused_without_touching_the_store);
    tcase_add_test(tc, bad_interval_by_and_limit_are_refused_without_touching_the_store);
    tcase_add_test(tc, bad_types_subjects_and_cursors_are_refused_without_touching_the_store);
    tcase_add_test(tc, unknown_parameters_are_refused_naming_them);
    tcase_add_test(tc, sql_looking_text_in_every_parameter_never_reaches_the_store);
    tcase_add_test(tc, freshness_answers_lag_and_latency_per_topic_and_a_verdict);
    tcase_add_test(tc, store_unavailable_is_503_with_retry_after_on_every_route);
    tcase_add_test(tc, openapi_yaml_is_served_and_names_every_route);
    tcase_add_test(tc, every_problem_type_is_documented);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

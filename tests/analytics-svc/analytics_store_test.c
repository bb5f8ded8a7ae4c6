/*
 * analytics-svc's store against the real ClickHouse of deploy/local (integration), as the
 * analytics_svc user of .local/env/analytics-svc.env: what the consumer and the handlers
 * observe through analytics.h's interface.
 *
 * The database is shared with the running service and with every earlier run, and nothing is
 * ever dropped from it; so each test makes its own ids (random UUIDs, a topic and subjects of
 * its own) and a time window of its own: a random hour of 2001, checked to be empty before it
 * is used. Every query of a test covers only its window.
 */
#include "testenv.h"

#include "analytics_svc.h"
#include "svc/alloc.h"
#include "svc/arena.h"
#include "svc/buf.h"
#include "svc/client.h"
#include "svc/error.h"
#include "svc/idem.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY      "itest-pseudonym-key"
#define Y2001_MS INT64_C(978307200000)
#define HOUR_MS  INT64_C(3600000)
#define MIN_MS   INT64_C(60000)

static struct an_ch *ch;
static struct an_store st;
static struct svc_arena *arena;

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *env(const char *key)
{
    return testenv_get("analytics-svc", key);
}

static int open_with(const char *url, const char *password, const char *database,
                     struct an_ch **out)
{
    struct an_ch_opts o = {.url = url,
                           .user = env("CLICKHOUSE_USER"),
                           .password = password,
                           .database = database,
                           .pseudonym_key = KEY,
                           .timeout_ms = 10000};

    return an_ch_new(&o, out);
}

static void setup(void)
{
    const char *url = env("CLICKHOUSE_URL");
    int rc;

    testenv_require_port("clickhouse", testenv_port_of_url(url));
    rc = open_with(url, env("CLICKHOUSE_PASSWORD"), env("CLICKHOUSE_DATABASE"), &ch);
    ck_assert_msg(rc == 0, "clickhouse: analytics-svc store does not open: %s", svc_err_name(rc));
    an_ch_store(ch, &st);
    arena = svc_arena_new();
}

static void teardown(void)
{
    svc_arena_free(arena);
    an_ch_free(ch);
    ch = NULL;
}

/* A statement as the test's own client; 200 expected; the answer's body (free() it). */
static char *sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sql(const char *fmt, ...)
{
    struct svc_buf q = SVC_BUF_INIT, url = SVC_BUF_INIT, hu = SVC_BUF_INIT, hk = SVC_BUF_INIT;
    struct svc_client_resp resp = {0};
    const char *headers[3];
    struct svc_client_req req = {.method = "POST", .headers = headers, .timeout_ms = 20000};
    va_list ap;
    char *out;
    int rc;

    va_start(ap, fmt);
    svc_buf_vaddf(&q, fmt, ap);
    va_end(ap);
    svc_buf_addf(&url, "%s/?database=%s&output_format_json_quote_64bit_integers=0",
                 env("CLICKHOUSE_URL"), env("CLICKHOUSE_DATABASE"));
    svc_buf_addf(&hu, "X-ClickHouse-User: %s", env("CLICKHOUSE_USER"));
    svc_buf_addf(&hk, "X-ClickHouse-Key: %s", env("CLICKHOUSE_PASSWORD"));
    headers[0] = hu.data;
    headers[1] = hk.data;
    headers[2] = NULL;
    req.url = url.data;
    req.body = q.data;
    req.body_len = q.len;
    rc = svc_client_call(&req, &resp);
    ck_assert_msg(rc == 0 && resp.status == 200, "clickhouse: %s -> %s %ld %s", q.data,
                  svc_err_name(rc), resp.status, resp.body);
    out = svc_strdup(resp.body);
    svc_client_resp_release(&resp);
    svc_buf_release(&q);
    svc_buf_release(&url);
    svc_buf_release(&hu);
    svc_buf_release(&hk);
    return out;
}

/* A statement answering one integer. */
static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sql_int(const char *fmt, ...)
{
    struct svc_buf q = SVC_BUF_INIT;
    va_list ap;
    char *ans;
    int64_t v;

    va_start(ap, fmt);
    svc_buf_vaddf(&q, fmt, ap);
    va_end(ap);
    ans = sql("%s", q.data);
    v = strtoll(ans, NULL, 10);
    free(ans);
    svc_buf_release(&q);
    return v;
}

static uint64_t rnd(void)
{
    struct svc_uuid u;
    uint64_t v;

    svc_uuid_v4(&u);
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* The start of an hour of 2001 that holds no event yet (two hours free: some tests use the
 * next one too). */
static int64_t fresh_window(void)
{
    for (int i = 0; i < 50; i++) {
        int64_t t0 = Y2001_MS + (int64_t)(rnd() % (UINT64_C(364) * 24)) * HOUR_MS;

        if (sql_int("SELECT count() FROM events WHERE event_time >= toDateTime(%" PRId64
                    ") AND event_time < toDateTime(%" PRId64 ")",
                    t0 / 1000, (t0 + 2 * HOUR_MS) / 1000) == 0)
            return t0;
    }
    ck_abort_msg("no empty hour of 2001 left in analytics.events");
    return 0;
}

static const char *uuid(void)
{
    char *s = svc_arena_alloc(arena, SVC_UUID_STR_LEN + 1);

    svc_uuid_v4_str(s);
    return s;
}

/* A row of the test's own topic, ingested LAT_MS after its event time. */
static void row(struct an_row *r, const char *topic, const char *type, const char *user,
                int64_t event_ms, int64_t lat_ms)
{
    memset(r, 0, sizeof(*r));
    svc_uuid_v4_str(r->id);
    r->type = type;
    r->source = "/itest";
    r->subject = user;
    r->event_ms = event_ms;
    r->ingest_ms = event_ms + lat_ms;
    r->topic = topic;
    r->partition = 0;
    r->offset = (int64_t)(rnd() % 1000000);
    r->user_id = user;
    r->order_id = "";
    r->product_id = "";
    r->status = "";
    r->currency = "";
    r->data = "{\"email\":\"someone@example.com\"}";
}

/* ---- the batch every query test reads ------------------------------------------------------ */

struct fixture {
    int64_t t0;
    const char *topic;
    const char *u1, *u2, *u3, *p1, *p2;
    struct an_row rows[12];
    size_t n;
    struct an_range range; /* [t0, t0 + 2 h) */
};

/*
 * Three users registered in the first minutes; u1 and u2 add to a cart and start a checkout;
 * u1's order is placed (2 x p1 at 10.00, 1 x p2 at 10.00), u2's fails; u3, who never had a
 * cart, has an order placed an hour later (7 x p2 at 1.00, p2 renamed); and one event of a type
 * nobody knows, without a user.
 */
static void fixture_build(struct fixture *f)
{
    static struct an_line l1[2], l3[1];
    int64_t t0 = f->t0 = fresh_window();
    struct an_row *r = f->rows;

    f->topic = svc_arena_printf(arena, "itest-%s", uuid());
    f->u1 = uuid();
    f->u2 = uuid();
    f->u3 = uuid();
    f->p1 = uuid();
    f->p2 = uuid();
    l1[0] = (struct an_line){f->p1, "Widget", 2, 1000};
    l1[1] = (struct an_line){f->p2, "Gadget", 1, 1000};
    l3[0] = (struct an_line){f->p2, "Gadget v2", 7, 100};
    row(&r[0], f->topic, "user.registered", f->u1, t0 + 1 * MIN_MS, 100);
    row(&r[1], f->topic, "user.registered", f->u2, t0 + 2 * MIN_MS, 200);
    row(&r[2], f->topic, "user.registered", f->u3, t0 + 3 * MIN_MS + 500, 300);
    row(&r[3], f->topic, "cart.item_added", f->u1, t0 + 5 * MIN_MS, 400);
    r[3].product_id = f->p1;
    r[3].quantity = 2;
    r[3].amount_cents = 1000;
    row(&r[4], f->topic, "cart.item_added", f->u2, t0 + 6 * MIN_MS, 500);
    r[4].product_id = f->p2;
    r[4].quantity = 1;
    r[4].amount_cents = 500;
    row(&r[5], f->topic, "checkout.started", f->u1, t0 + 10 * MIN_MS, 600);
    r[5].status = "pending";
    r[5].amount_cents = 3000;
    r[5].currency = "EUR";
    row(&r[6], f->topic, "checkout.started", f->u2, t0 + 11 * MIN_MS, 700);
    r[6].status = "pending";
    r[6].amount_cents = 500;
    row(&r[7], f->topic, "order.placed", f->u1, t0 + 12 * MIN_MS, 800);
    r[7].status = "placed";
    r[7].order_id = "o-1";
    r[7].amount_cents = 3000;
    r[7].lines = l1;
    r[7].nlines = 2;
    row(&r[8], f->topic, "order.failed", f->u2, t0 + 13 * MIN_MS, 900);
    r[8].status = "failed";
    r[8].amount_cents = 500;
    row(&r[9], f->topic, "order.placed", f->u3, t0 + 70 * MIN_MS, 1000);
    r[9].status = "placed";
    r[9].order_id = "o-3";
    r[9].amount_cents = 700;
    r[9].lines = l3;
    r[9].nlines = 1;
    /* ingested two hours after its event time: not latency */
    row(&r[10], f->topic, "itest.other", "", t0 + 20 * MIN_MS, 2 * HOUR_MS);
    r[10].subject = f->u3;
    f->n = 11;
    f->range = (struct an_range){t0, t0 + 2 * HOUR_MS};
}

static void fixture_load(struct fixture *f)
{
    size_t inserted = 99;

    fixture_build(f);
    ck_assert_int_eq(st.insert(st.ctx, f->rows, f->n, &inserted), 0);
    ck_assert_uint_eq(inserted, f->n);
}

/* Every answer the fixture gives, as the tests expect them. */
static void expect_answers(const struct fixture *f)
{
    struct an_summary s;
    struct an_funnel fu;
    struct an_point *pts;
    struct an_top_product *top;
    size_t n;

    ck_assert_int_eq(st.summary(st.ctx, &f->range, &s), 0);
    ck_assert_int_eq(s.signups, 3);
    ck_assert_int_eq(s.active_users, 3);
    ck_assert_int_eq(s.checkouts, 2);
    ck_assert_int_eq(s.orders_placed, 2);
    ck_assert_int_eq(s.orders_failed, 1);
    ck_assert_int_eq(s.revenue_cents, 3700);

    ck_assert_int_eq(st.funnel(st.ctx, &f->range, &fu), 0);
    ck_assert_int_eq(fu.registered, 3);
    ck_assert_int_eq(fu.added_to_cart, 2);
    ck_assert_int_eq(fu.checkout_started, 2);
    ck_assert_int_eq(fu.placed, 1);

    ck_assert_int_eq(st.revenue(st.ctx, arena, &f->range, AN_HOUR, &pts, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(pts[0].t_ms, f->t0);
    ck_assert_int_eq(pts[0].orders, 1);
    ck_assert_int_eq(pts[0].revenue_cents, 3000);
    ck_assert_int_eq(pts[1].t_ms, f->t0 + HOUR_MS);
    ck_assert_int_eq(pts[1].orders, 1);
    ck_assert_int_eq(pts[1].revenue_cents, 700);
    ck_assert_int_eq(st.revenue(st.ctx, arena, &f->range, AN_MINUTE, &pts, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(pts[0].t_ms, f->t0 + 12 * MIN_MS);
    ck_assert_int_eq(pts[1].t_ms, f->t0 + 70 * MIN_MS);
    ck_assert_int_eq(st.revenue(st.ctx, arena, &f->range, AN_DAY, &pts, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(pts[0].t_ms, f->t0 - (f->t0 % (24 * HOUR_MS)));
    ck_assert_int_eq(pts[0].orders, 2);
    ck_assert_int_eq(pts[0].revenue_cents, 3700);

    ck_assert_int_eq(st.top_products(st.ctx, arena, &f->range, AN_BY_UNITS, 10, &top, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(top[0].product_id, f->p2);
    ck_assert_str_eq(top[0].name, "Gadget v2");
    ck_assert_int_eq(top[0].units, 8);
    ck_assert_int_eq(top[0].revenue_cents, 1700);
    ck_assert_str_eq(top[1].product_id, f->p1);
    ck_assert_str_eq(top[1].name, "Widget");
    ck_assert_int_eq(top[1].units, 2);
    ck_assert_int_eq(top[1].revenue_cents, 2000);
    ck_assert_int_eq(st.top_products(st.ctx, arena, &f->range, AN_BY_REVENUE, 1, &top, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(top[0].product_id, f->p1);
    ck_assert_int_eq(top[0].revenue_cents, 2000);
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(migrations_applied_twice_are_a_no_op)
{
    struct an_ch *again = NULL;
    int64_t versions = sql_int("SELECT count() FROM schema_migrations");

    ck_assert_int_ge(versions, 1);
    ck_assert_int_eq(sql_int("SELECT count() - uniqExact(version) FROM schema_migrations"), 0);
    ck_assert_int_eq(open_with(env("CLICKHOUSE_URL"), env("CLICKHOUSE_PASSWORD"),
                               env("CLICKHOUSE_DATABASE"), &again),
                     0);
    an_ch_free(again);
    ck_assert_int_eq(sql_int("SELECT count() FROM schema_migrations"), versions);
    ck_assert_int_eq(sql_int("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                             "AND name = 'schema_migrations_lock'"),
                     0);
}
END_TEST

static void *start_replica(void *arg)
{
    int *rc = arg;
    struct an_ch *o = NULL;

    *rc = open_with(env("CLICKHOUSE_URL"), env("CLICKHOUSE_PASSWORD"), env("CLICKHOUSE_DATABASE"),
                    &o);
    an_ch_free(o);
    svc_client_thread_release();
    return NULL;
}

/* A replica holding the migration lock (live: taken just now) makes another wait until it
 * lets go. */
START_TEST(a_held_migration_lock_makes_a_replica_wait)
{
    pthread_t th;
    int rc = -1;

    free(sql("CREATE TABLE schema_migrations_lock ENGINE = Log AS SELECT toUInt64(%" PRId64
             ") AS taken_ms, 'another-replica' AS owner",
             svc_wall_ms()));
    ck_assert_int_eq(pthread_create(&th, NULL, start_replica, &rc), 0);
    svc_sleep_ms(1500);
    ck_assert_int_eq(rc, -1); /* still waiting */
    free(sql("DROP TABLE schema_migrations_lock"));
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(sql_int("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                             "AND name = 'schema_migrations_lock'"),
                     0);
}
END_TEST

START_TEST(each_query_answers_exactly_and_a_batch_twice_counts_once)
{
    struct fixture f;
    size_t inserted = 99;

    fixture_load(&f);
    expect_answers(&f);
    /* the same batch again (a redelivery, a replay): nothing new, nothing moves */
    ck_assert_int_eq(st.insert(st.ctx, f.rows, f.n, &inserted), 0);
    ck_assert_uint_eq(inserted, 0);
    expect_answers(&f);
    ck_assert_int_eq(sql_int("SELECT count() FROM events WHERE topic = '%s'", f.topic),
                     (int64_t)f.n);
    /* half old, half new: only the new half goes in */
    {
        struct an_row more[2];

        more[0] = f.rows[0];
        row(&more[1], f.topic, "itest.other", "", f.t0 + 30 * MIN_MS, 10);
        ck_assert_int_eq(st.insert(st.ctx, more, 2, &inserted), 0);
        ck_assert_uint_eq(inserted, 1);
        expect_answers(&f);
    }
}
END_TEST

/* What two replicas flushing the same records in a rebalance could write: an id twice in
 * events (and the read models). Distinct counts and the events page do not show it. */
START_TEST(a_duplicate_written_by_two_replicas_is_not_seen)
{
    struct fixture f;
    struct an_event_query q = {.limit = 10};
    struct an_event *ev;
    struct an_summary s;
    struct an_funnel fu;
    size_t n;
    bool more;

    fixture_load(&f);
    free(sql("INSERT INTO events SELECT * FROM events WHERE id = '%s'", f.rows[1].id));
    free(sql("INSERT INTO events SELECT * FROM events WHERE id = '%s'", f.rows[4].id));
    ck_assert_int_eq(sql_int("SELECT count() FROM signups WHERE user_id = '%s'", f.u2), 2);
    ck_assert_int_eq(st.summary(st.ctx, &f.range, &s), 0);
    ck_assert_int_eq(s.signups, 3);
    ck_assert_int_eq(s.active_users, 3);
    ck_assert_int_eq(st.funnel(st.ctx, &f.range, &fu), 0);
    ck_assert_int_eq(fu.registered, 3);
    ck_assert_int_eq(fu.added_to_cart, 2);
    q.subject = f.u2;
    ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert(!more);
    ck_assert_str_eq(ev[3].id, f.rows[1].id);
    ck_assert_str_eq(ev[2].id, f.rows[4].id);
}
END_TEST

START_TEST(events_page_newest_first_with_a_cursor)
{
    struct fixture f;
    struct an_event_query q = {.subject = NULL, .limit = 2};
    struct an_event *ev;
    struct an_row tie[2];
    const char *lo, *hi;
    size_t n, inserted;
    bool more;

    fixture_load(&f);
    q.subject = f.u1;
    ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(more);
    ck_assert_str_eq(ev[0].id, f.rows[7].id);
    ck_assert_str_eq(ev[0].type, "order.placed");
    ck_assert_str_eq(ev[0].subject, f.u1);
    ck_assert_str_eq(ev[0].source, "/itest");
    ck_assert_str_eq(ev[0].topic, f.topic);
    ck_assert_int_eq(ev[0].event_ms, f.rows[7].event_ms);
    ck_assert_int_eq(ev[0].ingest_ms, f.rows[7].ingest_ms);
    ck_assert_str_eq(ev[0].data, "{\"email\":\"someone@example.com\"}");
    ck_assert_str_eq(ev[1].id, f.rows[5].id);
    q.after = true;
    q.after_ms = ev[1].event_ms;
    memcpy(q.after_id, ev[1].id, AN_ID_LEN + 1);
    ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(!more);
    ck_assert_str_eq(ev[0].id, f.rows[3].id);
    ck_assert_str_eq(ev[1].id, f.rows[0].id);

    /* by type and subject */
    q = (struct an_event_query){.type = "user.registered", .subject = f.u3, .limit = 5};
    ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(!more);
    ck_assert_str_eq(ev[0].id, f.rows[2].id);
    ck_assert_int_eq(ev[0].event_ms, f.t0 + 3 * MIN_MS + 500);

    /* two events of one millisecond: the greater id first, and the cursor between them */
    row(&tie[0], f.topic, "itest.tie", "", f.t0 + 40 * MIN_MS, 1);
    row(&tie[1], f.topic, "itest.tie", "", f.t0 + 40 * MIN_MS, 1);
    tie[0].subject = tie[1].subject = svc_arena_printf(arena, "tie-%s", uuid());
    ck_assert_int_eq(st.insert(st.ctx, tie, 2, &inserted), 0);
    hi = strcmp(tie[0].id, tie[1].id) > 0 ? tie[0].id : tie[1].id;
    lo = hi == tie[0].id ? tie[1].id : tie[0].id;
    q = (struct an_event_query){.subject = tie[0].subject, .limit = 1};
    ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(more);
    ck_assert_str_eq(ev[0].id, hi);
    q.after = true;
    q.after_ms = ev[0].event_ms;
    memcpy(q.after_id, ev[0].id, AN_ID_LEN + 1);
    ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(!more);
    ck_assert_str_eq(ev[0].id, lo);
}
END_TEST

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

START_TEST(latency_per_topic)
{
    struct fixture f;
    struct an_topic_latency *t = NULL;
    int64_t lat[16], last = 0;
    size_t n, k = 0;

    fixture_load(&f);
    /* a window reaching back to the fixture's ingest times in 2001 */
    ck_assert_int_eq(st.latency(st.ctx, arena, svc_wall_ms() - f.t0 + HOUR_MS, &t, &n), 0);
    for (size_t i = 0; i < f.n; i++) {
        int64_t d = f.rows[i].ingest_ms - f.rows[i].event_ms;

        if (d <= HOUR_MS)
            lat[k++] = d;
        if (f.rows[i].ingest_ms > last)
            last = f.rows[i].ingest_ms;
    }
    qsort(lat, k, sizeof(lat[0]), cmp_i64);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].topic, f.topic) != 0)
            continue;
        ck_assert_int_eq(t[i].events, (int64_t)k);
        /* quantileExact: the value at position level * count of the sorted values */
        ck_assert_double_eq(t[i].p50_ms, (double)lat[(size_t)(0.5 * (double)k)]);
        ck_assert_double_eq(t[i].p99_ms, (double)lat[(size_t)(0.99 * (double)k)]);
        ck_assert_int_eq(t[i].last_ingest_ms, last);
        return;
    }
    ck_abort_msg("topic '%s' missing from the latency answer", f.topic);
}
END_TEST

/* Rows still holding ID in any table. */
static int64_t rows_of(const char *id)
{
    return sql_int("SELECT (SELECT count() FROM events WHERE user_id = '%s' OR subject = '%s') + "
                   "(SELECT count() FROM signups WHERE user_id = '%s') + (SELECT count() FROM "
                   "orders WHERE user_id = '%s') + (SELECT count() FROM order_lines WHERE user_id "
                   "= '%s') + (SELECT count() FROM cart_adds WHERE user_id = '%s')",
                   id, id, id, id, id, id);
}

START_TEST(forget_user_pseudonymises_and_moves_no_count)
{
    struct fixture f;
    uint8_t sum[32];
    char hash[65], in[128];
    int64_t deadline, mutations;

    fixture_load(&f);
    ck_assert_int_gt(rows_of(f.u1), 0);
    ck_assert_int_eq(st.forget_users(st.ctx, &f.u1, 1), 0);
    deadline = svc_now_ms() + 60000;
    while (rows_of(f.u1) > 0 && svc_now_ms() < deadline) /* mutations are asynchronous */
        svc_sleep_ms(200);
    ck_assert_int_eq(rows_of(f.u1), 0);

    /* the keyed hash, as SQL would compute it, stands where the id stood */
    snprintf(in, sizeof(in), "%s%s", KEY, f.u1);
    svc_sha256(in, strlen(in), sum);
    for (size_t i = 0; i < 32; i++)
        snprintf(hash + 2 * i, 3, "%02x", sum[i]);
    ck_assert_int_eq(
        sql_int("SELECT lower(hex(SHA256(concat('%s', '%s')))) = '%s'", KEY, f.u1, hash), 1);
    ck_assert_int_eq(sql_int("SELECT count() FROM events WHERE user_id = '%s' AND subject = '%s' "
                             "AND data = '{}' AND topic = '%s'",
                             hash, hash, f.topic),
                     4);
    ck_assert_int_eq(sql_int("SELECT count() FROM signups WHERE user_id = '%s'", hash), 1);
    ck_assert_int_eq(sql_int("SELECT count() FROM orders WHERE user_id = '%s'", hash), 2);
    ck_assert_int_eq(sql_int("SELECT count() FROM order_lines WHERE user_id = '%s'", hash), 2);
    ck_assert_int_eq(sql_int("SELECT count() FROM cart_adds WHERE user_id = '%s'", hash), 1);
    /* the others keep their data */
    ck_assert_int_eq(
        sql_int("SELECT count() FROM events WHERE user_id = '%s' AND data != '{}'", f.u2), 4);
    expect_answers(&f);

    /* again (a replayed user.deleted): nothing to change, no mutation sent */
    mutations = sql_int("SELECT count() FROM system.mutations WHERE database = currentDatabase() "
                        "AND position(command, '%s') > 0",
                        f.u1);
    ck_assert_int_ge(mutations, 5);
    ck_assert_int_eq(st.forget_users(st.ctx, &f.u1, 1), 0);
    ck_assert_int_eq(sql_int("SELECT count() FROM system.mutations WHERE database = "
                             "currentDatabase() AND position(command, '%s') > 0",
                             f.u1),
                     mutations);
    expect_answers(&f);

    /* An event of the forgotten user that arrives after the deletion (its topic read behind
     * user-events) goes in pseudonymised: the real id is never stored again. */
    {
        struct an_row late;
        size_t inserted = 0;

        row(&late, f.topic, "cart.item_added", f.u1, f.t0 + 70 * MIN_MS, 100);
        late.product_id = f.p2;
        late.quantity = 1;
        late.amount_cents = 1000;
        ck_assert_int_eq(st.insert(st.ctx, &late, 1, &inserted), 0);
        ck_assert_uint_eq(inserted, 1);
        ck_assert_int_eq(rows_of(f.u1), 0);
        ck_assert_int_eq(sql_int("SELECT count() FROM events WHERE id = '%s' AND user_id = '%s' "
                                 "AND subject = '%s' AND data = '{}'",
                                 late.id, hash, hash),
                         1);
        ck_assert_int_eq(sql_int("SELECT count() FROM cart_adds WHERE user_id = '%s'", hash), 2);
    }
}
END_TEST

static char *hex_of(const char *s, size_t len)
{
    char *out = svc_arena_alloc(arena, 2 * len + 1);

    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02X", (unsigned char)s[i]);
    out[2 * len] = '\0';
    return out;
}

/* What an_sql_quote() makes of hostile text reaches ClickHouse as that text, byte for byte,
 * and a value stored through the insert is found by it and read back unchanged. */
START_TEST(quoting_survives_injection_attempts)
{
    static const struct {
        const char *s;
        size_t len;
    } nasty[] = {
        {"'", 1},
        {"\\", 1},
        {"\\'", 2},
        {"''", 2},
        {"a\0b", 3},
        {"'; DROP TABLE events; --", 24},
        {"' OR 1 = 1 --", 13},
        {"\\x27 OR '1'='1", 14},
        {"line\nbreak\r\ttab", 15},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14},
        {"\x80\xff not utf-8", 12},
        {"}{\"]", 4},
    };
    const char *topic = svc_arena_printf(arena, "itest-%s", uuid());
    int64_t t0 = fresh_window();
    struct an_row rows[12];
    size_t nrows = 0, inserted;

    for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
        struct svc_buf q = SVC_BUF_INIT;
        char *ans;

        an_sql_quote(&q, nasty[i].s, nasty[i].len);
        ans = sql("SELECT hex(%s)", q.data);
        ans[strcspn(ans, "\n")] = '\0';
        ck_assert_msg(strcmp(ans, hex_of(nasty[i].s, nasty[i].len)) == 0,
                      "literal %zu: %s came back as %s", i, q.data, ans);
        free(ans);
        svc_buf_release(&q);
        /* valid UTF-8 without NUL: what a C string and a JSON row carry */
        if (memchr(nasty[i].s, '\0', nasty[i].len) == NULL &&
            (unsigned char)nasty[i].s[0] != 0x80) {
            row(&rows[nrows], topic, "itest.inject", "", t0 + (int64_t)nrows * MIN_MS, 1);
            rows[nrows].subject = svc_arena_printf(arena, "%s%s", uuid(), nasty[i].s);
            rows[nrows].data = "{\"note\":\"'; DROP TABLE events; --\"}";
            nrows++;
        }
    }
    ck_assert_int_eq(st.insert(st.ctx, rows, nrows, &inserted), 0);
    ck_assert_uint_eq(inserted, nrows);
    for (size_t i = 0; i < nrows; i++) {
        struct an_event_query q = {.subject = rows[i].subject, .type = "itest.inject", .limit = 5};
        struct an_event *ev;
        size_t n;
        bool more;

        ck_assert_int_eq(st.events(st.ctx, arena, &q, &ev, &n, &more), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(ev[0].id, rows[i].id);
        ck_assert_str_eq(ev[0].subject, rows[i].subject);
        ck_assert_str_eq(ev[0].data, rows[i].data);
    }
    ck_assert_int_eq(sql_int("SELECT count() FROM events WHERE topic = '%s'", topic),
                     (int64_t)nrows);
}
END_TEST

START_TEST(wrong_password_and_no_engine)
{
    struct an_ch *o = (struct an_ch *)&o;
    const char *url = env("CLICKHOUSE_URL");

    ck_assert_int_eq(open_with(url, "not-the-password", env("CLICKHOUSE_DATABASE"), &o),
                     SVC_EUNAUTH);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(open_with(url, env("CLICKHOUSE_PASSWORD"), "system_not_ours", &o),
                     SVC_EUNAUTH);
    ck_assert_int_eq(
        open_with("http://127.0.0.1:1", env("CLICKHOUSE_PASSWORD"), env("CLICKHOUSE_DATABASE"), &o),
        SVC_EUNAVAILABLE);
    ck_assert_int_eq(open_with("http://user:pw@127.0.0.1:1", env("CLICKHOUSE_PASSWORD"),
                               env("CLICKHOUSE_DATABASE"), &o),
                     SVC_EINVAL);
    ck_assert_int_eq(open_with(url, env("CLICKHOUSE_PASSWORD"), "analytics; DROP", &o), SVC_EINVAL);
    ck_assert_ptr_null(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analytics_store");
    TCase *tc = tcase_create("clickhouse");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, migrations_applied_twice_are_a_no_op);
    tcase_add_test(tc, a_held_migration_lock_makes_a_replica_wait);
    tcase_add_test(tc, each_query_answers_exactly_and_a_batch_twice_counts_once);
    tcase_add_test(tc, a_duplicate_written_by_two_replicas_is_not_seen);
    tcase_add_test(tc, events_page_newest_first_with_a_cursor);
    tcase_add_test(tc, latency_per_topic);
    tcase_add_test(tc, forget_user_pseudonymises_and_moves_no_count);
    tcase_add_test(tc, quoting_survives_injection_attempts);
    tcase_add_test(tc, wrong_password_and_no_engine);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

/*
 * cart-svc's store against the real Redis of deploy/local (integration), as the cart_svc ACL
 * user of .local/env/cart-svc.env: what the handlers, the saga, the consumer and the relay
 * observe through cart.h's interface and the outbox source.
 *
 * Each test works under a key prefix of its own (cart_redis_opts.prefix), below one prefix of
 * the run, which the run's teardown drops whole (even after a failed test), so the running
 * service's keys are never touched. A raw hiredis connection shows what the store wrote
 * (stream entries, TTLs) and plays a relay that crashed.
 */
#include "testenv.h"

#include "cart_svc.h"
#include "polyglot/events.h"
#include "svc/arena.h"
#include "svc/error.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_MS (10LL * 60 * 1000)

static char run_prefix[96];
static char prefix[160];
static struct cart_redis *rd;
static struct cart_store st;
static struct svc_arena *arena;

static int open_store(const char *pfx, struct cart_redis **out)
{
    const char *url = testenv_get("cart-svc", "REDIS_URL");
    struct cart_redis_opts o = {
        .url = url, .pool_size = 8, .timeout_ms = 5000, .cart_ttl_ms = TTL_MS, .prefix = pfx};

    testenv_require_port("redis", testenv_port_of_url(url));
    return cart_redis_new(&o, out);
}

static void run_setup(void)
{
    snprintf(run_prefix, sizeof(run_prefix), "%s:", testenv_unique("test:cartit"));
}

static void run_teardown(void)
{
    struct cart_redis *r;

    if (open_store(run_prefix, &r) == 0) {
        cart_redis_drop_all(r);
        cart_redis_free(r);
    }
}

static void setup(void)
{
    int rc;

    snprintf(prefix, sizeof(prefix), "%s%s:", run_prefix, testenv_unique("t"));
    rc = open_store(prefix, &rd);
    ck_assert_msg(rc == 0, "redis: cart-svc store does not open: %s", svc_err_name(rc));
    cart_redis_store(rd, &st);
    arena = svc_arena_new();
}

static void teardown(void)
{
    svc_arena_free(arena);
    ck_assert_int_eq(cart_redis_drop_all(rd), 0);
    cart_redis_free(rd);
    rd = NULL;
}

/* ---- a raw connection ---------------------------------------------------------------------- */

/* The test's own connection as cart_svc (the URL's user, password and port). */
static redisContext *raw(void)
{
    const char *url = testenv_get("cart-svc", "REDIS_URL") + strlen("redis://");
    char user[128], pass[256];
    const char *colon = strchr(url, ':'), *at = strchr(url, '@');
    redisContext *c;
    redisReply *rep;

    ck_assert_ptr_nonnull(colon);
    ck_assert_ptr_nonnull(at);
    snprintf(user, sizeof(user), "%.*s", (int)(colon - url), url);
    snprintf(pass, sizeof(pass), "%.*s", (int)(at - colon - 1), colon + 1);
    c = redisConnect("127.0.0.1", testenv_port_of_url(testenv_get("cart-svc", "REDIS_URL")));
    ck_assert_msg(c != NULL && c->err == 0, "redis: no connection");
    rep = redisCommand(c, "AUTH %s %s", user, pass);
    ck_assert_msg(rep != NULL && rep->type == REDIS_REPLY_STATUS, "redis: AUTH refused");
    freeReplyObject(rep);
    return c;
}

static long long raw_int(const char *fmt, const char *k)
{
    redisContext *c = raw();
    redisReply *rep = redisCommand(c, fmt, k);
    long long v;

    ck_assert_msg(rep != NULL && rep->type == REDIS_REPLY_INTEGER, "%s", fmt);
    v = rep->integer;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

/* The key NAME ID under the test's prefix. */
static const char *k(const char *name, const char *id)
{
    static char buf[4][512];
    static int i;
    char *b = buf[i++ % 4];

    snprintf(b, sizeof(buf[0]), "%s%s%s", prefix, name, id);
    return b;
}

/* The types of the events in the outbox stream, oldest first, joined by spaces. */
static const char *outbox_types(void)
{
    static char out[4096];
    redisContext *c = raw();
    redisReply *rep = redisCommand(c, "XRANGE %s - +", k("outbox", ""));

    out[0] = '\0';
    ck_assert_msg(rep != NULL && rep->type == REDIS_REPLY_ARRAY, "XRANGE");
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *f = rep->element[i]->element[1];

        for (size_t j = 0; j + 1 < f->elements; j += 2)
            if (strcmp(f->element[j]->str, "value") == 0) {
                json_t *v = json_loads(f->element[j + 1]->str, 0, NULL);

                snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
                         out[0] != '\0' ? " " : "", json_string_value(json_object_get(v, "type")));
                json_decref(v);
            }
    }
    freeReplyObject(rep);
    redisFree(c);
    return out;
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int event_no;

static const char *new_event_id(void)
{
    static char id[4][SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(id[event_no % 4]);
    return id[event_no++ % 4];
}

/* A user the read model knows (user.registered). */
static void known_user(char *id)
{
    svc_uuid_v4_str(id);
    ck_assert_int_eq(st.user_upsert(st.ctx, new_event_id(), id, 1), 0);
}

static struct cart_product product(const char *name, int64_t price, const char *currency)
{
    struct cart_product p = {.name = name, .price_cents = price, .currency = currency};

    svc_uuid_v4_str(p.id);
    return p;
}

static const struct cart_line *line_of(const struct cart *c, const char *pid)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->lines[i].product_id, pid) == 0)
            return &c->lines[i];
    return NULL;
}

/* ---- carts --------------------------------------------------------------------------------- */

START_TEST(lines_put_changed_removed_and_the_total)
{
    char u[40];
    struct cart_product kettle = product("Steel Kettle", 2500, "EUR");
    struct cart_product mug = product("Mug", 800, "EUR");
    struct cart c;

    known_user(u);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_int_eq(c.updated_at_ms, 0);

    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &kettle, 2, NULL, &c), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &mug, 3, NULL, &c), 0);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_int_eq(c.total_cents, 2 * 2500 + 3 * 800);
    ck_assert_str_eq(c.currency, "EUR");

    /* The quantity changes; the line keeps its place; the snapshot is refreshed. */
    kettle.price_cents = 2600;
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &kettle, 1, NULL, &c), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_str_eq(c.lines[0].product_id, kettle.id);
    ck_assert_str_eq(c.lines[0].name, "Steel Kettle");
    ck_assert_int_eq(c.lines[0].quantity, 1);
    ck_assert_int_eq(c.lines[0].price_cents, 2600);
    ck_assert_str_eq(c.lines[1].product_id, mug.id);
    ck_assert_int_eq(c.total_cents, 2600 + 3 * 800);
    ck_assert_int_gt(c.updated_at_ms, 0);

    ck_assert_int_eq(st.remove_line(st.ctx, arena, u, kettle.id, NULL, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.total_cents, INT64_C(3) * 800);
    ck_assert_int_eq(st.remove_line(st.ctx, arena, u, kettle.id, NULL, &c), SVC_ENOTFOUND);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.lines[0].product_id, mug.id);

    ck_assert_str_eq(outbox_types(), "cart.item_added cart.item_added cart.item_added "
                                     "cart.item_removed");

    ck_assert_int_eq(st.clear(st.ctx, u, NULL), 0);
    ck_assert_int_eq(st.clear(st.ctx, u, NULL), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 0);
}
END_TEST

START_TEST(a_hundred_lines_at_most)
{
    char u[40];
    struct cart_product p[CART_LINES_MAX + 1];
    struct cart c;

    known_user(u);
    for (int i = 0; i <= CART_LINES_MAX; i++)
        p[i] = product("Thing", 100 + i, "EUR");
    for (int i = 0; i < CART_LINES_MAX; i++)
        ck_assert_int_eq(st.put_line(st.ctx, arena, u, &p[i], 1, NULL, &c), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &p[CART_LINES_MAX], 1, NULL, &c),
                     CART_ECART_FULL);
    /* A line already there may still change. */
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &p[7], 5, NULL, &c), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, CART_LINES_MAX);
    for (int i = 0; i < CART_LINES_MAX; i++)
        ck_assert_str_eq(c.lines[i].product_id, p[i].id);
    ck_assert_int_eq(c.lines[7].quantity, 5);
}
END_TEST

START_TEST(one_currency_per_cart)
{
    char u[40];
    struct cart_product eur = product("Kettle", 2500, "EUR");
    struct cart_product usd = product("Teapot", 3000, "USD");
    struct cart c;

    known_user(u);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &eur, 1, NULL, &c), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &usd, 1, NULL, &c), SVC_EINVAL);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.currency, "EUR");
}
END_TEST

#define WRITERS 20

struct writer {
    const char *user;
    struct cart_product p;
    int rc;
};

static void *write_line(void *arg)
{
    struct writer *w = arg;
    struct svc_arena *a = svc_arena_new();
    struct cart c;

    w->rc = st.put_line(st.ctx, a, w->user, &w->p, 1, NULL, &c);
    svc_arena_free(a);
    return NULL;
}

START_TEST(twenty_concurrent_writers_lose_no_line)
{
    char u[40];
    struct writer w[WRITERS];
    pthread_t t[WRITERS];
    struct cart c;

    known_user(u);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.user = u, .p = product("Thing", 100, "EUR")};
        ck_assert_int_eq(pthread_create(&t[i], NULL, write_line, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
    }
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, WRITERS);
    for (int i = 0; i < WRITERS; i++)
        ck_assert_ptr_nonnull(line_of(&c, w[i].p.id));
    ck_assert_int_eq(c.total_cents, INT64_C(100) * WRITERS);
}
END_TEST

START_TEST(every_write_refreshes_the_ttl)
{
    char u[40];
    struct cart_product p = product("Kettle", 2500, "EUR");
    struct cart c;
    int64_t before = svc_wall_ms();
    redisContext *r;
    redisReply *rep;

    known_user(u);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &p, 1, NULL, &c), 0);
    ck_assert_int_gt(raw_int("PTTL %s", k("cart:", u)), TTL_MS - 60000);
    ck_assert_int_le(raw_int("PTTL %s", k("cart:", u)), TTL_MS);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_int_ge(c.expires_at_ms, before + TTL_MS - 60000);
    ck_assert_int_le(c.expires_at_ms, svc_wall_ms() + TTL_MS);

    /* Most of the TTL gone; the next write starts it again. */
    r = raw();
    rep = redisCommand(r, "PEXPIRE %s 5000", k("cart:", u));
    freeReplyObject(rep);
    redisFree(r);
    ck_assert_int_le(raw_int("PTTL %s", k("cart:", u)), 5000);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &p, 2, NULL, &c), 0);
    ck_assert_int_gt(raw_int("PTTL %s", k("cart:", u)), TTL_MS - 60000);
}
END_TEST

/* ---- checkout and orders ------------------------------------------------------------------- */

START_TEST(checkout_creates_the_order_and_the_key_replays)
{
    char u[40], id[40], id2[40];
    struct cart_product p = product("Kettle", 2500, "EUR");
    struct cart_order o, again;
    struct cart c;
    bool replayed = true;
    char(*open)[CART_ID_LEN + 1];
    size_t n;

    known_user(u);
    svc_uuid_v4_str(id);
    svc_uuid_v4_str(id2);
    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k-empty", id, NULL, &o, &replayed),
                     CART_ECART_EMPTY);
    ck_assert_int_eq(st.order_get(st.ctx, arena, id, &o), SVC_ENOTFOUND);

    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &p, 2, NULL, &c), 0);
    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k1", id, NULL, &o, &replayed), 0);
    ck_assert(!replayed);
    ck_assert_str_eq(o.id, id);
    ck_assert_int_eq(o.status, CART_PENDING);
    ck_assert_uint_eq(o.n, 1);
    ck_assert_int_eq(o.total_cents, 5000);

    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k1", id2, NULL, &again, &replayed), 0);
    ck_assert(replayed);
    ck_assert_str_eq(again.id, id);
    ck_assert_int_eq(st.order_get(st.ctx, arena, id2, &again), SVC_ENOTFOUND);

    /* The empty cart's key was not kept: it works once the cart has lines. */
    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k-empty", id2, NULL, &again, &replayed), 0);
    ck_assert(!replayed);
    ck_assert_str_eq(again.id, id2);

    ck_assert_int_eq(st.order_get(st.ctx, arena, id, &o), 0);
    ck_assert_str_eq(o.user_id, u);
    ck_assert_str_eq(o.lines[0].product_id, p.id);
    ck_assert_str_eq(o.lines[0].name, "Kettle");
    ck_assert_int_eq(o.lines[0].quantity, 2);
    ck_assert_str_eq(o.currency, "EUR");
    ck_assert_str_eq(o.idempotency_key, "k1");
    ck_assert_uint_eq(o.nlog, 0);
    ck_assert_int_eq(st.orders_open(st.ctx, arena, 10, &open, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(outbox_types(), "cart.item_added checkout.started checkout.started");
}
END_TEST

START_TEST(placed_empties_the_ordered_lines_and_announces_it)
{
    char u[40], id[40];
    struct cart_product a = product("Kettle", 2500, "EUR"), b = product("Mug", 800, "EUR");
    struct cart_log_entry e1 = {CART_STEP_RESERVE, CART_STEP_STARTED, 0, NULL};
    struct cart_log_entry e2 = {CART_STEP_COMMIT, CART_STEP_SUCCEEDED, 0, NULL};
    struct cart_order o;
    struct cart c;
    bool replayed;
    char(*open)[CART_ID_LEN + 1];
    size_t n;

    known_user(u);
    svc_uuid_v4_str(id);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);
    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k", id, NULL, &o, &replayed), 0);
    /* Added after the checkout: not ordered, stays. */
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &b, 1, NULL, &c), 0);

    ck_assert_int_eq(st.order_log(st.ctx, id, &e1, CART_RESERVED, NULL, NULL, NULL), 0);
    ck_assert_int_eq(st.order_log(st.ctx, id, &e2, CART_PLACED, NULL, NULL, NULL), 0);
    ck_assert_int_eq(st.order_get(st.ctx, arena, id, &o), 0);
    ck_assert_int_eq(o.status, CART_PLACED);
    ck_assert_uint_eq(o.nlog, 2);
    ck_assert_int_eq(o.log[0].step, CART_STEP_RESERVE);
    ck_assert_int_eq(o.log[1].step, CART_STEP_COMMIT);
    ck_assert_int_eq(o.log[1].state, CART_STEP_SUCCEEDED);
    ck_assert_int_gt(o.log[1].at_ms, 0);

    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.lines[0].product_id, b.id);
    ck_assert_int_eq(st.orders_open(st.ctx, arena, 10, &open, &n), 0);
    ck_assert_uint_eq(n, 0);

    /* The same end again (another replica): logged, not announced twice. */
    ck_assert_int_eq(st.order_log(st.ctx, id, &e2, CART_PLACED, NULL, NULL, NULL), 0);
    ck_assert_int_eq(st.order_log(st.ctx, id, &e2, CART_FAILED, "charge", "no", NULL),
                     SVC_ECONFLICT);
    ck_assert_str_eq(outbox_types(), "cart.item_added checkout.started cart.item_added "
                                     "order.placed");
}
END_TEST

START_TEST(failed_is_announced_with_the_step_and_reason)
{
    char u[40], id[40];
    struct cart_product a = product("Kettle", 2500, "EUR");
    struct cart_log_entry e = {CART_STEP_CHARGE, CART_STEP_FAILED, 0, "insufficient funds"};
    struct cart_log_entry r = {CART_STEP_RELEASE, CART_STEP_SUCCEEDED, 0, NULL};
    struct cart_order o;
    struct cart c;
    bool replayed;

    known_user(u);
    svc_uuid_v4_str(id);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);
    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k", id, NULL, &o, &replayed), 0);
    ck_assert_int_eq(st.order_log(st.ctx, id, &e, CART_COMPENSATING, NULL, NULL, NULL), 0);
    ck_assert_int_eq(st.order_log(st.ctx, id, &r, CART_FAILED, "charge",
                                  "Your wallet holds 10.00 EUR, the order costs 25.00 EUR", NULL),
                     0);
    ck_assert_int_eq(st.order_get(st.ctx, arena, id, &o), 0);
    ck_assert_int_eq(o.status, CART_FAILED);
    ck_assert_str_eq(o.failed_step, "charge");
    ck_assert_str_eq(o.reason, "Your wallet holds 10.00 EUR, the order costs 25.00 EUR");
    ck_assert_uint_eq(o.nlog, 2);
    ck_assert_str_eq(o.log[0].detail, "insufficient funds");
    /* The cart stays as it was. */
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(
        st.order_log(st.ctx, "00000000-0000-4000-8000-000000000000", &e, -1, NULL, NULL, NULL),
        SVC_ENOTFOUND);
    ck_assert_str_eq(outbox_types(), "cart.item_added checkout.started order.failed");
}
END_TEST

START_TEST(orders_page_newest_first_without_repeats)
{
    char u[40], ids[7][40], keyname[16];
    struct cart_product a = product("Kettle", 2500, "EUR");
    struct cart_order o;
    struct cart_order_page pg;
    struct cart c;
    bool replayed, got[7] = {false};
    int seen = 0;
    int64_t after = 0, last = INT64_MAX;
    char after_id[40] = "";

    known_user(u);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);
    for (int i = 0; i < 7; i++) {
        svc_uuid_v4_str(ids[i]);
        snprintf(keyname, sizeof(keyname), "k%d", i);
        ck_assert_int_eq(st.checkout(st.ctx, arena, u, keyname, ids[i], NULL, &o, &replayed), 0);
        if (i < 3)
            svc_sleep_ms(2); /* the first ones apart, the last ones maybe in one millisecond */
    }
    for (int page = 0; page < 4; page++) {
        ck_assert_int_eq(st.orders_list(st.ctx, arena, u, 3, after, after_id, &pg), 0);
        for (size_t i = 0; i < pg.n; i++) {
            int j = 0;

            while (j < 7 && strcmp(ids[j], pg.items[i].id) != 0)
                j++;
            ck_assert_int_lt(j, 7);
            ck_assert_msg(!got[j], "order %d listed twice", j);
            got[j] = true;
            ck_assert_int_le(pg.items[i].created_at_ms, last);
            last = pg.items[i].created_at_ms;
            ck_assert_uint_eq(pg.items[i].n, 1);
            seen++;
        }
        if (!pg.more)
            break;
        ck_assert_uint_eq(pg.n, 3);
        after = pg.next_created_at_ms;
        snprintf(after_id, sizeof(after_id), "%s", pg.next_id);
    }
    ck_assert_int_eq(seen, 7);
    /* The first three were made apart: the last three listed, oldest last. */
    ck_assert(got[0] && got[1] && got[2]);
    ck_assert_int_eq(st.orders_list(st.ctx, arena, u, 7, 0, NULL, &pg), 0);
    ck_assert_uint_eq(pg.n, 7);
    ck_assert(!pg.more);
    ck_assert_str_eq(pg.items[6].id, ids[0]);
    ck_assert_str_eq(pg.items[5].id, ids[1]);
    ck_assert_str_eq(pg.items[4].id, ids[2]);
}
END_TEST

/* ---- the outbox source --------------------------------------------------------------------- */

START_TEST(the_relay_takes_events_in_order_and_they_leave)
{
    char u[40];
    struct cart_product a = product("Kettle", 2500, "EUR"), b = product("Mug", 800, "EUR");
    struct svc_outbox_source src;
    struct svc_outbox_event *ev;
    struct svc_outbox_event *marks[8];
    struct cart c;
    size_t count;
    double age;
    int n;

    known_user(u);
    cart_redis_outbox_source(rd, &src);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &b, 1, NULL, &c), 0);
    ck_assert_int_eq(st.remove_line(st.ctx, arena, u, a.id, NULL, &c), 0);
    ck_assert_int_eq(src.backlog(src.ctx, &count, &age), 0);
    ck_assert_uint_eq(count, 3);
    ck_assert(age >= 0 && age < 60);

    n = src.fetch(src.ctx, 2, &ev);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(ev[0].topic, TOPIC_CART_EVENTS);
    ck_assert_uint_eq(ev[0].key_len, strlen(u));
    ck_assert_int_eq(memcmp(ev[0].key, u, strlen(u)), 0);
    ck_assert_ptr_nonnull(strstr(ev[0].value, a.id));
    ck_assert_ptr_nonnull(strstr(ev[1].value, b.id));
    /* Only the first is published: the second comes again, first, with the third. */
    marks[0] = &ev[0];
    ck_assert_int_eq(src.mark_published(src.ctx, marks, 1), 0);
    src.release(src.ctx, ev, 2);
    n = src.fetch(src.ctx, 10, &ev);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(ev[0].value, b.id));
    ck_assert_ptr_nonnull(strstr(ev[1].value, EV_CART_ITEM_REMOVED));
    marks[0] = &ev[0];
    marks[1] = &ev[1];
    ck_assert_int_eq(src.mark_published(src.ctx, marks, 2), 0);
    src.release(src.ctx, ev, 2);

    ck_assert_int_eq(src.fetch(src.ctx, 10, &ev), 0);
    src.release(src.ctx, ev, 0);
    ck_assert_int_eq(src.backlog(src.ctx, &count, &age), 0);
    ck_assert_uint_eq(count, 0);
    ck_assert(age == 0);
    ck_assert_int_eq(raw_int("XLEN %s", k("outbox", "")), 0);
}
END_TEST

START_TEST(what_a_crashed_relay_left_pending_is_taken_over)
{
    char u[40];
    struct cart_product a = product("Kettle", 2500, "EUR");
    struct svc_outbox_source src;
    struct svc_outbox_event *ev;
    struct svc_outbox_event *marks[1];
    struct cart c;
    redisContext *r;
    redisReply *rep, *claim;
    char entry[64];

    known_user(u);
    cart_redis_outbox_source(rd, &src);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);

    /* Another relay reads it, then dies. */
    r = raw();
    rep = redisCommand(r, "XREADGROUP GROUP relay crashed COUNT 10 STREAMS %s >", k("outbox", ""));
    ck_assert_msg(rep != NULL && rep->type == REDIS_REPLY_ARRAY, "XREADGROUP");
    snprintf(entry, sizeof(entry), "%s", rep->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(rep);

    /* Freshly pending: that relay may still be alive. */
    ck_assert_int_eq(src.fetch(src.ctx, 10, &ev), 0);
    src.release(src.ctx, ev, 0);

    /* A minute without news of it. */
    claim =
        redisCommand(r, "XCLAIM %s relay crashed 0 %s IDLE 60000 JUSTID", k("outbox", ""), entry);
    ck_assert_msg(claim != NULL && claim->type == REDIS_REPLY_ARRAY && claim->elements == 1,
                  "XCLAIM");
    freeReplyObject(claim);
    ck_assert_int_eq(src.fetch(src.ctx, 10, &ev), 1);
    ck_assert_str_eq(ev[0].handle, entry);
    ck_assert_ptr_nonnull(strstr(ev[0].value, a.id));
    marks[0] = &ev[0];
    ck_assert_int_eq(src.mark_published(src.ctx, marks, 1), 0);
    src.release(src.ctx, ev, 1);

    rep = redisCommand(r, "XPENDING %s relay", k("outbox", ""));
    ck_assert_msg(rep != NULL && rep->type == REDIS_REPLY_ARRAY, "XPENDING");
    ck_assert_int_eq(rep->element[0]->integer, 0);
    freeReplyObject(rep);
    redisFree(r);
    ck_assert_int_eq(raw_int("XLEN %s", k("outbox", "")), 0);
}
END_TEST

/* ---- read models --------------------------------------------------------------------------- */

START_TEST(unknown_and_deleted_users)
{
    char u[40], stranger[40], id[40];
    struct cart_product a = product("Kettle", 2500, "EUR");
    struct cart_order o;
    struct cart c;
    bool replayed;

    svc_uuid_v4_str(stranger);
    svc_uuid_v4_str(id);
    ck_assert_int_eq(st.get(st.ctx, arena, stranger, &c), CART_EUSER_UNKNOWN);
    ck_assert_int_eq(st.put_line(st.ctx, arena, stranger, &a, 1, NULL, &c), CART_EUSER_UNKNOWN);
    ck_assert_int_eq(st.checkout(st.ctx, arena, stranger, "k", id, NULL, &o, &replayed),
                     CART_EUSER_UNKNOWN);

    known_user(u);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);
    ck_assert_int_eq(st.checkout(st.ctx, arena, u, "k", id, NULL, &o, &replayed), 0);
    ck_assert_int_eq(raw_int("EXISTS %s", k("cart:", u)), 1);
    ck_assert_int_eq(st.user_deleted(st.ctx, new_event_id(), u, 2), 0);
    ck_assert_int_eq(raw_int("EXISTS %s", k("cart:", u)), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), CART_EUSER_UNKNOWN);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), CART_EUSER_UNKNOWN);
    /* A late user.updated does not bring the user back. */
    ck_assert_int_eq(st.user_upsert(st.ctx, new_event_id(), u, 3), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), CART_EUSER_UNKNOWN);
    /* The order stays, with its ids; its Idempotency-Key is gone. */
    ck_assert_int_eq(st.order_get(st.ctx, arena, id, &o), 0);
    ck_assert_str_eq(o.user_id, u);
    {
        char kk[160];

        snprintf(kk, sizeof(kk), "checkout-key:%s:k", u);
        ck_assert_int_eq(raw_int("EXISTS %s", k("", kk)), 0);
    }
}
END_TEST

START_TEST(a_price_change_reprices_and_a_deleted_product_leaves)
{
    char u1[40], u2[40];
    struct cart_product a = product("Kettle", 2500, "EUR"), b = product("Mug", 800, "EUR");
    struct cart_product news;
    struct cart c;
    int64_t later = svc_wall_ms() + 1000;
    const struct cart_line *l;

    known_user(u1);
    known_user(u2);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u1, &a, 2, NULL, &c), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u1, &b, 1, NULL, &c), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u2, &a, 1, NULL, &c), 0);

    news = a;
    news.price_cents = 2000;
    ck_assert_int_eq(st.product_upsert(st.ctx, new_event_id(), &news, later), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u1, &c), 0);
    l = line_of(&c, a.id);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->price_cents, 2000);
    ck_assert(l->repriced);
    ck_assert(!line_of(&c, b.id)->repriced);
    ck_assert_int_eq(c.total_cents, 2 * 2000 + 800);
    ck_assert_int_eq(st.get(st.ctx, arena, u2, &c), 0);
    ck_assert_int_eq(line_of(&c, a.id)->price_cents, 2000);

    /* Older news changes nothing. */
    news.price_cents = 9900;
    ck_assert_int_eq(st.product_upsert(st.ctx, new_event_id(), &news, later - 500), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u1, &c), 0);
    ck_assert_int_eq(line_of(&c, a.id)->price_cents, 2000);

    /* Putting the line again takes product-svc's price: no longer marked. */
    a.price_cents = 2000;
    ck_assert_int_eq(st.put_line(st.ctx, arena, u1, &a, 2, NULL, &c), 0);
    ck_assert(!line_of(&c, a.id)->repriced);

    ck_assert_int_eq(st.product_deleted(st.ctx, new_event_id(), a.id), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u1, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.lines[0].product_id, b.id);
    ck_assert_int_eq(st.get(st.ctx, arena, u2, &c), 0);
    ck_assert_uint_eq(c.n, 0);
    /* A late product.updated does not bring it back into the read model's carts either. */
    ck_assert_int_eq(st.product_upsert(st.ctx, new_event_id(), &news, later + 5000), 0);
    ck_assert_int_eq(raw_int("EXISTS %s", k("product-carts:", a.id)), 0);
}
END_TEST

START_TEST(a_replayed_event_changes_nothing)
{
    char u[40], reg[40], prod_ev[40];
    struct cart_product a = product("Kettle", 2500, "EUR");
    struct cart_product news;
    struct cart c;
    int64_t later = svc_wall_ms() + 1000;

    svc_uuid_v4_str(u);
    svc_uuid_v4_str(reg);
    svc_uuid_v4_str(prod_ev);
    ck_assert_int_eq(st.user_upsert(st.ctx, reg, u, 1), 0);
    ck_assert_int_eq(st.put_line(st.ctx, arena, u, &a, 1, NULL, &c), 0);

    /* The same event id, whatever it now claims, is not applied twice. */
    ck_assert_int_eq(st.user_deleted(st.ctx, reg, u, 9), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 1);

    news = a;
    news.price_cents = 2000;
    ck_assert_int_eq(st.product_upsert(st.ctx, prod_ev, &news, later), 0);
    news.price_cents = 1000;
    ck_assert_int_eq(st.product_upsert(st.ctx, prod_ev, &news, later + 1000), 0);
    ck_assert_int_eq(st.product_deleted(st.ctx, prod_ev, a.id), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, u, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.lines[0].price_cents, 2000);
}
END_TEST

START_TEST(wrong_credentials_and_no_redis)
{
    const char *url = testenv_get("cart-svc", "REDIS_URL");
    char bad[512];
    const char *at = strchr(url, '@');
    struct cart_redis_opts o = {.url = bad, .timeout_ms = 2000, .prefix = prefix};
    struct cart_redis *r = NULL;

    snprintf(bad, sizeof(bad), "redis://cart_svc:not-the-password%s", at);
    ck_assert_int_eq(cart_redis_new(&o, &r), SVC_EUNAUTH);
    o.url = "redis://cart_svc:pw@127.0.0.1:1/0";
    ck_assert_int_eq(cart_redis_new(&o, &r), SVC_EUNAVAILABLE);
    o.url = "http://127.0.0.1:6379";
    ck_assert_int_eq(cart_redis_new(&o, &r), SVC_EINVAL);
    o.url = "redis://127.0.0.1:notaport";
    ck_assert_int_eq(cart_redis_new(&o, &r), SVC_EINVAL);
    ck_assert_ptr_null(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cart_store");
    TCase *tc = tcase_create("redis");

    tcase_add_unchecked_fixture(tc, run_setup, run_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lines_put_changed_removed_and_the_total);
    tcase_add_test(tc, a_hundred_lines_at_most);
    tcase_add_test(tc, one_currency_per_cart);
    tcase_add_test(tc, twenty_concurrent_writers_lose_no_line);
    tcase_add_test(tc, every_write_refreshes_the_ttl);
    tcase_add_test(tc, checkout_creates_the_order_and_the_key_replays);
    tcase_add_test(tc, placed_empties_the_ordered_lines_and_announces_it);
    tcase_add_test(tc, failed_is_announced_with_the_step_and_reason);
    tcase_add_test(tc, orders_page_newest_first_without_repeats);
    tcase_add_test(tc, the_relay_takes_events_in_order_and_they_leave);
    tcase_add_test(tc, what_a_crashed_relay_left_pending_is_taken_over);
    tcase_add_test(tc, unknown_and_deleted_users);
    tcase_add_test(tc, a_price_change_reprices_and_a_deleted_product_leaves);
    tcase_add_test(tc, a_replayed_event_changes_nothing);
    tcase_add_test(tc, wrong_credentials_and_no_redis);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

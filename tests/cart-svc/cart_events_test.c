/*
 * cart-svc's consumer of user-events and product-events (cart_handle_record) against the real
 * Redis of deploy/local (integration): records as user-svc and product-svc publish them, built
 * here and handed to the handler without a broker, and what a shopper then observes of the
 * read models through cart.h's store: whether their cart answers, and the lines' prices.
 *
 * Each test opens the store under a key prefix of its own (cart_redis_opts.prefix), so the
 * running cart-svc's data is never touched, and deletes its keys at the end.
 */
#include "testenv.h"

#include "cart_svc.h"
#include "svc/arena.h"
#include "svc/buf.h"
#include "svc/error.h"
#include "svc/kafka.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static struct cart_redis *redis;
static struct cart_store st;
static struct svc_arena *arena;
static struct svc_buf reason;

static void setup(void)
{
    const char *url = testenv_get("cart-svc", "REDIS_URL");
    struct cart_redis_opts o = {
        .url = url, .pool_size = 2, .timeout_ms = 5000, .prefix = testenv_unique("test:cartev")};
    int rc;

    testenv_require_port("redis", testenv_port_of_url(url));
    rc = cart_redis_new(&o, &redis);
    ck_assert_msg(rc == 0, "redis: cart-svc store does not open: %s", svc_err_name(rc));
    cart_redis_store(redis, &st);
    arena = svc_arena_new();
    svc_buf_init(&reason, 4096);
}

static void teardown(void)
{
    svc_buf_release(&reason);
    svc_arena_free(arena);
    if (redis != NULL) {
        cart_redis_drop_all(redis);
        cart_redis_free(redis);
    }
    redis = NULL;
}

static const char *new_id(void)
{
    char id[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(id);
    return svc_arena_strdup(arena, id);
}

static const char *rfc3339(int64_t ms)
{
    char t[SVC_RFC3339_MS_LEN + 1];

    svc_rfc3339_format_ms(ms, t);
    return svc_arena_strdup(arena, t);
}

/* A CloudEvent as the owners publish it: SOURCE, TYPE, subject SUBJECT, DATA (JSON). */
static const char *envelope(const char *ev_id, const char *source, const char *type,
                            const char *subject, const char *data)
{
    return svc_arena_printf(arena,
                            "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\",\"type\":"
                            "\"%s\",\"subject\":\"%s\",\"time\":\"%s\",\"datacontenttype\":"
                            "\"application/json\",\"data\":%s}",
                            ev_id, source, type, subject, rfc3339(svc_wall_ms()), data);
}

static enum svc_ev_result handle_on(const char *topic, const char *json)
{
    struct svc_kafka_record rec = {
        .topic = topic, .value = json, .value_len = strlen(json), .attempt = 1};

    svc_buf_reset(&reason);
    return cart_handle_record(&rec, &reason, &st);
}

/* user-svc's user.registered / user.updated (TYPE) of USER at VERSION, under EV_ID. */
static enum svc_ev_result user_event(const char *ev_id, const char *type, const char *user,
                                     int64_t version)
{
    const char *now = rfc3339(svc_wall_ms());
    const char *data =
        strcmp(type, "user.deleted") == 0
            ? svc_arena_printf(arena,
                               "{\"id\":\"%s\",\"status\":\"deleted\",\"version\":%" PRId64
                               ",\"deleted_at\":\"%s\"}",
                               user, version, now)
            : svc_arena_printf(arena,
                               "{\"id\":\"%s\",\"email\":\"%s@example.com\",\"name\":\"Shopper\","
                               "\"status\":\"active\",\"version\":%" PRId64
                               ",\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
                               user, user, version, now, now);

    return handle_on(TOPIC_USER_EVENTS, envelope(ev_id, "/user-svc", type, user, data));
}

/* product-svc's product.created / product.updated (TYPE) of PRODUCT, as of UPDATED_AT_MS. */
static enum svc_ev_result product_event(const char *type, const char *product, const char *name,
                                        int64_t price_cents, int64_t updated_at_ms)
{
    const char *data = svc_arena_printf(
        arena,
        "{\"id\":\"%s\",\"sku\":\"SKU-%.8s\",\"name\":\"%s\",\"category\":\"kitchen\","
        "\"tags\":[],\"price_cents\":%" PRId64 ",\"currency\":\"EUR\",\"stock\":10,"
        "\"reserved\":2,\"sold\":0,\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
        product, product, name, price_cents, rfc3339(updated_at_ms - 60000),
        rfc3339(updated_at_ms));

    return handle_on(TOPIC_PRODUCT_EVENTS, envelope(new_id(), "/product-svc", type, product, data));
}

static enum svc_ev_result product_deleted(const char *product)
{
    const char *data =
        svc_arena_printf(arena, "{\"id\":\"%s\",\"sku\":\"SKU-%.8s\",\"deleted_at\":\"%s\"}",
                         product, product, rfc3339(svc_wall_ms()));

    return handle_on(TOPIC_PRODUCT_EVENTS,
                     envelope(new_id(), "/product-svc", "product.deleted", product, data));
}

/* Puts QTY of PRODUCT at PRICE_CENTS (what product-svc's batch get would say) into USER's cart:
 * the store's answer. */
static int put(const char *user, const char *product, const char *name, int64_t price_cents,
               int64_t qty)
{
    struct cart_product p = {
        .name = name, .price_cents = price_cents, .currency = "EUR", .available = 50};
    struct cart c;

    snprintf(p.id, sizeof(p.id), "%s", product);
    return st.put_line(st.ctx, arena, user, &p, qty, NULL, &c);
}

static struct cart cart_of(const char *user)
{
    struct cart c;
    int rc = st.get(st.ctx, arena, user, &c);

    ck_assert_msg(rc == 0, "cart of '%s': %s", user, svc_err_name(rc));
    return c;
}

static const struct cart_line *line_of(const struct cart *c, const char *product)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->lines[i].product_id, product) == 0)
            return &c->lines[i];
    return NULL;
}

/* ---- user-events --------------------------------------------------------------------------- */

START_TEST(registered_user_gets_a_cart_and_a_replay_changes_nothing)
{
    const char *user = new_id(), *ev = new_id(), *kettle = new_id();
    struct cart c;

    /* Not heard of yet: no cart for them. */
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 1), CART_EUSER_UNKNOWN);

    ck_assert_int_eq(user_event(ev, "user.registered", user, 1), SVC_EV_DONE);
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 2), 0);

    /* The same event again (a redelivery): the cart is as it was. */
    ck_assert_int_eq(user_event(ev, "user.registered", user, 1), SVC_EV_DONE);
    c = cart_of(user);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.lines[0].quantity, 2);
    ck_assert_int_eq(c.total_cents, 2500);

    /* A rename is a newer version of a known user: still their cart. */
    ck_assert_int_eq(user_event(new_id(), "user.updated", user, 2), SVC_EV_DONE);
    ck_assert_uint_eq(cart_of(user).n, 1);
}
END_TEST

START_TEST(deleted_user_loses_the_cart_and_an_older_event_does_not_bring_them_back)
{
    const char *user = new_id(), *kettle = new_id(), *registered = new_id();
    struct cart c;

    ck_assert_int_eq(user_event(registered, "user.registered", user, 1), SVC_EV_DONE);
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 3), 0);

    ck_assert_int_eq(user_event(new_id(), "user.deleted", user, 3), SVC_EV_DONE);
    ck_assert_int_eq(st.get(st.ctx, arena, user, &c), CART_EUSER_UNKNOWN);
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 1), CART_EUSER_UNKNOWN);

    /* Overtaken events arriving late (an update of version 2, the registration replayed):
     * the deletion, newer, stands. */
    ck_assert_int_eq(user_event(new_id(), "user.updated", user, 2), SVC_EV_DONE);
    ck_assert_int_eq(user_event(registered, "user.registered", user, 1), SVC_EV_DONE);
    ck_assert_int_eq(st.get(st.ctx, arena, user, &c), CART_EUSER_UNKNOWN);
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 1), CART_EUSER_UNKNOWN);
}
END_TEST

/* ---- product-events ------------------------------------------------------------------------ */

START_TEST(price_change_reprices_cart_lines_and_an_older_one_does_not)
{
    const char *user = new_id(), *kettle = new_id(), *cup = new_id();
    int64_t t0 = svc_wall_ms() - 10000, t1;
    const struct cart_line *l;
    struct cart c;

    ck_assert_int_eq(user_event(new_id(), "user.registered", user, 1), SVC_EV_DONE);
    ck_assert_int_eq(product_event("product.created", kettle, "Steel Kettle", 1250, t0),
                     SVC_EV_DONE);
    ck_assert_int_eq(product_event("product.created", cup, "Tea Cup", 305, t0), SVC_EV_DONE);
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 2), 0);
    ck_assert_int_eq(put(user, cup, "Tea Cup", 305, 1), 0);
    c = cart_of(user);
    ck_assert(!line_of(&c, kettle)->repriced);
    ck_assert_int_eq(c.total_cents, 2 * 1250 + 305);

    /* The kettle gets dearer after the lines were snapshotted (a change from before would be
     * in the snapshot already): its line shows the new price, marked repriced; the cup's not. */
    t1 = svc_wall_ms() + 1000;
    ck_assert_int_eq(product_event("product.updated", kettle, "Steel Kettle", 1400, t1),
                     SVC_EV_DONE);
    c = cart_of(user);
    l = line_of(&c, kettle);
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(l->price_cents, 1400);
    ck_assert(l->repriced);
    ck_assert_int_eq(l->quantity, 2);
    l = line_of(&c, cup);
    ck_assert_int_eq(l->price_cents, 305);
    ck_assert(!l->repriced);
    ck_assert_int_eq(c.total_cents, 2 * 1400 + 305);

    /* An update from before that one, delivered late: the newer price stands. */
    ck_assert_int_eq(product_event("product.updated", kettle, "Steel Kettle", 999, t1 - 500),
                     SVC_EV_DONE);
    c = cart_of(user);
    ck_assert_int_eq(line_of(&c, kettle)->price_cents, 1400);
    ck_assert_int_eq(c.total_cents, 2 * 1400 + 305);
}
END_TEST

START_TEST(deleted_product_leaves_every_cart)
{
    const char *ann = new_id(), *bob = new_id(), *kettle = new_id(), *cup = new_id();
    struct cart c;

    ck_assert_int_eq(user_event(new_id(), "user.registered", ann, 1), SVC_EV_DONE);
    ck_assert_int_eq(user_event(new_id(), "user.registered", bob, 1), SVC_EV_DONE);
    ck_assert_int_eq(put(ann, kettle, "Steel Kettle", 1250, 1), 0);
    ck_assert_int_eq(put(ann, cup, "Tea Cup", 305, 4), 0);
    ck_assert_int_eq(put(bob, kettle, "Steel Kettle", 1250, 2), 0);

    ck_assert_int_eq(product_deleted(kettle), SVC_EV_DONE);
    c = cart_of(ann);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_ptr_null(line_of(&c, kettle));
    ck_assert_int_eq(line_of(&c, cup)->quantity, 4);
    ck_assert_int_eq(c.total_cents, 1220); /* 4 x 305 */
    ck_assert_uint_eq(cart_of(bob).n, 0);

    /* Delivered again: nothing more goes. */
    ck_assert_int_eq(product_deleted(kettle), SVC_EV_DONE);
    ck_assert_uint_eq(cart_of(ann).n, 1);
}
END_TEST

/* ---- what is not applied ------------------------------------------------------------------- */

START_TEST(invalid_events_are_poison_with_a_reason_and_others_are_skipped)
{
    const char *user = new_id(), *kettle = new_id(), *ev = new_id();
    const char *now = rfc3339(svc_wall_ms());
    struct cart c;

    ck_assert_int_eq(user_event(new_id(), "user.registered", user, 1), SVC_EV_DONE);
    ck_assert_int_eq(put(user, kettle, "Steel Kettle", 1250, 1), 0);

    ck_assert_int_eq(handle_on(TOPIC_USER_EVENTS, "not json"), SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "not a CloudEvent"));

    /* A product update without its price. */
    ck_assert_int_eq(
        handle_on(TOPIC_PRODUCT_EVENTS,
                  envelope(ev, "/product-svc", "product.updated", kettle,
                           svc_arena_printf(arena,
                                            "{\"id\":\"%s\",\"name\":\"Steel Kettle\","
                                            "\"currency\":\"EUR\",\"stock\":1,\"reserved\":0,"
                                            "\"updated_at\":\"%s\"}",
                                            kettle, now))),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "'price_cents'"));
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), ev));

    /* A time that is not one. */
    ck_assert_int_eq(
        handle_on(TOPIC_PRODUCT_EVENTS,
                  envelope(new_id(), "/product-svc", "product.updated", kettle,
                           svc_arena_printf(arena,
                                            "{\"id\":\"%s\",\"name\":\"Steel Kettle\","
                                            "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1,"
                                            "\"reserved\":0,\"updated_at\":\"yesterday\"}",
                                            kettle))),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "product.updated"));

    /* More reserved than on hand: product-svc never says so. */
    ck_assert_int_eq(
        handle_on(TOPIC_PRODUCT_EVENTS,
                  envelope(new_id(), "/product-svc", "product.updated", kettle,
                           svc_arena_printf(arena,
                                            "{\"id\":\"%s\",\"name\":\"Steel Kettle\","
                                            "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1,"
                                            "\"reserved\":2,\"updated_at\":\"%s\"}",
                                            kettle, now))),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "not applied"));

    /* The data's user is not the subject (the Kafka key). */
    ck_assert_int_eq(
        handle_on(TOPIC_USER_EVENTS,
                  envelope(new_id(), "/user-svc", "user.deleted", new_id(),
                           svc_arena_printf(arena,
                                            "{\"id\":\"%s\",\"status\":\"deleted\",\"version\":9,"
                                            "\"deleted_at\":\"%s\"}",
                                            user, now))),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "subject"));

    /* A version that is not one. */
    ck_assert_int_eq(
        handle_on(TOPIC_USER_EVENTS,
                  envelope(new_id(), "/user-svc", "user.updated", user,
                           svc_arena_printf(arena, "{\"id\":\"%s\",\"version\":0}", user))),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "'version'"));

    /* Not the read models' business: done, nothing written. */
    ck_assert_int_eq(handle_on(TOPIC_USER_EVENTS, envelope(new_id(), "/user-svc", "wallet.credited",
                                                           user, "{\"x\":1}")),
                     SVC_EV_DONE);
    ck_assert_int_eq(
        handle_on(TOPIC_PRODUCT_EVENTS,
                  envelope(new_id(), "/product-svc", "stock.reserved", kettle, "{\"x\":1}")),
        SVC_EV_DONE);

    /* None of it touched the cart. */
    c = cart_of(user);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.lines[0].price_cents, 1250);
    ck_assert(!c.lines[0].repriced);
}
END_TEST

/* Redis away while consuming: RETRY, so the partition pauses and nothing is skipped. */
static int down_user_upsert(void *ctx, const char *e, const char *u, int64_t v)
{
    (void)ctx, (void)e, (void)u, (void)v;
    return SVC_EUNAVAILABLE;
}

static int down_product_deleted(void *ctx, const char *e, const char *p)
{
    (void)ctx, (void)e, (void)p;
    return SVC_EUNAVAILABLE;
}

START_TEST(store_unavailable_is_retry)
{
    struct cart_store down = {.user_upsert = down_user_upsert,
                              .product_deleted = down_product_deleted};
    const char *user = new_id(), *product = new_id();
    const char *reg = envelope(new_id(), "/user-svc", "user.registered", user,
                               svc_arena_printf(arena, "{\"id\":\"%s\",\"version\":1}", user));
    const char *del = envelope(new_id(), "/product-svc", "product.deleted", product,
                               svc_arena_printf(arena, "{\"id\":\"%s\"}", product));
    struct svc_kafka_record r1 = {
        .topic = TOPIC_USER_EVENTS, .value = reg, .value_len = strlen(reg), .attempt = 1};
    struct svc_kafka_record r2 = {
        .topic = TOPIC_PRODUCT_EVENTS, .value = del, .value_len = strlen(del), .attempt = 1};

    ck_assert_int_eq(cart_handle_record(&r1, &reason, &down), SVC_EV_RETRY);
    ck_assert_int_eq(cart_handle_record(&r2, &reason, &down), SVC_EV_RETRY);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cart_events");
    TCase *tc = tcase_create("redis");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, registered_user_gets_a_cart_and_a_replay_changes_nothing);
    tcase_add_test(tc, deleted_user_loses_the_cart_and_an_older_event_does_not_bring_them_back);
    tcase_add_test(tc, price_change_reprices_cart_lines_and_an_older_one_does_not);
    tcase_add_test(tc, deleted_product_leaves_every_cart);
    tcase_add_test(tc, invalid_events_are_poison_with_a_reason_and_others_are_skipped);
    tcase_add_test(tc, store_unavailable_is_retry);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

/*
 * cart-svc's outbox stream, end to end (integration): every change's event reaches the Kafka
 * topic cart-events, valid against schemas/events/, for a cart's life and both ends of a
 * checkout (placed and failed); and nothing is lost when the broker is stopped while carts are
 * written.
 *
 * The tests run the real cart-svc binary (next to the stack's own, a second replica on the same
 * Redis whose relay may publish some of the same events: duplicates are allowed, losses are
 * not) against the stack's user-svc and product-svc, and stop Kafka with deploy/local/stack.sh;
 * the broker is started again after them, also when they fail.
 */
#include "testconsume.h"
#include "testenv.h"
#include "testevents.h"
#include "testhttp.h"
#include "testproc.h"

#include "polyglot/events.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CART_SVC_BIN
#error "CART_SVC_BIN: the cart-svc binary"
#endif

static const char *brokers(void)
{
    const char *b = testenv_get("cart-svc", "KAFKA_BROKERS");
    char url[256];

    snprintf(url, sizeof(url), "kafka://%s", b);
    testenv_require_port("kafka", testenv_port_of_url(url));
    return b;
}

static void start_svc(struct testproc *p)
{
    static const char *const keys[] = {"REDIS_URL", "KAFKA_BROKERS", "PRODUCT_SVC_URL",
                                       "USER_SVC_URL"};
    static char vars[4][600];
    const char *env[] = {
        vars[0], vars[1], vars[2], vars[3], "OUTBOX_POLL=100ms", "SAGA_RESUME=250ms", NULL};

    for (size_t i = 0; i < 4; i++)
        snprintf(vars[i], sizeof(vars[i]), "%s=%s", keys[i], testenv_get("cart-svc", keys[i]));
    testproc_start(p, CART_SVC_BIN, "cart-svc", env);
}

static void kafka_back_up(void)
{
    if (teststack("up kafka") != 0)
        fprintf(stderr, "cart_outbox_test: could not start kafka again\n");
}

/* METHOD URL (from FMT) with a JSON BODY (may be NULL) and an optional header; the status,
 * and the body as JSON in *OUT when OUT is not NULL (NULL when empty; the caller drops it). */
static long call(json_t **out, const char *method, const char *body, const char *header,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static long call(json_t **out, const char *method, const char *body, const char *header,
                 const char *fmt, ...)
{
    char url[512];
    const char *hs[] = {header, NULL};
    struct testhttp_resp r;
    va_list ap;
    long status;

    va_start(ap, fmt);
    vsnprintf(url, sizeof(url), fmt, ap);
    va_end(ap);
    r = testhttp_request(method, url, header != NULL ? hs : NULL,
                         body != NULL ? "application/json" : NULL, body);
    status = r.status;
    if (out != NULL)
        *out = r.body != NULL && r.len > 0 ? json_loads(r.body, 0, NULL) : NULL;
    testhttp_resp_release(&r);
    return status;
}

static const char *svc_url(const char *key)
{
    return testenv_get("cart-svc", key);
}

/* A user registered at user-svc, credited with CENTS, and known to the cart-svc P (its read
 * model is fed by user-events: a PUT answers 404 user-not-known until then). */
static void new_user(const struct testproc *p, long long cents, const char *product_id,
                     char id[SVC_UUID_STR_LEN + 1])
{
    char u[SVC_UUID_STR_LEN + 1], body[256];
    json_t *j = NULL;
    long st = 0;

    svc_uuid_v4_str(u);
    snprintf(body, sizeof(body), "{\"email\":\"it.cart.%s@example.org\",\"name\":\"Cart Outbox\"}",
             u);
    ck_assert_int_eq(call(&j, "POST", body, NULL, "%s/v1/users", svc_url("USER_SVC_URL")), 201);
    snprintf(id, SVC_UUID_STR_LEN + 1, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    if (cents > 0) {
        svc_uuid_v4_str(u);
        snprintf(body, sizeof(body), "{\"credit_id\":\"%s\",\"amount_cents\":%lld}", u, cents);
        ck_assert_int_eq(call(NULL, "POST", body, NULL, "%s/v1/users/%s/wallet/credits",
                              svc_url("USER_SVC_URL"), id),
                         201);
    }
    for (int i = 0; i < 300; i++) {
        st = call(NULL, "PUT", "{\"quantity\":1}", NULL, "http://127.0.0.1:%d/v1/carts/%s/items/%s",
                  p->port, id, product_id);
        if (st == 200)
            return;
        svc_sleep_ms(100);
    }
    ck_abort_msg("cart-svc did not hear of user %s in 30 s (last PUT: %ld)", id, st);
}

static void new_product(long long price, long long stock, char id[SVC_UUID_STR_LEN + 1])
{
    char u[SVC_UUID_STR_LEN + 1], body[512];
    json_t *j = NULL;

    svc_uuid_v4_str(u);
    snprintf(body, sizeof(body),
             "{\"sku\":\"it-cart-%.13s\",\"name\":\"Outbox Teapot\",\"category\":\"it-cart\","
             "\"price_cents\":%lld,\"currency\":\"EUR\",\"stock\":%lld}",
             u, price, stock);
    ck_assert_int_eq(call(&j, "POST", body, NULL, "%s/v1/products", svc_url("PRODUCT_SVC_URL")),
                     201);
    snprintf(id, SVC_UUID_STR_LEN + 1, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
}

/* Checks out USER's cart on P and waits for the order to end: its final status. */
static const char *checkout(const struct testproc *p, const char *user)
{
    static char status[32];
    char key[64], u[SVC_UUID_STR_LEN + 1], order[SVC_UUID_STR_LEN + 1];
    json_t *j = NULL;

    svc_uuid_v4_str(u);
    snprintf(key, sizeof(key), "Idempotency-Key: %s", u);
    ck_assert_int_eq(
        call(&j, "POST", NULL, key, "http://127.0.0.1:%d/v1/carts/%s/checkout", p->port, user),
        202);
    snprintf(order, sizeof(order), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    for (int i = 0; i < 300; i++) {
        ck_assert_int_eq(
            call(&j, "GET", NULL, NULL, "http://127.0.0.1:%d/v1/orders/%s", p->port, order), 200);
        snprintf(status, sizeof(status), "%s", json_string_value(json_object_get(j, "status")));
        json_decref(j);
        if (strcmp(status, "placed") == 0 || strcmp(status, "failed") == 0)
            return status;
        svc_sleep_ms(100);
    }
    ck_abort_msg("order %s still %s after 30 s", order, status);
    return status;
}

/* The users of a test and the event types each must see. */
struct expect {
    char users[8][SVC_UUID_STR_LEN + 1];
    size_t nusers;
    const char *types[32];
    const char *of[32];
    size_t n;
};

static void expect_event(struct expect *x, const char *type, const char *user)
{
    size_t i = 0;

    while (i < x->nusers && strcmp(x->users[i], user) != 0)
        i++;
    if (i == x->nusers)
        snprintf(x->users[x->nusers++], SVC_UUID_STR_LEN + 1, "%s", user);
    x->types[x->n] = type;
    x->of[x->n++] = x->users[i];
}

static bool want_user(const char *subject, void *arg)
{
    const struct expect *x = arg;

    for (size_t i = 0; i < x->nusers; i++)
        if (strcmp(subject, x->users[i]) == 0)
            return true;
    return false;
}

/* How many of X's expected events are not (yet) among C's: each expected entry needs its own
 * event (two cart.item_added of one user need two). */
static size_t missing(const struct testconsumed *c, const struct expect *x)
{
    size_t n = 0;
    bool *used = calloc(c->n + 1, sizeof(*used));

    ck_assert_ptr_nonnull(used);
    for (size_t t = 0; t < x->n; t++) {
        bool found = false;

        for (size_t i = 0; i < c->n && !found; i++)
            if (!used[i] && strcmp(c->v[i].type, x->types[t]) == 0 &&
                strcmp(c->v[i].subject, x->of[t]) == 0 && !testconsume_has(c, i, c->v[i].id))
                found = used[i] = true;
        n += !found;
    }
    free(used);
    return n;
}

static bool all_arrived(const struct testconsumed *c, void *arg)
{
    return missing(c, arg) == 0;
}

START_TEST(a_cart_and_both_ends_of_a_checkout_are_published_valid)
{
    static struct expect x;
    char product[SVC_UUID_STR_LEN + 1], rich[SVC_UUID_STR_LEN + 1], poor[SVC_UUID_STR_LEN + 1];
    int64_t since = svc_wall_ms() - 2000;
    struct testconsumed got;
    struct testproc svc;
    const char **payloads;
    char out[4096];
    int status;

    memset(&x, 0, sizeof(x));
    start_svc(&svc);
    new_product(1500, 50, product);
    new_user(&svc, 10000, product, rich); /* one line put */
    new_user(&svc, 0, product, poor);     /* one line put, nothing to pay with */
    ck_assert_int_eq(call(NULL, "DELETE", NULL, NULL, "http://127.0.0.1:%d/v1/carts/%s/items/%s",
                          svc.port, rich, product),
                     200);
    ck_assert_int_eq(call(NULL, "PUT", "{\"quantity\":2}", NULL,
                          "http://127.0.0.1:%d/v1/carts/%s/items/%s", svc.port, rich, product),
                     200);
    ck_assert_str_eq(checkout(&svc, rich), "placed");
    ck_assert_str_eq(checkout(&svc, poor), "failed");

    expect_event(&x, EV_CART_ITEM_ADDED, rich);
    expect_event(&x, EV_CART_ITEM_REMOVED, rich);
    expect_event(&x, EV_CART_ITEM_ADDED, rich);
    expect_event(&x, EV_CHECKOUT_STARTED, rich);
    expect_event(&x, EV_ORDER_PLACED, rich);
    expect_event(&x, EV_CART_ITEM_ADDED, poor);
    expect_event(&x, EV_CHECKOUT_STARTED, poor);
    expect_event(&x, EV_ORDER_FAILED, poor);
    testconsume(brokers(), TOPIC_CART_EVENTS, since, want_user, all_arrived, &x, 60, &got);
    ck_assert_msg(missing(&got, &x) == 0, "%zu of %zu events never arrived", missing(&got, &x),
                  x.n);
    payloads = calloc(got.n, sizeof(*payloads));
    ck_assert_ptr_nonnull(payloads);
    for (size_t i = 0; i < got.n; i++)
        payloads[i] = got.v[i].payload;
    status = testevents_validate(payloads, got.n, out, sizeof(out));
    ck_assert_msg(status == 0, "validator exit %d: %s", status, out);
    free(payloads);
    testconsume_release(&got);
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
}
END_TEST

START_TEST(carts_written_while_the_broker_is_down_are_published_after)
{
    enum { N = 20 };
    static struct expect x;
    char product[SVC_UUID_STR_LEN + 1], user[SVC_UUID_STR_LEN + 1];
    int64_t since = svc_wall_ms() - 2000;
    struct testconsumed got;
    struct testproc svc;
    double backlog = -1;

    memset(&x, 0, sizeof(x));
    start_svc(&svc);
    new_product(100, 10, product);
    new_user(&svc, 0, product, user);
    expect_event(&x, EV_CART_ITEM_ADDED, user);
    ck_assert_msg(teststack("stop kafka") == 0, "stack.sh stop kafka failed");
    /* Writes need only Redis: all succeed, and the service stays ready. */
    for (int i = 0; i < N; i++) {
        char body[32];

        snprintf(body, sizeof(body), "{\"quantity\":%d}", 1 + i % 9);
        ck_assert_int_eq(call(NULL, "PUT", body, NULL, "http://127.0.0.1:%d/v1/carts/%s/items/%s",
                              svc.port, user, product),
                         200);
        expect_event(&x, EV_CART_ITEM_ADDED, user);
    }
    ck_assert_int_eq(testproc_get(&svc, "/readyz", NULL), 200);
    for (int i = 0; i < 200 && backlog < N; i++) {
        svc_sleep_ms(100);
        backlog = testproc_metric(&svc, "outbox_backlog{outbox=\"cart-svc\"}");
    }
    ck_assert_msg(backlog >= N, "outbox_backlog is %g with %d events pending", backlog, N);

    ck_assert_msg(teststack("up kafka") == 0, "stack.sh up kafka failed");
    testconsume(brokers(), TOPIC_CART_EVENTS, since, want_user, all_arrived, &x, 90, &got);
    ck_assert_msg(missing(&got, &x) == 0,
                  "%zu of %zu events never arrived after the broker came back", missing(&got, &x),
                  x.n);
    testconsume_release(&got);
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cart_outbox");
    TCase *relay = tcase_create("relay");
    TCase *faults = tcase_create("faults");

    tcase_set_timeout(relay, 180);
    tcase_add_test(relay, a_cart_and_both_ends_of_a_checkout_are_published_valid);
    suite_add_tcase(s, relay);
    tcase_add_checked_fixture(faults, kafka_back_up, NULL);
    tcase_add_unchecked_fixture(faults, NULL, kafka_back_up);
    tcase_set_timeout(faults, 180);
    tcase_add_test(faults, carts_written_while_the_broker_is_down_are_published_after);
    suite_add_tcase(s, faults);
    return testenv_run(s);
}

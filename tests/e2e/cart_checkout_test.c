/*
 * A purchase end to end (e2e): user-svc, product-svc, cart-svc, Kafka and message-svc as
 * `make up` runs them, driven only through their public APIs.
 *
 *   register through user-svc        -> the welcome message is in the inbox (message-svc)
 *   credit the wallet (user-svc)     -> the balance
 *   create a product (product-svc)   -> found by a full-text search
 *   add two units to the cart        -> once cart-svc has heard of the user (user-events),
 *                                       the line with the product's price and the total
 *   check out (Idempotency-Key)      -> 202 and the order's URL; the same key again is the
 *                                       same order
 *   the saga                         -> the order PLACED; the wallet charged the total; the
 *                                       units sold at product-svc, none left reserved; the
 *                                       cart empty
 *   order.placed on cart-events      -> the order confirmation in the user's inbox, with the
 *                                       line and the total
 *   analytics-svc (the read model)   -> the order.placed in /v1/events; its total added to its
 *                                       minute of /v1/revenue and to /v1/summary's orders
 *                                       placed and revenue
 *
 * Every wait polls with a deadline, so a broken flow fails in bounded time with what it saw.
 */
#include "testenv.h"
#include "testhttp.h"

#include "svc/time.h"
#include "svc/uuid.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long one event may take from its owner to its consumer's API, and the saga to finish. */
#define DEADLINE_MS 30000

/* How long the order may take to show in analytics-svc's answers: its goal is a second (p99,
 * bench/analytics_svc); the bound leaves room for a busy machine and a batch in flight. */
#define ANALYTICS_DEADLINE_MS 30000

/* A topic created after its consumer subscribed: lib's consumers refresh metadata every
 * second, then a rebalance (a few seconds). */
#define FIRST_TOPIC_MS 20000

#define PRICE_CENTS  1250
#define QUANTITY     2
#define STOCK        5
#define CREDIT_CENTS 10000

static char user_url[128], product_url[128], cart_url[128], msg_url[128], an_url[128];

static const char *base_of(const char *svc, char *out, size_t cap)
{
    const char *port = testenv_get(svc, "HTTP_PORT");

    testenv_require_port(svc, (int)strtol(port, NULL, 10));
    snprintf(out, cap, "http://127.0.0.1:%s", port);
    return out;
}

static void urls(void)
{
    base_of("user-svc", user_url, sizeof(user_url));
    base_of("product-svc", product_url, sizeof(product_url));
    base_of("cart-svc", cart_url, sizeof(cart_url));
    base_of("message-svc", msg_url, sizeof(msg_url));
    base_of("analytics-svc", an_url, sizeof(an_url));
}

/* BASE + the printf-style path, in a static buffer per call site slot (four at once). */
static const char *url(const char *base, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *url(const char *base, const char *fmt, ...)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    size_t n = (size_t)snprintf(b, 512, "%s", base);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b + n, 512 - n, fmt, ap);
    va_end(ap);
    return b;
}

static json_t *body_json(const struct testhttp_resp *r)
{
    json_error_t err;
    json_t *v = json_loads(r->body != NULL ? r->body : "", 0, &err);

    ck_assert_msg(v != NULL, "response is not JSON (%s): %s", err.text, r->body);
    return v;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "member '%s' is not an integer", key);
    return (long long)json_integer_value(v);
}

/* A request that must answer WANT; its body as JSON (the caller decrefs). */
static json_t *call(const char *method, const char *u, const char *const *headers, const char *body,
                    long want, struct testhttp_resp *keep)
{
    struct testhttp_resp r =
        testhttp_request(method, u, headers, body != NULL ? "application/json" : NULL, body);
    json_t *v;

    ck_assert_msg(r.status == want, "%s %s: HTTP %ld (expected %ld) %s %s", method, u, r.status,
                  want, r.error, r.body != NULL ? r.body : "");
    v = body_json(&r);
    if (keep != NULL)
        *keep = r;
    else
        testhttp_resp_release(&r);
    return v;
}

/* ---- the steps ----------------------------------------------------------------------------- */

static void register_user(const char *name, char id[64])
{
    char body[512];
    json_t *u;

    snprintf(body, sizeof(body), "{\"email\":\"%s@example.com\",\"name\":\"%s\"}",
             testenv_unique("e2ecart"), name);
    u = call("POST", url(user_url, "/v1/users"), NULL, body, 201, NULL);
    snprintf(id, 64, "%s", jstr(u, "id"));
    json_decref(u);
}

/* The first message of USER's inbox whose subject starts with SUBJECT, waited for; the caller
 * decrefs. */
static json_t *wait_message(const char *user, const char *subject, int64_t wait_ms)
{
    int64_t deadline = svc_now_ms() + wait_ms;
    char last[1024] = "";

    for (;;) {
        struct testhttp_resp r = testhttp_request(
            "GET", url(msg_url, "/v1/users/%s/messages?limit=100", user), NULL, NULL, NULL);

        if (r.status == 200) {
            json_t *page = body_json(&r), *items = json_object_get(page, "items"), *m;
            size_t i;

            json_array_foreach(items, i, m)
            {
                const char *s = jstr(m, "subject");

                if (s != NULL && strncmp(s, subject, strlen(subject)) == 0 &&
                    strcmp(jstr(m, "sender"), "system") == 0) {
                    json_incref(m);
                    json_decref(page);
                    testhttp_resp_release(&r);
                    return m;
                }
            }
            json_decref(page);
        }
        snprintf(last, sizeof(last), "HTTP %ld %s%s", r.status, r.error,
                 r.body != NULL ? r.body : "");
        testhttp_resp_release(&r);
        ck_assert_msg(svc_now_ms() < deadline,
                      "no message '%s...' in the inbox of '%s' in time; last answer: %s", subject,
                      user, last);
        svc_sleep_ms(100);
    }
}

static void credit(const char *user, long long cents)
{
    char body[256], credit_id[SVC_UUID_STR_LEN + 1];
    json_t *c;

    svc_uuid_v4_str(credit_id);
    snprintf(body, sizeof(body), "{\"credit_id\":\"%s\",\"amount_cents\":%lld}", credit_id, cents);
    c = call("POST", url(user_url, "/v1/users/%s/wallet/credits", user), NULL, body, 201, NULL);
    json_decref(c);
}

static long long balance(const char *user)
{
    json_t *w = call("GET", url(user_url, "/v1/users/%s/wallet", user), NULL, NULL, 200, NULL);
    long long b = jint(w, "balance_cents");

    json_decref(w);
    return b;
}

/* A product of its own (a unique SKU and a unique word in its name, to search for). */
static void create_product(const char *word, char id[64])
{
    char body[512];
    json_t *p;

    snprintf(body, sizeof(body),
             "{\"sku\":\"E2E-%s\",\"name\":\"Kettle %s\",\"category\":\"e2e\","
             "\"description\":\"a kettle for the e2e purchase\",\"price_cents\":%d,"
             "\"currency\":\"EUR\",\"stock\":%d}",
             word, word, PRICE_CENTS, STOCK);
    p = call("POST", url(product_url, "/v1/products"), NULL, body, 201, NULL);
    snprintf(id, 64, "%s", jstr(p, "id"));
    json_decref(p);
}

/* Searches WORD until the product ID is the hit (the engine refreshes every second). */
static void search_finds(const char *word, const char *id)
{
    int64_t deadline = svc_now_ms() + DEADLINE_MS;
    char last[1024] = "";

    for (;;) {
        struct testhttp_resp r = testhttp_request(
            "GET", url(product_url, "/v1/products?q=%s&limit=5", word), NULL, NULL, NULL);

        if (r.status == 200) {
            json_t *page = body_json(&r), *items = json_object_get(page, "items");
            json_t *first = json_array_get(items, 0);
            bool found =
                first != NULL && jstr(first, "id") != NULL && strcmp(jstr(first, "id"), id) == 0;

            json_decref(page);
            if (found) {
                testhttp_resp_release(&r);
                return;
            }
        }
        snprintf(last, sizeof(last), "HTTP %ld %s%s", r.status, r.error,
                 r.body != NULL ? r.body : "");
        testhttp_resp_release(&r);
        ck_assert_msg(svc_now_ms() < deadline, "search for '%s' does not find '%s'; last: %s", word,
                      id, last);
        svc_sleep_ms(200);
    }
}

/* PUT the line; cart-svc knows the user once it has consumed user.registered, so a 404
 * user-not-known is waited out (and nothing else). The cart as answered. */
static json_t *add_to_cart(const char *user, const char *product, int qty)
{
    int64_t deadline = svc_now_ms() + DEADLINE_MS;
    char body[64];

    snprintf(body, sizeof(body), "{\"quantity\":%d}", qty);
    for (;;) {
        struct testhttp_resp r =
            testhttp_request("PUT", url(cart_url, "/v1/carts/%s/items/%s", user, product), NULL,
                             "application/json", body);
        json_t *c;

        if (r.status == 200) {
            c = body_json(&r);
            testhttp_resp_release(&r);
            return c;
        }
        ck_assert_msg(r.status == 404 && r.body != NULL && strstr(r.body, "user-not-known"),
                      "PUT cart line: HTTP %ld %s %s", r.status, r.error,
                      r.body != NULL ? r.body : "");
        ck_assert_msg(svc_now_ms() < deadline,
                      "cart-svc still does not know user '%s' after %d ms: %s", user, DEADLINE_MS,
                      r.body);
        testhttp_resp_release(&r);
        svc_sleep_ms(100);
    }
}

/* POST checkout with KEY: the order, and its Location in LOC. */
static json_t *checkout(const char *user, const char *key, char *loc, size_t cap)
{
    char h[128];
    const char *headers[] = {h, NULL};
    struct testhttp_resp r;
    json_t *o;

    snprintf(h, sizeof(h), "Idempotency-Key: %s", key);
    o = call("POST", url(cart_url, "/v1/carts/%s/checkout", user), headers, NULL, 202, &r);
    ck_assert_msg(testhttp_header(&r, "Location", loc, cap) != NULL, "checkout: no Location");
    testhttp_resp_release(&r);
    return o;
}

/* Polls the order until it is placed or failed; the order (the caller decrefs). */
static json_t *wait_order_done(const char *order_id)
{
    int64_t deadline = svc_now_ms() + DEADLINE_MS;

    for (;;) {
        json_t *o = call("GET", url(cart_url, "/v1/orders/%s", order_id), NULL, NULL, 200, NULL);
        const char *status = jstr(o, "status");

        if (status != NULL && (strcmp(status, "placed") == 0 || strcmp(status, "failed") == 0))
            return o;
        ck_assert_msg(svc_now_ms() < deadline, "order '%s' still '%s' after %d ms", order_id,
                      status, DEADLINE_MS);
        json_decref(o);
        svc_sleep_ms(100);
    }
}

/* Whether the consumer of BASE has partitions of TOPIC assigned (its lag series exist). */
static bool consumes(const char *base, const char *topic)
{
    struct testhttp_resp r = testhttp_call("GET", url(base, "/metrics"), NULL, NULL, NULL);
    char series[128];
    bool yes;

    snprintf(series, sizeof(series), "\nkafka_consumer_lag{topic=\"%s\"", topic);
    yes = r.status == 200 && strstr(r.body, series) != NULL;
    testhttp_resp_release(&r);
    return yes;
}

/* ---- analytics-svc ------------------------------------------------------------------------- */

/* What analytics-svc says about [FROM, TO) (RFC 3339): orders placed and revenue from
 * /v1/summary, and the minute series of /v1/revenue (owned: json_decref it). */
struct an_snapshot {
    long long orders, revenue;
    json_t *revenue_series;
};

static struct an_snapshot an_snapshot(const char *from, const char *to)
{
    struct an_snapshot f;
    json_t *s;

    s = call("GET", url(an_url, "/v1/summary?from=%s&to=%s", from, to), NULL, NULL, 200, NULL);
    f.orders = jint(s, "orders_placed");
    f.revenue = jint(s, "revenue_cents");
    json_decref(s);
    f.revenue_series =
        call("GET", url(an_url, "/v1/revenue?from=%s&to=%s&interval=minute", from, to), NULL, NULL,
             200, NULL);
    return f;
}

/* The revenue of the minute starting at MINUTE_MS in the snapshot's series (the series is
 * dense: the minute must be there). */
static long long an_minute_revenue(const struct an_snapshot *f, int64_t minute_ms)
{
    char t[SVC_RFC3339_MS_LEN + 1];
    json_t *pt;
    size_t i;

    svc_rfc3339_format_ms(minute_ms, t);
    json_array_foreach(json_object_get(f->revenue_series, "points"), i, pt)
    {
        if (jstr(pt, "t") != NULL && strcmp(jstr(pt, "t"), t) == 0)
            return jint(pt, "revenue_cents");
    }
    ck_abort_msg("no point '%s' in the revenue series", t);
    return -1;
}

/* The event time (ms) of ORDER's order.placed in analytics-svc's /v1/events (its subject is the
 * user), waited for. */
static int64_t wait_analytics_event(const char *user, const char *order)
{
    int64_t deadline = svc_now_ms() + ANALYTICS_DEADLINE_MS, t_ms;
    char last[1024] = "";

    for (;;) {
        struct testhttp_resp r = testhttp_request(
            "GET", url(an_url, "/v1/events?type=order.placed&subject=%s&limit=100", user), NULL,
            NULL, NULL);

        if (r.status == 200) {
            json_t *page = body_json(&r), *e;
            size_t i;

            json_array_foreach(json_object_get(page, "events"), i, e)
            {
                const char *o = jstr(json_object_get(e, "data"), "order_id");

                if (o != NULL && strcmp(o, order) == 0 && jstr(e, "time") != NULL &&
                    svc_rfc3339_parse(jstr(e, "time"), &t_ms)) {
                    json_decref(page);
                    testhttp_resp_release(&r);
                    return t_ms;
                }
            }
            json_decref(page);
        }
        snprintf(last, sizeof(last), "HTTP %ld %s%s", r.status, r.error,
                 r.body != NULL ? r.body : "");
        testhttp_resp_release(&r);
        ck_assert_msg(svc_now_ms() < deadline,
                      "analytics-svc shows no order.placed of order '%s' after %d ms; last: %s",
                      order, ANALYTICS_DEADLINE_MS, last);
        svc_sleep_ms(100);
    }
}

/* ---- the flow ------------------------------------------------------------------------------ */

START_TEST(register_credit_search_add_checkout_confirmation)
{
    char user[64], product[64], loc[256], loc2[256], key[SVC_UUID_STR_LEN + 1], word[64];
    char want[128], an_from[SVC_RFC3339_MS_LEN + 1], an_to[SVC_RFC3339_MS_LEN + 1];
    json_t *cart, *line, *order, *again, *p, *msg;
    const char *order_id;
    int64_t cart_events_wait, an_from_ms, placed_ms, minute_ms;
    struct an_snapshot an_before, an_after;

    urls();
    register_user("Eve Shopper", user);
    msg = wait_message(user, "Welcome, ", DEADLINE_MS);
    json_decref(msg);

    /* On a fresh stack cart-events appears with cart-svc's first event, after message-svc
     * subscribed: it is found at the consumer's next metadata refresh (lib asks every second)
     * and assigned after a rebalance. */
    cart_events_wait = consumes(msg_url, "cart-events") ? DEADLINE_MS : FIRST_TOPIC_MS;

    credit(user, CREDIT_CENTS);
    ck_assert_int_eq(balance(user), CREDIT_CENTS);

    /* A word no other product has (SKUs are for ever): the search must find this one first. */
    snprintf(word, sizeof(word), "e2e%lldp%d", (long long)svc_wall_ms(), (int)getpid());
    create_product(word, product);
    search_finds(word, product);

    cart = add_to_cart(user, product, QUANTITY);
    ck_assert_int_eq(json_array_size(json_object_get(cart, "lines")), 1);
    line = json_array_get(json_object_get(cart, "lines"), 0);
    ck_assert_str_eq(jstr(line, "product_id"), product);
    ck_assert_int_eq(jint(line, "quantity"), QUANTITY);
    ck_assert_int_eq(jint(line, "price_cents"), PRICE_CENTS);
    ck_assert_int_eq(jint(cart, "total_cents"), (long long)QUANTITY * PRICE_CENTS);
    json_decref(cart);

    /* analytics-svc's figures of the minutes around the purchase, before it: the order must add
     * to them. Other orders placed meanwhile (the stack is shared) can only add more. */
    an_from_ms = svc_wall_ms() / 60000 * 60000 - 60000;
    svc_rfc3339_format_ms(an_from_ms, an_from);
    svc_rfc3339_format_ms(an_from_ms + 30 * INT64_C(60000), an_to);
    an_before = an_snapshot(an_from, an_to);

    svc_uuid_v4_str(key);
    order = checkout(user, key, loc, sizeof(loc));
    order_id = jstr(order, "id");
    ck_assert_ptr_nonnull(order_id);
    ck_assert_ptr_nonnull(strstr(loc, order_id));
    /* The same key again (a retry after a lost answer): the same order, nothing new. */
    again = checkout(user, key, loc2, sizeof(loc2));
    ck_assert_str_eq(jstr(again, "id"), order_id);
    ck_assert_str_eq(loc2, loc);
    json_decref(again);

    again = wait_order_done(order_id);
    ck_assert_msg(strcmp(jstr(again, "status"), "placed") == 0, "order '%s' failed: %s (at %s)",
                  order_id, jstr(again, "reason"), jstr(again, "failed_step"));
    ck_assert_int_eq(jint(again, "total_cents"), (long long)QUANTITY * PRICE_CENTS);
    json_decref(again);

    /* Each owner's side: money and stock moved once, the cart is empty. */
    ck_assert_int_eq(balance(user), CREDIT_CENTS - (long long)QUANTITY * PRICE_CENTS);
    p = call("GET", url(product_url, "/v1/products/%s", product), NULL, NULL, 200, NULL);
    ck_assert_int_eq(jint(p, "sold"), QUANTITY);
    ck_assert_int_eq(jint(p, "reserved"), 0);
    ck_assert_int_eq(jint(p, "stock"), STOCK - QUANTITY);
    json_decref(p);
    cart = call("GET", url(cart_url, "/v1/carts/%s", user), NULL, NULL, 200, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(cart, "lines")), 0);
    json_decref(cart);

    /* order.placed reached message-svc: the confirmation, with the line and the total. */
    msg = wait_message(user, "Order placed", cart_events_wait);
    ck_assert_ptr_nonnull(strstr(jstr(msg, "body"), order_id));
    snprintf(want, sizeof(want), "%d x Kettle %s at 12.50 EUR", QUANTITY, word);
    ck_assert_msg(strstr(jstr(msg, "body"), want) != NULL, "no '%s' in '%s'", want,
                  jstr(msg, "body"));
    ck_assert_ptr_nonnull(strstr(jstr(msg, "body"), "Total: 25.00 EUR"));
    json_decref(msg);

    /* order.placed reached analytics-svc: the order in /v1/events, and, written in the same
     * insert, its revenue in its minute of /v1/revenue and in /v1/summary. */
    placed_ms = wait_analytics_event(user, order_id);
    ck_assert_msg(placed_ms >= an_from_ms && placed_ms < an_from_ms + 30 * INT64_C(60000),
                  "order.placed at %lld, outside [%s, %s)", (long long)placed_ms, an_from, an_to);
    minute_ms = placed_ms / 60000 * 60000;
    an_after = an_snapshot(an_from, an_to);
    ck_assert_msg(an_after.orders >= an_before.orders + 1,
                  "/v1/summary: %lld orders placed before the order, %lld after", an_before.orders,
                  an_after.orders);
    ck_assert_msg(an_after.revenue >= an_before.revenue + (long long)QUANTITY * PRICE_CENTS,
                  "/v1/summary: revenue %lld before the order of %d cents, %lld after",
                  an_before.revenue, QUANTITY * PRICE_CENTS, an_after.revenue);
    ck_assert_msg(an_minute_revenue(&an_after, minute_ms) >=
                      an_minute_revenue(&an_before, minute_ms) + (long long)QUANTITY * PRICE_CENTS,
                  "/v1/revenue: the order's minute had %lld cents before it, %lld after",
                  an_minute_revenue(&an_before, minute_ms),
                  an_minute_revenue(&an_after, minute_ms));
    json_decref(an_before.revenue_series);
    json_decref(an_after.revenue_series);
    json_decref(order);
}
END_TEST

/* Records behind, summed over the partitions SVC consumes (kafka_consumer_lag), or -1 while it
 * reports none: before its first assignment and during a rebalance the series are absent. */
static long long consumer_lag(const char *base)
{
    struct testhttp_resp r = testhttp_call("GET", url(base, "/metrics"), NULL, NULL, NULL);
    long long sum = -1;

    if (r.status == 200) {
        const char *p = r.body;

        while ((p = strstr(p, "\nkafka_consumer_lag{")) != NULL) {
            const char *v = strchr(p, '}');

            if (v == NULL)
                break;
            sum = (sum < 0 ? 0 : sum) + strtoll(v + 1, NULL, 10);
            p = v;
        }
    }
    testhttp_resp_release(&r);
    return sum;
}

/*
 * Before the flow is timed: message-svc, cart-svc and analytics-svc first catch up with what
 * earlier tests published (thousands of registrations on a fresh stack, as in CI), since one user's
 * events queue behind everything before them in the same partition. Bounded: 10 minutes.
 */
static void catch_up(void)
{
    const char *const names[] = {"message-svc", "cart-svc", "analytics-svc"};
    int64_t start;

    urls();
    start = svc_now_ms();
    for (int i = 0; i < 3; i++) {
        const char *base = i == 0 ? msg_url : i == 1 ? cart_url : an_url;
        int64_t next_note = svc_now_ms();
        long long lag;

        while ((lag = consumer_lag(base)) != 0) {
            ck_assert_msg(svc_now_ms() - start < 600000,
                          "%s is still %lld events behind after 10 min (-1: no partition)",
                          names[i], lag);
            if (svc_now_ms() >= next_note) {
                fprintf(stderr, "e2e: waiting for %s to catch up: %lld behind\n", names[i], lag);
                next_note += 15000;
            }
            svc_sleep_ms(500);
        }
    }
}

int main(void)
{
    Suite *s = suite_create("cart_e2e");
    TCase *tc = tcase_create("purchase");

    tcase_add_unchecked_fixture(tc, catch_up, NULL);
    /* Bounded: each wait has its own deadline well inside this. */
    tcase_set_timeout(tc, 480);
    tcase_add_test(tc, register_credit_search_add_checkout_confirmation);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

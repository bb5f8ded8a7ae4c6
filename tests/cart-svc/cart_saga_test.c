/*
 * cart-svc's checkout saga as a client sees it (integration): a cart-svc binary run by the
 * test (testproc) on the stack's Redis and Kafka, calling the stack's real product-svc and
 * user-svc. The happy path, insufficient funds, out of stock, a crash right after RESERVE and
 * right after CHARGE (FAULT_AFTER_STEP) followed by a restart, product-svc or user-svc down
 * mid-saga (cart-svc pointed where nothing listens, then restarted with the right URL), one
 * Idempotency-Key twice, and 20 concurrent checkouts for the last 5 units.
 *
 * After every scenario the invariants are checked on the two other owners, which know nothing
 * of cart-svc's own view: at product-svc each product's stock + sold is what it was created
 * with, nothing stays reserved, and sold is what the PLACED orders bought; at user-svc each
 * wallet holds what was credited minus the totals of the PLACED orders; every PLACED order has
 * a committed reservation and a captured payment, every FAILED one no reservation that holds or
 * sold anything.
 *
 * Every test makes its own users and products (unique emails and SKUs), so runs do not meet.
 * The stack's own cart-svc shares the Redis: it is a second replica that may resume any of
 * these orders too (every SAGA_RESUME). The assertions hold whichever replica moves an order,
 * which is the saga's promise.
 */
#include "testenv.h"
#include "testhttp.h"
#include "testproc.h"

#include "svc/time.h"
#include "svc/uuid.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CART_SVC_BIN
#error "CART_SVC_BIN: the cart-svc binary under test"
#endif

#define WAIT_USER_MS  60000 /* cart-svc hears of a new user through user-events */
#define WAIT_ORDER_MS 30000 /* a saga of three calls, resumed every 250 ms */
#define USERS_MAX     20

static char user_url[128], product_url[128];

/* ---- HTTP ------------------------------------------------------------------------------------ */

/* METHOD URL with a JSON BODY (may be NULL) and HEADERS (may be NULL); expects WANT (0: any)
 * and returns the body as JSON (NULL when empty or not JSON; the caller drops it). *STATUS and
 * LOCATION (cap 128) are filled when not NULL. */
static json_t *call(const char *method, const char *url, const char *const *headers,
                    const char *body, long want, long *status, char *location)
{
    struct testhttp_resp r =
        testhttp_request(method, url, headers, body != NULL ? "application/json" : NULL, body);
    json_t *j = NULL;

    ck_assert_msg(r.status != 0, "%s %s: no answer: %s", method, url, r.error);
    ck_assert_msg(want == 0 || r.status == want, "%s %s: %ld, expected %ld: %s", method, url,
                  r.status, want, r.body != NULL ? r.body : "");
    if (r.body != NULL && r.len > 0)
        j = json_loadb(r.body, r.len, 0, NULL);
    if (status != NULL)
        *status = r.status;
    if (location != NULL && testhttp_header(&r, "Location", location, 128) == NULL)
        location[0] = '\0';
    testhttp_resp_release(&r);
    return j;
}

static const char *fmt(char *buf, size_t cap, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static const char *fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return buf;
}

static long long num(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);

    ck_assert_msg(json_is_integer(v), "member '%s' is not an integer", key);
    return (long long)json_integer_value(v);
}

static const char *str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    return s != NULL ? s : "";
}

/* ---- the stack ------------------------------------------------------------------------------- */

static void require_owners(void)
{
    long st;

    snprintf(user_url, sizeof(user_url), "http://127.0.0.1:%s",
             testenv_get("user-svc", "HTTP_PORT"));
    snprintf(product_url, sizeof(product_url), "http://127.0.0.1:%s",
             testenv_get("product-svc", "HTTP_PORT"));
    for (int i = 0; i < 2; i++) {
        const char *base = i == 0 ? user_url : product_url;
        char url[160];
        struct testhttp_resp r =
            testhttp_call("GET", fmt(url, sizeof(url), "%s/readyz", base), NULL, NULL, NULL);

        st = r.status;
        testhttp_resp_release(&r);
        ck_assert_msg(st == 200, "%s is not ready on %s (%ld): start the stack with `make up`",
                      i == 0 ? "user-svc" : "product-svc", base, st);
    }
}

/* Where no owner listens (connection refused): an owner that is down, as cart-svc sees it. */
#define OWNER_DOWN_URL "http://127.0.0.1:1"

/* Starts cart-svc with the env of its env file, the URLs of the two other owners (DOWN, when
 * not NULL, "product-svc" or "user-svc", is given OWNER_DOWN_URL), a quick resume, and
 * FAULT_AFTER_STEP=FAULT ("" for none). */
/* SAGA_GIVE_UP of the next start_cart_down(): the default, or a test's own. */
static const char *give_up = "SAGA_GIVE_UP=2m";

static void start_cart_down(struct testproc *p, const char *fault, const char *down)
{
    static char vars[6][600];
    char purl[256], uurl[256];
    const char *env[] = {vars[0],           vars[1], vars[2], vars[3], vars[4], "SAGA_RESUME=250ms",
                         "STEP_TIMEOUT=3s", give_up, NULL};

    fmt(vars[0], sizeof(vars[0]), "REDIS_URL=%s", testenv_get("cart-svc", "REDIS_URL"));
    fmt(vars[1], sizeof(vars[1]), "KAFKA_BROKERS=%s", testenv_get("cart-svc", "KAFKA_BROKERS"));
    snprintf(purl, sizeof(purl), "%s", testenv_get("cart-svc", "PRODUCT_SVC_URL"));
    snprintf(uurl, sizeof(uurl), "%s", testenv_get("cart-svc", "USER_SVC_URL"));
    if (down != NULL && strcmp(down, "product-svc") == 0)
        snprintf(purl, sizeof(purl), "%s", OWNER_DOWN_URL);
    if (down != NULL && strcmp(down, "user-svc") == 0)
        snprintf(uurl, sizeof(uurl), "%s", OWNER_DOWN_URL);
    fmt(vars[2], sizeof(vars[2]), "PRODUCT_SVC_URL=%s", purl);
    fmt(vars[3], sizeof(vars[3]), "USER_SVC_URL=%s", uurl);
    fmt(vars[4], sizeof(vars[4]), "FAULT_AFTER_STEP=%s", fault);
    testproc_start(p, CART_SVC_BIN, "cart-svc", env);
}

static void start_cart(struct testproc *p, const char *fault)
{
    start_cart_down(p, fault, NULL);
}

static const char *cart_url(const struct testproc *p, char *buf, size_t cap, const char *path)
{
    return fmt(buf, cap, "http://127.0.0.1:%d%s", p->port, path);
}

/* ---- users and products, and what their owners say of them ------------------------------- */

struct user {
    char id[SVC_UUID_STR_LEN + 1];
    long long credited;
};

struct product {
    char id[SVC_UUID_STR_LEN + 1];
    char name[64];
    long long stock0;
};

static void new_user(struct user *u, long long credit)
{
    char body[256], url[256], uid[SVC_UUID_STR_LEN + 1], cid[SVC_UUID_STR_LEN + 1];
    json_t *j;

    svc_uuid_v4_str(uid);
    j = call("POST", fmt(url, sizeof(url), "%s/v1/users", user_url), NULL,
             fmt(body, sizeof(body), "{\"email\":\"saga-%s@example.com\",\"name\":\"Saga %.8s\"}",
                 uid, uid),
             201, NULL, NULL);
    snprintf(u->id, sizeof(u->id), "%s", str(j, "id"));
    json_decref(j);
    u->credited = 0;
    if (credit > 0) {
        svc_uuid_v4_str(cid);
        json_decref(call(
            "POST", fmt(url, sizeof(url), "%s/v1/users/%s/wallet/credits", user_url, u->id), NULL,
            fmt(body, sizeof(body), "{\"credit_id\":\"%s\",\"amount_cents\":%lld}", cid, credit),
            201, NULL, NULL));
        u->credited = credit;
    }
}

static long long balance(const struct user *u)
{
    char url[256];
    json_t *j = call("GET", fmt(url, sizeof(url), "%s/v1/users/%s/wallet", user_url, u->id), NULL,
                     NULL, 200, NULL, NULL);
    long long b = num(j, "balance_cents");

    json_decref(j);
    return b;
}

static void new_product(struct product *p, const char *name, long long price, long long stock)
{
    char body[512], url[256], u[SVC_UUID_STR_LEN + 1];
    json_t *j;

    svc_uuid_v4_str(u);
    snprintf(p->name, sizeof(p->name), "%s %.8s", name, u);
    j = call("POST", fmt(url, sizeof(url), "%s/v1/products", product_url), NULL,
             fmt(body, sizeof(body),
                 "{\"sku\":\"SAGA-%.8s\",\"name\":\"%s\",\"category\":\"saga-it\","
                 "\"price_cents\":%lld,\"currency\":\"EUR\",\"stock\":%lld}",
                 u, p->name, price, stock),
             201, NULL, NULL);
    snprintf(p->id, sizeof(p->id), "%s", str(j, "id"));
    json_decref(j);
    p->stock0 = stock;
}

/* Member KEY ("stock", "reserved", "sold", "available") of the product at product-svc. */
static long long product_num(const struct product *p, const char *key)
{
    char url[256];
    json_t *j = call("GET", fmt(url, sizeof(url), "%s/v1/products/%s", product_url, p->id), NULL,
                     NULL, 200, NULL, NULL);
    long long v = num(j, key);

    json_decref(j);
    return v;
}

/* ---- cart-svc -------------------------------------------------------------------------------- */

/* Waits until cart-svc knows user U (its read model follows user-events): the cart is 200. */
static void wait_known(const struct testproc *cp, const struct user *u)
{
    char url[256], path[128];
    long st = 0;

    cart_url(cp, url, sizeof(url), fmt(path, sizeof(path), "/v1/carts/%s", u->id));
    for (int64_t end = svc_now_ms() + WAIT_USER_MS; svc_now_ms() < end; svc_sleep_ms(200)) {
        json_decref(call("GET", url, NULL, NULL, 0, &st, NULL));
        if (st == 200)
            return;
        ck_assert_msg(st == 404, "GET /v1/carts/%s: %ld", u->id, st);
    }
    ck_abort_msg("cart-svc did not hear of user '%s' within %d ms", u->id, WAIT_USER_MS);
}

static void put_line(const struct testproc *cp, const struct user *u, const struct product *p,
                     int qty)
{
    char url[256], path[160], body[64];

    json_decref(call("PUT",
                     cart_url(cp, url, sizeof(url),
                              fmt(path, sizeof(path), "/v1/carts/%s/items/%s", u->id, p->id)),
                     NULL, fmt(body, sizeof(body), "{\"quantity\":%d}", qty), 200, NULL, NULL));
}

/* POST checkout with KEY: 202 and the order's id from Location. */
static void checkout(const struct testproc *cp, const struct user *u, const char *key,
                     char order_id[SVC_UUID_STR_LEN + 1])
{
    char url[256], path[128], h[200], loc[128];
    const char *hs[] = {h, NULL};
    json_t *j;

    fmt(h, sizeof(h), "Idempotency-Key: %s", key);
    j = call(
        "POST",
        cart_url(cp, url, sizeof(url), fmt(path, sizeof(path), "/v1/carts/%s/checkout", u->id)), hs,
        NULL, 202, NULL, loc);
    ck_assert_msg(strncmp(loc, "/v1/orders/", 11) == 0 && strlen(loc) == 11 + SVC_UUID_STR_LEN,
                  "checkout: Location '%s'", loc);
    snprintf(order_id, SVC_UUID_STR_LEN + 1, "%s", loc + 11);
    ck_assert_str_eq(str(j, "id"), order_id);
    json_decref(j);
}

/* GET /v1/orders/ID until it is placed or failed; returns it (the caller drops it). */
static json_t *wait_order(const struct testproc *cp, const char *id)
{
    char url[256], path[128];
    json_t *j = NULL;

    cart_url(cp, url, sizeof(url), fmt(path, sizeof(path), "/v1/orders/%s", id));
    for (int64_t end = svc_now_ms() + WAIT_ORDER_MS; svc_now_ms() < end; svc_sleep_ms(100)) {
        json_decref(j);
        j = call("GET", url, NULL, NULL, 200, NULL, NULL);
        if (strcmp(str(j, "status"), "placed") == 0 || strcmp(str(j, "status"), "failed") == 0)
            return j;
    }
    ck_abort_msg("order '%s' still '%s' after %d ms", id, str(j, "status"), WAIT_ORDER_MS);
    return NULL;
}

/* How many entries of the order's saga log are STEP in STATE. */
static int steps(const json_t *order, const char *step, const char *state)
{
    const json_t *log = json_object_get(order, "steps");
    int n = 0;

    for (size_t i = 0; i < json_array_size(log); i++) {
        const json_t *e = json_array_get(log, i);

        n += strcmp(str(e, "step"), step) == 0 && strcmp(str(e, "state"), state) == 0;
    }
    return n;
}

/* GET /v1/orders/ID until its log has a STEP entry in STATE; returns the order's status. */
static void wait_step(const struct testproc *cp, const char *id, const char *step,
                      const char *state, char *status, size_t cap)
{
    char url[256], path[128];
    json_t *j = NULL;

    cart_url(cp, url, sizeof(url), fmt(path, sizeof(path), "/v1/orders/%s", id));
    for (int64_t end = svc_now_ms() + WAIT_ORDER_MS; svc_now_ms() < end; svc_sleep_ms(100)) {
        json_decref(j);
        j = call("GET", url, NULL, NULL, 200, NULL, NULL);
        if (steps(j, step, state) > 0) {
            snprintf(status, cap, "%s", str(j, "status"));
            json_decref(j);
            return;
        }
    }
    ck_abort_msg("order '%s' ('%s') logged no %s %s within %d ms", id, str(j, "status"), step,
                 state, WAIT_ORDER_MS);
}

static size_t cart_lines(const struct testproc *cp, const struct user *u)
{
    char url[256], path[128];
    json_t *j =
        call("GET", cart_url(cp, url, sizeof(url), fmt(path, sizeof(path), "/v1/carts/%s", u->id)),
             NULL, NULL, 200, NULL, NULL);
    size_t n = json_array_size(json_object_get(j, "lines"));

    json_decref(j);
    return n;
}

/* ---- invariants ------------------------------------------------------------------------------ */

struct placed {
    const struct user *u;
    const char *order_id;
    bool placed;
    long long total;
    const struct product *p;
    long long qty;
};

/*
 * The owners' view after a scenario: for each order O[N], its reservation at product-svc
 * (committed once PLACED; for FAILED none, or released) and, when PLACED, its payment at
 * user-svc (captured: a replay of the same payment answers 200 with it, and changes nothing);
 * for each product P[NP], stock + sold as created, nothing reserved, sold = what PLACED orders
 * bought; for each user U[NU], balance = credited - what their PLACED orders cost.
 */
static void check_invariants(const struct placed *o, size_t n, const struct product *const *p,
                             size_t np, const struct user *const *u, size_t nu)
{
    char url[256], body[256];

    for (size_t i = 0; i < n; i++) {
        long st;
        json_t *r =
            call("GET", fmt(url, sizeof(url), "%s/v1/reservations/%s", product_url, o[i].order_id),
                 NULL, NULL, 0, &st, NULL);

        if (o[i].placed) {
            json_t *pay;

            ck_assert_msg(st == 200 && strcmp(str(r, "state"), "committed") == 0,
                          "placed order '%s': reservation %ld '%s', expected committed",
                          o[i].order_id, st, str(r, "state"));
            pay = call("POST", fmt(url, sizeof(url), "%s/v1/payments", user_url), NULL,
                       fmt(body, sizeof(body),
                           "{\"payment_id\":\"%s\",\"user_id\":\"%s\",\"amount_cents\":%lld}",
                           o[i].order_id, o[i].u->id, o[i].total),
                       200, NULL, NULL);
            ck_assert_msg(strcmp(str(pay, "status"), "captured") == 0,
                          "placed order '%s': payment '%s', expected captured", o[i].order_id,
                          str(pay, "status"));
            json_decref(pay);
        } else {
            ck_assert_msg(st == 404 || (st == 200 && strcmp(str(r, "state"), "released") == 0),
                          "failed order '%s': reservation %ld '%s', expected none or released",
                          o[i].order_id, st, str(r, "state"));
        }
        json_decref(r);
    }
    for (size_t k = 0; k < np; k++) {
        long long sold = 0;

        for (size_t i = 0; i < n; i++)
            if (o[i].placed && o[i].p == p[k])
                sold += o[i].qty;
        ck_assert_int_eq(product_num(p[k], "stock") + product_num(p[k], "sold"), p[k]->stock0);
        ck_assert_int_eq(product_num(p[k], "reserved"), 0);
        ck_assert_int_eq(product_num(p[k], "sold"), sold);
    }
    for (size_t k = 0; k < nu; k++) {
        long long spent = 0;

        for (size_t i = 0; i < n; i++)
            if (o[i].placed && o[i].u == u[k])
                spent += o[i].total;
        ck_assert_int_eq(balance(u[k]), u[k]->credited - spent);
    }
}

/* ---- scenarios ------------------------------------------------------------------------------- */

START_TEST(test_happy_path)
{
    struct testproc cp;
    struct user u;
    struct product p;
    char order[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1];
    json_t *o;

    require_owners();
    start_cart(&cp, "");
    new_user(&u, 10000);
    new_product(&p, "Steel Kettle", 1250, 10);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 2);
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, order);
    o = wait_order(&cp, order);
    ck_assert_str_eq(str(o, "status"), "placed");
    ck_assert_int_eq(num(o, "total_cents"), 2500);
    ck_assert_int_eq(steps(o, "reserve", "succeeded"), 1);
    ck_assert_int_eq(steps(o, "charge", "succeeded"), 1);
    ck_assert_int_eq(steps(o, "commit", "succeeded"), 1);
    ck_assert_int_eq(steps(o, "release", "started") + steps(o, "refund", "started"), 0);
    ck_assert_int_eq(cart_lines(&cp, &u), 0);
    ck_assert_int_eq(product_num(&p, "stock"), 8);
    ck_assert_int_eq(balance(&u), 7500);
    {
        const struct placed all[] = {{&u, order, true, 2500, &p, 2}};
        const struct product *ps[] = {&p};
        const struct user *us[] = {&u};

        check_invariants(all, 1, ps, 1, us, 1);
    }
    json_decref(o);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}
END_TEST

START_TEST(test_insufficient_funds)
{
    struct testproc cp;
    struct user u;
    struct product p;
    char order[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1];
    json_t *o;

    require_owners();
    start_cart(&cp, "");
    new_user(&u, 1000);
    new_product(&p, "Copper Pan", 1250, 5);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 1);
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, order);
    o = wait_order(&cp, order);
    ck_assert_str_eq(str(o, "status"), "failed");
    ck_assert_str_eq(str(o, "failed_step"), "charge");
    ck_assert_msg(strstr(str(o, "reason"), "insufficient funds") != NULL, "reason '%s'",
                  str(o, "reason"));
    ck_assert_int_eq(steps(o, "release", "succeeded"), 1);
    /* The payment was refused: there is nothing to refund, and the order does not say so. */
    ck_assert_int_eq(steps(o, "refund", "started"), 0);
    ck_assert_int_eq(cart_lines(&cp, &u), 1); /* the cart keeps its lines */
    ck_assert_int_eq(product_num(&p, "available"), 5);
    ck_assert_int_eq(balance(&u), 1000);
    {
        const struct placed all[] = {{&u, order, false, 1250, &p, 1}};
        const struct product *ps[] = {&p};
        const struct user *us[] = {&u};

        check_invariants(all, 1, ps, 1, us, 1);
    }
    json_decref(o);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}
END_TEST

START_TEST(test_out_of_stock)
{
    struct testproc cp;
    struct user u;
    struct product p, q;
    char order[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1];
    json_t *o;

    require_owners();
    start_cart(&cp, "");
    new_user(&u, 100000);
    new_product(&p, "Oak Board", 900, 10);
    new_product(&q, "Bread Knife", 1500, 1);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 1);
    put_line(&cp, &u, &q, 3);
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, order);
    o = wait_order(&cp, order);
    ck_assert_str_eq(str(o, "status"), "failed");
    ck_assert_str_eq(str(o, "failed_step"), "reserve");
    /* The reason names the product that is short, and what it has: all lines or none. */
    ck_assert_msg(strstr(str(o, "reason"), q.name) != NULL &&
                      strstr(str(o, "reason"), "1 available") != NULL,
                  "reason '%s' does not name '%s' and its stock", str(o, "reason"), q.name);
    ck_assert_int_eq(steps(o, "charge", "started"), 0);
    ck_assert_int_eq(product_num(&p, "available"), 10);
    ck_assert_int_eq(product_num(&q, "available"), 1);
    {
        const struct placed all[] = {{&u, order, false, 5400, &q, 3}};
        const struct product *ps[] = {&p, &q};
        const struct user *us[] = {&u};

        check_invariants(all, 1, ps, 2, us, 1);
    }
    json_decref(o);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}
END_TEST

/* FAULT_AFTER_STEP=STEP: the process aborts right after STEP succeeds; a restarted one (no
 * fault) finishes the order: PLACED once, every step done once. */
static void crash_after(const char *step)
{
    struct testproc cp;
    struct user u;
    struct product p;
    char order[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1];
    json_t *o;

    require_owners();
    start_cart(&cp, step);
    new_user(&u, 5000);
    new_product(&p, "Tea Tin", 700, 4);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 3);
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, order);
    /* The saga runs at once on the kick: the process dies by itself (0: no signal sent). What
     * it held stays held until a process resumes the order: the restarted one below, or the
     * stack's own cart-svc (a second replica on the same Redis), whichever comes first. */
    ck_assert_int_eq(testproc_stop(&cp, 0), 128 + SIGABRT);

    start_cart(&cp, "");
    o = wait_order(&cp, order);
    ck_assert_str_eq(str(o, "status"), "placed");
    ck_assert_int_eq(steps(o, step, "succeeded"), 1);
    ck_assert_int_eq(steps(o, "commit", "succeeded"), 1);
    ck_assert_int_eq(steps(o, "release", "started") + steps(o, "refund", "started"), 0);
    ck_assert_int_eq(balance(&u), 5000 - 2100);
    {
        const struct placed all[] = {{&u, order, true, 2100, &p, 3}};
        const struct product *ps[] = {&p};
        const struct user *us[] = {&u};

        check_invariants(all, 1, ps, 1, us, 1);
    }
    json_decref(o);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}

START_TEST(test_crash_after_reserve)
{
    crash_after("reserve");
}
END_TEST

START_TEST(test_crash_after_charge)
{
    crash_after("charge");
}
END_TEST

/* ---- the stack's own cart-svc, stopped where a test's must be the only replica ---------- */

/* The pid file of the stack's cart-svc. */
static const char *stack_pid_file(char *buf, size_t cap)
{
    const char *state = getenv("POLYGLOT_STATE");

    return fmt(buf, cap, "%s/run/cart-svc.pid",
               state != NULL && state[0] != '\0' ? state : POLYGLOT_STATE_DIR);
}

/* Stops the stack's cart-svc (SIGTERM, up to 10 s), which would otherwise take the test's
 * orders further with working URLs. */
static void stop_stack_cart(void)
{
    char path[512], line[32] = "";
    FILE *f = fopen(stack_pid_file(path, sizeof(path)), "r");
    long pid;

    if (f == NULL)
        return;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    pid = strtol(line, NULL, 10);
    if (pid <= 1 || kill((pid_t)pid, SIGTERM) != 0)
        return;
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
        svc_sleep_ms(100);
}

/* Whatever the test did, the stack's cart-svc runs afterwards (an unchecked fixture runs in
 * the parent process, after a failure too). */
static void stack_cart_back_up(void)
{
    if (teststack("up") != 0)
        fprintf(stderr, "cart_saga_test: could not start the stack's cart-svc again\n");
}

/* An owner down mid-saga (DOWN: "product-svc", the RESERVE step, or "user-svc", CHARGE): the
 * step is logged retrying and the order waits where it is, holding what it held; cart-svc
 * restarted once the owner is back finishes it, PLACED once. */
static void owner_down(const char *down, const char *step)
{
    struct testproc cp;
    struct user u;
    struct product p;
    char order[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1], status[32];
    json_t *o;

    require_owners();
    start_cart(&cp, "");
    new_user(&u, 5000);
    new_product(&p, "Clay Teapot", 1600, 3);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 2);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);

    /* The stack's own cart-svc, a second replica on the same Redis with working URLs, would
     * take the order further before this one tries: stopped (the fixture starts it again). */
    stop_stack_cart();
    start_cart_down(&cp, "", down);
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, order);
    wait_step(&cp, order, step, "retrying", status, sizeof(status));
    /* Nothing refused: the order waits. */
    ck_assert_msg(strcmp(status, "compensating") != 0 && strcmp(status, "failed") != 0,
                  "order '%s' is '%s' while %s is down", order, status, down);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);

    start_cart(&cp, "");
    o = wait_order(&cp, order);
    ck_assert_str_eq(str(o, "status"), "placed");
    ck_assert_int_eq(steps(o, step, "succeeded"), 1);
    ck_assert_int_eq(steps(o, "release", "started") + steps(o, "refund", "started"), 0);
    {
        const struct placed all[] = {{&u, order, true, 3200, &p, 2}};
        const struct product *ps[] = {&p};
        const struct user *us[] = {&u};

        check_invariants(all, 1, ps, 1, us, 1);
    }
    json_decref(o);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}

START_TEST(test_product_svc_down)
{
    owner_down("product-svc", "reserve");
}
END_TEST

START_TEST(test_user_svc_down)
{
    owner_down("user-svc", "charge");
}
END_TEST

START_TEST(test_same_key_twice)
{
    struct testproc cp;
    struct user u;
    struct product p;
    char first[SVC_UUID_STR_LEN + 1], again[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1];
    json_t *o;

    require_owners();
    start_cart(&cp, "");
    new_user(&u, 5000);
    new_product(&p, "Linen Apron", 1800, 6);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 1);
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, first);
    checkout(&cp, &u, key, again);
    ck_assert_str_eq(first, again);
    o = wait_order(&cp, first);
    ck_assert_str_eq(str(o, "status"), "placed");
    json_decref(o);
    /* After it is placed too: still that order, nothing ordered twice. */
    checkout(&cp, &u, key, again);
    ck_assert_str_eq(first, again);
    ck_assert_int_eq(balance(&u), 5000 - 1800);
    {
        const struct placed all[] = {{&u, first, true, 1800, &p, 1}};
        const struct product *ps[] = {&p};
        const struct user *us[] = {&u};

        check_invariants(all, 1, ps, 1, us, 1);
    }
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}
END_TEST

struct racer {
    const struct testproc *cp;
    const struct user *u;
    char order[SVC_UUID_STR_LEN + 1];
    long status;
    pthread_barrier_t *go;
};

/* One checkout, as close to the others as the barrier makes it. No Check assertion here:
 * Check's assertions belong to the test's own thread. */
static void *race(void *arg)
{
    struct racer *r = arg;
    char url[256], h[200], loc[128], key[SVC_UUID_STR_LEN + 1];
    const char *hs[] = {h, NULL};
    struct testhttp_resp resp;

    svc_uuid_v4_str(key);
    snprintf(h, sizeof(h), "Idempotency-Key: %s", key);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/carts/%s/checkout", r->cp->port, r->u->id);
    pthread_barrier_wait(r->go);
    resp = testhttp_request("POST", url, hs, NULL, NULL);
    r->status = resp.status;
    if (testhttp_header(&resp, "Location", loc, sizeof(loc)) != NULL && strlen(loc) > 11)
        snprintf(r->order, sizeof(r->order), "%s", loc + 11);
    testhttp_resp_release(&resp);
    return NULL;
}

START_TEST(test_last_units)
{
    static struct user users[USERS_MAX];
    static struct racer racers[USERS_MAX];
    static struct placed all[USERS_MAX];
    const struct user *us[USERS_MAX];
    pthread_t th[USERS_MAX];
    pthread_barrier_t go;
    struct testproc cp;
    struct product p;
    const struct product *ps[] = {&p};
    int placed = 0, failed = 0;

    require_owners();
    start_cart(&cp, "");
    new_product(&p, "Last Lamp", 2000, 5);
    for (int i = 0; i < USERS_MAX; i++) {
        new_user(&users[i], 10000);
        us[i] = &users[i];
    }
    for (int i = 0; i < USERS_MAX; i++) {
        wait_known(&cp, &users[i]);
        put_line(&cp, &users[i], &p, 1);
    }
    pthread_barrier_init(&go, NULL, USERS_MAX);
    for (int i = 0; i < USERS_MAX; i++) {
        racers[i] = (struct racer){.cp = &cp, .u = &users[i], .go = &go};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < USERS_MAX; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < USERS_MAX; i++) {
        json_t *o;

        ck_assert_msg(racers[i].status == 202 && racers[i].order[0] != '\0', "checkout %d: %ld", i,
                      racers[i].status);
        o = wait_order(&cp, racers[i].order);
        all[i] = (struct placed){&users[i], racers[i].order, false, 2000, &p, 1};
        if (strcmp(str(o, "status"), "placed") == 0) {
            all[i].placed = true;
            placed++;
        } else {
            ck_assert_str_eq(str(o, "failed_step"), "reserve");
            ck_assert_msg(strstr(str(o, "reason"), p.name) != NULL, "reason '%s'",
                          str(o, "reason"));
            failed++;
        }
        json_decref(o);
    }
    ck_assert_int_eq(placed, 5);
    ck_assert_int_eq(failed, USERS_MAX - 5);
    ck_assert_int_eq(product_num(&p, "stock"), 0);
    check_invariants(all, USERS_MAX, ps, 1, us, USERS_MAX);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}
END_TEST

/* user-svc never answers: CHARGE is retried until SAGA_GIVE_UP, then the order is compensated.
 * The payment got no answer, so it may have been taken: the REFUND must be confirmed before
 * the order can be FAILED, and it waits for user-svc too (COMPENSATING, holding the stock).
 * With user-svc back, a restarted cart-svc refunds (nothing was charged), releases the stock
 * and fails the order at "charge": the stock is back, the wallet untouched. */
START_TEST(test_gives_up_and_compensates)
{
    struct testproc cp;
    struct user u;
    struct product p;
    char order[SVC_UUID_STR_LEN + 1], key[SVC_UUID_STR_LEN + 1], status[32];
    json_t *o;

    require_owners();
    start_cart(&cp, "");
    new_user(&u, 5000);
    new_product(&p, "Slate Coaster", 700, 4);
    wait_known(&cp, &u);
    put_line(&cp, &u, &p, 3);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);

    stop_stack_cart();
    give_up = "SAGA_GIVE_UP=2s";
    start_cart_down(&cp, "", "user-svc");
    give_up = "SAGA_GIVE_UP=2m";
    svc_uuid_v4_str(key);
    checkout(&cp, &u, key, order);
    wait_step(&cp, order, "charge", "failed", status, sizeof(status));
    ck_assert_str_eq(status, "compensating");
    ck_assert_int_eq(product_num(&p, "reserved"), 3); /* held until the refund is confirmed */
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);

    start_cart(&cp, "");
    o = wait_order(&cp, order);
    ck_assert_str_eq(str(o, "status"), "failed");
    ck_assert_str_eq(str(o, "failed_step"), "charge");
    ck_assert_int_ge(steps(o, "charge", "retrying"), 1);
    ck_assert_int_eq(steps(o, "charge", "succeeded"), 0);
    ck_assert_int_eq(steps(o, "refund", "succeeded"), 1);
    ck_assert_int_eq(steps(o, "release", "succeeded"), 1);
    ck_assert_int_eq(product_num(&p, "reserved"), 0);
    ck_assert_int_eq(product_num(&p, "available"), 4);
    ck_assert_int_eq(product_num(&p, "sold"), 0);
    ck_assert_int_eq(balance(&u), 5000);
    json_decref(o);
    ck_assert_int_eq(testproc_stop(&cp, SIGTERM), 0);
}
END_TEST

static Suite *saga_suite(void)
{
    Suite *s = suite_create("cart_saga");
    TCase *tc = tcase_create("saga");

    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, NULL, stack_cart_back_up);
    tcase_add_test(tc, test_happy_path);
    tcase_add_test(tc, test_insufficient_funds);
    tcase_add_test(tc, test_out_of_stock);
    tcase_add_test(tc, test_crash_after_reserve);
    tcase_add_test(tc, test_crash_after_charge);
    tcase_add_test(tc, test_product_svc_down);
    tcase_add_test(tc, test_user_svc_down);
    tcase_add_test(tc, test_same_key_twice);
    tcase_add_test(tc, test_last_units);
    suite_add_tcase(s, tc);
    {
        TCase *alone = tcase_create("alone");

        tcase_set_timeout(alone, 120);
        tcase_add_unchecked_fixture(alone, NULL, stack_cart_back_up);
        tcase_add_test(alone, test_gives_up_and_compensates);
        suite_add_tcase(s, alone);
    }
    return s;
}

int main(void)
{
    return testenv_run(saga_suite());
}

/*
 * cart_remote.c against scripted owners (http): product-svc's and user-svc's routes served
 * in-process on port 0 by lib's server, each answering what the test scripts. Checks what the
 * saga is told (OK, REFUSED with a sentence a user can read, RETRY) for each answer the two
 * specs allow, and what the owners receive (ids derived from the order, the lines, the total).
 */
#include "cart_svc.h"

#include "svc/server.h"
#include "svc/time.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ORDER   "0b9f2c1e-7d4a-4e6b-8f3a-2c5d9e1f4a70"
#define USER    "3f1c8a2e-9b4d-4c7a-a1e5-6d2f8b0c3e94"
#define KETTLE  "2eb03aba-0cfa-876a-a48c-b781eb37cc8f"
#define MUG     "0f0817a8-863e-824f-a32c-3fa8723137f6"
#define PROBLEM "urn:polyglot:problem:"

/* What the owners answer next, and what they saw last. */
static struct {
    pthread_mutex_t mu;
    int status;
    char body[4096];
    int sleep_ms;
    int requests;
    char method[8], path[256], seen[4096];
} owner = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct svc_server *srv;
static struct cart_remote_ctx *rctx;
static struct cart_remote rm;

static int answer(struct svc_req *req, struct svc_resp *resp)
{
    size_t len;
    const char *b = svc_req_body(req, &len);
    json_t *j;
    int status, sleep_ms;

    pthread_mutex_lock(&owner.mu);
    owner.requests++;
    snprintf(owner.method, sizeof(owner.method), "%s", svc_req_method(req));
    snprintf(owner.path, sizeof(owner.path), "%s", svc_req_path(req));
    snprintf(owner.seen, sizeof(owner.seen), "%s", b);
    status = owner.status;
    sleep_ms = owner.sleep_ms;
    j = json_loads(owner.body, 0, NULL);
    pthread_mutex_unlock(&owner.mu);
    if (sleep_ms > 0)
        svc_sleep_ms(sleep_ms);
    return svc_resp_json(resp, status, j != NULL ? j : json_object());
}

/* GET /v1/users/:id/wallet: always 12.00. */
static int wallet(struct svc_req *req, struct svc_resp *resp)
{
    return svc_resp_json(
        resp, 200,
        json_pack("{s:s, s:i}", "user_id", svc_req_param(req, "id"), "balance_cents", 1200));
}

static const struct svc_route owner_routes[] = {
    {SVC_POST, "/v1/products:batchGet", answer, 0, 0},
    {SVC_POST, "/v1/reservations", answer, 0, 0},
    {SVC_POST, "/v1/reservations/:id/commit", answer, 0, 0},
    {SVC_POST, "/v1/reservations/:id/release", answer, 0, 0},
    {SVC_POST, "/v1/payments", answer, 0, 0},
    {SVC_POST, "/v1/payments/:id/refund", answer, 0, 0},
    {SVC_GET, "/v1/users/:id/wallet", wallet, 0, 0},
    SVC_ROUTES_END,
};

static const struct svc_def owners = {.name = "owners", .version = "0", .routes = owner_routes};

static void script(int status, const char *body)
{
    pthread_mutex_lock(&owner.mu);
    owner.status = status;
    snprintf(owner.body, sizeof(owner.body), "%s", body != NULL ? body : "{}");
    pthread_mutex_unlock(&owner.mu);
}

/* What the owner saw, read under its lock: the server's threads write it. */
static int owner_requests(void)
{
    int n;

    pthread_mutex_lock(&owner.mu);
    n = owner.requests;
    pthread_mutex_unlock(&owner.mu);
    return n;
}

static void owner_sleep(int ms)
{
    pthread_mutex_lock(&owner.mu);
    owner.sleep_ms = ms;
    pthread_mutex_unlock(&owner.mu);
}

static const char *owner_path(void)
{
    static char copy[sizeof(owner.path)];

    pthread_mutex_lock(&owner.mu);
    memcpy(copy, owner.path, sizeof(copy));
    pthread_mutex_unlock(&owner.mu);
    return copy;
}

static const char *owner_seen(void)
{
    static char copy[sizeof(owner.seen)];

    pthread_mutex_lock(&owner.mu);
    memcpy(copy, owner.seen, sizeof(copy));
    pthread_mutex_unlock(&owner.mu);
    return copy;
}

static void setup(void)
{
    struct svc_http_opts o;
    char url[64];
    struct cart_remote_opts ro = {
        .product_svc_url = url, .user_svc_url = url, .step_timeout_ms = 1000};

    svc_http_opts_default(&o);
    o.port = 0;
    o.access_log = false;
    o.shutdown_grace_ms = 1000;
    srv = svc_server_start(&owners, &o);
    ck_assert_ptr_nonnull(srv);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", svc_server_port(srv));
    ck_assert_int_eq(cart_remote_new(&ro, &rctx, &rm), 0);
    pthread_mutex_lock(&owner.mu);
    owner.requests = 0;
    pthread_mutex_unlock(&owner.mu);
    owner_sleep(0);
    script(200, "{}");
}

static void teardown(void)
{
    cart_remote_free(rctx);
    ck_assert_int_eq(svc_server_stop(srv), 0);
}

static struct cart_line lines[2] = {
    {.product_id = KETTLE,
     .quantity = 3,
     .price_cents = 1250,
     .currency = "EUR",
     .name = "Steel Kettle"},
    {.product_id = MUG, .quantity = 1, .price_cents = 800, .currency = "EUR", .name = "Blue Mug"},
};

static const struct cart_order order = {.id = ORDER,
                                        .user_id = USER,
                                        .status = CART_PENDING,
                                        .lines = lines,
                                        .n = 2,
                                        .total_cents = 4550,
                                        .currency = "EUR"};

static json_t *seen_json(void)
{
    json_t *j = json_loads(owner_seen(), 0, NULL);

    ck_assert_msg(j != NULL, "the owner got no JSON: '%s'", owner_seen());
    return j;
}

/* ---- product-svc ------------------------------------------------------------------------- */

START_TEST(test_reserve_sends_the_order)
{
    char why[CART_REASON_MAX + 1] = "";
    json_t *j, *it;

    script(201, "{\"id\":\"" ORDER "\",\"state\":\"reserved\"}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_OK);
    ck_assert_str_eq(owner_path(), "/v1/reservations");
    j = seen_json();
    ck_assert_str_eq(json_string_value(json_object_get(j, "reservation_id")), ORDER);
    it = json_object_get(j, "items");
    ck_assert_uint_eq(json_array_size(it), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(it, 0), "product_id")),
                     KETTLE);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(it, 0), "quantity")), 3);
    ck_assert(json_integer_value(json_object_get(j, "ttl")) >= 60);
    json_decref(j);
    /* A replay of a reservation since committed is fine too; one released is not. */
    script(200, "{\"id\":\"" ORDER "\",\"state\":\"committed\"}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_OK);
    script(200, "{\"id\":\"" ORDER "\",\"state\":\"released\"}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);
    ck_assert_msg(strstr(why, "released") != NULL, "reason '%s'", why);
}
END_TEST

START_TEST(test_reserve_out_of_stock_names_the_product)
{
    char why[CART_REASON_MAX + 1] = "";

    script(409, "{\"type\":\"" PROBLEM "insufficient-stock\",\"status\":409,\"field\":\"items[0]\","
                "\"product_id\":\"" KETTLE "\",\"requested\":3,\"available\":2}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);
    ck_assert_str_eq(why, "Steel Kettle: 2 available, 3 requested");
    script(422, "{\"type\":\"" PROBLEM "unprocessable\",\"status\":422,\"product_id\":\"" MUG
                "\",\"requested\":1,\"available\":0}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);
    ck_assert_str_eq(why, "Blue Mug is no longer sold");
    script(409, "{\"type\":\"" PROBLEM "idempotency-key-reused\",\"status\":409}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);
}
END_TEST

START_TEST(test_no_answer_is_retry)
{
    char why[CART_REASON_MAX + 1] = "";

    /* 503 on every attempt: lib retries within the step's deadline, then the saga will. */
    script(503, "{\"type\":\"" PROBLEM "unavailable\",\"status\":503}");
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_RETRY);
    ck_assert_msg(strstr(why, "product-svc") != NULL, "reason '%s'", why);
    ck_assert_int_gt(owner_requests(), 1);
    ck_assert_int_eq(rm.charge(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_RETRY);
    ck_assert_msg(strstr(why, "user-svc") != NULL, "reason '%s'", why);
    ck_assert_int_eq(rm.refund(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_RETRY);
    ck_assert_int_eq(rm.release(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_RETRY);
    /* Slower than the step's deadline (1 s): no answer in time. */
    script(201, "{\"state\":\"reserved\"}");
    owner_sleep(1500);
    ck_assert_int_eq(rm.reserve(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_RETRY);
    owner_sleep(0);
}
END_TEST

START_TEST(test_commit_and_release)
{
    char why[CART_REASON_MAX + 1] = "";

    script(200, "{\"state\":\"committed\"}");
    ck_assert_int_eq(rm.commit(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_OK);
    ck_assert_str_eq(owner_path(), "/v1/reservations/" ORDER "/commit");
    ck_assert_str_eq(owner_seen(), "");
    script(409,
           "{\"type\":\"" PROBLEM "reservation-state\",\"status\":409,\"state\":\"released\"}");
    ck_assert_int_eq(rm.commit(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_REFUSED);
    ck_assert_msg(strstr(why, "released") != NULL, "reason '%s'", why);

    script(200, "{\"state\":\"released\"}");
    ck_assert_int_eq(rm.release(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_OK);
    ck_assert_str_eq(owner_path(), "/v1/reservations/" ORDER "/release");
    /* Nothing reserved under this id: nothing to release. */
    script(404, "{\"type\":\"" PROBLEM "not-found\",\"status\":404}");
    ck_assert_int_eq(rm.release(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_OK);
    script(409,
           "{\"type\":\"" PROBLEM "reservation-state\",\"status\":409,\"state\":\"committed\"}");
    ck_assert_int_eq(rm.release(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_REFUSED);
}
END_TEST

START_TEST(test_products)
{
    struct svc_arena *a = svc_arena_new();
    const char *ids[] = {KETTLE, MUG};
    struct cart_product out[2];
    bool found[2];

    script(200, "{\"items\":[{\"id\":\"" KETTLE "\",\"name\":\"Steel Kettle\",\"price_cents\":1250,"
                "\"currency\":\"EUR\",\"available\":7}],\"missing\":[\"" MUG "\"]}");
    ck_assert_int_eq(rm.products(rm.ctx, a, ids, 2, out, found), 0);
    ck_assert_str_eq(owner_path(), "/v1/products:batchGet");
    ck_assert(found[0] && !found[1]);
    ck_assert_str_eq(out[0].id, KETTLE);
    ck_assert_str_eq(out[0].name, "Steel Kettle");
    ck_assert_str_eq(out[0].currency, "EUR");
    ck_assert_int_eq(out[0].price_cents, 1250);
    ck_assert_int_eq(out[0].available, 7);
    script(503, "{}");
    ck_assert_int_eq(rm.products(rm.ctx, a, ids, 2, out, found), CART_EDEPENDENCY);
    svc_arena_free(a);
}
END_TEST

/* ---- user-svc ---------------------------------------------------------------------------- */

START_TEST(test_charge)
{
    char why[CART_REASON_MAX + 1] = "";
    json_t *j;

    script(201, "{\"payment_id\":\"" ORDER "\",\"status\":\"captured\"}");
    ck_assert_int_eq(rm.charge(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_OK);
    ck_assert_str_eq(owner_path(), "/v1/payments");
    j = seen_json();
    ck_assert_str_eq(json_string_value(json_object_get(j, "payment_id")), ORDER);
    ck_assert_str_eq(json_string_value(json_object_get(j, "user_id")), USER);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "amount_cents")), 4550);
    json_decref(j);
    /* A replay of a payment a compensation refunded pays for nothing. */
    script(200, "{\"payment_id\":\"" ORDER "\",\"status\":\"refunded\"}");
    ck_assert_int_eq(rm.charge(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);

    script(409, "{\"type\":\"" PROBLEM "insufficient-funds\",\"status\":409}");
    ck_assert_int_eq(rm.charge(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);
    ck_assert_str_eq(why, "insufficient funds: balance 12.00, order total 45.50 EUR");
    script(404, "{\"type\":\"" PROBLEM "not-found\",\"status\":404}");
    ck_assert_int_eq(rm.charge(rm.ctx, &order, why, sizeof(why)), CART_REMOTE_REFUSED);
}
END_TEST

START_TEST(test_refund)
{
    char why[CART_REASON_MAX + 1] = "";

    script(200, "{\"status\":\"refunded\"}");
    ck_assert_int_eq(rm.refund(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_OK);
    ck_assert_str_eq(owner_path(), "/v1/payments/" ORDER "/refund");
    /* Nothing was charged under this id: nothing to refund. */
    script(404, "{\"type\":\"" PROBLEM "not-found\",\"status\":404}");
    ck_assert_int_eq(rm.refund(rm.ctx, ORDER, why, sizeof(why)), CART_REMOTE_OK);
}
END_TEST

START_TEST(test_bad_urls)
{
    struct cart_remote_ctx *c = NULL;
    struct cart_remote r;
    struct cart_remote_opts o = {.product_svc_url = "ftp://x", .user_svc_url = "http://y:1"};

    ck_assert_int_eq(cart_remote_new(&o, &c, &r), SVC_EINVAL);
    o.product_svc_url = "http://x:1";
    o.user_svc_url = NULL;
    ck_assert_int_eq(cart_remote_new(&o, &c, &r), SVC_EINVAL);
}
END_TEST

static Suite *remote_suite(void)
{
    Suite *s = suite_create("cart_remote");
    TCase *tc = tcase_create("remote");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reserve_sends_the_order);
    tcase_add_test(tc, test_reserve_out_of_stock_names_the_product);
    tcase_add_test(tc, test_no_answer_is_retry);
    tcase_add_test(tc, test_commit_and_release);
    tcase_add_test(tc, test_products);
    tcase_add_test(tc, test_charge);
    tcase_add_test(tc, test_refund);
    tcase_add_test(tc, test_bad_urls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(remote_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

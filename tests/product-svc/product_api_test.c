/*
 * product-svc's API as a client sees it (integration): the real running product-svc of
 * deploy/local (`make up`), over HTTP, on the real OpenSearch. The catalog's life (create, the
 * SKU taken, If-Match, delete), search (exact facet counts, a walk in pages while documents
 * change, DSL-looking text that stays text), 100 concurrent one-unit reservations on a stock
 * of 30, replays and the reservation state machine, the TTL sweep, and OpenSearch stopped and
 * started again under the running service (503 with Retry-After, then recovery).
 *
 * Every test makes its own products, under a category and SKU prefix no other run uses, so
 * runs do not meet.
 */
#include "testapi.h"
#include "testenv.h"
#include "testhttp.h"
#include "testproc.h"

#include "product.h"

#include "svc/time.h"
#include "svc/uuid.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char base_url[64];

/* A checked fixture: every test starts by finding product-svc where the env file says. */
static void require_product_svc(void)
{
    struct testapi_reply *r;

    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%s",
             testenv_get("product-svc", "HTTP_PORT"));
    testapi_base(base_url);
    r = testapi_call("GET", "/readyz", NULL);
    ck_assert_msg(r->status == 200,
                  "product-svc is not ready on %s (%ld %s): start it with `make up`", base_url,
                  r->status, r->body);
}

/* PATH from FMT, in a static buffer. */
static const char *path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *path(const char *fmt, ...)
{
    static char p[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p, sizeof(p), fmt, ap);
    va_end(ap);
    return p;
}

static void expect_status(const struct testapi_reply *r, long want, const char *what)
{
    ck_assert_msg(r->status == want, "%s: status %ld, expected %ld: %s", what, r->status, want,
                  r->body);
}

/* "it-<8 hex>": a category and SKU prefix of this test alone. */
static void new_tag(char out[16])
{
    char u[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(u);
    snprintf(out, 16, "it-%.8s", u);
}

/* POST /v1/products; expects 201; returns the product (the caller drops it). */
static json_t *create(const char *sku, const char *name, const char *category, const char *tags,
                      long long price, long long stock)
{
    char body[1024];
    struct testapi_reply *r;

    snprintf(body, sizeof(body),
             "{\"sku\":\"%s\",\"name\":\"%s\",\"description\":\"A %s for the integration "
             "tests.\",\"category\":\"%s\",\"tags\":%s,\"price_cents\":%lld,\"currency\":\"EUR\","
             "\"stock\":%lld}",
             sku, name, name, category, tags, price, stock);
    r = testapi_call("POST", "/v1/products", body);
    expect_status(r, 201, "POST /v1/products");
    return testapi_json(r);
}

/* GET /v1/products?QUERY until TOTAL products match (search sees a write after the engine's
 * refresh, within a second or two), at most 10 s; returns the last answer. */
static json_t *search_until(const char *query_, long long total)
{
    char query[512];
    json_t *j = NULL;

    snprintf(query, sizeof(query), "%s", query_); /* QUERY_ may be path()'s own buffer */

    for (int i = 0; i < 100; i++) {
        struct testapi_reply *r = testapi_call("GET", path("/v1/products?%s", query), NULL);

        expect_status(r, 200, query);
        json_decref(j);
        j = testapi_json(r);
        if (testapi_num(j, "total") == total)
            break;
        svc_sleep_ms(100);
    }
    ck_assert_msg(testapi_num(j, "total") == total, "?%s: total %lld, expected %lld", query,
                  testapi_num(j, "total"), total);
    return j;
}

static long long product_num(const char *id, const char *key)
{
    struct testapi_reply *r = testapi_call("GET", path("/v1/products/%s", id), NULL);
    json_t *p;
    long long v;

    expect_status(r, 200, "GET /v1/products/:id");
    p = testapi_json(r);
    v = testapi_num(p, key);
    json_decref(p);
    return v;
}

/* ---- the catalog -------------------------------------------------------------------------- */

START_TEST(a_product_lives_created_read_changed_with_its_etag_and_deleted)
{
    char tag[16], sku[64], etag[128], stale[128], id[SVC_UUID_STR_LEN + 1];
    struct testapi_reply *r;
    json_t *p;

    new_tag(tag);
    snprintf(sku, sizeof(sku), "%s-KETTLE", tag);
    p = create(sku, "Copper Kettle", tag, "[\"copper\",\"kitchen\"]", 4999, 12);
    snprintf(id, sizeof(id), "%s", testapi_str(p, "id"));
    ck_assert_str_eq(testapi_str(p, "sku"), sku);
    ck_assert_int_eq(testapi_num(p, "available"), 12);
    ck_assert_int_eq(testapi_num(p, "reserved"), 0);
    json_decref(p);

    /* The same SKU again: the same id, taken. */
    r = testapi_call("POST", "/v1/products",
                     path("{\"sku\":\"%s\",\"name\":\"Other\",\"category\":\"x\",\"price_cents\":1,"
                          "\"currency\":\"EUR\",\"stock\":1}",
                          sku));
    testapi_assert_problem(r, 409, "sku-taken", id, "sku");

    r = testapi_call("GET", path("/v1/products/%s", id), NULL);
    expect_status(r, 200, "GET");
    snprintf(etag, sizeof(etag), "%s", testapi_header(r, "ETag"));
    ck_assert_msg(etag[0] == '"', "ETag '%s'", etag);

    /* A change needs the current ETag: none 428, the current one 200, then it is stale. */
    r = testapi_call("PATCH", path("/v1/products/%s", id), "{\"price_cents\":3999}");
    testapi_assert_problem(r, 428, "precondition-required", "If-Match", NULL);
    {
        char h[160];
        const char *hs[] = {h, NULL};

        snprintf(h, sizeof(h), "If-Match: %s", etag);
        r = testapi_call_h("PATCH", path("/v1/products/%s", id), hs, "{\"price_cents\":3999}");
        expect_status(r, 200, "PATCH with the current ETag");
        ck_assert_str_ne(testapi_header(r, "ETag"), etag);
        snprintf(stale, sizeof(stale), "%s", etag);
        r = testapi_call_h("PATCH", path("/v1/products/%s", id), hs, "{\"stock\":5}");
        testapi_assert_problem(r, 412, "precondition-failed", "ETag", NULL);
    }
    ck_assert_int_eq(product_num(id, "price_cents"), 3999);
    ck_assert_int_eq(product_num(id, "stock"), 12);

    r = testapi_call("DELETE", path("/v1/products/%s", id), NULL);
    expect_status(r, 204, "DELETE");
    r = testapi_call("GET", path("/v1/products/%s", id), NULL);
    testapi_assert_problem(r, 404, "not-found", id, NULL);
}
END_TEST

START_TEST(facet_counts_are_exact_and_text_never_becomes_query_syntax)
{
    static const char *const evil[] = {
        "*", "name:*", "{\"match_all\":{}}", "\" OR 1=1 --", "\\", "kettle~2 AND *", "(((",
    };
    char tag[16], q[128];
    json_t *j, *facets, *cat, *price;
    struct testapi_reply *r;

    new_tag(tag);
    /* 7 products in the test's own category: 4 tagged steel, prices in three ranges. */
    json_decref(create(path("%s-1", tag), "Steel Pan", tag, "[\"steel\"]", 500, 3));
    json_decref(create(path("%s-2", tag), "Steel Pot", tag, "[\"steel\",\"big\"]", 1500, 0));
    json_decref(create(path("%s-3", tag), "Steel Ladle", tag, "[\"steel\"]", 2600, 1));
    json_decref(create(path("%s-4", tag), "Steel Whisk", tag, "[\"steel\"]", 900, 9));
    json_decref(create(path("%s-5", tag), "Wooden Spoon", tag, "[\"wood\"]", 300, 2));
    json_decref(create(path("%s-6", tag), "Wooden Board", tag, "[\"wood\",\"big\"]", 3000, 0));
    json_decref(create(path("%s-7", tag), "Running Timer", tag, "[]", 1200, 4));

    j = search_until(path("category=%s&limit=100", tag), 7);
    facets = json_object_get(j, "facets");
    cat = json_array_get(json_object_get(facets, "category"), 0);
    ck_assert_str_eq(testapi_str(cat, "value"), tag);
    ck_assert_int_eq(testapi_num(cat, "count"), 7);
    price = json_object_get(facets, "price");
    /* [0,10 €): 500, 900, 300; [10,25): 1500, 1200; [25,50): 2600, 3000. */
    ck_assert_int_eq(testapi_num(json_array_get(price, 0), "count"), 3);
    ck_assert_int_eq(testapi_num(json_array_get(price, 1), "count"), 2);
    ck_assert_int_eq(testapi_num(json_array_get(price, 2), "count"), 2);
    {
        json_t *tags = json_object_get(facets, "tag");
        long long steel = -1, big = -1;

        for (size_t i = 0; i < json_array_size(tags); i++) {
            json_t *b = json_array_get(tags, i);

            if (strcmp(testapi_str(b, "value"), "steel") == 0)
                steel = testapi_num(b, "count");
            if (strcmp(testapi_str(b, "value"), "big") == 0)
                big = testapi_num(b, "count");
        }
        ck_assert_int_eq(steel, 4);
        ck_assert_int_eq(big, 2);
    }
    json_decref(j);

    /* Filters, relevance and stemming. */
    j = search_until(path("category=%s&tag=steel&in_stock=true", tag), 3);
    json_decref(j);
    j = search_until(path("category=%s&min_price=1000&max_price=2999", tag), 3);
    json_decref(j);
    j = search_until(path("category=%s&q=whisk", tag), 1);
    ck_assert_str_eq(testapi_str(json_array_get(json_object_get(j, "items"), 0), "name"),
                     "Steel Whisk");
    json_decref(j);
    j = search_until(path("category=%s&q=run", tag), 1); /* "Running" stemmed */
    json_decref(j);

    /* What looks like query syntax is text: no error, and never every product. */
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        char *e = testhttp_escape(evil[i]);

        snprintf(q, sizeof(q), "%s", e);
        free(e);
        r = testapi_call("GET", path("/v1/products?category=%s&q=%s", tag, q), NULL);
        expect_status(r, 200, evil[i]);
        j = testapi_json(r);
        ck_assert_msg(testapi_num(j, "total") < 7, "q=%s matched every product", evil[i]);
        json_decref(j);
        r = testapi_call("GET", path("/v1/products?category=%s&tag=%s", q, q), NULL);
        expect_status(r, 200, evil[i]);
        j = testapi_json(r);
        ck_assert_int_eq(testapi_num(j, "total"), 0);
        json_decref(j);
    }
}
END_TEST

START_TEST(a_walk_in_pages_neither_repeats_nor_skips_while_products_change)
{
    enum { N = 23 };
    char tag[16], ids[N][SVC_UUID_STR_LEN + 1], cursor[256] = "";
    int seen[N] = {0}, pages = 0;
    json_t *j;

    new_tag(tag);
    for (int i = 0; i < N; i++) {
        char name[32];
        json_t *p;

        snprintf(name, sizeof(name), "Walk Item %d", i);
        p = create(path("%s-%02d", tag, i), name, tag, "[\"walk\"]", 100 + (i % 5) * 100, 10);

        snprintf(ids[i], sizeof(ids[i]), "%s", testapi_str(p, "id"));
        json_decref(p);
    }
    json_decref(search_until(path("category=%s", tag), N));
    do {
        struct testapi_reply *r =
            testapi_call("GET",
                         path("/v1/products?category=%s&sort=price_asc&limit=5%s%s", tag,
                              cursor[0] != '\0' ? "&cursor=" : "", cursor),
                         NULL);
        json_t *items, *next;

        expect_status(r, 200, "a page");
        j = testapi_json(r);
        items = json_object_get(j, "items");
        for (size_t k = 0; k < json_array_size(items); k++) {
            const char *id = testapi_str(json_array_get(items, k), "id");

            for (int i = 0; i < N; i++)
                if (strcmp(ids[i], id) == 0)
                    seen[i]++;
        }
        /* Between pages, every product changes (its stock, not its price), and new products
         * arrive in another category. */
        for (int i = 0; i < N; i += 4) {
            struct testapi_reply *g = testapi_call("GET", path("/v1/products/%s", ids[i]), NULL);
            char im[160];
            const char *h[] = {im, NULL};

            char change[32];

            snprintf(im, sizeof(im), "If-Match: %s", testapi_header(g, "ETag"));
            snprintf(change, sizeof(change), "{\"stock\":%d}", 20 + pages);
            expect_status(testapi_call_h("PATCH", path("/v1/products/%s", ids[i]), h, change), 200,
                          "PATCH between pages");
        }
        next = json_object_get(j, "next_cursor");
        snprintf(cursor, sizeof(cursor), "%s", json_is_string(next) ? json_string_value(next) : "");
        json_decref(j);
        pages++;
    } while (cursor[0] != '\0' && pages < 20);
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen[i] == 1, "product %d seen %d times in the walk", i, seen[i]);
    ck_assert_int_ge(pages, 5);
}
END_TEST

/* ---- reservations ------------------------------------------------------------------------- */

struct reserver {
    const char *product_id;
    char ids[5][SVC_UUID_STR_LEN + 1]; /* the reservations this thread made */
    int ok, short_, other;
};

static void *reserve_five(void *arg)
{
    struct reserver *w = arg;
    char url[128], body[256];

    snprintf(url, sizeof(url), "%s/v1/reservations", base_url);
    for (int i = 0; i < 5; i++) {
        struct testhttp_resp r;
        char rid[SVC_UUID_STR_LEN + 1];

        svc_uuid_v4_str(rid);
        snprintf(body, sizeof(body),
                 "{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\",\"quantity\":1}]}",
                 rid, w->product_id);
        r = testhttp_request("POST", url, NULL, "application/json", body);
        if (r.status == 201)
            snprintf(w->ids[w->ok++], SVC_UUID_STR_LEN + 1, "%s", rid);
        else if (r.status == 409 && r.body != NULL && strstr(r.body, "insufficient-stock") != NULL)
            w->short_++;
        else
            w->other++;
        testhttp_resp_release(&r);
    }
    return NULL;
}

static struct testapi_reply *reservation_step(const char *rid, const char *step)
{
    return testapi_call("POST", path("/v1/reservations/%s/%s", rid, step), NULL);
}

START_TEST(of_100_concurrent_one_unit_reservations_on_30_exactly_30_pass)
{
    enum { THREADS = 20 };
    static struct reserver w[THREADS];
    pthread_t t[THREADS];
    char tag[16], id[SVC_UUID_STR_LEN + 1];
    int ok = 0, short_ = 0, other = 0, committed = 0, released = 0;
    json_t *p;

    new_tag(tag);
    p = create(path("%s-HOT", tag), "Hot Item", tag, "[]", 1000, 30);
    snprintf(id, sizeof(id), "%s", testapi_str(p, "id"));
    json_decref(p);
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].product_id = id;
        ck_assert_int_eq(pthread_create(&t[i], NULL, reserve_five, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
        short_ += w[i].short_;
        other += w[i].other;
    }
    ck_assert_msg(ok == 30 && short_ == 70 && other == 0,
                  "%d reserved, %d refused for stock, %d other answers", ok, short_, other);
    ck_assert_int_eq(product_num(id, "reserved"), 30);
    ck_assert_int_eq(product_num(id, "available"), 0);

    /* A third of them committed, the rest released: stock + sold is what it was. */
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < w[i].ok; k++) {
            bool commit = (committed + released) % 3 == 0;

            expect_status(reservation_step(w[i].ids[k], commit ? "commit" : "release"), 200,
                          commit ? "commit" : "release");
            commit ? committed++ : released++;
        }
    ck_assert_int_eq(product_num(id, "reserved"), 0);
    ck_assert_int_eq(product_num(id, "sold"), committed);
    ck_assert_int_eq(product_num(id, "stock"), 30 - committed);
    ck_assert_int_eq(product_num(id, "stock") + product_num(id, "sold"), 30);
    ck_assert_int_eq(product_num(id, "available"), 30 - committed);
}
END_TEST

START_TEST(reservations_replay_and_keep_to_their_states)
{
    char tag[16], a[SVC_UUID_STR_LEN + 1], b[SVC_UUID_STR_LEN + 1], rid[SVC_UUID_STR_LEN + 1];
    char body[512];
    struct testapi_reply *r;
    json_t *p;

    new_tag(tag);
    p = create(path("%s-A", tag), "Item A", tag, "[]", 100, 5);
    snprintf(a, sizeof(a), "%s", testapi_str(p, "id"));
    json_decref(p);
    p = create(path("%s-B", tag), "Item B", tag, "[]", 100, 2);
    snprintf(b, sizeof(b), "%s", testapi_str(p, "id"));
    json_decref(p);

    /* All or nothing: B is short, so A is not held either; the 409 names the line. */
    svc_uuid_v4_str(rid);
    snprintf(body, sizeof(body),
             "{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\",\"quantity\":2},"
             "{\"product_id\":\"%s\",\"quantity\":3}]}",
             rid, a, b);
    r = testapi_call("POST", "/v1/reservations", body);
    testapi_assert_problem(r, 409, "insufficient-stock", b, "items[1]");
    ck_assert_int_eq(product_num(a, "reserved"), 0);
    ck_assert_int_eq(product_num(b, "reserved"), 0);

    snprintf(body, sizeof(body),
             "{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\",\"quantity\":2},"
             "{\"product_id\":\"%s\",\"quantity\":2}],\"ttl\":600}",
             rid, a, b);
    r = testapi_call("POST", "/v1/reservations", body);
    expect_status(r, 201, "reserve");
    r = testapi_call("POST", "/v1/reservations", body);
    expect_status(r, 200, "reserve again");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_int_eq(product_num(a, "reserved"), 2);
    ck_assert_int_eq(product_num(b, "available"), 0);
    /* The same id with other lines is refused. */
    r = testapi_call("POST", "/v1/reservations",
                     path("{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
                          "\"quantity\":1}]}",
                          rid, a));
    testapi_assert_problem(r, 409, "idempotency-key-reused", rid, "reservation_id");

    expect_status(reservation_step(rid, "commit"), 200, "commit");
    r = reservation_step(rid, "commit");
    expect_status(r, 200, "commit again");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    r = reservation_step(rid, "release");
    testapi_assert_problem(r, 409, "reservation-state", "committed", NULL);
    ck_assert_int_eq(product_num(a, "sold"), 2);
    ck_assert_int_eq(product_num(a, "stock"), 3);
    ck_assert_int_eq(product_num(b, "stock"), 0);
    ck_assert_int_eq(product_num(b, "reserved"), 0);

    r = reservation_step("00000000-0000-4000-8000-000000000000", "commit");
    testapi_assert_problem(r, 404, "not-found", "reservation", NULL);
}
END_TEST

START_TEST(a_reservation_past_its_ttl_is_released_by_the_sweep)
{
    char tag[16], id[SVC_UUID_STR_LEN + 1], rid[SVC_UUID_STR_LEN + 1];
    struct testapi_reply *r;
    json_t *p = NULL;

    new_tag(tag);
    p = create(path("%s-TTL", tag), "Fleeting Item", tag, "[]", 100, 4);
    snprintf(id, sizeof(id), "%s", testapi_str(p, "id"));
    json_decref(p);
    svc_uuid_v4_str(rid);
    r = testapi_call("POST", "/v1/reservations",
                     path("{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\","
                          "\"quantity\":3}],\"ttl\":1}",
                          rid, id));
    expect_status(r, 201, "reserve with a ttl of 1 s");
    ck_assert_int_eq(product_num(id, "available"), 1);
    /* The sweep runs every RESERVATION_SWEEP (5 s by default): released within 20 s. */
    p = NULL;
    for (int i = 0; i < 200; i++) {
        r = testapi_call("GET", path("/v1/reservations/%s", rid), NULL);
        expect_status(r, 200, "GET the reservation");
        json_decref(p);
        p = testapi_json(r);
        if (strcmp(testapi_str(p, "state"), "released") == 0)
            break;
        svc_sleep_ms(100);
    }
    ck_assert_str_eq(testapi_str(p, "state"), "released");
    ck_assert_str_eq(testapi_str(p, "release_reason"), "expired");
    json_decref(p);
    ck_assert_int_eq(product_num(id, "available"), 4);
    r = reservation_step(rid, "commit");
    testapi_assert_problem(r, 409, "reservation-state", "expired", NULL);
}
END_TEST

/* ---- the engine down ---------------------------------------------------------------------- */

/* Whatever the test did, OpenSearch runs afterwards (an unchecked fixture runs in the parent
 * process, after a failure or a timeout too). A no-op when it runs. */
static void opensearch_back_up(void)
{
    if (teststack("up opensearch") != 0)
        fprintf(stderr, "product_api_test: could not start opensearch again\n");
}

START_TEST(with_opensearch_down_it_answers_503_and_recovers)
{
    char tag[16], id[SVC_UUID_STR_LEN + 1], retry[64];
    struct testapi_reply *r;
    long ready = 0, get = 0, post = 0, search = 0;
    int up;
    json_t *p;

    new_tag(tag);
    p = create(path("%s-DOWN", tag), "Before Item", tag, "[]", 100, 1);
    snprintf(id, sizeof(id), "%s", testapi_str(p, "id"));
    json_decref(p);
    ck_assert_msg(teststack("stop opensearch") == 0, "stack.sh stop opensearch failed");
    for (int i = 0; i < 100 && ready != 503; i++) {
        ready = testapi_call("GET", "/readyz", NULL)->status;
        svc_sleep_ms(100);
    }
    r = testapi_call("GET", path("/v1/products/%s", id), NULL);
    get = r->status;
    snprintf(retry, sizeof(retry), "%s", testapi_header(r, "Retry-After"));
    post = testapi_call("POST", "/v1/products",
                        path("{\"sku\":\"%s-DURING\",\"name\":\"During\",\"category\":\"%s\","
                             "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
                             tag, tag))
               ->status;
    search = testapi_call("GET", path("/v1/products?q=during&category=%s", tag), NULL)->status;
    up = teststack("up opensearch");

    ck_assert_int_eq(ready, 503);
    ck_assert_int_eq(get, 503);
    ck_assert_str_eq(retry, "1");
    ck_assert_int_eq(post, 503);
    ck_assert_int_eq(search, 503);
    ck_assert_msg(up == 0, "stack.sh up opensearch failed");
    /* Back by itself, without a restart of product-svc, within 30 s. */
    for (int i = 0; i < 300 && ready != 200; i++) {
        ready = testapi_call("GET", "/readyz", NULL)->status;
        if (ready != 200)
            svc_sleep_ms(100);
    }
    ck_assert_int_eq(ready, 200);
    ck_assert_int_eq(product_num(id, "stock"), 1);
    /* The refused create left nothing behind. */
    prod_id_for_sku(path("%s-DURING", tag), id);
    r = testapi_call("GET", path("/v1/products/%s", id), NULL);
    testapi_assert_problem(r, 404, "not-found", id, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("product_api");
    TCase *api = tcase_create("api");
    TCase *down = tcase_create("opensearch down");

    tcase_add_checked_fixture(api, require_product_svc, NULL);
    tcase_set_timeout(api, 120);
    tcase_add_test(api, a_product_lives_created_read_changed_with_its_etag_and_deleted);
    tcase_add_test(api, facet_counts_are_exact_and_text_never_becomes_query_syntax);
    tcase_add_test(api, a_walk_in_pages_neither_repeats_nor_skips_while_products_change);
    tcase_add_test(api, of_100_concurrent_one_unit_reservations_on_30_exactly_30_pass);
    tcase_add_test(api, reservations_replay_and_keep_to_their_states);
    tcase_add_test(api, a_reservation_past_its_ttl_is_released_by_the_sweep);
    suite_add_tcase(s, api);

    tcase_add_checked_fixture(down, require_product_svc, NULL);
    tcase_add_unchecked_fixture(down, NULL, opensearch_back_up);
    tcase_set_timeout(down, 300);
    tcase_add_test(down, with_opensearch_down_it_answers_503_and_recovers);
    suite_add_tcase(s, down);
    return testenv_run(s);
}

/*
 * product-svc's outbox embedded in its documents, end to end (integration): every change's
 * event reaches the Kafka topic product-events, valid against schemas/events/; and nothing is
 * lost when the broker is stopped while products are written.
 *
 * The tests run the real product-svc binary (next to the stack's own, whose relay may publish
 * some of the same events: duplicates are allowed, losses are not) and stop Kafka with
 * deploy/local/stack.sh; the broker is started again after them, also when they fail.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PROD_SVC_BIN
#error "PROD_SVC_BIN: the product-svc binary"
#endif

static const char *brokers(void)
{
    const char *b = testenv_get("product-svc", "KAFKA_BROKERS");
    char url[256];

    snprintf(url, sizeof(url), "kafka://%s", b);
    testenv_require_port("kafka", testenv_port_of_url(url));
    return b;
}

/* Starts product-svc with its own settings and a short relay poll. */
static void start_svc(struct testproc *p)
{
    static const char *const keys[] = {"OPENSEARCH_URL", "OPENSEARCH_USER", "OPENSEARCH_PASSWORD",
                                       "KAFKA_BROKERS"};
    static char vars[4][512];
    const char *env[] = {vars[0], vars[1], vars[2], vars[3], "OUTBOX_POLL=100ms", NULL};

    for (size_t i = 0; i < 4; i++)
        snprintf(vars[i], sizeof(vars[i]), "%s=%s", keys[i], testenv_get("product-svc", keys[i]));
    testproc_start(p, PROD_SVC_BIN, "product-svc", env);
}

static void kafka_back_up(void)
{
    if (teststack("up kafka") != 0)
        fprintf(stderr, "product_outbox_test: could not start kafka again\n");
}

/* METHOD PATH on P with a JSON BODY (may be NULL) and an optional If-Match; expects WANT and
 * returns the body as JSON (NULL when empty; the caller drops it). */
static json_t *call(const struct testproc *p, const char *method, const char *path,
                    const char *if_match, const char *body, long want, char *etag, size_t cap)
{
    char url[512], h[160];
    const char *hs[] = {h, NULL};
    struct testhttp_resp r;
    json_t *j = NULL;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", p->port, path);
    snprintf(h, sizeof(h), "If-Match: %s", if_match != NULL ? if_match : "");
    r = testhttp_request(method, url, if_match != NULL ? hs : NULL,
                         body != NULL ? "application/json" : NULL, body);
    ck_assert_msg(r.status == want, "%s %s: %ld, expected %ld: %s", method, path, r.status, want,
                  r.body != NULL ? r.body : r.error);
    if (etag != NULL && testhttp_header(&r, "ETag", etag, cap) == NULL)
        etag[0] = '\0';
    if (r.body != NULL && r.len > 0)
        j = json_loads(r.body, 0, NULL);
    testhttp_resp_release(&r);
    return j;
}

/* The subjects a test waits for, and how many events of theirs. */
struct expect {
    char subjects[64][SVC_UUID_STR_LEN + 1];
    size_t nsubjects;
    const char *types[64]; /* each event type that must arrive, once per entry */
    const char *of[64];    /* ... about this subject */
    size_t ntypes;
};

static bool want_subject(const char *subject, void *arg)
{
    const struct expect *x = arg;

    for (size_t i = 0; i < x->nsubjects; i++)
        if (strcmp(subject, x->subjects[i]) == 0)
            return true;
    return false;
}

static size_t missing(const struct testconsumed *c, const struct expect *x)
{
    size_t n = 0;

    for (size_t t = 0; t < x->ntypes; t++) {
        bool found = false;

        for (size_t i = 0; i < c->n && !found; i++)
            found =
                strcmp(c->v[i].type, x->types[t]) == 0 && strcmp(c->v[i].subject, x->of[t]) == 0;
        n += !found;
    }
    return n;
}

static bool all_arrived(const struct testconsumed *c, void *arg)
{
    return missing(c, arg) == 0;
}

/* X waits for an event of TYPE about SUBJECT. */
static void expect_event(struct expect *x, const char *type, const char *subject)
{
    size_t i = 0;

    while (i < x->nsubjects && strcmp(x->subjects[i], subject) != 0)
        i++;
    if (i == x->nsubjects)
        snprintf(x->subjects[x->nsubjects++], SVC_UUID_STR_LEN + 1, "%s", subject);
    x->types[x->ntypes] = type;
    x->of[x->ntypes++] = x->subjects[i];
}

START_TEST(every_change_is_published_and_valid)
{
    static struct expect x;
    char u[SVC_UUID_STR_LEN + 1], sku[64], etag[128], id[SVC_UUID_STR_LEN + 1];
    char r1[SVC_UUID_STR_LEN + 1], r2[SVC_UUID_STR_LEN + 1], body[512];
    int64_t since = svc_wall_ms() - 2000;
    struct testconsumed got;
    struct testproc svc;
    json_t *p;
    const char **payloads;
    char out[4096];
    int status;

    memset(&x, 0, sizeof(x));
    start_svc(&svc);
    svc_uuid_v4_str(u);
    snprintf(sku, sizeof(sku), "it-outbox-%.8s", u);
    snprintf(body, sizeof(body),
             "{\"sku\":\"%s\",\"name\":\"Outbox Lamp\",\"category\":\"it-outbox\",\"tags\":"
             "[\"lamp\"],\"price_cents\":2500,\"currency\":\"EUR\",\"stock\":10}",
             sku);
    p = call(&svc, "POST", "/v1/products", NULL, body, 201, etag, sizeof(etag));
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(p, "id")));
    json_decref(p);
    {
        char path[128];

        snprintf(path, sizeof(path), "/v1/products/%s", id);
        json_decref(call(&svc, "PATCH", path, etag, "{\"price_cents\":1999}", 200, NULL, 0));
    }
    svc_uuid_v4_str(r1);
    svc_uuid_v4_str(r2);
    snprintf(body, sizeof(body),
             "{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\",\"quantity\":2}]}", r1,
             id);
    json_decref(call(&svc, "POST", "/v1/reservations", NULL, body, 201, NULL, 0));
    snprintf(body, sizeof(body),
             "{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\",\"quantity\":1}]}", r2,
             id);
    json_decref(call(&svc, "POST", "/v1/reservations", NULL, body, 201, NULL, 0));
    {
        char path[128];

        snprintf(path, sizeof(path), "/v1/reservations/%s/commit", r1);
        json_decref(call(&svc, "POST", path, NULL, NULL, 200, NULL, 0));
        snprintf(path, sizeof(path), "/v1/reservations/%s/release", r2);
        json_decref(call(&svc, "POST", path, NULL, NULL, 200, NULL, 0));
        snprintf(path, sizeof(path), "/v1/products/%s", id);
        json_decref(call(&svc, "DELETE", path, NULL, NULL, 204, NULL, 0));
    }
    expect_event(&x, EV_PRODUCT_CREATED, id);
    expect_event(&x, EV_PRODUCT_UPDATED, id);
    expect_event(&x, EV_PRODUCT_DELETED, id);
    expect_event(&x, EV_STOCK_RESERVED, r1);
    expect_event(&x, EV_STOCK_COMMITTED, r1);
    expect_event(&x, EV_STOCK_RESERVED, r2);
    expect_event(&x, EV_STOCK_RELEASED, r2);

    testconsume(brokers(), TOPIC_PRODUCT_EVENTS, since, want_subject, all_arrived, &x, 60, &got);
    ck_assert_msg(missing(&got, &x) == 0, "%zu of %zu events never arrived", missing(&got, &x),
                  x.ntypes);
    payloads = calloc(got.n, sizeof(*payloads));
    ck_assert_ptr_nonnull(payloads);
    for (size_t i = 0; i < got.n; i++) {
        payloads[i] = got.v[i].payload;
        /* The price change carries the old price. */
        if (strcmp(got.v[i].type, EV_PRODUCT_UPDATED) == 0)
            ck_assert_msg(strstr(got.v[i].payload, "\"old_price_cents\":2500") != NULL, "%s",
                          got.v[i].payload);
    }
    status = testevents_validate(payloads, got.n, out, sizeof(out));
    ck_assert_msg(status == 0, "validator exit %d: %s", status, out);
    free(payloads);
    testconsume_release(&got);
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
}
END_TEST

START_TEST(products_written_while_the_broker_is_down_are_published_after)
{
    enum { N = 40 };
    static struct expect x;
    char u[SVC_UUID_STR_LEN + 1], body[512];
    int64_t since = svc_wall_ms() - 2000;
    struct testconsumed got;
    struct testproc svc;
    double backlog = -1;

    memset(&x, 0, sizeof(x));
    start_svc(&svc);
    ck_assert_msg(teststack("stop kafka") == 0, "stack.sh stop kafka failed");
    svc_uuid_v4_str(u);
    /* Writes need only the engine: all succeed, and the service stays ready. */
    for (int i = 0; i < N; i++) {
        json_t *p;

        snprintf(body, sizeof(body),
                 "{\"sku\":\"it-down-%.8s-%02d\",\"name\":\"Offline Item %d\",\"category\":"
                 "\"it-down\",\"price_cents\":100,\"currency\":\"EUR\",\"stock\":1}",
                 u, i, i);
        p = call(&svc, "POST", "/v1/products", NULL, body, 201, NULL, 0);
        expect_event(&x, EV_PRODUCT_CREATED, json_string_value(json_object_get(p, "id")));
        json_decref(p);
    }
    ck_assert_int_eq(testproc_get(&svc, "/readyz", NULL), 200);
    for (int i = 0; i < 200 && backlog < N; i++) {
        svc_sleep_ms(100);
        backlog = testproc_metric(&svc, "outbox_backlog{outbox=\"product-svc\"}");
    }
    ck_assert_msg(backlog >= N, "outbox_backlog is %g with %d events pending", backlog, N);

    ck_assert_msg(teststack("up kafka") == 0, "stack.sh up kafka failed");
    testconsume(brokers(), TOPIC_PRODUCT_EVENTS, since, want_subject, all_arrived, &x, 90, &got);
    ck_assert_msg(missing(&got, &x) == 0,
                  "%zu of %d events never arrived after the broker came back", missing(&got, &x),
                  N);
    testconsume_release(&got);
    ck_assert_int_eq(testproc_stop(&svc, SIGTERM), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("product_outbox");
    TCase *relay = tcase_create("relay");
    TCase *faults = tcase_create("faults");

    tcase_set_timeout(relay, 120);
    tcase_add_test(relay, every_change_is_published_and_valid);
    suite_add_tcase(s, relay);
    tcase_add_checked_fixture(faults, kafka_back_up, NULL);
    tcase_add_unchecked_fixture(faults, NULL, kafka_back_up);
    tcase_set_timeout(faults, 180);
    tcase_add_test(faults, products_written_while_the_broker_is_down_are_published_after);
    suite_add_tcase(s, faults);
    return testenv_run(s);
}

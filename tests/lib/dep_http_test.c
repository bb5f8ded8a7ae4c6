/*
 * dep_http_test: what /readyz says about a service's dependencies, reported with
 * svc_dep_report() as a service's ready hook does.
 */
#include "svc/dep.h"
#include "svc/log.h"
#include "svc/server.h"
#include "testenv.h"
#include "testhttp.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static struct svc_dep *db, *broker;
static int probes;

static void db_probe(void *ctx)
{
    (void)ctx;
    probes++;
}

static void ready(void *app, struct svc_health *h)
{
    (void)app;
    svc_dep_report(db, h, NULL);
    svc_dep_report(broker, h, "events wait in the outbox (%d queued)", 3);
    svc_dep_report(NULL, h, "nothing: a dependency not created is not reported");
}

static const struct svc_route no_routes[] = {SVC_ROUTES_END};

static const struct svc_def def = {
    .name = "dep-svc",
    .version = "test",
    .routes = no_routes,
    .ready = ready,
};

/* GET /readyz: its status, and its body parsed (the caller decrefs). */
static json_t *readyz(struct svc_server *s, long *status)
{
    char url[64];
    struct testhttp_resp r;
    json_t *j;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", svc_server_port(s));
    r = testhttp_call("GET", url, NULL, NULL, NULL);
    *status = r.status;
    j = json_loads(r.body != NULL ? r.body : "", 0, NULL);
    ck_assert_msg(j != NULL, "/readyz answered no JSON: %s", r.body);
    testhttp_resp_release(&r);
    return j;
}

static json_t *check_of(json_t *body, const char *name)
{
    return json_object_get(json_object_get(body, "checks"), name);
}

START_TEST(readyz_lists_every_dependency_by_name)
{
    struct svc_http_opts o;
    struct svc_server *s;
    json_t *j;
    long status;

    svc_log_set_level(SVC_LOG_FATAL);
    db = svc_dep_new("postgres", 0, NULL);
    broker = svc_dep_new("kafka", SVC_DEP_OPTIONAL, "no broker connection");
    svc_dep_set_probe(db, db_probe, NULL);
    svc_http_opts_default(&o);
    o.access_log = false;
    s = svc_server_start(&def, &o);
    ck_assert_ptr_nonnull(s);

    /* The database up and Kafka not (yet) connected: ready, Kafka's state for information. */
    j = readyz(s, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ready");
    ck_assert_int_eq(json_object_size(json_object_get(j, "checks")), 2);
    ck_assert(json_is_true(json_object_get(check_of(j, "postgres"), "ok")));
    ck_assert_ptr_null(json_object_get(check_of(j, "postgres"), "detail"));
    ck_assert(json_is_true(json_object_get(check_of(j, "kafka"), "ok")));
    ck_assert_str_eq(json_string_value(json_object_get(check_of(j, "kafka"), "detail")),
                     "no broker connection: events wait in the outbox (3 queued)");
    ck_assert_int_eq(probes, 1);
    json_decref(j);

    /* The database down: not ready, and why. */
    svc_dep_down(db, "connect", "connection refused");
    svc_dep_up(broker);
    j = readyz(s, &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "not ready");
    ck_assert(json_is_false(json_object_get(check_of(j, "postgres"), "ok")));
    ck_assert_str_eq(json_string_value(json_object_get(check_of(j, "postgres"), "detail")),
                     "connection refused");
    ck_assert(json_is_true(json_object_get(check_of(j, "kafka"), "ok")));
    ck_assert_ptr_null(json_object_get(check_of(j, "kafka"), "detail"));
    json_decref(j);

    svc_dep_up(db);
    j = readyz(s, &status);
    ck_assert_int_eq(status, 200);
    json_decref(j);

    svc_server_stop(s);
    svc_dep_free(broker);
    svc_dep_free(db);
    svc_log_set_level(SVC_LOG_INFO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dep_http");
    TCase *tc = tcase_create("readyz");

    tcase_add_test(tc, readyz_lists_every_dependency_by_name);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

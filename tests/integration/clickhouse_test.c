/*
 * ClickHouse, as analytics-svc reaches it: libcurl to the HTTP interface, analytics_svc.
 */
#include "testenv.h"
#include "testhttp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char userpwd[256], base[256];

static void load_settings(void)
{
    const char *url = testenv_get("analytics-svc", "CLICKHOUSE_URL");

    snprintf(userpwd, sizeof(userpwd), "%s:%s", testenv_get("analytics-svc", "CLICKHOUSE_USER"),
             testenv_get("analytics-svc", "CLICKHOUSE_PASSWORD"));
    snprintf(base, sizeof(base), "%s/?database=%s", url,
             testenv_get("analytics-svc", "CLICKHOUSE_DATABASE"));
    testenv_require_port("clickhouse", testenv_port_of_url(url));
}

/* Runs SQL (with an optional data body after the query, as INSERT ... FORMAT wants). */
static struct testhttp_resp ch(const char *sql, const char *data)
{
    char url[1024], *q;
    struct testhttp_resp r;

    if (data == NULL)
        return testhttp_call("POST", base, userpwd, "text/plain", sql);
    /* INSERT with a body: the query goes in the URL, the rows in the body. */
    q = testhttp_escape(sql);
    ck_assert_ptr_nonnull(q);
    snprintf(url, sizeof(url), "%s&query=%s", base, q);
    free(q);
    r = testhttp_call("POST", url, userpwd, "application/x-ndjson", data);
    return r;
}

static void ch_ok(const char *sql, const char *data)
{
    struct testhttp_resp r = ch(sql, data);

    ck_assert_msg(r.status == 200, "clickhouse: '%s' -> %ld %s%s", sql, r.status, r.body, r.error);
    testhttp_resp_release(&r);
}

START_TEST(analytics_svc_writes_and_reads_back)
{
    const char *table = testenv_unique("it_ch");
    char sql[512];
    struct testhttp_resp r;

    load_settings();
    snprintf(sql, sizeof(sql),
             "CREATE TABLE analytics.%s (id UInt64, type String, at DateTime) "
             "ENGINE = MergeTree() ORDER BY id",
             table);
    ch_ok(sql, NULL);

    snprintf(sql, sizeof(sql), "INSERT INTO analytics.%s FORMAT JSONEachRow", table);
    ch_ok(sql, "{\"id\":1,\"type\":\"user.registered\",\"at\":\"2026-11-24 10:00:00\"}\n"
               "{\"id\":2,\"type\":\"order.placed\",\"at\":\"2026-11-24 10:00:01\"}\n");

    snprintf(sql, sizeof(sql), "SELECT id, type FROM analytics.%s ORDER BY id FORMAT TabSeparated",
             table);
    r = ch(sql, NULL);
    ck_assert_msg(r.status == 200, "select -> %ld %s", r.status, r.body);
    ck_assert_str_eq(r.body, "1\tuser.registered\n2\torder.placed\n");
    testhttp_resp_release(&r);

    snprintf(sql, sizeof(sql), "DROP TABLE analytics.%s", table);
    ch_ok(sql, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clickhouse");
    TCase *tc = tcase_create("analytics_svc");

    tcase_add_test(tc, analytics_svc_writes_and_reads_back);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

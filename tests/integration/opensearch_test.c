/*
 * OpenSearch (Elasticsearch REST API), as product-svc reaches it: libcurl and JSON, logged in as
 * product_svc with the credentials of its env file.
 */
#include "testenv.h"
#include "testhttp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char base[256];
static char userpwd[256];

static json_t *call(const char *method, const char *path, const char *ct, const char *body,
                    long want)
{
    char url[512];
    struct testhttp_resp r;
    json_error_t jerr;
    json_t *doc;

    snprintf(url, sizeof(url), "%s%s", base, path);
    r = testhttp_call(method, url, userpwd, ct, body);
    ck_assert_msg(r.status == want, "opensearch: %s %s -> %ld (want %ld) %s%s", method, path,
                  r.status, want, r.body, r.error);
    doc = json_loads(r.body, 0, &jerr);
    ck_assert_msg(doc != NULL, "opensearch: %s %s: not JSON: %s", method, path, jerr.text);
    testhttp_resp_release(&r);
    return doc;
}

START_TEST(product_svc_indexes_searches_and_reads_back)
{
    const char *url = testenv_get("product-svc", "OPENSEARCH_URL");
    const char *index = testenv_unique("it-os");
    char path[256];
    json_t *doc, *hits;

    testenv_require_port("opensearch", testenv_port_of_url(url));
    snprintf(base, sizeof(base), "%s/", url);
    snprintf(userpwd, sizeof(userpwd), "%s:%s", testenv_get("product-svc", "OPENSEARCH_USER"),
             testenv_get("product-svc", "OPENSEARCH_PASSWORD"));

    snprintf(path, sizeof(path), "%s", index);
    doc = call("PUT", path, "application/json",
               "{\"settings\":{\"number_of_shards\":1,\"number_of_replicas\":0},"
               "\"mappings\":{\"properties\":{\"name\":{\"type\":\"text\","
               "\"analyzer\":\"english\"},\"sku\":{\"type\":\"keyword\"},"
               "\"price_cents\":{\"type\":\"long\"}}}}",
               200);
    ck_assert(json_is_true(json_object_get(doc, "acknowledged")));
    json_decref(doc);

    snprintf(path, sizeof(path), "%s/_doc/sku-1?refresh=true", index);
    doc = call("PUT", path, "application/json",
               "{\"name\":\"Running shoes\",\"sku\":\"sku-1\",\"price_cents\":8900}", 201);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "result")), "created");
    json_decref(doc);

    snprintf(path, sizeof(path), "%s/_doc/sku-1", index);
    doc = call("GET", path, NULL, NULL, 200);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(doc, "_source"), "price_cents")), 8900);
    json_decref(doc);

    /* The english analyzer stems "shoe" to match "shoes". */
    snprintf(path, sizeof(path), "%s/_search", index);
    doc =
        call("POST", path, "application/json", "{\"query\":{\"match\":{\"name\":\"shoe\"}}}", 200);
    hits = json_object_get(json_object_get(doc, "hits"), "hits");
    ck_assert_uint_eq(json_array_size(hits), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(hits, 0), "_id")), "sku-1");
    json_decref(doc);

    doc = call("DELETE", index, NULL, NULL, 200);
    json_decref(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("opensearch");
    TCase *tc = tcase_create("product_svc");

    tcase_add_test(tc, product_svc_indexes_searches_and_reads_back);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

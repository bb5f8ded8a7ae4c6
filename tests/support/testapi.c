#include "testapi.h"

#include <check.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static char base_url[128];

void testapi_base(const char *base)
{
    snprintf(base_url, sizeof(base_url), "%s", base);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct testapi_reply *r = ud;
    size_t k = size * n;

    if (r->len + k >= sizeof(r->body))
        k = sizeof(r->body) - r->len - 1;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct testapi_reply *r = ud;
    size_t k = size * n;

    if (r->hlen + k >= sizeof(r->headers))
        k = sizeof(r->headers) - r->hlen - 1;
    memcpy(r->headers + r->hlen, p, k);
    r->hlen += k;
    r->headers[r->hlen] = '\0';
    return size * n;
}

struct testapi_reply *testapi_call_h(const char *method, const char *path,
                                     const char *const *headers, const char *body)
{
    static struct testapi_reply r;
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    bool has_ct = false;
    char url[2048];
    CURLcode rc;

    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    for (int i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
        has_ct |= strncasecmp(headers[i], "Content-Type:", 13) == 0;
    }
    if (body != NULL && !has_ct)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    rc = curl_easy_perform(h);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return &r;
}

struct testapi_reply *testapi_call(const char *method, const char *path, const char *body)
{
    return testapi_call_h(method, path, NULL, body);
}

const char *testapi_header(const struct testapi_reply *r, const char *name)
{
    static char out[1024];
    size_t n = strlen(name);
    const char *p = r->headers;

    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *end;

            while (*v == ' ')
                v++;
            end = v + strcspn(v, "\r\n");
            snprintf(out, sizeof(out), "%.*s", (int)(end - v), v);
            return out;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return out;
}

json_t *testapi_json(const struct testapi_reply *r)
{
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);

    ck_assert_msg(j != NULL, "body is not JSON (%s): %s", err.text, r->body);
    return j;
}

const char *testapi_str(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));

    ck_assert_msg(s != NULL, "member '%s' is not a string", key);
    return s;
}

long long testapi_num(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    ck_assert_msg(json_is_integer(v), "member '%s' is not an integer", key);
    return json_integer_value(v);
}

void testapi_assert_problem(const struct testapi_reply *r, long status, const char *slug,
                            const char *want, const char *field)
{
    char type[128], rid[160];
    json_t *j;

    ck_assert_msg(r->status == status, "status %ld, not %ld: %s", r->status, status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/problem+json");
    snprintf(rid, sizeof(rid), "%s", testapi_header(r, "X-Request-Id"));
    j = testapi_json(r);
    snprintf(type, sizeof(type), "urn:polyglot:problem:%s", slug);
    ck_assert_str_eq(testapi_str(j, "type"), type);
    ck_assert_int_gt(strlen(testapi_str(j, "title")), 0);
    ck_assert_int_eq(testapi_num(j, "status"), status);
    ck_assert_msg(strstr(testapi_str(j, "detail"), want) != NULL, "detail '%s' does not say '%s'",
                  testapi_str(j, "detail"), want);
    ck_assert_str_eq(testapi_str(j, "instance"), rid);
    if (field != NULL)
        ck_assert_str_eq(testapi_str(j, "field"), field);
    json_decref(j);
}

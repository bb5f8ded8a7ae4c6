#include "testhttp.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct testhttp_resp *r = userdata;
    size_t n = size * nmemb;
    char *p = realloc(r->body, r->len + n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + r->len, data, n);
    r->len += n;
    p[r->len] = '\0';
    r->body = p;
    return n;
}

struct testhttp_resp testhttp_call(const char *method, const char *url, const char *userpwd,
                                   const char *content_type, const char *body)
{
    struct testhttp_resp r = {0};
    struct curl_slist *headers = NULL;
    char ct[128];
    CURLcode rc;
    CURL *h = curl_easy_init();

    if (h == NULL) {
        snprintf(r.error, sizeof(r.error), "curl_easy_init failed");
        return r;
    }
    r.body = calloc(1, 1);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (userpwd != NULL)
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    if (content_type != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    }
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    else
        snprintf(r.error, sizeof(r.error), "%s", curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return r;
}

void testhttp_resp_release(struct testhttp_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *testhttp_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e != NULL ? strdup(e) : NULL;

    curl_free(e);
    return copy;
}

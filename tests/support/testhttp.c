#include "testhttp.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The header lines of testhttp_request()'s response, as curl hands them over one by one. */
struct header_sink {
    struct testhttp_resp *r;
    size_t len;
};

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct header_sink *h = userdata;
    size_t n = size * nmemb;
    char *p;

    /* A status line starts a new response (after a 100 Continue, say): keep the last one. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        h->len = 0;
    p = realloc(h->r->headers, h->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + h->len, data, n);
    h->len += n;
    p[h->len] = '\0';
    h->r->headers = p;
    return n;
}

struct testhttp_resp testhttp_request(const char *method, const char *url,
                                      const char *const *headers, const char *content_type,
                                      const char *body)
{
    struct testhttp_resp r = {0};
    struct header_sink sink = {&r, 0};
    struct curl_slist *list = NULL;
    char ct[128];
    CURLcode rc;
    CURL *h = curl_easy_init();

    if (h == NULL) {
        snprintf(r.error, sizeof(r.error), "curl_easy_init failed");
        return r;
    }
    r.body = calloc(1, 1);
    r.headers = calloc(1, 1);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (content_type != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        list = curl_slist_append(list, ct);
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        list = curl_slist_append(list, headers[i]);
    if (list != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    else
        snprintf(r.error, sizeof(r.error), "%s", curl_easy_strerror(rc));
    curl_slist_free_all(list);
    curl_easy_cleanup(h);
    return r;
}

const char *testhttp_header(const struct testhttp_resp *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);

    for (const char *line = r->headers; line != NULL && *line != '\0';) {
        const char *end = line + strcspn(line, "\r\n");

        if ((size_t)(end - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;

            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            snprintf(out, cap, "%.*s", (int)(end - v), v);
            return out;
        }
        line = end + strspn(end, "\r\n");
    }
    return NULL;
}

void testhttp_resp_release(struct testhttp_resp *r)
{
    free(r->body);
    free(r->headers);
    r->body = NULL;
    r->headers = NULL;
    r->len = 0;
}

char *testhttp_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e != NULL ? strdup(e) : NULL;

    curl_free(e);
    return copy;
}

#include "svc/client.h"

#include "svc/alloc.h"
#include "svc/buf.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;
static pthread_key_t handle_key;

/*
 * The calling thread's easy handle. curl keeps its connection cache in the handle, so reusing
 * one handle per thread is what makes keep-alive work. The same pointer is stored under
 * handle_key only so that its destructor runs when the thread exits.
 */
static _Thread_local CURL *tl_handle;
static _Thread_local uint64_t tl_rand;
static _Thread_local struct svc_metric *tl_requests, *tl_duration;

static const char *const request_labels[] = {"host", "status", NULL};
static const char *const duration_labels[] = {"host", NULL};

static void free_handle(void *h)
{
    /* Runs on the exiting thread itself, so the thread-local can be cleared too. */
    curl_easy_cleanup(h);
    tl_handle = NULL;
}

static void global_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        svc_log_error("curl_global_init failed");
        global_rc = SVC_EINTERNAL;
        return;
    }
    if (pthread_key_create(&handle_key, free_handle) != 0) {
        svc_log_error("pthread_key_create failed for the http client");
        global_rc = SVC_EINTERNAL;
    }
}

int svc_client_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

void svc_client_thread_release(void)
{
    tl_requests = tl_duration = NULL;
    if (tl_handle == NULL)
        return;
    pthread_setspecific(handle_key, NULL);
    curl_easy_cleanup(tl_handle);
    tl_handle = NULL;
}

static CURL *thread_handle(void)
{
    if (tl_handle != NULL)
        return tl_handle;
    tl_handle = curl_easy_init();
    if (tl_handle != NULL && pthread_setspecific(handle_key, tl_handle) != 0) {
        curl_easy_cleanup(tl_handle);
        tl_handle = NULL;
    }
    return tl_handle;
}

/* A uniform value in [0, n] (splitmix64; jitter needs spread, not secrecy). */
static long random_upto(long n)
{
    uint64_t z;

    if (tl_rand == 0) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        tl_rand =
            ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&tl_rand ^ (uint64_t)getpid() ^ 1;
    }
    z = (tl_rand += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return n <= 0 ? 0 : (long)(z % ((uint64_t)n + 1));
}

/* Where a call goes, in the two shapes that may leave this file: a URL for logs, without the
 * user info and the query string (either can carry a password), and host:port for metrics. */
struct target {
    struct svc_buf url;
    struct svc_buf host;
};

static void target_release(struct target *t)
{
    svc_buf_release(&t->url);
    svc_buf_release(&t->host);
}

static int target_parse(struct target *t, const char *url)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    CURLU *u = curl_url();
    int rc = SVC_EINVAL;

    svc_buf_init(&t->url, 0);
    svc_buf_init(&t->host, 0);
    if (u == NULL)
        return SVC_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        goto out;
    svc_buf_addf(&t->host, "%s:%s", host, port);
    svc_buf_addf(&t->url, "%s://%s:%s%s", scheme, host, port, path);
    rc = 0;
out:
    curl_free(path);
    curl_free(port);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* A header value or method is sent as is, so it must not be able to start a new line. */
static bool is_header_safe(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

static bool is_method(const char *m)
{
    if (*m == '\0')
        return false;
    for (; *m != '\0'; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

static bool is_idempotent_method(const char *m)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", NULL};

    for (const char *const *s = safe; *s != NULL; s++)
        if (strcmp(m, *s) == 0)
            return true;
    return false;
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);

    for (const char *const *h = headers; h != NULL && *h != NULL; h++)
        if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':')
            return true;
    return false;
}

static int slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return SVC_ENOMEM;
    *list = l;
    return 0;
}

static int slist_addf(struct curl_slist **list, const char *name, const char *value)
{
    struct svc_buf b = SVC_BUF_INIT;
    int rc;

    if (!is_header_safe(value))
        return SVC_EINVAL;
    svc_buf_addf(&b, "%s: %s", name, value);
    rc = slist_add(list, svc_buf_str(&b));
    svc_buf_release(&b);
    return rc;
}

static int build_headers(const struct svc_client_req *req, struct curl_slist **list)
{
    int rc = 0;

    for (const char *const *h = req->headers; rc == 0 && h != NULL && *h != NULL; h++)
        rc = is_header_safe(*h) && strchr(*h, ':') != NULL ? slist_add(list, *h) : SVC_EINVAL;
    if (rc == 0 && req->content_type != NULL)
        rc = slist_addf(list, "Content-Type", req->content_type);
    else if (rc == 0 && !has_header(req->headers, "Content-Type"))
        /* Never curl's form-urlencoded default: octet-stream for a body, nothing otherwise. */
        rc = slist_add(list, req->body != NULL ? "Content-Type: application/octet-stream"
                                               : "Content-Type:");
    if (rc == 0 && req->request_id != NULL)
        rc = slist_addf(list, "X-Request-Id", req->request_id);
    if (rc == 0 && req->traceparent != NULL)
        rc = slist_addf(list, "traceparent", req->traceparent);
    /* Expect: 100-continue costs a round trip on every large body, for nothing between our
     * own services and engines. */
    if (rc == 0)
        rc = slist_add(list, "Expect:");
    return rc;
}

/* What one attempt collects. */
struct attempt {
    struct svc_buf body;
    struct svc_buf headers; /* "name\0value\0" pairs */
    bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct attempt *a = userdata;
    size_t n = size * nmemb;

    if (svc_buf_add(&a->body, data, n) != 0) {
        a->too_big = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct attempt *a = userdata;
    size_t n = size * nmemb, name_len, start, end;
    const char *colon;

    /* A status line starts a new answer (after a 100 Continue, say): forget the previous. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        svc_buf_reset(&a->headers);
        return n;
    }
    colon = memchr(data, ':', n);
    if (colon == NULL || colon == data || data[0] == ' ' || data[0] == '\t')
        return n; /* the blank line, or an obsolete folded line */
    name_len = (size_t)(colon - data);
    start = name_len + 1;
    end = n;
    while (start < end && (data[start] == ' ' || data[start] == '\t'))
        start++;
    while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n' || data[end - 1] == ' ' ||
                           data[end - 1] == '\t'))
        end--;
    if (svc_buf_add(&a->headers, data, name_len) != 0 || svc_buf_addc(&a->headers, '\0') != 0 ||
        svc_buf_add(&a->headers, data + start, end - start) != 0 ||
        svc_buf_addc(&a->headers, '\0') != 0) {
        a->too_big = true;
        return 0;
    }
    return n;
}

static const char *header_in(const struct svc_buf *h, const char *name)
{
    const char *p = h->data, *end = h->data + h->len;

    if (p == NULL)
        return NULL;
    while (p < end) {
        const char *value = p + strlen(p) + 1;

        if (value >= end)
            break;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *svc_client_resp_header(const struct svc_client_resp *resp, const char *name)
{
    return header_in(&resp->headers, name);
}

void svc_client_resp_release(struct svc_client_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
    svc_buf_release(&resp->headers);
}

/* Retry-After in seconds, in milliseconds; -1 when absent or given as a date. */
static long retry_after_ms(const struct svc_buf *headers)
{
    const char *v = header_in(headers, "retry-after");
    char *end;
    long s;

    if (v == NULL || *v < '0' || *v > '9')
        return -1;
    errno = 0;
    s = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || s > LONG_MAX / 1000)
        return -1;
    return s * 1000;
}

static bool is_retryable_status(long status)
{
    return status == 502 || status == 503 || status == 504;
}

/* The one place CURLcode becomes SVC_E*. */
static int map_curl_error(CURLcode cc, bool too_big)
{
    if (too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return SVC_EBADGATEWAY;
    switch (cc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        return SVC_EUNAVAILABLE;
    case CURLE_OPERATION_TIMEDOUT:
        return SVC_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return SVC_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_FAILED_INIT:
        return SVC_EINTERNAL;
    default:
        /* Sent or received half an answer, or one that is not HTTP: the dependency misbehaved. */
        return SVC_EBADGATEWAY;
    }
}

/* A failure worth another attempt, when the request may be repeated. A broken-off answer may
 * be a dependency restarting; an answer that is too big will be too big again. */
static bool is_retryable_error(int rc, bool too_big)
{
    return !too_big && (rc == SVC_EUNAVAILABLE || rc == SVC_ETIMEDOUT || rc == SVC_EBADGATEWAY);
}

static const char *status_label(int rc, long status, char *buf, size_t cap)
{
    if (rc == 0) {
        snprintf(buf, cap, "%ld", status);
        return buf;
    }
    return rc == SVC_ETIMEDOUT ? "timeout" : rc == SVC_EUNAVAILABLE ? "unavailable" : "error";
}

static void count_attempt(const struct target *t, int rc, long status, double seconds)
{
    char buf[24];
    const char *host[] = {svc_buf_str(&t->host)};
    const char *values[] = {svc_buf_str(&t->host), status_label(rc, status, buf, sizeof(buf))};

    /* Declared once per thread, not per call: a declaration takes the metrics registry's
     * global lock, which updates never do. */
    if (tl_requests == NULL) {
        tl_requests = svc_counter_new("http_client_requests_total",
                                      "Outgoing HTTP requests, by host and status", request_labels);
        tl_duration = svc_histogram_new("http_client_request_duration_seconds",
                                        "Outgoing HTTP request latency, by host", duration_labels,
                                        svc_metrics_latency_buckets, svc_metrics_latency_nbuckets);
    }
    svc_counter_inc(tl_requests, values);
    svc_histogram_observe(tl_duration, host, seconds);
}

static void log_failure(const char *method, const struct target *t, int attempt, int max_attempts,
                        const char *reason, bool will_retry)
{
    struct svc_buf f = SVC_BUF_INIT;
    const char *url = svc_buf_str(&t->url);

    svc_buf_adds(&f, "\"method\":");
    svc_buf_add_json_str(&f, method, strlen(method));
    svc_buf_adds(&f, ",\"url\":");
    svc_buf_add_json_str(&f, url, strlen(url));
    svc_buf_addf(&f, ",\"attempt\":%d,\"max_attempts\":%d,\"reason\":", attempt, max_attempts);
    svc_buf_add_json_str(&f, reason, strlen(reason));
    svc_buf_addf(&f, ",\"will_retry\":%s", will_retry ? "true" : "false");
    svc_log_fields(SVC_LOG_WARN, svc_buf_str(&f), "http call %s '%s' failed (attempt %d of %d): %s",
                   method, url, attempt, max_attempts, reason);
    svc_buf_release(&f);
}

static long or_default(long v, long def)
{
    return v > 0 ? v : def;
}

/* Sets the options that stay the same across the attempts of one call. */
static void set_options(CURL *h, const struct svc_client_req *req, const char *method,
                        struct curl_slist *headers, struct attempt *a, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    /* Refuses an announced Content-Length over the cap before reading the body. */
    curl_easy_setopt(
        h, CURLOPT_MAXFILESIZE_LARGE,
        (curl_off_t)(req->max_response > 0 ? req->max_response : SVC_CLIENT_MAX_RESPONSE));
    if (req->userpwd != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, req->userpwd);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && req->body == NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (req->body != NULL) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                   strcmp(method, "PATCH") == 0) {
            /* An empty body still gets its Content-Length: 0; some servers demand one. */
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        }
    }
}

static void attempt_reset(struct attempt *a, size_t max_response)
{
    svc_buf_release(&a->body);
    svc_buf_release(&a->headers);
    svc_buf_init(&a->body, max_response);
    svc_buf_init(&a->headers, SVC_CLIENT_MAX_HEADERS);
    a->too_big = false;
}

/* How long to wait before attempt number ATTEMPT + 1: what the answer's Retry-After asks for,
 * capped, or else full jitter over an exponentially growing ceiling. */
static long backoff_ms(const struct svc_client_req *req, int attempt, long status,
                       const struct svc_buf *headers)
{
    long base = or_default(req->backoff_base_ms, SVC_CLIENT_BACKOFF_BASE_MS);
    long max = or_default(req->backoff_max_ms, SVC_CLIENT_BACKOFF_MAX_MS);
    long ceiling = base;
    long ra = status != 0 ? retry_after_ms(headers) : -1;

    if (ra >= 0) {
        long cap = or_default(req->retry_after_max_ms, SVC_CLIENT_RETRY_AFTER_MAX_MS);
        return ra < cap ? ra : cap;
    }
    for (int i = 1; i < attempt && ceiling < max; i++)
        ceiling *= 2;
    return random_upto(ceiling < max ? ceiling : max);
}

int svc_client_call(const struct svc_client_req *req, struct svc_client_resp *resp)
{
    const char *method = req->method != NULL ? req->method : "GET";
    size_t max_response = req->max_response > 0 ? req->max_response : SVC_CLIENT_MAX_RESPONSE;
    long timeout = or_default(req->timeout_ms, SVC_CLIENT_TIMEOUT_MS);
    long connect_timeout = or_default(req->connect_timeout_ms, SVC_CLIENT_CONNECT_TIMEOUT_MS);
    struct attempt a = {SVC_BUF_INIT, SVC_BUF_INIT, false};
    struct curl_slist *headers = NULL;
    struct target t;
    char errbuf[CURL_ERROR_SIZE];
    int max_attempts = 1, rc;
    int64_t start = svc_now_ms();
    CURL *h;

    memset(resp, 0, sizeof(*resp));
    resp->body = svc_strdup("");
    if (req->url == NULL || !is_method(method))
        return SVC_EINVAL;
    rc = svc_client_global_init();
    if (rc != 0)
        return rc;
    rc = target_parse(&t, req->url);
    if (rc != 0)
        goto out_target;
    rc = build_headers(req, &headers);
    if (rc != 0)
        goto out_headers;
    h = thread_handle();
    if (h == NULL) {
        rc = SVC_ENOMEM;
        goto out_headers;
    }
    if (req->idempotent || is_idempotent_method(method)) {
        int retries = req->max_retries == 0 ? SVC_CLIENT_MAX_RETRIES : req->max_retries;
        max_attempts += retries < 0                          ? 0
                        : retries > SVC_CLIENT_RETRIES_LIMIT ? SVC_CLIENT_RETRIES_LIMIT
                                                             : retries;
    }
    set_options(h, req, method, headers, &a, errbuf);

    for (int attempt = 1;; attempt++) {
        long this_timeout = timeout, status = 0, wait;
        int64_t began;
        CURLcode cc;
        char reason[CURL_ERROR_SIZE + 64];
        bool will_retry, too_big;

        if (req->deadline_ms > 0) {
            int64_t left = req->deadline_ms - (svc_now_ms() - start);
            if (left < this_timeout)
                this_timeout = left > 1 ? (long)left : 1;
        }
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, this_timeout);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         connect_timeout < this_timeout ? connect_timeout : this_timeout);
        attempt_reset(&a, max_response);
        errbuf[0] = '\0';
        began = svc_now_ms();
        cc = curl_easy_perform(h);
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        rc = map_curl_error(cc, a.too_big);
        count_attempt(&t, rc, status, (double)(svc_now_ms() - began) / 1000.0);
        resp->attempts = attempt;
        resp->status = status;
        if (rc == 0 && !is_retryable_status(status))
            break;

        too_big = a.too_big || cc == CURLE_FILESIZE_EXCEEDED;
        if (too_big)
            snprintf(reason, sizeof(reason), "answer larger than %zu bytes", max_response);
        else if (rc != 0)
            snprintf(reason, sizeof(reason), "%s",
                     errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
        else
            snprintf(reason, sizeof(reason), "status %ld", status);
        will_retry = attempt < max_attempts && (rc == 0 || is_retryable_error(rc, too_big));
        wait = will_retry ? backoff_ms(req, attempt, status, &a.headers) : 0;
        if (will_retry && req->deadline_ms > 0 &&
            svc_now_ms() - start + wait >= (int64_t)req->deadline_ms)
            will_retry = false;
        log_failure(method, &t, attempt, max_attempts, reason, will_retry);
        if (!will_retry)
            break;
        if (wait > 0)
            svc_sleep_ms(wait);
    }

    if (rc == 0) {
        free(resp->body);
        resp->body = svc_buf_detach(&a.body, &resp->len);
        resp->headers = a.headers;
        svc_buf_init(&a.headers, 0);
    } else {
        resp->status = 0;
    }
    svc_buf_release(&a.body);
    svc_buf_release(&a.headers);
    /* Forgets this call's options, which point into this stack frame; keeps the connection and
     * DNS caches for the next call. */
    curl_easy_reset(h);
out_headers:
    curl_slist_free_all(headers);
out_target:
    target_release(&t);
    return rc;
}

int svc_client_call_json(const struct svc_client_req *req, const json_t *body,
                         struct svc_client_resp *resp, json_t **out)
{
    struct svc_client_req r = *req;
    const char **headers = NULL;
    char *text = NULL;
    size_t n = 0;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL) {
            memset(resp, 0, sizeof(*resp));
            resp->body = svc_strdup("");
            return SVC_EINTERNAL;
        }
        r.body = text;
        r.body_len = strlen(text);
        if (r.content_type == NULL && !has_header(req->headers, "Content-Type"))
            r.content_type = "application/json";
    }
    if (!has_header(req->headers, "Accept")) {
        while (req->headers != NULL && req->headers[n] != NULL)
            n++;
        headers = svc_malloc((n + 2) * sizeof(*headers));
        for (size_t i = 0; i < n; i++)
            headers[i] = req->headers[i];
        headers[n] = "Accept: application/json";
        headers[n + 1] = NULL;
        r.headers = headers;
    }
    rc = svc_client_call(&r, resp);
    if (rc == 0 && out != NULL && resp->len > 0) {
        json_error_t err;

        *out = json_loadb(resp->body, resp->len, JSON_DECODE_ANY, &err);
        if (*out == NULL && resp->status >= 200 && resp->status < 300) {
            struct target t;

            if (target_parse(&t, req->url) == 0)
                svc_log_warn("malformed json from '%s' (status %ld): %s at line %d column %d",
                             svc_buf_str(&t.url), resp->status, err.text, err.line, err.column);
            target_release(&t);
            rc = SVC_EBADGATEWAY;
        }
    }
    free(headers);
    free(text);
    return rc;
}

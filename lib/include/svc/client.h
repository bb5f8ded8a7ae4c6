/*
 * client.h: the outgoing HTTP client, for calls to other services and to HTTP engines
 * (OpenSearch, ClickHouse).
 *
 * Built on libcurl easy handles. Each thread keeps one handle and reuses it from call to call,
 * so connections to a dependency stay open (keep-alive) and a call usually costs no TCP
 * handshake. The handle is cleaned up when the thread exits, or earlier with
 * svc_client_thread_release().
 *
 * A call is retried, with exponential backoff and full jitter, only when repeating it is safe:
 * for GET, HEAD, PUT, DELETE and OPTIONS, or when the caller marks it idempotent (a POST that
 * carries an Idempotency-Key). It is retried after a connection failure, a timeout or a
 * 502/503/504 answer, waiting what Retry-After asks for (capped) when the answer has one.
 *
 * The dependency's HTTP status is data, not an error: a 404 from a dependency is returned as
 * status 404 with 0, and the caller decides what it means. Errors are for calls that got no
 * usable answer:
 *   SVC_EUNAVAILABLE  could not connect (refused, unresolvable host, TLS handshake failed)
 *   SVC_ETIMEDOUT     the connect or total timeout expired
 *   SVC_EBADGATEWAY   the answer was too big, broken off, or (JSON helper) not JSON
 *   SVC_EINVAL        a malformed request (no URL, not http(s), CR/LF in a header value)
 *   SVC_EINTERNAL     libcurl refused the request (a bug in the caller or here)
 *   SVC_ENOMEM        libcurl ran out of memory
 * Every failed attempt is logged at warn level with the method, the URL without credentials or
 * query string (both can carry secrets), the attempt number and the reason. Every attempt is
 * counted in http_client_requests_total{host,status} (status is the HTTP code, or "timeout",
 * "unavailable", "error") and timed in http_client_request_duration_seconds{host}.
 *
 * Call svc_client_global_init() once before the first call, while the process has one thread
 * if possible (libcurl's global init is not thread-safe against other libraries using it).
 */
#ifndef SVC_CLIENT_H
#define SVC_CLIENT_H

#include "svc/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Defaults for the fields of struct svc_client_req left at 0. */
enum {
    SVC_CLIENT_CONNECT_TIMEOUT_MS = 2000,
    SVC_CLIENT_TIMEOUT_MS = 10000,
    SVC_CLIENT_MAX_RETRIES = 2,
    SVC_CLIENT_RETRIES_LIMIT = 10, /* max_retries is capped here */
    SVC_CLIENT_BACKOFF_BASE_MS = 50,
    SVC_CLIENT_BACKOFF_MAX_MS = 2000,
    SVC_CLIENT_RETRY_AFTER_MAX_MS = 5000,
    SVC_CLIENT_MAX_RESPONSE = 16 * 1024 * 1024,
    SVC_CLIENT_MAX_HEADERS = 64 * 1024,
};

/* For max_retries: never retry. */
#define SVC_CLIENT_NO_RETRY (-1)

/*
 * One call. Fill it with a designated initializer; every field left at 0 or NULL takes its
 * default. Nothing here is copied or freed: the strings and the body must stay valid for the
 * duration of the call.
 */
struct svc_client_req {
    const char *method;         /* "GET" when NULL */
    const char *url;            /* http:// or https://; may hold user:password@ */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;           /* sent when not NULL (may be "" with body_len 0) */
    size_t body_len;
    const char *content_type; /* of the body; "application/octet-stream" when NULL */
    const char *userpwd;      /* "user:password" for basic auth, or NULL */
    long connect_timeout_ms;  /* per attempt; 0: SVC_CLIENT_CONNECT_TIMEOUT_MS */
    long timeout_ms;          /* per attempt, connect included; 0: SVC_CLIENT_TIMEOUT_MS */
    long deadline_ms;         /* whole call, retries and waits included; 0: none */
    int max_retries;          /* after the first attempt; 0: default, SVC_CLIENT_NO_RETRY */
    bool idempotent;          /* retry even a POST or PATCH (it carries an Idempotency-Key) */
    long backoff_base_ms;     /* first backoff ceiling; 0: SVC_CLIENT_BACKOFF_BASE_MS */
    long backoff_max_ms;      /* backoff ceiling; 0: SVC_CLIENT_BACKOFF_MAX_MS */
    long retry_after_max_ms;  /* cap on a Retry-After wait; 0: SVC_CLIENT_RETRY_AFTER_MAX_MS */
    const char *request_id;   /* sent as X-Request-Id when not NULL */
    const char *traceparent;  /* sent as traceparent when not NULL */
    size_t max_response;      /* body bytes accepted; 0: SVC_CLIENT_MAX_RESPONSE */
};

/*
 * The answer to a call. Filled by svc_client_call(), which overwrites whatever RESP held: after
 * any return, release it with svc_client_resp_release().
 */
struct svc_client_resp {
    long status;            /* HTTP status of the last attempt; 0 when none answered */
    char *body;             /* NUL-terminated body of the last answer; "" when none */
    size_t len;             /* bytes in body, not counting the NUL */
    int attempts;           /* attempts made, 1 or more when the request was valid */
    struct svc_buf headers; /* the last answer's headers; read with svc_client_resp_header() */
};

/* Initializes libcurl once per process. Idempotent and thread-safe. 0 or SVC_EINTERNAL. */
int svc_client_global_init(void);

/*
 * Performs REQ, with retries as described above, and fills RESP with the last answer.
 * Returns 0 when an answer arrived, whatever its status, or a negative SVC_E* (see above).
 * Calls svc_client_global_init() itself if nobody has.
 */
int svc_client_call(const struct svc_client_req *req, struct svc_client_resp *resp);

/*
 * svc_client_call() with JSON on both sides. BODY, when not NULL, is sent compact with
 * Content-Type application/json (unless REQ sets another type); "Accept: application/json" is
 * sent unless REQ's headers have an Accept. When OUT is not NULL, *OUT receives the parsed
 * answer body (the caller owns it: json_decref()), or NULL when the body is empty. A 2xx answer
 * whose body is not JSON fails with SVC_EBADGATEWAY; for other statuses such a body (an HTML
 * error page from a proxy) just leaves *OUT NULL. The size cap is REQ's max_response.
 */
int svc_client_call_json(const struct svc_client_req *req, const json_t *body,
                         struct svc_client_resp *resp, json_t **out);

/* The value of the last answer's header NAME (case-insensitive), the first if repeated, or NULL.
 * Owned by RESP. */
const char *svc_client_resp_header(const struct svc_client_resp *resp, const char *name);

/* Frees what RESP holds and leaves it empty. Safe on a zeroed or already released RESP. */
void svc_client_resp_release(struct svc_client_resp *resp);

/* Closes the calling thread's connections and frees its handle; the next call opens new ones.
 * Threads that exit do this by themselves. It also forgets the thread's pointers to the client
 * metrics: a test that calls svc_metrics_reset() must call this first on every thread that
 * made calls. */
void svc_client_thread_release(void);

#endif

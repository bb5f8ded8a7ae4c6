/*
 * internal.h: what lib's own files share and services never see (svc__ prefix).
 */
#ifndef SVC_INTERNAL_H
#define SVC_INTERNAL_H

#include "svc/buf.h"
#include "svc/http.h"
#include "svc/router.h"
#include "svc/server.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct MHD_Connection;
struct conn;

enum { SVC__MAX_RESP_HEADERS = 16, SVC__REQUEST_ID_MAX = 128 };

struct svc_resp {
    struct svc_arena *arena;
    const char *request_id;
    int status;
    bool rendered;
    int code; /* the SVC_E* code of a rendered problem, else 0 */
    const char *content_type;
    struct svc_buf body;
    json_t *problem; /* kept until the response is finalized, so it can be extended */
    int nheaders;
    struct {
        const char *name, *value;
    } headers[SVC__MAX_RESP_HEADERS];
};

struct svc_req {
    struct svc_server *srv;
    void *app;
    struct MHD_Connection *conn;
    struct svc_arena *arena;
    unsigned method;
    const char *method_s;
    const char *path;
    struct svc_route_match match;
    struct svc_query query;
    struct svc_buf body;
    size_t max_body;
    uint64_t body_seen; /* body bytes received, kept or not */
    uint64_t start_ns;
    /* A problem found before the handler could run (404, 405, 413, 415, bad query). */
    int early_code;
    const char *early_detail;
    bool queued;
    bool close;        /* the early problem is one of framing: answer at once and close */
    struct conn *edge; /* server.c's record of the connection (its deadlines), or NULL */
    size_t bytes_sent; /* response body bytes, for the access log */
    char request_id[SVC__REQUEST_ID_MAX + 1];
    char trace_id[33];
    char span_id[17];
    char traceparent[56];
    struct svc_resp resp;
};

/* Monotonic nanoseconds. */
uint64_t svc__now_ns(void);

/* Fills BUF with N random bytes from a per-thread generator seeded by getrandom(2). Not for
 * secrets; for ids. */
void svc__random(void *buf, size_t n);

/* Writes N random bytes as 2N lowercase hex digits plus a NUL into OUT. */
void svc__random_hex(char *out, size_t n);

/* The value of hex digit C (either case), or -1. */
int svc__hexval(char c);

/* Validates a client-sent X-Request-Id: 1..128 of [A-Za-z0-9._:-]. */
bool svc__request_id_valid(const char *s);

/* Parses a W3C traceparent (version 00); on success copies the 32-digit trace id. */
bool svc__traceparent_parse(const char *s, char trace_id[33]);

/* Prepares RESP for a request. */
void svc__resp_init(struct svc_resp *resp, struct svc_arena *a, const char *request_id);

/* Serializes a kept problem into the body (called once before sending). */
void svc__resp_finalize(struct svc_resp *resp);

#endif

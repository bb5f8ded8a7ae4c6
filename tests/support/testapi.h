/*
 * testapi: the client side of a service's http test. The service runs in-process (its routes
 * on port 0 with a fake store); these send one request each with libcurl and read answers the
 * way a client would: status, headers, JSON body, RFC 9457 problems.
 */
#ifndef POLYGLOT_TESTAPI_H
#define POLYGLOT_TESTAPI_H

#include <jansson.h>
#include <stddef.h>

struct testapi_reply {
    long status;
    char body[262144];
    size_t len;
    char headers[8192];
    size_t hlen;
};

/* Where requests go: "http://127.0.0.1:<port>" (copied). */
void testapi_base(const char *base);

/*
 * One request. PATH is sent exactly as written (no dot-segment clean-up), so tests choose what
 * the server decodes. HEADERS is NULL-terminated (may be NULL); a BODY is sent as
 * application/json unless HEADERS say otherwise. Fails the test when no answer arrives. The
 * reply is static: one at a time.
 */
struct testapi_reply *testapi_call_h(const char *method, const char *path,
                                     const char *const *headers, const char *body);
struct testapi_reply *testapi_call(const char *method, const char *path, const char *body);

/* The value of response header NAME ("" when absent), in a static buffer. */
const char *testapi_header(const struct testapi_reply *r, const char *name);

/* The body parsed as JSON (fails the test otherwise); the caller decrefs it. */
json_t *testapi_json(const struct testapi_reply *r);

/* Member KEY of J as a string / integer; fails the test when it is not one. */
const char *testapi_str(json_t *j, const char *key);
long long testapi_num(json_t *j, const char *key);

/*
 * Asserts R is an RFC 9457 problem: STATUS, type urn:polyglot:problem:SLUG, a title, a detail
 * that contains WANT, the request id as instance and, when FIELD is not NULL, that `field`.
 */
void testapi_assert_problem(const struct testapi_reply *r, long status, const char *slug,
                            const char *want, const char *field);

#endif

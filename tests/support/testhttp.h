/*
 * testhttp: one blocking HTTP request with libcurl, for tests that talk to HTTP engines
 * (ClickHouse, OpenSearch) and, later, to the services.
 */
#ifndef POLYGLOT_TESTHTTP_H
#define POLYGLOT_TESTHTTP_H

#include <stddef.h>

struct testhttp_resp {
    long status; /* HTTP status, or 0 when no response arrived */
    char *body;  /* NUL-terminated response body; free with testhttp_resp_release() */
    size_t len;
    char error[256]; /* curl's message when status is 0 */
    char *headers;   /* testhttp_request() only: the response's header lines, NUL-terminated;
                        NULL otherwise; freed by testhttp_resp_release() */
};

/*
 * testhttp_call() sends METHOD URL with BODY (may be NULL) and CONTENT_TYPE (may be NULL),
 * authenticating with USERPWD "user:password" when not NULL. Returns the response; transport
 * failures give status 0 and a message in error. Never fails the test itself.
 */
struct testhttp_resp testhttp_call(const char *method, const char *url, const char *userpwd,
                                   const char *content_type, const char *body);

/*
 * testhttp_request() is testhttp_call() without authentication but with extra request HEADERS
 * ("Name: value" strings ending with NULL; HEADERS may be NULL), and it keeps the response's
 * header lines (of the final response) in r.headers, for testhttp_header().
 */
struct testhttp_resp testhttp_request(const char *method, const char *url,
                                      const char *const *headers, const char *content_type,
                                      const char *body);

/*
 * testhttp_header() copies the value of the response header NAME (case-insensitive; the first
 * one when repeated), without surrounding white space, into OUT (CAP bytes, truncated) and
 * returns OUT; NULL when R has no such header (or no header lines: see testhttp_request()).
 */
const char *testhttp_header(const struct testhttp_resp *r, const char *name, char *out, size_t cap);

void testhttp_resp_release(struct testhttp_resp *r);

/* testhttp_escape() percent-encodes S for a query string; the caller frees the result. */
char *testhttp_escape(const char *s);

#endif

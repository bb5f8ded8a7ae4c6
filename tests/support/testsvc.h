/*
 * testsvc: what every service's http test does the same way (tests/<svc>/<svc>_http_test.c).
 *
 * The service's real routes run in-process on port 0 over a fake store (testsvc_start); the
 * fake counts each call and can fail every call with one error (struct testfake); the checks
 * every service owes its clients are one call each: a refused request never reaches the store
 * (testsvc_assert_refused), the store being down is 503 with Retry-After on every route
 * (testsvc_assert_unavailable), and the OpenAPI document served names every route and problem
 * type (testsvc_assert_openapi). Requests go through testapi.h.
 *
 * Everything here fails the running Check test on a mismatch; nothing returns an error.
 */
#ifndef POLYGLOT_TESTSVC_H
#define POLYGLOT_TESTSVC_H

#include "svc/server.h"
#include "testapi.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- the fake store's bookkeeping ------------------------------------------------------ */

enum { TESTFAKE_MAX_CALLS = 32 };

/*
 * Embedded first in a service's fake store. Calls are numbered by the test (its own enum, below
 * TESTFAKE_MAX_CALLS). MU guards the whole fake: the server's threads call the store.
 */
struct testfake {
    pthread_mutex_t mu;
    int calls[TESTFAKE_MAX_CALLS];
    int fail; /* when not 0, every call fails with it (set between requests) */
};

/* Zeroes F and initialises its lock; testfake_release() destroys the lock. */
void testfake_init(struct testfake *f);
void testfake_release(struct testfake *f);

/*
 * Every fake call starts here: counts CALL, then returns F->fail without the lock when it is
 * set, or 0 with F->mu held, which testfake_leave() releases (returning RC).
 */
int testfake_enter(struct testfake *f, int call);
int testfake_leave(struct testfake *f, int rc);

/* How often CALL was made, and all calls together. */
int testfake_calls(struct testfake *f, int call);
int testfake_total(struct testfake *f);

/* ---- the service in-process ------------------------------------------------------------ */

/*
 * Starts DEF's routes on 127.0.0.1, port 0, without access log, and points testapi at it.
 * testsvc_stop() stops it (the stop must be clean) and resets the metrics, so that each test
 * case starts from zero.
 */
void testsvc_start(const struct svc_def *def);
void testsvc_stop(void);

/* ---- the checks ------------------------------------------------------------------------ */

/*
 * METHOD PATH with HEADERS (NULL-terminated, may be NULL) and BODY (may be NULL) is a 400 that
 * the store F never saw: problem `malformed-json` when FIELD is "" and WANT says "malformed",
 * else `invalid-request`; its detail contains WANT and, unless FIELD is "", it names FIELD.
 */
void testsvc_assert_refused(struct testfake *f, const char *method, const char *path,
                            const char *const *headers, const char *body, const char *field,
                            const char *want);

/* One request per route that reaches the store, and the fake call it makes. */
struct testsvc_request {
    const char *method, *path, *body;
    int call;
};

/*
 * The store down: sets F->fail to SVC_EUNAVAILABLE and sends each of the N REQS (with HEADERS,
 * NULL-terminated, may be NULL); each must be a 503 `unavailable` problem whose detail contains
 * DETAIL, with Retry-After: 1, after its call reached the store once. Then F->fail is
 * SVC_EINTERNAL and REQS[0] must be a 500 `internal` problem that says nothing of the cause.
 */
void testsvc_assert_unavailable(struct testfake *f, const struct testsvc_request *reqs, size_t n,
                                const char *const *headers, const char *detail);

/*
 * GET /openapi.yaml is 200 application/yaml, an OpenAPI 3.1 document in which every route of
 * ROUTES (SVC_ROUTES_END-terminated) is a path ("/v1/users/:id" written "/v1/users/{id}") with
 * its method under it, and every problem slug of PROBLEMS (NULL-terminated; may be NULL) is
 * listed as "- urn:polyglot:problem:<slug>".
 */
void testsvc_assert_openapi(const struct svc_route *routes, const char *const *problems);

/* ---- small helpers --------------------------------------------------------------------- */

/* A + B + C in a static buffer (paths built from ids); the next call overwrites it. */
const char *testsvc_cat(const char *a, const char *b, const char *c);

/* Copies R's body into OUT (CAP bytes; fails when it does not fit). */
void testsvc_keep(char *out, size_t cap, const struct testapi_reply *r);

/* S is a UUID in lower case, as the services write them. */
bool testsvc_is_uuid_lower(const char *s);

#endif

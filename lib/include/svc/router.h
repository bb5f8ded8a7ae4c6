/*
 * router.h: matching a method and path against a route table, percent-decoding, and query
 * strings. The server uses it for every request; it is public so it can be tested and fuzzed
 * on its own.
 */
#ifndef SVC_ROUTER_H
#define SVC_ROUTER_H

#include "svc/arena.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>

enum { SVC_MAX_PARAMS = 8, SVC_MAX_QUERY = 64 };

struct svc_param {
    const char *name;  /* NUL-terminated, in the arena */
    const char *value; /* percent-decoded, in the arena */
};

struct svc_route_match {
    const struct svc_route *route; /* the route that matched, or NULL */
    unsigned allowed;              /* methods the path allows (for 405's Allow header) */
    int nparams;
    struct svc_param params[SVC_MAX_PARAMS];
};

/*
 * Matches METHOD (one enum svc_method value) and the raw PATH (percent-encoded, no query)
 * against ROUTES. Segments are split on '/' before decoding, so "%2F" inside an id stays in the
 * id. Literal segments win over parameters ("/v1/users/me" over "/v1/users/:id").
 * Returns 0 (M->route set), SVC_ENOTFOUND (no route has this path), SVC_EMETHOD (the path
 * exists for other methods: M->allowed), or SVC_EINVAL (bad percent-encoding, an encoded NUL,
 * an empty parameter or a path over 2048 bytes).
 */
int svc_router_match(const struct svc_route *routes, unsigned method, const char *path,
                     struct svc_arena *a, struct svc_route_match *m);

/* "GET" -> SVC_GET; 0 for a method no route can have. */
unsigned svc_method_parse(const char *s);

/* SVC_GET -> "GET". */
const char *svc_method_name(unsigned method);

/* Writes the methods in MASK as "GET, HEAD, POST" into BUF. */
void svc_method_list(unsigned mask, char *buf, size_t cap);

/*
 * Decodes N bytes of S ("%41" -> "A"; '+' -> ' ' when PLUS_IS_SPACE) into a NUL-terminated
 * string in the arena. Returns 0, or SVC_EINVAL for a malformed escape or an encoded NUL.
 */
int svc_pct_decode(const char *s, size_t n, bool plus_is_space, struct svc_arena *a,
                   const char **out);

struct svc_query {
    int n;
    struct svc_param items[SVC_MAX_QUERY];
};

/* Adds one raw (still encoded) pair; VALUE may be NULL ("?flag"). SVC_EINVAL for bad encoding
 * or more than SVC_MAX_QUERY parameters. */
int svc_query_add(struct svc_query *q, const char *name, const char *value, struct svc_arena *a);

/* Parses a raw query string ("a=1&b=x%20y"; no leading '?'). */
int svc_query_parse(const char *qs, struct svc_query *q, struct svc_arena *a);

/* The first value of NAME, or NULL. */
const char *svc_query_get(const struct svc_query *q, const char *name);

#endif

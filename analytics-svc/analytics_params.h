/*
 * analytics_params.h: the query parameters of analytics-svc's routes, parsed, typed and bounded
 * (internal to analytics-svc: analytics_http.c defines them, the handlers and
 * fuzz/an_params_fuzz.c call them).
 *
 * Parsing is kept apart from the request so that it can be fuzzed without a server: it reads
 * parameters through struct an_query (svc_req_query() in the handlers, a parsed query string
 * in the fuzz target) and answers either typed values, every one within its bounds, or a
 * refusal saying which parameter and why. Names a route does not take are refused by the
 * handlers with svc_query_only() and the lists below, before any of this runs.
 *
 * What an accepted value guarantees (the store relies on it; ClickHouse 18.16 has no query
 * parameters):
 *   ranges     from < to, both whole minutes within [1970-01-01, 2100-01-01), to - from at
 *              most AN_RANGE_MAX_MS; for /v1/revenue at most AN_SERIES_MAX buckets
 *   type       1 to AN_TYPE_MAX bytes of lowercase words [a-z][a-z0-9_]* joined by single dots
 *   subject    1 to AN_SUBJECT_MAX bytes of [A-Za-z0-9._:-]
 *   cursor     the position of an event: a time in the range above and a lowercase UUID
 */
#ifndef ANALYTICS_PARAMS_H
#define ANALYTICS_PARAMS_H

#include "analytics.h"

#include <stdbool.h>
#include <stdint.h>

/* Times a request may name: ClickHouse's DateTime holds no earlier second, and nothing the
 * platform records is later. */
#define AN_TIME_MIN_MS INT64_C(0)             /* 1970-01-01T00:00:00Z */
#define AN_TIME_MAX_MS INT64_C(4102444800000) /* 2100-01-01T00:00:00Z */

#define AN_MINUTE_MS INT64_C(60000)

/* Where query parameters are read: GET(SRC, NAME) is the first value of NAME, percent-decoded,
 * or NULL when absent. */
struct an_query {
    const char *(*get)(const void *src, const char *name);
    const void *src;
};

/* A refusal. CODE is SVC_EINVAL (400 invalid-request) or AN_ERANGE (400 invalid-range); FIELD
 * is the parameter at fault (a static string); DETAIL the sentence for the problem. */
struct an_param_error {
    int code;
    const char *field;
    char detail[240];
};

/* The parameters each route takes, NULL-terminated, for svc_query_only(). */
extern const char *const an_range_names[];   /* /v1/summary, /v1/funnel */
extern const char *const an_revenue_names[]; /* /v1/revenue */
extern const char *const an_top_names[];     /* /v1/top-products */
extern const char *const an_events_names[];  /* /v1/events */

/* The values of interval= and by=, indexed by enum an_interval and enum an_by. */
extern const char *const an_interval_names[];
extern const char *const an_by_names[];

/*
 * Each returns 0 with every output set, or SVC_EINVAL / AN_ERANGE with *E filled (the outputs
 * are then unspecified). NOW_MS is the wall clock, for the default range: to = NOW_MS up to
 * the minute, from = to - AN_RANGE_DEFAULT_MS.
 */
int an_parse_range(const struct an_query *q, int64_t now_ms, struct an_range *r,
                   struct an_param_error *e);
int an_parse_revenue(const struct an_query *q, int64_t now_ms, struct an_range *r,
                     enum an_interval *iv, struct an_param_error *e);
int an_parse_top(const struct an_query *q, int64_t now_ms, struct an_range *r, enum an_by *by,
                 int *limit, struct an_param_error *e);
int an_parse_events(const struct an_query *q, struct an_event_query *out, struct an_param_error *e);

/* The length of one bucket of IV in milliseconds. */
int64_t an_interval_ms(enum an_interval iv);

/* The dense series of /v1/revenue over R: buckets of IV aligned on the epoch (UTC), the first
 * one holding R->from_ms; how many there are. */
int64_t an_series_start(const struct an_range *r, enum an_interval iv);
int64_t an_series_points(const struct an_range *r, enum an_interval iv);

bool an_type_valid(const char *s);
bool an_subject_valid(const char *s);

#endif

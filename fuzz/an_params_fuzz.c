/*
 * analytics-svc's query parameters on arbitrary input: the input is a query string, parsed as
 * lib's server parses one (svc_query_parse) and handed to the parser of every route
 * (analytics_params.h). None may crash, leak or read out of bounds; each must either refuse
 * with a parameter and a reason or answer values within the bounds the store relies on, since
 * those values become SQL text (ClickHouse 18.16 has no query parameters).
 */
#include "analytics_params.h"

#include "svc/router.h"
#include "svc/uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2026-11-24T10:00:30.000Z: a fixed now, so that a crash replays. */
#define NOW_MS INT64_C(1795514430000)

static const char *get(const void *src, const char *name)
{
    return svc_query_get(src, name);
}

static void check_refusal(int rc, const struct an_param_error *e)
{
    if (rc != SVC_EINVAL && rc != AN_ERANGE)
        abort();
    if (e->code != rc || e->field == NULL || e->field[0] == '\0' || e->detail[0] == '\0' ||
        memchr(e->detail, '\0', sizeof(e->detail)) == NULL)
        abort();
}

static void check_range(const struct an_range *r)
{
    if (r->from_ms < AN_TIME_MIN_MS || r->to_ms > AN_TIME_MAX_MS || r->from_ms >= r->to_ms ||
        r->from_ms % AN_MINUTE_MS != 0 || r->to_ms % AN_MINUTE_MS != 0 ||
        r->to_ms - r->from_ms > AN_RANGE_MAX_MS)
        abort();
}

static void check_events(const struct an_event_query *q)
{
    if (q->limit < 1 || q->limit > AN_EVENTS_MAX)
        abort();
    if (q->type != NULL && !an_type_valid(q->type))
        abort();
    if (q->subject != NULL && !an_subject_valid(q->subject))
        abort();
    if (q->after) {
        if (q->after_ms < 0 || q->after_ms >= AN_TIME_MAX_MS || !svc_uuid_valid(q->after_id) ||
            strspn(q->after_id, "0123456789abcdef-") != AN_ID_LEN)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct svc_arena *a = svc_arena_new();
    char *s = malloc(size + 1);
    struct svc_query query;
    struct an_query q = {get, &query};
    struct an_param_error e;
    struct an_range r;
    struct an_event_query eq;
    enum an_interval iv;
    enum an_by by;
    int limit, rc;

    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    memset(&query, 0, sizeof(query));
    if (svc_query_parse(s, &query, a) != 0)
        goto out;

    memset(&e, 0, sizeof(e));
    if ((rc = an_parse_range(&q, NOW_MS, &r, &e)) == 0)
        check_range(&r);
    else
        check_refusal(rc, &e);

    memset(&e, 0, sizeof(e));
    if ((rc = an_parse_revenue(&q, NOW_MS, &r, &iv, &e)) == 0) {
        check_range(&r);
        if ((iv != AN_MINUTE && iv != AN_HOUR && iv != AN_DAY) || an_series_points(&r, iv) < 1 ||
            an_series_points(&r, iv) > AN_SERIES_MAX || an_series_start(&r, iv) > r.from_ms)
            abort();
    } else {
        check_refusal(rc, &e);
    }

    memset(&e, 0, sizeof(e));
    if ((rc = an_parse_top(&q, NOW_MS, &r, &by, &limit, &e)) == 0) {
        check_range(&r);
        if ((by != AN_BY_UNITS && by != AN_BY_REVENUE) || limit < 1 || limit > AN_TOP_MAX)
            abort();
    } else {
        check_refusal(rc, &e);
    }

    memset(&e, 0, sizeof(e));
    if ((rc = an_parse_events(&q, &eq, &e)) == 0)
        check_events(&eq);
    else
        check_refusal(rc, &e);
out:
    free(s);
    svc_arena_free(a);
    return 0;
}

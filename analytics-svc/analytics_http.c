/*
 * analytics_http.c: analytics-svc's HTTP API (issue 13; the contract is
 * analytics-svc/openapi.yaml).
 *
 * Every handler refuses the query parameters its route does not take, parses the others into
 * typed, bounded values (analytics_params.h), and only then asks the store: nothing that was
 * refused ever reaches ClickHouse. The store is reached through struct an_store (analytics.h),
 * which the http tests replace with a fake; what it answers is rendered as JSON, with the
 * arithmetic a shop owner wants on top (conversion, average order, a dense revenue series, a
 * freshness verdict).
 */
#include "analytics.h"
#include "analytics_params.h"

#include "svc/buf.h"
#include "svc/error.h"
#include "svc/http.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    SMALL_BODY_MAX = 1024, /* every route is a GET: nothing to read */
    /* The longest cursor this file makes: base64url of "<13 digits>:<uuid>". */
    CURSOR_B64_MAX = (13 + 1 + AN_ID_LEN + 2) / 3 * 4,
    TIME_TEXT_MAX = 64, /* longer than any RFC 3339 date-time */
};

/* /v1/freshness calls a topic behind past these: more records waiting than a healthy consumer
 * leaves between two polls at a steady rate, or a p99 above the goal (an event visible
 * in analytics within a second). */
#define FRESH_LAG_MAX    1000
#define FRESH_P99_MAX_MS 1000.0

/* ---- problems --------------------------------------------------------------------------- */

const struct svc_err_def an_errors[] = {AN_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

/* A store failure as its problem: ClickHouse unreachable (or refusing for lack of resources)
 * is 503 with Retry-After; anything else is a 500 (the store has logged it, with context). */
static int store_error(struct svc_resp *resp, int rc)
{
    switch (rc) {
    case SVC_EUNAVAILABLE:
    case SVC_EAGAIN:
    case SVC_ETIMEDOUT:
        return svc_resp_error(resp, SVC_EUNAVAILABLE,
                              "the analytics store is unavailable: retry later");
    default:
        return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
    }
}

static int refuse(struct svc_resp *resp, const struct an_param_error *e)
{
    if (e->code != AN_ERANGE)
        return svc_resp_invalid(resp, e->field, "%s", e->detail);
    svc_resp_error(resp, AN_ERANGE, "%s", e->detail);
    svc_resp_problem_extend(resp, "field", json_string(e->field));
    return AN_ERANGE;
}

/* ---- parameters ------------------------------------------------------------------------- */

const char *const an_range_names[] = {"from", "to", NULL};
const char *const an_revenue_names[] = {"from", "to", "interval", NULL};
const char *const an_top_names[] = {"from", "to", "limit", "by", NULL};
const char *const an_events_names[] = {"type", "subject", "limit", "cursor", NULL};
const char *const an_interval_names[] = {"minute", "hour", "day", NULL};
const char *const an_by_names[] = {"units", "revenue", NULL};

static int fail(struct an_param_error *e, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct an_param_error *e, int code, const char *field, const char *fmt, ...)
{
    va_list ap;

    e->code = code;
    e->field = field;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
    return code;
}

static int64_t floor_minute(int64_t ms)
{
    return ms - ms % AN_MINUTE_MS; /* MS is never negative here */
}

static int64_t ceil_minute(int64_t ms)
{
    return floor_minute(ms + AN_MINUTE_MS - 1);
}

/* An RFC 3339 date-time within the bounds, to the minute (down, or UP); *PRESENT false when
 * absent. */
static int parse_time(const struct an_query *q, const char *name, bool up, int64_t *out,
                      bool *present, struct an_param_error *e)
{
    const char *v = q->get(q->src, name);
    int64_t ms = 0;

    *present = false;
    if (v == NULL)
        return 0;
    if (strlen(v) > TIME_TEXT_MAX || !svc_rfc3339_parse(v, &ms) || ms < AN_TIME_MIN_MS ||
        ms >= AN_TIME_MAX_MS)
        return fail(e, SVC_EINVAL, name,
                    "query parameter '%s' must be an RFC 3339 date-time from "
                    "1970-01-01T00:00:00Z to before 2100-01-01T00:00:00Z, such as "
                    "2026-11-24T10:00:00Z",
                    name);
    *out = up ? ceil_minute(ms) : floor_minute(ms);
    *present = true;
    return 0;
}

/* Optional '-' and 1 to 18 digits, nothing else (no spaces, no '+', no exponent). */
static int parse_int(const struct an_query *q, const char *name, long long min, long long max,
                     long long def, long long *out, struct an_param_error *e)
{
    const char *v = q->get(q->src, name);
    const char *p;
    long long n = 0;
    bool neg;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    neg = v[0] == '-';
    p = neg ? v + 1 : v;
    if (*p == '\0' || strlen(p) > 18)
        goto bad;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        n = n * 10 + (*p - '0');
    }
    if (neg)
        n = -n;
    if (n < min || n > max)
        return fail(e, SVC_EINVAL, name, "query parameter '%s' must be from %lld to %lld, not %lld",
                    name, min, max, n);
    *out = n;
    return 0;
bad:
    return fail(e, SVC_EINVAL, name, "query parameter '%s' must be an integer from %lld to %lld",
                name, min, max);
}

static int parse_enum(const struct an_query *q, const char *name, const char *const *allowed,
                      int def, int *out, struct an_param_error *e)
{
    const char *v = q->get(q->src, name);
    char list[128];
    size_t used = 0;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    for (int i = 0; allowed[i] != NULL; i++) {
        if (strcmp(v, allowed[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    list[0] = '\0';
    for (int i = 0; allowed[i] != NULL && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s'%s'", i > 0 ? ", " : "", allowed[i]);

        if (n > 0)
            used += (size_t)n;
    }
    return fail(e, SVC_EINVAL, name, "query parameter '%s' must be one of %s", name, list);
}

static void time_text(int64_t ms, char out[SVC_RFC3339_MS_LEN + 1])
{
    svc_rfc3339_format_ms(ms, out);
}

int an_parse_range(const struct an_query *q, int64_t now_ms, struct an_range *r,
                   struct an_param_error *e)
{
    char from_s[SVC_RFC3339_MS_LEN + 1], to_s[SVC_RFC3339_MS_LEN + 1];
    bool has_from, has_to;
    int rc;

    if ((rc = parse_time(q, "from", false, &r->from_ms, &has_from, e)) != 0 ||
        (rc = parse_time(q, "to", true, &r->to_ms, &has_to, e)) != 0)
        return rc;
    if (!has_to)
        r->to_ms = ceil_minute(now_ms < AN_TIME_MIN_MS ? AN_TIME_MIN_MS : now_ms);
    if (!has_from) {
        r->from_ms = r->to_ms - AN_RANGE_DEFAULT_MS;
        if (r->from_ms < AN_TIME_MIN_MS)
            r->from_ms = AN_TIME_MIN_MS;
    }
    time_text(r->from_ms, from_s);
    time_text(r->to_ms, to_s);
    if (r->to_ms <= r->from_ms)
        return fail(e, AN_ERANGE, has_to ? "to" : "from",
                    "'to' (%s) must be after 'from' (%s), both taken to the minute", to_s, from_s);
    if (r->to_ms - r->from_ms > AN_RANGE_MAX_MS)
        return fail(e, AN_ERANGE, "from", "the range from %s to %s is longer than %lld days",
                    from_s, to_s, (long long)(AN_RANGE_MAX_MS / (24LL * 3600 * 1000)));
    return 0;
}

int64_t an_interval_ms(enum an_interval iv)
{
    switch (iv) {
    case AN_MINUTE:
        return AN_MINUTE_MS;
    case AN_HOUR:
        return AN_MINUTE_MS * 60;
    case AN_DAY:
    default:
        return AN_MINUTE_MS * 60 * 24;
    }
}

int64_t an_series_start(const struct an_range *r, enum an_interval iv)
{
    int64_t step = an_interval_ms(iv);

    return r->from_ms - r->from_ms % step;
}

int64_t an_series_points(const struct an_range *r, enum an_interval iv)
{
    int64_t step = an_interval_ms(iv);

    return (r->to_ms - an_series_start(r, iv) + step - 1) / step;
}

int an_parse_revenue(const struct an_query *q, int64_t now_ms, struct an_range *r,
                     enum an_interval *iv, struct an_param_error *e)
{
    int v = 0, rc;
    int64_t points;

    if ((rc = an_parse_range(q, now_ms, r, e)) != 0 ||
        (rc = parse_enum(q, "interval", an_interval_names, AN_HOUR, &v, e)) != 0)
        return rc;
    *iv = (enum an_interval)v;
    points = an_series_points(r, *iv);
    if (points > AN_SERIES_MAX)
        return fail(e, AN_ERANGE, "interval",
                    "%" PRId64 " buckets of a %s: at most %d; choose a longer interval or a "
                    "shorter range",
                    points, an_interval_names[v], AN_SERIES_MAX);
    return 0;
}

int an_parse_top(const struct an_query *q, int64_t now_ms, struct an_range *r, enum an_by *by,
                 int *limit, struct an_param_error *e)
{
    long long n = 0;
    int v = 0, rc;

    if ((rc = an_parse_range(q, now_ms, r, e)) != 0 ||
        (rc = parse_int(q, "limit", 1, AN_TOP_MAX, AN_TOP_DEFAULT, &n, e)) != 0 ||
        (rc = parse_enum(q, "by", an_by_names, AN_BY_UNITS, &v, e)) != 0)
        return rc;
    *by = (enum an_by)v;
    *limit = (int)n;
    return 0;
}

bool an_type_valid(const char *s)
{
    size_t n = strlen(s);
    bool word_start = true;

    if (n == 0 || n > AN_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (word_start) {
            if (c < 'a' || c > 'z')
                return false;
            word_start = false;
        } else if (c == '.') {
            word_start = true;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return !word_start;
}

bool an_subject_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > AN_SUBJECT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * The cursor svc_keyset_cursor() makes: base64url without padding of "<ms>:<id>". Read
 * strictly, so that each position has exactly one spelling and nothing else passes: the
 * canonical encoding (leftover bits zero), a time without leading zeros within the bounds, a
 * lowercase UUID.
 */
static int parse_cursor(const char *v, struct an_event_query *out, struct an_param_error *e)
{
    char raw[CURSOR_B64_MAX] = {0};
    size_t n = strlen(v), j = 0, digits;
    uint32_t acc = 0;
    int bits = 0;
    int64_t ms = 0;
    const char *id;

    if (n == 0 || n > CURSOR_B64_MAX || n % 4 == 1)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        int x = b64val(v[i]);

        if (x < 0)
            goto bad;
        acc = acc << 6 | (uint32_t)x;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[j++] = (char)(acc >> bits & 0xff);
        }
        acc &= (1u << bits) - 1;
    }
    if (acc != 0 || j >= sizeof(raw))
        goto bad;
    raw[j] = '\0';
    if (memchr(raw, '\0', j) != NULL)
        goto bad;
    digits = strspn(raw, "0123456789");
    if (digits == 0 || digits > 13 || raw[digits] != ':' || (raw[0] == '0' && digits > 1))
        goto bad;
    for (size_t i = 0; i < digits; i++)
        ms = ms * 10 + (raw[i] - '0');
    if (ms >= AN_TIME_MAX_MS)
        goto bad;
    id = raw + digits + 1;
    if (strlen(id) != AN_ID_LEN || !svc_uuid_valid(id) ||
        strspn(id, "0123456789abcdef-") != AN_ID_LEN)
        goto bad;
    out->after = true;
    out->after_ms = ms;
    memcpy(out->after_id, id, AN_ID_LEN + 1);
    return 0;
bad:
    return fail(e, SVC_EINVAL, "cursor",
                "query parameter 'cursor' is not a cursor of this API: send back the "
                "next_cursor of a page");
}

int an_parse_events(const struct an_query *q, struct an_event_query *out, struct an_param_error *e)
{
    const char *type = q->get(q->src, "type");
    const char *subject = q->get(q->src, "subject");
    const char *cursor = q->get(q->src, "cursor");
    long long limit = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (type != NULL && !an_type_valid(type))
        return fail(e, SVC_EINVAL, "type",
                    "query parameter 'type' must be 1 to %d bytes of lowercase words joined by "
                    "dots, such as order.placed",
                    AN_TYPE_MAX);
    if (subject != NULL && !an_subject_valid(subject))
        return fail(e, SVC_EINVAL, "subject",
                    "query parameter 'subject' must be 1 to %d of A-Z a-z 0-9 . _ : -",
                    AN_SUBJECT_MAX);
    if ((rc = parse_int(q, "limit", 1, AN_EVENTS_MAX, AN_EVENTS_DEFAULT, &limit, e)) != 0)
        return rc;
    if (cursor != NULL && (rc = parse_cursor(cursor, out, e)) != 0)
        return rc;
    out->type = type;
    out->subject = subject;
    out->limit = (int)limit;
    return 0;
}

/* ---- handlers --------------------------------------------------------------------------- */

static struct an_app *app_of(struct svc_req *req)
{
    return svc_req_app(req);
}

static const char *req_get(const void *src, const char *name)
{
    return svc_req_query(src, name);
}

/* A string the store returned; NULL (which it should never return) as "", so that one odd
 * value cannot drop a whole item from an answer. */
static const char *str(const char *s)
{
    return s != NULL ? s : "";
}

static json_t *range_json(const struct an_range *r)
{
    return json_pack("{s:o, s:o}", "from", svc_json_time(r->from_ms), "to",
                     svc_json_time(r->to_ms));
}

/* A ratio, or null when there is nothing to divide by. */
static json_t *ratio_json(int64_t num, int64_t den)
{
    return den > 0 ? json_real((double)num / (double)den) : json_null();
}

/*
 * GET /v1/summary?from=&to=: the counts of the range and what a shop owner derives from them:
 * conversion (orders placed per checkout started, null without checkouts) and the average
 * order in cents (rounded, null without orders).
 */
static int summary_get(struct svc_req *req, struct svc_resp *resp)
{
    struct an_store *st = &app_of(req)->store;
    struct an_query q = {req_get, req};
    struct an_param_error e;
    struct an_summary s;
    struct an_range r;
    json_t *body;
    int rc;

    if ((rc = svc_query_only(req, resp, an_range_names)) != 0)
        return rc;
    if (an_parse_range(&q, svc_wall_ms(), &r, &e) != 0)
        return refuse(resp, &e);
    memset(&s, 0, sizeof(s));
    if ((rc = st->summary(st->ctx, &r, &s)) != 0)
        return store_error(resp, rc);
    body = range_json(&r);
    json_object_set_new(body, "signups", json_integer(s.signups));
    json_object_set_new(body, "active_users", json_integer(s.active_users));
    json_object_set_new(body, "checkouts", json_integer(s.checkouts));
    json_object_set_new(body, "orders_placed", json_integer(s.orders_placed));
    json_object_set_new(body, "orders_failed", json_integer(s.orders_failed));
    json_object_set_new(body, "revenue_cents", json_integer(s.revenue_cents));
    json_object_set_new(body, "conversion", ratio_json(s.orders_placed, s.checkouts));
    json_object_set_new(
        body, "average_order_cents",
        s.orders_placed > 0
            ? json_integer((json_int_t)llround((double)s.revenue_cents / (double)s.orders_placed))
            : json_null());
    return svc_resp_json(resp, 200, body);
}

/*
 * GET /v1/revenue?from=&to=&interval=: one point per bucket of the interval, empty ones as
 * zeros, from the store's non-empty buckets. Buckets are aligned on the epoch in UTC, so the
 * first and the last may cover only part of the range.
 */
static int revenue_get(struct svc_req *req, struct svc_resp *resp)
{
    struct an_store *st = &app_of(req)->store;
    struct svc_arena *a = svc_req_arena(req);
    struct an_query q = {req_get, req};
    struct an_point *got = NULL, *dense;
    struct an_param_error e;
    enum an_interval iv;
    struct an_range r;
    int64_t start, step, npoints, orders = 0, revenue = 0;
    size_t n = 0;
    json_t *points, *body;
    int rc;

    if ((rc = svc_query_only(req, resp, an_revenue_names)) != 0)
        return rc;
    if (an_parse_revenue(&q, svc_wall_ms(), &r, &iv, &e) != 0)
        return refuse(resp, &e);
    if ((rc = st->revenue(st->ctx, a, &r, iv, &got, &n)) != 0)
        return store_error(resp, rc);
    start = an_series_start(&r, iv);
    step = an_interval_ms(iv);
    npoints = an_series_points(&r, iv);
    dense = svc_arena_calloc(a, (size_t)npoints * sizeof(*dense));
    for (size_t i = 0; i < n; i++) {
        int64_t k;

        /* A bucket outside the range is an answer that makes no sense: rendering it would
         * misplace money. */
        if (got[i].t_ms < start || got[i].t_ms >= r.to_ms) {
            svc_logf(SVC_LOG_ERROR,
                     "revenue bucket %" PRId64 " outside the range %" PRId64 "..%" PRId64,
                     got[i].t_ms, r.from_ms, r.to_ms);
            return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
        }
        k = (got[i].t_ms - start) / step;
        dense[k].orders += got[i].orders;
        dense[k].revenue_cents += got[i].revenue_cents;
    }
    points = json_array();
    for (int64_t k = 0; k < npoints; k++) {
        json_array_append_new(points,
                              json_pack("{s:o, s:I, s:I}", "t", svc_json_time(start + k * step),
                                        "orders", (json_int_t)dense[k].orders, "revenue_cents",
                                        (json_int_t)dense[k].revenue_cents));
        orders += dense[k].orders;
        revenue += dense[k].revenue_cents;
    }
    body = range_json(&r);
    json_object_set_new(body, "interval", json_string(an_interval_names[iv]));
    json_object_set_new(body, "orders", json_integer(orders));
    json_object_set_new(body, "revenue_cents", json_integer(revenue));
    json_object_set_new(body, "points", points);
    return svc_resp_json(resp, 200, body);
}

/* GET /v1/top-products?from=&to=&limit=&by=: the best sellers of the range, by units sold or
 * by revenue. */
static int top_products_get(struct svc_req *req, struct svc_resp *resp)
{
    struct an_store *st = &app_of(req)->store;
    struct an_query q = {req_get, req};
    struct an_top_product *top = NULL;
    struct an_param_error e;
    struct an_range r;
    enum an_by by;
    size_t n = 0;
    int limit, rc;
    json_t *items, *body;

    if ((rc = svc_query_only(req, resp, an_top_names)) != 0)
        return rc;
    if (an_parse_top(&q, svc_wall_ms(), &r, &by, &limit, &e) != 0)
        return refuse(resp, &e);
    if ((rc = st->top_products(st->ctx, svc_req_arena(req), &r, by, limit, &top, &n)) != 0)
        return store_error(resp, rc);
    items = json_array();
    for (size_t i = 0; i < n && i < (size_t)limit; i++)
        json_array_append_new(items, json_pack("{s:s, s:s, s:I, s:I}", "product_id",
                                               str(top[i].product_id), "name", str(top[i].name),
                                               "units", (json_int_t)top[i].units, "revenue_cents",
                                               (json_int_t)top[i].revenue_cents));
    body = range_json(&r);
    json_object_set_new(body, "by", json_string(an_by_names[by]));
    json_object_set_new(body, "limit", json_integer(limit));
    json_object_set_new(body, "products", items);
    return svc_resp_json(resp, 200, body);
}

/* GET /v1/funnel?from=&to=: the cohort registered in the range, step by step, each step with
 * its share of the one before (null when the one before is empty). */
static int funnel_get(struct svc_req *req, struct svc_resp *resp)
{
    struct an_store *st = &app_of(req)->store;
    struct an_query q = {req_get, req};
    struct an_param_error e;
    struct an_funnel f;
    struct an_range r;
    json_t *steps, *body;
    int rc;

    if ((rc = svc_query_only(req, resp, an_range_names)) != 0)
        return rc;
    if (an_parse_range(&q, svc_wall_ms(), &r, &e) != 0)
        return refuse(resp, &e);
    memset(&f, 0, sizeof(f));
    if ((rc = st->funnel(st->ctx, &r, &f)) != 0)
        return store_error(resp, rc);
    {
        const struct {
            const char *name;
            int64_t users;
        } step[] = {
            {"registered", f.registered},
            {"added_to_cart", f.added_to_cart},
            {"checkout_started", f.checkout_started},
            {"placed", f.placed},
        };

        steps = json_array();
        for (size_t i = 0; i < sizeof(step) / sizeof(step[0]); i++)
            json_array_append_new(
                steps,
                json_pack("{s:s, s:I, s:o}", "step", step[i].name, "users",
                          (json_int_t)step[i].users, "of_previous",
                          i == 0 ? json_null() : ratio_json(step[i].users, step[i - 1].users)));
    }
    body = range_json(&r);
    json_object_set_new(body, "steps", steps);
    return svc_resp_json(resp, 200, body);
}

/* The stored data member as JSON; text that does not parse (it always should) is shown as a
 * string, its bytes outside UTF-8 replaced, so that the answer stays JSON. */
static json_t *data_json(struct svc_arena *a, const char *data)
{
    json_t *v = json_loads(data, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    char *copy;

    if (v != NULL)
        return v;
    if ((v = json_string(data)) != NULL)
        return v;
    copy = svc_arena_strdup(a, data);
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    return json_string(copy);
}

/* GET /v1/events?type=&subject=&limit=&cursor=: the newest events first, in pages. */
static int events_get(struct svc_req *req, struct svc_resp *resp)
{
    struct an_store *st = &app_of(req)->store;
    struct svc_arena *a = svc_req_arena(req);
    struct an_query q = {req_get, req};
    struct an_event *ev = NULL;
    struct an_event_query eq;
    struct an_param_error e;
    bool more = false;
    size_t n = 0;
    json_t *items, *next;
    int rc;

    if ((rc = svc_query_only(req, resp, an_events_names)) != 0)
        return rc;
    if (an_parse_events(&q, &eq, &e) != 0)
        return refuse(resp, &e);
    if ((rc = st->events(st->ctx, a, &eq, &ev, &n, &more)) != 0)
        return store_error(resp, rc);
    if (n > (size_t)eq.limit)
        n = (size_t)eq.limit;
    items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id",
                                        str(ev[i].id), "type", str(ev[i].type), "source",
                                        str(ev[i].source), "subject", str(ev[i].subject), "topic",
                                        str(ev[i].topic), "time", svc_json_time(ev[i].event_ms),
                                        "ingested_at", svc_json_time(ev[i].ingest_ms), "data",
                                        data_json(a, str(ev[i].data))));
    next = more && n > 0
               ? json_string(svc_keyset_cursor(req, ev[n - 1].event_ms, str(ev[n - 1].id)))
               : json_null();
    return svc_resp_json(resp, 200, json_pack("{s:o, s:o}", "events", items, "next_cursor", next));
}

static const struct an_topic_latency *latency_of(const struct an_topic_latency *l, size_t n,
                                                 const char *topic)
{
    for (size_t i = 0; i < n; i++)
        if (l[i].topic != NULL && strcmp(l[i].topic, topic) == 0)
            return &l[i];
    return NULL;
}

/*
 * GET /v1/freshness: per topic, the records the consumer has not read yet (its lag, null while
 * unknown) and the latency from event time to ingestion over the last AN_FRESH_WINDOW_MS; a
 * topic is "behind" past FRESH_LAG_MAX records or FRESH_P99_MAX_MS of p99, "unknown" while its
 * lag is, "current" otherwise. The verdict is the worst of them, said in one sentence: what a
 * workshop puts on the screen when it breaks the broker or the database.
 */
static int freshness_get(struct svc_req *req, struct svc_resp *resp)
{
    struct an_app *app = app_of(req);
    struct an_store *st = &app->store;
    struct an_topic_latency *lat = NULL;
    struct svc_buf why = SVC_BUF_INIT;
    size_t n = 0, nbehind = 0, nunknown = 0;
    const char *status;
    json_t *topics, *body;
    int rc;

    if ((rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    if ((rc = st->latency(st->ctx, svc_req_arena(req), AN_FRESH_WINDOW_MS, &lat, &n)) != 0)
        return store_error(resp, rc);
    topics = json_array();
    for (size_t i = 0; app->topics != NULL && app->topics[i] != NULL; i++) {
        const char *topic = app->topics[i];
        const struct an_topic_latency *l = latency_of(lat, n, topic);
        int64_t lag = 0;
        bool known = app->lag != NULL && app->lag(app->lag_ctx, topic, &lag) == 0;
        bool slow = l != NULL && l->events > 0 && l->p99_ms > FRESH_P99_MAX_MS;
        const char *state;

        if ((known && lag > FRESH_LAG_MAX) || slow) {
            state = "behind";
            nbehind++;
            if (known && lag > FRESH_LAG_MAX)
                svc_buf_addf(&why, "%s%s has %" PRId64 " records not yet read",
                             why.len > 0 ? "; " : "", topic, lag);
            if (slow)
                svc_buf_addf(&why, "%s%s events take %.0f ms (p99) to be counted",
                             why.len > 0 ? "; " : "", topic, l->p99_ms);
        } else if (!known) {
            state = "unknown";
            nunknown++;
        } else {
            state = "current";
        }
        json_array_append_new(
            topics, json_pack("{s:s, s:s, s:o, s:{s:I, s:I, s:I, s:o}}", "topic", topic, "state",
                              state, "lag", known ? json_integer(lag) : json_null(), "latency",
                              "events", (json_int_t)(l != NULL ? l->events : 0), "p50_ms",
                              (json_int_t)(l != NULL ? llround(l->p50_ms) : 0), "p99_ms",
                              (json_int_t)(l != NULL ? llround(l->p99_ms) : 0), "last_ingest_at",
                              l != NULL && l->last_ingest_ms > 0 ? svc_json_time(l->last_ingest_ms)
                                                                 : json_null()));
    }
    if (nbehind > 0) {
        status = "behind";
    } else if (nunknown > 0) {
        status = "unknown";
        svc_buf_addf(&why,
                     "the consumer's position is unknown on %zu topic%s (no partition assigned "
                     "yet, or Kafka unreachable)",
                     nunknown, nunknown > 1 ? "s" : "");
    } else {
        status = "current";
        svc_buf_addf(&why, "every topic is read to its end and counted within %.0f ms (p99)",
                     FRESH_P99_MAX_MS);
    }
    body = json_pack("{s:b, s:s, s:s, s:o, s:I, s:o}", "behind", nbehind > 0, "state", status,
                     "verdict", svc_buf_str(&why), "checked_at", svc_json_time(svc_wall_ms()),
                     "window_ms", (json_int_t)AN_FRESH_WINDOW_MS, "topics", topics);
    svc_buf_release(&why);
    return svc_resp_json(resp, 200, body);
}

const struct svc_route an_routes[] = {
    {SVC_GET, "/v1/summary", summary_get, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/revenue", revenue_get, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/top-products", top_products_get, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/funnel", funnel_get, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/events", events_get, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/freshness", freshness_get, 0, SMALL_BODY_MAX},
    SVC_ROUTES_END,
};

/*
 * analytics.h: analytics-svc's domain and the store interface between its handlers, its
 * consumer and ClickHouse (18.16 locally, over HTTP).
 *
 * analytics-svc is the platform's read side (CQRS): it owns no business data, only the history
 * of every event the other services publish, kept in ClickHouse and aggregated there, and it
 * answers the questions a shop owner asks across services (signups, orders, revenue, top
 * products, the funnel from registration to purchase) without calling any of them.
 *
 * Tables (migrations/, applied by lib's runner through the store):
 *   events          every event once: the CloudEvents envelope, where it was read (topic,
 *                   partition, offset), when it was ingested, the typed values the read models
 *                   need (user, order, product, status, amounts, order lines as Nested
 *                   columns) and the data member as JSON text. ReplacingMergeTree keyed by id.
 *   signups, orders, order_lines, cart_adds, stock_moves
 *                   typed read models, each filled by a materialized view from events at insert
 *                   time, keyed by event id (ReplacingMergeTree)
 *   orders_minute, sales_minute
 *                   incremental aggregates (SummingMergeTree) per minute, and per minute and
 *                   product, filled by materialized views: what /v1/summary, /v1/revenue and
 *                   /v1/top-products read
 *
 * Exactly once in every answer. Kafka delivers at least once; the consumer hands the store
 * batches, and the store's insert first asks which of the batch's ids events already holds and
 * inserts only the others, in ONE INSERT into events (the materialized views fill the rest from
 * that block). An event seen again (a redelivery, a replay of the topic from the beginning) is
 * skipped before it reaches any table, so the incremental aggregates never count it twice.
 * What could still write an id twice is two replicas flushing the same records during a
 * rebalance; the ReplacingMergeTree keys collapse those in the typed tables (docs).
 *
 * Times: ranges are [from, to) in whole minutes (the aggregates' grain); the handlers take
 * from down and to up to the minute and answer with the range they used.
 *
 * Personal data: user.deleted pseudonymises that user's rows in every table: the user id
 * becomes a keyed hash (stable, so distinct users stay distinct and counts of users do not
 * move), the data member loses its personal fields ('{}'), the subject too when it was the
 * user. Sums, counts and distinct counts answer the same before and after. The pseudonym is
 * also recorded (forgotten_users, migrations/002): the topics are read in parallel, so an event
 * of the user can arrive after the deletion, and the insert pseudonymises it on the way in.
 *
 * Handlers (analytics_http.c) talk to the store only through this interface;
 * analytics_store.c is the only file that talks to ClickHouse. ClickHouse 18.16 has no query
 * parameters: every value reaches SQL through typed parsing here (ids are UUIDs, types are
 * dotted words, times are integers) and one quoting function in the store. http tests use a
 * fake store.
 *
 * Memory: what a store function returns is allocated from the arena it is given.
 */
#ifndef ANALYTICS_H
#define ANALYTICS_H

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AN_ID_LEN 36 /* UUIDs in text form */

/* Bounds, checked by the handlers. */
#define AN_RANGE_MAX_MS     (366LL * 24 * 3600 * 1000) /* to - from */
#define AN_RANGE_DEFAULT_MS (24LL * 3600 * 1000)       /* from = to - this when from is absent */
#define AN_SERIES_MAX       1500 /* points of /v1/revenue: minute over a day = 1440 */
#define AN_TOP_DEFAULT      10
#define AN_TOP_MAX          100
#define AN_EVENTS_DEFAULT   20
#define AN_EVENTS_MAX       100
#define AN_TYPE_MAX         64                /* an event type: lowercase dotted words */
#define AN_SUBJECT_MAX      128               /* a subject: [A-Za-z0-9._:-] */
#define AN_LINES_MAX        100               /* order lines per event */
#define AN_FRESH_WINDOW_MS  (5LL * 60 * 1000) /* /v1/freshness looks at the last 5 minutes */

/* analytics-svc's own errors, in lib's X-macro form (svc/error.h): name, value, HTTP status,
 * problem type, title. Registered through svc_def.errors (an_errors).
 *   ERANGE   from/to/interval that make no sense together: to <= from, longer than
 *            AN_RANGE_MAX_MS, or more points than AN_SERIES_MAX for the interval */
/* clang-format off */
#define AN_ERRNO_MAP(X)                                                                            \
    X(ERANGE, -5001, 400, "invalid-range", "Invalid time range")
/* clang-format on */

enum {
#define AN__ERR_ENUM(name, value, status, type, title) AN_##name = (value),
    AN_ERRNO_MAP(AN__ERR_ENUM)
#undef AN__ERR_ENUM
};

/* AN_ERRNO_MAP as a table, for svc_def.errors (analytics_http.c). */
extern const struct svc_err_def an_errors[];

/* ---- ingest ---------------------------------------------------------------------------------- */

/* One order line (order.placed, checkout.started, order.failed) or one stock item
 * (stock.*: name "" and price 0). */
struct an_line {
    const char *product_id;
    const char *name;
    int64_t quantity;
    int64_t price_cents;
};

/*
 * One event as stored, decoded by the consumer (analytics_events.c) from a record of any of
 * the platform's topics. Every string is NUL-terminated and never NULL ("" when the event has
 * no such value). The typed values by event type:
 *   user.registered, user.updated, user.deleted: user_id = data.id
 *   payment.*, wallet.credited: user_id, amount_cents, status (captured, refunded) or ""
 *   cart.item_added, cart.item_removed: user_id, product_id, quantity, amount_cents = price
 *   checkout.started, order.placed, order.failed: user_id, order_id, status (pending, placed,
 *                   failed), currency, amount_cents = total_cents, lines
 *   product.*: product_id = data.id, amount_cents = price_cents, currency
 *   stock.*: status = data.state, lines = data.items (name "", price 0)
 * Types the consumer does not know are still stored, with the envelope and data only.
 */
struct an_row {
    char id[AN_ID_LEN + 1];
    const char *type;
    const char *source;
    const char *subject;
    int64_t event_ms;  /* the envelope's time */
    int64_t ingest_ms; /* when the consumer decoded it */
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *user_id;
    const char *order_id;
    const char *product_id;
    const char *status;
    const char *currency;
    int64_t quantity;
    int64_t amount_cents;
    const struct an_line *lines;
    size_t nlines;
    const char *data; /* the data member, compact JSON */
};

/* ---- queries --------------------------------------------------------------------------------- */

/* [from_ms, to_ms), both whole minutes since the epoch, from < to. */
struct an_range {
    int64_t from_ms, to_ms;
};

struct an_summary {
    int64_t signups;       /* user.registered in the range */
    int64_t active_users;  /* distinct users with any event in the range */
    int64_t checkouts;     /* checkout.started */
    int64_t orders_placed; /* order.placed */
    int64_t orders_failed; /* order.failed */
    int64_t revenue_cents; /* sum of the placed orders' totals */
    /* conversion (placed / checkouts) and average order value (revenue / placed) are the
     * handler's arithmetic */
};

enum an_interval {
    AN_MINUTE,
    AN_HOUR,
    AN_DAY,
};

/* One bucket of /v1/revenue. The store returns the non-empty buckets, in time order; the
 * handler answers a dense series (empty buckets as zeros). */
struct an_point {
    int64_t t_ms; /* the bucket's start */
    int64_t orders;
    int64_t revenue_cents;
};

enum an_by {
    AN_BY_UNITS,
    AN_BY_REVENUE,
};

struct an_top_product {
    const char *product_id;
    const char *name; /* the latest name an order line gave it */
    int64_t units;
    int64_t revenue_cents;
};

/* A cohort: users registered in the range, and how many of them, in the range, added to a
 * cart, started a checkout, and had an order placed (each step counts only users of the one
 * before). */
struct an_funnel {
    int64_t registered;
    int64_t added_to_cart;
    int64_t checkout_started;
    int64_t placed;
};

/* GET /v1/events: newest first, by (event_ms, id) descending. */
struct an_event_query {
    const char *type;    /* NULL: any; else checked: lowercase dotted words */
    const char *subject; /* NULL: any; else checked: [A-Za-z0-9._:-], at most AN_SUBJECT_MAX */
    int limit;           /* 1..AN_EVENTS_MAX */
    bool after;          /* a cursor: only events strictly before (after_ms, after_id) */
    int64_t after_ms;
    char after_id[AN_ID_LEN + 1];
};

struct an_event {
    const char *id;
    const char *type;
    const char *source;
    const char *subject;
    const char *topic;
    int64_t event_ms;
    int64_t ingest_ms;
    const char *data; /* JSON text, as stored */
};

/* Latency of one topic's events, event time -> ingest time, over the events ingested in the
 * last WINDOW whose event time is within an hour of their ingestion (replays and backfills of
 * old events are not latency). */
struct an_topic_latency {
    const char *topic;
    int64_t events;
    double p50_ms, p99_ms;
    int64_t last_ingest_ms; /* of any event of the topic, 0 when none */
};

/*
 * The store. Every function returns 0 or a negative SVC_E*: SVC_EUNAVAILABLE while ClickHouse
 * cannot be reached or answers 5xx (the handlers answer 503 with Retry-After, the consumer
 * retries), SVC_EINTERNAL for an answer that makes no sense.
 */
struct an_store {
    void *ctx;

    /* ---- ingest (the consumer thread) ---- */
    /* Stores ROWS[N] (distinct ids): those whose id events already holds are skipped, the
     * others inserted in one INSERT (the materialized views fill the read models from it).
     * *INSERTED: how many were new. */
    int (*insert)(void *ctx, const struct an_row *rows, size_t n, size_t *inserted);
    /* Pseudonymises the rows of USER_IDS[N] in every table and records the users as forgotten,
     * so that later events of theirs are inserted pseudonymised (user.deleted). One mutation
     * per table for the lot. Idempotent. */
    int (*forget_users)(void *ctx, const char *const *user_ids, size_t n);

    /* ---- queries (the handlers) ---- */
    int (*summary)(void *ctx, const struct an_range *r, struct an_summary *out);
    int (*revenue)(void *ctx, struct svc_arena *a, const struct an_range *r, enum an_interval iv,
                   struct an_point **points, size_t *n);
    int (*top_products)(void *ctx, struct svc_arena *a, const struct an_range *r, enum an_by by,
                        int limit, struct an_top_product **out, size_t *n);
    int (*funnel)(void *ctx, const struct an_range *r, struct an_funnel *out);
    /* *MORE: there are events past the last one returned. */
    int (*events)(void *ctx, struct svc_arena *a, const struct an_event_query *q,
                  struct an_event **out, size_t *n, bool *more);
    /* One entry per topic that had an event ingested in the last WINDOW_MS. */
    int (*latency)(void *ctx, struct svc_arena *a, int64_t window_ms, struct an_topic_latency **out,
                   size_t *n);
};

/* ---- the handlers (analytics_http.c) --------------------------------------------------------- */

/* What the handlers need of the process: the store, and the consumer's lag per topic for
 * /v1/freshness (the process fills it; tests set a fake). */
struct an_app {
    struct an_store store;
    /* The topics the consumer reads, NULL-terminated. */
    const char *const *topics;
    /* The consumer's lag on TOPIC in records: 0 and *LAG, or SVC_ENOTFOUND while unknown
     * (no partition assigned yet). NULL: always unknown. */
    int (*lag)(void *ctx, const char *topic, int64_t *lag);
    void *lag_ctx;
};

extern const struct svc_route an_routes[];

/* analytics-svc/openapi.yaml, NUL-terminated, for svc_def.openapi (cmake/Service.cmake). */
extern const unsigned char an_openapi_yaml[];

#endif

/*
 * eventgen.h: a deterministic set of platform events with the exact answers analytics-svc must
 * give about them (issue 13), for its tests and its benchmark.
 *
 * A set is the life of a small shop over a window [start, start + minutes): products created
 * and restocked, users registering (and some returning users who registered before the window),
 * renaming themselves, topping up their wallets, filling carts, checking out, and orders placed
 * or failed with the stock reservations and payments of the saga around them, and some users
 * deleted at the end of their story. Every event is a CloudEvent valid against its schema in
 * schemas/events/, on the topic and with the key (its subject) its owner publishes it with.
 *
 * Everything comes from splitmix64 streams seeded from (seed, entity): ids, names, times and
 * amounts, with integer arithmetic only, so the same options give the same bytes on every
 * machine. Events are in time order (ties in the order they were generated), every time inside
 * the window.
 *
 * The expected answers are plain sums over the generated events, computed here without
 * ClickHouse and without any code of analytics-svc, following analytics.h's definitions:
 *   types           events per type
 *   summary         signups, active_users (distinct users with any event), checkouts,
 *                   orders_placed, orders_failed, revenue_cents (placed totals)
 *   revenue         per minute, hour and day (buckets aligned on the epoch, UTC): the non-empty
 *                   buckets {t, orders, revenue_cents}, in time order
 *   top_products    every product sold, by units and by revenue (descending, ties by
 *                   product_id ascending): {product_id, name, units, revenue_cents}
 *   funnel          the cohort registered in the window: registered, added_to_cart,
 *                   checkout_started, placed (each step among the users of the one before)
 *   deleted_users   the ids of the users a user.deleted event is about
 * Pseudonymising the deleted users changes none of these numbers; nor do the user.deleted events
 * themselves (a deletion ends a story, never is its only event), so a test may hold them back
 * and compare the answers before and after.
 *
 * With a count, the set is exactly COUNT events at a steady rate over the window (the
 * benchmark's load): the stories of as many users as it takes, cut at COUNT events in time
 * order, then spread evenly in time, order kept.
 */
#ifndef EVENTGEN_H
#define EVENTGEN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EG_USERS_MAX   100000
#define EG_MINUTES_MAX 527040 /* 366 days */
#define EG_COUNT_MAX   10000000

struct eg_opts {
    uint64_t seed;
    int users;        /* 1..EG_USERS_MAX (with a count: users per round of stories) */
    int64_t start_ms; /* a whole minute since the epoch */
    int minutes;      /* 1..EG_MINUTES_MAX */
    int64_t count;    /* 0: the stories as they come; else exactly this many events */
};

/* One generated event. Strings are owned by the set. */
struct eg_event {
    int64_t t_ms;      /* the envelope's time */
    const char *id;    /* the event id */
    const char *type;  /* "order.placed" */
    const char *topic; /* the topic its owner publishes it on: "cart-events" */
    const char *key;   /* the Kafka key: its subject */
    const char *json;  /* the whole envelope, compact JSON, one line */
};

struct eg_set;

/* Generates the set O describes. NULL (with the reason in ERR, CAP bytes) when O is out of
 * bounds: start not a whole minute, users, minutes or count out of range. Free with
 * eg_set_free(). */
struct eg_set *eg_generate(const struct eg_opts *o, char *err, size_t cap);
void eg_set_free(struct eg_set *s);

/* The events, in time order; valid until eg_set_free(). */
size_t eg_count(const struct eg_set *s);
const struct eg_event *eg_event_at(const struct eg_set *s, size_t i);

/* The expected answers (see the top of this file), owned by the set: take a reference to keep
 * them past eg_set_free(). */
json_t *eg_expect(const struct eg_set *s);

/* The events as NDJSON, one envelope a line; the expected answers as one JSON document, keys in
 * a fixed order, and a newline. 0, or -1 when F cannot be written. */
int eg_write_events(const struct eg_set *s, FILE *f);
int eg_write_expect(const struct eg_set *s, FILE *f);

#endif

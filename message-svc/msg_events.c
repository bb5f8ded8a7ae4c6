/*
 * msg_events.c: what message-svc consumes, and the machinery around it: the handler of
 * user-events and cart-events records, the Kafka consumer and its DLQ producer, the retention
 * sweep, and the readiness and drain hooks. No engine driver here: everything reaches MongoDB
 * through the store interface of msg.h.
 */
#include "msg_svc.h"

#include "svc/consume.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/time.h"
#include "svc/worker.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The consumer's first retry after a failure, doubling up to the cap: a database back after an
 * outage is noticed within RETRY_MAX_MS. */
#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   5000
/* How long shutdown waits for DLQ copies already queued to be acknowledged. */
#define FLUSH_MS 5000

/* ---- the handler ------------------------------------------------------------------------- */

/* The data members message-svc relies on; the rest of the schema (email, status, times) is not
 * its business, so unknown members are allowed. */
struct user_data {
    char id[SVC_JSON_UUID_SIZE];
    const char *name;
    int64_t version;
};

static const struct svc_json_field named_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct user_data, id)},
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .max = 100,
     .offset = offsetof(struct user_data, name)},
    {"version", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct user_data, version)},
    {0},
};

static const struct svc_json_field deleted_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct user_data, id)},
    {"version", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct user_data, version)},
    {0},
};

static int on_registered(const struct svc_event_in *in)
{
    const struct msg_store *st = in->arg;
    const struct user_data *d = in->data;

    return st->user_registered(st->ctx, in->ev->id, d->id, d->name, d->version, in->time_ms);
}

static int on_updated(const struct svc_event_in *in)
{
    const struct msg_store *st = in->arg;
    const struct user_data *d = in->data;

    return st->user_updated(st->ctx, d->id, d->name, d->version);
}

static int on_deleted(const struct svc_event_in *in)
{
    const struct msg_store *st = in->arg;
    const struct user_data *d = in->data;

    return st->user_deleted(st->ctx, d->id, d->version);
}

/* cart-svc's order.placed and order.failed: what a user is told of an order. */
struct order_line {
    const char *name;
    int64_t quantity;
    int64_t price_cents;
};

struct order_data {
    char order_id[SVC_JSON_UUID_SIZE];
    char user_id[SVC_JSON_UUID_SIZE];
    struct order_line *lines;
    size_t n;
    int64_t total_cents;
    const char *currency;
    const char *reason; /* order.failed only */
};

static const struct svc_json_field line_fields[] = {
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .max = 200,
     .offset = offsetof(struct order_line, name)},
    {"quantity", SVC_JSON_INT, .required = true, .min = 1, .max = 99,
     .offset = offsetof(struct order_line, quantity)},
    {"price_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct order_line, price_cents)},
    {0},
};

static const struct svc_json_field line_elem = {
    .type = SVC_JSON_OBJECT, .fields = line_fields, .size = sizeof(struct order_line)};

static const struct svc_json_field placed_fields[] = {
    {"order_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct order_data, order_id)},
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct order_data, user_id)},
    {"lines", SVC_JSON_ARRAY, .required = true, .min = 1, .max = 100, .elem = &line_elem,
     .offset = offsetof(struct order_data, lines), .count = offsetof(struct order_data, n)},
    {"total_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct order_data, total_cents)},
    {"currency", SVC_JSON_STRING, .required = true, .min = 3, .max = 3,
     .offset = offsetof(struct order_data, currency)},
    {0},
};

/* order.placed's, and the reason. */
static const struct svc_json_field failed_fields[] = {
    {"order_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct order_data, order_id)},
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct order_data, user_id)},
    {"lines", SVC_JSON_ARRAY, .required = true, .min = 1, .max = 100, .elem = &line_elem,
     .offset = offsetof(struct order_data, lines), .count = offsetof(struct order_data, n)},
    {"total_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct order_data, total_cents)},
    {"currency", SVC_JSON_STRING, .required = true, .min = 3, .max = 3,
     .offset = offsetof(struct order_data, currency)},
    {"reason", SVC_JSON_STRING, .required = true, .min = 1, .max = 300,
     .offset = offsetof(struct order_data, reason)},
    {0},
};

/* Bytes of order lines a message lists; the rest is counted ("and 3 more"). Characters never
 * outnumber bytes, so the body stays within MSG_BODY_MAX. */
#define LINES_BUDGET (MSG_BODY_MAX / 2)

/* CENTS as "12.50" (every currency cart-svc sells in has two decimals). */
static const char *money(struct svc_arena *a, int64_t cents)
{
    return svc_arena_printf(a, "%" PRId64 ".%02" PRId64, cents / 100, cents % 100);
}

/* The order's lines, one a line: "2 x Steel Kettle at 12.50 EUR". */
static const char *lines_text(struct svc_arena *a, const struct order_data *d)
{
    const char *text = "";
    size_t i;

    for (i = 0; i < d->n && strlen(text) < LINES_BUDGET; i++)
        text = svc_arena_printf(a, "%s%" PRId64 " x %s at %s %s\n", text, d->lines[i].quantity,
                                d->lines[i].name, money(a, d->lines[i].price_cents), d->currency);
    if (i < d->n)
        text = svc_arena_printf(a, "%sand %zu more\n", text, d->n - i);
    return text;
}

/*
 * Puts a system message about the order into its user's inbox. Its id is the event's, so a
 * redelivery finds it there and adds nothing. A user message-svc does not know (never
 * registered, or deleted since) has no inbox to put it in: skipped with a log line, as
 * retrying would not make one.
 */
static int order_message(const struct svc_event_in *in, const char *subject, const char *body)
{
    const struct msg_store *st = in->arg;
    const struct order_data *d = in->data;
    struct msg_new m = {
        .from_user_id = MSG_SYSTEM,
        .to_user_id = d->user_id,
        .subject = subject,
        .body = body,
        .dedup_key = in->ev->id,
        .source_event_id = in->ev->id,
    };
    struct msg_message out;
    bool replayed;
    int rc = st->send(st->ctx, in->arena, &m, &out, &replayed);

    switch (rc) {
    case MSG_EUSER_UNKNOWN:
    case MSG_EUSER_DELETED:
        svc_log_info("event '%s' (%s): no inbox for user '%s' (%s): no message", in->ev->id,
                     in->ev->type, d->user_id, svc_err_title(rc));
        return 0;
    case SVC_EIDEMPOTENCY:
        /* The event's message is there with other words (written by an earlier version of
         * this text): it was told once, which is what matters. */
        svc_log_info("event '%s' (%s): its message is already in the inbox of '%s'", in->ev->id,
                     in->ev->type, d->user_id);
        return 0;
    default:
        return rc;
    }
}

static int on_order_placed(const struct svc_event_in *in)
{
    const struct order_data *d = in->data;
    const char *body =
        svc_arena_printf(in->arena, "Your order %s is placed.\n\n%s\nTotal: %s %s", d->order_id,
                         lines_text(in->arena, d), money(in->arena, d->total_cents), d->currency);

    return order_message(in, MSG_ORDER_PLACED_SUBJECT, body);
}

static int on_order_failed(const struct svc_event_in *in)
{
    const struct order_data *d = in->data;
    const char *body = svc_arena_printf(
        in->arena,
        "Your order %s could not be placed: %s\n\nNothing was charged and no stock is held "
        "for it. The order was:\n\n%s\nTotal: %s %s",
        d->order_id, d->reason, lines_text(in->arena, d), money(in->arena, d->total_cents),
        d->currency);

    return order_message(in, MSG_ORDER_FAILED_SUBJECT, body);
}

/* user-svc's other events (wallet.credited, payment.*) and cart-svc's cart.* and
 * checkout.started are not message-svc's business: not listed, so done without a look. */
static const struct svc_event_handler handlers[] = {
    {EV_USER_REGISTERED, .fields = named_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_registered},
    {EV_USER_UPDATED, .fields = named_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_updated},
    {EV_USER_DELETED, .fields = deleted_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_deleted},
    {EV_ORDER_PLACED, .fields = placed_fields, .size = sizeof(struct order_data),
     .subject = "user_id", .apply = on_order_placed},
    {EV_ORDER_FAILED, .fields = failed_fields, .size = sizeof(struct order_data),
     .subject = "user_id", .apply = on_order_failed},
    {0},
};

enum svc_ev_result msg_handle_record(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                     void *store)
{
    return svc_event_dispatch(handlers, rec, reason, store);
}

/* ---- the consumer ------------------------------------------------------------------------ */

int msg_consumer_init(void *svc)
{
    struct msg_svc *s = svc;
    static const char *const topics[] = {TOPIC_USER_EVENTS, TOPIC_CART_EVENTS, NULL};
    struct svc_kafka_config kc = {
        .brokers = s->cfg.kafka_brokers,
        .client_id = "message-svc",
    };
    struct svc_consumer_config cc = {
        .kafka = &kc,
        .group_id = MSG_GROUP,
        .topics = topics,
        .handler = msg_handle_record,
        .arg = &s->app.store,
        .retry_initial_ms = RETRY_FIRST_MS,
        .retry_max_ms = RETRY_MAX_MS,
    };
    int rc;

    /* A producer of our own for the DLQ, so /readyz can say whether a broker is up. */
    rc = svc_producer_new(&kc, &s->dlq);
    if (rc != 0)
        return rc;
    cc.dlq = s->dlq;
    rc = svc_consumer_new(&cc, &s->consumer);
    if (rc != 0)
        return rc;
    return svc_consumer_start(s->consumer);
}

void msg_consumer_fini(void *svc)
{
    struct msg_svc *s = svc;

    svc_consumer_free(s->consumer); /* stops first, committing what is finished */
    s->consumer = NULL;
    svc_producer_close(&s->dlq, FLUSH_MS);
}

/* ---- the retention sweep ----------------------------------------------------------------- */

/* One sweep; the worker calls it every SWEEP_INTERVAL. */
static int64_t sweep_once(void *svc)
{
    struct msg_svc *s = svc;
    const struct msg_store *st = &s->app.store;
    int64_t deleted = 0;
    int rc = st->sweep(st->ctx, svc_wall_ms() - s->cfg.retention_ms, &deleted);

    if (rc == 0 && deleted > 0)
        svc_log_info("retention sweep deleted %lld messages older than %lld ms", (long long)deleted,
                     (long long)s->cfg.retention_ms);
    else if (rc != 0)
        svc_log_warn("retention sweep failed: %s; next try in %lld ms", svc_err_title(rc),
                     (long long)s->cfg.sweep_every_ms);
    return SVC_WORKER_INTERVAL;
}

int msg_sweeper_init(void *svc)
{
    struct msg_svc *s = svc;

    s->sweeper = svc_worker_new("retention sweep", s->cfg.sweep_every_ms, sweep_once, s);
    return svc_worker_start(s->sweeper);
}

void msg_sweeper_fini(void *svc)
{
    struct msg_svc *s = svc;

    svc_worker_free(s->sweeper);
    s->sweeper = NULL;
}

/* ---- readiness and drain ----------------------------------------------------------------- */

void msg_drain(void *svc)
{
    struct msg_svc *s = svc;

    if (s->consumer != NULL)
        svc_consumer_stop(s->consumer);
    svc_worker_stop(s->sweeper);
}

void msg_ready(void *svc, struct svc_health *h)
{
    struct msg_svc *s = svc;

    svc_dep_report(msg_mongo_dep(s->mongo), h, NULL);
    svc_dep_report(svc_producer_dep(s->dlq), h, "events wait in their topics until it is back");
    /* Not ready while the group gives it nothing, or a record is stuck (kafka.h). */
    svc_dep_report(svc_consumer_dep(s->consumer), h, NULL);
}

/*
 * cart_events.c: what cart-svc publishes and consumes, and the machinery around it: the
 * CloudEvent of each change (XADDed by the store in the same MULTI/EXEC as the change), the
 * Kafka producer and the outbox relay, the consumer of user-events and product-events that
 * keeps the read models, and the readiness and drain hooks. No engine call here: everything
 * reaches Redis through the store interface and its outbox source.
 */
#include "cart_svc.h"

#include "svc/consume.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/json.h"
#include "svc/kafka.h"
#include "svc/log.h"
#include "svc/time.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* How long shutdown waits for messages already queued (events, DLQ copies) to be
 * acknowledged. */
#define FLUSH_MS 5000
/* The relay's longest wait for one batch's acknowledgements; what is not acknowledged by then
 * stays pending in the stream and is claimed and published again. */
#define PUBLISH_TIMEOUT_MS 10000
/* Longest pause of the relay after a failure (the broker gone, Redis gone). */
#define BACKOFF_MAX_MS 5000
/* The consumer's first retry after a failure, doubling up to the cap: Redis back after an
 * outage is noticed within RETRY_MAX_MS. */
#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   5000

/* ---- events ------------------------------------------------------------------------------ */

static json_t *line_json(const struct cart_line *l)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:s}", "product_id", l->product_id, "quantity",
                     (json_int_t)l->quantity, "price_cents", (json_int_t)l->price_cents, "currency",
                     l->currency != NULL ? l->currency : "", "name",
                     l->name != NULL ? l->name : "");
}

int cart_event_line(struct svc_event_out *ev, const char *type, const char *user_id,
                    const struct cart_line *line, const char *traceparent)
{
    json_t *data;

    if (strcmp(type, EV_CART_ITEM_REMOVED) == 0)
        data = json_pack("{s:s, s:s, s:o}", "user_id", user_id, "product_id", line->product_id,
                         "at", svc_json_time(line->updated_at_ms));
    else {
        data = line_json(line);
        if (data != NULL) {
            json_object_set_new(data, "user_id", json_string(user_id));
            json_object_set_new(data, "at", svc_json_time(line->updated_at_ms));
        }
    }
    return svc_event_build(ev, type, CART_SOURCE, user_id, data, traceparent);
}

int cart_event_order(struct svc_event_out *ev, const char *type, const struct cart_order *o,
                     const char *traceparent)
{
    json_t *lines = json_array();
    json_t *data;

    for (size_t i = 0; i < o->n; i++)
        json_array_append_new(lines, line_json(&o->lines[i]));
    data =
        json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o}", "order_id", o->id, "user_id",
                  o->user_id, "status", cart_status_name(o->status), "lines", lines, "total_cents",
                  (json_int_t)o->total_cents, "currency", o->currency != NULL ? o->currency : "",
                  "created_at", svc_json_time(o->created_at_ms), "updated_at",
                  svc_json_time(o->updated_at_ms));
    if (data != NULL && o->status == CART_FAILED) {
        json_object_set_new(data, "failed_step",
                            json_string(o->failed_step != NULL ? o->failed_step : ""));
        json_object_set_new(data, "reason", json_string(o->reason != NULL ? o->reason : ""));
    }
    return svc_event_build(ev, type, CART_SOURCE, o->user_id, data, traceparent);
}

/* ---- the read models: user-events and product-events ------------------------------------- */

/* The data members cart-svc relies on; the rest of each schema (email, name, sku, tags, ...)
 * is not its business, so unknown members are allowed. */
struct user_data {
    char id[SVC_JSON_UUID_SIZE];
    int64_t version;
};

static const struct svc_json_field user_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct user_data, id)},
    {"version", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct user_data, version)},
    {0},
};

struct product_data {
    char id[SVC_JSON_UUID_SIZE];
    const char *name;
    int64_t price_cents;
    const char *currency;
    int64_t stock, reserved;
    const char *updated_at;
};

static const struct svc_json_field product_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct product_data, id)},
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .max = 200,
     .offset = offsetof(struct product_data, name)},
    {"price_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct product_data, price_cents)},
    {"currency", SVC_JSON_STRING, .required = true, .min = 3, .max = 3,
     .offset = offsetof(struct product_data, currency)},
    {"stock", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct product_data, stock)},
    {"reserved", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct product_data, reserved)},
    {"updated_at", SVC_JSON_STRING, .required = true, .min = 1, .max = 64,
     .offset = offsetof(struct product_data, updated_at)},
    {0},
};

static const struct svc_json_field product_deleted_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct product_data, id)},
    {0},
};

static int on_user(const struct svc_event_in *in)
{
    const struct cart_store *st = in->arg;
    const struct user_data *d = in->data;

    return st->user_upsert(st->ctx, in->ev->id, d->id, d->version);
}

static int on_user_deleted(const struct svc_event_in *in)
{
    const struct cart_store *st = in->arg;
    const struct user_data *d = in->data;

    return st->user_deleted(st->ctx, in->ev->id, d->id, d->version);
}

static bool currency_code(const char *c)
{
    for (int i = 0; i < 3; i++)
        if (c[i] < 'A' || c[i] > 'Z')
            return false;
    return c[3] == '\0';
}

static int on_product(const struct svc_event_in *in)
{
    const struct cart_store *st = in->arg;
    const struct product_data *d = in->data;
    struct cart_product p = {
        .name = d->name,
        .price_cents = d->price_cents,
        .currency = d->currency,
        .available = d->stock - d->reserved,
    };
    int64_t updated_at_ms;

    /* The table checks types and bounds; what it cannot say is said here, and the dispatcher
     * sends the event to the DLQ as invalid. */
    if (!svc_rfc3339_parse(d->updated_at, &updated_at_ms)) {
        svc_log_warn("event '%s' (%s): data field 'updated_at' is not RFC 3339", in->ev->id,
                     in->ev->type);
        return SVC_EINVAL;
    }
    if (!currency_code(d->currency)) {
        svc_log_warn("event '%s' (%s): data field 'currency' is not an ISO 4217 code", in->ev->id,
                     in->ev->type);
        return SVC_EINVAL;
    }
    if (p.available < 0) {
        svc_log_warn("event '%s' (%s): data field 'reserved' is above 'stock'", in->ev->id,
                     in->ev->type);
        return SVC_EINVAL;
    }
    memcpy(p.id, d->id, sizeof(p.id));
    return st->product_upsert(st->ctx, in->ev->id, &p, updated_at_ms);
}

static int on_product_deleted(const struct svc_event_in *in)
{
    const struct cart_store *st = in->arg;
    const struct product_data *d = in->data;

    return st->product_deleted(st->ctx, in->ev->id, d->id);
}

/* user-svc's wallet and payment events and product-svc's stock events are not the read
 * models' business: not listed, so done without a look. */
static const struct svc_event_handler handlers[] = {
    {EV_USER_REGISTERED, .fields = user_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_user},
    {EV_USER_UPDATED, .fields = user_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_user},
    {EV_USER_DELETED, .fields = user_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_user_deleted},
    {EV_PRODUCT_CREATED, .fields = product_fields, .size = sizeof(struct product_data),
     .subject = "id", .apply = on_product},
    {EV_PRODUCT_UPDATED, .fields = product_fields, .size = sizeof(struct product_data),
     .subject = "id", .apply = on_product},
    {EV_PRODUCT_DELETED, .fields = product_deleted_fields, .size = sizeof(struct product_data),
     .subject = "id", .apply = on_product_deleted},
    {0},
};

enum svc_ev_result cart_handle_record(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                      void *store)
{
    return svc_event_dispatch(handlers, rec, reason, store);
}

/* ---- producer, relay, consumer ----------------------------------------------------------- */

int cart_producer_init(void *svc)
{
    struct cart_svc *s = svc;
    struct svc_kafka_config kc = {
        .brokers = s->cfg.kafka_brokers,
        .client_id = "cart-svc",
    };

    return svc_producer_new(&kc, &s->producer);
}

void cart_producer_fini(void *svc)
{
    struct cart_svc *s = svc;

    svc_producer_close(&s->producer, FLUSH_MS);
}

int cart_relay_init(void *svc)
{
    struct cart_svc *s = svc;
    struct svc_outbox_config oc = {
        .name = "cart-svc",
        .producer = s->producer,
        .batch_max = (size_t)s->cfg.outbox_batch,
        .poll_interval_ms = (int)s->cfg.outbox_poll_ms,
        .backoff_max_ms = BACKOFF_MAX_MS,
        .publish_timeout_ms = PUBLISH_TIMEOUT_MS,
        .source = s->outbox,
    };

    return svc_outbox_relay_run(&oc, &s->relay);
}

void cart_relay_fini(void *svc)
{
    struct cart_svc *s = svc;

    svc_outbox_relay_free(s->relay);
    s->relay = NULL;
}

int cart_consumer_init(void *svc)
{
    struct cart_svc *s = svc;
    static const char *const topics[] = {TOPIC_USER_EVENTS, TOPIC_PRODUCT_EVENTS, NULL};
    struct svc_kafka_config kc = {
        .brokers = s->cfg.kafka_brokers,
        .client_id = "cart-svc",
    };
    struct svc_consumer_config cc = {
        .kafka = &kc,
        .group_id = CART_GROUP,
        .topics = topics,
        .handler = cart_handle_record,
        .arg = &s->app.store,
        /* The relay's producer also writes "<topic>.dlq": one connection to the brokers, and
         * /readyz reports it once. */
        .dlq = s->producer,
        .retry_initial_ms = RETRY_FIRST_MS,
        .retry_max_ms = RETRY_MAX_MS,
    };
    int rc;

    rc = svc_consumer_new(&cc, &s->consumer);
    if (rc != 0)
        return rc;
    return svc_consumer_start(s->consumer);
}

void cart_consumer_fini(void *svc)
{
    struct cart_svc *s = svc;

    svc_consumer_free(s->consumer); /* stops first, committing what is finished */
    s->consumer = NULL;
}

/* ---- readiness and drain ----------------------------------------------------------------- */

void cart_drain(void *svc)
{
    struct cart_svc *s = svc;

    /* The saga first: an order it finishes now still gets its event out through the relay,
     * which stops last. */
    svc_worker_stop(s->saga);
    if (s->consumer != NULL)
        svc_consumer_stop(s->consumer);
    if (s->relay != NULL)
        svc_outbox_relay_stop(s->relay);
}

void cart_ready(void *svc, struct svc_health *h)
{
    struct cart_svc *s = svc;

    svc_dep_report(cart_redis_dep(s->redis), h, NULL);
    if (s->producer != NULL)
        svc_dep_report(svc_producer_dep(s->producer), h,
                       "events wait in the outbox stream (%d queued)",
                       svc_producer_queued(s->producer));
    /* Not ready while the group gives it nothing, or a record is stuck (kafka.h). */
    svc_dep_report(svc_consumer_dep(s->consumer), h, NULL);
}

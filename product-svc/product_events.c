/*
 * product_events.c: what product-svc publishes, and the machinery that publishes it: the
 * CloudEvent of each change (embedded by the store in the document it writes), the Kafka
 * producer, the outbox relay, the reservation sweep, and the readiness and
 * drain hooks. No engine call here: the relay and the sweep reach the engine only through the
 * store's source and functions.
 */
#include "product_svc.h"

#include "svc/dep.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/idem.h"
#include "svc/json.h"
#include "svc/kafka.h"
#include "svc/log.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <jansson.h>
#include <string.h>

/* How long shutdown waits for messages already queued to be acknowledged. */
#define FLUSH_MS 5000
/* The relay's longest wait for one batch's acknowledgements; what is not acknowledged by then
 * stays pending in its document and is published again. */
#define PUBLISH_TIMEOUT_MS 10000
/* Longest pause of the relay after a failure (the broker gone, the engine gone). */
#define BACKOFF_MAX_MS 5000

/* ---- events ------------------------------------------------------------------------------ */

static json_t *tags_json(const char *const *tags, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(tags[i]));
    return a;
}

int prod_event_product(struct svc_event_out *ev, const char *type, const struct product *p,
                       int64_t old_price_cents, const char *traceparent)
{
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:I, s:o, s:o}", "id", p->id,
                  "sku", p->sku, "name", p->name, "category", p->category, "tags",
                  tags_json(p->tags, p->ntags), "price_cents", (json_int_t)p->price_cents,
                  "currency", p->currency, "stock", (json_int_t)p->stock, "reserved",
                  (json_int_t)p->reserved, "sold", (json_int_t)p->sold, "created_at",
                  svc_json_time(p->created_at_ms), "updated_at", svc_json_time(p->updated_at_ms));

    if (data != NULL && old_price_cents >= 0 && old_price_cents != p->price_cents)
        json_object_set_new(data, "old_price_cents", json_integer(old_price_cents));
    return svc_event_build(ev, type, PROD_SOURCE, p->id, data, traceparent);
}

int prod_event_deleted(struct svc_event_out *ev, const char *id, const char *sku,
                       int64_t deleted_at_ms, const char *traceparent)
{
    json_t *data = json_pack("{s:s, s:s, s:o}", "id", id, "sku", sku, "deleted_at",
                             svc_json_time(deleted_at_ms));

    return svc_event_build(ev, EV_PRODUCT_DELETED, PROD_SOURCE, id, data, traceparent);
}

int prod_event_stock(struct svc_event_out *ev, const char *type, const struct prod_reservation *r,
                     const char *traceparent)
{
    json_t *items = json_array();
    json_t *data;

    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(items, json_pack("{s:s, s:I}", "product_id", r->items[i].product_id,
                                               "quantity", (json_int_t)r->items[i].quantity));
    data = json_pack("{s:s, s:s, s:o, s:o, s:o}", "reservation_id", r->id, "state", r->state,
                     "items", items, "expires_at", svc_json_time(r->expires_at_ms), "updated_at",
                     svc_json_time(r->updated_at_ms));
    if (data != NULL && r->release_reason != NULL)
        json_object_set_new(data, "reason", json_string(r->release_reason));
    return svc_event_build(ev, type, PROD_SOURCE, r->id, data, traceparent);
}

/* ---- producer, relay, sweep -------------------------------------------------------------- */

int prod_producer_init(void *svc)
{
    struct prod_svc *s = svc;
    struct svc_kafka_config kc = {
        .brokers = s->cfg.kafka_brokers,
        .client_id = "product-svc",
    };

    return svc_producer_new(&kc, &s->producer);
}

void prod_producer_fini(void *svc)
{
    struct prod_svc *s = svc;

    svc_producer_close(&s->producer, FLUSH_MS);
}

int prod_relay_init(void *svc)
{
    struct prod_svc *s = svc;
    struct svc_outbox_config oc = {
        .name = "product-svc",
        .producer = s->producer,
        .batch_max = (size_t)s->cfg.outbox_batch,
        .poll_interval_ms = (int)s->cfg.outbox_poll_ms,
        .backoff_max_ms = BACKOFF_MAX_MS,
        .publish_timeout_ms = PUBLISH_TIMEOUT_MS,
        .source = s->outbox,
    };

    return svc_outbox_relay_run(&oc, &s->relay);
}

void prod_relay_fini(void *svc)
{
    struct prod_svc *s = svc;

    svc_outbox_relay_free(s->relay);
    s->relay = NULL;
}

/* One sweep; the worker calls it every RESERVATION_SWEEP. */
static int64_t sweep_once(void *svc)
{
    struct prod_svc *s = svc;
    const struct prod_store *st = &s->app.store;
    int64_t released = 0;
    int rc = st->sweep(st->ctx, svc_wall_ms(), &released);

    if (rc == 0 && released > 0)
        svc_log_info("reservation sweep released %lld expired reservations", (long long)released);
    else if (rc != 0)
        svc_log_warn("reservation sweep failed: %s; next try in %lld ms", svc_err_title(rc),
                     (long long)s->cfg.sweep_every_ms);
    return SVC_WORKER_INTERVAL;
}

int prod_sweeper_init(void *svc)
{
    struct prod_svc *s = svc;

    s->sweeper = svc_worker_new("reservation sweep", s->cfg.sweep_every_ms, sweep_once, s);
    return svc_worker_start(s->sweeper);
}

void prod_sweeper_fini(void *svc)
{
    struct prod_svc *s = svc;

    svc_worker_free(s->sweeper);
    s->sweeper = NULL;
}

/* ---- readiness and drain ----------------------------------------------------------------- */

void prod_drain(void *svc)
{
    struct prod_svc *s = svc;

    if (s->relay != NULL)
        svc_outbox_relay_stop(s->relay);
    svc_worker_stop(s->sweeper);
}

void prod_ready(void *svc, struct svc_health *h)
{
    struct prod_svc *s = svc;

    svc_dep_report(prod_os_dep(s->os), h, NULL);
    svc_dep_report(svc_producer_dep(s->producer), h, "events wait in their documents (%d queued)",
                   svc_producer_queued(s->producer));
}

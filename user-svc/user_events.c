/*
 * user_events.c: what user-svc publishes, and the machinery that publishes it: the CloudEvent
 * of each change (written to the outbox by the store), the Kafka producer, the outbox relay,
 * and the readiness and drain hooks. No engine driver here: the relay reaches PostgreSQL only
 * through the source interface the store fills in.
 */
#include "user_svc.h"

#include "svc/dep.h"
#include "svc/event.h"
#include "svc/json.h"
#include "svc/kafka.h"

#include <jansson.h>

/* How long shutdown waits for messages already queued to be acknowledged. */
#define FLUSH_MS 5000
/* The relay's longest wait for one batch's acknowledgements; what is not acknowledged by then
 * stays pending and is published again. */
#define PUBLISH_TIMEOUT_MS 10000
/* Longest pause of the relay after a failure (the broker gone, the database gone). */
#define BACKOFF_MAX_MS 5000

/* ---- events ------------------------------------------------------------------------------ */

/* A string member, or null (an erased name). */
static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

int user_event_user(struct svc_event_out *ev, const char *type, const struct user *u,
                    const char *traceparent)
{
    json_t *data = json_pack(
        "{s:s, s:o, s:o, s:s, s:I, s:o, s:o}", "id", u->id, "email", str_or_null(u->email), "name",
        str_or_null(u->name), "status", u->status, "version", (json_int_t)u->version, "created_at",
        svc_json_time(u->created_at_ms), "updated_at", svc_json_time(u->updated_at_ms));

    return svc_event_build(ev, type, USER_SOURCE, u->id, data, traceparent);
}

int user_event_deleted(struct svc_event_out *ev, const char *user_id, int64_t version,
                       int64_t deleted_at_ms, const char *traceparent)
{
    json_t *data = json_pack("{s:s, s:s, s:I, s:o}", "id", user_id, "status", "deleted", "version",
                             (json_int_t)version, "deleted_at", svc_json_time(deleted_at_ms));

    return svc_event_build(ev, EV_USER_DELETED, USER_SOURCE, user_id, data, traceparent);
}

int user_event_credit(struct svc_event_out *ev, const struct credit *c, const char *traceparent)
{
    json_t *data =
        json_pack("{s:s, s:s, s:I, s:I, s:o}", "credit_id", c->credit_id, "user_id", c->user_id,
                  "amount_cents", (json_int_t)c->amount_cents, "balance_cents",
                  (json_int_t)c->balance_cents, "created_at", svc_json_time(c->created_at_ms));

    return svc_event_build(ev, EV_WALLET_CREDITED, USER_SOURCE, c->user_id, data, traceparent);
}

int user_event_payment(struct svc_event_out *ev, const char *type, const struct payment *p,
                       const char *traceparent)
{
    json_t *data = json_pack("{s:s, s:s, s:I, s:s, s:I, s:o}", "payment_id", p->payment_id,
                             "user_id", p->user_id, "amount_cents", (json_int_t)p->amount_cents,
                             "status", p->status, "balance_cents", (json_int_t)p->balance_cents,
                             "created_at", svc_json_time(p->created_at_ms));

    if (data != NULL && p->refunded_at_ms != 0)
        json_object_set_new(data, "refunded_at", svc_json_time(p->refunded_at_ms));
    return svc_event_build(ev, type, USER_SOURCE, p->user_id, data, traceparent);
}

/* ---- producer and relay ------------------------------------------------------------------- */

int user_producer_init(void *svc)
{
    struct user_svc *s = svc;
    struct svc_kafka_config kc = {
        .brokers = s->cfg.kafka_brokers,
        .client_id = "user-svc",
    };

    return svc_producer_new(&kc, &s->producer);
}

void user_producer_fini(void *svc)
{
    struct user_svc *s = svc;

    svc_producer_close(&s->producer, FLUSH_MS);
}

int user_relay_init(void *svc)
{
    struct user_svc *s = svc;
    struct svc_outbox_config oc = {
        .name = "user-svc",
        .producer = s->producer,
        .batch_max = (size_t)s->cfg.outbox_batch,
        .poll_interval_ms = (int)s->cfg.outbox_poll_ms,
        .backoff_max_ms = BACKOFF_MAX_MS,
        .publish_timeout_ms = PUBLISH_TIMEOUT_MS,
        .source = s->outbox,
    };

    return svc_outbox_relay_run(&oc, &s->relay);
}

void user_relay_fini(void *svc)
{
    struct user_svc *s = svc;

    svc_outbox_relay_free(s->relay);
    s->relay = NULL;
}

void user_drain(void *svc)
{
    struct user_svc *s = svc;

    if (s->relay != NULL)
        svc_outbox_relay_stop(s->relay);
}

void user_ready(void *svc, struct svc_health *h)
{
    struct user_svc *s = svc;

    svc_dep_report(user_pg_dep(s->pg), h, NULL);
    svc_dep_report(svc_producer_dep(s->producer), h, "events wait in the outbox (%d queued)",
                   svc_producer_queued(s->producer));
}

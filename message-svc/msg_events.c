/*
 * msg_events.c: what message-svc consumes, and the machinery around it: the handler of
 * user-events records, the Kafka consumer and its DLQ producer, the retention sweep, and the
 * readiness and drain hooks. No engine driver here: everything reaches MongoDB through the
 * store interface of msg.h.
 */
#include "msg_svc.h"

#include "svc/consume.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/time.h"
#include "svc/worker.h"

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

/* user-svc's other events (wallet.credited, payment.*) are not message-svc's business: not
 * listed, so done without a look. */
static const struct svc_event_handler handlers[] = {
    {EV_USER_REGISTERED, .fields = named_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_registered},
    {EV_USER_UPDATED, .fields = named_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_updated},
    {EV_USER_DELETED, .fields = deleted_fields, .size = sizeof(struct user_data), .subject = "id",
     .apply = on_deleted},
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
    static const char *const topics[] = {TOPIC_USER_EVENTS, NULL};
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
    if (s->dlq != NULL) {
        svc_producer_flush(s->dlq, FLUSH_MS);
        svc_producer_free(s->dlq);
        s->dlq = NULL;
    }
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
    svc_dep_report(svc_producer_dep(s->dlq), h, "user events wait in the topic until it is back");
}

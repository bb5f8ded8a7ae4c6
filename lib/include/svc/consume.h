/*
 * consume.h: typed event handling for consumers. A consumer declares, in one static table,
 * the event types it handles: for each, the data members it relies on (a json.h field table
 * and the struct they fill) and the function that applies the event. svc_event_dispatch()
 * does the rest for each Kafka record: it parses the envelope (svc_event_parse), finds the
 * type, reads and checks the data, checks that the data's id is the subject, parses the time,
 * hands apply the decoded struct and an arena for the record, and turns the outcome into the
 * consumer's answer (kafka.h):
 *
 *   SVC_EV_DONE    applied; or a type the table does not list (another consumer's business)
 *   SVC_EV_RETRY   apply returned SVC_EUNAVAILABLE, SVC_ETIMEDOUT or SVC_EAGAIN: a passing
 *                  outage, the record comes back after a backoff
 *   SVC_EV_POISON  no value (a tombstone), not a CloudEvent, data not as the table says, the
 *                  data's id not the subject, or apply returned any other error: retrying
 *                  cannot help, so the record goes to the DLQ with REASON naming what is wrong
 *                  ("event '<id>' (user.updated): data field 'name' is required")
 *
 * Example (message-svc):
 *
 *   struct user_data { char id[SVC_JSON_UUID_SIZE]; const char *name; int64_t version; };
 *   static const struct svc_json_field named_fields[] = {...};
 *
 *   static int on_updated(const struct svc_event_in *in)
 *   {
 *       const struct msg_store *st = in->arg;
 *       const struct user_data *d = in->data;
 *
 *       return st->user_updated(st->ctx, d->id, d->name, d->version);
 *   }
 *
 *   static const struct svc_event_handler handlers[] = {
 *       {EV_USER_UPDATED, .fields = named_fields, .size = sizeof(struct user_data),
 *        .subject = "id", .apply = on_updated},
 *       {0},
 *   };
 *
 *   enum svc_ev_result msg_handle_record(const struct svc_kafka_record *rec,
 *                                        struct svc_buf *reason, void *store)
 *   {
 *       return svc_event_dispatch(handlers, rec, reason, store);
 *   }
 *
 * and msg_handle_record is the svc_consumer_config handler, the store its arg. Handlers must
 * be idempotent by event id: a record can be handed over again after a crash or a rebalance.
 */
#ifndef SVC_CONSUME_H
#define SVC_CONSUME_H

#include "svc/arena.h"
#include "svc/buf.h"
#include "svc/event.h"
#include "svc/json.h"
#include "svc/kafka.h"

#include <stddef.h>
#include <stdint.h>

/* What apply is handed. Every pointer is valid until apply returns, and not after. */
struct svc_event_in {
    const struct svc_kafka_record *rec; /* the record, as the consumer gave it */
    const struct svc_event *ev;         /* the envelope: id, type, subject, time, data... */
    int64_t time_ms;                    /* ev->time, in ms since the epoch */
    void *data;                         /* the handler's struct, zeroed then read by .fields;
                                         * its strings point into ev->data */
    struct svc_arena *arena;            /* this record's, released once apply returns */
    void *arg;                          /* svc_event_dispatch()'s ARG */
};

/*
 * One event type a consumer handles. Tables are static const arrays ending in {0}; give the
 * type by position and the rest by designator.
 */
struct svc_event_handler {
    const char *type;                    /* "user.updated" (polyglot/events.h EV_*); NULL ends */
    const struct svc_json_field *fields; /* the data members read, into a struct of .size
                                          * bytes; members not listed are allowed (a schema may
                                          * grow); NULL reads nothing */
    size_t size;
    const char *subject; /* a required SVC_JSON_UUID or SVC_JSON_STRING field of .fields that
                          * must equal the envelope's subject ("id"), or NULL */
    /* Applies the event: 0, or an SVC_E* deciding RETRY or POISON as above. */
    int (*apply)(const struct svc_event_in *in);
};

/*
 * Handles REC with the handler of TABLE for its type, passing ARG on to apply, and answers
 * as above; for SVC_EV_POISON the reason is appended to REASON (it becomes the dlq-reason
 * header; the consumer logs it). Has the shape of a svc_consumer_fn but for TABLE, so a
 * consumer's own handler is one line.
 */
enum svc_ev_result svc_event_dispatch(const struct svc_event_handler *table,
                                      const struct svc_kafka_record *rec, struct svc_buf *reason,
                                      void *arg);

#endif

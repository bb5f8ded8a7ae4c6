/*
 * outbox.h: the relay of the transactional outbox (DESIGN.md "Patterns").
 *
 * A service writes its state change and the events it implies in one transaction of its own
 * engine; the relay, a periodic worker (svc/worker.h), moves those pending events to Kafka. It
 * is generic: each service implements the small source interface below for its engine
 * (PostgreSQL rows taken with FOR UPDATE SKIP LOCKED and woken by LISTEN/NOTIFY, a Redis
 * stream read by a consumer group, events embedded in OpenSearch documents).
 *
 * One round: fetch a batch of pending events (oldest first), publish them all, wait for the
 * broker's acknowledgement of each, and mark published exactly the acknowledged ones. So an
 * event is marked only once Kafka has it (at least once: a crash between the acknowledgement
 * and the mark publishes it again, which idempotent consumers absorb), and per key the
 * events are marked in order: after a key's first failure in a batch, that key's later
 * events are not marked either, even if acknowledged, so they are published again after it
 * rather than before it.
 *
 * While the broker is unavailable (svc_producer_available() false) or a round fails, the relay
 * fetches nothing and backs off exponentially, up to backoff_max_ms. When a round leaves
 * nothing pending it waits for new events: through the source's wait hook when it has one
 * (LISTEN/NOTIFY), otherwise, or in addition, for svc_outbox_relay_wake() or poll_interval_ms.
 *
 * Gauges, labelled {outbox="<name>"}: outbox_backlog (pending events) and
 * outbox_oldest_age_seconds (age of the oldest pending one, 0 when none), from the source's
 * backlog hook after every round and at least every poll interval whatever the relay is doing:
 * waiting for events, backing off, or waiting for a batch's acknowledgements (which may take
 * message_timeout_ms while the broker is away); counters outbox_published_total and
 * outbox_publish_failures_total.
 */
#ifndef SVC_OUTBOX_H
#define SVC_OUTBOX_H

#include "svc/kafka.h"

#include <stddef.h>

/* One pending event, as the source hands it over. Every pointer is owned by the source and
 * stays valid until its release hook runs for the batch (or its next fetch, without one). */
struct svc_outbox_event {
    const char *id; /* the event id, for logs */
    const char *topic;
    const void *key; /* the event's subject; NULL for none */
    size_t key_len;
    const void *value; /* the rendered envelope (svc_event_render()) */
    size_t value_len;
    void *handle; /* the source's own: a row id, a stream entry id */
};

/*
 * The source interface: functions the service implements for its engine. Each returns 0 or a
 * negative SVC_E* (logged by the source, with its context); the relay backs off after an
 * error. All are called from the relay thread only, one at a time.
 */
struct svc_outbox_source {
    void *ctx; /* passed to every function */

    /* Stores in *EVENTS an array of at most MAX pending events, oldest first (in each key's
     * order), and returns how many (0 when none), or a negative SVC_E*. */
    int (*fetch)(void *ctx, size_t max, struct svc_outbox_event **events);

    /* Marks the N events of EVENTS published, so no fetch returns them again. N may be 0
     * (then there is nothing to do but, say, end a transaction). */
    int (*mark_published)(void *ctx, struct svc_outbox_event *const *events, size_t n);

    /* Optional (NULL): called once per fetched batch, after mark_published() or after the
     * round failed, to free the batch or end what fetch() began (a transaction). */
    void (*release)(void *ctx, struct svc_outbox_event *events, size_t n);

    /* Stores the number of pending events and the age in seconds of the oldest (0 when none).
     * Also called while a batch is out (between fetch() and mark_published()), every poll
     * interval while the relay waits for the broker: the batch's events count as pending. */
    int (*backlog)(void *ctx, size_t *count, double *oldest_age_s);

    /* Optional (NULL): blocks until new events may be pending (a notification: returns 1)
     * or TIMEOUT_MS have passed (returns 0); a negative SVC_E* on failure, after which the
     * relay polls. The relay passes timeouts of at most a second, calling again until its
     * poll interval is over, so that a stop is never held up for longer. */
    int (*wait)(void *ctx, int timeout_ms);
};

struct svc_outbox_config {
    const char *name;              /* the gauges' outbox label, e.g. "user-svc" (required) */
    struct svc_producer *producer; /* not owned; must outlive the relay */
    struct svc_outbox_source source;
    size_t batch_max;       /* events per round [100] */
    int poll_interval_ms;   /* longest wait between rounds when idle [1000] */
    int backoff_initial_ms; /* first backoff after a failure [100], doubling ... */
    int backoff_max_ms;     /* ... up to [10000] */
    int publish_timeout_ms; /* longest wait for a batch's acknowledgements; <= 0: until
                               librdkafka reports each one (message_timeout_ms) */
};

struct svc_outbox_relay;

/* Creates a relay (not started). 0 or SVC_EINVAL when a required field or hook is missing.
 * Free with svc_outbox_relay_free(). */
int svc_outbox_relay_new(const struct svc_outbox_config *cfg, struct svc_outbox_relay **out);

/* Starts the relay thread. 0 or SVC_EINTERNAL. */
int svc_outbox_relay_start(struct svc_outbox_relay *r);

/* svc_outbox_relay_new() then svc_outbox_relay_start(): a service's start-up hook in one call.
 * On failure *OUT may hold a relay that did not start: free it with svc_outbox_relay_free(). */
int svc_outbox_relay_run(const struct svc_outbox_config *cfg, struct svc_outbox_relay **out);

/* Asks the relay to look for pending events now (e.g. right after a local commit). Cheap,
 * safe from any thread. */
void svc_outbox_relay_wake(struct svc_outbox_relay *r);

/* Stops the relay after its current round and joins the thread. Idempotent; safe without a
 * start. A round in progress finishes first: at most publish_timeout_ms (or
 * message_timeout_ms) plus the source's own time. */
void svc_outbox_relay_stop(struct svc_outbox_relay *r);

/* Stops (see above) and frees. NULL is a no-op. */
void svc_outbox_relay_free(struct svc_outbox_relay *r);

#endif

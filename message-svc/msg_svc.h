/*
 * msg_svc.h: message-svc as a process, around its handlers (msg.h): its configuration, the
 * MongoDB store's lifetime, the consumer of user-events and cart-events, the retention sweep,
 * and the hooks main.c lists.
 *
 * Start-up runs the hooks in order: "mongodb" (msg_store_init: the client pool, a ping and the
 * indexes), "kafka" (msg_consumer_init: the DLQ producer and the consumer of TOPIC_USER_EVENTS
 * and TOPIC_CART_EVENTS in group MSG_GROUP, started), "retention sweep" (msg_sweeper_init: a worker
 * deleting messages older than MESSAGE_RETENTION every SWEEP_INTERVAL). Shutdown: the drain hook
 * stops the consumer (its finished offsets committed) and the sweeper, then the hooks' fini run in
 * reverse.
 *
 * Consuming user-events and cart-events (svc_event_dispatch, svc/consume.h): each record is
 * parsed as a CloudEvent and its data checked against the schema's fields; then
 *   user.registered  the user into the read model and the welcome message (dedup: event id)
 *   user.updated     the display name, if newer, also on the messages the user sent
 *   user.deleted     the inbox deleted, the user marked deleted, the name off sent messages
 *   order.placed     an order confirmation (its lines and total) into the user's inbox
 *   order.failed     a failure notice (the reason, the lines and total) into the user's inbox
 * Both order messages are system messages whose id is the event's (dedup: event id), so a
 * redelivery adds nothing; for a user message-svc does not know or knows deleted there is no
 * inbox, so the event is skipped with a log line. Other event types on the topics
 * (wallet.credited, cart.item_added, ...) are not message-svc's business and are skipped. An
 * invalid event goes to "<topic>.dlq" with the reason (POISON); while the database is
 * unavailable the record is retried with backoff and its partition paused, so nothing is
 * skipped and consumption resumes when the database returns.
 */
#ifndef MSG_SVC_H
#define MSG_SVC_H

#include "msg.h"
#include "polyglot/events.h"
#include "svc/kafka.h"
#include "svc/server.h"
#include "svc/worker.h"

#include <stdbool.h>
#include <stdint.h>

#define MSG_GROUP "message-svc"

/* The welcome message written for each user.registered. */
#define MSG_WELCOME_SUBJECT_FMT "Welcome, %s!"
#define MSG_WELCOME_BODY                                                                           \
    "Your account is ready. Notifications from the platform and messages from other users "        \
    "will appear in this inbox."

/* The subjects of the messages written for order.placed and order.failed. */
#define MSG_ORDER_PLACED_SUBJECT "Order placed"
#define MSG_ORDER_FAILED_SUBJECT "Order failed"

/* message-svc's own configuration variables (main.c's table). */
struct msg_config {
    char *mongodb_uri;      /* MONGODB_URI: mongodb://host:port/db?retryWrites=false */
    int mongodb_pool;       /* MONGODB_POOL: most connections of the client pool */
    char *kafka_brokers;    /* KAFKA_BROKERS */
    int64_t retention_ms;   /* MESSAGE_RETENTION: messages older than this are deleted */
    int64_t sweep_every_ms; /* SWEEP_INTERVAL: how often the retention sweep runs */
};

struct svc_dep;
struct msg_mongo; /* the MongoDB client pool (msg_store.c) */

/* The whole process state. The handlers' struct msg_app comes first, so the app pointer
 * handed to handlers (svc_req_app) and to hooks is the same. */
struct msg_svc {
    struct msg_app app;
    struct msg_config cfg;
    struct msg_mongo *mongo;
    struct svc_producer *dlq; /* writes <topic>.dlq for the consumer */
    struct svc_consumer *consumer;
    struct svc_worker *sweeper; /* the retention sweep */
};

/* ---- the store (msg_store.c) ------------------------------------------------------------- */

struct msg_mongo_opts {
    const char *uri; /* mongodb://...; its database is the service's */
    int pool_size;   /* most connections [8] */
    int timeout_ms;  /* server selection and connect timeout [2000] */
};

/*
 * Creates the client pool, pings the database and creates the indexes (idempotent: the
 * createIndexes command with the same definitions is a no-op the second time). Returns 0 and
 * the store in *OUT, or:
 *   SVC_EINVAL        the URI does not parse (logged, without its password)
 *   SVC_EUNAVAILABLE  the database cannot be reached
 *   SVC_EINTERNAL     an index could not be created
 * Free with msg_mongo_free().
 */
int msg_mongo_new(const struct msg_mongo_opts *o, struct msg_mongo **out);

/* Destroys the pool and frees M. NULL is a no-op. */
void msg_mongo_free(struct msg_mongo *m);

/* Fills STORE with the MongoDB implementation of msg.h's interface, on M. */
void msg_mongo_store(struct msg_mongo *m, struct msg_store *store);

/* Tests only: drops the whole database of the URI, indexes included. 0 or an SVC_E*. */
int msg_mongo_drop_database(struct msg_mongo *m);

/* The database's state ("mongodb"), for /readyz; its probe pings a pooled client. Owned by M. */
struct svc_dep *msg_mongo_dep(struct msg_mongo *m);

/* Hooks: the pool from S->cfg, the indexes, S->app.store filled; and their release. */
int msg_store_init(void *svc);
void msg_store_fini(void *svc);

/* ---- the consumer and the sweep (msg_events.c) ------------------------------------------ */

/*
 * Handles one user-events or cart-events record against STORE (the consumer's handler, exposed so
 * that tests can drive it without a broker). POISON with REASON for an invalid envelope or data;
 * RETRY when the database is unavailable; DONE when applied, or when the type is not one
 * message-svc consumes.
 */
enum svc_ev_result msg_handle_record(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                     void *store);

/* Hooks: the DLQ producer and the consumer (started); and their release. */
int msg_consumer_init(void *svc);
void msg_consumer_fini(void *svc);

/* Hooks: the sweep's worker (first sweep at once); and its stop. */
int msg_sweeper_init(void *svc);
void msg_sweeper_fini(void *svc);

/* /readyz: "mongodb" decides; "kafka" is reported for information only (the API needs only
 * the database, and events wait in the topic while the broker is away). */
void msg_ready(void *svc, struct svc_health *h);

/* Draining: the consumer and the sweeper stop. */
void msg_drain(void *svc);

#endif

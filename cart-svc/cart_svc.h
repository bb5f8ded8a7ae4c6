/*
 * cart_svc.h: cart-svc as a process, around its handlers and saga (cart.h): its configuration,
 * the Redis store's lifetime, the clients of product-svc and user-svc, the outbox relay, the
 * consumers of user-events and product-events, the saga worker, and the hooks main.c lists.
 *
 * Start-up runs the hooks in order: "redis" (cart_store_init: the connection pool, a PING, the
 * outbox stream's consumer group), "remote" (cart_remote_init: the two base URLs and the step
 * timeout), "kafka" (cart_producer_init: the relay's producer, which also writes the DLQ),
 * "outbox relay" (cart_relay_init: lib's relay on the store's stream source, to
 * TOPIC_CART_EVENTS, key = the user id), "consumer" (cart_consumer_init: group CART_GROUP over
 * TOPIC_USER_EVENTS and TOPIC_PRODUCT_EVENTS into the read models), "saga" (cart_saga_init: a
 * worker that runs every open order now when kicked by a checkout and every SAGA_RESUME
 * otherwise, so a restarted cart-svc finishes or compensates what a crash left). Shutdown: the
 * drain hook stops the saga worker, the consumer and the relay, then the hooks' fini run in
 * reverse.
 */
#ifndef CART_SVC_H
#define CART_SVC_H

#include "cart.h"
#include "polyglot/events.h"
#include "svc/event.h"
#include "svc/kafka.h"
#include "svc/outbox.h"
#include "svc/server.h"
#include "svc/worker.h"

#include <stdbool.h>
#include <stdint.h>

#define CART_SOURCE "/cart-svc"
#define CART_GROUP  "cart-svc"

/* The most orders the saga worker runs at once (SAGA_THREADS' bound). */
#define SAGA_THREADS_MAX 64

/* cart-svc's own configuration variables (main.c's table). */
struct cart_config {
    char *redis_url;          /* REDIS_URL: redis://user:password@host:port/db (a secret) */
    int redis_pool;           /* REDIS_POOL: connections for handlers, saga and consumer */
    int64_t redis_timeout_ms; /* REDIS_TIMEOUT: connect and command timeout */
    char *product_svc_url;    /* PRODUCT_SVC_URL: http://host:port */
    char *user_svc_url;       /* USER_SVC_URL: http://host:port */
    int64_t step_timeout_ms;  /* STEP_TIMEOUT: deadline of one remote call, retries included */
    int64_t cart_ttl_ms;      /* CART_TTL: a cart without a write for this long is gone */
    int64_t saga_resume_ms;   /* SAGA_RESUME: how often open orders are looked at */
    int saga_threads;         /* SAGA_THREADS: orders run at once, at most SAGA_THREADS_MAX */
    int64_t saga_give_up_ms;  /* SAGA_GIVE_UP: RESERVE or CHARGE unanswered this long: compensate */
    char *fault_after;        /* FAULT_AFTER_STEP: "", "reserve", "charge" or "commit" */
    char *kafka_brokers;      /* KAFKA_BROKERS */
    int64_t outbox_poll_ms;   /* OUTBOX_POLL */
    int outbox_batch;         /* OUTBOX_BATCH */
};

struct svc_dep;
struct cart_redis;      /* the Redis pool and outbox stream source (cart_store.c) */
struct cart_remote_ctx; /* the HTTP clients' settings (cart_remote.c) */

/* The whole process state. The handlers' struct cart_app comes first, so the app pointer
 * handed to handlers (svc_req_app) and to hooks is the same. */
struct cart_svc {
    struct cart_app app;
    struct cart_config cfg;
    struct cart_redis *redis;
    struct cart_remote_ctx *remote;
    struct svc_outbox_source outbox; /* the store's, for the relay */
    struct svc_producer *producer;
    struct svc_outbox_relay *relay;
    struct svc_consumer *consumer;
    struct svc_worker *saga;
    int fault_after; /* a cart_step, or -1 */
};

/* ---- the store (cart_store.c) -------------------------------------------------------------- */

struct cart_redis_opts {
    const char *url;     /* redis://user:password@host:port/db */
    int pool_size;       /* [4] */
    int timeout_ms;      /* [2000] */
    int64_t cart_ttl_ms; /* [7 days] */
    /* Tests only: a prefix for every key, so that a test's keys are its own. */
    const char *prefix;
};

/* Connects (a PING with the credentials) and creates the outbox stream's consumer group.
 * 0 and *OUT, or SVC_EINVAL (the URL), SVC_EUNAUTH (refused credentials, logged without the
 * password), SVC_EUNAVAILABLE. Free with cart_redis_free(). */
int cart_redis_new(const struct cart_redis_opts *o, struct cart_redis **out);
void cart_redis_free(struct cart_redis *r);
void cart_redis_store(struct cart_redis *r, struct cart_store *store);
/* The outbox stream for lib's relay: XREADGROUP of new entries, XAUTOCLAIM of entries a
 * crashed relay left pending, XACK + XDEL once published. */
void cart_redis_outbox_source(struct cart_redis *r, struct svc_outbox_source *src);
struct svc_dep *cart_redis_dep(struct cart_redis *r);
/* Tests only: deletes every key under the prefix. */
int cart_redis_drop_all(struct cart_redis *r);

int cart_store_init(void *svc);
void cart_store_fini(void *svc);

/* ---- the other owners (cart_remote.c) ------------------------------------------------------ */

struct cart_remote_opts {
    const char *product_svc_url;
    const char *user_svc_url;
    int step_timeout_ms; /* [2000] */
};

/* Fills RM with the HTTP implementation of cart.h's remote interface. 0 or SVC_EINVAL (a URL
 * that is not http://). Free *CTX with cart_remote_free(). */
int cart_remote_new(const struct cart_remote_opts *o, struct cart_remote_ctx **ctx,
                    struct cart_remote *rm);
void cart_remote_free(struct cart_remote_ctx *ctx);

int cart_remote_init(void *svc);
void cart_remote_fini(void *svc);

/* ---- events (cart_events.c) ---------------------------------------------------------------- */

/* The CloudEvents of cart-svc (subject and Kafka key: the user id), rendered into EV for the
 * store to XADD in the same MULTI/EXEC as its change. 0 or SVC_EINTERNAL. */
int cart_event_line(struct svc_event_out *ev, const char *type, const char *user_id,
                    const struct cart_line *line, const char *traceparent);
int cart_event_order(struct svc_event_out *ev, const char *type, const struct cart_order *o,
                     const char *traceparent);

/* Handles one user-events or product-events record (the consumer's handler; tests drive it
 * without a broker): POISON with REASON for an invalid event, RETRY while Redis is away, DONE. */
enum svc_ev_result cart_handle_record(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                      void *store);

int cart_producer_init(void *svc);
void cart_producer_fini(void *svc);
int cart_relay_init(void *svc);
void cart_relay_fini(void *svc);
int cart_consumer_init(void *svc);
void cart_consumer_fini(void *svc);

/* ---- the saga worker (cart_saga.c) --------------------------------------------------------- */

int cart_saga_init(void *svc);
void cart_saga_fini(void *svc);

/* /readyz: "redis" decides; kafka, product-svc and user-svc are reported for information. */
void cart_ready(void *svc, struct svc_health *h);

/* Draining: the saga worker, the consumer and the relay stop. */
void cart_drain(void *svc);

#endif

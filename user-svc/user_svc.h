/*
 * user_svc.h: user-svc as a process, around its handlers (user.h): its configuration, the
 * PostgreSQL store's lifetime, the CloudEvent of each change, the Kafka producer and the outbox
 * relay, and the start-up hooks main.c lists.
 *
 * Start-up runs the hooks in order: "postgres" (user_store_init: the connection pool and the
 * migrations), "kafka" (user_producer_init), "outbox relay" (user_relay_init). Shutdown: the
 * drain hook stops the relay, then the hooks' fini run in reverse.
 *
 * Events: every state change is written to the outbox by the store in the same transaction as
 * the change, as a CloudEvents 1.0 envelope with source "/user-svc" and the user id as subject
 * (so as Kafka key: one user's events stay in order). The relay publishes them to
 * TOPIC_USER_EVENTS; the types are polyglot/events.h's EV_*, one per schema in schemas/events/.
 */
#ifndef USER_SVC_H
#define USER_SVC_H

#include "polyglot/events.h"
#include "svc/event.h"
#include "svc/outbox.h"
#include "svc/server.h"
#include "user.h"

#include <stdbool.h>
#include <stdint.h>

#define USER_SOURCE "/user-svc"

/* The advisory lock a relay takes for each round (pg_try_advisory_xact_lock), so that with
 * several replicas one relays at a time and one user's events are never published out of
 * order. Holding it (SELECT pg_advisory_lock(8102)) pauses every relay: workshops and tests. */
#define USER_OUTBOX_LOCK_KEY "8102"

/* user-svc's own configuration variables (main.c's table). */
struct user_config {
    char *pg_dsn;                /* PG_DSN: postgresql://user:password@host:port/db (a secret) */
    int pg_pool;                 /* PG_POOL: connections for the handlers */
    int64_t pg_timeout_ms;       /* PG_TIMEOUT: connect timeout and statement timeout */
    char *kafka_brokers;         /* KAFKA_BROKERS */
    int64_t outbox_poll_ms;      /* OUTBOX_POLL: longest idle wait of the relay */
    int64_t outbox_retention_ms; /* OUTBOX_RETENTION: published rows are deleted after this */
    int outbox_batch;            /* OUTBOX_BATCH: events per relay round */
};

struct svc_dep;
struct user_pg; /* the PostgreSQL pool and outbox source (user_store.c) */

/* The whole process state. The handlers' struct user_app comes first, so the app pointer
 * handed to handlers (svc_req_app) and to hooks is the same. */
struct user_svc {
    struct user_app app;
    struct user_config cfg;
    struct user_pg *pg;
    struct svc_outbox_source outbox; /* the store's, for the relay */
    struct svc_producer *producer;
    struct svc_outbox_relay *relay;
};

/* ---- the store (user_store.c) ------------------------------------------------------------ */

struct user_pg_opts {
    const char *dsn;
    int pool_size;               /* connections for the store functions [4] */
    int timeout_ms;              /* connect and statement timeout [5000] */
    int64_t outbox_retention_ms; /* [24 h] */
};

/*
 * Connects (one connection) and applies the migrations embedded in the binary: in one
 * transaction under an advisory lock, so replicas starting together are safe; each migration
 * once, recorded in schema_migrations with its checksum. Returns 0 and a pool in *OUT, or:
 *   SVC_EUNAVAILABLE  the database cannot be reached
 *   SVC_EINTERNAL     a migration failed, or an applied one differs from the binary's
 * Pool connections are opened on first use and reopened after a failure. Free with
 * user_pg_free().
 */
int user_pg_new(const struct user_pg_opts *o, struct user_pg **out);

/* Closes every connection and frees PG. NULL is a no-op. */
void user_pg_free(struct user_pg *pg);

/* The database's state ("postgres"), for /readyz; its probe pings a pooled connection. Owned
 * by PG. */
struct svc_dep *user_pg_dep(struct user_pg *pg);

/* Fills STORE with the PostgreSQL implementation of user.h's interface, on PG. */
void user_pg_store(struct user_pg *pg, struct user_store *store);

/* Fills SRC with the outbox source for lib's relay: a dedicated connection (opened on first
 * use) that claims pending rows with FOR UPDATE SKIP LOCKED, waits with LISTEN user_outbox,
 * and deletes published rows older than the retention period. For one relay at a time. */
void user_pg_outbox_source(struct user_pg *pg, struct svc_outbox_source *src);

/* Hooks: the pool from S->cfg, migrations, S->app.store and S->outbox filled; and their
 * release. */
int user_store_init(void *svc);
void user_store_fini(void *svc);

/* ---- events (user_events.c) -------------------------------------------------------------- */

/*
 * Build the event of a change into EV (svc_event_build: a fresh id, the current time, source
 * USER_SOURCE, the user id as subject; TRACEPARENT may be NULL, ignored when not a valid W3C
 * traceparent). Data:
 *   user.registered, user.updated  the user: id, email, name, status, version, created_at,
 *                                  updated_at (times RFC 3339 in ms)
 *   user.deleted                   id, status, version, deleted_at: no personal data
 *   wallet.credited                the credit: credit_id, user_id, amount_cents,
 *                                  balance_cents, created_at
 *   payment.captured, .refunded    the payment: payment_id, user_id, amount_cents, status,
 *                                  balance_cents, created_at (and refunded_at)
 * Return 0, or SVC_EINTERNAL (logged) when it cannot be built. Release EV with
 * svc_event_out_release() either way.
 */
int user_event_user(struct svc_event_out *ev, const char *type, const struct user *u,
                    const char *traceparent);
int user_event_deleted(struct svc_event_out *ev, const char *user_id, int64_t version,
                       int64_t deleted_at_ms, const char *traceparent);
int user_event_credit(struct svc_event_out *ev, const struct credit *c, const char *traceparent);
int user_event_payment(struct svc_event_out *ev, const char *type, const struct payment *p,
                       const char *traceparent);

/* Hooks: the producer (acks=all, idempotent) and the relay on the store's outbox source. */
int user_producer_init(void *svc);
void user_producer_fini(void *svc);
int user_relay_init(void *svc);
void user_relay_fini(void *svc);

/* /readyz: "postgres" decides; "kafka" is reported for information only and never makes the
 * service unready, since writes only need PostgreSQL and events wait in the outbox. */
void user_ready(void *svc, struct svc_health *h);

/* Draining: the relay stops after its current round. */
void user_drain(void *svc);

#endif

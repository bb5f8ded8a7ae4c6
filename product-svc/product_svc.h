/*
 * product_svc.h: product-svc as a process, around its handlers (product.h): its configuration,
 * the search engine store's lifetime, the outbox relay and the reservation sweep, and the hooks
 * main.c lists.
 *
 * Start-up runs the hooks in order: "opensearch" (prod_store_init: the client settings, a ping,
 * the migrations under product-svc/migrations/ applied by lib's runner), "kafka"
 * (prod_producer_init), "outbox relay" (prod_relay_init: lib's relay on the store's source,
 * which finds documents with pending events, publishes them to TOPIC_PRODUCT_EVENTS, key = the
 * product id (the reservation id for stock.*), and clears exactly those with if_seq_no),
 * "reservation sweep" (prod_sweeper_init: a worker releasing expired reservations every
 * RESERVATION_SWEEP). Shutdown: the drain hook stops the relay and the sweep, then the hooks'
 * fini run in reverse.
 */
#ifndef PRODUCT_SVC_H
#define PRODUCT_SVC_H

#include "polyglot/events.h"
#include "product.h"
#include "svc/event.h"
#include "svc/kafka.h"
#include "svc/outbox.h"
#include "svc/server.h"
#include "svc/worker.h"

#include <stdbool.h>
#include <stdint.h>

#define PROD_SOURCE "/product-svc"

/* product-svc's own configuration variables (main.c's table). */
struct prod_config {
    char *os_url;           /* OPENSEARCH_URL: http://host:port (no credentials) */
    char *os_user;          /* OPENSEARCH_USER */
    char *os_password;      /* OPENSEARCH_PASSWORD (a secret) */
    int64_t os_timeout_ms;  /* OPENSEARCH_TIMEOUT: per request to the engine */
    char *kafka_brokers;    /* KAFKA_BROKERS */
    int64_t outbox_poll_ms; /* OUTBOX_POLL: longest idle wait of the relay */
    int outbox_batch;       /* OUTBOX_BATCH: events per relay round */
    int64_t sweep_every_ms; /* RESERVATION_SWEEP: how often expired reservations are released */
};

struct svc_dep;
struct prod_os; /* the engine's client settings and outbox source (product_store.c) */

/* The whole process state. The handlers' struct prod_app comes first, so the app pointer
 * handed to handlers (svc_req_app) and to hooks is the same. */
struct prod_svc {
    struct prod_app app;
    struct prod_config cfg;
    struct prod_os *os;
    struct svc_outbox_source outbox; /* the store's, for the relay */
    struct svc_producer *producer;
    struct svc_outbox_relay *relay;
    struct svc_worker *sweeper;
};

/* ---- the store (product_store.c) ---------------------------------------------------------- */

struct prod_os_opts {
    const char *url;      /* http://host:port, no trailing slash needed */
    const char *user;     /* basic auth, or NULL */
    const char *password; /* basic auth, or NULL */
    int timeout_ms;       /* per request [5000] */
    /* Tests only: the migrations to apply instead of the embedded ones (NULL: embedded). */
    const struct svc_migration *migrations;
};

/*
 * Checks the engine answers (with these credentials) and applies the migrations (lib's runner,
 * svc/migrate.h; a lock document makes two replicas starting together apply each once).
 * Returns 0 and the store in *OUT, or:
 *   SVC_EINVAL        the URL does not parse
 *   SVC_EUNAUTH       the engine refused the credentials (logged, without the password)
 *   SVC_EUNAVAILABLE  the engine cannot be reached
 *   SVC_EINTERNAL     a migration failed or was refused
 * Free with prod_os_free().
 */
int prod_os_new(const struct prod_os_opts *o, struct prod_os **out);

/* Frees OS. NULL is a no-op. */
void prod_os_free(struct prod_os *os);

/* Fills STORE with the engine implementation of product.h's interface, on OS. */
void prod_os_store(struct prod_os *os, struct prod_store *store);

/* Fills SRC with the outbox source for lib's relay (events embedded in product and
 * reservation documents). */
void prod_os_outbox_source(struct prod_os *os, struct svc_outbox_source *src);

/* The engine's state ("opensearch"), for /readyz. Owned by OS. */
struct svc_dep *prod_os_dep(struct prod_os *os);

/* Tests only: deletes every index and alias of product-svc (and its migration records). */
int prod_os_drop_all(struct prod_os *os);

/* Hooks: the store from S->cfg, migrations, S->app.store and S->outbox filled; and release. */
int prod_store_init(void *svc);
void prod_store_fini(void *svc);

/* ---- events (product_events.c) ----------------------------------------------------------- */

/*
 * The CloudEvents of product-svc, rendered into EV for the store to embed in the document it
 * writes (svc_event_build(); 0 or SVC_EINTERNAL):
 *   product.created / product.updated   the product's state; for updated, OLD_PRICE_CENTS >= 0
 *                                       when the price changed (old_price_cents, price_cents)
 *   product.deleted                     the id and sku
 *   stock.reserved / stock.committed / stock.released   the reservation and its lines
 * Subject (the Kafka key): the product id, the reservation id for stock.*.
 */
int prod_event_product(struct svc_event_out *ev, const char *type, const struct product *p,
                       int64_t old_price_cents, const char *traceparent);
int prod_event_deleted(struct svc_event_out *ev, const char *id, const char *sku,
                       int64_t deleted_at_ms, const char *traceparent);
int prod_event_stock(struct svc_event_out *ev, const char *type, const struct prod_reservation *r,
                     const char *traceparent);

/* Hooks: the producer; the relay on S->outbox (started); the sweep's worker; and releases. */
int prod_producer_init(void *svc);
void prod_producer_fini(void *svc);
int prod_relay_init(void *svc);
void prod_relay_fini(void *svc);
int prod_sweeper_init(void *svc);
void prod_sweeper_fini(void *svc);

/* /readyz: "opensearch" decides; "kafka" is information only (events wait in the documents). */
void prod_ready(void *svc, struct svc_health *h);

/* Draining: the relay and the sweep stop. */
void prod_drain(void *svc);

#endif

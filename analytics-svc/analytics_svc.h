/*
 * analytics_svc.h: analytics-svc as a process, around its handlers (analytics.h): its
 * configuration, the ClickHouse store's lifetime, the batching consumer, and the hooks main.c
 * lists.
 *
 * Start-up runs the hooks in order: "clickhouse" (an_store_init: the client settings, a ping
 * with the credentials, the migrations under analytics-svc/migrations/ applied by lib's
 * runner), "consumer" (an_consumer_init: the DLQ producer and one consumer group,
 * ANALYTICS_GROUP, over ANALYTICS_TOPICS, in batches: each record is decoded and staged
 * (an_stage_record), and a batch is written by an_flush() when BATCH_MAX records are staged or
 * the oldest is BATCH_AGE old; offsets are committed only after ClickHouse accepted the batch;
 * while it cannot, the consumer pauses). Shutdown: the drain hook stops the consumer (a last
 * flush, its offsets committed), then the hooks' fini run in reverse.
 */
#ifndef ANALYTICS_SVC_H
#define ANALYTICS_SVC_H

#include "analytics.h"
#include "polyglot/events.h"
#include "svc/buf.h"
#include "svc/kafka.h"
#include "svc/server.h"

#include <stdbool.h>
#include <stdint.h>

#define AN_GROUP_DEFAULT "analytics-svc"
/* Every topic of the platform that has events (schemas/events/). message-svc publishes none. */
#define AN_TOPICS_DEFAULT TOPIC_USER_EVENTS "," TOPIC_PRODUCT_EVENTS "," TOPIC_CART_EVENTS
#define AN_TOPICS_MAX     16

/* analytics-svc's own configuration variables (main.c's table). */
struct an_config {
    char *ch_url;          /* CLICKHOUSE_URL: http://host:port (no credentials) */
    char *ch_user;         /* CLICKHOUSE_USER */
    char *ch_password;     /* CLICKHOUSE_PASSWORD (a secret) */
    char *ch_database;     /* CLICKHOUSE_DATABASE */
    int64_t ch_timeout_ms; /* CLICKHOUSE_TIMEOUT: per request to the engine */
    char *pseudonym_key;   /* PSEUDONYM_KEY: the key of the user-id hash (a secret) */
    char *kafka_brokers;   /* KAFKA_BROKERS */
    char *topics;          /* ANALYTICS_TOPICS: comma-separated */
    char *group;           /* ANALYTICS_GROUP: the consumer group */
    int batch_max;         /* BATCH_MAX: records per insert at most */
    int64_t batch_age_ms;  /* BATCH_AGE: the longest a record waits for its batch */
};

struct svc_dep;
struct an_ch;    /* the ClickHouse client settings (analytics_store.c) */
struct an_batch; /* the records staged for the next insert (analytics_events.c) */

/* The whole process state. The handlers' struct an_app comes first, so the app pointer handed
 * to handlers (svc_req_app) and to hooks is the same. */
struct an_svc {
    struct an_app app;
    struct an_config cfg;
    struct an_ch *ch;
    char *topic_store;                         /* ANALYTICS_TOPICS split in place */
    const char *topic_list[AN_TOPICS_MAX + 1]; /* app.topics points here */
    struct an_batch *batch;
    struct svc_producer *dlq;
    struct svc_consumer *consumer;
};

/* ---- the store (analytics_store.c) ----------------------------------------------------------- */

struct an_ch_opts {
    const char *url;           /* http://host:port, no trailing slash needed */
    const char *user;          /* sent as X-ClickHouse-User */
    const char *password;      /* sent as X-ClickHouse-Key, never in a URL or a log line */
    const char *database;      /* every table lives here */
    const char *pseudonym_key; /* the key of the user-id hash (user.deleted) */
    int timeout_ms;            /* per request [5000] */
};

/*
 * Checks ClickHouse answers with these credentials and applies the migrations (lib's runner,
 * svc/migrate.h; the lock is a table whose CREATE succeeds for one replica only). 0 and the
 * store in *OUT, or:
 *   SVC_EINVAL        the URL or the database name does not parse
 *   SVC_EUNAUTH       ClickHouse refused the credentials or the database (logged, no password)
 *   SVC_EUNAVAILABLE  ClickHouse cannot be reached
 *   SVC_EINTERNAL     a migration failed or was refused
 * Free with an_ch_free().
 */
int an_ch_new(const struct an_ch_opts *o, struct an_ch **out);
void an_ch_free(struct an_ch *ch);
/* Fills STORE with the ClickHouse implementation (ctx = CH). */
void an_ch_store(struct an_ch *ch, struct an_store *store);
/* "clickhouse": down while the last request found it unreachable; decides /readyz. */
struct svc_dep *an_ch_dep(struct an_ch *ch);
/*
 * SQL's string literal of the LEN bytes at S, appended to OUT: '...' with backslash and quote
 * escaped, and every byte that is not printable ASCII as \xHH. The one way a value that came
 * from outside reaches a query (ClickHouse 18.16 has no query parameters).
 */
void an_sql_quote(struct svc_buf *out, const char *s, size_t len);

int an_store_init(void *svc);
void an_store_fini(void *svc);

/* ---- the consumer (analytics_events.c) ------------------------------------------------------- */

/* A batch: the rows staged since the last flush, for STORE. an_batch_free(NULL) is a no-op. */
struct an_batch *an_batch_new(const struct an_store *store);
void an_batch_free(struct an_batch *b);
/* Records staged and not yet flushed. */
size_t an_batch_staged(const struct an_batch *b);

/*
 * The consumer's handler (svc_consumer_fn, ARG = the batch): decodes one record of any topic
 * into an an_row and stages it. POISON with REASON for a record that is not a CloudEvent of the
 * platform (not JSON, no id/type/source/time, an id that is not a UUID, a known type whose data
 * lacks what its read model needs); DONE otherwise. An id staged twice in one batch is staged
 * once.
 */
enum svc_ev_result an_stage_record(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                   void *batch);
/*
 * The consumer's flush (svc_consumer_flush_fn, ARG = the batch): the store's insert of every
 * staged row, then forget_users for the users of every user.deleted among them; the batch is
 * emptied only when all of it succeeded. 0 or what the store returned (the consumer retries).
 */
int an_flush(void *batch);

int an_consumer_init(void *svc);
void an_consumer_fini(void *svc);

/* /readyz: "clickhouse" decides; kafka is reported for information. */
void an_ready(void *svc, struct svc_health *h);

/* Draining: the consumer stops (a last flush, its offsets committed). */
void an_drain(void *svc);

#endif

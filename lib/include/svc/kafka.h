/*
 * kafka.h: the platform's Kafka producer and consumer, on librdkafka (DESIGN.md "Events").
 *
 * Producer: idempotent (enable.idempotence=true, acks=all), so retries never duplicate or
 * reorder a partition's messages. Sends are asynchronous; svc_producer_send_wait() also waits
 * for the broker's acknowledgement of each message (the outbox relay marks an event published
 * only then).
 *
 * Metrics: kafka_produced_total{topic,result} with result "ok" or "error" from delivery
 * reports and "refused" for a message not even queued; kafka_producer_connected (0 or 1);
 * kafka_consumed_total{topic,result} with the handler's answers "done", "retry", "poison";
 * kafka_consumer_lag{topic,partition}, records between the consumer's position (the group's
 * committed offset until it consumes a record) and the end of each assigned partition (asked
 * from the broker for a partition this consumer has paused, whose cached end would be stale),
 * refreshed every second (a partition's series is removed when a
 * rebalance revokes or loses it and when the consumer stops, and is back within a second of a
 * new assignment); kafka_consumer_commits_total{result}.
 *
 * Unavailability: a producer whose brokers have all been unreachable for longer than
 * unavailable_after_ms refuses new messages at once with SVC_EUNAVAILABLE, instead of queueing
 * them for a delivery that may never come, and so does a full local queue; a message that was
 * queued but not acknowledged within message_timeout_ms is reported SVC_EUNAVAILABLE too. An
 * HTTP handler that publishes answers 503 with svc_resp_error(resp, rc, ...).
 *
 * Connected (for /readyz): some broker connection is in state UP. librdkafka reports each
 * broker's state in its statistics, asked for every stats_interval_ms (default 1 s), and says
 * at once when all brokers go down; a successful delivery also proves a connection. The
 * predicate is read from memory, so a probe costs no network round trip and never blocks.
 *
 * Consumer: a consumer group member with its own thread. The handler's answer for each record
 * decides what happens to the offset (enable.auto.commit=false):
 *   SVC_EV_DONE    the record's effect is durable: its offset is committed;
 *   SVC_EV_RETRY   a transient failure: the same record is handed to the handler again after
 *                  an exponential backoff (capped), its partition paused meanwhile, so nothing
 *                  after it is processed and nothing is skipped; other partitions go on;
 *   SVC_EV_POISON  the record can never be processed: it is written to "<topic>.dlq" with the
 *                  reason in headers, and its offset is committed once the broker has
 *                  acknowledged that copy (until then the write is retried with backoff).
 * Delivery is at least once: a record may be seen again after a crash or a rebalance, so
 * handlers are idempotent by event id (DESIGN.md).
 *
 * Broker errors are translated here and logged once; only SVC_E* codes leave this file.
 */
#ifndef SVC_KAFKA_H
#define SVC_KAFKA_H

#include "svc/buf.h"
#include "svc/event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct svc_dep;

/* Connection settings shared by producers and consumers. Only brokers is required; a zero
 * field takes the default in brackets. Strings are copied. */
struct svc_kafka_config {
    const char *brokers;      /* bootstrap.servers, "host:port[,host:port]" */
    const char *client_id;    /* client.id ["svc"] */
    int message_timeout_ms;   /* give up on an unacknowledged message after [30000] */
    int unavailable_after_ms; /* refuse sends once no broker is up for this long [2000] */
    int queue_max_messages;   /* local producer queue capacity [100000] */
    int stats_interval_ms;    /* how often broker states are refreshed [1000] */
    /* Further librdkafka properties, as NULL-terminated name, value pairs (or NULL); they
     * are applied last, so they override the settings above. */
    const char *const *extra;
};

/* A message header: NAME with VALUE_LEN bytes at VALUE (VALUE may be NULL for a null header). */
struct svc_kafka_header {
    const char *name;
    const void *value;
    size_t value_len;
};

/* ---- producer ------------------------------------------------------------------------- */

struct svc_producer;

/* One message to produce. KEY may be NULL (no key: any partition). RESULT is written by
 * svc_producer_send_wait(): 0 once the broker acknowledged the message, else an SVC_E*. */
struct svc_kafka_msg {
    const char *topic;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const struct svc_kafka_header *headers; /* NHEADERS of them, or NULL */
    size_t nheaders;
    int result;
};

/*
 * Creates a producer and its poll thread (which serves delivery reports). Connecting happens
 * in the background: a producer is returned even when no broker is up yet. 0, or SVC_EINVAL
 * when the configuration is refused (logged with librdkafka's reason). Free with
 * svc_producer_free().
 */
int svc_producer_new(const struct svc_kafka_config *cfg, struct svc_producer **out);

/*
 * Stops the poll thread and destroys the producer. Messages still queued are dropped and
 * their waiters told SVC_EUNAVAILABLE: call svc_producer_flush() first to deliver them.
 * NULL is a no-op.
 */
void svc_producer_free(struct svc_producer *p);

/* Shutdown of a service's producer: flushes for up to FLUSH_MS (svc_producer_flush()), frees
 * it, and sets *P to NULL. *P NULL is a no-op. */
void svc_producer_close(struct svc_producer **p, int flush_ms);

/*
 * Queues one message without waiting for its acknowledgement (its delivery report is still
 * counted). Returns 0 when queued, or:
 *   SVC_EUNAVAILABLE  no broker up for longer than unavailable_after_ms, or the queue is full
 *   SVC_ETOOBIG       larger than the producer's message.max.bytes
 *   SVC_EINTERNAL     any other refusal (logged)
 */
int svc_producer_send(struct svc_producer *p, const struct svc_kafka_msg *msg);

/*
 * Queues N messages and waits until the broker has acknowledged or refused each one, or until
 * TIMEOUT_MS have passed (negative: no limit of our own; librdkafka reports every message
 * within message_timeout_ms). Every MSGS[i].result is set: 0 when acknowledged, SVC_ETIMEDOUT
 * when still unacknowledged at the deadline (it may yet be delivered: the caller must be ready
 * to send it again, which is safe only for idempotent consumers), or an error as for
 * svc_producer_send() (SVC_EUNAVAILABLE also for a message that expired in the queue).
 * Messages of one topic and key are delivered in the order given.
 * Returns 0 when all were acknowledged, else the first message's error.
 */
int svc_producer_send_wait(struct svc_producer *p, struct svc_kafka_msg *msgs, size_t n,
                           int timeout_ms);

/*
 * svc_producer_send_wait() that also calls TICK(ARG) on the calling thread every TICK_MS while
 * it waits (TICK NULL or TICK_MS <= 0: never), for a caller that must keep something fresh
 * meanwhile: the outbox relay refreshes its backlog gauges while a batch is in flight, which
 * may take up to message_timeout_ms while the broker is away.
 */
int svc_producer_send_wait_tick(struct svc_producer *p, struct svc_kafka_msg *msgs, size_t n,
                                int timeout_ms, int tick_ms, void (*tick)(void *arg), void *arg);

/*
 * Publishes EV to TOPIC: the rendered envelope as value, the subject as key, and the header
 * content-type: application/cloudevents+json. svc_producer_publish() only queues it (errors as
 * svc_producer_send()); svc_producer_publish_wait() waits as svc_producer_send_wait().
 */
int svc_producer_publish(struct svc_producer *p, const char *topic, const struct svc_event *ev);
int svc_producer_publish_wait(struct svc_producer *p, const char *topic, const struct svc_event *ev,
                              int timeout_ms);

/* Waits up to TIMEOUT_MS for every queued message to be acknowledged or refused (shutdown).
 * 0, or SVC_ETIMEDOUT with the number left logged. */
int svc_producer_flush(struct svc_producer *p, int timeout_ms);

/* True while some broker connection is up (for /readyz; see the top of this file). */
bool svc_producer_connected(const struct svc_producer *p);

/* The producer's dependency state, "kafka" (owned by P; NULL when P is NULL): down while no
 * broker connection is up, reported to /readyz for information only (SVC_DEP_OPTIONAL), and
 * the rate limit of the producer's warnings (delivery failures, broker errors). */
struct svc_dep *svc_producer_dep(struct svc_producer *p);

/* True while sends are accepted: connected, or not disconnected for longer than
 * unavailable_after_ms, and no fatal error raised. */
bool svc_producer_available(const struct svc_producer *p);

/* Messages queued or in flight, not yet acknowledged. */
int svc_producer_queued(const struct svc_producer *p);

/* ---- topics --------------------------------------------------------------------------- */

/* A topic the platform declares (deploy/topics.conf). */
struct svc_topic_spec {
    const char *name;
    int partitions;
};

/*
 * Creates every topic of TOPICS[N] that does not exist yet, with its partition count and a
 * replication factor of min(3, brokers in the cluster), and checks that the existing ones have
 * at least their declared partitions (Kafka cannot take partitions away; fewer is an error).
 * Logs one line per topic created. 0 when all exist as declared afterwards; SVC_EUNAVAILABLE
 * when the cluster did not answer within TIMEOUT_MS; SVC_EINVAL for a refused topic (a bad
 * name, fewer partitions than declared), logged with the broker's reason.
 */
int svc_kafka_ensure_topics(const struct svc_kafka_config *cfg, const struct svc_topic_spec *topics,
                            size_t n, int timeout_ms);

/* ---- consumer ------------------------------------------------------------------------- */

enum svc_ev_result {
    SVC_EV_DONE,
    SVC_EV_RETRY,
    SVC_EV_POISON,
};

/* A record as the handler sees it. Every pointer is valid during the handler call only. */
struct svc_kafka_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the record has none */
    size_t key_len;
    const void *value; /* NULL for a tombstone */
    size_t value_len;
    int64_t timestamp_ms; /* -1 when unknown */
    unsigned attempt;     /* 1 on first delivery, 2 on the first retry, ... */
    const void *priv;     /* for svc_kafka_record_header() */
};

/* The last header NAME of REC: true and *VALUE (owned by REC, NULL for a null header) and
 * *LEN set, or false when REC has no such header. */
bool svc_kafka_record_header(const struct svc_kafka_record *rec, const char *name,
                             const void **value, size_t *len);

/*
 * Handles one record. For SVC_EV_POISON the handler writes the reason into REASON
 * ("attribute 'id' must be a UUID"); it becomes the dlq-reason header. Called on the consumer
 * thread only, one record at a time.
 */
typedef enum svc_ev_result (*svc_consumer_fn)(const struct svc_kafka_record *rec,
                                              struct svc_buf *reason, void *arg);

/*
 * Batches. With a flush function, the handler only stages each record (decodes it and keeps
 * what it must write, a row, a bulk operation) and answers as above, but a record it answered
 * SVC_EV_DONE is not committed until FLUSH has made everything staged since the last flush
 * durable, in one bulk write. FLUSH runs on the consumer thread when batch_max records are
 * staged, when the oldest staged record is batch_age_ms old, before partitions are given up,
 * and at stop. It returns 0 (everything staged is durable: the offsets of those records and of
 * the poison ones among them become due for commit) or a negative SVC_E* (the batch could not
 * be written): then every assigned partition is paused, so nothing more is fetched or staged,
 * and FLUSH is called again after a backoff (retry_initial_ms doubling up to retry_max_ms)
 * until it succeeds; the handler keeps what it staged meanwhile. Nothing is skipped and nothing
 * committed before it is durable. If partitions are given up while a flush is failing, their
 * staged records may also be delivered to the next owner: flushes must be idempotent by event
 * id, as handlers are. Order: records of one partition are staged in offset order.
 */
typedef int (*svc_consumer_flush_fn)(void *arg);

struct svc_consumer_config {
    const struct svc_kafka_config *kafka;
    const char *group_id;      /* consumer group (required) */
    const char *const *topics; /* NULL-terminated (required) */
    svc_consumer_fn handler;   /* required */
    void *arg;                 /* passed to handler */
    /* The producer that writes "<topic>.dlq"; NULL: the consumer makes its own from kafka.
     * Not owned: it must outlive the consumer. */
    struct svc_producer *dlq;
    int retry_initial_ms;   /* first retry after [200] ms, doubling ... */
    int retry_max_ms;       /* ... up to [30000] */
    int commit_interval_ms; /* commit finished offsets at least this often [100]; also at once
                               when idle, before partitions are given up, and on stop */
    bool from_latest;       /* a new group starts at the end of the topics, not the beginning */
    /* Readiness (svc_consumer_dep): not ready once no partition has been assigned for
     * unassigned_after_ms [20000] while a broker is reachable, or once a record has waited
     * stuck_after_ms [30000] for its DLQ copy. */
    int unassigned_after_ms;
    int stuck_after_ms;
    svc_consumer_flush_fn flush; /* NULL: every record is durable when its handler returns */
    int batch_max;               /* flush once this many records are staged [500] */
    int batch_age_ms;            /* flush once the oldest staged record is this old [200] */
};

struct svc_consumer;

/* Creates the consumer and subscribes; nothing is consumed before svc_consumer_start().
 * 0 or SVC_EINVAL (a required field missing, or the configuration refused; logged). */
int svc_consumer_new(const struct svc_consumer_config *cfg, struct svc_consumer **out);

/* Starts the consumer thread. 0 or SVC_EINTERNAL. */
int svc_consumer_start(struct svc_consumer *c);

/* Stops the thread after the record in hand (if any) is finished, commits the finished
 * offsets (trying for up to 5 s; what is left is delivered again later), leaves the group and
 * joins the thread. Idempotent; safe to call without a start. */
void svc_consumer_stop(struct svc_consumer *c);

/* Stops (see above) and frees. NULL is a no-op. */
void svc_consumer_free(struct svc_consumer *c);
/*
 * The consumer's state for /readyz, "kafka consumer" (owned by C): down, with the reason, while
 * it is of no use to its group: it has joined no partition for unassigned_after_ms although a
 * broker is reachable (a group stuck in a rebalance, a member fenced, more replicas than
 * partitions), or a record has waited stuck_after_ms for its DLQ copy (its partition goes
 * nowhere). Not down while the brokers are unreachable or an engine is: those have states of
 * their own. Refreshed every second on the consumer thread; up before the first assignment for
 * that grace period.
 */
struct svc_dep *svc_consumer_dep(struct svc_consumer *c);
/*
 * The consumer's lag on TOPIC, summed over the partitions this consumer is assigned (the
 * kafka_consumer_lag gauge's figures, refreshed every second): records between what it has
 * finished (committed or due for commit) and the end of each partition. Thread-safe. 0 and
 * *LAG, or SVC_ENOTFOUND while no partition of TOPIC is assigned or none has a figure yet.
 */
int svc_consumer_lag(struct svc_consumer *c, const char *topic, int64_t *lag);

#endif

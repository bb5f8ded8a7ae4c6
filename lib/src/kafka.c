#include "svc/kafka.h"

#include "svc/alloc.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/idem.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long the consumer waits for a poison record's copy to reach "<topic>.dlq" before it
 * tries again later (the copy may still arrive: the DLQ then holds it twice, which is
 * harmless for a queue people read by hand). */
#define DLQ_WAIT_MS 10000
/* What a DLQ copy keeps of a record too big to be copied whole (write_dlq_cut()). */
#define DLQ_CUT_VALUE ((size_t)64 * 1024)
#define DLQ_CUT_KEY   ((size_t)1024)
/* How long svc_consumer_stop() keeps trying to commit finished offsets. */
#define STOP_COMMIT_MS 5000
/* Consumer lag is refreshed this often. */
#define LAG_INTERVAL_MS 1000
/* How long the lag refresh waits for a paused partition's end from the broker. */
#define LAG_QUERY_MS 200

static const char *const produced_labels[] = {"topic", "result", NULL};
static const char *const consumed_labels[] = {"topic", "result", NULL};
static const char *const lag_labels[] = {"topic", "partition", NULL};
static const char *const commit_labels[] = {"result", NULL};

/*
 * The one place where librdkafka's errors become SVC_E* codes. Transient conditions (no
 * broker, no leader, timeouts, a full queue, messages purged at shutdown) are "unavailable",
 * which an HTTP handler answers with 503; sizes are 413; the rest are configuration or
 * programming errors.
 */
static int translate(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return SVC_ETOOBIG;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
        return SVC_EINTERNAL;
    default:
        /* Everything else librdkafka reports for a message is a broker or network
         * condition that passes (timeouts, transport, leadership, replicas, purge,
         * fatal idempotence state): the caller may try again later. */
        return SVC_EUNAVAILABLE;
    }
}

static enum svc_log_level level_of(int syslog_level)
{
    if (syslog_level <= 3)
        return SVC_LOG_ERROR;
    if (syslog_level == 4)
        return SVC_LOG_WARN;
    if (syslog_level <= 6)
        return SVC_LOG_INFO;
    return SVC_LOG_DEBUG;
}

/* librdkafka's own log lines, as ours. Connection failures (facility FAIL) also reach the
 * error callback, which logs them rate-limited, so they are left out here. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (strcmp(fac, "FAIL") == 0 && level > 2)
        return;
    svc_logf(level_of(level), "kafka %s: %s", fac, buf);
}

/* Applies one property; logs and returns SVC_EINVAL when librdkafka refuses it. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        svc_log_error("kafka setting '%s' refused: %s", name, errstr);
        return SVC_EINVAL;
    }
    return 0;
}

static int conf_set_int(rd_kafka_conf_t *conf, const char *name, int value)
{
    char s[24];

    snprintf(s, sizeof(s), "%d", value);
    return conf_set(conf, name, s);
}

/* The settings common to producers and consumers, the caller's extra ones last. */
static int conf_common(rd_kafka_conf_t *conf, const struct svc_kafka_config *cfg)
{
    int rc;

    if (cfg->brokers == NULL || cfg->brokers[0] == '\0') {
        svc_log_error("kafka brokers not set");
        return SVC_EINVAL;
    }
    if ((rc = conf_set(conf, "bootstrap.servers", cfg->brokers)) != 0 ||
        (rc = conf_set(conf, "client.id", cfg->client_id != NULL ? cfg->client_id : "svc")) != 0 ||
        /* A broker that comes back (a workshop restarting Kafka) is found within a second,
         * not after librdkafka's default backoff of up to ten. */
        (rc = conf_set(conf, "reconnect.backoff.max.ms", "1000")) != 0)
        return rc;
    rd_kafka_conf_set_log_cb(conf, on_log);
    return 0;
}

static int conf_extra(rd_kafka_conf_t *conf, const struct svc_kafka_config *cfg)
{
    int rc;

    if (cfg->extra == NULL)
        return 0;
    for (size_t i = 0; cfg->extra[i] != NULL; i += 2) {
        if (cfg->extra[i + 1] == NULL) {
            svc_log_error("kafka setting '%s' has no value", cfg->extra[i]);
            return SVC_EINVAL;
        }
        if ((rc = conf_set(conf, cfg->extra[i], cfg->extra[i + 1])) != 0)
            return rc;
    }
    return 0;
}

/* ==== producer ========================================================================== */

/*
 * A caller of svc_producer_send_wait() and its messages' delivery reports meet here. It is
 * shared: the caller may give up at its deadline while reports are still due, so it is freed
 * by whichever side drops the last reference.
 */
struct waiter;

struct wait_slot {
    struct waiter *w;
    int result;
    bool done;
};

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending; /* reports still due to the caller */
    size_t refs;    /* the caller + one per queued message */
    struct wait_slot slots[];
};

struct svc_producer {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool up;                  /* some broker connection is UP */
    atomic_bool fatal;               /* librdkafka raised a fatal error: the producer is dead */
    atomic_int_least64_t down_since; /* svc_now_ms() when the last connection went away */
    int unavailable_after_ms;
    struct svc_dep *dep; /* "kafka": its transitions and rate-limited warnings */
    struct svc_metric *produced, *connected;
};

static void set_up(struct svc_producer *p, bool up)
{
    bool was = atomic_exchange(&p->up, up);

    if (was && !up)
        atomic_store(&p->down_since, svc_now_ms());
    if (was != up)
        svc_gauge_set(p->connected, NULL, up ? 1.0 : 0.0);
    /* Up is told once; down is repeated, rate-limited, while it lasts. */
    if (up && !was)
        svc_dep_up(p->dep);
    else if (!up)
        svc_dep_down(p->dep, NULL, "no broker connection");
}

static void waiter_unref(struct waiter *w)
{
    bool last;

    pthread_mutex_lock(&w->mu);
    last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
}

static void slot_report(struct wait_slot *s, int result)
{
    struct waiter *w = s->w;

    pthread_mutex_lock(&w->mu);
    s->result = result;
    s->done = true;
    w->pending--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    waiter_unref(w);
}

static void count(struct svc_metric *m, const char *topic, const char *result)
{
    const char *values[] = {topic, result};

    svc_counter_inc(m, values);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct svc_producer *p = opaque;
    const char *topic = rd_kafka_topic_name(m->rkt);
    int rc = translate(m->err);

    (void)rk;
    count(p->produced, topic, rc == 0 ? "ok" : "error");
    if (rc == 0)
        set_up(p, true);
    else
        svc_dep_warn(p->dep, "kafka delivery to '%s' failed: %s", topic, rd_kafka_err2str(m->err));
    if (m->_private != NULL)
        slot_report(m->_private, rc);
}

/* Broker states come with the statistics: "brokers": {"<name>": {"state": "UP", ...}}. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct svc_producer *p = opaque;
    json_t *root = json_loadb(json, len, 0, NULL), *brokers, *b;
    const char *name;
    bool up = false;

    (void)rk;
    brokers = json_object_get(root, "brokers");
    json_object_foreach(brokers, name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));

        if (state != NULL && strcmp(state, "UP") == 0)
            up = true;
    }
    if (root != NULL)
        set_up(p, up);
    json_decref(root);
    return 0; /* librdkafka frees JSON */
}

static void on_producer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct svc_producer *p = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        atomic_store(&p->fatal, true);
        set_up(p, false);
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        svc_log_error("kafka producer failed for good, restart needed: %s", fatal);
        return;
    }
    /* The reason first, while a warning is due: it says more than "no broker connection". */
    svc_dep_warn(p->dep, "kafka producer: %s", reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        set_up(p, false);
}

static void *producer_thread(void *arg)
{
    struct svc_producer *p = arg;

    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 100);
    return NULL;
}

int svc_producer_new(const struct svc_kafka_config *cfg, struct svc_producer **out)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct svc_producer *p = svc_calloc(1, sizeof(*p));
    char errstr[512];
    int rc;

    *out = NULL;
    p->unavailable_after_ms = cfg->unavailable_after_ms > 0 ? cfg->unavailable_after_ms : 2000;
    atomic_init(&p->stop, false);
    atomic_init(&p->up, false);
    atomic_init(&p->fatal, false);
    atomic_init(&p->down_since, svc_now_ms());
    /* For information in /readyz: events wait (in an outbox, in a topic) while it is down. */
    p->dep = svc_dep_new("kafka", SVC_DEP_OPTIONAL, "no broker connection");
    p->produced = svc_counter_new("kafka_produced_total",
                                  "Kafka messages by topic and outcome: ok and error from "
                                  "delivery reports, refused when not queued",
                                  produced_labels);
    p->connected = svc_gauge_new("kafka_producer_connected",
                                 "1 while the Kafka producer has a broker connection up", NULL);
    svc_gauge_set(p->connected, NULL, 0.0);

    if ((rc = conf_common(conf, cfg)) != 0 ||
        (rc = conf_set(conf, "enable.idempotence", "true")) != 0 ||
        (rc = conf_set(conf, "acks", "all")) != 0 ||
        (rc = conf_set_int(conf, "message.timeout.ms",
                           cfg->message_timeout_ms > 0 ? cfg->message_timeout_ms : 30000)) != 0 ||
        (rc = conf_set_int(conf, "queue.buffering.max.messages",
                           cfg->queue_max_messages > 0 ? cfg->queue_max_messages : 100000)) != 0 ||
        (rc = conf_set_int(conf, "statistics.interval.ms",
                           cfg->stats_interval_ms > 0 ? cfg->stats_interval_ms : 1000)) != 0 ||
        (rc = conf_extra(conf, cfg)) != 0)
        goto fail;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_error_cb(conf, on_producer_error);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk == NULL) {
        svc_log_error("kafka producer not created: %s", errstr);
        rc = SVC_EINVAL;
        goto fail;
    }
    conf = NULL; /* owned by the producer now */
    if (pthread_create(&p->thread, NULL, producer_thread, p) != 0) {
        svc_log_error("kafka producer thread not started: %s", strerror(errno));
        rd_kafka_destroy(p->rk);
        rc = SVC_EINTERNAL;
        goto fail;
    }
    *out = p;
    return 0;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    svc_dep_free(p->dep);
    free(p);
    return rc;
}

void svc_producer_free(struct svc_producer *p)
{
    int64_t deadline;

    if (p == NULL)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    /* Messages still queued would never be reported after the destroy below, leaving their
     * waiters to wait for ever: purge them, so each gets its report now. */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    deadline = svc_now_ms() + 1000;
    while (rd_kafka_outq_len(p->rk) > 0 && svc_now_ms() < deadline)
        rd_kafka_poll(p->rk, 10);
    rd_kafka_poll(p->rk, 0);
    rd_kafka_destroy(p->rk);
    svc_dep_free(p->dep);
    free(p);
}

bool svc_producer_connected(const struct svc_producer *p)
{
    return atomic_load(&p->up) && !atomic_load(&p->fatal);
}

struct svc_dep *svc_producer_dep(struct svc_producer *p)
{
    return p != NULL ? p->dep : NULL;
}

bool svc_producer_available(const struct svc_producer *p)
{
    if (atomic_load(&p->fatal))
        return false;
    if (atomic_load(&p->up))
        return true;
    return svc_now_ms() - atomic_load(&p->down_since) < p->unavailable_after_ms;
}

int svc_producer_queued(const struct svc_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

/* Queues MSG with OPAQUE for its delivery report. 0 or an SVC_E* (logged unless the broker
 * is merely unavailable, which the caller reports). */
static int produce(struct svc_producer *p, const struct svc_kafka_msg *msg, void *opaque)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t key_len = msg->key != NULL ? msg->key_len : 0;
    rd_kafka_resp_err_t err;
    int rc;

    if (!svc_producer_available(p)) {
        count(p->produced, msg->topic, "refused");
        return SVC_EUNAVAILABLE;
    }
    if (msg->nheaders > 0) {
        hdrs = rd_kafka_headers_new(msg->nheaders);
        for (size_t i = 0; i < msg->nheaders; i++)
            rd_kafka_header_add(hdrs, msg->headers[i].name, -1, msg->headers[i].value,
                                (ssize_t)msg->headers[i].value_len);
    }
    err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(msg->topic),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY((void *)msg->key, key_len),
                            RD_KAFKA_V_VALUE((void *)msg->value, msg->value_len),
                            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    rd_kafka_headers_destroy(hdrs); /* ours again when producev fails */
    count(p->produced, msg->topic, "refused");
    rc = err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? SVC_EUNAVAILABLE : translate(err);
    if (rc != SVC_EUNAVAILABLE)
        svc_log_error("kafka message to '%s' refused: %s", msg->topic, rd_kafka_err2str(err));
    return rc;
}

int svc_producer_send(struct svc_producer *p, const struct svc_kafka_msg *msg)
{
    return produce(p, msg, NULL);
}

int svc_producer_send_wait(struct svc_producer *p, struct svc_kafka_msg *msgs, size_t n,
                           int timeout_ms)
{
    return svc_producer_send_wait_tick(p, msgs, n, timeout_ms, 0, NULL, NULL);
}

int svc_producer_send_wait_tick(struct svc_producer *p, struct svc_kafka_msg *msgs, size_t n,
                                int timeout_ms, int tick_ms, void (*tick)(void *arg), void *arg)
{
    struct waiter *w = svc_calloc(1, sizeof(*w) + n * sizeof(w->slots[0]));
    int64_t deadline, next_tick;
    int refused = 0, first = 0;

    pthread_mutex_init(&w->mu, NULL);
    svc_cond_init_monotonic(&w->cv);
    w->refs = 1;

    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        struct wait_slot *s = &w->slots[i];

        s->w = w;
        s->result = SVC_ETIMEDOUT;
        /* After one refusal the rest are refused too: queueing them would let a later
         * message of a key overtake the refused one. */
        if (refused == 0) {
            w->pending++;
            w->refs++;
            refused = produce(p, &msgs[i], s);
            if (refused != 0) {
                w->pending--;
                w->refs--;
            }
        } else {
            count(p->produced, msgs[i].topic, "refused");
        }
        if (refused != 0) {
            s->result = refused;
            s->done = true;
        }
    }
    deadline = timeout_ms < 0 ? INT64_MAX : svc_now_ms() + timeout_ms;
    next_tick = tick != NULL && tick_ms > 0 ? svc_now_ms() + tick_ms : INT64_MAX;
    while (w->pending > 0) {
        int64_t until = next_tick < deadline ? next_tick : deadline;

        if (until == INT64_MAX) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else if (!svc_cond_wait_until(&w->cv, &w->mu, until)) {
            if (until == deadline)
                break;
            /* The reports wait under W's lock, not for the tick. */
            pthread_mutex_unlock(&w->mu);
            tick(arg);
            pthread_mutex_lock(&w->mu);
            next_tick = svc_now_ms() + tick_ms;
        }
    }
    for (size_t i = 0; i < n; i++) {
        msgs[i].result = w->slots[i].result;
        if (first == 0)
            first = msgs[i].result;
    }
    pthread_mutex_unlock(&w->mu);
    waiter_unref(w);
    return first;
}

static int publish(struct svc_producer *p, const char *topic, const struct svc_event *ev, bool wait,
                   int timeout_ms)
{
    static const char ctype[] = SVC_EVENT_CONTENT_TYPE;
    const struct svc_kafka_header header = {"content-type", ctype, sizeof(ctype) - 1};
    struct svc_buf body = SVC_BUF_INIT;
    struct svc_kafka_msg msg = {0};
    int rc;

    if ((rc = svc_event_render(ev, &body)) != 0)
        return rc;
    msg.topic = topic;
    msg.key = ev->subject;
    msg.key_len = strlen(ev->subject);
    msg.value = body.data;
    msg.value_len = body.len;
    msg.headers = &header;
    msg.nheaders = 1;
    rc = wait ? svc_producer_send_wait(p, &msg, 1, timeout_ms) : svc_producer_send(p, &msg);
    svc_buf_release(&body);
    return rc;
}

int svc_producer_publish(struct svc_producer *p, const char *topic, const struct svc_event *ev)
{
    return publish(p, topic, ev, false, 0);
}

int svc_producer_publish_wait(struct svc_producer *p, const char *topic, const struct svc_event *ev,
                              int timeout_ms)
{
    return publish(p, topic, ev, true, timeout_ms);
}

int svc_producer_flush(struct svc_producer *p, int timeout_ms)
{
    if (rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    svc_log_warn("kafka flush timed out after %d ms with %d messages undelivered", timeout_ms,
                 rd_kafka_outq_len(p->rk));
    return SVC_ETIMEDOUT;
}

void svc_producer_close(struct svc_producer **p, int flush_ms)
{
    if (*p == NULL)
        return;
    svc_producer_flush(*p, flush_ms);
    svc_producer_free(*p);
    *p = NULL;
}

/* ==== consumer ========================================================================== */

/* What the consumer knows about one assigned partition. */
/* ---- topics ---------------------------------------------------------------------------- */

/* The partition count of TOPIC in MD, 0 when the cluster does not have it. */
static int md_partitions(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0)
            return md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR ? md->topics[i].partition_cnt
                                                                   : 0;
    return 0;
}

/* Creates NEW[N] in one request; 0, or an SVC_E* with every refusal logged. A topic created
 * meanwhile by someone else is fine. */
static int create_topics(rd_kafka_t *rk, rd_kafka_NewTopic_t **nt, size_t n, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    const rd_kafka_topic_result_t **res;
    rd_kafka_event_t *ev;
    size_t nres = 0;
    char err[256];
    int rc = 0;

    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
    rd_kafka_CreateTopics(rk, nt, n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        svc_log_error("kafka: creating topics failed: %s",
                      ev != NULL ? rd_kafka_event_error_string(ev) : "no answer");
        rc = SVC_EUNAVAILABLE;
    } else {
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);
        for (size_t i = 0; i < nres; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                svc_log_info("kafka: topic '%s' created", rd_kafka_topic_result_name(res[i]));
            } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                svc_log_error("kafka: topic '%s' not created: %s",
                              rd_kafka_topic_result_name(res[i]),
                              rd_kafka_topic_result_error_string(res[i]));
                rc = SVC_EINVAL;
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return rc;
}

int svc_kafka_ensure_topics(const struct svc_kafka_config *cfg, const struct svc_topic_spec *topics,
                            size_t n, int timeout_ms)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_NewTopic_t **nt = svc_calloc(n + 1, sizeof(rd_kafka_NewTopic_t *));
    rd_kafka_resp_err_t err;
    size_t nnew = 0;
    char errstr[512];
    rd_kafka_t *rk;
    int rc, replicas;

    if ((rc = conf_common(conf, cfg)) != 0 || (rc = conf_extra(conf, cfg)) != 0) {
        rd_kafka_conf_destroy(conf);
        free(nt);
        return rc;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        svc_log_error("kafka admin client not created: %s", errstr);
        rd_kafka_conf_destroy(conf);
        free(nt);
        return SVC_EINVAL;
    }
    err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        svc_log_error("kafka: no metadata from %s within %d ms: %s", cfg->brokers, timeout_ms,
                      rd_kafka_err2str(err));
        rc = SVC_EUNAVAILABLE;
        goto out;
    }
    replicas = md->broker_cnt < 3 ? md->broker_cnt : 3;
    for (size_t i = 0; i < n; i++) {
        int have = md_partitions(md, topics[i].name);

        if (have >= topics[i].partitions)
            continue;
        if (have > 0) {
            svc_log_error("kafka: topic '%s' has %d partitions, %d are declared", topics[i].name,
                          have, topics[i].partitions);
            rc = SVC_EINVAL;
            continue;
        }
        nt[nnew] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions, replicas, errstr,
                                         sizeof(errstr));
        if (nt[nnew] == NULL) {
            svc_log_error("kafka: topic '%s' refused: %s", topics[i].name, errstr);
            rc = SVC_EINVAL;
            continue;
        }
        nnew++;
    }
    if (rc == 0 && nnew > 0)
        rc = create_topics(rk, nt, nnew, timeout_ms);
out:
    for (size_t i = 0; i < nnew; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

struct part {
    char *topic;
    int32_t partition;
    rd_kafka_message_t *held; /* a record waiting for its retry; the partition is paused */
    char *poison_reason;      /* set: the handler said poison, only the DLQ copy is retried */
    unsigned attempt;         /* handler calls for held so far */
    int delay_ms;             /* the backoff before the next retry */
    int64_t retry_at;         /* svc_now_ms() of the next retry */
    bool stray;               /* a record arrived while paused: seek back on resume */
    int64_t commit;           /* next offset to commit, or -1 */
    int64_t staged;           /* batches: the offset after the last record staged, or -1; it
                                 becomes commit when the batch is flushed */
    int64_t batch_first;      /* batches: the first record staged since the last flush, or -1 */
    int64_t start;            /* the group's committed offset at assignment, or -1: the lag
                                 until a record is consumed (librdkafka has no position yet) */
    int64_t held_since;       /* svc_now_ms() when the held record was first held */
};

struct topic_lag {
    char *topic;
    int64_t lag;
};

struct svc_consumer {
    rd_kafka_t *rk;
    char *group;
    svc_consumer_fn handler;
    void *arg;
    struct svc_producer *dlq;
    bool own_dlq;
    int retry_initial_ms, retry_max_ms, commit_interval_ms;
    pthread_t thread;
    bool started, joined;
    atomic_bool stop;

    /* Touched by the consumer thread only (librdkafka calls the rebalance and commit
     * callbacks from rd_kafka_consumer_poll(), on that thread). */
    struct part *parts;
    size_t nparts, capparts;
    bool commit_inflight;
    int64_t last_commit, next_commit; /* when the last commit went out; none before next */
    int commit_delay_ms;
    int64_t last_lag;
    struct svc_ratelimit commit_warn, poll_warn;
    struct svc_buf reason;
    struct svc_metric *consumed, *lag, *commits;

    /* Batches (a flush function): records staged since the last successful flush, when the
     * first of them was, and the flush's retry state while it fails. */
    svc_consumer_flush_fn flush;
    int batch_max, batch_age_ms;
    size_t nstaged;
    int64_t staged_since;
    bool flush_failing;
    int flush_delay_ms;
    int64_t flush_retry_at;
    struct svc_ratelimit flush_warn;

    /* Readiness (svc_consumer_dep): the state, its thresholds, since when no partition is
     * assigned (0: some is), and when the brokers were last reported down. */
    struct svc_dep *dep;
    int unassigned_after_ms, stuck_after_ms;
    int64_t unassigned_since, brokers_down_at;

    /* The lag per topic for svc_consumer_lag(), rebuilt by every lag refresh; read by other
     * threads under lag_mu. */
    pthread_mutex_t lag_mu;
    struct topic_lag *lags;
    size_t nlags;
};

static struct part *part_find(struct svc_consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0)
            return &c->parts[i];
    return NULL;
}

static struct part *part_get(struct svc_consumer *c, const char *topic, int32_t partition)
{
    struct part *pt = part_find(c, topic, partition);

    if (pt != NULL)
        return pt;
    if (c->nparts == c->capparts) {
        c->capparts = c->capparts != 0 ? c->capparts * 2 : 8;
        c->parts = svc_realloc(c->parts, c->capparts * sizeof(*c->parts));
    }
    pt = &c->parts[c->nparts++];
    memset(pt, 0, sizeof(*pt));
    pt->topic = svc_strdup(topic);
    pt->partition = partition;
    pt->commit = -1;
    pt->staged = -1;
    pt->batch_first = -1;
    pt->start = -1;
    return pt;
}

static void part_clear_hold(struct part *pt)
{
    if (pt->held != NULL)
        rd_kafka_message_destroy(pt->held);
    free(pt->poison_reason);
    pt->held = NULL;
    pt->poison_reason = NULL;
    pt->attempt = 0;
    pt->delay_ms = 0;
    pt->stray = false;
}

static void part_remove(struct svc_consumer *c, struct part *pt)
{
    struct part *last;
    const char *values[2];
    char pnum[16];

    /* The partition's lag is no longer this consumer's to report: its series goes (a zero
     * left behind would still be summed and listed next to the new owner's), and comes back
     * with the next lag refresh if the partition is assigned again. */
    snprintf(pnum, sizeof(pnum), "%" PRId32, pt->partition);
    values[0] = pt->topic;
    values[1] = pnum;
    svc_metric_remove(c->lag, values);
    part_clear_hold(pt);
    free(pt->topic);
    /* The last entry fills the hole; the slot it leaves owns nothing. */
    last = &c->parts[--c->nparts];
    if (pt != last)
        *pt = *last;
    memset(last, 0, sizeof(*last));
}

static rd_kafka_topic_partition_list_t *one_partition(const struct part *pt, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset = offset;
    return l;
}

/* Sends every finished offset in one asynchronous commit; the result comes to on_commit().
 * Asynchronous, because a synchronous commit blocks the consumer thread for as long as the
 * group coordinator is unreachable (a minute and more), and with it stop and other
 * partitions. ONLY_REVOKED restricts it to LIST's partitions. */
static void commit_finished(struct svc_consumer *c, const rd_kafka_topic_partition_list_t *only)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)c->nparts);
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < c->nparts; i++) {
        struct part *pt = &c->parts[i];

        if (pt->commit < 0)
            continue;
        if (only != NULL &&
            rd_kafka_topic_partition_list_find(only, pt->topic, pt->partition) == NULL)
            continue;
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset = pt->commit;
    }
    if (l->cnt > 0) {
        err = rd_kafka_commit(c->rk, l, 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            svc_log_warn("kafka commit for group '%s' not sent: %s", c->group,
                         rd_kafka_err2str(err));
        } else {
            c->commit_inflight = true;
            c->last_commit = svc_now_ms();
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct svc_consumer *c = opaque;
    const char *failure = NULL;
    const char *ok[] = {"ok"}, *bad[] = {"error"};
    unsigned suppressed;

    (void)rk;
    c->commit_inflight = false;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    for (int i = 0; offsets != NULL && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &offsets->elems[i];
        struct part *pt = part_find(c, e->topic, e->partition);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && e->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Done, unless a later record finished meanwhile: that offset is still due. */
            if (pt != NULL && pt->commit == e->offset)
                pt->commit = -1;
        } else if (failure == NULL) {
            failure = rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : e->err);
        }
    }
    if (failure == NULL) {
        svc_counter_inc(c->commits, ok);
        c->commit_delay_ms = 0;
        return;
    }
    svc_counter_inc(c->commits, bad);
    c->commit_delay_ms = c->commit_delay_ms == 0 ? c->retry_initial_ms : c->commit_delay_ms * 2;
    if (c->commit_delay_ms > c->retry_max_ms)
        c->commit_delay_ms = c->retry_max_ms;
    c->next_commit = svc_now_ms() + c->commit_delay_ms;
    if (svc_ratelimit_due(&c->commit_warn, &suppressed))
        svc_log_warn("kafka commit for group '%s' failed, retrying in %d ms: %s (%u similar "
                     "failures not logged)",
                     c->group, c->commit_delay_ms, failure, suppressed);
}

/*
 * The group's committed offsets of newly assigned PARTS, kept as each partition's start: until
 * it consumes a record librdkafka reports no position, so without them a consumer restarted
 * behind a backlog, or caught up with nothing new arriving, would show no lag at all. One
 * round trip to the coordinator, bounded; on failure the lag appears with the first record.
 */
static void note_committed(struct svc_consumer *c, rd_kafka_t *rk,
                           const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 5000);

    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++) {
        struct part *pt = part_find(c, l->elems[i].topic, l->elems[i].partition);

        if (pt != NULL && l->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            pt->start = l->elems[i].offset >= 0 ? l->elems[i].offset : -1;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        svc_log_debug("kafka group '%s': committed offsets not read: %s", c->group,
                      rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

static int flush_batch(struct svc_consumer *c);

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct svc_consumer *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        for (int i = 0; i < parts->cnt; i++) {
            struct part *pt = part_get(c, parts->elems[i].topic, parts->elems[i].partition);

            part_clear_hold(pt); /* a fresh assignment starts from the committed offset */
        }
        note_committed(c, rk, parts);
        svc_log_info("kafka group '%s': %d partitions assigned", c->group, parts->cnt);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        /* librdkafka (2.0.2) keeps a partition paused through a revoke and a new assignment,
         * but the record it was paused for was dropped above: without this, a partition that
         * comes back while a retry was pending would never be fetched again. */
        if (error == NULL && aerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (c->flush_failing)
                rd_kafka_pause_partitions(rk, parts); /* until the batch is written */
            else
                rd_kafka_resume_partitions(rk, parts);
        }
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        /* Finished work is committed while the partitions are still ours (a staged batch is
         * written first, once; if it cannot be, those records are the next owner's again);
         * records held for a retry are dropped: the next owner reads them again from the
         * committed offset. */
        if (c->flush != NULL && !rd_kafka_assignment_lost(rk))
            flush_batch(c);
        if (!rd_kafka_assignment_lost(rk))
            commit_finished(c, parts);
        for (int i = 0; i < parts->cnt; i++) {
            struct part *pt = part_find(c, parts->elems[i].topic, parts->elems[i].partition);

            if (pt != NULL)
                part_remove(c, pt);
        }
        svc_log_info("kafka group '%s': %d partitions revoked", c->group, parts->cnt);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
        break;
    default:
        svc_log_error("kafka group '%s' rebalance failed: %s", c->group, rd_kafka_err2str(err));
        while (c->nparts > 0)
            part_remove(c, &c->parts[0]);
        aerr = rd_kafka_assign(rk, NULL);
        break;
    }
    if (error != NULL) {
        svc_log_error("kafka group '%s' assignment failed: %s", c->group,
                      rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        svc_log_error("kafka group '%s' assignment failed: %s", c->group, rd_kafka_err2str(aerr));
    }
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct svc_consumer *c = opaque;
    unsigned suppressed;

    (void)rk;
    /* Called on the consumer thread (from rd_kafka_consumer_poll), like the rest. */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
        c->brokers_down_at = svc_now_ms();
    if (svc_ratelimit_due(&c->poll_warn, &suppressed))
        svc_log_warn("kafka consumer of group '%s': %s (%u similar errors not logged)", c->group,
                     reason, suppressed);
}

/*
 * The DLQ copy of a record too big to be written whole (larger than the producer's or the
 * broker's message size limit): the first DLQ_CUT_VALUE bytes of its value and DLQ_CUT_KEY of
 * its key, none of its own headers, the DLQ headers OURS[NOURS], and dlq-truncated "true",
 * dlq-original-size (bytes of the value) and dlq-sha256 (hex, of the whole value), so that it is
 * recorded, can be matched with the original, and never stalls its partition.
 */
static int write_dlq_cut(struct svc_consumer *c, const rd_kafka_message_t *m, const char *topic,
                         const struct svc_kafka_header *ours, size_t nours)
{
    struct svc_kafka_header hdrs[16];
    struct svc_kafka_msg msg = {0};
    uint8_t sum[32];
    char hex[65], size[24];
    size_t n = 0;
    int rc;

    svc_sha256(m->payload != NULL ? m->payload : "", m->len, sum);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    snprintf(size, sizeof(size), "%zu", m->len);
    for (size_t i = 0; i < nours && n < 12; i++)
        hdrs[n++] = ours[i];
    hdrs[n++] = (struct svc_kafka_header){"dlq-truncated", "true", 4};
    hdrs[n++] = (struct svc_kafka_header){"dlq-original-size", size, strlen(size)};
    hdrs[n++] = (struct svc_kafka_header){"dlq-sha256", hex, 64};
    msg.topic = topic;
    msg.key = m->key;
    msg.key_len = m->key_len < DLQ_CUT_KEY ? m->key_len : DLQ_CUT_KEY;
    msg.value = m->payload;
    msg.value_len = m->len < DLQ_CUT_VALUE ? m->len : DLQ_CUT_VALUE;
    msg.headers = hdrs;
    msg.nheaders = n;
    rc = svc_producer_send_wait(c->dlq, &msg, 1, DLQ_WAIT_MS);
    if (rc == 0)
        svc_log_warn("kafka record '%s' [%" PRId32 "] @%" PRId64 " of %zu bytes is too big for "
                     "'%s': its first %zu bytes were copied there, with its size and SHA-256",
                     rd_kafka_topic_name(m->rkt), m->partition, m->offset, m->len, topic,
                     msg.value_len);
    return rc;
}

/* Writes a poison record's copy to "<topic>.dlq": same key and value, its own headers, and
 * dlq-reason, dlq-source-topic, dlq-partition, dlq-offset and dlq-group. 0 once the broker
 * acknowledged it. */
static int write_dlq(struct svc_consumer *c, const rd_kafka_message_t *m, const char *reason)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_headers_t *orig = NULL;
    struct svc_kafka_header *hdrs;
    struct svc_kafka_msg msg = {0};
    char dlq_topic[512], pnum[16], onum[24];
    size_t n = 0, norig;
    int rc;

    snprintf(dlq_topic, sizeof(dlq_topic), "%s.dlq", topic);
    snprintf(pnum, sizeof(pnum), "%" PRId32, m->partition);
    snprintf(onum, sizeof(onum), "%" PRId64, m->offset);
    if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
        orig = NULL;
    norig = orig != NULL ? rd_kafka_header_cnt(orig) : 0;
    hdrs = svc_calloc(norig + 5, sizeof(*hdrs));
    for (size_t i = 0; i < norig; i++) {
        const char *name;
        const void *value;
        size_t len;

        if (rd_kafka_header_get_all(orig, i, &name, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs[n++] = (struct svc_kafka_header){name, value, len};
    }
    hdrs[n++] = (struct svc_kafka_header){"dlq-reason", reason, strlen(reason)};
    hdrs[n++] = (struct svc_kafka_header){"dlq-source-topic", topic, strlen(topic)};
    hdrs[n++] = (struct svc_kafka_header){"dlq-partition", pnum, strlen(pnum)};
    hdrs[n++] = (struct svc_kafka_header){"dlq-offset", onum, strlen(onum)};
    hdrs[n++] = (struct svc_kafka_header){"dlq-group", c->group, strlen(c->group)};
    msg.topic = dlq_topic;
    msg.key = m->key;
    msg.key_len = m->key_len;
    msg.value = m->payload;
    msg.value_len = m->len;
    msg.headers = hdrs;
    msg.nheaders = n;
    rc = svc_producer_send_wait(c->dlq, &msg, 1, DLQ_WAIT_MS);
    if (rc == SVC_ETOOBIG)
        rc = write_dlq_cut(c, m, dlq_topic, hdrs + norig, n - norig);
    free(hdrs);
    return rc;
}

static void set_paused(struct svc_consumer *c, const struct part *pt, bool paused)
{
    rd_kafka_topic_partition_list_t *l = one_partition(pt, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_resp_err_t err;

    err = paused ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        svc_log_error("kafka %s of '%s' [%" PRId32 "] failed: %s", paused ? "pause" : "resume",
                      pt->topic, pt->partition, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

/* The record at hand is finished (done, or its poison copy acknowledged): its offset becomes
 * due for commit, and a paused partition goes on. */
static void finish(struct svc_consumer *c, struct part *pt, rd_kafka_message_t *m)
{
    bool was_held = pt->held == m;
    bool stray = pt->stray;
    int64_t next = m->offset + 1;

    if (c->flush != NULL) {
        /* Staged: durable only once the batch is flushed (flush_batch()). */
        pt->staged = next;
        if (pt->batch_first < 0)
            pt->batch_first = m->offset;
        if (c->nstaged++ == 0)
            c->staged_since = svc_now_ms();
    } else {
        pt->commit = next;
    }
    if (was_held) {
        pt->held = NULL; /* destroyed below */
        part_clear_hold(pt);
        /* While a batch cannot be written everything stays paused (flush_batch()). */
        if (!c->flush_failing)
            set_paused(c, pt, false);
        if (stray) {
            /* A record slipped through while paused and moved the fetch position past
             * unprocessed records: go back to the one after the finished record. */
            rd_kafka_topic_partition_list_t *l = one_partition(pt, next);
            rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, 5000);

            if (error != NULL) {
                svc_log_error("kafka seek of '%s' [%" PRId32 "] failed: %s", pt->topic,
                              pt->partition, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
            }
            rd_kafka_topic_partition_list_destroy(l);
        }
    }
    rd_kafka_message_destroy(m);
}

/* Holds M for a later retry with exponential backoff; pauses its partition the first time. */
static void hold(struct svc_consumer *c, struct part *pt, rd_kafka_message_t *m, unsigned attempt)
{
    if (pt->held == NULL) {
        pt->held = m;
        pt->held_since = svc_now_ms();
        set_paused(c, pt, true);
    }
    pt->attempt = attempt;
    pt->delay_ms = pt->delay_ms == 0 ? c->retry_initial_ms : pt->delay_ms * 2;
    if (pt->delay_ms > c->retry_max_ms)
        pt->delay_ms = c->retry_max_ms;
    pt->retry_at = svc_now_ms() + pt->delay_ms;
}

/* Runs the handler on M (owned from here on) and acts on its answer. */
static void handle(struct svc_consumer *c, struct part *pt, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    unsigned attempt = pt->held == m ? pt->attempt + 1 : 1;
    struct svc_kafka_record rec;
    enum svc_ev_result res;
    const char *reason;
    const char *values[] = {topic, NULL};
    int rc;

    svc_buf_reset(&c->reason);
    if (pt->poison_reason != NULL) {
        res = SVC_EV_POISON; /* decided before; only the DLQ copy failed */
    } else {
        rec.topic = topic;
        rec.partition = m->partition;
        rec.offset = m->offset;
        rec.key = m->key;
        rec.key_len = m->key_len;
        rec.value = m->payload;
        rec.value_len = m->len;
        rec.timestamp_ms = rd_kafka_message_timestamp(m, NULL);
        rec.attempt = attempt;
        rec.priv = m;
        res = c->handler(&rec, &c->reason, c->arg);
    }
    switch (res) {
    case SVC_EV_DONE:
        values[1] = "done";
        svc_counter_inc(c->consumed, values);
        finish(c, pt, m);
        return;
    case SVC_EV_RETRY:
        values[1] = "retry";
        svc_counter_inc(c->consumed, values);
        hold(c, pt, m, attempt);
        svc_log_debug("kafka record '%s' [%" PRId32 "] @%" PRId64 " retried in %d ms", topic,
                      m->partition, m->offset, pt->delay_ms);
        return;
    case SVC_EV_POISON:
    default:
        break;
    }
    reason = pt->poison_reason != NULL ? pt->poison_reason
             : c->reason.len > 0       ? svc_buf_str(&c->reason)
                                       : "no reason given";
    rc = write_dlq(c, m, reason);
    if (rc == 0) {
        svc_log_warn("kafka record '%s' [%" PRId32 "] @%" PRId64 " sent to '%s.dlq': %s", topic,
                     m->partition, m->offset, topic, reason);
        values[1] = "poison";
        svc_counter_inc(c->consumed, values);
        finish(c, pt, m);
        return;
    }
    if (pt->poison_reason == NULL)
        pt->poison_reason = svc_strdup(reason);
    hold(c, pt, m, attempt);
    svc_log_warn("kafka record '%s' [%" PRId32 "] @%" PRId64 " not copied to '%s.dlq' (%s), "
                 "retrying in %d ms",
                 topic, m->partition, m->offset, topic, svc_err_name(rc), pt->delay_ms);
}

static void lags_free(struct topic_lag *lags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lags[i].topic);
    free(lags);
}

/* Adds LAG to TOPIC's sum in LAGS (room for every assigned partition was made). */
static void lag_add(struct topic_lag *lags, size_t *n, const char *topic, int64_t lag)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(lags[i].topic, topic) == 0) {
            lags[i].lag += lag;
            return;
        }
    }
    lags[*n].topic = svc_strdup(topic);
    lags[*n].lag = lag;
    (*n)++;
}

/* Exchanges the consumer's snapshot with *LAGS (the caller holds lag_mu). */
static void swap_lags(struct svc_consumer *c, struct topic_lag **lags, size_t *n)
{
    struct topic_lag *t = c->lags;
    size_t tn = c->nlags;

    c->lags = *lags;
    c->nlags = *n;
    *lags = t;
    *n = tn;
}

/* Whether PT is paused by this consumer: a record held, or every partition while a batch
 * cannot be written. */
static bool paused_now(const struct svc_consumer *c, const struct part *pt)
{
    return c->flush_failing || (pt != NULL && pt->held != NULL);
}

static void update_lag(struct svc_consumer *c)
{
    rd_kafka_topic_partition_list_t *l;
    struct topic_lag *lags;
    size_t nlags = 0;

    if (rd_kafka_assignment(c->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    lags = svc_calloc((size_t)l->cnt + 1, sizeof(*lags));
    rd_kafka_position(c->rk, l);
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &l->elems[i];
        const struct part *pt = part_find(c, e->topic, e->partition);
        int64_t lo, hi, pos = e->offset;
        const char *values[2];
        char pnum[16];

        if (pt != NULL && pt->batch_first >= 0)
            pos = pt->batch_first; /* staged, not yet written */
        else if (pt != NULL && pt->held != NULL)
            pos = pt->held->offset; /* the held record is not processed yet */
        else if (pos < 0 && pt != NULL)
            pos = pt->start; /* nothing consumed since the assignment */
        if (rd_kafka_get_watermark_offsets(c->rk, e->topic, e->partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            hi = -1;
        /* A paused partition (a record held for a retry, a batch that cannot be written) is
         * not fetched, so the end librdkafka cached from the last fetch goes stale exactly
         * while records pile up: ask the broker, briefly, unless it was just found down. */
        if (paused_now(c, pt) && svc_now_ms() - c->brokers_down_at >= LAG_INTERVAL_MS) {
            int64_t qlo, qhi;

            if (rd_kafka_query_watermark_offsets(c->rk, e->topic, e->partition, &qlo, &qhi,
                                                 LAG_QUERY_MS) == RD_KAFKA_RESP_ERR_NO_ERROR)
                hi = qhi;
        }
        if (hi < 0 || pos < 0)
            continue;
        snprintf(pnum, sizeof(pnum), "%" PRId32, e->partition);
        values[0] = e->topic;
        values[1] = pnum;
        svc_gauge_set(c->lag, values, (double)(hi > pos ? hi - pos : 0));
        lag_add(lags, &nlags, e->topic, hi > pos ? hi - pos : 0);
    }
    rd_kafka_topic_partition_list_destroy(l);
    pthread_mutex_lock(&c->lag_mu);
    swap_lags(c, &lags, &nlags);
    pthread_mutex_unlock(&c->lag_mu);
    lags_free(lags, nlags);
}

static bool commit_due(const struct svc_consumer *c, bool idle)
{
    int64_t now = svc_now_ms();

    if (c->commit_inflight || now < c->next_commit)
        return false;
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].commit >= 0)
            return idle || now - c->last_commit >= c->commit_interval_ms;
    return false;
}

static bool commits_pending(const struct svc_consumer *c)
{
    if (c->commit_inflight)
        return true;
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].commit >= 0)
            return true;
    return false;
}

/* The poll timeout: until the earliest retry, at most 100 ms so a stop is seen quickly. */
static int poll_timeout(const struct svc_consumer *c)
{
    int64_t now = svc_now_ms(), wait = 100;

    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].held != NULL && c->parts[i].retry_at - now < wait)
            wait = c->parts[i].retry_at - now;
    if (c->nstaged > 0) {
        int64_t at = c->flush_failing ? c->flush_retry_at : c->staged_since + c->batch_age_ms;

        if (at - now < wait)
            wait = at - now;
    }
    return wait > 0 ? (int)wait : 0;
}

/* Pauses or resumes every assigned partition (a partition held for a retry stays paused). */
static void set_all_paused(struct svc_consumer *c, bool paused)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;

    if (rd_kafka_assignment(c->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (!paused) {
        for (int i = l->cnt - 1; i >= 0; i--) {
            const struct part *pt = part_find(c, l->elems[i].topic, l->elems[i].partition);

            if (pt != NULL && pt->held != NULL)
                rd_kafka_topic_partition_list_del_by_idx(l, i);
        }
    }
    err = paused ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        svc_log_error("kafka %s of group '%s' failed: %s", paused ? "pause" : "resume", c->group,
                      rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Writes the staged batch (the flush function). Success: every staged offset becomes due for
 * commit, and partitions paused by a failing flush go on. Failure: every assigned partition is
 * paused, so nothing more is fetched, and the flush is tried again after a backoff.
 */
static int flush_batch(struct svc_consumer *c)
{
    unsigned suppressed;
    int rc;

    if (c->nstaged == 0)
        return 0;
    rc = c->flush(c->arg);
    if (rc == 0) {
        for (size_t i = 0; i < c->nparts; i++) {
            struct part *pt = &c->parts[i];

            if (pt->staged >= 0)
                pt->commit = pt->staged;
            pt->staged = -1;
            pt->batch_first = -1;
        }
        c->nstaged = 0;
        if (c->flush_failing) {
            c->flush_failing = false;
            c->flush_delay_ms = 0;
            set_all_paused(c, false);
            svc_log_info("kafka group '%s': batch written, consuming again", c->group);
        }
        return 0;
    }
    if (!c->flush_failing) {
        c->flush_failing = true;
        set_all_paused(c, true);
    }
    c->flush_delay_ms = c->flush_delay_ms == 0 ? c->retry_initial_ms : c->flush_delay_ms * 2;
    if (c->flush_delay_ms > c->retry_max_ms)
        c->flush_delay_ms = c->retry_max_ms;
    c->flush_retry_at = svc_now_ms() + c->flush_delay_ms;
    if (svc_ratelimit_due(&c->flush_warn, &suppressed))
        svc_log_warn("kafka group '%s': a batch of %zu records not written (%s); consumption "
                     "paused, retrying in %d ms (%u similar failures not logged)",
                     c->group, c->nstaged, svc_err_name(rc), c->flush_delay_ms, suppressed);
    return rc;
}

static bool flush_due(const struct svc_consumer *c)
{
    int64_t now = svc_now_ms();

    if (c->nstaged == 0)
        return false;
    if (c->flush_failing)
        return now >= c->flush_retry_at;
    return c->nstaged >= (size_t)c->batch_max || now - c->staged_since >= c->batch_age_ms;
}

static void run_due_retries(struct svc_consumer *c)
{
    int64_t now = svc_now_ms();

    /* handle() may not remove parts, so indexes stay valid. */
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].held != NULL && c->parts[i].retry_at <= now)
            handle(c, &c->parts[i], c->parts[i].held);
}

static void take(struct svc_consumer *c, rd_kafka_message_t *m)
{
    struct part *pt;
    unsigned suppressed;

    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
            svc_ratelimit_due(&c->poll_warn, &suppressed))
            svc_log_warn("kafka consumer of group '%s': %s (%u similar errors not logged)",
                         c->group, rd_kafka_message_errstr(m), suppressed);
        rd_kafka_message_destroy(m);
        return;
    }
    pt = part_get(c, rd_kafka_topic_name(m->rkt), m->partition);
    if (pt->held != NULL) {
        /* Pausing drops what was fetched for the partition, so this should not happen; if
         * it does, the record is handled after the held one, by a seek on resume. */
        pt->stray = true;
        rd_kafka_message_destroy(m);
        return;
    }
    handle(c, pt, m);
}

/* Refreshes the readiness state (svc_consumer_dep). */
static void check_health(struct svc_consumer *c)
{
    int64_t now = svc_now_ms();

    if (c->nparts > 0) {
        c->unassigned_since = 0;
    } else if (c->unassigned_since == 0) {
        c->unassigned_since = now;
    }
    for (size_t i = 0; i < c->nparts; i++) {
        const struct part *pt = &c->parts[i];

        if (pt->held != NULL && pt->poison_reason != NULL &&
            now - pt->held_since >= c->stuck_after_ms) {
            svc_dep_down(c->dep, NULL,
                         "record '%s' [%" PRId32 "] @%" PRId64
                         " waits for its DLQ copy since %" PRId64 " s: its partition is stuck",
                         pt->topic, pt->partition, pt->held->offset, (now - pt->held_since) / 1000);
            return;
        }
    }
    if (c->unassigned_since != 0 && now - c->unassigned_since >= c->unassigned_after_ms &&
        now - c->brokers_down_at >= c->unassigned_after_ms) {
        svc_dep_down(c->dep, NULL,
                     "group '%s' has given this consumer no partition for %" PRId64 " s", c->group,
                     (now - c->unassigned_since) / 1000);
        return;
    }
    if (c->nparts > 0 || c->unassigned_since == 0 ||
        now - c->unassigned_since < c->unassigned_after_ms)
        svc_dep_up(c->dep);
}

static void *consumer_thread(void *arg)
{
    struct svc_consumer *c = arg;
    rd_kafka_message_t *m;
    rd_kafka_resp_err_t err;
    int64_t deadline;

    while (!atomic_load(&c->stop)) {
        run_due_retries(c);
        m = rd_kafka_consumer_poll(c->rk, poll_timeout(c));
        if (m != NULL)
            take(c, m);
        if (c->flush != NULL && flush_due(c))
            flush_batch(c);
        if (commit_due(c, m == NULL))
            commit_finished(c, NULL);
        if (svc_now_ms() - c->last_lag >= LAG_INTERVAL_MS) {
            update_lag(c);
            check_health(c);
            c->last_lag = svc_now_ms();
        }
    }
    /* Commit what is finished before leaving the group. Records that still arrive are not
     * handled, so their offsets stay uncommitted and the next owner reads them. */
    deadline = svc_now_ms() + STOP_COMMIT_MS;
    while (c->flush != NULL && c->nstaged > 0 && svc_now_ms() < deadline) {
        if (flush_batch(c) != 0)
            svc_sleep_ms(c->flush_delay_ms < 500 ? c->flush_delay_ms : 500);
    }
    c->next_commit = 0;
    while (commits_pending(c) && svc_now_ms() < deadline) {
        if (!c->commit_inflight)
            commit_finished(c, NULL);
        m = rd_kafka_consumer_poll(c->rk, 100);
        if (m != NULL)
            rd_kafka_message_destroy(m);
    }
    if (commits_pending(c))
        svc_log_warn("kafka group '%s': finished offsets not committed at stop; their records "
                     "will be delivered again",
                     c->group);
    for (size_t i = 0; i < c->nparts; i++)
        part_clear_hold(&c->parts[i]);
    err = rd_kafka_consumer_close(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        svc_log_warn("kafka group '%s' not left cleanly: %s", c->group, rd_kafka_err2str(err));
    /* Leaving the group revokes the partitions through on_rebalance(); whatever is left (the
     * close failed) goes too, as a stopped consumer has no lag to report. */
    while (c->nparts > 0)
        part_remove(c, &c->parts[0]);
    return NULL;
}

int svc_consumer_new(const struct svc_consumer_config *cfg, struct svc_consumer **out)
{
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;
    struct svc_consumer *c;
    char errstr[512];
    int rc;

    *out = NULL;
    if (cfg->kafka == NULL || cfg->group_id == NULL || cfg->group_id[0] == '\0' ||
        cfg->topics == NULL || cfg->topics[0] == NULL || cfg->handler == NULL) {
        svc_log_error("kafka consumer needs kafka settings, a group, topics and a handler");
        return SVC_EINVAL;
    }
    c = svc_calloc(1, sizeof(*c));
    c->group = svc_strdup(cfg->group_id);
    c->handler = cfg->handler;
    c->arg = cfg->arg;
    c->retry_initial_ms = cfg->retry_initial_ms > 0 ? cfg->retry_initial_ms : 200;
    c->retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : 30000;
    if (c->retry_max_ms < c->retry_initial_ms)
        c->retry_max_ms = c->retry_initial_ms;
    c->commit_interval_ms = cfg->commit_interval_ms > 0 ? cfg->commit_interval_ms : 100;
    c->flush = cfg->flush;
    c->batch_max = cfg->batch_max > 0 ? cfg->batch_max : 500;
    c->batch_age_ms = cfg->batch_age_ms > 0 ? cfg->batch_age_ms : 200;
    c->flush_warn = (struct svc_ratelimit)SVC_RATELIMIT_INIT(SVC_DEP_WARN_MS);
    pthread_mutex_init(&c->lag_mu, NULL);
    c->unassigned_after_ms = cfg->unassigned_after_ms > 0 ? cfg->unassigned_after_ms : 20000;
    c->stuck_after_ms = cfg->stuck_after_ms > 0 ? cfg->stuck_after_ms : 30000;
    c->dep = svc_dep_new("kafka consumer", 0, NULL);
    c->commit_warn = (struct svc_ratelimit)SVC_RATELIMIT_INIT(SVC_DEP_WARN_MS);
    c->poll_warn = (struct svc_ratelimit)SVC_RATELIMIT_INIT(SVC_DEP_WARN_MS);
    atomic_init(&c->stop, false);
    svc_buf_init(&c->reason, 1024); /* it travels in a header */
    c->consumed = svc_counter_new("kafka_consumed_total",
                                  "Kafka records handled, by topic and the handler's answer",
                                  consumed_labels);
    c->lag = svc_gauge_new("kafka_consumer_lag",
                           "Records behind the end of each assigned partition", lag_labels);
    c->commits = svc_counter_new("kafka_consumer_commits_total", "Kafka offset commits by outcome",
                                 commit_labels);

    if (cfg->dlq != NULL) {
        c->dlq = cfg->dlq;
    } else if ((rc = svc_producer_new(cfg->kafka, &c->dlq)) != 0) {
        goto fail;
    } else {
        c->own_dlq = true;
    }

    conf = rd_kafka_conf_new();
    if ((rc = conf_common(conf, cfg->kafka)) != 0 ||
        (rc = conf_set(conf, "group.id", cfg->group_id)) != 0 ||
        (rc = conf_set(conf, "enable.auto.commit", "false")) != 0 ||
        (rc = conf_set(conf, "enable.auto.offset.store", "false")) != 0 ||
        (rc = conf_set(conf, "auto.offset.reset", cfg->from_latest ? "latest" : "earliest")) != 0 ||
        /* A subscribed topic that does not exist yet (its producer has not written) is found at
         * the next metadata refresh: every second, not librdkafka's 5 minutes, so a new
         * service's first events reach their consumers at once. One small request a second. */
        (rc = conf_set(conf, "topic.metadata.refresh.interval.ms", "1000")) != 0 ||
        /* A member that died without leaving (a crash, SIGKILL) holds its partitions until
         * the broker gives up on it: 6 s (the broker's smallest allowed session), not
         * librdkafka's 45, so a restarted or surviving replica resumes within seconds. */
        (rc = conf_set(conf, "session.timeout.ms", "6000")) != 0 ||
        (rc = conf_set(conf, "heartbeat.interval.ms", "2000")) != 0 ||
        (rc = conf_extra(conf, cfg->kafka)) != 0) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        svc_log_error("kafka consumer of group '%s' not created: %s", cfg->group_id, errstr);
        rd_kafka_conf_destroy(conf);
        rc = SVC_EINVAL;
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    topics = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; cfg->topics[i] != NULL; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        svc_log_error("kafka group '%s' not subscribed: %s", cfg->group_id, rd_kafka_err2str(err));
        rc = SVC_EINVAL;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    if (c->rk != NULL)
        rd_kafka_destroy(c->rk);
    if (c->own_dlq)
        svc_producer_free(c->dlq);
    svc_buf_release(&c->reason);
    pthread_mutex_destroy(&c->lag_mu);
    svc_dep_free(c->dep);
    free(c->group);
    free(c);
    return rc;
}

int svc_consumer_start(struct svc_consumer *c)
{
    if (c->started)
        return 0;
    if (pthread_create(&c->thread, NULL, consumer_thread, c) != 0) {
        svc_log_error("kafka consumer thread of group '%s' not started: %s", c->group,
                      strerror(errno));
        return SVC_EINTERNAL;
    }
    c->started = true;
    return 0;
}

void svc_consumer_stop(struct svc_consumer *c)
{
    if (!c->started || c->joined)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    c->joined = true;
}

void svc_consumer_free(struct svc_consumer *c)
{
    if (c == NULL)
        return;
    svc_consumer_stop(c);
    if (!c->started)
        rd_kafka_consumer_close(c->rk);
    while (c->nparts > 0)
        part_remove(c, &c->parts[0]);
    free(c->parts);
    rd_kafka_destroy(c->rk);
    if (c->own_dlq)
        svc_producer_free(c->dlq);
    svc_buf_release(&c->reason);
    lags_free(c->lags, c->nlags);
    pthread_mutex_destroy(&c->lag_mu);
    svc_dep_free(c->dep);
    free(c->group);
    free(c);
}

struct svc_dep *svc_consumer_dep(struct svc_consumer *c)
{
    return c != NULL ? c->dep : NULL;
}

int svc_consumer_lag(struct svc_consumer *c, const char *topic, int64_t *lag)
{
    int rc = SVC_ENOTFOUND;

    pthread_mutex_lock(&c->lag_mu);
    for (size_t i = 0; i < c->nlags; i++) {
        if (strcmp(c->lags[i].topic, topic) == 0) {
            *lag = c->lags[i].lag;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->lag_mu);
    return rc;
}

bool svc_kafka_record_header(const struct svc_kafka_record *rec, const char *name,
                             const void **value, size_t *len)
{
    rd_kafka_headers_t *hdrs;

    if (rd_kafka_message_headers(rec->priv, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    return rd_kafka_header_get_last(hdrs, name, value, len) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

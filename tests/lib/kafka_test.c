/*
 * Kafka producer and consumer against librdkafka's in-process mock cluster (one broker), with
 * broker failures injected through rdkafka_mock.h. Each test owns its cluster.
 */
#include "svc/idem.h"
#include "svc/kafka.h"

#include "svc/dep.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"
#include "testenv.h"
#include "testkafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Kafka protocol request types, for error injection. */
enum { API_PRODUCE = 0, API_FETCH = 1, API_OFFSET_COMMIT = 8 };

static rd_kafka_mock_cluster_t *mock;
static const char *brokers;

/* Runs in each test's own process (Check forks), before the test. */
static void mock_start(void)
{
    mock = testkafka_start();
    brokers = testkafka_brokers();
    testkafka_topic("t", 1);
    testkafka_topic("t.dlq", 1);
}

static void mock_stop(void)
{
    testkafka_stop();
}

static struct svc_kafka_config kafka_config(void)
{
    struct svc_kafka_config cfg = {0};

    cfg.brokers = brokers;
    cfg.client_id = "kafka-test";
    cfg.message_timeout_ms = 5000;
    cfg.unavailable_after_ms = 500;
    cfg.stats_interval_ms = 200;
    return cfg;
}

static double produced(const char *topic, const char *result)
{
    static const char *const labels[] = {"topic", "result", NULL};
    const char *values[] = {topic, result};

    return svc_metric_value(svc_counter_new("kafka_produced_total", "", labels), values);
}

static double consumed(const char *topic, const char *result)
{
    static const char *const labels[] = {"topic", "result", NULL};
    const char *values[] = {topic, result};

    return svc_metric_value(svc_counter_new("kafka_consumed_total", "", labels), values);
}

static struct svc_kafka_msg text_msg(const char *topic, const char *key, const char *value)
{
    struct svc_kafka_msg m = {0};

    m.topic = topic;
    m.key = key;
    m.key_len = key != NULL ? strlen(key) : 0;
    m.value = value;
    m.value_len = strlen(value);
    return m;
}

/* A plain librdkafka consumer outside any group, reading TOPIC [0] from the beginning. */
static rd_kafka_t *reader_new(const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    char errstr[256];
    rd_kafka_t *rk;

    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_ptr_nonnull(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* The next record, or NULL after TIMEOUT_MS. */
static rd_kafka_message_t *reader_next(rd_kafka_t *rk, int timeout_ms)
{
    int64_t deadline = svc_now_ms() + timeout_ms;

    while (svc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return m;
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void reader_free(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static bool header_is(const rd_kafka_message_t *m, const char *name, const char *want)
{
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t n;

    if (rd_kafka_message_headers(m, &hdrs) != 0 ||
        rd_kafka_header_get_last(hdrs, name, &v, &n) != 0)
        return false;
    return n == strlen(want) && memcmp(v, want, n) == 0;
}

/* The offset GROUP has committed for "t" [0], as the broker tells another client. */
static int64_t committed(rd_kafka_t *probe)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t off;

    rd_kafka_topic_partition_list_add(l, "t", 0);
    if (rd_kafka_committed(probe, l, 5000) != 0)
        off = -2;
    else
        off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

static rd_kafka_t *probe_new(const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_ptr_nonnull(rk);
    return rk;
}

static void wait_connected(struct svc_producer *p)
{
    int64_t deadline = svc_now_ms() + 10000;

    while (!svc_producer_connected(p) && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert_msg(svc_producer_connected(p), "producer not connected within 10 s");
}

/* ---- producer ---------------------------------------------------------------------------- */

START_TEST(delivery_reports_are_counted)
{
    struct svc_kafka_config cfg = kafka_config();
    struct svc_kafka_msg msgs[3];
    struct svc_producer *p;
    struct svc_event *ev;
    rd_kafka_message_t *m;
    rd_kafka_t *reader;
    struct svc_event *back;

    ck_assert_int_eq(svc_producer_new(&cfg, &p), 0);
    msgs[0] = text_msg("t", "k1", "one");
    msgs[1] = text_msg("t", "k2", "two");
    msgs[2] = text_msg("t", NULL, "three");
    msgs[0].result = msgs[1].result = msgs[2].result = 99;
    ck_assert_int_eq(svc_producer_send_wait(p, msgs, 3, 10000), 0);
    ck_assert_int_eq(msgs[0].result, 0);
    ck_assert_int_eq(msgs[1].result, 0);
    ck_assert_int_eq(msgs[2].result, 0);
    ck_assert(svc_producer_connected(p));
    ck_assert(svc_producer_available(p));
    ck_assert(produced("t", "ok") == 3.0);

    /* Fire and forget: the reports still arrive and are counted; flush waits for them. */
    msgs[0] = text_msg("t", "k1", "four");
    ck_assert_int_eq(svc_producer_send(p, &msgs[0]), 0);
    ck_assert_int_eq(svc_producer_send(p, &msgs[0]), 0);
    ck_assert_int_eq(svc_producer_flush(p, 10000), 0);
    ck_assert_int_eq(svc_producer_queued(p), 0);
    ck_assert(produced("t", "ok") == 5.0);
    ck_assert(produced("t", "error") == 0.0);

    /* An event goes out as its envelope, keyed by its subject. */
    ev = svc_event_new("user.registered", "/user-svc", "u-42", json_pack("{s:s}", "n", "Ada"));
    ck_assert_int_eq(svc_producer_publish_wait(p, "t", ev, 10000), 0);
    ck_assert(produced("t", "ok") == 6.0);
    reader = reader_new("t");
    for (int i = 0; i < 6; i++) {
        m = reader_next(reader, 10000);
        ck_assert_ptr_nonnull(m);
        if (i < 5) {
            rd_kafka_message_destroy(m);
            continue;
        }
        ck_assert_uint_eq(m->key_len, 4);
        ck_assert_int_eq(memcmp(m->key, "u-42", 4), 0);
        ck_assert(header_is(m, "content-type", "application/cloudevents+json"));
        ck_assert_int_eq(svc_event_parse(m->payload, m->len, &back, NULL, 0), 0);
        ck_assert_str_eq(back->id, ev->id);
        svc_event_free(back);
        rd_kafka_message_destroy(m);
    }
    reader_free(reader);
    svc_event_free(ev);
    svc_producer_free(p);
}
END_TEST

START_TEST(broker_down_is_unavailable_within_bounds)
{
    struct svc_kafka_config cfg = kafka_config();
    struct svc_kafka_msg msg = text_msg("t", "k", "v");
    struct svc_producer *p;
    int64_t start;
    int rc = 0;

    ck_assert_int_eq(svc_producer_new(&cfg, &p), 0);
    ck_assert_int_eq(svc_producer_send_wait(p, &msg, 1, 10000), 0);

    rd_kafka_mock_broker_set_down(mock, 1);
    start = svc_now_ms();
    while (svc_now_ms() - start < 5000) {
        rc = svc_producer_send(p, &msg);
        if (rc == SVC_EUNAVAILABLE)
            break;
        svc_sleep_ms(50);
    }
    ck_assert_int_eq(rc, SVC_EUNAVAILABLE);
    /* unavailable_after_ms is 500, and the loss is known at once (all brokers down). */
    ck_assert_int_lt(svc_now_ms() - start, 2000);
    ck_assert(!svc_producer_connected(p));
    ck_assert(!svc_producer_available(p));
    ck_assert_int_eq(svc_err_status(rc), 503);
    ck_assert(produced("t", "refused") >= 1.0);

    /* Waiting sends are refused at once too, without queueing anything. */
    start = svc_now_ms();
    ck_assert_int_eq(svc_producer_send_wait(p, &msg, 1, -1), SVC_EUNAVAILABLE);
    ck_assert_int_eq(msg.result, SVC_EUNAVAILABLE);
    ck_assert_int_lt(svc_now_ms() - start, 500);

    /* The broker comes back: so does the producer. */
    rd_kafka_mock_broker_set_up(mock, 1);
    wait_connected(p);
    ck_assert(svc_producer_available(p));
    ck_assert_int_eq(svc_producer_send_wait(p, &msg, 1, 10000), 0);
    ck_assert_int_eq(svc_producer_flush(p, 10000), 0);
    svc_producer_free(p);
}
END_TEST

START_TEST(queued_message_expires_as_unavailable)
{
    struct svc_kafka_config cfg = kafka_config();
    struct svc_kafka_msg msg = text_msg("t", "k", "v");
    struct svc_producer *p;
    int64_t start;

    cfg.message_timeout_ms = 1000;
    cfg.unavailable_after_ms = 60000; /* keep accepting: the message must expire in the queue */
    ck_assert_int_eq(svc_producer_new(&cfg, &p), 0);
    /* The first message can need longer than this timeout (topic metadata is looked up on a
     * one-second timer): try until one gets through. */
    for (int i = 0; i < 10 && svc_producer_send_wait(p, &msg, 1, 10000) != 0; i++)
        ;
    ck_assert_int_eq(msg.result, 0);
    rd_kafka_mock_broker_set_down(mock, 1);
    svc_sleep_ms(100);
    start = svc_now_ms();
    ck_assert_int_eq(svc_producer_send_wait(p, &msg, 1, -1), SVC_EUNAVAILABLE);
    ck_assert_int_lt(svc_now_ms() - start, 3000);
    ck_assert(produced("t", "error") >= 1.0);

    /* A caller's own deadline: the message is reported as not yet acknowledged. */
    ck_assert_int_eq(svc_producer_send_wait(p, &msg, 1, 50), SVC_ETIMEDOUT);
    ck_assert_int_eq(svc_producer_flush(p, 50), SVC_ETIMEDOUT);
    svc_producer_free(p); /* drops the queued message and frees its waiter */
}
END_TEST

START_TEST(produce_errors_are_retried)
{
    struct svc_kafka_config cfg = kafka_config();
    struct svc_kafka_msg msg = text_msg("t", "k", "once");
    struct svc_producer *p;
    rd_kafka_message_t *m;
    rd_kafka_t *reader;

    ck_assert_int_eq(svc_producer_new(&cfg, &p), 0);
    wait_connected(p);
    rd_kafka_mock_push_request_errors(
        mock, API_PRODUCE, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    ck_assert_int_eq(svc_producer_send_wait(p, &msg, 1, 10000), 0);
    ck_assert(produced("t", "ok") == 1.0);
    ck_assert(produced("t", "error") == 0.0);

    /* Idempotence: the retries left exactly one copy. */
    reader = reader_new("t");
    m = reader_next(reader, 10000);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->len, 4);
    rd_kafka_message_destroy(m);
    ck_assert_ptr_null(reader_next(reader, 1000));
    reader_free(reader);
    svc_producer_free(p);
}
END_TEST

/* ---- consumer ---------------------------------------------------------------------------- */

struct seen {
    pthread_mutex_t mu;
    int64_t offsets[64];
    unsigned attempts[64];
    char values[64][16];
    int n;
    int retries_left; /* RETRY this many times for offset 0 */
    bool poison_first;
};

static enum svc_ev_result record_handler(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                         void *arg)
{
    struct seen *s = arg;
    enum svc_ev_result res = SVC_EV_DONE;

    pthread_mutex_lock(&s->mu);
    if (s->n < 64) {
        s->offsets[s->n] = rec->offset;
        s->attempts[s->n] = rec->attempt;
        snprintf(s->values[s->n], sizeof(s->values[0]), "%.*s", (int)rec->value_len,
                 (const char *)rec->value);
        s->n++;
    }
    if (rec->offset == 0 && s->retries_left > 0) {
        s->retries_left--;
        res = SVC_EV_RETRY;
    } else if (rec->offset == 0 && s->poison_first) {
        svc_buf_adds(reason, "attribute 'id' must be a UUID");
        res = SVC_EV_POISON;
    }
    pthread_mutex_unlock(&s->mu);
    return res;
}

static int seen_count(struct seen *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void wait_seen(struct seen *s, int n, int timeout_ms)
{
    int64_t deadline = svc_now_ms() + timeout_ms;

    while (seen_count(s) < n && svc_now_ms() < deadline)
        svc_sleep_ms(10);
    ck_assert_int_ge(seen_count(s), n);
}

static void wait_committed(rd_kafka_t *probe, int64_t want, int timeout_ms)
{
    int64_t deadline = svc_now_ms() + timeout_ms, off;

    while ((off = committed(probe)) != want && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert_int_eq(off, want);
}

static struct svc_consumer *consumer_for(struct svc_kafka_config *kcfg, struct seen *s,
                                         const char *group)
{
    static const char *const topics[] = {"t", NULL};
    struct svc_consumer_config cfg = {0};
    struct svc_consumer *c;

    cfg.kafka = kcfg;
    cfg.group_id = group;
    cfg.topics = topics;
    cfg.handler = record_handler;
    cfg.arg = s;
    cfg.retry_initial_ms = 400;
    cfg.retry_max_ms = 800;
    ck_assert_int_eq(svc_consumer_new(&cfg, &c), 0);
    ck_assert_int_eq(svc_consumer_start(c), 0);
    return c;
}

static void produce_texts(const struct svc_kafka_config *cfg, const char *const *values)
{
    static const struct svc_kafka_header hdr = {"h", "v", 1};
    struct svc_producer *p;
    struct svc_kafka_msg msgs[8];
    size_t n = 0;

    ck_assert_int_eq(svc_producer_new(cfg, &p), 0);
    for (; values[n] != NULL; n++) {
        msgs[n] = text_msg("t", "key", values[n]);
        msgs[n].headers = &hdr;
        msgs[n].nheaders = 1;
    }
    ck_assert_int_eq(svc_producer_send_wait(p, msgs, n, 10000), 0);
    svc_producer_free(p);
}

START_TEST(commit_only_after_done)
{
    static const char *const values[] = {"first", "second", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .retries_left = 2};
    rd_kafka_t *probe = probe_new("g-retry");
    struct svc_consumer *c;

    produce_texts(&kcfg, values);
    c = consumer_for(&kcfg, &s, "g-retry");

    /* While the first record is being retried nothing is committed, and the second record
     * waits behind it. */
    wait_seen(&s, 1, 45000);
    ck_assert_int_lt(committed(probe), 0);
    wait_seen(&s, 2, 5000);
    ck_assert_int_lt(committed(probe), 0);
    ck_assert_int_eq(seen_count(&s), 2);

    /* The third attempt succeeds: the offset moves past it, then past the second. */
    wait_seen(&s, 4, 5000);
    wait_committed(probe, 2, 5000);
    svc_consumer_free(c);

    ck_assert_int_eq(s.n, 4);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(s.offsets[i], 0);
        ck_assert_uint_eq(s.attempts[i], (unsigned)i + 1);
        ck_assert_str_eq(s.values[i], "first");
    }
    ck_assert_int_eq(s.offsets[3], 1);
    ck_assert_str_eq(s.values[3], "second");
    ck_assert(consumed("t", "retry") == 2.0);
    ck_assert(consumed("t", "done") == 2.0);
    rd_kafka_destroy(probe);
}
END_TEST

START_TEST(poison_goes_to_dlq_then_commits)
{
    static const char *const values[] = {"bad", "good", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .poison_first = true};
    rd_kafka_t *probe = probe_new("g-poison");
    struct svc_consumer *c;
    rd_kafka_message_t *m;
    rd_kafka_t *reader;

    produce_texts(&kcfg, values);
    c = consumer_for(&kcfg, &s, "g-poison");
    wait_seen(&s, 2, 45000);
    wait_committed(probe, 2, 5000);
    svc_consumer_free(c);
    ck_assert_int_eq(s.n, 2); /* the poison record was handled once */
    ck_assert(consumed("t", "poison") == 1.0);

    reader = reader_new("t.dlq");
    m = reader_next(reader, 10000);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->len, 3);
    ck_assert_int_eq(memcmp(m->payload, "bad", 3), 0);
    ck_assert_uint_eq(m->key_len, 3);
    ck_assert(header_is(m, "dlq-reason", "attribute 'id' must be a UUID"));
    ck_assert(header_is(m, "dlq-source-topic", "t"));
    ck_assert(header_is(m, "dlq-partition", "0"));
    ck_assert(header_is(m, "dlq-offset", "0"));
    ck_assert(header_is(m, "dlq-group", "g-poison"));
    ck_assert(header_is(m, "h", "v")); /* the record's own headers are kept */
    rd_kafka_message_destroy(m);
    ck_assert_ptr_null(reader_next(reader, 500));
    reader_free(reader);
    rd_kafka_destroy(probe);
}
END_TEST

/* A poison record larger than the DLQ producer may send (librdkafka's message.max.bytes,
 * 1,000,000 by default; the broker's is about 1 MiB) goes there cut, with its size and hash:
 * nothing stalls its partition. */
START_TEST(poison_too_big_for_the_dlq_goes_there_cut)
{
    static const char *const big_producer[] = {"message.max.bytes", "2000000", NULL};
    struct svc_kafka_config kcfg = kafka_config(), bcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .poison_first = true};
    rd_kafka_t *probe = probe_new("g-poison-big");
    size_t big_len = 1000101;
    char *big = malloc(big_len), hex[65], size[24];
    struct svc_kafka_msg msgs[2];
    struct svc_producer *p;
    struct svc_consumer *c;
    rd_kafka_message_t *m;
    rd_kafka_t *reader;
    uint8_t sum[32];

    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    svc_sha256(big, big_len, sum);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    snprintf(size, sizeof(size), "%zu", big_len);
    bcfg.extra = big_producer;
    ck_assert_int_eq(svc_producer_new(&bcfg, &p), 0);
    msgs[0] = text_msg("t", "key", "x");
    msgs[0].value = big;
    msgs[0].value_len = big_len;
    msgs[1] = text_msg("t", "key", "good");
    ck_assert_int_eq(svc_producer_send_wait(p, msgs, 2, 10000), 0);
    svc_producer_free(p);

    c = consumer_for(&kcfg, &s, "g-poison-big");
    wait_seen(&s, 2, 45000);
    wait_committed(probe, 2, 10000);
    svc_consumer_free(c);
    ck_assert_str_eq(s.values[1], "good");

    reader = reader_new("t.dlq");
    m = reader_next(reader, 10000);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->len, (size_t)64 * 1024);
    ck_assert_int_eq(memcmp(m->payload, big, m->len), 0);
    ck_assert(header_is(m, "dlq-truncated", "true"));
    ck_assert(header_is(m, "dlq-original-size", size));
    ck_assert(header_is(m, "dlq-sha256", hex));
    ck_assert(header_is(m, "dlq-reason", "attribute 'id' must be a UUID"));
    ck_assert(header_is(m, "dlq-offset", "0"));
    rd_kafka_message_destroy(m);
    reader_free(reader);
    rd_kafka_destroy(probe);
    free(big);
}
END_TEST

START_TEST(failed_dlq_copy_is_retried)
{
    static const char *const values[] = {"bad", "good", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .poison_first = true};
    rd_kafka_t *probe = probe_new("g-dlqretry");
    struct svc_consumer *c;
    rd_kafka_message_t *m;
    rd_kafka_t *reader;

    svc_log_set_level(SVC_LOG_FATAL); /* the refusal is logged as an error */
    produce_texts(&kcfg, values);
    /* The broker refuses the first copy for good: the consumer must try again, without
     * asking the handler again and without moving past the record meanwhile. */
    rd_kafka_mock_push_request_errors(mock, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    c = consumer_for(&kcfg, &s, "g-dlqretry");
    wait_seen(&s, 2, 45000);
    wait_committed(probe, 2, 5000);
    svc_consumer_free(c);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.values[0], "bad");
    ck_assert_str_eq(s.values[1], "good");
    ck_assert(consumed("t", "poison") == 1.0);

    reader = reader_new("t.dlq");
    m = reader_next(reader, 10000);
    ck_assert_ptr_nonnull(m);
    ck_assert(header_is(m, "dlq-reason", "attribute 'id' must be a UUID"));
    rd_kafka_message_destroy(m);
    ck_assert_ptr_null(reader_next(reader, 500));
    reader_free(reader);
    rd_kafka_destroy(probe);
}
END_TEST

START_TEST(broker_errors_are_retried)
{
    static const char *const values[] = {"a", "b", "c", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    static const char *const labels[] = {"result", NULL};
    static const char *const error[] = {"error"};
    rd_kafka_t *probe = probe_new("g-errors");
    struct svc_consumer *c;

    produce_texts(&kcfg, values);
    /* Fetches and commits fail for a while; nothing may be lost or handled twice. */
    rd_kafka_mock_push_request_errors(mock, API_FETCH, 2,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    rd_kafka_mock_push_request_errors(
        mock, API_OFFSET_COMMIT, 3, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    c = consumer_for(&kcfg, &s, "g-errors");
    wait_seen(&s, 3, 45000);
    wait_committed(probe, 3, 10000);
    ck_assert(svc_metric_value(svc_counter_new("kafka_consumer_commits_total", "", labels),
                               error) >= 1.0);
    svc_consumer_free(c);
    ck_assert_int_eq(s.n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(s.offsets[i], i);
    rd_kafka_destroy(probe);
}
END_TEST

START_TEST(lag_is_exposed)
{
    static const char *const values[] = {"a", "b", "c", "d", "e", NULL};
    static const char *const labels[] = {"topic", "partition", NULL};
    static const char *const tp[] = {"t", "0"};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .retries_left = 1000};
    struct svc_metric *lag = svc_gauge_new("kafka_consumer_lag", "", labels);
    struct svc_consumer *c;
    int64_t deadline;

    produce_texts(&kcfg, values);
    c = consumer_for(&kcfg, &s, "g-lag");
    /* The first record keeps failing: all five are still to be processed. */
    wait_seen(&s, 1, 45000);
    deadline = svc_now_ms() + 5000;
    while (svc_metric_value(lag, tp) != 5.0 && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert(svc_metric_value(lag, tp) == 5.0);
    /* Records that arrive while the partition is paused count at once: its end is asked from
     * the broker, not taken from the last fetch (which read 56 with 234 pending). */
    produce_texts(&kcfg, values);
    deadline = svc_now_ms() + 5000;
    while (svc_metric_value(lag, tp) != 10.0 && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert_msg(svc_metric_value(lag, tp) == 10.0, "lag %g, 10 pending",
                  svc_metric_value(lag, tp));
    svc_consumer_free(c);
}
END_TEST

/* ---- batches ---- */

/* A batch consumer's side: the handler stages values, the flush "writes" them (or fails while
 * fail_left > 0), keeping every value written, in order. */
struct batch {
    pthread_mutex_t mu;
    char staged[64][16];
    int nstaged;
    char written[64][16];
    int nwritten;
    int flushes, failures;
    int fail_left;
};

static enum svc_ev_result stage_handler(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                        void *arg)
{
    struct batch *b = arg;

    (void)reason;
    pthread_mutex_lock(&b->mu);
    if (b->nstaged < 64)
        snprintf(b->staged[b->nstaged++], sizeof(b->staged[0]), "%.*s", (int)rec->value_len,
                 (const char *)rec->value);
    pthread_mutex_unlock(&b->mu);
    return SVC_EV_DONE;
}

static int flush_staged(void *arg)
{
    struct batch *b = arg;
    int rc = 0;

    pthread_mutex_lock(&b->mu);
    if (b->fail_left > 0) {
        b->fail_left--;
        b->failures++;
        rc = SVC_EUNAVAILABLE;
    } else {
        for (int i = 0; i < b->nstaged && b->nwritten < 64; i++)
            memcpy(b->written[b->nwritten++], b->staged[i], sizeof(b->staged[0]));
        b->nstaged = 0;
        b->flushes++;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int batch_read(struct batch *b, int *nstaged, int *failures)
{
    int n;

    pthread_mutex_lock(&b->mu);
    n = b->nwritten;
    if (nstaged != NULL)
        *nstaged = b->nstaged;
    if (failures != NULL)
        *failures = b->failures;
    pthread_mutex_unlock(&b->mu);
    return n;
}

static int batch_flushes(struct batch *b)
{
    int n;

    pthread_mutex_lock(&b->mu);
    n = b->flushes;
    pthread_mutex_unlock(&b->mu);
    return n;
}

static void wait_written(struct batch *b, int n, int timeout_ms)
{
    int64_t deadline = svc_now_ms() + timeout_ms;

    while (batch_read(b, NULL, NULL) < n && svc_now_ms() < deadline)
        svc_sleep_ms(10);
    ck_assert_int_eq(batch_read(b, NULL, NULL), n);
}

static struct svc_consumer *batch_consumer(struct svc_kafka_config *kcfg, struct batch *b,
                                           const char *group, int max, int age_ms)
{
    static const char *const topics[] = {"t", NULL};
    struct svc_consumer_config cfg = {0};
    struct svc_consumer *c;

    cfg.kafka = kcfg;
    cfg.group_id = group;
    cfg.topics = topics;
    cfg.handler = stage_handler;
    cfg.arg = b;
    cfg.flush = flush_staged;
    cfg.batch_max = max;
    cfg.batch_age_ms = age_ms;
    cfg.retry_initial_ms = 300;
    cfg.retry_max_ms = 600;
    ck_assert_int_eq(svc_consumer_new(&cfg, &c), 0);
    ck_assert_int_eq(svc_consumer_start(c), 0);
    return c;
}

START_TEST(batch_is_committed_after_its_flush)
{
    static const char *const values[] = {"a", "b", "c", "d", "e", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct batch b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rd_kafka_t *probe = probe_new("g-batch");
    struct svc_consumer *c;
    int64_t lag = -1, deadline;

    produce_texts(&kcfg, values);
    /* Three per batch at most; the last two wait for their batch's age. */
    c = batch_consumer(&kcfg, &b, "g-batch", 3, 700);
    wait_written(&b, 3, 15000);
    ck_assert_int_eq(batch_flushes(&b), 1);
    ck_assert_int_lt(committed(probe), 4); /* the last two are not written yet */
    wait_written(&b, 5, 5000);
    ck_assert_int_eq(batch_flushes(&b), 2);
    wait_committed(probe, 5, 5000);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(b.written[i], values[i]);
    /* Nothing is left to consume once the lag refresh has seen the commit. */
    deadline = svc_now_ms() + 5000;
    while ((svc_consumer_lag(c, "t", &lag) != 0 || lag != 0) && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert_int_eq(lag, 0);
    ck_assert_int_eq(svc_consumer_lag(c, "other", &lag), SVC_ENOTFOUND);
    svc_consumer_free(c);
    rd_kafka_destroy(probe);
}
END_TEST

START_TEST(failing_flush_pauses_and_loses_nothing)
{
    static const char *const values[] = {"a", "b", "c", "d", "e", "f", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct batch b = {.mu = PTHREAD_MUTEX_INITIALIZER, .fail_left = 3};
    rd_kafka_t *probe = probe_new("g-batch-fail");
    struct svc_consumer *c;
    int64_t lag = -1, deadline;
    int failures = 0;

    produce_texts(&kcfg, values);
    c = batch_consumer(&kcfg, &b, "g-batch-fail", 2, 100);
    /* While the flush fails nothing is committed and the lag counts every record. */
    deadline = svc_now_ms() + 15000;
    while (batch_read(&b, NULL, &failures) == 0 && failures < 2 && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert_int_ge(failures, 2);
    ck_assert_int_lt(committed(probe), 0);
    deadline = svc_now_ms() + 3000;
    while ((svc_consumer_lag(c, "t", &lag) != 0 || lag != 6) && batch_read(&b, NULL, NULL) == 0 &&
           svc_now_ms() < deadline)
        svc_sleep_ms(20);
    if (batch_read(&b, NULL, NULL) == 0)
        ck_assert_int_eq(lag, 6);
    /* Then it succeeds: every record written once, in order, and committed. */
    wait_written(&b, 6, 15000);
    wait_committed(probe, 6, 5000);
    ck_assert_int_eq(b.failures, 3);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(b.written[i], values[i]);
    svc_consumer_free(c);
    rd_kafka_destroy(probe);
}
END_TEST

START_TEST(stop_flushes_the_staged_batch)
{
    static const char *const values[] = {"a", "b", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct batch b = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rd_kafka_t *probe = probe_new("g-batch-stop");
    struct svc_consumer *c;
    int64_t deadline;
    int nstaged = 0;

    produce_texts(&kcfg, values);
    /* Neither the size nor the age is reached before the stop. */
    c = batch_consumer(&kcfg, &b, "g-batch-stop", 100, 60000);
    deadline = svc_now_ms() + 15000;
    while ((batch_read(&b, &nstaged, NULL), nstaged) < 2 && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert_int_eq(nstaged, 2);
    ck_assert_int_eq(batch_read(&b, NULL, NULL), 0);
    svc_consumer_free(c);
    ck_assert_int_eq(b.nwritten, 2);
    ck_assert_int_eq(b.flushes, 1);
    wait_committed(probe, 2, 5000);
    rd_kafka_destroy(probe);
}
END_TEST

/* Group settings for a quick rebalance on the mock cluster. It waits 3 s for more members of
 * a new group, and session.timeout.ms - 1 s for the members of a running group to rejoin
 * (44 s by default); a member idle for session.timeout.ms is dropped, so 4 s is the shortest
 * session that outlasts the first wait. Frequent heartbeats tell a member of a rebalance at
 * once. */
static const char *const quick_group[] = {"session.timeout.ms", "4000", "heartbeat.interval.ms",
                                          "100", NULL};

/* Writes N records to each of TOPIC's NPARTS partitions, addressed by partition number. */
static void produce_to_partitions(const char *topic, int nparts, int n)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256], value[] = "x";
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_ptr_nonnull(rk);
    for (int p = 0; p < nparts; p++) {
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                                               RD_KAFKA_V_VALUE(value, 1),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             0);
    }
    ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);
}

/* What /metrics lists of kafka_consumer_lag for TOPIC: one bit per partition listed, and the
 * listed lags summed into *TOTAL. */
static unsigned lag_listed(const char *topic, double *total)
{
    struct svc_buf b = SVC_BUF_INIT;
    char prefix[128];
    unsigned listed = 0;
    const char *p;

    ck_assert_int_eq(svc_metrics_render(&b), 0);
    snprintf(prefix, sizeof(prefix), "\nkafka_consumer_lag{topic=\"%s\",partition=\"", topic);
    *total = 0;
    for (p = svc_buf_str(&b); (p = strstr(p, prefix)) != NULL;) {
        char *end;
        long part = strtol(p + strlen(prefix), &end, 10);

        ck_assert(part >= 0 && part < 32 && strncmp(end, "\"} ", 3) == 0);
        listed |= 1u << part;
        *total += strtod(end + 3, NULL);
        p = end;
    }
    svc_buf_release(&b);
    return listed;
}

START_TEST(revoked_partitions_leave_the_lag_gauge)
{
    static const char *const topics[] = {"t2", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .retries_left = 1000};
    struct svc_consumer_config cfg = {0};
    rd_kafka_topic_partition_list_t *theirs = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct svc_consumer *c;
    rd_kafka_t *other;
    char errstr[256];
    unsigned listed = 0, mine = 0;
    double total = 0;
    int64_t deadline;

    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "t2", 2, 1), 0);
    produce_to_partitions("t2", 2, 3);
    kcfg.extra = quick_group;
    cfg.kafka = &kcfg;
    cfg.group_id = "g-rebalance";
    cfg.topics = topics;
    cfg.handler = record_handler;
    cfg.arg = &s;
    ck_assert_int_eq(svc_consumer_new(&cfg, &c), 0);
    ck_assert_int_eq(svc_consumer_start(c), 0);

    /* Alone in the group it owns both partitions, and each one's first record keeps failing:
     * 3 records behind on each. */
    deadline = svc_now_ms() + 15000;
    while ((listed = lag_listed("t2", &total)) != 3u && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert_uint_eq(listed, 3u);
    ck_assert(total == 6.0);

    /* A second member joins (a plain client: it reports nothing to this registry) and the
     * group gives it one partition. That partition's lag is no longer this consumer's: it
     * leaves the page, and the total is the lag of the partition still owned. (Its 3 also
     * shows that the partition kept, paused for a retry before the rebalance, is fetched
     * again: its first record is held anew.) */
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "g-rebalance", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    for (size_t i = 0; quick_group[i] != NULL; i += 2)
        rd_kafka_conf_set(conf, quick_group[i], quick_group[i + 1], errstr, sizeof(errstr));
    other = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_ptr_nonnull(other);
    rd_kafka_poll_set_consumer(other);
    theirs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(theirs, "t2", RD_KAFKA_PARTITION_UA);
    ck_assert_int_eq(rd_kafka_subscribe(other, theirs), 0);
    rd_kafka_topic_partition_list_destroy(theirs);
    theirs = NULL;
    deadline = svc_now_ms() + 15000;
    while (svc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(other, 50);

        if (m != NULL)
            rd_kafka_message_destroy(m);
        if (theirs != NULL)
            rd_kafka_topic_partition_list_destroy(theirs);
        ck_assert_int_eq(rd_kafka_assignment(other, &theirs), 0);
        mine = theirs->cnt == 1 ? 3u & ~(1u << theirs->elems[0].partition) : 0;
        listed = lag_listed("t2", &total);
        if (mine != 0 && listed == mine && total == 3.0)
            break;
    }
    ck_assert_ptr_nonnull(theirs);
    ck_assert_int_eq(theirs->cnt, 1);
    ck_assert_uint_eq(listed, mine);
    ck_assert(total == 3.0);
    rd_kafka_topic_partition_list_destroy(theirs);

    /* A consumer that left the group reports no lag at all. */
    svc_consumer_free(c);
    ck_assert_uint_eq(lag_listed("t2", &total), 0);
    reader_free(other);
}
END_TEST

/* A consumer that starts where its group left off, with nothing new to read, reports a lag of
 * 0 at once: librdkafka has no position before a first record, so the lag comes from the
 * group's committed offset (before, the gauge listed nothing until a record arrived, and a
 * "caught up?" check could not tell a restarted consumer from one still assigning). */
START_TEST(restarted_consumer_reports_lag_before_a_record)
{
    static const char *const values[] = {"a", "b", "c", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct seen again = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rd_kafka_t *probe = probe_new("g-restart");
    struct svc_consumer *c;
    unsigned listed = 0;
    double total = -1;
    int64_t deadline;

    kcfg.extra = quick_group; /* the second member joins in seconds, not a session timeout */
    produce_texts(&kcfg, values);
    c = consumer_for(&kcfg, &s, "g-restart");
    wait_seen(&s, 3, 45000);
    wait_committed(probe, 3, 10000);
    svc_consumer_free(c);
    ck_assert_uint_eq(lag_listed("t", &total), 0);

    c = consumer_for(&kcfg, &again, "g-restart");
    deadline = svc_now_ms() + 15000;
    while ((listed = lag_listed("t", &total)) == 0 && svc_now_ms() < deadline)
        svc_sleep_ms(50);
    ck_assert_msg(listed == 1u, "lag partitions listed: %#x, expected partition 0", listed);
    ck_assert(total == 0.0);
    ck_assert_int_eq(seen_count(&again), 0);
    svc_consumer_free(c);
    rd_kafka_destroy(probe);
}
END_TEST

/* /readyz of a consumer: down while a record waits for its DLQ copy too long. */
START_TEST(consumer_dep_reports_a_record_stuck_on_its_dlq_copy)
{
    static const char *const topics[] = {"t", NULL};
    static const char *const values[] = {"bad", "good", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .poison_first = true};
    struct svc_consumer_config cfg = {0};
    struct svc_consumer *c;
    rd_kafka_resp_err_t refusals[40];
    char why[256] = "";
    int64_t deadline;
    bool up = true;

    svc_log_set_level(SVC_LOG_FATAL);
    produce_texts(&kcfg, values);
    /* Copies are refused for a while. */
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        refusals[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    rd_kafka_mock_push_request_errors_array(mock, API_PRODUCE,
                                            sizeof(refusals) / sizeof(refusals[0]), refusals);
    cfg.kafka = &kcfg;
    cfg.group_id = "g-stuck";
    cfg.topics = topics;
    cfg.handler = record_handler;
    cfg.arg = &s;
    cfg.retry_initial_ms = 100;
    cfg.retry_max_ms = 200;
    cfg.stuck_after_ms = 500; /* the mock refuses copies for a second or two */
    ck_assert_int_eq(svc_consumer_new(&cfg, &c), 0);
    ck_assert_int_eq(svc_consumer_start(c), 0);
    deadline = svc_now_ms() + 15000;
    while ((up = svc_dep_is_up(svc_consumer_dep(c), why, sizeof(why))) && svc_now_ms() < deadline)
        svc_sleep_ms(100);
    ck_assert_msg(!up, "the consumer stayed ready with a record stuck");
    ck_assert_msg(strstr(why, "DLQ copy") != NULL && strstr(why, "'t' [0] @0") != NULL, "%s", why);
    svc_consumer_free(c);
}
END_TEST

/* /readyz of a consumer: down once its group has given it no partition for a while (here: two
 * members, one partition). */
START_TEST(consumer_dep_reports_no_assignment)
{
    static const char *const topics[] = {"t3", NULL};
    struct svc_kafka_config kcfg = kafka_config();
    struct seen s1 = {.mu = PTHREAD_MUTEX_INITIALIZER}, s2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct svc_consumer_config cfg = {0};
    struct svc_consumer *c1, *c2;
    char why1[256] = "", why2[256] = "";
    int64_t deadline;
    bool up1 = true, up2 = true;

    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, "t3", 1, 1), 0);
    kcfg.extra = quick_group;
    cfg.kafka = &kcfg;
    cfg.group_id = "g-idle";
    cfg.topics = topics;
    cfg.handler = record_handler;
    cfg.unassigned_after_ms = 1500;
    cfg.arg = &s1;
    ck_assert_int_eq(svc_consumer_new(&cfg, &c1), 0);
    cfg.arg = &s2;
    ck_assert_int_eq(svc_consumer_new(&cfg, &c2), 0);
    /* Ready during the grace period, before any assignment. */
    ck_assert(svc_dep_is_up(svc_consumer_dep(c1), NULL, 0));
    ck_assert_int_eq(svc_consumer_start(c1), 0);
    ck_assert_int_eq(svc_consumer_start(c2), 0);
    deadline = svc_now_ms() + 20000;
    while (svc_now_ms() < deadline) {
        up1 = svc_dep_is_up(svc_consumer_dep(c1), why1, sizeof(why1));
        up2 = svc_dep_is_up(svc_consumer_dep(c2), why2, sizeof(why2));
        if (up1 != up2)
            break;
        svc_sleep_ms(100);
    }
    ck_assert_msg(up1 != up2, "one of two members of a one-partition group must be idle (%s / %s)",
                  why1, why2);
    ck_assert_msg(strstr(up1 ? why2 : why1, "no partition") != NULL, "%s", up1 ? why2 : why1);
    svc_consumer_free(c2);
    svc_consumer_free(c1);
}
END_TEST

START_TEST(consumer_refuses_incomplete_config)
{
    struct svc_kafka_config kcfg = kafka_config();
    struct svc_consumer_config cfg = {0};
    struct svc_consumer *c = (struct svc_consumer *)&c;

    svc_log_set_level(SVC_LOG_FATAL);
    cfg.kafka = &kcfg;
    cfg.group_id = "g";
    ck_assert_int_eq(svc_consumer_new(&cfg, &c), SVC_EINVAL);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(producer_refuses_bad_setting)
{
    static const char *const extra[] = {"no.such.property", "1", NULL};
    struct svc_kafka_config cfg = kafka_config();
    struct svc_producer *p = (struct svc_producer *)&p;

    svc_log_set_level(SVC_LOG_FATAL);
    cfg.extra = extra;
    ck_assert_int_eq(svc_producer_new(&cfg, &p), SVC_EINVAL);
    ck_assert_ptr_null(p);
    cfg.extra = NULL;
    cfg.brokers = "";
    ck_assert_int_eq(svc_producer_new(&cfg, &p), SVC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kafka");
    TCase *prod = tcase_create("producer");
    TCase *cons = tcase_create("consumer");

    tcase_add_checked_fixture(prod, mock_start, mock_stop);
    tcase_set_timeout(prod, 30);
    tcase_add_test(prod, delivery_reports_are_counted);
    tcase_add_test(prod, broker_down_is_unavailable_within_bounds);
    tcase_add_test(prod, queued_message_expires_as_unavailable);
    tcase_add_test(prod, produce_errors_are_retried);
    tcase_add_test(prod, producer_refuses_bad_setting);
    suite_add_tcase(s, prod);

    tcase_add_checked_fixture(cons, mock_start, mock_stop);
    tcase_set_timeout(cons, 120);
    tcase_add_test(cons, commit_only_after_done);
    tcase_add_test(cons, poison_goes_to_dlq_then_commits);
    tcase_add_test(cons, failed_dlq_copy_is_retried);
    tcase_add_test(cons, poison_too_big_for_the_dlq_goes_there_cut);
    tcase_add_test(cons, broker_errors_are_retried);
    tcase_add_test(cons, lag_is_exposed);
    tcase_add_test(cons, batch_is_committed_after_its_flush);
    tcase_add_test(cons, failing_flush_pauses_and_loses_nothing);
    tcase_add_test(cons, stop_flushes_the_staged_batch);
    tcase_add_test(cons, revoked_partitions_leave_the_lag_gauge);
    tcase_add_test(cons, restarted_consumer_reports_lag_before_a_record);
    tcase_add_test(cons, consumer_refuses_incomplete_config);
    tcase_add_test(cons, consumer_dep_reports_a_record_stuck_on_its_dlq_copy);
    tcase_add_test(cons, consumer_dep_reports_no_assignment);
    suite_add_tcase(s, cons);
    return testenv_run(s);
}

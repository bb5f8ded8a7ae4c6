/*
 * The outbox relay over an in-memory source, publishing to librdkafka's mock cluster (one
 * broker) whose broker is taken down and brought back.
 */
#include "svc/event.h"
#include "svc/outbox.h"

#include "svc/error.h"
#include "svc/log.h"
#include "svc/metrics.h"
#include "svc/time.h"
#include "svc/uuid.h"
#include "testenv.h"
#include "testkafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC      "o"
#define PARTITIONS 3
#define MAX_EVENTS 256

static rd_kafka_mock_cluster_t *mock;
static const char *brokers;

/* Runs in each test's own process (Check forks), before the test. */
static void mock_start(void)
{
    mock = testkafka_start();
    brokers = testkafka_brokers();
    testkafka_topic(TOPIC, PARTITIONS);
}

static void mock_stop(void)
{
    testkafka_stop();
}

/* ---- an in-memory outbox ------------------------------------------------------------------ */

struct mem_event {
    char id[SVC_UUID_STR_LEN + 1];
    char key[16];
    char value[64];
    int64_t created_ms;
    bool published;
};

struct mem_source {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct mem_event events[MAX_EVENTS];
    size_t n;
    struct svc_outbox_event batch[MAX_EVENTS];
    size_t marked, double_marks, releases;
    int fetch_failures; /* fail this many fetches first */
    bool notified;      /* for the wait hook */
    int waits;          /* calls of the wait hook */
};

static int mem_fetch(void *ctx, size_t max, struct svc_outbox_event **out)
{
    struct mem_source *s = ctx;
    size_t k = 0;

    pthread_mutex_lock(&s->mu);
    if (s->fetch_failures > 0) {
        s->fetch_failures--;
        pthread_mutex_unlock(&s->mu);
        return SVC_EUNAVAILABLE;
    }
    for (size_t i = 0; i < s->n && k < max; i++) {
        struct mem_event *e = &s->events[i];

        if (e->published)
            continue;
        s->batch[k] = (struct svc_outbox_event){
            e->id, TOPIC, e->key, strlen(e->key), e->value, strlen(e->value), e};
        k++;
    }
    pthread_mutex_unlock(&s->mu);
    *out = s->batch;
    return (int)k;
}

static int mem_mark(void *ctx, struct svc_outbox_event *const *events, size_t n)
{
    struct mem_source *s = ctx;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        struct mem_event *e = events[i]->handle;

        if (e->published)
            s->double_marks++;
        e->published = true;
        s->marked++;
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void mem_release(void *ctx, struct svc_outbox_event *events, size_t n)
{
    struct mem_source *s = ctx;

    (void)events;
    (void)n;
    pthread_mutex_lock(&s->mu);
    s->releases++;
    pthread_mutex_unlock(&s->mu);
}

static int mem_backlog(void *ctx, size_t *count, double *oldest_age_s)
{
    struct mem_source *s = ctx;
    int64_t oldest = 0;

    *count = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        if (s->events[i].published)
            continue;
        if (*count == 0)
            oldest = s->events[i].created_ms;
        (*count)++;
    }
    pthread_mutex_unlock(&s->mu);
    *oldest_age_s = *count > 0 ? (double)(svc_now_ms() - oldest) / 1000.0 : 0.0;
    return 0;
}

/* A wait hook as a LISTEN/NOTIFY source has one: returns at a notification or the timeout. */
static int mem_wait(void *ctx, int timeout_ms)
{
    struct mem_source *s = ctx;
    int64_t until = svc_now_ms() + timeout_ms;
    bool notified;

    pthread_mutex_lock(&s->mu);
    while (!s->notified)
        if (!svc_cond_wait_until(&s->cv, &s->mu, until))
            break;
    notified = s->notified;
    s->notified = false;
    s->waits++;
    pthread_mutex_unlock(&s->mu);
    return notified ? 1 : 0;
}

/* Adds N events spread over NKEYS keys, numbered per key from what each key already has. */
static void mem_add(struct mem_source *s, int n, int nkeys)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < n; i++) {
        struct mem_event *e = &s->events[s->n];
        int key = (int)(s->n % (size_t)nkeys);
        char id[SVC_UUID_STR_LEN + 1];

        ck_assert_uint_lt(s->n, MAX_EVENTS);
        svc_uuid_v4_str(id);
        memcpy(e->id, id, sizeof(id));
        snprintf(e->key, sizeof(e->key), "k%d", key);
        snprintf(e->value, sizeof(e->value), "%s|%zu", id, s->n);
        e->created_ms = svc_now_ms();
        e->published = false;
        s->n++;
    }
    s->notified = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static size_t mem_pending(struct mem_source *s)
{
    size_t count;
    double age;

    mem_backlog(s, &count, &age);
    return count;
}

static void mem_init(struct mem_source *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    svc_cond_init_monotonic(&s->cv);
}

static void mem_destroy(struct mem_source *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static struct svc_producer *producer_new(int message_timeout_ms, int unavailable_after_ms)
{
    struct svc_kafka_config cfg = {0};
    struct svc_producer *p;

    cfg.brokers = brokers;
    cfg.message_timeout_ms = message_timeout_ms;
    cfg.unavailable_after_ms = unavailable_after_ms;
    cfg.stats_interval_ms = 200;
    ck_assert_int_eq(svc_producer_new(&cfg, &p), 0);
    return p;
}

static struct svc_outbox_relay *relay_new(struct mem_source *s, struct svc_producer *p, int poll_ms,
                                          bool with_wait)
{
    struct svc_outbox_config cfg = {0};
    struct svc_outbox_relay *r;

    cfg.name = "test";
    cfg.producer = p;
    cfg.source.ctx = s;
    cfg.source.fetch = mem_fetch;
    cfg.source.mark_published = mem_mark;
    cfg.source.release = mem_release;
    cfg.source.backlog = mem_backlog;
    cfg.source.wait = with_wait ? mem_wait : NULL;
    cfg.batch_max = 16;
    cfg.poll_interval_ms = poll_ms;
    cfg.backoff_initial_ms = 50;
    cfg.backoff_max_ms = 400;
    ck_assert_int_eq(svc_outbox_relay_new(&cfg, &r), 0);
    ck_assert_int_eq(svc_outbox_relay_start(r), 0);
    return r;
}

static double gauge(const char *name)
{
    static const char *const labels[] = {"outbox", NULL};
    static const char *const values[] = {"test"};

    return svc_metric_value(svc_gauge_new(name, "", labels), values);
}

static double counter(const char *name)
{
    static const char *const labels[] = {"outbox", NULL};
    static const char *const values[] = {"test"};

    return svc_metric_value(svc_counter_new(name, "", labels), values);
}

static void wait_drained(struct mem_source *s, int timeout_ms)
{
    int64_t deadline = svc_now_ms() + timeout_ms;

    while (mem_pending(s) > 0 && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert_uint_eq(mem_pending(s), 0);
}

/*
 * Reads the whole topic and checks it against the source: every event at least once (exactly
 * once when EXACT), and each key's events in the order they were added.
 */
static void check_topic(struct mem_source *s, bool exact)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTITIONS);
    int copies[MAX_EVENTS] = {0};
    long last_seq[8];
    char errstr[256];
    size_t total = 0, distinct = 0;
    int64_t deadline;
    rd_kafka_t *rk;

    for (int i = 0; i < 8; i++)
        last_seq[i] = -1;
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_ptr_nonnull(rk);
    rd_kafka_poll_set_consumer(rk);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(l, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);

    /* Until every event was seen, then a little longer to catch extra copies. */
    deadline = svc_now_ms() + 15000;
    while (svc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        char value[64], key[16];
        const char *bar;
        long seq;
        int k;

        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            continue;
        }
        snprintf(value, sizeof(value), "%.*s", (int)m->len, (const char *)m->payload);
        snprintf(key, sizeof(key), "%.*s", (int)m->key_len, (const char *)m->key);
        {
            /* Every relayed event says what it is, as svc_producer_publish() does. */
            rd_kafka_headers_t *hdrs = NULL;
            const void *ct = NULL;
            size_t ct_len = 0;

            ck_assert_int_eq(rd_kafka_message_headers(m, &hdrs), RD_KAFKA_RESP_ERR_NO_ERROR);
            ck_assert_int_eq(rd_kafka_header_get_last(hdrs, "content-type", &ct, &ct_len),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
            ck_assert_int_eq((int)ct_len, (int)strlen(SVC_EVENT_CONTENT_TYPE));
            ck_assert(memcmp(ct, SVC_EVENT_CONTENT_TYPE, ct_len) == 0);
        }
        rd_kafka_message_destroy(m);
        bar = strchr(value, '|');
        ck_assert_ptr_nonnull(bar);
        seq = strtol(bar + 1, NULL, 10);
        ck_assert_int_lt(seq, (long)s->n);
        ck_assert_str_eq(key, s->events[seq].key);
        ck_assert_int_eq(strncmp(value, s->events[seq].id, SVC_UUID_STR_LEN), 0);
        k = (int)strtol(key + 1, NULL, 10);
        /* Within a key (one partition) sequence numbers only grow, except that an event sent
         * again after a failure may repeat what came after it: never go below a first copy. */
        if (copies[seq] == 0)
            ck_assert_msg(seq > last_seq[k], "key %s: event %ld after %ld", key, seq, last_seq[k]);
        if (seq > last_seq[k])
            last_seq[k] = seq;
        if (copies[seq]++ == 0)
            distinct++;
        total++;
        if (distinct == s->n && deadline > svc_now_ms() + 500)
            deadline = svc_now_ms() + 500;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    ck_assert_uint_eq(distinct, s->n);
    if (exact)
        ck_assert_uint_eq(total, s->n);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST(publishes_everything_once_in_key_order)
{
    struct svc_producer *p = producer_new(10000, 2000);
    struct svc_outbox_relay *r;
    struct mem_source s;

    mem_init(&s);
    mem_add(&s, 40, 5);
    r = relay_new(&s, p, 200, false);
    wait_drained(&s, 15000);
    /* More while it runs, woken at once. */
    mem_add(&s, 40, 5);
    svc_outbox_relay_wake(r);
    wait_drained(&s, 15000);
    svc_outbox_relay_free(r);

    ck_assert_uint_eq(s.marked, 80);
    ck_assert_uint_eq(s.double_marks, 0);
    ck_assert(counter("outbox_published_total") == 80.0);
    ck_assert(counter("outbox_publish_failures_total") == 0.0);
    ck_assert(gauge("outbox_backlog") == 0.0);
    ck_assert(gauge("outbox_oldest_age_seconds") == 0.0);
    check_topic(&s, true);
    svc_producer_free(p);
    mem_destroy(&s);
}
END_TEST

START_TEST(broker_down_holds_events_back)
{
    struct svc_producer *p = producer_new(3000, 300);
    struct svc_outbox_relay *r;
    struct mem_source s;
    int64_t deadline;

    mem_init(&s);
    mem_add(&s, 4, 2);
    r = relay_new(&s, p, 100, false);
    wait_drained(&s, 15000);

    rd_kafka_mock_broker_set_down(mock, 1);
    deadline = svc_now_ms() + 5000;
    while (svc_producer_available(p) && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert(!svc_producer_available(p));

    /* Pending while the broker is down: nothing is marked, the backlog stays and ages. */
    mem_add(&s, 20, 4);
    svc_outbox_relay_wake(r);
    svc_sleep_ms(1500);
    ck_assert_uint_eq(s.marked, 4);
    ck_assert_uint_eq(mem_pending(&s), 20);
    ck_assert(gauge("outbox_backlog") == 20.0);
    ck_assert(gauge("outbox_oldest_age_seconds") > 0.5);

    /* The broker is back: everything drains. */
    rd_kafka_mock_broker_set_up(mock, 1);
    wait_drained(&s, 20000);
    deadline = svc_now_ms() + 3000;
    while (gauge("outbox_backlog") != 0.0 && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert(gauge("outbox_backlog") == 0.0);
    svc_outbox_relay_free(r);
    ck_assert_uint_eq(s.double_marks, 0);
    check_topic(&s, true);
    svc_producer_free(p);
    mem_destroy(&s);
}
END_TEST

START_TEST(unacknowledged_events_are_not_marked)
{
    /* The producer keeps accepting while the broker is down, so the relay's messages are
     * queued and expire unacknowledged. */
    struct svc_producer *p = producer_new(1000, 60000);
    struct svc_outbox_relay *r;
    struct mem_source s;

    mem_init(&s);
    mem_add(&s, 3, 3);
    r = relay_new(&s, p, 100, false);
    wait_drained(&s, 15000);

    rd_kafka_mock_broker_set_down(mock, 1);
    svc_sleep_ms(200);
    mem_add(&s, 6, 3);
    svc_outbox_relay_wake(r);
    svc_sleep_ms(2500);
    ck_assert_uint_eq(s.marked, 3);
    ck_assert_uint_eq(mem_pending(&s), 6);
    ck_assert(counter("outbox_publish_failures_total") >= 6.0);

    rd_kafka_mock_broker_set_up(mock, 1);
    wait_drained(&s, 20000);
    svc_outbox_relay_free(r);
    ck_assert_uint_eq(s.double_marks, 0);
    check_topic(&s, false);
    svc_producer_free(p);
    mem_destroy(&s);
}
END_TEST

/* Issue 15: outbox_backlog read 0 for 9 s while 1,000 events piled up behind a batch that
 * waited for a broker that had gone away. */
START_TEST(backlog_is_fresh_while_a_batch_waits_for_the_broker)
{
    /* The producer keeps accepting while the broker is down: the batch waits 10 s. */
    struct svc_producer *p = producer_new(10000, 60000);
    struct svc_outbox_relay *r;
    struct mem_source s;
    int64_t deadline;

    mem_init(&s);
    mem_add(&s, 2, 2);
    r = relay_new(&s, p, 200, false);
    wait_drained(&s, 15000);
    deadline = svc_now_ms() + 3000;
    while (gauge("outbox_backlog") != 0.0 && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert(gauge("outbox_backlog") == 0.0);

    rd_kafka_mock_broker_set_down(mock, 1);
    svc_sleep_ms(200);
    mem_add(&s, 6, 3);
    svc_outbox_relay_wake(r);
    svc_sleep_ms(300); /* the relay has taken the 6 and waits for their acknowledgements */
    mem_add(&s, 100, 4);

    /* Within a few poll intervals, not when the batch is over. */
    deadline = svc_now_ms() + 1500;
    while (gauge("outbox_backlog") != 106.0 && svc_now_ms() < deadline)
        svc_sleep_ms(20);
    ck_assert_msg(gauge("outbox_backlog") == 106.0, "outbox_backlog %g with 106 pending",
                  gauge("outbox_backlog"));
    ck_assert(gauge("outbox_oldest_age_seconds") > 0.0);
    ck_assert_uint_eq(s.marked, 2);

    rd_kafka_mock_broker_set_up(mock, 1);
    wait_drained(&s, 25000);
    svc_outbox_relay_free(r);
    ck_assert_uint_eq(s.double_marks, 0);
    check_topic(&s, false);
    svc_producer_free(p);
    mem_destroy(&s);
}
END_TEST

START_TEST(wake_ups_beat_the_poll_interval)
{
    struct svc_producer *p = producer_new(10000, 2000);
    struct svc_outbox_relay *r;
    struct mem_source s;
    int64_t start;
    int waits;

    mem_init(&s);
    mem_add(&s, 1, 1);
    /* Polling every 20 s: only the source's notification can make the relay look sooner. */
    r = relay_new(&s, p, 20000, true);
    wait_drained(&s, 15000);
    svc_sleep_ms(200); /* the relay is waiting in the hook now */
    start = svc_now_ms();
    mem_add(&s, 1, 1);
    wait_drained(&s, 5000);
    ck_assert_int_lt(svc_now_ms() - start, 3000);
    /* The relay thread is still counting: read under its lock (ThreadSanitizer). */
    pthread_mutex_lock(&s.mu);
    waits = s.waits;
    pthread_mutex_unlock(&s.mu);
    ck_assert_int_gt(waits, 0);
    /* Nor does the 20 s interval hold up a stop. */
    start = svc_now_ms();
    svc_outbox_relay_free(r);
    ck_assert_int_lt(svc_now_ms() - start, 3000); /* one 1 s slice of the hook, plus margin */
    check_topic(&s, true);
    svc_producer_free(p);
    mem_destroy(&s);
}
END_TEST

START_TEST(source_errors_back_off_and_recover)
{
    struct svc_producer *p = producer_new(10000, 2000);
    struct svc_outbox_relay *r;
    struct mem_source s;

    svc_log_set_level(SVC_LOG_FATAL);
    mem_init(&s);
    s.fetch_failures = 3;
    mem_add(&s, 5, 2);
    r = relay_new(&s, p, 100, false);
    wait_drained(&s, 15000);
    svc_outbox_relay_free(r);
    ck_assert_int_eq(s.fetch_failures, 0);
    ck_assert_uint_eq(s.marked, 5);
    check_topic(&s, true);
    svc_producer_free(p);
    mem_destroy(&s);
}
END_TEST

START_TEST(relay_refuses_incomplete_config)
{
    struct svc_outbox_config cfg = {0};
    struct svc_outbox_relay *r = (struct svc_outbox_relay *)&r;

    svc_log_set_level(SVC_LOG_FATAL);
    cfg.name = "x";
    ck_assert_int_eq(svc_outbox_relay_new(&cfg, &r), SVC_EINVAL);
    ck_assert_ptr_null(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outbox");
    TCase *tc = tcase_create("relay");

    tcase_add_checked_fixture(tc, mock_start, mock_stop);
    tcase_set_timeout(tc, 45);
    tcase_add_test(tc, publishes_everything_once_in_key_order);
    tcase_add_test(tc, broker_down_holds_events_back);
    tcase_add_test(tc, unacknowledged_events_are_not_marked);
    tcase_add_test(tc, backlog_is_fresh_while_a_batch_waits_for_the_broker);
    tcase_add_test(tc, wake_ups_beat_the_poll_interval);
    tcase_add_test(tc, source_errors_back_off_and_recover);
    tcase_add_test(tc, relay_refuses_incomplete_config);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

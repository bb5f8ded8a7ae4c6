/*
 * Kafka, as every service reaches it: librdkafka, an idempotent producer with acks=all, and a
 * consumer group reading back what was produced, in order, with the key kept.
 */
#include "testenv.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_MESSAGES = 5 };

static const char *brokers(void)
{
    const char *b = testenv_get("user-svc", "KAFKA_BROKERS");
    char url[256];

    snprintf(url, sizeof(url), "kafka://%s", b);
    testenv_require_port("kafka", testenv_port_of_url(url));
    return b;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[256];

    ck_assert_msg(rd_kafka_conf_set(conf, k, v, err, sizeof(err)) == RD_KAFKA_CONF_OK,
                  "kafka config %s=%s: %s", k, v, err);
}

static void create_topic(const char *bootstrap, const char *topic)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **results;
    size_t n;

    set(conf, "bootstrap.servers", bootstrap);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "kafka admin client: %s", err);
    nt = rd_kafka_NewTopic_new(topic, 1, 1, err, sizeof(err));
    ck_assert_msg(nt != NULL, "NewTopic: %s", err);
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    ck_assert_msg(ev != NULL, "kafka: CreateTopics '%s' got no answer in 30 s", topic);
    ck_assert_msg(rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR, "CreateTopics: %s",
                  rd_kafka_event_error_string(ev));
    res = rd_kafka_event_CreateTopics_result(ev);
    results = rd_kafka_CreateTopics_result_topics(res, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_msg(rd_kafka_topic_result_error(results[0]) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  "creating topic '%s': %s", topic, rd_kafka_topic_result_error_string(results[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

static int delivered_ok;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        delivered_ok++;
}

START_TEST(produce_then_consume_in_a_group)
{
    const char *bootstrap = brokers();
    const char *topic = testenv_unique("it-kafka");
    const char *group = testenv_unique("it-group");
    char err[256], value[64];
    rd_kafka_conf_t *conf;
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_partition_list_t *subs;
    int got = 0;

    create_topic(bootstrap, topic);

    conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "enable.idempotence", "true");
    set(conf, "acks", "all");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(producer != NULL, "producer: %s", err);
    for (int i = 0; i < N_MESSAGES; i++) {
        snprintf(value, sizeof(value), "{\"seq\":%d}", i);
        ck_assert_int_eq(
            rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("user-1", 6),
                              RD_KAFKA_V_VALUE(value, strlen(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ck_assert_int_eq(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(delivered_ok, N_MESSAGES);
    rd_kafka_destroy(producer);

    conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", group);
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(consumer != NULL, "consumer: %s", err);
    rd_kafka_poll_set_consumer(consumer);
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    ck_assert_int_eq(rd_kafka_subscribe(consumer, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);

    /* Bounded: 60 polls of up to one second each. */
    for (int polls = 0; polls < 60 && got < N_MESSAGES; polls++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 1000);

        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(value, sizeof(value), "{\"seq\":%d}", got);
            ck_assert_uint_eq(m->len, strlen(value));
            ck_assert(memcmp(m->payload, value, m->len) == 0);
            ck_assert_uint_eq(m->key_len, 6);
            ck_assert(memcmp(m->key, "user-1", 6) == 0);
            got++;
            ck_assert_int_eq(rd_kafka_commit_message(consumer, m, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ck_abort_msg("consumer: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    ck_assert_msg(got == N_MESSAGES, "consumed %d of %d messages from '%s'", got, N_MESSAGES,
                  topic);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
}
END_TEST

/* Reads deploy/topics.conf: NAMES[i] with PARTS[i]. */
static int declared_topics(char names[][128], int *parts, int max)
{
    FILE *f = fopen(POLYGLOT_TOPICS_CONF, "r");
    char line[120];
    int n = 0;

    ck_assert_msg(f != NULL, "%s not readable", POLYGLOT_TOPICS_CONF);
    while (fgets(line, sizeof(line), f) != NULL && n < max) {
        char *end;

        if (line[0] < 'a' || line[0] > 'z')
            continue;
        end = strpbrk(line, " \t");
        ck_assert_msg(end != NULL, "topics.conf line '%s' has no partitions", line);
        *end = '\0';
        snprintf(names[n], 128, "%s", line);
        parts[n] = (int)strtol(end + 1, NULL, 10);
        n++;
    }
    fclose(f);
    return n;
}

static int partitions_of(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
            return md->topics[i].partition_cnt;
    return 0;
}

/* `make up` created every declared topic and its .dlq; the broker creates no other. */
START_TEST(declared_topics_exist_and_no_other_is_created)
{
    char names[32][128], dlq[160], err[256];
    int parts[32], n = declared_topics(names, parts, 32);
    const char *typo = testenv_unique("user-event");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk;
    rd_kafka_resp_err_t e;

    ck_assert_int_ge(n, 3);
    set(conf, "bootstrap.servers", brokers());
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "kafka client: %s", err);
    ck_assert_int_eq(rd_kafka_metadata(rk, 1, NULL, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < n; i++) {
        snprintf(dlq, sizeof(dlq), "%s.dlq", names[i]);
        ck_assert_msg(partitions_of(md, names[i]) == parts[i],
                      "topic '%s': %d partitions, %d declared", names[i],
                      partitions_of(md, names[i]), parts[i]);
        ck_assert_msg(partitions_of(md, dlq) == 1, "topic '%s' missing", dlq);
    }
    rd_kafka_metadata_destroy(md);

    /* Asking for a misspelt topic does not create it. */
    rkt = rd_kafka_topic_new(rk, typo, NULL);
    e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ck_assert_int_eq(md->topic_cnt, 1);
        ck_assert_msg(md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                      "topic '%s': %s", typo, rd_kafka_err2str(md->topics[0].err));
        rd_kafka_metadata_destroy(md);
    }
    ck_assert_int_eq(rd_kafka_metadata(rk, 1, NULL, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(partitions_of(md, typo), 0);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc = tcase_create("broker");

    tcase_add_test(tc, produce_then_consume_in_a_group);
    tcase_add_test(tc, declared_topics_exist_and_no_other_is_created);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

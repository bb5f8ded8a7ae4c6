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

int main(void)
{
    Suite *s = suite_create("kafka");
    TCase *tc = tcase_create("broker");

    tcase_add_test(tc, produce_then_consume_in_a_group);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

/* testconsume: see testconsume.h. */
#include "testconsume.h"

#include "testenv.h"

#include "svc/event.h"
#include "svc/time.h"

#include <check.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[256];

    ck_assert_msg(rd_kafka_conf_set(conf, k, v, err, sizeof(err)) == RD_KAFKA_CONF_OK,
                  "kafka config %s=%s: %s", k, v, err);
}

static void keep(struct testconsumed *out, const struct svc_event *ev, const rd_kafka_message_t *m)
{
    struct testseen *s;

    if (out->n == out->cap) {
        out->cap = out->cap == 0 ? 256 : out->cap * 2;
        out->v = realloc(out->v, out->cap * sizeof(*out->v));
        ck_assert_ptr_nonnull(out->v);
    }
    s = &out->v[out->n++];
    snprintf(s->subject, sizeof(s->subject), "%s", ev->subject);
    snprintf(s->id, sizeof(s->id), "%s", ev->id);
    snprintf(s->type, sizeof(s->type), "%s", ev->type);
    s->payload = strndup(m->payload, m->len);
    ck_assert_ptr_nonnull(s->payload);
}

void testconsume(const char *brokers, const char *topic, int64_t since_ms, testconsume_want_fn want,
                 testconsume_done_fn done, void *arg, int timeout_s, struct testconsumed *out)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_topic_t *t;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts;
    int64_t deadline = svc_now_ms() + (int64_t)timeout_s * 1000;
    rd_kafka_resp_err_t e;

    memset(out, 0, sizeof(*out));
    set(conf, "bootstrap.servers", brokers);
    set(conf, "group.id", testenv_unique("it-consume"));
    set(conf, "enable.auto.commit", "false");
    set(conf, "auto.offset.reset", "earliest");
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "kafka consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);
    t = rd_kafka_topic_new(rk, topic, NULL);
    /* On a fresh broker the topic exists only once its producer's first event created it:
     * wait for it (within the test's deadline) rather than fail on a relay still starting. */
    for (;;) {
        e = rd_kafka_metadata(rk, 0, t, &md, 10000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
            md->topics[0].partition_cnt > 0)
            break;
        ck_assert_msg(svc_now_ms() < deadline, "kafka: no metadata for topic '%s': %s", topic,
                      e != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(e)
                      : md->topic_cnt == 1            ? rd_kafka_err2str(md->topics[0].err)
                                                      : "not in the answer");
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        svc_sleep_ms(250);
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            since_ms;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    /* A topic created a moment ago may not have its leaders yet: asked again until it does. */
    for (;;) {
        e = rd_kafka_offsets_for_times(rk, parts, 10000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        ck_assert_msg(svc_now_ms() < deadline && (e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                                                  e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                                                  e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                                                  e == RD_KAFKA_RESP_ERR__TIMED_OUT),
                      "kafka: offsets for times: %s", rd_kafka_err2str(e));
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = since_ms;
        svc_sleep_ms(250);
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_END; /* nothing newer yet */
    ck_assert_int_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    while (!done(out, arg) && svc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        struct svc_event *ev = NULL;
        char perr[SVC_EVENT_ERR_MAX];

        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ck_assert_msg(m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF, "kafka consumer: %s",
                          rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        ck_assert_msg(svc_event_parse(m->payload, m->len, &ev, perr, sizeof(perr)) == 0,
                      "a message on %s is not a CloudEvent: %s", topic, perr);
        ck_assert_msg(m->key_len == strlen(ev->subject) &&
                          memcmp(m->key, ev->subject, m->key_len) == 0,
                      "event '%s': the Kafka key is not the subject", ev->id);
        if (want(ev->subject, arg))
            keep(out, ev, m);
        svc_event_free(ev);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

bool testconsume_has(const struct testconsumed *c, size_t before, const char *id)
{
    for (size_t i = 0; i < before && i < c->n; i++)
        if (strcmp(c->v[i].id, id) == 0)
            return true;
    return false;
}

void testconsume_release(struct testconsumed *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].payload);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

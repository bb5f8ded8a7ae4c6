/*
 * Issue 15, failure 4: an event whose DLQ copy could not be written stalled its partition for
 * ever. Replayed against the local stack (`make up`) as it happened:
 *
 *   a 1,000,101-byte malformed record produced to every partition of user-events (by a
 *   producer whose message.max.bytes allows it; the broker takes up to ~1 MiB)
 *   then 24 registrations through user-svc      -> every user's welcome message is in
 *                                                  message-svc within 30 s of the last one
 *   user-events.dlq                              -> message-svc's copy of each poison record,
 *                                                  cut: its first 64 KiB, headers dlq-truncated,
 *                                                  dlq-original-size, dlq-sha256 (of the whole
 *                                                  value), dlq-partition and dlq-offset
 *
 * 24 random user ids reach all 3 partitions but with probability 3 * (2/3)^24 (2e-4).
 * Covers lib's cut DLQ copy (commit 6ec14c2, write_dlq_cut in lib/src/kafka.c): before it the
 * consumer retried the whole copy every 5 s for ever (librdkafka refuses messages over
 * 1,000,000 bytes) and the registrations behind it never got their welcome.
 *
 * Every consumer of user-events in the stack gets the poison, so a stack whose consumers were
 * built before that fix would stall for good: the test checks first that each one running
 * carries the fix (its binary holds the header name "dlq-truncated") and refuses to poison the
 * stack otherwise, saying what to rebuild.
 */
#include "flow.h"
#include "testenv.h"

#include "svc/idem.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POISON_SIZE      1000101
#define CUT_SIZE         ((size_t)64 * 1024)
#define USERS            24
#define WELCOME_BOUND_MS 30000
#define MAX_PARTITIONS   16

static const char *const consumers[] = {"message-svc", "cart-svc", "analytics-svc", NULL};

struct poison {
    char key[96];
    char *value;
    char sha256[65];
    int partitions;
    int64_t offset[MAX_PARTITIONS];
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct poison *p = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0 && m->partition < MAX_PARTITIONS)
        p->offset[m->partition] = m->offset;
    else
        fprintf(stderr, "poison to partition %d: %s\n", (int)m->partition,
                rd_kafka_err2str(m->err));
}

static rd_kafka_conf_t *conf_for(const char *brokers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    return conf;
}

/* One poison record on each partition of user-events, keeping their offsets. */
static void produce_poison(const char *brokers, struct poison *p)
{
    rd_kafka_conf_t *conf = conf_for(brokers);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t;
    rd_kafka_t *rk;
    char err[256], marker[SVC_UUID_STR_LEN + 1];
    uint8_t sum[32];
    size_t n;

    svc_uuid_v4_str(marker);
    snprintf(p->key, sizeof(p->key), "reliability-poison-%s", marker);
    p->value = malloc(POISON_SIZE);
    ck_assert_ptr_nonnull(p->value);
    memset(p->value, 'x', POISON_SIZE);
    n = (size_t)snprintf(p->value, 128, "not a CloudEvent, 1,000,101 bytes: %s ", marker);
    p->value[n] = 'x'; /* snprintf's NUL */
    svc_sha256(p->value, POISON_SIZE, sum);
    for (int i = 0; i < 32; i++)
        snprintf(p->sha256 + (size_t)i * 2, 3, "%02x", sum[i]);
    for (int i = 0; i < MAX_PARTITIONS; i++)
        p->offset[i] = -1;

    /* What the attacker had: a client limit above the record (librdkafka's default is
     * 1,000,000), acknowledged by every replica. */
    ck_assert_int_eq(rd_kafka_conf_set(conf, "message.max.bytes", "2000000", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "producer: %s", err);
    t = rd_kafka_topic_new(rk, "user-events", NULL);
    ck_assert_int_eq(rd_kafka_metadata(rk, 0, t, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(md->topic_cnt, 1);
    p->partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    ck_assert_msg(p->partitions > 0 && p->partitions <= MAX_PARTITIONS,
                  "user-events: %d partitions", p->partitions);
    for (int i = 0; i < p->partitions; i++)
        ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_RKT(t), RD_KAFKA_V_PARTITION(i),
                                           RD_KAFKA_V_KEY(p->key, strlen(p->key)),
                                           RD_KAFKA_V_VALUE(p->value, POISON_SIZE), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_flush(rk, 30000);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    for (int i = 0; i < p->partitions; i++)
        ck_assert_msg(p->offset[i] >= 0, "the poison record for partition %d was not acknowledged",
                      i);
    fprintf(stderr, "poison: %d records of %d bytes, key %s\n", p->partitions, POISON_SIZE, p->key);
}

/* The value of header NAME of M as a string in OUT (empty when absent). */
static const char *header(const rd_kafka_message_t *m, const char *name, char *out, size_t cap)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;

    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v != NULL)
        snprintf(out, cap, "%.*s", (int)n, (const char *)v);
    return out;
}

/* Reads user-events.dlq from SINCE_MS on until message-svc's copy of every poison record has been
 * checked, or 30 s have passed. */
static void check_dlq(const char *brokers, const struct poison *p, int64_t since_ms)
{
    rd_kafka_conf_t *conf = conf_for(brokers);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(MAX_PARTITIONS);
    const struct rd_kafka_metadata *md = NULL;
    bool seen[MAX_PARTITIONS] = {false};
    int found = 0, others = 0, dlq_parts;
    int64_t deadline = svc_now_ms() + 30000;
    rd_kafka_t *rk;
    rd_kafka_topic_t *t;
    char err[256];

    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "group.id", testenv_unique("reliability-dlq"), err, sizeof(err)),
        RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "consumer: %s", err);
    t = rd_kafka_topic_new(rk, "user-events.dlq", NULL);
    ck_assert_int_eq(rd_kafka_metadata(rk, 0, t, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    dlq_parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    ck_assert_msg(dlq_parts > 0, "user-events.dlq has no partition");
    for (int i = 0; i < dlq_parts; i++)
        rd_kafka_topic_partition_list_add(tp, "user-events.dlq", i)->offset = since_ms;
    ck_assert_int_eq(rd_kafka_offsets_for_times(rk, tp, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_assign(rk, tp), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(tp);

    while (found < p->partitions && svc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        char group[64], v[128];
        long part, off;

        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR || m->key_len != strlen(p->key) ||
            memcmp(m->key, p->key, m->key_len) != 0) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (strcmp(header(m, "dlq-group", group, sizeof(group)), "message-svc") != 0) {
            others++; /* another consumer of user-events (cart-svc, analytics-svc) */
            rd_kafka_message_destroy(m);
            continue;
        }
        part = strtol(header(m, "dlq-partition", v, sizeof(v)), NULL, 10);
        ck_assert_msg(part >= 0 && part < p->partitions && !seen[part],
                      "message-svc's DLQ copy names partition '%s'", v);
        off = strtol(header(m, "dlq-offset", v, sizeof(v)), NULL, 10);
        ck_assert_msg(off == p->offset[part], "DLQ copy of partition %ld: dlq-offset %s, want %lld",
                      part, v, (long long)p->offset[part]);
        ck_assert_str_eq(header(m, "dlq-source-topic", v, sizeof(v)), "user-events");
        ck_assert_str_eq(header(m, "dlq-truncated", v, sizeof(v)), "true");
        ck_assert_str_eq(header(m, "dlq-original-size", v, sizeof(v)), "1000101");
        ck_assert_str_eq(header(m, "dlq-sha256", v, sizeof(v)), p->sha256);
        ck_assert_msg(m->len == CUT_SIZE, "the DLQ copy holds %zu bytes, want %zu", m->len,
                      CUT_SIZE);
        ck_assert_msg(memcmp(m->payload, p->value, CUT_SIZE) == 0,
                      "the DLQ copy is not the record's first %zu bytes", CUT_SIZE);
        fprintf(stderr, "dlq: partition %ld offset %ld cut to %zu bytes, reason '%s'\n", part, off,
                m->len, header(m, "dlq-reason", v, sizeof(v)));
        seen[part] = true;
        found++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr, "dlq: %d copies by message-svc, %d by other consumers\n", found, others);
    ck_assert_msg(found == p->partitions, "message-svc's DLQ holds %d of the %d cut copies", found,
                  p->partitions);
}

START_TEST(poison_event_stalls_nothing)
{
    const char *brokers = testenv_get("message-svc", "KAFKA_BROKERS");
    char ids[USERS][64];
    struct poison p = {0};
    int64_t since, deadline, slowest = 0, registered;

    flow_urls();
    for (int i = 0; consumers[i] != NULL; i++) {
        pid_t pid = flow_stack_pid(consumers[i]);

        ck_assert_msg(i > 0 || pid > 0, "the stack's message-svc is not running (make up)");
        ck_assert_msg(pid == 0 || flow_exe_has(pid, "dlq-truncated"),
                      "the stack's %s (pid %d) was built before the cut DLQ copy (commit "
                      "6ec14c2): a 1 MB poison record would stall its partitions for ever. "
                      "Rebuild (make stack-build), restart it, then run this test",
                      consumers[i], (int)pid);
    }
    flow_catch_up(120000);
    since = svc_now_ms() - 1000;
    produce_poison(brokers, &p);
    for (int i = 0; i < USERS; i++) {
        char name[32];

        snprintf(name, sizeof(name), "Poisoned %d", i);
        flow_register(name, ids[i]);
    }
    registered = svc_now_ms();
    deadline = registered + WELCOME_BOUND_MS;
    for (int i = 0; i < USERS; i++) {
        int64_t at = flow_wait_welcome(ids[i], deadline) - registered;

        slowest = at > slowest ? at : slowest;
        ck_assert_int_eq(flow_welcomes(ids[i]), 1);
    }
    fprintf(stderr, "welcomes: all %d within %lld ms of the last registration\n", USERS,
            (long long)slowest);
    check_dlq(brokers, &p, since);
    free(p.value);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reliability_poison");
    TCase *tc = tcase_create("poison");

    /* The catch-up (at most 120 s), the poison, 30 s for the welcomes, 30 s for the DLQ. */
    tcase_set_timeout(tc, 220);
    tcase_add_test(tc, poison_event_stalls_nothing);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

#include "testkafka.h"

#include "svc/log.h"

#include <check.h>
#include <stddef.h>

static rd_kafka_t *rk;
static rd_kafka_mock_cluster_t *mock;

rd_kafka_mock_cluster_t *testkafka_start(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    svc_log_set_level(SVC_LOG_ERROR);
    /* The cluster needs a handle of its own; it never connects anywhere. */
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "mock cluster handle: %s", errstr);
    mock = rd_kafka_mock_cluster_new(rk, 1);
    ck_assert_ptr_nonnull(mock);
    return mock;
}

const char *testkafka_brokers(void)
{
    return rd_kafka_mock_cluster_bootstraps(mock);
}

void testkafka_topic(const char *topic, int partitions)
{
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, topic, partitions, 1), 0);
}

void testkafka_stop(void)
{
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(rk);
    mock = NULL;
    rk = NULL;
}

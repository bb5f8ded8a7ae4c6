/*
 * testkafka: librdkafka's mock cluster for `unit` tests of Kafka code (no broker needed).
 * Check forks each test, so each test process has at most one cluster: start it in a checked
 * fixture and stop it in the same fixture's teardown.
 */
#ifndef POLYGLOT_TESTKAFKA_H
#define POLYGLOT_TESTKAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/*
 * Starts a mock cluster of one broker (broker id 1) and turns lib's log down to errors (the
 * tests break the broker on purpose). Returns the cluster, for error injection
 * (rd_kafka_mock_broker_set_down(), rd_kafka_mock_push_request_errors()); owned by testkafka
 * until testkafka_stop(). Fails the test when the cluster cannot start.
 */
rd_kafka_mock_cluster_t *testkafka_start(void);

/* The cluster's bootstrap.servers; valid until testkafka_stop(). */
const char *testkafka_brokers(void);

/* Creates TOPIC with PARTITIONS partitions (replication 1); fails the test otherwise. */
void testkafka_topic(const char *topic, int partitions);

void testkafka_stop(void);

#endif

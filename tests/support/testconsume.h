/*
 * testconsume: reading what a service published to a Kafka topic of the local broker, as a
 * consumer would, from a point in time on (so the topic's history does not matter). Every
 * message must be a valid CloudEvent whose Kafka key is its subject.
 */
#ifndef POLYGLOT_TESTCONSUME_H
#define POLYGLOT_TESTCONSUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct testseen {
    char subject[128];
    char id[37];
    char type[64];
    char *payload; /* the envelope, NUL-terminated */
};

struct testconsumed {
    struct testseen *v;
    size_t n, cap;
};

/* Whether the events consumed so far are all the test waits for. */
typedef bool (*testconsume_done_fn)(const struct testconsumed *c, void *arg);
/* Whether an event about SUBJECT concerns the test. */
typedef bool (*testconsume_want_fn)(const char *subject, void *arg);

/*
 * Reads TOPIC on BROKERS from the first message of each partition produced at or after
 * SINCE_MS, keeping the events WANT picks, until DONE says so or TIMEOUT_S have passed. OUT is
 * overwritten; release it with testconsume_release().
 */
void testconsume(const char *brokers, const char *topic, int64_t since_ms, testconsume_want_fn want,
                 testconsume_done_fn done, void *arg, int timeout_s, struct testconsumed *out);

/* Whether event id ID is among the first BEFORE events of C. */
bool testconsume_has(const struct testconsumed *c, size_t before, const char *id);

void testconsume_release(struct testconsumed *c);

#endif

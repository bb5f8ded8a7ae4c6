/*
 * an_produce: the producing side of bench/analytics_svc. It sends the events of an eventgen
 * NDJSON file (one CloudEvent a line) to Kafka as their owners publish them: each on the topic
 * of its source (/user-svc -> PREFIX + "user-events", /product-svc -> "product-events",
 * /cart-svc -> "cart-events"), keyed by its subject, with the content-type header of lib's
 * producers:
 *
 *   an_produce BROKERS PREFIX EVENTS_FILE RATE [SENT_FILE]
 *
 * RATE 0 sends them as fast as librdkafka takes them and waits for every acknowledgement;
 * RATE > 0 sends one every 1/RATE s on a fixed schedule (event i at start + i / RATE, so a late
 * send does not shift the ones after it), and writes the wall-clock time at which each was
 * handed to librdkafka, in ms since the epoch with microseconds, one a line in sending order,
 * to SENT_FILE. librdkafka waits at most 1 ms to fill a batch (linger.ms), so the producer adds
 * little to what the benchmark measures.
 *
 * On success it prints one line on stdout:
 *
 *   events N seconds S rate R
 *
 * Exit status 1 on a usage or file error, or when the broker did not acknowledge every event
 * within 60 s after the last was sent.
 *
 * Built by run.sh into its temporary folder with -O2; the CMake build also builds it
 * (bench/CMakeLists.txt), so that it keeps compiling under the project's warnings.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failed; /* deliveries the broker refused, counted by the delivery callback */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (failed++ == 0)
            fprintf(stderr, "an_produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

static double clock_s(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double now = clock_s(CLOCK_MONOTONIC);
    struct timespec ts;

    if (t <= now)
        return;
    ts.tv_sec = (time_t)(t - now);
    ts.tv_nsec = (long)((t - now - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The platform topic of a source, or NULL. */
static const char *topic_of(const char *source)
{
    if (strcmp(source, "/user-svc") == 0)
        return "user-events";
    if (strcmp(source, "/product-svc") == 0)
        return "product-events";
    if (strcmp(source, "/cart-svc") == 0)
        return "cart-events";
    return NULL;
}

int main(int argc, char **argv)
{
    char err[512], topic[256], *line = NULL;
    size_t cap = 0;
    ssize_t len;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    FILE *in, *sent = NULL;
    double rate, t0, t1;
    long n = 0;
    int rc = 1;

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: an_produce BROKERS PREFIX EVENTS_FILE RATE [SENT_FILE]\n");
        return 1;
    }
    rate = strtod(argv[4], NULL);
    if (rate < 0 || rate > 1e6 || (rate > 0 && argc != 6)) {
        fprintf(stderr, "an_produce: RATE must be 0 or positive (then with SENT_FILE)\n");
        return 1;
    }
    in = fopen(argv[3], "r");
    if (in == NULL || (argc == 6 && (sent = fopen(argv[5], "w")) == NULL)) {
        fprintf(stderr, "an_produce: %s: %s\n", in == NULL ? argv[3] : argv[5], strerror(errno));
        return 1;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err)) != 0 ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) != 0) {
        fprintf(stderr, "an_produce: %s\n", err);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "an_produce: %s\n", err);
        return 1;
    }

    t0 = clock_s(CLOCK_MONOTONIC);
    while ((len = getline(&line, &cap, in)) > 0) {
        json_error_t jerr;
        json_t *ev;
        const char *source = NULL, *subject = NULL, *t;
        rd_kafka_resp_err_t e;

        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        ev = json_loadb(line, (size_t)len, 0, &jerr);
        if (ev == NULL ||
            json_unpack(ev, "{s:s, s:s}", "source", &source, "subject", &subject) != 0 ||
            (t = topic_of(source)) == NULL) {
            fprintf(stderr, "an_produce: line %ld is not an event of the platform\n", n + 1);
            json_decref(ev);
            goto out;
        }
        snprintf(topic, sizeof(topic), "%s%s", argv[2], t);
        if (rate > 0)
            sleep_until(t0 + (double)n / rate);
        for (;;) {
            e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(subject, strlen(subject)),
                RD_KAFKA_V_VALUE(line, (size_t)len),
                RD_KAFKA_V_HEADER("content-type", "application/cloudevents+json", -1),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 10);
        }
        if (sent != NULL)
            fprintf(sent, "%.3f\n", clock_s(CLOCK_REALTIME) * 1000.0);
        json_decref(ev);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "an_produce: %s: %s\n", topic, rd_kafka_err2str(e));
            goto out;
        }
        n++;
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "an_produce: %d events not acknowledged after 60 s\n",
                rd_kafka_outq_len(rk));
        goto out;
    }
    t1 = clock_s(CLOCK_MONOTONIC);
    if (failed > 0) {
        fprintf(stderr, "an_produce: %d of %ld events not delivered\n", failed, n);
        goto out;
    }
    printf("events %ld seconds %.3f rate %.1f\n", n, t1 - t0, t1 > t0 ? (double)n / (t1 - t0) : 0);
    rc = 0;
out:
    if (sent != NULL && fclose(sent) != 0) {
        fprintf(stderr, "an_produce: %s: %s\n", argv[5], strerror(errno));
        rc = 1;
    }
    fclose(in);
    free(line);
    rd_kafka_destroy(rk);
    return rc;
}

/*
 * polyglot-topics: creates the platform's Kafka topics, each with its dead-letter topic, as
 * deploy/topics.conf declares them. Idempotent: existing topics are checked, not recreated.
 *
 *   polyglot-topics [--brokers HOST:PORT] [--file deploy/topics.conf]
 *
 * The brokers default to $KAFKA_BROKERS. Exit 0 when every topic exists as declared, 1 when
 * one could not be created or has fewer partitions than declared, 2 for a bad command line or
 * file (the line is named).
 */
#include "svc/alloc.h"
#include "svc/kafka.h"
#include "svc/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS_MAX 64

static void usage(FILE *f)
{
    fputs("usage: polyglot-topics [--brokers HOST:PORT] [--file deploy/topics.conf]\n", f);
}

/* Reads "NAME PARTITIONS" lines (blank lines and # comments skipped) into SPECS, adding
 * NAME.dlq with one partition for each. The names are heap copies. -1 with a message. */
static int read_conf(const char *path, struct svc_topic_spec *specs, size_t *n)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int lineno = 0;

    *n = 0;
    if (f == NULL) {
        fprintf(stderr, "polyglot-topics: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *name, *end, *dlq;
        long parts;

        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        name = p;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        if (*p == '\0' || *p == '\n') {
            fprintf(stderr, "polyglot-topics: %s:%d: expected NAME PARTITIONS\n", path, lineno);
            fclose(f);
            return -1;
        }
        *p++ = '\0';
        errno = 0;
        parts = strtol(p, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (errno != 0 || end == p || *end != '\0' || parts < 1 || parts > 1000) {
            fprintf(stderr, "polyglot-topics: %s:%d: partitions of '%s' must be 1 to 1000\n", path,
                    lineno, name);
            fclose(f);
            return -1;
        }
        if (*n + 2 > TOPICS_MAX) {
            fprintf(stderr, "polyglot-topics: %s: more than %d topics\n", path, TOPICS_MAX / 2);
            fclose(f);
            return -1;
        }
        dlq = svc_malloc(strlen(name) + sizeof(".dlq"));
        snprintf(dlq, strlen(name) + sizeof(".dlq"), "%s.dlq", name);
        specs[*n] = (struct svc_topic_spec){svc_strdup(name), (int)parts};
        specs[*n + 1] = (struct svc_topic_spec){dlq, 1};
        *n += 2;
    }
    fclose(f);
    if (*n == 0) {
        fprintf(stderr, "polyglot-topics: %s declares no topic\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("KAFKA_BROKERS"), *file = "deploy/topics.conf";
    struct svc_topic_spec specs[TOPICS_MAX];
    struct svc_kafka_config cfg = {0};
    size_t n = 0;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            brokers = argv[++i];
        } else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "polyglot-topics: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (brokers == NULL || brokers[0] == '\0') {
        fputs("polyglot-topics: no brokers: pass --brokers or set KAFKA_BROKERS\n", stderr);
        return 2;
    }
    if (read_conf(file, specs, &n) != 0)
        return 2;
    cfg.brokers = brokers;
    cfg.client_id = "polyglot-topics";
    rc = svc_kafka_ensure_topics(&cfg, specs, n, 30000);
    for (size_t i = 0; i < n; i++)
        free((char *)specs[i].name);
    if (rc != 0) {
        fprintf(stderr, "polyglot-topics: the topics of %s are not all there (see above)\n", file);
        return 1;
    }
    printf("polyglot-topics: %zu topics as %s declares them\n", n, file);
    return 0;
}

/*
 * eventgen: writes a deterministic set of platform events and the exact answers analytics-svc
 * must give about them (eventgen.h).
 *
 *   eventgen --seed N --start <RFC 3339> --events OUT.ndjson [--expect OUT.json]
 *            [--users U] [--minutes M] [--count N]
 *
 * The same arguments always write the same bytes. Exit status 0, 2 for a usage error, 1 when
 * an output cannot be written.
 */
#include "eventgen.h"

#include "svc/time.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: eventgen --seed N --start RFC3339 --events OUT.ndjson [--expect OUT.json]\n"
          "                [--users U] [--minutes M] [--count N]\n"
          "  the events of U users (default 50) over [start, start + M minutes) (default 60),\n"
          "  one CloudEvent a line, and the answers analytics-svc must give over that window;\n"
          "  with --count, exactly N events at a steady rate over the window (benchmarks)\n"
          "  start: a whole minute, e.g. 2001-03-04T05:06:00Z\n",
          f);
}

/* A whole decimal number in [0, MAX], digits only. */
static bool parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

static int write_file(const char *path, const struct eg_set *s,
                      int (*write)(const struct eg_set *, FILE *))
{
    FILE *f = fopen(path, "w");

    if (f == NULL || write(s, f) != 0) {
        fprintf(stderr, "eventgen: cannot write '%s': %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return 1;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "eventgen: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct eg_opts o = {.users = 50, .minutes = 60};
    const char *events = NULL, *expect = NULL, *start = NULL;
    bool have_seed = false;
    unsigned long long v = 0; /* set by a successful parse_num(), read only then */
    struct eg_set *s;
    char err[160];
    int rc;

    /* Options come in pairs: --name value. */
    for (int a = 1; a < argc; a += 2) {
        const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        bool ok = val != NULL;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(opt, "--seed") == 0) {
            ok = have_seed = parse_num(val, UINT64_MAX, &v);
            o.seed = v;
        } else if (strcmp(opt, "--users") == 0) {
            ok = parse_num(val, EG_USERS_MAX, &v) && v >= 1;
            o.users = (int)v;
        } else if (strcmp(opt, "--minutes") == 0) {
            ok = parse_num(val, EG_MINUTES_MAX, &v) && v >= 1;
            o.minutes = (int)v;
        } else if (strcmp(opt, "--count") == 0) {
            ok = parse_num(val, EG_COUNT_MAX, &v) && v >= 1;
            o.count = (int64_t)v;
        } else if (strcmp(opt, "--start") == 0) {
            ok = val != NULL && svc_rfc3339_parse(val, &o.start_ms);
            start = val;
        } else if (strcmp(opt, "--events") == 0) {
            events = val;
        } else if (strcmp(opt, "--expect") == 0) {
            expect = val;
        } else {
            fprintf(stderr, "eventgen: unknown argument '%s'\n", opt);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "eventgen: %s does not take '%s'\n", opt, val != NULL ? val : "");
            usage(stderr);
            return 2;
        }
    }
    if (!have_seed || start == NULL || events == NULL) {
        fprintf(stderr, "eventgen: --seed, --start and --events are required\n");
        usage(stderr);
        return 2;
    }
    s = eg_generate(&o, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "eventgen: %s\n", err);
        usage(stderr);
        return 2;
    }
    rc = write_file(events, s, eg_write_events);
    if (rc == 0 && expect != NULL)
        rc = write_file(expect, s, eg_write_expect);
    eg_set_free(s);
    return rc;
}

/*
 * catalog-gen: prints products of the deterministic catalog (catalog.h) as NDJSON, one product
 * a line, in the shape product-svc's POST /v1/products and POST /v1/products:import take.
 *
 *   catalog-gen --seed S --count N [--start K]
 *
 * Products K to K+N-1 of the catalog of seed S (K defaults to 0). The same arguments always
 * print the same bytes, and product i is the same whatever K and N: a run can be split into
 * chunks. Exit status 0, 2 for a usage error, 1 when stdout cannot be written.
 */
#include "catalog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far more than any seeding needs, and SKU indices then keep their width below 64 characters. */
#define COUNT_MAX 10000000ULL
#define START_MAX 1000000000000ULL

static void usage(FILE *f)
{
    fputs("usage: catalog-gen --seed S --count N [--start K]\n"
          "  prints products K..K+N-1 of the catalog of seed S as NDJSON, one a line\n"
          "  S: 0 to 18446744073709551615; N: 0 to 10000000; K: 0 to 1000000000000 (default 0)\n",
          f);
}

/* A whole decimal number of at most MAX, digits only (no sign, no spaces). */
static bool parse_u64(const char *s, unsigned long long max, uint64_t *out)
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

int main(int argc, char **argv)
{
    uint64_t seed = 0, count = 0, start = 0;
    bool have_seed = false, have_count = false;

    /* Options come in pairs: --name value. */
    for (int a = 1; a < argc; a += 2) {
        const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        bool ok;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(opt, "--seed") == 0) {
            ok = have_seed = parse_u64(val, UINT64_MAX, &seed);
        } else if (strcmp(opt, "--count") == 0) {
            ok = have_count = parse_u64(val, COUNT_MAX, &count);
        } else if (strcmp(opt, "--start") == 0) {
            ok = parse_u64(val, START_MAX, &start);
        } else {
            fprintf(stderr, "catalog-gen: unknown argument '%s'\n", opt);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "catalog-gen: %s needs a whole number in range, not '%s'\n", opt,
                    val != NULL ? val : "");
            usage(stderr);
            return 2;
        }
    }
    if (!have_seed || !have_count) {
        fprintf(stderr, "catalog-gen: --seed and --count are required\n");
        usage(stderr);
        return 2;
    }

    for (uint64_t i = start; i < start + count; i++) {
        struct catalog_product p;
        json_t *j;
        char *line;

        catalog_product(seed, i, &p);
        j = catalog_product_json(&p);
        line = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (line == NULL) {
            fprintf(stderr, "catalog-gen: out of memory at product %llu\n", (unsigned long long)i);
            return 1;
        }
        fputs(line, stdout);
        putchar('\n');
        free(line);
        if (ferror(stdout))
            break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "catalog-gen: cannot write to stdout: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

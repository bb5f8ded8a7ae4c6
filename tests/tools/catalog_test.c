/*
 * The catalog generator (tools/catalog): what `make seed`, the demo, the tests and the
 * benchmarks rely on. The same seed gives the same bytes, a product does not depend on where a
 * run starts, and every product passes product-svc's bounds (product-svc/product.h).
 */
#define _POSIX_C_SOURCE 200809L /* popen */

#include "catalog.h"
#include "product.h"
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef CATALOG_GEN_BIN
#error "CATALOG_GEN_BIN: the catalog-gen binary under test"
#endif

#define N 10000

/* Output of catalog-gen ARGS, NUL-terminated, malloc'd; *STATUS its exit status. */
static char *run_gen(const char *args, int *status)
{
    char cmd[512];
    size_t len = 0, cap = 1 << 20, got;
    char *out = malloc(cap);
    FILE *p;
    int st;

    ck_assert_ptr_nonnull(out);
    snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", CATALOG_GEN_BIN, args);
    p = popen(cmd, "r"); /* NOLINT(cert-env33-c): running the program is the point */
    ck_assert_msg(p != NULL, "cannot run '%s'", cmd);
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
    }
    out[len] = '\0';
    st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* The NDJSON of products [START, START+COUNT) of SEED, through the library. */
static char *lib_ndjson(uint64_t seed, uint64_t start, uint64_t count)
{
    size_t len = 0, cap = 1 << 20;
    char *out = malloc(cap);

    ck_assert_ptr_nonnull(out);
    for (uint64_t i = start; i < start + count; i++) {
        struct catalog_product p;
        json_t *j;
        char *line;
        size_t n;

        catalog_product(seed, i, &p);
        j = catalog_product_json(&p);
        ck_assert_ptr_nonnull(j);
        line = json_dumps(j, JSON_COMPACT);
        ck_assert_ptr_nonnull(line);
        json_decref(j);
        n = strlen(line);
        while (len + n + 2 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        memcpy(out + len, line, n);
        len += n;
        out[len++] = '\n';
        free(line);
    }
    out[len] = '\0';
    return out;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

START_TEST(same_seed_same_bytes)
{
    int st1, st2;
    char *a = run_gen("--seed 42 --count 10000", &st1);
    char *b = run_gen("--seed 42 --count 10000", &st2);
    char *c = lib_ndjson(42, 0, N);

    ck_assert_int_eq(st1, 0);
    ck_assert_int_eq(st2, 0);
    ck_assert_uint_eq(count_lines(a), N);
    ck_assert_msg(strcmp(a, b) == 0, "two runs with seed 42 printed different bytes");
    ck_assert_msg(strcmp(a, c) == 0, "catalog-gen and the library disagree");
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(another_seed_another_catalog)
{
    int differ = 0;

    for (uint64_t i = 0; i < 100; i++) {
        struct catalog_product a, b;

        catalog_product(42, i, &a);
        catalog_product(43, i, &b);
        ck_assert_str_ne(a.sku, b.sku);
        differ += strcmp(a.name, b.name) != 0;
    }
    ck_assert_int_ge(differ, 90);
}
END_TEST

START_TEST(a_product_does_not_depend_on_the_start)
{
    int st;
    char *all = run_gen("--seed 7 --count 300", &st);
    char *tail = run_gen("--seed 7 --start 250 --count 50", &st);
    const char *p = all;

    ck_assert_int_eq(st, 0);
    for (int line = 0; line < 250; line++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    ck_assert_str_eq(p, tail);
    free(all);
    free(tail);
}
END_TEST

/* A JSON string member of O, failing the test when it is missing or not a string. */
static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_string(v), "'%s' is missing or not a string", key);
    return json_string_value(v);
}

static int64_t int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "'%s' is missing or not an integer", key);
    return json_integer_value(v);
}

/* Characters of UTF-8 text S (what product-svc's bounds count). */
static size_t chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(every_product_within_bounds_and_skus_unique)
{
    int st, zero_stock = 0, eur = 0, usd = 0, gbp = 0, cats[CATALOG_CATEGORIES] = {0};
    int cheap = 0, dear = 0;
    char *all = run_gen("--seed 42 --count 10000", &st), *line, *save = NULL;
    char **skus = calloc(N, sizeof(*skus));
    size_t n = 0;

    ck_assert_int_eq(st, 0);
    ck_assert_ptr_nonnull(skus);
    for (line = all; *line != '\0'; line = save) {
        json_error_t err;
        json_t *o, *tags;
        const char *sku, *name, *description, *category, *currency, *url;
        int64_t price, stock;
        char *nl = strchr(line, '\n');
        size_t k, known;

        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        save = nl + 1;
        o = json_loads(line, JSON_REJECT_DUPLICATES, &err);
        ck_assert_msg(o != NULL, "line %zu is not JSON: %s", n + 1, err.text);
        ck_assert_uint_eq(json_object_size(o), 9);

        sku = str_of(o, "sku");
        ck_assert(strlen(sku) >= 1 && strlen(sku) <= PROD_SKU_MAX);
        ck_assert_uint_eq(strspn(sku, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789._-"),
                          strlen(sku));
        name = str_of(o, "name");
        ck_assert(chars(name) >= 1 && chars(name) <= PROD_NAME_MAX);
        description = str_of(o, "description");
        ck_assert(chars(description) >= 1 && chars(description) <= PROD_DESCRIPTION_MAX);
        /* Full-text search finds a product by any word of its name. */
        ck_assert_msg(strstr(description, name) != NULL, "'%s' not in its description '%s'", name,
                      description);
        category = str_of(o, "category");
        ck_assert(chars(category) <= PROD_CATEGORY_MAX);
        for (known = 0; known < CATALOG_CATEGORIES; known++)
            if (strcmp(category, catalog_categories[known]) == 0)
                break;
        ck_assert_msg(known < CATALOG_CATEGORIES, "unknown category '%s'", category);
        cats[known]++;
        tags = json_object_get(o, "tags");
        ck_assert(json_is_array(tags));
        ck_assert(json_array_size(tags) >= 1 && json_array_size(tags) <= PROD_TAGS_MAX);
        for (k = 0; k < json_array_size(tags); k++) {
            const char *t = json_string_value(json_array_get(tags, k));

            ck_assert_ptr_nonnull(t);
            ck_assert(chars(t) >= 1 && chars(t) <= PROD_TAG_MAX);
            for (size_t m = 0; m < k; m++)
                ck_assert_str_ne(t, json_string_value(json_array_get(tags, m)));
        }
        price = int_of(o, "price_cents");
        ck_assert(price >= 99 && price <= 250000);
        cheap += price < 2500;
        dear += price >= 50000;
        currency = str_of(o, "currency");
        eur += strcmp(currency, "EUR") == 0;
        usd += strcmp(currency, "USD") == 0;
        gbp += strcmp(currency, "GBP") == 0;
        stock = int_of(o, "stock");
        ck_assert(stock >= 0 && stock <= 500);
        zero_stock += stock == 0;
        url = str_of(o, "image_url");
        ck_assert(strncmp(url, "https://img.example.com/", 24) == 0);
        ck_assert(chars(url) <= PROD_URL_MAX);

        ck_assert(n < N);
        skus[n] = strdup(sku);
        ck_assert_ptr_nonnull(skus[n]);
        n++;
        json_decref(o);
    }
    ck_assert_uint_eq(n, N);

    qsort(skus, n, sizeof(*skus), cmp_str);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(strcmp(skus[i - 1], skus[i]) != 0, "SKU '%s' twice", skus[i]);

    /* The shape of a shop, not of noise: every category, about one product in ten out of
     * stock, mostly euros, cheap items far more common than dear ones. */
    for (int c = 0; c < CATALOG_CATEGORIES; c++)
        ck_assert_msg(cats[c] > N / CATALOG_CATEGORIES / 2, "only %d products in '%s'", cats[c],
                      catalog_categories[c]);
    ck_assert_int_eq(eur + usd + gbp, N);
    ck_assert_int_gt(eur, N * 7 / 10);
    ck_assert_int_gt(usd, 0);
    ck_assert_int_gt(gbp, 0);
    ck_assert(zero_stock > N * 7 / 100 && zero_stock < N * 13 / 100);
    ck_assert_msg(cheap > 3 * dear, "%d cheap products, %d dear ones", cheap, dear);
    ck_assert_int_gt(dear, 0);

    for (size_t i = 0; i < n; i++)
        free(skus[i]);
    free(skus);
    free(all);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    static const char *const bad[] = {
        "--count 10",
        "--seed 42",
        "--seed 42 --count -1",
        "--seed x --count 1",
        "--seed 42 --count 10000001",
        "--seed 42 --count 1 --start 1e3",
        "--seed 42 --count 1 --nope",
        "--seed 42 --count",
    };
    int st;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = run_gen(bad[i], &st);

        ck_assert_msg(st == 2, "'%s': exit status %d, want 2", bad[i], st);
        ck_assert_str_eq(out, "");
        free(out);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, same_seed_same_bytes);
    tcase_add_test(tc, another_seed_another_catalog);
    tcase_add_test(tc, a_product_does_not_depend_on_the_start);
    tcase_add_test(tc, every_product_within_bounds_and_skus_unique);
    tcase_add_test(tc, bad_arguments_are_refused);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

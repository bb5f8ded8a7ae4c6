/*
 * catalog.h: a deterministic product catalog, for `make seed`, the demo, the tests and the
 * benchmarks (issue 11).
 *
 * The catalog of a seed is an endless sequence of products; product I depends only on (SEED, I),
 * never on how many are generated or where a run starts, so `catalog-gen --seed 42 --count 10`
 * and the first ten lines of `--count 10000` are the same bytes, and a run can be split into
 * chunks. Each product draws from its own pseudo-random stream (splitmix64 seeded from SEED and
 * I): no rand(), no global state, thread-safe.
 *
 * Every product fits product-svc's bounds (product-svc/product.h): a unique SKU of
 * [A-Za-z0-9._-], a name of adjective + material (or topic) + noun of one of the categories, a
 * description of 2 to 5 sentences whose first one holds the whole name (so a full-text search for
 * any word of a name finds it), 1 to 6 tags from the category's vocabulary, a price in cents
 * between CATALOG_PRICE_MIN and CATALOG_PRICE_MAX skewed towards cheap items, EUR, USD or GBP
 * (mostly EUR), and a stock of 0 to CATALOG_STOCK_MAX (about one product in ten at 0).
 */
#ifndef CATALOG_H
#define CATALOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_SKU_MAX         64
#define CATALOG_NAME_MAX        200
#define CATALOG_DESCRIPTION_MAX 1000 /* product-svc allows 5000; ours stay well below */
#define CATALOG_URL_MAX         160
#define CATALOG_TAGS_MAX        6
#define CATALOG_PRICE_MIN       99     /* cents */
#define CATALOG_PRICE_MAX       250000 /* cents */
#define CATALOG_STOCK_MAX       500

/* One product. Strings are NUL-terminated; CATEGORY, TAGS and CURRENCY point at static storage
 * (valid for the program's life), the others are inside the struct. Caller-owned, nothing to
 * release. */
struct catalog_product {
    char sku[CATALOG_SKU_MAX + 1];
    char name[CATALOG_NAME_MAX + 1];
    char description[CATALOG_DESCRIPTION_MAX + 1];
    const char *category;
    const char *tags[CATALOG_TAGS_MAX]; /* NTAGS distinct tags */
    size_t ntags;
    int64_t price_cents;
    const char *currency;
    int64_t stock;
    char image_url[CATALOG_URL_MAX + 1];
};

/* Product I of the catalog of SEED, into *OUT. Cannot fail. */
void catalog_product(uint64_t seed, uint64_t i, struct catalog_product *out);

/* P as the JSON object product-svc's create and import take (sku, name, description, category,
 * tags, price_cents, currency, stock, image_url, in that order). A new reference the caller
 * releases with json_decref(); NULL when out of memory. */
json_t *catalog_product_json(const struct catalog_product *p);

/* The categories products are drawn from (CATALOG_CATEGORIES of them), for tests and tools. */
#define CATALOG_CATEGORIES 12
extern const char *const catalog_categories[CATALOG_CATEGORIES];

#endif

/*
 * product.h: product-svc's domain and the store interface between its handlers, its outbox
 * relay and the search engine (Elasticsearch 8 or OpenSearch 2; OpenSearch 2.19 locally).
 *
 * product-svc owns two indices, each a versioned index behind an alias (migrations/):
 *   products      the catalog: one document per product, with its stock on hand, the units
 *                 reserved by open reservations (a hold per reservation, inside the document)
 *                 and the units sold
 *   reservations  the checkout saga's stock reservations, one document per reservation id
 *
 * A product's id is derived from its SKU (prod_id_for_sku()): SKU uniqueness is then the
 * uniqueness of a document id, which the engine checks in the one write that creates the
 * document (op_type=create). No second index, no orphan to clean up after a crash between two
 * writes. What it costs: a SKU cannot be changed (it is the product's identity; a new SKU is a new
 * product).
 *
 * Stock, per product: stock is the units on hand (not yet sold), reserved the sum of the open
 * holds, available = stock - reserved, sold the units committed. A commit moves a hold's units
 * from stock and reserved to sold; a release drops the hold. So stock + sold never changes
 * except by a PATCH of stock, and reserved <= stock always.
 *
 * Events: the engine has no multi-document transaction, so every change writes its pending
 * CloudEvents inside the document it changes, in the same single-document write; the relay
 * (the outbox source the store fills) publishes them and clears exactly those with if_seq_no.
 *
 * Handlers (product_http.c) talk to the store only through this interface; product_store.c is
 * the only file that talks to the engine. http tests use a fake. Nothing a client sends ever
 * becomes query syntax: the store builds every query from the typed values below, and free
 * text goes only into simple_query_string / multi_match as text.
 *
 * Memory: what a store function returns is allocated from the arena it is given.
 */
#ifndef PRODUCT_H
#define PRODUCT_H

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROD_ID_LEN 36 /* UUIDs in text form: product ids and reservation ids */

/* Bounds of a product's fields (characters unless said otherwise), checked by the handlers. */
#define PROD_SKU_MAX         64 /* [A-Za-z0-9._-], 1 to 64 */
#define PROD_NAME_MAX        200
#define PROD_DESCRIPTION_MAX 5000
#define PROD_CATEGORY_MAX    64
#define PROD_TAG_MAX         32 /* each tag */
#define PROD_TAGS_MAX        20 /* tags per product */
#define PROD_URL_MAX         2048
#define PROD_PRICE_MAX       100000000000LL /* cents: one billion in the currency */
#define PROD_STOCK_MAX       1000000000LL
/* Reservations. */
#define PROD_RES_ITEMS_MAX   100 /* lines per reservation */
#define PROD_RES_QTY_MAX     10000
#define PROD_RES_TTL_DEFAULT 900 /* seconds */
#define PROD_RES_TTL_MAX     86400
/* Search. */
#define PROD_Q_MAX         200 /* characters of q */
#define PROD_LIMIT_DEFAULT 20
#define PROD_LIMIT_MAX     100
#define PROD_SUGGEST_MAX   10 /* names returned by suggest */
#define PROD_PREFIX_MAX    50
#define PROD_MGET_MAX      100 /* ids per batch get */
#define PROD_FACET_MAX     20  /* buckets per terms facet */

/* product-svc's own errors, in lib's X-macro form (svc/error.h): name, value, HTTP status,
 * problem type, title. Registered through svc_def.errors (prod_errors).
 *   ESKU_TAKEN      a product with this SKU exists (create, import)
 *   ESTOCK          a reservation line asks for more than is available: 409 naming the line
 *   ERES_STATE      the reservation is in a state that forbids this (commit after release,
 *                   release after commit, a reservation id reused with other lines)
 *   ERESERVED       the change would leave stock below the units reserved (a PATCH of stock,
 *                   a DELETE while reservations hold units) */
/* clang-format off */
#define PROD_ERRNO_MAP(X)                                                                          \
    X(ESKU_TAKEN, -3001, 409, "sku-taken",             "SKU taken")                               \
    X(ESTOCK,     -3002, 409, "insufficient-stock",    "Insufficient stock")                      \
    X(ERES_STATE, -3003, 409, "reservation-state",     "Reservation in another state")            \
    X(ERESERVED,  -3004, 409, "stock-reserved",        "Stock reserved")
/* clang-format on */

enum {
#define PROD__ERR_ENUM(name, value, status, type, title) PROD_##name = (value),
    PROD_ERRNO_MAP(PROD__ERR_ENUM)
#undef PROD__ERR_ENUM
};

/* PROD_ERRNO_MAP as a table, for svc_def.errors (product_http.c). */
extern const struct svc_err_def prod_errors[];

/* product-svc/openapi.yaml, NUL-terminated, for svc_def.openapi (cmake/Service.cmake). */
extern const unsigned char prod_openapi_yaml[];

/* The product id of SKU: a name-based UUID (version 8, RFC 9562 section B.2: the first 16
 * bytes of SHA-256("polyglot:product:" SKU) with the version and variant bits set), in
 * lowercase text. The same SKU always gives the same id, on every replica. */
void prod_id_for_sku(const char *sku, char out[PROD_ID_LEN + 1]);

struct product {
    char id[PROD_ID_LEN + 1];
    const char *sku;
    const char *name;
    const char *description; /* "" when none */
    const char *category;
    const char **tags; /* NTAGS strings */
    size_t ntags;
    int64_t price_cents;
    const char *currency; /* ISO 4217, three capital letters */
    int64_t stock;        /* on hand, not sold */
    int64_t reserved;     /* held by open reservations, <= stock */
    int64_t sold;
    const char *image_url; /* NULL when none */
    int64_t created_at_ms, updated_at_ms;
    /* The document's version, the ETag ("<seq_no>.<primary_term>"). */
    int64_t seq_no, primary_term;
};

/* A new product (create and import). The handler has checked every bound. */
struct prod_new {
    const char *sku;
    const char *name;
    const char *description; /* may be NULL: "" */
    const char *category;
    const char **tags;
    size_t ntags;
    int64_t price_cents;
    const char *currency;
    int64_t stock;
    const char *image_url; /* may be NULL */
};

/* A PATCH: only the members flagged in SET change. */
enum {
    PROD_SET_NAME = 1 << 0,
    PROD_SET_DESCRIPTION = 1 << 1,
    PROD_SET_CATEGORY = 1 << 2,
    PROD_SET_TAGS = 1 << 3,
    PROD_SET_PRICE = 1 << 4,
    PROD_SET_CURRENCY = 1 << 5,
    PROD_SET_STOCK = 1 << 6,
    PROD_SET_IMAGE_URL = 1 << 7, /* image_url NULL removes it */
};

struct prod_patch {
    unsigned set;
    const char *name, *description, *category;
    const char **tags;
    size_t ntags;
    int64_t price_cents;
    const char *currency;
    int64_t stock;
    const char *image_url;
};

/* ---- search ----------------------------------------------------------------------------- */

enum prod_sort {
    PROD_SORT_RELEVANCE, /* _score desc, then id: the default with q; without q, newest */
    PROD_SORT_PRICE_ASC,
    PROD_SORT_PRICE_DESC,
    PROD_SORT_NEWEST, /* created_at desc, then id */
};

/* The keyset position after a page: the sort values of its last hit (search_after). The
 * handler carries it in the opaque cursor; the store checks nothing but uses it only as typed
 * values (a number and an id), so a forged cursor can at worst move the page. */
struct prod_after {
    double score; /* PROD_SORT_RELEVANCE */
    int64_t num;  /* price_cents or created_at_ms */
    char id[PROD_ID_LEN + 1];
};

struct prod_query {
    const char *q;                /* free text, or NULL: every product */
    const char *category;         /* exact, or NULL */
    const char *tag;              /* exact, or NULL */
    int64_t min_price, max_price; /* cents, inclusive; -1 when absent */
    bool in_stock;                /* only available > 0 */
    enum prod_sort sort;
    int limit;
    const struct prod_after *after; /* NULL: the first page */
};

struct prod_bucket {
    const char *key;  /* a category, a tag, or a price range's key ("0-1000", "100000-") */
    int64_t from, to; /* price ranges only: cents, [from, to); -1 when open */
    int64_t count;
};

/* The fixed price ranges of the price facet, in cents: [0,10 €), [10,25), [25,50), [50,100),
 * [100,250), [250,...). */
#define PROD_PRICE_RANGES                                                                          \
    {                                                                                              \
        0, 1000, 2500, 5000, 10000, 25000                                                          \
    }
#define PROD_PRICE_RANGES_N 6

struct prod_hit {
    struct product p;
    double score;                 /* 0 unless sorted by relevance */
    const char *name_html;        /* highlighted name (<em>..</em>, text HTML-escaped) or NULL */
    const char *description_html; /* one highlighted snippet of the description, or NULL */
};

struct prod_results {
    struct prod_hit *items;
    size_t n;
    int64_t total; /* matching products */
    bool more;
    struct prod_after next; /* valid when MORE */
    /* Facets over every matching product (not just this page). */
    struct prod_bucket *categories, *tags, *prices;
    size_t ncategories, ntags, nprices;
};

/* ---- reservations ------------------------------------------------------------------------- */

struct prod_res_item {
    char product_id[PROD_ID_LEN + 1];
    int64_t quantity;
};

struct prod_reservation {
    char id[PROD_ID_LEN + 1];
    const char *state; /* "reserved", "committed" or "released" */
    struct prod_res_item *items;
    size_t n;
    int64_t created_at_ms, updated_at_ms;
    int64_t expires_at_ms;      /* a reserved one not committed by then is released by the sweep */
    const char *release_reason; /* "requested" or "expired" once released, else NULL */
};

/* Why a reservation was refused (PROD_ESTOCK or SVC_ENOTFOUND from reserve): the line. */
struct prod_res_short {
    int line; /* index in the items given */
    char product_id[PROD_ID_LEN + 1];
    int64_t requested;
    int64_t available; /* 0 for an unknown product */
};

/*
 * The store. Every function returns 0 or a negative code:
 *   SVC_ENOTFOUND       no such product / reservation
 *   SVC_EPRECONDITION   the expected version (seq_no, primary_term) is stale
 *   SVC_EUNAVAILABLE    the engine cannot be reached or refused for lack of resources (503)
 *   SVC_EIDEMPOTENCY    a reservation id used again with other lines
 *   PROD_E*             see above
 * Every change writes its CloudEvents into the changed document in the same write; TRACEPARENT
 * (may be NULL) goes into them. *REPLAYED says an idempotent call was already done: the stored
 * result is returned and nothing changed.
 */
struct prod_store {
    void *ctx;

    /* ---- the catalog ---- */
    int (*create)(void *ctx, struct svc_arena *a, const struct prod_new *in,
                  const char *traceparent, struct product *out);
    int (*get)(void *ctx, struct svc_arena *a, const char *id, struct product *out);
    /* IDS[N] (N <= PROD_MGET_MAX, distinct): OUT[i] filled and FOUND[i] set for each that
     * exists, in the order given. */
    int (*mget)(void *ctx, struct svc_arena *a, const char *const *ids, size_t n,
                struct product *out, bool *found);
    /* Applies PATCH if the document is still at (SEQ_NO, PRIMARY_TERM): product.updated, with
     * the old price when it changes. PROD_ERESERVED when the new stock is below reserved. */
    int (*update)(void *ctx, struct svc_arena *a, const char *id, int64_t seq_no,
                  int64_t primary_term, const struct prod_patch *patch, const char *traceparent,
                  struct product *out);
    /* Deletes (a tombstone until product.deleted is published; then gone). SEQ_NO < 0: any
     * version. PROD_ERESERVED while open reservations hold units of it. */
    int (*remove)(void *ctx, const char *id, int64_t seq_no, int64_t primary_term,
                  const char *traceparent);
    /* Bulk create (POST /v1/products:import): IN[N] all valid; each line is created whole or
     * not at all; RC[i] = 0 (created), PROD_ESKU_TAKEN, or another code for that line, and
     * OUT[i] the product created. Returns 0 when every line was tried, or SVC_EUNAVAILABLE
     * when the engine could not be reached (then nothing was written). */
    int (*import)(void *ctx, struct svc_arena *a, const struct prod_new *in, size_t n,
                  const char *traceparent, struct product *out, int *rc);

    /* ---- search ---- */
    int (*search)(void *ctx, struct svc_arena *a, const struct prod_query *q,
                  struct prod_results *out);
    /* The names of at most LIMIT products whose name has a word starting with PREFIX, best
     * first, in *NAMES (N of them). */
    int (*suggest)(void *ctx, struct svc_arena *a, const char *prefix, int limit,
                   const char ***names, size_t *n);

    /* ---- reservations (the checkout saga) ---- */
    /* Reserves every line or none. ITEMS[N] have distinct product ids. PROD_ESTOCK or
     * SVC_ENOTFOUND (a product that does not exist) with *SHORT filled; a reservation id seen
     * before: its stored state with *REPLAYED when the lines are the same (whatever its state),
     * SVC_EIDEMPOTENCY when not. */
    int (*reserve)(void *ctx, struct svc_arena *a, const char *id,
                   const struct prod_res_item *items, size_t n, int64_t ttl_ms,
                   const char *traceparent, struct prod_reservation *out,
                   struct prod_res_short *short_line, bool *replayed);
    /* reserved -> committed (the units sold). Committed already: *REPLAYED. Released:
     * PROD_ERES_STATE (OUT filled, so the answer can say why). */
    int (*commit)(void *ctx, struct svc_arena *a, const char *id, const char *traceparent,
                  struct prod_reservation *out, bool *replayed);
    /* reserved -> released (reason "requested"). Released already: *REPLAYED. Committed:
     * PROD_ERES_STATE (OUT filled). */
    int (*release)(void *ctx, struct svc_arena *a, const char *id, const char *traceparent,
                   struct prod_reservation *out, bool *replayed);
    int (*reservation_get)(void *ctx, struct svc_arena *a, const char *id,
                           struct prod_reservation *out);
    /* The sweep: releases (reason "expired") every reserved reservation whose expires_at is
     * before NOW_MS, and finishes any left half-done by a crash. *RELEASED counts them. */
    int (*sweep)(void *ctx, int64_t now_ms, int64_t *released);

    /* /readyz: false with a reason when the engine cannot be reached. */
    bool (*ready)(void *ctx, char *why, size_t cap);
};

/* What handlers get from svc_req_app(). */
struct prod_app {
    struct prod_store store;
};

extern const struct svc_route prod_routes[];

#endif

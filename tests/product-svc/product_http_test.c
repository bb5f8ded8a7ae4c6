/*
 * product-svc's HTTP API as a client sees it: the real routes (product_http.c) started
 * in-process on port 0 over a fake store that keeps products and reservations in memory and
 * counts every call, driven with libcurl. Status codes, headers and bodies of every route as
 * openapi.yaml documents them; every kind of bad input refused with a problem before the store
 * is asked anything; text that looks like query DSL handed to the store verbatim, as text, in
 * the typed member it was sent as; the store's errors rendered as their documented problems;
 * and the product id of a SKU.
 */
#include "product.h"

#include "svc/error.h"
#include "svc/uuid.h"
#include "testapi.h"
#include "testenv.h"
#include "testproblems.h"
#include "testsvc.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fake store --------------------------------------------------------------------- */

enum call {
    C_CREATE,
    C_GET,
    C_MGET,
    C_UPDATE,
    C_REMOVE,
    C_IMPORT,
    C_SEARCH,
    C_SUGGEST,
    C_RESERVE,
    C_COMMIT,
    C_RELEASE,
    C_RES_GET,
    C_SWEEP,
    C_COUNT
};

enum { MAX_PRODUCTS = 1100, MAX_RESERVATIONS = 32, TEXT_MAX = 1024 };

/* 2026-01-01T00:00:00.000Z: the fake's clock starts here and ticks one second per write. */
#define T0 INT64_C(1767225600000)

#define NOONE "3c4d5e6f-7081-4c9d-8e0f-2a3b4c5d6e7f" /* no product, no reservation */
#define RES1  "5b7e3c1a-2f4d-4e6a-9b8c-0d1e2f3a4b5c"
#define RES2  "6c8f4d2b-3a5e-4f7b-8c9d-1e2f3a4b5c6d"

struct fake_product {
    char id[PROD_ID_LEN + 1];
    char *sku, *name, *description, *category, *currency, *image_url;
    char *tags[PROD_TAGS_MAX];
    size_t ntags;
    int64_t price_cents, stock, reserved, sold, created_at_ms, updated_at_ms, seq_no;
    bool deleted;
};

struct fake_reservation {
    char id[PROD_ID_LEN + 1];
    const char *state;
    struct prod_res_item items[PROD_RES_ITEMS_MAX];
    size_t n;
    int64_t created_at_ms, updated_at_ms, expires_at_ms;
    const char *release_reason;
};

struct fake {
    struct testfake t; /* the lock, the call counts, the failure */
    struct fake_product products[MAX_PRODUCTS];
    int nproducts;
    struct fake_reservation res[MAX_RESERVATIONS];
    int nres;
    int64_t now_ms, next_seq;
    /* What the last calls were given. */
    struct {
        char q[TEXT_MAX], category[TEXT_MAX], tag[TEXT_MAX];
        bool has_q, has_category, has_tag, has_after;
        int64_t min_price, max_price;
        bool in_stock;
        enum prod_sort sort;
        int limit;
        struct prod_after after;
    } search;
    char suggest_prefix[TEXT_MAX];
    int suggest_limit;
    unsigned patch_set;
    int64_t patch_seq_no, patch_term, remove_seq_no, remove_term;
    int64_t reserve_ttl_ms;
    size_t import_n;
    int import_fail_line; /* >= 0: that line of an import fails with SVC_EUNAVAILABLE */
};

static struct fake fake;

static int enter(enum call c)
{
    return testfake_enter(&fake.t, c);
}

static int leave(int rc)
{
    return testfake_leave(&fake.t, rc);
}

static char *dup_or_null(const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

static void set_str(char **slot, const char *s)
{
    free(*slot);
    *slot = dup_or_null(s);
}

static struct fake_product *find_product(const char *id)
{
    for (int i = 0; i < fake.nproducts; i++)
        if (strcmp(fake.products[i].id, id) == 0 && !fake.products[i].deleted)
            return &fake.products[i];
    return NULL;
}

static struct fake_reservation *find_res(const char *id)
{
    for (int i = 0; i < fake.nres; i++)
        if (strcmp(fake.res[i].id, id) == 0)
            return &fake.res[i];
    return NULL;
}

static void copy_product(struct svc_arena *a, const struct fake_product *f, struct product *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->id, f->id, sizeof(out->id));
    out->sku = svc_arena_strdup(a, f->sku);
    out->name = svc_arena_strdup(a, f->name);
    out->description = svc_arena_strdup(a, f->description);
    out->category = svc_arena_strdup(a, f->category);
    out->tags = svc_arena_calloc(a, (f->ntags + 1) * sizeof(*out->tags));
    for (size_t i = 0; i < f->ntags; i++)
        out->tags[i] = svc_arena_strdup(a, f->tags[i]);
    out->ntags = f->ntags;
    out->price_cents = f->price_cents;
    out->currency = svc_arena_strdup(a, f->currency);
    out->stock = f->stock;
    out->reserved = f->reserved;
    out->sold = f->sold;
    out->image_url = f->image_url != NULL ? svc_arena_strdup(a, f->image_url) : NULL;
    out->created_at_ms = f->created_at_ms;
    out->updated_at_ms = f->updated_at_ms;
    out->seq_no = f->seq_no;
    out->primary_term = 1;
}

static void copy_res(struct svc_arena *a, const struct fake_reservation *f,
                     struct prod_reservation *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->id, f->id, sizeof(out->id));
    out->state = f->state;
    out->items = svc_arena_calloc(a, f->n * sizeof(*out->items));
    memcpy(out->items, f->items, f->n * sizeof(*out->items));
    out->n = f->n;
    out->created_at_ms = f->created_at_ms;
    out->updated_at_ms = f->updated_at_ms;
    out->expires_at_ms = f->expires_at_ms;
    out->release_reason = f->release_reason;
}

/* Creates IN, with the lock held: 0 or PROD_ESKU_TAKEN. */
static int add_product(const struct prod_new *in, struct fake_product **out)
{
    char id[PROD_ID_LEN + 1];
    struct fake_product *p;

    prod_id_for_sku(in->sku, id);
    if (find_product(id) != NULL)
        return PROD_ESKU_TAKEN;
    ck_assert_int_lt(fake.nproducts, MAX_PRODUCTS);
    p = &fake.products[fake.nproducts++];
    memset(p, 0, sizeof(*p));
    memcpy(p->id, id, sizeof(p->id));
    p->sku = dup_or_null(in->sku);
    p->name = dup_or_null(in->name);
    p->description = dup_or_null(in->description != NULL ? in->description : "");
    p->category = dup_or_null(in->category);
    for (size_t i = 0; i < in->ntags; i++)
        p->tags[i] = dup_or_null(in->tags[i]);
    p->ntags = in->ntags;
    p->price_cents = in->price_cents;
    p->currency = dup_or_null(in->currency);
    p->stock = in->stock;
    p->image_url = dup_or_null(in->image_url);
    p->created_at_ms = p->updated_at_ms = fake.now_ms;
    p->seq_no = fake.next_seq++;
    fake.now_ms += 1000;
    *out = p;
    return 0;
}

static int f_create(void *ctx, struct svc_arena *a, const struct prod_new *in,
                    const char *traceparent, struct product *out)
{
    struct fake_product *p;
    int rc = enter(C_CREATE);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    if ((rc = add_product(in, &p)) != 0)
        return leave(rc);
    copy_product(a, p, out);
    return leave(0);
}

static int f_get(void *ctx, struct svc_arena *a, const char *id, struct product *out)
{
    struct fake_product *p;
    int rc = enter(C_GET);

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((p = find_product(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    copy_product(a, p, out);
    return leave(0);
}

static int f_mget(void *ctx, struct svc_arena *a, const char *const *ids, size_t n,
                  struct product *out, bool *found)
{
    int rc = enter(C_MGET);

    (void)ctx;
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct fake_product *p = find_product(ids[i]);

        found[i] = p != NULL;
        if (p != NULL)
            copy_product(a, p, &out[i]);
    }
    return leave(0);
}

static int f_update(void *ctx, struct svc_arena *a, const char *id, int64_t seq_no,
                    int64_t primary_term, const struct prod_patch *patch, const char *traceparent,
                    struct product *out)
{
    struct fake_product *p;
    int rc = enter(C_UPDATE);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    fake.patch_set = patch->set;
    fake.patch_seq_no = seq_no;
    fake.patch_term = primary_term;
    if ((p = find_product(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    if (p->seq_no != seq_no || primary_term != 1)
        return leave(SVC_EPRECONDITION);
    if ((patch->set & PROD_SET_STOCK) && patch->stock < p->reserved)
        return leave(PROD_ERESERVED);
    if (patch->set & PROD_SET_NAME)
        set_str(&p->name, patch->name);
    if (patch->set & PROD_SET_DESCRIPTION)
        set_str(&p->description, patch->description);
    if (patch->set & PROD_SET_CATEGORY)
        set_str(&p->category, patch->category);
    if (patch->set & PROD_SET_TAGS) {
        for (size_t i = 0; i < p->ntags; i++)
            free(p->tags[i]);
        for (size_t i = 0; i < patch->ntags; i++)
            p->tags[i] = dup_or_null(patch->tags[i]);
        p->ntags = patch->ntags;
    }
    if (patch->set & PROD_SET_PRICE)
        p->price_cents = patch->price_cents;
    if (patch->set & PROD_SET_CURRENCY)
        set_str(&p->currency, patch->currency);
    if (patch->set & PROD_SET_STOCK)
        p->stock = patch->stock;
    if (patch->set & PROD_SET_IMAGE_URL)
        set_str(&p->image_url, patch->image_url);
    p->seq_no = fake.next_seq++;
    p->updated_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    copy_product(a, p, out);
    return leave(0);
}

static int f_remove(void *ctx, const char *id, int64_t seq_no, int64_t primary_term,
                    const char *traceparent)
{
    struct fake_product *p;
    int rc = enter(C_REMOVE);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    fake.remove_seq_no = seq_no;
    fake.remove_term = primary_term;
    if ((p = find_product(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    if (seq_no >= 0 && (p->seq_no != seq_no || primary_term != 1))
        return leave(SVC_EPRECONDITION);
    if (p->reserved > 0)
        return leave(PROD_ERESERVED);
    p->deleted = true;
    return leave(0);
}

static int f_import(void *ctx, struct svc_arena *a, const struct prod_new *in, size_t n,
                    const char *traceparent, struct product *out, int *rcs)
{
    int rc = enter(C_IMPORT);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    fake.import_n = n;
    for (size_t i = 0; i < n; i++) {
        struct fake_product *p;

        if ((int)i == fake.import_fail_line) {
            rcs[i] = SVC_EUNAVAILABLE;
            continue;
        }
        rcs[i] = add_product(&in[i], &p);
        if (rcs[i] == 0)
            copy_product(a, p, &out[i]);
    }
    return leave(0);
}

/* The fake's orders: a key (price, time, or none for relevance, whose scores are all equal
 * here), then the id. */
static int64_t sort_key(enum prod_sort s, const struct fake_product *p)
{
    switch (s) {
    case PROD_SORT_PRICE_ASC:
    case PROD_SORT_PRICE_DESC:
        return p->price_cents;
    case PROD_SORT_NEWEST:
        return p->created_at_ms;
    default:
        return 0;
    }
}

static int order(enum prod_sort s, int64_t ka, const char *ida, int64_t kb, const char *idb)
{
    bool desc = s == PROD_SORT_PRICE_DESC || s == PROD_SORT_NEWEST;

    if (ka != kb)
        return (ka < kb) == desc ? 1 : -1;
    return strcmp(ida, idb);
}

static enum prod_sort qsort_by;

static int by_order(const void *x, const void *y)
{
    const struct fake_product *a = *(const struct fake_product *const *)x;
    const struct fake_product *b = *(const struct fake_product *const *)y;

    return order(qsort_by, sort_key(qsort_by, a), a->id, sort_key(qsort_by, b), b->id);
}

static bool matches(const struct fake_product *p, const struct prod_query *q)
{
    bool tag = q->tag == NULL;

    if (p->deleted)
        return false;
    if (q->q != NULL && strstr(p->name, q->q) == NULL && strstr(p->description, q->q) == NULL)
        return false;
    if (q->category != NULL && strcmp(p->category, q->category) != 0)
        return false;
    for (size_t i = 0; i < p->ntags && !tag; i++)
        tag = strcmp(p->tags[i], q->tag) == 0;
    if (!tag || (q->min_price >= 0 && p->price_cents < q->min_price) ||
        (q->max_price >= 0 && p->price_cents > q->max_price))
        return false;
    return !q->in_stock || p->stock - p->reserved > 0;
}

/* Adds one to the bucket KEY of B (N of them, at most PROD_FACET_MAX). */
static void count_term(struct svc_arena *a, struct prod_bucket *b, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(b[i].key, key) == 0) {
            b[i].count++;
            return;
        }
    }
    if (*n == PROD_FACET_MAX)
        return;
    b[*n] = (struct prod_bucket){.key = svc_arena_strdup(a, key), .from = -1, .to = -1, .count = 1};
    (*n)++;
}

static void copy_text(char *dst, bool *has, const char *s)
{
    *has = s != NULL;
    snprintf(dst, TEXT_MAX, "%s", s != NULL ? s : "");
}

static int f_search(void *ctx, struct svc_arena *a, const struct prod_query *q,
                    struct prod_results *out)
{
    static struct fake_product *hits[MAX_PRODUCTS];
    static const int64_t ranges[] = PROD_PRICE_RANGES;
    int rc = enter(C_SEARCH);
    size_t n = 0, first = 0;

    (void)ctx;
    if (rc != 0)
        return rc;
    copy_text(fake.search.q, &fake.search.has_q, q->q);
    copy_text(fake.search.category, &fake.search.has_category, q->category);
    copy_text(fake.search.tag, &fake.search.has_tag, q->tag);
    fake.search.min_price = q->min_price;
    fake.search.max_price = q->max_price;
    fake.search.in_stock = q->in_stock;
    fake.search.sort = q->sort;
    fake.search.limit = q->limit;
    fake.search.has_after = q->after != NULL;
    if (q->after != NULL)
        fake.search.after = *q->after;

    memset(out, 0, sizeof(*out));
    out->categories = svc_arena_calloc(a, PROD_FACET_MAX * sizeof(*out->categories));
    out->tags = svc_arena_calloc(a, PROD_FACET_MAX * sizeof(*out->tags));
    out->prices = svc_arena_calloc(a, PROD_PRICE_RANGES_N * sizeof(*out->prices));
    for (size_t i = 0; i < PROD_PRICE_RANGES_N; i++) {
        int64_t to = i + 1 < PROD_PRICE_RANGES_N ? ranges[i + 1] : -1;

        out->prices[i].from = ranges[i];
        out->prices[i].to = to;
        out->prices[i].key = to >= 0 ? svc_arena_printf(a, "%" PRId64 "-%" PRId64, ranges[i], to)
                                     : svc_arena_printf(a, "%" PRId64 "-", ranges[i]);
    }
    out->nprices = PROD_PRICE_RANGES_N;
    for (int i = 0; i < fake.nproducts; i++) {
        struct fake_product *p = &fake.products[i];

        if (!matches(p, q))
            continue;
        hits[n++] = p;
        count_term(a, out->categories, &out->ncategories, p->category);
        for (size_t k = 0; k < p->ntags; k++)
            count_term(a, out->tags, &out->ntags, p->tags[k]);
        for (size_t k = PROD_PRICE_RANGES_N; k-- > 0;) {
            if (p->price_cents >= ranges[k]) {
                out->prices[k].count++;
                break;
            }
        }
    }
    out->total = (int64_t)n;
    qsort_by = q->sort;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the array holds pointers, sorted as such */
    qsort(hits, n, sizeof(hits[0]), by_order);
    if (q->after != NULL) {
        int64_t k = q->sort == PROD_SORT_RELEVANCE ? 0 : q->after->num;

        while (first < n && order(q->sort, sort_key(q->sort, hits[first]), hits[first]->id, k,
                                  q->after->id) <= 0)
            first++;
    }
    out->items = svc_arena_calloc(a, (size_t)q->limit * sizeof(*out->items));
    while (first < n && out->n < (size_t)q->limit) {
        struct prod_hit *h = &out->items[out->n++];
        struct fake_product *p = hits[first++];

        copy_product(a, p, &h->p);
        h->score = q->sort == PROD_SORT_RELEVANCE ? 1.5 : 0;
        if (q->q != NULL && strstr(p->name, q->q) != NULL)
            h->name_html = svc_arena_printf(a, "<em>%s</em>", p->name);
    }
    if (first < n && out->n > 0) {
        const struct prod_hit *last = &out->items[out->n - 1];

        out->more = true;
        out->next.score = last->score;
        out->next.num = sort_key(q->sort, hits[first - 1]);
        memcpy(out->next.id, last->p.id, sizeof(out->next.id));
    }
    return leave(0);
}

static int f_suggest(void *ctx, struct svc_arena *a, const char *prefix, int limit,
                     const char ***names, size_t *n)
{
    int rc = enter(C_SUGGEST);

    (void)ctx;
    if (rc != 0)
        return rc;
    snprintf(fake.suggest_prefix, sizeof(fake.suggest_prefix), "%s", prefix);
    fake.suggest_limit = limit;
    *names = svc_arena_calloc(a, (size_t)limit * sizeof(**names));
    *n = 0;
    for (int i = 0; i < fake.nproducts && *n < (size_t)limit; i++)
        if (!fake.products[i].deleted &&
            strncmp(fake.products[i].name, prefix, strlen(prefix)) == 0)
            (*names)[(*n)++] = svc_arena_strdup(a, fake.products[i].name);
    return leave(0);
}

static bool same_lines(const struct fake_reservation *r, const struct prod_res_item *items,
                       size_t n)
{
    if (r->n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->items[i].product_id, items[i].product_id) != 0 ||
            r->items[i].quantity != items[i].quantity)
            return false;
    return true;
}

static int f_reserve(void *ctx, struct svc_arena *a, const char *id,
                     const struct prod_res_item *items, size_t n, int64_t ttl_ms,
                     const char *traceparent, struct prod_reservation *out,
                     struct prod_res_short *short_line, bool *replayed)
{
    struct fake_reservation *r;
    int rc = enter(C_RESERVE);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    fake.reserve_ttl_ms = ttl_ms;
    if ((r = find_res(id)) != NULL) {
        if (!same_lines(r, items, n))
            return leave(SVC_EIDEMPOTENCY);
        copy_res(a, r, out);
        *replayed = true;
        return leave(0);
    }
    for (size_t i = 0; i < n; i++) {
        struct fake_product *p = find_product(items[i].product_id);

        if (p == NULL || p->stock - p->reserved < items[i].quantity) {
            short_line->line = (int)i;
            memcpy(short_line->product_id, items[i].product_id, sizeof(short_line->product_id));
            short_line->requested = items[i].quantity;
            short_line->available = p != NULL ? p->stock - p->reserved : 0;
            return leave(p == NULL ? SVC_ENOTFOUND : PROD_ESTOCK);
        }
    }
    ck_assert_int_lt(fake.nres, MAX_RESERVATIONS);
    r = &fake.res[fake.nres++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->state = "reserved";
    memcpy(r->items, items, n * sizeof(*items));
    r->n = n;
    for (size_t i = 0; i < n; i++)
        find_product(items[i].product_id)->reserved += items[i].quantity;
    r->created_at_ms = r->updated_at_ms = fake.now_ms;
    r->expires_at_ms = fake.now_ms + ttl_ms;
    fake.now_ms += 1000;
    copy_res(a, r, out);
    *replayed = false;
    return leave(0);
}

static int transition(enum call c, struct svc_arena *a, const char *id,
                      struct prod_reservation *out, bool *replayed)
{
    bool commit = c == C_COMMIT;
    struct fake_reservation *r;
    int rc = enter(c);

    if (rc != 0)
        return rc;
    if ((r = find_res(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    copy_res(a, r, out);
    if (strcmp(r->state, commit ? "committed" : "released") == 0) {
        *replayed = true;
        return leave(0);
    }
    if (strcmp(r->state, "reserved") != 0)
        return leave(PROD_ERES_STATE);
    for (size_t i = 0; i < r->n; i++) {
        struct fake_product *p = find_product(r->items[i].product_id);

        p->reserved -= r->items[i].quantity;
        if (commit) {
            p->stock -= r->items[i].quantity;
            p->sold += r->items[i].quantity;
        }
    }
    r->state = commit ? "committed" : "released";
    r->release_reason = commit ? NULL : "requested";
    r->updated_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    copy_res(a, r, out);
    *replayed = false;
    return leave(0);
}

static int f_commit(void *ctx, struct svc_arena *a, const char *id, const char *traceparent,
                    struct prod_reservation *out, bool *replayed)
{
    (void)ctx;
    (void)traceparent;
    return transition(C_COMMIT, a, id, out, replayed);
}

static int f_release(void *ctx, struct svc_arena *a, const char *id, const char *traceparent,
                     struct prod_reservation *out, bool *replayed)
{
    (void)ctx;
    (void)traceparent;
    return transition(C_RELEASE, a, id, out, replayed);
}

static int f_res_get(void *ctx, struct svc_arena *a, const char *id, struct prod_reservation *out)
{
    struct fake_reservation *r;
    int rc = enter(C_RES_GET);

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((r = find_res(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    copy_res(a, r, out);
    return leave(0);
}

/* No route sweeps: counted, so that a test would see one that did. */
static int f_sweep(void *ctx, int64_t now_ms, int64_t *released)
{
    int rc = enter(C_SWEEP);

    (void)ctx;
    (void)now_ms;
    if (rc != 0)
        return rc;
    *released = 0;
    return leave(0);
}

/* The signature is product.h's: WHY is written by a real store. */
static bool f_ready(void *ctx, char *why, size_t cap) // NOLINT(readability-non-const-parameter)
{
    (void)ctx;
    (void)why;
    (void)cap;
    return true;
}

static struct prod_app app = {
    .store =
        {
            .create = f_create,
            .get = f_get,
            .mget = f_mget,
            .update = f_update,
            .remove = f_remove,
            .import = f_import,
            .search = f_search,
            .suggest = f_suggest,
            .reserve = f_reserve,
            .commit = f_commit,
            .release = f_release,
            .reservation_get = f_res_get,
            .sweep = f_sweep,
            .ready = f_ready,
        },
};

static const struct svc_def prod_def = {
    .name = "product-svc",
    .version = "test",
    .routes = prod_routes,
    .app = &app,
    .errors = prod_errors,
    .openapi = prod_openapi_yaml,
};

static int calls(enum call c)
{
    return testfake_calls(&fake.t, c);
}

static int total(void)
{
    return testfake_total(&fake.t);
}

static void setup(void)
{
    memset(&fake, 0, sizeof(fake));
    testfake_init(&fake.t);
    fake.now_ms = T0 + 123;
    fake.import_fail_line = -1;
    testsvc_start(&prod_def);
}

static void teardown(void)
{
    testsvc_stop();
    for (int i = 0; i < fake.nproducts; i++) {
        struct fake_product *p = &fake.products[i];

        free(p->sku);
        free(p->name);
        free(p->description);
        free(p->category);
        free(p->currency);
        free(p->image_url);
        for (size_t k = 0; k < p->ntags; k++)
            free(p->tags[k]);
    }
    testfake_release(&fake.t);
}

/* ---- the client ------------------------------------------------------------------------- */

static const char *const if_match_0[] = {"If-Match: \"0.1\"", NULL};

static void assert_refused(const char *method, const char *path, const char *body,
                           const char *field, const char *want)
{
    testsvc_assert_refused(&fake.t, method, path, NULL, body, field, want);
}

static void assert_refused_h(const char *method, const char *path, const char *const *headers,
                             const char *body, const char *field, const char *want)
{
    testsvc_assert_refused(&fake.t, method, path, headers, body, field, want);
}

static bool is_null(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    return v != NULL && json_is_null(v);
}

/* N repetitions of the UTF-8 character C, in a new buffer the caller frees. */
static char *repeat(const char *c, size_t n)
{
    size_t k = strlen(c);
    char *s = malloc(n * k + 1);

    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * k, c, k);
    s[n * k] = '\0';
    return s;
}

/* A create body (or import line) with these values, the rest fixed, in a static buffer. */
static const char *product_body(const char *sku, const char *name, int64_t price, int64_t stock)
{
    static char out[2048];

    snprintf(out, sizeof(out),
             "{\"sku\":\"%s\",\"name\":\"%s\",\"category\":\"kitchen\",\"tags\":[\"blue\"],"
             "\"price_cents\":%" PRId64 ",\"currency\":\"EUR\",\"stock\":%" PRId64 "}",
             sku, name, price, stock);
    return out;
}

/* Creates a product through the API and returns its id (static). */
static const char *create(const char *sku, const char *name, int64_t price, int64_t stock)
{
    static char id[PROD_ID_LEN + 1];
    struct testapi_reply *r =
        testapi_call("POST", "/v1/products", product_body(sku, name, price, stock));
    json_t *j;

    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    snprintf(id, sizeof(id), "%s", testapi_str(j, "id"));
    json_decref(j);
    return id;
}

static const char *id_of(const char *sku)
{
    static char id[PROD_ID_LEN + 1];

    prod_id_for_sku(sku, id);
    return id;
}

/* Percent-encodes S for a query string, in a static buffer. */
static const char *qenc(const char *s)
{
    static char out[8192];
    char *e = curl_easy_escape(NULL, s, 0);

    ck_assert_ptr_nonnull(e);
    snprintf(out, sizeof(out), "%s", e);
    curl_free(e);
    return out;
}

/* Asserts J is exactly a product as openapi.yaml's Product says (its 16 members). */
static void assert_product(json_t *j, const char *sku, const char *name, int64_t price,
                           int64_t stock, int64_t reserved, int64_t sold, const char *version)
{
    ck_assert_int_eq(json_object_size(j), 16);
    ck_assert_str_eq(testapi_str(j, "id"), id_of(sku));
    ck_assert_msg(testsvc_is_uuid_lower(testapi_str(j, "id")), "id '%s'", testapi_str(j, "id"));
    ck_assert_str_eq(testapi_str(j, "sku"), sku);
    ck_assert_str_eq(testapi_str(j, "name"), name);
    ck_assert(json_is_string(json_object_get(j, "description")));
    ck_assert(json_is_string(json_object_get(j, "category")));
    ck_assert(json_is_array(json_object_get(j, "tags")));
    ck_assert_int_eq(testapi_num(j, "price_cents"), price);
    ck_assert_str_eq(testapi_str(j, "currency"), "EUR");
    ck_assert_int_eq(testapi_num(j, "stock"), stock);
    ck_assert_int_eq(testapi_num(j, "reserved"), reserved);
    ck_assert_int_eq(testapi_num(j, "available"), stock - reserved);
    ck_assert_int_eq(testapi_num(j, "sold"), sold);
    ck_assert(json_object_get(j, "image_url") != NULL);
    ck_assert_uint_eq(strlen(testapi_str(j, "created_at")), 24);
    ck_assert_uint_eq(strlen(testapi_str(j, "updated_at")), 24);
    ck_assert_str_eq(testapi_str(j, "version"), version);
}

/* ---- creating ------------------------------------------------------------------------- */

START_TEST(create_answers_201_with_location_etag_and_the_product)
{
    struct testapi_reply *r = testapi_call(
        "POST", "/v1/products",
        "{\"sku\":\"TSHIRT-RED.m_1\",\"name\":\"Red T-shirt \\u00e9t\\u00e9\","
        "\"description\":\"Soft cotton.\",\"category\":\"clothing\",\"tags\":[\"cotton\",\"red\"],"
        "\"price_cents\":1999,\"currency\":\"EUR\",\"stock\":120,"
        "\"image_url\":\"https://img.example.com/t.jpg\"}");
    json_t *j, *tags;

    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"0.1\"");
    ck_assert_str_eq(testapi_header(r, "Location"),
                     testsvc_cat("/v1/products/", id_of("TSHIRT-RED.m_1"), ""));
    ck_assert_int_gt(strlen(testapi_header(r, "X-Request-Id")), 0);
    j = testapi_json(r);
    assert_product(j, "TSHIRT-RED.m_1", "Red T-shirt \xc3\xa9t\xc3\xa9", 1999, 120, 0, 0, "0.1");
    ck_assert_str_eq(testapi_str(j, "description"), "Soft cotton.");
    ck_assert_str_eq(testapi_str(j, "category"), "clothing");
    tags = json_object_get(j, "tags");
    ck_assert_int_eq(json_array_size(tags), 2);
    ck_assert_str_eq(json_string_value(json_array_get(tags, 0)), "cotton");
    ck_assert_str_eq(json_string_value(json_array_get(tags, 1)), "red");
    ck_assert_str_eq(testapi_str(j, "image_url"), "https://img.example.com/t.jpg");
    ck_assert_str_eq(testapi_str(j, "created_at"), "2026-01-01T00:00:00.123Z");
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:00.123Z");
    json_decref(j);
    ck_assert_int_eq(calls(C_CREATE), 1);
    ck_assert_int_eq(total(), 1);

    /* Without the optional members: description "", no tags, image_url null. */
    r = testapi_call("POST", "/v1/products",
                     "{\"sku\":\"B\",\"name\":\"b\",\"category\":\"c\",\"price_cents\":0,"
                     "\"currency\":\"USD\",\"stock\":0}");
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"1.1\"");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "description"), "");
    ck_assert_int_eq(json_array_size(json_object_get(j, "tags")), 0);
    ck_assert(is_null(j, "image_url"));
    ck_assert_str_eq(testapi_str(j, "currency"), "USD");
    json_decref(j);

    /* The product is there to read at its Location. */
    r = testapi_call("GET", testsvc_cat("/v1/products/", id_of("TSHIRT-RED.m_1"), ""), NULL);
    ck_assert_int_eq(r->status, 200);
}
END_TEST

START_TEST(create_with_a_taken_sku_is_409_naming_the_existing_product)
{
    struct testapi_reply *r;

    create("MUG-1", "Blue mug", 899, 40);
    r = testapi_call("POST", "/v1/products", product_body("MUG-1", "Other mug", 1, 1));
    testapi_assert_problem(
        r, 409, "sku-taken",
        testsvc_cat("a product with SKU 'MUG-1' exists: /v1/products/", id_of("MUG-1"), ""), "sku");
    ck_assert_int_eq(fake.nproducts, 1);
    ck_assert_int_eq(calls(C_CREATE), 2);
}
END_TEST

START_TEST(create_refuses_bad_bodies_without_touching_the_store)
{
    char *long_sku = repeat("A", 65), *long_name = repeat("n", 201), *long_cat = repeat("c", 65);
    char *long_tag = repeat("t", 33), *long_desc = repeat("d", 5001), *long_url = repeat("u", 2041);
    static char body[16384];
    static const struct {
        const char *body, *field, *want;
    } cases[] = {
        {"{\"sku\":", "", "malformed JSON"},
        {"[]", "", "request body must be a JSON object"},
        {"{\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
         "sku", "field 'sku' is required"},
        {"{\"sku\":\"S\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
         "name", "field 'name' is required"},
        {"{\"sku\":\"S\",\"name\":null,\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "name", "field 'name' is required"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
         "category", "field 'category' is required"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"currency\":\"EUR\",\"stock\":1}",
         "price_cents", "field 'price_cents' is required"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"stock\":1}",
         "currency", "field 'currency' is required"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\"}",
         "stock", "field 'stock' is required"},
        {"{\"sku\":\"a "
         "b\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "sku", "field 'sku' must be 1 to 64 of A-Z a-z 0-9 . _ -"},
        {"{\"sku\":\"caf\\u00e9\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "sku", "field 'sku' must be 1 to 64"},
        {"{\"sku\":\"\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "sku", "field 'sku'"},
        {"{\"sku\":7,\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "sku", "field 'sku' must be"},
        {"{\"sku\":\"S\",\"name\":\"   \",\"category\":\"c\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "name", "field 'name' must not be blank"},
        {"{\"sku\":\"S\",\"name\":\"\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "name", "field 'name'"},
        {"{\"sku\":\"S\",\"name\":{\"$ne\":1},\"category\":\"c\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "name", "field 'name' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"  \",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "category", "field 'category' must not be blank"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"tags\":\"red\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "tags", "field 'tags' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"tags\":[\"a\",1],\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "tags[1]", "field 'tags[1]' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"tags\":[\"a\",\"\"],\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "tags[1]", "field 'tags[1]'"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"tags\":[\"a\",\" \"],"
         "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
         "tags[1]", "field 'tags[1]' must not be blank"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"tags\":[\"1\",\"2\",\"3\",\"4\",\"5\","
         "\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\",\"18\","
         "\"19\",\"20\",\"21\"],\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
         "tags", "field 'tags'"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":-1,\"currency\":\"EUR\","
         "\"stock\":1}",
         "price_cents", "field 'price_cents' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":100000000001,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "price_cents", "field 'price_cents' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":19.99,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "price_cents", "field 'price_cents' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":\"1999\","
         "\"currency\":\"EUR\",\"stock\":1}",
         "price_cents", "field 'price_cents' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"eur\","
         "\"stock\":1}",
         "currency", "field 'currency' must be an ISO 4217 code"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"E1R\","
         "\"stock\":1}",
         "currency", "field 'currency' must be an ISO 4217 code"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EURO\","
         "\"stock\":1}",
         "currency", "field 'currency'"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":-1}",
         "stock", "field 'stock' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1000000001}",
         "stock", "field 'stock' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":true}",
         "stock", "field 'stock' must be"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"ftp://example.com/a.png\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"https://\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"javascript:alert(1)\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"http://[\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"http://exa mple.com/\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"https://img.example.com/a b.png\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"http://user:pw@host/\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"image_url\":\"http://host:123456/\"}",
         "image_url", "field 'image_url' must be an absolute http:// or https:// URL"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"id\":\"" NOONE "\"}",
         "id", "field 'id' is not allowed"},
        {"{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1,\"reserved\":0}",
         "reserved", "field 'reserved' is not allowed"},
        {"{\"$where\":1,\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "$where", "field '$where' is not allowed"},
        {"{\"sku\":\"S\",\"sku\":\"T\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "", "malformed JSON"},
        {"{\"sku\":\"S\\u0000\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,"
         "\"currency\":\"EUR\",\"stock\":1}",
         "", "malformed JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_refused("POST", "/v1/products", cases[i].body, cases[i].field, cases[i].want);

    /* Over the lengths, counted in characters. */
    snprintf(body, sizeof(body),
             "{\"sku\":\"%s\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,"
             "\"currency\":\"EUR\",\"stock\":1}",
             long_sku);
    assert_refused("POST", "/v1/products", body, "sku", "field 'sku'");
    snprintf(body, sizeof(body),
             "{\"sku\":\"S\",\"name\":\"%s\",\"category\":\"c\",\"price_cents\":1,"
             "\"currency\":\"EUR\",\"stock\":1}",
             long_name);
    assert_refused("POST", "/v1/products", body, "name", "field 'name'");
    snprintf(body, sizeof(body),
             "{\"sku\":\"S\",\"name\":\"n\",\"category\":\"%s\",\"price_cents\":1,"
             "\"currency\":\"EUR\",\"stock\":1}",
             long_cat);
    assert_refused("POST", "/v1/products", body, "category", "field 'category'");
    snprintf(body, sizeof(body),
             "{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"tags\":[\"%s\"],"
             "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
             long_tag);
    assert_refused("POST", "/v1/products", body, "tags[0]", "field 'tags[0]'");
    snprintf(body, sizeof(body),
             "{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"description\":\"%s\","
             "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
             long_desc);
    assert_refused("POST", "/v1/products", body, "description", "field 'description'");
    snprintf(body, sizeof(body),
             "{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,"
             "\"currency\":\"EUR\",\"stock\":1,\"image_url\":\"https://%s\"}",
             long_url);
    assert_refused("POST", "/v1/products", body, "image_url", "field 'image_url'");

    /* A query parameter, and a body that is not JSON. */
    assert_refused("POST", "/v1/products?sku=S", product_body("S", "n", 1, 1), "sku",
                   "query parameter 'sku' is not accepted here");
    {
        const char *h[] = {"Content-Type: text/plain", NULL};

        testapi_assert_problem(
            testapi_call_h("POST", "/v1/products", h, product_body("S", "n", 1, 1)), 415,
            "unsupported-media-type", "", NULL);
    }
    ck_assert_int_eq(total(), 0);
    free(long_sku);
    free(long_name);
    free(long_cat);
    free(long_tag);
    free(long_desc);
    free(long_url);
}
END_TEST

START_TEST(create_accepts_every_member_at_its_bounds)
{
    char *sku = repeat("Z", 64), *name = repeat("\xe2\x82\xac", 200), *cat = repeat("\xc3\xa9", 64);
    char *tag = repeat("t", 32), *desc = repeat("\xe2\x82\xac", 5000), *url = repeat("u", 2040);
    size_t cap = (size_t)64 * 1024;
    char *body = malloc(cap);
    struct testapi_reply *r;
    json_t *j;

    ck_assert_ptr_nonnull(body);
    snprintf(
        body, cap,
        "{\"sku\":\"%s\",\"name\":\"%s\",\"category\":\"%s\",\"description\":\"%s\","
        "\"tags\":[\"%s\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\","
        "\"13\",\"14\",\"15\",\"16\",\"17\",\"18\",\"19\",\"20\"],"
        "\"price_cents\":100000000000,\"currency\":\"XTS\",\"stock\":1000000000,"
        "\"image_url\":\"http://%s\"}",
        sku, name, cat, desc, tag, url);
    r = testapi_call("POST", "/v1/products", body);
    ck_assert_msg(r->status == 201, "%ld %.300s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "sku"), sku);
    ck_assert_str_eq(testapi_str(j, "name"), name);
    ck_assert_str_eq(testapi_str(j, "category"), cat);
    ck_assert_str_eq(testapi_str(j, "description"), desc);
    ck_assert_int_eq(json_array_size(json_object_get(j, "tags")), 20);
    ck_assert_int_eq(testapi_num(j, "price_cents"), PROD_PRICE_MAX);
    ck_assert_int_eq(testapi_num(j, "stock"), PROD_STOCK_MAX);
    ck_assert_uint_eq(strlen(testapi_str(j, "image_url")), 2047);
    json_decref(j);
    free(sku);
    free(name);
    free(cat);
    free(tag);
    free(desc);
    free(url);
    free(body);
}
END_TEST

/* ---- reading, changing, deleting ------------------------------------------------------- */

START_TEST(get_answers_the_product_with_its_etag)
{
    char id[PROD_ID_LEN + 1], upper[PROD_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", create("MUG-1", "Blue mug", 899, 40));
    r = testapi_call("GET", testsvc_cat("/v1/products/", id, ""), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"0.1\"");
    j = testapi_json(r);
    assert_product(j, "MUG-1", "Blue mug", 899, 40, 0, 0, "0.1");
    json_decref(j);

    /* Ids in upper case are the same id. */
    for (size_t i = 0; i <= PROD_ID_LEN; i++)
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
    ck_assert_int_eq(testapi_call("GET", testsvc_cat("/v1/products/", upper, ""), NULL)->status,
                     200);

    r = testapi_call("GET", "/v1/products/" NOONE, NULL);
    testapi_assert_problem(r, 404, "not-found", "product '" NOONE "' not found", NULL);
    assert_refused("GET", "/v1/products/MUG-1", NULL, "id",
                   "path parameter 'id' must be a UUID, not 'MUG-1'");
    assert_refused("GET", "/v1/products/%7B%22%24ne%22%3A1%7D", NULL, "id", "must be a UUID");
    assert_refused("GET", testsvc_cat("/v1/products/", id, "?fields=name"), NULL, "fields",
                   "query parameter 'fields' is not accepted here");
    ck_assert_int_eq(calls(C_GET), 3);
}
END_TEST

START_TEST(patch_with_if_match_changes_the_members_given)
{
    char path[128];
    struct testapi_reply *r;
    json_t *j;

    snprintf(path, sizeof(path), "/v1/products/%s", create("MUG-1", "Blue mug", 899, 40));
    r = testapi_call_h("PATCH", path, if_match_0, "{\"price_cents\":1499,\"stock\":80}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"1.1\"");
    j = testapi_json(r);
    assert_product(j, "MUG-1", "Blue mug", 1499, 80, 0, 0, "1.1");
    json_decref(j);
    ck_assert_uint_eq(fake.patch_set, PROD_SET_PRICE | PROD_SET_STOCK);
    ck_assert_int_eq(fake.patch_seq_no, 0);
    ck_assert_int_eq(fake.patch_term, 1);

    /* Every member, as merge-patch too; null leaves a member as it is. */
    {
        const char *h[] = {"If-Match: \"1.1\"", "Content-Type: application/merge-patch+json", NULL};

        r = testapi_call_h("PATCH", path, h,
                           "{\"name\":\"Green mug\",\"description\":\"Big.\",\"category\":\"home\","
                           "\"tags\":[\"green\",\"big\"],\"currency\":\"USD\",\"stock\":null,"
                           "\"image_url\":\"http://img.example.com/g.png\"}");
    }
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_uint_eq(fake.patch_set, PROD_SET_NAME | PROD_SET_DESCRIPTION | PROD_SET_CATEGORY |
                                          PROD_SET_TAGS | PROD_SET_CURRENCY | PROD_SET_IMAGE_URL);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "name"), "Green mug");
    ck_assert_str_eq(testapi_str(j, "description"), "Big.");
    ck_assert_str_eq(testapi_str(j, "category"), "home");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "tags"), 1)), "big");
    ck_assert_str_eq(testapi_str(j, "currency"), "USD");
    ck_assert_int_eq(testapi_num(j, "stock"), 80);
    ck_assert_str_eq(testapi_str(j, "image_url"), "http://img.example.com/g.png");
    json_decref(j);

    /* image_url null removes the image; an empty tags list removes the tags. */
    {
        const char *h[] = {"If-Match: \"2.1\"", NULL};

        r = testapi_call_h("PATCH", path, h, "{\"image_url\":null,\"tags\":[]}");
    }
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_uint_eq(fake.patch_set, PROD_SET_IMAGE_URL | PROD_SET_TAGS);
    j = testapi_json(r);
    ck_assert(is_null(j, "image_url"));
    ck_assert_int_eq(json_array_size(json_object_get(j, "tags")), 0);
    ck_assert_str_eq(testapi_str(j, "version"), "3.1");
    json_decref(j);
    ck_assert_int_eq(calls(C_UPDATE), 3);
}
END_TEST

START_TEST(patch_if_match_is_required_and_checked)
{
    char path[128];
    struct testapi_reply *r;
    const char *bad[] = {
        "If-Match: *",
        "If-Match: W/\"0.1\"",
        "If-Match: \"0.1\", \"1.1\"",
        "If-Match: 0.1",
        "If-Match: \"a.1\"",
        "If-Match: \"0.0\"",
        "If-Match: \"0\"",
        "If-Match: \"0.1",
        "If-Match: \"-1.1\"",
        "If-Match: \"0.1\"x",
        "If-Match: \"99999999999999999999.1\"",
        "If-Match;", /* curl's way of sending an empty header */
    };

    snprintf(path, sizeof(path), "/v1/products/%s", create("MUG-1", "Blue mug", 899, 40));
    r = testapi_call("PATCH", path, "{\"stock\":1}");
    testapi_assert_problem(r, 428, "precondition-required", "send If-Match with the product's ETag",
                           NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *h[] = {bad[i], NULL};

        assert_refused_h("PATCH", path, h, "{\"stock\":1}", "If-Match",
                         "header 'If-Match' must be one ETag of this API");
    }
    ck_assert_int_eq(calls(C_UPDATE), 0);

    /* A stale version: 412, nothing changed. */
    {
        const char *h[] = {"If-Match: \"7.1\"", NULL};

        r = testapi_call_h("PATCH", path, h, "{\"stock\":1}");
    }
    testapi_assert_problem(r, 412, "precondition-failed", "the product changed since the ETag",
                           NULL);
    ck_assert_int_eq(fake.patch_seq_no, 7);
    ck_assert_int_eq(fake.products[0].stock, 40);

    /* Surrounding spaces are fine. */
    {
        const char *h[] = {"If-Match:   \"0.1\"  ", NULL};

        ck_assert_int_eq(testapi_call_h("PATCH", path, h, "{\"stock\":1}")->status, 200);
    }
    r = testapi_call_h("PATCH", "/v1/products/" NOONE, if_match_0, "{\"stock\":1}");
    testapi_assert_problem(r, 404, "not-found", "product '" NOONE "' not found", NULL);
}
END_TEST

START_TEST(patch_refuses_bad_bodies_without_touching_the_store)
{
    char path[128];
    char *url = repeat("u", 2041);
    static char body[4096];
    static const struct {
        const char *body, *field, *want;
    } cases[] = {
        {"{}", "", "the body must change at least one of"},
        {"{\"name\":null,\"tags\":null}", "", "the body must change at least one of"},
        {"{\"sku\":\"MUG-2\"}", "sku", "field 'sku' cannot be changed"},
        {"{\"sku\":null,\"stock\":1}", "sku", "field 'sku' cannot be changed"},
        {"{\"id\":\"" NOONE "\"}", "id", "field 'id' is not allowed"},
        {"{\"version\":\"3.1\",\"stock\":1}", "version", "field 'version' is not allowed"},
        {"{\"name\":\"  \"}", "name", "field 'name' must not be blank"},
        {"{\"name\":\"\"}", "name", "field 'name'"},
        {"{\"category\":\" \"}", "category", "field 'category' must not be blank"},
        {"{\"category\":\"\\t\"}", "category",
         "field 'category' must not contain control characters (U+0009 at character 1)"},
        {"{\"tags\":[\"ok\",\" \"]}", "tags[1]", "field 'tags[1]' must not be blank"},
        {"{\"tags\":\"a\"}", "tags", "field 'tags' must be"},
        {"{\"price_cents\":-5}", "price_cents", "field 'price_cents' must be"},
        {"{\"price_cents\":1.5}", "price_cents", "field 'price_cents' must be"},
        {"{\"stock\":\"1\"}", "stock", "field 'stock' must be"},
        {"{\"stock\":1000000001}", "stock", "field 'stock' must be"},
        {"{\"currency\":\"usd\"}", "currency", "field 'currency' must be an ISO 4217 code"},
        {"{\"image_url\":\"ftp://x\"}", "image_url",
         "field 'image_url' must be an absolute http://"},
        {"{\"image_url\":5}", "image_url", "field 'image_url' must be an absolute http://"},
        {"{\"image_url\":\"\"}", "image_url", "field 'image_url' must be an absolute http://"},
        {"{\"stock\":{\"$inc\":1}}", "stock", "field 'stock' must be"},
        {"{\"stock\":", "", "malformed JSON"},
        {"[{\"stock\":1}]", "", "request body must be a JSON object"},
    };

    snprintf(path, sizeof(path), "/v1/products/%s", create("MUG-1", "Blue mug", 899, 40));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_refused_h("PATCH", path, if_match_0, cases[i].body, cases[i].field, cases[i].want);
    snprintf(body, sizeof(body), "{\"image_url\":\"https://%s\"}", url);
    assert_refused_h("PATCH", path, if_match_0, body, "image_url",
                     "at most 2048 characters, or null to remove the image");
    assert_refused_h("PATCH", "/v1/products/x", if_match_0, "{\"stock\":1}", "id",
                     "must be a UUID");
    assert_refused_h("PATCH", testsvc_cat(path, "?stock=1", ""), if_match_0, "{\"stock\":1}",
                     "stock", "query parameter 'stock' is not accepted here");
    {
        const char *h[] = {"If-Match: \"0.1\"", "Content-Type: text/plain", NULL};

        testapi_assert_problem(testapi_call_h("PATCH", path, h, "{\"stock\":1}"), 415,
                               "unsupported-media-type", "", NULL);
    }
    ck_assert_int_eq(calls(C_UPDATE), 0);
    free(url);
}
END_TEST

/* Names, descriptions, categories and tags are display text: a right-to-left override or an
 * invisible character would make a product show as something it is not. */
START_TEST(display_text_refuses_bidi_and_zero_width_characters_without_touching_the_store)
{
    static const struct {
        const char *member, *value, *field, *want;
    } cases[] = {
        {"name", "\"Ad\\u202Ea\"", "name",
         "field 'name' must not contain bidirectional controls (U+202E at character 3)"},
        {"name", "\"A\\u200Bda\"", "name",
         "field 'name' must not contain zero-width characters (U+200B at character 2)"},
        {"name", "\"\\uFEFFAda\"", "name",
         "field 'name' must not contain zero-width characters (U+FEFF at character 1)"},
        {"name", "\"Mug\\u0085\"", "name",
         "field 'name' must not contain control characters (U+0085 at character 4)"},
        {"description", "\"safe\\ngpj.exe\\u202E\"", "description",
         "field 'description' must not contain bidirectional controls (U+202E at character 13)"},
        {"description", "\"a\\u200Db\"", "description",
         "field 'description' must not contain zero-width characters (U+200D at character 2)"},
        {"description", "\"a\\u001b[2Jb\"", "description",
         "field 'description' must not contain control characters (U+001B at character 2)"},
        {"category", "\"kit\\u2066chen\"", "category",
         "field 'category' must not contain bidirectional controls (U+2066 at character 4)"},
        {"category", "\"kitchen\\uFEFF\"", "category",
         "field 'category' must not contain zero-width characters (U+FEFF at character 8)"},
        {"tags", "[\"blue\",\"r\\u061Ced\"]", "tags[1]",
         "field 'tags[1]' must not contain bidirectional controls (U+061C at character 2)"},
        {"tags", "[\"\\u200Cblue\"]", "tags[0]",
         "field 'tags[0]' must not contain zero-width characters (U+200C at character 1)"},
    };
    static char body[1024], path[128];
    struct testapi_reply *r;
    json_t *j;

    snprintf(path, sizeof(path), "/v1/products/%s", create("MUG-1", "Blue mug", 899, 40));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m = cases[i].member;

        snprintf(body, sizeof(body),
                 "{\"sku\":\"S-%zu\",\"name\":%s,\"category\":%s,\"description\":%s,"
                 "\"tags\":%s,\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}",
                 i, strcmp(m, "name") == 0 ? cases[i].value : "\"n\"",
                 strcmp(m, "category") == 0 ? cases[i].value : "\"c\"",
                 strcmp(m, "description") == 0 ? cases[i].value : "\"d\"",
                 strcmp(m, "tags") == 0 ? cases[i].value : "[\"t\"]");
        assert_refused("POST", "/v1/products", body, cases[i].field, cases[i].want);
        snprintf(body, sizeof(body), "{\"%s\":%s}", m, cases[i].value);
        assert_refused_h("PATCH", path, if_match_0, body, cases[i].field, cases[i].want);
    }
    ck_assert_int_eq(calls(C_CREATE), 1);
    ck_assert_int_eq(calls(C_UPDATE), 0);
    /* Line breaks and tabs are what a description is made of; Hebrew needs no control. */
    r = testapi_call("POST", "/v1/products",
                     "{\"sku\":\"S-OK\",\"name\":\"\\u05e1\\u05e4\\u05dc\",\"category\":\"c\","
                     "\"description\":\"line 1\\r\\nline\\t2\",\"tags\":[\"caf\\u00e9\"],"
                     "\"price_cents\":1,\"currency\":\"EUR\",\"stock\":1}");
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "description"), "line 1\r\nline\t2");
    ck_assert_str_eq(testapi_str(j, "name"), "\xd7\xa1\xd7\xa4\xd7\x9c");
    json_decref(j);
}
END_TEST

START_TEST(patch_stock_below_the_reserved_units_is_409_stock_reserved)
{
    char id[PROD_ID_LEN + 1], body[256];
    struct testapi_reply *r;

    snprintf(id, sizeof(id), "%s", create("MUG-1", "Blue mug", 899, 10));
    snprintf(body, sizeof(body),
             "{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"%s\",\"quantity\":6}]}",
             id);
    ck_assert_int_eq(testapi_call("POST", "/v1/reservations", body)->status, 201);
    r = testapi_call_h("PATCH", testsvc_cat("/v1/products/", id, ""), if_match_0, "{\"stock\":5}");
    testapi_assert_problem(r, 409, "stock-reserved",
                           "stock 5 is below the units open reservations hold", "stock");
    ck_assert_int_eq(fake.products[0].stock, 10);
    /* Down to the reserved units is fine. */
    r = testapi_call_h("PATCH", testsvc_cat("/v1/products/", id, ""), if_match_0, "{\"stock\":6}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
}
END_TEST

START_TEST(delete_answers_204_then_the_product_is_gone)
{
    char path[128], body[256];
    struct testapi_reply *r;

    snprintf(path, sizeof(path), "/v1/products/%s", create("MUG-1", "Blue mug", 899, 40));
    /* A stale If-Match: 412, still there. */
    {
        const char *h[] = {"If-Match: \"3.1\"", NULL};

        testapi_assert_problem(testapi_call_h("DELETE", path, h, NULL), 412, "precondition-failed",
                               "the product changed", NULL);
    }
    ck_assert_int_eq(fake.remove_seq_no, 3);
    assert_refused_h("DELETE", path, (const char *const[]){"If-Match: *", NULL}, NULL, "If-Match",
                     "header 'If-Match' must be one ETag of this API");
    assert_refused("DELETE", testsvc_cat(path, "?force=true", ""), NULL, "force",
                   "query parameter 'force' is not accepted here");
    assert_refused("DELETE", "/v1/products/a.b", NULL, "id", "must be a UUID");
    r = testapi_call_h("DELETE", path, if_match_0, NULL);
    ck_assert_int_eq(r->status, 204);
    ck_assert_uint_eq(r->len, 0);
    ck_assert_int_eq(fake.remove_seq_no, 0);
    testapi_assert_problem(testapi_call("GET", path, NULL), 404, "not-found", "not found", NULL);
    testapi_assert_problem(testapi_call("DELETE", path, NULL), 404, "not-found", "not found", NULL);
    /* Without If-Match: any version. */
    ck_assert_int_eq(fake.remove_seq_no, -1);

    /* Units held by an open reservation: 409. */
    snprintf(path, sizeof(path), "/v1/products/%s", create("MUG-2", "Red mug", 899, 40));
    snprintf(body, sizeof(body),
             "{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"%s\",\"quantity\":1}]}",
             path + strlen("/v1/products/"));
    ck_assert_int_eq(testapi_call("POST", "/v1/reservations", body)->status, 201);
    testapi_assert_problem(testapi_call("DELETE", path, NULL), 409, "stock-reserved",
                           "has units held by open reservations", NULL);
    ck_assert_int_eq(calls(C_REMOVE), 4);
}
END_TEST

START_TEST(batch_get_answers_found_and_missing_in_the_order_asked)
{
    char a[PROD_ID_LEN + 1], b[PROD_ID_LEN + 1], body[512];
    struct testapi_reply *r;
    json_t *j, *items, *missing;

    snprintf(a, sizeof(a), "%s", create("A", "Apple", 100, 1));
    snprintf(b, sizeof(b), "%s", create("B", "Banana", 200, 2));
    snprintf(body, sizeof(body), "{\"ids\":[\"%s\",\"%s\",\"%s\"]}", b, NOONE, a);
    r = testapi_call("POST", "/v1/products:batchGet", body);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 2);
    items = json_object_get(j, "items");
    missing = json_object_get(j, "missing");
    ck_assert_int_eq(json_array_size(items), 2);
    assert_product(json_array_get(items, 0), "B", "Banana", 200, 2, 0, 0, "1.1");
    assert_product(json_array_get(items, 1), "A", "Apple", 100, 1, 0, 0, "0.1");
    ck_assert_int_eq(json_array_size(missing), 1);
    ck_assert_str_eq(json_string_value(json_array_get(missing, 0)), NOONE);
    json_decref(j);
    ck_assert_int_eq(calls(C_MGET), 1);
}
END_TEST

START_TEST(batch_get_refuses_bad_bodies_without_touching_the_store)
{
    static char body[8192];
    size_t n;

    assert_refused("POST", "/v1/products:batchGet", "{}", "ids", "field 'ids' is required");
    assert_refused("POST", "/v1/products:batchGet", "{\"ids\":[]}", "ids", "field 'ids'");
    assert_refused("POST", "/v1/products:batchGet", "{\"ids\":\"" NOONE "\"}", "ids",
                   "field 'ids' must be");
    assert_refused("POST", "/v1/products:batchGet", "{\"ids\":[\"" NOONE "\",\"MUG-1\"]}", "ids[1]",
                   "field 'ids[1]' must be");
    assert_refused("POST", "/v1/products:batchGet",
                   "{\"ids\":[\"" NOONE "\",\"3C4D5E6F-7081-4C9D-8E0F-2A3B4C5D6E7F\"]}", "ids[1]",
                   "field 'ids[1]' repeats ids[0]");
    assert_refused("POST", "/v1/products:batchGet", "{\"ids\":[\"" NOONE "\"],\"fields\":[]}",
                   "fields", "field 'fields' is not allowed");
    assert_refused("POST", "/v1/products:batchGet?ids=1", "{\"ids\":[\"" NOONE "\"]}", "ids",
                   "query parameter 'ids' is not accepted here");
    n = (size_t)snprintf(body, sizeof(body), "{\"ids\":[");
    for (int i = 0; i <= PROD_MGET_MAX; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"%08x-0000-4000-8000-000000000000\"",
                              i > 0 ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    assert_refused("POST", "/v1/products:batchGet", body, "ids", "field 'ids'");
    ck_assert_int_eq(total(), 0);
}
END_TEST

/* ---- import ----------------------------------------------------------------------------- */

static const char *const ndjson[] = {"Content-Type: application/x-ndjson", NULL};

START_TEST(import_creates_each_line_and_reports_it_by_line_number)
{
    static char body[4096];
    struct testapi_reply *r;
    json_t *j, *res;

    create("MUG-2", "Green mug", 899, 1);
    snprintf(body, sizeof(body), "%s\n\n", product_body("MUG-1", "Blue mug", 899, 40));
    snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s\r\n",
             product_body("MUG-2", "Green mug", 899, 12));
    snprintf(body + strlen(body), sizeof(body) - strlen(body), "   \n%s",
             product_body("MUG-3", "Red mug", 999, 0));
    r = testapi_call_h("POST", "/v1/products:import", ndjson, body);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 4);
    ck_assert_int_eq(testapi_num(j, "created"), 2);
    ck_assert_int_eq(testapi_num(j, "existing"), 1);
    ck_assert_int_eq(testapi_num(j, "failed"), 0);
    res = json_object_get(j, "results");
    ck_assert_int_eq(json_array_size(res), 3);
    {
        static const struct {
            int line;
            const char *status, *sku;
        } want[] = {{1, "created", "MUG-1"}, {3, "exists", "MUG-2"}, {5, "created", "MUG-3"}};

        for (size_t i = 0; i < 3; i++) {
            json_t *e = json_array_get(res, i);

            ck_assert_int_eq(json_object_size(e), 4);
            ck_assert_int_eq(testapi_num(e, "line"), want[i].line);
            ck_assert_str_eq(testapi_str(e, "status"), want[i].status);
            ck_assert_str_eq(testapi_str(e, "sku"), want[i].sku);
            ck_assert_str_eq(testapi_str(e, "id"), id_of(want[i].sku));
        }
    }
    json_decref(j);
    ck_assert_uint_eq(fake.import_n, 3);
    ck_assert_int_eq(calls(C_IMPORT), 1);

    /* The same file again: every line exists; harmless. */
    r = testapi_call_h("POST", "/v1/products:import", ndjson, body);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    ck_assert_int_eq(testapi_num(j, "created"), 0);
    ck_assert_int_eq(testapi_num(j, "existing"), 3);
    json_decref(j);
    ck_assert_int_eq(fake.nproducts, 3);

    /* A content type with parameters is still NDJSON. */
    {
        const char *h[] = {"Content-Type: application/x-ndjson; charset=utf-8", NULL};

        r = testapi_call_h("POST", "/v1/products:import", h, product_body("MUG-4", "Mug", 1, 1));
        ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    }
}
END_TEST

START_TEST(import_with_lines_that_could_not_be_written_is_207)
{
    static char body[4096];
    struct testapi_reply *r;
    json_t *j, *res;

    snprintf(body, sizeof(body), "%s\n", product_body("A", "a", 1, 1));
    snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s\n",
             product_body("B", "b", 1, 1));
    fake.import_fail_line = 1;
    r = testapi_call_h("POST", "/v1/products:import", ndjson, body);
    ck_assert_msg(r->status == 207, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_int_eq(testapi_num(j, "created"), 1);
    ck_assert_int_eq(testapi_num(j, "existing"), 0);
    ck_assert_int_eq(testapi_num(j, "failed"), 1);
    res = json_object_get(j, "results");
    ck_assert_str_eq(testapi_str(json_array_get(res, 0), "status"), "created");
    ck_assert_str_eq(testapi_str(json_array_get(res, 1), "status"), "unavailable");
    ck_assert_int_eq(testapi_num(json_array_get(res, 1), "line"), 2);
    json_decref(j);
}
END_TEST

START_TEST(import_with_bad_lines_is_400_listing_them_and_imports_nothing)
{
    static char body[8192];
    struct testapi_reply *r;
    json_t *j, *errors;
    static const struct {
        int line;
        const char *field, *detail;
    } want[] = {
        {2, "currency", "field 'currency' must be an ISO 4217 code"},
        {3, "", "malformed JSON"},
        {4, "sku", "SKU 'A' is already on line 1"},
        {5, "", "request body must be a JSON object"},
        {6, "$where", "field '$where' is not allowed"},
        {8, "tags[0]", "field 'tags[0]' must not be blank"},
    };

    snprintf(body, sizeof(body),
             "%s\n"
             "{\"sku\":\"B\",\"name\":\"b\",\"category\":\"c\",\"price_cents\":1,\"currency\":"
             "\"eur\",\"stock\":1}\n"
             "{\"sku\":\"C\",\n"
             "{\"sku\":\"A\",\"name\":\"again\",\"category\":\"c\",\"price_cents\":1,\"currency\":"
             "\"EUR\",\"stock\":1}\n"
             "[1,2]\n"
             "{\"$where\":\"1\",\"sku\":\"D\"}\n"
             "{\"sku\":\"E\",\"name\":\"e\",\"category\":\"c\",\"price_cents\":1,\"currency\":"
             "\"EUR\",\"stock\":1}\n"
             "{\"sku\":\"F\",\"name\":\"f\",\"category\":\"c\",\"tags\":[\" \"],\"price_cents\":1,"
             "\"currency\":\"EUR\",\"stock\":1}\n",
             product_body("A", "a", 1, 1));
    r = testapi_call_h("POST", "/v1/products:import", ndjson, body);
    testapi_assert_problem(r, 400, "invalid-request",
                           "6 of 8 lines are invalid (the first 100 are listed in 'errors'): "
                           "nothing was imported",
                           NULL);
    j = testapi_json(r);
    errors = json_object_get(j, "errors");
    ck_assert_int_eq(json_array_size(errors), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *e = json_array_get(errors, i);

        ck_assert_int_eq(json_object_size(e), 3);
        ck_assert_int_eq(testapi_num(e, "line"), want[i].line);
        ck_assert_str_eq(testapi_str(e, "field"), want[i].field);
        ck_assert_msg(strstr(testapi_str(e, "detail"), want[i].detail) != NULL,
                      "line %d: '%s' does not say '%s'", want[i].line, testapi_str(e, "detail"),
                      want[i].detail);
    }
    json_decref(j);
    ck_assert_int_eq(total(), 0);
    ck_assert_int_eq(fake.nproducts, 0);
}
END_TEST

START_TEST(import_refuses_what_is_not_an_import_without_touching_the_store)
{
    size_t cap = (size_t)200 * 1024, n = 0;
    char *body = malloc(cap);
    struct testapi_reply *r;

    ck_assert_ptr_nonnull(body);
    /* More than 1000 products: 413, whatever their content. */
    for (int i = 0; i <= 1000; i++)
        n += (size_t)snprintf(body + n, cap - n, "{\"sku\":\"S%d\"}\n", i);
    r = testapi_call_h("POST", "/v1/products:import", ndjson, body);
    testapi_assert_problem(r, 413, "payload-too-large",
                           "at most 1000 products per import (line 1001 is one too many)", NULL);

    /* Not NDJSON. */
    r = testapi_call("POST", "/v1/products:import", product_body("A", "a", 1, 1));
    testapi_assert_problem(r, 415, "unsupported-media-type", "application/x-ndjson", NULL);
    {
        const char *h[] = {"Content-Type: application/x-ndjsonx", NULL};

        r = testapi_call_h("POST", "/v1/products:import", h, product_body("A", "a", 1, 1));
        testapi_assert_problem(r, 415, "unsupported-media-type", "application/x-ndjson", NULL);
    }
    r = testapi_call("POST", "/v1/products:import", NULL);
    testapi_assert_problem(r, 415, "unsupported-media-type", "application/x-ndjson", NULL);

    /* Nothing in it. */
    assert_refused_h("POST", "/v1/products:import", ndjson, "\n  \n", "",
                     "the body holds no product");
    assert_refused_h("POST", "/v1/products:import?dry_run=true", ndjson,
                     product_body("A", "a", 1, 1), "dry_run",
                     "query parameter 'dry_run' is not accepted here");
    ck_assert_int_eq(total(), 0);

    /* 1000 is the limit, not over it. */
    n = 0;
    for (int i = 0; i < 1000; i++) {
        char sku[16];

        snprintf(sku, sizeof(sku), "S%d", i);
        n += (size_t)snprintf(body + n, cap - n, "%s\n", product_body(sku, "n", 1, 1));
    }
    r = testapi_call_h("POST", "/v1/products:import", ndjson, body);
    ck_assert_msg(r->status == 200, "%ld %.300s", r->status, r->body);
    ck_assert_uint_eq(fake.import_n, 1000);
    free(body);
}
END_TEST

/* ---- search ----------------------------------------------------------------------------- */

START_TEST(search_passes_typed_parameters_and_answers_hits_facets_and_cursor)
{
    struct testapi_reply *r;
    json_t *j, *items, *hit, *facets, *b;

    create("MUG-1", "Blue mug", 899, 40);
    create("MUG-2", "Green mug", 1500, 0);
    create("PLATE-1", "Plate", 30000, 5);

    /* No parameter: every product, newest first, defaults passed on. */
    r = testapi_call("GET", "/v1/products", NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert(!fake.search.has_q && !fake.search.has_category && !fake.search.has_tag);
    ck_assert_int_eq(fake.search.min_price, -1);
    ck_assert_int_eq(fake.search.max_price, -1);
    ck_assert(!fake.search.in_stock);
    ck_assert_int_eq(fake.search.sort, PROD_SORT_NEWEST);
    ck_assert_int_eq(fake.search.limit, PROD_LIMIT_DEFAULT);
    ck_assert(!fake.search.has_after);
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 5);
    ck_assert_int_eq(testapi_num(j, "total"), 3);
    ck_assert_str_eq(testapi_str(j, "sort"), "newest");
    ck_assert(is_null(j, "next_cursor"));
    items = json_object_get(j, "items");
    ck_assert_int_eq(json_array_size(items), 3);
    hit = json_array_get(items, 0);
    /* A product without its full description, and its highlight; no score. */
    ck_assert_int_eq(json_object_size(hit), 16);
    ck_assert_ptr_null(json_object_get(hit, "description"));
    ck_assert_str_eq(testapi_str(hit, "sku"), "PLATE-1");
    ck_assert_int_eq(json_object_size(json_object_get(hit, "highlight")), 0);
    facets = json_object_get(j, "facets");
    ck_assert_int_eq(json_object_size(facets), 3);
    b = json_array_get(json_object_get(facets, "category"), 0);
    ck_assert_int_eq(json_object_size(b), 2);
    ck_assert_str_eq(testapi_str(b, "value"), "kitchen");
    ck_assert_int_eq(testapi_num(b, "count"), 3);
    b = json_array_get(json_object_get(facets, "tag"), 0);
    ck_assert_str_eq(testapi_str(b, "value"), "blue");
    ck_assert_int_eq(json_array_size(json_object_get(facets, "price")), PROD_PRICE_RANGES_N);
    b = json_array_get(json_object_get(facets, "price"), 0);
    ck_assert_int_eq(json_object_size(b), 4);
    ck_assert_str_eq(testapi_str(b, "key"), "0-1000");
    ck_assert_int_eq(testapi_num(b, "from"), 0);
    ck_assert_int_eq(testapi_num(b, "to"), 1000);
    ck_assert_int_eq(testapi_num(b, "count"), 1);
    b = json_array_get(json_object_get(facets, "price"), PROD_PRICE_RANGES_N - 1);
    ck_assert_str_eq(testapi_str(b, "key"), "25000-");
    ck_assert(is_null(b, "to"));
    ck_assert_int_eq(testapi_num(b, "count"), 1);
    json_decref(j);

    /* Every parameter, typed. */
    r = testapi_call("GET",
                     "/v1/products?q=mug&category=kitchen&tag=blue&min_price=0&max_price=1000"
                     "&in_stock=true&sort=price_desc&limit=5",
                     NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(fake.search.q, "mug");
    ck_assert_str_eq(fake.search.category, "kitchen");
    ck_assert_str_eq(fake.search.tag, "blue");
    ck_assert_int_eq(fake.search.min_price, 0);
    ck_assert_int_eq(fake.search.max_price, 1000);
    ck_assert(fake.search.in_stock);
    ck_assert_int_eq(fake.search.sort, PROD_SORT_PRICE_DESC);
    ck_assert_int_eq(fake.search.limit, 5);
    j = testapi_json(r);
    ck_assert_int_eq(testapi_num(j, "total"), 1);
    ck_assert_str_eq(testapi_str(j, "sort"), "price_desc");
    json_decref(j);

    /* With q, relevance by default: hits have a score and highlights. */
    r = testapi_call("GET", "/v1/products?q=mug", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(fake.search.sort, PROD_SORT_RELEVANCE);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "sort"), "relevance");
    hit = json_array_get(json_object_get(j, "items"), 0);
    ck_assert_int_eq(json_object_size(hit), 17);
    ck_assert(json_is_real(json_object_get(hit, "score")));
    ck_assert_str_eq(testapi_str(json_object_get(hit, "highlight"), "name"),
                     testsvc_cat("<em>", testapi_str(hit, "name"), "</em>"));
    json_decref(j);

    /* Relevance without q is newest. */
    r = testapi_call("GET", "/v1/products?sort=relevance&in_stock=false", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(fake.search.sort, PROD_SORT_NEWEST);
    ck_assert(!fake.search.in_stock);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "sort"), "newest");
    json_decref(j);
    ck_assert_int_eq(calls(C_SEARCH), 4);
}
END_TEST

START_TEST(search_walks_45_products_in_pages_exactly_once)
{
    int seen[45] = {0}, pages = 0;
    char cursor[256] = "", path[512];
    int64_t prev = -1;

    for (int i = 0; i < 45; i++) {
        char sku[16];

        snprintf(sku, sizeof(sku), "P%02d", i);
        /* Prices repeat, so that ties are broken by id across pages. */
        create(sku, sku, (int64_t)100 * (i % 15), 1);
    }
    for (;;) {
        struct testapi_reply *r;
        json_t *j, *items, *next;

        snprintf(path, sizeof(path), "/v1/products?sort=price_asc%s%s",
                 cursor[0] != '\0' ? "&cursor=" : "", cursor);
        r = testapi_call("GET", path, NULL);
        ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
        ck_assert(fake.search.has_after == (cursor[0] != '\0'));
        j = testapi_json(r);
        items = json_object_get(j, "items");
        pages++;
        ck_assert_int_eq(json_array_size(items), pages < 3 ? 20 : 5);
        for (size_t k = 0; k < json_array_size(items); k++) {
            json_t *p = json_array_get(items, k);
            int n = (int)strtol(testapi_str(p, "sku") + 1, NULL, 10);
            int64_t price = testapi_num(p, "price_cents");

            ck_assert_int_ge(price, prev);
            prev = price;
            seen[n]++;
        }
        next = json_object_get(j, "next_cursor");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        ck_assert_uint_eq(strspn(cursor, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_"),
                          strlen(cursor));
        json_decref(j);
        ck_assert_int_lt(pages, 3);
    }
    ck_assert_int_eq(pages, 3);
    for (int i = 0; i < 45; i++)
        ck_assert_msg(seen[i] == 1, "product %d seen %d times", i, seen[i]);
    ck_assert_int_eq(fake.search.sort, PROD_SORT_PRICE_ASC);

    /* A cursor only goes with its own sort. */
    {
        struct testapi_reply *r = testapi_call("GET", "/v1/products?sort=price_asc&limit=2", NULL);
        json_t *j = testapi_json(r);

        snprintf(cursor, sizeof(cursor), "%s", testapi_str(j, "next_cursor"));
        json_decref(j);
    }
    assert_refused("GET", testsvc_cat("/v1/products?sort=price_desc&cursor=", cursor, ""), NULL,
                   "cursor", "query parameter 'cursor' belongs to another sort");
    assert_refused("GET", testsvc_cat("/v1/products?cursor=", cursor, ""), NULL, "cursor",
                   "belongs to another sort");
}
END_TEST

START_TEST(search_refuses_bad_parameters_without_touching_the_store)
{
    char *q801 = repeat("q", 801), *cat257 = repeat("c", 257), *tag129 = repeat("t", 129);
    static char path[2048];
    static const struct {
        const char *query, *field, *want;
    } cases[] = {
        {"limit=0", "limit", "query parameter 'limit' must be from 1 to 100"},
        {"limit=101", "limit", "query parameter 'limit' must be from 1 to 100"},
        {"limit=ten", "limit", "query parameter 'limit' must be an integer"},
        {"limit=", "limit", "query parameter 'limit'"},
        {"min_price=-1", "min_price", "query parameter 'min_price' must be from 0"},
        {"max_price=100000000001", "max_price", "query parameter 'max_price' must be from 0"},
        {"min_price=1.5", "min_price", "query parameter 'min_price' must be an integer"},
        {"min_price=500&max_price=100", "min_price",
         "query parameter 'min_price' (500) must not be above 'max_price' (100)"},
        {"in_stock=yes", "in_stock", "query parameter 'in_stock' must be true or false"},
        {"in_stock=", "in_stock", "query parameter 'in_stock'"},
        {"sort=best", "sort", "query parameter 'sort' must be one of 'relevance', 'price_asc'"},
        {"sort=_score", "sort", "query parameter 'sort' must be one of"},
        {"q=", "q", "query parameter 'q' must be 1 to 800 bytes and not blank"},
        {"q=%20%20%09", "q", "query parameter 'q' must be 1 to 800 bytes and not blank"},
        {"q=+", "q", "query parameter 'q' must be 1 to 800 bytes and not blank"},
        {"category=", "category", "query parameter 'category' must be 1 to 256 bytes"},
        {"tag=%20", "tag", "query parameter 'tag' must be 1 to 128 bytes"},
        {"cursor=!!!", "cursor", "query parameter 'cursor' is not a valid cursor"},
        {"cursor=", "cursor", "query parameter 'cursor' is not a valid cursor"},
        /* base64url("3:12:not-a-uuid"): a cursor of the default sort, but not one of ours. */
        {"cursor=MzoxMjpub3QtYS11dWlk", "cursor", "query parameter 'cursor' is not a cursor"},
        /* base64url("3:x:3c4d5e6f-7081-4c9d-8e0f-2a3b4c5d6e7f") */
        {"cursor=Mzp4OjNjNGQ1ZTZmLTcwODEtNGM5ZC04ZTBmLTJhM2I0YzVkNmU3Zg", "cursor",
         "query parameter 'cursor' is not a cursor"},
        /* base64url('{"$gt":""}') */
        {"cursor=eyIkZ3QiOiIifQ", "cursor", "query parameter 'cursor'"},
        {"size=10", "size", "query parameter 'size' is not accepted here"},
        {"from=10", "from", "query parameter 'from' is not accepted here"},
        {"q%5B%24ne%5D=1", "q[$ne]", "query parameter 'q[$ne]' is not accepted here"},
        {"query=%7B%22match_all%22%3A%7B%7D%7D", "query",
         "query parameter 'query' is not accepted here"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "/v1/products?%s", cases[i].query);
        assert_refused("GET", path, NULL, cases[i].field, cases[i].want);
    }
    snprintf(path, sizeof(path), "/v1/products?q=%s", q801);
    assert_refused("GET", path, NULL, "q", "query parameter 'q' must be 1 to 800 bytes");
    snprintf(path, sizeof(path), "/v1/products?category=%s", cat257);
    assert_refused("GET", path, NULL, "category", "query parameter 'category'");
    snprintf(path, sizeof(path), "/v1/products?tag=%s", tag129);
    assert_refused("GET", path, NULL, "tag", "query parameter 'tag'");
    ck_assert_int_eq(total(), 0);

    /* At the bounds. */
    q801[800] = '\0';
    snprintf(path, sizeof(path),
             "/v1/products?q=%s&limit=100&min_price=100000000000&max_price=100000000000", q801);
    ck_assert_int_eq(testapi_call("GET", path, NULL)->status, 200);
    ck_assert_uint_eq(strlen(fake.search.q), 800);
    ck_assert_int_eq(fake.search.limit, 100);
    ck_assert_int_eq(fake.search.min_price, PROD_PRICE_MAX);
    free(q801);
    free(cat257);
    free(tag129);
}
END_TEST

/* Text that would mean something to the engine's query DSL, or to a query-string parser,
 * reaches the store byte for byte, only as the typed member it was sent as: the store puts it
 * in multi_match as text, so it can only ever be words. */
START_TEST(dsl_looking_text_reaches_the_store_verbatim_as_text)
{
    static const char *const texts[] = {
        "{\"query\":{\"match_all\":{}}}",
        "name:* OR 1=1",
        "*",
        "\" AND description:\"x",
        "red~2 +blue -green (a|b) ^10",
        "script: ctx._source.stock = 0",
        "<em>\\u0041</em> & %",
        "caf\xc3\xa9 \xe2\x82\xac",
    };
    char path[4096];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char q[1024];
        struct testapi_reply *r;

        snprintf(q, sizeof(q), "%s", qenc(texts[i]));
        snprintf(path, sizeof(path), "/v1/products?q=%s&category=%s&tag=%s&sort=newest", q, q, q);
        r = testapi_call("GET", path, NULL);
        ck_assert_msg(r->status == 200, "%s: %ld %s", texts[i], r->status, r->body);
        ck_assert_str_eq(fake.search.q, texts[i]);
        ck_assert_str_eq(fake.search.category, texts[i]);
        ck_assert_str_eq(fake.search.tag, texts[i]);
        /* ... and nothing else changed because of it. */
        ck_assert_int_eq(fake.search.sort, PROD_SORT_NEWEST);
        ck_assert_int_eq(fake.search.min_price, -1);
        ck_assert_int_eq(fake.search.limit, PROD_LIMIT_DEFAULT);
        ck_assert(!fake.search.in_stock && !fake.search.has_after);

        snprintf(path, sizeof(path), "/v1/products:suggest?prefix=%s", q);
        r = testapi_call("GET", path, NULL);
        ck_assert_msg(r->status == 200, "%s: %ld %s", texts[i], r->status, r->body);
        ck_assert_str_eq(fake.suggest_prefix, texts[i]);
    }
    /* '+' in a query string is a space, as for any form. */
    ck_assert_int_eq(testapi_call("GET", "/v1/products?q=blue+mug", NULL)->status, 200);
    ck_assert_str_eq(fake.search.q, "blue mug");
}
END_TEST

START_TEST(suggest_answers_names_for_a_prefix)
{
    struct testapi_reply *r;
    json_t *j, *s;

    create("MUG-1", "Blue mug", 899, 40);
    create("MUG-2", "Blue bowl", 899, 40);
    create("MUG-3", "Green mug", 899, 40);
    r = testapi_call("GET", "/v1/products:suggest?prefix=Blu", NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_int_eq(fake.suggest_limit, PROD_SUGGEST_MAX);
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 2);
    ck_assert_str_eq(testapi_str(j, "prefix"), "Blu");
    s = json_object_get(j, "suggestions");
    ck_assert_int_eq(json_array_size(s), 2);
    ck_assert_str_eq(json_string_value(json_array_get(s, 0)), "Blue mug");
    ck_assert_str_eq(json_string_value(json_array_get(s, 1)), "Blue bowl");
    json_decref(j);
    r = testapi_call("GET", "/v1/products:suggest?prefix=Blu&limit=1", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(fake.suggest_limit, 1);

    assert_refused("GET", "/v1/products:suggest", NULL, "prefix",
                   "query parameter 'prefix' is required");
    assert_refused("GET", "/v1/products:suggest?prefix=", NULL, "prefix",
                   "query parameter 'prefix' must be 1 to 200 bytes and not blank");
    assert_refused("GET", "/v1/products:suggest?prefix=%20", NULL, "prefix", "not blank");
    assert_refused("GET", "/v1/products:suggest?prefix=a&limit=11", NULL, "limit",
                   "query parameter 'limit' must be from 1 to 10");
    assert_refused("GET", "/v1/products:suggest?prefix=a&limit=0", NULL, "limit",
                   "query parameter 'limit'");
    assert_refused("GET", "/v1/products:suggest?prefix=a&fuzzy=1", NULL, "fuzzy",
                   "query parameter 'fuzzy' is not accepted here");
    ck_assert_int_eq(calls(C_SUGGEST), 2);
}
END_TEST

/* ---- reservations ----------------------------------------------------------------------- */

/* A reservation body for ID with lines "A:2,B:1" of the products A, B in a static buffer. */
static const char *reserve_body(const char *id, const char *a, int64_t qa, const char *b,
                                int64_t qb, const char *extra)
{
    static char out[1024];
    int n = snprintf(
        out, sizeof(out),
        "{\"reservation_id\":\"%s\",\"items\":[{\"product_id\":\"%s\",\"quantity\":%" PRId64 "}",
        id, a, qa);

    if (b != NULL)
        n += snprintf(out + n, sizeof(out) - (size_t)n,
                      ",{\"product_id\":\"%s\",\"quantity\":%" PRId64 "}", b, qb);
    snprintf(out + n, sizeof(out) - (size_t)n, "]%s}", extra);
    return out;
}

static void assert_reservation(json_t *j, const char *id, const char *state, const char *reason)
{
    ck_assert_int_eq(json_object_size(j), 7);
    ck_assert_str_eq(testapi_str(j, "id"), id);
    ck_assert_str_eq(testapi_str(j, "state"), state);
    ck_assert(json_is_array(json_object_get(j, "items")));
    ck_assert_uint_eq(strlen(testapi_str(j, "expires_at")), 24);
    ck_assert_uint_eq(strlen(testapi_str(j, "created_at")), 24);
    ck_assert_uint_eq(strlen(testapi_str(j, "updated_at")), 24);
    if (reason != NULL)
        ck_assert_str_eq(testapi_str(j, "release_reason"), reason);
    else
        ck_assert(is_null(j, "release_reason"));
}

START_TEST(reserve_is_201_then_200_replayed_then_409_with_other_lines)
{
    char a[PROD_ID_LEN + 1], b[PROD_ID_LEN + 1], first[4096];
    struct testapi_reply *r;
    json_t *j, *items;

    snprintf(a, sizeof(a), "%s", create("A", "Apple", 100, 10));
    snprintf(b, sizeof(b), "%s", create("B", "Banana", 200, 3));
    r = testapi_call("POST", "/v1/reservations", reserve_body(RES1, a, 2, b, 3, ""));
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "Location"), "/v1/reservations/" RES1);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    ck_assert_int_eq(fake.reserve_ttl_ms, (int64_t)PROD_RES_TTL_DEFAULT * 1000);
    j = testapi_json(r);
    assert_reservation(j, RES1, "reserved", NULL);
    ck_assert_str_eq(testapi_str(j, "created_at"), "2026-01-01T00:00:02.123Z");
    ck_assert_str_eq(testapi_str(j, "expires_at"), "2026-01-01T00:15:02.123Z");
    items = json_object_get(j, "items");
    ck_assert_int_eq(json_array_size(items), 2);
    ck_assert_int_eq(json_object_size(json_array_get(items, 0)), 2);
    ck_assert_str_eq(testapi_str(json_array_get(items, 0), "product_id"), a);
    ck_assert_int_eq(testapi_num(json_array_get(items, 0), "quantity"), 2);
    ck_assert_str_eq(testapi_str(json_array_get(items, 1), "product_id"), b);
    ck_assert_int_eq(testapi_num(json_array_get(items, 1), "quantity"), 3);
    json_decref(j);
    testsvc_keep(first, sizeof(first), r);

    /* The product shows the hold. */
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/products/", a, ""), NULL));
    ck_assert_int_eq(testapi_num(j, "reserved"), 2);
    ck_assert_int_eq(testapi_num(j, "available"), 8);
    json_decref(j);

    /* The same request again (ids in upper case are the same ids): a replay. */
    {
        char up[sizeof(RES1)];

        for (size_t i = 0; i < sizeof(up); i++)
            up[i] = (char)(RES1[i] >= 'a' && RES1[i] <= 'f' ? RES1[i] - 32 : RES1[i]);
        r = testapi_call("POST", "/v1/reservations", reserve_body(up, a, 2, b, 3, ""));
    }
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(testapi_header(r, "Location"), "/v1/reservations/" RES1);
    ck_assert_str_eq(r->body, first);
    ck_assert_int_eq(fake.nres, 1);

    /* The same id, other lines. */
    r = testapi_call("POST", "/v1/reservations", reserve_body(RES1, a, 1, b, 3, ""));
    testapi_assert_problem(r, 409, "idempotency-key-reused",
                           "reservation '" RES1 "' exists with other lines", "reservation_id");

    /* ttl is passed on, in milliseconds. */
    r = testapi_call("POST", "/v1/reservations",
                     reserve_body(RES2, a, 1, NULL, 0, ",\"ttl\":86400"));
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_int_eq(fake.reserve_ttl_ms, (int64_t)PROD_RES_TTL_MAX * 1000);
    ck_assert_int_eq(calls(C_RESERVE), 4);
}
END_TEST

START_TEST(reserve_short_or_unknown_lines_are_named_and_nothing_is_reserved)
{
    char a[PROD_ID_LEN + 1], b[PROD_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(a, sizeof(a), "%s", create("A", "Apple", 100, 10));
    snprintf(b, sizeof(b), "%s", create("B", "Banana", 200, 3));
    r = testapi_call("POST", "/v1/reservations", reserve_body(RES1, a, 2, b, 5, ""));
    testapi_assert_problem(r, 409, "insufficient-stock",
                           testsvc_cat("items[1]: product '", b,
                                       "' has 3 available, 5 requested: nothing was reserved"),
                           "items[1]");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "product_id"), b);
    ck_assert_int_eq(testapi_num(j, "requested"), 5);
    ck_assert_int_eq(testapi_num(j, "available"), 3);
    json_decref(j);
    ck_assert_int_eq(fake.products[0].reserved, 0);
    ck_assert_int_eq(fake.nres, 0);

    r = testapi_call("POST", "/v1/reservations", reserve_body(RES1, NOONE, 1, a, 1, ""));
    testapi_assert_problem(r, 422, "unprocessable",
                           "items[0]: product '" NOONE "' does not exist: nothing was reserved",
                           "items[0]");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "product_id"), NOONE);
    ck_assert_int_eq(testapi_num(j, "requested"), 1);
    ck_assert_int_eq(testapi_num(j, "available"), 0);
    json_decref(j);
    ck_assert_int_eq(fake.nres, 0);
}
END_TEST

START_TEST(reserve_refuses_bad_bodies_without_touching_the_store)
{
    static char body[16384];
    size_t n;
    static const struct {
        const char *body, *field, *want;
    } cases[] = {
        {"{\"items\":[{\"product_id\":\"" NOONE "\",\"quantity\":1}]}", "reservation_id",
         "field 'reservation_id' is required"},
        {"{\"reservation_id\":\"order-42\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1}]}",
         "reservation_id", "field 'reservation_id' must be"},
        {"{\"reservation_id\":\"" RES1 "\"}", "items", "field 'items' is required"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[]}", "items", "field 'items'"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":{}}", "items", "field 'items' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"quantity\":1}]}", "items[0].product_id",
         "field 'items[0].product_id' is required"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"MUG-1\",\"quantity\":1}]}",
         "items[0].product_id", "field 'items[0].product_id' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE "\"}]}",
         "items[0].quantity", "field 'items[0].quantity' is required"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":0}]}",
         "items[0].quantity", "field 'items[0].quantity' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":10001}]}",
         "items[0].quantity", "field 'items[0].quantity' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":-3}]}",
         "items[0].quantity", "field 'items[0].quantity' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1,\"price\":5}]}",
         "items[0].price", "field 'items[0].price' is not allowed"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1},{\"product_id\":\"3C4D5E6F-7081-4C9D-8E0F-2A3B4C5D6E7F\","
         "\"quantity\":2}]}",
         "items[1].product_id",
         "field 'items[1].product_id' repeats items[0]: one line per product"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1}],\"ttl\":0}",
         "ttl", "field 'ttl' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1}],\"ttl\":86401}",
         "ttl", "field 'ttl' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1}],\"ttl\":\"15m\"}",
         "ttl", "field 'ttl' must be"},
        {"{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1}],\"state\":\"committed\"}",
         "state", "field 'state' is not allowed"},
        {"{\"reservation_id\":", "", "malformed JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_refused("POST", "/v1/reservations", cases[i].body, cases[i].field, cases[i].want);
    n = (size_t)snprintf(body, sizeof(body), "{\"reservation_id\":\"" RES1 "\",\"items\":[");
    for (int i = 0; i <= PROD_RES_ITEMS_MAX; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s{\"product_id\":\"%08x-0000-4000-8000-000000000000\","
                              "\"quantity\":1}",
                              i > 0 ? "," : "", i);
    snprintf(body + n, sizeof(body) - n, "]}");
    assert_refused("POST", "/v1/reservations", body, "items", "field 'items'");
    assert_refused("POST", "/v1/reservations?ttl=5", reserve_body(RES1, NOONE, 1, NULL, 0, ""),
                   "ttl", "query parameter 'ttl' is not accepted here");
    {
        const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

        testapi_assert_problem(testapi_call_h("POST", "/v1/reservations", h, "a=1"), 415,
                               "unsupported-media-type", "", NULL);
    }
    ck_assert_int_eq(total(), 0);
}
END_TEST

START_TEST(commit_and_release_follow_the_state_machine)
{
    char a[PROD_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(a, sizeof(a), "%s", create("A", "Apple", 100, 10));
    ck_assert_int_eq(
        testapi_call("POST", "/v1/reservations", reserve_body(RES1, a, 4, NULL, 0, ""))->status,
        201);
    ck_assert_int_eq(
        testapi_call("POST", "/v1/reservations", reserve_body(RES2, a, 1, NULL, 0, ""))->status,
        201);

    /* reserved -> committed; again: replayed. */
    r = testapi_call("POST", "/v1/reservations/" RES1 "/commit", NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    j = testapi_json(r);
    assert_reservation(j, RES1, "committed", NULL);
    json_decref(j);
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/products/", a, ""), NULL));
    ck_assert_int_eq(testapi_num(j, "stock"), 6);
    ck_assert_int_eq(testapi_num(j, "reserved"), 1);
    ck_assert_int_eq(testapi_num(j, "sold"), 4);
    json_decref(j);
    r = testapi_call("POST", "/v1/reservations/" RES1 "/commit", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    /* A committed reservation cannot be released. */
    r = testapi_call("POST", "/v1/reservations/" RES1 "/release", NULL);
    testapi_assert_problem(r, 409, "reservation-state",
                           "reservation '" RES1 "' is committed: it cannot be released", NULL);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "state"), "committed");
    json_decref(j);

    /* reserved -> released; again: replayed; then it cannot be committed. */
    r = testapi_call("POST", "/v1/reservations/" RES2 "/release", NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    j = testapi_json(r);
    assert_reservation(j, RES2, "released", "requested");
    json_decref(j);
    r = testapi_call("POST", "/v1/reservations/" RES2 "/release", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    r = testapi_call("POST", "/v1/reservations/" RES2 "/commit", NULL);
    testapi_assert_problem(r, 409, "reservation-state",
                           "reservation '" RES2 "' is released (requested): it cannot be committed",
                           NULL);
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/products/", a, ""), NULL));
    ck_assert_int_eq(testapi_num(j, "reserved"), 0);
    ck_assert_int_eq(testapi_num(j, "available"), 6);
    json_decref(j);

    /* A replayed create of a released reservation answers its state now. */
    r = testapi_call("POST", "/v1/reservations", reserve_body(RES2, a, 1, NULL, 0, ""));
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    assert_reservation(j, RES2, "released", "requested");
    json_decref(j);

    /* GET. */
    r = testapi_call("GET", "/v1/reservations/" RES1, NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    assert_reservation(j, RES1, "committed", NULL);
    json_decref(j);
    testapi_assert_problem(testapi_call("GET", "/v1/reservations/" NOONE, NULL), 404, "not-found",
                           "reservation '" NOONE "' not found", NULL);
    testapi_assert_problem(testapi_call("POST", "/v1/reservations/" NOONE "/commit", NULL), 404,
                           "not-found", "reservation '" NOONE "' not found", NULL);
    testapi_assert_problem(testapi_call("POST", "/v1/reservations/" NOONE "/release", NULL), 404,
                           "not-found", "reservation '" NOONE "' not found", NULL);
}
END_TEST

START_TEST(reservation_routes_refuse_bad_input_without_touching_the_store)
{
    static const char *const paths[] = {"/v1/reservations/" RES1 "/commit",
                                        "/v1/reservations/" RES1 "/release"};

    for (size_t i = 0; i < 2; i++) {
        assert_refused("POST", paths[i], "{}", "", "this operation takes no body");
        assert_refused("POST", paths[i], "{\"state\":\"committed\"}", "",
                       "this operation takes no body");
        assert_refused("POST", testsvc_cat(paths[i], "?force=1", ""), NULL, "force",
                       "query parameter 'force' is not accepted here");
    }
    assert_refused("POST", "/v1/reservations/order-42/commit", NULL, "id",
                   "path parameter 'id' must be a UUID, not 'order-42'");
    assert_refused("POST", "/v1/reservations/%24ne/release", NULL, "id", "must be a UUID");
    assert_refused("GET", "/v1/reservations/x", NULL, "id", "must be a UUID");
    assert_refused("GET", "/v1/reservations/" RES1 "?state=reserved", NULL, "state",
                   "query parameter 'state' is not accepted here");
    {
        const char *h[] = {"Content-Type: text/plain", NULL};

        testapi_assert_problem(testapi_call_h("POST", "/v1/reservations/" RES1 "/commit", h, "now"),
                               415, "unsupported-media-type", "", NULL);
    }
    ck_assert_int_eq(total(), 0);
}
END_TEST

/* ---- failures and the contract ---------------------------------------------------------- */

START_TEST(store_unavailable_is_503_with_retry_after_on_every_route)
{
    static const struct testsvc_request json_routes[] = {
        {"GET", "/v1/products/" NOONE, NULL, C_GET},
        {"GET", "/v1/products?q=mug", NULL, C_SEARCH},
        {"GET", "/v1/products:suggest?prefix=m", NULL, C_SUGGEST},
        {"POST", "/v1/products",
         "{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}",
         C_CREATE},
        {"POST", "/v1/products:batchGet", "{\"ids\":[\"" NOONE "\"]}", C_MGET},
        {"PATCH", "/v1/products/" NOONE, "{\"stock\":1}", C_UPDATE},
        {"DELETE", "/v1/products/" NOONE, NULL, C_REMOVE},
        {"POST", "/v1/reservations",
         "{\"reservation_id\":\"" RES1 "\",\"items\":[{\"product_id\":\"" NOONE
         "\",\"quantity\":1}]}",
         C_RESERVE},
        {"GET", "/v1/reservations/" RES1, NULL, C_RES_GET},
        {"POST", "/v1/reservations/" RES1 "/commit", NULL, C_COMMIT},
        {"POST", "/v1/reservations/" RES1 "/release", NULL, C_RELEASE},
    };
    static const struct testsvc_request import[] = {
        {"POST", "/v1/products:import",
         "{\"sku\":\"S\",\"name\":\"n\",\"category\":\"c\",\"price_cents\":1,\"currency\":\"EUR\","
         "\"stock\":1}\n",
         C_IMPORT},
    };

    testsvc_assert_unavailable(&fake.t, json_routes, sizeof(json_routes) / sizeof(json_routes[0]),
                               if_match_0, "the search engine is unavailable: retry later");
    testsvc_assert_unavailable(&fake.t, import, 1, ndjson,
                               "the search engine is unavailable: retry later");

    /* A timeout or a refusal for lack of resources is the same 503 to a client. */
    fake.t.fail = SVC_ETIMEDOUT;
    testapi_assert_problem(testapi_call("GET", "/v1/products/" NOONE, NULL), 503, "unavailable",
                           "the search engine is unavailable", NULL);
    fake.t.fail = SVC_EAGAIN;
    testapi_assert_problem(testapi_call("GET", "/v1/products?q=x", NULL), 503, "unavailable",
                           "the search engine is unavailable", NULL);
    ck_assert_str_eq(testapi_header(testapi_call("GET", "/v1/products?q=x", NULL), "Retry-After"),
                     "1");
    ck_assert_int_eq(calls(C_SWEEP), 0);
}
END_TEST

START_TEST(openapi_yaml_is_served_and_names_every_route)
{
    static const char *const problems[] = {"sku-taken",
                                           "insufficient-stock",
                                           "reservation-state",
                                           "stock-reserved",
                                           "idempotency-key-reused",
                                           "precondition-failed",
                                           "precondition-required",
                                           "unprocessable",
                                           "unsupported-media-type",
                                           "payload-too-large",
                                           "invalid-request",
                                           "unavailable",
                                           NULL};

    testsvc_assert_openapi(prod_routes, problems);
}
END_TEST

/* Every problem type product-svc can answer is in its openapi.yaml and docs/architecture.md,
 * with its status, and they name no other: lib's common ones, the lib codes its handlers
 * answer, and its own errors. */
START_TEST(every_problem_type_is_documented)
{
    static const int uses[] = {SVC_EPRECONDITION, SVC_EPRECONDREQUIRED, SVC_EUNPROCESSABLE,
                               SVC_EIDEMPOTENCY, SVC_OK};

    testproblems_check_openapi((const char *)prod_openapi_yaml, uses, prod_errors);
    testproblems_check_docs("product-svc", prod_errors);
}
END_TEST

/* ---- the product id of a SKU ------------------------------------------------------------ */

START_TEST(the_id_of_a_sku_is_a_fixed_version_8_uuid)
{
    /* Pinned: the id is every product's identity in the engine, so the derivation (the first
     * 16 bytes of SHA-256("polyglot:product:" SKU), version and variant set) must never
     * change. Computed independently: python3 hashlib. */
    static const struct {
        const char *sku, *id;
    } known[] = {
        {"SKU-1", "2eb03aba-0cfa-876a-a48c-b781eb37cc8f"},
        {"SKU-2", "0f0817a8-863e-824f-a32c-3fa8723137f6"},
        {"a", "26c5156d-ee44-8e52-8d2a-2eeb02fd6904"},
    };
    char id[PROD_ID_LEN + 1], again[PROD_ID_LEN + 1], other[PROD_ID_LEN + 1];

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        memset(id, 'x', sizeof(id));
        prod_id_for_sku(known[i].sku, id);
        ck_assert_str_eq(id, known[i].id);
    }
    /* Deterministic, distinct for distinct SKUs (case counts), and a valid version-8 UUID in
     * lowercase, for many SKUs. */
    for (int i = 0; i < 2000; i++) {
        char sku[32];

        snprintf(sku, sizeof(sku), "%s-%d", i % 2 ? "SKU" : "sku", i);
        prod_id_for_sku(sku, id);
        prod_id_for_sku(sku, again);
        ck_assert_str_eq(id, again);
        ck_assert_msg(testsvc_is_uuid_lower(id), "'%s' for '%s'", id, sku);
        ck_assert_msg(id[14] == '8', "version of '%s'", id);
        ck_assert_msg(strchr("89ab", id[19]) != NULL, "variant of '%s'", id);
        snprintf(sku + strlen(sku), sizeof(sku) - strlen(sku), ".");
        prod_id_for_sku(sku, other);
        ck_assert_str_ne(id, other);
    }
    prod_id_for_sku("MUG-1", id);
    prod_id_for_sku("mug-1", other);
    ck_assert_str_ne(id, other);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("product_http");
    TCase *tc = tcase_create("api");
    TCase *ids = tcase_create("ids");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_answers_201_with_location_etag_and_the_product);
    tcase_add_test(tc, create_with_a_taken_sku_is_409_naming_the_existing_product);
    tcase_add_test(tc, create_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, create_accepts_every_member_at_its_bounds);
    tcase_add_test(tc, get_answers_the_product_with_its_etag);
    tcase_add_test(tc, patch_with_if_match_changes_the_members_given);
    tcase_add_test(tc, patch_if_match_is_required_and_checked);
    tcase_add_test(tc, patch_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc,
                   display_text_refuses_bidi_and_zero_width_characters_without_touching_the_store);
    tcase_add_test(tc, patch_stock_below_the_reserved_units_is_409_stock_reserved);
    tcase_add_test(tc, delete_answers_204_then_the_product_is_gone);
    tcase_add_test(tc, batch_get_answers_found_and_missing_in_the_order_asked);
    tcase_add_test(tc, batch_get_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, import_creates_each_line_and_reports_it_by_line_number);
    tcase_add_test(tc, import_with_lines_that_could_not_be_written_is_207);
    tcase_add_test(tc, import_with_bad_lines_is_400_listing_them_and_imports_nothing);
    tcase_add_test(tc, import_refuses_what_is_not_an_import_without_touching_the_store);
    tcase_add_test(tc, search_passes_typed_parameters_and_answers_hits_facets_and_cursor);
    tcase_add_test(tc, search_walks_45_products_in_pages_exactly_once);
    tcase_add_test(tc, search_refuses_bad_parameters_without_touching_the_store);
    tcase_add_test(tc, dsl_looking_text_reaches_the_store_verbatim_as_text);
    tcase_add_test(tc, suggest_answers_names_for_a_prefix);
    tcase_add_test(tc, reserve_is_201_then_200_replayed_then_409_with_other_lines);
    tcase_add_test(tc, reserve_short_or_unknown_lines_are_named_and_nothing_is_reserved);
    tcase_add_test(tc, reserve_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, commit_and_release_follow_the_state_machine);
    tcase_add_test(tc, reservation_routes_refuse_bad_input_without_touching_the_store);
    tcase_add_test(tc, store_unavailable_is_503_with_retry_after_on_every_route);
    tcase_add_test(tc, openapi_yaml_is_served_and_names_every_route);
    tcase_add_test(tc, every_problem_type_is_documented);
    suite_add_tcase(s, tc);
    tcase_add_test(ids, the_id_of_a_sku_is_a_fixed_version_8_uuid);
    suite_add_tcase(s, ids);
    return testenv_run(s);
}

/*
 * product-svc's store against the real OpenSearch of deploy/local (integration): what the
 * handlers and the relay observe through product.h's interface and the outbox source.
 *
 * The run works on indices of its own (prod_os_opts.prefix, unique per process), created once
 * by the migrations and dropped at the end, so the running service's catalog is never touched;
 * each test still makes its own products (its own SKU prefix and category), so tests do not
 * meet either. Search is near real time: a test refreshes the indices before it searches, as a
 * second would.
 */
#include "testenv.h"

#include "product_svc.h"
#include "svc/arena.h"
#include "svc/client.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/idem.h"
#include "svc/migrate.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static char prefix[64];
static struct prod_os *os;
static struct prod_store st;
static struct svc_arena *arena;

/* The engine's credentials, from product-svc's env file: the only ones it accepts. */
static const char *os_user(void)
{
    return testenv_get("product-svc", "OPENSEARCH_USER");
}

static const char *os_password(void)
{
    return testenv_get("product-svc", "OPENSEARCH_PASSWORD");
}

static int open_with(const char *pfx, const struct svc_migration *migrations, struct prod_os **out)
{
    const char *url = testenv_get("product-svc", "OPENSEARCH_URL");
    struct prod_os_opts o = {.url = url,
                             .user = os_user(),
                             .password = os_password(),
                             .timeout_ms = 10000,
                             .migrations = migrations,
                             .prefix = pfx};

    testenv_require_port("opensearch", testenv_port_of_url(url));
    return prod_os_new(&o, out);
}

/* Once per run (in the runner's process): the indices, by the migrations. No connection is
 * left open for the forked tests to share. */
static void run_setup(void)
{
    struct prod_os *first;
    int rc;

    snprintf(prefix, sizeof(prefix), "%s_", testenv_unique("itstore"));
    rc = open_with(prefix, NULL, &first);
    ck_assert_msg(rc == 0, "opensearch: product-svc store does not open: %s", svc_err_name(rc));
    prod_os_free(first);
    svc_client_thread_release();
}

static void run_teardown(void)
{
    struct prod_os *last;

    if (open_with(prefix, NULL, &last) == 0) {
        prod_os_drop_all(last);
        prod_os_free(last);
    }
    svc_client_thread_release();
}

static void setup(void)
{
    int rc = open_with(prefix, NULL, &os);

    ck_assert_msg(rc == 0, "opensearch: product-svc store does not open: %s", svc_err_name(rc));
    prod_os_store(os, &st);
    arena = svc_arena_new();
}

/* The indices of a test that made its own (a migration test), dropped even when it failed. */
static char own_prefix[64];

static void teardown(void)
{
    struct prod_os *o;

    if (own_prefix[0] != '\0' && open_with(own_prefix, NULL, &o) == 0) {
        prod_os_drop_all(o);
        prod_os_free(o);
    }
    svc_arena_free(arena);
    prod_os_free(os);
    os = NULL;
}

/* A raw call to the engine, as the test's own client: 2xx expected, the answer returned (the
 * caller drops it). */
static json_t *engine(const char *method, const char *path, const char *body)
{
    char url[512], userpwd[256];
    json_t *in = body != NULL ? json_loads(body, 0, NULL) : NULL;
    json_t *out = NULL;
    struct svc_client_resp resp = {0};
    struct svc_client_req req = {.method = method, .url = url, .userpwd = userpwd};
    int rc;

    snprintf(url, sizeof(url), "%s%s", testenv_get("product-svc", "OPENSEARCH_URL"), path);
    snprintf(userpwd, sizeof(userpwd), "%s:%s", os_user(), os_password());
    rc = svc_client_call_json(&req, in, &resp, &out);
    ck_assert_msg(rc == 0 && resp.status / 100 == 2, "opensearch: %s %s -> %s %ld %s", method, path,
                  svc_err_name(rc), resp.status, resp.body);
    svc_client_resp_release(&resp);
    json_decref(in);
    return out;
}

/* What a second of the engine's refresh interval would do: the writes become searchable. */
static void refresh(void)
{
    char path[160];

    snprintf(path, sizeof(path), "/%sproducts,%sreservations/_refresh", prefix, prefix);
    json_decref(engine("POST", path, NULL));
}

/* "t<8 hex>": a SKU prefix and category of this test alone. */
static const char *new_tag(void)
{
    char u[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(u);
    return svc_arena_printf(arena, "t%.8s", u);
}

static const char *new_id(void)
{
    char u[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(u);
    return svc_arena_strdup(arena, u);
}

static struct product create(const char *sku, const char *name, const char *description,
                             const char *category, const char *tag, int64_t price, int64_t stock)
{
    const char **tags = svc_arena_alloc(arena, 2 * sizeof(*tags));
    struct prod_new in = {.sku = sku,
                          .name = name,
                          .description = description,
                          .category = category,
                          .tags = tags,
                          .ntags = 0,
                          .price_cents = price,
                          .currency = "EUR",
                          .stock = stock};
    struct product p;
    int rc;

    if (tag != NULL)
        tags[in.ntags++] = tag;
    tags[in.ntags++] = "all";
    rc = st.create(st.ctx, arena, &in, NULL, &p);
    ck_assert_msg(rc == 0, "create '%s': %s", sku, svc_err_name(rc));
    return p;
}

static struct product get(const char *id)
{
    struct product p;
    int rc = st.get(st.ctx, arena, id, &p);

    ck_assert_msg(rc == 0, "get '%s': %s", id, svc_err_name(rc));
    return p;
}

static struct prod_results search(const struct prod_query *q)
{
    struct prod_results r;
    int rc = st.search(st.ctx, arena, q, &r);

    ck_assert_msg(rc == 0, "search: %s", svc_err_name(rc));
    return r;
}

/* A query on CATEGORY alone, everything else absent. */
static struct prod_query in_category(const char *category)
{
    struct prod_query q = {.category = category,
                           .min_price = -1,
                           .max_price = -1,
                           .sort = PROD_SORT_RELEVANCE,
                           .limit = PROD_LIMIT_MAX};
    return q;
}

static int64_t bucket(const struct prod_bucket *b, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(b[i].key, key) == 0)
            return b[i].count;
    return 0;
}

static int reserve(const char *rid, const char *pid, int64_t qty, int64_t ttl_ms,
                   struct prod_reservation *r, bool *replayed)
{
    struct prod_res_item it = {.quantity = qty};
    struct prod_res_short sh;

    snprintf(it.product_id, sizeof(it.product_id), "%s", pid);
    return st.reserve(st.ctx, arena, rid, &it, 1, ttl_ms, NULL, r, &sh, replayed);
}

/* ---- the catalog --------------------------------------------------------------------------- */

START_TEST(create_get_patch_delete)
{
    const char *t = new_tag();
    const char *sku = svc_arena_printf(arena, "%s-1", t);
    struct product p = create(sku, "Blue kettle", "A kettle, blue", t, "kitchen", 2999, 5);
    struct product g, u;
    struct prod_patch patch = {
        .set = PROD_SET_PRICE | PROD_SET_NAME, .price_cents = 2499, .name = "Blue kettle 2"};
    char expect_id[PROD_ID_LEN + 1];
    const char *ids[2];
    struct product two[2];
    bool found[2];

    prod_id_for_sku(sku, expect_id);
    ck_assert_str_eq(p.id, expect_id);
    g = get(p.id);
    ck_assert_str_eq(g.sku, sku);
    ck_assert_str_eq(g.name, "Blue kettle");
    ck_assert_int_eq(g.price_cents, 2999);
    ck_assert_int_eq(g.stock, 5);
    ck_assert_int_eq(g.ntags, 2);
    ck_assert_int_eq(g.seq_no, p.seq_no);
    ck_assert_int_eq(g.primary_term, p.primary_term);

    /* A stale version is refused and changes nothing. */
    ck_assert_int_eq(st.update(st.ctx, arena, p.id, p.seq_no + 7, p.primary_term, &patch, NULL, &u),
                     SVC_EPRECONDITION);
    ck_assert_int_eq(st.update(st.ctx, arena, p.id, p.seq_no, p.primary_term, &patch, NULL, &u), 0);
    ck_assert_str_eq(u.name, "Blue kettle 2");
    ck_assert(u.seq_no > p.seq_no);
    /* The old version is stale now. */
    ck_assert_int_eq(st.update(st.ctx, arena, p.id, p.seq_no, p.primary_term, &patch, NULL, &u),
                     SVC_EPRECONDITION);
    g = get(p.id);
    ck_assert_int_eq(g.price_cents, 2499);
    ck_assert_str_eq(g.description, "A kettle, blue");

    ids[0] = p.id;
    ids[1] = new_id();
    ck_assert_int_eq(st.mget(st.ctx, arena, ids, 2, two, found), 0);
    ck_assert(found[0] && !found[1]);
    ck_assert_str_eq(two[0].name, "Blue kettle 2");

    ck_assert_int_eq(st.remove(st.ctx, p.id, p.seq_no, p.primary_term, NULL), SVC_EPRECONDITION);
    ck_assert_int_eq(st.remove(st.ctx, p.id, g.seq_no, g.primary_term, NULL), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, p.id, &g), SVC_ENOTFOUND);
    ck_assert_int_eq(st.remove(st.ctx, p.id, -1, 0, NULL), SVC_ENOTFOUND);
    ck_assert_int_eq(st.mget(st.ctx, arena, ids, 1, two, found), 0);
    ck_assert(!found[0]);
    ck_assert_int_eq(st.get(st.ctx, arena, "not-a-uuid/../_search", &g), SVC_ENOTFOUND);
}
END_TEST

START_TEST(sku_taken_on_create_and_import)
{
    const char *t = new_tag();
    const char *sku = svc_arena_printf(arena, "%s-1", t);
    const char *tags[] = {"x"};
    struct prod_new in[3] = {
        {.sku = sku,
         .name = "Dup",
         .category = t,
         .tags = tags,
         .ntags = 1,
         .price_cents = 1,
         .currency = "EUR",
         .stock = 1},
        {.sku = svc_arena_printf(arena, "%s-2", t),
         .name = "New",
         .category = t,
         .tags = tags,
         .ntags = 1,
         .price_cents = 1,
         .currency = "EUR",
         .stock = 1},
        {.sku = svc_arena_printf(arena, "%s-2", t),
         .name = "New again",
         .category = t,
         .tags = tags,
         .ntags = 1,
         .price_cents = 1,
         .currency = "EUR",
         .stock = 1},
    };
    struct product out[3], p;
    int rcs[3];

    create(sku, "First", NULL, t, NULL, 100, 1);
    ck_assert_int_eq(st.create(st.ctx, arena, &in[0], NULL, &p), PROD_ESKU_TAKEN);
    ck_assert_int_eq(st.import(st.ctx, arena, in, 3, NULL, out, rcs), 0);
    ck_assert_int_eq(rcs[0], PROD_ESKU_TAKEN);
    ck_assert_int_eq(rcs[1], 0);
    ck_assert_int_eq(rcs[2], PROD_ESKU_TAKEN);
    p = get(out[1].id);
    ck_assert_str_eq(p.name, "New");
    ck_assert_int_eq(p.seq_no, out[1].seq_no);
    ck_assert_str_eq(get(out[0].id).name, "First");
}
END_TEST

/* ---- search -------------------------------------------------------------------------------- */

START_TEST(relevance_exact_name_first_and_stemming)
{
    const char *t = new_tag();
    struct prod_query q = in_category(t);
    struct prod_results r;

    create(svc_arena_printf(arena, "%s-1", t), "Trail lamp deluxe edition", "lamp for trails", t,
           NULL, 100, 1);
    create(svc_arena_printf(arena, "%s-2", t), "Trail lamp", "a lamp", t, NULL, 100, 1);
    create(svc_arena_printf(arena, "%s-3", t), "Lamp for the trail runner", "trail trail lamp", t,
           NULL, 100, 1);
    create(svc_arena_printf(arena, "%s-4", t), "Run gear bag", "carry it", t, NULL, 100, 1);
    refresh();

    q.q = "Trail lamp";
    r = search(&q);
    ck_assert_int_eq(r.total, 3);
    ck_assert_str_eq(r.items[0].p.name, "Trail lamp");
    ck_assert(r.items[0].score >= r.items[1].score);
    ck_assert_ptr_nonnull(r.items[0].name_html);
    ck_assert_ptr_nonnull(strstr(r.items[0].name_html, "<em>"));

    /* English stemming: "running" is "run". */
    q.q = "running";
    r = search(&q);
    ck_assert_int_ge(r.total, 1);
    ck_assert_str_eq(r.items[0].p.name, "Run gear bag");
}
END_TEST

START_TEST(filters_and_exact_facets)
{
    const char *t = new_tag();
    struct prod_query q = in_category(t);
    struct prod_results r;
    struct product p;

    create(svc_arena_printf(arena, "%s-1", t), "Cup one", NULL, t, "red", 500, 3);     /* 0-1000 */
    create(svc_arena_printf(arena, "%s-2", t), "Cup two", NULL, t, "red", 1500, 0);    /* 1000- */
    create(svc_arena_printf(arena, "%s-3", t), "Cup three", NULL, t, "blue", 1500, 2); /* 1000- */
    create(svc_arena_printf(arena, "%s-4", t), "Cup four", NULL, t, "blue", 30000, 1); /* 25000- */
    p = create(svc_arena_printf(arena, "%s-5", t), "Cup five", NULL, t, "green", 7000, 4);
    ck_assert_int_eq(st.remove(st.ctx, p.id, -1, 0, NULL), 0); /* gone from search */
    refresh();

    r = search(&q);
    ck_assert_int_eq(r.total, 4);
    ck_assert_int_eq(r.n, 4);
    ck_assert(!r.more);
    ck_assert_int_eq(r.ncategories, 1);
    ck_assert_int_eq(bucket(r.categories, r.ncategories, t), 4);
    ck_assert_int_eq(bucket(r.tags, r.ntags, "red"), 2);
    ck_assert_int_eq(bucket(r.tags, r.ntags, "blue"), 2);
    ck_assert_int_eq(bucket(r.tags, r.ntags, "green"), 0);
    ck_assert_int_eq(bucket(r.tags, r.ntags, "all"), 4);
    ck_assert_int_eq(r.nprices, PROD_PRICE_RANGES_N);
    ck_assert_int_eq(bucket(r.prices, r.nprices, "0-1000"), 1);
    ck_assert_int_eq(bucket(r.prices, r.nprices, "1000-2500"), 2);
    ck_assert_int_eq(bucket(r.prices, r.nprices, "25000-"), 1);
    ck_assert_int_eq(r.prices[0].from, 0);
    ck_assert_int_eq(r.prices[0].to, 1000);
    ck_assert_int_eq(r.prices[PROD_PRICE_RANGES_N - 1].to, -1);

    q.tag = "red";
    ck_assert_int_eq(search(&q).total, 2);
    q.in_stock = true;
    r = search(&q);
    ck_assert_int_eq(r.total, 1);
    ck_assert_str_eq(r.items[0].p.name, "Cup one");
    q.tag = NULL;
    q.in_stock = false;
    q.min_price = 1000;
    q.max_price = 1500;
    ck_assert_int_eq(search(&q).total, 2);
    q.min_price = -1;
    q.sort = PROD_SORT_PRICE_DESC;
    r = search(&q);
    ck_assert_int_eq(r.total, 3);
    ck_assert_int_eq(r.items[0].p.price_cents, 1500);
    ck_assert_int_eq(r.items[2].p.price_cents, 500);
}
END_TEST

/* A walk by price in pages of 7 over 30 products (many at one price, so the id decides),
 * while other products of the category change between pages: every product exactly once. */
START_TEST(search_after_pages_neither_repeat_nor_skip)
{
    const char *t = new_tag();
    struct prod_query q = in_category(t);
    struct product ps[30];
    int seen[30] = {0};
    struct prod_after after;
    size_t total = 0;
    int pages = 0;

    for (int i = 0; i < 30; i++)
        ps[i] = create(svc_arena_printf(arena, "%s-%02d", t, i), "Page item", NULL, t, NULL,
                       (int64_t)100 * (i % 4), 10);
    refresh();
    q.sort = PROD_SORT_PRICE_ASC;
    q.limit = 7;
    for (;;) {
        struct prod_results r = search(&q);

        pages++;
        for (size_t k = 0; k < r.n; k++) {
            for (int i = 0; i < 30; i++)
                if (strcmp(r.items[k].p.id, ps[i].id) == 0)
                    seen[i]++;
            total++;
        }
        /* Changes that move nothing in this order: stock and description of every product. */
        for (int i = pages - 1; i < 30; i += 5) {
            struct product g = get(ps[i].id);
            struct prod_patch pt = {.set = PROD_SET_STOCK | PROD_SET_DESCRIPTION,
                                    .stock = g.stock + 1,
                                    .description = "changed while paging"};
            struct product u;

            ck_assert_int_eq(
                st.update(st.ctx, arena, g.id, g.seq_no, g.primary_term, &pt, NULL, &u), 0);
        }
        refresh();
        if (!r.more)
            break;
        after = r.next;
        q.after = &after;
    }
    ck_assert_int_eq(total, 30);
    ck_assert_int_eq(pages, 5);
    for (int i = 0; i < 30; i++)
        ck_assert_msg(seen[i] == 1, "product %d seen %d times", i, seen[i]);
}
END_TEST

START_TEST(dsl_looking_text_is_text)
{
    static const char *const attacks[] = {
        "name:*",
        "*",
        "{\"match_all\":{}}",
        "\" OR 1=1",
        "\\",
        "*:*",
        "sku:* OR name:*",
        "(a|b)~2",
        "[0 TO *]",
        "{\"bool\":{\"should\":[{\"match_all\":{}}]}}",
        "_all",
        NULL,
    };
    const char *t = new_tag();
    struct prod_query q = in_category(t);
    struct prod_results r;

    create(svc_arena_printf(arena, "%s-1", t), "Quiet teapot", "porcelain", t, "tea", 900, 1);
    create(svc_arena_printf(arena, "%s-2", t), "Loud teapot", "steel", t, "tea", 900, 1);
    refresh();
    ck_assert_int_eq(search(&q).total, 2);
    for (int i = 0; attacks[i] != NULL; i++) {
        struct prod_query qa = q;
        struct prod_query ca = in_category(attacks[i]);
        struct prod_query ta = in_category(NULL);

        qa.q = attacks[i];
        r = search(&qa);
        ck_assert_msg(r.total == 0, "q '%s' matched %" PRId64, attacks[i], r.total);
        r = search(&ca);
        ck_assert_msg(r.total == 0, "category '%s' matched %" PRId64, attacks[i], r.total);
        ta.tag = attacks[i];
        r = search(&ta);
        ck_assert_msg(r.total == 0, "tag '%s' matched %" PRId64, attacks[i], r.total);
    }
    /* And text that names a field only finds what has that word. */
    q.q = "porcelain";
    ck_assert_int_eq(search(&q).total, 1);
}
END_TEST

/* ---- reservations -------------------------------------------------------------------------- */

/* One client's reserve of one unit, on its own thread. */
struct racer {
    struct prod_store *st;
    const char *pid;
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct svc_arena *a = svc_arena_new();
    struct prod_res_item it = {.quantity = 1};
    struct prod_res_short sh;
    struct prod_reservation out;
    char rid[SVC_UUID_STR_LEN + 1];
    bool replayed;

    svc_uuid_v4_str(rid);
    snprintf(it.product_id, sizeof(it.product_id), "%s", r->pid);
    r->rc = r->st->reserve(r->st->ctx, a, rid, &it, 1, 60000, NULL, &out, &sh, &replayed);
    svc_arena_free(a);
    svc_client_thread_release();
    return NULL;
}

START_TEST(hundred_concurrent_reservations_on_thirty)
{
    const char *t = new_tag();
    struct product p = create(svc_arena_printf(arena, "%s-1", t), "Scarce", NULL, t, NULL, 100, 30);
    struct racer rs[100];
    pthread_t th[100];
    struct prod_os *other;
    struct prod_store st2;
    int ok = 0, short_ = 0;

    /* Two replicas: one's threads are serialised per product inside it, so the two only meet
     * in the engine's version checks. */
    ck_assert_int_eq(open_with(prefix, NULL, &other), 0);
    prod_os_store(other, &st2);
    for (int i = 0; i < 100; i++) {
        rs[i] = (struct racer){.st = i % 2 == 0 ? &st : &st2, .pid = p.id};
        ck_assert_int_eq(pthread_create(&th[i], NULL, race, &rs[i]), 0);
    }
    for (int i = 0; i < 100; i++) {
        pthread_join(th[i], NULL);
        ok += rs[i].rc == 0;
        short_ += rs[i].rc == PROD_ESTOCK;
    }
    prod_os_free(other);
    ck_assert_int_eq(ok, 30);
    ck_assert_int_eq(short_, 70);
    p = get(p.id);
    ck_assert_int_eq(p.stock, 30);
    ck_assert_int_eq(p.reserved, 30);
    ck_assert_int_eq(p.sold, 0);
}
END_TEST

START_TEST(reservations_are_idempotent)
{
    const char *t = new_tag();
    struct product a = create(svc_arena_printf(arena, "%s-a", t), "A", NULL, t, NULL, 100, 10);
    struct product b = create(svc_arena_printf(arena, "%s-b", t), "B", NULL, t, NULL, 100, 3);
    struct prod_res_item two[2] = {{.quantity = 4}, {.quantity = 2}};
    struct prod_res_item other = {.quantity = 5};
    const char *r1 = new_id(), *r2 = new_id(), *r3 = new_id();
    struct prod_reservation out;
    struct prod_res_short sh;
    struct prod_patch pt = {.set = PROD_SET_STOCK, .stock = 1};
    struct product g, u;
    bool rep;

    snprintf(two[0].product_id, sizeof(two[0].product_id), "%s", a.id);
    snprintf(two[1].product_id, sizeof(two[1].product_id), "%s", b.id);
    snprintf(other.product_id, sizeof(other.product_id), "%s", a.id);

    ck_assert_int_eq(st.reserve(st.ctx, arena, r1, two, 2, 60000, NULL, &out, &sh, &rep), 0);
    ck_assert(!rep);
    ck_assert_str_eq(out.state, "reserved");
    ck_assert_int_eq(out.n, 2);
    ck_assert_int_eq(st.reserve(st.ctx, arena, r1, two, 2, 60000, NULL, &out, &sh, &rep), 0);
    ck_assert(rep);
    ck_assert_int_eq(st.reserve(st.ctx, arena, r1, &other, 1, 60000, NULL, &out, &sh, &rep),
                     SVC_EIDEMPOTENCY);
    ck_assert_int_eq(get(a.id).reserved, 4);
    ck_assert_int_eq(get(b.id).reserved, 2);

    /* All or none: the second line is short, the first one's hold is undone. */
    two[1].quantity = 2;
    ck_assert_int_eq(st.reserve(st.ctx, arena, r2, two, 2, 60000, NULL, &out, &sh, &rep),
                     PROD_ESTOCK);
    ck_assert_int_eq(sh.line, 1);
    ck_assert_str_eq(sh.product_id, b.id);
    ck_assert_int_eq(sh.requested, 2);
    ck_assert_int_eq(sh.available, 1);
    ck_assert_int_eq(get(a.id).reserved, 4);
    ck_assert_int_eq(st.reservation_get(st.ctx, arena, r2, &out), SVC_ENOTFOUND);
    snprintf(other.product_id, sizeof(other.product_id), "%s", new_id());
    ck_assert_int_eq(st.reserve(st.ctx, arena, r2, &other, 1, 60000, NULL, &out, &sh, &rep),
                     SVC_ENOTFOUND);
    ck_assert_int_eq(sh.line, 0);
    ck_assert_int_eq(sh.available, 0);

    /* Stock cannot go below what is reserved, nor a reserved product be deleted. */
    g = get(b.id);
    ck_assert_int_eq(st.update(st.ctx, arena, b.id, g.seq_no, g.primary_term, &pt, NULL, &u),
                     PROD_ERESERVED);
    ck_assert_int_eq(st.remove(st.ctx, b.id, -1, 0, NULL), PROD_ERESERVED);

    ck_assert_int_eq(st.commit(st.ctx, arena, r1, NULL, &out, &rep), 0);
    ck_assert(!rep);
    ck_assert_str_eq(out.state, "committed");
    ck_assert_int_eq(st.commit(st.ctx, arena, r1, NULL, &out, &rep), 0);
    ck_assert(rep);
    ck_assert_int_eq(st.release(st.ctx, arena, r1, NULL, &out, &rep), PROD_ERES_STATE);
    ck_assert_str_eq(out.state, "committed");
    g = get(a.id);
    ck_assert_int_eq(g.stock, 6);
    ck_assert_int_eq(g.sold, 4);
    ck_assert_int_eq(g.reserved, 0);
    ck_assert_int_eq(get(b.id).stock + get(b.id).sold, 3);

    ck_assert_int_eq(reserve(r3, a.id, 6, 60000, &out, &rep), 0);
    ck_assert_int_eq(get(a.id).reserved, 6);
    ck_assert_int_eq(st.release(st.ctx, arena, r3, NULL, &out, &rep), 0);
    ck_assert(!rep);
    ck_assert_str_eq(out.state, "released");
    ck_assert_str_eq(out.release_reason, "requested");
    ck_assert_int_eq(st.release(st.ctx, arena, r3, NULL, &out, &rep), 0);
    ck_assert(rep);
    ck_assert_int_eq(st.commit(st.ctx, arena, r3, NULL, &out, &rep), PROD_ERES_STATE);
    ck_assert_str_eq(out.state, "released");
    /* A released reservation replayed: its stored state, nothing reserved again. */
    ck_assert_int_eq(reserve(r3, a.id, 6, 60000, &out, &rep), 0);
    ck_assert(rep);
    ck_assert_str_eq(out.state, "released");
    g = get(a.id);
    ck_assert_int_eq(g.reserved, 0);
    ck_assert_int_eq(g.stock + g.sold, 10);
    ck_assert_int_eq(st.commit(st.ctx, arena, new_id(), NULL, &out, &rep), SVC_ENOTFOUND);
}
END_TEST

START_TEST(sweep_releases_expired_reservations)
{
    const char *t = new_tag();
    struct product p = create(svc_arena_printf(arena, "%s-1", t), "Timed", NULL, t, NULL, 100, 5);
    const char *expiring = new_id(), *lasting = new_id();
    struct prod_reservation out;
    int64_t released = 0;
    bool rep;

    ck_assert_int_eq(reserve(expiring, p.id, 2, 1, &out, &rep), 0);
    ck_assert_int_eq(reserve(lasting, p.id, 1, 600000, &out, &rep), 0);
    ck_assert_int_eq(get(p.id).reserved, 3);
    svc_sleep_ms(5);
    refresh();
    ck_assert_int_eq(st.sweep(st.ctx, svc_wall_ms(), &released), 0);
    ck_assert_int_ge(released, 1);
    ck_assert_int_eq(st.reservation_get(st.ctx, arena, expiring, &out), 0);
    ck_assert_str_eq(out.state, "released");
    ck_assert_str_eq(out.release_reason, "expired");
    ck_assert_int_eq(st.reservation_get(st.ctx, arena, lasting, &out), 0);
    ck_assert_str_eq(out.state, "reserved");
    p = get(p.id);
    ck_assert_int_eq(p.reserved, 1);
    ck_assert_int_eq(p.stock, 5);
    ck_assert_int_eq(st.commit(st.ctx, arena, expiring, NULL, &out, &rep), PROD_ERES_STATE);
}
END_TEST

/* ---- the outbox ---------------------------------------------------------------------------- */

/* The fetched events whose key is KEY, their types in *TYPES (up to 8). */
static size_t fetch_for(struct svc_outbox_source *src, const char *key,
                        struct svc_outbox_event **mine, const char **types)
{
    struct svc_outbox_event *evs;
    size_t n = 0;
    int got;

    refresh();
    got = src->fetch(src->ctx, 5000, &evs);
    ck_assert_msg(got >= 0, "fetch: %s", svc_err_name(got));
    for (int i = 0; i < got; i++) {
        struct svc_event *ev;

        if (evs[i].key == NULL || evs[i].key_len != strlen(key) ||
            memcmp(evs[i].key, key, evs[i].key_len) != 0)
            continue;
        ck_assert_str_eq(evs[i].topic, TOPIC_PRODUCT_EVENTS);
        ck_assert_int_eq(svc_event_parse(evs[i].value, evs[i].value_len, &ev, NULL, 0), 0);
        ck_assert_str_eq(ev->id, evs[i].id);
        ck_assert_str_eq(ev->subject, key);
        ck_assert(n < 8);
        types[n] = svc_arena_strdup(arena, ev->type);
        mine[n++] = &evs[i];
        svc_event_free(ev);
    }
    return n;
}

START_TEST(outbox_hands_over_and_clears_exactly_what_was_published)
{
    const char *t = new_tag();
    const char *sku = svc_arena_printf(arena, "%s-1", t);
    struct product p = create(sku, "Evented", NULL, t, NULL, 100, 5), u;
    struct prod_patch pt = {.set = PROD_SET_PRICE, .price_cents = 150};
    struct svc_outbox_source src;
    struct svc_outbox_event *mine[8];
    const char *types[8];
    size_t count;
    double age;

    prod_os_outbox_source(os, &src);
    ck_assert_int_eq(src.backlog(src.ctx, &count, &age), 0);
    ck_assert_int_ge(count, 1);
    ck_assert_int_eq(fetch_for(&src, p.id, mine, types), 1);
    ck_assert_str_eq(types[0], EV_PRODUCT_CREATED);

    /* A change between the fetch and the mark: its event survives the mark. */
    ck_assert_int_eq(st.update(st.ctx, arena, p.id, p.seq_no, p.primary_term, &pt, NULL, &u), 0);
    ck_assert_int_eq(src.mark_published(src.ctx, mine, 1), 0);
    src.release(src.ctx, NULL, 0);
    ck_assert_int_eq(fetch_for(&src, p.id, mine, types), 1);
    ck_assert_str_eq(types[0], EV_PRODUCT_UPDATED);
    ck_assert_int_eq(src.mark_published(src.ctx, mine, 1), 0);
    src.release(src.ctx, NULL, 0);
    ck_assert_int_eq(fetch_for(&src, p.id, mine, types), 0);
    src.release(src.ctx, NULL, 0);

    /* A deletion: product.deleted, then the tombstone goes and the SKU is free again. */
    ck_assert_int_eq(st.remove(st.ctx, p.id, -1, 0, NULL), 0);
    ck_assert_int_eq(
        st.create(
            st.ctx, arena,
            &(struct prod_new){
                .sku = sku, .name = "Again", .category = t, .price_cents = 1, .currency = "EUR"},
            NULL, &u),
        PROD_ESKU_TAKEN);
    ck_assert_int_eq(fetch_for(&src, p.id, mine, types), 1);
    ck_assert_str_eq(types[0], EV_PRODUCT_DELETED);
    ck_assert_int_eq(src.mark_published(src.ctx, mine, 1), 0);
    src.release(src.ctx, NULL, 0);
    u = create(sku, "Again", NULL, t, NULL, 1, 0);
    ck_assert_str_eq(u.id, p.id);
    ck_assert_str_eq(get(p.id).name, "Again");
}
END_TEST

START_TEST(reservation_events_are_in_the_reservation)
{
    const char *t = new_tag();
    struct product p = create(svc_arena_printf(arena, "%s-1", t), "Res", NULL, t, NULL, 100, 5);
    const char *rid = new_id();
    struct svc_outbox_source src;
    struct svc_outbox_event *mine[8];
    const char *types[8];
    struct prod_reservation out;
    bool rep;

    prod_os_outbox_source(os, &src);
    ck_assert_int_eq(reserve(rid, p.id, 2, 60000, &out, &rep), 0);
    ck_assert_int_eq(st.commit(st.ctx, arena, rid, NULL, &out, &rep), 0);
    ck_assert_int_eq(fetch_for(&src, rid, mine, types), 2);
    ck_assert_str_eq(types[0], EV_STOCK_RESERVED);
    ck_assert_str_eq(types[1], EV_STOCK_COMMITTED);
    ck_assert_int_eq(src.mark_published(src.ctx, mine, 2), 0);
    src.release(src.ctx, NULL, 0);
    ck_assert_int_eq(fetch_for(&src, rid, mine, types), 0);
    src.release(src.ctx, NULL, 0);
}
END_TEST

/* ---- migrations and start-up --------------------------------------------------------------- */

/* migrations/NNN_*.json as the build embeds them (text and SHA-256), in *OUT[0..n], {0}-ended. */
static void load_migration(const char *file, int version, struct svc_migration *out)
{
    char path[512], *text, *hex;
    uint8_t sum[32];
    size_t len;
    FILE *f;

    snprintf(path, sizeof(path), "%s/product-svc/migrations/%s", POLYGLOT_ROOT, file);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s missing", path);
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    text = svc_arena_alloc(arena, len + 1);
    ck_assert_uint_eq(fread(text, 1, len, f), len);
    text[len] = '\0';
    fclose(f);
    svc_sha256(text, len, sum);
    hex = svc_arena_alloc(arena, 65);
    for (int i = 0; i < 32; i++)
        snprintf(hex + (size_t)2 * i, 3, "%02x", sum[i]);
    *out = (struct svc_migration){.version = version, .name = file, .sha256 = hex, .text = text};
}

START_TEST(mapping_change_by_reindex_keeps_the_data)
{
    const char *pfx = svc_arena_printf(arena, "%s_m_", testenv_unique("itmig"));
    struct svc_migration only_001[2] = {{0}};
    struct prod_os *old, *cur;
    struct prod_store s1, s2;
    struct prod_new in = {.name = "Zorblax gadget",
                          .description = "made before 002",
                          .category = "mig",
                          .price_cents = 123,
                          .currency = "EUR",
                          .stock = 7};
    struct product p, g;
    const char **names;
    size_t n;
    const char *type;
    char path[256];
    json_t *m;
    int rc;

    snprintf(own_prefix, sizeof(own_prefix), "%s", pfx);
    load_migration("001_indices.json", 1, &only_001[0]);
    rc = open_with(pfx, only_001, &old);
    ck_assert_msg(rc == 0, "open with 001: %s", svc_err_name(rc));
    prod_os_store(old, &s1);
    in.sku = "mig-1";
    ck_assert_int_eq(s1.create(s1.ctx, arena, &in, NULL, &p), 0);
    /* Before 002 there is no autocomplete field: suggest finds nothing. */
    ck_assert_int_eq(s1.suggest(s1.ctx, arena, "zorb", 5, &names, &n), 0);
    ck_assert_int_eq(n, 0);
    prod_os_free(old);

    rc = open_with(pfx, NULL, &cur);
    ck_assert_msg(rc == 0, "open with every migration: %s", svc_err_name(rc));
    prod_os_store(cur, &s2);
    ck_assert_int_eq(s2.get(s2.ctx, arena, p.id, &g), 0);
    ck_assert_str_eq(g.name, "Zorblax gadget");
    ck_assert_int_eq(g.stock, 7);

    snprintf(path, sizeof(path), "/%sproducts/_mapping", pfx);
    m = engine("GET", path, NULL);
    ck_assert_int_eq(json_object_size(m), 1);
    ck_assert_ptr_nonnull(json_object_get(m, svc_arena_printf(arena, "%sproducts_v2", pfx)));
    ck_assert_int_eq(json_unpack(json_object_iter_value(json_object_iter(m)),
                                 "{s:{s:{s:{s:{s:{s:s}}}}}}", "mappings", "properties", "name",
                                 "fields", "sayt", "type", &type),
                     0);
    ck_assert_str_eq(type, "search_as_you_type");
    json_decref(m);

    snprintf(path, sizeof(path), "/%sproducts/_refresh", pfx);
    json_decref(engine("POST", path, NULL));
    ck_assert_int_eq(s2.suggest(s2.ctx, arena, "zorb", 5, &names, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(names[0], "Zorblax gadget");
    /* Writes go to the new index through the alias. */
    in.sku = "mig-2";
    in.name = "Zorblax widget";
    ck_assert_int_eq(s2.create(s2.ctx, arena, &in, NULL, &p), 0);
    json_decref(engine("POST", path, NULL));
    ck_assert_int_eq(s2.suggest(s2.ctx, arena, "zorblax w", 5, &names, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(names[0], "Zorblax widget");

    prod_os_free(cur);
}
END_TEST

static const char *race_prefix;

static void *start_replica(void *arg)
{
    struct prod_os *o = NULL;

    *(int *)arg = open_with(race_prefix, NULL, &o);
    prod_os_free(o);
    svc_client_thread_release();
    return NULL;
}

/* The number of documents of KIND in the migration index of PFX. */
static int64_t migration_docs(const char *pfx, const char *kind)
{
    char path[256], body[128];
    json_t *r;
    int64_t n;

    snprintf(path, sizeof(path), "/%sproduct_migrations/_refresh", pfx);
    json_decref(engine("POST", path, NULL));
    snprintf(path, sizeof(path), "/%sproduct_migrations/_count", pfx);
    snprintf(body, sizeof(body), "{\"query\":{\"term\":{\"kind\":\"%s\"}}}", kind);
    r = engine("POST", path, body);
    n = json_integer_value(json_object_get(r, "count"));
    json_decref(r);
    return n;
}

START_TEST(concurrent_starts_apply_each_migration_once)
{
    const char *pfx = svc_arena_printf(arena, "%s_c_", testenv_unique("itmig"));
    struct prod_os *o = NULL;
    pthread_t th[2];
    int rc[2] = {-1, -1};
    char path[256];

    snprintf(own_prefix, sizeof(own_prefix), "%s", pfx);
    race_prefix = pfx;
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, start_replica, &rc[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(rc[0], 0);
    ck_assert_int_eq(rc[1], 0);
    ck_assert_int_eq(migration_docs(pfx, "migration"), 2);
    ck_assert_int_eq(migration_docs(pfx, "lock"), 0);

    /* A lock left by a replica that died long ago is taken over, and released. */
    snprintf(path, sizeof(path), "/%sproduct_migrations/_doc/lock", pfx);
    json_decref(engine("PUT", path, "{\"kind\":\"lock\",\"owner\":\"dead\",\"taken_at\":1}"));
    ck_assert_int_eq(open_with(pfx, NULL, &o), 0);
    ck_assert_int_eq(migration_docs(pfx, "lock"), 0);
    prod_os_free(o);
}
END_TEST

START_TEST(wrong_credentials_and_no_engine)
{
    const char *url = testenv_get("product-svc", "OPENSEARCH_URL");
    struct prod_os_opts bad = {.url = url,
                               .user = os_user(),
                               .password = "not-the-password",
                               .timeout_ms = 2000,
                               .prefix = prefix};
    struct prod_os_opts none = {.url = url, .timeout_ms = 2000, .prefix = prefix};
    struct prod_os_opts down = {.url = "http://127.0.0.1:1", .timeout_ms = 1000};
    struct prod_os_opts junk = {.url = "http://user:pw@127.0.0.1:1"};
    struct prod_os *o = NULL;

    ck_assert_int_eq(prod_os_new(&bad, &o), SVC_EUNAUTH);
    ck_assert_int_eq(prod_os_new(&none, &o), SVC_EUNAUTH);
    ck_assert_int_eq(prod_os_new(&down, &o), SVC_EUNAVAILABLE);
    ck_assert_int_eq(prod_os_new(&junk, &o), SVC_EINVAL);
    ck_assert_ptr_null(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("product_store");
    TCase *tc = tcase_create("opensearch");

    tcase_add_unchecked_fixture(tc, run_setup, run_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_get_patch_delete);
    tcase_add_test(tc, sku_taken_on_create_and_import);
    tcase_add_test(tc, relevance_exact_name_first_and_stemming);
    tcase_add_test(tc, filters_and_exact_facets);
    tcase_add_test(tc, search_after_pages_neither_repeat_nor_skip);
    tcase_add_test(tc, dsl_looking_text_is_text);
    tcase_add_test(tc, hundred_concurrent_reservations_on_thirty);
    tcase_add_test(tc, reservations_are_idempotent);
    tcase_add_test(tc, sweep_releases_expired_reservations);
    tcase_add_test(tc, outbox_hands_over_and_clears_exactly_what_was_published);
    tcase_add_test(tc, reservation_events_are_in_the_reservation);
    tcase_add_test(tc, mapping_change_by_reindex_keeps_the_data);
    tcase_add_test(tc, concurrent_starts_apply_each_migration_once);
    tcase_add_test(tc, wrong_credentials_and_no_engine);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

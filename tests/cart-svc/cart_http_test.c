/*
 * cart-svc's HTTP API as a client sees it: the real routes (cart_http.c) started in-process on
 * port 0 over a fake store that keeps carts and orders in memory and a fake remote that plays
 * product-svc's batch get, both counting every call, driven with libcurl. Status codes,
 * headers and bodies of every route as openapi.yaml documents them; every kind of bad input
 * refused with a problem before the store or product-svc is asked anything; product-svc's
 * "not found" and its silence rendered as 422 and 503; the store's errors rendered as their
 * documented problems; and a checkout kicking the saga exactly once per new order.
 */
#include "cart.h"

#include "svc/error.h"
#include "svc/uuid.h"
#include "testapi.h"
#include "testenv.h"
#include "testproblems.h"
#include "testsvc.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fakes -------------------------------------------------------------------------- */

enum call {
    C_GET,
    C_PUT_LINE,
    C_REMOVE_LINE,
    C_CLEAR,
    C_CHECKOUT,
    C_ORDER_GET,
    C_ORDERS_LIST,
    C_OTHER, /* what no route may call: the saga's and the consumers' functions */
    C_COUNT
};

enum remote_call { R_PRODUCTS, R_SAGA, R_COUNT };

enum { MAX_ORDERS = 16, MAX_LOG = 8, TEXT_MAX = 256 };

/* 2026-01-01T00:00:00.000Z: the fake's clock starts here and ticks one second per write. */
#define T0  INT64_C(1767225600000)
#define TTL INT64_C(604800000) /* 7 days */

#define U1      "0f8e1d2c-3b4a-4968-8776-554433221100" /* known */
#define U2      "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d" /* known */
#define UNKNOWN "2b3c4d5e-6f70-4b8c-9d0e-1f2a3b4c5d6e" /* not in the read model */
#define KETTLE  "3c4d5e6f-7081-4c9d-8e0f-2a3b4c5d6e7f"
#define MUG     "4d5e6f70-8192-4dae-9f10-3b4c5d6e7f80"
#define DOLLAR  "5e6f7081-92a3-4ebf-a021-4c5d6e7f8091" /* priced in USD */
#define NOONE   "6f708192-a3b4-4fc0-b132-5d6e7f8091a2" /* no product, no order */

struct fake_line {
    char product_id[CART_ID_LEN + 1];
    char name[TEXT_MAX];
    char currency[4];
    int64_t quantity, price_cents, at_ms;
    bool repriced;
};

struct fake_cart {
    char user_id[CART_ID_LEN + 1];
    struct fake_line lines[CART_LINES_MAX];
    size_t n;
    int64_t updated_at_ms;
};

struct fake_order {
    char id[CART_ID_LEN + 1], user_id[CART_ID_LEN + 1], key[160];
    struct fake_line lines[CART_LINES_MAX];
    size_t n;
    int64_t total_cents, created_at_ms, updated_at_ms;
    char currency[4];
    enum cart_status status;
    const char *failed_step, *reason;
    struct cart_log_entry log[MAX_LOG];
    size_t nlog;
};

struct fake {
    struct testfake t; /* the store: the lock, the call counts, the failure */
    struct testfake r; /* the remote, counted apart: its failure is its own */
    struct fake_cart carts[2];
    struct fake_order orders[MAX_ORDERS];
    size_t norders;
    int64_t now_ms;
    /* What the calls were given. */
    char asked[CART_ID_LEN + 1]; /* the product id of the last batch get */
    size_t asked_n;
    int64_t put_quantity;
    char checkout_key[160], checkout_order_id[CART_ID_LEN + 1];
    int limit;
    int64_t after_ms;
    char after_id[CART_ID_LEN + 1];
    bool has_after;
    /* The saga kicks. */
    int kicks;
    char kicked[CART_ID_LEN + 1];
};

static struct fake fake;

static const struct cart_product catalog[] = {
    {KETTLE, "Steel Kettle", 2599, "EUR", 3},
    {MUG, "Mug \xc3\xa9t\xc3\xa9", 899, "EUR", 10},
    {DOLLAR, "Dollar Mug", 999, "USD", 5},
};

static int enter(enum call c)
{
    return testfake_enter(&fake.t, c);
}

static int leave(int rc)
{
    return testfake_leave(&fake.t, rc);
}

/* The cart of a known user; NULL for any other. */
static struct fake_cart *cart_of(const char *user_id)
{
    for (size_t i = 0; i < 2; i++)
        if (strcmp(fake.carts[i].user_id, user_id) == 0)
            return &fake.carts[i];
    return NULL;
}

static void copy_lines(struct svc_arena *a, const struct fake_line *in, size_t n,
                       struct cart_line **out)
{
    *out = svc_arena_calloc(a, (n + 1) * sizeof(**out));
    for (size_t i = 0; i < n; i++) {
        struct cart_line *l = &(*out)[i];

        memcpy(l->product_id, in[i].product_id, sizeof(l->product_id));
        l->quantity = in[i].quantity;
        l->price_cents = in[i].price_cents;
        l->currency = svc_arena_strdup(a, in[i].currency);
        l->name = svc_arena_strdup(a, in[i].name);
        l->repriced = in[i].repriced;
        l->added_at_ms = l->updated_at_ms = in[i].at_ms;
    }
}

static void copy_cart(struct svc_arena *a, const struct fake_cart *f, struct cart *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->user_id, f->user_id, sizeof(out->user_id));
    copy_lines(a, f->lines, f->n, &out->lines);
    out->n = f->n;
    for (size_t i = 0; i < f->n; i++)
        out->total_cents += f->lines[i].quantity * f->lines[i].price_cents;
    out->currency = f->n > 0 ? svc_arena_strdup(a, f->lines[0].currency) : NULL;
    out->updated_at_ms = f->updated_at_ms;
    out->expires_at_ms = f->updated_at_ms != 0 ? f->updated_at_ms + TTL : 0;
}

static void copy_order(struct svc_arena *a, const struct fake_order *f, bool with_log,
                       struct cart_order *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->id, f->id, sizeof(out->id));
    memcpy(out->user_id, f->user_id, sizeof(out->user_id));
    out->status = f->status;
    copy_lines(a, f->lines, f->n, &out->lines);
    out->n = f->n;
    out->total_cents = f->total_cents;
    out->currency = svc_arena_strdup(a, f->currency);
    out->failed_step = f->failed_step;
    out->reason = f->reason;
    out->idempotency_key = svc_arena_strdup(a, f->key);
    out->created_at_ms = f->created_at_ms;
    out->updated_at_ms = f->updated_at_ms;
    if (with_log) {
        out->log = svc_arena_calloc(a, (f->nlog + 1) * sizeof(*out->log));
        memcpy(out->log, f->log, f->nlog * sizeof(*out->log));
        out->nlog = f->nlog;
    }
}

static int f_get(void *ctx, struct svc_arena *a, const char *user_id, struct cart *out)
{
    struct fake_cart *c;
    int rc = enter(C_GET);

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((c = cart_of(user_id)) == NULL)
        return leave(CART_EUSER_UNKNOWN);
    copy_cart(a, c, out);
    return leave(0);
}

static int f_put_line(void *ctx, struct svc_arena *a, const char *user_id,
                      const struct cart_product *p, int64_t quantity, const char *traceparent,
                      struct cart *out)
{
    struct fake_cart *c;
    struct fake_line *l = NULL;
    int rc = enter(C_PUT_LINE);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    fake.put_quantity = quantity;
    if ((c = cart_of(user_id)) == NULL)
        return leave(CART_EUSER_UNKNOWN);
    if (c->n > 0 && strcmp(c->lines[0].currency, p->currency) != 0)
        return leave(SVC_EINVAL);
    for (size_t i = 0; i < c->n && l == NULL; i++)
        if (strcmp(c->lines[i].product_id, p->id) == 0)
            l = &c->lines[i];
    if (l == NULL) {
        if (c->n == CART_LINES_MAX)
            return leave(CART_ECART_FULL);
        l = &c->lines[c->n++];
        memset(l, 0, sizeof(*l));
        snprintf(l->product_id, sizeof(l->product_id), "%s", p->id);
    }
    snprintf(l->name, sizeof(l->name), "%s", p->name);
    snprintf(l->currency, sizeof(l->currency), "%s", p->currency);
    l->quantity = quantity;
    l->price_cents = p->price_cents;
    l->repriced = false;
    l->at_ms = c->updated_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    copy_cart(a, c, out);
    return leave(0);
}

static int f_remove_line(void *ctx, struct svc_arena *a, const char *user_id,
                         const char *product_id, const char *traceparent, struct cart *out)
{
    struct fake_cart *c;
    int rc = enter(C_REMOVE_LINE);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    if ((c = cart_of(user_id)) == NULL)
        return leave(CART_EUSER_UNKNOWN);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->lines[i].product_id, product_id) == 0) {
            memmove(&c->lines[i], &c->lines[i + 1], (c->n - i - 1) * sizeof(c->lines[0]));
            c->n--;
            c->updated_at_ms = fake.now_ms;
            fake.now_ms += 1000;
            copy_cart(a, c, out);
            return leave(0);
        }
    }
    return leave(SVC_ENOTFOUND);
}

static int f_clear(void *ctx, const char *user_id, const char *traceparent)
{
    struct fake_cart *c;
    int rc = enter(C_CLEAR);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    if ((c = cart_of(user_id)) == NULL)
        return leave(CART_EUSER_UNKNOWN);
    c->n = 0;
    c->updated_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    return leave(0);
}

static int f_checkout(void *ctx, struct svc_arena *a, const char *user_id, const char *key,
                      const char *order_id, const char *traceparent, struct cart_order *out,
                      bool *replayed)
{
    struct fake_cart *c;
    struct fake_order *o;
    int rc = enter(C_CHECKOUT);

    (void)ctx;
    (void)traceparent;
    if (rc != 0)
        return rc;
    snprintf(fake.checkout_key, sizeof(fake.checkout_key), "%s", key);
    snprintf(fake.checkout_order_id, sizeof(fake.checkout_order_id), "%s", order_id);
    if ((c = cart_of(user_id)) == NULL)
        return leave(CART_EUSER_UNKNOWN);
    for (size_t i = 0; i < fake.norders; i++) {
        o = &fake.orders[i];
        if (strcmp(o->user_id, user_id) == 0 && strcmp(o->key, key) == 0) {
            copy_order(a, o, true, out);
            *replayed = true;
            return leave(0);
        }
    }
    if (c->n == 0)
        return leave(CART_ECART_EMPTY);
    ck_assert_uint_lt(fake.norders, MAX_ORDERS);
    o = &fake.orders[fake.norders++];
    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "%s", order_id);
    snprintf(o->user_id, sizeof(o->user_id), "%s", user_id);
    snprintf(o->key, sizeof(o->key), "%s", key);
    memcpy(o->lines, c->lines, c->n * sizeof(c->lines[0]));
    o->n = c->n;
    for (size_t i = 0; i < c->n; i++)
        o->total_cents += c->lines[i].quantity * c->lines[i].price_cents;
    snprintf(o->currency, sizeof(o->currency), "%s", c->lines[0].currency);
    o->status = CART_PENDING;
    o->created_at_ms = o->updated_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    copy_order(a, o, true, out);
    *replayed = false;
    return leave(0);
}

static struct fake_order *find_order(const char *id)
{
    for (size_t i = 0; i < fake.norders; i++)
        if (strcmp(fake.orders[i].id, id) == 0)
            return &fake.orders[i];
    return NULL;
}

static int f_order_get(void *ctx, struct svc_arena *a, const char *order_id, struct cart_order *out)
{
    struct fake_order *o;
    int rc = enter(C_ORDER_GET);

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((o = find_order(order_id)) == NULL)
        return leave(SVC_ENOTFOUND);
    copy_order(a, o, true, out);
    return leave(0);
}

/* Newest first: by creation time, then id, both descending. */
static bool before(const struct fake_order *o, int64_t ms, const char *id)
{
    return o->created_at_ms > ms || (o->created_at_ms == ms && strcmp(o->id, id) > 0);
}

static int f_orders_list(void *ctx, struct svc_arena *a, const char *user_id, int limit,
                         int64_t after_created_at_ms, const char *after_id,
                         struct cart_order_page *out)
{
    const struct fake_order *sorted[MAX_ORDERS];
    size_t n = 0;
    int rc = enter(C_ORDERS_LIST);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.limit = limit;
    fake.has_after = after_id != NULL;
    fake.after_ms = after_created_at_ms;
    snprintf(fake.after_id, sizeof(fake.after_id), "%s", after_id != NULL ? after_id : "");
    if (cart_of(user_id) == NULL)
        return leave(CART_EUSER_UNKNOWN);
    for (size_t i = 0; i < fake.norders; i++) {
        const struct fake_order *o = &fake.orders[i];
        size_t k = n;

        if (strcmp(o->user_id, user_id) != 0 ||
            (after_id != NULL && before(o, after_created_at_ms, after_id)) ||
            (after_id != NULL && o->created_at_ms == after_created_at_ms &&
             strcmp(o->id, after_id) == 0))
            continue;
        while (k > 0 && before(o, sorted[k - 1]->created_at_ms, sorted[k - 1]->id)) {
            sorted[k] = sorted[k - 1];
            k--;
        }
        sorted[k] = o;
        n++;
    }
    memset(out, 0, sizeof(*out));
    out->items = svc_arena_calloc(a, (size_t)limit * sizeof(*out->items));
    for (size_t i = 0; i < n && out->n < (size_t)limit; i++)
        copy_order(a, sorted[i], false, &out->items[out->n++]);
    if (n > out->n) {
        const struct cart_order *last = &out->items[out->n - 1];

        out->more = true;
        out->next_created_at_ms = last->created_at_ms;
        memcpy(out->next_id, last->id, sizeof(out->next_id));
    }
    return leave(0);
}

/* What no route may call: counted, so that a test would see one that did. */
static int f_order_log(void *ctx, const char *order_id, const struct cart_log_entry *entry,
                       int status, const char *failed_step, const char *reason,
                       const char *traceparent)
{
    int rc = enter(C_OTHER);

    (void)ctx;
    (void)order_id;
    (void)entry;
    (void)status;
    (void)failed_step;
    (void)reason;
    (void)traceparent;
    return rc != 0 ? rc : leave(0);
}

static int f_orders_open(void *ctx, struct svc_arena *a, size_t max, char (**ids)[CART_ID_LEN + 1],
                         size_t *n)
{
    int rc = enter(C_OTHER);

    (void)ctx;
    (void)a;
    (void)max;
    *ids = NULL;
    *n = 0;
    return rc != 0 ? rc : leave(0);
}

static int f_user_event(void *ctx, const char *event_id, const char *user_id, int64_t version)
{
    int rc = enter(C_OTHER);

    (void)ctx;
    (void)event_id;
    (void)user_id;
    (void)version;
    return rc != 0 ? rc : leave(0);
}

static int f_product_upsert(void *ctx, const char *event_id, const struct cart_product *p,
                            int64_t updated_at_ms)
{
    int rc = enter(C_OTHER);

    (void)ctx;
    (void)event_id;
    (void)p;
    (void)updated_at_ms;
    return rc != 0 ? rc : leave(0);
}

static int f_product_deleted(void *ctx, const char *event_id, const char *product_id)
{
    int rc = enter(C_OTHER);

    (void)ctx;
    (void)event_id;
    (void)product_id;
    return rc != 0 ? rc : leave(0);
}

/* product-svc's batch get. FAKE.r.fail set: no answer in time (CART_EDEPENDENCY). */
static int r_products(void *ctx, struct svc_arena *a, const char *const *ids, size_t n,
                      struct cart_product *out, bool *found)
{
    int rc = testfake_enter(&fake.r, R_PRODUCTS);

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.asked_n = n;
    snprintf(fake.asked, sizeof(fake.asked), "%s", n > 0 ? ids[0] : "");
    for (size_t i = 0; i < n; i++) {
        found[i] = false;
        for (size_t k = 0; k < sizeof(catalog) / sizeof(catalog[0]); k++) {
            if (strcmp(catalog[k].id, ids[i]) == 0) {
                out[i] = catalog[k];
                out[i].name = svc_arena_strdup(a, catalog[k].name);
                out[i].currency = svc_arena_strdup(a, catalog[k].currency);
                found[i] = true;
            }
        }
    }
    return testfake_leave(&fake.r, 0);
}

/* The saga's calls: no route makes them (the saga runs in the worker). */
/* The signatures are cart.h's: REASON is written by a real remote. */
static enum cart_remote_result r_order_step(void *ctx, const struct cart_order *o,
                                            char *reason, // NOLINT(readability-non-const-parameter)
                                            size_t cap)
{
    (void)ctx;
    (void)o;
    (void)reason;
    (void)cap;
    if (testfake_enter(&fake.r, R_SAGA) == 0)
        testfake_leave(&fake.r, 0);
    return CART_REMOTE_OK;
}

static enum cart_remote_result r_id_step(void *ctx, const char *order_id,
                                         char *reason, // NOLINT(readability-non-const-parameter)
                                         size_t cap)
{
    (void)ctx;
    (void)order_id;
    (void)reason;
    (void)cap;
    if (testfake_enter(&fake.r, R_SAGA) == 0)
        testfake_leave(&fake.r, 0);
    return CART_REMOTE_OK;
}

static void f_kick(void *ctx, const char *order_id)
{
    ck_assert_ptr_eq(ctx, &fake);
    pthread_mutex_lock(&fake.t.mu);
    fake.kicks++;
    snprintf(fake.kicked, sizeof(fake.kicked), "%s", order_id);
    pthread_mutex_unlock(&fake.t.mu);
}

static struct cart_app app = {
    .store =
        {
            .get = f_get,
            .put_line = f_put_line,
            .remove_line = f_remove_line,
            .clear = f_clear,
            .checkout = f_checkout,
            .order_get = f_order_get,
            .orders_list = f_orders_list,
            .order_log = f_order_log,
            .orders_open = f_orders_open,
            .user_upsert = f_user_event,
            .user_deleted = f_user_event,
            .product_upsert = f_product_upsert,
            .product_deleted = f_product_deleted,
        },
    .remote =
        {
            .products = r_products,
            .reserve = r_order_step,
            .commit = r_id_step,
            .release = r_id_step,
            .charge = r_order_step,
            .refund = r_id_step,
        },
    .kick = f_kick,
    .kick_ctx = &fake,
};

static const struct svc_def cart_def = {
    .name = "cart-svc",
    .version = "test",
    .routes = cart_routes,
    .app = &app,
    .errors = cart_errors,
    .openapi = cart_openapi_yaml,
};

static int calls(enum call c)
{
    return testfake_calls(&fake.t, c);
}

static int rcalls(enum remote_call c)
{
    return testfake_calls(&fake.r, c);
}

static void setup(void)
{
    memset(&fake, 0, sizeof(fake));
    testfake_init(&fake.t);
    testfake_init(&fake.r);
    snprintf(fake.carts[0].user_id, sizeof(fake.carts[0].user_id), "%s", U1);
    snprintf(fake.carts[1].user_id, sizeof(fake.carts[1].user_id), "%s", U2);
    fake.now_ms = T0 + 123;
    testsvc_start(&cart_def);
}

static void teardown(void)
{
    testsvc_stop();
    ck_assert_int_eq(calls(C_OTHER), 0);
    ck_assert_int_eq(rcalls(R_SAGA), 0);
    testfake_release(&fake.r);
    testfake_release(&fake.t);
}

/* ---- the client ------------------------------------------------------------------------- */

static const char *const key1[] = {"Idempotency-Key: order-1", NULL};
static const char *const key2[] = {"Idempotency-Key: 6b1f0c1e-2d3a-4b5c-8d7e-9f0a1b2c3d4e", NULL};

/* A 400 that neither the store nor product-svc saw. */
static void assert_refused_h(const char *method, const char *path, const char *const *headers,
                             const char *body, const char *field, const char *want)
{
    int remote = testfake_total(&fake.r);

    testsvc_assert_refused(&fake.t, method, path, headers, body, field, want);
    ck_assert_msg(testfake_total(&fake.r) == remote, "%s %s %s reached product-svc", method, path,
                  body != NULL ? body : "");
}

static void assert_refused(const char *method, const char *path, const char *body,
                           const char *field, const char *want)
{
    assert_refused_h(method, path, NULL, body, field, want);
}

static int total(void)
{
    return testfake_total(&fake.t) + testfake_total(&fake.r);
}

static bool is_null(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    return v != NULL && json_is_null(v);
}

static const char *line_path(const char *user, const char *product)
{
    static char out[256];

    snprintf(out, sizeof(out), "/v1/carts/%s/items/%s", user, product);
    return out;
}

/* PUTs QUANTITY of PRODUCT into U1's cart, which must answer 200. */
static void put(const char *product, int quantity)
{
    char body[64];
    struct testapi_reply *r;

    snprintf(body, sizeof(body), "{\"quantity\":%d}", quantity);
    r = testapi_call("PUT", line_path(U1, product), body);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
}

/* Asserts J is exactly a cart line as openapi.yaml's CartLine says (its 7 members). */
static void assert_line(json_t *j, const char *product, const char *name, int64_t quantity,
                        int64_t price)
{
    ck_assert_int_eq(json_object_size(j), 7);
    ck_assert_str_eq(testapi_str(j, "product_id"), product);
    ck_assert_str_eq(testapi_str(j, "name"), name);
    ck_assert_int_eq(testapi_num(j, "quantity"), quantity);
    ck_assert_int_eq(testapi_num(j, "price_cents"), price);
    ck_assert_str_eq(testapi_str(j, "currency"), "EUR");
    ck_assert_int_eq(testapi_num(j, "subtotal_cents"), quantity * price);
    ck_assert(json_is_false(json_object_get(j, "repriced")));
}

/* Asserts J is an order as openapi.yaml's Order (WITH_STEPS) or OrderSummary says. */
static void assert_order(json_t *j, const char *id, const char *status, int64_t total_cents,
                         size_t nlines, bool with_steps)
{
    ck_assert_int_eq(json_object_size(j), with_steps ? 11 : 10);
    ck_assert_str_eq(testapi_str(j, "id"), id);
    ck_assert_str_eq(testapi_str(j, "user_id"), U1);
    ck_assert_str_eq(testapi_str(j, "status"), status);
    ck_assert_int_eq(json_array_size(json_object_get(j, "lines")), nlines);
    ck_assert_int_eq(testapi_num(j, "total_cents"), total_cents);
    ck_assert_str_eq(testapi_str(j, "currency"), "EUR");
    ck_assert(json_object_get(j, "failed_step") != NULL);
    ck_assert(json_object_get(j, "reason") != NULL);
    ck_assert_uint_eq(strlen(testapi_str(j, "created_at")), 24);
    ck_assert_uint_eq(strlen(testapi_str(j, "updated_at")), 24);
    ck_assert(with_steps == json_is_array(json_object_get(j, "steps")));
}

/* ---- carts ------------------------------------------------------------------------------ */

START_TEST(a_known_user_without_a_cart_has_an_empty_one)
{
    struct testapi_reply *r = testapi_call("GET", "/v1/carts/" U1, NULL);
    json_t *j;

    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 6);
    ck_assert_str_eq(testapi_str(j, "user_id"), U1);
    ck_assert_int_eq(json_array_size(json_object_get(j, "lines")), 0);
    ck_assert_int_eq(testapi_num(j, "total_cents"), 0);
    ck_assert(is_null(j, "currency"));
    ck_assert(is_null(j, "updated_at"));
    ck_assert(is_null(j, "expires_at"));
    json_decref(j);
    ck_assert_int_eq(calls(C_GET), 1);
    ck_assert_int_eq(total(), 1);
}
END_TEST

START_TEST(put_checks_the_product_with_product_svc_and_answers_the_cart)
{
    struct testapi_reply *r;
    json_t *j, *lines;

    /* In upper case, as a client may write them: the answer is in lower case. */
    r = testapi_call("PUT", "/v1/carts/0F8E1D2C-3B4A-4968-8776-554433221100/items/" KETTLE,
                     "{\"quantity\":2}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_int_eq(rcalls(R_PRODUCTS), 1);
    ck_assert_uint_eq(fake.asked_n, 1);
    ck_assert_str_eq(fake.asked, KETTLE);
    ck_assert_int_eq(calls(C_PUT_LINE), 1);
    ck_assert_int_eq(fake.put_quantity, 2);
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 6);
    ck_assert_str_eq(testapi_str(j, "user_id"), U1);
    lines = json_object_get(j, "lines");
    ck_assert_int_eq(json_array_size(lines), 1);
    assert_line(json_array_get(lines, 0), KETTLE, "Steel Kettle", 2, 2599);
    ck_assert_int_eq(testapi_num(j, "total_cents"), 5198);
    ck_assert_str_eq(testapi_str(j, "currency"), "EUR");
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:00.123Z");
    ck_assert_str_eq(testapi_str(j, "expires_at"), "2026-01-08T00:00:00.123Z");
    json_decref(j);

    /* A second product, then the first one's quantity set again (not added to), in the
     * product id's lower case. */
    put(MUG, 1);
    r = testapi_call("PUT", line_path(U1, "3C4D5E6F-7081-4C9D-8E0F-2A3B4C5D6E7F"),
                     "{\"quantity\":3}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(fake.asked, KETTLE);
    j = testapi_json(r);
    lines = json_object_get(j, "lines");
    ck_assert_int_eq(json_array_size(lines), 2);
    assert_line(json_array_get(lines, 0), KETTLE, "Steel Kettle", 3, 2599);
    assert_line(json_array_get(lines, 1), MUG, "Mug \xc3\xa9t\xc3\xa9", 1, 899);
    ck_assert_int_eq(testapi_num(j, "total_cents"), 3 * 2599 + 899);
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:02.123Z");
    json_decref(j);

    /* More than product-svc has available (3) is accepted: the checkout's reservation decides. */
    r = testapi_call("PUT", line_path(U1, KETTLE), "{\"quantity\":99}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_int_eq(fake.put_quantity, 99);

    /* The cart as GET shows it. */
    r = testapi_call("GET", "/v1/carts/" U1, NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    assert_line(json_array_get(json_object_get(j, "lines"), 0), KETTLE, "Steel Kettle", 99, 2599);
    ck_assert_int_eq(testapi_num(j, "total_cents"), 99 * 2599 + 899);
    json_decref(j);
    ck_assert_int_eq(rcalls(R_PRODUCTS), 4);
    ck_assert_int_eq(calls(C_PUT_LINE), 4);
}
END_TEST

START_TEST(put_of_a_product_product_svc_does_not_have_is_422_and_changes_nothing)
{
    struct testapi_reply *r = testapi_call("PUT", line_path(U1, NOONE), "{\"quantity\":1}");

    testapi_assert_problem(r, 422, "product-not-found", "product '" NOONE "' does not exist",
                           "product_id");
    ck_assert_int_eq(rcalls(R_PRODUCTS), 1);
    ck_assert_str_eq(fake.asked, NOONE);
    ck_assert_int_eq(testfake_total(&fake.t), 0);
}
END_TEST

START_TEST(put_without_an_answer_from_product_svc_is_503_and_never_a_guess)
{
    struct testapi_reply *r;

    fake.r.fail = CART_EDEPENDENCY;
    r = testapi_call("PUT", line_path(U1, KETTLE), "{\"quantity\":1}");
    testapi_assert_problem(r, 503, "dependency-unavailable", "product-svc did not answer", NULL);
    ck_assert_str_eq(testapi_header(r, "Retry-After"), "1");
    ck_assert_int_eq(rcalls(R_PRODUCTS), 1);
    ck_assert_int_eq(testfake_total(&fake.t), 0);

    /* A timeout said as such by the client is the same answer. */
    fake.r.fail = SVC_ETIMEDOUT;
    r = testapi_call("PUT", line_path(U1, KETTLE), "{\"quantity\":1}");
    testapi_assert_problem(r, 503, "dependency-unavailable", "nothing was changed", NULL);
    ck_assert_str_eq(testapi_header(r, "Retry-After"), "1");
    ck_assert_int_eq(testfake_total(&fake.t), 0);

    /* product-svc back: the same request goes through. */
    fake.r.fail = 0;
    put(KETTLE, 1);
}
END_TEST

START_TEST(put_refuses_bad_input_without_asking_anyone)
{
    const char *p = line_path(U1, KETTLE);
    static const char *const text[] = {"Content-Type: text/plain", NULL};
    char *huge;

    assert_refused("PUT", "/v1/carts/user-1/items/" KETTLE, "{\"quantity\":1}", "user_id",
                   "path parameter 'user_id' must be a UUID, not 'user-1'");
    assert_refused("PUT", "/v1/carts/" U1 "/items/kettle", "{\"quantity\":1}", "product_id",
                   "path parameter 'product_id' must be a UUID");
    assert_refused("PUT", "/v1/carts/" U1 "/items/%24ne", "{\"quantity\":1}", "product_id",
                   "must be a UUID");
    assert_refused("PUT", "/v1/carts/" U1 "/items/" KETTLE "0", "{\"quantity\":1}", "product_id",
                   "must be a UUID");
    assert_refused("PUT", p, "{\"quantity\":0}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":100}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":-1}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":1.5}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":1.0}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":\"2\"}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":true}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":null}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":1e2}", "quantity", "quantity");
    testapi_assert_problem(testapi_call("PUT", p, "{\"quantity\":99999999999999999999}"), 400,
                           "malformed-json", "", NULL);
    assert_refused("PUT", p, "{}", "quantity", "quantity");
    assert_refused("PUT", p, "{\"quantity\":1,\"price_cents\":1}", "price_cents", "price_cents");
    testapi_assert_problem(testapi_call("PUT", p, "{\"quantity\":1,\"quantity\":2}"), 400,
                           "malformed-json", "duplicate", NULL);
    assert_refused("PUT", p, "{\"quantity\":", "", "malformed JSON");
    assert_refused("PUT", p, "[1]", "", "");
    assert_refused("PUT", p, "2", "", "");
    assert_refused("PUT", testsvc_cat(p, "?quantity=2", ""), "{\"quantity\":1}", "quantity",
                   "query parameter 'quantity' is not accepted here");
    testapi_assert_problem(testapi_call("PUT", p, NULL), 400, "malformed-json", "", NULL);
    testapi_assert_problem(testapi_call_h("PUT", p, text, "quantity=1"), 415,
                           "unsupported-media-type", "", NULL);
    huge = malloc(4096);
    ck_assert_ptr_nonnull(huge);
    memset(huge, ' ', 4095);
    memcpy(huge, "{\"quantity\":1", 13);
    huge[4094] = '}';
    huge[4095] = '\0';
    testapi_assert_problem(testapi_call("PUT", p, huge), 413, "payload-too-large", "", NULL);
    free(huge);
    ck_assert_int_eq(total(), 0);
}
END_TEST

START_TEST(put_answers_the_store_errors_as_documented)
{
    struct testapi_reply *r;

    r = testapi_call("PUT", line_path(UNKNOWN, KETTLE), "{\"quantity\":1}");
    testapi_assert_problem(r, 404, "user-not-known", "user '" UNKNOWN "' is not known to cart-svc",
                           "user_id");

    /* A cart holds one currency. */
    put(KETTLE, 1);
    r = testapi_call("PUT", line_path(U1, DOLLAR), "{\"quantity\":1}");
    testapi_assert_problem(r, 409, "conflict", "is priced in USD, and a cart holds one currency",
                           NULL);

    /* 100 lines: a new one is refused, a change of one of them is not. */
    pthread_mutex_lock(&fake.t.mu);
    for (size_t i = 1; i < CART_LINES_MAX; i++) {
        struct fake_line *l = &fake.carts[0].lines[i];

        *l = fake.carts[0].lines[0];
        snprintf(l->product_id, sizeof(l->product_id), "00000000-0000-4000-8000-%012zu", i);
    }
    fake.carts[0].n = CART_LINES_MAX;
    pthread_mutex_unlock(&fake.t.mu);
    r = testapi_call("PUT", line_path(U1, MUG), "{\"quantity\":1}");
    testapi_assert_problem(r, 409, "cart-full", "the cart holds 100 lines", NULL);
    put(KETTLE, 2);
    ck_assert_int_eq(fake.carts[0].n, CART_LINES_MAX);
}
END_TEST

START_TEST(delete_line_answers_the_cart_without_it)
{
    struct testapi_reply *r;
    json_t *j;

    put(KETTLE, 1);
    put(MUG, 2);
    r = testapi_call("DELETE", line_path(U1, KETTLE), NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "lines")), 1);
    assert_line(json_array_get(json_object_get(j, "lines"), 0), MUG, "Mug \xc3\xa9t\xc3\xa9", 2,
                899);
    ck_assert_int_eq(testapi_num(j, "total_cents"), 1798);
    json_decref(j);
    ck_assert_int_eq(calls(C_REMOVE_LINE), 1);

    /* Gone: a second delete is 404 naming the product. */
    testapi_assert_problem(testapi_call("DELETE", line_path(U1, KETTLE), NULL), 404, "not-found",
                           "has no line of product '" KETTLE "'", "product_id");
    testapi_assert_problem(testapi_call("DELETE", line_path(UNKNOWN, KETTLE), NULL), 404,
                           "user-not-known", UNKNOWN, "user_id");

    /* Removing the last line leaves an empty cart, in no currency. */
    r = testapi_call("DELETE", line_path(U1, MUG), NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "lines")), 0);
    ck_assert(is_null(j, "currency"));
    ck_assert(is_null(j, "expires_at"));
    json_decref(j);
    ck_assert_int_eq(rcalls(R_PRODUCTS), 2); /* the two PUTs only */
}
END_TEST

START_TEST(delete_cart_is_204_and_leaves_it_empty)
{
    struct testapi_reply *r;
    json_t *j;

    put(KETTLE, 1);
    r = testapi_call("DELETE", "/v1/carts/" U1, NULL);
    ck_assert_msg(r->status == 204, "%ld %s", r->status, r->body);
    ck_assert_uint_eq(r->len, 0);
    ck_assert_int_eq(calls(C_CLEAR), 1);
    r = testapi_call("GET", "/v1/carts/" U1, NULL);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "lines")), 0);
    json_decref(j);
    /* Already empty: fine. */
    ck_assert_int_eq(testapi_call("DELETE", "/v1/carts/" U1, NULL)->status, 204);
    testapi_assert_problem(testapi_call("DELETE", "/v1/carts/" UNKNOWN, NULL), 404,
                           "user-not-known", UNKNOWN, "user_id");
    testapi_assert_problem(testapi_call("GET", "/v1/carts/" UNKNOWN, NULL), 404, "user-not-known",
                           "retry shortly", "user_id");
}
END_TEST

START_TEST(cart_routes_refuse_bad_input_without_asking_anyone)
{
    assert_refused("GET", "/v1/carts/x", NULL, "user_id", "must be a UUID, not 'x'");
    assert_refused("GET", "/v1/carts/" U1 "?expand=1", NULL, "expand",
                   "query parameter 'expand' is not accepted here");
    assert_refused("DELETE", "/v1/carts/%7B%22%24ne%22%3A1%7D", NULL, "user_id", "must be a UUID");
    assert_refused("DELETE", "/v1/carts/" U1 "?all=true", NULL, "all",
                   "query parameter 'all' is not accepted here");
    assert_refused("DELETE", line_path(U1, "x"), NULL, "product_id", "must be a UUID");
    assert_refused("DELETE", line_path("x", KETTLE), NULL, "user_id", "must be a UUID");
    assert_refused("DELETE", testsvc_cat(line_path(U1, KETTLE), "?q=1", ""), NULL, "q",
                   "query parameter 'q' is not accepted here");
    testapi_assert_problem(testapi_call("POST", "/v1/carts/" U1, "{}"), 405, "method-not-allowed",
                           "", NULL);
    ck_assert_int_eq(total(), 0);
}
END_TEST

/* ---- checkout and orders ---------------------------------------------------------------- */

START_TEST(checkout_is_202_with_the_order_and_kicks_the_saga_once)
{
    struct testapi_reply *r;
    char id[CART_ID_LEN + 1];
    json_t *j, *line;

    put(KETTLE, 2);
    put(MUG, 1);
    r = testapi_call_h("POST", "/v1/carts/" U1 "/checkout", key1, NULL);
    ck_assert_msg(r->status == 202, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    j = testapi_json(r);
    snprintf(id, sizeof(id), "%s", testapi_str(j, "id"));
    ck_assert_msg(testsvc_is_uuid_lower(id), "id '%s'", id);
    ck_assert_str_eq(id, fake.checkout_order_id);
    ck_assert_str_eq(fake.checkout_key, "order-1");
    ck_assert_str_eq(testapi_header(r, "Location"), testsvc_cat("/v1/orders/", id, ""));
    assert_order(j, id, "pending", 2 * 2599 + 899, 2, true);
    ck_assert(is_null(j, "failed_step"));
    ck_assert(is_null(j, "reason"));
    ck_assert_int_eq(json_array_size(json_object_get(j, "steps")), 0);
    line = json_array_get(json_object_get(j, "lines"), 0);
    ck_assert_int_eq(json_object_size(line), 6);
    ck_assert_str_eq(testapi_str(line, "product_id"), KETTLE);
    ck_assert_str_eq(testapi_str(line, "name"), "Steel Kettle");
    ck_assert_int_eq(testapi_num(line, "quantity"), 2);
    ck_assert_int_eq(testapi_num(line, "price_cents"), 2599);
    ck_assert_str_eq(testapi_str(line, "currency"), "EUR");
    ck_assert_int_eq(testapi_num(line, "subtotal_cents"), 5198);
    json_decref(j);
    ck_assert_int_eq(fake.kicks, 1);
    ck_assert_str_eq(fake.kicked, id);

    /* The same key: the same order, replayed, and no second saga. */
    r = testapi_call_h("POST", "/v1/carts/" U1 "/checkout", key1, NULL);
    ck_assert_msg(r->status == 202, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(testapi_header(r, "Location"), testsvc_cat("/v1/orders/", id, ""));
    j = testapi_json(r);
    assert_order(j, id, "pending", 2 * 2599 + 899, 2, true);
    json_decref(j);
    ck_assert_int_eq(fake.kicks, 1);

    /* Another key: another order, its own saga. */
    r = testapi_call_h("POST", "/v1/carts/" U1 "/checkout", key2, NULL);
    ck_assert_msg(r->status == 202, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_str_ne(testapi_str(j, "id"), id);
    ck_assert_str_eq(fake.kicked, testapi_str(j, "id"));
    json_decref(j);
    ck_assert_int_eq(fake.kicks, 2);
    ck_assert_int_eq(calls(C_CHECKOUT), 3);
    ck_assert_int_eq(rcalls(R_PRODUCTS), 2); /* the PUTs only: the saga calls the others */
}
END_TEST

START_TEST(checkout_of_an_empty_cart_is_409_and_kicks_nothing)
{
    testapi_assert_problem(testapi_call_h("POST", "/v1/carts/" U2 "/checkout", key1, NULL), 409,
                           "cart-empty", "the cart of user '" U2 "' is empty", NULL);
    testapi_assert_problem(testapi_call_h("POST", "/v1/carts/" UNKNOWN "/checkout", key1, NULL),
                           404, "user-not-known", UNKNOWN, "user_id");
    ck_assert_int_eq(calls(C_CHECKOUT), 2);
    ck_assert_int_eq(fake.kicks, 0);

    fake.t.fail = SVC_EUNAVAILABLE;
    testapi_assert_problem(testapi_call_h("POST", "/v1/carts/" U1 "/checkout", key1, NULL), 503,
                           "unavailable", "the cart store is unavailable", NULL);
    ck_assert_int_eq(fake.kicks, 0);
}
END_TEST

START_TEST(checkout_requires_an_idempotency_key_and_no_body)
{
    const char *p = "/v1/carts/" U1 "/checkout";
    static const char *const bad_key[] = {"Idempotency-Key: a b", NULL};
    static const char *const long_key[] = {
        "Idempotency-Key: "
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
        "89012345678901234567890123456789012345678",
        NULL};
    static const char *const empty_key[] = {"Idempotency-Key;", NULL};
    struct testapi_reply *r;

    put(KETTLE, 1);
    r = testapi_call("POST", p, NULL);
    testapi_assert_problem(r, 428, "precondition-required", "send an Idempotency-Key header",
                           "Idempotency-Key");
    assert_refused_h("POST", p, bad_key, NULL, "Idempotency-Key",
                     "header 'Idempotency-Key' must be 1 to 128 of");
    assert_refused_h("POST", p, long_key, NULL, "Idempotency-Key",
                     "header 'Idempotency-Key' must be 1 to 128 of");
    assert_refused_h("POST", p, empty_key, NULL, "Idempotency-Key",
                     "header 'Idempotency-Key' must be 1 to 128 of");
    assert_refused_h("POST", p, key1, "{}", "", "this operation takes no body");
    assert_refused_h("POST", p, key1, "{\"user_id\":\"" U2 "\"}", "",
                     "this operation takes no body");
    assert_refused_h("POST", testsvc_cat(p, "?dry_run=1", ""), key1, NULL, "dry_run",
                     "query parameter 'dry_run' is not accepted here");
    assert_refused_h("POST", "/v1/carts/me/checkout", key1, NULL, "user_id", "must be a UUID");
    ck_assert_int_eq(calls(C_CHECKOUT), 0);
    ck_assert_int_eq(fake.kicks, 0);
}
END_TEST

START_TEST(get_order_shows_its_status_and_every_step)
{
    struct testapi_reply *r;
    char id[CART_ID_LEN + 1];
    json_t *j, *steps, *s;

    put(KETTLE, 3);
    r = testapi_call_h("POST", "/v1/carts/" U1 "/checkout", key1, NULL);
    ck_assert_msg(r->status == 202, "%ld %s", r->status, r->body);
    snprintf(id, sizeof(id), "%s", fake.checkout_order_id);

    /* What the saga would have written: reserved, then the charge refused and compensated. */
    pthread_mutex_lock(&fake.t.mu);
    {
        struct fake_order *o = find_order(id);
        static const struct cart_log_entry log[] = {
            {CART_STEP_RESERVE, CART_STEP_STARTED, T0 + 10000, NULL},
            {CART_STEP_RESERVE, CART_STEP_SUCCEEDED, T0 + 10100, NULL},
            {CART_STEP_CHARGE, CART_STEP_STARTED, T0 + 10200, NULL},
            {CART_STEP_CHARGE, CART_STEP_RETRYING, T0 + 12200, "user-svc did not answer"},
            {CART_STEP_CHARGE, CART_STEP_FAILED, T0 + 12300, "insufficient funds"},
            {CART_STEP_RELEASE, CART_STEP_SUCCEEDED, T0 + 12400, NULL},
        };

        ck_assert_ptr_nonnull(o);
        memcpy(o->log, log, sizeof(log));
        o->nlog = sizeof(log) / sizeof(log[0]);
        o->status = CART_FAILED;
        o->failed_step = "charge";
        o->reason = "insufficient funds: the wallet holds 10.00 EUR, the order costs 77.97 EUR";
        o->updated_at_ms = T0 + 12400;
    }
    pthread_mutex_unlock(&fake.t.mu);

    r = testapi_call("GET", testsvc_cat("/v1/orders/", id, ""), NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    assert_order(j, id, "failed", INT64_C(3) * 2599, 1, true);
    ck_assert_str_eq(testapi_str(j, "failed_step"), "charge");
    ck_assert_str_eq(testapi_str(j, "reason"),
                     "insufficient funds: the wallet holds 10.00 EUR, the order costs 77.97 EUR");
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:12.400Z");
    steps = json_object_get(j, "steps");
    ck_assert_int_eq(json_array_size(steps), 6);
    s = json_array_get(steps, 0);
    ck_assert_int_eq(json_object_size(s), 4);
    ck_assert_str_eq(testapi_str(s, "step"), "reserve");
    ck_assert_str_eq(testapi_str(s, "state"), "started");
    ck_assert_str_eq(testapi_str(s, "at"), "2026-01-01T00:00:10.000Z");
    ck_assert(is_null(s, "detail"));
    s = json_array_get(steps, 3);
    ck_assert_str_eq(testapi_str(s, "step"), "charge");
    ck_assert_str_eq(testapi_str(s, "state"), "retrying");
    ck_assert_str_eq(testapi_str(s, "detail"), "user-svc did not answer");
    s = json_array_get(steps, 4);
    ck_assert_str_eq(testapi_str(s, "state"), "failed");
    ck_assert_str_eq(testapi_str(s, "detail"), "insufficient funds");
    s = json_array_get(steps, 5);
    ck_assert_str_eq(testapi_str(s, "step"), "release");
    ck_assert_str_eq(testapi_str(s, "state"), "succeeded");
    json_decref(j);

    /* In upper case too; an unknown order is 404. */
    r = testapi_call("GET", "/v1/orders/" NOONE, NULL);
    testapi_assert_problem(r, 404, "not-found", "order '" NOONE "' not found", NULL);
    assert_refused("GET", "/v1/orders/42", NULL, "order_id", "must be a UUID, not '42'");
    assert_refused("GET", "/v1/orders/" NOONE "?steps=0", NULL, "steps",
                   "query parameter 'steps' is not accepted here");
}
END_TEST

START_TEST(orders_are_listed_newest_first_in_pages)
{
    char ids[5][CART_ID_LEN + 1], cursor[256];
    const char *path = "/v1/users/" U1 "/orders?limit=2";
    struct testapi_reply *r;
    size_t seen = 0;
    json_t *j;

    put(KETTLE, 1);
    for (int i = 0; i < 5; i++) {
        char h[64];
        const char *hs[] = {h, NULL};

        snprintf(h, sizeof(h), "Idempotency-Key: k-%d", i);
        r = testapi_call_h("POST", "/v1/carts/" U1 "/checkout", hs, NULL);
        ck_assert_msg(r->status == 202, "%ld %s", r->status, r->body);
        snprintf(ids[i], sizeof(ids[i]), "%s", fake.checkout_order_id);
    }
    /* Pages of 2, newest first: 4 3 | 2 1 | 0, then no cursor. */
    for (int page = 0; page < 3; page++) {
        json_t *items, *next;

        r = testapi_call("GET", path, NULL);
        ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
        ck_assert_int_eq(fake.limit, 2);
        ck_assert(fake.has_after == (page > 0));
        j = testapi_json(r);
        ck_assert_int_eq(json_object_size(j), 2);
        items = json_object_get(j, "items");
        ck_assert_int_eq(json_array_size(items), page < 2 ? 2 : 1);
        for (size_t i = 0; i < json_array_size(items); i++, seen++)
            assert_order(json_array_get(items, i), ids[4 - seen], "pending", 2599, 1, false);
        next = json_object_get(j, "next_cursor");
        if (page < 2) {
            ck_assert(json_is_string(next));
            snprintf(cursor, sizeof(cursor), "/v1/users/" U1 "/orders?limit=2&cursor=%s",
                     json_string_value(next));
            path = cursor;
        } else {
            ck_assert(json_is_null(next));
        }
        json_decref(j);
    }
    ck_assert_uint_eq(seen, 5);

    /* The default page size, and a user without orders. */
    r = testapi_call("GET", "/v1/users/" U1 "/orders", NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_int_eq(fake.limit, 20);
    r = testapi_call("GET", "/v1/users/" U2 "/orders", NULL);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
    ck_assert(is_null(j, "next_cursor"));
    json_decref(j);
    testapi_assert_problem(testapi_call("GET", "/v1/users/" UNKNOWN "/orders", NULL), 404,
                           "user-not-known", UNKNOWN, "user_id");
}
END_TEST

START_TEST(orders_list_refuses_bad_parameters_without_asking_anyone)
{
    const char *p = "/v1/users/" U1 "/orders";

    assert_refused("GET", testsvc_cat(p, "?limit=0", ""), NULL, "limit", "limit");
    assert_refused("GET", testsvc_cat(p, "?limit=101", ""), NULL, "limit", "limit");
    assert_refused("GET", testsvc_cat(p, "?limit=x", ""), NULL, "limit", "limit");
    assert_refused("GET", testsvc_cat(p, "?limit=1.5", ""), NULL, "limit", "limit");
    assert_refused("GET", testsvc_cat(p, "?cursor=xyz", ""), NULL, "cursor", "cursor");
    assert_refused("GET", testsvc_cat(p, "?cursor=", ""), NULL, "cursor", "cursor");
    assert_refused("GET", testsvc_cat(p, "?status=placed", ""), NULL, "status",
                   "query parameter 'status' is not accepted here");
    assert_refused("GET", "/v1/users/u1/orders", NULL, "user_id", "must be a UUID");
    ck_assert_int_eq(total(), 0);
}
END_TEST

/* ---- failures and the contract ---------------------------------------------------------- */

START_TEST(store_unavailable_is_503_with_retry_after_on_every_route)
{
    static const struct testsvc_request reqs[] = {
        {"GET", "/v1/carts/" U1, NULL, C_GET},
        {"PUT", "/v1/carts/" U1 "/items/" KETTLE, "{\"quantity\":1}", C_PUT_LINE},
        {"DELETE", "/v1/carts/" U1 "/items/" KETTLE, NULL, C_REMOVE_LINE},
        {"DELETE", "/v1/carts/" U1, NULL, C_CLEAR},
        {"POST", "/v1/carts/" U1 "/checkout", NULL, C_CHECKOUT},
        {"GET", "/v1/orders/" NOONE, NULL, C_ORDER_GET},
        {"GET", "/v1/users/" U1 "/orders", NULL, C_ORDERS_LIST},
    };

    testsvc_assert_unavailable(&fake.t, reqs, sizeof(reqs) / sizeof(reqs[0]), key1,
                               "the cart store is unavailable: retry later");
    /* A timeout or a busy pool is the same 503 to a client. */
    fake.t.fail = SVC_ETIMEDOUT;
    testapi_assert_problem(testapi_call("GET", "/v1/carts/" U1, NULL), 503, "unavailable",
                           "the cart store is unavailable", NULL);
    fake.t.fail = SVC_EAGAIN;
    testapi_assert_problem(testapi_call("GET", "/v1/orders/" NOONE, NULL), 503, "unavailable",
                           "the cart store is unavailable", NULL);
    ck_assert_int_eq(fake.kicks, 0);
}
END_TEST

START_TEST(openapi_yaml_is_served_and_names_every_route)
{
    static const char *const problems[] = {"cart-full",
                                           "cart-empty",
                                           "user-not-known",
                                           "product-not-found",
                                           "dependency-unavailable",
                                           "conflict",
                                           "precondition-required",
                                           "payload-too-large",
                                           "unsupported-media-type",
                                           "invalid-request",
                                           "unavailable",
                                           NULL};

    testsvc_assert_openapi(cart_routes, problems);
}
END_TEST

/* Every problem type cart-svc can answer is in its openapi.yaml and docs/architecture.md, with
 * its status, and they name no other: lib's common ones, the lib codes its handlers answer,
 * and its own errors. */
START_TEST(every_problem_type_is_documented)
{
    static const int uses[] = {SVC_ECONFLICT, SVC_EPRECONDREQUIRED, SVC_OK};

    testproblems_check_openapi((const char *)cart_openapi_yaml, uses, cart_errors);
    testproblems_check_docs("cart-svc", cart_errors);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cart_http");
    TCase *tc = tcase_create("api");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_known_user_without_a_cart_has_an_empty_one);
    tcase_add_test(tc, put_checks_the_product_with_product_svc_and_answers_the_cart);
    tcase_add_test(tc, put_of_a_product_product_svc_does_not_have_is_422_and_changes_nothing);
    tcase_add_test(tc, put_without_an_answer_from_product_svc_is_503_and_never_a_guess);
    tcase_add_test(tc, put_refuses_bad_input_without_asking_anyone);
    tcase_add_test(tc, put_answers_the_store_errors_as_documented);
    tcase_add_test(tc, delete_line_answers_the_cart_without_it);
    tcase_add_test(tc, delete_cart_is_204_and_leaves_it_empty);
    tcase_add_test(tc, cart_routes_refuse_bad_input_without_asking_anyone);
    tcase_add_test(tc, checkout_is_202_with_the_order_and_kicks_the_saga_once);
    tcase_add_test(tc, checkout_of_an_empty_cart_is_409_and_kicks_nothing);
    tcase_add_test(tc, checkout_requires_an_idempotency_key_and_no_body);
    tcase_add_test(tc, get_order_shows_its_status_and_every_step);
    tcase_add_test(tc, orders_are_listed_newest_first_in_pages);
    tcase_add_test(tc, orders_list_refuses_bad_parameters_without_asking_anyone);
    tcase_add_test(tc, store_unavailable_is_503_with_retry_after_on_every_route);
    tcase_add_test(tc, openapi_yaml_is_served_and_names_every_route);
    tcase_add_test(tc, every_problem_type_is_documented);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

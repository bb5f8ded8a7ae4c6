/*
 * eventgen.c: the deterministic event set and its expected answers (eventgen.h).
 *
 * Generation first makes every story as a list of events with their data rendered (times in the
 * data are the story's), then sorts them by time, and only then writes the envelopes, so that
 * the count mode can re-time them. The expected answers are computed last, from the final list.
 */
#include "eventgen.h"

#include "polyglot/events.h"
#include "svc/time.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a)     (sizeof(a) / sizeof((a)[0]))
#define SECOND_MS   INT64_C(1000)
#define MINUTE_MS   INT64_C(60000)
#define HOUR_MS     (60 * MINUTE_MS)
#define DAY_MS      (24 * HOUR_MS)
#define LINES_MAX   3
#define BALANCE0    INT64_C(1000000) /* what a wallet holds before the window, in cents */
#define RESERVE_TTL (15 * MINUTE_MS)

/* ---- random streams ---------------------------------------------------------------------- */

/* splitmix64 (Steele, Lea and Flood, 2014): one well-mixed 64-bit value per step. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The stream of entity I of KIND under SEED: independent of how many others there are. */
enum { S_PRODUCT = 1, S_USER = 2 };

static uint64_t stream(uint64_t seed, uint64_t kind, uint64_t i)
{
    uint64_t s = seed;
    uint64_t a = next(&s) ^ (kind * 0xd1342543de82ef95ULL);

    s = a ^ (i * 0x9e3779b97f4a7c15ULL);
    next(&s);
    return s;
}

/* A whole number in [LO, HI]. */
static int64_t between(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next(s) % (uint64_t)(hi - lo + 1));
}

static bool chance(uint64_t *s, int percent)
{
    return (int)(next(s) % 100) < percent;
}

/* A version 4 UUID of the stream's next 128 bits. */
static void uuid(uint64_t *s, char out[37])
{
    unsigned char b[16];
    uint64_t hi = next(s), lo = next(s);
    size_t o = 0;

    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        static const char hex[] = "0123456789abcdef";

        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* ---- the shop ---------------------------------------------------------------------------- */

static const char *const first_names[] = {
    "Ada",   "Alan",   "Grace", "Edsger", "Barbara",  "Donald",  "Frances", "Ken",
    "Radia", "Dennis", "Hedy",  "Linus",  "Margaret", "Niklaus", "Sophie",  "Tim",
};
static const char *const last_names[] = {
    "Lovelace", "Turing",  "Hopper", "Dijkstra", "Liskov",   "Knuth", "Allen",  "Thompson",
    "Perlman",  "Ritchie", "Lamarr", "Torvalds", "Hamilton", "Wirth", "Wilson", "Berners-Lee",
};
static const char *const adjectives[] = {"Compact", "Classic", "Rugged", "Quiet",
                                         "Modern",  "Vintage", "Smart",  "Sturdy"};
static const char *const nouns[] = {"Kettle",     "Headphones", "Backpack", "Desk Lamp",
                                    "Frying Pan", "Notebook",   "Sneakers", "Water Bottle",
                                    "Keyboard",   "Tent"};
static const char *const categories[] = {"kitchen", "electronics", "outdoor", "office"};

struct product {
    char id[37];
    char name[64];
    char sku[16];
    const char *category;
    int64_t price_cents;
};

struct line {
    int product;
    int64_t quantity;
    int64_t price_cents;
};

struct order {
    struct line lines[LINES_MAX];
    size_t n;
    int64_t total_cents;
};

enum ev_type {
    T_USER_REGISTERED,
    T_USER_UPDATED,
    T_USER_DELETED,
    T_WALLET_CREDITED,
    T_PAYMENT_CAPTURED,
    T_PAYMENT_REFUNDED,
    T_PRODUCT_CREATED,
    T_PRODUCT_UPDATED,
    T_CART_ITEM_ADDED,
    T_CART_ITEM_REMOVED,
    T_CHECKOUT_STARTED,
    T_ORDER_PLACED,
    T_ORDER_FAILED,
    T_STOCK_RESERVED,
    T_STOCK_COMMITTED,
    T_STOCK_RELEASED,
    T_N,
};

static const struct type_def {
    const char *type, *topic, *source;
} type_defs[T_N] = {
    [T_USER_REGISTERED] = {EV_USER_REGISTERED, TOPIC_USER_EVENTS, "/user-svc"},
    [T_USER_UPDATED] = {EV_USER_UPDATED, TOPIC_USER_EVENTS, "/user-svc"},
    [T_USER_DELETED] = {EV_USER_DELETED, TOPIC_USER_EVENTS, "/user-svc"},
    [T_WALLET_CREDITED] = {EV_WALLET_CREDITED, TOPIC_USER_EVENTS, "/user-svc"},
    [T_PAYMENT_CAPTURED] = {EV_PAYMENT_CAPTURED, TOPIC_USER_EVENTS, "/user-svc"},
    [T_PAYMENT_REFUNDED] = {EV_PAYMENT_REFUNDED, TOPIC_USER_EVENTS, "/user-svc"},
    [T_PRODUCT_CREATED] = {EV_PRODUCT_CREATED, TOPIC_PRODUCT_EVENTS, "/product-svc"},
    [T_PRODUCT_UPDATED] = {EV_PRODUCT_UPDATED, TOPIC_PRODUCT_EVENTS, "/product-svc"},
    [T_CART_ITEM_ADDED] = {EV_CART_ITEM_ADDED, TOPIC_CART_EVENTS, "/cart-svc"},
    [T_CART_ITEM_REMOVED] = {EV_CART_ITEM_REMOVED, TOPIC_CART_EVENTS, "/cart-svc"},
    [T_CHECKOUT_STARTED] = {EV_CHECKOUT_STARTED, TOPIC_CART_EVENTS, "/cart-svc"},
    [T_ORDER_PLACED] = {EV_ORDER_PLACED, TOPIC_CART_EVENTS, "/cart-svc"},
    [T_ORDER_FAILED] = {EV_ORDER_FAILED, TOPIC_CART_EVENTS, "/cart-svc"},
    [T_STOCK_RESERVED] = {EV_STOCK_RESERVED, TOPIC_PRODUCT_EVENTS, "/product-svc"},
    [T_STOCK_COMMITTED] = {EV_STOCK_COMMITTED, TOPIC_PRODUCT_EVENTS, "/product-svc"},
    [T_STOCK_RELEASED] = {EV_STOCK_RELEASED, TOPIC_PRODUCT_EVENTS, "/product-svc"},
};

/* An event while the set is made: its data is rendered at once (DATA), the envelope later. */
struct ev {
    int64_t t; /* ms from the window's start */
    size_t seq;
    enum ev_type type;
    char id[37];
    char key[37];
    int user;  /* index into users, -1: none */
    int order; /* index into orders, -1: none */
    char *data;
    struct eg_event pub;
};

struct user {
    char id[37];
};

struct eg_set {
    struct eg_opts o;
    int64_t window_ms;
    struct product *products;
    int nproducts;
    struct user *users;
    size_t nusers, users_cap;
    struct order *orders;
    size_t norders, orders_cap;
    struct ev *evs;
    size_t n, cap;
    size_t nevs_before_story; /* N when the story being told began */
    json_t *expect;
};

/* ---- stories ----------------------------------------------------------------------------- */

/* One story being told: the clock, and whether it ran past the window (then nothing more of it
 * is told: the rest would happen after the window). */
struct story {
    struct eg_set *s;
    uint64_t st;
    int64_t t;
    bool over;
};

static const char *iso(int64_t start_ms, int64_t t, char buf[SVC_RFC3339_MS_LEN + 1])
{
    svc_rfc3339_format_ms(start_ms + t, buf);
    return buf;
}

/* Appends an event of TYPE about KEY at the story's time with DATA (taken over), unless the
 * story is over. */
static void emit(struct story *y, enum ev_type type, const char *key, int user, int order,
                 json_t *data)
{
    struct eg_set *s = y->s;
    struct ev *e;

    if (y->over || y->t >= s->window_ms) {
        y->over = true;
        json_decref(data);
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap == 0 ? 1024 : s->cap * 2;
        s->evs = realloc(s->evs, s->cap * sizeof(*s->evs));
        if (s->evs == NULL)
            abort();
    }
    e = &s->evs[s->n];
    memset(e, 0, sizeof(*e));
    e->t = y->t;
    e->seq = s->n++;
    e->type = type;
    uuid(&y->st, e->id);
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->user = user;
    e->order = order;
    e->data = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (e->data == NULL)
        abort();
}

/* Moves the story's clock on by LO..HI milliseconds. */
static void later(struct story *y, int64_t lo, int64_t hi)
{
    y->t += between(&y->st, lo, hi);
}

static void make_products(struct eg_set *s)
{
    char a[SVC_RFC3339_MS_LEN + 1], b[SVC_RFC3339_MS_LEN + 1];
    int n = 6 + s->o.users / 4;

    if (n > 200)
        n = 200;
    s->nproducts = n;
    s->products = calloc((size_t)n, sizeof(*s->products));
    if (s->products == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        struct product *p = &s->products[i];
        struct story y = {.s = s, .st = stream(s->o.seed, S_PRODUCT, (uint64_t)i)};
        int64_t stock = between(&y.st, 50, 500), created;

        uuid(&y.st, p->id);
        snprintf(p->name, sizeof(p->name), "%s %s",
                 adjectives[between(&y.st, 0, N_OF(adjectives) - 1)],
                 nouns[between(&y.st, 0, N_OF(nouns) - 1)]);
        snprintf(p->sku, sizeof(p->sku), "EG-%.8s", p->id);
        p->category = categories[between(&y.st, 0, N_OF(categories) - 1)];
        p->price_cents = between(&y.st, 199, 19999);
        /* The catalogue is there early in the window; restocks come later. */
        y.t = created = between(&y.st, 0, s->window_ms / 10);
        iso(s->o.start_ms, created, a);
        emit(&y, T_PRODUCT_CREATED, p->id, -1, -1,
             json_pack("{s:s, s:s, s:s, s:s, s:[], s:I, s:s, s:I, s:i, s:i, s:s, s:s}", "id", p->id,
                       "sku", p->sku, "name", p->name, "category", p->category, "tags",
                       "price_cents", (json_int_t)p->price_cents, "currency", "EUR", "stock",
                       (json_int_t)stock, "reserved", 0, "sold", 0, "created_at", a, "updated_at",
                       a));
        if (chance(&y.st, 30)) {
            y.t = between(&y.st, s->window_ms / 10, s->window_ms - 1);
            stock += between(&y.st, 10, 100);
            emit(&y, T_PRODUCT_UPDATED, p->id, -1, -1,
                 json_pack("{s:s, s:s, s:s, s:s, s:[], s:I, s:s, s:I, s:i, s:i, s:s, s:s}", "id",
                           p->id, "sku", p->sku, "name", p->name, "category", p->category, "tags",
                           "price_cents", (json_int_t)p->price_cents, "currency", "EUR", "stock",
                           (json_int_t)stock, "reserved", 0, "sold", 0, "created_at", a,
                           "updated_at", iso(s->o.start_ms, y.t, b)));
        }
    }
}

static json_t *lines_json(const struct eg_set *s, const struct order *o, bool stock)
{
    json_t *a = json_array();

    for (size_t i = 0; i < o->n; i++) {
        const struct product *p = &s->products[o->lines[i].product];

        if (stock)
            json_array_append_new(a, json_pack("{s:s, s:I}", "product_id", p->id, "quantity",
                                               (json_int_t)o->lines[i].quantity));
        else
            json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:s, s:s}", "product_id", p->id,
                                               "quantity", (json_int_t)o->lines[i].quantity,
                                               "price_cents", (json_int_t)o->lines[i].price_cents,
                                               "currency", "EUR", "name", p->name));
    }
    return a;
}

/* The order event of TYPE (checkout.started, order.placed, order.failed). */
static json_t *order_json(struct story *y, const char *order_id, const char *user_id, int o,
                          const char *status, int64_t created)
{
    char a[SVC_RFC3339_MS_LEN + 1], b[SVC_RFC3339_MS_LEN + 1];
    const struct order *ord = &y->s->orders[o];

    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:s}", "order_id", order_id, "user_id",
                     user_id, "status", status, "lines", lines_json(y->s, ord, false),
                     "total_cents", (json_int_t)ord->total_cents, "currency", "EUR", "created_at",
                     iso(y->s->o.start_ms, created, a), "updated_at",
                     iso(y->s->o.start_ms, y->t, b));
}

static json_t *stock_json(struct story *y, const char *res_id, int o, const char *state,
                          int64_t reserved_at, const char *reason)
{
    char a[SVC_RFC3339_MS_LEN + 1], b[SVC_RFC3339_MS_LEN + 1];
    json_t *j = json_pack("{s:s, s:s, s:o, s:s, s:s}", "reservation_id", res_id, "state", state,
                          "items", lines_json(y->s, &y->s->orders[o], true), "expires_at",
                          iso(y->s->o.start_ms, reserved_at + RESERVE_TTL, a), "updated_at",
                          iso(y->s->o.start_ms, y->t, b));

    if (reason != NULL)
        json_object_set_new(j, "reason", json_string(reason));
    return j;
}

static json_t *payment_json(struct story *y, const char *pay_id, const char *user_id,
                            int64_t amount, const char *status, int64_t balance, int64_t created)
{
    char a[SVC_RFC3339_MS_LEN + 1], b[SVC_RFC3339_MS_LEN + 1];
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "payment_id", pay_id, "user_id", user_id,
                  "amount_cents", (json_int_t)amount, "status", status, "balance_cents",
                  (json_int_t)balance, "created_at", iso(y->s->o.start_ms, created, a));

    if (strcmp(status, "refunded") == 0)
        json_object_set_new(j, "refunded_at", json_string(iso(y->s->o.start_ms, y->t, b)));
    return j;
}

static int new_order(struct eg_set *s)
{
    if (s->norders == s->orders_cap) {
        s->orders_cap = s->orders_cap == 0 ? 256 : s->orders_cap * 2;
        s->orders = realloc(s->orders, s->orders_cap * sizeof(*s->orders));
        if (s->orders == NULL)
            abort();
    }
    memset(&s->orders[s->norders], 0, sizeof(*s->orders));
    return (int)s->norders++;
}

/* Checkout of CART (N lines) by user U: the saga around it, as cart-svc, product-svc and
 * user-svc publish it, placed or failed at one of its steps. */
static void checkout(struct story *y, int u, const struct line *cart, size_t n, int64_t *balance)
{
    struct eg_set *s = y->s;
    const char *uid = s->users[u].id;
    char order_id[37], res_id[37], pay_id[37];
    int o = new_order(s);
    int64_t started, reserved_at, paid_at;
    int outcome = (int)between(&y->st, 0, 99);
    const char *step = outcome < 78   ? NULL
                       : outcome < 85 ? "reserve"
                       : outcome < 93 ? "charge"
                                      : "commit";
    struct order *ord = &s->orders[o];

    for (size_t i = 0; i < n; i++) {
        ord->lines[i] = cart[i];
        ord->total_cents += cart[i].quantity * cart[i].price_cents;
    }
    ord->n = n;
    uuid(&y->st, order_id);
    uuid(&y->st, res_id);
    uuid(&y->st, pay_id);

    later(y, 10 * SECOND_MS, 120 * SECOND_MS);
    started = y->t;
    emit(y, T_CHECKOUT_STARTED, uid, u, o, order_json(y, order_id, uid, o, "pending", started));
    if (step != NULL && strcmp(step, "reserve") == 0) {
        later(y, 200, 2000);
        json_t *j = order_json(y, order_id, uid, o, "failed", started);

        json_object_set_new(j, "failed_step", json_string("reserve"));
        json_object_set_new(j, "reason", json_string("not enough stock for every line"));
        emit(y, T_ORDER_FAILED, uid, u, o, j);
        return;
    }
    later(y, 200, 2000);
    reserved_at = y->t;
    emit(y, T_STOCK_RESERVED, res_id, -1, -1,
         stock_json(y, res_id, o, "reserved", reserved_at, NULL));
    if (step != NULL && strcmp(step, "charge") == 0) {
        later(y, 200, 2000);
        emit(y, T_STOCK_RELEASED, res_id, -1, -1,
             stock_json(y, res_id, o, "released", reserved_at, "requested"));
        later(y, 100, 1000);
        json_t *j = order_json(y, order_id, uid, o, "failed", started);

        json_object_set_new(j, "failed_step", json_string("charge"));
        json_object_set_new(j, "reason", json_string("the wallet does not hold the total"));
        emit(y, T_ORDER_FAILED, uid, u, o, j);
        return;
    }
    later(y, 200, 2000);
    paid_at = y->t;
    *balance -= ord->total_cents;
    emit(y, T_PAYMENT_CAPTURED, uid, u, -1,
         payment_json(y, pay_id, uid, ord->total_cents, "captured", *balance, paid_at));
    if (step != NULL) { /* commit */
        later(y, 200, 2000);
        *balance += ord->total_cents;
        emit(y, T_PAYMENT_REFUNDED, uid, u, -1,
             payment_json(y, pay_id, uid, ord->total_cents, "refunded", *balance, paid_at));
        later(y, 100, 1000);
        emit(y, T_STOCK_RELEASED, res_id, -1, -1,
             stock_json(y, res_id, o, "released", reserved_at, "requested"));
        later(y, 100, 1000);
        json_t *j = order_json(y, order_id, uid, o, "failed", started);

        json_object_set_new(j, "failed_step", json_string("commit"));
        json_object_set_new(j, "reason", json_string("the stock could not be committed"));
        emit(y, T_ORDER_FAILED, uid, u, o, j);
        return;
    }
    later(y, 200, 2000);
    emit(y, T_STOCK_COMMITTED, res_id, -1, -1,
         stock_json(y, res_id, o, "committed", reserved_at, NULL));
    later(y, 100, 1000);
    emit(y, T_ORDER_PLACED, uid, u, o, order_json(y, order_id, uid, o, "placed", started));
}

/* The story of user I (global index: rounds of the count mode go on counting). */
static void user_story(struct eg_set *s, uint64_t i)
{
    struct story y = {.s = s, .st = stream(s->o.seed, S_USER, i)};
    char a[SVC_RFC3339_MS_LEN + 1], b[SVC_RFC3339_MS_LEN + 1], email[128], name[64];
    int u;
    const char *uid;
    bool returning = chance(&y.st, 20);
    int64_t version = 1, balance = BALANCE0, created;
    const char *first = first_names[between(&y.st, 0, N_OF(first_names) - 1)];
    const char *last = last_names[between(&y.st, 0, N_OF(last_names) - 1)];
    struct line cart[LINES_MAX];
    size_t n = 0;

    if (s->nusers == s->users_cap) {
        s->users_cap = s->users_cap == 0 ? 256 : s->users_cap * 2;
        s->users = realloc(s->users, s->users_cap * sizeof(*s->users));
        if (s->users == NULL)
            abort();
    }
    u = (int)s->nusers++;
    s->nevs_before_story = s->n;
    uuid(&y.st, s->users[u].id);
    uid = s->users[u].id;
    snprintf(name, sizeof(name), "%s %s", first, last);
    snprintf(email, sizeof(email), "%s.%s.%.8s@example.org", first, last, uid);
    for (char *c = email; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');

    if (returning) {
        /* Registered before the window: active in it, but no signup and not in the cohort. */
        y.t = between(&y.st, 0, s->window_ms * 3 / 5);
        created = -between(&y.st, DAY_MS, 30 * DAY_MS);
        if (created < -s->o.start_ms)
            created = -s->o.start_ms; /* no earlier than 1970 */
    } else {
        y.t = created = between(&y.st, 0, s->window_ms / 2);
        emit(&y, T_USER_REGISTERED, uid, u, -1,
             json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id", uid, "email", email, "name",
                       name, "status", "active", "version", 1, "created_at",
                       iso(s->o.start_ms, y.t, a), "updated_at", iso(s->o.start_ms, y.t, b)));
    }
    if (chance(&y.st, 20)) {
        later(&y, 10 * SECOND_MS, 300 * SECOND_MS);
        version = returning ? between(&y.st, 2, 5) : 2;
        emit(&y, T_USER_UPDATED, uid, u, -1,
             json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id", uid, "email", email, "name",
                       first, "status", "active", "version", (json_int_t)version, "created_at",
                       iso(s->o.start_ms, created, a), "updated_at", iso(s->o.start_ms, y.t, b)));
    }
    if (chance(&y.st, 30)) {
        int64_t amount = between(&y.st, 1000, 50000);
        char credit_id[37];

        later(&y, 5 * SECOND_MS, 120 * SECOND_MS);
        uuid(&y.st, credit_id);
        balance += amount;
        emit(&y, T_WALLET_CREDITED, uid, u, -1,
             json_pack("{s:s, s:s, s:I, s:I, s:s}", "credit_id", credit_id, "user_id", uid,
                       "amount_cents", (json_int_t)amount, "balance_cents", (json_int_t)balance,
                       "created_at", iso(s->o.start_ms, y.t, a)));
    }
    if (chance(&y.st, 75)) {
        size_t want = (size_t)between(&y.st, 1, LINES_MAX);

        while (n < want) {
            int p = (int)between(&y.st, 0, s->nproducts - 1);
            const struct product *pr = &s->products[p];
            bool dup = false;

            for (size_t k = 0; k < n; k++)
                dup = dup || cart[k].product == p;
            if (dup)
                continue;
            cart[n] = (struct line){p, between(&y.st, 1, 4), pr->price_cents};
            later(&y, 5 * SECOND_MS, 90 * SECOND_MS);
            emit(&y, T_CART_ITEM_ADDED, uid, u, -1,
                 json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "user_id", uid, "product_id",
                           pr->id, "quantity", (json_int_t)cart[n].quantity, "price_cents",
                           (json_int_t)cart[n].price_cents, "currency", "EUR", "name", pr->name,
                           "at", iso(s->o.start_ms, y.t, a)));
            n++;
        }
        if (n > 1 && chance(&y.st, 15)) {
            n--;
            later(&y, 5 * SECOND_MS, 60 * SECOND_MS);
            emit(&y, T_CART_ITEM_REMOVED, uid, u, -1,
                 json_pack("{s:s, s:s, s:s}", "user_id", uid, "product_id",
                           s->products[cart[n].product].id, "at", iso(s->o.start_ms, y.t, a)));
        }
        if (chance(&y.st, 65))
            checkout(&y, u, cart, n, &balance);
    }
    /* Deleted at the end of a story, never as its only event: then the deletions change no
     * answer, and tests can hold them back to see that pseudonymisation moves nothing. */
    if (chance(&y.st, 12) && s->nevs_before_story < s->n) {
        later(&y, 30 * SECOND_MS, 600 * SECOND_MS);
        emit(&y, T_USER_DELETED, uid, u, -1,
             json_pack("{s:s, s:s, s:I, s:s}", "id", uid, "status", "deleted", "version",
                       (json_int_t)version + 1, "deleted_at", iso(s->o.start_ms, y.t, a)));
    }
}

static int by_time(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Writes each event's envelope, now that its time is final. */
static void envelopes(struct eg_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct ev *e = &s->evs[i];
        const struct type_def *d = &type_defs[e->type];
        char t[SVC_RFC3339_MS_LEN + 1];
        size_t cap = strlen(e->data) + 512;
        char *json = malloc(cap);

        if (json == NULL)
            abort();
        snprintf(json, cap,
                 "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\",\"type\":\"%s\","
                 "\"subject\":\"%s\",\"time\":\"%s\",\"datacontenttype\":\"application/json\","
                 "\"data\":%s}",
                 e->id, d->source, d->type, e->key, iso(s->o.start_ms, e->t, t), e->data);
        free(e->data);
        e->data = json;
        e->pub = (struct eg_event){.t_ms = s->o.start_ms + e->t,
                                   .id = e->id,
                                   .type = d->type,
                                   .topic = d->topic,
                                   .key = e->key,
                                   .json = json};
    }
}

/* ---- the expected answers ---------------------------------------------------------------- */

static int64_t floor_to(int64_t t, int64_t unit)
{
    return t - t % unit; /* t >= 0: the window starts after the epoch */
}

static json_t *series(const struct eg_set *s, int64_t unit)
{
    json_t *a = json_array();
    int64_t bucket = -1, orders = 0, revenue = 0;
    char t[SVC_RFC3339_MS_LEN + 1];

    /* Events are in time order, so a bucket's orders are together. */
    for (size_t i = 0; i <= s->n; i++) {
        const struct ev *e = i < s->n ? &s->evs[i] : NULL;
        int64_t b;

        if (e != NULL && e->type != T_ORDER_PLACED)
            continue;
        b = e != NULL ? floor_to(s->o.start_ms + e->t, unit) : -2;
        if (b != bucket && bucket >= 0) {
            svc_rfc3339_format_ms(bucket, t);
            json_array_append_new(a,
                                  json_pack("{s:s, s:I, s:I}", "t", t, "orders", (json_int_t)orders,
                                            "revenue_cents", (json_int_t)revenue));
            orders = revenue = 0;
        }
        if (e == NULL)
            break;
        bucket = b;
        orders++;
        revenue += s->orders[e->order].total_cents;
    }
    return a;
}

struct sold {
    int product;
    int64_t units, revenue;
};

static const struct eg_set *sort_set; /* qsort has no context argument */

static int cmp_id(const struct sold *x, const struct sold *y)
{
    return strcmp(sort_set->products[x->product].id, sort_set->products[y->product].id);
}

static int by_units(const void *a, const void *b)
{
    const struct sold *x = a, *y = b;

    if (x->units != y->units)
        return x->units > y->units ? -1 : 1;
    return cmp_id(x, y);
}

static int by_revenue(const void *a, const void *b)
{
    const struct sold *x = a, *y = b;

    if (x->revenue != y->revenue)
        return x->revenue > y->revenue ? -1 : 1;
    return cmp_id(x, y);
}

static json_t *top(const struct eg_set *s, int (*cmp)(const void *, const void *))
{
    struct sold *v = calloc((size_t)s->nproducts, sizeof(*v));
    json_t *a = json_array();
    size_t n = 0;

    if (v == NULL)
        abort();
    for (int p = 0; p < s->nproducts; p++)
        v[p].product = p;
    for (size_t i = 0; i < s->n; i++) {
        const struct order *o;

        if (s->evs[i].type != T_ORDER_PLACED)
            continue;
        o = &s->orders[s->evs[i].order];
        for (size_t k = 0; k < o->n; k++) {
            v[o->lines[k].product].units += o->lines[k].quantity;
            v[o->lines[k].product].revenue += o->lines[k].quantity * o->lines[k].price_cents;
        }
    }
    for (int p = 0; p < s->nproducts; p++)
        if (v[p].units > 0)
            v[n++] = v[p];
    sort_set = s;
    qsort(v, n, sizeof(*v), cmp);
    for (size_t i = 0; i < n; i++) {
        const struct product *p = &s->products[v[i].product];

        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I}", "product_id", p->id, "name",
                                           p->name, "units", (json_int_t)v[i].units,
                                           "revenue_cents", (json_int_t)v[i].revenue));
    }
    free(v);
    return a;
}

/* Per user, which funnel steps happened in the window (bit per step). */
enum { F_REGISTERED = 1, F_CART = 2, F_CHECKOUT = 4, F_PLACED = 8, F_ACTIVE = 16 };

static void compute_expect(struct eg_set *s)
{
    unsigned char *f = calloc(s->nusers + 1, 1);
    int64_t counts[T_N] = {0}, revenue = 0, active = 0;
    int64_t funnel[4] = {0};
    json_t *types = json_object(), *deleted = json_array();
    char from[SVC_RFC3339_MS_LEN + 1], to[SVC_RFC3339_MS_LEN + 1];

    if (f == NULL)
        abort();
    for (size_t i = 0; i < s->n; i++) {
        const struct ev *e = &s->evs[i];

        counts[e->type]++;
        if (e->user >= 0)
            f[e->user] |= F_ACTIVE;
        switch (e->type) {
        case T_USER_REGISTERED:
            f[e->user] |= F_REGISTERED;
            break;
        case T_CART_ITEM_ADDED:
            f[e->user] |= F_CART;
            break;
        case T_CHECKOUT_STARTED:
            f[e->user] |= F_CHECKOUT;
            break;
        case T_ORDER_PLACED:
            f[e->user] |= F_PLACED;
            revenue += s->orders[e->order].total_cents;
            break;
        case T_USER_DELETED:
            json_array_append_new(deleted, json_string(s->users[e->user].id));
            break;
        default:
            break;
        }
    }
    for (size_t u = 0; u < s->nusers; u++) {
        active += (f[u] & F_ACTIVE) != 0;
        if (!(f[u] & F_REGISTERED))
            continue;
        funnel[0]++;
        if (!(f[u] & F_CART))
            continue;
        funnel[1]++;
        if (!(f[u] & F_CHECKOUT))
            continue;
        funnel[2]++;
        funnel[3] += (f[u] & F_PLACED) != 0;
    }
    free(f);
    for (int t = 0; t < T_N; t++)
        if (counts[t] > 0)
            json_object_set_new(types, type_defs[t].type, json_integer(counts[t]));
    svc_rfc3339_format_ms(s->o.start_ms, from);
    svc_rfc3339_format_ms(s->o.start_ms + s->window_ms, to);
    s->expect = json_pack(
        "{s:I, s:i, s:s, s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:o, s:o, s:o},"
        " s:{s:o, s:o}, s:{s:I, s:I, s:I, s:I}, s:o}",
        "seed", (json_int_t)s->o.seed, "users", s->o.users, "from", from, "to", to, "events",
        (json_int_t)s->n, "types", types, "summary", "signups",
        (json_int_t)counts[T_USER_REGISTERED], "active_users", (json_int_t)active, "checkouts",
        (json_int_t)counts[T_CHECKOUT_STARTED], "orders_placed", (json_int_t)counts[T_ORDER_PLACED],
        "orders_failed", (json_int_t)counts[T_ORDER_FAILED], "revenue_cents", (json_int_t)revenue,
        "revenue", "minute", series(s, MINUTE_MS), "hour", series(s, HOUR_MS), "day",
        series(s, DAY_MS), "top_products", "units", top(s, by_units), "revenue", top(s, by_revenue),
        "funnel", "registered", (json_int_t)funnel[0], "added_to_cart", (json_int_t)funnel[1],
        "checkout_started", (json_int_t)funnel[2], "placed", (json_int_t)funnel[3], "deleted_users",
        deleted);
    if (s->expect == NULL)
        abort();
}

/* ---- the set ----------------------------------------------------------------------------- */

struct eg_set *eg_generate(const struct eg_opts *o, char *err, size_t cap)
{
    struct eg_set *s;

    if (o->users < 1 || o->users > EG_USERS_MAX) {
        snprintf(err, cap, "users must be 1 to %d", EG_USERS_MAX);
        return NULL;
    }
    if (o->minutes < 1 || o->minutes > EG_MINUTES_MAX) {
        snprintf(err, cap, "minutes must be 1 to %d", EG_MINUTES_MAX);
        return NULL;
    }
    if (o->start_ms < 0 || o->start_ms % MINUTE_MS != 0 ||
        o->start_ms > INT64_C(4102444800000) - (int64_t)o->minutes * MINUTE_MS) {
        snprintf(err, cap, "start must be a whole minute from 1970 on, the window before 2100");
        return NULL;
    }
    if (o->count < 0 || o->count > EG_COUNT_MAX) {
        snprintf(err, cap, "count must be 0 to %d", EG_COUNT_MAX);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->o = *o;
    s->window_ms = (int64_t)o->minutes * MINUTE_MS;
    make_products(s);
    for (uint64_t round = 0;; round++) {
        for (uint64_t i = 0; i < (uint64_t)o->users; i++)
            user_story(s, round * (uint64_t)o->users + i);
        if (o->count == 0 || s->n >= (size_t)o->count)
            break;
    }
    qsort(s->evs, s->n, sizeof(*s->evs), by_time);
    for (size_t i = 0; i < s->n; i++)
        s->evs[i].seq = i;
    if (o->count > 0) {
        /* The first COUNT in time order, spread evenly: a steady rate over the window. */
        for (size_t i = (size_t)o->count; i < s->n; i++)
            free(s->evs[i].data);
        s->n = (size_t)o->count;
        for (size_t i = 0; i < s->n; i++)
            s->evs[i].t = (int64_t)i * s->window_ms / o->count;
    }
    envelopes(s);
    compute_expect(s);
    return s;
}

void eg_set_free(struct eg_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->evs[i].data);
    free(s->evs);
    free(s->orders);
    free(s->users);
    free(s->products);
    json_decref(s->expect);
    free(s);
}

size_t eg_count(const struct eg_set *s)
{
    return s->n;
}

const struct eg_event *eg_event_at(const struct eg_set *s, size_t i)
{
    return &s->evs[i].pub;
}

json_t *eg_expect(const struct eg_set *s)
{
    return s->expect;
}

int eg_write_events(const struct eg_set *s, FILE *f)
{
    for (size_t i = 0; i < s->n; i++)
        if (fputs(s->evs[i].data, f) == EOF || fputc('\n', f) == EOF)
            return -1;
    return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

int eg_write_expect(const struct eg_set *s, FILE *f)
{
    if (json_dumpf(s->expect, f, JSON_INDENT(2)) != 0 || fputc('\n', f) == EOF)
        return -1;
    return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

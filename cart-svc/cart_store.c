/*
 * cart_store.c: cart-svc's store on Redis, the only file that includes hiredis.
 *
 * Connections: lib's pool (svc/pool.h) of hiredis contexts, each authenticated as the ACL user
 * of REDIS_URL (AUTH user password), on the URL's database (SELECT), with the command timeout
 * set (redisSetTimeout). A connection whose command got no answer is released as broken and
 * reopened by its next user; an operation that fails so on its first command, on a connection
 * that had been working, is tried once more on a fresh one (nothing was written yet).
 *
 * Keys (every one after cart_redis_opts.prefix, empty in production):
 *   cart:{user}            hash: product id -> the line as JSON {quantity, price_cents, currency,
 *                          name, repriced, added_at, updated_at, seq}, and two fields of the
 *                          cart's own: _seq (the last line number given) and _updated_at (ms).
 *                          Lines are shown by seq, the order in which they were first added: a
 *                          number per line rather than a list of ids, so that removing a line
 *                          (a product deleted, an order placed) is one HDEL and never a
 *                          read-modify-write. PEXPIRE CART_TTL on every write of the user's
 *   user:{id}              hash: version, deleted (the read model of user-events)
 *   product:{id}           hash: price_cents, currency, name, updated_at, deleted (product-events)
 *   product-carts:{pid}    set of the users whose cart holds the product (may hold users whose
 *                          cart expired since: whoever reads it checks the cart)
 *   order:{id}             hash: user_id, status (enum cart_status as a number), lines (JSON
 *                          array), total, currency, failed_step, reason, key, created_at,
 *                          updated_at
 *   order-log:{id}         list: the saga log, one JSON entry {step, state, at, detail} each
 *                          (the enums as numbers)
 *   user-orders:{user}     zset: score created_at, member the order id (newest first: by score,
 *                          then by id, both descending, which is how ZREVRANGEBYSCORE orders)
 *   checkout-key:{user}:{key}  the order id created under an Idempotency-Key (kept as long as
 *                          the user is: the same key answers the same order forever)
 *   orders-open            set of the ids of orders neither PLACED nor FAILED
 *   seen:{event id}        a consumed event (SET PX 7 days), written with its change
 *   outbox                 the stream of CloudEvents waiting for the relay (fields id, topic, key,
 *                          value), consumer group "relay"
 *
 * Concurrency: WATCH/MULTI/EXEC, no Lua. Every read-modify-write WATCHes the keys it read, then
 * writes the change and its CloudEvent (an XADD to the outbox stream) in one MULTI/EXEC; when
 * EXEC answers nil (a watched key changed meanwhile) the whole operation runs again on fresh
 * reads, at most TX_ATTEMPTS times with a short jittered back-off (then SVC_EAGAIN). No EVAL, so
 * that the ACL user may later lose @scripting.
 *
 * Errors: hiredis' are translated once, in check(): no answer (connection lost, timeout) is
 * SVC_EUNAVAILABLE with the dependency marked down and the connection broken; a Redis that is
 * loading, out of memory or busy is SVC_EUNAVAILABLE; refused credentials are SVC_EUNAUTH
 * (logged with the user name, never the password); any other error reply is a bug here or a
 * wrong ACL: logged, SVC_EINTERNAL.
 */
#include "cart_svc.h"

#include "polyglot/events.h"
#include "svc/alloc.h"
#include "svc/arena.h"
#include "svc/buf.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/log.h"
#include "svc/pool.h"
#include "svc/time.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TX_ATTEMPTS 50
/* An outbox entry pending this long at another relay consumer is taken over: that relay
 * crashed (a live one publishes a batch in far less). */
#define RECLAIM_IDLE_MS 30000
#define SEEN_TTL_MS     (7LL * 24 * 3600 * 1000)
#define KEY_MAX         512
#define STREAM          "outbox"
#define GROUP           "relay"

/* EXEC answered nil: a watched key changed. Never leaves this file. */
#define E_RETRY 1

struct cart_redis {
    char *host, *user, *password;
    int port, db;
    int timeout_ms;
    int64_t ttl_ms;
    char *prefix;
    char stream[KEY_MAX];
    char consumer[128]; /* the relay's name in the group: host-pid */
    struct svc_dep *dep;
    struct svc_pool *pool;
    /* The relay's batch (one thread): the replies the events point into. */
    redisReply *ob_replies[3];
    struct svc_outbox_event *ob_events;
};

struct conn {
    struct cart_redis *r;
    redisContext *c;
    bool broken;   /* no answer: the pool closes it */
    bool watching; /* a WATCH not yet ended by EXEC or UNWATCH */
    bool wrote;    /* a MULTI was sent: the operation must not be repeated blindly */
    int commands;  /* sent on this loan, to tell a stale connection's first failure */
};

/* ---- keys ---------------------------------------------------------------------------------- */

static int key(const struct cart_redis *r, char *buf, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int key(const struct cart_redis *r, char *buf, const char *fmt, ...)
{
    size_t n = strlen(r->prefix);
    va_list ap;
    int len;

    memcpy(buf, r->prefix, n);
    va_start(ap, fmt);
    len = vsnprintf(buf + n, KEY_MAX - n, fmt, ap);
    va_end(ap);
    return len < 0 || (size_t)len >= KEY_MAX - n ? SVC_EINVAL : 0;
}

/* ---- commands ------------------------------------------------------------------------------ */

static bool starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* The one translation of hiredis' answers (see the top of the file). REP may be NULL. */
static int check(struct conn *c, const redisReply *rep, const char *what)
{
    if (rep == NULL) {
        c->broken = true;
        svc_dep_down(c->r->dep, what, "%s", c->c->errstr[0] != '\0' ? c->c->errstr : "no answer");
        return SVC_EUNAVAILABLE;
    }
    if (rep->type != REDIS_REPLY_ERROR)
        return 0;
    if (starts(rep->str, "WRONGPASS") || starts(rep->str, "NOAUTH")) {
        svc_log_error("redis refused the credentials of user '%s' (%s): check REDIS_URL",
                      c->r->user != NULL ? c->r->user : "default", what);
        svc_dep_down(c->r->dep, what, "credentials refused");
        return SVC_EUNAUTH;
    }
    if (starts(rep->str, "LOADING") || starts(rep->str, "BUSY") || starts(rep->str, "OOM") ||
        starts(rep->str, "MASTERDOWN") || starts(rep->str, "TRYAGAIN") ||
        starts(rep->str, "MISCONF")) {
        svc_dep_warn(c->r->dep, "redis: %s: %s", what, rep->str);
        return SVC_EUNAVAILABLE;
    }
    svc_log_error("redis: %s failed: %s", what, rep->str);
    return SVC_EINTERNAL;
}

/* One command (hiredis' format: every %s and %b is one argument, never parsed). 0 with the
 * reply in *OUT (freeReplyObject it; OUT may be NULL to drop it), or an error. */
static int cmd(struct conn *c, redisReply **out, const char *what, const char *fmt, ...)
{
    redisReply *rep;
    va_list ap;
    int rc;

    if (out != NULL)
        *out = NULL;
    va_start(ap, fmt);
    rep = redisvCommand(c->c, fmt, ap);
    va_end(ap);
    c->commands++;
    rc = check(c, rep, what);
    if (rc != 0 || out == NULL)
        freeReplyObject(rep);
    else
        *out = rep;
    return rc;
}

/* WATCH: the keys' changes from now make the next EXEC answer nil. */
static int watch(struct conn *c, const char *k1, const char *k2, const char *k3)
{
    int rc;

    if (k3 != NULL)
        rc = cmd(c, NULL, "watch", "WATCH %s %s %s", k1, k2, k3);
    else if (k2 != NULL)
        rc = cmd(c, NULL, "watch", "WATCH %s %s", k1, k2);
    else
        rc = cmd(c, NULL, "watch", "WATCH %s", k1);
    if (rc == 0)
        c->watching = true;
    return rc;
}

static void unwatch(struct conn *c)
{
    if (c->watching && !c->broken && cmd(c, NULL, "unwatch", "UNWATCH") != 0)
        c->broken = true;
    c->watching = false;
}

/* A transaction being queued: MULTI is sent first, the commands appended, EXEC at tx_exec(). */
struct tx {
    struct conn *c;
    int n;
};

static void tx_begin(struct tx *t, struct conn *c)
{
    t->c = c;
    t->n = 0;
    c->wrote = true;
    redisAppendCommand(c->c, "MULTI");
}

static void tx_add(struct tx *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    redisvAppendCommand(t->c->c, fmt, ap);
    va_end(ap);
    t->n++;
}

/* Sends the transaction and reads every answer: 0, E_RETRY when a watched key changed, or an
 * error (a command refused inside is logged with WHAT). */
static int tx_exec(struct tx *t, const char *what)
{
    struct conn *c = t->c;
    int rc = 0;

    redisAppendCommand(c->c, "EXEC");
    c->commands++;
    for (int i = 0; i < t->n + 2; i++) {
        void *p = NULL;
        redisReply *rep;
        int e;

        if (redisGetReply(c->c, &p) != REDIS_OK)
            p = NULL;
        rep = p;
        e = check(c, rep, what);
        if (e != 0 && rc == 0)
            rc = e;
        if (rep == NULL)
            return rc; /* the connection is broken: nothing more will come */
        if (i == t->n + 1 && rc == 0) {
            if (rep->type == REDIS_REPLY_NIL)
                rc = E_RETRY;
            for (size_t j = 0; rep->type == REDIS_REPLY_ARRAY && j < rep->elements; j++)
                if ((e = check(c, rep->element[j], what)) != 0 && rc == 0)
                    rc = e;
        }
        freeReplyObject(rep);
    }
    c->watching = false;
    return rc;
}

/* A jittered pause before the ATTEMPT-th retry of a transaction: up to 2^attempt ms, at most
 * 20, so that writers of one cart stop colliding. */
static void backoff(int attempt)
{
    static _Thread_local uint64_t seed;
    int64_t cap = attempt < 4 ? INT64_C(1) << attempt : 20;

    if (seed == 0)
        seed = (uint64_t)svc_now_ms() ^ (uint64_t)(uintptr_t)&seed;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    svc_sleep_ms(1 + (int64_t)(seed % (uint64_t)cap));
}

/* ---- connections --------------------------------------------------------------------------- */

static void conn_close(void *ctx, void *conn)
{
    struct conn *c = conn;

    (void)ctx;
    if (c == NULL)
        return;
    redisFree(c->c);
    free(c);
}

/* svc_pool_ops' signature. NOLINTNEXTLINE(readability-non-const-parameter) */
static int conn_open(void *ctx, void **out, char *why, size_t cap)
{
    struct cart_redis *r = ctx;
    struct timeval tv = {r->timeout_ms / 1000, (suseconds_t)(r->timeout_ms % 1000) * 1000};
    struct conn *c = svc_calloc(1, sizeof(*c));
    int rc = 0;

    (void)why;
    (void)cap;
    c->r = r;
    c->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (c->c == NULL || c->c->err != 0) {
        svc_dep_down(r->dep, "connect", "%s:%d: %s", r->host, r->port,
                     c->c != NULL ? c->c->errstr : "out of memory");
        conn_close(r, c);
        return SVC_EUNAVAILABLE;
    }
    if (redisSetTimeout(c->c, tv) != REDIS_OK)
        rc = SVC_EINTERNAL;
    if (rc == 0 && r->password != NULL && r->user != NULL)
        rc = cmd(c, NULL, "auth", "AUTH %s %s", r->user, r->password);
    else if (rc == 0 && r->password != NULL)
        rc = cmd(c, NULL, "auth", "AUTH %s", r->password);
    if (rc == 0 && r->db != 0)
        rc = cmd(c, NULL, "select", "SELECT %d", r->db);
    if (rc == 0)
        rc = cmd(c, NULL, "ping", "PING");
    if (rc != 0) {
        if (rc == SVC_EINTERNAL)
            svc_dep_down(r->dep, "connect", "session set-up refused");
        conn_close(r, c);
        return rc;
    }
    c->commands = 0;
    *out = c;
    return 0;
}

/* svc_pool_ops' signature. NOLINTNEXTLINE(readability-non-const-parameter) */
static int conn_ping(void *ctx, void *conn, char *why, size_t cap)
{
    (void)ctx;
    (void)why;
    (void)cap;
    return cmd(conn, NULL, "ping", "PING");
}

static const struct svc_pool_ops pool_ops = {conn_open, conn_close, conn_ping};

static int acquire(struct cart_redis *r, struct svc_pool_conn **h)
{
    int rc = svc_pool_acquire(r->pool, 0, h);
    struct conn *c;

    if (rc != 0)
        return rc;
    c = (*h)->conn;
    c->watching = false;
    c->wrote = false;
    c->commands = 0;
    return 0;
}

static void release(struct cart_redis *r, struct svc_pool_conn *h)
{
    struct conn *c = h->conn;

    unwatch(c);
    svc_pool_release(r->pool, h, c->broken);
}

/*
 * Runs OP(C, ARG) on a pooled connection. An operation that failed unreachable on the very
 * first command of a connection that had been working found it broken by a Redis restart:
 * nothing was done, so it runs once more on a reopened connection.
 */
static int run(struct cart_redis *r, int (*op)(struct conn *c, void *arg), void *arg)
{
    for (int attempt = 0;; attempt++) {
        struct svc_pool_conn *h;
        struct conn *c;
        bool stale;
        int rc = acquire(r, &h);

        if (rc != 0)
            return rc;
        c = h->conn;
        rc = op(c, arg);
        stale = !h->fresh && c->commands <= 1 && !c->wrote;
        release(r, h);
        if (rc != SVC_EUNAVAILABLE || !stale || attempt > 0)
            return rc;
    }
}

/* ---- replies ------------------------------------------------------------------------------- */

static bool is_str(const redisReply *rep)
{
    return rep != NULL && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS);
}

static int64_t to_i64(const char *s)
{
    return s != NULL ? strtoll(s, NULL, 10) : 0;
}

/* The value of FIELD in an HGETALL answer, or NULL. Owned by H. */
static const char *hget(const redisReply *h, const char *field)
{
    for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (is_str(h->element[i]) && strcmp(h->element[i]->str, field) == 0)
            return is_str(h->element[i + 1]) ? h->element[i + 1]->str : NULL;
    return NULL;
}

static void defer_reply(struct svc_arena *a, redisReply *rep)
{
    svc_arena_defer(a, freeReplyObject, rep);
}

static int64_t jint(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *jdup(struct svc_arena *a, const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s != NULL ? svc_arena_strdup(a, s) : NULL;
}

/* ---- lines and carts ----------------------------------------------------------------------- */

/* A line as the cart hash stores it (SEQ: its place in the cart). The caller json_decrefs. */
static json_t *line_to_json(const struct cart_line *l, int64_t seq)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:b, s:I, s:I, s:I}", "quantity",
                     (json_int_t)l->quantity, "price_cents", (json_int_t)l->price_cents, "currency",
                     l->currency != NULL ? l->currency : "", "name", l->name != NULL ? l->name : "",
                     "repriced", l->repriced, "added_at", (json_int_t)l->added_at_ms, "updated_at",
                     (json_int_t)l->updated_at_ms, "seq", (json_int_t)seq);
}

static bool line_from_json(struct svc_arena *a, const char *pid, const char *text,
                           struct cart_line *l, int64_t *seq)
{
    json_t *j = json_loads(text, 0, NULL);

    if (!json_is_object(j) || strlen(pid) > CART_ID_LEN) {
        json_decref(j);
        return false;
    }
    memset(l, 0, sizeof(*l));
    memcpy(l->product_id, pid, strlen(pid) + 1);
    l->quantity = jint(j, "quantity");
    l->price_cents = jint(j, "price_cents");
    l->currency = jdup(a, j, "currency");
    l->name = jdup(a, j, "name");
    l->repriced = json_is_true(json_object_get(j, "repriced"));
    l->added_at_ms = jint(j, "added_at");
    l->updated_at_ms = jint(j, "updated_at");
    *seq = jint(j, "seq");
    json_decref(j);
    return true;
}

/* What a cart hash holds, beyond the struct cart: each line's seq, the last seq given. */
struct cart_x {
    struct cart cart;
    int64_t *seqs;
    int64_t last_seq;
};

static void sort_lines(struct cart_x *x)
{
    /* Insertion sort by seq: a cart has at most CART_LINES_MAX lines. */
    for (size_t i = 1; i < x->cart.n; i++) {
        struct cart_line l = x->cart.lines[i];
        int64_t s = x->seqs[i];
        size_t j = i;

        for (; j > 0 && x->seqs[j - 1] > s; j--) {
            x->cart.lines[j] = x->cart.lines[j - 1];
            x->seqs[j] = x->seqs[j - 1];
        }
        x->cart.lines[j] = l;
        x->seqs[j] = s;
    }
}

static void cart_totals(struct cart *c)
{
    c->total_cents = 0;
    c->currency = NULL;
    for (size_t i = 0; i < c->n; i++) {
        c->total_cents += c->lines[i].quantity * c->lines[i].price_cents;
        if (c->currency == NULL)
            c->currency = c->lines[i].currency;
    }
}

/* The cart of USER from an HGETALL answer H (NULL or empty: an empty cart), and PTTL. */
static void cart_parse(struct svc_arena *a, const char *user, const redisReply *h, int64_t pttl,
                       struct cart_x *x)
{
    size_t cap = h != NULL && h->type == REDIS_REPLY_ARRAY ? h->elements / 2 : 0;

    memset(x, 0, sizeof(*x));
    snprintf(x->cart.user_id, sizeof(x->cart.user_id), "%s", user);
    x->cart.lines = svc_arena_calloc(a, (cap + 1) * sizeof(*x->cart.lines));
    x->seqs = svc_arena_calloc(a, (cap + 1) * sizeof(*x->seqs));
    for (size_t i = 0; i < cap * 2; i += 2) {
        const char *f = h->element[i]->str, *v = h->element[i + 1]->str;

        if (!is_str(h->element[i]) || !is_str(h->element[i + 1]))
            continue;
        if (strcmp(f, "_seq") == 0)
            x->last_seq = to_i64(v);
        else if (strcmp(f, "_updated_at") == 0)
            x->cart.updated_at_ms = to_i64(v);
        else if (f[0] != '_' &&
                 line_from_json(a, f, v, &x->cart.lines[x->cart.n], &x->seqs[x->cart.n]))
            x->cart.n++;
        else if (f[0] != '_')
            svc_log_warn("redis: cart of '%s': line '%s' is not valid JSON: skipped", user, f);
    }
    sort_lines(x);
    cart_totals(&x->cart);
    if (x->cart.updated_at_ms != 0 && pttl > 0)
        x->cart.expires_at_ms = svc_wall_ms() + pttl;
}

/* The user as the read model knows it: 0 when known and not deleted, CART_EUSER_UNKNOWN. */
static int user_known(const redisReply *h)
{
    const char *v = hget(h, "version"), *d = hget(h, "deleted");

    return v != NULL && (d == NULL || strcmp(d, "1") != 0) ? 0 : CART_EUSER_UNKNOWN;
}

/* Appends the XADD of EV to the outbox stream to T. */
static void tx_event(struct tx *t, const struct svc_event_out *ev)
{
    tx_add(t, "XADD %s * id %s topic %s key %s value %b", t->c->r->stream, ev->id,
           TOPIC_CART_EVENTS, ev->key, ev->json.data, ev->json.len);
}

/* ---- get ----------------------------------------------------------------------------------- */

struct cart_op {
    struct svc_arena *a;
    const char *user_id;
    const struct cart_product *p;
    const char *product_id;
    int64_t quantity;
    const char *traceparent;
    struct cart *out;
};

/* Reads the user and the cart (under WATCH when WATCHING): 0, CART_EUSER_UNKNOWN or an error. */
static int read_cart(struct conn *c, struct svc_arena *a, const char *user_id, bool watching,
                     struct cart_x *x)
{
    char ck[KEY_MAX], uk[KEY_MAX];
    redisReply *u = NULL, *h = NULL, *ttl = NULL;
    int rc;

    if (key(c->r, ck, "cart:%s", user_id) != 0 || key(c->r, uk, "user:%s", user_id) != 0)
        return SVC_EINVAL;
    if (watching && (rc = watch(c, ck, uk, NULL)) != 0)
        return rc;
    if ((rc = cmd(c, &u, "read user", "HGETALL %s", uk)) != 0)
        return rc;
    defer_reply(a, u);
    if ((rc = user_known(u)) != 0)
        return rc;
    if ((rc = cmd(c, &h, "read cart", "HGETALL %s", ck)) != 0 ||
        (rc = cmd(c, &ttl, "read cart ttl", "PTTL %s", ck)) != 0)
        return rc;
    defer_reply(a, h);
    cart_parse(a, user_id, h, ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1, x);
    freeReplyObject(ttl);
    return 0;
}

static int op_get(struct conn *c, void *arg)
{
    struct cart_op *o = arg;
    struct cart_x x;
    int rc = read_cart(c, o->a, o->user_id, false, &x);

    if (rc == 0)
        *o->out = x.cart;
    return rc;
}

static int rd_get(void *ctx, struct svc_arena *a, const char *user_id, struct cart *out)
{
    struct cart_op o = {.a = a, .user_id = user_id, .out = out};

    memset(out, 0, sizeof(*out));
    return run(ctx, op_get, &o);
}

/* ---- put_line, remove_line, clear ---------------------------------------------------------- */

/* Sets the cart's bookkeeping fields and TTL in T after a change of the user's. */
static void tx_touch(struct tx *t, const char *ck, int64_t now, int64_t last_seq)
{
    tx_add(t, "HSET %s _updated_at %" PRId64 " _seq %" PRId64, ck, now, last_seq);
    tx_add(t, "PEXPIRE %s %" PRId64, ck, t->c->r->ttl_ms);
}

static int op_put_line(struct conn *c, void *arg)
{
    struct cart_op *o = arg;
    const struct cart_product *p = o->p;
    char ck[KEY_MAX], pk[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, ck, "cart:%s", o->user_id) != 0 || key(c->r, pk, "product-carts:%s", p->id) != 0)
        return SVC_EINVAL;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        struct svc_event_out ev = {0};
        struct cart_x x;
        struct cart_line *l = NULL;
        int64_t now = svc_wall_ms(), seq = 0;
        json_t *j;
        char *text;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = read_cart(c, o->a, o->user_id, true, &x)) != 0)
            return rc;
        for (size_t i = 0; i < x.cart.n; i++)
            if (strcmp(x.cart.lines[i].product_id, p->id) == 0) {
                l = &x.cart.lines[i];
                seq = x.seqs[i];
            }
        if (x.cart.currency != NULL && strcmp(x.cart.currency, p->currency) != 0 &&
            !(l != NULL && x.cart.n == 1))
            return SVC_EINVAL; /* one currency per cart */
        if (l == NULL && x.cart.n >= CART_LINES_MAX)
            return CART_ECART_FULL;
        if (l == NULL) {
            l = &x.cart.lines[x.cart.n++];
            memset(l, 0, sizeof(*l));
            snprintf(l->product_id, sizeof(l->product_id), "%s", p->id);
            l->added_at_ms = now;
            seq = ++x.last_seq;
            x.seqs[x.cart.n - 1] = seq;
        }
        l->quantity = o->quantity;
        l->price_cents = p->price_cents;
        l->currency = svc_arena_strdup(o->a, p->currency);
        l->name = svc_arena_strdup(o->a, p->name != NULL ? p->name : "");
        l->repriced = false;
        l->updated_at_ms = now;
        if ((rc = cart_event_line(&ev, EV_CART_ITEM_ADDED, o->user_id, l, o->traceparent)) != 0) {
            svc_event_out_release(&ev);
            return rc;
        }
        j = line_to_json(l, seq);
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        tx_begin(&t, c);
        tx_add(&t, "HSET %s %s %s", ck, p->id, text);
        tx_touch(&t, ck, now, x.last_seq);
        tx_add(&t, "SADD %s %s", pk, o->user_id);
        tx_event(&t, &ev);
        rc = tx_exec(&t, "put line");
        free(text);
        svc_event_out_release(&ev);
        if (rc == 0) {
            x.cart.updated_at_ms = now;
            x.cart.expires_at_ms = now + c->r->ttl_ms;
            cart_totals(&x.cart);
            *o->out = x.cart;
        }
    }
    if (rc == E_RETRY) {
        svc_log_warn("redis: cart of '%s' changed %d times in a row: put line given up", o->user_id,
                     TX_ATTEMPTS);
        rc = SVC_EAGAIN;
    }
    return rc;
}

static int rd_put_line(void *ctx, struct svc_arena *a, const char *user_id,
                       const struct cart_product *p, int64_t quantity, const char *traceparent,
                       struct cart *out)
{
    struct cart_op o = {.a = a,
                        .user_id = user_id,
                        .p = p,
                        .quantity = quantity,
                        .traceparent = traceparent,
                        .out = out};

    memset(out, 0, sizeof(*out));
    if (p->currency == NULL || quantity < 1 || quantity > CART_QTY_MAX)
        return SVC_EINVAL;
    return run(ctx, op_put_line, &o);
}

static int op_remove_line(struct conn *c, void *arg)
{
    struct cart_op *o = arg;
    char ck[KEY_MAX], pk[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, ck, "cart:%s", o->user_id) != 0 ||
        key(c->r, pk, "product-carts:%s", o->product_id) != 0)
        return SVC_EINVAL;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        struct svc_event_out ev = {0};
        struct cart_x x;
        struct cart_line gone;
        int64_t now = svc_wall_ms();
        size_t i;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = read_cart(c, o->a, o->user_id, true, &x)) != 0)
            return rc;
        for (i = 0; i < x.cart.n && strcmp(x.cart.lines[i].product_id, o->product_id) != 0; i++)
            ;
        if (i == x.cart.n)
            return SVC_ENOTFOUND;
        gone = x.cart.lines[i];
        gone.updated_at_ms = now;
        memmove(&x.cart.lines[i], &x.cart.lines[i + 1], (x.cart.n - i - 1) * sizeof(gone));
        x.cart.n--;
        if ((rc = cart_event_line(&ev, EV_CART_ITEM_REMOVED, o->user_id, &gone, o->traceparent)) !=
            0) {
            svc_event_out_release(&ev);
            return rc;
        }
        tx_begin(&t, c);
        tx_add(&t, "HDEL %s %s", ck, o->product_id);
        tx_touch(&t, ck, now, x.last_seq);
        tx_add(&t, "SREM %s %s", pk, o->user_id);
        tx_event(&t, &ev);
        rc = tx_exec(&t, "remove line");
        svc_event_out_release(&ev);
        if (rc == 0) {
            x.cart.updated_at_ms = now;
            x.cart.expires_at_ms = now + c->r->ttl_ms;
            cart_totals(&x.cart);
            *o->out = x.cart;
        }
    }
    if (rc == E_RETRY) {
        svc_log_warn("redis: cart of '%s' changed %d times in a row: remove line given up",
                     o->user_id, TX_ATTEMPTS);
        rc = SVC_EAGAIN;
    }
    return rc;
}

static int rd_remove_line(void *ctx, struct svc_arena *a, const char *user_id,
                          const char *product_id, const char *traceparent, struct cart *out)
{
    struct cart_op o = {.a = a,
                        .user_id = user_id,
                        .product_id = product_id,
                        .traceparent = traceparent,
                        .out = out};

    memset(out, 0, sizeof(*out));
    return run(ctx, op_remove_line, &o);
}

/* Deletes the cart of USER and its product-carts memberships (in a transaction under WATCH of
 * the cart, begun and executed by the caller: T is open). X: the cart as read. */
static void tx_drop_cart(struct tx *t, const char *ck, const char *user, const struct cart_x *x)
{
    char pk[KEY_MAX];

    tx_add(t, "DEL %s", ck);
    for (size_t i = 0; i < x->cart.n; i++)
        if (key(t->c->r, pk, "product-carts:%s", x->cart.lines[i].product_id) == 0)
            tx_add(t, "SREM %s %s", pk, user);
}

static int op_clear(struct conn *c, void *arg)
{
    struct cart_op *o = arg;
    char ck[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, ck, "cart:%s", o->user_id) != 0)
        return SVC_EINVAL;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        struct cart_x x;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = read_cart(c, o->a, o->user_id, true, &x)) != 0)
            return rc;
        tx_begin(&t, c);
        tx_drop_cart(&t, ck, o->user_id, &x);
        rc = tx_exec(&t, "clear cart");
    }
    return rc == E_RETRY ? SVC_EAGAIN : rc;
}

static int rd_clear(void *ctx, const char *user_id, const char *traceparent)
{
    struct cart_op o = {.a = svc_arena_new(), .user_id = user_id, .traceparent = traceparent};
    int rc = run(ctx, op_clear, &o);

    svc_arena_free(o.a);
    return rc;
}

/* ---- orders -------------------------------------------------------------------------------- */

static json_t *lines_to_json(const struct cart_line *lines, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *j = line_to_json(&lines[i], (int64_t)i + 1);

        json_object_set_new(j, "product_id", json_string(lines[i].product_id));
        json_array_append_new(arr, j);
    }
    return arr;
}

/* The order from an HGETALL answer H (ID: its id): false when there is none. */
static bool order_parse(struct svc_arena *a, const char *id, const redisReply *h,
                        struct cart_order *o)
{
    const char *user = hget(h, "user_id"), *lines = hget(h, "lines");
    json_t *arr;

    memset(o, 0, sizeof(*o));
    if (user == NULL || strlen(id) > CART_ID_LEN || strlen(user) > CART_ID_LEN)
        return false;
    memcpy(o->id, id, strlen(id) + 1);
    memcpy(o->user_id, user, strlen(user) + 1);
    o->status = (enum cart_status)to_i64(hget(h, "status"));
    o->total_cents = to_i64(hget(h, "total"));
    o->currency = hget(h, "currency") != NULL ? svc_arena_strdup(a, hget(h, "currency")) : NULL;
    if (hget(h, "failed_step") != NULL && hget(h, "failed_step")[0] != '\0')
        o->failed_step = svc_arena_strdup(a, hget(h, "failed_step"));
    if (hget(h, "reason") != NULL && hget(h, "reason")[0] != '\0')
        o->reason = svc_arena_strdup(a, hget(h, "reason"));
    if (hget(h, "key") != NULL)
        o->idempotency_key = svc_arena_strdup(a, hget(h, "key"));
    o->created_at_ms = to_i64(hget(h, "created_at"));
    o->updated_at_ms = to_i64(hget(h, "updated_at"));
    arr = lines != NULL ? json_loads(lines, 0, NULL) : NULL;
    if (json_is_array(arr)) {
        o->lines = svc_arena_calloc(a, (json_array_size(arr) + 1) * sizeof(*o->lines));
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const json_t *j = json_array_get(arr, i);
            const char *pid = json_string_value(json_object_get(j, "product_id"));
            char *text = json_dumps(j, JSON_COMPACT);
            int64_t seq;

            if (pid != NULL && text != NULL && line_from_json(a, pid, text, &o->lines[o->n], &seq))
                o->n++;
            free(text);
        }
    }
    json_decref(arr);
    return true;
}

static bool log_parse(struct svc_arena *a, const char *text, struct cart_log_entry *e)
{
    json_t *j = json_loads(text, 0, NULL);

    if (!json_is_object(j)) {
        json_decref(j);
        return false;
    }
    e->step = (enum cart_step)jint(j, "step");
    e->state = (enum cart_step_state)jint(j, "state");
    e->at_ms = jint(j, "at");
    e->detail = jdup(a, j, "detail");
    json_decref(j);
    return true;
}

/* Reads order ID with its log into *O: 0, SVC_ENOTFOUND or an error. */
static int read_order(struct conn *c, struct svc_arena *a, const char *id, bool with_log,
                      struct cart_order *o)
{
    char ok[KEY_MAX], lk[KEY_MAX];
    redisReply *h = NULL, *l = NULL;
    int rc;

    if (key(c->r, ok, "order:%s", id) != 0 || key(c->r, lk, "order-log:%s", id) != 0)
        return SVC_ENOTFOUND;
    if ((rc = cmd(c, &h, "read order", "HGETALL %s", ok)) != 0)
        return rc;
    defer_reply(a, h);
    if (!order_parse(a, id, h, o))
        return SVC_ENOTFOUND;
    if (!with_log)
        return 0;
    if ((rc = cmd(c, &l, "read order log", "LRANGE %s 0 -1", lk)) != 0)
        return rc;
    defer_reply(a, l);
    o->log = svc_arena_calloc(a, (l->elements + 1) * sizeof(*o->log));
    for (size_t i = 0; i < l->elements; i++)
        if (is_str(l->element[i]) && log_parse(a, l->element[i]->str, &o->log[o->nlog]))
            o->nlog++;
    return 0;
}

struct order_op {
    struct svc_arena *a;
    const char *id;
    const char *user_id;
    const char *key;
    const char *traceparent;
    struct cart_order *out;
    bool *replayed;
    /* orders_list */
    int limit;
    int64_t after_ms;
    const char *after_id;
    struct cart_order_page *page;
    /* order_log */
    const struct cart_log_entry *entry;
    int status;
    const char *failed_step, *reason;
    /* orders_open */
    size_t max;
    char (**ids)[CART_ID_LEN + 1];
    size_t *n;
};

static int op_order_get(struct conn *c, void *arg)
{
    struct order_op *o = arg;

    return read_order(c, o->a, o->id, true, o->out);
}

static int rd_order_get(void *ctx, struct svc_arena *a, const char *order_id,
                        struct cart_order *out)
{
    struct order_op o = {.a = a, .id = order_id, .out = out};

    memset(out, 0, sizeof(*out));
    return run(ctx, op_order_get, &o);
}

static int op_checkout(struct conn *c, void *arg)
{
    struct order_op *o = arg;
    char ck[KEY_MAX], kk[KEY_MAX], uk[KEY_MAX], ok[KEY_MAX], uok[KEY_MAX], open[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, ck, "cart:%s", o->user_id) != 0 || key(c->r, uk, "user:%s", o->user_id) != 0 ||
        key(c->r, kk, "checkout-key:%s:%s", o->user_id, o->key) != 0 ||
        key(c->r, ok, "order:%s", o->id) != 0 ||
        key(c->r, uok, "user-orders:%s", o->user_id) != 0 || key(c->r, open, "orders-open") != 0)
        return SVC_EINVAL;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        struct svc_event_out ev = {0};
        struct cart_order *d = o->out;
        redisReply *seen = NULL;
        struct cart_x x;
        int64_t now = svc_wall_ms();
        json_t *lines;
        char *text;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = watch(c, ck, uk, kk)) != 0 ||
            (rc = cmd(c, &seen, "read checkout key", "GET %s", kk)) != 0)
            return rc;
        if (is_str(seen)) {
            char id[CART_ID_LEN + 1];

            snprintf(id, sizeof(id), "%s", seen->str);
            freeReplyObject(seen);
            unwatch(c);
            *o->replayed = true;
            rc = read_order(c, o->a, id, true, d);
            /* A key whose order is gone (never: orders are kept) would answer 404. */
            return rc;
        }
        freeReplyObject(seen);
        if ((rc = read_cart(c, o->a, o->user_id, false, &x)) != 0)
            return rc;
        if (x.cart.n == 0)
            return CART_ECART_EMPTY;
        memset(d, 0, sizeof(*d));
        snprintf(d->id, sizeof(d->id), "%s", o->id);
        snprintf(d->user_id, sizeof(d->user_id), "%s", o->user_id);
        d->status = CART_PENDING;
        d->lines = x.cart.lines;
        d->n = x.cart.n;
        d->total_cents = x.cart.total_cents;
        d->currency = x.cart.currency;
        d->idempotency_key = svc_arena_strdup(o->a, o->key);
        d->created_at_ms = d->updated_at_ms = now;
        if ((rc = cart_event_order(&ev, EV_CHECKOUT_STARTED, d, o->traceparent)) != 0) {
            svc_event_out_release(&ev);
            return rc;
        }
        lines = lines_to_json(d->lines, d->n);
        text = json_dumps(lines, JSON_COMPACT);
        json_decref(lines);
        tx_begin(&t, c);
        tx_add(&t,
               "HSET %s user_id %s status %d lines %s total %" PRId64 " currency %s key %s "
               "created_at %" PRId64 " updated_at %" PRId64,
               ok, d->user_id, (int)d->status, text, d->total_cents, d->currency, o->key, now, now);
        tx_add(&t, "SET %s %s", kk, d->id);
        tx_add(&t, "ZADD %s %" PRId64 " %s", uok, now, d->id);
        tx_add(&t, "SADD %s %s", open, d->id);
        tx_event(&t, &ev);
        rc = tx_exec(&t, "checkout");
        free(text);
        svc_event_out_release(&ev);
    }
    if (rc == E_RETRY) {
        svc_log_warn("redis: cart of '%s' changed %d times in a row: checkout given up", o->user_id,
                     TX_ATTEMPTS);
        rc = SVC_EAGAIN;
    }
    return rc;
}

static int rd_checkout(void *ctx, struct svc_arena *a, const char *user_id, const char *key,
                       const char *order_id, const char *traceparent, struct cart_order *out,
                       bool *replayed)
{
    struct order_op o = {.a = a,
                         .id = order_id,
                         .user_id = user_id,
                         .key = key,
                         .traceparent = traceparent,
                         .out = out,
                         .replayed = replayed};

    memset(out, 0, sizeof(*out));
    *replayed = false;
    if (key == NULL || key[0] == '\0')
        return SVC_EINVAL;
    return run(ctx, op_checkout, &o);
}

static int op_orders_list(struct conn *c, void *arg)
{
    struct order_op *o = arg;
    struct cart_order_page *pg = o->page;
    bool after = o->after_id != NULL && o->after_id[0] != '\0';
    char uok[KEY_MAX], max[32];
    redisReply *z = NULL, *ties = NULL;
    long long fetch = (long long)o->limit + 1;
    int rc;

    if (key(c->r, uok, "user-orders:%s", o->user_id) != 0)
        return SVC_EINVAL;
    /* Orders created in the same millisecond as the last of the page before are skipped by
     * id; there are as many to skip at most as hold that score. */
    if (after) {
        snprintf(max, sizeof(max), "%" PRId64, o->after_ms);
        if ((rc = cmd(c, &ties, "list orders", "ZCOUNT %s %s %s", uok, max, max)) != 0)
            return rc;
        fetch += ties->integer;
        freeReplyObject(ties);
    } else {
        snprintf(max, sizeof(max), "+inf");
    }
    if ((rc = cmd(c, &z, "list orders", "ZREVRANGEBYSCORE %s %s -inf WITHSCORES LIMIT 0 %lld", uok,
                  max, fetch)) != 0)
        return rc;
    defer_reply(o->a, z);
    pg->items = svc_arena_calloc(o->a, ((size_t)o->limit + 1) * sizeof(*pg->items));
    for (size_t i = 0; i + 1 < z->elements; i += 2) {
        const char *id = z->element[i]->str;
        int64_t at = to_i64(z->element[i + 1]->str);

        if (after && at == o->after_ms && strcmp(id, o->after_id) >= 0)
            continue;
        if (pg->n == (size_t)o->limit) {
            pg->more = true;
            break;
        }
        rc = read_order(c, o->a, id, false, &pg->items[pg->n]);
        if (rc == SVC_ENOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        pg->n++;
    }
    if (pg->more && pg->n > 0) {
        pg->next_created_at_ms = pg->items[pg->n - 1].created_at_ms;
        memcpy(pg->next_id, pg->items[pg->n - 1].id, sizeof(pg->next_id));
    }
    return 0;
}

static int rd_orders_list(void *ctx, struct svc_arena *a, const char *user_id, int limit,
                          int64_t after_created_at_ms, const char *after_id,
                          struct cart_order_page *out)
{
    struct order_op o = {.a = a,
                         .user_id = user_id,
                         .limit = limit,
                         .after_ms = after_created_at_ms,
                         .after_id = after_id,
                         .page = out};

    memset(out, 0, sizeof(*out));
    if (limit < 1)
        return SVC_EINVAL;
    return run(ctx, op_orders_list, &o);
}

static bool terminal(enum cart_status s)
{
    return s == CART_PLACED || s == CART_FAILED;
}

static int op_order_log(struct conn *c, void *arg)
{
    struct order_op *o = arg;
    char ok[KEY_MAX], lk[KEY_MAX], ck[KEY_MAX], open[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, ok, "order:%s", o->id) != 0 || key(c->r, lk, "order-log:%s", o->id) != 0 ||
        key(c->r, open, "orders-open") != 0)
        return SVC_ENOTFOUND;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        struct svc_event_out ev = {0};
        struct cart_order d;
        int64_t now = svc_wall_ms();
        bool event = false;
        json_t *e;
        char *text;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = watch(c, ok, NULL, NULL)) != 0 || (rc = read_order(c, o->a, o->id, false, &d)))
            return rc;
        if (o->status >= 0 && terminal(d.status) && (int)d.status != o->status) {
            svc_log_warn("redis: order '%s' is %s already: status %s refused", o->id,
                         cart_status_name(d.status), cart_status_name((enum cart_status)o->status));
            return SVC_ECONFLICT;
        }
        /* The same end twice (two replicas finishing one order): logged, announced once. */
        if (o->status >= 0 && !terminal(d.status) && terminal((enum cart_status)o->status)) {
            d.status = (enum cart_status)o->status;
            d.updated_at_ms = now;
            if (d.status == CART_FAILED) {
                d.failed_step = o->failed_step;
                d.reason = o->reason;
            }
            event = true;
            rc = cart_event_order(&ev, d.status == CART_PLACED ? EV_ORDER_PLACED : EV_ORDER_FAILED,
                                  &d, o->traceparent);
            if (rc != 0) {
                svc_event_out_release(&ev);
                return rc;
            }
        }
        e = json_pack("{s:i, s:i, s:I}", "step", (int)o->entry->step, "state", (int)o->entry->state,
                      "at", (json_int_t)(o->entry->at_ms != 0 ? o->entry->at_ms : now));
        if (o->entry->detail != NULL)
            json_object_set_new(e, "detail", json_string(o->entry->detail));
        text = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        tx_begin(&t, c);
        tx_add(&t, "RPUSH %s %s", lk, text);
        if (o->status >= 0 && !terminal(d.status) && o->failed_step != NULL)
            tx_add(&t, "HSET %s status %d updated_at %" PRId64 " failed_step %s reason %s", ok,
                   o->status, now, o->failed_step, o->reason != NULL ? o->reason : "");
        else if (o->status >= 0 && !terminal(d.status))
            tx_add(&t, "HSET %s status %d updated_at %" PRId64, ok, o->status, now);
        else if (event)
            tx_add(&t, "HSET %s status %d updated_at %" PRId64 " failed_step %s reason %s", ok,
                   (int)d.status, now, d.failed_step != NULL ? d.failed_step : "",
                   d.reason != NULL ? d.reason : "");
        else
            tx_add(&t, "HSET %s updated_at %" PRId64, ok, now);
        if (event && d.status == CART_PLACED && key(c->r, ck, "cart:%s", d.user_id) == 0) {
            char pk[KEY_MAX];

            for (size_t i = 0; i < d.n; i++) {
                tx_add(&t, "HDEL %s %s", ck, d.lines[i].product_id);
                if (key(c->r, pk, "product-carts:%s", d.lines[i].product_id) == 0)
                    tx_add(&t, "SREM %s %s", pk, d.user_id);
            }
        }
        if (event) {
            tx_add(&t, "SREM %s %s", open, o->id);
            tx_event(&t, &ev);
        }
        rc = tx_exec(&t, "order log");
        free(text);
        svc_event_out_release(&ev);
    }
    return rc == E_RETRY ? SVC_EAGAIN : rc;
}

static int rd_order_log(void *ctx, const char *order_id, const struct cart_log_entry *entry,
                        int status, const char *failed_step, const char *reason,
                        const char *traceparent)
{
    struct order_op o = {.a = svc_arena_new(),
                         .id = order_id,
                         .entry = entry,
                         .status = status,
                         .failed_step = failed_step,
                         .reason = reason,
                         .traceparent = traceparent};
    int rc = run(ctx, op_order_log, &o);

    svc_arena_free(o.a);
    return rc;
}

static int op_orders_open(struct conn *c, void *arg)
{
    struct order_op *o = arg;
    char open[KEY_MAX];
    redisReply *s = NULL;
    int rc;

    if (key(c->r, open, "orders-open") != 0)
        return SVC_EINVAL;
    if ((rc = cmd(c, &s, "list open orders", "SMEMBERS %s", open)) != 0)
        return rc;
    defer_reply(o->a, s);
    *o->ids = svc_arena_calloc(o->a, (o->max + 1) * sizeof(**o->ids));
    for (size_t i = 0; i < s->elements && *o->n < o->max; i++)
        if (is_str(s->element[i]) && strlen(s->element[i]->str) <= CART_ID_LEN)
            memcpy((*o->ids)[(*o->n)++], s->element[i]->str, strlen(s->element[i]->str) + 1);
    return 0;
}

static int rd_orders_open(void *ctx, struct svc_arena *a, size_t max, char (**ids)[CART_ID_LEN + 1],
                          size_t *n)
{
    struct order_op o = {.a = a, .max = max, .ids = ids, .n = n};

    *ids = NULL;
    *n = 0;
    return run(ctx, op_orders_open, &o);
}

/* ---- read models --------------------------------------------------------------------------- */

struct model_op {
    const char *event_id;
    const char *user_id;
    int64_t version;
    bool deleted;
    const struct cart_product *p;
    const char *product_id;
    int64_t updated_at_ms;
};

/* Whether event EVENT_ID was consumed already (SEEN: its key). WATCHes it. */
static int seen_before(struct conn *c, const char *sk, bool *seen)
{
    redisReply *rep = NULL;
    int rc = cmd(c, &rep, "read seen event", "EXISTS %s", sk);

    *seen = rc == 0 && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    return rc;
}

static void tx_seen(struct tx *t, const char *sk)
{
    tx_add(t, "SET %s 1 PX %lld", sk, (long long)SEEN_TTL_MS);
}

/* user.registered, user.updated (version newer only) and user.deleted (terminal). */
static int op_user(struct conn *c, void *arg)
{
    struct model_op *m = arg;
    char uk[KEY_MAX], sk[KEY_MAX], ck[KEY_MAX], uok[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, uk, "user:%s", m->user_id) != 0 || key(c->r, sk, "seen:%s", m->event_id) != 0 ||
        key(c->r, ck, "cart:%s", m->user_id) != 0 ||
        key(c->r, uok, "user-orders:%s", m->user_id) != 0)
        return SVC_EINVAL;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        struct svc_arena *a = svc_arena_new();
        redisReply *u = NULL, *z = NULL;
        const char **keys = NULL;
        size_t nkeys = 0;
        struct cart_x x;
        bool seen, deleted;
        int64_t version;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = watch(c, uk, sk, ck)) != 0 || (rc = seen_before(c, sk, &seen)) != 0 || seen ||
            (rc = cmd(c, &u, "read user", "HGETALL %s", uk)) != 0) {
            svc_arena_free(a);
            return rc;
        }
        defer_reply(a, u);
        version = to_i64(hget(u, "version"));
        deleted = hget(u, "deleted") != NULL && strcmp(hget(u, "deleted"), "1") == 0;
        if (deleted || (!m->deleted && hget(u, "version") != NULL && version >= m->version)) {
            /* Older news, or news of a user gone: only remembered as seen. */
            tx_begin(&t, c);
            tx_seen(&t, sk);
            rc = tx_exec(&t, "user event");
            svc_arena_free(a);
            continue;
        }
        if (m->deleted) {
            redisReply *h = NULL;

            if ((rc = cmd(c, &h, "read cart", "HGETALL %s", ck)) != 0 ||
                (rc = cmd(c, &z, "read user orders", "ZRANGE %s 0 -1", uok)) != 0) {
                freeReplyObject(h);
                svc_arena_free(a);
                return rc;
            }
            defer_reply(a, h);
            defer_reply(a, z);
            cart_parse(a, m->user_id, h, -1, &x);
            /* Orders keep only ids (the user's included, for the aggregates): nothing personal
             * to erase there. The Idempotency-Keys they were made under go, read here, before
             * the MULTI (a read inside it would only be queued). */
            keys = svc_arena_calloc(a, (z->elements + 1) * sizeof(*keys));
            for (size_t i = 0; i < z->elements; i++) {
                char ok[KEY_MAX], kk[KEY_MAX];
                redisReply *kr = NULL;

                if (!is_str(z->element[i]) || key(c->r, ok, "order:%s", z->element[i]->str) != 0)
                    continue;
                rc = cmd(c, &kr, "read order key", "HGET %s key", ok);
                if (rc == 0 && is_str(kr) &&
                    key(c->r, kk, "checkout-key:%s:%s", m->user_id, kr->str) == 0)
                    keys[nkeys++] = svc_arena_strdup(a, kk);
                freeReplyObject(kr);
                if (rc != 0) {
                    svc_arena_free(a);
                    return rc;
                }
            }
        }
        tx_begin(&t, c);
        tx_add(&t, "HSET %s version %" PRId64 " deleted %d", uk,
               m->version > version ? m->version : version, m->deleted ? 1 : 0);
        if (m->deleted)
            tx_drop_cart(&t, ck, m->user_id, &x);
        for (size_t i = 0; i < nkeys; i++)
            tx_add(&t, "DEL %s", keys[i]);
        tx_seen(&t, sk);
        rc = tx_exec(&t, m->deleted ? "user deleted" : "user upsert");
        svc_arena_free(a);
    }
    return rc == E_RETRY ? SVC_EAGAIN : rc;
}

static int rd_user_upsert(void *ctx, const char *event_id, const char *user_id, int64_t version)
{
    struct model_op m = {.event_id = event_id, .user_id = user_id, .version = version};

    return run(ctx, op_user, &m);
}

static int rd_user_deleted(void *ctx, const char *event_id, const char *user_id, int64_t version)
{
    struct model_op m = {
        .event_id = event_id, .user_id = user_id, .version = version, .deleted = true};

    return run(ctx, op_user, &m);
}

/* The product read model: writes the news (and the event as seen) when it is newer than what
 * is known and the product not deleted, with *APPLY true, so that the carts follow. 0 (*APPLY
 * false: seen before, older news, or a deleted product), E_RETRY or an error. */
static int product_write(struct conn *c, const struct model_op *m, const char *prk, const char *sk,
                         bool *apply)
{
    redisReply *h = NULL;
    bool seen;
    struct tx t;
    int rc;

    *apply = false;
    if ((rc = watch(c, prk, sk, NULL)) != 0 || (rc = seen_before(c, sk, &seen)) != 0 || seen)
        return rc;
    if ((rc = cmd(c, &h, "read product", "HGETALL %s", prk)) != 0)
        return rc;
    if (hget(h, "deleted") != NULL && strcmp(hget(h, "deleted"), "1") == 0) {
        freeReplyObject(h);
        unwatch(c);
        return 0; /* deleted: nothing brings it back */
    }
    if (m->p != NULL && hget(h, "updated_at") != NULL &&
        to_i64(hget(h, "updated_at")) >= m->updated_at_ms) {
        freeReplyObject(h);
        unwatch(c);
        return 0; /* older news */
    }
    freeReplyObject(h);
    tx_begin(&t, c);
    if (m->p != NULL)
        tx_add(&t, "HSET %s price_cents %" PRId64 " currency %s name %s updated_at %" PRId64, prk,
               m->p->price_cents, m->p->currency != NULL ? m->p->currency : "",
               m->p->name != NULL ? m->p->name : "", m->updated_at_ms);
    else
        tx_add(&t, "HSET %s deleted 1", prk);
    tx_seen(&t, sk);
    rc = tx_exec(&t, "product event");
    if (rc == 0)
        *apply = true;
    return rc;
}

/* Applies the product's news to the cart of USER: the line repriced, or gone. */
static int product_to_cart(struct conn *c, const struct model_op *m, const char *pid,
                           const char *pk, const char *user)
{
    char ck[KEY_MAX];
    int rc = E_RETRY;

    if (key(c->r, ck, "cart:%s", user) != 0)
        return 0;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        redisReply *v = NULL;
        struct svc_arena *a;
        struct cart_line l;
        int64_t seq;
        struct tx t;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = watch(c, ck, NULL, NULL)) != 0 ||
            (rc = cmd(c, &v, "read cart line", "HGET %s %s", ck, pid)) != 0)
            return rc;
        a = svc_arena_new();
        if (!is_str(v) || !line_from_json(a, pid, v->str, &l, &seq)) {
            /* The cart expired or the line left it: the membership goes. */
            unwatch(c);
            rc = cmd(c, NULL, "forget cart", "SREM %s %s", pk, user);
        } else if (m->p == NULL) {
            tx_begin(&t, c);
            tx_add(&t, "HDEL %s %s", ck, pid);
            tx_add(&t, "SREM %s %s", pk, user);
            rc = tx_exec(&t, "product deleted");
        } else if (l.updated_at_ms >= m->updated_at_ms ||
                   (l.price_cents == m->p->price_cents && m->p->currency != NULL &&
                    l.currency != NULL && strcmp(l.currency, m->p->currency) == 0)) {
            /* Snapshotted after the change, or the price is the same: nothing to mark. */
            unwatch(c);
            rc = 0;
        } else {
            json_t *j;
            char *text;

            l.price_cents = m->p->price_cents;
            if (m->p->currency != NULL)
                l.currency = m->p->currency;
            if (m->p->name != NULL)
                l.name = m->p->name;
            l.repriced = true;
            l.updated_at_ms = svc_wall_ms();
            j = line_to_json(&l, seq);
            text = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            tx_begin(&t, c);
            tx_add(&t, "HSET %s %s %s", ck, pid, text);
            rc = tx_exec(&t, "reprice line");
            free(text);
        }
        freeReplyObject(v);
        svc_arena_free(a);
    }
    return rc == E_RETRY ? SVC_EAGAIN : rc;
}

static int op_product(struct conn *c, void *arg)
{
    struct model_op *m = arg;
    const char *pid = m->p != NULL ? m->p->id : m->product_id;
    char prk[KEY_MAX], sk[KEY_MAX], pk[KEY_MAX];
    redisReply *users = NULL;
    bool apply = false;
    int rc = E_RETRY;

    if (key(c->r, prk, "product:%s", pid) != 0 || key(c->r, sk, "seen:%s", m->event_id) != 0 ||
        key(c->r, pk, "product-carts:%s", pid) != 0)
        return SVC_EINVAL;
    for (int attempt = 0; rc == E_RETRY && attempt < TX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            backoff(attempt);
        rc = product_write(c, m, prk, sk, &apply);
    }
    if (rc == E_RETRY)
        return SVC_EAGAIN;
    if (rc != 0 || !apply)
        return rc;
    /*
     * The carts follow, one transaction each. A crash in between leaves some carts behind
     * with the event already seen: a price is corrected by the next put_line of the line
     * (which snapshots product-svc's price), a deleted product by the checkout, which
     * product-svc refuses for it.
     */
    if ((rc = cmd(c, &users, "read product carts", "SMEMBERS %s", pk)) != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < users->elements; i++)
        if (is_str(users->element[i]))
            rc = product_to_cart(c, m, pid, pk, users->element[i]->str);
    freeReplyObject(users);
    if (rc == 0 && m->p == NULL)
        rc = cmd(c, NULL, "drop product carts", "DEL %s", pk);
    return rc;
}

static int rd_product_upsert(void *ctx, const char *event_id, const struct cart_product *p,
                             int64_t updated_at_ms)
{
    struct model_op m = {.event_id = event_id, .p = p, .updated_at_ms = updated_at_ms};

    return run(ctx, op_product, &m);
}

static int rd_product_deleted(void *ctx, const char *event_id, const char *product_id)
{
    struct model_op m = {.event_id = event_id, .product_id = product_id};

    return run(ctx, op_product, &m);
}

static bool rd_ready(void *ctx, char *why, size_t cap)
{
    struct cart_redis *r = ctx;

    return svc_dep_check(r->dep, why, cap);
}

void cart_redis_store(struct cart_redis *r, struct cart_store *store)
{
    memset(store, 0, sizeof(*store));
    store->ctx = r;
    store->get = rd_get;
    store->put_line = rd_put_line;
    store->remove_line = rd_remove_line;
    store->clear = rd_clear;
    store->checkout = rd_checkout;
    store->order_get = rd_order_get;
    store->orders_list = rd_orders_list;
    store->order_log = rd_order_log;
    store->orders_open = rd_orders_open;
    store->user_upsert = rd_user_upsert;
    store->user_deleted = rd_user_deleted;
    store->product_upsert = rd_product_upsert;
    store->product_deleted = rd_product_deleted;
    store->ready = rd_ready;
}

/* ---- the outbox source --------------------------------------------------------------------- */

static void ob_free_batch(struct cart_redis *r)
{
    for (size_t i = 0; i < sizeof(r->ob_replies) / sizeof(r->ob_replies[0]); i++) {
        freeReplyObject(r->ob_replies[i]);
        r->ob_replies[i] = NULL;
    }
    free(r->ob_events);
    r->ob_events = NULL;
}

/* Appends the entries of ENTRIES (an array of [id, [field, value, ...]]) to the batch; an
 * entry deleted meanwhile (no fields) is skipped (and acknowledged: see ob_fetch). */
static size_t ob_take(const redisReply *entries, struct svc_outbox_event *ev, size_t n, size_t max,
                      struct conn *c)
{
    for (size_t i = 0;
         entries != NULL && entries->type == REDIS_REPLY_ARRAY && i < entries->elements && n < max;
         i++) {
        const redisReply *e = entries->element[i];
        const redisReply *f;
        struct svc_outbox_event *o = &ev[n];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || !is_str(e->element[0]))
            continue;
        f = e->element[1];
        memset(o, 0, sizeof(*o));
        o->handle = e->element[0]->str;
        for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2) {
            const char *k = f->element[j]->str;
            const redisReply *v = f->element[j + 1];

            if (strcmp(k, "id") == 0)
                o->id = v->str;
            else if (strcmp(k, "topic") == 0)
                o->topic = v->str;
            else if (strcmp(k, "key") == 0) {
                o->key = v->str;
                o->key_len = v->len;
            } else if (strcmp(k, "value") == 0) {
                o->value = v->str;
                o->value_len = v->len;
            }
        }
        if (o->id == NULL || o->topic == NULL || o->value == NULL) {
            /* Gone (XDELed by another relay after it published it) or not ours: settled. */
            cmd(c, NULL, "outbox ack", "XACK %s %s %s", c->r->stream, GROUP, e->element[0]->str);
            continue;
        }
        n++;
    }
    return n;
}

/* The entries of an XREADGROUP answer: [[stream, entries]], or nil. */
static const redisReply *xread_entries(const redisReply *rep)
{
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
        return NULL;
    rep = rep->element[0];
    return rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 ? rep->element[1] : NULL;
}

/*
 * A batch, oldest first: the entries this relay was handed before and has not acknowledged
 * (a round that failed), then those a crashed relay left pending longer than RECLAIM_IDLE_MS,
 * then new ones.
 */
static int ob_fetch(void *ctx, size_t max, struct svc_outbox_event **events)
{
    struct cart_redis *r = ctx;
    struct svc_pool_conn *h;
    struct conn *c;
    size_t n = 0;
    int rc;

    ob_free_batch(r);
    *events = NULL;
    if (max == 0)
        return 0;
    if ((rc = acquire(r, &h)) != 0)
        return rc;
    c = h->conn;
    r->ob_events = svc_calloc(max, sizeof(*r->ob_events));
    rc = cmd(c, &r->ob_replies[0], "outbox read pending",
             "XREADGROUP GROUP %s %s COUNT %lld STREAMS %s 0", GROUP, r->consumer, (long long)max,
             r->stream);
    if (rc == 0)
        n = ob_take(xread_entries(r->ob_replies[0]), r->ob_events, n, max, c);
    if (rc == 0 && n < max) {
        rc = cmd(c, &r->ob_replies[1], "outbox reclaim", "XAUTOCLAIM %s %s %s %d 0 COUNT %lld",
                 r->stream, GROUP, r->consumer, RECLAIM_IDLE_MS, (long long)(max - n));
        if (rc == 0 && r->ob_replies[1]->type == REDIS_REPLY_ARRAY &&
            r->ob_replies[1]->elements >= 2)
            n = ob_take(r->ob_replies[1]->element[1], r->ob_events, n, max, c);
    }
    if (rc == 0 && n < max) {
        rc = cmd(c, &r->ob_replies[2], "outbox read",
                 "XREADGROUP GROUP %s %s COUNT %lld STREAMS %s >", GROUP, r->consumer,
                 (long long)(max - n), r->stream);
        if (rc == 0)
            n = ob_take(xread_entries(r->ob_replies[2]), r->ob_events, n, max, c);
    }
    release(r, h);
    if (rc != 0) {
        ob_free_batch(r);
        return rc;
    }
    *events = r->ob_events;
    return (int)n;
}

static int ob_mark(void *ctx, struct svc_outbox_event *const *events, size_t n)
{
    struct cart_redis *r = ctx;
    struct svc_pool_conn *h;
    const char **argv;
    size_t *lens;
    struct tx t;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = acquire(r, &h)) != 0)
        return rc;
    argv = svc_calloc(n + 3, sizeof(*argv));
    lens = svc_calloc(n + 3, sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        argv[i + 3] = events[i]->handle;
        lens[i + 3] = strlen(argv[i + 3]);
    }
    tx_begin(&t, h->conn);
    argv[0] = "XACK";
    argv[1] = r->stream;
    argv[2] = GROUP;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    redisAppendCommandArgv(((struct conn *)h->conn)->c, (int)n + 3, argv, lens);
    t.n++;
    argv[1] = "XDEL";
    argv[2] = r->stream;
    lens[1] = strlen(argv[1]);
    lens[2] = strlen(argv[2]);
    redisAppendCommandArgv(((struct conn *)h->conn)->c, (int)n + 2, argv + 1, lens + 1);
    t.n++;
    rc = tx_exec(&t, "outbox mark published");
    release(r, h);
    free(argv);
    free(lens);
    return rc;
}

static void ob_release(void *ctx, struct svc_outbox_event *events, size_t n)
{
    (void)events;
    (void)n;
    ob_free_batch(ctx);
}

/* Entries not yet acknowledged and deleted: every entry of the stream. The oldest's age comes
 * from its id, which starts with its time in ms. */
static int ob_backlog(void *ctx, size_t *count, double *oldest_age_s)
{
    struct cart_redis *r = ctx;
    struct svc_pool_conn *h;
    redisReply *len = NULL, *first = NULL;
    int rc;

    *count = 0;
    *oldest_age_s = 0;
    if ((rc = acquire(r, &h)) != 0)
        return rc;
    if ((rc = cmd(h->conn, &len, "outbox length", "XLEN %s", r->stream)) == 0 &&
        (rc = cmd(h->conn, &first, "outbox oldest", "XRANGE %s - + COUNT 1", r->stream)) == 0) {
        *count = len->integer > 0 ? (size_t)len->integer : 0;
        if (first->type == REDIS_REPLY_ARRAY && first->elements > 0 &&
            first->element[0]->type == REDIS_REPLY_ARRAY && first->element[0]->elements > 0 &&
            is_str(first->element[0]->element[0])) {
            int64_t ms = to_i64(first->element[0]->element[0]->str);
            int64_t age = svc_wall_ms() - ms;

            *oldest_age_s = age > 0 ? (double)age / 1000.0 : 0;
        }
    }
    freeReplyObject(len);
    freeReplyObject(first);
    release(r, h);
    return rc;
}

void cart_redis_outbox_source(struct cart_redis *r, struct svc_outbox_source *src)
{
    memset(src, 0, sizeof(*src));
    src->ctx = r;
    src->fetch = ob_fetch;
    src->mark_published = ob_mark;
    src->release = ob_release;
    src->backlog = ob_backlog;
}

/* ---- life ---------------------------------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The N bytes at S, percent-decoded, as a new string; NULL when an escape is broken. */
static char *decode(const char *s, size_t n)
{
    char *out = svc_malloc(n + 1), *o = out;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        i += 2;
    }
    *o = '\0';
    return out;
}

/* redis://[user[:password]@]host[:port][/db] */
static int parse_url(struct cart_redis *r, const char *url)
{
    const char *p, *at, *host, *end, *colon;
    char *num_end;
    long v;

    if (url == NULL || strncmp(url, "redis://", 8) != 0)
        return SVC_EINVAL;
    p = url + 8;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));
    host = p;
    if (at != NULL) {
        const char *sep = memchr(p, ':', (size_t)(at - p));

        if (sep != NULL) {
            r->password = decode(sep + 1, (size_t)(at - sep - 1));
            if (sep > p)
                r->user = decode(p, (size_t)(sep - p));
        } else if (at > p) {
            r->user = decode(p, (size_t)(at - p));
        }
        if ((sep != NULL && r->password == NULL) || (r->user == NULL && sep != NULL && sep > p))
            return SVC_EINVAL;
        host = at + 1;
    }
    colon = memchr(host, ':', (size_t)(end - host));
    r->port = 6379;
    if (colon != NULL) {
        v = strtol(colon + 1, &num_end, 10);
        if (num_end != end || v < 1 || v > 65535)
            return SVC_EINVAL;
        r->port = (int)v;
    } else {
        colon = end;
    }
    if (colon == host)
        return SVC_EINVAL;
    r->host = svc_strndup(host, (size_t)(colon - host));
    if (*end == '/' && end[1] != '\0') {
        v = strtol(end + 1, &num_end, 10);
        if (*num_end != '\0' || v < 0 || v > 15)
            return SVC_EINVAL;
        r->db = (int)v;
    } else if (*end != '\0' && strcmp(end, "/") != 0) {
        return SVC_EINVAL;
    }
    return 0;
}

int cart_redis_new(const struct cart_redis_opts *o, struct cart_redis **out)
{
    struct cart_redis *r = svc_calloc(1, sizeof(*r));
    struct svc_pool_config pc = {.ops = &pool_ops, .ctx = r, .readiness_probe = true};
    struct svc_pool_conn *h;
    redisReply *rep = NULL;
    char host[64];
    int rc;

    *out = NULL;
    r->prefix = svc_strdup(o->prefix != NULL ? o->prefix : "");
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    r->ttl_ms = o->cart_ttl_ms > 0 ? o->cart_ttl_ms : 7LL * 24 * 3600 * 1000;
    if ((rc = parse_url(r, o->url)) != 0) {
        svc_log_error("REDIS_URL is not redis://user:password@host:port/db");
        cart_redis_free(r);
        return rc;
    }
    if (key(r, r->stream, STREAM) != 0) {
        cart_redis_free(r);
        return SVC_EINVAL;
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "cart-svc");
    host[sizeof(host) - 1] = '\0';
    snprintf(r->consumer, sizeof(r->consumer), "%s-%ld", host, (long)getpid());
    r->dep = svc_dep_new("redis", 0, NULL);
    pc.dep = r->dep;
    pc.size = o->pool_size > 0 ? o->pool_size : 4;
    pc.acquire_timeout_ms = r->timeout_ms;
    r->pool = svc_pool_new(&pc);
    if ((rc = acquire(r, &h)) != 0) {
        cart_redis_free(r);
        return rc;
    }
    /* The relay's group, from the stream's start: events written before the first relay ran
     * are published too. A group that exists is kept as it is. */
    rep = redisCommand(((struct conn *)h->conn)->c, "XGROUP CREATE %s %s 0 MKSTREAM", r->stream,
                       GROUP);
    rc = rep != NULL && rep->type == REDIS_REPLY_ERROR && starts(rep->str, "BUSYGROUP")
             ? 0
             : check(h->conn, rep, "create outbox group");
    freeReplyObject(rep);
    release(r, h);
    if (rc != 0) {
        cart_redis_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void cart_redis_free(struct cart_redis *r)
{
    if (r == NULL)
        return;
    ob_free_batch(r);
    svc_pool_free(r->pool);
    svc_dep_free(r->dep);
    free(r->host);
    free(r->user);
    free(r->password);
    free(r->prefix);
    free(r);
}

struct svc_dep *cart_redis_dep(struct cart_redis *r)
{
    return r->dep;
}

static int op_drop_all(struct conn *c, void *arg)
{
    char pattern[KEY_MAX + 2];
    char cursor[32] = "0";
    int rc;

    (void)arg;
    snprintf(pattern, sizeof(pattern), "%s*", c->r->prefix);
    do {
        redisReply *rep = NULL;

        if ((rc = cmd(c, &rep, "drop keys", "SCAN %s MATCH %s COUNT 1000", cursor, pattern)) != 0)
            return rc;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            freeReplyObject(rep);
            return SVC_EINTERNAL;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; rc == 0 && i < rep->element[1]->elements; i++)
            rc = cmd(c, NULL, "drop keys", "DEL %s", rep->element[1]->element[i]->str);
        freeReplyObject(rep);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    return rc;
}

int cart_redis_drop_all(struct cart_redis *r)
{
    /* Without a prefix this would be every key of the database: never. */
    if (r->prefix[0] == '\0')
        return SVC_EINVAL;
    return run(r, op_drop_all, NULL);
}

/* ---- hooks --------------------------------------------------------------------------------- */

int cart_store_init(void *svc)
{
    struct cart_svc *s = svc;
    struct cart_redis_opts o = {
        .url = s->cfg.redis_url,
        .pool_size = s->cfg.redis_pool,
        .timeout_ms = (int)s->cfg.redis_timeout_ms,
        .cart_ttl_ms = s->cfg.cart_ttl_ms,
    };
    int rc = cart_redis_new(&o, &s->redis);

    if (rc != 0)
        return rc;
    cart_redis_store(s->redis, &s->app.store);
    cart_redis_outbox_source(s->redis, &s->outbox);
    return 0;
}

void cart_store_fini(void *svc)
{
    struct cart_svc *s = svc;

    cart_redis_free(s->redis);
    s->redis = NULL;
    memset(&s->app.store, 0, sizeof(s->app.store));
    memset(&s->outbox, 0, sizeof(s->outbox));
}

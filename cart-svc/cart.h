/*
 * cart.h: cart-svc's domain, the store interface between its handlers, its saga, its consumers
 * and Redis, and the remote interface to the two other owners the checkout saga calls.
 *
 * cart-svc owns, in Redis (cart_store.c is the only file that includes hiredis):
 *   carts        one per user: lines (product, quantity, the price and name snapshotted when
 *                the line was added or repriced), expiring after CART_TTL without a write
 *   orders       each checkout: its lines and total, its status, and the saga log (every step
 *                with its state and time), kept forever (a user's orders are listed)
 *   read models  users (from user-events) and product prices and names (from product-events):
 *                cart-svc never asks user-svc whether a user exists
 *   outbox       a stream: every change and its CloudEvent in one MULTI/EXEC
 *
 * The checkout saga (cart_saga.c) is orchestrated here: RESERVE stock at product-svc
 * (reservation id = the order id) -> CHARGE the wallet at user-svc (payment id = the order id)
 * -> COMMIT the reservation -> PLACED (the cart emptied). A failure compensates in reverse
 * (RELEASE, REFUND) and the order is FAILED with a reason a user can read. The saga log is
 * written before each remote call and after its answer, so a restarted cart-svc resumes every
 * unfinished order (cart_saga_resume()).
 *
 * Memory: what a store function returns is allocated from the arena it is given.
 */
#ifndef CART_H
#define CART_H

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CART_ID_LEN     36 /* UUIDs: user, product and order ids */
#define CART_LINES_MAX  100
#define CART_QTY_MAX    99
#define CART_REASON_MAX 300 /* characters of a failure reason */

/* cart-svc's own errors, in lib's X-macro form (svc/error.h): name, value, HTTP status,
 * problem type, title.
 *   ECART_FULL       a new line in a cart of CART_LINES_MAX lines
 *   ECART_EMPTY      checkout of an empty cart
 *   EUSER_UNKNOWN    a user cart-svc has not heard of (yet) or that is deleted: 404, never 500
 *   EPRODUCT_UNKNOWN a product product-svc does not have (checked when a line is added)
 *   EDEPENDENCY      product-svc or user-svc did not answer in time: 503 with Retry-After */
/* clang-format off */
#define CART_ERRNO_MAP(X)                                                                          \
    X(ECART_FULL,       -4001, 409, "cart-full",          "Cart full")                             \
    X(ECART_EMPTY,      -4002, 409, "cart-empty",         "Cart empty")                            \
    X(EUSER_UNKNOWN,    -4003, 404, "user-not-known",     "User not known")                        \
    X(EPRODUCT_UNKNOWN, -4004, 422, "product-not-found",  "Product not found")                     \
    X(EDEPENDENCY,      -4005, 503, "dependency-unavailable", "Dependency unavailable")
/* clang-format on */

enum {
#define CART__ERR_ENUM(name, value, status, type, title) CART_##name = (value),
    CART_ERRNO_MAP(CART__ERR_ENUM)
#undef CART__ERR_ENUM
};

/* CART_ERRNO_MAP as a table, for svc_def.errors (cart_http.c). */
extern const struct svc_err_def cart_errors[];

/* cart-svc/openapi.yaml, NUL-terminated, for svc_def.openapi (cmake/Service.cmake). */
extern const unsigned char cart_openapi_yaml[];

/* ---- carts -------------------------------------------------------------------------------- */

struct cart_line {
    char product_id[CART_ID_LEN + 1];
    int64_t quantity;
    int64_t price_cents; /* the snapshot: what the line costs per unit */
    const char *currency;
    const char *name;
    bool repriced; /* product-svc changed the price since; PRICE_CENTS is the new one */
    int64_t added_at_ms, updated_at_ms;
};

struct cart {
    char user_id[CART_ID_LEN + 1];
    struct cart_line *lines; /* in the order they were first added */
    size_t n;
    int64_t total_cents;   /* sum of quantity x price_cents */
    const char *currency;  /* of every line; NULL when empty. A cart holds one currency */
    int64_t updated_at_ms; /* 0 for an empty cart that never had a write */
    int64_t expires_at_ms;
};

/* What the cart knows of a product when a line is added (from product-svc's batch get). */
struct cart_product {
    char id[CART_ID_LEN + 1];
    const char *name;
    int64_t price_cents;
    const char *currency;
    int64_t available;
};

/* ---- orders and the saga ------------------------------------------------------------------ */

/* An order's status; the saga moves it forward, or back through compensation. */
enum cart_status {
    CART_PENDING,      /* created; nothing asked of anyone yet */
    CART_RESERVED,     /* product-svc holds the stock */
    CART_CHARGED,      /* user-svc captured the payment */
    CART_PLACED,       /* the reservation committed, the cart emptied: done */
    CART_COMPENSATING, /* a step failed: releasing and refunding */
    CART_FAILED,       /* compensated: nothing held, nothing charged: done */
};

/* The saga's steps, as the log names them. */
enum cart_step {
    CART_STEP_RESERVE,
    CART_STEP_CHARGE,
    CART_STEP_COMMIT,
    CART_STEP_RELEASE, /* compensation of RESERVE */
    CART_STEP_REFUND,  /* compensation of CHARGE */
};

/* What a log entry says of its step. */
enum cart_step_state {
    CART_STEP_STARTED,   /* written before the remote call */
    CART_STEP_SUCCEEDED, /* written after a success */
    CART_STEP_FAILED,    /* written after a refusal (the saga compensates) */
    CART_STEP_RETRYING,  /* written after a timeout or 503 (the step is tried again) */
};

struct cart_log_entry {
    enum cart_step step;
    enum cart_step_state state;
    int64_t at_ms;
    const char *detail; /* NULL, or what the remote said (a refusal's reason) */
};

struct cart_order {
    char id[CART_ID_LEN + 1];
    char user_id[CART_ID_LEN + 1];
    enum cart_status status;
    struct cart_line *lines; /* the cart as it was at checkout */
    size_t n;
    int64_t total_cents;
    const char *currency;
    const char *failed_step; /* "reserve", "charge", ... once FAILED, else NULL */
    const char *reason;      /* a sentence for the user once FAILED, else NULL */
    const char *idempotency_key;
    int64_t created_at_ms, updated_at_ms;
    struct cart_log_entry *log;
    size_t nlog;
};

struct cart_order_page {
    struct cart_order *items; /* without their logs */
    size_t n;
    bool more;
    int64_t next_created_at_ms;
    char next_id[CART_ID_LEN + 1];
};

/* The names the API and the log use ("pending", "reserve", "started", ...). */
const char *cart_status_name(enum cart_status s);
const char *cart_step_name(enum cart_step s);
const char *cart_step_state_name(enum cart_step_state s);

/*
 * The store. Every function returns 0 or a negative code:
 *   SVC_ENOTFOUND           no such order
 *   CART_EUSER_UNKNOWN      the user is not in the read model, or is deleted
 *   CART_ECART_FULL, CART_ECART_EMPTY
 *   SVC_EUNAVAILABLE        Redis cannot be reached (503; consumers retry later)
 * Every change writes its CloudEvent to the outbox stream in the same MULTI/EXEC; TRACEPARENT
 * (may be NULL) goes into it. Concurrent writes to one cart never lose a line (WATCH/MULTI,
 * retried a bounded number of times).
 */
struct cart_store {
    void *ctx;

    /* ---- carts ---- */
    /* The user's cart (empty when it has none). */
    int (*get)(void *ctx, struct svc_arena *a, const char *user_id, struct cart *out);
    /* Sets the line of P to QUANTITY (adding it, with P's price and name as the snapshot, or
     * changing its quantity and refreshing the snapshot), refreshes the TTL: cart.item_added.
     * A currency other than the cart's: SVC_EINVAL. */
    int (*put_line)(void *ctx, struct svc_arena *a, const char *user_id,
                    const struct cart_product *p, int64_t quantity, const char *traceparent,
                    struct cart *out);
    /* Removes the line (SVC_ENOTFOUND when absent): cart.item_removed. */
    int (*remove_line)(void *ctx, struct svc_arena *a, const char *user_id, const char *product_id,
                       const char *traceparent, struct cart *out);
    /* Empties the cart (no event per line; a cart already empty is fine). */
    int (*clear)(void *ctx, const char *user_id, const char *traceparent);

    /* ---- checkout and orders ---- */
    /*
     * Starts a checkout: under KEY (the client's Idempotency-Key, scoped to the user), creates
     * the order from the cart as it is (status PENDING, id ORDER_ID) and checkout.started, in
     * one MULTI/EXEC. A key seen before: that order with *REPLAYED, whatever its state.
     * CART_ECART_EMPTY when the cart has no line.
     */
    int (*checkout)(void *ctx, struct svc_arena *a, const char *user_id, const char *key,
                    const char *order_id, const char *traceparent, struct cart_order *out,
                    bool *replayed);
    int (*order_get)(void *ctx, struct svc_arena *a, const char *order_id, struct cart_order *out);
    /* A user's orders, newest first, keyset-paged. */
    int (*orders_list)(void *ctx, struct svc_arena *a, const char *user_id, int limit,
                       int64_t after_created_at_ms, const char *after_id,
                       struct cart_order_page *out);
    /* The saga log: appends ENTRY and, when STATUS is not -1, sets the order's status (and,
     * for CART_FAILED, its failed step and reason). Reaching PLACED also empties the cart of
     * the ordered lines and writes order.placed; FAILED writes order.failed; both in the same
     * MULTI/EXEC as the status. */
    int (*order_log)(void *ctx, const char *order_id, const struct cart_log_entry *entry,
                     int status, const char *failed_step, const char *reason,
                     const char *traceparent);
    /* The ids of orders not PLACED nor FAILED (for the resumer), at most MAX. */
    int (*orders_open)(void *ctx, struct svc_arena *a, size_t max, char (**ids)[CART_ID_LEN + 1],
                       size_t *n);

    /* ---- read models, from events: each idempotent and safe against reordering ---- */
    int (*user_upsert)(void *ctx, const char *event_id, const char *user_id, int64_t version);
    /* user.deleted: the user marked deleted, the cart deleted, the personal data of their
     * orders erased (ids kept for the aggregates). */
    int (*user_deleted)(void *ctx, const char *event_id, const char *user_id, int64_t version);
    /* product.updated: the price and name, when newer (UPDATED_AT_MS); every cart line of the
     * product repriced when the price changed. */
    int (*product_upsert)(void *ctx, const char *event_id, const struct cart_product *p,
                          int64_t updated_at_ms);
    /* product.deleted: the product leaves every cart. */
    int (*product_deleted)(void *ctx, const char *event_id, const char *product_id);

    /* /readyz: false with a reason when Redis cannot be reached. */
    bool (*ready)(void *ctx, char *why, size_t cap);
};

/* ---- the other owners ------------------------------------------------------------------------ */

/* What a remote call came to. */
enum cart_remote_result {
    CART_REMOTE_OK,      /* done (or done before: the calls are idempotent by id) */
    CART_REMOTE_REFUSED, /* a definite no (out of stock, insufficient funds): compensate */
    CART_REMOTE_RETRY,   /* no answer in time, or 503: unknown outcome, try again later */
};

/*
 * product-svc and user-svc as the saga and the handlers need them (cart_remote.c over lib's
 * HTTP client; fakes in http tests). Every call has a deadline; REASON (CAP bytes) receives a
 * sentence for the user on REFUSED ("Steel Kettle: 2 available, 3 requested").
 */
struct cart_remote {
    void *ctx;
    /* product-svc's batch get: FOUND[i] and OUT[i] for each of IDS[N]. CART_EDEPENDENCY when it
     * does not answer in time. */
    int (*products)(void *ctx, struct svc_arena *a, const char *const *ids, size_t n,
                    struct cart_product *out, bool *found);
    enum cart_remote_result (*reserve)(void *ctx, const struct cart_order *o, char *reason,
                                       size_t cap);
    enum cart_remote_result (*commit)(void *ctx, const char *order_id, char *reason, size_t cap);
    enum cart_remote_result (*release)(void *ctx, const char *order_id, char *reason, size_t cap);
    enum cart_remote_result (*charge)(void *ctx, const struct cart_order *o, char *reason,
                                      size_t cap);
    enum cart_remote_result (*refund)(void *ctx, const char *order_id, char *reason, size_t cap);
};

/* ---- the saga (cart_saga.c) ------------------------------------------------------------------ */

/*
 * Runs order ORDER_ID forward from where its log says it is, until PLACED or FAILED, or until
 * a step must be retried later (a dependency that does not answer: returns SVC_EAGAIN and the
 * resumer tries again). Safe to call for any order at any time, also twice at once from two
 * replicas (every remote call is idempotent by the order id, and every log write says which
 * step it belongs to).
 * FAULT_AFTER (a cart_step, or -1): the test and workshop fault switch, aborts the process
 * right after that step's success is logged, to show recovery. GIVE_UP_MS: how long RESERVE or
 * CHARGE may go without an answer before the order is compensated (SAGA_GIVE_UP).
 */
int cart_saga_run(const struct cart_store *st, const struct cart_remote *rm, const char *order_id,
                  int fault_after, int64_t give_up_ms);

/* What handlers get from svc_req_app(). */
struct cart_app {
    struct cart_store store;
    struct cart_remote remote;
    /* Asks the saga worker to run ORDER_ID now (the handler answers 202 without waiting). */
    void (*kick)(void *ctx, const char *order_id);
    void *kick_ctx;
};

extern const struct svc_route cart_routes[];

#endif

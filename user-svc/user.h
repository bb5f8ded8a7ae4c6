/*
 * user.h: user-svc's domain and the store interface between its handlers and PostgreSQL.
 *
 * user-svc owns users, their wallets (a balance in integer cents), payments against wallets,
 * and its transactional outbox. Handlers (user_http.c) parse, validate, call the store and
 * render; the store (user_store.c, the only file that includes libpq) does every state change
 * and writes the event of that change into the outbox in the same transaction. http tests
 * replace the store with a fake behind this same interface.
 *
 * Memory: everything a store function returns is allocated from the arena it is given (the
 * request's), so handlers never free.
 */
#ifndef USER_H
#define USER_H

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USER_ID_LEN 36 /* a UUID in text form */

/* user-svc's own errors, in lib's X-macro form (svc/error.h): name, value, HTTP status,
 * problem type, title. Registered through svc_def.errors (user_errors), so svc_resp_error()
 * renders them. EFUNDS: a payment larger than the balance. */
/* clang-format off */
#define USER_ERRNO_MAP(X)                                                                          \
    X(EFUNDS,       -1001, 409, "insufficient-funds", "Insufficient funds")                        \
    X(EEMAIL_TAKEN, -1003, 409, "email-taken",        "Email taken")
/* clang-format on */

enum {
#define USER__ERR_ENUM(name, value, status, type, title) USER_##name = (value),
    USER_ERRNO_MAP(USER__ERR_ENUM)
#undef USER__ERR_ENUM
};

/* USER_ERRNO_MAP as a table, for svc_def.errors (user_http.c). */
extern const struct svc_err_def user_errors[];

/* user-svc/openapi.yaml, NUL-terminated, for svc_def.openapi: cmake/Service.cmake generates
 * the C file that defines it from the YAML, so the document served is the one in the tree. */
extern const unsigned char user_openapi_yaml[];

struct user {
    char id[USER_ID_LEN + 1];
    const char *email;  /* normalised; NULL once deleted */
    const char *name;   /* NULL once deleted */
    const char *status; /* "active" or "deleted" */
    int64_t version;    /* 1 on creation, +1 on every change; the ETag */
    int64_t created_at_ms, updated_at_ms;
};

struct user_page {
    struct user *items;
    size_t n;
    /* Set when there may be more: the keyset position after the last item, to be encoded as
     * the opaque cursor. */
    bool more;
    int64_t next_created_at_ms;
    char next_id[USER_ID_LEN + 1];
};

struct wallet {
    char user_id[USER_ID_LEN + 1];
    int64_t balance_cents;
    int64_t updated_at_ms;
};

struct credit {
    char credit_id[USER_ID_LEN + 1]; /* the client's idempotency key (a UUID) */
    char user_id[USER_ID_LEN + 1];
    int64_t amount_cents;
    int64_t balance_cents; /* the balance right after this credit */
    int64_t created_at_ms;
};

struct payment {
    char payment_id[USER_ID_LEN + 1]; /* the client's idempotency key (a UUID) */
    char user_id[USER_ID_LEN + 1];
    int64_t amount_cents;
    const char *status;    /* "captured" or "refunded" */
    int64_t balance_cents; /* the wallet balance right after the capture (or the refund) */
    int64_t created_at_ms, refunded_at_ms; /* refunded_at_ms 0 until refunded */
};

/*
 * The store. Every function returns 0 or a negative SVC_E* / USER_E* code:
 *   SVC_ENOTFOUND      no such (active) user or payment
 *   SVC_EPRECONDITION  the expected version is stale (rename)
 *   SVC_EUNAVAILABLE   the database cannot be reached (503, retry later)
 *   USER_E*            see above
 * Every state-changing function writes its CloudEvent to the outbox in the same transaction;
 * TRACEPARENT (may be NULL) goes into the event.
 * *REPLAYED tells the caller an idempotent request was already done: the stored result is
 * returned and nothing changed.
 */
struct user_store {
    void *ctx;

    int (*create)(void *ctx, struct svc_arena *a, const char *email, const char *name,
                  const char *traceparent, struct user *out);
    int (*get)(void *ctx, struct svc_arena *a, const char *id, struct user *out);
    int (*get_by_email)(void *ctx, struct svc_arena *a, const char *email, struct user *out);
    /* Active users ordered by (created_at, id); after the keyset position when AFTER_ID is
     * not NULL. */
    int (*list)(void *ctx, struct svc_arena *a, int limit, int64_t after_created_at_ms,
                const char *after_id, struct user_page *out);
    int (*rename)(void *ctx, struct svc_arena *a, const char *id, int64_t expected_version,
                  const char *name, const char *traceparent, struct user *out);
    /* Erases the personal data, keeps a tombstone (id, deleted_at), emits user.deleted. */
    int (*erase)(void *ctx, const char *id, const char *traceparent);

    int (*wallet_get)(void *ctx, const char *user_id, struct wallet *out);
    int (*credit)(void *ctx, const char *user_id, const char *credit_id, int64_t amount_cents,
                  const char *traceparent, struct credit *out, bool *replayed);
    int (*pay)(void *ctx, struct svc_arena *a, const char *payment_id, const char *user_id,
               int64_t amount_cents, const char *traceparent, struct payment *out, bool *replayed);
    int (*refund)(void *ctx, struct svc_arena *a, const char *payment_id, const char *traceparent,
                  struct payment *out, bool *replayed);

    /* For /readyz: false with a reason when the database cannot be reached. */
    bool (*ready)(void *ctx, char *why, size_t cap);
};

/* The routes (user_http.c). Handlers find the store through svc_req_app(), which is a
 * struct user_app. */
struct user_app {
    struct user_store store;
};

extern const struct svc_route user_routes[];

#endif

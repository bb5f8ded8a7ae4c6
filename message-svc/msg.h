/*
 * msg.h: message-svc's domain and the store interface between its handlers, its Kafka consumer
 * and MongoDB (FerretDB locally).
 *
 * message-svc owns two collections:
 *   messages  a user's inbox: notifications from the platform ("system") and direct messages
 *             from other users; the sender's display name is kept on each message
 *             (denormalised, updated from user events)
 *   users     its own read model of the users it has heard of, built only from user-events
 *             (event-carried state transfer): it never calls user-svc
 *
 * Handlers (msg_http.c) and the consumer (msg_events.c) talk to the store only through this
 * interface; msg_store.c is the only file that includes libmongoc. http tests use a fake.
 * Filters are built from typed values only: no client string ever becomes a field name or an
 * operator.
 *
 * Memory: what a store function returns is allocated from the arena it is given.
 */
#ifndef MSG_H
#define MSG_H

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_ID_LEN      36 /* UUIDs in text form: message ids and user ids */
#define MSG_SYSTEM      "system"
#define MSG_SUBJECT_MAX 200   /* characters */
#define MSG_BODY_MAX    10000 /* characters */

/* message-svc's own errors, in lib's X-macro form (svc/error.h): name, value, HTTP status,
 * problem type, title. Registered through svc_def.errors (msg_errors), so svc_resp_error()
 * renders them.
 *   EUSER_UNKNOWN  a user this service has not heard of (yet): never 500; see the README's
 *                  trade-off
 *   EUSER_DELETED  a user known to be deleted (410 would also do; the spec says which) */
/* clang-format off */
#define MSG_ERRNO_MAP(X)                                                                           \
    X(EUSER_UNKNOWN, -2001, 404, "user-not-known", "User not known")                             \
    X(EUSER_DELETED, -2002, 404, "user-deleted",   "User deleted")
/* clang-format on */

enum {
#define MSG__ERR_ENUM(name, value, status, type, title) MSG_##name = (value),
    MSG_ERRNO_MAP(MSG__ERR_ENUM)
#undef MSG__ERR_ENUM
};

/* MSG_ERRNO_MAP as a table, for svc_def.errors (msg_http.c). */
extern const struct svc_err_def msg_errors[];

/* message-svc/openapi.yaml, NUL-terminated, for svc_def.openapi: embedded at build time by
 * cmake/Service.cmake (polyglot_embed), so the document served is the one in the tree. */
extern const unsigned char msg_openapi_yaml[];

struct msg_message {
    char id[MSG_ID_LEN + 1];
    char recipient[MSG_ID_LEN + 1];
    const char *sender;      /* a user id, or MSG_SYSTEM */
    const char *sender_name; /* the sender's display name now; NULL once the sender is deleted
                                (and for system messages: "polyglot") */
    const char *subject;
    const char *body;
    int64_t created_at_ms;
    int64_t read_at_ms;          /* 0 while unread */
    const char *source_event_id; /* the event that caused a system message, else NULL */
};

struct msg_page {
    struct msg_message *items;
    size_t n;
    /* When there may be more: the keyset position after the last item (newest first). */
    bool more;
    int64_t next_created_at_ms;
    char next_id[MSG_ID_LEN + 1];
};

/* A user as the read model knows it. */
struct msg_user {
    char id[MSG_ID_LEN + 1];
    const char *name; /* NULL once deleted */
    bool deleted;
    int64_t version; /* the user-svc version of the last event applied */
};

struct msg_new {
    const char *from_user_id; /* a user id, or MSG_SYSTEM */
    const char *to_user_id;
    const char *subject, *body;
    /* Uniqueness: the event id for system messages, "dm:<from>:<Idempotency-Key>" for direct
     * messages sent with one, NULL otherwise (every call a new message). A second call with
     * the same key is a replay (*replayed), or SVC_EIDEMPOTENCY with another message. */
    const char *dedup_key;
    /* System messages: the event id, else NULL. A message caused by an event takes the
     * event's id as its own (when it is a UUID), so one event makes at most one message. */
    const char *source_event_id;
};

/*
 * The store. Every function returns 0 or a negative code:
 *   SVC_ENOTFOUND       no such message
 *   MSG_EUSER_UNKNOWN, MSG_EUSER_DELETED  (send: either user; inbox: the recipient)
 *   SVC_EUNAVAILABLE    the database cannot be reached (HTTP 503; the consumer retries later)
 *   SVC_EIDEMPOTENCY    (send) the dedup key exists with different content
 */
struct msg_store {
    void *ctx;

    /* ---- the API ---- */
    /* Newest first by (created_at, id); UNREAD: -1 all, 1 unread only, 0 read only; after the
     * keyset position when AFTER_ID is not NULL. The user must be known and not deleted. */
    int (*inbox)(void *ctx, struct svc_arena *a, const char *user_id, int unread, int limit,
                 int64_t after_created_at_ms, const char *after_id, struct msg_page *out);
    int (*get)(void *ctx, struct svc_arena *a, const char *id, struct msg_message *out);
    int (*set_read)(void *ctx, struct svc_arena *a, const char *id, bool read,
                    struct msg_message *out);
    int (*remove)(void *ctx, const char *id);
    /* Inserts a message from a known, active sender (or MSG_SYSTEM) to a known, active
     * recipient, with the sender's current name. On a dedup-key hit returns the stored message
     * with *REPLAYED (or SVC_EIDEMPOTENCY when its content differs). */
    int (*send)(void *ctx, struct svc_arena *a, const struct msg_new *in, struct msg_message *out,
                bool *replayed);
    int (*user_get)(void *ctx, struct svc_arena *a, const char *user_id, struct msg_user *out);

    /* ---- the consumer: each idempotent, and safe against out-of-order delivery ---- */
    /* user.registered: the user into the read model (unless a newer version is there) and the
     * welcome message (dedup key = EVENT_ID, so a replay adds nothing). */
    int (*user_registered)(void *ctx, const char *event_id, const char *user_id, const char *name,
                           int64_t version, int64_t at_ms);
    /* user.updated: the name, only when VERSION is newer than the one applied; then the name
     * on the messages this user sent. */
    int (*user_updated)(void *ctx, const char *user_id, const char *name, int64_t version);
    /* user.deleted: the user's inbox deleted, the user marked deleted, the name removed from
     * messages they sent. */
    int (*user_deleted)(void *ctx, const char *user_id, int64_t version);

    /* Retention: deletes messages created before BEFORE_MS; *DELETED says how many. */
    int (*sweep)(void *ctx, int64_t before_ms, int64_t *deleted);

    /* /readyz: false with a reason when the database cannot be reached. */
    bool (*ready)(void *ctx, char *why, size_t cap);
};

/* What handlers get from svc_req_app(). */
struct msg_app {
    struct msg_store store;
};

extern const struct svc_route msg_routes[];

#endif

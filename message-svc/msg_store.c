/*
 * msg_store.c: message-svc's MongoDB store (FerretDB locally), the only file that includes
 * libmongoc.
 *
 * Two collections in the URI's database:
 *   messages  {_id: message id, recipient, sender (user id or "system"), sender_name (null once
 *             the sender is deleted), subject, body, created_at (date), read (bool), read_at
 *             (date or null), source_event_id (or null), dedup_key}
 *   users     {_id: user id, name (null once deleted), deleted (bool), version}
 * Indexes, created at start-up with the createIndexes command (idempotent): messages
 * {recipient: 1, created_at: -1, _id: -1} for the inbox, unique {dedup_key: 1} for
 * idempotency, {sender: 1} for renames and deletions; users are found by _id.
 *
 * Only what both FerretDB 1.24 and MongoDB 7 do is used: no transactions, no TTL or partial
 * indexes, no $lookup. So every consumer function is a sequence of single-document or
 * single-filter writes, each idempotent, whose order makes a crash between two of them harmless:
 * the event is delivered again and the sequence finishes. Versions make them safe against
 * out-of-order delivery: the read model is changed only by an update whose filter requires an
 * older version, and the messages then follow the read model's state, not the event's.
 *
 * Every filter and update is built with BCON from typed values: a client string is only ever
 * a UTF-8 value, never a key, so "$gt", "$where" or "a.b" are stored and matched verbatim.
 *
 * Driver errors are translated here, once, and logged once with their context; only SVC_E*
 * and MSG_E* codes leave this file. Connection and server-selection failures are
 * SVC_EUNAVAILABLE; a duplicate key is 11000 on MongoDB and on a FerretDB insert, but code 1
 * "UNIQUE constraint failed" on a FerretDB update (docs/local.md).
 */
#include "msg_events.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/uuid.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MESSAGES "messages"
#define USERS    "users"
/* The display name of the platform on system messages. */
#define SYSTEM_NAME "polyglot"
/* "database unreachable" warnings are logged at most this often. */
#define WARN_EVERY_MS 5000
/* A duplicate key: never leaves this file (callers turn it into a no-op or a replay). */
#define E_DUP 1

struct msg_mongo {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    char *db;
    pthread_mutex_t mu; /* guards what follows */
    bool down;
    char why[BSON_ERROR_BUFFER_SIZE];
    int64_t warned_at;
};

/* A user of the read model, for the store's own use. */
struct user_row {
    bool found, deleted;
    bool has_name;
    char name[512];
    int64_t version;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- errors -------------------------------------------------------------------------------- */

static bool is_unavailable(const bson_error_t *e)
{
    if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION ||
        e->domain == MONGOC_ERROR_PROTOCOL)
        return true;
    if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_WRITE_CONCERN) {
        switch (e->code) {
        case 6:     /* HostUnreachable */
        case 7:     /* HostNotFound */
        case 89:    /* NetworkTimeout */
        case 91:    /* ShutdownInProgress */
        case 189:   /* PrimarySteppedDown */
        case 9001:  /* SocketException */
        case 10107: /* NotWritablePrimary */
        case 11600: /* InterruptedAtShutdown */
        case 11602: /* InterruptedDueToReplStateChange */
        case 13435: /* NotPrimaryNoSecondaryOk */
        case 13436: /* NotPrimaryOrSecondary */
            return true;
        default:
            return false;
        }
    }
    return false;
}

static bool is_dup(const bson_error_t *e)
{
    if (e->domain != MONGOC_ERROR_SERVER && e->domain != MONGOC_ERROR_WRITE_CONCERN &&
        e->domain != MONGOC_ERROR_COLLECTION && e->domain != MONGOC_ERROR_COMMAND &&
        e->domain != MONGOC_ERROR_QUERY)
        return false;
    return e->code == 11000 || e->code == 11001 ||
           (e->code == 1 && strstr(e->message, "UNIQUE constraint failed") != NULL);
}

static void note_up(struct msg_mongo *m)
{
    bool was;

    pthread_mutex_lock(&m->mu);
    was = m->down;
    m->down = false;
    pthread_mutex_unlock(&m->mu);
    if (was)
        svc_log_info("mongodb reachable again");
}

/* The one translation of a driver error, logged here with WHAT failed. */
static int fail(struct msg_mongo *m, const bson_error_t *e, const char *what)
{
    bool warn;

    if (is_dup(e))
        return E_DUP;
    if (!is_unavailable(e)) {
        svc_log_error("mongodb %s failed: %s (domain %u, code %u)", what, e->message, e->domain,
                      e->code);
        return SVC_EINTERNAL;
    }
    pthread_mutex_lock(&m->mu);
    warn = !m->down || mono_ms() - m->warned_at >= WARN_EVERY_MS;
    m->down = true;
    snprintf(m->why, sizeof(m->why), "%s", e->message);
    if (warn)
        m->warned_at = mono_ms();
    pthread_mutex_unlock(&m->mu);
    if (warn)
        svc_log_warn("mongodb unavailable: %s failed: %s", what, e->message);
    return SVC_EUNAVAILABLE;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static mongoc_collection_t *coll(struct msg_mongo *m, mongoc_client_t *c, const char *name)
{
    return mongoc_client_get_collection(c, m->db, name);
}

static int64_t reply_count(const bson_t *reply, const char *key)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, reply, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

/* A string member, copied to the arena; NULL when absent or not a string (null). */
static const char *doc_str(const bson_t *doc, const char *key, struct svc_arena *a)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return svc_arena_strdup(a, bson_iter_utf8(&it, NULL));
    return NULL;
}

static void doc_id(const bson_t *doc, const char *key, char out[MSG_ID_LEN + 1])
{
    bson_iter_t it;

    out[0] = '\0';
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(out, MSG_ID_LEN + 1, "%s", bson_iter_utf8(&it, NULL));
}

/* A time member: a BSON date (or an integer of milliseconds); 0 when absent or null. */
static int64_t doc_ms(const bson_t *doc, const char *key)
{
    bson_iter_t it;

    if (!bson_iter_init_find(&it, doc, key))
        return 0;
    if (BSON_ITER_HOLDS_DATE_TIME(&it))
        return bson_iter_date_time(&it);
    if (BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

static void row_message(const bson_t *doc, struct svc_arena *a, struct msg_message *out)
{
    memset(out, 0, sizeof(*out));
    doc_id(doc, "_id", out->id);
    doc_id(doc, "recipient", out->recipient);
    out->sender = doc_str(doc, "sender", a);
    out->sender_name = doc_str(doc, "sender_name", a);
    out->subject = doc_str(doc, "subject", a);
    out->body = doc_str(doc, "body", a);
    out->created_at_ms = doc_ms(doc, "created_at");
    out->read_at_ms = doc_ms(doc, "read_at");
    out->source_event_id = doc_str(doc, "source_event_id", a);
    if (out->sender == NULL)
        out->sender = "";
    if (out->subject == NULL)
        out->subject = "";
    if (out->body == NULL)
        out->body = "";
}

/* Finds at most one document of NAME matching FILTER into *OUT (a copy the caller destroys).
 * 0 (with *OUT NULL when none), or an SVC_E*. */
static int find_one(struct msg_mongo *m, mongoc_client_t *c, const char *name, const bson_t *filter,
                    const char *what, bson_t **out)
{
    mongoc_collection_t *co = coll(m, c, name);
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(co, filter, opts, NULL);
    const bson_t *doc;
    bson_error_t err;
    int rc = 0;

    *out = NULL;
    if (mongoc_cursor_next(cur, &doc))
        *out = bson_copy(doc);
    else if (mongoc_cursor_error(cur, &err))
        rc = fail(m, &err, what);
    if (rc == 0)
        note_up(m);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(co);
    return rc;
}

static int insert(struct msg_mongo *m, mongoc_client_t *c, const char *name, const bson_t *doc,
                  const char *what)
{
    mongoc_collection_t *co = coll(m, c, name);
    bson_error_t err;
    int rc = 0;

    if (!mongoc_collection_insert_one(co, doc, NULL, NULL, &err))
        rc = fail(m, &err, what);
    else
        note_up(m);
    mongoc_collection_destroy(co);
    return rc;
}

/* update_one (MANY false) or update_many; *MATCHED (may be NULL) says how many matched. */
static int update(struct msg_mongo *m, mongoc_client_t *c, const char *name, bool many,
                  const bson_t *filter, const bson_t *upd, const char *what, int64_t *matched)
{
    mongoc_collection_t *co = coll(m, c, name);
    bson_error_t err;
    bson_t reply;
    bool ok;
    int rc = 0;

    ok = many ? mongoc_collection_update_many(co, filter, upd, NULL, &reply, &err)
              : mongoc_collection_update_one(co, filter, upd, NULL, &reply, &err);
    if (!ok)
        rc = fail(m, &err, what);
    else
        note_up(m);
    if (matched != NULL)
        *matched = ok ? reply_count(&reply, "matchedCount") : 0;
    bson_destroy(&reply);
    mongoc_collection_destroy(co);
    return rc;
}

static int delete_many(struct msg_mongo *m, mongoc_client_t *c, const char *name,
                       const bson_t *filter, const char *what, int64_t *deleted)
{
    mongoc_collection_t *co = coll(m, c, name);
    bson_error_t err;
    bson_t reply;
    int rc = 0;

    if (!mongoc_collection_delete_many(co, filter, NULL, &reply, &err))
        rc = fail(m, &err, what);
    else
        note_up(m);
    if (deleted != NULL)
        *deleted = rc == 0 ? reply_count(&reply, "deletedCount") : 0;
    bson_destroy(&reply);
    mongoc_collection_destroy(co);
    return rc;
}

static int find_user(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                     struct user_row *u)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(user_id));
    bson_t *doc = NULL;
    bson_iter_t it;
    int rc = find_one(m, c, USERS, filter, "user lookup", &doc);

    memset(u, 0, sizeof(*u));
    if (rc == 0 && doc != NULL) {
        u->found = true;
        u->deleted = bson_iter_init_find(&it, doc, "deleted") && BSON_ITER_HOLDS_BOOL(&it) &&
                     bson_iter_bool(&it);
        if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
            u->has_name = true;
            snprintf(u->name, sizeof(u->name), "%s", bson_iter_utf8(&it, NULL));
        }
        u->version = doc_ms(doc, "version");
    }
    if (doc != NULL)
        bson_destroy(doc);
    bson_destroy(filter);
    return rc;
}

/* The user must be known and not deleted. */
static int active_user(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                       struct user_row *u)
{
    int rc = find_user(m, c, user_id, u);

    if (rc != 0)
        return rc;
    if (!u->found)
        return MSG_EUSER_UNKNOWN;
    return u->deleted ? MSG_EUSER_DELETED : 0;
}

static int get_message(struct msg_mongo *m, mongoc_client_t *c, struct svc_arena *a,
                       const char *key, const char *value, struct msg_message *out)
{
    bson_t *filter = BCON_NEW(key, BCON_UTF8(value));
    bson_t *doc = NULL;
    int rc = find_one(m, c, MESSAGES, filter, "message lookup", &doc);

    if (rc == 0 && doc == NULL)
        rc = SVC_ENOTFOUND;
    if (rc == 0)
        row_message(doc, a, out);
    if (doc != NULL)
        bson_destroy(doc);
    bson_destroy(filter);
    return rc;
}

/* ---- the API ------------------------------------------------------------------------------- */

static int mg_inbox(void *ctx, struct svc_arena *a, const char *user_id, int unread, int limit,
                    int64_t after_created_at_ms, const char *after_id, struct msg_page *out)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    mongoc_collection_t *co = NULL;
    mongoc_cursor_t *cur = NULL;
    bson_t *filter = NULL, *opts = NULL;
    const bson_t *doc;
    struct user_row u;
    bson_error_t err;
    size_t cap;
    int rc;

    memset(out, 0, sizeof(*out));
    if (limit < 1)
        limit = 1;
    rc = active_user(m, c, user_id, &u);
    if (rc != 0)
        goto out;

    filter = BCON_NEW("recipient", BCON_UTF8(user_id));
    if (unread >= 0)
        BCON_APPEND(filter, "read", BCON_BOOL(unread == 0));
    /* The keyset: strictly after (older than) the last item seen, ties broken by id. */
    if (after_id != NULL)
        BCON_APPEND(filter, "$or", "[", "{", "created_at", "{", "$lt",
                    BCON_DATE_TIME(after_created_at_ms), "}", "}", "{", "created_at",
                    BCON_DATE_TIME(after_created_at_ms), "_id", "{", "$lt", BCON_UTF8(after_id),
                    "}", "}", "]");
    opts = BCON_NEW("sort", "{", "created_at", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                    BCON_INT64((int64_t)limit + 1));
    co = coll(m, c, MESSAGES);
    cur = mongoc_collection_find_with_opts(co, filter, opts, NULL);
    cap = (size_t)limit;
    out->items = svc_arena_calloc(a, cap * sizeof(*out->items));
    while (mongoc_cursor_next(cur, &doc)) {
        if (out->n == cap) {
            out->more = true;
            break;
        }
        row_message(doc, a, &out->items[out->n++]);
    }
    if (!out->more && mongoc_cursor_error(cur, &err)) {
        rc = fail(m, &err, "inbox");
        out->n = 0;
        goto out;
    }
    note_up(m);
    if (out->more) {
        out->next_created_at_ms = out->items[out->n - 1].created_at_ms;
        memcpy(out->next_id, out->items[out->n - 1].id, sizeof(out->next_id));
    }
out:
    mongoc_cursor_destroy(cur);
    if (co != NULL)
        mongoc_collection_destroy(co);
    if (opts != NULL)
        bson_destroy(opts);
    if (filter != NULL)
        bson_destroy(filter);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_get(void *ctx, struct svc_arena *a, const char *id, struct msg_message *out)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    int rc = get_message(m, c, a, "_id", id, out);

    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_set_read(void *ctx, struct svc_arena *a, const char *id, bool read,
                       struct msg_message *out)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    /* Only a change of state is written, so read_at keeps the time of the first reading. */
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "read", BCON_BOOL(!read));
    bson_t *upd = read ? BCON_NEW("$set", "{", "read", BCON_BOOL(true), "read_at",
                                  BCON_DATE_TIME(now_ms()), "}")
                       : BCON_NEW("$set", "{", "read", BCON_BOOL(false), "read_at", BCON_NULL, "}");
    int rc = update(m, c, MESSAGES, false, filter, upd, "message read state", NULL);

    if (rc == 0)
        rc = get_message(m, c, a, "_id", id, out);
    bson_destroy(upd);
    bson_destroy(filter);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_remove(void *ctx, const char *id)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    int64_t n = 0;
    int rc = delete_many(m, c, MESSAGES, filter, "message delete", &n);

    if (rc == 0 && n == 0)
        rc = SVC_ENOTFOUND;
    bson_destroy(filter);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static bool same_str(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Inserts one message; a dedup-key hit returns the stored one with *REPLAYED, or
 * MSG_EIDEMPOTENCY when it is not the same message. */
static int put_message(struct msg_mongo *m, mongoc_client_t *c, struct svc_arena *a,
                       const struct msg_new *in, const char *sender_name, int64_t at_ms,
                       struct msg_message *out, bool *replayed)
{
    char id[SVC_UUID_STR_LEN + 1];
    const char *key;
    bson_t *doc;
    int rc;

    svc_uuid_v4_str(id);
    key = in->dedup_key != NULL ? in->dedup_key : id;
    doc = BCON_NEW("_id", BCON_UTF8(id), "recipient", BCON_UTF8(in->to_user_id), "sender",
                   BCON_UTF8(in->from_user_id), "subject", BCON_UTF8(in->subject), "body",
                   BCON_UTF8(in->body), "created_at", BCON_DATE_TIME(at_ms), "read",
                   BCON_BOOL(false), "read_at", BCON_NULL, "dedup_key", BCON_UTF8(key));
    if (sender_name != NULL)
        BCON_APPEND(doc, "sender_name", BCON_UTF8(sender_name));
    else
        BCON_APPEND(doc, "sender_name", BCON_NULL);
    if (in->source_event_id != NULL)
        BCON_APPEND(doc, "source_event_id", BCON_UTF8(in->source_event_id));
    else
        BCON_APPEND(doc, "source_event_id", BCON_NULL);
    rc = insert(m, c, MESSAGES, doc, "message insert");
    bson_destroy(doc);
    if (replayed != NULL)
        *replayed = false;
    if (rc == 0) {
        if (out != NULL && a != NULL)
            rc = get_message(m, c, a, "_id", id, out);
        return rc;
    }
    if (rc != E_DUP)
        return rc;
    if (out == NULL || a == NULL) {
        if (replayed != NULL)
            *replayed = true;
        return 0;
    }
    rc = get_message(m, c, a, "dedup_key", key, out);
    if (rc != 0)
        return rc == SVC_ENOTFOUND ? SVC_EUNAVAILABLE : rc; /* deleted meanwhile: try again */
    if (strcmp(out->recipient, in->to_user_id) != 0 || !same_str(out->sender, in->from_user_id) ||
        !same_str(out->subject, in->subject) || !same_str(out->body, in->body))
        return MSG_EIDEMPOTENCY;
    if (replayed != NULL)
        *replayed = true;
    return 0;
}

static int mg_send(void *ctx, struct svc_arena *a, const struct msg_new *in,
                   struct msg_message *out, bool *replayed)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    struct user_row from, to;
    const char *sender_name = SYSTEM_NAME;
    int rc = 0;

    *replayed = false;
    if (strcmp(in->from_user_id, MSG_SYSTEM) != 0) {
        rc = active_user(m, c, in->from_user_id, &from);
        sender_name = from.has_name ? from.name : NULL;
    }
    if (rc == 0)
        rc = active_user(m, c, in->to_user_id, &to);
    if (rc == 0)
        rc = put_message(m, c, a, in, sender_name, now_ms(), out, replayed);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_user_get(void *ctx, struct svc_arena *a, const char *user_id, struct msg_user *out)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    struct user_row u;
    int rc = find_user(m, c, user_id, &u);

    mongoc_client_pool_push(m->pool, c);
    if (rc != 0)
        return rc;
    if (!u.found)
        return MSG_EUSER_UNKNOWN;
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", user_id);
    out->name = u.has_name && !u.deleted ? svc_arena_strdup(a, u.name) : NULL;
    out->deleted = u.deleted;
    out->version = u.version;
    return 0;
}

/* ---- the consumer -------------------------------------------------------------------------- */

/*
 * The read model's row for USER_ID moves to VERSION with NAME (NULL: erased) and DELETED, when
 * VERSION is newer than what it holds, or the row is created when there is none. An older or
 * equal version changes nothing: the event was replayed or overtaken. *APPLIED says whether
 * this call wrote the row (then it holds exactly what was given); when not, the caller reads
 * it. INSERT_FIRST tries the insert first: what a registration usually needs.
 *
 * The version is compared here, after a read by _id, and the write filters on _id alone:
 * FerretDB 1.24 (SQLite) pushes only a bare _id equality down to its index, and any other
 * condition in the filter makes it scan the whole collection. Compare-then-write is safe
 * because one user's events are all in one partition, handled by one consumer thread, and
 * nothing else writes this collection.
 */
static int user_apply(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                      const char *name, bool deleted, int64_t version, bool insert_first,
                      bool *applied)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(user_id));
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(user_id), "deleted", BCON_BOOL(deleted), "version",
                           BCON_INT64(version));
    bson_t *upd;
    struct user_row u;
    int rc = 0;

    /* One $set document holds every member; a null name is an erased one. */
    upd = name != NULL ? BCON_NEW("$set", "{", "name", BCON_UTF8(name), "deleted",
                                  BCON_BOOL(deleted), "version", BCON_INT64(version), "}")
                       : BCON_NEW("$set", "{", "name", BCON_NULL, "deleted", BCON_BOOL(deleted),
                                  "version", BCON_INT64(version), "}");
    if (name != NULL)
        BCON_APPEND(doc, "name", BCON_UTF8(name));
    else
        BCON_APPEND(doc, "name", BCON_NULL);

    *applied = false;
    if (insert_first) {
        rc = insert(m, c, USERS, doc, "user insert");
        if (rc == 0)
            *applied = true;
        if (rc != E_DUP)
            goto out;
    }
    rc = find_user(m, c, user_id, &u);
    if (rc != 0)
        goto out;
    if (!u.found) {
        rc = insert(m, c, USERS, doc, "user insert");
        if (rc == 0)
            *applied = true;
        else if (rc == E_DUP)
            rc = 0; /* written meanwhile, by a redelivery elsewhere: the caller reads it */
    } else if (u.version < version) {
        rc = update(m, c, USERS, false, filter, upd, "user update", NULL);
        *applied = rc == 0;
    }
out:
    bson_destroy(doc);
    bson_destroy(upd);
    bson_destroy(filter);
    return rc;
}

/* The read model's row, as USER_APPLY left it: known without a round trip when it wrote it. */
static int user_after(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                      const char *name, bool deleted, int64_t version, bool applied,
                      struct user_row *u)
{
    if (!applied)
        return find_user(m, c, user_id, u);
    memset(u, 0, sizeof(*u));
    u->found = true;
    u->deleted = deleted;
    u->version = version;
    if (name != NULL) {
        u->has_name = true;
        snprintf(u->name, sizeof(u->name), "%s", name);
    }
    return 0;
}

/* The messages USER_ID sent show the read model's name for that user now (null once deleted);
 * idempotent, and right whatever order the events came in. */
static int sync_sender_name(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                            const struct user_row *u)
{
    bson_t *filter = BCON_NEW("sender", BCON_UTF8(user_id));
    bson_t *upd = u->has_name && !u->deleted
                      ? BCON_NEW("$set", "{", "sender_name", BCON_UTF8(u->name), "}")
                      : BCON_NEW("$set", "{", "sender_name", BCON_NULL, "}");
    int rc = update(m, c, MESSAGES, true, filter, upd, "sender name update", NULL);

    bson_destroy(upd);
    bson_destroy(filter);
    return rc;
}

static int mg_user_registered(void *ctx, const char *event_id, const char *user_id,
                              const char *name, int64_t version, int64_t at_ms)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    char subject[640];
    struct msg_new in = {
        .from_user_id = MSG_SYSTEM,
        .to_user_id = user_id,
        .subject = subject,
        .body = MSG_WELCOME_BODY,
        .dedup_key = event_id,
        .source_event_id = event_id,
    };
    struct user_row u;
    bool applied;
    int rc;

    snprintf(subject, sizeof(subject), MSG_WELCOME_SUBJECT_FMT, name);
    rc = user_apply(m, c, user_id, name, false, version, true, &applied);
    if (rc == 0)
        rc = user_after(m, c, user_id, name, false, version, applied, &u);
    /* A user deleted since (a replay after the deletion) gets no inbox again. */
    if (rc == 0 && u.found && !u.deleted)
        rc = put_message(m, c, NULL, &in, SYSTEM_NAME, at_ms, NULL, NULL);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_user_updated(void *ctx, const char *user_id, const char *name, int64_t version)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    struct user_row u;
    bool applied;
    int rc = user_apply(m, c, user_id, name, false, version, false, &applied);

    if (rc == 0)
        rc = user_after(m, c, user_id, name, false, version, applied, &u);
    if (rc == 0 && u.found && !u.deleted)
        rc = sync_sender_name(m, c, user_id, &u);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_user_deleted(void *ctx, const char *user_id, int64_t version)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    bson_t *inbox = BCON_NEW("recipient", BCON_UTF8(user_id));
    struct user_row u;
    bool applied;
    int rc = user_apply(m, c, user_id, NULL, true, version, false, &applied);

    if (rc == 0)
        rc = user_after(m, c, user_id, NULL, true, version, applied, &u);
    if (rc == 0 && u.found && u.deleted) {
        rc = delete_many(m, c, MESSAGES, inbox, "inbox delete", NULL);
        if (rc == 0)
            rc = sync_sender_name(m, c, user_id, &u);
    }
    bson_destroy(inbox);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int mg_sweep(void *ctx, int64_t before_ms, int64_t *deleted)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    bson_t *filter = BCON_NEW("created_at", "{", "$lt", BCON_DATE_TIME(before_ms), "}");
    int rc = delete_many(m, c, MESSAGES, filter, "retention sweep", deleted);

    bson_destroy(filter);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

static int ping(struct msg_mongo *m, mongoc_client_t *c)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t err;
    int rc = 0;

    if (!mongoc_client_command_simple(c, m->db, cmd, NULL, NULL, &err))
        rc = fail(m, &err, "ping");
    else
        note_up(m);
    bson_destroy(cmd);
    return rc;
}

static bool mg_ready(void *ctx, char *why, size_t cap)
{
    struct msg_mongo *m = ctx;
    mongoc_client_t *c = mongoc_client_pool_try_pop(m->pool);
    bool ok;

    if (c == NULL) {
        /* Every connection busy: they say how it goes, without a wait here. */
        pthread_mutex_lock(&m->mu);
        ok = !m->down;
        snprintf(why, cap, "%s", m->down ? m->why : "");
        pthread_mutex_unlock(&m->mu);
        return ok;
    }
    ok = ping(m, c) == 0;
    mongoc_client_pool_push(m->pool, c);
    if (!ok) {
        pthread_mutex_lock(&m->mu);
        snprintf(why, cap, "%s", m->why);
        pthread_mutex_unlock(&m->mu);
    }
    return ok;
}

void msg_mongo_store(struct msg_mongo *m, struct msg_store *store)
{
    memset(store, 0, sizeof(*store));
    store->ctx = m;
    store->inbox = mg_inbox;
    store->get = mg_get;
    store->set_read = mg_set_read;
    store->remove = mg_remove;
    store->send = mg_send;
    store->user_get = mg_user_get;
    store->user_registered = mg_user_registered;
    store->user_updated = mg_user_updated;
    store->user_deleted = mg_user_deleted;
    store->sweep = mg_sweep;
    store->ready = mg_ready;
}

int msg_mongo_drop_database(struct msg_mongo *m)
{
    mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
    mongoc_database_t *db = mongoc_client_get_database(c, m->db);
    bson_error_t err;
    int rc = 0;

    if (!mongoc_database_drop(db, &err))
        rc = fail(m, &err, "drop database");
    mongoc_database_destroy(db);
    mongoc_client_pool_push(m->pool, c);
    return rc;
}

/* ---- start-up ------------------------------------------------------------------------------ */

/* The indexes of the messages collection (users are found by _id). */
struct index_def {
    const char *name;
    const char *keys[3]; /* ascending unless listed in desc */
    bool desc[3];
    bool unique;
};

static const struct index_def indexes[] = {
    /* The inbox, newest first, with the keyset's tie-breaker. */
    {"inbox", {"recipient", "created_at", "_id"}, {false, true, true}, false},
    /* Idempotency: the source event id, or the sender's Idempotency-Key. */
    {"dedup_key_unique", {"dedup_key", NULL, NULL}, {false, false, false}, true},
    /* Renames and deletions of a sender. */
    {"sender", {"sender", NULL, NULL}, {false, false, false}, false},
    {NULL, {NULL, NULL, NULL}, {false, false, false}, false},
};

/*
 * One createIndexes command per index: FerretDB 1.24 panics on a command listing several
 * indexes when some of them exist already (a second start-up), while one index per command is
 * idempotent on both engines ("all indexes already exist").
 */
static int create_indexes(struct msg_mongo *m, mongoc_client_t *c)
{
    bson_error_t err;
    int rc = 0;

    for (const struct index_def *d = indexes; d->name != NULL && rc == 0; d++) {
        bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(MESSAGES));
        bson_t arr, spec, key;

        /* libmongoc 1.23 has no index-model helper; the command is the same on both engines. */
        bson_append_array_begin(cmd, "indexes", -1, &arr);
        bson_append_document_begin(&arr, "0", -1, &spec);
        bson_append_document_begin(&spec, "key", -1, &key);
        for (size_t i = 0; i < 3 && d->keys[i] != NULL; i++)
            bson_append_int32(&key, d->keys[i], -1, d->desc[i] ? -1 : 1);
        bson_append_document_end(&spec, &key);
        bson_append_utf8(&spec, "name", -1, d->name, -1);
        if (d->unique)
            bson_append_bool(&spec, "unique", -1, true);
        bson_append_document_end(&arr, &spec);
        bson_append_array_end(cmd, &arr);
        if (!mongoc_client_write_command_with_opts(c, m->db, cmd, NULL, NULL, &err)) {
            rc = fail(m, &err, "createIndexes on 'messages'");
            if (rc == E_DUP)
                rc = SVC_EINTERNAL; /* duplicate keys already stored: cannot be unique */
        }
        bson_destroy(cmd);
    }
    return rc;
}

/* libmongoc's own log lines go to the service's log. */
static void on_log(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
    (void)arg;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        svc_log_error("mongoc %s: %s", domain, message);
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        /* FerretDB has no sessions: the client's goodbye to them fails, harmlessly. */
        if (strstr(message, "endSessions") != NULL)
            svc_log_debug("mongoc %s: %s", domain, message);
        else
            svc_log_warn("mongoc %s: %s", domain, message);
        break;
    default:
        break;
    }
}

static void set_default_ms(mongoc_uri_t *uri, const char *option, int32_t ms)
{
    if (mongoc_uri_get_option_as_int32(uri, option, 0) == 0)
        mongoc_uri_set_option_as_int32(uri, option, ms);
}

int msg_mongo_open(const struct msg_mongo_opts *o, struct msg_mongo **out)
{
    struct msg_mongo *m;
    mongoc_client_t *c;
    bson_error_t err;
    const char *db;
    int timeout = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    int rc;

    *out = NULL;
    /* Once per process: libmongoc cannot be initialised again after mongoc_cleanup(), so the
     * process never calls it (the OS reclaims what it holds at exit). */
    mongoc_init();
    mongoc_log_set_handler(on_log, NULL);
    m = svc_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->uri = mongoc_uri_new_with_error(o->uri, &err);
    if (m->uri == NULL) {
        /* The driver's message quotes no part of the URI, so no password is logged. */
        svc_log_error("MONGODB_URI not valid: %s", err.message);
        msg_mongo_close(m);
        return SVC_EINVAL;
    }
    db = mongoc_uri_get_database(m->uri);
    m->db = svc_strdup(db != NULL && db[0] != '\0' ? db : "messages");
    /* A request fails fast with 503 when the database is away rather than hanging. */
    set_default_ms(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout);
    set_default_ms(m->uri, MONGOC_URI_CONNECTTIMEOUTMS, timeout);
    set_default_ms(m->uri, MONGOC_URI_SOCKETTIMEOUTMS, 5 * timeout);
    m->pool = mongoc_client_pool_new_with_error(m->uri, &err);
    if (m->pool == NULL) {
        svc_log_error("mongodb client pool not created: %s", err.message);
        msg_mongo_close(m);
        return SVC_EINVAL;
    }
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(m->pool, "message-svc");
    mongoc_client_pool_max_size(m->pool, (uint32_t)(o->pool_size > 0 ? o->pool_size : 8));

    c = mongoc_client_pool_pop(m->pool);
    rc = ping(m, c);
    if (rc == 0)
        rc = create_indexes(m, c);
    mongoc_client_pool_push(m->pool, c);
    if (rc != 0) {
        svc_log_error("mongodb database '%s' not ready: %s", m->db, svc_err_title(rc));
        msg_mongo_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void msg_mongo_close(struct msg_mongo *m)
{
    if (m == NULL)
        return;
    if (m->pool != NULL)
        mongoc_client_pool_destroy(m->pool);
    if (m->uri != NULL)
        mongoc_uri_destroy(m->uri);
    pthread_mutex_destroy(&m->mu);
    free(m->db);
    free(m);
}

/* ---- hooks --------------------------------------------------------------------------------- */

int msg_store_init(void *svc)
{
    struct msg_svc *s = svc;
    struct msg_mongo_opts o = {
        .uri = s->cfg.mongodb_uri,
        .pool_size = s->cfg.mongodb_pool,
    };
    int rc = msg_mongo_open(&o, &s->mongo);

    if (rc != 0)
        return rc;
    msg_mongo_store(s->mongo, &s->app.store);
    return 0;
}

void msg_store_fini(void *svc)
{
    struct msg_svc *s = svc;

    msg_mongo_close(s->mongo);
    s->mongo = NULL;
    memset(&s->app.store, 0, sizeof(s->app.store));
}

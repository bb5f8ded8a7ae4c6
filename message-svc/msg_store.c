/*
 * msg_store.c: message-svc's MongoDB store (FerretDB locally), the only file that includes
 * libmongoc.
 *
 * Collections in the URI's database:
 *   messages  {_id: message id, recipient, sender (user id or "system"), sender_name (null once
 *             the sender is deleted), subject, body, created_at (date), read (bool), read_at
 *             (date or null), source_event_id (or null)}
 *   users     {_id: user id, name (null once deleted), deleted (bool), version}
 *   inboxes   {_id: user id, m: {<message id>: {t: created_at, r: read}}}: the user's inbox as
 *             an index document
 *   sent      {_id: user id, m: {<message id>: {t: created_at, r: false}}}: what the user sent,
 *             for renames and the deletion of the user
 *   dedup     {_id: Idempotency-Key of a sender, message_id, created_at}
 *   meta      {_id: "layout", version}: the layout of the data (migrations/002); {_id:
 *             "migration_lock", ...} while a replica migrates (svc/mongo.h)
 *   schema_migrations  migrations/ applied, by svc_mongo_migrate() (svc/mongo.h)
 *
 * Every read and every write is addressed by _id alone, because that is the only filter
 * FerretDB 1.24 (SQLite) looks up by index (internal/backends/sqlite/collection.go pushes down
 * `{_id: <string>}` and nothing else): a filter on any other member scans the collection and
 * decodes every document, and a secondary index does not change that. So the inbox is not a
 * query on messages but an index document per user, cut into pages here; renames and deletions
 * walk the user's index documents and write each message by _id in one bulk write; welcome
 * messages take their event's id, so a replay is a duplicate _id. The one scan left is the
 * retention sweep, once per SWEEP_INTERVAL. On MongoDB the same layout costs the same.
 *
 * Only what both FerretDB 1.24 and MongoDB 7 do is used: no transactions, no TTL or partial
 * indexes, no $lookup. So every function is a sequence of single-document writes, each
 * idempotent, whose order makes a crash between two of them harmless: the event (or the
 * request with its Idempotency-Key) comes again and the sequence finishes, and readers pass
 * over an index entry whose message is gone. Versions make the consumer safe against
 * out-of-order delivery: the read model is changed only when the event's version is newer, and
 * the messages then follow the read model's state, not the event's.
 *
 * Every filter and update is built with BCON from typed values: a client string is only ever
 * a UTF-8 value, never a key, so "$gt", "$where" or "a.b" are stored and matched verbatim. The
 * only keys built from data are index entries' "m.<message id>", and message ids are UUIDs of
 * this store's own making (checked before use).
 *
 * Driver errors are translated by fail() (svc_mongo_fail, svc/mongo.h), once, and logged once
 * with their context; only SVC_E* and MSG_E* codes leave this file: a duplicate key (E_DUP)
 * becomes a no-op or a replay.
 */
#include "msg_svc.h"

#include "svc/alloc.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/idem.h"
#include "svc/log.h"
#include "svc/migrate.h"
#include "svc/mongo.h"
#include "svc/pool.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MESSAGES "messages"
#define USERS    "users"
#define INBOXES  "inboxes"
#define SENT     "sent"
#define DEDUP    "dedup"
#define META     "meta"
/* The layout this code reads and writes (see above); 1 was a messages collection queried by
 * recipient and sender, without index documents. */
#define LAYOUT 2
/* Mutexes serialising this replica's updates of one index document (stripe()). */
#define STRIPES 64
/* The display name of the platform on system messages. */
#define SYSTEM_NAME "polyglot"
/* A duplicate key: never leaves this file (callers turn it into a no-op or a replay). */
#define E_DUP SVC_MONGO_DUP

struct msg_mongo {
    struct svc_mongo *mongo; /* the clients, lent with a deadline (svc/mongo.h) */
    struct svc_dep *dep;     /* "mongodb", for the logs and /readyz; the clients' */
    const char *db;          /* the clients' */
    pthread_mutex_t inbox_locks[STRIPES], sent_locks[STRIPES];
};

/* A user of the read model, for the store's own use. */
struct user_row {
    bool found, deleted;
    bool has_name;
    char name[512];
    int64_t version;
};

/* ---- errors -------------------------------------------------------------------------------- */

/* The one translation of a driver error, logged with WHAT failed (svc/mongo.h). */
static int fail(struct msg_mongo *m, const bson_error_t *e, const char *what)
{
    return svc_mongo_fail(m->dep, e, what);
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

static void row_message(const bson_t *doc, struct svc_arena *a, struct msg_message *out)
{
    memset(out, 0, sizeof(*out));
    doc_id(doc, "_id", out->id);
    doc_id(doc, "recipient", out->recipient);
    out->sender = doc_str(doc, "sender", a);
    out->sender_name = doc_str(doc, "sender_name", a);
    out->subject = doc_str(doc, "subject", a);
    out->body = doc_str(doc, "body", a);
    out->created_at_ms = svc_mongo_doc_ms(doc, "created_at");
    out->read_at_ms = svc_mongo_doc_ms(doc, "read_at");
    out->source_event_id = doc_str(doc, "source_event_id", a);
    if (out->sender == NULL)
        out->sender = "";
    if (out->subject == NULL)
        out->subject = "";
    if (out->body == NULL)
        out->body = "";
}

/* Finds the document of NAME whose _id is ID into *OUT (a copy the caller destroys): the only
 * lookup this store makes (see the top of the file). 0 (with *OUT NULL when none), or an
 * SVC_E*. */
static int find_one(struct msg_mongo *m, mongoc_client_t *c, const char *name, const char *id,
                    const char *what, bson_t **out)
{
    return svc_mongo_find_id(c, m->db, name, id, m->dep, what, out);
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
        svc_dep_up(m->dep);
    mongoc_collection_destroy(co);
    return rc;
}

/* Applies UPD to the document of NAME whose _id is ID, with OPTS (may be NULL). */
static int update(struct msg_mongo *m, mongoc_client_t *c, const char *name, const char *id,
                  const bson_t *upd, const bson_t *opts, const char *what)
{
    mongoc_collection_t *co = coll(m, c, name);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_error_t err;
    int rc = 0;

    if (!mongoc_collection_update_one(co, filter, upd, opts, NULL, &err))
        rc = fail(m, &err, what);
    else
        svc_dep_up(m->dep);
    bson_destroy(filter);
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
        svc_dep_up(m->dep);
    if (deleted != NULL)
        *deleted = rc == 0 ? reply_count(&reply, "deletedCount") : 0;
    bson_destroy(&reply);
    mongoc_collection_destroy(co);
    return rc;
}

static int find_user(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                     struct user_row *u)
{
    bson_t *doc = NULL;
    bson_iter_t it;
    int rc = find_one(m, c, USERS, user_id, "user lookup", &doc);

    memset(u, 0, sizeof(*u));
    if (rc == 0 && doc != NULL) {
        u->found = true;
        u->deleted = bson_iter_init_find(&it, doc, "deleted") && BSON_ITER_HOLDS_BOOL(&it) &&
                     bson_iter_bool(&it);
        if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
            u->has_name = true;
            snprintf(u->name, sizeof(u->name), "%s", bson_iter_utf8(&it, NULL));
        }
        u->version = svc_mongo_doc_ms(doc, "version");
    }
    if (doc != NULL)
        bson_destroy(doc);
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

/* The message _id (a UUID, from this store) as stored; the row has no "read" member of its own,
 * read_at says it. */
static int get_message(struct msg_mongo *m, mongoc_client_t *c, struct svc_arena *a, const char *id,
                       struct msg_message *out)
{
    bson_t *doc = NULL;
    int rc = find_one(m, c, MESSAGES, id, "message lookup", &doc);

    if (rc == 0 && doc == NULL)
        rc = SVC_ENOTFOUND;
    if (rc == 0)
        row_message(doc, a, out);
    if (doc != NULL)
        bson_destroy(doc);
    return rc;
}

/* ---- the index documents ------------------------------------------------------------------- */

/*
 * FerretDB 1.24 applies an update as a read, a change in Go and a write, with nothing held in
 * between (internal/handler/msg_update.go), so two concurrent updates of one document can lose
 * one. The index documents are the only documents this service updates concurrently, so it
 * serialises its own updates of each one: a mutex per index document, striped by a hash of the
 * owner's id. That covers one replica; MongoDB applies an update atomically, so replicas on
 * MongoDB need nothing more. Lock order: a sent stripe before an inbox stripe, never the other
 * way round (mg_send holds its sender's while it files the message in the recipient's inbox).
 */
static pthread_mutex_t *stripe(pthread_mutex_t *locks, const char *owner)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)owner; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return &locks[h % STRIPES];
}

/* An index entry's key is "m.<message id>": ids are this store's own UUIDs (or event ids it
 * checked to be UUIDs), so the path has no '.' or '$' of a client's. */
static bool entry_path(const char *mid, char out[2 + MSG_ID_LEN + 1])
{
    if (!svc_uuid_valid(mid))
        return false;
    snprintf(out, 2 + MSG_ID_LEN + 1, "m.%s", mid);
    return true;
}

/* One entry of an index document. */
struct entry {
    char id[MSG_ID_LEN + 1];
    int64_t t; /* the message's created_at */
    bool read; /* inboxes: whether it is read */
};

/* Reads OWNER's index document of NAME (inboxes or sent) into *OUT (malloc'd, *N entries; the
 * caller frees it). None is no entries. */
static int index_read(struct msg_mongo *m, mongoc_client_t *c, const char *name, const char *owner,
                      struct entry **out, size_t *n)
{
    bson_t *doc = NULL;
    bson_iter_t it, sub, f;
    size_t cap = 0;
    int rc = find_one(m, c, name, owner, "index lookup", &doc);

    *out = NULL;
    *n = 0;
    if (rc == 0 && doc != NULL && bson_iter_init_find(&it, doc, "m") &&
        BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            struct entry *e;

            if (!BSON_ITER_HOLDS_DOCUMENT(&sub) || strlen(bson_iter_key(&sub)) != MSG_ID_LEN)
                continue;
            if (*n == cap) {
                cap = cap != 0 ? 2 * cap : 64;
                *out = svc_realloc(*out, cap * sizeof(**out));
            }
            e = &(*out)[(*n)++];
            memset(e, 0, sizeof(*e));
            memcpy(e->id, bson_iter_key(&sub), MSG_ID_LEN);
            bson_iter_recurse(&sub, &f);
            while (bson_iter_next(&f)) {
                if (strcmp(bson_iter_key(&f), "t") == 0 && BSON_ITER_HOLDS_DATE_TIME(&f))
                    e->t = bson_iter_date_time(&f);
                else if (strcmp(bson_iter_key(&f), "r") == 0 && BSON_ITER_HOLDS_BOOL(&f))
                    e->read = bson_iter_bool(&f);
            }
        }
    }
    if (doc != NULL)
        bson_destroy(doc);
    return rc;
}

/* Files message MID (created at T, READ or not) in OWNER's index document of NAME, creating the
 * document when there is none. The caller holds OWNER's stripe. */
static int index_put(struct msg_mongo *m, mongoc_client_t *c, const char *name, const char *owner,
                     const char *mid, int64_t t, bool read)
{
    char path[2 + MSG_ID_LEN + 1];
    bson_t *upd, *opts;
    int rc;

    if (!entry_path(mid, path)) {
        svc_log_error("message id '%.64s' is not a UUID: not filed", mid);
        return SVC_EINTERNAL;
    }
    upd = BCON_NEW("$set", "{", path, "{", "t", BCON_DATE_TIME(t), "r", BCON_BOOL(read), "}", "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    rc = update(m, c, name, owner, upd, opts, "index update");
    bson_destroy(opts);
    bson_destroy(upd);
    return rc;
}

/* Removes the N entries IDS from OWNER's index document of NAME. The caller holds OWNER's
 * stripe. */
static int index_drop(struct msg_mongo *m, mongoc_client_t *c, const char *name, const char *owner,
                      const char (*ids)[MSG_ID_LEN + 1], size_t n)
{
    char path[2 + MSG_ID_LEN + 1];
    bson_t upd, unset;
    int rc;

    if (n == 0)
        return 0;
    bson_init(&upd);
    bson_append_document_begin(&upd, "$unset", -1, &unset);
    for (size_t i = 0; i < n; i++)
        if (entry_path(ids[i], path))
            bson_append_utf8(&unset, path, -1, "", 0);
    bson_append_document_end(&upd, &unset);
    rc = update(m, c, name, owner, &upd, NULL, "index update");
    bson_destroy(&upd);
    return rc;
}

/* Deletes OWNER's index document of NAME. */
static int index_delete(struct msg_mongo *m, mongoc_client_t *c, const char *name,
                        const char *owner)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(owner));
    int rc = delete_many(m, c, name, filter, "index delete", NULL);

    bson_destroy(filter);
    return rc;
}

/*
 * One bulk write of N single-document operations on messages, each addressed by _id alone (the
 * only filter FerretDB 1.24 looks up by index): UPD an update of each, or NULL to delete each.
 */
static int messages_by_id(struct msg_mongo *m, mongoc_client_t *c,
                          const char (*ids)[MSG_ID_LEN + 1], size_t n, const bson_t *upd,
                          const char *what)
{
    mongoc_collection_t *co;
    mongoc_bulk_operation_t *bulk;
    bson_t *opts, reply;
    bson_error_t err;
    int rc = 0;

    if (n == 0)
        return 0;
    co = coll(m, c, MESSAGES);
    opts = BCON_NEW("ordered", BCON_BOOL(false));
    bulk = mongoc_collection_create_bulk_operation_with_opts(co, opts);
    for (size_t i = 0; i < n && rc == 0; i++) {
        bson_t *filter = BCON_NEW("_id", BCON_UTF8(ids[i]));
        bool ok = upd != NULL
                      ? mongoc_bulk_operation_update_one_with_opts(bulk, filter, upd, NULL, &err)
                      : mongoc_bulk_operation_remove_one_with_opts(bulk, filter, NULL, &err);

        if (!ok)
            rc = fail(m, &err, what);
        bson_destroy(filter);
    }
    if (rc == 0) {
        if (mongoc_bulk_operation_execute(bulk, &reply, &err) == 0)
            rc = fail(m, &err, what);
        else
            svc_dep_up(m->dep);
        bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(opts);
    mongoc_collection_destroy(co);
    return rc;
}

/* The ids of ENTRIES, for messages_by_id() and index_drop() (malloc'd). */
static char (*entry_ids(const struct entry *entries, size_t n))[MSG_ID_LEN + 1]
{
    char(*ids)[MSG_ID_LEN + 1] = svc_malloc((n != 0 ? n : 1) * sizeof(*ids));

    for (size_t i = 0; i < n; i++)
        memcpy(ids[i], entries[i].id, MSG_ID_LEN + 1);
    return ids;
}

/* ---- clients ----------------------------------------------------------------------------- */

/* Borrows a client for one call of the API into *H and *C: SVC_EUNAVAILABLE (503) when none is
 * free within the timeout, or when the database could not be reached a moment ago. */
static int borrow(struct msg_mongo *m, struct svc_pool_conn **h, mongoc_client_t **c)
{
    return svc_mongo_acquire(m->mongo, h, c);
}

/* Gives H back after a call that ended with RC: a client that found the database unreachable
 * is swapped for another, which is pinged before it is lent. */
static void put(struct msg_mongo *m, struct svc_pool_conn *h, int rc)
{
    svc_mongo_release(m->mongo, h, rc);
}

/* ---- the API ------------------------------------------------------------------------------- */

/* Newest first; equal times by id, descending, as the keyset says. */
static int entry_newest_first(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;

    if (a->t != b->t)
        return a->t > b->t ? -1 : 1;
    return -strcmp(a->id, b->id);
}

/*
 * A page is cut from the recipient's index document (one lookup by _id), sorted here, then
 * each message on it is read by _id: the inbox never asks the engine to filter or sort. An entry
 * whose message is gone (deleted between the two writes that remove it) is passed over; so is
 * one whose read state moved since the entry was read.
 */
static int mg_inbox(void *ctx, struct svc_arena *a, const char *user_id, int unread, int limit,
                    int64_t after_created_at_ms, const char *after_id, struct msg_page *out)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    struct entry *es = NULL;
    struct user_row u;
    size_t n = 0, cap;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = borrow(m, &h, &c)) != 0)
        return rc;
    if (limit < 1)
        limit = 1;
    cap = (size_t)limit;
    rc = active_user(m, c, user_id, &u);
    if (rc == 0)
        rc = index_read(m, c, INBOXES, user_id, &es, &n);
    if (rc != 0)
        goto out;
    if (n > 1)
        qsort(es, n, sizeof(*es), entry_newest_first);
    out->items = svc_arena_calloc(a, cap * sizeof(*out->items));
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct entry *e = &es[i];
        struct msg_message msg;

        /* The keyset: strictly after (older than) the last item seen, ties broken by id. */
        if (after_id != NULL && (e->t > after_created_at_ms ||
                                 (e->t == after_created_at_ms && strcmp(e->id, after_id) >= 0)))
            continue;
        if (unread >= 0 && e->read != (unread == 0))
            continue;
        rc = get_message(m, c, a, e->id, &msg);
        if (rc == SVC_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0 || (unread >= 0 && (msg.read_at_ms != 0) != (unread == 0)))
            continue;
        if (out->n == cap) {
            out->more = true; /* one more exists: the page is full */
            break;
        }
        out->items[out->n++] = msg;
    }
    if (rc != 0) {
        out->n = 0;
        out->more = false;
    } else if (out->more) {
        out->next_created_at_ms = out->items[out->n - 1].created_at_ms;
        memcpy(out->next_id, out->items[out->n - 1].id, sizeof(out->next_id));
    }
out:
    free(es);
    put(m, h, rc);
    return rc;
}

static int mg_get(void *ctx, struct svc_arena *a, const char *id, struct msg_message *out)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    rc = get_message(m, c, a, id, out);
    put(m, h, rc);
    return rc;
}

/*
 * The message first, then its inbox entry, both under the recipient's stripe: the check of the
 * state and the write are one step for this replica, so read_at keeps the time of the first
 * reading. Only a change of state is written.
 */
static int mg_set_read(void *ctx, struct svc_arena *a, const char *id, bool read,
                       struct msg_message *out)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    pthread_mutex_t *mu = NULL;
    bson_t *upd = NULL;
    int64_t at = svc_wall_ms();
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    if ((rc = get_message(m, c, a, id, out)) != 0)
        goto out;
    mu = stripe(m->inbox_locks, out->recipient);
    pthread_mutex_lock(mu);
    /* Again under the stripe: another request may have changed it meanwhile. */
    if ((rc = get_message(m, c, a, id, out)) != 0 || (out->read_at_ms != 0) == read)
        goto out;
    upd = read ? BCON_NEW("$set", "{", "read", BCON_BOOL(true), "read_at", BCON_DATE_TIME(at), "}")
               : BCON_NEW("$set", "{", "read", BCON_BOOL(false), "read_at", BCON_NULL, "}");
    rc = update(m, c, MESSAGES, id, upd, NULL, "message read state");
    if (rc == 0)
        rc = index_put(m, c, INBOXES, out->recipient, id, out->created_at_ms, read);
    if (rc == 0)
        out->read_at_ms = read ? at : 0;
out:
    if (mu != NULL)
        pthread_mutex_unlock(mu);
    if (upd != NULL)
        bson_destroy(upd);
    put(m, h, rc);
    return rc;
}

/* The message, then its entries in the recipient's inbox and the sender's sent index: a crash
 * between leaves an entry without a message, which readers pass over. */
static int mg_remove(void *ctx, const char *id)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    struct svc_arena *a;
    char ids[1][MSG_ID_LEN + 1];
    struct msg_message msg;
    bson_t *filter;
    pthread_mutex_t *mu;
    int64_t n = 0;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    a = svc_arena_new();
    filter = BCON_NEW("_id", BCON_UTF8(id));
    rc = get_message(m, c, a, id, &msg);
    if (rc == 0)
        rc = delete_many(m, c, MESSAGES, filter, "message delete", &n);
    if (rc == 0 && n == 0)
        rc = SVC_ENOTFOUND;
    if (rc == 0) {
        snprintf(ids[0], sizeof(ids[0]), "%s", id);
        mu = stripe(m->inbox_locks, msg.recipient);
        pthread_mutex_lock(mu);
        rc = index_drop(m, c, INBOXES, msg.recipient, (const char(*)[MSG_ID_LEN + 1]) ids, 1);
        pthread_mutex_unlock(mu);
        if (rc == 0 && strcmp(msg.sender, MSG_SYSTEM) != 0) {
            mu = stripe(m->sent_locks, msg.sender);
            pthread_mutex_lock(mu);
            rc = index_drop(m, c, SENT, msg.sender, (const char(*)[MSG_ID_LEN + 1]) ids, 1);
            pthread_mutex_unlock(mu);
        }
    }
    bson_destroy(filter);
    svc_arena_free(a);
    put(m, h, rc);
    return rc;
}

/* The fingerprint of a message request (svc/idem.h). The message stored under a dedup key or
 * an event id holds every field of the request that made it, so its fingerprint is computed from
 * them rather than stored a second time; absent text is "". */
static void send_fp(const char *to, const char *from, const char *subject, const char *body,
                    char fp[SVC_IDEM_FP_LEN + 1])
{
    const char *fields[5] = {"send", to, from != NULL ? from : "", subject != NULL ? subject : "",
                             body != NULL ? body : ""};

    svc_idem_fingerprint(fp, fields, 5);
}

/*
 * The message's id. A system message caused by an event takes the event's id (a UUID, checked),
 * so a second delivery of the event inserts the same _id and is a duplicate: no lookup on the
 * way. A message with another dedup key (a sender's Idempotency-Key) claims the key in the dedup
 * collection, {_id: key, message_id}; when the key is claimed already, the message keeps the id
 * it was given then.
 */
static int message_id(struct msg_mongo *m, mongoc_client_t *c, const struct msg_new *in,
                      int64_t at_ms, char id[MSG_ID_LEN + 1])
{
    struct svc_uuid uuid;
    bson_t *doc, *found = NULL;
    bson_iter_t it;
    int rc;

    if (in->source_event_id != NULL &&
        svc_uuid_parse(in->source_event_id, strlen(in->source_event_id), &uuid)) {
        svc_uuid_format(&uuid, id);
        return 0;
    }
    svc_uuid_v4_str(id);
    if (in->dedup_key == NULL)
        return 0;
    doc = BCON_NEW("_id", BCON_UTF8(in->dedup_key), "message_id", BCON_UTF8(id), "created_at",
                   BCON_DATE_TIME(at_ms));
    rc = insert(m, c, DEDUP, doc, "idempotency key insert");
    bson_destroy(doc);
    if (rc != E_DUP)
        return rc;
    rc = find_one(m, c, DEDUP, in->dedup_key, "idempotency key lookup", &found);
    if (rc == 0 && found == NULL)
        rc = SVC_EUNAVAILABLE; /* swept meanwhile: the caller tries again */
    if (rc == 0 && (!bson_iter_init_find(&it, found, "message_id") || !BSON_ITER_HOLDS_UTF8(&it) ||
                    !svc_uuid_valid(bson_iter_utf8(&it, NULL)))) {
        svc_log_error("dedup entry '%.80s' holds no message id", in->dedup_key);
        rc = SVC_EINTERNAL;
    }
    if (rc == 0)
        snprintf(id, MSG_ID_LEN + 1, "%s", bson_iter_utf8(&it, NULL));
    if (found != NULL)
        bson_destroy(found);
    return rc;
}

/*
 * Inserts one message and files it in its recipient's inbox (and its sender's sent index). A
 * repeated dedup key or event returns the stored message with *REPLAYED, or SVC_EIDEMPOTENCY
 * when it is not the same message. Every step is idempotent, and each is taken again on a
 * replay, so a crash between two of them is finished by the retry: the message with its own
 * _id, then the index entries with the stored message's time and read state. A message whose
 * key outlived it (deleted by its recipient) is written again under its old id.
 * The caller holds the sender's sent stripe (for a user's message).
 */
static int put_message(struct msg_mongo *m, mongoc_client_t *c, struct svc_arena *a,
                       const struct msg_new *in, const char *sender_name, int64_t at_ms,
                       struct msg_message *out, bool *replayed)
{
    struct svc_arena *own = a != NULL ? NULL : svc_arena_new();
    char id[MSG_ID_LEN + 1], was[SVC_IDEM_FP_LEN + 1], now[SVC_IDEM_FP_LEN + 1];
    struct msg_message stored;
    pthread_mutex_t *mu;
    bool fresh;
    bson_t *doc;
    int rc;

    if (own != NULL)
        a = own;
    if (replayed != NULL)
        *replayed = false;
    if ((rc = message_id(m, c, in, at_ms, id)) != 0)
        goto out;
    doc = BCON_NEW("_id", BCON_UTF8(id), "recipient", BCON_UTF8(in->to_user_id), "sender",
                   BCON_UTF8(in->from_user_id), "subject", BCON_UTF8(in->subject), "body",
                   BCON_UTF8(in->body), "created_at", BCON_DATE_TIME(at_ms), "read",
                   BCON_BOOL(false), "read_at", BCON_NULL);
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
    if (rc != 0 && rc != E_DUP)
        goto out;
    fresh = rc == 0;
    if (!fresh && replayed != NULL)
        *replayed = true;

    /* The index entries follow the stored message, under the recipient's stripe so that a
     * concurrent change of its read state is not undone. A message just inserted is what was
     * given, unread (nobody has its id yet); one stored before is read back. */
    mu = stripe(m->inbox_locks, in->to_user_id);
    pthread_mutex_lock(mu);
    rc = 0;
    if (fresh) {
        memset(&stored, 0, sizeof(stored));
        memcpy(stored.id, id, sizeof(stored.id));
        snprintf(stored.recipient, sizeof(stored.recipient), "%s", in->to_user_id);
        stored.sender = svc_arena_strdup(a, in->from_user_id);
        stored.sender_name = sender_name != NULL ? svc_arena_strdup(a, sender_name) : NULL;
        stored.subject = svc_arena_strdup(a, in->subject);
        stored.body = svc_arena_strdup(a, in->body);
        stored.created_at_ms = at_ms;
        stored.source_event_id =
            in->source_event_id != NULL ? svc_arena_strdup(a, in->source_event_id) : NULL;
    } else {
        rc = get_message(m, c, a, id, &stored);
    }
    if (rc == 0) {
        send_fp(stored.recipient, stored.sender, stored.subject, stored.body, was);
        send_fp(in->to_user_id, in->from_user_id, in->subject, in->body, now);
        if (!svc_idem_same(was, now))
            rc = SVC_EIDEMPOTENCY;
    }
    if (rc == 0)
        rc = index_put(m, c, INBOXES, stored.recipient, id, stored.created_at_ms,
                       stored.read_at_ms != 0);
    pthread_mutex_unlock(mu);
    if (rc == SVC_ENOTFOUND)
        rc = SVC_EUNAVAILABLE; /* deleted meanwhile: the caller tries again */
    if (rc == 0 && strcmp(in->from_user_id, MSG_SYSTEM) != 0)
        rc = index_put(m, c, SENT, in->from_user_id, id, stored.created_at_ms, false);
    if (rc == 0 && out != NULL)
        *out = stored;
out:
    if (own != NULL)
        svc_arena_free(own);
    return rc;
}

static int mg_send(void *ctx, struct svc_arena *a, const struct msg_new *in,
                   struct msg_message *out, bool *replayed)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    pthread_mutex_t *mu = NULL;
    struct user_row from, to;
    const char *sender_name = SYSTEM_NAME;
    int rc;

    *replayed = false;
    if ((rc = borrow(m, &h, &c)) != 0)
        return rc;
    if (strcmp(in->from_user_id, MSG_SYSTEM) != 0) {
        /* Held until the message is in the sender's sent index, so a rename of the sender
         * (sync_sender_name) either sees the message or happened before its name was read. */
        mu = stripe(m->sent_locks, in->from_user_id);
        pthread_mutex_lock(mu);
        rc = active_user(m, c, in->from_user_id, &from);
        sender_name = from.has_name ? from.name : NULL;
    }
    if (rc == 0)
        rc = active_user(m, c, in->to_user_id, &to);
    if (rc == 0)
        rc = put_message(m, c, a, in, sender_name, svc_wall_ms(), out, replayed);
    if (mu != NULL)
        pthread_mutex_unlock(mu);
    put(m, h, rc);
    return rc;
}

static int mg_user_get(void *ctx, struct svc_arena *a, const char *user_id, struct msg_user *out)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    struct user_row u;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    rc = find_user(m, c, user_id, &u);
    put(m, h, rc);
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
        rc = update(m, c, USERS, user_id, upd, NULL, "user update");
        *applied = rc == 0;
    }
out:
    bson_destroy(doc);
    bson_destroy(upd);
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

/*
 * The messages USER_ID sent show the read model's name for that user now (null once deleted):
 * each one found through the user's sent index and updated by _id, in one bulk write.
 * Idempotent, and right whatever order the events came in. Holds the user's sent stripe, so a
 * message being sent meanwhile is either in the index already or read the new name.
 */
static int sync_sender_name(struct msg_mongo *m, mongoc_client_t *c, const char *user_id,
                            const struct user_row *u)
{
    pthread_mutex_t *mu = stripe(m->sent_locks, user_id);
    bson_t *upd = u->has_name && !u->deleted
                      ? BCON_NEW("$set", "{", "sender_name", BCON_UTF8(u->name), "}")
                      : BCON_NEW("$set", "{", "sender_name", BCON_NULL, "}");
    struct entry *es = NULL;
    char(*ids)[MSG_ID_LEN + 1] = NULL;
    size_t n = 0;
    int rc;

    pthread_mutex_lock(mu);
    rc = index_read(m, c, SENT, user_id, &es, &n);
    if (rc == 0 && n > 0) {
        ids = entry_ids(es, n);
        rc =
            messages_by_id(m, c, (const char(*)[MSG_ID_LEN + 1]) ids, n, upd, "sender name update");
    }
    pthread_mutex_unlock(mu);
    free(ids);
    free(es);
    bson_destroy(upd);
    return rc;
}

static int mg_user_registered(void *ctx, const char *event_id, const char *user_id,
                              const char *name, int64_t version, int64_t at_ms)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
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

    if ((rc = borrow(m, &h, &c)) != 0)
        return rc;
    snprintf(subject, sizeof(subject), MSG_WELCOME_SUBJECT_FMT, name);
    rc = user_apply(m, c, user_id, name, false, version, true, &applied);
    if (rc == 0)
        rc = user_after(m, c, user_id, name, false, version, applied, &u);
    /* A user deleted since (a replay after the deletion) gets no inbox again. */
    if (rc == 0 && u.found && !u.deleted)
        rc = put_message(m, c, NULL, &in, SYSTEM_NAME, at_ms, NULL, NULL);
    put(m, h, rc);
    return rc;
}

static int mg_user_updated(void *ctx, const char *user_id, const char *name, int64_t version)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    struct user_row u;
    bool applied;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    rc = user_apply(m, c, user_id, name, false, version, false, &applied);
    if (rc == 0)
        rc = user_after(m, c, user_id, name, false, version, applied, &u);
    if (rc == 0 && u.found && !u.deleted)
        rc = sync_sender_name(m, c, user_id, &u);
    put(m, h, rc);
    return rc;
}

/*
 * The user marked deleted first (so the API answers user-deleted at once), then every message
 * of the inbox deleted by _id, then the inbox's index document, then the name off the messages
 * the user sent. A crash on the way leaves the index document in place, and the redelivered
 * event finds it and finishes.
 */
static int mg_user_deleted(void *ctx, const char *user_id, int64_t version)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    pthread_mutex_t *mu = stripe(m->inbox_locks, user_id);
    struct entry *es = NULL;
    char(*ids)[MSG_ID_LEN + 1] = NULL;
    struct user_row u;
    size_t n = 0;
    bool applied;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    rc = user_apply(m, c, user_id, NULL, true, version, false, &applied);
    if (rc == 0)
        rc = user_after(m, c, user_id, NULL, true, version, applied, &u);
    if (rc == 0 && u.found && u.deleted) {
        pthread_mutex_lock(mu);
        rc = index_read(m, c, INBOXES, user_id, &es, &n);
        if (rc == 0 && n > 0) {
            ids = entry_ids(es, n);
            rc = messages_by_id(m, c, (const char(*)[MSG_ID_LEN + 1]) ids, n, NULL, "inbox delete");
        }
        if (rc == 0)
            rc = index_delete(m, c, INBOXES, user_id);
        pthread_mutex_unlock(mu);
        if (rc == 0)
            rc = sync_sender_name(m, c, user_id, &u);
    }
    free(ids);
    free(es);
    put(m, h, rc);
    return rc;
}

/* Drops the entries older than BEFORE_MS from every index document of NAME (their messages are
 * deleted by the sweep). A document left without entries is deleted. */
static int prune_indexes(struct msg_mongo *m, mongoc_client_t *c, const char *name,
                         pthread_mutex_t *locks, int64_t before_ms)
{
    mongoc_collection_t *co = coll(m, c, name);
    bson_t *filter = bson_new();
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(co, filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    bson_error_t err;
    struct svc_buf owners;
    int rc = 0;

    /* The owners first, the cursor closed, then each document read and changed under its
     * stripe: a cursor's batch may be older than the document. */
    svc_buf_init(&owners, 0);
    while (mongoc_cursor_next(cur, &doc))
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it) &&
            strlen(bson_iter_utf8(&it, NULL)) == MSG_ID_LEN)
            svc_buf_add(&owners, bson_iter_utf8(&it, NULL), MSG_ID_LEN + 1);
    if (mongoc_cursor_error(cur, &err))
        rc = fail(m, &err, "index scan");
    mongoc_cursor_destroy(cur);
    for (size_t off = 0; rc == 0 && off < owners.len; off += MSG_ID_LEN + 1) {
        const char *owner = owners.data + off;
        pthread_mutex_t *mu = stripe(locks, owner);
        struct entry *es = NULL;
        char(*old)[MSG_ID_LEN + 1];
        size_t n = 0, k = 0;

        pthread_mutex_lock(mu);
        rc = index_read(m, c, name, owner, &es, &n);
        old = entry_ids(es, n);
        for (size_t i = 0; i < n; i++)
            if (es[i].t < before_ms)
                memcpy(old[k++], es[i].id, MSG_ID_LEN + 1);
        if (rc == 0 && k > 0 && k == n)
            rc = index_delete(m, c, name, owner);
        else if (rc == 0 && k > 0)
            rc = index_drop(m, c, name, owner, (const char(*)[MSG_ID_LEN + 1]) old, k);
        pthread_mutex_unlock(mu);
        free(old);
        free(es);
    }
    svc_buf_release(&owners);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    return rc;
}

/*
 * Retention: the old messages in one delete (the engine scans for it, once per SWEEP_INTERVAL),
 * then their entries out of the index documents, then idempotency keys as old as that.
 */
static int mg_sweep(void *ctx, int64_t before_ms, int64_t *deleted)
{
    struct msg_mongo *m = ctx;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    bson_t *filter;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    filter = BCON_NEW("created_at", "{", "$lt", BCON_DATE_TIME(before_ms), "}");
    rc = delete_many(m, c, MESSAGES, filter, "retention sweep", deleted);
    if (rc == 0)
        rc = prune_indexes(m, c, INBOXES, m->inbox_locks, before_ms);
    if (rc == 0)
        rc = prune_indexes(m, c, SENT, m->sent_locks, before_ms);
    if (rc == 0)
        rc = delete_many(m, c, DEDUP, filter, "retention sweep of idempotency keys", NULL);
    bson_destroy(filter);
    put(m, h, rc);
    return rc;
}

static bool mg_ready(void *ctx, char *why, size_t cap)
{
    struct msg_mongo *m = ctx;

    return svc_dep_check(m->dep, why, cap);
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
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    mongoc_database_t *db;
    bson_error_t err;
    int rc = borrow(m, &h, &c);

    if (rc != 0)
        return rc;
    db = mongoc_client_get_database(c, m->db);
    if (!mongoc_database_drop(db, &err))
        rc = fail(m, &err, "drop database");
    mongoc_database_destroy(db);
    put(m, h, rc);
    return rc;
}

struct svc_dep *msg_mongo_dep(struct msg_mongo *m)
{
    return m->dep;
}

/* ---- migrations ---------------------------------------------------------------------------- */

/* migrations/NNN_name.json, compiled in by cmake/Service.cmake:
 * static const struct svc_migration migrations[] = {..., {0}}; */
#include "msg_migrations.inc"

/*
 * Layout 1 to 2 (migrations/002_index_documents.json): every stored message filed in its
 * recipient's inbox and its sender's sent index, idempotent, so an upgrade cut short is simply
 * run again. A database that records layout 2 already (in meta, written by the binaries before
 * migrations existed) is left as it is; layout 2 is recorded there too, so such a binary, run
 * again, does not redo the work.
 */
static int builtin_index_documents(struct msg_mongo *m, mongoc_client_t *c)
{
    mongoc_collection_t *co;
    mongoc_cursor_t *cur;
    bson_t *filter, *opts, *upd, *doc = NULL;
    const bson_t *row;
    bson_error_t err;
    int64_t n = 0;
    int rc = find_one(m, c, META, "layout", "layout lookup", &doc);

    if (doc != NULL && svc_mongo_doc_ms(doc, "version") >= LAYOUT)
        rc = 1;
    if (doc != NULL)
        bson_destroy(doc);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    co = coll(m, c, MESSAGES);
    filter = bson_new();
    opts = BCON_NEW("projection", "{", "recipient", BCON_INT32(1), "sender", BCON_INT32(1),
                    "created_at", BCON_INT32(1), "read_at", BCON_INT32(1), "}");
    cur = mongoc_collection_find_with_opts(co, filter, opts, NULL);
    while (rc == 0 && mongoc_cursor_next(cur, &row)) {
        struct svc_arena *a = svc_arena_new();
        struct msg_message msg;

        row_message(row, a, &msg);
        if (svc_uuid_valid(msg.id) && svc_uuid_valid(msg.recipient)) {
            rc = index_put(m, c, INBOXES, msg.recipient, msg.id, msg.created_at_ms,
                           msg.read_at_ms != 0);
            if (rc == 0 && svc_uuid_valid(msg.sender))
                rc = index_put(m, c, SENT, msg.sender, msg.id, msg.created_at_ms, false);
            if (++n % 1000 == 0)
                svc_log_info("layout upgrade: %" PRId64 " messages filed", n);
        }
        svc_arena_free(a);
    }
    if (rc == 0 && mongoc_cursor_error(cur, &err))
        rc = fail(m, &err, "layout upgrade scan");
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    if (rc != 0)
        return rc;
    upd = BCON_NEW("$set", "{", "version", BCON_INT64(LAYOUT), "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    rc = update(m, c, META, "layout", upd, opts, "layout record");
    if (rc == 0 && n > 0)
        svc_log_info("layout upgrade: %" PRId64 " messages filed in index documents", n);
    bson_destroy(opts);
    bson_destroy(upd);
    return rc;
}

/* Hands builtin_index_documents to the engine (ARG is the store). */
static int index_documents(void *arg, mongoc_client_t *c)
{
    return builtin_index_documents(arg, c);
}

/* The operations migrations/ may name with "builtin": what cannot be said as data. */
static const struct svc_mongo_builtin builtins[] = {
    {"index_documents", index_documents},
    {NULL, NULL},
};

int msg_mongo_new(const struct msg_mongo_opts *o, struct msg_mongo **out)
{
    const struct svc_mongo_opts mo = {.uri = o->uri,
                                      .db = "messages",
                                      .app = "message-svc",
                                      .timeout_ms = o->timeout_ms,
                                      .pool_size = o->pool_size};
    struct msg_mongo *m;
    struct svc_pool_conn *h;
    mongoc_client_t *c;
    int rc;

    *out = NULL;
    m = svc_calloc(1, sizeof(*m));
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&m->inbox_locks[i], NULL);
        pthread_mutex_init(&m->sent_locks[i], NULL);
    }
    if ((rc = svc_mongo_new(&mo, &m->mongo)) != 0) {
        msg_mongo_free(m);
        return rc;
    }
    m->dep = svc_mongo_dep(m->mongo);
    m->db = svc_mongo_db(m->mongo);

    /* The first client is pinged as it is lent. */
    rc = borrow(m, &h, &c);
    if (rc == 0) {
        rc = svc_mongo_migrate(c, m->db, m->dep, migrations, builtins, m);
        put(m, h, rc);
    }
    if (rc != 0) {
        svc_log_error("mongodb database '%s' not ready: %s", m->db, svc_err_title(rc));
        msg_mongo_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void msg_mongo_free(struct msg_mongo *m)
{
    if (m == NULL)
        return;
    svc_mongo_free(m->mongo);
    for (size_t i = 0; i < STRIPES; i++) {
        pthread_mutex_destroy(&m->inbox_locks[i]);
        pthread_mutex_destroy(&m->sent_locks[i]);
    }
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
    int rc = msg_mongo_new(&o, &s->mongo);

    if (rc != 0)
        return rc;
    msg_mongo_store(s->mongo, &s->app.store);
    return 0;
}

void msg_store_fini(void *svc)
{
    struct msg_svc *s = svc;

    msg_mongo_free(s->mongo);
    s->mongo = NULL;
    memset(&s->app.store, 0, sizeof(s->app.store));
}

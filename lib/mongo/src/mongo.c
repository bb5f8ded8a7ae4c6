/*
 * mongo.c: libmongoc's set-up, its clients and the translation of its errors (svc/mongo.h), for
 * every MongoDB-owning store.
 */
#include "svc/mongo.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool svc_mongo_unavailable(const bson_error_t *e)
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

bool svc_mongo_dup(const bson_error_t *e)
{
    if (e->domain != MONGOC_ERROR_SERVER && e->domain != MONGOC_ERROR_WRITE_CONCERN &&
        e->domain != MONGOC_ERROR_COLLECTION && e->domain != MONGOC_ERROR_COMMAND &&
        e->domain != MONGOC_ERROR_QUERY)
        return false;
    return e->code == 11000 || e->code == 11001 ||
           (e->code == 1 && strstr(e->message, "UNIQUE constraint failed") != NULL);
}

int svc_mongo_fail(struct svc_dep *dep, const bson_error_t *e, const char *what)
{
    if (svc_mongo_dup(e))
        return SVC_MONGO_DUP;
    if (!svc_mongo_unavailable(e)) {
        svc_log_error("mongodb %s failed: %s (domain %u, code %u)", what, e->message, e->domain,
                      e->code);
        return SVC_EINTERNAL;
    }
    svc_dep_down(dep, what, "%s", e->message);
    return SVC_EUNAVAILABLE;
}

struct svc_mongo {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *clients; /* libmongoc's, which waits for a free client without bound */
    struct svc_pool *pool;         /* lends those clients, with a deadline */
    struct svc_dep *dep;           /* "mongodb", for the logs and /readyz */
    char *db;
};

/* The pool's ping callback (CTX the clients, CONN a client): svc_mongo_fail() tells the
 * dependency. NOLINTNEXTLINE(readability-non-const-parameter): svc_pool_ops' signature */
static int ping(void *ctx, void *conn, char *why, size_t cap)
{
    struct svc_mongo *m = ctx;
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t err;
    int rc = 0;

    (void)why;
    (void)cap;
    if (!mongoc_client_command_simple(conn, m->db, cmd, NULL, NULL, &err))
        rc = svc_mongo_fail(m->dep, &err, "ping");
    else
        svc_dep_up(m->dep);
    bson_destroy(cmd);
    return rc;
}

/* The pool's callbacks on libmongoc's clients. libmongoc connects in the background, so a
 * client is pinged before it is lent: an unreachable database then makes the pool back off and
 * answer at once. Failures are told to the dependency by svc_mongo_fail(). */
static int client_open(void *ctx, void **conn, char *why, size_t cap)
{
    struct svc_mongo *m = ctx;
    /* Never NULL while the pool lends no more clients than libmongoc's holds (the same size),
     * and never a wait without bound, whatever waitQueueTimeoutMS says. */
    mongoc_client_t *c = mongoc_client_pool_try_pop(m->clients);
    int rc;

    if (c == NULL) {
        snprintf(why, cap, "no free client in the driver's pool");
        return SVC_EUNAVAILABLE;
    }
    if ((rc = ping(m, c, why, cap)) != 0) {
        mongoc_client_pool_push(m->clients, c);
        return rc;
    }
    *conn = c;
    return 0;
}

static void client_close(void *ctx, void *conn)
{
    struct svc_mongo *m = ctx;

    mongoc_client_pool_push(m->clients, conn);
}

static const struct svc_pool_ops client_ops = {client_open, client_close, ping};

static void set_default_ms(mongoc_uri_t *uri, const char *option, int32_t ms)
{
    if (mongoc_uri_get_option_as_int32(uri, option, 0) == 0)
        mongoc_uri_set_option_as_int32(uri, option, ms);
}

int svc_mongo_new(const struct svc_mongo_opts *o, struct svc_mongo **out)
{
    struct svc_mongo *m;
    bson_error_t err;
    const char *db;
    int timeout = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    int size = o->pool_size > 0 ? o->pool_size : 8;

    *out = NULL;
    mongoc_init();
    mongoc_log_set_handler(on_log, NULL);
    m = svc_calloc(1, sizeof(*m));
    m->dep = svc_dep_new("mongodb", 0, NULL);
    m->uri = mongoc_uri_new_with_error(o->uri, &err);
    if (m->uri == NULL) {
        /* The driver's message quotes no part of the URI, so no password is logged. */
        svc_log_error("MONGODB_URI not valid: %s", err.message);
        svc_mongo_free(m);
        return SVC_EINVAL;
    }
    db = mongoc_uri_get_database(m->uri);
    m->db = svc_strdup(db != NULL && db[0] != '\0' ? db : o->db);
    set_default_ms(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout);
    set_default_ms(m->uri, MONGOC_URI_CONNECTTIMEOUTMS, timeout);
    set_default_ms(m->uri, MONGOC_URI_SOCKETTIMEOUTMS, 5 * timeout);
    m->clients = mongoc_client_pool_new_with_error(m->uri, &err);
    if (m->clients == NULL) {
        svc_log_error("mongodb client pool not created: %s", err.message);
        svc_mongo_free(m);
        return SVC_EINVAL;
    }
    mongoc_client_pool_set_error_api(m->clients, MONGOC_ERROR_API_VERSION_2);
    if (o->app != NULL)
        mongoc_client_pool_set_appname(m->clients, o->app);
    mongoc_client_pool_max_size(m->clients, (uint32_t)size);
    m->pool = svc_pool_new(&(struct svc_pool_config){.ops = &client_ops,
                                                     .ctx = m,
                                                     .dep = m->dep,
                                                     .size = size,
                                                     .acquire_timeout_ms = timeout,
                                                     .readiness_probe = true});
    *out = m;
    return 0;
}

void svc_mongo_free(struct svc_mongo *m)
{
    if (m == NULL)
        return;
    svc_pool_free(m->pool); /* gives its clients back to libmongoc's pool first */
    if (m->clients != NULL)
        mongoc_client_pool_destroy(m->clients);
    if (m->uri != NULL)
        mongoc_uri_destroy(m->uri);
    svc_dep_free(m->dep);
    free(m->db);
    free(m);
}

int svc_mongo_acquire(struct svc_mongo *m, struct svc_pool_conn **h, mongoc_client_t **c)
{
    int rc = svc_pool_acquire(m->pool, 0, h);

    *c = rc == 0 ? (*h)->conn : NULL;
    return rc;
}

void svc_mongo_release(struct svc_mongo *m, struct svc_pool_conn *h, int rc)
{
    svc_pool_release(m->pool, h, rc == SVC_EUNAVAILABLE);
}

const char *svc_mongo_db(const struct svc_mongo *m)
{
    return m->db;
}

struct svc_dep *svc_mongo_dep(const struct svc_mongo *m)
{
    return m->dep;
}

int64_t svc_mongo_doc_ms(const bson_t *doc, const char *key)
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

int svc_mongo_find_id(mongoc_client_t *c, const char *db, const char *coll, const char *id,
                      struct svc_dep *dep, const char *what, bson_t **out)
{
    mongoc_collection_t *co = mongoc_client_get_collection(c, db, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(co, filter, opts, NULL);
    const bson_t *doc;
    bson_error_t err;
    int rc = 0;

    *out = NULL;
    if (mongoc_cursor_next(cur, &doc))
        *out = bson_copy(doc);
    else if (mongoc_cursor_error(cur, &err))
        rc = svc_mongo_fail(dep, &err, what);
    if (rc == 0)
        svc_dep_up(dep);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    return rc;
}

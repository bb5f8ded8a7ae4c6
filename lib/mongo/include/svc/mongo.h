/*
 * svc/mongo.h: what every MongoDB-owning store needs of libmongoc, once (library svc_mongo):
 * its clients, the translation of its errors, migrations.
 *
 * svc_mongo is not part of libsvc: it links libmongoc, and only the store of the service that
 * owns a MongoDB database links it, PRIVATE (cmake/Service.cmake's DRIVER), so no other code
 * can reach the driver (docs/architecture.md, "Ownership is enforced").
 *
 * It works on FerretDB 1.24 as on MongoDB 7, using only what both do (no transactions).
 */
#ifndef SVC_MONGO_H
#define SVC_MONGO_H

#include "svc/dep.h"
#include "svc/migrate.h"
#include "svc/pool.h"

#include <mongoc/mongoc.h>
#include <stdbool.h>

/* What svc_mongo_fail() returns for a duplicate key: positive, so never an SVC_E*; a store
 * turns it into a no-op, a replay or an error of its own, and never lets it out. */
#define SVC_MONGO_DUP 1

/* The clients of one MongoDB database (below). */
struct svc_mongo;

struct svc_mongo_opts {
    const char *uri; /* mongodb://host:port/db?...: required; its database is the store's */
    const char *db;  /* the database when the URI names none: required */
    const char *app; /* the appname the server sees: "message-svc" */
    int timeout_ms;  /* server selection, connect and a wait for a client [2000]; sockets 5x,
                      * unless the URI says otherwise: a request fails fast with 503 when the
                      * database is away rather than hanging */
    int pool_size;   /* clients at most [8] */
};

/*
 * The clients of O's database, none connected yet, into *OUT: libmongoc's client pool, lent
 * through a svc_pool (svc/pool.h) with deadlines, each client pinged as it is lent, so an
 * unreachable database makes the pool back off and answer at once; and the database's state
 * "mongodb" (svc/dep.h), which svc_pool_check() probes for /readyz. Initialises libmongoc and
 * sends its log lines to the service's log first (once per process: libmongoc cannot be
 * initialised again after mongoc_cleanup(), so the process never calls that).
 * Returns 0, or SVC_EINVAL when the URI is not valid (logged without quoting it, so no password
 * is). Free with svc_mongo_free().
 */
int svc_mongo_new(const struct svc_mongo_opts *o, struct svc_mongo **out);

/* Gives every client back, then closes them. Every client must have been released. NULL is a
 * no-op. */
void svc_mongo_free(struct svc_mongo *m);

/* Borrows a client into *H (to release) and *C: 0, or SVC_EUNAVAILABLE when none is free
 * within the timeout, or when the database could not be reached a moment ago. */
int svc_mongo_acquire(struct svc_mongo *m, struct svc_pool_conn **h, mongoc_client_t **c);

/* Gives H back after a call that ended with RC: a client that found the database unreachable
 * (SVC_EUNAVAILABLE) is swapped for another, pinged before it is lent. */
void svc_mongo_release(struct svc_mongo *m, struct svc_pool_conn *h, int rc);

/* The database's name and its state; both owned by M. */
const char *svc_mongo_db(const struct svc_mongo *m);
struct svc_dep *svc_mongo_dep(const struct svc_mongo *m);

/* Whether E says the database could not be reached (connection, server selection, protocol,
 * or a server shutting down or stepping down). */
bool svc_mongo_unavailable(const bson_error_t *e);

/* Whether E is a duplicate key: 11000 on MongoDB and on a FerretDB insert, but code 1 "UNIQUE
 * constraint failed" on a FerretDB update (docs/local.md). */
bool svc_mongo_dup(const bson_error_t *e);

/*
 * The one translation of a driver error E, met while doing WHAT ("user lookup"):
 * SVC_MONGO_DUP for a duplicate key (not logged); SVC_EUNAVAILABLE when the database could not
 * be reached, told to DEP (svc_dep_down(), which logs it); otherwise SVC_EINTERNAL, logged here.
 */
int svc_mongo_fail(struct svc_dep *dep, const bson_error_t *e, const char *what);

/*
 * Finds the document of collection COLL in database DB whose _id is ID, into *OUT (a copy the
 * caller destroys with bson_destroy; NULL when there is none): the by-_id lookup FerretDB answers
 * from an index (docs/local.md). Returns 0, or what svc_mongo_fail() makes of a driver error met
 * while doing WHAT (the dependency DEP marked down when unreachable, up after an answer).
 */
int svc_mongo_find_id(mongoc_client_t *c, const char *db, const char *coll, const char *id,
                      struct svc_dep *dep, const char *what, bson_t **out);

/* A time member of DOC: a BSON date, or an integer of milliseconds; 0 when absent or null. */
int64_t svc_mongo_doc_ms(const bson_t *doc, const char *key);

/* An operation a migration step names with "builtin": what a service cannot say as data (a
 * change of its own documents). RUN gets svc_mongo_migrate()'s ARG and client, and returns 0 or
 * a negative SVC_E*, logging its own errors; it must be idempotent (see below). */
struct svc_mongo_builtin {
    const char *name;
    int (*run)(void *arg, mongoc_client_t *c);
};

/*
 * Brings database DB up to MIGRATIONS (svc/migrate.h's table of migrations/NNN_name.json, ending
 * with {0}) through client C, with svc_migrate()'s checks. Each file is
 *
 *   {"about": "...", "steps": [{"op": "create_index", "collection": "c", "name": "i",
 *                               "key": {"field": 1 or -1, ...}, "unique": true},
 *                              {"op": "drop_index", "collection": "c", "name": "i"},
 *                              {"op": "builtin", "name": "<one of BUILTINS>"}]}
 *
 * BUILTINS ends with {NULL, NULL} (NULL for none). There are no transactions (FerretDB has
 * none), so every step is idempotent and each migration is recorded as soon as it is applied:
 * a start cut short goes on from there. Uses, in DB:
 *   meta               {_id: "migration_lock", owner, expires_at}: the lock, held while a
 *                      replica migrates; it expires after a minute, so a replica that died
 *                      holding it blocks the others only that long
 *   schema_migrations  {_id: version, name, checksum, applied_at}: what is applied
 * DEP (the database's state) is told what the driver saw, as svc_mongo_fail() does.
 * Returns 0 or svc_migrate()'s errors: SVC_EINTERNAL for a refusal or a step that failed (a
 * file not valid, a builtin this binary does not have: both logged), SVC_EUNAVAILABLE when the
 * database went away or another replica held the lock for two minutes.
 */
int svc_mongo_migrate(mongoc_client_t *c, const char *db, struct svc_dep *dep,
                      const struct svc_migration *migrations,
                      const struct svc_mongo_builtin *builtins, void *arg);

#endif

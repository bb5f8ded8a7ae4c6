/*
 * mongo_migrate.c: svc/migrate.h's engine on MongoDB (svc_mongo_migrate, svc/mongo.h): JSON
 * steps, a lock document in meta, the record in schema_migrations.
 *
 * There are no transactions (FerretDB has none), so each step is idempotent and each migration
 * is recorded as soon as it is applied: a start cut short goes on from there. The lock is a
 * document in meta that another replica cannot insert while it exists; it expires, so a
 * replica that died holding it does not block the others for good, and a step outliving it is
 * harmless, being idempotent.
 */
#include "svc/mongo.h"

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define META              "meta"
#define SCHEMA_MIGRATIONS "schema_migrations"
#define LOCK_ID           "migration_lock"
#define LOCK_TTL_MS       INT64_C(60000)

/* One step of a migration file: {"op": ..., "collection": ..., "name": ..., "key": {...},
 * "unique": bool}. */
enum step_op { STEP_CREATE_INDEX, STEP_DROP_INDEX, STEP_BUILTIN };

struct step {
    int op;
    const char *collection, *name;
    json_t *key; /* create_index: {"field": 1 or -1, ...}, in order */
    bool unique;
};

struct steps {
    const char *about;
    struct step *items;
    size_t n;
};

static const char *const step_ops[] = {"create_index", "drop_index", "builtin", NULL};
static const struct svc_json_field step_fields[] = {
    {"op", SVC_JSON_ENUM, .required = true, .choices = step_ops,
     .offset = offsetof(struct step, op)},
    {"collection", SVC_JSON_STRING, .min = 1, .offset = offsetof(struct step, collection)},
    {"name", SVC_JSON_STRING, .required = true, .min = 1, .offset = offsetof(struct step, name)},
    {"key", SVC_JSON_ANY, .offset = offsetof(struct step, key)},
    {"unique", SVC_JSON_BOOL, .offset = offsetof(struct step, unique)},
    {0},
};
static const struct svc_json_field step_def = {
    .type = SVC_JSON_OBJECT, .fields = step_fields, .size = sizeof(struct step)};
static const struct svc_json_field steps_fields[] = {
    {"about", SVC_JSON_STRING, .offset = offsetof(struct steps, about)},
    {"steps", SVC_JSON_ARRAY, .required = true, .min = 1, .elem = &step_def,
     .offset = offsetof(struct steps, items), .count = offsetof(struct steps, n)},
    {0},
};

/* One run: svc/migrate.h's engine context. */
struct mig {
    mongoc_client_t *c;
    const char *db;
    struct svc_dep *dep;
    const struct svc_mongo_builtin *builtins;
    void *arg;
    char owner[SVC_UUID_STR_LEN + 1];
};

/* A string member; NULL when absent or not a string. Valid as long as DOC. */
static const char *doc_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

static int insert(struct mig *g, const char *name, const bson_t *doc, const char *what)
{
    mongoc_collection_t *co = mongoc_client_get_collection(g->c, g->db, name);
    bson_error_t err;
    int rc = 0;

    if (!mongoc_collection_insert_one(co, doc, NULL, NULL, &err))
        rc = svc_mongo_fail(g->dep, &err, what);
    else
        svc_dep_up(g->dep);
    mongoc_collection_destroy(co);
    return rc;
}

/* The lock document into *OUT (a copy the caller destroys; NULL when there is none). */
static int find_lock(struct mig *g, bson_t **out)
{
    return svc_mongo_find_id(g->c, g->db, META, LOCK_ID, g->dep, "migration lock lookup", out);
}

/* Deletes the lock document if it still matches FILTER (which names it by _id). */
static int delete_lock(struct mig *g, const bson_t *filter, const char *what)
{
    mongoc_collection_t *co = mongoc_client_get_collection(g->c, g->db, META);
    bson_error_t err;
    int rc = 0;

    if (!mongoc_collection_delete_many(co, filter, NULL, NULL, &err))
        rc = svc_mongo_fail(g->dep, &err, what);
    else
        svc_dep_up(g->dep);
    mongoc_collection_destroy(co);
    return rc;
}

/*
 * One createIndexes command per index: FerretDB 1.24 panics on a command listing several
 * indexes when some of them exist already, while one index per command is idempotent on both
 * engines ("all indexes already exist"). libmongoc 1.23 has no index-model helper; the command
 * is the same on both engines.
 */
static int create_index(struct mig *g, const struct step *st)
{
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(st->collection));
    bson_t arr, spec, key;
    bson_error_t err;
    const char *field;
    json_t *dir;
    int rc = 0;

    bson_append_array_begin(cmd, "indexes", -1, &arr);
    bson_append_document_begin(&arr, "0", -1, &spec);
    bson_append_document_begin(&spec, "key", -1, &key);
    json_object_foreach(st->key, field, dir)
        bson_append_int32(&key, field, -1, json_integer_value(dir) < 0 ? -1 : 1);
    bson_append_document_end(&spec, &key);
    bson_append_utf8(&spec, "name", -1, st->name, -1);
    if (st->unique)
        bson_append_bool(&spec, "unique", -1, true);
    bson_append_document_end(&arr, &spec);
    bson_append_array_end(cmd, &arr);
    if (!mongoc_client_write_command_with_opts(g->c, g->db, cmd, NULL, NULL, &err)) {
        rc = svc_mongo_fail(g->dep, &err, "createIndexes");
        if (rc == SVC_MONGO_DUP)
            rc = SVC_EINTERNAL; /* duplicate keys already stored: cannot be unique */
    }
    bson_destroy(cmd);
    return rc;
}

static int drop_index(struct mig *g, const struct step *st)
{
    bson_t *cmd = BCON_NEW("dropIndexes", BCON_UTF8(st->collection), "index", BCON_UTF8(st->name));
    bson_error_t err;
    int rc = 0;

    /* 26 NamespaceNotFound and 27 IndexNotFound: nothing to drop. */
    if (!mongoc_client_write_command_with_opts(g->c, g->db, cmd, NULL, NULL, &err) &&
        !(err.domain == MONGOC_ERROR_SERVER && (err.code == 26 || err.code == 27)))
        rc = svc_mongo_fail(g->dep, &err, "dropIndexes");
    bson_destroy(cmd);
    return rc;
}

static int run_step(struct mig *g, const struct step *st)
{
    if (st->op != STEP_BUILTIN && st->collection == NULL) {
        svc_log_error("migration step '%s' names no collection", st->name);
        return SVC_EINVAL;
    }
    if (st->op == STEP_CREATE_INDEX) {
        if (!json_is_object(st->key) || json_object_size(st->key) == 0) {
            svc_log_error("migration step '%s' has no key", st->name);
            return SVC_EINVAL;
        }
        return create_index(g, st);
    }
    if (st->op == STEP_DROP_INDEX)
        return drop_index(g, st);
    for (size_t i = 0; g->builtins != NULL && g->builtins[i].name != NULL; i++)
        if (strcmp(g->builtins[i].name, st->name) == 0)
            return g->builtins[i].run(g->arg, g->c);
    svc_log_error("migration step names the builtin '%s', which this binary does not have",
                  st->name);
    return SVC_EINVAL;
}

static int mig_lock(void *ctx)
{
    struct mig *g = ctx;
    int64_t give_up = svc_now_ms() + 2 * LOCK_TTL_MS;

    svc_uuid_v4_str(g->owner);
    for (;;) {
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(LOCK_ID), "owner", BCON_UTF8(g->owner),
                               "expires_at", BCON_DATE_TIME(svc_wall_ms() + LOCK_TTL_MS));
        bson_t *held = NULL, *filter;
        int rc = insert(g, META, doc, "migration lock");

        bson_destroy(doc);
        if (rc != SVC_MONGO_DUP)
            return rc;
        if ((rc = find_lock(g, &held)) != 0)
            return rc;
        if (held != NULL && svc_mongo_doc_ms(held, "expires_at") < svc_wall_ms()) {
            /* Expired: removed only if it is still the one read, then taken again. */
            filter = BCON_NEW("_id", BCON_UTF8(LOCK_ID), "expires_at",
                              BCON_DATE_TIME(svc_mongo_doc_ms(held, "expires_at")));
            rc = delete_lock(g, filter, "expired migration lock");
            bson_destroy(filter);
        } else if (svc_now_ms() > give_up) {
            svc_log_error("mongodb: the migration lock is held by another replica");
            rc = SVC_EUNAVAILABLE;
        } else {
            svc_sleep_ms(200);
        }
        if (held != NULL)
            bson_destroy(held);
        if (rc != 0)
            return rc;
    }
}

static int mig_unlock(void *ctx, bool commit)
{
    struct mig *g = ctx;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(LOCK_ID), "owner", BCON_UTF8(g->owner));
    int rc = delete_lock(g, filter, "migration unlock");

    (void)commit; /* nothing to roll back: see the top of the file */
    bson_destroy(filter);
    return rc;
}

static int mig_list(void *ctx, struct svc_migration_list *applied)
{
    struct mig *g = ctx;
    mongoc_collection_t *co = mongoc_client_get_collection(g->c, g->db, SCHEMA_MIGRATIONS);
    bson_t *filter = bson_new();
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(co, filter, NULL, NULL);
    const bson_t *doc;
    bson_error_t err;
    bson_iter_t it;
    int rc = 0;

    while (mongoc_cursor_next(cur, &doc))
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_NUMBER(&it))
            svc_migration_applied_add(applied, (int)bson_iter_as_int64(&it), doc_str(doc, "name"),
                                      doc_str(doc, "checksum"));
    if (mongoc_cursor_error(cur, &err))
        rc = svc_mongo_fail(g->dep, &err, "read schema_migrations");
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    return rc;
}

static int mig_apply(void *ctx, const struct svc_migration *mg)
{
    struct mig *g = ctx;
    struct svc_arena *a = svc_arena_new();
    struct svc_json_error err;
    struct steps steps = {0};
    json_t *root = NULL;
    int rc = svc_json_parse(mg->text, strlen(mg->text), 0, SVC_JSON_PARSE_OBJECT, &root, &err);

    if (rc == 0)
        rc = svc_json_read(root, steps_fields, &steps, SVC_JSON_REJECT_UNKNOWN, a, &err);
    if (rc != 0)
        svc_log_error("migration '%s' is not valid: %s", mg->name, err.msg);
    for (size_t i = 0; rc == 0 && i < steps.n; i++)
        rc = run_step(g, &steps.items[i]);
    json_decref(root);
    svc_arena_free(a);
    return rc;
}

static int mig_record(void *ctx, const struct svc_migration *mg)
{
    struct mig *g = ctx;
    bson_t *doc = BCON_NEW("_id", BCON_INT32(mg->version), "name", BCON_UTF8(mg->name), "checksum",
                           BCON_UTF8(mg->sha256), "applied_at", BCON_DATE_TIME(svc_wall_ms()));
    int rc = insert(g, SCHEMA_MIGRATIONS, doc, "record migration");

    bson_destroy(doc);
    return rc == SVC_MONGO_DUP ? 0 : rc; /* recorded by a replica that outlived the lock */
}

int svc_mongo_migrate(mongoc_client_t *c, const char *db, struct svc_dep *dep,
                      const struct svc_migration *migrations,
                      const struct svc_mongo_builtin *builtins, void *arg)
{
    struct mig g = {.c = c, .db = db, .dep = dep, .builtins = builtins, .arg = arg};
    const struct svc_migrate_engine e = {.name = "mongodb",
                                         .ctx = &g,
                                         .lock = mig_lock,
                                         .unlock = mig_unlock,
                                         .list = mig_list,
                                         .apply = mig_apply,
                                         .record = mig_record};

    return svc_migrate(migrations, &e);
}

/*
 * MongoDB wire protocol (FerretDB locally), as message-svc reaches it: libmongoc.
 */
#include "testenv.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(message_svc_writes_and_reads_back)
{
    const char *uri_s = testenv_get("message-svc", "MONGODB_URI");
    const char *coll_name = testenv_unique("it_msg");
    bson_error_t err;
    mongoc_uri_t *uri;
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    mongoc_cursor_t *cur;
    const bson_t *found;
    mongoc_database_t *db;
    bson_t *doc, *filter, *create_index;
    bson_iter_t it;
    int n = 0;

    testenv_require_port("ferretdb", testenv_port_of_url(uri_s));
    uri = mongoc_uri_new_with_error(uri_s, &err);
    ck_assert_msg(uri != NULL, "MONGODB_URI '%s': %s", uri_s, err.message);
    client = mongoc_client_new_from_uri(uri);
    ck_assert_ptr_nonnull(client);
    mongoc_client_set_appname(client, "message-svc-it");
    coll = mongoc_client_get_collection(client, mongoc_uri_get_database(uri), coll_name);

    /* A unique index on the source event id: how message-svc makes consumption idempotent. */
    /* The createIndexes command, which both FerretDB and MongoDB 7 accept (libmongoc 1.23 has
     * no index-model helper). */
    db = mongoc_client_get_database(client, mongoc_uri_get_database(uri));
    create_index =
        BCON_NEW("createIndexes", BCON_UTF8(coll_name), "indexes", "[", "{", "key", "{",
                 "source_event_id", BCON_INT32(1), "}", "name", BCON_UTF8("source_event_id_unique"),
                 "unique", BCON_BOOL(true), "}", "]");
    ck_assert_msg(mongoc_database_write_command_with_opts(db, create_index, NULL, NULL, &err),
                  "create index: %s", err.message);

    doc = BCON_NEW("recipient", BCON_UTF8("user-1"), "subject", BCON_UTF8("Welcome"),
                   "source_event_id", BCON_UTF8("evt-1"));
    ck_assert_msg(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err), "insert: %s",
                  err.message);
    /* The same event again is refused by the index: a duplicate is a no-op for the service. */
    ck_assert(!mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
    ck_assert_uint_eq(err.code, 11000);

    filter = BCON_NEW("recipient", BCON_UTF8("user-1"));
    cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    while (mongoc_cursor_next(cur, &found)) {
        ck_assert(bson_iter_init_find(&it, found, "subject"));
        ck_assert_str_eq(bson_iter_utf8(&it, NULL), "Welcome");
        n++;
    }
    ck_assert_msg(!mongoc_cursor_error(cur, &err), "find: %s", err.message);
    ck_assert_int_eq(n, 1);

    ck_assert_msg(mongoc_collection_drop(coll, &err), "drop: %s", err.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(doc);
    bson_destroy(create_index);
    mongoc_database_destroy(db);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
}
END_TEST

/* The plan FerretDB reports for find {_id: ID} on COLL, as one string (its SQLite plan lines). */
static void id_plan(mongoc_database_t *db, const char *coll, const char *id, char *out, size_t cap)
{
    bson_t *cmd = BCON_NEW("explain", "{", "find", BCON_UTF8(coll), "filter", "{", "_id",
                           BCON_UTF8(id), "}", "}", "verbosity", BCON_UTF8("queryPlanner"));
    bson_t reply;
    bson_iter_t it, plan;
    bson_error_t err;
    size_t len = 0;

    out[0] = '\0';
    ck_assert_msg(mongoc_database_command_simple(db, cmd, NULL, &reply, &err), "explain: %s",
                  err.message);
    if (bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "queryPlanner.Plan", &plan) &&
        BSON_ITER_HOLDS_ARRAY(&plan) && bson_iter_recurse(&plan, &it))
        while (bson_iter_next(&it) && len < cap)
            if (BSON_ITER_HOLDS_UTF8(&it))
                len += (size_t)snprintf(out + len, cap - len, "%s; ", bson_iter_utf8(&it, NULL));
    bson_destroy(&reply);
    bson_destroy(cmd);
}

/*
 * A lookup by _id uses an index on every collection, also on one created a moment ago: FerretDB
 * 1.24 queries by an expression its own _id index does not cover, so without the index the
 * wrapper of deploy/local adds (deploy/local/ferretdb/main.go, within -index-every = 1 s) each
 * such lookup reads the whole table.
 */
START_TEST(id_lookups_use_an_index)
{
    const char *uri_s = testenv_get("message-svc", "MONGODB_URI");
    const char *coll_name = testenv_unique("it_idx");
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    mongoc_database_t *db;
    mongoc_uri_t *uri;
    bson_error_t err;
    bson_t *doc;
    char plan[1024];

    testenv_require_port("ferretdb", testenv_port_of_url(uri_s));
    uri = mongoc_uri_new_with_error(uri_s, &err);
    ck_assert_msg(uri != NULL, "MONGODB_URI '%s': %s", uri_s, err.message);
    client = mongoc_client_new_from_uri(uri);
    db = mongoc_client_get_database(client, mongoc_uri_get_database(uri));
    coll = mongoc_client_get_collection(client, mongoc_uri_get_database(uri), coll_name);
    doc = BCON_NEW("_id", BCON_UTF8("a"), "v", BCON_INT32(1));
    ck_assert_msg(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err), "insert: %s",
                  err.message);
    /* A real query first: SQLite notices a schema change (the new index) when a statement
     * runs, and EXPLAIN QUERY PLAN alone never runs one, so a connection that has not run a
     * query since would still explain the old plan. */
    for (int i = 0; i < 100; i++) {
        bson_t *filter = BCON_NEW("_id", BCON_UTF8("a"));
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
        const bson_t *found;

        while (mongoc_cursor_next(cur, &found))
            ;
        ck_assert_msg(!mongoc_cursor_error(cur, &err), "find: %s", err.message);
        mongoc_cursor_destroy(cur);
        bson_destroy(filter);
        id_plan(db, coll_name, "a", plan, sizeof(plan));
        if (strstr(plan, "USING INDEX") != NULL)
            break;
        usleep(100 * 1000);
    }
    ck_assert_msg(strstr(plan, "USING INDEX") != NULL,
                  "find {_id} on a new collection still scans after 10 s: plan '%s'", plan);
    ck_assert_msg(mongoc_collection_drop(coll, &err), "drop: %s", err.message);
    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ferretdb");
    TCase *tc = tcase_create("message_svc");
    int rc;

    mongoc_init();
    tcase_add_test(tc, message_svc_writes_and_reads_back);
    tcase_add_test(tc, id_lookups_use_an_index);
    suite_add_tcase(s, tc);
    rc = testenv_run(s);
    mongoc_cleanup();
    return rc;
}

/*
 * message-svc's MongoDB store against the real FerretDB of deploy/local (integration): what the
 * handlers and the consumer observe through msg.h's interface. Each test opens the store on a
 * database of its own (MONGODB_URI with another database name), so the running service's data
 * is never touched, and drops it at the end.
 */
#include "testenv.h"

#include "msg_svc.h"
#include "svc/arena.h"
#include "svc/buf.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static struct msg_mongo *mongo;
static struct msg_store st;
static struct svc_arena *arena;

/* MONGODB_URI with the database replaced by DB. */
static void uri_with_db(const char *db, char *out, size_t cap)
{
    const char *base = testenv_get("message-svc", "MONGODB_URI");
    const char *host = strstr(base, "://");
    const char *slash, *query;

    ck_assert_ptr_nonnull(host);
    testenv_require_port("ferretdb", testenv_port_of_url(base));
    slash = strchr(host + 3, '/');
    query = strchr(host + 3, '?');
    if (slash == NULL || (query != NULL && query < slash))
        slash = query != NULL ? query : base + strlen(base);
    snprintf(out, cap, "%.*s/%s%s", (int)(slash - base), base, db, query != NULL ? query : "");
}

/* Opens the store on the database of URI as the tests' store. */
static void open_store(const char *uri)
{
    struct msg_mongo_opts o = {.uri = uri, .pool_size = 4, .timeout_ms = 5000};
    int rc = msg_mongo_new(&o, &mongo);

    ck_assert_msg(rc == 0, "ferretdb: message-svc store does not open: %s", svc_err_name(rc));
    msg_mongo_store(mongo, &st);
}

static void setup(void)
{
    char uri[512];

    uri_with_db(testenv_unique("msgtest"), uri, sizeof(uri));
    open_store(uri);
    arena = svc_arena_new();
}

static void teardown(void)
{
    svc_arena_free(arena);
    if (mongo != NULL) {
        msg_mongo_drop_database(mongo);
        msg_mongo_free(mongo);
    }
    mongo = NULL;
}

static const char *new_id(void)
{
    char id[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(id);
    return svc_arena_strdup(arena, id);
}

/* A user registered through the consumer path, with a fresh event id. */
static const char *registered(const char *name)
{
    const char *id = new_id();
    int rc = st.user_registered(st.ctx, new_id(), id, name, 1, svc_wall_ms());

    ck_assert_int_eq(rc, 0);
    return id;
}

static struct msg_page inbox(const char *user_id, int unread, int rc_want)
{
    struct msg_page p;
    int rc = st.inbox(st.ctx, arena, user_id, unread, 50, 0, NULL, &p);

    ck_assert_msg(rc == rc_want, "inbox of '%s': %s, expected %s", user_id, svc_err_name(rc),
                  svc_err_name(rc_want));
    return p;
}

static struct msg_message sent(const char *from, const char *to, const char *subject,
                               const char *body, const char *dedup_key)
{
    struct msg_new in = {.from_user_id = from,
                         .to_user_id = to,
                         .subject = subject,
                         .body = body,
                         .dedup_key = dedup_key};
    struct msg_message m;
    bool replayed = true;
    int rc = st.send(st.ctx, arena, &in, &m, &replayed);

    ck_assert_msg(rc == 0, "send: %s", svc_err_name(rc));
    ck_assert(!replayed);
    return m;
}

/* ---- the consumer's functions -------------------------------------------------------------- */

START_TEST(registered_user_gets_one_welcome_message)
{
    const char *ev = new_id(), *id = new_id();
    int64_t at = svc_wall_ms() - 1234;
    struct msg_user u;
    struct msg_page p;

    ck_assert_int_eq(st.user_registered(st.ctx, ev, id, "Ada Lovelace", 1, at), 0);
    ck_assert_int_eq(st.user_get(st.ctx, arena, id, &u), 0);
    ck_assert_str_eq(u.name, "Ada Lovelace");
    ck_assert(!u.deleted);
    ck_assert_int_eq(u.version, 1);

    p = inbox(id, -1, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert(!p.more);
    ck_assert_str_eq(p.items[0].recipient, id);
    ck_assert_str_eq(p.items[0].sender, MSG_SYSTEM);
    ck_assert_str_eq(p.items[0].subject, "Welcome, Ada Lovelace!");
    ck_assert_str_eq(p.items[0].body, MSG_WELCOME_BODY);
    ck_assert_str_eq(p.items[0].source_event_id, ev);
    ck_assert_int_eq(p.items[0].created_at_ms, at);
    ck_assert_int_eq(p.items[0].read_at_ms, 0);
    ck_assert(svc_uuid_valid(p.items[0].id));

    /* The same event again (a redelivery): nothing more. */
    ck_assert_int_eq(st.user_registered(st.ctx, ev, id, "Ada Lovelace", 1, at), 0);
    ck_assert_int_eq(st.user_registered(st.ctx, ev, id, "Ada Lovelace", 1, at), 0);
    p = inbox(id, -1, 0);
    ck_assert_uint_eq(p.n, 1);
}
END_TEST

START_TEST(older_update_does_not_overwrite_newer_name)
{
    const char *a = registered("Ann"), *b = registered("Bob");
    struct msg_message m = sent(a, b, "hi", "hello", NULL);
    struct msg_message got;
    struct msg_user u;

    ck_assert_str_eq(m.sender_name, "Ann");
    ck_assert_int_eq(st.user_updated(st.ctx, a, "Ann v3", 3), 0);
    /* Overtaken: version 2 arrives after version 3. */
    ck_assert_int_eq(st.user_updated(st.ctx, a, "Ann v2", 2), 0);
    ck_assert_int_eq(st.user_get(st.ctx, arena, a, &u), 0);
    ck_assert_str_eq(u.name, "Ann v3");
    ck_assert_int_eq(u.version, 3);
    /* The message A sent shows A's name now. */
    ck_assert_int_eq(st.get(st.ctx, arena, m.id, &got), 0);
    ck_assert_str_eq(got.sender_name, "Ann v3");
    /* A replay of version 3 changes nothing; version 4 does. */
    ck_assert_int_eq(st.user_updated(st.ctx, a, "Ann v3", 3), 0);
    ck_assert_int_eq(st.user_updated(st.ctx, a, "Ann v4", 4), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, m.id, &got), 0);
    ck_assert_str_eq(got.sender_name, "Ann v4");
    /* An update for a user never heard of creates it (the registration was missed). */
    {
        const char *c = new_id();

        ck_assert_int_eq(st.user_updated(st.ctx, c, "Cy", 2), 0);
        ck_assert_int_eq(st.user_get(st.ctx, arena, c, &u), 0);
        ck_assert_str_eq(u.name, "Cy");
    }
}
END_TEST

START_TEST(deleted_user_loses_inbox_and_name)
{
    const char *a = registered("Ann"), *b = registered("Bob");
    struct msg_message to_b = sent(a, b, "from ann", "x", NULL);
    struct msg_message to_a = sent(b, a, "from bob", "y", NULL);
    struct msg_message got;
    struct msg_user u;
    struct msg_page p;
    struct msg_new in = {.from_user_id = b, .to_user_id = a, .subject = "s", .body = "b"};
    bool replayed;

    ck_assert_uint_eq(inbox(a, -1, 0).n, 2); /* welcome + Bob's */
    ck_assert_int_eq(st.user_deleted(st.ctx, a, 2), 0);

    inbox(a, -1, MSG_EUSER_DELETED);
    ck_assert_int_eq(st.get(st.ctx, arena, to_a.id, &got), SVC_ENOTFOUND);
    ck_assert_int_eq(st.get(st.ctx, arena, to_b.id, &got), 0);
    ck_assert_ptr_null(got.sender_name);
    ck_assert_str_eq(got.sender, a);
    ck_assert_int_eq(st.user_get(st.ctx, arena, a, &u), 0);
    ck_assert(u.deleted);
    ck_assert_ptr_null(u.name);
    /* Neither way does a message go through any more. */
    ck_assert_int_eq(st.send(st.ctx, arena, &in, &got, &replayed), MSG_EUSER_DELETED);
    in.from_user_id = a;
    in.to_user_id = b;
    ck_assert_int_eq(st.send(st.ctx, arena, &in, &got, &replayed), MSG_EUSER_DELETED);

    /* Replays after the deletion bring nothing back: not the registration, not a rename. */
    ck_assert_int_eq(st.user_registered(st.ctx, new_id(), a, "Ann", 1, svc_wall_ms()), 0);
    ck_assert_int_eq(st.user_updated(st.ctx, a, "Ann again", 2), 0);
    ck_assert_int_eq(st.user_deleted(st.ctx, a, 2), 0);
    inbox(a, -1, MSG_EUSER_DELETED);
    ck_assert_int_eq(st.user_get(st.ctx, arena, a, &u), 0);
    ck_assert(u.deleted);
    ck_assert_int_eq(st.get(st.ctx, arena, to_b.id, &got), 0);
    ck_assert_ptr_null(got.sender_name);
    p = inbox(b, -1, 0);
    ck_assert_uint_eq(p.n, 2);
}
END_TEST

START_TEST(sweep_deletes_only_old_messages)
{
    const char *id = new_id();
    int64_t now = svc_wall_ms(), day = 24LL * 3600 * 1000, deleted = -1;
    struct msg_page p;

    ck_assert_int_eq(st.user_registered(st.ctx, new_id(), id, "Old", 1, now - 40 * day), 0);
    ck_assert_int_eq(st.user_registered(st.ctx, new_id(), id, "Old", 1, now - 31 * day), 0);
    ck_assert_int_eq(st.user_registered(st.ctx, new_id(), id, "Old", 1, now - day), 0);
    ck_assert_uint_eq(inbox(id, -1, 0).n, 3);
    ck_assert_int_eq(st.sweep(st.ctx, now - 30 * day, &deleted), 0);
    ck_assert_int_eq(deleted, 2);
    p = inbox(id, -1, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_int_eq(p.items[0].created_at_ms, now - day);
    ck_assert_int_eq(st.sweep(st.ctx, now - 30 * day, &deleted), 0);
    ck_assert_int_eq(deleted, 0);
}
END_TEST

/* ---- the API's functions ------------------------------------------------------------------- */

START_TEST(send_get_read_remove)
{
    const char *a = registered("Ann"), *b = registered("Bob");
    struct msg_message m = sent(a, b, "Lunch?", "At noon", NULL), got, again;
    struct msg_page p;

    ck_assert_str_eq(m.recipient, b);
    ck_assert_str_eq(m.sender, a);
    ck_assert_str_eq(m.sender_name, "Ann");
    ck_assert_str_eq(m.subject, "Lunch?");
    ck_assert_str_eq(m.body, "At noon");
    ck_assert_ptr_null(m.source_event_id);
    ck_assert_int_eq(m.read_at_ms, 0);
    ck_assert_int_ge(m.created_at_ms, svc_wall_ms() - 60000);

    ck_assert_int_eq(st.get(st.ctx, arena, m.id, &got), 0);
    ck_assert_str_eq(got.subject, "Lunch?");
    ck_assert_int_eq(got.created_at_ms, m.created_at_ms);

    /* Newest first: Ann's message, then the welcome. Unread filters. */
    p = inbox(b, -1, 0);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_str_eq(p.items[0].id, m.id);
    ck_assert_str_eq(p.items[1].sender, MSG_SYSTEM);
    ck_assert_uint_eq(inbox(b, 1, 0).n, 2);
    ck_assert_uint_eq(inbox(b, 0, 0).n, 0);

    ck_assert_int_eq(st.set_read(st.ctx, arena, m.id, true, &got), 0);
    ck_assert_int_gt(got.read_at_ms, 0);
    svc_sleep_ms(20);
    ck_assert_int_eq(st.set_read(st.ctx, arena, m.id, true, &again), 0);
    ck_assert_int_eq(again.read_at_ms, got.read_at_ms); /* the first reading's time stays */
    p = inbox(b, 1, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(p.items[0].sender, MSG_SYSTEM);
    p = inbox(b, 0, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(p.items[0].id, m.id);
    ck_assert_int_eq(st.set_read(st.ctx, arena, m.id, false, &got), 0);
    ck_assert_int_eq(got.read_at_ms, 0);
    ck_assert_uint_eq(inbox(b, 1, 0).n, 2);

    ck_assert_int_eq(st.remove(st.ctx, m.id), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, m.id, &got), SVC_ENOTFOUND);
    ck_assert_int_eq(st.remove(st.ctx, m.id), SVC_ENOTFOUND);
    ck_assert_int_eq(st.set_read(st.ctx, arena, m.id, true, &got), SVC_ENOTFOUND);
    ck_assert_uint_eq(inbox(b, -1, 0).n, 1);
}
END_TEST

START_TEST(unknown_users_and_idempotency_keys)
{
    const char *a = registered("Ann"), *b = registered("Bob"), *nobody = new_id();
    struct msg_new in = {.from_user_id = a, .to_user_id = nobody, .subject = "s", .body = "b"};
    struct msg_message m, again;
    struct msg_user u;
    bool replayed = false;
    char key[128];

    inbox(nobody, -1, MSG_EUSER_UNKNOWN);
    ck_assert_int_eq(st.user_get(st.ctx, arena, nobody, &u), MSG_EUSER_UNKNOWN);
    ck_assert_int_eq(st.send(st.ctx, arena, &in, &m, &replayed), MSG_EUSER_UNKNOWN);
    in.from_user_id = nobody;
    in.to_user_id = b;
    ck_assert_int_eq(st.send(st.ctx, arena, &in, &m, &replayed), MSG_EUSER_UNKNOWN);
    ck_assert_uint_eq(inbox(b, -1, 0).n, 1);

    /* The same key and message twice: one message, the second call a replay of the first. */
    snprintf(key, sizeof(key), "dm:%s:key-1", a);
    m = sent(a, b, "once", "only once", key);
    in.from_user_id = a;
    in.subject = "once";
    in.body = "only once";
    in.dedup_key = key;
    ck_assert_int_eq(st.send(st.ctx, arena, &in, &again, &replayed), 0);
    ck_assert(replayed);
    ck_assert_str_eq(again.id, m.id);
    ck_assert_uint_eq(inbox(b, -1, 0).n, 2);
    /* The same key with another message is refused. */
    in.body = "something else";
    ck_assert_int_eq(st.send(st.ctx, arena, &in, &again, &replayed), SVC_EIDEMPOTENCY);
    ck_assert_uint_eq(inbox(b, -1, 0).n, 2);

    /* A system message, as another part of the platform would send it. */
    m = sent(MSG_SYSTEM, b, "Order placed", "Thanks", NULL);
    ck_assert_str_eq(m.sender, MSG_SYSTEM);
    ck_assert_ptr_nonnull(m.sender_name);
}
END_TEST

START_TEST(pages_are_stable_with_equal_times)
{
    const char *id = new_id();
    int64_t t0 = svc_wall_ms() - 60000;
    enum { N = 23, LIMIT = 4 };
    char seen[N][MSG_ID_LEN + 1];
    size_t n = 0;
    struct msg_page p;
    int64_t after_ms = 0;
    const char *after_id = NULL;
    int64_t prev_ms = INT64_MAX;
    char prev_id[MSG_ID_LEN + 1] = "";
    int pages = 0;

    /* Welcome messages of 23 registrations, in groups sharing one creation time. */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(
            st.user_registered(st.ctx, new_id(), id, "Pat", 1, t0 + (int64_t)(i / 5) * 1000), 0);
    do {
        ck_assert_int_eq(st.inbox(st.ctx, arena, id, -1, LIMIT, after_ms, after_id, &p), 0);
        ck_assert_uint_le(p.n, LIMIT);
        for (size_t i = 0; i < p.n; i++) {
            const struct msg_message *m = &p.items[i];

            /* Newest first, ties by id descending. */
            ck_assert(m->created_at_ms < prev_ms ||
                      (m->created_at_ms == prev_ms && strcmp(m->id, prev_id) < 0));
            for (size_t j = 0; j < n; j++)
                ck_assert_msg(strcmp(seen[j], m->id) != 0, "message '%s' seen twice", m->id);
            ck_assert_uint_lt(n, N);
            memcpy(seen[n++], m->id, MSG_ID_LEN + 1);
            prev_ms = m->created_at_ms;
            memcpy(prev_id, m->id, sizeof(prev_id));
        }
        if (p.more) {
            ck_assert_int_eq(p.next_created_at_ms, p.items[p.n - 1].created_at_ms);
            ck_assert_str_eq(p.next_id, p.items[p.n - 1].id);
            after_ms = p.next_created_at_ms;
            after_id = svc_arena_strdup(arena, p.next_id);
        }
        pages++;
    } while (p.more && pages < 20);
    ck_assert_uint_eq(n, N);
    ck_assert_int_eq(pages, (N + LIMIT - 1) / LIMIT);
}
END_TEST

/* Strings that would be operators or paths if they ever became keys or raw filters. */
static const char *const evil[] = {
    "{\"$gt\":\"\"}", "$where", "a.b", "$ne", "{\"$ne\":null}", "$gt", "this.x == 1", NULL,
};

START_TEST(operator_injection_is_stored_verbatim)
{
    const char *a = registered("Ann"), *b = registered("Bob");
    struct msg_message first = sent(a, b, "plain", "plain", NULL), got;
    struct msg_user u;
    struct msg_page p;
    int64_t deleted;
    bool replayed;

    for (int i = 0; evil[i] != NULL; i++) {
        const char *s = evil[i];
        struct msg_new in = {.from_user_id = s, .to_user_id = b, .subject = s, .body = s};
        const char *c;
        struct msg_message m;

        /* As ids: nothing found, nothing changed. */
        ck_assert_int_eq(st.get(st.ctx, arena, s, &got), SVC_ENOTFOUND);
        ck_assert_int_eq(st.set_read(st.ctx, arena, s, true, &got), SVC_ENOTFOUND);
        ck_assert_int_eq(st.remove(st.ctx, s), SVC_ENOTFOUND);
        ck_assert_int_eq(st.user_get(st.ctx, arena, s, &u), MSG_EUSER_UNKNOWN);
        inbox(s, -1, MSG_EUSER_UNKNOWN);
        ck_assert_int_eq(st.send(st.ctx, arena, &in, &got, &replayed), MSG_EUSER_UNKNOWN);
        in.from_user_id = a;
        in.to_user_id = s;
        ck_assert_int_eq(st.send(st.ctx, arena, &in, &got, &replayed), MSG_EUSER_UNKNOWN);
        ck_assert_int_eq(st.inbox(st.ctx, arena, b, -1, 50, 0, s, &p), 0); /* as a cursor id */

        /* As names, subjects, bodies and keys: stored and given back exactly. */
        c = registered(s);
        ck_assert_int_eq(st.user_get(st.ctx, arena, c, &u), 0);
        ck_assert_str_eq(u.name, s);
        m = sent(c, b, s, s, s);
        ck_assert_str_eq(m.subject, s);
        ck_assert_str_eq(m.body, s);
        ck_assert_str_eq(m.sender_name, s);
        ck_assert_int_eq(st.user_updated(st.ctx, c, s, 2), 0);
        ck_assert_int_eq(st.get(st.ctx, arena, m.id, &got), 0);
        ck_assert_str_eq(got.sender_name, s);
        ck_assert_str_eq(got.subject, s);
        ck_assert_int_eq(st.user_deleted(st.ctx, s, 9), 0); /* a "user" named like an operator */
    }
    /* Bob's inbox: the welcome, Ann's message and one per evil sender; nothing else moved. */
    p = inbox(b, -1, 0);
    ck_assert_uint_eq(p.n, 2 + 7);
    ck_assert_int_eq(st.get(st.ctx, arena, first.id, &got), 0);
    ck_assert_str_eq(got.sender_name, "Ann");
    ck_assert_uint_eq(inbox(a, -1, 0).n, 1);
    ck_assert_int_eq(st.sweep(st.ctx, 0, &deleted), 0);
    ck_assert_int_eq(deleted, 0);
}
END_TEST

START_TEST(database_down_is_unavailable_quickly)
{
    struct msg_mongo_opts o = {.uri = "mongodb://127.0.0.1:1/messages?retryWrites=false",
                               .timeout_ms = 500};
    struct msg_mongo *m = NULL;
    int64_t t0 = svc_now_ms();

    ck_assert_int_eq(msg_mongo_new(&o, &m), SVC_EUNAVAILABLE);
    ck_assert_ptr_null(m);
    ck_assert_int_le(svc_now_ms() - t0, 5000);
    o.uri = "not a uri";
    ck_assert_int_eq(msg_mongo_new(&o, &m), SVC_EINVAL);
}
END_TEST

/* ---- concurrency and the stored layout ----------------------------------------------------- */

enum { SENDERS = 6, EACH = 12 };

struct sender_arg {
    const char *from, *to;
    int failures;
};

static void *send_many(void *arg)
{
    struct sender_arg *s = arg;
    struct svc_arena *a = svc_arena_new();

    for (int i = 0; i < EACH; i++) {
        struct msg_new in = {.from_user_id = s->from,
                             .to_user_id = s->to,
                             .subject = "burst",
                             .body = "one of many"};
        struct msg_message m;
        bool replayed;

        if (st.send(st.ctx, a, &in, &m, &replayed) != 0)
            s->failures++;
    }
    svc_arena_free(a);
    return NULL;
}

/* Senders in parallel into one inbox: every message is in it, none lost by two updates of the
 * inbox's index document racing, and a rename reaches every message the sender sent. */
START_TEST(parallel_sends_to_one_inbox_all_arrive)
{
    const char *to = registered("Popular");
    struct sender_arg args[SENDERS];
    pthread_t th[SENDERS];
    struct msg_page p;
    struct msg_message got;

    for (int i = 0; i < SENDERS; i++) {
        args[i] = (struct sender_arg){.from = registered("Fan"), .to = to};
        ck_assert_int_eq(pthread_create(&th[i], NULL, send_many, &args[i]), 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
    ck_assert_int_eq(st.inbox(st.ctx, arena, to, -1, 100, 0, NULL, &p), 0);
    ck_assert_uint_eq(p.n, 1 + SENDERS * EACH);
    ck_assert(!p.more);
    ck_assert_int_eq(st.user_updated(st.ctx, args[0].from, "Fan renamed", 2), 0);
    ck_assert_int_eq(st.inbox(st.ctx, arena, to, -1, 100, 0, NULL, &p), 0);
    for (size_t i = 0, renamed = 0; i < p.n; i++) {
        if (strcmp(p.items[i].sender, args[0].from) == 0) {
            ck_assert_str_eq(p.items[i].sender_name, "Fan renamed");
            renamed++;
        }
        if (i + 1 == p.n)
            ck_assert_uint_eq(renamed, EACH);
    }
    ck_assert_int_eq(st.get(st.ctx, arena, p.items[0].id, &got), 0);
}
END_TEST

/* A pool of one client, and a MONGODB_URI whose waitQueueTimeoutMS would make libmongoc give
 * up on a busy pool at once: callers queue for the client within the store's own timeout and
 * every send arrives (libmongoc's unbounded pop once crashed on the NULL this returns). */
START_TEST(one_client_serves_parallel_callers_whatever_the_uri_says)
{
    struct msg_mongo_opts o = {.pool_size = 1, .timeout_ms = 5000};
    struct sender_arg args[SENDERS];
    pthread_t th[SENDERS];
    char uri[600];
    const char *to;
    struct msg_page p;

    uri_with_db(testenv_unique("msgtest"), uri, sizeof(uri));
    snprintf(uri + strlen(uri), sizeof(uri) - strlen(uri), "%swaitQueueTimeoutMS=1",
             strchr(uri, '?') != NULL ? "&" : "?");
    msg_mongo_drop_database(mongo);
    msg_mongo_free(mongo);
    o.uri = uri;
    ck_assert_int_eq(msg_mongo_new(&o, &mongo), 0);
    msg_mongo_store(mongo, &st);
    to = registered("Busy");
    for (int i = 0; i < SENDERS; i++) {
        args[i] = (struct sender_arg){.from = registered("Caller"), .to = to};
        ck_assert_int_eq(pthread_create(&th[i], NULL, send_many, &args[i]), 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
    ck_assert_int_eq(st.inbox(st.ctx, arena, to, -1, 100, 0, NULL, &p), 0);
    ck_assert_uint_eq(p.n, 1 + SENDERS * EACH);
}
END_TEST

/* Inserts DOC (BCON) into COLL of CLIENT's database DB. */
static void raw_insert(mongoc_client_t *client, const char *db, const char *coll, bson_t *doc)
{
    mongoc_collection_t *co = mongoc_client_get_collection(client, db, coll);
    bson_error_t err;

    ck_assert_msg(mongoc_collection_insert_one(co, doc, NULL, NULL, &err), "insert: %s",
                  err.message);
    mongoc_collection_destroy(co);
    bson_destroy(doc);
}

static bson_t *v1_message(const char *id, const char *to, const char *from, const char *name,
                          int64_t at, bool read, const char *dedup)
{
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "recipient", BCON_UTF8(to), "sender", BCON_UTF8(from),
                 "sender_name", BCON_UTF8(name), "subject", BCON_UTF8("old"), "body",
                 BCON_UTF8("from layout 1"), "created_at", BCON_DATE_TIME(at), "read",
                 BCON_BOOL(read), "source_event_id", BCON_NULL, "dedup_key", BCON_UTF8(dedup));

    if (read)
        BCON_APPEND(doc, "read_at", BCON_DATE_TIME(at + 1));
    else
        BCON_APPEND(doc, "read_at", BCON_NULL);
    return doc;
}

/* A database written by the first layout (messages queried by recipient and sender, a unique
 * index on dedup_key) is upgraded when the store opens: its messages are in the inboxes, renames
 * and deletions reach them, new messages are accepted; an entry whose message is gone is
 * passed over. */
START_TEST(layout_1_database_is_upgraded)
{
    const char *ann = new_id(), *bob = new_id();
    const char *welcome = new_id(), *to_ann = new_id(), *to_bob = new_id();
    int64_t t0 = svc_wall_ms() - 10000;
    char uri[512], dbname[64];
    mongoc_client_t *client;
    mongoc_collection_t *co;
    bson_error_t err;
    bson_t *cmd, *filter;
    struct msg_message got;
    struct msg_page p;

    snprintf(dbname, sizeof(dbname), "%s", testenv_unique("msglayout"));
    uri_with_db(dbname, uri, sizeof(uri));
    client = mongoc_client_new(uri);
    ck_assert_ptr_nonnull(client);
    raw_insert(client, dbname, "users",
               BCON_NEW("_id", BCON_UTF8(ann), "name", BCON_UTF8("Ann"), "deleted",
                        BCON_BOOL(false), "version", BCON_INT64(1)));
    raw_insert(client, dbname, "users",
               BCON_NEW("_id", BCON_UTF8(bob), "name", BCON_UTF8("Bob"), "deleted",
                        BCON_BOOL(false), "version", BCON_INT64(1)));
    raw_insert(client, dbname, "messages",
               v1_message(welcome, ann, MSG_SYSTEM, "polyglot", t0, false, new_id()));
    raw_insert(client, dbname, "messages",
               v1_message(to_ann, ann, bob, "Bob", t0 + 1000, true, new_id()));
    raw_insert(client, dbname, "messages",
               v1_message(to_bob, bob, ann, "Ann", t0 + 2000, false, new_id()));
    cmd = BCON_NEW("createIndexes", BCON_UTF8("messages"), "indexes", "[", "{", "key", "{",
                   "dedup_key", BCON_INT32(1), "}", "name", BCON_UTF8("dedup_key_unique"), "unique",
                   BCON_BOOL(true), "}", "]");
    ck_assert_msg(mongoc_client_write_command_with_opts(client, dbname, cmd, NULL, NULL, &err),
                  "createIndexes: %s", err.message);
    bson_destroy(cmd);

    /* The store of setup() goes; this database's takes its place (teardown drops it). */
    msg_mongo_drop_database(mongo);
    msg_mongo_free(mongo);
    mongo = NULL;
    open_store(uri);

    p = inbox(ann, -1, 0);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_str_eq(p.items[0].id, to_ann);
    ck_assert_str_eq(p.items[1].id, welcome);
    p = inbox(ann, 1, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(p.items[0].id, welcome);
    /* Two new messages without a dedup key: layout 1's unique index is gone. */
    sent(bob, ann, "new", "one", NULL);
    sent(bob, ann, "new", "two", NULL);
    ck_assert_uint_eq(inbox(ann, -1, 0).n, 4);
    /* The sent index knows Bob's old message. */
    ck_assert_int_eq(st.user_updated(st.ctx, bob, "Robert", 2), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, to_ann, &got), 0);
    ck_assert_str_eq(got.sender_name, "Robert");

    /* A message gone without its entry (a crash between the two writes): passed over. */
    co = mongoc_client_get_collection(client, dbname, "messages");
    filter = BCON_NEW("_id", BCON_UTF8(welcome));
    ck_assert(mongoc_collection_delete_one(co, filter, NULL, NULL, &err));
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    ck_assert_int_eq(st.inbox(st.ctx, arena, ann, -1, 3, 0, NULL, &p), 0);
    ck_assert_uint_eq(p.n, 3);
    ck_assert(!p.more);

    /* Opening again upgrades nothing twice. */
    msg_mongo_free(mongo);
    mongo = NULL;
    open_store(uri);
    ck_assert_uint_eq(inbox(ann, -1, 0).n, 3);
    ck_assert_int_eq(st.user_deleted(st.ctx, ann, 2), 0);
    ck_assert_int_eq(st.get(st.ctx, arena, to_ann, &got), SVC_ENOTFOUND);
    ck_assert_int_eq(st.get(st.ctx, arena, to_bob, &got), 0);
    ck_assert_ptr_null(got.sender_name);
    mongoc_client_destroy(client);
}
END_TEST

/* The migrations are recorded with their checksums; a start waits out a lock left by a replica
 * that died (once it has expired), and refuses a database whose migration was edited. */
START_TEST(migrations_are_recorded_and_an_edit_is_refused)
{
    char uri[512], dbname[64];
    mongoc_client_t *client;
    mongoc_collection_t *co;
    bson_t *filter, *upd;
    const bson_t *doc;
    mongoc_cursor_t *cur;
    bson_error_t err;
    struct msg_mongo_opts o = {.pool_size = 1, .timeout_ms = 5000};
    struct msg_mongo *other = NULL;
    int n = 0;

    snprintf(dbname, sizeof(dbname), "%s", testenv_unique("msgmigrate"));
    uri_with_db(dbname, uri, sizeof(uri));
    client = mongoc_client_new(uri);
    ck_assert_ptr_nonnull(client);
    raw_insert(client, dbname, "meta",
               BCON_NEW("_id", BCON_UTF8("migration_lock"), "owner", BCON_UTF8("dead replica"),
                        "expires_at", BCON_DATE_TIME(svc_wall_ms() - 1000)));
    msg_mongo_drop_database(mongo);
    msg_mongo_free(mongo);
    mongo = NULL;
    open_store(uri);

    co = mongoc_client_get_collection(client, dbname, "schema_migrations");
    filter = bson_new();
    cur = mongoc_collection_find_with_opts(co, filter, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;

        ck_assert(bson_iter_init_find(&it, doc, "checksum") && BSON_ITER_HOLDS_UTF8(&it));
        ck_assert_uint_eq(strlen(bson_iter_utf8(&it, NULL)), 64);
        n++;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    ck_assert_int_ge(n, 2);
    /* The lock is gone with the start that took it. */
    mongoc_collection_destroy(co);
    co = mongoc_client_get_collection(client, dbname, "meta");
    filter = BCON_NEW("_id", BCON_UTF8("migration_lock"));
    ck_assert_int_eq(mongoc_collection_count_documents(co, filter, NULL, NULL, NULL, &err), 0);
    bson_destroy(filter);
    mongoc_collection_destroy(co);

    co = mongoc_client_get_collection(client, dbname, "schema_migrations");
    filter = BCON_NEW("_id", BCON_INT32(1));
    upd = BCON_NEW("$set", "{", "checksum", BCON_UTF8("edited"), "}");
    ck_assert(mongoc_collection_update_one(co, filter, upd, NULL, NULL, &err));
    bson_destroy(upd);
    bson_destroy(filter);
    mongoc_collection_destroy(co);
    o.uri = uri;
    ck_assert_int_eq(msg_mongo_new(&o, &other), SVC_EINTERNAL);
    ck_assert_ptr_null(other);
    mongoc_client_destroy(client);
}
END_TEST

/* ---- the consumer's handler on the real store ---------------------------------------------- */

static enum svc_ev_result handle(const char *json, struct svc_buf *reason)
{
    struct svc_kafka_record rec = {
        .topic = TOPIC_USER_EVENTS, .value = json, .value_len = strlen(json), .attempt = 1};

    svc_buf_reset(reason);
    return msg_handle_record(&rec, reason, &st);
}

static const char *envelope(const char *ev_id, const char *type, const char *subject,
                            const char *data)
{
    return svc_arena_printf(arena,
                            "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/user-svc\","
                            "\"type\":\"%s\",\"subject\":\"%s\",\"time\":"
                            "\"2026-11-24T10:00:00.123Z\",\"datacontenttype\":"
                            "\"application/json\",\"data\":%s}",
                            ev_id, type, subject, data);
}

START_TEST(handler_applies_valid_events_and_poisons_the_rest)
{
    struct svc_buf reason;
    const char *id = new_id(), *ev = new_id();
    const char *data = svc_arena_printf(
        arena,
        "{\"id\":\"%s\",\"email\":\"a@b.c\",\"name\":\"Hedy\",\"status\":\"active\","
        "\"version\":1,\"created_at\":\"2026-11-24T10:00:00.123Z\","
        "\"updated_at\":\"2026-11-24T10:00:00.123Z\"}",
        id);
    struct msg_page p;

    svc_buf_init(&reason, 4096);
    ck_assert_int_eq(handle(envelope(ev, "user.registered", id, data), &reason), SVC_EV_DONE);
    ck_assert_int_eq(handle(envelope(ev, "user.registered", id, data), &reason), SVC_EV_DONE);
    p = inbox(id, -1, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(p.items[0].subject, "Welcome, Hedy!");
    ck_assert_int_eq(p.items[0].created_at_ms, 1795514400123LL);

    /* Not message-svc's business: done, nothing written. */
    ck_assert_int_eq(handle(envelope(new_id(), "wallet.credited", id, "{\"x\":1}"), &reason),
                     SVC_EV_DONE);

    ck_assert_int_eq(handle("not json", &reason), SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "not a CloudEvent"));
    ck_assert_int_eq(handle(envelope(new_id(), "user.registered", id, "{\"id\":\"x\"}"), &reason),
                     SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "'id'"));
    ck_assert_int_eq(handle(envelope(new_id(), "user.updated", id,
                                     svc_arena_printf(arena, "{\"id\":\"%s\",\"version\":2}", id)),
                            &reason),
                     SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "'name'"));
    ck_assert_int_eq(handle(envelope(new_id(), "user.deleted", new_id(),
                                     svc_arena_printf(arena, "{\"id\":\"%s\",\"version\":2}", id)),
                            &reason),
                     SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "subject"));
    ck_assert_uint_eq(inbox(id, -1, 0).n, 1);

    ck_assert_int_eq(
        handle(envelope(new_id(), "user.deleted", id,
                        svc_arena_printf(arena,
                                         "{\"id\":\"%s\",\"status\":\"deleted\",\"version\":2,"
                                         "\"deleted_at\":\"2026-11-24T10:00:01.000Z\"}",
                                         id)),
               &reason),
        SVC_EV_DONE);
    inbox(id, -1, MSG_EUSER_DELETED);
    svc_buf_release(&reason);
}
END_TEST

/* The database down while consuming: RETRY, so the partition pauses and nothing is skipped. */
static int down_registered(void *ctx, const char *e, const char *u, const char *n, int64_t v,
                           int64_t at)
{
    (void)ctx, (void)e, (void)u, (void)n, (void)v, (void)at;
    return SVC_EUNAVAILABLE;
}

START_TEST(handler_retries_while_the_database_is_down)
{
    struct msg_store down = {.user_registered = down_registered};
    const char *id = new_id();
    const char *json =
        envelope(new_id(), "user.registered", id,
                 svc_arena_printf(arena, "{\"id\":\"%s\",\"name\":\"N\",\"version\":1}", id));
    struct svc_kafka_record rec = {
        .topic = TOPIC_USER_EVENTS, .value = json, .value_len = strlen(json), .attempt = 1};
    struct svc_buf reason;

    svc_buf_init(&reason, 4096);
    ck_assert_int_eq(msg_handle_record(&rec, &reason, &down), SVC_EV_RETRY);
    svc_buf_release(&reason);
}
END_TEST

/* ---- cart-events: order messages ----------------------------------------------------------- */

static enum svc_ev_result handle_cart(const char *json, struct svc_buf *reason)
{
    struct svc_kafka_record rec = {
        .topic = TOPIC_CART_EVENTS, .value = json, .value_len = strlen(json), .attempt = 1};

    svc_buf_reset(reason);
    return msg_handle_record(&rec, reason, &st);
}

/* The data of an order event of cart-svc for USER_ID: two lines (2 x Steel Kettle at 12.50,
 * 1 x Tea Cup at 3.05), total 28.05 EUR; failed with REASON unless it is NULL. */
static const char *order_data(const char *user_id, const char *order_id, const char *reason)
{
    const char *failed =
        reason != NULL
            ? svc_arena_printf(arena, ",\"failed_step\":\"reserve\",\"reason\":\"%s\"", reason)
            : "";

    return svc_arena_printf(
        arena,
        "{\"order_id\":\"%s\",\"user_id\":\"%s\",\"status\":\"%s\",\"lines\":["
        "{\"product_id\":\"%s\",\"quantity\":2,\"price_cents\":1250,\"currency\":\"EUR\","
        "\"name\":\"Steel Kettle\"},"
        "{\"product_id\":\"%s\",\"quantity\":1,\"price_cents\":305,\"currency\":\"EUR\","
        "\"name\":\"Tea Cup\"}],\"total_cents\":2805,\"currency\":\"EUR\","
        "\"created_at\":\"2026-11-24T10:00:00.000Z\",\"updated_at\":\"2026-11-24T10:00:00.100Z\"%"
        "s}",
        order_id, user_id, reason != NULL ? "failed" : "placed", new_id(), new_id(), failed);
}

static const char *cart_envelope(const char *ev_id, const char *type, const char *subject,
                                 const char *data)
{
    return svc_arena_printf(arena,
                            "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"/cart-svc\","
                            "\"type\":\"%s\",\"subject\":\"%s\",\"time\":"
                            "\"2026-11-24T10:00:00.123Z\",\"datacontenttype\":"
                            "\"application/json\",\"data\":%s}",
                            ev_id, type, subject, data);
}

/* A whole order event: order.placed, or order.failed with REASON. */
static const char *order_event(const char *ev_id, const char *type, const char *user_id,
                               const char *order_id, const char *reason)
{
    return cart_envelope(ev_id, type, user_id, order_data(user_id, order_id, reason));
}

/* The messages of USER_ID's inbox with SUBJECT: how many, and the last one seen in *OUT. */
static size_t with_subject(const char *user_id, const char *subject, struct msg_message *out)
{
    struct msg_page p = inbox(user_id, -1, 0);
    size_t n = 0;

    for (size_t i = 0; i < p.n; i++)
        if (strcmp(p.items[i].subject, subject) == 0) {
            *out = p.items[i];
            n++;
        }
    return n;
}

START_TEST(order_events_put_one_message_each_in_the_inbox)
{
    struct svc_buf reason;
    const char *user = registered("Grace");
    const char *placed_ev = new_id(), *failed_ev = new_id();
    const char *order = new_id(), *order2 = new_id();
    const char *placed = order_event(placed_ev, "order.placed", user, order, NULL);
    const char *failed = order_event(failed_ev, "order.failed", user, order2,
                                     "Steel Kettle: 1 available, 2 requested");
    struct msg_message m;

    svc_buf_init(&reason, 4096);
    ck_assert_int_eq(handle_cart(placed, &reason), SVC_EV_DONE);
    /* Delivered again (a crash before the commit, a rebalance): still one confirmation. */
    ck_assert_int_eq(handle_cart(placed, &reason), SVC_EV_DONE);
    ck_assert_uint_eq(with_subject(user, MSG_ORDER_PLACED_SUBJECT, &m), 1);
    ck_assert_str_eq(m.sender, MSG_SYSTEM);
    ck_assert_str_eq(m.id, placed_ev);
    ck_assert_str_eq(m.source_event_id, placed_ev);
    ck_assert_ptr_nonnull(strstr(m.body, order));
    ck_assert_ptr_nonnull(strstr(m.body, "2 x Steel Kettle at 12.50 EUR\n"));
    ck_assert_ptr_nonnull(strstr(m.body, "1 x Tea Cup at 3.05 EUR\n"));
    ck_assert_ptr_nonnull(strstr(m.body, "Total: 28.05 EUR"));

    ck_assert_int_eq(handle_cart(failed, &reason), SVC_EV_DONE);
    ck_assert_int_eq(handle_cart(failed, &reason), SVC_EV_DONE);
    ck_assert_uint_eq(with_subject(user, MSG_ORDER_FAILED_SUBJECT, &m), 1);
    ck_assert_str_eq(m.source_event_id, failed_ev);
    ck_assert_ptr_nonnull(strstr(m.body, order2));
    ck_assert_ptr_nonnull(strstr(m.body, "Steel Kettle: 1 available, 2 requested"));
    ck_assert_ptr_nonnull(strstr(m.body, "Nothing was charged"));
    /* The welcome, the confirmation and the notice. */
    ck_assert_uint_eq(inbox(user, -1, 0).n, 3);

    /* cart-svc's other events are not message-svc's business. */
    ck_assert_int_eq(
        handle_cart(cart_envelope(new_id(), "cart.item_added", user, "{\"x\":1}"), &reason),
        SVC_EV_DONE);
    ck_assert_uint_eq(inbox(user, -1, 0).n, 3);
    svc_buf_release(&reason);
}
END_TEST

START_TEST(order_events_for_users_without_an_inbox_are_skipped)
{
    struct svc_buf reason;
    const char *stranger = new_id(), *gone = registered("Gone");
    struct msg_user u;

    svc_buf_init(&reason, 4096);
    /* Never registered here: no inbox to write to, and retrying would not make one. */
    ck_assert_int_eq(
        handle_cart(order_event(new_id(), "order.placed", stranger, new_id(), NULL), &reason),
        SVC_EV_DONE);
    ck_assert_int_eq(st.user_get(st.ctx, arena, stranger, &u), MSG_EUSER_UNKNOWN);
    inbox(stranger, -1, MSG_EUSER_UNKNOWN);

    ck_assert_int_eq(st.user_deleted(st.ctx, gone, 2), 0);
    ck_assert_int_eq(
        handle_cart(order_event(new_id(), "order.failed", gone, new_id(), "Insufficient funds"),
                    &reason),
        SVC_EV_DONE);
    inbox(gone, -1, MSG_EUSER_DELETED);
    svc_buf_release(&reason);
}
END_TEST

START_TEST(invalid_order_events_are_poison_with_a_reason)
{
    struct svc_buf reason;
    const char *user = registered("Ida");
    const char *ev = new_id();
    const char *no_lines = svc_arena_printf(
        arena,
        "{\"order_id\":\"%s\",\"user_id\":\"%s\",\"status\":\"placed\",\"lines\":[],"
        "\"total_cents\":0,\"currency\":\"EUR\"}",
        new_id(), user);

    svc_buf_init(&reason, 4096);
    ck_assert_int_eq(handle_cart(cart_envelope(ev, "order.placed", user, no_lines), &reason),
                     SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "'lines'"));
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), ev));

    /* order.placed's data as order.failed: the reason a user would read is missing. */
    ck_assert_int_eq(
        handle_cart(cart_envelope(new_id(), "order.failed", user, order_data(user, new_id(), NULL)),
                    &reason),
        SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "'reason'"));

    /* The data's user is not the subject (the Kafka key): not applied. */
    ck_assert_int_eq(handle_cart(cart_envelope(new_id(), "order.placed", user,
                                               order_data(new_id(), new_id(), NULL)),
                                 &reason),
                     SVC_EV_POISON);
    ck_assert_ptr_nonnull(strstr(svc_buf_str(&reason), "subject"));
    /* Only the welcome. */
    ck_assert_uint_eq(inbox(user, -1, 0).n, 1);
    svc_buf_release(&reason);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msg_store");
    TCase *tc = tcase_create("ferretdb");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, registered_user_gets_one_welcome_message);
    tcase_add_test(tc, older_update_does_not_overwrite_newer_name);
    tcase_add_test(tc, deleted_user_loses_inbox_and_name);
    tcase_add_test(tc, sweep_deletes_only_old_messages);
    tcase_add_test(tc, send_get_read_remove);
    tcase_add_test(tc, unknown_users_and_idempotency_keys);
    tcase_add_test(tc, pages_are_stable_with_equal_times);
    tcase_add_test(tc, operator_injection_is_stored_verbatim);
    tcase_add_test(tc, parallel_sends_to_one_inbox_all_arrive);
    tcase_add_test(tc, one_client_serves_parallel_callers_whatever_the_uri_says);
    tcase_add_test(tc, layout_1_database_is_upgraded);
    tcase_add_test(tc, migrations_are_recorded_and_an_edit_is_refused);
    tcase_add_test(tc, handler_applies_valid_events_and_poisons_the_rest);
    tcase_add_test(tc, handler_retries_while_the_database_is_down);
    tcase_add_test(tc, order_events_put_one_message_each_in_the_inbox);
    tcase_add_test(tc, order_events_for_users_without_an_inbox_are_skipped);
    tcase_add_test(tc, invalid_order_events_are_poison_with_a_reason);
    suite_add_tcase(s, tc);

    tc = tcase_create("down");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, database_down_is_unavailable_quickly);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

/*
 * message-svc's HTTP API as a client sees it: the real routes (msg_http.c) started in-process
 * on port 0 over a fake store that keeps users and messages in memory and counts every call,
 * driven with libcurl. Status codes, headers, bodies member by member, every validation
 * problem (and that the store never saw the bad request), operator injection through every
 * input, the Idempotency-Key paths, message-svc's problem types, the store being down, and a
 * paginated walk of an inbox.
 */
#include "msg.h"

#include "svc/error.h"
#include "svc/uuid.h"
#include "testapi.h"
#include "testenv.h"
#include "testproblems.h"
#include "testsvc.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the fake store --------------------------------------------------------------------- */

enum call { C_INBOX, C_GET, C_SET_READ, C_REMOVE, C_SEND, C_USER_GET, C_COUNT };

enum { MAX_USERS = 64, MAX_MESSAGES = 128, TEXT_MAX = 32 * 1024 };

/* 2026-01-01T00:00:00.000Z: the fake's clock starts here and ticks one second per message. */
#define T0 INT64_C(1767225600000)

#define ANN   "0f8e1d2c-3b4a-4968-8776-554433221100"
#define BOB   "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
#define GONE  "2b3c4d5e-6f70-4b8c-9d0e-1f2a3b4c5d6e" /* a deleted user */
#define NOONE "3c4d5e6f-7081-4c9d-8e0f-2a3b4c5d6e7f" /* never heard of */
#define EVENT "4d5e6f70-8192-4dae-9f10-3b4c5d6e7f80"

struct fake_user {
    char id[MSG_ID_LEN + 1];
    char name[128];
    bool deleted;
};

struct fake_msg {
    char id[MSG_ID_LEN + 1];
    char recipient[MSG_ID_LEN + 1];
    char sender[MSG_ID_LEN + 1];
    char subject[TEXT_MAX], body[TEXT_MAX];
    char dedup_key[256];
    char source_event_id[MSG_ID_LEN + 1]; /* "" for none */
    int64_t created_at_ms, read_at_ms;
    bool removed;
};

struct fake {
    struct testfake t; /* the lock, the call counts, the failure */
    struct fake_user users[MAX_USERS];
    int nusers;
    struct fake_msg msgs[MAX_MESSAGES];
    int nmsgs;
    int64_t now_ms;
    /* What the last calls were given. */
    char last_dedup_key[256];
    int last_unread, last_limit;
    bool last_had_after;
};

static struct fake fake;

/* Every fake call starts here: count, maybe fail. Returns with the lock held unless it returns
 * an error (testsvc.h). */
static int enter(enum call c)
{
    return testfake_enter(&fake.t, c);
}

static int leave(int rc)
{
    return testfake_leave(&fake.t, rc);
}

static struct fake_user *find_user(const char *id)
{
    for (int i = 0; i < fake.nusers; i++)
        if (strcmp(fake.users[i].id, id) == 0)
            return &fake.users[i];
    return NULL;
}

/* 0, MSG_EUSER_UNKNOWN or MSG_EUSER_DELETED for user ID, as the read model would say. */
static int user_state(const char *id)
{
    struct fake_user *u = find_user(id);

    if (u == NULL)
        return MSG_EUSER_UNKNOWN;
    return u->deleted ? MSG_EUSER_DELETED : 0;
}

static struct fake_msg *find_msg(const char *id)
{
    for (int i = 0; i < fake.nmsgs; i++)
        if (strcmp(fake.msgs[i].id, id) == 0 && !fake.msgs[i].removed)
            return &fake.msgs[i];
    return NULL;
}

static void copy_msg(struct svc_arena *a, const struct fake_msg *f, struct msg_message *out)
{
    const struct fake_user *s = find_user(f->sender);

    memset(out, 0, sizeof(*out));
    memcpy(out->id, f->id, sizeof(out->id));
    memcpy(out->recipient, f->recipient, sizeof(out->recipient));
    out->sender = svc_arena_strdup(a, f->sender);
    if (strcmp(f->sender, MSG_SYSTEM) == 0)
        out->sender_name = "polyglot";
    else if (s != NULL && !s->deleted)
        out->sender_name = svc_arena_strdup(a, s->name);
    out->subject = svc_arena_strdup(a, f->subject);
    out->body = svc_arena_strdup(a, f->body);
    out->created_at_ms = f->created_at_ms;
    out->read_at_ms = f->read_at_ms;
    if (f->source_event_id[0] != '\0')
        out->source_event_id = svc_arena_strdup(a, f->source_event_id);
}

/* Test set-up, not counted. */
static void add_user(const char *id, const char *name, bool deleted)
{
    struct fake_user *u = &fake.users[fake.nusers++];

    snprintf(u->id, sizeof(u->id), "%s", id);
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->deleted = deleted;
}

static struct fake_msg *add_msg(const char *to, const char *from, const char *subject,
                                int64_t created_at_ms)
{
    struct fake_msg *m = &fake.msgs[fake.nmsgs++];

    memset(m, 0, sizeof(*m));
    svc_uuid_v4_str(m->id);
    snprintf(m->recipient, sizeof(m->recipient), "%s", to);
    snprintf(m->sender, sizeof(m->sender), "%s", from);
    snprintf(m->subject, sizeof(m->subject), "%s", subject);
    snprintf(m->body, sizeof(m->body), "body of %s", subject);
    svc_uuid_v4_str(m->dedup_key);
    m->created_at_ms = created_at_ms;
    return m;
}

/* Newest first: (created_at, id) descending, as the real store's keyset. */
static int keycmp(int64_t ams, const char *aid, int64_t bms, const char *bid)
{
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return strcmp(aid, bid);
}

static int newest_first(const void *a, const void *b)
{
    const struct fake_msg *x = *(const struct fake_msg *const *)a;
    const struct fake_msg *y = *(const struct fake_msg *const *)b;

    return -keycmp(x->created_at_ms, x->id, y->created_at_ms, y->id);
}

static int f_inbox(void *ctx, struct svc_arena *a, const char *user_id, int unread, int limit,
                   int64_t after_created_at_ms, const char *after_id, struct msg_page *out)
{
    static struct fake_msg *sorted[MAX_MESSAGES];
    int rc = enter(C_INBOX), n = 0, first = 0;

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.last_unread = unread;
    fake.last_limit = limit;
    fake.last_had_after = after_id != NULL;
    if ((rc = user_state(user_id)) != 0)
        return leave(rc);
    for (int i = 0; i < fake.nmsgs; i++) {
        struct fake_msg *m = &fake.msgs[i];

        if (m->removed || strcmp(m->recipient, user_id) != 0)
            continue;
        if ((unread == 1 && m->read_at_ms != 0) || (unread == 0 && m->read_at_ms == 0))
            continue;
        sorted[n++] = m;
    }
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the array holds pointers, sorted as such */
    qsort(sorted, (size_t)n, sizeof(sorted[0]), newest_first);
    if (after_id != NULL)
        while (first < n && keycmp(sorted[first]->created_at_ms, sorted[first]->id,
                                   after_created_at_ms, after_id) >= 0)
            first++;
    memset(out, 0, sizeof(*out));
    out->items = svc_arena_calloc(a, (size_t)limit * sizeof(*out->items));
    while (first < n && out->n < (size_t)limit)
        copy_msg(a, sorted[first++], &out->items[out->n++]);
    if (first < n && out->n > 0) {
        const struct msg_message *last = &out->items[out->n - 1];

        out->more = true;
        out->next_created_at_ms = last->created_at_ms;
        memcpy(out->next_id, last->id, sizeof(out->next_id));
    }
    return leave(0);
}

static int f_get(void *ctx, struct svc_arena *a, const char *id, struct msg_message *out)
{
    int rc = enter(C_GET);
    struct fake_msg *m;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((m = find_msg(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    copy_msg(a, m, out);
    return leave(0);
}

static int f_set_read(void *ctx, struct svc_arena *a, const char *id, bool read,
                      struct msg_message *out)
{
    int rc = enter(C_SET_READ);
    struct fake_msg *m;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((m = find_msg(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    if (!read)
        m->read_at_ms = 0;
    else if (m->read_at_ms == 0)
        m->read_at_ms = fake.now_ms;
    copy_msg(a, m, out);
    return leave(0);
}

static int f_remove(void *ctx, const char *id)
{
    int rc = enter(C_REMOVE);
    struct fake_msg *m;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((m = find_msg(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    m->removed = true;
    return leave(0);
}

static int f_send(void *ctx, struct svc_arena *a, const struct msg_new *in, struct msg_message *out,
                  bool *replayed)
{
    int rc = enter(C_SEND);
    struct fake_msg *m;

    (void)ctx;
    if (rc != 0)
        return rc;
    snprintf(fake.last_dedup_key, sizeof(fake.last_dedup_key), "%s",
             in->dedup_key != NULL ? in->dedup_key : "");
    for (int i = 0; i < fake.nmsgs && in->dedup_key != NULL; i++) {
        m = &fake.msgs[i];
        if (strcmp(m->dedup_key, in->dedup_key) != 0)
            continue;
        if (strcmp(m->sender, in->from_user_id) != 0 || strcmp(m->recipient, in->to_user_id) != 0 ||
            strcmp(m->subject, in->subject) != 0 || strcmp(m->body, in->body) != 0)
            return leave(SVC_EIDEMPOTENCY);
        copy_msg(a, m, out);
        *replayed = true;
        return leave(0);
    }
    if ((rc = user_state(in->from_user_id)) != 0 || (rc = user_state(in->to_user_id)) != 0)
        return leave(rc);
    if (fake.nmsgs == MAX_MESSAGES)
        return leave(SVC_EUNAVAILABLE);
    m = add_msg(in->to_user_id, in->from_user_id, in->subject, fake.now_ms);
    snprintf(m->body, sizeof(m->body), "%s", in->body);
    snprintf(m->dedup_key, sizeof(m->dedup_key), "%s", in->dedup_key != NULL ? in->dedup_key : "");
    fake.now_ms += 1000;
    copy_msg(a, m, out);
    *replayed = false;
    return leave(0);
}

static int f_user_get(void *ctx, struct svc_arena *a, const char *user_id, struct msg_user *out)
{
    int rc = enter(C_USER_GET);
    struct fake_user *u;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((u = find_user(user_id)) == NULL)
        return leave(MSG_EUSER_UNKNOWN);
    memset(out, 0, sizeof(*out));
    memcpy(out->id, u->id, sizeof(out->id));
    out->name = u->deleted ? NULL : svc_arena_strdup(a, u->name);
    out->deleted = u->deleted;
    out->version = 1;
    return leave(0);
}

/* The signature is msg.h's: WHY is written by a real store. */
static bool f_ready(void *ctx, char *why, size_t cap) // NOLINT(readability-non-const-parameter)
{
    (void)ctx;
    (void)why;
    (void)cap;
    return true;
}

static struct msg_app app = {
    .store =
        {
            .inbox = f_inbox,
            .get = f_get,
            .set_read = f_set_read,
            .remove = f_remove,
            .send = f_send,
            .user_get = f_user_get,
            .ready = f_ready,
        },
};

static const struct svc_def msg_def = {
    .name = "message-svc",
    .version = "test",
    .routes = msg_routes,
    .app = &app,
    .errors = msg_errors,
    .openapi = msg_openapi_yaml,
};

static int calls(enum call c)
{
    return testfake_calls(&fake.t, c);
}

static int live_messages(void)
{
    int n = 0;

    pthread_mutex_lock(&fake.t.mu);
    for (int i = 0; i < fake.nmsgs; i++)
        n += !fake.msgs[i].removed;
    pthread_mutex_unlock(&fake.t.mu);
    return n;
}

/* ---- the client ------------------------------------------------------------------------- */

static bool is_null(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    return v != NULL && json_is_null(v);
}

/* A 400 naming FIELD ("" for the body as a whole), and the store never asked. */
static void assert_refused_h(const char *method, const char *path, const char *const *headers,
                             const char *body, const char *field, const char *want)
{
    testsvc_assert_refused(&fake.t, method, path, headers, body, field, want);
}

static void assert_refused(const char *method, const char *path, const char *body,
                           const char *field, const char *want)
{
    testsvc_assert_refused(&fake.t, method, path, NULL, body, field, want);
}

/* A body for POST /v1/messages, in a static buffer. */
static const char *send_body(const char *from, const char *to, const char *subject,
                             const char *body)
{
    static char out[4096];

    snprintf(out, sizeof(out),
             "{\"from_user_id\":\"%s\",\"to_user_id\":\"%s\",\"subject\":\"%s\",\"body\":\"%s\"}",
             from, to, subject, body);
    return out;
}

/* N repetitions of the UTF-8 character C, in a new buffer the caller frees. */
static char *repeat(const char *c, size_t n)
{
    size_t k = strlen(c);
    char *s = malloc(n * k + 1);

    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * k, c, k);
    s[n * k] = '\0';
    return s;
}

static void setup(void)
{
    memset(&fake, 0, sizeof(fake));
    testfake_init(&fake.t);
    fake.now_ms = T0 + 123;
    add_user(ANN, "Ann", false);
    add_user(BOB, "Bob", false);
    add_user(GONE, "", true);
    testsvc_start(&msg_def);
}

static void teardown(void)
{
    testsvc_stop();
    testfake_release(&fake.t);
}

/* Asserts J is exactly a message: its nine members with these values (NULL: JSON null). */
static void assert_message(json_t *j, const char *id, const char *recipient, const char *sender,
                           const char *sender_name, const char *subject, const char *body,
                           const char *created_at, const char *read_at, const char *source_event_id)
{
    ck_assert_int_eq(json_object_size(j), 9);
    if (id != NULL)
        ck_assert_str_eq(testapi_str(j, "id"), id);
    ck_assert_msg(testsvc_is_uuid_lower(testapi_str(j, "id")), "id '%s'", testapi_str(j, "id"));
    ck_assert_str_eq(testapi_str(j, "recipient"), recipient);
    ck_assert_str_eq(testapi_str(j, "sender"), sender);
    if (sender_name != NULL)
        ck_assert_str_eq(testapi_str(j, "sender_name"), sender_name);
    else
        ck_assert(is_null(j, "sender_name"));
    ck_assert_str_eq(testapi_str(j, "subject"), subject);
    ck_assert_str_eq(testapi_str(j, "body"), body);
    ck_assert_str_eq(testapi_str(j, "created_at"), created_at);
    if (read_at != NULL)
        ck_assert_str_eq(testapi_str(j, "read_at"), read_at);
    else
        ck_assert(is_null(j, "read_at"));
    if (source_event_id != NULL)
        ck_assert_str_eq(testapi_str(j, "source_event_id"), source_event_id);
    else
        ck_assert(is_null(j, "source_event_id"));
}

/* Sends Ann's message to Bob and returns its id (static). */
static const char *send_one(const char *subject)
{
    static char id[MSG_ID_LEN + 1];
    struct testapi_reply *r =
        testapi_call("POST", "/v1/messages", send_body(ANN, BOB, subject, "hi"));
    json_t *j;

    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    snprintf(id, sizeof(id), "%s", testapi_str(j, "id"));
    json_decref(j);
    return id;
}

/* ---- sending ---------------------------------------------------------------------------- */

START_TEST(send_answers_201_with_location_and_the_message)
{
    struct testapi_reply *r = testapi_call(
        "POST", "/v1/messages", send_body(ANN, BOB, "Hello \\u00e9t\\u00e9", "Line 1\\nLine 2"));
    char loc[128];
    json_t *j;

    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    j = testapi_json(r);
    assert_message(j, NULL, BOB, ANN, "Ann", "Hello \xc3\xa9t\xc3\xa9", "Line 1\nLine 2",
                   "2026-01-01T00:00:00.123Z", NULL, NULL);
    snprintf(loc, sizeof(loc), "/v1/messages/%s", testapi_str(j, "id"));
    ck_assert_str_eq(testapi_header(r, "Location"), loc);
    json_decref(j);
    ck_assert_int_eq(calls(C_SEND), 1);
    ck_assert_int_eq(testfake_total(&fake.t), 1);
    /* Without Idempotency-Key every request is a new message: no dedup key. */
    ck_assert_str_eq(fake.last_dedup_key, "");
    r = testapi_call("POST", "/v1/messages",
                     send_body(ANN, BOB, "Hello \\u00e9t\\u00e9", "Line 1\\nLine 2"));
    ck_assert_int_eq(r->status, 201);
    ck_assert_str_eq(fake.last_dedup_key, "");
    ck_assert_int_eq(live_messages(), 2);

    /* The message is there to read at its Location. */
    r = testapi_call("GET", loc, NULL);
    ck_assert_int_eq(r->status, 200);
}
END_TEST

START_TEST(send_with_an_idempotency_key_is_201_then_200_replayed_then_409_when_changed)
{
    const char *key[] = {"Idempotency-Key: order-42:retry_1.a", NULL};
    char first[4096], loc[128];
    struct testapi_reply *r;

    r = testapi_call_h("POST", "/v1/messages", key, send_body(ANN, BOB, "Once", "only once"));
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(fake.last_dedup_key, "dm:" ANN ":order-42:retry_1.a");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    testsvc_keep(first, sizeof(first), r);
    snprintf(loc, sizeof(loc), "%s", testapi_header(r, "Location"));

    r = testapi_call_h("POST", "/v1/messages", key, send_body(ANN, BOB, "Once", "only once"));
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "Location"), loc);
    ck_assert_str_eq(r->body, first);
    ck_assert_int_eq(live_messages(), 1);

    r = testapi_call_h("POST", "/v1/messages", key, send_body(ANN, BOB, "Once", "something else"));
    testapi_assert_problem(r, 409, "idempotency-key-reused",
                           "Idempotency-Key 'order-42:retry_1.a' was already used",
                           "Idempotency-Key");
    ck_assert_int_eq(live_messages(), 1);

    /* Keys are scoped to the sender: Bob may use the same one. */
    r = testapi_call_h("POST", "/v1/messages", key, send_body(BOB, ANN, "Once", "only once"));
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(fake.last_dedup_key, "dm:" BOB ":order-42:retry_1.a");
    ck_assert_int_eq(live_messages(), 2);
    ck_assert_int_eq(calls(C_SEND), 4);
}
END_TEST

START_TEST(send_refuses_bad_idempotency_keys_without_touching_the_store)
{
    char long_key[200];
    const char *bad[] = {
        "Idempotency-Key: has space", "Idempotency-Key: {\"$gt\":\"\"}", "Idempotency-Key: a/b",
        "Idempotency-Key: $where",    "Idempotency-Key: cl\xc3\xa9",     long_key,
        "Idempotency-Key;", /* curl's way of sending an empty header */
    };
    const char *body = send_body(ANN, BOB, "s", "b");
    char body_copy[4096];

    snprintf(body_copy, sizeof(body_copy), "%s", body);
    snprintf(long_key, sizeof(long_key), "Idempotency-Key: %0129d", 7);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *h[] = {bad[i], NULL};

        assert_refused_h("POST", "/v1/messages", h, body_copy, "Idempotency-Key",
                         "header 'Idempotency-Key' must be 1 to 128 of");
    }
    /* 128 is allowed. */
    {
        char ok[200];
        const char *h[] = {ok, NULL};

        snprintf(ok, sizeof(ok), "Idempotency-Key: %0128d", 7);
        ck_assert_int_eq(testapi_call_h("POST", "/v1/messages", h, body_copy)->status, 201);
    }
    ck_assert_int_eq(testfake_total(&fake.t), 1);
}
END_TEST

START_TEST(send_to_or_from_unknown_or_deleted_users_is_404_naming_the_field)
{
    struct testapi_reply *r;

    r = testapi_call("POST", "/v1/messages", send_body(NOONE, BOB, "s", "b"));
    testapi_assert_problem(r, 404, "user-not-known", "user '" NOONE "' (from_user_id) is not known",
                           "from_user_id");
    r = testapi_call("POST", "/v1/messages", send_body(ANN, NOONE, "s", "b"));
    testapi_assert_problem(r, 404, "user-not-known", "registered a moment ago", "to_user_id");
    r = testapi_call("POST", "/v1/messages", send_body(GONE, BOB, "s", "b"));
    testapi_assert_problem(r, 404, "user-deleted", "user '" GONE "' (from_user_id) is deleted",
                           "from_user_id");
    r = testapi_call("POST", "/v1/messages", send_body(ANN, GONE, "s", "b"));
    testapi_assert_problem(r, 404, "user-deleted", "(to_user_id) is deleted", "to_user_id");
    /* Both unknown: the sender is named first. */
    r = testapi_call("POST", "/v1/messages", send_body(NOONE, GONE, "s", "b"));
    testapi_assert_problem(r, 404, "user-not-known", "(from_user_id)", "from_user_id");
    ck_assert_int_eq(live_messages(), 0);
    ck_assert_int_eq(calls(C_SEND), 5);
}
END_TEST

START_TEST(send_refuses_bad_bodies_without_touching_the_store)
{
    char *s200 = repeat("\xc3\xa9", 200), *s201 = repeat("x", 201);
    char *b10000 = repeat("\xe2\x82\xac", 10000), *b10001 = repeat("b", 10001);
    size_t cap = (size_t)64 * 1024;
    char *body = malloc(cap);

    ck_assert_ptr_nonnull(body);
    assert_refused("POST", "/v1/messages", send_body("ann", BOB, "s", "b"), "from_user_id",
                   "field 'from_user_id' must be a UUID");
    assert_refused("POST", "/v1/messages", send_body(ANN, "42", "s", "b"), "to_user_id",
                   "field 'to_user_id' must be a UUID");
    assert_refused("POST", "/v1/messages", send_body(ANN, BOB, "", "b"), "subject", "'subject'");
    assert_refused("POST", "/v1/messages", send_body(ANN, BOB, "s", ""), "body", "'body'");
    assert_refused("POST", "/v1/messages", send_body(ANN, BOB, s201, "b"), "subject", "'subject'");
    snprintf(body, cap,
             "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
             "\",\"subject\":\"s\",\"body\":\"%s\"}",
             b10001);
    assert_refused("POST", "/v1/messages", body, "body", "'body'");
    assert_refused("POST", "/v1/messages",
                   "{\"to_user_id\":\"" BOB "\",\"subject\":\"s\",\"body\":\"b\"}", "from_user_id",
                   "field 'from_user_id' is required");
    assert_refused("POST", "/v1/messages",
                   "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB "\",\"body\":\"b\"}",
                   "subject", "field 'subject' is required");
    assert_refused("POST", "/v1/messages",
                   "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
                   "\",\"subject\":1,\"body\":\"b\"}",
                   "subject", "field 'subject' must be");
    assert_refused("POST", "/v1/messages",
                   "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
                   "\",\"subject\":\"s\",\"body\":\"b\",\"sender_name\":\"Eve\"}",
                   "sender_name", "field 'sender_name' is not allowed");
    /* Bidirectional overrides and zero-width characters in display text. */
    assert_refused("POST", "/v1/messages",
                   send_body(ANN, BOB,
                             "Invoice \xe2\x80\xae"
                             "fdp.exe",
                             "b"),
                   "subject", "bidirectional");
    assert_refused("POST", "/v1/messages", send_body(ANN, BOB, "s", "pay\xe2\x80\x8bhere"), "body",
                   "zero-width");
    assert_refused("POST", "/v1/messages", send_body(ANN, BOB, "a\\tb", "b"), "subject",
                   "'subject'");
    assert_refused("POST", "/v1/messages", "{\"subject\":", "", "malformed JSON");
    assert_refused("POST", "/v1/messages", "[]", "", "request body must be a JSON object");
    ck_assert_int_eq(testfake_total(&fake.t), 0);

    /* At the limits, counted in characters: 200 two-byte and 10000 three-byte ones. */
    snprintf(body, cap,
             "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
             "\",\"subject\":\"%s\",\"body\":\"%s\"}",
             s200, b10000);
    {
        struct testapi_reply *r = testapi_call("POST", "/v1/messages", body);
        json_t *j;

        ck_assert_msg(r->status == 201, "%ld %.300s", r->status, r->body);
        j = testapi_json(r);
        ck_assert_str_eq(testapi_str(j, "subject"), s200);
        ck_assert_str_eq(testapi_str(j, "body"), b10000);
        json_decref(j);
    }
    /* Not JSON at all. */
    {
        const char *h[] = {"Content-Type: text/plain", NULL};
        struct testapi_reply *r = testapi_call_h("POST", "/v1/messages", h, "hello");

        testapi_assert_problem(r, 415, "unsupported-media-type", "", NULL);
    }
    ck_assert_int_eq(testfake_total(&fake.t), 1);
    free(s200);
    free(s201);
    free(b10000);
    free(b10001);
    free(body);
}
END_TEST

/* ---- operator injection ----------------------------------------------------------------- */

START_TEST(operator_injection_through_every_input_is_400_and_never_reaches_the_store)
{
    static const struct {
        const char *method, *path, *body, *field;
    } cases[] = {
        /* Body members holding operators instead of values. */
        {"POST", "/v1/messages",
         "{\"from_user_id\":{\"$gt\":\"\"},\"to_user_id\":\"" BOB
         "\",\"subject\":\"s\",\"body\":\"b\"}",
         "from_user_id"},
        {"POST", "/v1/messages",
         "{\"from_user_id\":\"" ANN "\",\"to_user_id\":{\"$ne\":null},\"subject\":\"s\","
         "\"body\":\"b\"}",
         "to_user_id"},
        {"POST", "/v1/messages",
         "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
         "\",\"subject\":{\"$regex\":\".*\"},\"body\":\"b\"}",
         "subject"},
        {"POST", "/v1/messages",
         "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
         "\",\"subject\":\"s\",\"body\":[\"$where\"]}",
         "body"},
        /* Operator and dotted member names. */
        {"POST", "/v1/messages",
         "{\"$where\":\"sleep(1000)\",\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
         "\",\"subject\":\"s\",\"body\":\"b\"}",
         "$where"},
        {"POST", "/v1/messages",
         "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
         "\",\"subject\":\"s\",\"body\":\"b\",\"sender.name\":\"Eve\"}",
         "sender.name"},
        {"POST", "/v1/messages",
         "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB
         "\",\"subject\":\"s\",\"body\":\"b\",\"$set\":{\"read_at\":1}}",
         "$set"},
        {"PATCH", "/v1/messages/" ANN, "{\"read\":{\"$ne\":false}}", "read"},
        {"PATCH", "/v1/messages/" ANN, "{\"$set\":{\"read\":true}}", "$set"},
        {"PATCH", "/v1/messages/" ANN, "{\"read\":true,\"recipient.$\":1}", "recipient.$"},
        {"PATCH", "/v1/messages/" ANN, "{\"read\":\"true\"}", "read"},
        /* Path parameters. */
        {"GET", "/v1/messages/%7B%22%24ne%22%3A1%7D", NULL, "id"},
        {"GET", "/v1/messages/$ne", NULL, "id"},
        {"PATCH", "/v1/messages/%24where", "{\"read\":true}", "id"},
        {"DELETE", "/v1/messages/a.b", NULL, "id"},
        {"GET", "/v1/users/%7B%22%24gt%22%3A%22%22%7D/messages", NULL, "id"},
        /* Query parameters. */
        {"GET", "/v1/users/" ANN "/messages?unread=%7B%22%24ne%22%3A1%7D", NULL, "unread"},
        {"GET", "/v1/users/" ANN "/messages?unread=$ne", NULL, "unread"},
        {"GET", "/v1/users/" ANN "/messages?limit=%7B%22%24gt%22%3A0%7D", NULL, "limit"},
        {"GET", "/v1/users/" ANN "/messages?cursor=%7B%22%24gt%22%3A%22%22%7D", NULL, "cursor"},
        /* A well-formed cursor whose content is an operator: base64url('{"$gt":""}'). */
        {"GET", "/v1/users/" ANN "/messages?cursor=eyIkZ3QiOiIifQ", NULL, "cursor"},
        /* ... and one whose id part is: base64url('1:{"$ne":1}'). */
        {"GET", "/v1/users/" ANN "/messages?cursor=MTp7IiRuZSI6MX0", NULL, "cursor"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = testfake_total(&fake.t);
        struct testapi_reply *r = testapi_call(cases[i].method, cases[i].path, cases[i].body);
        json_t *j;

        ck_assert_msg(r->status == 400, "%s %s %s: %ld %s", cases[i].method, cases[i].path,
                      cases[i].body != NULL ? cases[i].body : "", r->status, r->body);
        ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/problem+json");
        j = testapi_json(r);
        ck_assert_msg(strcmp(testapi_str(j, "field"), cases[i].field) == 0,
                      "%s %s: field '%s', not '%s'", cases[i].method, cases[i].path,
                      testapi_str(j, "field"), cases[i].field);
        json_decref(j);
        ck_assert_msg(testfake_total(&fake.t) == before, "%s %s reached the store", cases[i].method,
                      cases[i].path);
    }
    ck_assert_int_eq(testfake_total(&fake.t), 0);

    /* A parameter the API does not define, such as unread[$ne]=1, is refused by name. */
    {
        static const char *const paths[][2] = {
            {"/v1/users/" ANN "/messages?unread%5B%24ne%5D=1", "unread[$ne]"},
            {"/v1/users/" ANN "/messages?limit.%24gt=0", "limit.$gt"},
            {"/v1/users/" ANN "/messages?%24where=1", "$where"},
        };

        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            struct testapi_reply *r = testapi_call("GET", paths[i][0], NULL);
            json_t *j;

            ck_assert_msg(r->status == 400, "%s: %ld %s", paths[i][0], r->status, r->body);
            j = testapi_json(r);
            ck_assert_str_eq(testapi_str(j, "field"), paths[i][1]);
            json_decref(j);
        }
        ck_assert_int_eq(testfake_total(&fake.t), 0);
    }
}
END_TEST

/* ---- the inbox -------------------------------------------------------------------------- */

START_TEST(inbox_walks_45_messages_newest_first_in_pages_of_20_exactly_once)
{
    static char ids[45][MSG_ID_LEN + 1];
    int seen[45] = {0}, pages = 0, total = 0;
    char cursor[256] = "", path[512];
    int64_t prev_ms = INT64_MAX;
    char prev_id[MSG_ID_LEN + 1] = "";

    /* Three messages share each timestamp, so the order within one relies on the id. */
    for (int i = 0; i < 45; i++) {
        struct fake_msg *m = add_msg(BOB, ANN, "m", T0 + (int64_t)(i / 3) * 1000);

        snprintf(m->subject, sizeof(m->subject), "m%02d", i);
        memcpy(ids[i], m->id, sizeof(ids[i]));
    }
    add_msg(ANN, BOB, "not Bob's", T0 + 99000);
    for (;;) {
        struct testapi_reply *r;
        json_t *j, *items, *next;

        snprintf(path, sizeof(path), "/v1/users/%s/messages%s%s", BOB, cursor[0] ? "?cursor=" : "",
                 cursor);
        r = testapi_call("GET", path, NULL);
        ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
        ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
        ck_assert_int_eq(fake.last_limit, 20);
        j = testapi_json(r);
        ck_assert_int_eq(json_object_size(j), 2);
        items = json_object_get(j, "items");
        next = json_object_get(j, "next_cursor");
        ck_assert(json_is_array(items));
        pages++;
        ck_assert_int_eq(json_array_size(items), pages < 3 ? 20 : 5);
        for (size_t k = 0; k < json_array_size(items); k++) {
            json_t *m = json_array_get(items, k);
            const char *id = testapi_str(m, "id");
            int n;
            int64_t ms;

            ck_assert_str_eq(testapi_str(m, "recipient"), BOB);
            n = (int)strtol(testapi_str(m, "subject") + 1, NULL, 10);
            ck_assert_int_ge(n, 0);
            ck_assert_int_lt(n, 45);
            ck_assert_str_eq(ids[n], id);
            seen[n]++;
            total++;
            /* Newest first: (created_at, id) strictly descending across pages. */
            ms = T0 + (int64_t)(n / 3) * 1000;
            ck_assert(ms < prev_ms || (ms == prev_ms && strcmp(id, prev_id) < 0));
            prev_ms = ms;
            snprintf(prev_id, sizeof(prev_id), "%s", id);
        }
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        ck_assert(json_is_string(next));
        ck_assert_int_lt(pages, 3);
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        /* Opaque, and safe in a URL as it is. */
        ck_assert_uint_eq(strspn(cursor, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_"),
                          strlen(cursor));
        json_decref(j);
    }
    ck_assert_int_eq(pages, 3);
    ck_assert_int_eq(total, 45);
    for (int i = 0; i < 45; i++)
        ck_assert_msg(seen[i] == 1, "message %d seen %d times", i, seen[i]);

    /* limit is passed on. */
    {
        struct testapi_reply *r = testapi_call("GET", "/v1/users/" BOB "/messages?limit=100", NULL);
        json_t *j = testapi_json(r);

        ck_assert_int_eq(r->status, 200);
        ck_assert_int_eq(fake.last_limit, 100);
        ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 45);
        ck_assert(is_null(j, "next_cursor"));
        json_decref(j);
    }
}
END_TEST

START_TEST(inbox_filters_unread_and_read)
{
    char a[MSG_ID_LEN + 1], b[MSG_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j, *items;

    snprintf(a, sizeof(a), "%s", send_one("first"));
    snprintf(b, sizeof(b), "%s", send_one("second"));
    send_one("third");
    ck_assert_int_eq(
        testapi_call("PATCH", testsvc_cat("/v1/messages/", a, ""), "{\"read\":true}")->status, 200);
    ck_assert_int_eq(
        testapi_call("PATCH", testsvc_cat("/v1/messages/", b, ""), "{\"read\":true}")->status, 200);

    r = testapi_call("GET", "/v1/users/" BOB "/messages?unread=true", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(fake.last_unread, 1);
    j = testapi_json(r);
    items = json_object_get(j, "items");
    ck_assert_int_eq(json_array_size(items), 1);
    ck_assert_str_eq(testapi_str(json_array_get(items, 0), "subject"), "third");
    ck_assert(is_null(json_array_get(items, 0), "read_at"));
    json_decref(j);

    r = testapi_call("GET", "/v1/users/" BOB "/messages?unread=false", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(fake.last_unread, 0);
    j = testapi_json(r);
    items = json_object_get(j, "items");
    ck_assert_int_eq(json_array_size(items), 2);
    ck_assert_str_eq(testapi_str(json_array_get(items, 0), "subject"), "second");
    ck_assert_str_eq(testapi_str(json_array_get(items, 1), "subject"), "first");
    ck_assert_str_eq(testapi_str(json_array_get(items, 0), "read_at"), "2026-01-01T00:00:03.123Z");
    json_decref(j);

    r = testapi_call("GET", "/v1/users/" BOB "/messages", NULL);
    ck_assert_int_eq(fake.last_unread, -1);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 3);
    json_decref(j);
}
END_TEST

START_TEST(inbox_of_unknown_or_deleted_users_is_404_and_an_empty_one_is_200)
{
    struct testapi_reply *r;
    json_t *j;

    r = testapi_call("GET", "/v1/users/" NOONE "/messages", NULL);
    testapi_assert_problem(r, 404, "user-not-known", "user '" NOONE "' (id) is not known", "id");
    r = testapi_call("GET", "/v1/users/" GONE "/messages?unread=true", NULL);
    testapi_assert_problem(r, 404, "user-deleted", "user '" GONE "' (id) is deleted", "id");
    r = testapi_call("GET", "/v1/users/" ANN "/messages", NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    ck_assert_int_eq(json_object_size(j), 2);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
    ck_assert(is_null(j, "next_cursor"));
    json_decref(j);
}
END_TEST

START_TEST(inbox_refuses_bad_parameters_without_touching_the_store)
{
    const char *p = "/v1/users/" BOB "/messages";

    assert_refused("GET", testsvc_cat(p, "?limit=0", ""), NULL, "limit", "query parameter 'limit'");
    assert_refused("GET", testsvc_cat(p, "?limit=101", ""), NULL, "limit",
                   "query parameter 'limit'");
    assert_refused("GET", testsvc_cat(p, "?limit=ten", ""), NULL, "limit",
                   "query parameter 'limit'");
    assert_refused("GET", testsvc_cat(p, "?limit=", ""), NULL, "limit", "query parameter 'limit'");
    assert_refused("GET", testsvc_cat(p, "?unread=yes", ""), NULL, "unread",
                   "query parameter 'unread' must be true or false");
    assert_refused("GET", testsvc_cat(p, "?unread=", ""), NULL, "unread",
                   "query parameter 'unread'");
    assert_refused("GET", testsvc_cat(p, "?cursor=!!!", ""), NULL, "cursor",
                   "query parameter 'cursor' is not a valid cursor");
    assert_refused("GET", testsvc_cat(p, "?cursor=", ""), NULL, "cursor", "is not a valid cursor");
    /* base64url("12:not-a-uuid") */
    assert_refused("GET", testsvc_cat(p, "?cursor=MTI6bm90LWEtdXVpZA", ""), NULL, "cursor",
                   "is not a valid cursor");
    assert_refused("GET", "/v1/users/bob/messages", NULL, "id",
                   "path parameter 'id' must be a UUID, not 'bob'");
    ck_assert_int_eq(testfake_total(&fake.t), 0);
}
END_TEST

/* ---- one message ------------------------------------------------------------------------ */

START_TEST(get_answers_the_message_exactly)
{
    struct fake_msg *sys = add_msg(BOB, MSG_SYSTEM, "Welcome, Bob", T0 + 5);
    struct fake_msg *old = add_msg(BOB, GONE, "From the departed", T0 + 6);
    struct testapi_reply *r;
    json_t *j;
    char upper[MSG_ID_LEN + 1];

    snprintf(sys->source_event_id, sizeof(sys->source_event_id), "%s", EVENT);
    r = testapi_call("GET", testsvc_cat("/v1/messages/", sys->id, ""), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    assert_message(j, sys->id, BOB, "system", "polyglot", "Welcome, Bob", "body of Welcome, Bob",
                   "2026-01-01T00:00:00.005Z", NULL, EVENT);
    json_decref(j);

    /* A deleted sender's name is gone: null, not "". */
    r = testapi_call("GET", testsvc_cat("/v1/messages/", old->id, ""), NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    assert_message(j, old->id, BOB, GONE, NULL, "From the departed", "body of From the departed",
                   "2026-01-01T00:00:00.006Z", NULL, NULL);
    json_decref(j);

    /* Ids in upper case are the same id. */
    for (size_t i = 0; i <= MSG_ID_LEN; i++)
        upper[i] = (char)(sys->id[i] >= 'a' && sys->id[i] <= 'f' ? sys->id[i] - 32 : sys->id[i]);
    r = testapi_call("GET", testsvc_cat("/v1/messages/", upper, ""), NULL);
    ck_assert_int_eq(r->status, 200);

    r = testapi_call("GET", "/v1/messages/" NOONE, NULL);
    testapi_assert_problem(r, 404, "not-found", "message '" NOONE "' not found", NULL);
    assert_refused("GET", "/v1/messages/42", NULL, "id", "path parameter 'id' must be a UUID");
}
END_TEST

START_TEST(patch_marks_read_and_unread_and_answers_the_message)
{
    char id[MSG_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", send_one("to read"));
    r = testapi_call("PATCH", testsvc_cat("/v1/messages/", id, ""), "{\"read\":true}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    assert_message(j, id, BOB, ANN, "Ann", "to read", "hi", "2026-01-01T00:00:00.123Z",
                   "2026-01-01T00:00:01.123Z", NULL);
    json_decref(j);

    {
        const char *h[] = {"Content-Type: application/merge-patch+json", NULL};

        r = testapi_call_h("PATCH", testsvc_cat("/v1/messages/", id, ""), h, "{\"read\":false}");
    }
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert(is_null(j, "read_at"));
    json_decref(j);
    ck_assert_int_eq(calls(C_SET_READ), 2);

    r = testapi_call("PATCH", "/v1/messages/" NOONE, "{\"read\":true}");
    testapi_assert_problem(r, 404, "not-found", "message '" NOONE "' not found", NULL);

    assert_refused("PATCH", testsvc_cat("/v1/messages/", id, ""), "{}", "read",
                   "field 'read' is required");
    assert_refused("PATCH", testsvc_cat("/v1/messages/", id, ""), "{\"read\":1}", "read",
                   "field 'read' must be");
    assert_refused("PATCH", testsvc_cat("/v1/messages/", id, ""), "{\"read\":null}", "read",
                   "field 'read' is required");
    assert_refused("PATCH", testsvc_cat("/v1/messages/", id, ""),
                   "{\"read\":true,\"subject\":\"x\"}", "subject",
                   "field 'subject' is not allowed");
    assert_refused("PATCH", testsvc_cat("/v1/messages/", id, ""), "read=true", "",
                   "malformed JSON");
    assert_refused("PATCH", "/v1/messages/x", "{\"read\":true}", "id", "must be a UUID");
    ck_assert_int_eq(calls(C_SET_READ), 3);
}
END_TEST

START_TEST(delete_answers_204_then_the_message_is_gone)
{
    char id[MSG_ID_LEN + 1];
    struct testapi_reply *r;

    snprintf(id, sizeof(id), "%s", send_one("to delete"));
    r = testapi_call("DELETE", testsvc_cat("/v1/messages/", id, ""), NULL);
    ck_assert_int_eq(r->status, 204);
    ck_assert_uint_eq(r->len, 0);
    ck_assert_int_eq(live_messages(), 0);
    r = testapi_call("GET", testsvc_cat("/v1/messages/", id, ""), NULL);
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
    r = testapi_call("DELETE", testsvc_cat("/v1/messages/", id, ""), NULL);
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
    assert_refused("DELETE", "/v1/messages/not-an-id", NULL, "id", "must be a UUID");
    ck_assert_int_eq(calls(C_REMOVE), 2);
}
END_TEST

/* ---- failures and the contract ---------------------------------------------------------- */

START_TEST(store_unavailable_is_503_with_retry_after_on_every_route)
{
    static const struct testsvc_request routes[] = {
        {"GET", "/v1/messages/" ANN, NULL, C_GET},
        {"GET", "/v1/users/" BOB "/messages", NULL, C_INBOX},
        {"PATCH", "/v1/messages/" ANN, "{\"read\":true}", C_SET_READ},
        {"DELETE", "/v1/messages/" ANN, NULL, C_REMOVE},
        {"POST", "/v1/messages",
         "{\"from_user_id\":\"" ANN "\",\"to_user_id\":\"" BOB "\",\"subject\":\"s\","
         "\"body\":\"b\"}",
         C_SEND},
    };

    testsvc_assert_unavailable(&fake.t, routes, sizeof(routes) / sizeof(routes[0]), NULL,
                               "the message database is unavailable");
}
END_TEST

/* The database going away between send and the lookup that names the user is still a 503. */
static int f_send_unknown(void *ctx, struct svc_arena *a, const struct msg_new *in,
                          struct msg_message *out, bool *replayed)
{
    (void)ctx;
    (void)a;
    (void)in;
    (void)out;
    (void)replayed;
    pthread_mutex_lock(&fake.t.mu);
    fake.t.calls[C_SEND]++;
    fake.t.fail = SVC_EUNAVAILABLE;
    pthread_mutex_unlock(&fake.t.mu);
    return MSG_EUSER_UNKNOWN;
}

START_TEST(send_whose_user_lookup_fails_is_503)
{
    struct testapi_reply *r;

    app.store.send = f_send_unknown;
    r = testapi_call("POST", "/v1/messages", send_body(ANN, NOONE, "s", "b"));
    app.store.send = f_send;
    testapi_assert_problem(r, 503, "unavailable", "unavailable", NULL);
    ck_assert_str_eq(testapi_header(r, "Retry-After"), "1");
    ck_assert_int_eq(calls(C_USER_GET), 1);
}
END_TEST

START_TEST(openapi_yaml_is_served_and_names_every_route)
{
    static const char *const problems[] = {
        "user-not-known",  "user-deleted", "idempotency-key-reused",
        "invalid-request", "unavailable",  NULL};

    testsvc_assert_openapi(msg_routes, problems);
}
END_TEST

/* Every problem type message-svc can answer is in its openapi.yaml and docs/architecture.md, with
 * its status, and they name no other: lib's common ones, the lib codes its handlers answer,
 * and its own errors. */
START_TEST(every_problem_type_is_documented)
{
    static const int uses[] = {SVC_EIDEMPOTENCY, SVC_OK};

    testproblems_check_openapi((const char *)msg_openapi_yaml, uses, msg_errors);
    testproblems_check_docs("message-svc", msg_errors);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msg_http");
    TCase *tc = tcase_create("api");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, send_answers_201_with_location_and_the_message);
    tcase_add_test(tc, send_with_an_idempotency_key_is_201_then_200_replayed_then_409_when_changed);
    tcase_add_test(tc, send_refuses_bad_idempotency_keys_without_touching_the_store);
    tcase_add_test(tc, send_to_or_from_unknown_or_deleted_users_is_404_naming_the_field);
    tcase_add_test(tc, send_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, operator_injection_through_every_input_is_400_and_never_reaches_the_store);
    tcase_add_test(tc, inbox_walks_45_messages_newest_first_in_pages_of_20_exactly_once);
    tcase_add_test(tc, inbox_filters_unread_and_read);
    tcase_add_test(tc, inbox_of_unknown_or_deleted_users_is_404_and_an_empty_one_is_200);
    tcase_add_test(tc, inbox_refuses_bad_parameters_without_touching_the_store);
    tcase_add_test(tc, get_answers_the_message_exactly);
    tcase_add_test(tc, patch_marks_read_and_unread_and_answers_the_message);
    tcase_add_test(tc, delete_answers_204_then_the_message_is_gone);
    tcase_add_test(tc, store_unavailable_is_503_with_retry_after_on_every_route);
    tcase_add_test(tc, send_whose_user_lookup_fails_is_503);
    tcase_add_test(tc, openapi_yaml_is_served_and_names_every_route);
    tcase_add_test(tc, every_problem_type_is_documented);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

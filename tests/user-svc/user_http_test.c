/*
 * user-svc's HTTP API as a client sees it: the real routes (user_http.c) started in-process on
 * port 0 over a fake store that keeps users, wallets, credits and payments in memory and counts
 * every call, driven with libcurl. Status codes, headers, bodies, every validation problem
 * (and that the store never saw the bad request), optimistic concurrency, idempotency, the
 * problem types of user-svc, the store being down, and a paginated walk.
 */
#include "user.h"

#include "svc/error.h"
#include "svc/uuid.h"
#include "testapi.h"
#include "testenv.h"
#include "testproblems.h"
#include "testsvc.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the fake store --------------------------------------------------------------------- */

enum call {
    C_CREATE,
    C_GET,
    C_GET_BY_EMAIL,
    C_LIST,
    C_RENAME,
    C_ERASE,
    C_WALLET_GET,
    C_CREDIT,
    C_PAY,
    C_REFUND,
    C_COUNT,
};

enum { MAX_USERS = 1024, MAX_CREDITS = 1024, MAX_PAYMENTS = 1024 };

/* 2026-01-01T00:00:00.000Z: the fake's clock starts here and ticks one second per change. */
#define T0 INT64_C(1767225600000)

struct fake_user {
    char id[USER_ID_LEN + 1];
    char email[256], name[512];
    bool deleted;
    int64_t version, created_at_ms, updated_at_ms;
    int64_t balance_cents, wallet_updated_at_ms;
};

struct fake {
    struct testfake t; /* the lock, the call counts, the failure */
    struct fake_user users[MAX_USERS];
    int nusers;
    struct credit credits[MAX_CREDITS];
    int ncredits;
    struct payment payments[MAX_PAYMENTS];
    int npayments;
    int64_t now_ms;
    char traceparent[64];     /* the last one a state-changing call was given */
    int64_t expected_version; /* the last one rename was given */
    char last_id[64];         /* the last user id a call was given */
    int last_limit;
};

static struct fake fake;

/* Every fake call starts here: count, maybe fail, remember. Returns with the lock held unless
 * it returns an error (testsvc.h). */
static int enter(enum call c, const char *id, const char *traceparent)
{
    int rc = testfake_enter(&fake.t, c);

    if (rc != 0)
        return rc;
    if (id != NULL)
        snprintf(fake.last_id, sizeof(fake.last_id), "%s", id);
    if (traceparent != NULL)
        snprintf(fake.traceparent, sizeof(fake.traceparent), "%s", traceparent);
    return 0;
}

static int leave(int rc)
{
    return testfake_leave(&fake.t, rc);
}

static struct fake_user *find_user(const char *id)
{
    for (int i = 0; i < fake.nusers; i++)
        if (strcmp(fake.users[i].id, id) == 0 && !fake.users[i].deleted)
            return &fake.users[i];
    return NULL;
}

static void copy_user(struct svc_arena *a, const struct fake_user *f, struct user *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->id, f->id, sizeof(out->id));
    out->email = svc_arena_strdup(a, f->email);
    out->name = svc_arena_strdup(a, f->name);
    out->status = "active";
    out->version = f->version;
    out->created_at_ms = f->created_at_ms;
    out->updated_at_ms = f->updated_at_ms;
}

/* Adds a user directly (test set-up, not counted). The caller makes sure there is room. */
static struct fake_user *add_user(const char *email, const char *name, int64_t created_at_ms)
{
    struct fake_user *f = &fake.users[fake.nusers++];

    memset(f, 0, sizeof(*f));
    svc_uuid_v4_str(f->id);
    snprintf(f->email, sizeof(f->email), "%s", email);
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->version = 1;
    f->created_at_ms = f->updated_at_ms = f->wallet_updated_at_ms = created_at_ms;
    return f;
}

static int f_create(void *ctx, struct svc_arena *a, const char *email, const char *name,
                    const char *traceparent, struct user *out)
{
    int rc = enter(C_CREATE, NULL, traceparent);

    (void)ctx;
    if (rc != 0)
        return rc;
    for (int i = 0; i < fake.nusers; i++)
        if (!fake.users[i].deleted && strcasecmp(fake.users[i].email, email) == 0)
            return leave(USER_EEMAIL_TAKEN);
    if (fake.nusers == MAX_USERS)
        return leave(SVC_EUNAVAILABLE); /* full: only a long-running fake gets here */
    copy_user(a, add_user(email, name, fake.now_ms), out);
    fake.now_ms += 1000;
    return leave(0);
}

static int f_get(void *ctx, struct svc_arena *a, const char *id, struct user *out)
{
    int rc = enter(C_GET, id, NULL);
    struct fake_user *f;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((f = find_user(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    copy_user(a, f, out);
    return leave(0);
}

static int f_get_by_email(void *ctx, struct svc_arena *a, const char *email, struct user *out)
{
    int rc = enter(C_GET_BY_EMAIL, NULL, NULL);

    (void)ctx;
    if (rc != 0)
        return rc;
    for (int i = 0; i < fake.nusers; i++) {
        if (!fake.users[i].deleted && strcasecmp(fake.users[i].email, email) == 0) {
            copy_user(a, &fake.users[i], out);
            return leave(0);
        }
    }
    return leave(SVC_ENOTFOUND);
}

/* (created_at, id) order, as the real store's keyset. */
static int keycmp(int64_t ams, const char *aid, int64_t bms, const char *bid)
{
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return strcmp(aid, bid);
}

static int by_key(const void *a, const void *b)
{
    const struct fake_user *x = *(const struct fake_user *const *)a;
    const struct fake_user *y = *(const struct fake_user *const *)b;

    return keycmp(x->created_at_ms, x->id, y->created_at_ms, y->id);
}

static int f_list(void *ctx, struct svc_arena *a, int limit, int64_t after_created_at_ms,
                  const char *after_id, struct user_page *out)
{
    int rc = enter(C_LIST, after_id, NULL);
    struct fake_user *sorted[MAX_USERS];
    int n = 0, first = 0;

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.last_limit = limit;
    for (int i = 0; i < fake.nusers; i++)
        if (!fake.users[i].deleted)
            sorted[n++] = &fake.users[i];
    qsort(sorted, (size_t)n, sizeof(struct fake_user *), by_key);
    if (after_id != NULL)
        while (first < n && keycmp(sorted[first]->created_at_ms, sorted[first]->id,
                                   after_created_at_ms, after_id) <= 0)
            first++;
    memset(out, 0, sizeof(*out));
    out->items = svc_arena_calloc(a, (size_t)limit * sizeof(*out->items));
    while (first < n && out->n < (size_t)limit)
        copy_user(a, sorted[first++], &out->items[out->n++]);
    if (first < n && out->n > 0) {
        const struct user *last = &out->items[out->n - 1];

        out->more = true;
        out->next_created_at_ms = last->created_at_ms;
        memcpy(out->next_id, last->id, sizeof(out->next_id));
    }
    return leave(0);
}

static int f_rename(void *ctx, struct svc_arena *a, const char *id, int64_t expected_version,
                    const char *name, const char *traceparent, struct user *out)
{
    int rc = enter(C_RENAME, id, traceparent);
    struct fake_user *f;

    (void)ctx;
    if (rc != 0)
        return rc;
    fake.expected_version = expected_version;
    if ((f = find_user(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    if (f->version != expected_version)
        return leave(SVC_EPRECONDITION);
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->version++;
    f->updated_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    copy_user(a, f, out);
    return leave(0);
}

static int f_erase(void *ctx, const char *id, const char *traceparent)
{
    int rc = enter(C_ERASE, id, traceparent);
    struct fake_user *f;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((f = find_user(id)) == NULL)
        return leave(SVC_ENOTFOUND);
    f->deleted = true;
    f->email[0] = f->name[0] = '\0';
    return leave(0);
}

static int f_wallet_get(void *ctx, const char *user_id, struct wallet *out)
{
    int rc = enter(C_WALLET_GET, user_id, NULL);
    struct fake_user *f;

    (void)ctx;
    if (rc != 0)
        return rc;
    if ((f = find_user(user_id)) == NULL)
        return leave(SVC_ENOTFOUND);
    memcpy(out->user_id, f->id, sizeof(out->user_id));
    out->balance_cents = f->balance_cents;
    out->updated_at_ms = f->wallet_updated_at_ms;
    return leave(0);
}

static int f_credit(void *ctx, const char *user_id, const char *credit_id, int64_t amount_cents,
                    const char *traceparent, struct credit *out, bool *replayed)
{
    int rc = enter(C_CREDIT, user_id, traceparent);
    struct fake_user *f;
    struct credit *c;

    (void)ctx;
    if (rc != 0)
        return rc;
    for (int i = 0; i < fake.ncredits; i++) {
        c = &fake.credits[i];
        if (strcmp(c->credit_id, credit_id) != 0)
            continue;
        if (strcmp(c->user_id, user_id) != 0 || c->amount_cents != amount_cents)
            return leave(SVC_EIDEMPOTENCY);
        *out = *c;
        *replayed = true;
        return leave(0);
    }
    if ((f = find_user(user_id)) == NULL)
        return leave(SVC_ENOTFOUND);
    if (fake.ncredits == MAX_CREDITS)
        return leave(SVC_EUNAVAILABLE);
    f->balance_cents += amount_cents;
    f->wallet_updated_at_ms = fake.now_ms;
    c = &fake.credits[fake.ncredits++];
    snprintf(c->credit_id, sizeof(c->credit_id), "%s", credit_id);
    snprintf(c->user_id, sizeof(c->user_id), "%s", user_id);
    c->amount_cents = amount_cents;
    c->balance_cents = f->balance_cents;
    c->created_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    *out = *c;
    *replayed = false;
    return leave(0);
}

static int f_pay(void *ctx, struct svc_arena *a, const char *payment_id, const char *user_id,
                 int64_t amount_cents, const char *traceparent, struct payment *out, bool *replayed)
{
    int rc = enter(C_PAY, user_id, traceparent);
    struct fake_user *f;
    struct payment *p;

    (void)ctx;
    (void)a;
    if (rc != 0)
        return rc;
    for (int i = 0; i < fake.npayments; i++) {
        p = &fake.payments[i];
        if (strcmp(p->payment_id, payment_id) != 0)
            continue;
        if (strcmp(p->user_id, user_id) != 0 || p->amount_cents != amount_cents)
            return leave(SVC_EIDEMPOTENCY);
        *out = *p;
        *replayed = true;
        return leave(0);
    }
    if ((f = find_user(user_id)) == NULL)
        return leave(SVC_ENOTFOUND);
    if (f->balance_cents < amount_cents)
        return leave(USER_EFUNDS);
    if (fake.npayments == MAX_PAYMENTS)
        return leave(SVC_EUNAVAILABLE);
    f->balance_cents -= amount_cents;
    f->wallet_updated_at_ms = fake.now_ms;
    p = &fake.payments[fake.npayments++];
    memset(p, 0, sizeof(*p));
    snprintf(p->payment_id, sizeof(p->payment_id), "%s", payment_id);
    snprintf(p->user_id, sizeof(p->user_id), "%s", user_id);
    p->amount_cents = amount_cents;
    p->status = "captured";
    p->balance_cents = f->balance_cents;
    p->created_at_ms = fake.now_ms;
    fake.now_ms += 1000;
    *out = *p;
    *replayed = false;
    return leave(0);
}

static int f_refund(void *ctx, struct svc_arena *a, const char *payment_id, const char *traceparent,
                    struct payment *out, bool *replayed)
{
    int rc = enter(C_REFUND, payment_id, traceparent);

    (void)ctx;
    (void)a;
    if (rc != 0)
        return rc;
    for (int i = 0; i < fake.npayments; i++) {
        struct payment *p = &fake.payments[i];
        struct fake_user *f;

        if (strcmp(p->payment_id, payment_id) != 0)
            continue;
        *replayed = strcmp(p->status, "refunded") == 0;
        if (!*replayed) {
            f = find_user(p->user_id);
            if (f != NULL) {
                f->balance_cents += p->amount_cents;
                p->balance_cents = f->balance_cents;
            }
            p->status = "refunded";
            p->refunded_at_ms = fake.now_ms;
            fake.now_ms += 1000;
        }
        *out = *p;
        return leave(0);
    }
    return leave(SVC_ENOTFOUND);
}

/* The signature is user.h's: WHY is written by a real store. */
static bool f_ready(void *ctx, char *why, size_t cap) // NOLINT(readability-non-const-parameter)
{
    (void)ctx;
    (void)why;
    (void)cap;
    return true;
}

static struct user_app app = {
    .store =
        {
            .create = f_create,
            .get = f_get,
            .get_by_email = f_get_by_email,
            .list = f_list,
            .rename = f_rename,
            .erase = f_erase,
            .wallet_get = f_wallet_get,
            .credit = f_credit,
            .pay = f_pay,
            .refund = f_refund,
            .ready = f_ready,
        },
};

static const struct svc_def user_def = {
    .name = "user-svc",
    .version = "test",
    .routes = user_routes,
    .app = &app,
    .errors = user_errors,
    .openapi = user_openapi_yaml,
};

static int total_calls(void)
{
    return testfake_total(&fake.t);
}

static int calls(enum call c)
{
    return testfake_calls(&fake.t, c);
}

/* ---- the client ------------------------------------------------------------------------- */

/* A 400 naming FIELD, and the store never asked. */
static void assert_refused(const char *method, const char *path, const char *body,
                           const char *field, const char *want)
{
    testsvc_assert_refused(&fake.t, method, path, NULL, body, field, want);
}

/* Registers a user through the API; returns its id (static). */
static const char *register_user(const char *email, const char *name)
{
    static char id[USER_ID_LEN + 1];
    char body[1024];
    struct testapi_reply *r;
    json_t *j;

    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"%s\"}", email, name);
    r = testapi_call("POST", "/v1/users", body);
    ck_assert_msg(r->status == 201, "register %s: %ld %s", email, r->status, r->body);
    j = testapi_json(r);
    snprintf(id, sizeof(id), "%s", testapi_str(j, "id"));
    json_decref(j);
    return id;
}

static void setup(void)
{
    memset(&fake, 0, sizeof(fake));
    testfake_init(&fake.t);
    fake.now_ms = T0 + 123;
    testsvc_start(&user_def);
}

static void teardown(void)
{
    testsvc_stop();
    testfake_release(&fake.t);
}

/* ---- users ------------------------------------------------------------------------------ */

START_TEST(create_answers_201_with_location_etag_and_the_user)
{
    const char *hdrs[] = {"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          NULL};
    struct testapi_reply *r =
        testapi_call_h("POST", "/v1/users", hdrs,
                       "{\"email\":\"  Ann.Example+tag@Example.COM \",\"name\":\"  Ann "
                       "Example \\t\"}");
    char want_location[128];
    json_t *j;

    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"1\"");
    j = testapi_json(r);
    ck_assert(testsvc_is_uuid_lower(testapi_str(j, "id")));
    snprintf(want_location, sizeof(want_location), "/v1/users/%s", testapi_str(j, "id"));
    ck_assert_str_eq(testapi_header(r, "Location"), want_location);
    /* Trimmed, domain lower-cased, local part as written. */
    ck_assert_str_eq(testapi_str(j, "email"), "Ann.Example+tag@example.com");
    ck_assert_str_eq(testapi_str(j, "name"), "Ann Example");
    ck_assert_str_eq(testapi_str(j, "status"), "active");
    ck_assert_int_eq(testapi_num(j, "version"), 1);
    ck_assert_str_eq(testapi_str(j, "created_at"), "2026-01-01T00:00:00.123Z");
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:00.123Z");
    ck_assert_int_eq(json_object_size(j), 7);
    json_decref(j);
    ck_assert_int_eq(calls(C_CREATE), 1);
    /* The store got this request's trace context: same trace, a span of user-svc. */
    ck_assert_int_eq(strlen(fake.traceparent), 55);
    ck_assert(strncmp(fake.traceparent, "00-0af7651916cd43dd8448eb211c80319c-", 36) == 0);
    ck_assert(strstr(fake.traceparent, "b7ad6b7169203331") == NULL);
}
END_TEST

START_TEST(create_refuses_bad_bodies_without_touching_the_store)
{
    char body[1024], long_name[256], local65[80], long_domain[300];

    assert_refused("POST", "/v1/users", "{\"email\":", "", "malformed JSON");
    assert_refused("POST", "/v1/users", "[1,2]", "", "request body must be a JSON object");
    assert_refused("POST", "/v1/users", "{\"email\":5,\"name\":\"A\"}", "email",
                   "field 'email' must be a string");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":true}", "name",
                   "field 'name' must be a string");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":[\"A\"]}", "name",
                   "must be a string");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\"}", "name",
                   "field 'name' is required");
    assert_refused("POST", "/v1/users", "{\"name\":\"Ann\"}", "email", "field 'email' is required");
    assert_refused("POST", "/v1/users", "{\"email\":null,\"name\":\"Ann\"}", "email",
                   "field 'email' is required");
    assert_refused("POST", "/v1/users",
                   "{\"email\":\"a@example.com\",\"name\":\"A\",\"admin\":true}", "admin",
                   "field 'admin' is not allowed");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"A\",\"id\":\"x\"}",
                   "id", "is not allowed");
    assert_refused("POST", "/v1/users", "{}", "email", "is required");

    /* Names: 1 to 100 characters once trimmed, no control characters. */
    memset(long_name, 'x', 101);
    long_name[101] = '\0';
    snprintf(body, sizeof(body), "{\"email\":\"a@example.com\",\"name\":\"%s\"}", long_name);
    assert_refused("POST", "/v1/users", body, "name",
                   "field 'name' must be 1 to 100 characters once trimmed, not 101");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"\"}", "name",
                   "not 0");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"  \\t \"}", "name",
                   "not 0");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"a\\u0007b\"}",
                   "name", "control characters");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"a\\nb\"}", "name",
                   "control characters");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"a\\u0085b\"}",
                   "name", "control characters");
    testapi_assert_problem(
        testapi_call("POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"a\\u0000b\"}"),
        400, "malformed-json", "\\u0000 is not allowed", NULL);

    /* Emails: a practical check, each rule named. */
    assert_refused("POST", "/v1/users", "{\"email\":\"'; DROP TABLE users;--\",\"name\":\"A\"}",
                   "email", "field 'email' must be an email address");
    assert_refused("POST", "/v1/users",
                   "{\"email\":\"x'; DROP TABLE users;--@example.com\",\"name\":\"A\"}", "email",
                   "a space or a control character");
    assert_refused("POST", "/v1/users", "{\"email\":\"a';DROP--@example.com\",\"name\":\"A\"}",
                   "email", "the part before '@' may hold");
    assert_refused("POST", "/v1/users", "{\"email\":\"no-at.example.com\",\"name\":\"A\"}", "email",
                   "it has no '@'");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@b@example.com\",\"name\":\"A\"}", "email",
                   "more than one '@'");
    assert_refused("POST", "/v1/users", "{\"email\":\"@example.com\",\"name\":\"A\"}", "email",
                   "1 to 64 characters");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@localhost\",\"name\":\"A\"}", "email",
                   "the domain must have a dot");
    assert_refused("POST", "/v1/users", "{\"email\":\"a b@example.com\",\"name\":\"A\"}", "email",
                   "a space");
    assert_refused("POST", "/v1/users", "{\"email\":\"a\\u0001@example.com\",\"name\":\"A\"}",
                   "email", "control character");
    assert_refused("POST", "/v1/users", "{\"email\":\".a@example.com\",\"name\":\"A\"}", "email",
                   "misplaced dot");
    assert_refused("POST", "/v1/users", "{\"email\":\"a..b@example.com\",\"name\":\"A\"}", "email",
                   "misplaced dot");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example..com\",\"name\":\"A\"}", "email",
                   "empty label");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@example.com.\",\"name\":\"A\"}", "email",
                   "empty label");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@-example.com\",\"name\":\"A\"}", "email",
                   "starts or ends with '-'");
    assert_refused("POST", "/v1/users", "{\"email\":\"a@exa_mple.com\",\"name\":\"A\"}", "email",
                   "the domain may hold");
    assert_refused("POST", "/v1/users", "{\"email\":\"z\\u00e9@example.com\",\"name\":\"A\"}",
                   "email", "ASCII");
    assert_refused("POST", "/v1/users", "{\"email\":\"   \",\"name\":\"A\"}", "email",
                   "it is empty");
    memset(local65, 'a', 65);
    local65[65] = '\0';
    snprintf(body, sizeof(body), "{\"email\":\"%s@example.com\",\"name\":\"A\"}", local65);
    assert_refused("POST", "/v1/users", body, "email", "1 to 64 characters");
    /* 255 characters: a@ + 249 + .com */
    memset(long_domain, 'b', 249);
    for (int i = 60; i < 249; i += 61)
        long_domain[i] = '.';
    long_domain[249] = '\0';
    snprintf(body, sizeof(body), "{\"email\":\"a@%s.com\",\"name\":\"A\"}", long_domain);
    assert_refused("POST", "/v1/users", body, "email", "longer than 254 characters");
    ck_assert_int_eq(total_calls(), 0);
}
END_TEST

/* Names are display text: a right-to-left override or an invisible character would make a name
 * show as something it is not ("Ad\u202Ea" shows as "Ada" reversed after the override). */
START_TEST(names_refuse_bidi_and_zero_width_characters_without_touching_the_store)
{
    static const struct {
        const char *name, *want;
    } cases[] = {
        {"Ad\\u202Ea",
         "field 'name' must not contain bidirectional controls (U+202E at character 3)"},
        {"A\\u200Bda",
         "field 'name' must not contain zero-width characters (U+200B at character 2)"},
        {"\\uFEFFAda",
         "field 'name' must not contain zero-width characters (U+FEFF at character 1)"},
        {"Ada\\uFEFF",
         "field 'name' must not contain zero-width characters (U+FEFF at character 4)"},
        {"\\u2067Ada\\u2069", "field 'name' must not contain bidirectional controls (U+2067"},
        {"Ada\\u200F", "field 'name' must not contain bidirectional controls (U+200F"},
        {"A\\u001Bda", "field 'name' must not contain control characters (U+001B at character 2)"},
        {"A\\u2060da", "field 'name' must not contain zero-width characters (U+2060"},
    };
    char body[256], id[USER_ID_LEN + 1];
    const char *ok[] = {"If-Match: \"1\"", NULL};
    int before;

    snprintf(id, sizeof(id), "%s", register_user("ada@example.com", "Ada"));
    before = total_calls();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{\"email\":\"b@example.com\",\"name\":\"%s\"}",
                 cases[i].name);
        assert_refused("POST", "/v1/users", body, "name", cases[i].want);
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", cases[i].name);
        testapi_assert_problem(testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), ok, body),
                               400, "invalid-request", cases[i].want, "name");
    }
    ck_assert_int_eq(total_calls(), before);
    ck_assert_str_eq(fake.users[0].name, "Ada");
}
END_TEST

START_TEST(create_takes_names_verbatim_and_emails_at_their_limits)
{
    const char *names[] = {"'; DROP TABLE users;--",    "Robert'); DROP TABLE Students;--",
                           "<script>alert(1)</script>", "Zoë Åström 山田 太郎",
                           "${jndi:x} %s %n",           NULL};
    char body[2048], name100[512], local64[80], domain[300];
    struct testapi_reply *r;
    json_t *j, *in;

    for (int i = 0; names[i] != NULL; i++) {
        char email[64];

        snprintf(email, sizeof(email), "user%d@example.com", i);
        in = json_pack("{s:s, s:s}", "email", email, "name", names[i]);
        {
            char *s = json_dumps(in, 0);

            r = testapi_call("POST", "/v1/users", s);
            free(s);
        }
        json_decref(in);
        ck_assert_msg(r->status == 201, "%s: %ld %s", names[i], r->status, r->body);
        j = testapi_json(r);
        ck_assert_str_eq(testapi_str(j, "name"), names[i]);
        json_decref(j);
        ck_assert_str_eq(fake.users[i].name, names[i]);
    }
    /* 100 characters that take 200 bytes: characters are counted, not bytes. */
    name100[0] = '\0';
    for (int i = 0; i < 100; i++)
        memcpy(name100 + (size_t)2 * i, "\xc3\xa9", 3);
    snprintf(body, sizeof(body), "{\"email\":\"e@example.com\",\"name\":\"%s\"}", name100);
    r = testapi_call("POST", "/v1/users", body);
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    /* A 64-character local part and a 254-character address are accepted. */
    memset(local64, 'a', 64);
    local64[64] = '\0';
    memset(domain, 'b', 185);
    for (int i = 60; i < 185; i += 61)
        domain[i] = '.';
    domain[185] = '\0';
    snprintf(body, sizeof(body), "{\"email\":\"%s@%s.com\",\"name\":\"Max\"}", local64, domain);
    r = testapi_call("POST", "/v1/users", body);
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_int_eq(strlen(testapi_str(j, "email")), 254);
    json_decref(j);
    r = testapi_call(
        "POST", "/v1/users",
        "{\"email\":\"o'brien!#$%&*+-/=?^_`{|}~.x@sub-1.Example.co.UK\",\"name\":\"O\"}");
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "email"), "o'brien!#$%&*+-/=?^_`{|}~.x@sub-1.example.co.uk");
    json_decref(j);
}
END_TEST

START_TEST(create_duplicate_email_is_409_email_taken)
{
    struct testapi_reply *r;

    register_user("ann@example.com", "Ann");
    r = testapi_call("POST", "/v1/users",
                     "{\"email\":\" ann@EXAMPLE.com\",\"name\":\"Other Ann\"}");
    testapi_assert_problem(r, 409, "email-taken", "email 'ann@example.com' is already registered",
                           NULL);
    ck_assert_str_eq(testapi_header(r, "Location"), "");
    ck_assert_int_eq(calls(C_CREATE), 2);
    ck_assert_int_eq(fake.nusers, 1);
}
END_TEST

START_TEST(create_refuses_non_json_and_oversized_bodies)
{
    const char *text[] = {"Content-Type: text/plain", NULL};
    static char big[20000];
    struct testapi_reply *r;

    r = testapi_call_h("POST", "/v1/users", text, "email=a@example.com&name=A");
    testapi_assert_problem(r, 415, "unsupported-media-type", "send application/json", NULL);
    /* A valid body padded with spaces past the limit. */
    snprintf(big, sizeof(big), "%-*s", (int)sizeof(big) - 1,
             "{\"email\":\"a@example.com\",\"name\":\"A\"}");
    r = testapi_call("POST", "/v1/users", big);
    testapi_assert_problem(r, 413, "payload-too-large", "exceeds the limit of 16384 bytes", NULL);
    r = testapi_call("PUT", "/v1/users", "{}");
    testapi_assert_problem(r, 405, "method-not-allowed", "not allowed", NULL);
    ck_assert_str_eq(testapi_header(r, "Allow"), "GET, HEAD, POST");
    ck_assert_int_eq(total_calls(), 0);
}
END_TEST

START_TEST(get_answers_the_user_with_its_etag)
{
    char id[USER_ID_LEN + 1], upper[USER_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", register_user("bob@example.com", "Bob"));
    r = testapi_call("GET", testsvc_cat("/v1/users/", id, ""), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"1\"");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "id"), id);
    ck_assert_str_eq(testapi_str(j, "email"), "bob@example.com");
    ck_assert_str_eq(testapi_str(j, "name"), "Bob");
    ck_assert_str_eq(testapi_str(j, "status"), "active");
    ck_assert_int_eq(testapi_num(j, "version"), 1);
    ck_assert_str_eq(testapi_str(j, "created_at"), "2026-01-01T00:00:00.123Z");
    json_decref(j);
    /* An id in capitals is the same id. */
    for (size_t i = 0; i <= USER_ID_LEN; i++)
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 'a' + 'A' : id[i]);
    r = testapi_call("GET", testsvc_cat("/v1/users/", upper, ""), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(fake.last_id, id);
    /* HEAD answers like GET, without a body. */
    r = testapi_call("HEAD", testsvc_cat("/v1/users/", id, ""), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"1\"");
}
END_TEST

START_TEST(get_refuses_bad_ids_and_answers_404_for_unknown_ones)
{
    const char *bad[] = {"not-a-uuid",
                         "123",
                         "0f8e1d2c-3b4a-4968-8776-5544332211000",
                         "0f8e1d2c-3b4a-4968-8776-55443322110",
                         "0f8e1d2c3b4a49688776554433221100",
                         "%27%3B%20DROP%20TABLE%20users%3B--",
                         "0f8e1d2c-3b4a-4968-8776-55443322110g",
                         NULL};
    struct testapi_reply *r;

    for (int i = 0; bad[i] != NULL; i++)
        assert_refused("GET", testsvc_cat("/v1/users/", bad[i], ""), NULL, "id",
                       "path parameter 'id' must be a UUID");
    r = testapi_call("GET", "/v1/users/%27%3B%20DROP", NULL);
    testapi_assert_problem(r, 400, "invalid-request", "not ''; DROP'", "id");
    ck_assert_int_eq(total_calls(), 0);
    r = testapi_call("GET", "/v1/users/0f8e1d2c-3b4a-4968-8776-554433221100", NULL);
    testapi_assert_problem(r, 404, "not-found",
                           "user '0f8e1d2c-3b4a-4968-8776-554433221100' not found", NULL);
    ck_assert_int_eq(calls(C_GET), 1);
}
END_TEST

START_TEST(list_by_email_answers_zero_or_one_item)
{
    struct testapi_reply *r;
    json_t *j, *items;
    char id[USER_ID_LEN + 1];

    snprintf(id, sizeof(id), "%s", register_user("a+b@example.com", "Plus"));
    r = testapi_call("GET", "/v1/users?email=a%2Bb@EXAMPLE.com", NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    items = json_object_get(j, "items");
    ck_assert_int_eq(json_array_size(items), 1);
    ck_assert_str_eq(testapi_str(json_array_get(items, 0), "id"), id);
    ck_assert(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);

    r = testapi_call("GET", "/v1/users?email=nobody@example.com", NULL);
    ck_assert_int_eq(r->status, 200);
    j = testapi_json(r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
    ck_assert(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    ck_assert_int_eq(calls(C_GET_BY_EMAIL), 2);
    ck_assert_int_eq(calls(C_LIST), 0);

    assert_refused("GET", "/v1/users?email=a+b@example.com", NULL, "email", "send it as %2B");
    assert_refused("GET", "/v1/users?email=%27%3B%20DROP%20TABLE%20users%3B--", NULL, "email",
                   "query parameter 'email' must be an email address");
    assert_refused("GET", "/v1/users?email=", NULL, "email", "it is empty");
    assert_refused("GET", "/v1/users?email=a@example.com&limit=0", NULL, "limit",
                   "query parameter 'limit'");
}
END_TEST

START_TEST(list_walks_45_users_in_pages_of_20_exactly_once)
{
    char seen[64][USER_ID_LEN + 1];
    struct fake_user *want[64];
    int nseen = 0, pages = 0, sizes[8];
    char path[512] = "/v1/users?limit=20";
    json_t *j;

    /* Three users per millisecond, so the id breaks ties in the order. */
    for (int i = 0; i < 45; i++) {
        char email[64];

        snprintf(email, sizeof(email), "u%02d@example.com", i);
        want[i] = add_user(email, "U", T0 + (44 - i) / 3);
    }
    qsort(want, 45, sizeof(struct fake_user *), by_key);
    for (;;) {
        struct testapi_reply *r = testapi_call("GET", path, NULL);
        json_t *items, *next;

        ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
        ck_assert_int_lt(pages, 5);
        j = testapi_json(r);
        items = json_object_get(j, "items");
        sizes[pages++] = (int)json_array_size(items);
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *id = testapi_str(json_array_get(items, i), "id");

            for (int k = 0; k < nseen; k++)
                ck_assert_msg(strcmp(seen[k], id) != 0, "user %s listed twice", id);
            ck_assert_str_eq(id, want[nseen]->id);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", id);
        }
        next = json_object_get(j, "next_cursor");
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        ck_assert(json_is_string(next));
        /* Opaque and URL-safe: it goes into the next URL as it is. */
        ck_assert_int_eq(strspn(json_string_value(next), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
                                                         "mnopqrstuvwxyz0123456789-_"),
                         strlen(json_string_value(next)));
        snprintf(path, sizeof(path), "/v1/users?limit=20&cursor=%s", json_string_value(next));
        json_decref(j);
    }
    ck_assert_int_eq(nseen, 45);
    ck_assert_int_eq(pages, 3);
    ck_assert_int_eq(sizes[0], 20);
    ck_assert_int_eq(sizes[1], 20);
    ck_assert_int_eq(sizes[2], 5);
    ck_assert_int_eq(calls(C_LIST), 3);

    /* The default page is 20, and 100 is allowed. */
    j = testapi_json(testapi_call("GET", "/v1/users", NULL));
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 20);
    ck_assert_int_eq(fake.last_limit, 20);
    json_decref(j);
    j = testapi_json(testapi_call("GET", "/v1/users?limit=100", NULL));
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 45);
    ck_assert(json_is_null(json_object_get(j, "next_cursor")));
    ck_assert_int_eq(fake.last_limit, 100);
    json_decref(j);
}
END_TEST

START_TEST(list_refuses_bad_limits_and_cursors)
{
    const char *limits[] = {"0", "101", "-1", "abc", "1.5", "", "20x", "99999999999999999999",
                            NULL};
    const char *cursors[] = {"", "!!!", "abc", "a", "MTIzOm5vdC1hLXV1aWQ", /* "123:not-a-uuid" */
                             "Ong",                                        /* ":x" */
                             "eHl6OjBmOGUxZDJjLTNiNGEtNDk2OC04Nzc2LTU1NDQzMzIyMTEwMA",
                             /* "xyz:0f8e..." */
                             NULL};

    for (int i = 0; limits[i] != NULL; i++)
        assert_refused("GET", testsvc_cat("/v1/users?limit=", limits[i], ""), NULL, "limit",
                       "query parameter 'limit' must be");
    for (int i = 0; cursors[i] != NULL; i++)
        assert_refused("GET", testsvc_cat("/v1/users?cursor=", cursors[i], ""), NULL, "cursor",
                       "query parameter 'cursor' is not a valid cursor");
    ck_assert_int_eq(total_calls(), 0);
}
END_TEST

START_TEST(patch_renames_with_if_match_and_bumps_the_etag)
{
    const char *hdrs[] = {"If-Match: \"1\"", NULL};
    const char *merge[] = {"If-Match: \"2\"", "Content-Type: application/merge-patch+json", NULL};
    char id[USER_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", register_user("cat@example.com", "Cat"));
    r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), hdrs,
                       "{\"name\":\"  Catherine  \"}");
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"2\"");
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "name"), "Catherine");
    ck_assert_str_eq(testapi_str(j, "email"), "cat@example.com");
    ck_assert_int_eq(testapi_num(j, "version"), 2);
    ck_assert_str_eq(testapi_str(j, "created_at"), "2026-01-01T00:00:00.123Z");
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:01.123Z");
    json_decref(j);
    ck_assert_int_eq(fake.expected_version, 1);
    ck_assert_int_eq(strlen(fake.traceparent), 55);

    r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), merge, "{\"name\":\"Cathy\"}");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"3\"");
    r = testapi_call("GET", testsvc_cat("/v1/users/", id, ""), NULL);
    ck_assert_str_eq(testapi_header(r, "ETag"), "\"3\"");
}
END_TEST

START_TEST(patch_with_a_stale_version_is_412)
{
    const char *stale[] = {"If-Match: \"1\"", NULL};
    char id[USER_ID_LEN + 1];
    struct testapi_reply *r;

    snprintf(id, sizeof(id), "%s", register_user("dan@example.com", "Dan"));
    ck_assert_int_eq(
        testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), stale, "{\"name\":\"D\"}")
            ->status,
        200);
    r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), stale, "{\"name\":\"Late\"}");
    testapi_assert_problem(r, 412, "precondition-failed", "is no longer at version 1", NULL);
    ck_assert_str_eq(fake.users[0].name, "D");
    r = testapi_call_h("PATCH", "/v1/users/0f8e1d2c-3b4a-4968-8776-554433221100", stale,
                       "{\"name\":\"Nobody\"}");
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
}
END_TEST

START_TEST(patch_without_if_match_is_428_and_a_bad_one_400)
{
    const char *bad[] = {"1",
                         "W/\"1\"",
                         "*",
                         "\"1\", \"2\"",
                         "\"abc\"",
                         "\"01\"",
                         "\"0\"",
                         "\"\"",
                         "\"99999999999999999999\"",
                         "\"1",
                         "'1'",
                         NULL};
    char id[USER_ID_LEN + 1], h[128];
    struct testapi_reply *r;
    int before;

    snprintf(id, sizeof(id), "%s", register_user("eve@example.com", "Eve"));
    before = total_calls();
    r = testapi_call("PATCH", testsvc_cat("/v1/users/", id, ""), "{\"name\":\"Mallory\"}");
    testapi_assert_problem(r, 428, "precondition-required", "send If-Match", NULL);
    for (int i = 0; bad[i] != NULL; i++) {
        const char *hdrs[] = {h, NULL};

        snprintf(h, sizeof(h), "If-Match: %s", bad[i]);
        r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), hdrs,
                           "{\"name\":\"Mallory\"}");
        testapi_assert_problem(r, 400, "invalid-request", "header 'If-Match' must be one ETag",
                               "If-Match");
    }
    {
        const char *ok[] = {"If-Match: \"1\"", NULL};

        r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), ok,
                           "{\"name\":\"Eve\",\"email\":\"x\"}");
        testapi_assert_problem(r, 400, "invalid-request", "field 'email' is not allowed", "email");
        r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), ok, "{}");
        testapi_assert_problem(r, 400, "invalid-request", "field 'name' is required", "name");
        r = testapi_call_h("PATCH", testsvc_cat("/v1/users/", id, ""), ok, "{\"name\":12}");
        testapi_assert_problem(r, 400, "invalid-request", "field 'name' must be a string", "name");
        r = testapi_call_h("PATCH", "/v1/users/nope", ok, "{\"name\":\"x\"}");
        testapi_assert_problem(r, 400, "invalid-request", "path parameter 'id' must be a UUID",
                               "id");
    }
    ck_assert_int_eq(total_calls(), before);
    ck_assert_str_eq(fake.users[0].name, "Eve");
}
END_TEST

START_TEST(delete_answers_204_then_the_user_is_gone)
{
    const char *hdrs[] = {"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          NULL};
    char id[USER_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", register_user("fay@example.com", "Fay"));
    r = testapi_call_h("DELETE", testsvc_cat("/v1/users/", id, ""), hdrs, NULL);
    ck_assert_int_eq(r->status, 204);
    ck_assert_int_eq(r->len, 0);
    ck_assert_int_eq(calls(C_ERASE), 1);
    ck_assert(strncmp(fake.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    r = testapi_call("GET", testsvc_cat("/v1/users/", id, ""), NULL);
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
    r = testapi_call("DELETE", testsvc_cat("/v1/users/", id, ""), NULL);
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
    r = testapi_call("GET", testsvc_cat("/v1/users/", id, "/wallet"), NULL);
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
    j = testapi_json(testapi_call("GET", "/v1/users?email=fay@example.com", NULL));
    ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    assert_refused("DELETE", "/v1/users/fay", NULL, "id", "must be a UUID");
}
END_TEST

/* ---- wallets and payments --------------------------------------------------------------- */

#define CREDIT1 "5a4c6e0e-3b8f-4a52-9d3c-1f0e2b7a9c11"
#define PAY1    "0b9f2c1e-7d4a-4e6b-8f3a-2c5d9e1f4a70"

START_TEST(wallet_starts_empty)
{
    char id[USER_ID_LEN + 1];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", register_user("gus@example.com", "Gus"));
    r = testapi_call("GET", testsvc_cat("/v1/users/", id, "/wallet"), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "user_id"), id);
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 0);
    ck_assert_str_eq(testapi_str(j, "updated_at"), "2026-01-01T00:00:00.123Z");
    ck_assert_int_eq(json_object_size(j), 3);
    json_decref(j);
    r = testapi_call("GET", "/v1/users/0f8e1d2c-3b4a-4968-8776-554433221100/wallet", NULL);
    testapi_assert_problem(r, 404, "not-found",
                           "user '0f8e1d2c-3b4a-4968-8776-554433221100' not found", NULL);
    assert_refused("GET", "/v1/users/x/wallet", NULL, "id", "must be a UUID");
}
END_TEST

START_TEST(credit_is_201_then_200_on_replay_and_409_on_a_changed_request)
{
    char id[USER_ID_LEN + 1], other[USER_ID_LEN + 1], first[1024];
    struct testapi_reply *r;
    json_t *j;

    snprintf(other, sizeof(other), "%s", register_user("hal@example.com", "Hal"));
    snprintf(id, sizeof(id), "%s", register_user("ida@example.com", "Ida"));
    r = testapi_call(
        "POST", testsvc_cat("/v1/users/", id, "/wallet/credits"),
        "{\"credit_id\":\"5A4C6E0E-3B8F-4A52-9D3C-1F0E2B7A9C11\",\"amount_cents\":5000}");
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    testsvc_keep(first, sizeof(first), r);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "credit_id"), CREDIT1);
    ck_assert_str_eq(testapi_str(j, "user_id"), id);
    ck_assert_int_eq(testapi_num(j, "amount_cents"), 5000);
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 5000);
    ck_assert_str_eq(testapi_str(j, "created_at"), "2026-01-01T00:00:02.123Z");
    json_decref(j);
    ck_assert_int_eq(strlen(fake.traceparent), 55);

    r = testapi_call("POST", testsvc_cat("/v1/users/", id, "/wallet/credits"),
                     "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":5000}");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(r->body, first);
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/users/", id, "/wallet"), NULL));
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 5000);
    json_decref(j);

    r = testapi_call("POST", testsvc_cat("/v1/users/", id, "/wallet/credits"),
                     "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":6000}");
    testapi_assert_problem(r, 409, "idempotency-key-reused",
                           "credit '" CREDIT1 "' was already made", NULL);
    r = testapi_call("POST", testsvc_cat("/v1/users/", other, "/wallet/credits"),
                     "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":5000}");
    testapi_assert_problem(r, 409, "idempotency-key-reused", "different amount or user", NULL);
    r = testapi_call("POST", "/v1/users/0f8e1d2c-3b4a-4968-8776-554433221100/wallet/credits",
                     "{\"credit_id\":\"0f8e1d2c-3b4a-4968-8776-554433221101\",\"amount_cents\":1}");
    testapi_assert_problem(r, 404, "not-found", "not found", NULL);
}
END_TEST

START_TEST(credit_refuses_bad_bodies_without_touching_the_store)
{
    const char *p;
    char id[USER_ID_LEN + 1];

    snprintf(id, sizeof(id), "%s", register_user("jo@example.com", "Jo"));
    p = testsvc_cat("/v1/users/", id, "/wallet/credits");
    {
        char path[256];
        int before = total_calls();

        snprintf(path, sizeof(path), "%s", p);
        assert_refused("POST", path, "{\"credit_id\":\"nope\",\"amount_cents\":1}", "credit_id",
                       "field 'credit_id' must be a UUID");
        assert_refused("POST", path, "{\"credit_id\":1,\"amount_cents\":1}", "credit_id",
                       "must be a UUID");
        assert_refused("POST", path, "{\"amount_cents\":1}", "credit_id", "is required");
        assert_refused("POST", path, "{\"credit_id\":\"" CREDIT1 "\"}", "amount_cents",
                       "is required");
        assert_refused("POST", path, "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":0}",
                       "amount_cents",
                       "field 'amount_cents' must be an integer from 1 to 1000000000");
        assert_refused("POST", path, "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":-5}",
                       "amount_cents", "from 1 to 1000000000");
        assert_refused("POST", path, "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1000000001}",
                       "amount_cents", "from 1 to 1000000000");
        assert_refused("POST", path, "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1.5}",
                       "amount_cents", "must be an integer");
        assert_refused("POST", path, "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":\"100\"}",
                       "amount_cents", "must be an integer");
        assert_refused("POST", path,
                       "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1,\"note\":\"x\"}", "note",
                       "field 'note' is not allowed");
        assert_refused("POST", path, "not json", "", "malformed JSON");
        assert_refused("POST", "/v1/users/42/wallet/credits",
                       "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1}", "id",
                       "must be a UUID");
        ck_assert_int_eq(total_calls(), before);
    }
}
END_TEST

START_TEST(payment_is_201_then_200_on_replay_409_when_short_or_reused)
{
    char id[USER_ID_LEN + 1], body[512], first[1024];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", register_user("kim@example.com", "Kim"));
    testapi_call("POST", testsvc_cat("/v1/users/", id, "/wallet/credits"),
                 "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1000}");

    snprintf(body, sizeof(body),
             "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"%s\",\"amount_cents\":1999}", id);
    r = testapi_call("POST", "/v1/payments", body);
    testapi_assert_problem(r, 409, "insufficient-funds", "holds less than 1999 cents", NULL);
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/users/", id, "/wallet"), NULL));
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 1000);
    json_decref(j);

    snprintf(body, sizeof(body),
             "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"%s\",\"amount_cents\":999}", id);
    r = testapi_call("POST", "/v1/payments", body);
    ck_assert_msg(r->status == 201, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    testsvc_keep(first, sizeof(first), r);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "payment_id"), PAY1);
    ck_assert_str_eq(testapi_str(j, "user_id"), id);
    ck_assert_int_eq(testapi_num(j, "amount_cents"), 999);
    ck_assert_str_eq(testapi_str(j, "status"), "captured");
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 1);
    ck_assert(json_is_null(json_object_get(j, "refunded_at")));
    ck_assert_int_eq(json_object_size(j), 7);
    json_decref(j);

    r = testapi_call("POST", "/v1/payments", body);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(r->body, first);
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/users/", id, "/wallet"), NULL));
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 1);
    json_decref(j);

    snprintf(body, sizeof(body),
             "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"%s\",\"amount_cents\":1}", id);
    r = testapi_call("POST", "/v1/payments", body);
    testapi_assert_problem(r, 409, "idempotency-key-reused", "payment '" PAY1 "' was already made",
                           NULL);
    r = testapi_call("POST", "/v1/payments",
                     "{\"payment_id\":\"0f8e1d2c-3b4a-4968-8776-554433221101\",\"user_id\":"
                     "\"0f8e1d2c-3b4a-4968-8776-554433221100\",\"amount_cents\":1}");
    testapi_assert_problem(r, 404, "not-found",
                           "user '0f8e1d2c-3b4a-4968-8776-554433221100' not found", NULL);
}
END_TEST

START_TEST(payment_refuses_bad_bodies_without_touching_the_store)
{
    assert_refused("POST", "/v1/payments",
                   "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"bob\",\"amount_cents\":1}",
                   "user_id", "field 'user_id' must be a UUID");
    assert_refused("POST", "/v1/payments",
                   "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"'; DROP TABLE users;--\","
                   "\"amount_cents\":1}",
                   "user_id", "must be a UUID");
    assert_refused("POST", "/v1/payments", "{\"user_id\":\"" PAY1 "\",\"amount_cents\":1}",
                   "payment_id", "field 'payment_id' is required");
    assert_refused("POST", "/v1/payments",
                   "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"" PAY1 "\",\"amount_cents\":0}",
                   "amount_cents", "from 1 to 1000000000");
    assert_refused("POST", "/v1/payments",
                   "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"" PAY1
                   "\",\"amount_cents\":10000000000}",
                   "amount_cents", "from 1 to 1000000000");
    assert_refused("POST", "/v1/payments",
                   "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"" PAY1
                   "\",\"amount_cents\":1,\"currency\":\"EUR\"}",
                   "currency", "is not allowed");
    assert_refused("POST", "/v1/payments", "{\"payment_id\":", "", "malformed JSON");
    ck_assert_int_eq(total_calls(), 0);
}
END_TEST

START_TEST(refund_is_idempotent)
{
    char id[USER_ID_LEN + 1], body[512], first[1024];
    struct testapi_reply *r;
    json_t *j;

    snprintf(id, sizeof(id), "%s", register_user("lee@example.com", "Lee"));
    testapi_call("POST", testsvc_cat("/v1/users/", id, "/wallet/credits"),
                 "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1000}");
    snprintf(body, sizeof(body),
             "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"%s\",\"amount_cents\":600}", id);
    ck_assert_int_eq(testapi_call("POST", "/v1/payments", body)->status, 201);

    r = testapi_call("POST", "/v1/payments/" PAY1 "/refund", NULL);
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    ck_assert_str_eq(testapi_header(r, "Content-Type"), "application/json");
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "");
    testsvc_keep(first, sizeof(first), r);
    j = testapi_json(r);
    ck_assert_str_eq(testapi_str(j, "payment_id"), PAY1);
    ck_assert_str_eq(testapi_str(j, "status"), "refunded");
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 1000);
    ck_assert_str_eq(testapi_str(j, "refunded_at"), "2026-01-01T00:00:03.123Z");
    json_decref(j);
    ck_assert_int_eq(strlen(fake.traceparent), 55);

    r = testapi_call("POST", "/v1/payments/" PAY1 "/refund", "{}");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(testapi_header(r, "Idempotent-Replayed"), "true");
    ck_assert_str_eq(r->body, first);
    j = testapi_json(testapi_call("GET", testsvc_cat("/v1/users/", id, "/wallet"), NULL));
    ck_assert_int_eq(testapi_num(j, "balance_cents"), 1000);
    json_decref(j);

    r = testapi_call("POST", "/v1/payments/0f8e1d2c-3b4a-4968-8776-554433221100/refund", NULL);
    testapi_assert_problem(r, 404, "not-found",
                           "payment '0f8e1d2c-3b4a-4968-8776-554433221100' not found", NULL);
    {
        int before = total_calls();

        assert_refused("POST", "/v1/payments/pay-1/refund", NULL, "payment_id",
                       "path parameter 'payment_id' must be a UUID");
        assert_refused("POST", "/v1/payments/" PAY1 "/refund", "{\"reason\":\"x\"}", "reason",
                       "field 'reason' is not allowed");
        assert_refused("POST", "/v1/payments/" PAY1 "/refund", "[]", "",
                       "request body must be a JSON object");
        ck_assert_int_eq(total_calls(), before);
    }
}
END_TEST

/* ---- failures and the contract ---------------------------------------------------------- */

START_TEST(store_unavailable_is_503_with_retry_after_on_every_route)
{
    static const struct testsvc_request routes[] = {
        {"GET", "/v1/users/" PAY1, NULL, C_GET},
        {"POST", "/v1/users", "{\"email\":\"a@example.com\",\"name\":\"A\"}", C_CREATE},
        {"GET", "/v1/users?email=a@example.com", NULL, C_GET_BY_EMAIL},
        {"GET", "/v1/users?limit=5", NULL, C_LIST},
        {"PATCH", "/v1/users/" PAY1, "{\"name\":\"B\"}", C_RENAME},
        {"DELETE", "/v1/users/" PAY1, NULL, C_ERASE},
        {"GET", "/v1/users/" PAY1 "/wallet", NULL, C_WALLET_GET},
        {"POST", "/v1/users/" PAY1 "/wallet/credits",
         "{\"credit_id\":\"" CREDIT1 "\",\"amount_cents\":1}", C_CREDIT},
        {"POST", "/v1/payments",
         "{\"payment_id\":\"" PAY1 "\",\"user_id\":\"" CREDIT1 "\",\"amount_cents\":1}", C_PAY},
        {"POST", "/v1/payments/" PAY1 "/refund", NULL, C_REFUND},
    };
    const char *hdrs[] = {"If-Match: \"1\"", NULL};

    testsvc_assert_unavailable(&fake.t, routes, sizeof(routes) / sizeof(routes[0]), hdrs,
                               "the user database is unavailable");
}
END_TEST

START_TEST(openapi_yaml_is_served_and_names_every_route)
{
    testsvc_assert_openapi(user_routes, NULL);
}
END_TEST

/* Every problem type user-svc can answer is in its openapi.yaml and docs/architecture.md, with
 * its status, and they name no other: lib's common ones, the lib codes its handlers answer,
 * and its own errors. */
START_TEST(every_problem_type_is_documented)
{
    static const int uses[] = {SVC_EPRECONDITION, SVC_EPRECONDREQUIRED, SVC_EUNPROCESSABLE,
                               SVC_EIDEMPOTENCY, SVC_OK};

    testproblems_check_openapi((const char *)user_openapi_yaml, uses, user_errors);
    testproblems_check_docs("user-svc", user_errors);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("user_http");
    TCase *tc = tcase_create("api");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_answers_201_with_location_etag_and_the_user);
    tcase_add_test(tc, create_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, names_refuse_bidi_and_zero_width_characters_without_touching_the_store);
    tcase_add_test(tc, create_takes_names_verbatim_and_emails_at_their_limits);
    tcase_add_test(tc, create_duplicate_email_is_409_email_taken);
    tcase_add_test(tc, create_refuses_non_json_and_oversized_bodies);
    tcase_add_test(tc, get_answers_the_user_with_its_etag);
    tcase_add_test(tc, get_refuses_bad_ids_and_answers_404_for_unknown_ones);
    tcase_add_test(tc, list_by_email_answers_zero_or_one_item);
    tcase_add_test(tc, list_walks_45_users_in_pages_of_20_exactly_once);
    tcase_add_test(tc, list_refuses_bad_limits_and_cursors);
    tcase_add_test(tc, patch_renames_with_if_match_and_bumps_the_etag);
    tcase_add_test(tc, patch_with_a_stale_version_is_412);
    tcase_add_test(tc, patch_without_if_match_is_428_and_a_bad_one_400);
    tcase_add_test(tc, delete_answers_204_then_the_user_is_gone);
    tcase_add_test(tc, wallet_starts_empty);
    tcase_add_test(tc, credit_is_201_then_200_on_replay_and_409_on_a_changed_request);
    tcase_add_test(tc, credit_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, payment_is_201_then_200_on_replay_409_when_short_or_reused);
    tcase_add_test(tc, payment_refuses_bad_bodies_without_touching_the_store);
    tcase_add_test(tc, refund_is_idempotent);
    tcase_add_test(tc, store_unavailable_is_503_with_retry_after_on_every_route);
    tcase_add_test(tc, openapi_yaml_is_served_and_names_every_route);
    tcase_add_test(tc, every_problem_type_is_documented);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

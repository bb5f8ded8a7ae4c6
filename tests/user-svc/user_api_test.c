/*
 * user-svc's API as a client sees it (integration): the real running user-svc of deploy/local
 * (`make up`), over HTTP, on the real PostgreSQL and Kafka. Registration and email
 * normalisation, lookups, a paginated walk of every user, renames with If-Match (also from 8
 * threads at once), deletion, the 409 types, idempotent credits, 50 concurrent payments against
 * a balance that covers 20, replays and refunds; and PostgreSQL stopped and started again
 * under the running service (503 with Retry-After, then recovery without a restart).
 *
 * Every test makes its own users, with a domain no other run uses, so runs do not meet. The
 * database test stops PostgreSQL with deploy/local/stack.sh and starts it again, also when it
 * fails.
 */
#include "testenv.h"
#include "testhttp.h"
#include "testproc.h"

#include "svc/time.h"
#include "svc/uuid.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef POLYGLOT_ROOT
#error "POLYGLOT_ROOT: the checkout, for deploy/local/stack.sh"
#endif

#define PROBLEM "urn:polyglot:problem:"

/* ---- talking to user-svc ------------------------------------------------------------------ */

static char base_url[64];

/* METHOD on the path FMT of the running user-svc, with BODY as JSON (may be NULL) and the extra
 * request HEADERS (may be NULL). Never fails the test: the callers say what they expected. */
static struct testhttp_resp call(const char *method, const char *body, const char *const *headers,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct testhttp_resp call(const char *method, const char *body, const char *const *headers,
                                 const char *fmt, ...)
{
    char url[1024];
    int n = snprintf(url, sizeof(url), "%s", base_url);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(url + n, sizeof(url) - (size_t)n, fmt, ap);
    va_end(ap);
    return testhttp_request(method, url, headers, body != NULL ? "application/json" : NULL, body);
}

/* A checked fixture: every test starts by finding user-svc where the env file says it is. */
static void require_user_svc(void)
{
    struct testhttp_resp r;

    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%s",
             testenv_get("user-svc", "HTTP_PORT"));
    r = call("GET", NULL, NULL, "/healthz");
    ck_assert_msg(r.status == 200,
                  "user-svc does not answer on %s/healthz (%s): start it with `make up`", base_url,
                  r.status == 0 ? r.error : r.body);
    testhttp_resp_release(&r);
}

/* The value of the response header NAME, or "" when absent, in a buffer of the caller's. */
static const char *header(const struct testhttp_resp *r, const char *name, char out[256])
{
    if (testhttp_header(r, name, out, 256) == NULL)
        out[0] = '\0';
    return out;
}

static void expect_status(const struct testhttp_resp *r, long want, const char *what)
{
    ck_assert_msg(r->status == want, "%s: status %ld, expected %ld: %s", what, r->status, want,
                  r->status == 0 ? r->error : r->body);
}

/* The response's body as JSON; the caller drops it. */
static json_t *body_json(const struct testhttp_resp *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body != NULL ? r->body : "", 0, &e);

    ck_assert_msg(j != NULL, "the body is not JSON (%s): '%s'", e.text, r->body);
    return j;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    ck_assert_msg(s != NULL, "no string '%s' in the body", key);
    return s;
}

static long long num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "no integer '%s' in the body", key);
    return json_integer_value(v);
}

/* R is the problem+json of STATUS and type SLUG, whose instance is the X-Request-Id. */
static void expect_problem(const struct testhttp_resp *r, long status, const char *slug,
                           const char *what)
{
    char ct[256], rid[256], type[128];
    json_t *p;

    expect_status(r, status, what);
    ck_assert_msg(strncmp(header(r, "Content-Type", ct), "application/problem+json", 24) == 0,
                  "%s: Content-Type '%s'", what, ct);
    p = body_json(r);
    snprintf(type, sizeof(type), PROBLEM "%s", slug);
    ck_assert_msg(strcmp(str(p, "type"), type) == 0, "%s: type '%s', expected '%s'", what,
                  str(p, "type"), type);
    ck_assert_int_eq(num(p, "status"), status);
    ck_assert_msg(strcmp(str(p, "instance"), header(r, "X-Request-Id", rid)) == 0,
                  "%s: instance '%s', X-Request-Id '%s'", what, str(p, "instance"), rid);
    json_decref(p);
}

/* Also the field the problem names. */
static void expect_invalid(const struct testhttp_resp *r, const char *field, const char *what)
{
    json_t *p;

    expect_problem(r, 400, "invalid-request", what);
    p = body_json(r);
    ck_assert_msg(strcmp(str(p, "field"), field) == 0, "%s: field '%s', expected '%s'", what,
                  str(p, "field"), field);
    json_decref(p);
}

/* RFC 3339 in UTC with milliseconds: 2026-11-24T10:00:00.123Z. */
static void expect_time(const json_t *o, const char *key)
{
    const char *t = str(o, key);
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    ck_assert_msg(strlen(t) == sizeof(shape) - 1, "%s '%s' is not RFC 3339 with ms", key, t);
    for (size_t i = 0; i < sizeof(shape) - 1; i++)
        ck_assert_msg(shape[i] == 'd' ? t[i] >= '0' && t[i] <= '9' : t[i] == shape[i],
                      "%s '%s' is not RFC 3339 with ms", key, t);
}

/* "it-<uuid>.example.org": a domain of this test alone. */
static void new_domain(char out[64])
{
    char u[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(u);
    snprintf(out, 64, "it-%s.example.org", u);
}

static void new_uuid(char out[SVC_UUID_STR_LEN + 1])
{
    svc_uuid_v4_str(out);
}

/* POST /v1/users; expects 201 and returns the user (the caller drops it). */
static json_t *register_user(const char *email, const char *name)
{
    char body[512];
    json_t *in = json_pack("{s:s, s:s}", "email", email, "name", name), *u;
    char *text = json_dumps(in, JSON_COMPACT);
    struct testhttp_resp r;

    snprintf(body, sizeof(body), "%s", text);
    free(text);
    json_decref(in);
    r = call("POST", body, NULL, "/v1/users");
    expect_status(&r, 201, "POST /v1/users");
    u = body_json(&r);
    testhttp_resp_release(&r);
    return u;
}

static long long balance_of(const char *id)
{
    struct testhttp_resp r = call("GET", NULL, NULL, "/v1/users/%s/wallet", id);
    json_t *w;
    long long b;

    expect_status(&r, 200, "GET wallet");
    w = body_json(&r);
    ck_assert_str_eq(str(w, "user_id"), id);
    b = num(w, "balance_cents");
    json_decref(w);
    testhttp_resp_release(&r);
    return b;
}

/* POST a credit; expects STATUS and returns the body (the caller drops it). */
static json_t *credit(const char *id, const char *credit_id, long long cents, long status)
{
    char body[160];
    struct testhttp_resp r;
    json_t *c;

    snprintf(body, sizeof(body), "{\"credit_id\":\"%s\",\"amount_cents\":%lld}", credit_id, cents);
    r = call("POST", body, NULL, "/v1/users/%s/wallet/credits", id);
    expect_status(&r, status, "POST credit");
    c = body_json(&r);
    testhttp_resp_release(&r);
    return c;
}

/* ---- users -------------------------------------------------------------------------------- */

START_TEST(register_normalises_the_email_and_the_user_reads_back)
{
    char dom[64], email[128], want[128], loc[256], etag[256], ct[256], path[128], got[256];
    struct testhttp_resp r, g;
    json_t *u, *again;
    char *esc;

    new_domain(dom);
    /* The domain in capitals, white space around both: stored trimmed, domain lower-cased,
     * the part before '@' as written. */
    snprintf(email, sizeof(email), "  Ann.Example@%s  ", dom);
    for (char *p = strchr(email, '@'); *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    snprintf(want, sizeof(want), "Ann.Example@%s", dom);
    {
        char body[256];

        snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"  Ann Example \"}", email);
        r = call("POST", body, NULL, "/v1/users");
    }
    expect_status(&r, 201, "POST /v1/users");
    ck_assert_msg(strncmp(header(&r, "Content-Type", ct), "application/json", 16) == 0, "%s", ct);
    u = body_json(&r);
    ck_assert_msg(svc_uuid_valid(str(u, "id")), "id '%s'", str(u, "id"));
    ck_assert_str_eq(str(u, "email"), want);
    ck_assert_str_eq(str(u, "name"), "Ann Example");
    ck_assert_str_eq(str(u, "status"), "active");
    ck_assert_int_eq(num(u, "version"), 1);
    expect_time(u, "created_at");
    expect_time(u, "updated_at");
    ck_assert_uint_eq(json_object_size(u), 7);
    snprintf(path, sizeof(path), "/v1/users/%s", str(u, "id"));
    ck_assert_str_eq(header(&r, "Location", loc), path);
    ck_assert_str_eq(header(&r, "ETag", etag), "\"1\"");
    ck_assert_str_ne(header(&r, "X-Request-Id", got), "");

    /* The Location reads back the same user, with the same ETag; an id in capitals too. */
    g = call("GET", NULL, NULL, "%s", loc);
    expect_status(&g, 200, "GET Location");
    again = body_json(&g);
    ck_assert_msg(json_equal(u, again), "GET %s: %s, POST gave %s", loc, g.body, r.body);
    ck_assert_str_eq(header(&g, "ETag", etag), "\"1\"");
    json_decref(again);
    testhttp_resp_release(&g);
    for (char *p = path + strlen("/v1/users/"); *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    g = call("GET", NULL, NULL, "%s", path);
    expect_status(&g, 200, "GET an id in capitals");
    again = body_json(&g);
    ck_assert_msg(json_equal(u, again), "GET %s: %s", path, g.body);
    json_decref(again);
    testhttp_resp_release(&g);

    /* Found by email, written in another case, as a list of one. */
    snprintf(email, sizeof(email), "ann.example@%s", dom);
    for (char *p = email; *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    esc = testhttp_escape(email);
    g = call("GET", NULL, NULL, "/v1/users?email=%s", esc);
    free(esc);
    expect_status(&g, 200, "GET ?email=");
    again = body_json(&g);
    ck_assert_uint_eq(json_array_size(json_object_get(again, "items")), 1);
    ck_assert_msg(json_equal(json_array_get(json_object_get(again, "items"), 0), u), "%s", g.body);
    ck_assert(json_is_null(json_object_get(again, "next_cursor")));
    json_decref(again);
    testhttp_resp_release(&g);

    /* An address nobody has: an empty list, not 404. */
    g = call("GET", NULL, NULL, "/v1/users?email=nobody%%40%s", dom);
    expect_status(&g, 200, "GET ?email= unknown");
    again = body_json(&g);
    ck_assert_uint_eq(json_array_size(json_object_get(again, "items")), 0);
    ck_assert(json_is_null(json_object_get(again, "next_cursor")));
    json_decref(again);
    testhttp_resp_release(&g);

    json_decref(u);
    testhttp_resp_release(&r);
}
END_TEST

START_TEST(unknown_users_are_404_and_bad_input_400)
{
    const char *const rid[] = {"X-Request-Id: it-user-api.404", NULL};
    char id[SVC_UUID_STR_LEN + 1], got[256], dom[64], body[256];
    struct testhttp_resp r;

    new_uuid(id);
    r = call("GET", NULL, rid, "/v1/users/%s", id);
    expect_problem(&r, 404, "not-found", "GET an unknown user");
    ck_assert_str_eq(header(&r, "X-Request-Id", got), "it-user-api.404");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users/not-a-uuid");
    expect_invalid(&r, "id", "GET /v1/users/not-a-uuid");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users/%s/wallet", id);
    expect_problem(&r, 404, "not-found", "GET the wallet of an unknown user");
    testhttp_resp_release(&r);

    /* Refused before anything is stored: the address is still free afterwards. */
    new_domain(dom);
    snprintf(body, sizeof(body), "{\"email\":\"bad@%s\",\"name\":\"\"}", dom);
    r = call("POST", body, NULL, "/v1/users");
    expect_invalid(&r, "name", "POST an empty name");
    testhttp_resp_release(&r);
    snprintf(body, sizeof(body), "{\"email\":\"bad@%s\",\"name\":\"Bad\",\"admin\":true}", dom);
    r = call("POST", body, NULL, "/v1/users");
    expect_status(&r, 400, "POST an unknown member");
    testhttp_resp_release(&r);
    r = call("POST", "{\"email\":\"no-at-sign\",\"name\":\"Bad\"}", NULL, "/v1/users");
    expect_invalid(&r, "email", "POST an address without '@'");
    testhttp_resp_release(&r);
    snprintf(body, sizeof(body), "bad@%s", dom);
    json_decref(register_user(body, "Bad"));
}
END_TEST

START_TEST(an_email_is_taken_whatever_its_case_and_spaces)
{
    char dom[64], upper[64], email[128], body[256], variants[4][128];
    json_t *u, *list;
    struct testhttp_resp r;

    new_domain(dom);
    snprintf(email, sizeof(email), "zoe@%s", dom);
    u = register_user(email, "Zoe");
    snprintf(upper, sizeof(upper), "%s", dom);
    for (char *p = upper; *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    /* The domain in capitals, with and without white space around; the part before '@' in
     * another case (uniqueness ignores case). */
    snprintf(variants[0], sizeof(variants[0]), "zoe@%s", upper);
    snprintf(variants[1], sizeof(variants[1]), "  zoe@%s  ", upper);
    snprintf(variants[2], sizeof(variants[2]), "Zoe@%s", dom);
    snprintf(variants[3], sizeof(variants[3]), "\tZOE@%s ", dom);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        json_t *in = json_pack("{s:s, s:s}", "email", variants[i], "name", "Zoe Again");
        char *text = json_dumps(in, JSON_COMPACT);

        snprintf(body, sizeof(body), "%s", text);
        free(text);
        json_decref(in);
        r = call("POST", body, NULL, "/v1/users");
        expect_problem(&r, 409, "email-taken", variants[i]);
        testhttp_resp_release(&r);
    }
    /* Still one user with that address, the first. */
    r = call("GET", NULL, NULL, "/v1/users?email=zoe%%40%s", dom);
    expect_status(&r, 200, "GET ?email=");
    list = body_json(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 1);
    ck_assert_str_eq(str(json_array_get(json_object_get(list, "items"), 0), "id"), str(u, "id"));
    json_decref(list);
    testhttp_resp_release(&r);
    json_decref(u);
}
END_TEST

/* ---- pagination --------------------------------------------------------------------------- */

static int by_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

START_TEST(a_walk_in_pages_of_7_sees_each_user_once)
{
    enum { MINE = 30, PAGE = 7 };
    char dom[64], ids[MINE][SVC_UUID_STR_LEN + 1], cursor[256] = "";
    int seen[MINE] = {0};
    char **all = NULL;
    size_t nall = 0, cap = 0, pages = 0;
    struct testhttp_resp r;

    new_domain(dom);
    for (int i = 0; i < MINE; i++) {
        char email[128];
        json_t *u;

        snprintf(email, sizeof(email), "walker.%02d@%s", i, dom);
        u = register_user(email, "Walker");
        snprintf(ids[i], sizeof(ids[i]), "%s", str(u, "id"));
        json_decref(u);
    }

    /* The walk covers every active user (other tests' too), until next_cursor is null. */
    for (;;) {
        json_t *page, *items, *next;
        char *esc = cursor[0] != '\0' ? testhttp_escape(cursor) : NULL;

        r = esc != NULL ? call("GET", NULL, NULL, "/v1/users?limit=%d&cursor=%s", PAGE, esc)
                        : call("GET", NULL, NULL, "/v1/users?limit=%d", PAGE);
        free(esc);
        expect_status(&r, 200, "GET a page");
        page = body_json(&r);
        items = json_object_get(page, "items");
        next = json_object_get(page, "next_cursor");
        ck_assert_msg(json_is_array(items) && json_array_size(items) <= PAGE,
                      "page %zu: %zu items for limit=%d", pages, json_array_size(items), PAGE);
        ck_assert_msg(json_is_null(next) || json_is_string(next), "page %zu: next_cursor %s", pages,
                      r.body);
        for (size_t i = 0; i < json_array_size(items); i++) {
            const char *id = str(json_array_get(items, i), "id");

            for (int k = 0; k < MINE; k++)
                seen[k] += strcmp(ids[k], id) == 0;
            if (nall == cap) {
                cap = cap == 0 ? 4096 : cap * 2;
                all = realloc(all, cap * sizeof(*all));
                ck_assert_ptr_nonnull(all);
            }
            all[nall++] = strdup(id);
        }
        pages++;
        if (json_is_null(next)) {
            json_decref(page);
            testhttp_resp_release(&r);
            break;
        }
        ck_assert_msg(strlen(json_string_value(next)) < sizeof(cursor), "a long cursor");
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(page);
        testhttp_resp_release(&r);
    }
    for (int k = 0; k < MINE; k++)
        ck_assert_msg(seen[k] == 1, "user '%s' seen %d times in %zu pages", ids[k], seen[k], pages);
    /* Nobody twice, of all users walked. */
    qsort(all, nall, sizeof(*all), by_id);
    for (size_t i = 1; i < nall; i++)
        ck_assert_msg(strcmp(all[i - 1], all[i]) != 0, "user '%s' seen twice in the walk", all[i]);
    fprintf(stderr, "user_api_test: walked %zu users in %zu pages of %d\n", nall, pages, PAGE);
    for (size_t i = 0; i < nall; i++)
        free(all[i]);
    free(all);
}
END_TEST

START_TEST(bad_page_parameters_are_400)
{
    struct testhttp_resp r;

    r = call("GET", NULL, NULL, "/v1/users?limit=0");
    expect_invalid(&r, "limit", "limit=0");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users?limit=101");
    expect_invalid(&r, "limit", "limit=101");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users?cursor=not-a-cursor");
    expect_invalid(&r, "cursor", "cursor=not-a-cursor");
    testhttp_resp_release(&r);
}
END_TEST

/* ---- renames and deletion ----------------------------------------------------------------- */

static struct testhttp_resp rename_user(const char *id, const char *if_match, const char *name)
{
    char h[64], body[128];
    const char *const headers[] = {h, NULL};

    snprintf(h, sizeof(h), "If-Match: %s", if_match != NULL ? if_match : "");
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    return call("PATCH", body, if_match != NULL ? headers : NULL, "/v1/users/%s", id);
}

START_TEST(a_rename_needs_the_current_etag)
{
    char dom[64], email[128], etag[256];
    struct testhttp_resp r;
    json_t *u, *v;

    new_domain(dom);
    snprintf(email, sizeof(email), "rena@%s", dom);
    u = register_user(email, "Rena");

    r = rename_user(str(u, "id"), NULL, "Rena Two");
    expect_problem(&r, 428, "precondition-required", "PATCH without If-Match");
    testhttp_resp_release(&r);
    r = rename_user(str(u, "id"), "*", "Rena Two");
    expect_invalid(&r, "If-Match", "PATCH with If-Match: *");
    testhttp_resp_release(&r);

    r = rename_user(str(u, "id"), "\"1\"", "  Rena Two ");
    expect_status(&r, 200, "PATCH with the current ETag");
    ck_assert_str_eq(header(&r, "ETag", etag), "\"2\"");
    v = body_json(&r);
    ck_assert_str_eq(str(v, "name"), "Rena Two");
    ck_assert_int_eq(num(v, "version"), 2);
    ck_assert_str_eq(str(v, "email"), str(u, "email"));
    ck_assert_str_eq(str(v, "created_at"), str(u, "created_at"));
    ck_assert_msg(strcmp(str(v, "updated_at"), str(u, "updated_at")) >= 0, "updated_at went back");
    json_decref(v);
    testhttp_resp_release(&r);

    /* The version the client saw first is stale now, and changes nothing. */
    r = rename_user(str(u, "id"), "\"1\"", "Rena Three");
    expect_problem(&r, 412, "precondition-failed", "PATCH with a stale ETag");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users/%s", str(u, "id"));
    expect_status(&r, 200, "GET after the stale PATCH");
    ck_assert_str_eq(header(&r, "ETag", etag), "\"2\"");
    v = body_json(&r);
    ck_assert_str_eq(str(v, "name"), "Rena Two");
    json_decref(v);
    testhttp_resp_release(&r);
    json_decref(u);
}
END_TEST

enum { WRITERS = 8 };

struct writer {
    pthread_barrier_t *start;
    const char *id;
    int n;
    long status;
};

static void *write_once(void *arg)
{
    struct writer *w = arg;
    char name[32];
    struct testhttp_resp r;

    snprintf(name, sizeof(name), "Writer %d", w->n);
    pthread_barrier_wait(w->start);
    r = rename_user(w->id, "\"1\"", name);
    w->status = r.status;
    testhttp_resp_release(&r);
    return NULL;
}

START_TEST(of_8_concurrent_renames_from_one_version_exactly_one_wins)
{
    char dom[64], email[128], etag[256], winner[32] = "";
    pthread_barrier_t start;
    pthread_t t[WRITERS];
    struct writer w[WRITERS];
    int ok = 0, stale = 0;
    struct testhttp_resp r;
    json_t *u, *v;

    new_domain(dom);
    snprintf(email, sizeof(email), "race@%s", dom);
    u = register_user(email, "Race");
    pthread_barrier_init(&start, NULL, WRITERS);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.start = &start, .id = str(u, "id"), .n = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, write_once, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < WRITERS; i++) {
        ok += w[i].status == 200;
        stale += w[i].status == 412;
        if (w[i].status == 200)
            snprintf(winner, sizeof(winner), "Writer %d", w[i].n);
    }
    ck_assert_msg(ok == 1 && stale == WRITERS - 1, "%d got 200 and %d got 412 of %d", ok, stale,
                  WRITERS);
    /* The user holds the winner's name, at version 2. */
    r = call("GET", NULL, NULL, "/v1/users/%s", str(u, "id"));
    expect_status(&r, 200, "GET after the race");
    ck_assert_str_eq(header(&r, "ETag", etag), "\"2\"");
    v = body_json(&r);
    ck_assert_str_eq(str(v, "name"), winner);
    json_decref(v);
    testhttp_resp_release(&r);
    json_decref(u);
}
END_TEST

START_TEST(a_deleted_user_is_gone_and_the_email_free)
{
    char dom[64], email[128];
    struct testhttp_resp r;
    json_t *u, *again, *list;

    new_domain(dom);
    snprintf(email, sizeof(email), "dora@%s", dom);
    u = register_user(email, "Dora");

    r = call("DELETE", NULL, NULL, "/v1/users/%s", str(u, "id"));
    expect_status(&r, 204, "DELETE");
    ck_assert_uint_eq(r.len, 0);
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users/%s", str(u, "id"));
    expect_problem(&r, 404, "not-found", "GET a deleted user");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users/%s/wallet", str(u, "id"));
    expect_problem(&r, 404, "not-found", "GET a deleted user's wallet");
    testhttp_resp_release(&r);
    r = call("DELETE", NULL, NULL, "/v1/users/%s", str(u, "id"));
    expect_problem(&r, 404, "not-found", "DELETE again");
    testhttp_resp_release(&r);
    r = call("GET", NULL, NULL, "/v1/users?email=dora%%40%s", dom);
    expect_status(&r, 200, "GET ?email= of a deleted user");
    list = body_json(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 0);
    json_decref(list);
    testhttp_resp_release(&r);

    /* The address registers again, as a new user. */
    again = register_user(email, "Dora Again");
    ck_assert_str_ne(str(again, "id"), str(u, "id"));
    ck_assert_str_eq(str(again, "email"), email);
    ck_assert_int_eq(num(again, "version"), 1);
    json_decref(again);
    json_decref(u);
}
END_TEST

/* ---- wallets and payments ----------------------------------------------------------------- */

START_TEST(a_credit_is_made_once_per_credit_id)
{
    char dom[64], email[128], cid[SVC_UUID_STR_LEN + 1], replayed[256], body[160];
    struct testhttp_resp r;
    json_t *u, *first, *second;

    new_domain(dom);
    snprintf(email, sizeof(email), "cred@%s", dom);
    u = register_user(email, "Cred");
    ck_assert_int_eq(balance_of(str(u, "id")), 0);

    new_uuid(cid);
    first = credit(str(u, "id"), cid, 500, 201);
    ck_assert_str_eq(str(first, "credit_id"), cid);
    ck_assert_str_eq(str(first, "user_id"), str(u, "id"));
    ck_assert_int_eq(num(first, "amount_cents"), 500);
    ck_assert_int_eq(num(first, "balance_cents"), 500);
    expect_time(first, "created_at");

    /* The same request again: the first answer, marked as a replay, and no second credit. */
    snprintf(body, sizeof(body), "{\"credit_id\":\"%s\",\"amount_cents\":500}", cid);
    r = call("POST", body, NULL, "/v1/users/%s/wallet/credits", str(u, "id"));
    expect_status(&r, 200, "POST the same credit again");
    ck_assert_str_eq(header(&r, "Idempotent-Replayed", replayed), "true");
    second = body_json(&r);
    ck_assert_msg(json_equal(first, second), "replay: %s", r.body);
    json_decref(second);
    testhttp_resp_release(&r);
    ck_assert_int_eq(balance_of(str(u, "id")), 500);

    /* The same credit_id with another amount: refused, nothing credited. */
    snprintf(body, sizeof(body), "{\"credit_id\":\"%s\",\"amount_cents\":600}", cid);
    r = call("POST", body, NULL, "/v1/users/%s/wallet/credits", str(u, "id"));
    expect_problem(&r, 409, "idempotency-key-reused", "POST a credit_id with another amount");
    testhttp_resp_release(&r);
    ck_assert_int_eq(balance_of(str(u, "id")), 500);

    json_decref(first);
    json_decref(u);
}
END_TEST

enum { PAYERS = 10, PAYMENTS_EACH = 5, PAYMENTS = PAYERS * PAYMENTS_EACH, COVERED = 20 };
#define PRICE 250LL /* cents */

struct payer {
    pthread_barrier_t *start;
    const char *user;
    long status[PAYMENTS_EACH];
    char type[PAYMENTS_EACH][64];
    long long balance[PAYMENTS_EACH]; /* after a 201 */
};

static void *pay_five(void *arg)
{
    struct payer *p = arg;

    pthread_barrier_wait(p->start);
    for (int i = 0; i < PAYMENTS_EACH; i++) {
        char pid[SVC_UUID_STR_LEN + 1], body[200];
        struct testhttp_resp r;
        json_t *j;

        new_uuid(pid);
        snprintf(body, sizeof(body),
                 "{\"payment_id\":\"%s\",\"user_id\":\"%s\",\"amount_cents\":%lld}", pid, p->user,
                 PRICE);
        r = call("POST", body, NULL, "/v1/payments");
        p->status[i] = r.status;
        p->balance[i] = -1;
        /* No assertions off the test's thread: the main thread judges what was kept here. */
        j = json_loads(r.body != NULL ? r.body : "", 0, NULL);
        if (json_is_string(json_object_get(j, "type")))
            snprintf(p->type[i], sizeof(p->type[i]), "%s",
                     json_string_value(json_object_get(j, "type")));
        if (json_is_integer(json_object_get(j, "balance_cents")))
            p->balance[i] = json_integer_value(json_object_get(j, "balance_cents"));
        json_decref(j);
        testhttp_resp_release(&r);
    }
    return NULL;
}

START_TEST(of_50_concurrent_payments_exactly_the_covered_20_pass)
{
    char dom[64], email[128], cid[SVC_UUID_STR_LEN + 1];
    pthread_barrier_t start;
    pthread_t t[PAYERS];
    static struct payer p[PAYERS];
    int captured = 0, refused = 0;
    bool balance_seen[COVERED] = {false};
    json_t *u;

    new_domain(dom);
    snprintf(email, sizeof(email), "payer@%s", dom);
    u = register_user(email, "Payer");
    new_uuid(cid);
    json_decref(credit(str(u, "id"), cid, COVERED * PRICE, 201));

    pthread_barrier_init(&start, NULL, PAYERS);
    for (int i = 0; i < PAYERS; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].start = &start;
        p[i].user = str(u, "id");
        ck_assert_int_eq(pthread_create(&t[i], NULL, pay_five, &p[i]), 0);
    }
    for (int i = 0; i < PAYERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < PAYERS; i++) {
        for (int k = 0; k < PAYMENTS_EACH; k++) {
            if (p[i].status[k] == 201) {
                long long b = p[i].balance[k];

                captured++;
                /* Each capture saw the balance its predecessors left: 19, 18, ... 0 prices. */
                ck_assert_msg(b >= 0 && b % PRICE == 0 && b / PRICE < COVERED &&
                                  !balance_seen[b / PRICE],
                              "a capture left balance_cents %lld", b);
                balance_seen[b / PRICE] = true;
            } else {
                ck_assert_msg(p[i].status[k] == 409 &&
                                  strcmp(p[i].type[k], PROBLEM "insufficient-funds") == 0,
                              "payment %d of payer %d: %ld '%s'", k, i, p[i].status[k],
                              p[i].type[k]);
                refused++;
            }
        }
    }
    ck_assert_msg(captured == COVERED && refused == PAYMENTS - COVERED,
                  "%d captured and %d refused of %d payments, the balance covered %d", captured,
                  refused, PAYMENTS, COVERED);
    ck_assert_int_eq(balance_of(str(u, "id")), 0);
    json_decref(u);
}
END_TEST

START_TEST(a_payment_replays_and_refunds_once)
{
    char dom[64], email[128], cid[SVC_UUID_STR_LEN + 1], pid[SVC_UUID_STR_LEN + 1];
    char body[200], replayed[256];
    struct testhttp_resp r;
    json_t *u, *paid, *again, *refunded;

    new_domain(dom);
    snprintf(email, sizeof(email), "refund@%s", dom);
    u = register_user(email, "Refund");
    new_uuid(cid);
    json_decref(credit(str(u, "id"), cid, 1000, 201));

    new_uuid(pid);
    snprintf(body, sizeof(body), "{\"payment_id\":\"%s\",\"user_id\":\"%s\",\"amount_cents\":300}",
             pid, str(u, "id"));
    r = call("POST", body, NULL, "/v1/payments");
    expect_status(&r, 201, "POST /v1/payments");
    paid = body_json(&r);
    ck_assert_str_eq(str(paid, "payment_id"), pid);
    ck_assert_str_eq(str(paid, "user_id"), str(u, "id"));
    ck_assert_int_eq(num(paid, "amount_cents"), 300);
    ck_assert_str_eq(str(paid, "status"), "captured");
    ck_assert_int_eq(num(paid, "balance_cents"), 700);
    ck_assert(json_is_null(json_object_get(paid, "refunded_at")));
    testhttp_resp_release(&r);

    /* Replayed: the same body, marked, and paid once. */
    r = call("POST", body, NULL, "/v1/payments");
    expect_status(&r, 200, "POST the same payment again");
    ck_assert_str_eq(header(&r, "Idempotent-Replayed", replayed), "true");
    again = body_json(&r);
    ck_assert_msg(json_equal(paid, again), "replay: %s", r.body);
    json_decref(again);
    testhttp_resp_release(&r);
    ck_assert_int_eq(balance_of(str(u, "id")), 700);
    snprintf(body, sizeof(body), "{\"payment_id\":\"%s\",\"user_id\":\"%s\",\"amount_cents\":400}",
             pid, str(u, "id"));
    r = call("POST", body, NULL, "/v1/payments");
    expect_problem(&r, 409, "idempotency-key-reused", "POST a payment_id with another amount");
    testhttp_resp_release(&r);
    ck_assert_int_eq(balance_of(str(u, "id")), 700);

    /* Refunded twice: the money comes back once; the second answer is the first. */
    r = call("POST", NULL, NULL, "/v1/payments/%s/refund", pid);
    expect_status(&r, 200, "POST refund");
    refunded = body_json(&r);
    ck_assert_str_eq(str(refunded, "status"), "refunded");
    ck_assert_int_eq(num(refunded, "amount_cents"), 300);
    ck_assert_int_eq(num(refunded, "balance_cents"), 1000);
    ck_assert_str_eq(str(refunded, "created_at"), str(paid, "created_at"));
    expect_time(refunded, "refunded_at");
    testhttp_resp_release(&r);
    ck_assert_int_eq(balance_of(str(u, "id")), 1000);
    r = call("POST", NULL, NULL, "/v1/payments/%s/refund", pid);
    expect_status(&r, 200, "POST refund again");
    again = body_json(&r);
    ck_assert_msg(json_equal(refunded, again), "second refund: %s", r.body);
    json_decref(again);
    testhttp_resp_release(&r);
    ck_assert_int_eq(balance_of(str(u, "id")), 1000);

    /* A refund of a payment that never was. */
    new_uuid(pid);
    r = call("POST", NULL, NULL, "/v1/payments/%s/refund", pid);
    expect_problem(&r, 404, "not-found", "POST refund of an unknown payment");
    testhttp_resp_release(&r);

    json_decref(refunded);
    json_decref(paid);
    json_decref(u);
}
END_TEST

/* ---- the database down -------------------------------------------------------------------- */

/* Whatever the test did, PostgreSQL runs afterwards (an unchecked fixture runs in the parent
 * process, after a failure or a timeout too). A no-op when it runs. */
static void postgres_back_up(void)
{
    if (teststack("up postgres") != 0)
        fprintf(stderr, "user_api_test: could not start postgres again\n");
}

START_TEST(with_postgres_down_it_answers_503_and_recovers)
{
    char dom[64], email[128], body[256], retry[256], ct[256];
    struct testhttp_resp ready = {0}, reg, get, health, list;
    json_t *u, *checks;
    int up;

    new_domain(dom);
    snprintf(email, sizeof(email), "before@%s", dom);
    u = register_user(email, "Before");
    ck_assert_msg(teststack("stop postgres") == 0, "stack.sh stop postgres failed");

    /* What a client sees while the database is down, kept, then judged once it runs again. */
    for (int i = 0; i < 100; i++) {
        testhttp_resp_release(&ready);
        ready = call("GET", NULL, NULL, "/readyz");
        if (ready.status == 503)
            break;
        svc_sleep_ms(100);
    }
    snprintf(body, sizeof(body), "{\"email\":\"during@%s\",\"name\":\"During\"}", dom);
    reg = call("POST", body, NULL, "/v1/users");
    get = call("GET", NULL, NULL, "/v1/users/%s", str(u, "id"));
    list = call("GET", NULL, NULL, "/v1/users?limit=7");
    health = call("GET", NULL, NULL, "/healthz");
    up = teststack("up postgres");

    expect_status(&ready, 503, "GET /readyz with postgres down");
    checks = body_json(&ready);
    ck_assert_msg(json_is_false(json_object_get(
                      json_object_get(json_object_get(checks, "checks"), "postgres"), "ok")),
                  "/readyz does not name postgres: %s", ready.body);
    json_decref(checks);
    expect_problem(&reg, 503, "unavailable", "POST /v1/users with postgres down");
    ck_assert_str_eq(header(&reg, "Retry-After", retry), "1");
    ck_assert_msg(strncmp(header(&reg, "Content-Type", ct), "application/problem+json", 24) == 0,
                  "%s", ct);
    expect_problem(&get, 503, "unavailable", "GET a user with postgres down");
    ck_assert_str_eq(header(&get, "Retry-After", retry), "1");
    expect_problem(&list, 503, "unavailable", "GET a page with postgres down");
    expect_status(&health, 200, "GET /healthz with postgres down");
    testhttp_resp_release(&ready);
    testhttp_resp_release(&reg);
    testhttp_resp_release(&get);
    testhttp_resp_release(&list);
    testhttp_resp_release(&health);

    /* Back by itself, without a restart of user-svc, within 30 s. */
    ck_assert_msg(up == 0, "stack.sh up postgres failed");
    for (int i = 0; i < 300; i++) {
        ready = call("GET", NULL, NULL, "/readyz");
        if (ready.status == 200)
            break;
        testhttp_resp_release(&ready);
        svc_sleep_ms(100);
    }
    expect_status(&ready, 200, "GET /readyz within 30 s of postgres starting again");
    testhttp_resp_release(&ready);
    /* Registration works again, and the refused one left nothing behind. */
    snprintf(email, sizeof(email), "after@%s", dom);
    json_decref(register_user(email, "After"));
    list = call("GET", NULL, NULL, "/v1/users?email=during%%40%s", dom);
    expect_status(&list, 200, "GET ?email= of the registration refused with 503");
    checks = body_json(&list);
    ck_assert_uint_eq(json_array_size(json_object_get(checks, "items")), 0);
    json_decref(checks);
    testhttp_resp_release(&list);
    json_decref(u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("user_api");
    TCase *users = tcase_create("users"), *walk = tcase_create("pagination");
    TCase *money = tcase_create("wallets_and_payments"), *down = tcase_create("database_down");

    curl_global_init(CURL_GLOBAL_ALL);
    tcase_add_checked_fixture(users, require_user_svc, NULL);
    tcase_add_test(users, register_normalises_the_email_and_the_user_reads_back);
    tcase_add_test(users, unknown_users_are_404_and_bad_input_400);
    tcase_add_test(users, an_email_is_taken_whatever_its_case_and_spaces);
    tcase_add_test(users, a_rename_needs_the_current_etag);
    tcase_add_test(users, of_8_concurrent_renames_from_one_version_exactly_one_wins);
    tcase_add_test(users, a_deleted_user_is_gone_and_the_email_free);
    suite_add_tcase(s, users);

    /* The walk covers every user in the database, which grows with every test run. */
    tcase_add_checked_fixture(walk, require_user_svc, NULL);
    tcase_set_timeout(walk, 300);
    tcase_add_test(walk, a_walk_in_pages_of_7_sees_each_user_once);
    tcase_add_test(walk, bad_page_parameters_are_400);
    suite_add_tcase(s, walk);

    tcase_add_checked_fixture(money, require_user_svc, NULL);
    tcase_add_test(money, a_credit_is_made_once_per_credit_id);
    tcase_add_test(money, of_50_concurrent_payments_exactly_the_covered_20_pass);
    tcase_add_test(money, a_payment_replays_and_refunds_once);
    suite_add_tcase(s, money);

    /* Last, as it stops the database the others need; PostgreSQL is started again after it
     * whatever happens. */
    tcase_add_checked_fixture(down, require_user_svc, NULL);
    tcase_add_unchecked_fixture(down, NULL, postgres_back_up);
    tcase_set_timeout(down, 120);
    tcase_add_test(down, with_postgres_down_it_answers_503_and_recovers);
    suite_add_tcase(s, down);

    {
        int rc = testenv_run(s);

        curl_global_cleanup();
        return rc;
    }
}

/*
 * user-svc's PostgreSQL store against the real database of deploy/local (integration): what a
 * handler observes through user.h's interface, what lands in the outbox, and the migrations.
 * The test connects with user-svc's own settings, as the service does.
 */
#include "testenv.h"

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/uuid.h"
#include "user_svc.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------- */

/* PG_DSN plus the query parameter EXTRA ("name=value"), in BUF. */
static const char *dsn_with(const char *extra, char *buf, size_t cap)
{
    const char *base = testenv_get("user-svc", "PG_DSN");

    testenv_require_port("postgres", testenv_port_of_url(base));
    snprintf(buf, cap, "%s%c%s", base, strchr(base, '?') != NULL ? '&' : '?', extra);
    return buf;
}

/* This test process's connections carry their own application_name, so a test can find
 * (and terminate) them without touching anyone else's. */
static const char *app_name(void)
{
    static char name[64];

    if (name[0] == '\0')
        snprintf(name, sizeof(name), "it_user_store_%d", (int)getpid());
    return name;
}

static struct user_pg *open_store(int pool, struct user_store *st)
{
    char extra[96], dsn[512];
    struct user_pg_opts o = {.pool_size = pool, .timeout_ms = 10000};
    struct user_pg *pg;
    int rc;

    snprintf(extra, sizeof(extra), "application_name=%s", app_name());
    o.dsn = dsn_with(extra, dsn, sizeof(dsn));
    rc = user_pg_new(&o, &pg);
    ck_assert_msg(rc == 0, "postgres: user-svc store does not open: %s", svc_err_name(rc));
    user_pg_store(pg, st);
    return pg;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The test's own connection, for looking at rows directly. */
static PGconn *db(void)
{
    PGconn *c = PQconnectdb(testenv_get("user-svc", "PG_DSN"));

    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "postgres: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static PGresult *sql(PGconn *c, const char *q, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, q, n, NULL, params, NULL, NULL, 0);

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK,
                  "'%s': %s", q, PQerrorMessage(c));
    return r;
}

/* The one value Q returns, in A. */
static const char *sql_value(PGconn *c, struct svc_arena *a, const char *q, const char *param)
{
    const char *p[1] = {param};
    PGresult *r = sql(c, q, param != NULL ? 1 : 0, p);
    const char *v;

    ck_assert_int_eq(PQntuples(r), 1);
    v = svc_arena_strdup(a, PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static const char *unique_email(struct svc_arena *a)
{
    char id[SVC_UUID_STR_LEN + 1];

    svc_uuid_v4_str(id);
    return svc_arena_printf(a, "it.%s@example.org", id);
}

static void new_uuid(char out[SVC_UUID_STR_LEN + 1])
{
    svc_uuid_v4_str(out);
}

static void create_ok(struct user_store *st, struct svc_arena *a, const char *name, struct user *u)
{
    int rc = st->create(st->ctx, a, unique_email(a), name, NULL, u);

    ck_assert_msg(rc == 0, "create: %s", svc_err_name(rc));
}

/*
 * Checks that the outbox holds exactly the events TYPES (NULL-terminated) for USER_ID, in this
 * order, each a valid CloudEvent from /user-svc about that user. Returns the parsed events
 * (free each with svc_event_free).
 */
static struct svc_event **expect_events(const char *user_id, const char *const *types)
{
    PGconn *c = db();
    const char *p[1] = {user_id};
    PGresult *r = sql(c,
                      "SELECT type, payload, event_id::text, topic FROM outbox WHERE key = $1 "
                      "ORDER BY id",
                      1, p);
    size_t n = 0;
    struct svc_event **evs;

    while (types[n] != NULL)
        n++;
    ck_assert_msg((size_t)PQntuples(r) == n, "user '%s': %d events in the outbox, expected %zu",
                  user_id, PQntuples(r), n);
    evs = calloc(n + 1, sizeof(*evs)); /* NOLINT(bugprone-sizeof-expression): pointers */
    for (size_t i = 0; i < n; i++) {
        char err[SVC_EVENT_ERR_MAX];
        const char *payload = PQgetvalue(r, (int)i, 1);
        int rc = svc_event_parse(payload, strlen(payload), &evs[i], err, sizeof(err));

        ck_assert_msg(rc == 0, "outbox event %zu of '%s' is not a CloudEvent: %s", i, user_id, err);
        ck_assert_str_eq(PQgetvalue(r, (int)i, 0), types[i]);
        ck_assert_str_eq(evs[i]->type, types[i]);
        ck_assert_str_eq(evs[i]->id, PQgetvalue(r, (int)i, 2));
        ck_assert_str_eq(evs[i]->source, "/user-svc");
        ck_assert_str_eq(evs[i]->subject, user_id);
        ck_assert_str_eq(PQgetvalue(r, (int)i, 3), "user-events");
    }
    PQclear(r);
    PQfinish(c);
    return evs;
}

static void free_events(struct svc_event **evs)
{
    for (size_t i = 0; evs[i] != NULL; i++)
        svc_event_free(evs[i]);
    free(evs);
}

static const char *data_str(const struct svc_event *ev, const char *key)
{
    json_t *v = json_object_get(ev->data, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_int_t data_int(const struct svc_event *ev, const char *key)
{
    json_t *v = json_object_get(ev->data, key);

    ck_assert_msg(json_is_integer(v), "data.%s is not an integer", key);
    return json_integer_value(v);
}

/* ---- users --------------------------------------------------------------------------------- */

START_TEST(create_then_read_back)
{
    struct user_store st;
    struct user_pg *pg = open_store(2, &st);
    struct svc_arena *a = svc_arena_new();
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const char *email = unique_email(a);
    char upper[128];
    struct user u, g;
    struct wallet w;
    struct svc_event **evs;
    const char *const types[] = {EV_USER_REGISTERED, NULL};
    int rc;

    rc = st.create(st.ctx, a, email, "Grace Hopper", tp, &u);
    ck_assert_int_eq(rc, 0);
    ck_assert(svc_uuid_valid(u.id));
    ck_assert_str_eq(u.email, email);
    ck_assert_str_eq(u.name, "Grace Hopper");
    ck_assert_str_eq(u.status, "active");
    ck_assert_int_eq(u.version, 1);
    ck_assert_int_gt(u.created_at_ms, 1700000000000);
    ck_assert_int_eq(u.updated_at_ms, u.created_at_ms);

    ck_assert_int_eq(st.get(st.ctx, a, u.id, &g), 0);
    ck_assert_str_eq(g.id, u.id);
    ck_assert_str_eq(g.email, email);
    ck_assert_str_eq(g.name, "Grace Hopper");
    ck_assert_int_eq(g.version, 1);
    ck_assert_int_eq(g.created_at_ms, u.created_at_ms);

    /* By email, whatever the case. */
    for (size_t i = 0; i <= strlen(email); i++)
        upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
    ck_assert_int_eq(st.get_by_email(st.ctx, a, upper, &g), 0);
    ck_assert_str_eq(g.id, u.id);

    /* A new user has an empty wallet. */
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_str_eq(w.user_id, u.id);
    ck_assert_int_eq(w.balance_cents, 0);

    evs = expect_events(u.id, types);
    ck_assert_str_eq(data_str(evs[0], "id"), u.id);
    ck_assert_str_eq(data_str(evs[0], "email"), email);
    ck_assert_str_eq(data_str(evs[0], "name"), "Grace Hopper");
    ck_assert_str_eq(data_str(evs[0], "status"), "active");
    ck_assert_int_eq(data_int(evs[0], "version"), 1);
    ck_assert_ptr_nonnull(evs[0]->traceparent);
    ck_assert_str_eq(evs[0]->traceparent, tp);
    free_events(evs);

    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(unknown_ids_are_not_found)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    char id[SVC_UUID_STR_LEN + 1];
    struct user u;
    struct wallet w;

    new_uuid(id);
    ck_assert_int_eq(st.get(st.ctx, a, id, &u), SVC_ENOTFOUND);
    ck_assert_int_eq(st.get(st.ctx, a, "not-a-uuid", &u), SVC_ENOTFOUND);
    ck_assert_int_eq(st.get_by_email(st.ctx, a, "nobody.at.all@example.org", &u), SVC_ENOTFOUND);
    ck_assert_int_eq(st.rename(st.ctx, a, id, 1, "x", NULL, &u), SVC_ENOTFOUND);
    ck_assert_int_eq(st.erase(st.ctx, id, NULL), SVC_ENOTFOUND);
    ck_assert_int_eq(st.wallet_get(st.ctx, id, &w), SVC_ENOTFOUND);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(duplicate_email_is_refused)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    const char *email = unique_email(a);
    char upper[128];
    struct user u1, u2, u3;
    const char *const types[] = {EV_USER_REGISTERED, EV_USER_DELETED, NULL};
    PGconn *c = db();
    const char *p[1] = {email};
    PGresult *r;

    ck_assert_int_eq(st.create(st.ctx, a, email, "First", NULL, &u1), 0);
    ck_assert_int_eq(st.create(st.ctx, a, email, "Second", NULL, &u2), USER_EEMAIL_TAKEN);
    /* Emails compare without case (the handler has normalised them already). */
    for (size_t i = 0; i <= strlen(email); i++)
        upper[i] = (char)(email[i] >= 'a' && email[i] <= 'z' ? email[i] - 32 : email[i]);
    ck_assert_int_eq(st.create(st.ctx, a, upper, "Third", NULL, &u2), USER_EEMAIL_TAKEN);

    /* Nothing of the refused ones was written: one user, one event. */
    r = sql(c, "SELECT count(*) FROM users WHERE lower(email) = lower($1)", 1, p);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);

    /* Once the first is deleted, the address is free again. */
    ck_assert_int_eq(st.erase(st.ctx, u1.id, NULL), 0);
    ck_assert_int_eq(st.create(st.ctx, a, email, "Again", NULL, &u3), 0);
    ck_assert_str_ne(u3.id, u1.id);
    free_events(expect_events(u1.id, types));
    PQfinish(c);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(list_pages_cover_every_user_once_in_order)
{
    enum { N = 30, LIMIT = 7 };
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    struct user mine[N];
    int seen[N] = {0}, pages = 0, found = 0;
    int64_t after_ms;
    char after_id[USER_ID_LEN + 1] = "00000000-0000-0000-0000-000000000000";
    int64_t prev_ms = INT64_MIN;
    char prev_id[USER_ID_LEN + 1] = "";
    struct user_page page;

    for (int i = 0; i < N; i++)
        create_ok(&st, a, "Paged", &mine[i]);
    /* From just before the first of ours (earlier users do not matter here). */
    after_ms = mine[0].created_at_ms - 1;
    do {
        ck_assert_int_eq(st.list(st.ctx, a, LIMIT, after_ms, after_id, &page), 0);
        ck_assert_uint_le(page.n, LIMIT);
        ck_assert_msg(page.n == LIMIT || !page.more, "a short page says there is more");
        for (size_t i = 0; i < page.n; i++) {
            const struct user *u = &page.items[i];

            ck_assert_str_eq(u->status, "active");
            /* Strictly increasing (created_at, id): stable, no repeats. */
            ck_assert_msg(u->created_at_ms > prev_ms ||
                              (u->created_at_ms == prev_ms && strcmp(u->id, prev_id) > 0),
                          "page %d item %zu is out of order", pages, i);
            prev_ms = u->created_at_ms;
            memcpy(prev_id, u->id, sizeof(prev_id));
            for (int j = 0; j < N; j++)
                if (strcmp(u->id, mine[j].id) == 0) {
                    seen[j]++;
                    found++;
                }
        }
        if (page.more) {
            ck_assert_int_eq(page.next_created_at_ms, page.items[page.n - 1].created_at_ms);
            ck_assert_str_eq(page.next_id, page.items[page.n - 1].id);
            after_ms = page.next_created_at_ms;
            memcpy(after_id, page.next_id, sizeof(after_id));
        }
        pages++;
        ck_assert_int_lt(pages, 100000);
    } while (page.more);
    for (int j = 0; j < N; j++)
        ck_assert_msg(seen[j] == 1, "user %d seen %d times", j, seen[j]);
    ck_assert_int_eq(found, N);
    ck_assert_int_ge(pages, (N + LIMIT - 1) / LIMIT);

    /* The first page needs no position; a bad position is refused. */
    ck_assert_int_eq(st.list(st.ctx, a, 1, 0, NULL, &page), 0);
    ck_assert_uint_eq(page.n, 1);
    ck_assert_int_eq(st.list(st.ctx, a, 5, 0, "not-a-uuid", &page), SVC_EINVAL);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(rename_with_the_expected_version_only)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    struct user u, r1, g;
    struct svc_event **evs;
    const char *const types[] = {EV_USER_REGISTERED, EV_USER_UPDATED, NULL};

    create_ok(&st, a, "Ada", &u);
    ck_assert_int_eq(st.rename(st.ctx, a, u.id, 1, "Ada Lovelace", NULL, &r1), 0);
    ck_assert_str_eq(r1.name, "Ada Lovelace");
    ck_assert_int_eq(r1.version, 2);
    ck_assert_str_eq(r1.email, u.email);
    ck_assert_int_ge(r1.updated_at_ms, u.updated_at_ms);
    /* The same expected version again is stale now. */
    ck_assert_int_eq(st.rename(st.ctx, a, u.id, 1, "Someone Else", NULL, &g), SVC_EPRECONDITION);
    ck_assert_int_eq(st.rename(st.ctx, a, u.id, 7, "Someone Else", NULL, &g), SVC_EPRECONDITION);
    ck_assert_int_eq(st.get(st.ctx, a, u.id, &g), 0);
    ck_assert_str_eq(g.name, "Ada Lovelace");
    ck_assert_int_eq(g.version, 2);

    evs = expect_events(u.id, types);
    ck_assert_str_eq(data_str(evs[1], "name"), "Ada Lovelace");
    ck_assert_int_eq(data_int(evs[1], "version"), 2);
    free_events(evs);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(erase_keeps_only_a_tombstone)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    struct user u, g;
    struct wallet w;
    struct svc_event **evs;
    const char *const types[] = {EV_USER_REGISTERED, EV_USER_DELETED, NULL};
    char pay_id[SVC_UUID_STR_LEN + 1];
    struct payment pay;
    struct credit cr;
    bool replayed;
    PGconn *c = db();
    const char *p[1];
    PGresult *r;

    create_ok(&st, a, "Leaving Soon", &u);
    ck_assert_int_eq(st.erase(st.ctx, u.id, NULL), 0);
    ck_assert_int_eq(st.get(st.ctx, a, u.id, &g), SVC_ENOTFOUND);
    ck_assert_int_eq(st.get_by_email(st.ctx, a, u.email, &g), SVC_ENOTFOUND);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), SVC_ENOTFOUND);
    ck_assert_int_eq(st.rename(st.ctx, a, u.id, 2, "Back", NULL, &g), SVC_ENOTFOUND);
    ck_assert_int_eq(st.erase(st.ctx, u.id, NULL), SVC_ENOTFOUND);
    new_uuid(pay_id);
    ck_assert_int_eq(st.credit(st.ctx, u.id, pay_id, 100, NULL, &cr, &replayed), SVC_ENOTFOUND);
    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 100, NULL, &pay, &replayed), SVC_ENOTFOUND);

    /* The row itself: no personal data left. */
    p[0] = u.id;
    r = sql(c,
            "SELECT email IS NULL, name IS NULL, status, deleted_at IS NOT NULL, version "
            "FROM users WHERE id = $1",
            1, p);
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "t");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "t");
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "deleted");
    ck_assert_str_eq(PQgetvalue(r, 0, 3), "t");
    ck_assert_str_eq(PQgetvalue(r, 0, 4), "2");
    PQclear(r);

    /* Nor in the event. */
    evs = expect_events(u.id, types);
    ck_assert_str_eq(data_str(evs[1], "id"), u.id);
    ck_assert_str_eq(data_str(evs[1], "status"), "deleted");
    ck_assert_int_eq(data_int(evs[1], "version"), 2);
    ck_assert_ptr_nonnull(data_str(evs[1], "deleted_at"));
    ck_assert_ptr_null(json_object_get(evs[1]->data, "email"));
    ck_assert_ptr_null(json_object_get(evs[1]->data, "name"));
    free_events(evs);
    PQfinish(c);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------------------- */

struct race {
    struct user_store *st;
    pthread_barrier_t *start;
    const char *user_id;
    int index;
    int ok, stale, funds, other;
};

static void *rename_racer(void *arg)
{
    struct race *x = arg;
    struct svc_arena *a = svc_arena_new();
    char name[32];
    struct user out;
    int rc;

    snprintf(name, sizeof(name), "Racer %d", x->index);
    pthread_barrier_wait(x->start);
    rc = x->st->rename(x->st->ctx, a, x->user_id, 1, name, NULL, &out);
    if (rc == 0)
        x->ok++;
    else if (rc == SVC_EPRECONDITION)
        x->stale++;
    else
        x->other = rc;
    svc_arena_free(a);
    return NULL;
}

START_TEST(concurrent_renames_with_one_version_one_wins)
{
    enum { THREADS = 8 };
    struct user_store st;
    struct user_pg *pg = open_store(THREADS, &st);
    struct svc_arena *a = svc_arena_new();
    pthread_barrier_t start;
    pthread_t t[THREADS];
    struct race x[THREADS];
    struct user u, g;
    int ok = 0, stale = 0;
    const char *const types[] = {EV_USER_REGISTERED, EV_USER_UPDATED, NULL};

    create_ok(&st, a, "Contested", &u);
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        x[i] = (struct race){.st = &st, .start = &start, .user_id = u.id, .index = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, rename_racer, &x[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(x[i].other == 0, "racer %d: %s", i, svc_err_name(x[i].other));
        ok += x[i].ok;
        stale += x[i].stale;
    }
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(stale, THREADS - 1);
    ck_assert_int_eq(st.get(st.ctx, a, u.id, &g), 0);
    ck_assert_int_eq(g.version, 2);
    free_events(expect_events(u.id, types));
    pthread_barrier_destroy(&start);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

enum { PAY_THREADS = 10, PAYS_PER_THREAD = 5 };
#define PRICE      100LL
#define AFFORDABLE 20LL

static void *payer(void *arg)
{
    struct race *x = arg;
    struct svc_arena *a = svc_arena_new();

    pthread_barrier_wait(x->start);
    for (int i = 0; i < PAYS_PER_THREAD; i++) {
        char id[SVC_UUID_STR_LEN + 1];
        struct payment p;
        bool replayed;
        int rc;

        svc_uuid_v4_str(id);
        rc = x->st->pay(x->st->ctx, a, id, x->user_id, PRICE, NULL, &p, &replayed);
        if (rc == 0 && !replayed)
            x->ok++;
        else if (rc == USER_EFUNDS)
            x->funds++;
        else
            x->other = rc != 0 ? rc : SVC_EINTERNAL;
    }
    svc_arena_free(a);
    return NULL;
}

START_TEST(concurrent_payments_never_overdraw)
{
    struct user_store st;
    struct user_pg *pg = open_store(PAY_THREADS, &st);
    struct svc_arena *a = svc_arena_new();
    pthread_barrier_t start;
    pthread_t t[PAY_THREADS];
    struct race x[PAY_THREADS];
    char credit_id[SVC_UUID_STR_LEN + 1];
    struct credit cr;
    struct wallet w;
    struct user u;
    bool replayed;
    int ok = 0, funds = 0;
    PGconn *c = db();
    const char *count;

    create_ok(&st, a, "Big Spender", &u);
    new_uuid(credit_id);
    ck_assert_int_eq(st.credit(st.ctx, u.id, credit_id, AFFORDABLE * PRICE, NULL, &cr, &replayed),
                     0);
    ck_assert_int_eq(cr.balance_cents, AFFORDABLE * PRICE);

    pthread_barrier_init(&start, NULL, PAY_THREADS);
    for (int i = 0; i < PAY_THREADS; i++) {
        x[i] = (struct race){.st = &st, .start = &start, .user_id = u.id, .index = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, payer, &x[i]), 0);
    }
    for (int i = 0; i < PAY_THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(x[i].other == 0, "payer %d: %s", i, svc_err_name(x[i].other));
        ok += x[i].ok;
        funds += x[i].funds;
    }
    ck_assert_int_eq(ok, AFFORDABLE);
    ck_assert_int_eq(funds, (long long)PAY_THREADS * PAYS_PER_THREAD - AFFORDABLE);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 0);

    /* Exactly the successful ones were recorded, each with its event. */
    count = sql_value(c, a, "SELECT count(*) FROM payments WHERE user_id = $1", u.id);
    ck_assert_str_eq(count, "20");
    count = sql_value(
        c, a, "SELECT count(*) FROM outbox WHERE key = $1 AND type = 'payment.captured'", u.id);
    ck_assert_str_eq(count, "20");
    count = sql_value(c, a,
                      "SELECT count(DISTINCT balance_after) FROM payments WHERE user_id = $1 "
                      "AND balance_after >= 0",
                      u.id);
    ck_assert_str_eq(count, "20");
    PQfinish(c);
    pthread_barrier_destroy(&start);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

/* ---- idempotency ----------------------------------------------------------------------------- */

START_TEST(credits_are_idempotent_by_credit_id)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    char key[SVC_UUID_STR_LEN + 1];
    struct credit c1, c2, c3;
    struct wallet w;
    struct user u, other;
    bool replayed = true;
    struct svc_event **evs;
    const char *const types[] = {EV_USER_REGISTERED, EV_WALLET_CREDITED, NULL};

    create_ok(&st, a, "Saver", &u);
    create_ok(&st, a, "Other Saver", &other);
    new_uuid(key);
    ck_assert_int_eq(st.credit(st.ctx, u.id, key, 2500, NULL, &c1, &replayed), 0);
    ck_assert(!replayed);
    ck_assert_str_eq(c1.credit_id, key);
    ck_assert_str_eq(c1.user_id, u.id);
    ck_assert_int_eq(c1.amount_cents, 2500);
    ck_assert_int_eq(c1.balance_cents, 2500);

    /* The same request again: the stored result, nothing credited twice. */
    ck_assert_int_eq(st.credit(st.ctx, u.id, key, 2500, NULL, &c2, &replayed), 0);
    ck_assert(replayed);
    ck_assert_int_eq(c2.balance_cents, 2500);
    ck_assert_int_eq(c2.created_at_ms, c1.created_at_ms);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 2500);

    /* The same key for another request is refused, and changes nothing. */
    ck_assert_int_eq(st.credit(st.ctx, u.id, key, 999, NULL, &c3, &replayed), SVC_EIDEMPOTENCY);
    ck_assert_int_eq(st.credit(st.ctx, other.id, key, 2500, NULL, &c3, &replayed),
                     SVC_EIDEMPOTENCY);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 2500);
    ck_assert_int_eq(st.wallet_get(st.ctx, other.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 0);

    evs = expect_events(u.id, types);
    ck_assert_str_eq(data_str(evs[1], "credit_id"), key);
    ck_assert_int_eq(data_int(evs[1], "amount_cents"), 2500);
    ck_assert_int_eq(data_int(evs[1], "balance_cents"), 2500);
    free_events(evs);

    /* Nonsense is refused before the database. */
    ck_assert_int_eq(st.credit(st.ctx, u.id, "nope", 1, NULL, &c3, &replayed), SVC_EINVAL);
    new_uuid(key);
    ck_assert_int_eq(st.credit(st.ctx, u.id, key, 0, NULL, &c3, &replayed), SVC_EINVAL);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(payments_are_idempotent_by_payment_id)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    char key[SVC_UUID_STR_LEN + 1], pay_id[SVC_UUID_STR_LEN + 1];
    struct credit cr;
    struct payment p1, p2, p3;
    struct wallet w;
    struct user u, other;
    bool replayed;
    struct svc_event **evs;
    const char *const types[] = {EV_USER_REGISTERED, EV_WALLET_CREDITED, EV_PAYMENT_CAPTURED, NULL};

    create_ok(&st, a, "Shopper", &u);
    create_ok(&st, a, "Other Shopper", &other);
    new_uuid(key);
    ck_assert_int_eq(st.credit(st.ctx, u.id, key, 1000, NULL, &cr, &replayed), 0);
    new_uuid(pay_id);
    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 300, NULL, &p1, &replayed), 0);
    ck_assert(!replayed);
    ck_assert_str_eq(p1.payment_id, pay_id);
    ck_assert_str_eq(p1.user_id, u.id);
    ck_assert_str_eq(p1.status, "captured");
    ck_assert_int_eq(p1.amount_cents, 300);
    ck_assert_int_eq(p1.balance_cents, 700);
    ck_assert_int_eq(p1.refunded_at_ms, 0);

    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 300, NULL, &p2, &replayed), 0);
    ck_assert(replayed);
    ck_assert_int_eq(p2.balance_cents, 700);
    ck_assert_int_eq(p2.created_at_ms, p1.created_at_ms);
    ck_assert_str_eq(p2.status, "captured");
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 700);

    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 301, NULL, &p3, &replayed), SVC_EIDEMPOTENCY);
    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, other.id, 300, NULL, &p3, &replayed),
                     SVC_EIDEMPOTENCY);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 700);

    /* More than the balance: refused, nothing taken, nothing recorded. */
    new_uuid(pay_id);
    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 701, NULL, &p3, &replayed), USER_EFUNDS);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 700);
    ck_assert_int_eq(st.refund(st.ctx, a, pay_id, NULL, &p3, &replayed), SVC_ENOTFOUND);

    evs = expect_events(u.id, types);
    ck_assert_str_eq(data_str(evs[2], "payment_id"), p1.payment_id);
    ck_assert_str_eq(data_str(evs[2], "status"), "captured");
    ck_assert_int_eq(data_int(evs[2], "balance_cents"), 700);
    free_events(evs);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(refund_credits_back_once)
{
    struct user_store st;
    struct user_pg *pg = open_store(1, &st);
    struct svc_arena *a = svc_arena_new();
    char key[SVC_UUID_STR_LEN + 1], pay_id[SVC_UUID_STR_LEN + 1];
    struct credit cr;
    struct payment p, r1, r2, again;
    struct wallet w;
    struct user u;
    bool replayed;
    struct svc_event **evs;
    const char *const types[] = {EV_USER_REGISTERED, EV_WALLET_CREDITED, EV_PAYMENT_CAPTURED,
                                 EV_PAYMENT_REFUNDED, NULL};

    create_ok(&st, a, "Returner", &u);
    new_uuid(key);
    ck_assert_int_eq(st.credit(st.ctx, u.id, key, 1000, NULL, &cr, &replayed), 0);
    new_uuid(pay_id);
    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 400, NULL, &p, &replayed), 0);

    ck_assert_int_eq(st.refund(st.ctx, a, pay_id, NULL, &r1, &replayed), 0);
    ck_assert(!replayed);
    ck_assert_str_eq(r1.status, "refunded");
    ck_assert_int_eq(r1.amount_cents, 400);
    ck_assert_int_eq(r1.balance_cents, 1000);
    ck_assert_int_gt(r1.refunded_at_ms, 0);
    ck_assert_int_eq(r1.created_at_ms, p.created_at_ms);

    ck_assert_int_eq(st.refund(st.ctx, a, pay_id, NULL, &r2, &replayed), 0);
    ck_assert(replayed);
    ck_assert_str_eq(r2.status, "refunded");
    ck_assert_int_eq(r2.balance_cents, 1000);
    ck_assert_int_eq(r2.refunded_at_ms, r1.refunded_at_ms);
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 1000);

    /* Paying again with a refunded payment's id returns it as it is now. */
    ck_assert_int_eq(st.pay(st.ctx, a, pay_id, u.id, 400, NULL, &again, &replayed), 0);
    ck_assert(replayed);
    ck_assert_str_eq(again.status, "refunded");
    ck_assert_int_eq(st.wallet_get(st.ctx, u.id, &w), 0);
    ck_assert_int_eq(w.balance_cents, 1000);

    evs = expect_events(u.id, types);
    ck_assert_str_eq(data_str(evs[3], "status"), "refunded");
    ck_assert_int_eq(data_int(evs[3], "balance_cents"), 1000);
    ck_assert_ptr_nonnull(data_str(evs[3], "refunded_at"));
    free_events(evs);

    ck_assert_int_eq(st.refund(st.ctx, a, "not-a-uuid", NULL, &r2, &replayed), SVC_ENOTFOUND);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

/* ---- the connection ------------------------------------------------------------------------ */

/* What a database restart does to the service's connections: every one of this process's
 * is cut. Returns how many. */
static int kill_connections(PGconn *c, struct svc_arena *a)
{
    const char *n = sql_value(c, a,
                              "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = $1",
                              app_name());

    return (int)strtol(n, NULL, 10);
}

START_TEST(reconnects_after_its_connections_are_killed)
{
    struct user_store st;
    struct user_pg *pg = open_store(2, &st);
    struct svc_arena *a = svc_arena_new();
    char why[256];
    struct user u, g;
    PGconn *c = db();

    create_ok(&st, a, "Survivor", &u);
    ck_assert(st.ready(st.ctx, why, sizeof(why)));

    /* The next read, the next probe and the next write each succeed at once, on a new
     * connection: nobody sees the restart. */
    ck_assert_int_ge(kill_connections(c, a), 1);
    ck_assert_int_eq(st.get(st.ctx, a, u.id, &g), 0);
    ck_assert_str_eq(g.id, u.id);
    ck_assert_int_ge(kill_connections(c, a), 1);
    ck_assert_msg(st.ready(st.ctx, why, sizeof(why)), "not ready: %s", why);
    ck_assert_int_ge(kill_connections(c, a), 1);
    create_ok(&st, a, "Second Survivor", &u);
    ck_assert_int_eq(st.get(st.ctx, a, u.id, &g), 0);
    PQfinish(c);
    svc_arena_free(a);
    user_pg_free(pg);
}
END_TEST

START_TEST(unreachable_database_is_unavailable)
{
    struct user_pg_opts o = {
        .dsn = "postgresql://user_svc:wrong@127.0.0.1:1/users",
        .timeout_ms = 2000,
    };
    struct user_pg *pg = NULL;

    ck_assert_int_eq(user_pg_new(&o, &pg), SVC_EUNAVAILABLE);
    ck_assert_ptr_null(pg);
}
END_TEST

/* ---- migrations -------------------------------------------------------------------------- */

START_TEST(second_start_migrates_nothing)
{
    struct user_store st;
    struct user_pg *pg;
    PGconn *c = db();
    const char *before, *after;
    struct svc_arena *a = svc_arena_new();

    pg = open_store(1, &st);
    user_pg_free(pg);
    before = sql_value(c, a,
                       "SELECT string_agg(version || name || checksum || applied_at, ',' "
                       "ORDER BY version) FROM schema_migrations",
                       NULL);
    pg = open_store(1, &st);
    user_pg_free(pg);
    after = sql_value(c, a,
                      "SELECT string_agg(version || name || checksum || applied_at, ',' "
                      "ORDER BY version) FROM schema_migrations",
                      NULL);
    ck_assert_str_eq(after, before);
    PQfinish(c);
    svc_arena_free(a);
}
END_TEST

struct migrator {
    pthread_barrier_t *start;
    char dsn[512];
    int rc;
};

static void *migrate_thread(void *arg)
{
    struct migrator *m = arg;
    struct user_pg_opts o = {.dsn = m->dsn, .pool_size = 1, .timeout_ms = 10000};
    struct user_pg *pg = NULL;

    pthread_barrier_wait(m->start);
    m->rc = user_pg_new(&o, &pg);
    user_pg_free(pg);
    return NULL;
}

START_TEST(concurrent_first_migrations_both_succeed)
{
    const char *schema = testenv_unique("it_migrations");
    char q[512], extra[128];
    struct migrator m[2];
    pthread_t t[2];
    pthread_barrier_t start;
    PGconn *c = db();
    PGresult *r;
    const char *n;
    struct svc_arena *a = svc_arena_new();
    struct user_pg_opts o = {.pool_size = 1, .timeout_ms = 10000};
    struct user_pg *pg = NULL;

    pthread_barrier_init(&start, NULL, 2);
    /* A schema of its own stands for an empty database; two replicas start at once. */
    snprintf(q, sizeof(q), "CREATE SCHEMA %s", schema);
    PQclear(sql(c, q, 0, NULL));
    snprintf(extra, sizeof(extra), "options=-csearch_path%%3D%s", schema);
    for (int i = 0; i < 2; i++) {
        m[i].rc = 1;
        m[i].start = &start;
        dsn_with(extra, m[i].dsn, sizeof(m[i].dsn));
        ck_assert_int_eq(pthread_create(&t[i], NULL, migrate_thread, &m[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(m[i].rc == 0, "migrator %d: %s", i, svc_err_name(m[i].rc));
    }
    pthread_barrier_destroy(&start);
    snprintf(q, sizeof(q),
             "SELECT count(*) = count(DISTINCT version) AND count(*) > 0 "
             "FROM %s.schema_migrations",
             schema);
    n = sql_value(c, a, q, NULL);
    ck_assert_str_eq(n, "t");
    snprintf(q, sizeof(q), "SELECT to_regclass('%s.outbox') IS NOT NULL", schema);
    n = sql_value(c, a, q, NULL);
    ck_assert_str_eq(n, "t");

    /* A migration file changed after it was applied stops the start-up. */
    snprintf(q, sizeof(q), "UPDATE %s.schema_migrations SET checksum = 'edited' WHERE version = 1",
             schema);
    PQclear(sql(c, q, 0, NULL));
    o.dsn = m[0].dsn;
    ck_assert_int_eq(user_pg_new(&o, &pg), SVC_EINTERNAL);
    ck_assert_ptr_null(pg);

    snprintf(q, sizeof(q), "DROP SCHEMA %s CASCADE", schema);
    r = sql(c, q, 0, NULL);
    PQclear(r);
    PQfinish(c);
    svc_arena_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("user_store");
    TCase *users = tcase_create("users");
    TCase *money = tcase_create("money");
    TCase *conn = tcase_create("connection");
    TCase *mig = tcase_create("migrations");

    tcase_add_test(users, create_then_read_back);
    tcase_add_test(users, unknown_ids_are_not_found);
    tcase_add_test(users, duplicate_email_is_refused);
    tcase_add_test(users, list_pages_cover_every_user_once_in_order);
    tcase_add_test(users, rename_with_the_expected_version_only);
    tcase_add_test(users, erase_keeps_only_a_tombstone);
    tcase_add_test(users, concurrent_renames_with_one_version_one_wins);
    suite_add_tcase(s, users);

    tcase_add_test(money, concurrent_payments_never_overdraw);
    tcase_add_test(money, credits_are_idempotent_by_credit_id);
    tcase_add_test(money, payments_are_idempotent_by_payment_id);
    tcase_add_test(money, refund_credits_back_once);
    suite_add_tcase(s, money);

    tcase_add_test(conn, reconnects_after_its_connections_are_killed);
    tcase_add_test(conn, unreachable_database_is_unavailable);
    suite_add_tcase(s, conn);

    tcase_add_test(mig, second_start_migrates_nothing);
    tcase_add_test(mig, concurrent_first_migrations_both_succeed);
    suite_add_tcase(s, mig);
    return testenv_run(s);
}

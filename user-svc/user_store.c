/*
 * user_store.c: user-svc's PostgreSQL store, the only file that includes libpq.
 *
 * A small pool of connections (lib's svc/pool.h) serves the store functions of user.h; each
 * connection prepares every statement once, when the pool opens it, and every query goes
 * through PQexecPrepared with parameters (no SQL is ever built from strings). A connection that
 * breaks (the database restarted) is reopened on its next use; a read that fails on a
 * connection that had been working is tried once more, since the break was most likely noticed
 * only then. Writes are not repeated: they return SVC_EUNAVAILABLE (503) and the client decides.
 *
 * Every state change and the CloudEvent it implies are written in one transaction: the change,
 * then the event row in the outbox with a NOTIFY user_outbox, so an event exists if and only if
 * its change was committed. Each write first locks the user's row (FOR SHARE for wallet
 * changes, an UPDATE for user changes) before it takes an outbox id, so one user's events get
 * increasing ids in commit order and the relay publishes them in that order.
 *
 * The outbox source for lib's relay runs on a connection of its own (LISTEN needs one).
 *
 * Driver errors are translated here, once, and logged once with their context; only SVC_E* and
 * USER_E* codes leave this file.
 */
#include "user_svc.h"

#include "svc/alloc.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/idem.h"
#include "svc/log.h"
#include "svc/migrate.h"
#include "svc/pool.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Published outbox rows are purged this often, or every retention period when shorter. */
#define PURGE_EVERY_MS 60000
/* The advisory lock key of the migrations (the relay's is USER_OUTBOX_LOCK_KEY): any
 * constant unique within the database. */
#define LOCK_MIGRATIONS "8101"

/* migrations/NNN_name.sql, compiled in by cmake/Service.cmake:
 * static const struct svc_migration migrations[] = {..., {0}}; */
#include "user_migrations.inc"

/* ---- statements ---------------------------------------------------------------------------- */

/* SQL reads best laid out as SQL: clang-format stays out of it. Times leave the database as
 * milliseconds since the epoch. */
/* clang-format off */
#define MS(col) "(extract(epoch from " col ") * 1000)::bigint"
#define NOW_MS  "date_trunc('milliseconds', now())"
#define USER_COLS                                                                                  \
    "id::text, email, name, status, version, " MS("created_at") ", " MS("updated_at")
#define CREDIT_COLS "credit_id::text, user_id::text, amount_cents, balance_after, " MS("created_at")
#define PAY_COLS                                                                                   \
    "payment_id::text, user_id::text, amount_cents, status, "                                      \
    "COALESCE(refund_balance_after, balance_after), " MS("created_at") ", "                        \
    "COALESCE(" MS("refunded_at") ", 0)"
/* clang-format on */

enum stmt {
    ST_PING,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_BY_EMAIL,
    ST_USER_LIST_FIRST,
    ST_USER_LIST_AFTER,
    ST_USER_RENAME,
    ST_USER_VERSION,
    ST_USER_ERASE,
    ST_USER_LOCK,
    ST_USER_LOCK_ANY,
    ST_WALLET_GET,
    ST_WALLET_ADD,
    ST_WALLET_DEBIT,
    ST_CREDIT_GET,
    ST_CREDIT_INSERT,
    ST_PAY_GET,
    ST_PAY_INSERT,
    ST_PAY_REFUND,
    ST_OUTBOX_ADD,
    ST_OUTBOX_LOCK,
    ST_OUTBOX_FETCH,
    ST_OUTBOX_MARK,
    ST_OUTBOX_BACKLOG,
    ST_OUTBOX_PURGE,
    ST_COUNT
};

struct stmt_def {
    const char *name;
    const char *sql;
};

/* clang-format off */
static const struct stmt_def stmts[ST_COUNT] = {
    [ST_PING] = {"ping", "SELECT 1"},
    /* The user and its empty wallet in one statement. */
    [ST_USER_INSERT] = {"user_insert",
                        "WITH u AS (INSERT INTO users (id, email, name) VALUES ($1, $2, $3) "
                        "RETURNING *), w AS (INSERT INTO wallets (user_id) SELECT id FROM u) "
                        "SELECT " USER_COLS " FROM u"},
    [ST_USER_GET] = {"user_get",
                     "SELECT " USER_COLS " FROM users WHERE id = $1 AND deleted_at IS NULL"},
    [ST_USER_BY_EMAIL] = {"user_by_email", "SELECT " USER_COLS " FROM users "
                                           "WHERE lower(email) = lower($1) AND deleted_at IS NULL"},
    [ST_USER_LIST_FIRST] = {"user_list_first", "SELECT " USER_COLS " FROM users "
                                               "WHERE deleted_at IS NULL "
                                               "ORDER BY created_at, id LIMIT $1"},
    [ST_USER_LIST_AFTER] = {"user_list_after",
                            "SELECT " USER_COLS " FROM users WHERE deleted_at IS NULL AND "
                            "(created_at, id) > (timestamptz 'epoch' + $1::bigint * "
                            "interval '1 millisecond', $2::uuid) "
                            "ORDER BY created_at, id LIMIT $3"},
    [ST_USER_RENAME] = {"user_rename",
                        "UPDATE users SET name = $3, version = version + 1, updated_at = " NOW_MS
                        " WHERE id = $1 AND version = $2 AND deleted_at IS NULL "
                        "RETURNING " USER_COLS},
    [ST_USER_VERSION] = {"user_version",
                         "SELECT version FROM users WHERE id = $1 AND deleted_at IS NULL"},
    [ST_USER_ERASE] = {"user_erase",
                       "UPDATE users SET email = NULL, name = NULL, status = 'deleted', "
                       "version = version + 1, deleted_at = " NOW_MS ", updated_at = " NOW_MS
                       " WHERE id = $1 AND deleted_at IS NULL "
                       "RETURNING version, " MS("deleted_at")},
    [ST_USER_LOCK] = {"user_lock",
                      "SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL FOR SHARE"},
    /* Refunds are compensations: they go through for a user deleted since the payment. */
    [ST_USER_LOCK_ANY] = {"user_lock_any", "SELECT 1 FROM users WHERE id = $1 FOR SHARE"},
    [ST_WALLET_GET] = {"wallet_get",
                       "SELECT w.balance_cents, " MS("w.updated_at") " FROM wallets w "
                       "JOIN users u ON u.id = w.user_id "
                       "WHERE w.user_id = $1 AND u.deleted_at IS NULL"},
    [ST_WALLET_ADD] = {"wallet_add", "UPDATE wallets SET balance_cents = balance_cents + $2, "
                                     "updated_at = " NOW_MS " WHERE user_id = $1 "
                                     "RETURNING balance_cents"},
    /* The balance never goes negative: the row is updated only when it covers the amount, and
     * concurrent debits of one wallet queue on its row lock, each seeing the balance the one
     * before it left. */
    [ST_WALLET_DEBIT] = {"wallet_debit", "UPDATE wallets SET balance_cents = balance_cents - $2, "
                                         "updated_at = " NOW_MS " WHERE user_id = $1 "
                                         "AND balance_cents >= $2 RETURNING balance_cents"},
    /* ... and the fingerprint of the request that made it (migrations/002). */
    [ST_CREDIT_GET] = {"credit_get",
                       "SELECT " CREDIT_COLS ", request_fp FROM credits WHERE credit_id = $1"},
    [ST_CREDIT_INSERT] = {"credit_insert",
                          "INSERT INTO credits (credit_id, user_id, amount_cents, balance_after) "
                          "VALUES ($1, $2, $3, $4) ON CONFLICT (credit_id) DO NOTHING "
                          "RETURNING " CREDIT_COLS},
    [ST_PAY_GET] = {"pay_get",
                    "SELECT " PAY_COLS ", request_fp FROM payments WHERE payment_id = $1"},
    [ST_PAY_INSERT] = {"pay_insert",
                       "INSERT INTO payments (payment_id, user_id, amount_cents, balance_after) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id) DO NOTHING "
                       "RETURNING " PAY_COLS},
    [ST_PAY_REFUND] = {"pay_refund", "UPDATE payments SET status = 'refunded', "
                                     "refund_balance_after = $2, refunded_at = " NOW_MS
                                     " WHERE payment_id = $1 AND status = 'captured' "
                                     "RETURNING " PAY_COLS},
    /* The event row and the relay's wake-up, both delivered only if the transaction commits. */
    [ST_OUTBOX_ADD] = {"outbox_add",
                       "WITH o AS (INSERT INTO outbox (event_id, type, topic, key, payload) "
                       "VALUES ($1, $2, $3, $4, $5) RETURNING id) "
                       "SELECT pg_notify('user_outbox', '') FROM o"},
    [ST_OUTBOX_LOCK] = {"outbox_lock",
                        "SELECT pg_try_advisory_xact_lock(" USER_OUTBOX_LOCK_KEY ")"},
    [ST_OUTBOX_FETCH] = {"outbox_fetch",
                         "SELECT id, event_id::text, topic, key, payload FROM outbox "
                         "WHERE published_at IS NULL ORDER BY id LIMIT $1 "
                         "FOR UPDATE SKIP LOCKED"},
    [ST_OUTBOX_MARK] = {"outbox_mark", "UPDATE outbox SET published_at = clock_timestamp() "
                                       "WHERE id = ANY($1::bigint[])"},
    [ST_OUTBOX_BACKLOG] = {"outbox_backlog",
                           "SELECT count(*), COALESCE(extract(epoch from clock_timestamp() - "
                           "min(created_at)), 0)::float8 FROM outbox WHERE published_at IS NULL"},
    [ST_OUTBOX_PURGE] = {"outbox_purge",
                         "DELETE FROM outbox WHERE published_at < clock_timestamp() - "
                         "$1::bigint * interval '1 millisecond'"},
};
/* clang-format on */

/* ---- connections --------------------------------------------------------------------------- */

struct conn {
    struct user_pg *pg;
    PGconn *db;
    bool broken; /* a connection-level failure: the pool closes it, and reopens it when needed */
};

struct user_pg {
    char *dsn;
    int timeout_ms;
    int64_t retention_ms;
    bool migrated;         /* by the first connection (user_pg_new) */
    struct svc_dep *dep;   /* "postgres", for the logs and /readyz */
    struct svc_pool *pool; /* the store's connections */

    /* The relay's (one thread): a pool of one LISTENing connection, held between calls. */
    struct svc_pool *relay_pool;
    struct svc_pool_conn *relay;
    PGresult *batch;
    struct svc_outbox_event *events;
    int64_t purge_at;
};

/* libpq's notices (NOTICE from "IF NOT EXISTS", WARNING) become debug log lines instead of
 * text on stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    svc_log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

/*
 * The one translation of PostgreSQL errors. R is the failed result (may be NULL); WHAT says
 * what was being done, for the log. A connection-level failure marks C broken and the database
 * down.
 */
static int pg_fail(struct conn *c, const PGresult *r, const char *what)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *constraint = r != NULL ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *msg = r != NULL && PQresultErrorMessage(r)[0] != '\0' ? PQresultErrorMessage(r)
                                                                      : PQerrorMessage(c->db);
    int len = (int)strcspn(msg, "\n");

    /* No SQLSTATE: libpq's own failure (the connection lost, out of memory). Class 08 is
     * connection exceptions; 57P01-03 an administrator shutdown, a crash, a start-up. */
    if (PQstatus(c->db) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0) {
        c->broken = true;
        svc_dep_down(c->pg->dep, NULL, "%s: %.*s", what, len, msg);
        return SVC_EUNAVAILABLE;
    }
    if (strcmp(state, "23505") == 0 && constraint != NULL &&
        strcmp(constraint, "users_email_active") == 0)
        return USER_EEMAIL_TAKEN;
    if (strcmp(state, "23514") == 0 && constraint != NULL &&
        strcmp(constraint, "wallets_balance_nonnegative") == 0)
        return USER_EFUNDS;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        svc_log_warn("postgres: %s: %.*s (sqlstate %s), to be retried", what, len, msg, state);
        return SVC_EAGAIN;
    }
    if (strcmp(state, "57014") == 0) {
        svc_log_warn("postgres: %s: %.*s", what, len, msg);
        return SVC_ETIMEDOUT;
    }
    if (strcmp(state, "22003") == 0) {
        svc_log_info("postgres: %s: %.*s", what, len, msg);
        return SVC_EUNPROCESSABLE;
    }
    svc_log_error("postgres: %s failed: %.*s (sqlstate %s%s%s)", what, len, msg, state,
                  constraint != NULL ? ", constraint " : "", constraint != NULL ? constraint : "");
    return SVC_EINTERNAL;
}

static bool res_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* Runs a fixed command without parameters (BEGIN, COMMIT, ROLLBACK, LISTEN, a migration). */
static int run(struct conn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c->db, sql);
    int rc = res_ok(r) ? 0 : pg_fail(c, r, what);

    PQclear(r);
    return rc;
}

/* Runs prepared statement S. On success stores the result in *OUT (PQclear it), or clears it
 * when OUT is NULL. */
static int q(struct conn *c, enum stmt s, int n, const char *const *params, PGresult **out)
{
    PGresult *r = PQexecPrepared(c->db, stmts[s].name, n, params, NULL, NULL, 0);

    if (out != NULL)
        *out = NULL;
    if (!res_ok(r)) {
        int rc = pg_fail(c, r, stmts[s].name);

        PQclear(r);
        return rc;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

static int migrate(struct conn *c);

/* Opens C's connection, without preparing anything (migrations come first). */
static int conn_connect(struct conn *c)
{
    struct user_pg *pg = c->pg;
    char timeout_s[16];
    /* Defaults first: what the DSN says (expanded at "dbname") wins. */
    const char *const keys[] = {"connect_timeout",
                                "application_name",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "dbname",
                                NULL};
    const char *const vals[] = {timeout_s, "user-svc", "10", "5", "3", pg->dsn, NULL};

    /* libpq counts whole seconds and takes less than 2 as 2. */
    snprintf(timeout_s, sizeof(timeout_s), "%d", (pg->timeout_ms + 999) / 1000);
    c->db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c->db) != CONNECTION_OK) {
        svc_dep_down(pg->dep, NULL, "connect: %s", PQerrorMessage(c->db));
        return SVC_EUNAVAILABLE;
    }
    PQsetNoticeProcessor(c->db, on_notice, NULL);
    return 0;
}

/* Sets the session up and prepares every statement. */
static int conn_prepare(struct conn *c, bool listen)
{
    char timeout[32];
    const char *p[1] = {timeout};
    PGresult *r;
    int rc;

    snprintf(timeout, sizeof(timeout), "%dms", c->pg->timeout_ms);
    r = PQexecParams(c->db, "SELECT set_config('statement_timeout', $1, false)", 1, NULL, p, NULL,
                     NULL, 0);
    rc = res_ok(r) ? 0 : pg_fail(c, r, "set statement_timeout");
    PQclear(r);
    for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
        r = PQprepare(c->db, stmts[i].name, stmts[i].sql, 0, NULL);
        if (!res_ok(r))
            rc = pg_fail(c, r, stmts[i].name);
        PQclear(r);
    }
    if (rc == 0 && listen)
        rc = run(c, "LISTEN user_outbox", "listen");
    return rc;
}

static void conn_close(void *ctx, void *conn)
{
    struct conn *c = conn;

    (void)ctx;
    PQfinish(c->db);
    free(c);
}

/*
 * The pools' open callback (CTX is the store; LISTEN for the relay's). The first connection
 * (user_pg_new's, before the pool is shared) migrates first, without a statement timeout: a
 * migration may take long, and so may waiting for another replica's. Failures are marked on
 * the dependency by pg_fail() and conn_connect(), so WHY is left empty.
 */
static int conn_open(struct user_pg *pg, bool listen, void **out)
{
    struct conn *c = svc_calloc(1, sizeof(*c));
    int rc;

    c->pg = pg;
    if ((rc = conn_connect(c)) == 0 && !pg->migrated && (rc = migrate(c)) == 0)
        pg->migrated = true;
    if (rc == 0 && (rc = conn_prepare(c, listen)) == 0) {
        *out = c;
        return 0;
    }
    conn_close(pg, c);
    return rc;
}

/* svc_pool_ops' signature. NOLINTNEXTLINE(readability-non-const-parameter) */
static int open_store_conn(void *ctx, void **conn, char *why, size_t cap)
{
    (void)why;
    (void)cap;
    return conn_open(ctx, false, conn);
}

/* svc_pool_ops' signature. NOLINTNEXTLINE(readability-non-const-parameter) */
static int open_relay_conn(void *ctx, void **conn, char *why, size_t cap)
{
    (void)why;
    (void)cap;
    return conn_open(ctx, true, conn);
}

/* svc_pool_ops' signature. NOLINTNEXTLINE(readability-non-const-parameter) */
static int conn_ping(void *ctx, void *conn, char *why, size_t cap)
{
    (void)ctx;
    (void)why;
    (void)cap;
    return q(conn, ST_PING, 0, NULL, NULL);
}

static const struct svc_pool_ops store_ops = {open_store_conn, conn_close, conn_ping};
static const struct svc_pool_ops relay_ops = {open_relay_conn, conn_close, NULL};

/* Gives H back, ending any transaction an error path left open. */
static void release(struct user_pg *pg, struct svc_pool_conn *h)
{
    struct conn *c = h->conn;

    if (!c->broken && PQstatus(c->db) != CONNECTION_OK)
        c->broken = true;
    if (!c->broken && PQtransactionStatus(c->db) != PQTRANS_IDLE &&
        (run(c, "ROLLBACK", "rollback") != 0 || PQtransactionStatus(c->db) != PQTRANS_IDLE))
        c->broken = true;
    svc_pool_release(pg->pool, h, c->broken);
}

/*
 * One read-only statement. A connection that had been working and fails as unavailable was
 * most likely broken by a database restart noticed only now: the read is tried once more, on
 * a reopened connection.
 */
static int read1(struct user_pg *pg, enum stmt s, int n, const char *const *params, PGresult **out)
{
    *out = NULL; /* PQclear(NULL) is a no-op, so callers clear whatever the outcome */
    for (int attempt = 0;; attempt++) {
        struct svc_pool_conn *h;
        bool stale;
        int rc = svc_pool_acquire(pg->pool, 0, &h);

        if (rc != 0)
            return rc;
        rc = q(h->conn, s, n, params, out);
        stale = !h->fresh;
        release(pg, h);
        if (rc != SVC_EUNAVAILABLE || !stale || attempt > 0)
            return rc;
    }
}

/* What a transaction body may return besides 0 and errors: roll back, and tell the caller the
 * idempotency key was taken concurrently (it re-reads the stored result). */
#define TX_CONFLICT 1

/*
 * Runs BODY(C, ARG) in a transaction: COMMIT when it returns 0, ROLLBACK otherwise, and
 * returns what it returned (or the COMMIT's error). A BEGIN that fails on a stale connection
 * is tried once more, as nothing was done yet.
 */
static int tx(struct user_pg *pg, const char *what, int (*body)(struct conn *c, void *arg),
              void *arg)
{
    for (int attempt = 0;; attempt++) {
        struct svc_pool_conn *h;
        int rc = svc_pool_acquire(pg->pool, 0, &h);

        if (rc != 0)
            return rc;
        rc = run(h->conn, "BEGIN", what);
        if (rc != 0) {
            bool stale = !h->fresh;

            release(pg, h);
            if (rc == SVC_EUNAVAILABLE && stale && attempt == 0)
                continue;
            return rc;
        }
        rc = body(h->conn, arg);
        if (rc == 0)
            rc = run(h->conn, "COMMIT", what);
        /* Otherwise release() rolls back. */
        release(pg, h);
        return rc;
    }
}

/* ---- rows ---------------------------------------------------------------------------------- */

static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void col_id(const PGresult *r, int row, int col, char out[USER_ID_LEN + 1])
{
    snprintf(out, USER_ID_LEN + 1, "%s", PQgetvalue(r, row, col));
}

static const char *col_str(const PGresult *r, int row, int col, struct svc_arena *a)
{
    return PQgetisnull(r, row, col) ? NULL : svc_arena_strdup(a, PQgetvalue(r, row, col));
}

/* Columns USER_COLS from COL on. */
static void row_user(const PGresult *r, int row, struct svc_arena *a, struct user *u)
{
    memset(u, 0, sizeof(*u));
    col_id(r, row, 0, u->id);
    u->email = col_str(r, row, 1, a);
    u->name = col_str(r, row, 2, a);
    u->status = strcmp(PQgetvalue(r, row, 3), "active") == 0 ? "active" : "deleted";
    u->version = col_i64(r, row, 4);
    u->created_at_ms = col_i64(r, row, 5);
    u->updated_at_ms = col_i64(r, row, 6);
}

static void row_credit(const PGresult *r, struct credit *c)
{
    memset(c, 0, sizeof(*c));
    col_id(r, 0, 0, c->credit_id);
    col_id(r, 0, 1, c->user_id);
    c->amount_cents = col_i64(r, 0, 2);
    c->balance_cents = col_i64(r, 0, 3);
    c->created_at_ms = col_i64(r, 0, 4);
}

static void row_payment(const PGresult *r, struct payment *p)
{
    memset(p, 0, sizeof(*p));
    col_id(r, 0, 0, p->payment_id);
    col_id(r, 0, 1, p->user_id);
    p->amount_cents = col_i64(r, 0, 2);
    p->status = strcmp(PQgetvalue(r, 0, 3), "refunded") == 0 ? "refunded" : "captured";
    p->balance_cents = col_i64(r, 0, 4);
    p->created_at_ms = col_i64(r, 0, 5);
    p->refunded_at_ms = col_i64(r, 0, 6);
}

/* Writes EV's outbox row (and the NOTIFY) in C's transaction, then releases EV. */
static int outbox_add(struct conn *c, struct svc_event_out *ev)
{
    const char *p[5] = {ev->id, ev->type, TOPIC_USER_EVENTS, ev->key, svc_buf_str(&ev->json)};
    int rc = q(c, ST_OUTBOX_ADD, 5, p, NULL);

    svc_event_out_release(ev);
    return rc;
}

/* ---- users --------------------------------------------------------------------------------- */

struct user_args {
    struct svc_arena *a;
    const char *id, *email, *name, *traceparent;
    const char *version; /* rename's expected version, as text */
    struct user *out;
};

static int create_body(struct conn *c, void *arg)
{
    struct user_args *x = arg;
    char id[SVC_UUID_STR_LEN + 1];
    const char *p[3] = {id, x->email, x->name};
    struct svc_event_out ev;
    PGresult *r;
    int rc;

    svc_uuid_v4_str(id);
    if ((rc = q(c, ST_USER_INSERT, 3, p, &r)) != 0)
        return rc;
    row_user(r, 0, x->a, x->out);
    PQclear(r);
    if ((rc = user_event_user(&ev, EV_USER_REGISTERED, x->out, x->traceparent)) != 0)
        return rc;
    return outbox_add(c, &ev);
}

static int pg_create(void *ctx, struct svc_arena *a, const char *email, const char *name,
                     const char *traceparent, struct user *out)
{
    struct user_args x = {
        .a = a, .email = email, .name = name, .traceparent = traceparent, .out = out};

    return tx(ctx, "create user", create_body, &x);
}

/* One user by a statement with one parameter. */
static int get_user(struct user_pg *pg, enum stmt s, const char *param, struct svc_arena *a,
                    struct user *out)
{
    const char *p[1] = {param};
    PGresult *r;
    int rc = read1(pg, s, 1, p, &r);

    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = SVC_ENOTFOUND;
    else
        row_user(r, 0, a, out);
    PQclear(r);
    return rc;
}

static int pg_get(void *ctx, struct svc_arena *a, const char *id, struct user *out)
{
    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    return get_user(ctx, ST_USER_GET, id, a, out);
}

static int pg_get_by_email(void *ctx, struct svc_arena *a, const char *email, struct user *out)
{
    return get_user(ctx, ST_USER_BY_EMAIL, email, a, out);
}

static int pg_list(void *ctx, struct svc_arena *a, int limit, int64_t after_created_at_ms,
                   const char *after_id, struct user_page *out)
{
    char lim[16], after[24];
    const char *p[3];
    PGresult *r;
    int rc, rows;

    memset(out, 0, sizeof(*out));
    if (limit < 1)
        return SVC_EINVAL;
    if (after_id != NULL && !svc_uuid_valid(after_id))
        return SVC_EINVAL;
    /* One row more than asked tells whether there is a next page. */
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    if (after_id == NULL) {
        p[0] = lim;
        rc = read1(ctx, ST_USER_LIST_FIRST, 1, p, &r);
    } else {
        snprintf(after, sizeof(after), "%" PRId64, after_created_at_ms);
        p[0] = after;
        p[1] = after_id;
        p[2] = lim;
        rc = read1(ctx, ST_USER_LIST_AFTER, 3, p, &r);
    }
    if (rc != 0)
        return rc;
    rows = PQntuples(r);
    out->n = (size_t)(rows > limit ? limit : rows);
    out->items = svc_arena_calloc(a, (out->n > 0 ? out->n : 1) * sizeof(*out->items));
    for (size_t i = 0; i < out->n; i++)
        row_user(r, (int)i, a, &out->items[i]);
    out->more = rows > limit;
    if (out->more) {
        out->next_created_at_ms = out->items[out->n - 1].created_at_ms;
        memcpy(out->next_id, out->items[out->n - 1].id, sizeof(out->next_id));
    }
    PQclear(r);
    return 0;
}

static int rename_body(struct conn *c, void *arg)
{
    struct user_args *x = arg;
    const char *p[3] = {x->id, x->version, x->name};
    struct svc_event_out ev;
    PGresult *r;
    int rc;

    if ((rc = q(c, ST_USER_RENAME, 3, p, &r)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        /* Stale version, or no such user: which one decides between 412 and 404. */
        PQclear(r);
        if ((rc = q(c, ST_USER_VERSION, 1, p, &r)) != 0)
            return rc;
        rc = PQntuples(r) > 0 ? SVC_EPRECONDITION : SVC_ENOTFOUND;
        PQclear(r);
        return rc;
    }
    row_user(r, 0, x->a, x->out);
    PQclear(r);
    if ((rc = user_event_user(&ev, EV_USER_UPDATED, x->out, x->traceparent)) != 0)
        return rc;
    return outbox_add(c, &ev);
}

static int pg_rename(void *ctx, struct svc_arena *a, const char *id, int64_t expected_version,
                     const char *name, const char *traceparent, struct user *out)
{
    char version[24];
    struct user_args x = {
        .a = a, .id = id, .name = name, .traceparent = traceparent, .version = version, .out = out};

    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    snprintf(version, sizeof(version), "%" PRId64, expected_version);
    return tx(ctx, "rename user", rename_body, &x);
}

static int erase_body(struct conn *c, void *arg)
{
    struct user_args *x = arg;
    const char *p[1] = {x->id};
    struct svc_event_out ev;
    int64_t version, deleted_at;
    PGresult *r;
    int rc;

    if ((rc = q(c, ST_USER_ERASE, 1, p, &r)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SVC_ENOTFOUND;
    }
    version = col_i64(r, 0, 0);
    deleted_at = col_i64(r, 0, 1);
    PQclear(r);
    if ((rc = user_event_deleted(&ev, x->id, version, deleted_at, x->traceparent)) != 0)
        return rc;
    return outbox_add(c, &ev);
}

static int pg_erase(void *ctx, const char *id, const char *traceparent)
{
    struct user_args x = {.id = id, .traceparent = traceparent};

    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    return tx(ctx, "erase user", erase_body, &x);
}

/* ---- wallets, credits, payments ------------------------------------------------------------ */

static int pg_wallet_get(void *ctx, const char *user_id, struct wallet *out)
{
    const char *p[1] = {user_id};
    PGresult *r;
    int rc;

    if (!svc_uuid_valid(user_id))
        return SVC_ENOTFOUND;
    if ((rc = read1(ctx, ST_WALLET_GET, 1, p, &r)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = SVC_ENOTFOUND;
    } else {
        memset(out, 0, sizeof(*out));
        snprintf(out->user_id, sizeof(out->user_id), "%s", user_id);
        out->balance_cents = col_i64(r, 0, 0);
        out->updated_at_ms = col_i64(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

/* The fingerprint of a credit or a payment request (svc/idem.h), as migrations/002 computes it
 * from the row. */
static void money_fp(const char *kind, const char *user_id, const char *amount,
                     char fp[SVC_IDEM_FP_LEN + 1])
{
    const char *fields[3] = {kind, user_id, amount};

    svc_idem_fingerprint(fp, fields, 3);
}

/* Reads the stored result of an idempotency key: 0 with *REPLAYED set when the stored
 * fingerprint is the request's FP, SVC_EIDEMPOTENCY when the key was used for another
 * request, 1 when the key is new. The same three answers for credits, payments and
 * refunds (FP NULL: a refund, whose key is all of its request). */
static int credit_replay(struct user_pg *pg, const char *credit_id, const char *fp,
                         struct credit *out, bool *replayed)
{
    const char *p[1] = {credit_id};
    PGresult *r;
    int rc = read1(pg, ST_CREDIT_GET, 1, p, &r);

    if (rc == 0 && PQntuples(r) == 0)
        rc = 1;
    else if (rc == 0 && !svc_idem_same(PQgetvalue(r, 0, 5), fp))
        rc = SVC_EIDEMPOTENCY;
    else if (rc == 0)
        row_credit(r, out);
    *replayed = rc == 0;
    PQclear(r);
    return rc;
}

struct money_args {
    const char *key, *user_id, *amount, *traceparent;
    struct credit *credit;
    struct payment *payment;
    int64_t amount_cents;
};

/* Locks the user's row for the rest of the transaction: see the top of this file. */
static int lock_user(struct conn *c, enum stmt s, const char *user_id)
{
    const char *p[1] = {user_id};
    PGresult *r = NULL;
    int rc = q(c, s, 1, p, &r);

    if (rc == 0 && PQntuples(r) == 0)
        rc = SVC_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* Adds (or with DEBIT, takes) the amount to the user's wallet; the new balance as text. */
static int wallet_change(struct conn *c, const struct money_args *x, bool debit, char balance[24])
{
    const char *p[2] = {x->user_id, x->amount};
    PGresult *r;
    int rc = q(c, debit ? ST_WALLET_DEBIT : ST_WALLET_ADD, 2, p, &r);

    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return debit ? USER_EFUNDS : SVC_ENOTFOUND;
    }
    snprintf(balance, 24, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int credit_body(struct conn *c, void *arg)
{
    struct money_args *x = arg;
    char balance[24];
    const char *p[4] = {x->key, x->user_id, x->amount, balance};
    struct svc_event_out ev;
    PGresult *r;
    int rc;

    if ((rc = lock_user(c, ST_USER_LOCK, x->user_id)) != 0 ||
        (rc = wallet_change(c, x, false, balance)) != 0 ||
        (rc = q(c, ST_CREDIT_INSERT, 4, p, &r)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TX_CONFLICT;
    }
    row_credit(r, x->credit);
    PQclear(r);
    if ((rc = user_event_credit(&ev, x->credit, x->traceparent)) != 0)
        return rc;
    return outbox_add(c, &ev);
}

static int pg_credit(void *ctx, const char *user_id, const char *credit_id, int64_t amount_cents,
                     const char *traceparent, struct credit *out, bool *replayed)
{
    char amount[24];
    char fp[SVC_IDEM_FP_LEN + 1];
    struct money_args x = {.key = credit_id,
                           .user_id = user_id,
                           .amount = amount,
                           .traceparent = traceparent,
                           .credit = out,
                           .amount_cents = amount_cents};
    int rc;

    *replayed = false;
    if (!svc_uuid_valid(credit_id) || amount_cents <= 0)
        return SVC_EINVAL;
    if (!svc_uuid_valid(user_id))
        return SVC_ENOTFOUND;
    snprintf(amount, sizeof(amount), "%" PRId64, amount_cents);
    money_fp("credit", user_id, amount, fp);
    /* Most repeats are found by this read, without a transaction. */
    rc = credit_replay(ctx, credit_id, fp, out, replayed);
    if (rc != 1)
        return rc;
    rc = tx(ctx, "credit wallet", credit_body, &x);
    if (rc == TX_CONFLICT) {
        /* The same credit_id committed by a concurrent request since the read above. */
        rc = credit_replay(ctx, credit_id, fp, out, replayed);
        if (rc == 1) {
            svc_log_error("credit '%s' conflicted but cannot be read", credit_id);
            rc = SVC_EINTERNAL;
        }
    }
    return rc;
}

static int payment_replay(struct user_pg *pg, const char *payment_id, const char *fp,
                          struct payment *out, bool *replayed)
{
    const char *p[1] = {payment_id};
    PGresult *r;
    int rc = read1(pg, ST_PAY_GET, 1, p, &r);

    if (rc == 0 && PQntuples(r) == 0)
        rc = 1;
    else if (rc == 0 && fp != NULL && !svc_idem_same(PQgetvalue(r, 0, 7), fp))
        rc = SVC_EIDEMPOTENCY;
    else if (rc == 0)
        row_payment(r, out);
    *replayed = rc == 0;
    PQclear(r);
    return rc;
}

static int pay_body(struct conn *c, void *arg)
{
    struct money_args *x = arg;
    char balance[24];
    const char *p[4] = {x->key, x->user_id, x->amount, balance};
    struct svc_event_out ev;
    PGresult *r;
    int rc;

    if ((rc = lock_user(c, ST_USER_LOCK, x->user_id)) != 0 ||
        (rc = wallet_change(c, x, true, balance)) != 0 || (rc = q(c, ST_PAY_INSERT, 4, p, &r)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TX_CONFLICT;
    }
    row_payment(r, x->payment);
    PQclear(r);
    if ((rc = user_event_payment(&ev, EV_PAYMENT_CAPTURED, x->payment, x->traceparent)) != 0)
        return rc;
    return outbox_add(c, &ev);
}

static int pg_pay(void *ctx, struct svc_arena *a, const char *payment_id, const char *user_id,
                  int64_t amount_cents, const char *traceparent, struct payment *out,
                  bool *replayed)
{
    char amount[24], fp[SVC_IDEM_FP_LEN + 1];
    struct money_args x = {.key = payment_id,
                           .user_id = user_id,
                           .amount = amount,
                           .traceparent = traceparent,
                           .payment = out,
                           .amount_cents = amount_cents};
    int rc;

    (void)a; /* a payment has no variable-length member */
    *replayed = false;
    if (!svc_uuid_valid(payment_id) || amount_cents <= 0)
        return SVC_EINVAL;
    if (!svc_uuid_valid(user_id))
        return SVC_ENOTFOUND;
    snprintf(amount, sizeof(amount), "%" PRId64, amount_cents);
    money_fp("payment", user_id, amount, fp);
    rc = payment_replay(ctx, payment_id, fp, out, replayed);
    if (rc != 1)
        return rc;
    rc = tx(ctx, "capture payment", pay_body, &x);
    /* A concurrent request with the same payment_id may have won the insert (TX_CONFLICT) or,
     * having taken the last of the balance first, made this one look unfunded. */
    if (rc == TX_CONFLICT || rc == USER_EFUNDS) {
        int again = payment_replay(ctx, payment_id, fp, out, replayed);

        if (again != 1)
            rc = again;
        else if (rc == TX_CONFLICT)
            rc = SVC_EINTERNAL;
    }
    return rc;
}

static int refund_body(struct conn *c, void *arg)
{
    struct money_args *x = arg;
    char balance[24];
    const char *p[2] = {x->key, balance};
    struct svc_event_out ev;
    PGresult *r;
    int rc;

    if ((rc = lock_user(c, ST_USER_LOCK_ANY, x->user_id)) != 0 ||
        (rc = wallet_change(c, x, false, balance)) != 0 ||
        (rc = q(c, ST_PAY_REFUND, 2, p, &r)) != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return TX_CONFLICT; /* refunded concurrently */
    }
    row_payment(r, x->payment);
    PQclear(r);
    if ((rc = user_event_payment(&ev, EV_PAYMENT_REFUNDED, x->payment, x->traceparent)) != 0)
        return rc;
    return outbox_add(c, &ev);
}

static int pg_refund(void *ctx, struct svc_arena *a, const char *payment_id,
                     const char *traceparent, struct payment *out, bool *replayed)
{
    char amount[24], user_id[USER_ID_LEN + 1];
    struct money_args x = {.key = payment_id,
                           .user_id = user_id,
                           .amount = amount,
                           .traceparent = traceparent,
                           .payment = out};
    bool stored = false;
    int rc;

    (void)a;
    *replayed = false;
    if (!svc_uuid_valid(payment_id))
        return SVC_ENOTFOUND;
    rc = payment_replay(ctx, payment_id, NULL, out, &stored);
    if (rc == 1)
        return SVC_ENOTFOUND;
    if (rc != 0)
        return rc;
    if (strcmp(out->status, "refunded") == 0) {
        *replayed = true;
        return 0;
    }
    /* The amount and the user never change once captured. */
    snprintf(amount, sizeof(amount), "%" PRId64, out->amount_cents);
    memcpy(user_id, out->user_id, sizeof(user_id));
    x.amount_cents = out->amount_cents;
    rc = tx(ctx, "refund payment", refund_body, &x);
    if (rc == TX_CONFLICT) {
        rc = payment_replay(ctx, payment_id, NULL, out, replayed);
        if (rc == 1)
            rc = SVC_EINTERNAL;
    }
    return rc;
}

static bool pg_ready(void *ctx, char *why, size_t cap)
{
    struct user_pg *pg = ctx;

    return svc_dep_check(pg->dep, why, cap);
}

void user_pg_store(struct user_pg *pg, struct user_store *store)
{
    memset(store, 0, sizeof(*store));
    store->ctx = pg;
    store->create = pg_create;
    store->get = pg_get;
    store->get_by_email = pg_get_by_email;
    store->list = pg_list;
    store->rename = pg_rename;
    store->erase = pg_erase;
    store->wallet_get = pg_wallet_get;
    store->credit = pg_credit;
    store->pay = pg_pay;
    store->refund = pg_refund;
    store->ready = pg_ready;
}

/* ---- the outbox source --------------------------------------------------------------------- */

/* The relay's connection, held from one call to the next (LISTEN and a batch's transaction
 * live on it); a broken one is given back, to be reopened (after a back-off if that fails). */
static int relay_conn(struct user_pg *pg, struct conn **out)
{
    struct conn *c = pg->relay != NULL ? pg->relay->conn : NULL;
    int rc;

    if (c != NULL && (c->broken || PQstatus(c->db) != CONNECTION_OK)) {
        svc_pool_release(pg->relay_pool, pg->relay, true);
        pg->relay = NULL;
    }
    if (pg->relay == NULL && (rc = svc_pool_acquire(pg->relay_pool, 0, &pg->relay)) != 0)
        return rc;
    *out = pg->relay->conn;
    return 0;
}

static int ob_fetch(void *ctx, size_t max, struct svc_outbox_event **events)
{
    struct user_pg *pg = ctx;
    struct conn *c;
    char lim[24];
    const char *p[1] = {lim};
    PGresult *r = NULL;
    int rc, n;

    *events = NULL;
    if ((rc = relay_conn(pg, &c)) != 0 || (rc = run(c, "BEGIN", "outbox fetch")) != 0)
        return rc;
    if ((rc = q(c, ST_OUTBOX_LOCK, 0, NULL, &r)) != 0)
        goto fail;
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        /* Another replica is relaying: this one waits for its turn. */
        PQclear(r);
        run(c, "ROLLBACK", "outbox fetch");
        return 0;
    }
    PQclear(r);
    snprintf(lim, sizeof(lim), "%zu", max);
    if ((rc = q(c, ST_OUTBOX_FETCH, 1, p, &r)) != 0)
        goto fail;
    n = PQntuples(r);
    pg->batch = r;
    pg->events = svc_calloc(n > 0 ? (size_t)n : 1, sizeof(*pg->events));
    for (int i = 0; i < n; i++) {
        struct svc_outbox_event *e = &pg->events[i];

        e->handle = PQgetvalue(r, i, 0); /* the row id, as text */
        e->id = PQgetvalue(r, i, 1);
        e->topic = PQgetvalue(r, i, 2);
        if (!PQgetisnull(r, i, 3)) {
            e->key = PQgetvalue(r, i, 3);
            e->key_len = (size_t)PQgetlength(r, i, 3);
        }
        e->value = PQgetvalue(r, i, 4);
        e->value_len = (size_t)PQgetlength(r, i, 4);
    }
    *events = pg->events;
    return n;

fail:
    if (!c->broken)
        run(c, "ROLLBACK", "outbox fetch");
    return rc;
}

static int ob_mark(void *ctx, struct svc_outbox_event *const *events, size_t n)
{
    struct user_pg *pg = ctx;
    struct conn *c = pg->relay != NULL ? pg->relay->conn : NULL; /* the fetch's */
    struct svc_buf ids = SVC_BUF_INIT;
    const char *p[1];
    int rc = 0;

    if (c == NULL)
        return SVC_EUNAVAILABLE;
    if (n > 0) {
        /* A bigint[] parameter in its text form: "{12,13,17}". */
        svc_buf_addc(&ids, '{');
        for (size_t i = 0; i < n; i++)
            svc_buf_addf(&ids, "%s%s", i > 0 ? "," : "", (const char *)events[i]->handle);
        svc_buf_addc(&ids, '}');
        p[0] = svc_buf_str(&ids);
        rc = q(c, ST_OUTBOX_MARK, 1, p, NULL);
        svc_buf_release(&ids);
    }
    if (rc == 0 && !c->broken && PQtransactionStatus(c->db) == PQTRANS_INTRANS)
        rc = run(c, "COMMIT", "outbox mark published");
    return rc;
}

static void ob_release(void *ctx, struct svc_outbox_event *events, size_t n)
{
    struct user_pg *pg = ctx;
    struct conn *c = pg->relay != NULL ? pg->relay->conn : NULL;

    (void)events;
    (void)n;
    PQclear(pg->batch);
    pg->batch = NULL;
    free(pg->events);
    pg->events = NULL;
    if (c != NULL && !c->broken && PQtransactionStatus(c->db) != PQTRANS_IDLE)
        run(c, "ROLLBACK", "outbox release");
}

static void purge(struct user_pg *pg, struct conn *c)
{
    char ms[24];
    const char *p[1] = {ms};
    PGresult *r;

    pg->purge_at =
        svc_now_ms() + (pg->retention_ms < PURGE_EVERY_MS ? pg->retention_ms : PURGE_EVERY_MS);
    snprintf(ms, sizeof(ms), "%" PRId64, pg->retention_ms);
    if (q(c, ST_OUTBOX_PURGE, 1, p, &r) != 0)
        return; /* logged; tried again next time */
    if (strcmp(PQcmdTuples(r), "0") != 0)
        svc_log_info("outbox: %s published events older than %" PRId64 " ms deleted",
                     PQcmdTuples(r), pg->retention_ms);
    PQclear(r);
}

static int ob_backlog(void *ctx, size_t *count, double *oldest_age_s)
{
    struct user_pg *pg = ctx;
    struct conn *c;
    PGresult *r;
    int rc;

    if ((rc = relay_conn(pg, &c)) != 0 || (rc = q(c, ST_OUTBOX_BACKLOG, 0, NULL, &r)) != 0)
        return rc;
    *count = (size_t)col_i64(r, 0, 0);
    *oldest_age_s = strtod(PQgetvalue(r, 0, 1), NULL);
    PQclear(r);
    if (svc_now_ms() >= pg->purge_at)
        purge(pg, c);
    return 0;
}

/* Drops every notification received so far; true when there was one. */
static bool drain_notifies(PGconn *db)
{
    PGnotify *n;
    bool any = false;

    while ((n = PQnotifies(db)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

static int ob_wait(void *ctx, int timeout_ms)
{
    struct user_pg *pg = ctx;
    struct conn *c;
    struct pollfd pfd;
    int rc;

    if ((rc = relay_conn(pg, &c)) != 0)
        return rc;
    if (drain_notifies(c->db))
        return 1;
    pfd.fd = PQsocket(c->db);
    pfd.events = POLLIN;
    pfd.revents = 0;
    rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0 && errno == EINTR)
        return 0;
    if (rc < 0) {
        svc_log_error("outbox: poll on the postgres socket failed: %s", strerror(errno));
        return SVC_EINTERNAL;
    }
    if (rc == 0)
        return 0;
    if (!PQconsumeInput(c->db)) {
        c->broken = true;
        svc_dep_down(pg->dep, NULL, "outbox listen: %s", PQerrorMessage(c->db));
        return SVC_EUNAVAILABLE;
    }
    return drain_notifies(c->db) ? 1 : 0;
}

void user_pg_outbox_source(struct user_pg *pg, struct svc_outbox_source *src)
{
    memset(src, 0, sizeof(*src));
    src->ctx = pg;
    src->fetch = ob_fetch;
    src->mark_published = ob_mark;
    src->release = ob_release;
    src->backlog = ob_backlog;
    src->wait = ob_wait;
}

/* ---- migrations and the pool's life --------------------------------------------------------- */

/*
 * svc/migrate.h's callbacks on one connection: every migration in one transaction under an
 * advisory lock, so a replica that starts at the same time waits, then finds them applied.
 */
static int mig_lock(void *ctx)
{
    struct conn *c = ctx;
    int rc = run(c, "BEGIN", "migrations");

    if (rc != 0)
        return rc;
    if ((rc = run(c, "SELECT pg_advisory_xact_lock(" LOCK_MIGRATIONS ")", "migration lock")) != 0 ||
        (rc = run(c,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  "version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
                  "applied_at timestamptz NOT NULL DEFAULT now())",
                  "schema_migrations")) != 0)
        run(c, "ROLLBACK", "migrations");
    return rc;
}

static int mig_unlock(void *ctx, bool commit)
{
    struct conn *c = ctx;

    if (commit)
        return run(c, "COMMIT", "migrations");
    if (!c->broken || PQstatus(c->db) == CONNECTION_OK)
        PQclear(PQexec(c->db, "ROLLBACK"));
    return 0;
}

static int mig_list(void *ctx, struct svc_migration_list *applied)
{
    struct conn *c = ctx;
    PGresult *r = PQexec(c->db, "SELECT version, name, checksum FROM schema_migrations");
    int rc = res_ok(r) ? 0 : pg_fail(c, r, "read schema_migrations");

    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        svc_migration_applied_add(applied, (int)col_i64(r, i, 0), PQgetvalue(r, i, 1),
                                  PQgetvalue(r, i, 2));
    PQclear(r);
    return rc;
}

static int mig_apply(void *ctx, const struct svc_migration *m)
{
    return run(ctx, m->text, m->name);
}

static int mig_record(void *ctx, const struct svc_migration *m)
{
    struct conn *c = ctx;
    char version[16];
    const char *p[3] = {version, m->name, m->sha256};
    PGresult *r;
    int rc;

    snprintf(version, sizeof(version), "%d", m->version);
    r = PQexecParams(c->db,
                     "INSERT INTO schema_migrations (version, name, checksum) "
                     "VALUES ($1, $2, $3)",
                     3, NULL, p, NULL, NULL, 0);
    rc = res_ok(r) ? 0 : pg_fail(c, r, "record migration");
    PQclear(r);
    return rc;
}

static int migrate(struct conn *c)
{
    const struct svc_migrate_engine e = {.name = "postgres",
                                         .ctx = c,
                                         .lock = mig_lock,
                                         .unlock = mig_unlock,
                                         .list = mig_list,
                                         .apply = mig_apply,
                                         .record = mig_record};

    return svc_migrate(migrations, &e);
}

int user_pg_new(const struct user_pg_opts *o, struct user_pg **out)
{
    struct user_pg *pg = svc_calloc(1, sizeof(*pg));
    struct svc_pool_config pc = {.ops = &store_ops, .ctx = pg, .readiness_probe = true};
    struct svc_pool_conn *first;
    int rc;

    *out = NULL;
    pg->dsn = svc_strdup(o->dsn);
    pg->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    pg->retention_ms = o->outbox_retention_ms > 0 ? o->outbox_retention_ms : 24LL * 3600 * 1000;
    pg->dep = svc_dep_new("postgres", 0, NULL);
    pc.dep = pg->dep;
    pc.size = o->pool_size > 0 ? o->pool_size : 4;
    pc.acquire_timeout_ms = pg->timeout_ms;
    pg->pool = svc_pool_new(&pc);
    pc.ops = &relay_ops;
    pc.size = 1;
    pc.readiness_probe = false;
    pg->relay_pool = svc_pool_new(&pc);

    /* The first connection migrates (see conn_open), then stays in the pool. */
    if ((rc = svc_pool_acquire(pg->pool, 0, &first)) != 0) {
        user_pg_free(pg);
        return rc;
    }
    release(pg, first);
    *out = pg;
    return 0;
}

struct svc_dep *user_pg_dep(struct user_pg *pg)
{
    return pg->dep;
}

void user_pg_free(struct user_pg *pg)
{
    if (pg == NULL)
        return;
    PQclear(pg->batch);
    free(pg->events);
    if (pg->relay != NULL)
        svc_pool_release(pg->relay_pool, pg->relay, false);
    svc_pool_free(pg->relay_pool);
    svc_pool_free(pg->pool);
    svc_dep_free(pg->dep);
    free(pg->dsn);
    free(pg);
}

/* ---- hooks --------------------------------------------------------------------------------- */

int user_store_init(void *svc)
{
    struct user_svc *s = svc;
    struct user_pg_opts o = {
        .dsn = s->cfg.pg_dsn,
        .pool_size = s->cfg.pg_pool,
        .timeout_ms = (int)s->cfg.pg_timeout_ms,
        .outbox_retention_ms = s->cfg.outbox_retention_ms,
    };
    int rc = user_pg_new(&o, &s->pg);

    if (rc != 0)
        return rc;
    user_pg_store(s->pg, &s->app.store);
    user_pg_outbox_source(s->pg, &s->outbox);
    return 0;
}

void user_store_fini(void *svc)
{
    struct user_svc *s = svc;

    user_pg_free(s->pg);
    s->pg = NULL;
    memset(&s->app.store, 0, sizeof(s->app.store));
    memset(&s->outbox, 0, sizeof(s->outbox));
}

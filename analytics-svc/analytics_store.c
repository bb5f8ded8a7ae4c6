/*
 * analytics_store.c: analytics-svc's store on ClickHouse (18.16 locally), the only file that
 * talks to it: its HTTP interface through lib's client (svc/client.h, keep-alive per thread)
 * and jansson for the answers.
 *
 * Requests: every statement is POSTed as the body to /?database=<db> with the credentials in
 * the X-ClickHouse-User and X-ClickHouse-Key headers (never in the URL, which the client logs
 * without its query string anyway), and output_format_json_quote_64bit_integers=0 so that
 * counts arrive as JSON numbers. The one INSERT (events) puts the statement in the URL and the
 * rows in the body as JSONEachRow, so the rows never go through the SQL parser (nor its
 * max_query_size). ClickHouse 18.16 has no query parameters: every value reaches SQL either as
 * an integer printed by this file or through an_sql_quote(), nothing else.
 *
 * Errors are translated once, in ch_check(): no answer, a 5xx without a ClickHouse error code
 * (a proxy) or with one that says the server is busy or shutting down -> SVC_EUNAVAILABLE, the
 * dependency marked down; the credentials or the database refused (HTTP 401/403, Code 192
 * unknown user, 193 wrong password, 291 access denied, 81 unknown database; 516 and 497 in
 * later versions) -> logged loudly with the user name, never the password, SVC_EUNAUTH from
 * an_ch_new() and SVC_EUNAVAILABLE afterwards (the handlers answer 503, the consumer waits,
 * /readyz says why); anything else (a syntax error, an unknown column: a bug here or a schema
 * that is not ours) -> SVC_EINTERNAL, logged with ClickHouse's message, cut.
 *
 * Exactly once: insert asks which ids of the batch events already holds and inserts only the
 * others, in one INSERT from which the materialized views fill the read models and the
 * per-minute aggregates (migrations/001). The queries read the aggregates with sum() (merges
 * come when they come), and count distinct things with uniqExact, which a duplicate written by
 * two replicas in a rebalance cannot move.
 *
 * Pseudonymisation (forget_users) is ALTER TABLE ... UPDATE, a mutation: asynchronous, and it
 * rewrites the parts it touches, so it is sent once per table for a whole batch of users (a
 * mutation per user made ClickHouse's parts pile up: minutes to start), and only to the tables
 * that still hold one of the ids, which also makes it idempotent. The
 * hash is computed here (SHA-256 of key || user id, lowercase hex: what
 * lower(hex(SHA256(concat(key, user_id)))) gives), so the key never appears in a statement,
 * which ClickHouse keeps in its query log and in system.mutations.
 */
#include "analytics_svc.h"

#include "svc/alloc.h"
#include "svc/buf.h"
#include "svc/client.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/idem.h"
#include "svc/log.h"
#include "svc/migrate.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 5000
/* A migration statement (a CREATE, a materialized view) may take far longer than a query. */
#define MIGRATION_TIMEOUT_MS 120000
/* A migration lock older than this belongs to a replica that died: it is taken over. */
#define LOCK_TTL_MS INT64_C(60000)
#define LOCK_TABLE  "schema_migrations_lock"
/* Ids per dedup SELECT: 40 bytes each keeps a statement far below max_query_size (256 KiB). */
#define DEDUP_CHUNK 2000
/* ClickHouse's message in a log line, at most. */
#define MSG_MAX 300
/* Events whose event time is further than this from their ingestion are not latency. */
#define LATENCY_SPAN_MS INT64_C(3600000)

struct an_ch {
    char *base;     /* the URL without a trailing slash */
    char *url_sql;  /* base/?database=...&output_format_json_quote_64bit_integers=0 */
    char *url_ins;  /* base/?database=...&date_time_input_format=best_effort&query=INSERT... */
    char *user;     /* for log lines */
    char *hdr_user; /* "X-ClickHouse-User: ..." */
    char *hdr_key;  /* "X-ClickHouse-Key: ..." (a secret) */
    const char *headers[3];
    char *pseudonym_key; /* a secret */
    int timeout_ms;
    bool started;        /* an_ch_new() returned: credentials refused later are an outage */
    struct svc_dep *dep; /* "clickhouse" */
};

/* ---- quoting ------------------------------------------------------------------------------ */

void an_sql_quote(struct svc_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    svc_buf_addc(out, '\'');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\\' || c == '\'') {
            char e[2] = {'\\', (char)c};

            svc_buf_add(out, e, 2);
        } else if (c < 0x20 || c > 0x7e) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

            svc_buf_add(out, e, 4);
        } else {
            svc_buf_addc(out, (char)c);
        }
    }
    svc_buf_addc(out, '\'');
}

static void quote(struct svc_buf *out, const char *s)
{
    an_sql_quote(out, s, strlen(s));
}

/* ---- calling ClickHouse ------------------------------------------------------------------- */

/* One answer: the HTTP status, ClickHouse's error code (0 when the body has none), the body. */
struct ch_ans {
    long status;
    int code;
    struct svc_client_resp resp;
};

static void ans_release(struct ch_ans *a)
{
    svc_client_resp_release(&a->resp);
    memset(a, 0, sizeof(*a));
}

/* "Code: 60, e.displayText() = ..." -> 60; 0 when the body does not start so. */
static int code_of(const char *body)
{
    int code = 0;

    if (strncmp(body, "Code: ", 6) != 0)
        return 0;
    for (const char *p = body + 6; *p >= '0' && *p <= '9' && code < 100000; p++)
        code = code * 10 + (*p - '0');
    return code;
}

/* Codes that say the server could not take the statement now, not that it is wrong:
 * timeouts, network, too many queries, memory, a read-only or overloaded table. */
static bool code_transient(int code)
{
    switch (code) {
    case 159: /* TIMEOUT_EXCEEDED */
    case 202: /* TOO_MANY_SIMULTANEOUS_QUERIES */
    case 203: /* NO_FREE_CONNECTION */
    case 209: /* SOCKET_TIMEOUT */
    case 210: /* NETWORK_ERROR */
    case 241: /* MEMORY_LIMIT_EXCEEDED */
    case 242: /* TABLE_IS_READ_ONLY */
    case 252: /* TOO_MANY_PARTS */
    case 394: /* QUERY_WAS_CANCELLED (shutdown) */
    case 999: /* KEEPER_EXCEPTION */
        return true;
    default:
        return false;
    }
}

static bool code_auth(long status, int code)
{
    /* 192 unknown user, 193 wrong password, 291 database not allowed, 81 unknown database;
     * later versions say 516 (authentication failed) and 497 (access denied) */
    return status == 401 || status == 403 || code == 192 || code == 193 || code == 291 ||
           code == 81 || code == 516 || code == 497;
}

/* The first line of BODY, at most MSG_MAX bytes, for a log line. */
static void msg_of(const char *body, char *out, size_t cap)
{
    size_t n = strcspn(body, "\r\n");

    if (n > MSG_MAX)
        n = MSG_MAX;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, body, n);
    out[n] = '\0';
}

/*
 * Sends BODY to URL. 0 with *ANS filled whatever the status (release it), or SVC_EUNAVAILABLE
 * when no answer came (the dependency marked down). RETRY: safe to send again after a lost
 * answer (a read, or DDL that says IF NOT EXISTS).
 */
static int ch_raw(struct an_ch *ch, const char *what, const char *url, const char *body, size_t len,
                  long timeout_ms, bool retry, struct ch_ans *ans)
{
    struct svc_client_req req = {
        .method = "POST",
        .url = url,
        .headers = ch->headers,
        .body = body,
        .body_len = len,
        .content_type = "text/plain; charset=utf-8",
        .timeout_ms = timeout_ms > 0 ? timeout_ms : ch->timeout_ms,
        .max_retries = retry ? 0 : SVC_CLIENT_NO_RETRY,
        .idempotent = retry,
    };
    int rc;

    memset(ans, 0, sizeof(*ans));
    rc = svc_client_call(&req, &ans->resp);
    if (rc != 0) {
        svc_dep_down(ch->dep, what, "%s", svc_err_title(rc));
        ans_release(ans);
        return SVC_EUNAVAILABLE;
    }
    ans->status = ans->resp.status;
    ans->code = code_of(ans->resp.body);
    return 0;
}

/* The translation of an answer that is not 200 (the top of the file); 0 for a 200. */
static int ch_check(struct an_ch *ch, const char *what, const struct ch_ans *ans)
{
    char msg[MSG_MAX + 1];

    if (ans->status == 200) {
        svc_dep_up(ch->dep);
        return 0;
    }
    msg_of(ans->resp.body, msg, sizeof(msg));
    if (code_auth(ans->status, ans->code)) {
        svc_log_error("clickhouse refused %s of user '%s' (HTTP %ld, Code %d): check "
                      "CLICKHOUSE_USER, CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE and the user's "
                      "grants",
                      what, ch->user, ans->status, ans->code);
        svc_dep_down(ch->dep, what, "credentials or database refused (Code %d)", ans->code);
        return ch->started ? SVC_EUNAVAILABLE : SVC_EUNAUTH;
    }
    if (ans->status >= 500 && (ans->code == 0 || code_transient(ans->code))) {
        svc_dep_down(ch->dep, what, "HTTP %ld: %s", ans->status, msg);
        return SVC_EUNAVAILABLE;
    }
    svc_dep_up(ch->dep); /* it answered: the fault is in the statement */
    svc_log_error("clickhouse: %s answered %ld: %s", what, ans->status, msg);
    return SVC_EINTERNAL;
}

/* A statement whose answer must be 200; the answer's body is dropped. */
static int ch_exec(struct an_ch *ch, const char *what, const char *sql, long timeout_ms, bool retry)
{
    struct ch_ans ans;
    int rc = ch_raw(ch, what, ch->url_sql, sql, strlen(sql), timeout_ms, retry, &ans);

    if (rc == 0)
        rc = ch_check(ch, what, &ans);
    ans_release(&ans);
    return rc;
}

/*
 * A SELECT (without FORMAT: added here), retried after a lost answer. 0 and *ROOT (the parsed
 * answer: json_decref() it) with *DATA its array of rows (objects, column name -> value), or an
 * error as ch_check(); SVC_EINTERNAL for an answer that is not ClickHouse's JSON.
 */
static int ch_select(struct an_ch *ch, const char *what, struct svc_buf *sql, json_t **root,
                     json_t **data)
{
    struct ch_ans ans;
    json_error_t jerr;
    int rc;

    *root = *data = NULL;
    svc_buf_adds(sql, " FORMAT JSON");
    rc = ch_raw(ch, what, ch->url_sql, sql->data, sql->len, 0, true, &ans);
    if (rc == 0)
        rc = ch_check(ch, what, &ans);
    if (rc == 0) {
        *root = json_loadb(ans.resp.body, ans.resp.len, JSON_ALLOW_NUL, &jerr);
        *data = json_object_get(*root, "data");
        if (!json_is_array(*data)) {
            svc_log_error("clickhouse: %s: the answer is not JSON rows: %s", what, jerr.text);
            json_decref(*root);
            *root = *data = NULL;
            rc = SVC_EINTERNAL;
        }
    }
    ans_release(&ans);
    return rc;
}

/* ---- reading answers ---------------------------------------------------------------------- */

static int64_t jint(const json_t *row, const char *col)
{
    const json_t *v = json_object_get(row, col);

    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    if (json_is_string(v)) /* a 64-bit integer quoted after all */
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

/* A Float64 column; NaN (no values) arrives as null or a string and is 0 here. */
static double jreal(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* A string column copied to A ("" when absent; cut at a NUL byte, which a C string cannot
 * hold). */
static const char *jdup(const json_t *row, const char *col, struct svc_arena *a)
{
    const char *s = json_string_value(json_object_get(row, col));

    return svc_arena_strdup(a, s != NULL ? s : "");
}

/* The first row of an answer of one row, or NULL (logged: SVC_EINTERNAL for the caller). */
static const json_t *one_row(const char *what, const json_t *data)
{
    const json_t *row = json_array_get(data, 0);

    if (!json_is_object(row))
        svc_log_error("clickhouse: %s answered no row", what);
    return json_is_object(row) ? row : NULL;
}

/* ---- ingest ------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds to *KNOWN (sorted later) the ids among ROWS[N] that events already holds. */
static int known_ids(struct an_ch *ch, const struct an_row *rows, size_t n, char ***known,
                     size_t *nknown)
{
    int rc = 0;

    for (size_t at = 0; rc == 0 && at < n; at += DEDUP_CHUNK) {
        size_t end = n - at > DEDUP_CHUNK ? at + DEDUP_CHUNK : n;
        struct svc_buf sql = SVC_BUF_INIT;
        json_t *root, *data, *row;
        size_t i;

        svc_buf_adds(&sql, "SELECT DISTINCT toString(id) AS id FROM events WHERE id IN (");
        for (i = at; i < end; i++) {
            if (i > at)
                svc_buf_addc(&sql, ',');
            quote(&sql, rows[i].id);
        }
        svc_buf_addc(&sql, ')');
        rc = ch_select(ch, "event dedup", &sql, &root, &data);
        svc_buf_release(&sql);
        if (rc != 0)
            break;
        *known = svc_realloc(*known, (*nknown + json_array_size(data) + 1) * sizeof(**known));
        json_array_foreach(data, i, row)
        {
            const char *id = json_string_value(json_object_get(row, "id"));

            if (id != NULL)
                (*known)[(*nknown)++] = svc_strdup(id);
        }
        json_decref(root);
    }
    return rc;
}

static void add_key(struct svc_buf *b, const char *key)
{
    svc_buf_addc(b, b->len > 0 && b->data[b->len - 1] != '\n' ? ',' : '{');
    svc_buf_add_json_str(b, key, strlen(key));
    svc_buf_addc(b, ':');
}

static void add_str(struct svc_buf *b, const char *key, const char *v)
{
    add_key(b, key);
    v = v != NULL ? v : "";
    svc_buf_add_json_str(b, v, strlen(v));
}

static void add_int(struct svc_buf *b, const char *key, int64_t v)
{
    add_key(b, key);
    svc_buf_addf(b, "%" PRId64, v);
}

/* The four Nested columns of the lines, "lines.product_id":[...] and so on. */
static void add_lines(struct svc_buf *b, const struct an_row *r)
{
    static const char *const cols[] = {"lines.product_id", "lines.name", "lines.quantity",
                                       "lines.price_cents"};

    for (size_t c = 0; c < 4; c++) {
        add_key(b, cols[c]);
        svc_buf_addc(b, '[');
        for (size_t i = 0; i < r->nlines; i++) {
            const struct an_line *l = &r->lines[i];

            if (i > 0)
                svc_buf_addc(b, ',');
            if (c < 2) {
                const char *s = c == 0 ? l->product_id : l->name;

                s = s != NULL ? s : "";
                svc_buf_add_json_str(b, s, strlen(s));
            } else {
                svc_buf_addf(b, "%" PRId64, c == 2 ? l->quantity : l->price_cents);
            }
        }
        svc_buf_addc(b, ']');
    }
}

/* R as one JSONEachRow line. event_time is whole seconds: a DateTime holds no milliseconds
 * (event_ms keeps them), and before 1970 it cannot hold anything. */
static void row_json(struct svc_buf *b, const struct an_row *r)
{
    add_str(b, "id", r->id);
    add_str(b, "type", r->type);
    add_str(b, "source", r->source);
    add_str(b, "subject", r->subject);
    add_int(b, "event_time", r->event_ms > 0 ? r->event_ms / 1000 : 0);
    add_int(b, "event_ms", r->event_ms > 0 ? r->event_ms : 0);
    add_int(b, "ingest_ms", r->ingest_ms > 0 ? r->ingest_ms : 0);
    add_str(b, "topic", r->topic);
    add_int(b, "kafka_partition", r->partition);
    add_int(b, "kafka_offset", r->offset);
    add_str(b, "user_id", r->user_id);
    add_str(b, "order_id", r->order_id);
    add_str(b, "product_id", r->product_id);
    add_str(b, "status", r->status);
    add_str(b, "currency", r->currency);
    add_int(b, "quantity", r->quantity);
    add_int(b, "amount_cents", r->amount_cents);
    add_lines(b, r);
    add_str(b, "data", r->data != NULL && r->data[0] != '\0' ? r->data : "{}");
    svc_buf_adds(b, "}\n");
}

static void pseudonym(const struct an_ch *ch, const char *user_id, char out[65]);

/*
 * Marks in FORGOTTEN[i] the rows among ROWS[N] (those not already KNOWN) whose user was
 * forgotten before (forgotten_users), and gives their pseudonyms in HASH[i].
 */
static int forgotten_rows(struct an_ch *ch, const struct an_row *rows, size_t n, char (*hash)[65],
                          bool *forgotten)
{
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data, *row;
    size_t i, asked = 0;
    int rc;

    svc_buf_adds(&sql, "SELECT DISTINCT user_hash FROM forgotten_users WHERE user_hash IN (");
    for (i = 0; i < n; i++) {
        forgotten[i] = false;
        if (rows[i].user_id == NULL || rows[i].user_id[0] == '\0')
            continue;
        pseudonym(ch, rows[i].user_id, hash[i]);
        if (asked++ > 0)
            svc_buf_addc(&sql, ',');
        quote(&sql, hash[i]);
    }
    svc_buf_addc(&sql, ')');
    if (asked == 0) {
        svc_buf_release(&sql);
        return 0;
    }
    rc = ch_select(ch, "forgotten users lookup", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    json_array_foreach(data, i, row)
    {
        const char *h = json_string_value(json_object_get(row, "user_hash"));

        for (size_t k = 0; h != NULL && k < n; k++)
            if (rows[k].user_id != NULL && rows[k].user_id[0] != '\0' && strcmp(hash[k], h) == 0)
                forgotten[k] = true;
    }
    json_decref(root);
    return 0;
}

static int ch_insert(void *ctx, const struct an_row *rows, size_t n, size_t *inserted)
{
    struct an_ch *ch = ctx;
    struct svc_buf body = SVC_BUF_INIT;
    char **known = NULL, (*hash)[65] = NULL;
    bool *forgotten = NULL;
    size_t nknown = 0, fresh = 0;
    struct ch_ans ans;
    int rc = 0;

    *inserted = 0;
    for (size_t i = 0; i < n; i++) {
        if (!svc_uuid_valid(rows[i].id)) {
            svc_log_error("clickhouse: event id '%.40s' is not a UUID (a bug in the consumer)",
                          rows[i].id);
            return SVC_EINVAL;
        }
    }
    if (n == 0)
        return 0;
    hash = svc_calloc(n, sizeof(*hash));
    forgotten = svc_calloc(n, sizeof(*forgotten));
    rc = known_ids(ch, rows, n, &known, &nknown);
    if (rc == 0 && nknown > 0)
        qsort(known, nknown, sizeof(*known), cmp_str);
    if (rc == 0)
        rc = forgotten_rows(ch, rows, n, hash, forgotten);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *id = rows[i].id;
        struct an_row r;

        if (nknown > 0 && bsearch(&id, known, nknown, sizeof(*known), cmp_str) != NULL)
            continue;
        if (forgotten[i]) {
            /* Its user was deleted before this event arrived: in as the deletion leaves the
             * rows that were already there. */
            r = rows[i];
            if (r.subject != NULL && strcmp(r.subject, r.user_id) == 0)
                r.subject = hash[i];
            r.user_id = hash[i];
            r.data = "{}";
            row_json(&body, &r);
        } else {
            row_json(&body, &rows[i]);
        }
        fresh++;
    }
    /* Sent once: after a lost answer the consumer retries the batch, whose dedup then skips
     * what this INSERT wrote. */
    if (rc == 0 && fresh > 0) {
        rc = ch_raw(ch, "events insert", ch->url_ins, body.data, body.len, 0, false, &ans);
        if (rc == 0)
            rc = ch_check(ch, "events insert", &ans);
        ans_release(&ans);
    }
    if (rc == 0)
        *inserted = fresh;
    for (size_t i = 0; i < nknown; i++)
        free(known[i]);
    free(known);
    free(hash);
    free(forgotten);
    svc_buf_release(&body);
    return rc;
}

/* The pseudonym of USER_ID: lowercase hex of SHA-256(key || user id). */
static void pseudonym(const struct an_ch *ch, const char *user_id, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    struct svc_buf in = SVC_BUF_INIT;
    uint8_t sum[32];

    svc_buf_adds(&in, ch->pseudonym_key);
    svc_buf_adds(&in, user_id);
    svc_sha256(in.data, in.len, sum);
    memset(in.data, 0, in.len); /* holds the key */
    svc_buf_release(&in);
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[64] = '\0';
}

/* The read models that carry a user id (events is done apart: subject and data too). */
static const char *const user_tables[] = {"signups", "orders", "order_lines", "cart_adds"};
#define NUSER_TABLES (sizeof(user_tables) / sizeof(user_tables[0]))

/* FORGET_CHUNK users per statement: the ids and their hashes stay well under ClickHouse's
 * max_query_size (256 KiB) in the biggest statement, events' mutation (~250 bytes a user). */
#define FORGET_CHUNK 400

/* "'a','b',..." of IDS[N] quoted, into B. */
static void quoted_list(struct svc_buf *b, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            svc_buf_addc(b, ',');
        quote(b, ids[i]);
    }
}

/* Up to FORGET_CHUNK users: recorded as forgotten, then one mutation per table that still holds
 * any of them, each id replaced by its own pseudonym (transform()). */
static int forget_chunk(struct an_ch *ch, const char *const *ids, size_t n)
{
    struct svc_buf sql = SVC_BUF_INIT, u = SVC_BUF_INIT, h = SVC_BUF_INIT;
    char(*hash)[65] = svc_calloc(n, sizeof(*hash));
    const char **hp = svc_calloc(n, sizeof(*hp));
    json_t *root = NULL, *data;
    const json_t *row = NULL;
    int64_t now = svc_now_ms();
    int rc;

    for (size_t i = 0; i < n; i++) {
        pseudonym(ch, ids[i], hash[i]);
        hp[i] = hash[i];
    }
    quoted_list(&u, ids, n);
    quoted_list(&h, hp, n);
    /* First the record that these users are forgotten, for events of theirs still to come. */
    svc_buf_adds(&sql, "INSERT INTO forgotten_users (user_hash, forgotten_ms) VALUES ");
    for (size_t i = 0; i < n; i++) {
        svc_buf_adds(&sql, i > 0 ? ",(" : "(");
        quote(&sql, hash[i]);
        svc_buf_addf(&sql, ",%" PRId64 ")", now);
    }
    rc = ch_exec(ch, "forgotten users record", sql.data, 0, true);
    if (rc != 0)
        goto out;
    /* Which tables still hold any of the ids: a mutation rewrites parts, so none is sent where
     * there is nothing to change (a replayed user.deleted, the second call). */
    svc_buf_reset(&sql);
    svc_buf_addf(&sql,
                 "SELECT (SELECT count() FROM events WHERE user_id IN (%s) OR subject IN (%s)) "
                 "AS events",
                 u.data, u.data);
    for (size_t i = 0; i < NUSER_TABLES; i++)
        svc_buf_addf(&sql, ", (SELECT count() FROM %s WHERE user_id IN (%s)) AS %s", user_tables[i],
                     u.data, user_tables[i]);
    rc = ch_select(ch, "user lookup", &sql, &root, &data);
    row = rc == 0 ? one_row("user lookup", data) : NULL;
    if (rc == 0 && row == NULL)
        rc = SVC_EINTERNAL;
    if (rc == 0 && jint(row, "events") > 0) {
        svc_buf_reset(&sql);
        svc_buf_addf(&sql,
                     "ALTER TABLE events UPDATE user_id = transform(user_id, [%s], [%s], user_id), "
                     "subject = transform(subject, [%s], [%s], subject), data = '{}' "
                     "WHERE user_id IN (%s) OR subject IN (%s)",
                     u.data, h.data, u.data, h.data, u.data, u.data);
        rc = ch_exec(ch, "events pseudonymisation", sql.data, 0, true);
    }
    for (size_t i = 0; rc == 0 && i < NUSER_TABLES; i++) {
        char what[64];

        if (jint(row, user_tables[i]) == 0)
            continue;
        snprintf(what, sizeof(what), "%s pseudonymisation", user_tables[i]);
        svc_buf_reset(&sql);
        svc_buf_addf(&sql,
                     "ALTER TABLE %s UPDATE user_id = transform(user_id, [%s], [%s], user_id) "
                     "WHERE user_id IN (%s)",
                     user_tables[i], u.data, h.data, u.data);
        rc = ch_exec(ch, what, sql.data, 0, true);
    }
out:
    json_decref(root);
    svc_buf_release(&sql);
    svc_buf_release(&u);
    svc_buf_release(&h);
    free(hp);
    free(hash);
    return rc;
}

static int ch_forget_users(void *ctx, const char *const *user_ids, size_t n)
{
    struct an_ch *ch = ctx;
    const char **ids = svc_calloc(n + 1, sizeof(*ids));
    size_t k = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if (user_ids[i] != NULL && user_ids[i][0] != '\0')
            ids[k++] = user_ids[i];
    for (size_t at = 0; rc == 0 && at < k; at += FORGET_CHUNK)
        rc = forget_chunk(ch, ids + at, k - at > FORGET_CHUNK ? FORGET_CHUNK : k - at);
    free(ids);
    return rc;
}

/* ---- queries ------------------------------------------------------------------------------ */

/* [from, to) in whole seconds, as the DateTime columns hold them. */
static int64_t secs(int64_t ms)
{
    return ms > 0 ? ms / 1000 : 0;
}

static void range_sql(struct svc_buf *sql, const char *col, const struct an_range *r)
{
    svc_buf_addf(sql, "%s >= toDateTime(%" PRId64 ") AND %s < toDateTime(%" PRId64 ")", col,
                 secs(r->from_ms), col, secs(r->to_ms));
}

static int ch_summary(void *ctx, const struct an_range *r, struct an_summary *out)
{
    struct an_ch *ch = ctx;
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data;
    const json_t *row;
    int rc;

    memset(out, 0, sizeof(*out));
    svc_buf_adds(&sql, "SELECT (SELECT uniqExact(event_id) FROM signups WHERE ");
    range_sql(&sql, "event_time", r);
    svc_buf_adds(&sql, ") AS signups, (SELECT uniqExact(user_id) FROM events WHERE user_id != '' "
                       "AND ");
    range_sql(&sql, "event_time", r);
    svc_buf_adds(&sql, ") AS active_users, started, placed, failed, revenue_cents FROM "
                       "(SELECT sum(started) AS started, sum(placed) AS placed, sum(failed) AS "
                       "failed, sum(revenue_cents) AS revenue_cents FROM orders_minute WHERE ");
    range_sql(&sql, "minute", r);
    svc_buf_addc(&sql, ')');
    rc = ch_select(ch, "summary", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    if ((row = one_row("summary", data)) == NULL) {
        json_decref(root);
        return SVC_EINTERNAL;
    }
    out->signups = jint(row, "signups");
    out->active_users = jint(row, "active_users");
    out->checkouts = jint(row, "started");
    out->orders_placed = jint(row, "placed");
    out->orders_failed = jint(row, "failed");
    out->revenue_cents = jint(row, "revenue_cents");
    json_decref(root);
    return 0;
}

static int ch_revenue(void *ctx, struct svc_arena *a, const struct an_range *r, enum an_interval iv,
                      struct an_point **points, size_t *n)
{
    struct an_ch *ch = ctx;
    /* Buckets by arithmetic on the epoch seconds, not toStartOfHour/Day: those follow the
     * server's time zone, and the API's buckets are UTC whatever the server says. */
    int64_t step = iv == AN_DAY ? 86400 : iv == AN_HOUR ? 3600 : 60;
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data, *row;
    size_t i;
    int rc;

    *points = NULL;
    *n = 0;
    svc_buf_addf(&sql,
                 "SELECT intDiv(toUInt32(minute), %" PRId64 ") * %" PRId64
                 " AS t, sum(placed) AS orders, sum(revenue_cents) AS revenue_cents "
                 "FROM orders_minute WHERE ",
                 step, step);
    range_sql(&sql, "minute", r);
    svc_buf_adds(&sql, " GROUP BY t HAVING orders > 0 OR revenue_cents != 0 ORDER BY t");
    rc = ch_select(ch, "revenue", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    *points = svc_arena_calloc(a, (json_array_size(data) + 1) * sizeof(**points));
    json_array_foreach(data, i, row)
    {
        struct an_point *p = &(*points)[i];

        p->t_ms = jint(row, "t") * 1000;
        p->orders = jint(row, "orders");
        p->revenue_cents = jint(row, "revenue_cents");
    }
    *n = json_array_size(data);
    json_decref(root);
    return 0;
}

static int ch_top_products(void *ctx, struct svc_arena *a, const struct an_range *r, enum an_by by,
                           int limit, struct an_top_product **out, size_t *n)
{
    struct an_ch *ch = ctx;
    const char *metric = by == AN_BY_REVENUE ? "revenue_cents" : "units";
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data, *row;
    size_t i;
    int rc;

    *out = NULL;
    *n = 0;
    /* The name: the latest an order line of the range gave the product (order_lines holds
     * the lines of order.placed, the events sales_minute sums). */
    svc_buf_adds(&sql, "SELECT product_id, units, revenue_cents, name FROM (SELECT product_id, "
                       "sum(units) AS units, sum(revenue_cents) AS revenue_cents FROM "
                       "sales_minute WHERE ");
    range_sql(&sql, "minute", r);
    svc_buf_addf(&sql,
                 " GROUP BY product_id ORDER BY %s DESC, product_id ASC LIMIT %d) ANY LEFT "
                 "JOIN (SELECT product_id, argMax(name, event_time) AS name FROM "
                 "order_lines WHERE ",
                 metric, limit > 0 ? limit : AN_TOP_DEFAULT);
    range_sql(&sql, "event_time", r);
    svc_buf_addf(&sql, " GROUP BY product_id) USING product_id ORDER BY %s DESC, product_id ASC",
                 metric);
    rc = ch_select(ch, "top products", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    *out = svc_arena_calloc(a, (json_array_size(data) + 1) * sizeof(**out));
    json_array_foreach(data, i, row)
    {
        struct an_top_product *p = &(*out)[i];

        p->product_id = jdup(row, "product_id", a);
        p->name = jdup(row, "name", a);
        p->units = jint(row, "units");
        p->revenue_cents = jint(row, "revenue_cents");
    }
    *n = json_array_size(data);
    json_decref(root);
    return 0;
}

/* The cohort in one pass over events: per user, which steps it took in the range (max() of a
 * condition, which a duplicate event cannot move), then the users of each step who took every
 * step before it. */
static int ch_funnel(void *ctx, const struct an_range *r, struct an_funnel *out)
{
    struct an_ch *ch = ctx;
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data;
    const json_t *row;
    int rc;

    memset(out, 0, sizeof(*out));
    svc_buf_adds(&sql, "SELECT countIf(reg) AS registered, countIf(reg AND cart) AS "
                       "added_to_cart, countIf(reg AND cart AND chk) AS checkout_started, "
                       "countIf(reg AND cart AND chk AND placed) AS placed FROM (SELECT user_id, "
                       "max(type = 'user.registered') AS reg, max(type = 'cart.item_added') AS "
                       "cart, max(type = 'checkout.started') AS chk, max(type = 'order.placed') "
                       "AS placed FROM events WHERE user_id != '' AND type IN ('user.registered', "
                       "'cart.item_added', 'checkout.started', 'order.placed') AND ");
    range_sql(&sql, "event_time", r);
    svc_buf_adds(&sql, " GROUP BY user_id)");
    rc = ch_select(ch, "funnel", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    if ((row = one_row("funnel", data)) == NULL) {
        json_decref(root);
        return SVC_EINTERNAL;
    }
    out->registered = jint(row, "registered");
    out->added_to_cart = jint(row, "added_to_cart");
    out->checkout_started = jint(row, "checkout_started");
    out->placed = jint(row, "placed");
    json_decref(root);
    return 0;
}

static int ch_events(void *ctx, struct svc_arena *a, const struct an_event_query *q,
                     struct an_event **out, size_t *n, bool *more)
{
    struct an_ch *ch = ctx;
    int limit = q->limit > 0 && q->limit <= AN_EVENTS_MAX ? q->limit : AN_EVENTS_DEFAULT;
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data, *row;
    size_t i, got;
    int rc;

    *out = NULL;
    *n = 0;
    *more = false;
    /* The page's ids first, sorting only (event_ms, id) of the matching rows, then their rows
     * by the primary key: sorting whole rows, data included, would read every event's data.
     * Ids compare as text, as the cursor carries them; LIMIT 1 BY hides a duplicate that two
     * replicas wrote before the engine merged it away. */
    svc_buf_adds(&sql, "SELECT toString(id) AS sid, type, source, subject, topic, event_ms, "
                       "ingest_ms, data FROM events WHERE id IN (SELECT id FROM events WHERE 1");
    if (q->type != NULL) {
        svc_buf_adds(&sql, " AND type = ");
        quote(&sql, q->type);
    }
    if (q->subject != NULL) {
        svc_buf_adds(&sql, " AND subject = ");
        quote(&sql, q->subject);
    }
    if (q->after) {
        svc_buf_addf(&sql,
                     " AND (event_ms < %" PRId64 " OR (event_ms = %" PRId64 " AND toString(id) < ",
                     q->after_ms > 0 ? q->after_ms : 0, q->after_ms > 0 ? q->after_ms : 0);
        quote(&sql, q->after_id);
        svc_buf_adds(&sql, "))");
    }
    svc_buf_addf(&sql,
                 " ORDER BY event_ms DESC, toString(id) DESC LIMIT 1 BY id LIMIT %d) "
                 "ORDER BY event_ms DESC, sid DESC LIMIT 1 BY sid",
                 limit + 1);
    rc = ch_select(ch, "events", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    got = json_array_size(data);
    *more = got > (size_t)limit;
    if (*more)
        got = (size_t)limit;
    *out = svc_arena_calloc(a, (got + 1) * sizeof(**out));
    json_array_foreach(data, i, row)
    {
        struct an_event *e = &(*out)[i];

        if (i >= got)
            break;
        e->id = jdup(row, "sid", a);
        e->type = jdup(row, "type", a);
        e->source = jdup(row, "source", a);
        e->subject = jdup(row, "subject", a);
        e->topic = jdup(row, "topic", a);
        e->event_ms = jint(row, "event_ms");
        e->ingest_ms = jint(row, "ingest_ms");
        e->data = jdup(row, "data", a);
    }
    *n = got;
    json_decref(root);
    return 0;
}

static int ch_latency(void *ctx, struct svc_arena *a, int64_t window_ms,
                      struct an_topic_latency **out, size_t *n)
{
    struct an_ch *ch = ctx;
    int64_t since = svc_wall_ms() - (window_ms > 0 ? window_ms : 0);
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data, *row;
    size_t i;
    int rc;

    *out = NULL;
    *n = 0;
    /* The difference as signed: an event time ahead of the consumer's clock (skew) would wrap
     * as UInt64; such an event counts as no latency at all. */
    svc_buf_addf(&sql,
                 "SELECT topic, countIf(ok) AS events, quantilesExactIf(0.5, 0.99)(lat, ok) AS q, "
                 "max(ingest_ms) AS last_ingest_ms FROM (SELECT topic, ingest_ms, "
                 "toInt64(ingest_ms) - toInt64(event_ms) AS d, greatest(d, 0) AS lat, "
                 "abs(d) <= %" PRId64 " AS ok FROM events WHERE ingest_ms >= %" PRId64
                 ") GROUP BY topic ORDER BY topic",
                 LATENCY_SPAN_MS, since > 0 ? since : 0);
    rc = ch_select(ch, "latency", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    *out = svc_arena_calloc(a, (json_array_size(data) + 1) * sizeof(**out));
    json_array_foreach(data, i, row)
    {
        struct an_topic_latency *t = &(*out)[i];
        const json_t *q = json_object_get(row, "q");

        t->topic = jdup(row, "topic", a);
        t->events = jint(row, "events");
        t->p50_ms = t->events > 0 ? jreal(json_array_get(q, 0)) : 0;
        t->p99_ms = t->events > 0 ? jreal(json_array_get(q, 1)) : 0;
        t->last_ingest_ms = jint(row, "last_ingest_ms");
    }
    *n = json_array_size(data);
    json_decref(root);
    return 0;
}

/* ---- the store ---------------------------------------------------------------------------- */

void an_ch_store(struct an_ch *ch, struct an_store *store)
{
    memset(store, 0, sizeof(*store));
    store->ctx = ch;
    store->insert = ch_insert;
    store->forget_users = ch_forget_users;
    store->summary = ch_summary;
    store->revenue = ch_revenue;
    store->top_products = ch_top_products;
    store->funnel = ch_funnel;
    store->events = ch_events;
    store->latency = ch_latency;
}

struct svc_dep *an_ch_dep(struct an_ch *ch)
{
    return ch->dep;
}

/* ---- migrations --------------------------------------------------------------------------- */

/* migrations/NNN_name.sql, compiled in by cmake/Service.cmake:
 * static const struct svc_migration migrations[] = {..., {0}}; */
#include "an_migrations.inc"

/*
 * svc/migrate.h's engine on ClickHouse, which has no transactions and no advisory locks. The
 * lock is the table schema_migrations_lock: a plain CREATE TABLE (no IF NOT EXISTS) succeeds
 * for one replica only, the others get Code 57 and wait. It holds its owner and the time it
 * was taken; its age is read from the server's own clock (system.tables'
 * metadata_modification_time), so clock skew between replicas does not matter, and a lock
 * older than LOCK_TTL_MS (its replica died) is dropped by whoever sees it first (a plain DROP:
 * one succeeds) and taken again. Unlocking drops it. A migration cut short is applied again
 * from its first statement, which is why every statement says IF NOT EXISTS.
 */
struct mig {
    struct an_ch *ch;
    char owner[SVC_UUID_STR_LEN + 1];
};

/* The lock's age in seconds by the server's clock: 0 and *AGE (-1 when it is gone). */
static int lock_age(struct an_ch *ch, int64_t *age)
{
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data;
    const json_t *row;
    int rc;

    svc_buf_adds(&sql,
                 "SELECT toInt64(now()) - toInt64(metadata_modification_time) AS age FROM "
                 "system.tables WHERE database = currentDatabase() AND name = '" LOCK_TABLE "'");
    rc = ch_select(ch, "migration lock lookup", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    row = json_array_get(data, 0);
    *age = json_is_object(row) ? jint(row, "age") : -1;
    json_decref(root);
    return 0;
}

static int mig_lock(void *ctx)
{
    struct mig *g = ctx;
    struct an_ch *ch = g->ch;
    int64_t give_up = svc_now_ms() + 2 * LOCK_TTL_MS;
    int rc;

    svc_uuid_v4_str(g->owner);
    for (;;) {
        struct svc_buf sql = SVC_BUF_INIT;
        struct ch_ans ans;
        int64_t age = -1;

        svc_buf_addf(&sql,
                     "CREATE TABLE " LOCK_TABLE " ENGINE = Log AS SELECT toUInt64(%" PRId64
                     ") AS taken_ms, '%s' AS owner",
                     svc_wall_ms(), g->owner); /* owner: a UUID made here */
        rc = ch_raw(ch, "migration lock", ch->url_sql, sql.data, sql.len, 0, false, &ans);
        svc_buf_release(&sql);
        if (rc != 0)
            return rc;
        if (ans.code != 57) {
            rc = ch_check(ch, "migration lock", &ans);
            ans_release(&ans);
            break;
        }
        ans_release(&ans);
        if ((rc = lock_age(ch, &age)) != 0)
            return rc;
        if (age * 1000 > LOCK_TTL_MS) {
            rc = ch_raw(ch, "stale migration lock takeover", ch->url_sql, "DROP TABLE " LOCK_TABLE,
                        strlen("DROP TABLE " LOCK_TABLE), 0, false, &ans);
            if (rc == 0 && ans.code != 60 &&
                (rc = ch_check(ch, "migration lock takeover", &ans)) == 0)
                svc_log_warn("clickhouse: took over the migration lock, held for %" PRId64
                             " s (its replica died)",
                             age);
            ans_release(&ans);
            if (rc != 0)
                return rc;
            continue;
        }
        if (svc_now_ms() > give_up) {
            svc_log_error("clickhouse: the migration lock is held by another replica");
            return SVC_EUNAVAILABLE;
        }
        if (age >= 0)
            svc_sleep_ms(200);
    }
    if (rc == 0)
        rc = ch_exec(ch, "migration table create",
                     "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
                     "checksum String, applied_at DateTime) ENGINE = ReplacingMergeTree "
                     "ORDER BY version",
                     MIGRATION_TIMEOUT_MS, true);
    return rc;
}

static int mig_unlock(void *ctx, bool commit)
{
    struct mig *g = ctx;
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data;
    const char *owner;
    int rc;

    (void)commit; /* nothing to roll back: see above */
    svc_buf_adds(&sql, "SELECT owner FROM " LOCK_TABLE);
    rc = ch_select(g->ch, "migration unlock", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    owner = json_string_value(json_object_get(json_array_get(data, 0), "owner"));
    if (owner != NULL && strcmp(owner, g->owner) == 0)
        rc = ch_exec(g->ch, "migration unlock", "DROP TABLE " LOCK_TABLE, 0, false);
    else
        svc_log_warn("clickhouse: the migration lock was taken over meanwhile");
    json_decref(root);
    return rc;
}

static int mig_list(void *ctx, struct svc_migration_list *applied)
{
    struct mig *g = ctx;
    struct svc_buf sql = SVC_BUF_INIT;
    json_t *root, *data, *row;
    size_t i;
    int rc;

    svc_buf_adds(&sql, "SELECT version, argMax(name, applied_at) AS name, argMax(checksum, "
                       "applied_at) AS checksum FROM schema_migrations GROUP BY version "
                       "ORDER BY version");
    rc = ch_select(g->ch, "migration list", &sql, &root, &data);
    svc_buf_release(&sql);
    if (rc != 0)
        return rc;
    json_array_foreach(data, i, row) svc_migration_applied_add(
        applied, (int)jint(row, "version"), json_string_value(json_object_get(row, "name")),
        json_string_value(json_object_get(row, "checksum")));
    json_decref(root);
    return 0;
}

/* Whether LINE (LEN bytes) is blank or a `--` comment. */
static bool skip_line(const char *line, size_t len)
{
    size_t i = 0;

    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    return i == len || (len - i >= 2 && line[i] == '-' && line[i + 1] == '-');
}

/* A migration: statements that end with ';' at the end of a line, sent one by one. */
static int mig_apply(void *ctx, const struct svc_migration *mg)
{
    struct mig *g = ctx;
    struct svc_buf stmt = SVC_BUF_INIT;
    const char *p = mg->text;
    size_t k = 0;
    int rc = 0;

    while (rc == 0 && *p != '\0') {
        size_t len = strcspn(p, "\n"), end = len;

        while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'))
            end--;
        if (skip_line(p, len)) {
            /* a blank or comment line */
        } else if (p[end - 1] != ';') {
            svc_buf_add(&stmt, p, len);
            svc_buf_addc(&stmt, '\n');
        } else {
            char what[160];

            /* the last line, without its ';': the HTTP interface takes one statement */
            svc_buf_add(&stmt, p, end - 1);
            snprintf(what, sizeof(what), "migration '%s' statement %zu", mg->name, ++k);
            rc = ch_exec(g->ch, what, svc_buf_str(&stmt), MIGRATION_TIMEOUT_MS, false);
            svc_buf_reset(&stmt);
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    if (rc == 0 && stmt.len > 0) {
        svc_log_error("migration '%s': text after the last statement does not end with ';'",
                      mg->name);
        rc = SVC_EINTERNAL;
    }
    svc_buf_release(&stmt);
    return rc;
}

static int mig_record(void *ctx, const struct svc_migration *mg)
{
    struct mig *g = ctx;
    struct svc_buf sql = SVC_BUF_INIT;
    int rc;

    svc_buf_addf(&sql,
                 "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                 "VALUES (%d, ",
                 mg->version);
    quote(&sql, mg->name);
    svc_buf_addc(&sql, ',');
    quote(&sql, mg->sha256);
    svc_buf_adds(&sql, ", now())");
    rc = ch_exec(g->ch, "migration record", sql.data, 0, false);
    svc_buf_release(&sql);
    return rc;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

/* Whether ClickHouse answers these credentials in this database. */
static int ping(struct an_ch *ch)
{
    return ch_exec(ch, "ping", "SELECT 1", 0, true);
}

static void probe(void *ctx)
{
    ping(ctx); /* ch_check reports to the dependency state */
}

static bool db_name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 64)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static bool header_ok(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

int an_ch_new(const struct an_ch_opts *o, struct an_ch **out)
{
    const char *url = o->url != NULL ? o->url : "";
    struct an_ch *ch;
    struct svc_buf b = SVC_BUF_INIT;
    size_t len = strlen(url);
    int rc;

    *out = NULL;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || len < 9 ||
        strchr(url, '@') != NULL || strchr(url, '?') != NULL) {
        svc_log_error("CLICKHOUSE_URL must be http(s)://host:port, without credentials (they go "
                      "in CLICKHOUSE_USER and CLICKHOUSE_PASSWORD)");
        return SVC_EINVAL;
    }
    if (!db_name_ok(o->database)) {
        svc_log_error("CLICKHOUSE_DATABASE must be a name of letters, digits and '_'");
        return SVC_EINVAL;
    }
    if (!header_ok(o->user) || !header_ok(o->password) || o->user[0] == '\0') {
        svc_log_error("CLICKHOUSE_USER must be set, and neither it nor CLICKHOUSE_PASSWORD may "
                      "hold a line break");
        return SVC_EINVAL;
    }
    if (o->pseudonym_key == NULL || o->pseudonym_key[0] == '\0') {
        svc_log_error("PSEUDONYM_KEY must be set");
        return SVC_EINVAL;
    }
    ch = svc_calloc(1, sizeof(*ch));
    while (len > 0 && url[len - 1] == '/')
        len--;
    ch->base = svc_strndup(url, len);
    svc_buf_addf(&b, "%s/?database=%s&output_format_json_quote_64bit_integers=0", ch->base,
                 o->database);
    ch->url_sql = svc_buf_detach(&b, NULL);
    svc_buf_addf(&b,
                 "%s/?database=%s&date_time_input_format=best_effort"
                 "&query=INSERT%%20INTO%%20events%%20FORMAT%%20JSONEachRow",
                 ch->base, o->database);
    ch->url_ins = svc_buf_detach(&b, NULL);
    ch->user = svc_strdup(o->user);
    svc_buf_addf(&b, "X-ClickHouse-User: %s", o->user);
    ch->hdr_user = svc_buf_detach(&b, NULL);
    svc_buf_addf(&b, "X-ClickHouse-Key: %s", o->password != NULL ? o->password : "");
    ch->hdr_key = svc_buf_detach(&b, NULL);
    ch->headers[0] = ch->hdr_user;
    ch->headers[1] = ch->hdr_key;
    ch->headers[2] = NULL;
    ch->pseudonym_key = svc_strdup(o->pseudonym_key);
    ch->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    ch->dep = svc_dep_new("clickhouse", 0, NULL);
    svc_dep_set_probe(ch->dep, probe, ch);

    rc = ping(ch);
    if (rc == 0) {
        struct mig g = {.ch = ch};
        const struct svc_migrate_engine e = {.name = "clickhouse",
                                             .ctx = &g,
                                             .lock = mig_lock,
                                             .unlock = mig_unlock,
                                             .list = mig_list,
                                             .apply = mig_apply,
                                             .record = mig_record};

        rc = svc_migrate(migrations, &e);
    }
    if (rc != 0) {
        svc_log_error("clickhouse not ready: %s", svc_err_title(rc));
        an_ch_free(ch);
        return rc;
    }
    ch->started = true;
    *out = ch;
    return 0;
}

static void free_secret(char *s)
{
    if (s != NULL)
        memset(s, 0, strlen(s));
    free(s);
}

void an_ch_free(struct an_ch *ch)
{
    if (ch == NULL)
        return;
    svc_dep_free(ch->dep);
    free(ch->base);
    free(ch->url_sql);
    free(ch->url_ins);
    free(ch->user);
    free(ch->hdr_user);
    free_secret(ch->hdr_key);
    free_secret(ch->pseudonym_key);
    free(ch);
}

/* ---- hooks -------------------------------------------------------------------------------- */

int an_store_init(void *svc)
{
    struct an_svc *s = svc;
    struct an_ch_opts o = {
        .url = s->cfg.ch_url,
        .user = s->cfg.ch_user,
        .password = s->cfg.ch_password,
        .database = s->cfg.ch_database,
        .pseudonym_key = s->cfg.pseudonym_key,
        .timeout_ms = (int)s->cfg.ch_timeout_ms,
    };
    int rc = an_ch_new(&o, &s->ch);

    if (rc != 0)
        return rc;
    an_ch_store(s->ch, &s->app.store);
    return 0;
}

void an_store_fini(void *svc)
{
    struct an_svc *s = svc;

    an_ch_free(s->ch);
    s->ch = NULL;
    memset(&s->app.store, 0, sizeof(s->app.store));
}

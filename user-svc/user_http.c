/*
 * user_http.c: user-svc's HTTP API (issue 4; the contract is user-svc/openapi.yaml).
 *
 * Every handler parses, validates, calls the store and renders, in that order: nothing reaches
 * the store before the whole request is known to be valid, so bad input changes nothing. The
 * store is reached through the function pointers of struct user_store (user.h), which the
 * http tests replace with a fake.
 */
#include "user.h"

#include "svc/error.h"
#include "svc/event.h"
#include "svc/http.h"
#include "svc/json.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    BODY_MAX = 16 * 1024, /* every body here is a few short fields */
    NAME_MAX_CHARS = 100,
    EMAIL_MAX = 254,      /* RFC 5321's limit on a forward path, less the brackets */
    EMAIL_LOCAL_MAX = 64, /* RFC 5321, 4.5.3.1.1 */
    DOMAIN_LABEL_MAX = 63,
    LIMIT_DEFAULT = 20,
    LIMIT_MAX = 100,
};

#define AMOUNT_MAX 1000000000 /* cents: ten million in any currency is past any test or demo */

static struct user_store *store_of(struct svc_req *req)
{
    struct user_app *app = svc_req_app(req);

    return &app->store;
}

/* ---- problems --------------------------------------------------------------------------- */

const struct svc_err_def user_errors[] = {USER_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

/*
 * Words for a store failure the handler has none better for (the codes' status and problem
 * type come from the error tables). SVC_EUNAVAILABLE gets Retry-After; anything unexpected is
 * a 500 (the store has logged it, with its context).
 */
static int store_error(struct svc_resp *resp, int rc)
{
    switch (rc) {
    case USER_EEMAIL_TAKEN:
        return svc_resp_error(resp, rc, "this email address is already registered");
    case USER_EFUNDS:
        return svc_resp_error(resp, rc, "the wallet balance is lower than the amount");
    case SVC_EIDEMPOTENCY:
        return svc_resp_error(resp, rc, "this id was already used for a different request");
    case SVC_EPRECONDITION:
        return svc_resp_error(resp, rc, "the resource has changed: fetch it again");
    case SVC_ENOTFOUND:
        return svc_resp_error(resp, rc, "not found");
    case SVC_EUNPROCESSABLE:
        return svc_resp_error(resp, rc, "the change would take a value out of its range");
    case SVC_EUNAVAILABLE:
    case SVC_EAGAIN:
    case SVC_ETIMEDOUT:
        return svc_resp_error(resp, SVC_EUNAVAILABLE,
                              "the user database is unavailable: retry later");
    default:
        return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
    }
}

/* ---- input ------------------------------------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* S without leading and trailing ASCII white space: *LEN bytes from the returned pointer. */
static const char *trimmed(const char *s, size_t *len)
{
    size_t n = strlen(s);

    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    *len = n;
    return s;
}

static bool is_atext(char c)
{
    /* RFC 5322 atext: what an unquoted local part is made of. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Why the N bytes at S are not an address this API takes, or NULL when they are. A practical
 * check, not RFC 5322: a dot-atom local part of 1 to 64 characters, one '@', a domain of at
 * least two labels of letters, digits and hyphens, ASCII only, 254 characters in all. */
static const char *email_problem(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n), *d;
    size_t local, label = 0;

    if (n == 0)
        return "it is empty";
    if (n > EMAIL_MAX)
        return "it is longer than 254 characters";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c == 0x7f)
            return "it contains a space or a control character";
        if (c >= 0x80)
            return "it must be ASCII (write an internationalised domain in its xn-- form)";
    }
    if (at == NULL)
        return "it has no '@'";
    if (memchr(at + 1, '@', n - (size_t)(at + 1 - s)) != NULL)
        return "it has more than one '@'";
    local = (size_t)(at - s);
    if (local == 0 || local > EMAIL_LOCAL_MAX)
        return "the part before '@' must be 1 to 64 characters";
    for (size_t i = 0; i < local; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == local - 1 || s[i - 1] == '.')
                return "the part before '@' has a misplaced dot";
        } else if (!is_atext(s[i])) {
            return "the part before '@' may hold letters, digits, dots and !#$%&'*+-/=?^_`{|}~ "
                   "only";
        }
    }
    d = at + 1;
    if (memchr(d, '.', n - local - 1) == NULL)
        return "the domain must have a dot";
    for (const char *p = d; p <= s + n; p++) {
        if (p == s + n || *p == '.') {
            if (label == 0)
                return "the domain has an empty label";
            if (p[-1] == '-' || p[-(ptrdiff_t)label] == '-')
                return "a label of the domain starts or ends with '-'";
            label = 0;
            continue;
        }
        if (!is_label_char(*p))
            return "the domain may hold letters, digits, hyphens and dots only";
        if (++label > DOMAIN_LABEL_MAX)
            return "a label of the domain is longer than 63 characters";
    }
    return NULL;
}

/*
 * Normalises the address IN (trimmed, domain lower-cased; the local part is kept as written,
 * since RFC 5321 lets it be case-sensitive) into *OUT, in the arena. On a bad address renders
 * a 400 naming the body field or, with IN_QUERY, the query parameter 'email'.
 */
static int email_normalise(struct svc_req *req, struct svc_resp *resp, bool in_query,
                           const char *in, const char **out)
{
    size_t n;
    const char *s = trimmed(in, &n);
    const char *why = email_problem(s, n);
    char *e;

    if (why != NULL)
        /* In a query string '+' means a space: a client that sent "a+b@x.com" unencoded
         * deserves to be told. */
        return svc_resp_invalid(
            resp, "email", "%s 'email' must be an email address such as name@example.com: %s%s",
            in_query ? "query parameter" : "field", why,
            in_query && memchr(s, ' ', n) != NULL
                ? " (a '+' in a query string is a space: send it as %2B)"
                : "");
    e = svc_arena_strndup(svc_req_arena(req), s, n);
    for (char *p = strchr(e, '@'); *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    *out = e;
    return 0;
}

/* A display name: trimmed, then 1 to 100 characters (code points), no control characters
 * (C0, DEL, C1). Anything else is kept verbatim: names are data, never code. */
static int name_normalise(struct svc_req *req, struct svc_resp *resp, const char *in,
                          const char **out)
{
    size_t n, chars = 0;
    const unsigned char *s = (const unsigned char *)trimmed(in, &n);

    for (size_t i = 0; i < n; i++) {
        /* lib has checked the UTF-8, so counting lead bytes counts characters. */
        if ((s[i] & 0xc0) != 0x80)
            chars++;
        if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && i + 1 < n && s[i + 1] < 0xa0))
            return svc_resp_invalid(resp, "name",
                                    "field 'name' must not contain control characters");
    }
    if (chars == 0 || chars > NAME_MAX_CHARS)
        return svc_resp_invalid(
            resp, "name", "field 'name' must be 1 to 100 characters once trimmed, not %zu", chars);
    *out = svc_arena_strndup(svc_req_arena(req), (const char *)s, n);
    return 0;
}

/*
 * The version an If-Match header names. Only one strong entity tag holding a version, as this
 * API sends them in ETag ("\"3\""), is accepted: without the header 428, anything else ('*',
 * weak tags, lists, other text) 400, so a client never believes it is protected when it is not.
 */
static int if_match_version(struct svc_req *req, struct svc_resp *resp, int64_t *out)
{
    const char *v = svc_req_header(req, "If-Match");
    const char *s;
    size_t n;
    int64_t version = 0;

    if (v == NULL)
        return svc_resp_error(resp, SVC_EPRECONDREQUIRED,
                              "send If-Match with the user's ETag (\"<version>\") to change it");
    s = trimmed(v, &n);
    if (n < 3 || n > 21 || s[0] != '"' || s[n - 1] != '"' || s[1] == '0')
        goto bad;
    for (size_t i = 1; i < n - 1; i++) {
        if (s[i] < '0' || s[i] > '9' || version > (INT64_MAX - (s[i] - '0')) / 10)
            goto bad;
        version = version * 10 + (s[i] - '0');
    }
    *out = version;
    return 0;
bad:
    return svc_resp_invalid(
        resp, "If-Match",
        "header 'If-Match' must be one ETag of this API, a version in quotes such as "
        "\"3\", not '%.64s'",
        v);
}

/* ---- output ----------------------------------------------------------------------------- */

static json_t *user_json(const struct user *u)
{
    return json_pack("{s:s, s:s?, s:s?, s:s, s:I, s:o, s:o}", "id", u->id, "email", u->email,
                     "name", u->name, "status", u->status, "version", (json_int_t)u->version,
                     "created_at", svc_json_time(u->created_at_ms), "updated_at",
                     svc_json_time(u->updated_at_ms));
}

/* The ETag of a user: its version, as a strong entity tag. */
static void set_etag(struct svc_resp *resp, int64_t version)
{
    char etag[32];

    snprintf(etag, sizeof(etag), "\"%" PRId64 "\"", version);
    svc_resp_header(resp, "ETag", etag);
}

static int render_user(struct svc_resp *resp, int status, const struct user *u)
{
    set_etag(resp, u->version);
    return svc_resp_json(resp, status, user_json(u));
}

static json_t *credit_json(const struct credit *c)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:o}", "credit_id", c->credit_id, "user_id", c->user_id,
                     "amount_cents", (json_int_t)c->amount_cents, "balance_cents",
                     (json_int_t)c->balance_cents, "created_at", svc_json_time(c->created_at_ms));
}

static json_t *payment_json(const struct payment *p)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:I, s:o, s:o}", "payment_id", p->payment_id, "user_id",
                     p->user_id, "amount_cents", (json_int_t)p->amount_cents, "status", p->status,
                     "balance_cents", (json_int_t)p->balance_cents, "created_at",
                     svc_json_time(p->created_at_ms), "refunded_at",
                     p->refunded_at_ms != 0 ? svc_json_time(p->refunded_at_ms) : json_null());
}

/* An idempotent request: 201 (or 200 for a refund) when done now, 200 with the stored result
 * when replayed, which Idempotent-Replayed also says. */
static int render_idempotent(struct svc_resp *resp, int status, bool replayed, json_t *body)
{
    if (replayed)
        svc_resp_header(resp, "Idempotent-Replayed", "true");
    return svc_resp_json(resp, replayed ? 200 : status, body);
}

/* ---- users ------------------------------------------------------------------------------ */

struct user_in {
    const char *email, *name;
};

/* A name is display text: lib refuses bidirectional controls, zero-width characters and control
 * characters in it, naming the field and the character. It reads the name as a block so that
 * the tabs and line breaks around a name are left to name_normalise(), which trims them as it
 * always has and refuses those inside. */
static const struct svc_json_field user_create_fields[] = {
    {"email", SVC_JSON_STRING, .required = true, .offset = offsetof(struct user_in, email)},
    {"name", SVC_JSON_STRING, .required = true, .text = SVC_JSON_TEXT_BLOCK,
     .offset = offsetof(struct user_in, name)},
    {0},
};

static const struct svc_json_field user_patch_fields[] = {
    {"name", SVC_JSON_STRING, .required = true, .text = SVC_JSON_TEXT_BLOCK,
     .offset = offsetof(struct user_in, name)},
    {0},
};

/* POST /v1/users {email, name} */
static int user_create(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    struct user_in in = {0};
    const char *email = NULL, *name = NULL, *location;
    struct user u;
    int rc;

    if ((rc = svc_req_read_json(req, resp, user_create_fields, &in)) != 0 ||
        (rc = email_normalise(req, resp, false, in.email, &email)) != 0 ||
        (rc = name_normalise(req, resp, in.name, &name)) != 0)
        return rc;
    rc = st->create(st->ctx, svc_req_arena(req), email, name, svc_req_traceparent(req), &u);
    if (rc == USER_EEMAIL_TAKEN)
        return svc_resp_error(resp, rc, "email '%s' is already registered", email);
    if (rc != 0)
        return store_error(resp, rc);
    location = svc_arena_printf(svc_req_arena(req), "/v1/users/%s", u.id);
    svc_resp_header(resp, "Location", location);
    return render_user(resp, 201, &u);
}

/* GET /v1/users/:id */
static int user_get(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct user u;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    rc = st->get(st->ctx, svc_req_arena(req), id, &u);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return render_user(resp, 200, &u);
}

/* GET /v1/users?email= (0 or 1 item) and GET /v1/users?limit=&cursor= (a page). limit and
 * cursor are validated either way, so a bad value is always a 400. */
static int user_list(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    const char *email = svc_req_query(req, "email");
    static const char *const list_params[] = {"email", "limit", "cursor", NULL};
    char after_id[SVC_UUID_STR_LEN + 1];
    long long after_ms = 0;
    bool after = false;
    long long limit;
    struct user_page page;
    struct user u;
    json_t *items;
    int rc;

    if ((rc = svc_query_only(req, resp, list_params)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", 1, LIMIT_MAX, LIMIT_DEFAULT, &limit)) != 0 ||
        (rc = svc_query_keyset(req, resp, "cursor", &after_ms, after_id, &after)) != 0)
        return rc;
    if (email != NULL) {
        if ((rc = email_normalise(req, resp, true, email, &email)) != 0)
            return rc;
        rc = st->get_by_email(st->ctx, svc_req_arena(req), email, &u);
        if (rc != 0 && rc != SVC_ENOTFOUND)
            return store_error(resp, rc);
        items = json_array();
        if (rc == 0)
            json_array_append_new(items, user_json(&u));
        return svc_resp_json(resp, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
    }
    memset(&page, 0, sizeof(page));
    rc =
        st->list(st->ctx, svc_req_arena(req), (int)limit, after_ms, after ? after_id : NULL, &page);
    if (rc != 0)
        return store_error(resp, rc);
    items = json_array();
    for (size_t i = 0; i < page.n; i++)
        json_array_append_new(items, user_json(&page.items[i]));
    return svc_resp_page(req, resp, items, page.more, page.next_created_at_ms, page.next_id);
}

/* PATCH /v1/users/:id {name}, If-Match: "<version>" */
static int user_patch(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1] = "";
    struct user_in in = {0};
    const char *name = NULL;
    int64_t version = 0;
    struct user u;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_req_read_json(req, resp, user_patch_fields, &in)) != 0 ||
        (rc = name_normalise(req, resp, in.name, &name)) != 0 ||
        (rc = if_match_version(req, resp, &version)) != 0)
        return rc;
    rc = st->rename(st->ctx, svc_req_arena(req), id, version, name, svc_req_traceparent(req), &u);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);
    if (rc == SVC_EPRECONDITION)
        return svc_resp_error(resp, SVC_EPRECONDITION,
                              "user '%s' is no longer at version %" PRId64
                              ": fetch it again for its current ETag",
                              id, version);
    if (rc != 0)
        return store_error(resp, rc);
    return render_user(resp, 200, &u);
}

/* DELETE /v1/users/:id: erases the personal data; later reads are 404. */
static int user_delete(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    rc = st->erase(st->ctx, id, svc_req_traceparent(req));
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_empty(resp, 204);
}

/* ---- wallets and payments --------------------------------------------------------------- */

struct credit_in {
    char credit_id[SVC_JSON_UUID_SIZE];
    int64_t amount_cents;
};

static const struct svc_json_field credit_fields[] = {
    {"credit_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct credit_in, credit_id)},
    {"amount_cents", SVC_JSON_INT, .required = true, .min = 1, .max = AMOUNT_MAX,
     .offset = offsetof(struct credit_in, amount_cents)},
    {0},
};

struct payment_in {
    char payment_id[SVC_JSON_UUID_SIZE];
    char user_id[SVC_JSON_UUID_SIZE];
    int64_t amount_cents;
};

static const struct svc_json_field payment_fields[] = {
    {"payment_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct payment_in, payment_id)},
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct payment_in, user_id)},
    {"amount_cents", SVC_JSON_INT, .required = true, .min = 1, .max = AMOUNT_MAX,
     .offset = offsetof(struct payment_in, amount_cents)},
    {0},
};

/* A refund takes no body; an empty object is tolerated, any member is refused. */
static const struct svc_json_field refund_fields[] = {
    {0},
};

/* GET /v1/users/:id/wallet */
static int wallet_get(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct wallet w;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    rc = st->wallet_get(st->ctx, id, &w);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200,
                         json_pack("{s:s, s:I, s:o}", "user_id", w.user_id, "balance_cents",
                                   (json_int_t)w.balance_cents, "updated_at",
                                   svc_json_time(w.updated_at_ms)));
}

/* POST /v1/users/:id/wallet/credits {credit_id, amount_cents}: an idempotent top-up. */
static int wallet_credit(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct credit_in in = {0};
    struct credit c;
    bool replayed = false;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_req_read_json(req, resp, credit_fields, &in)) != 0)
        return rc;
    rc = st->credit(st->ctx, id, in.credit_id, in.amount_cents, svc_req_traceparent(req), &c,
                    &replayed);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", id);
    if (rc == SVC_EIDEMPOTENCY)
        return svc_resp_error(
            resp, rc, "credit '%s' was already made with a different amount or user", in.credit_id);
    if (rc != 0)
        return store_error(resp, rc);
    return render_idempotent(resp, 201, replayed, credit_json(&c));
}

/* POST /v1/payments {payment_id, user_id, amount_cents}: an idempotent debit. */
static int payment_create(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    struct payment_in in = {0};
    struct payment p;
    bool replayed = false;
    int rc;

    if ((rc = svc_req_read_json(req, resp, payment_fields, &in)) != 0)
        return rc;
    rc = st->pay(st->ctx, svc_req_arena(req), in.payment_id, in.user_id, in.amount_cents,
                 svc_req_traceparent(req), &p, &replayed);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "user '%s' not found", in.user_id);
    if (rc == USER_EFUNDS)
        return svc_resp_error(resp, rc, "the wallet of user '%s' holds less than %" PRId64 " cents",
                              in.user_id, in.amount_cents);
    if (rc == SVC_EIDEMPOTENCY)
        return svc_resp_error(resp, rc,
                              "payment '%s' was already made with a different amount or user",
                              in.payment_id);
    if (rc != 0)
        return store_error(resp, rc);
    return render_idempotent(resp, 201, replayed, payment_json(&p));
}

/* POST /v1/payments/:payment_id/refund: the saga's compensation, idempotent. */
static int payment_refund(struct svc_req *req, struct svc_resp *resp)
{
    struct user_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct payment p;
    bool replayed = false;
    char none;
    size_t len;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "payment_id", id)) != 0)
        return rc;
    svc_req_body(req, &len);
    if (len > 0 && (rc = svc_req_read_json(req, resp, refund_fields, &none)) != 0)
        return rc;
    rc = st->refund(st->ctx, svc_req_arena(req), id, svc_req_traceparent(req), &p, &replayed);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "payment '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return render_idempotent(resp, 200, replayed, payment_json(&p));
}

const struct svc_route user_routes[] = {
    {SVC_POST, "/v1/users", user_create, SVC_ROUTE_JSON, BODY_MAX},
    {SVC_GET, "/v1/users", user_list, 0, 0},
    {SVC_GET, "/v1/users/:id", user_get, 0, 0},
    {SVC_PATCH, "/v1/users/:id", user_patch, SVC_ROUTE_JSON, BODY_MAX},
    {SVC_DELETE, "/v1/users/:id", user_delete, 0, BODY_MAX},
    {SVC_GET, "/v1/users/:id/wallet", wallet_get, 0, 0},
    {SVC_POST, "/v1/users/:id/wallet/credits", wallet_credit, SVC_ROUTE_JSON, BODY_MAX},
    {SVC_POST, "/v1/payments", payment_create, SVC_ROUTE_JSON, BODY_MAX},
    {SVC_POST, "/v1/payments/:payment_id/refund", payment_refund, SVC_ROUTE_JSON, BODY_MAX},
    SVC_ROUTES_END,
};

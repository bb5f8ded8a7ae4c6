/*
 * msg_http.c: message-svc's HTTP API (issue 5; the contract is message-svc/openapi.yaml).
 *
 * Every handler parses, validates, calls the store and renders, in that order: nothing reaches
 * the store before the whole request is known to be valid, so bad input changes nothing. The
 * store is reached through the function pointers of struct msg_store (msg.h), which the http
 * tests replace with a fake.
 *
 * No client input ever becomes a MongoDB field name or operator: bodies are read with field
 * tables that refuse any member they do not name (so "$where" or "a.b" are 400s), and every
 * value handed to the store is typed: UUIDs parsed and reformatted, booleans, integers, and
 * plain strings the store only ever stores as values.
 */
#include "msg.h"

#include "svc/error.h"
#include "svc/event.h"
#include "svc/http.h"
#include "svc/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    /* A message body of 10000 characters may take 12 bytes each once JSON-escaped (a
     * surrogate pair of \u escapes): a cap that never refuses a valid message. */
    SEND_BODY_MAX = 128 * 1024,
    PATCH_BODY_MAX = 1024,
    LIMIT_DEFAULT = 20,
    LIMIT_MAX = 100,
};

static struct msg_store *store_of(struct svc_req *req)
{
    struct msg_app *app = svc_req_app(req);

    return &app->store;
}

/* ---- problems --------------------------------------------------------------------------- */

const struct svc_err_def msg_errors[] = {MSG_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

/*
 * 404s about a user, with message-svc's own problem types. FIELD names the input that held
 * the user id. A user this service has not heard of may simply not have reached its read
 * model yet (it learns users from user-events): that is "user-not-known", never a 500.
 */
static int user_problem(struct svc_resp *resp, int rc, const char *field, const char *id)
{
    if (rc == MSG_EUSER_DELETED)
        svc_resp_error(resp, rc, "user '%s' (%s) is deleted", id, field);
    else
        svc_resp_error(resp, MSG_EUSER_UNKNOWN,
                       "user '%s' (%s) is not known to message-svc: it does not exist, or was "
                       "registered a moment ago and its event has not arrived yet; retry shortly",
                       id, field);
    svc_resp_problem_extend(resp, "field", json_string(field));
    return rc;
}

/*
 * Words for a store failure the handler has none better for (the codes' status and problem
 * type come from the error tables). SVC_EUNAVAILABLE gets Retry-After; anything unexpected is
 * a 500 (the store has logged it, with its context).
 */
static int store_error(struct svc_resp *resp, int rc)
{
    switch (rc) {
    case SVC_ENOTFOUND:
        return svc_resp_error(resp, rc, "not found");
    case MSG_EUSER_UNKNOWN:
        return svc_resp_error(resp, rc, "a user is not known to message-svc (yet)");
    case MSG_EUSER_DELETED:
        return svc_resp_error(resp, rc, "a user is deleted");
    case SVC_EIDEMPOTENCY:
        return svc_resp_error(resp, rc,
                              "this Idempotency-Key was already used for a different message");
    case SVC_EUNAVAILABLE:
    case SVC_EAGAIN:
    case SVC_ETIMEDOUT:
        return svc_resp_error(resp, SVC_EUNAVAILABLE,
                              "the message database is unavailable: retry later");
    default:
        return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
    }
}

/* ---- input ------------------------------------------------------------------------------ */

/* ---- output ----------------------------------------------------------------------------- */

static json_t *message_json(const struct msg_message *m)
{
    return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:o, s:o, s:s?}", "id", m->id, "recipient",
                     m->recipient, "sender", m->sender != NULL ? m->sender : MSG_SYSTEM,
                     "sender_name", m->sender_name, "subject", m->subject != NULL ? m->subject : "",
                     "body", m->body != NULL ? m->body : "", "created_at",
                     svc_json_time(m->created_at_ms), "read_at",
                     m->read_at_ms != 0 ? svc_json_time(m->read_at_ms) : json_null(),
                     "source_event_id", m->source_event_id);
}

/* ---- messages --------------------------------------------------------------------------- */

/* GET /v1/users/:id/messages?unread=&limit=&cursor= : newest first. */
static int inbox_list(struct svc_req *req, struct svc_resp *resp)
{
    struct msg_store *st = store_of(req);
    static const char *const inbox_params[] = {"unread", "limit", "cursor", NULL};
    char id[SVC_UUID_STR_LEN + 1], after_id[SVC_UUID_STR_LEN + 1];
    long long after_ms = 0;
    bool after = false;
    long long limit;
    int unread, rc;
    struct msg_page page;
    json_t *items;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, inbox_params)) != 0 ||
        (rc = svc_query_bool(req, resp, "unread", -1, &unread)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", 1, LIMIT_MAX, LIMIT_DEFAULT, &limit)) != 0 ||
        (rc = svc_query_keyset(req, resp, "cursor", &after_ms, after_id, &after)) != 0)
        return rc;
    memset(&page, 0, sizeof(page));
    rc = st->inbox(st->ctx, svc_req_arena(req), id, unread, (int)limit, after_ms,
                   after ? after_id : NULL, &page);
    if (rc == MSG_EUSER_UNKNOWN || rc == MSG_EUSER_DELETED)
        return user_problem(resp, rc, "id", id);
    if (rc != 0)
        return store_error(resp, rc);
    items = json_array();
    for (size_t i = 0; i < page.n; i++)
        json_array_append_new(items, message_json(&page.items[i]));
    return svc_resp_page(req, resp, items, page.more, page.next_created_at_ms, page.next_id);
}

/* GET /v1/messages/:id */
static int message_get(struct svc_req *req, struct svc_resp *resp)
{
    struct msg_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct msg_message m;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    memset(&m, 0, sizeof(m));
    rc = st->get(st->ctx, svc_req_arena(req), id, &m);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "message '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, message_json(&m));
}

struct patch_in {
    bool read;
};

static const struct svc_json_field patch_fields[] = {
    {"read", SVC_JSON_BOOL, .required = true, .offset = offsetof(struct patch_in, read)},
    {0},
};

/* PATCH /v1/messages/:id {read: true|false}: 200 with the message. */
static int message_patch(struct svc_req *req, struct svc_resp *resp)
{
    struct msg_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct patch_in in = {0};
    struct msg_message m;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_req_read_json(req, resp, patch_fields, &in)) != 0)
        return rc;
    memset(&m, 0, sizeof(m));
    rc = st->set_read(st->ctx, svc_req_arena(req), id, in.read, &m);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "message '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, message_json(&m));
}

/* DELETE /v1/messages/:id: 204; later reads are 404. */
static int message_delete(struct svc_req *req, struct svc_resp *resp)
{
    struct msg_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0)
        return rc;
    rc = st->remove(st->ctx, id);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, SVC_ENOTFOUND, "message '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_empty(resp, 204);
}

struct send_in {
    char from_user_id[SVC_JSON_UUID_SIZE];
    char to_user_id[SVC_JSON_UUID_SIZE];
    const char *subject, *body;
};

static const struct svc_json_field send_fields[] = {
    {"from_user_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct send_in, from_user_id)},
    {"to_user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct send_in, to_user_id)},
    /* Display text: no bidirectional controls or zero-width characters (a spoofed sender or
     * subject), no control characters; the body may have lines and tabs. */
    {"subject", SVC_JSON_STRING, .required = true, .min = 1, .max = MSG_SUBJECT_MAX,
     .text = SVC_JSON_TEXT_LINE, .offset = offsetof(struct send_in, subject)},
    {"body", SVC_JSON_STRING, .required = true, .min = 1, .max = MSG_BODY_MAX,
     .text = SVC_JSON_TEXT_BLOCK, .offset = offsetof(struct send_in, body)},
    {0},
};

/*
 * The store says only that one of the two users is unknown or deleted; the extra lookups that
 * say which are made on this error path alone, so a message sent costs one store call.
 */
static int send_user_problem(struct svc_req *req, struct svc_resp *resp, int rc,
                             const struct send_in *in)
{
    struct msg_store *st = store_of(req);
    const struct {
        const char *field, *id;
    } users[] = {{"from_user_id", in->from_user_id}, {"to_user_id", in->to_user_id}};
    struct msg_user u;

    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        int urc;

        memset(&u, 0, sizeof(u));
        urc = st->user_get(st->ctx, svc_req_arena(req), users[i].id, &u);
        if (urc == SVC_ENOTFOUND || urc == MSG_EUSER_UNKNOWN)
            return user_problem(resp, MSG_EUSER_UNKNOWN, users[i].field, users[i].id);
        if (urc == MSG_EUSER_DELETED || (urc == 0 && u.deleted))
            return user_problem(resp, MSG_EUSER_DELETED, users[i].field, users[i].id);
        if (urc != 0)
            return store_error(resp, urc);
    }
    /* Both are fine now: one changed between the two calls. */
    return store_error(resp, rc);
}

/* POST /v1/messages {from_user_id, to_user_id, subject, body}, optional Idempotency-Key. */
static int message_send(struct svc_req *req, struct svc_resp *resp)
{
    struct msg_store *st = store_of(req);
    struct send_in in = {0};
    struct msg_new n = {0};
    struct msg_message m;
    const char *key = NULL;
    bool replayed = false;
    int rc;

    if ((rc = svc_req_read_json(req, resp, send_fields, &in)) != 0 ||
        (rc = svc_req_idempotency_key(req, resp, &key)) != 0)
        return rc;
    n.from_user_id = in.from_user_id;
    n.to_user_id = in.to_user_id;
    n.subject = in.subject;
    n.body = in.body;
    /* The key is scoped to the sender, so two senders never collide on the same key; without
     * one, every request is a new message. */
    if (key != NULL)
        n.dedup_key = svc_arena_printf(svc_req_arena(req), "dm:%s:%s", in.from_user_id, key);
    memset(&m, 0, sizeof(m));
    rc = st->send(st->ctx, svc_req_arena(req), &n, &m, &replayed);
    if (rc == MSG_EUSER_UNKNOWN || rc == MSG_EUSER_DELETED)
        return send_user_problem(req, resp, rc, &in);
    if (rc == SVC_EIDEMPOTENCY) {
        svc_resp_error(resp, rc,
                       "Idempotency-Key '%s' was already used by this sender for a different "
                       "message",
                       key != NULL ? key : "");
        svc_resp_problem_extend(resp, "field", json_string("Idempotency-Key"));
        return rc;
    }
    if (rc != 0)
        return store_error(resp, rc);
    svc_resp_header(resp, "Location",
                    svc_arena_printf(svc_req_arena(req), "/v1/messages/%s", m.id));
    if (replayed) {
        svc_resp_header(resp, "Idempotent-Replayed", "true");
        return svc_resp_json(resp, 200, message_json(&m));
    }
    return svc_resp_json(resp, 201, message_json(&m));
}

const struct svc_route msg_routes[] = {
    {SVC_GET, "/v1/users/:id/messages", inbox_list, 0, 0},
    {SVC_POST, "/v1/messages", message_send, SVC_ROUTE_JSON, SEND_BODY_MAX},
    {SVC_GET, "/v1/messages/:id", message_get, 0, 0},
    {SVC_PATCH, "/v1/messages/:id", message_patch, SVC_ROUTE_JSON, PATCH_BODY_MAX},
    {SVC_DELETE, "/v1/messages/:id", message_delete, 0, PATCH_BODY_MAX},
    SVC_ROUTES_END,
};

/*
 * cart_http.c: cart-svc's HTTP API (issue 12; the contract is cart-svc/openapi.yaml).
 *
 * Every handler parses, validates, calls the store (and, to add a line, product-svc through the
 * remote interface) and renders, in that order: nothing reaches the store before the whole
 * request is known to be valid, so bad input changes nothing. The store and the remote are
 * reached through the function pointers of struct cart_app (cart.h), which the http tests
 * replace with fakes.
 *
 * A checkout only creates the order (PENDING) and asks the saga worker to run it: the answer is
 * 202 before product-svc or user-svc is called, and GET /v1/orders/{id} shows how it goes.
 */
#include "cart.h"

#include "svc/error.h"
#include "svc/http.h"
#include "svc/json.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    /* {"quantity": 99} and white space: a body a thousand times that is no cart line. */
    LINE_BODY_MAX = 1024,
    SMALL_BODY_MAX = 1024,
    LIMIT_DEFAULT = 20,
    LIMIT_MAX = 100,
};

static struct cart_app *app_of(struct svc_req *req)
{
    return svc_req_app(req);
}

/* ---- problems --------------------------------------------------------------------------- */

const struct svc_err_def cart_errors[] = {CART_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

/*
 * Words for a store failure the handler has none better for (the codes' status and problem
 * type come from the error tables). Redis away gets 503 with Retry-After; anything unexpected
 * is a 500 (the store has logged it, with its context).
 */
static int store_error(struct svc_resp *resp, int rc)
{
    switch (rc) {
    case SVC_EUNAVAILABLE:
    case SVC_EAGAIN:
    case SVC_ETIMEDOUT:
        return svc_resp_error(resp, SVC_EUNAVAILABLE, "the cart store is unavailable: retry later");
    default:
        return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
    }
}

/* A user the read model does not know (yet), or a deleted one: 404 naming the path parameter. */
static int user_unknown(struct svc_resp *resp, const char *user_id)
{
    svc_resp_error(resp, CART_EUSER_UNKNOWN,
                   "user '%s' is not known to cart-svc: it does not exist, was deleted, or was "
                   "registered a moment ago and its event has not arrived yet; retry shortly",
                   user_id);
    svc_resp_problem_extend(resp, "field", json_string("user_id"));
    return CART_EUSER_UNKNOWN;
}

/* ---- output ----------------------------------------------------------------------------- */

static json_t *time_or_null(int64_t ms)
{
    return ms != 0 ? svc_json_time(ms) : json_null();
}

/* A line of a cart (REPRICED) or of an order (without it: an order's prices are final). */
static json_t *line_json(const struct cart_line *l, const char *currency, bool with_repriced)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "product_id", l->product_id, "name",
                          l->name != NULL ? l->name : "", "quantity", (json_int_t)l->quantity,
                          "price_cents", (json_int_t)l->price_cents, "currency",
                          l->currency != NULL ? l->currency : currency, "subtotal_cents",
                          (json_int_t)l->quantity * (json_int_t)l->price_cents);

    if (with_repriced)
        json_object_set_new(o, "repriced", json_boolean(l->repriced));
    return o;
}

static json_t *cart_json(const struct cart *c)
{
    json_t *lines = json_array();

    for (size_t i = 0; i < c->n; i++)
        json_array_append_new(
            lines, line_json(&c->lines[i], c->currency != NULL ? c->currency : "", true));
    return json_pack("{s:s, s:o, s:I, s:o, s:o, s:o}", "user_id", c->user_id, "lines", lines,
                     "total_cents", (json_int_t)c->total_cents, "currency",
                     c->currency != NULL ? json_string(c->currency) : json_null(), "updated_at",
                     time_or_null(c->updated_at_ms), "expires_at",
                     c->n > 0 ? time_or_null(c->expires_at_ms) : json_null());
}

/* An order; its saga log as `steps` when WITH_STEPS (a list's items have none). */
static json_t *order_json(const struct cart_order *o, bool with_steps)
{
    const char *currency = o->currency != NULL ? o->currency : "";
    json_t *lines = json_array();
    json_t *j;

    for (size_t i = 0; i < o->n; i++)
        json_array_append_new(lines, line_json(&o->lines[i], currency, false));
    j = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:s?, s:s?, s:o, s:o}", "id", o->id, "user_id",
                  o->user_id, "status", cart_status_name(o->status), "lines", lines, "total_cents",
                  (json_int_t)o->total_cents, "currency", currency, "failed_step", o->failed_step,
                  "reason", o->reason, "created_at", svc_json_time(o->created_at_ms), "updated_at",
                  svc_json_time(o->updated_at_ms));
    if (with_steps) {
        json_t *steps = json_array();

        for (size_t i = 0; i < o->nlog; i++) {
            const struct cart_log_entry *e = &o->log[i];

            json_array_append_new(steps, json_pack("{s:s, s:s, s:o, s:s?}", "step",
                                                   cart_step_name(e->step), "state",
                                                   cart_step_state_name(e->state), "at",
                                                   svc_json_time(e->at_ms), "detail", e->detail));
        }
        json_object_set_new(j, "steps", steps);
    }
    return j;
}

/* ---- carts ------------------------------------------------------------------------------ */

/* GET /v1/carts/:user_id: the cart (empty when the user has none). */
static int cart_get(struct svc_req *req, struct svc_resp *resp)
{
    struct cart_store *st = &app_of(req)->store;
    char user_id[SVC_UUID_STR_LEN + 1];
    struct cart c;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "user_id", user_id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    memset(&c, 0, sizeof(c));
    rc = st->get(st->ctx, svc_req_arena(req), user_id, &c);
    if (rc == CART_EUSER_UNKNOWN)
        return user_unknown(resp, user_id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, cart_json(&c));
}

struct line_in {
    int64_t quantity;
};

static const struct svc_json_field line_fields[] = {
    {"quantity", SVC_JSON_INT, .required = true, .min = 1, .max = CART_QTY_MAX,
     .offset = offsetof(struct line_in, quantity)},
    {0},
};

/*
 * PUT /v1/carts/:user_id/items/:product_id {quantity}: sets the line to QUANTITY, with the
 * product's price and name as product-svc has them now (asked in one batch get, never guessed:
 * no answer is 503). More than product-svc has available is accepted: the saga's reservation is
 * what decides, at checkout, and the stock may change before then anyway.
 */
static int line_put(struct svc_req *req, struct svc_resp *resp)
{
    struct cart_app *app = app_of(req);
    struct svc_arena *a = svc_req_arena(req);
    char user_id[SVC_UUID_STR_LEN + 1], product_id[SVC_UUID_STR_LEN + 1];
    struct line_in in = {0};
    struct cart_product p;
    const char *ids[1];
    bool found = false;
    struct cart c;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "user_id", user_id)) != 0 ||
        (rc = svc_req_param_uuid(req, resp, "product_id", product_id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0 ||
        (rc = svc_req_read_json(req, resp, line_fields, &in)) != 0)
        return rc;
    ids[0] = product_id;
    memset(&p, 0, sizeof(p));
    rc = app->remote.products(app->remote.ctx, a, ids, 1, &p, &found);
    if (rc == CART_EDEPENDENCY || rc == SVC_EUNAVAILABLE || rc == SVC_ETIMEDOUT ||
        rc == SVC_EAGAIN || rc == SVC_EBADGATEWAY)
        return svc_resp_error(resp, CART_EDEPENDENCY,
                              "product-svc did not answer in time: the product cannot be checked; "
                              "nothing was changed, retry later");
    if (rc != 0)
        return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
    if (!found) {
        svc_resp_error(resp, CART_EPRODUCT_UNKNOWN, "product '%s' does not exist", product_id);
        svc_resp_problem_extend(resp, "field", json_string("product_id"));
        return CART_EPRODUCT_UNKNOWN;
    }
    /* The cart keys lines by the id asked for, as the client wrote it in lowercase. */
    memcpy(p.id, product_id, sizeof(p.id));
    memset(&c, 0, sizeof(c));
    rc = app->store.put_line(app->store.ctx, a, user_id, &p, in.quantity, svc_req_traceparent(req),
                             &c);
    if (rc == CART_EUSER_UNKNOWN)
        return user_unknown(resp, user_id);
    if (rc == CART_ECART_FULL)
        return svc_resp_error(resp, rc,
                              "the cart holds %d lines, the most it can: remove one to add "
                              "product '%s'",
                              CART_LINES_MAX, product_id);
    if (rc == SVC_EINVAL)
        return svc_resp_error(resp, SVC_ECONFLICT,
                              "product '%s' is priced in %s, and a cart holds one currency: "
                              "check out or empty the cart first",
                              product_id, p.currency != NULL ? p.currency : "another currency");
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, cart_json(&c));
}

/* DELETE /v1/carts/:user_id/items/:product_id: 200 with the cart without the line. */
static int line_remove(struct svc_req *req, struct svc_resp *resp)
{
    struct cart_store *st = &app_of(req)->store;
    char user_id[SVC_UUID_STR_LEN + 1], product_id[SVC_UUID_STR_LEN + 1];
    struct cart c;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "user_id", user_id)) != 0 ||
        (rc = svc_req_param_uuid(req, resp, "product_id", product_id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    memset(&c, 0, sizeof(c));
    rc = st->remove_line(st->ctx, svc_req_arena(req), user_id, product_id, svc_req_traceparent(req),
                         &c);
    if (rc == CART_EUSER_UNKNOWN)
        return user_unknown(resp, user_id);
    if (rc == SVC_ENOTFOUND) {
        svc_resp_error(resp, rc, "the cart of user '%s' has no line of product '%s'", user_id,
                       product_id);
        svc_resp_problem_extend(resp, "field", json_string("product_id"));
        return rc;
    }
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, cart_json(&c));
}

/* DELETE /v1/carts/:user_id: 204, also when the cart was already empty. */
static int cart_clear(struct svc_req *req, struct svc_resp *resp)
{
    struct cart_store *st = &app_of(req)->store;
    char user_id[SVC_UUID_STR_LEN + 1];
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "user_id", user_id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    rc = st->clear(st->ctx, user_id, svc_req_traceparent(req));
    if (rc == CART_EUSER_UNKNOWN)
        return user_unknown(resp, user_id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_empty(resp, 204);
}

/* ---- checkout and orders ---------------------------------------------------------------- */

/*
 * POST /v1/carts/:user_id/checkout with Idempotency-Key (required: a checkout retried after a
 * lost answer must not order twice). 202 with the new PENDING order, whose saga the worker
 * runs now; the same key again is 202 with the same order as it is now and
 * Idempotent-Replayed, and kicks nothing (the first request did, and the resumer finishes any
 * order a crash left).
 */
static int checkout(struct svc_req *req, struct svc_resp *resp)
{
    struct cart_app *app = app_of(req);
    struct svc_arena *a = svc_req_arena(req);
    char user_id[SVC_UUID_STR_LEN + 1], order_id[SVC_UUID_STR_LEN + 1];
    const char *key = NULL;
    struct cart_order o;
    bool replayed = false;
    size_t len;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "user_id", user_id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0 ||
        (rc = svc_req_idempotency_key(req, resp, &key)) != 0)
        return rc;
    if (svc_req_body(req, &len) != NULL && len > 0)
        return svc_resp_invalid(resp, "",
                                "this operation takes no body: it checks out the cart "
                                "as it is");
    if (key == NULL) {
        svc_resp_error(resp, SVC_EPRECONDREQUIRED,
                       "send an Idempotency-Key header (a UUID will do) so that a retried checkout "
                       "cannot order twice");
        svc_resp_problem_extend(resp, "field", json_string("Idempotency-Key"));
        return SVC_EPRECONDREQUIRED;
    }
    svc_uuid_v4_str(order_id);
    memset(&o, 0, sizeof(o));
    rc = app->store.checkout(app->store.ctx, a, user_id, key, order_id, svc_req_traceparent(req),
                             &o, &replayed);
    if (rc == CART_EUSER_UNKNOWN)
        return user_unknown(resp, user_id);
    if (rc == CART_ECART_EMPTY)
        return svc_resp_error(
            resp, rc, "the cart of user '%s' is empty: add a line before checking out", user_id);
    if (rc != 0)
        return store_error(resp, rc);
    /* Without a saga worker (none is set up) the resumer's next round starts the order. */
    if (!replayed && app->kick != NULL)
        app->kick(app->kick_ctx, o.id);
    svc_resp_header(resp, "Location", svc_arena_printf(a, "/v1/orders/%s", o.id));
    if (replayed)
        svc_resp_header(resp, "Idempotent-Replayed", "true");
    return svc_resp_json(resp, 202, order_json(&o, true));
}

/* GET /v1/orders/:order_id: the order and every step of its saga. */
static int order_get(struct svc_req *req, struct svc_resp *resp)
{
    struct cart_store *st = &app_of(req)->store;
    char order_id[SVC_UUID_STR_LEN + 1];
    struct cart_order o;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "order_id", order_id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    memset(&o, 0, sizeof(o));
    rc = st->order_get(st->ctx, svc_req_arena(req), order_id, &o);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, rc, "order '%s' not found", order_id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, order_json(&o, true));
}

/* GET /v1/users/:user_id/orders?limit=&cursor=: newest first, keyset-paged. */
static int orders_list(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const params[] = {"limit", "cursor", NULL};
    struct cart_store *st = &app_of(req)->store;
    char user_id[SVC_UUID_STR_LEN + 1], after_id[SVC_UUID_STR_LEN + 1];
    long long limit, after_ms = 0;
    bool after = false;
    struct cart_order_page page;
    json_t *items;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "user_id", user_id)) != 0 ||
        (rc = svc_query_only(req, resp, params)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", 1, LIMIT_MAX, LIMIT_DEFAULT, &limit)) != 0 ||
        (rc = svc_query_keyset(req, resp, "cursor", &after_ms, after_id, &after)) != 0)
        return rc;
    memset(&page, 0, sizeof(page));
    rc = st->orders_list(st->ctx, svc_req_arena(req), user_id, (int)limit, after ? after_ms : 0,
                         after ? after_id : NULL, &page);
    if (rc == CART_EUSER_UNKNOWN)
        return user_unknown(resp, user_id);
    if (rc != 0)
        return store_error(resp, rc);
    items = json_array();
    for (size_t i = 0; i < page.n; i++)
        json_array_append_new(items, order_json(&page.items[i], false));
    return svc_resp_page(req, resp, items, page.more, page.next_created_at_ms, page.next_id);
}

const struct svc_route cart_routes[] = {
    {SVC_GET, "/v1/carts/:user_id", cart_get, 0, SMALL_BODY_MAX},
    {SVC_DELETE, "/v1/carts/:user_id", cart_clear, 0, SMALL_BODY_MAX},
    {SVC_PUT, "/v1/carts/:user_id/items/:product_id", line_put, SVC_ROUTE_JSON, LINE_BODY_MAX},
    {SVC_DELETE, "/v1/carts/:user_id/items/:product_id", line_remove, 0, SMALL_BODY_MAX},
    {SVC_POST, "/v1/carts/:user_id/checkout", checkout, SVC_ROUTE_JSON, SMALL_BODY_MAX},
    {SVC_GET, "/v1/orders/:order_id", order_get, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/users/:user_id/orders", orders_list, 0, SMALL_BODY_MAX},
    SVC_ROUTES_END,
};

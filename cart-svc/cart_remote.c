/*
 * cart_remote.c: the two other owners the cart and its checkout saga call, over lib's HTTP
 * client (svc/client.h): product-svc (batch get, stock reservations) and user-svc (payments).
 *
 * Every call has the step's deadline (STEP_TIMEOUT), retries included; lib retries connection
 * failures, timeouts and 502/503/504 within it. The saga's calls are POSTs made idempotent by
 * their ids (the reservation id and the payment id are the order id), so they are marked
 * idempotent and may be retried. What the other owner answered is translated here, once, into
 * what the saga needs: OK, REFUSED with a sentence a user can read, or RETRY (no answer).
 */
#include "cart_svc.h"

#include "svc/alloc.h"
#include "svc/client.h"
#include "svc/log.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Seconds product-svc holds the stock before its sweep releases it: far more than a saga needs
 * (a few calls), short enough that a saga abandoned for good frees the stock. */
#define RESERVATION_TTL_S 600

#define PRODUCT_BATCH_MAX 100 /* product-svc's batch get takes at most 100 ids */

struct cart_remote_ctx {
    char *product_url; /* without a trailing slash */
    char *user_url;
    int timeout_ms;
};

/* What one call came to: an answer (STATUS, BODY parsed when JSON, else NULL), or none. */
struct answer {
    long status;
    json_t *body;
};

static bool http_url(const char *url)
{
    return url != NULL && strncmp(url, "http://", 7) == 0 && url[7] != '\0';
}

static char *base_url(const char *url)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/')
        n--;
    return svc_strndup(url, n);
}

/*
 * POSTs BODY (or nothing) to BASE + PATH. 0 with *ANS filled when an answer came (any status
 * below 500 but 429), else SVC_ETIMEDOUT / SVC_EUNAVAILABLE / SVC_EBADGATEWAY (logged by lib
 * for each attempt): the outcome is unknown. The caller json_decref()s ans->body.
 */
static int post(const struct cart_remote_ctx *c, const char *who, const char *base,
                const char *path, const json_t *body, struct answer *ans)
{
    char url[512];
    struct svc_client_req req = {
        .method = "POST",
        .url = url,
        .connect_timeout_ms = c->timeout_ms < SVC_CLIENT_CONNECT_TIMEOUT_MS
                                  ? c->timeout_ms
                                  : SVC_CLIENT_CONNECT_TIMEOUT_MS,
        .timeout_ms = c->timeout_ms,
        .deadline_ms = c->timeout_ms,
        .idempotent = true,
    };
    struct svc_client_resp resp = {0};
    int rc;

    ans->status = 0;
    ans->body = NULL;
    if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >= sizeof(url))
        return SVC_EINVAL;
    rc = svc_client_call_json(&req, body, &resp, &ans->body);
    if (rc == 0 && (resp.status >= 500 || resp.status == 429)) {
        svc_log_warn("%s answered %ld to POST '%s'", who, resp.status, path);
        json_decref(ans->body);
        ans->body = NULL;
        rc = resp.status == 504 ? SVC_ETIMEDOUT : SVC_EUNAVAILABLE;
    }
    ans->status = resp.status;
    svc_client_resp_release(&resp);
    return rc;
}

/* The problem type's slug ("insufficient-stock") of a problem+json body, or "". */
static const char *problem_type(const json_t *body)
{
    const char *t = json_string_value(json_object_get(body, "type"));
    const char *slash;

    if (t == NULL)
        return "";
    slash = strrchr(t, ':');
    return slash != NULL ? slash + 1 : t;
}

static const char *problem_detail(const json_t *body)
{
    const char *d = json_string_value(json_object_get(body, "detail"));

    return d != NULL ? d : "(no detail)";
}

static int64_t json_int_of(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* What to tell a user when a dependency did not answer: the outcome is unknown, so RETRY. */
static enum cart_remote_result no_answer(const char *who, int rc, char *reason, size_t cap)
{
    snprintf(reason, cap, "%s did not answer in time (%s)", who,
             rc == SVC_ETIMEDOUT ? "timed out" : "unavailable");
    return CART_REMOTE_RETRY;
}

/* A refusal this code does not expect (a bug here or there): logged loudly, REFUSED. */
static enum cart_remote_result unexpected(const char *who, const char *what, const char *id,
                                          const struct answer *ans, char *reason, size_t cap)
{
    svc_log_error("%s refused %s of order '%s' unexpectedly (HTTP %ld, %s): %s", who, what, id,
                  ans->status, problem_type(ans->body), problem_detail(ans->body));
    snprintf(reason, cap, "%s refused the %s (HTTP %ld)", who, what, ans->status);
    return CART_REMOTE_REFUSED;
}

/* ---- product-svc ------------------------------------------------------------------------- */

static int products(void *ctx, struct svc_arena *a, const char *const *ids, size_t n,
                    struct cart_product *out, bool *found)
{
    struct cart_remote_ctx *c = ctx;
    json_t *body, *arr, *items;
    struct answer ans;
    int rc;

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (n == 0)
        return 0;
    if (n > PRODUCT_BATCH_MAX)
        return SVC_EINVAL;
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(ids[i]));
    body = json_pack("{s:o}", "ids", arr);
    rc = post(c, "product-svc", c->product_url, "/v1/products:batchGet", body, &ans);
    json_decref(body);
    if (rc != 0)
        return CART_EDEPENDENCY;
    if (ans.status != 200) {
        /* The handlers send valid ids only: any refusal is a bug on one side. */
        svc_log_error("product-svc refused a batch get of %zu ids (HTTP %ld, %s): %s", n,
                      ans.status, problem_type(ans.body), problem_detail(ans.body));
        json_decref(ans.body);
        return SVC_EINTERNAL;
    }
    items = json_object_get(ans.body, "items");
    for (size_t k = 0; k < json_array_size(items); k++) {
        const json_t *it = json_array_get(items, k);
        const char *id = json_string_value(json_object_get(it, "id"));
        const char *name = json_string_value(json_object_get(it, "name"));
        const char *cur = json_string_value(json_object_get(it, "currency"));

        if (id == NULL || name == NULL || cur == NULL || strlen(id) != CART_ID_LEN) {
            svc_log_error("product-svc answered a batch get with a malformed product");
            json_decref(ans.body);
            return SVC_EINTERNAL;
        }
        /* product-svc answers ids in lowercase; the handlers ask in lowercase too. */
        for (size_t i = 0; i < n; i++) {
            if (found[i] || strcasecmp(ids[i], id) != 0)
                continue;
            memset(&out[i], 0, sizeof(out[i]));
            memcpy(out[i].id, id, CART_ID_LEN + 1);
            out[i].name = svc_arena_strdup(a, name);
            out[i].currency = svc_arena_strdup(a, cur);
            out[i].price_cents = json_int_of(it, "price_cents", 0);
            out[i].available = json_int_of(it, "available", 0);
            found[i] = true;
            break;
        }
    }
    json_decref(ans.body);
    return 0;
}

/* The name of PRODUCT_ID on the order, or the id itself. */
static const char *line_name(const struct cart_order *o, const char *product_id)
{
    for (size_t i = 0; product_id != NULL && i < o->n; i++)
        if (strcasecmp(o->lines[i].product_id, product_id) == 0 && o->lines[i].name != NULL)
            return o->lines[i].name;
    return product_id != NULL ? product_id : "a product";
}

/* The reservation's state in an answer: "reserved", "committed", "released" or "". */
static const char *res_state(const json_t *body)
{
    const char *s = json_string_value(json_object_get(body, "state"));

    return s != NULL ? s : "";
}

static enum cart_remote_result reserve(void *ctx, const struct cart_order *o, char *reason,
                                       size_t cap)
{
    struct cart_remote_ctx *c = ctx;
    enum cart_remote_result r;
    json_t *items = json_array(), *body;
    struct answer ans;
    const char *type;
    int rc;

    for (size_t i = 0; i < o->n; i++)
        json_array_append_new(items, json_pack("{s:s, s:I}", "product_id", o->lines[i].product_id,
                                               "quantity", (json_int_t)o->lines[i].quantity));
    body = json_pack("{s:s, s:o, s:i}", "reservation_id", o->id, "items", items, "ttl",
                     RESERVATION_TTL_S);
    rc = post(c, "product-svc", c->product_url, "/v1/reservations", body, &ans);
    json_decref(body);
    if (rc != 0)
        return no_answer("product-svc", rc, reason, cap);
    type = problem_type(ans.body);
    if (ans.status == 200 || ans.status == 201) {
        /* A replay answers the reservation as it is now: one released meanwhile (expired, or
         * by a compensation that ran first) holds nothing for this order any more. */
        if (strcmp(res_state(ans.body), "released") == 0) {
            snprintf(reason, cap, "the reserved stock was released before the order completed");
            r = CART_REMOTE_REFUSED;
        } else {
            r = CART_REMOTE_OK;
        }
    } else if ((ans.status == 409 && strcmp(type, "insufficient-stock") == 0) ||
               ans.status == 422) {
        const char *pid = json_string_value(json_object_get(ans.body, "product_id"));
        const char *name = line_name(o, pid);

        if (ans.status == 422)
            snprintf(reason, cap, "%s is no longer sold", name);
        else
            snprintf(reason, cap, "%s: %" PRId64 " available, %" PRId64 " requested", name,
                     json_int_of(ans.body, "available", 0), json_int_of(ans.body, "requested", 0));
        r = CART_REMOTE_REFUSED;
    } else if (ans.status == 409 && strcmp(type, "idempotency-key-reused") == 0) {
        /* The reservation id is the order id and an order's lines never change: a bug. */
        svc_log_error("product-svc holds reservation '%s' with other lines than the order's: %s",
                      o->id, problem_detail(ans.body));
        snprintf(reason, cap, "the stock could not be reserved (conflicting reservation)");
        r = CART_REMOTE_REFUSED;
    } else {
        r = unexpected("product-svc", "reservation", o->id, &ans, reason, cap);
    }
    json_decref(ans.body);
    return r;
}

/* commit and release: POST /v1/reservations/{id}/<verb>, without a body. */
static enum cart_remote_result transition(struct cart_remote_ctx *c, const char *id, bool commit,
                                          char *reason, size_t cap)
{
    enum cart_remote_result r;
    char path[128];
    struct answer ans;
    int rc;

    snprintf(path, sizeof(path), "/v1/reservations/%s/%s", id, commit ? "commit" : "release");
    rc = post(c, "product-svc", c->product_url, path, NULL, &ans);
    if (rc != 0)
        return no_answer("product-svc", rc, reason, cap);
    /* A release that finds no reservation (404): nothing was reserved, nothing to release. */
    if (ans.status == 200 || (ans.status == 404 && !commit)) {
        r = CART_REMOTE_OK;
    } else if (ans.status == 409 && strcmp(problem_type(ans.body), "reservation-state") == 0) {
        const char *state = json_string_value(json_object_get(ans.body, "state"));

        if (commit)
            snprintf(reason, cap,
                     "the reserved stock was released (%s) before the order could be completed",
                     state != NULL ? state : "expired");
        else
            snprintf(reason, cap, "the reservation is already %s",
                     state != NULL ? state : "committed");
        r = CART_REMOTE_REFUSED;
    } else {
        r = unexpected("product-svc", commit ? "commit" : "release", id, &ans, reason, cap);
    }
    json_decref(ans.body);
    return r;
}

static enum cart_remote_result commit(void *ctx, const char *order_id, char *reason, size_t cap)
{
    return transition(ctx, order_id, true, reason, cap);
}

static enum cart_remote_result release(void *ctx, const char *order_id, char *reason, size_t cap)
{
    return transition(ctx, order_id, false, reason, cap);
}

/* ---- user-svc ---------------------------------------------------------------------------- */

/* The wallet's balance, to tell a user how short they are; -1 when user-svc does not say. */
static int64_t balance_of(const struct cart_remote_ctx *c, const char *user_id)
{
    char url[512];
    struct svc_client_req req = {
        .url = url,
        .timeout_ms = c->timeout_ms,
        .deadline_ms = c->timeout_ms,
        .max_retries = SVC_CLIENT_NO_RETRY,
    };
    struct svc_client_resp resp = {0};
    json_t *w = NULL;
    int64_t balance = -1;

    snprintf(url, sizeof(url), "%s/v1/users/%s/wallet", c->user_url, user_id);
    if (svc_client_call_json(&req, NULL, &resp, &w) == 0 && resp.status == 200)
        balance = json_int_of(w, "balance_cents", -1);
    json_decref(w);
    svc_client_resp_release(&resp);
    return balance;
}

static enum cart_remote_result charge(void *ctx, const struct cart_order *o, char *reason,
                                      size_t cap)
{
    struct cart_remote_ctx *c = ctx;
    const char *cur = o->currency != NULL ? o->currency : "";
    enum cart_remote_result r;
    struct answer ans;
    const char *type;
    json_t *body;
    int rc;

    /* user-svc takes payments of 1 cent or more: an order of free products charges nothing
     * (and its refund finds no payment, which is fine). */
    if (o->total_cents <= 0)
        return CART_REMOTE_OK;
    body = json_pack("{s:s, s:s, s:I}", "payment_id", o->id, "user_id", o->user_id, "amount_cents",
                     (json_int_t)o->total_cents);
    rc = post(c, "user-svc", c->user_url, "/v1/payments", body, &ans);
    json_decref(body);
    if (rc != 0)
        return no_answer("user-svc", rc, reason, cap);
    type = problem_type(ans.body);
    if (ans.status == 200 || ans.status == 201) {
        /* A replay answers the payment as it is now: refunded by a compensation that ran
         * first, it pays for nothing. */
        const char *status = json_string_value(json_object_get(ans.body, "status"));

        if (status != NULL && strcmp(status, "refunded") == 0) {
            snprintf(reason, cap, "the payment was refunded before the order completed");
            r = CART_REMOTE_REFUSED;
        } else {
            r = CART_REMOTE_OK;
        }
    } else if (ans.status == 409 && strcmp(type, "insufficient-funds") == 0) {
        int64_t bal = balance_of(c, o->user_id);

        if (bal >= 0)
            snprintf(reason, cap,
                     "insufficient funds: balance %" PRId64 ".%02" PRId64 ", order total %" PRId64
                     ".%02" PRId64 " %s",
                     bal / 100, bal % 100, o->total_cents / 100, o->total_cents % 100, cur);
        else
            snprintf(reason, cap,
                     "insufficient funds: the wallet holds less than the order total %" PRId64
                     ".%02" PRId64 " %s",
                     o->total_cents / 100, o->total_cents % 100, cur);
        r = CART_REMOTE_REFUSED;
    } else if (ans.status == 404) {
        snprintf(reason, cap, "the user's account no longer exists");
        r = CART_REMOTE_REFUSED;
    } else if (ans.status == 409 && strcmp(type, "idempotency-key-reused") == 0) {
        /* The payment id is the order id and an order's total never changes: a bug. */
        svc_log_error("user-svc holds payment '%s' with another amount or user than the order's: "
                      "%s",
                      o->id, problem_detail(ans.body));
        snprintf(reason, cap, "the payment could not be made (conflicting payment)");
        r = CART_REMOTE_REFUSED;
    } else {
        r = unexpected("user-svc", "payment", o->id, &ans, reason, cap);
    }
    json_decref(ans.body);
    return r;
}

static enum cart_remote_result refund(void *ctx, const char *order_id, char *reason, size_t cap)
{
    struct cart_remote_ctx *c = ctx;
    enum cart_remote_result r;
    char path[128];
    struct answer ans;
    int rc;

    snprintf(path, sizeof(path), "/v1/payments/%s/refund", order_id);
    rc = post(c, "user-svc", c->user_url, path, NULL, &ans);
    if (rc != 0)
        return no_answer("user-svc", rc, reason, cap);
    if (ans.status == 200 || ans.status == 404) /* 404: nothing was charged */
        r = CART_REMOTE_OK;
    else
        r = unexpected("user-svc", "refund", order_id, &ans, reason, cap);
    json_decref(ans.body);
    return r;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

int cart_remote_new(const struct cart_remote_opts *o, struct cart_remote_ctx **ctx,
                    struct cart_remote *rm)
{
    struct cart_remote_ctx *c;
    int rc;

    if (!http_url(o->product_svc_url) || !http_url(o->user_svc_url)) {
        svc_log_error("product-svc and user-svc URLs must be http://host:port, not '%s' and '%s'",
                      o->product_svc_url != NULL ? o->product_svc_url : "(none)",
                      o->user_svc_url != NULL ? o->user_svc_url : "(none)");
        return SVC_EINVAL;
    }
    if ((rc = svc_client_global_init()) != 0)
        return rc;
    c = svc_calloc(1, sizeof(*c));
    c->product_url = base_url(o->product_svc_url);
    c->user_url = base_url(o->user_svc_url);
    c->timeout_ms = o->step_timeout_ms > 0 ? o->step_timeout_ms : 2000;
    *rm = (struct cart_remote){
        .ctx = c,
        .products = products,
        .reserve = reserve,
        .commit = commit,
        .release = release,
        .charge = charge,
        .refund = refund,
    };
    *ctx = c;
    return 0;
}

void cart_remote_free(struct cart_remote_ctx *c)
{
    if (c == NULL)
        return;
    free(c->product_url);
    free(c->user_url);
    free(c);
}

int cart_remote_init(void *svc)
{
    struct cart_svc *s = svc;
    struct cart_remote_opts o = {
        .product_svc_url = s->cfg.product_svc_url,
        .user_svc_url = s->cfg.user_svc_url,
        .step_timeout_ms = (int)s->cfg.step_timeout_ms,
    };

    return cart_remote_new(&o, &s->remote, &s->app.remote);
}

void cart_remote_fini(void *svc)
{
    struct cart_svc *s = svc;

    cart_remote_free(s->remote);
    s->remote = NULL;
    memset(&s->app.remote, 0, sizeof(s->app.remote));
}

/*
 * product_store.c: product-svc's store on the search engine (Elasticsearch 8 or OpenSearch 2;
 * OpenSearch 2.19 locally), the only file that talks to it: lib's HTTP client (svc/client.h,
 * libcurl keep-alive per thread) and jansson.
 *
 * Indices (migrations/), each used through its alias:
 *   products            one document per product, _id = prod_id_for_sku(sku): the catalog
 *                       fields, stock/reserved/sold/available, holds {reservation id: units}
 *                       (the open holds, which make reserve/commit/release idempotent per
 *                       product), deleted (a tombstone until product.deleted is published)
 *   reservations        one document per reservation id: state, items, expires_at, reason
 *   product_migrations  the applied migrations (_id = version) and the migration lock
 * Product and reservation documents carry their pending CloudEvents: outbox (stored, not
 * indexed: [{id, topic, key, value}]), outbox_pending, outbox_since (ms of the oldest),
 * outbox_count. Every change writes its events in the same single-document write.
 *
 * Only REST calls that Elasticsearch 8 and OpenSearch 2 share: index, alias, mapping and
 * settings APIs, _doc with op_type=create or if_seq_no/if_primary_term, _bulk, _search with
 * the query DSL (bool, term, range, multi_match, match_phrase), search_after, aggregations,
 * highlight, _mget, _reindex. Free text from a client only ever goes into multi_match (and
 * match_phrase) as the query text, never into query_string or simple_query_string ("*" alone
 * is match_all there, whatever the flags): every other value is a term or a number.
 *
 * Concurrency: every read-modify-write is optimistic (if_seq_no/if_primary_term), retried with
 * a fresh read on a conflict, at most OCC_ATTEMPTS times with jittered back-off. Within one
 * replica the writes of one product's holds are also serialised by a striped mutex, so that
 * OCC only arbitrates between replicas (a hundred threads of one replica reserving the same
 * product would otherwise mostly collide). Reservations are a sequence of such single-document
 * writes whose order makes a crash harmless (reserve, below).
 *
 * Errors: the engine's answers are translated once, in os_call(): no answer, 429, 502-504 are
 * SVC_EUNAVAILABLE (the dependency marked down); 401 and 403 are logged loudly (the user name,
 * never the password) and SVC_EUNAVAILABLE for requests, SVC_EUNAUTH for prod_os_new(); a
 * write refused by an index block (a migration in progress) is SVC_EUNAVAILABLE. A 409 is
 * E_CONFLICT inside this file and never leaves it as such.
 */
#include "product_svc.h"

#include "polyglot/events.h"
#include "svc/alloc.h"
#include "svc/buf.h"
#include "svc/client.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/json.h"
#include "svc/log.h"
#include "svc/migrate.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The aliases and the migration index, before the prefix (prod_os_opts.prefix). */
#define PRODUCTS     "products"
#define RESERVATIONS "reservations"
#define MIGRATIONS   "product_migrations"

/* A 409 from the engine (version conflict, document exists): callers turn it into their own
 * answer; it never leaves this file. */
#define E_CONFLICT SVC_ECONFLICT

#define OCC_ATTEMPTS 50
/* A migration lock older than this belongs to a replica that died: it is taken over. */
#define LOCK_TTL_MS INT64_C(60000)
/* _reindex waits for its copy: far longer than a request may take. */
#define MIGRATION_TIMEOUT_MS 600000
/* A reservation left pending, committing or releasing this long by a crash is finished by the
 * sweep (a live request finishes in far less). */
#define STALE_MS INT64_C(30000)
/* Reservations one sweep finishes at most (the next sweep takes the rest). */
#define SWEEP_MAX 500
#define STRIPES   64

struct ob_doc; /* a document of the relay's batch */

struct prod_os {
    char *base;    /* the URL without a trailing slash */
    char *userpwd; /* "user:password", or NULL */
    char *user;    /* for log lines */
    int timeout_ms;
    struct svc_dep *dep;                        /* "opensearch" */
    char *products, *reservations, *migrations; /* the names, prefixed */
    char *prefix;
    pthread_mutex_t stripes[STRIPES];
    /* The relay's batch (one thread): the _mget answer the events point into. */
    json_t *ob_root;
    struct ob_doc *ob_docs;
    struct svc_outbox_event *ob_events;
};

/* ---- calling the engine ------------------------------------------------------------------- */

struct os_req {
    const char *method;
    const char *path; /* from the '/', query string included */
    const json_t *body;
    const char *ndjson; /* _bulk: the body, instead of BODY */
    size_t ndjson_len;
    long timeout_ms; /* 0: the store's */
    bool retry;      /* safe to send again after a lost answer (a read) */
};

/* The engine's error type ("version_conflict_engine_exception"), or "". Owned by BODY. */
static const char *err_type(const json_t *body)
{
    const char *t = json_string_value(json_object_get(json_object_get(body, "error"), "type"));

    return t != NULL ? t : "";
}

static const char *err_reason(const json_t *body)
{
    const json_t *e = json_object_get(body, "error");
    const char *t =
        json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "reason"));

    return t != NULL ? t : "";
}

/*
 * One call. Returns 0 with *STATUS and *OUT (the answer, the caller's to json_decref(); NULL
 * when it had no JSON body), or SVC_EUNAVAILABLE as the top of the file says; for a refusal of
 * the credentials (401, 403) *STATUS still says which, for prod_os_new() to tell. Writes
 * are sent once: after a lost answer a conditional write cannot tell its own success from
 * another's change, so the caller's caller retries the whole operation, which is idempotent.
 */
static int os_call(struct prod_os *os, const struct os_req *r, const char *what, long *status,
                   json_t **out)
{
    char *url = svc_malloc(strlen(os->base) + strlen(r->path) + 1);
    struct svc_client_req req = {
        .method = r->method,
        .url = url,
        .userpwd = os->userpwd,
        .timeout_ms = r->timeout_ms != 0 ? r->timeout_ms : os->timeout_ms,
        .max_retries = r->retry ? 0 : SVC_CLIENT_NO_RETRY,
    };
    struct svc_client_resp resp = {0};
    json_t *doc = NULL;
    int rc;

    memcpy(url, os->base, strlen(os->base));
    memcpy(url + strlen(os->base), r->path, strlen(r->path) + 1);
    *status = 0;
    if (out != NULL)
        *out = NULL;
    if (r->ndjson != NULL) {
        req.body = r->ndjson;
        req.body_len = r->ndjson_len;
        req.content_type = "application/x-ndjson";
        rc = svc_client_call(&req, &resp);
        if (rc == 0 && resp.len > 0)
            doc = json_loadb(resp.body, resp.len, 0, NULL);
    } else {
        rc = svc_client_call_json(&req, r->body, &resp, &doc);
    }
    free(url);
    if (rc != 0) {
        svc_dep_down(os->dep, what, "%s", svc_err_title(rc));
        rc = SVC_EUNAVAILABLE;
    } else if (resp.status == 401 ||
               (resp.status == 403 && strcmp(err_type(doc), "cluster_block_exception") != 0)) {
        svc_log_error("opensearch refused %s of user '%s' (HTTP %ld): check OPENSEARCH_USER, "
                      "OPENSEARCH_PASSWORD and the user's permissions",
                      what, os->user != NULL ? os->user : "(none)", resp.status);
        svc_dep_down(os->dep, what, "credentials refused (HTTP %ld)", resp.status);
        *status = resp.status;
        rc = SVC_EUNAVAILABLE;
    } else if (resp.status == 403) {
        svc_dep_warn(os->dep, "opensearch: %s refused by an index block: %s", what,
                     err_reason(doc));
        rc = SVC_EUNAVAILABLE;
    } else if (resp.status == 429) {
        svc_dep_warn(os->dep, "opensearch: %s refused for lack of resources (429)", what);
        rc = SVC_EUNAVAILABLE;
    } else if (resp.status >= 502 && resp.status <= 504) {
        svc_dep_down(os->dep, what, "HTTP %ld", resp.status);
        rc = SVC_EUNAVAILABLE;
    } else {
        svc_dep_up(os->dep);
        *status = resp.status;
    }
    svc_client_resp_release(&resp);
    if (rc != 0 || out == NULL)
        json_decref(doc);
    else
        *out = doc;
    return rc;
}

/* An answer this store did not expect (a bug here or a broken index): logged, SVC_EINTERNAL. */
static int unexpected(const char *what, long status, const json_t *body)
{
    svc_log_error("opensearch: %s answered %ld: %s: %s", what, status, err_type(body),
                  err_reason(body));
    return SVC_EINTERNAL;
}

/* A call whose answer must be 2xx: *OUT as os_call() (may be NULL to drop it). */
static int os_ok(struct prod_os *os, const struct os_req *r, const char *what, json_t **out)
{
    json_t *doc = NULL;
    long status;
    int rc = os_call(os, r, what, &status, &doc);

    if (rc == 0 && (status < 200 || status > 299))
        rc = unexpected(what, status, doc);
    if (rc == 0 && out != NULL)
        *out = doc;
    else
        json_decref(doc);
    return rc;
}

/* ---- JSON helpers ------------------------------------------------------------------------- */

static int64_t jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? json_integer_value(v)
                              : (json_is_real(v) ? (int64_t)json_real_value(v) : 0);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A string member copied to A, or NULL. */
static const char *jdup(const json_t *o, const char *key, struct svc_arena *a)
{
    const char *s = jstr(o, key);

    return s != NULL ? svc_arena_strdup(a, s) : NULL;
}

static void jset_int(json_t *o, const char *key, int64_t v)
{
    json_object_set_new(o, key, json_integer(v));
}

/* Percent-encoding of ids is never needed: every id in a path is checked to be a UUID. */
static char *path_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *path_of(const char *fmt, ...)
{
    struct svc_buf b = SVC_BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    svc_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    return svc_buf_detach(&b, NULL);
}

/* ---- documents ---------------------------------------------------------------------------- */

/* A document as read: SRC borrowed from ROOT (NULL when there is none). */
struct doc {
    json_t *root;
    json_t *src;
    int64_t seq_no, primary_term;
};

static void doc_release(struct doc *d)
{
    json_decref(d->root);
    memset(d, 0, sizeof(*d));
}

/* The realtime GET of INDEX/_doc/ID into *D (D->src NULL when there is none). */
static int doc_get(struct prod_os *os, const char *index, const char *id, const char *what,
                   struct doc *d)
{
    char *path = path_of("/%s/_doc/%s", index, id);
    struct os_req r = {.method = "GET", .path = path, .retry = true};
    long status;
    int rc = os_call(os, &r, what, &status, &d->root);

    free(path);
    d->src = NULL;
    if (rc != 0)
        return rc;
    if (status == 200 && json_is_true(json_object_get(d->root, "found"))) {
        d->src = json_object_get(d->root, "_source");
        d->seq_no = jint(d->root, "_seq_no");
        d->primary_term = jint(d->root, "_primary_term");
        return json_is_object(d->src) ? 0 : unexpected(what, status, d->root);
    }
    if (status == 404 && strcmp(err_type(d->root), "") == 0)
        return 0;
    rc = unexpected(what, status, d->root);
    doc_release(d);
    return rc;
}

/*
 * Writes SRC as INDEX/_doc/ID: created only if it does not exist when SEQ_NO < 0, else only
 * if the document is still at (SEQ_NO, PRIMARY_TERM). 0 with the new version in *NSEQ, *NPT
 * (may be NULL), E_CONFLICT when refused.
 */
static int doc_put(struct prod_os *os, const char *index, const char *id, const json_t *src,
                   int64_t seq_no, int64_t primary_term, const char *what, int64_t *nseq,
                   int64_t *npt)
{
    char *path = seq_no < 0 ? path_of("/%s/_doc/%s?op_type=create", index, id)
                            : path_of("/%s/_doc/%s?if_seq_no=%" PRId64 "&if_primary_term=%" PRId64,
                                      index, id, seq_no, primary_term);
    struct os_req r = {.method = "PUT", .path = path, .body = src};
    json_t *ans = NULL;
    long status;
    int rc = os_call(os, &r, what, &status, &ans);

    free(path);
    if (rc == 0 && (status == 200 || status == 201)) {
        if (nseq != NULL)
            *nseq = jint(ans, "_seq_no");
        if (npt != NULL)
            *npt = jint(ans, "_primary_term");
    } else if (rc == 0 && status == 409) {
        rc = E_CONFLICT;
    } else if (rc == 0) {
        rc = unexpected(what, status, ans);
    }
    json_decref(ans);
    return rc;
}

/* Deletes INDEX/_doc/ID if still at (SEQ_NO, PRIMARY_TERM): 0 (also when already gone),
 * E_CONFLICT. */
static int doc_delete(struct prod_os *os, const char *index, const char *id, int64_t seq_no,
                      int64_t primary_term, const char *what)
{
    char *path = path_of("/%s/_doc/%s?if_seq_no=%" PRId64 "&if_primary_term=%" PRId64, index, id,
                         seq_no, primary_term);
    struct os_req r = {.method = "DELETE", .path = path};
    json_t *ans = NULL;
    long status;
    int rc = os_call(os, &r, what, &status, &ans);

    free(path);
    if (rc == 0 && status == 409)
        rc = E_CONFLICT;
    else if (rc == 0 && status != 200 && status != 404)
        rc = unexpected(what, status, ans);
    json_decref(ans);
    return rc;
}

/* A jittered back-off before the ATTEMPT-th retry of a conflicting write: up to 2^attempt ms,
 * at most 100. */
static void backoff(int attempt)
{
    static _Thread_local uint64_t seed;
    int64_t cap = attempt < 7 ? INT64_C(1) << attempt : 100;

    if (seed == 0)
        seed = (uint64_t)svc_now_ms() ^ (uint64_t)(uintptr_t)&seed;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    svc_sleep_ms(1 + (int64_t)(seed % (uint64_t)cap));
}

static pthread_mutex_t *stripe(struct prod_os *os, const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return &os->stripes[h % STRIPES];
}

/* ---- the outbox inside a document --------------------------------------------------------- */

/* Appends EV to SRC's pending events. */
static void outbox_add(json_t *src, const struct svc_event_out *ev, int64_t now)
{
    json_t *box = json_object_get(src, "outbox");

    if (!json_is_array(box)) {
        box = json_array();
        json_object_set_new(src, "outbox", box);
    }
    if (json_array_size(box) == 0)
        jset_int(src, "outbox_since", now);
    json_array_append_new(box, json_pack("{s:s, s:s, s:s, s:s%}", "id", ev->id, "topic",
                                         TOPIC_PRODUCT_EVENTS, "key", ev->key, "value",
                                         ev->json.data, ev->json.len));
    json_object_set_new(src, "outbox_pending", json_true());
    jset_int(src, "outbox_count", (int64_t)json_array_size(box));
}

/* A fresh document's empty outbox. */
static void outbox_empty(json_t *src)
{
    json_object_set_new(src, "outbox", json_array());
    json_object_set_new(src, "outbox_pending", json_false());
    jset_int(src, "outbox_since", 0);
    jset_int(src, "outbox_count", 0);
}

static size_t outbox_size(const json_t *src)
{
    return json_array_size(json_object_get(src, "outbox"));
}

/* ---- the catalog -------------------------------------------------------------------------- */

static bool product_live(const json_t *src)
{
    return src != NULL && !json_is_true(json_object_get(src, "deleted"));
}

/* SRC as a product, its strings copied to A. */
static void product_read(const json_t *src, int64_t seq_no, int64_t primary_term,
                         struct svc_arena *a, struct product *p)
{
    const json_t *tags = json_object_get(src, "tags");
    const char *id = jstr(src, "id");

    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id != NULL ? id : "");
    p->sku = jdup(src, "sku", a);
    p->name = jdup(src, "name", a);
    p->description = jdup(src, "description", a);
    p->category = jdup(src, "category", a);
    p->ntags = json_array_size(tags);
    p->tags = svc_arena_calloc(a, (p->ntags > 0 ? p->ntags : 1) * sizeof(*p->tags));
    for (size_t i = 0; i < p->ntags; i++) {
        const char *t = json_string_value(json_array_get(tags, i));

        p->tags[i] = svc_arena_strdup(a, t != NULL ? t : "");
    }
    p->price_cents = jint(src, "price_cents");
    p->currency = jdup(src, "currency", a);
    p->stock = jint(src, "stock");
    p->reserved = jint(src, "reserved");
    p->sold = jint(src, "sold");
    p->image_url = jdup(src, "image_url", a);
    p->created_at_ms = jint(src, "created_at");
    p->updated_at_ms = jint(src, "updated_at");
    p->seq_no = seq_no;
    p->primary_term = primary_term;
    if (p->sku == NULL)
        p->sku = "";
    if (p->name == NULL)
        p->name = "";
    if (p->description == NULL)
        p->description = "";
    if (p->category == NULL)
        p->category = "";
    if (p->currency == NULL)
        p->currency = "";
}

static json_t *strings_json(const char *const *tags, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(tags[i]));
    return arr;
}

/* P's document: the catalog fields, no holds, an empty outbox. NULL when a string is not
 * UTF-8 (the handlers check that: a bug). */
static json_t *product_src(const struct product *p)
{
    json_t *src = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:o}", "id",
        p->id, "sku", p->sku, "name", p->name, "description",
        p->description != NULL ? p->description : "", "category", p->category, "tags",
        strings_json(p->tags, p->ntags), "price_cents", (json_int_t)p->price_cents, "currency",
        p->currency, "stock", (json_int_t)p->stock, "reserved", (json_int_t)p->reserved, "sold",
        (json_int_t)p->sold, "available", (json_int_t)(p->stock - p->reserved), "created_at",
        (json_int_t)p->created_at_ms, "updated_at", (json_int_t)p->updated_at_ms, "deleted", 0,
        "holds", json_object());

    if (src == NULL)
        return NULL;
    if (p->image_url != NULL)
        json_object_set_new(src, "image_url", json_string(p->image_url));
    outbox_empty(src);
    return src;
}

/* The product of IN, new at NOW. */
static void product_of(const struct prod_new *in, int64_t now, struct product *p)
{
    memset(p, 0, sizeof(*p));
    prod_id_for_sku(in->sku, p->id);
    p->sku = in->sku;
    p->name = in->name;
    p->description = in->description != NULL ? in->description : "";
    p->category = in->category;
    p->tags = in->tags;
    p->ntags = in->ntags;
    p->price_cents = in->price_cents;
    p->currency = in->currency;
    p->stock = in->stock;
    p->image_url = in->image_url;
    p->created_at_ms = p->updated_at_ms = now;
}

/* IN's document with its product.created event, into *SRC, and the product into *P. */
static int created_src(const struct prod_new *in, const char *traceparent, struct product *p,
                       json_t **src)
{
    struct svc_event_out ev;
    int rc;

    product_of(in, svc_wall_ms(), p);
    if ((*src = product_src(p)) == NULL) {
        svc_log_error("product '%s' not encodable as JSON", in->sku);
        return SVC_EINTERNAL;
    }
    rc = prod_event_product(&ev, EV_PRODUCT_CREATED, p, -1, traceparent);
    if (rc == 0)
        outbox_add(*src, &ev, p->created_at_ms);
    svc_event_out_release(&ev);
    if (rc != 0) {
        json_decref(*src);
        *src = NULL;
    }
    return rc;
}

static int os_create(void *ctx, struct svc_arena *a, const struct prod_new *in,
                     const char *traceparent, struct product *out)
{
    struct prod_os *os = ctx;
    struct product p;
    struct doc d = {0};
    json_t *src;
    int rc = created_src(in, traceparent, &p, &src);

    if (rc != 0)
        return rc;
    rc = doc_put(os, os->products, p.id, src, -1, 0, "product create", &p.seq_no, &p.primary_term);
    /* Taken, unless by a tombstone whose product.deleted is published already (the relay
     * deletes those, but may not have yet): then the SKU is free again. */
    if (rc == E_CONFLICT && (rc = doc_get(os, os->products, p.id, "product lookup", &d)) == 0) {
        rc = PROD_ESKU_TAKEN;
        if (d.src != NULL && !product_live(d.src) && outbox_size(d.src) == 0) {
            rc = doc_put(os, os->products, p.id, src, d.seq_no, d.primary_term,
                         "product create over a tombstone", &p.seq_no, &p.primary_term);
            if (rc == E_CONFLICT)
                rc = PROD_ESKU_TAKEN;
        }
        doc_release(&d);
    }
    if (rc == 0)
        product_read(src, p.seq_no, p.primary_term, a, out);
    json_decref(src);
    return rc;
}

static int os_get(void *ctx, struct svc_arena *a, const char *id, struct product *out)
{
    struct prod_os *os = ctx;
    struct doc d = {0};
    int rc;

    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    if ((rc = doc_get(os, os->products, id, "product lookup", &d)) != 0)
        return rc;
    if (product_live(d.src))
        product_read(d.src, d.seq_no, d.primary_term, a, out);
    else
        rc = SVC_ENOTFOUND;
    doc_release(&d);
    return rc;
}

static int os_mget(void *ctx, struct svc_arena *a, const char *const *ids, size_t n,
                   struct product *out, bool *found)
{
    struct prod_os *os = ctx;
    char *path = path_of("/%s/_mget?_source_excludes=holds,outbox", os->products);
    json_t *body = json_pack("{s:o}", "ids", strings_json(ids, n));
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    json_t *ans = NULL, *docs;
    int rc;

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    rc = body != NULL ? os_ok(os, &r, "product batch get", &ans) : SVC_EINVAL;
    free(path);
    json_decref(body);
    if (rc != 0)
        return rc;
    docs = json_object_get(ans, "docs");
    for (size_t i = 0; i < n && i < json_array_size(docs); i++) {
        json_t *d = json_array_get(docs, i);
        json_t *src = json_object_get(d, "_source");

        if (json_is_true(json_object_get(d, "found")) && json_is_object(src) && product_live(src)) {
            product_read(src, jint(d, "_seq_no"), jint(d, "_primary_term"), a, &out[i]);
            found[i] = true;
        }
    }
    json_decref(ans);
    return 0;
}

/* Applies PATCH to the document SRC. */
static void patch_src(json_t *src, const struct prod_patch *pt)
{
    if (pt->set & PROD_SET_NAME)
        json_object_set_new(src, "name", json_string(pt->name));
    if (pt->set & PROD_SET_DESCRIPTION)
        json_object_set_new(src, "description",
                            json_string(pt->description != NULL ? pt->description : ""));
    if (pt->set & PROD_SET_CATEGORY)
        json_object_set_new(src, "category", json_string(pt->category));
    if (pt->set & PROD_SET_TAGS)
        json_object_set_new(src, "tags", strings_json(pt->tags, pt->ntags));
    if (pt->set & PROD_SET_PRICE)
        jset_int(src, "price_cents", pt->price_cents);
    if (pt->set & PROD_SET_CURRENCY)
        json_object_set_new(src, "currency", json_string(pt->currency));
    if (pt->set & PROD_SET_STOCK)
        jset_int(src, "stock", pt->stock);
    if (pt->set & PROD_SET_IMAGE_URL) {
        if (pt->image_url != NULL)
            json_object_set_new(src, "image_url", json_string(pt->image_url));
        else
            json_object_del(src, "image_url");
    }
}

static int os_update(void *ctx, struct svc_arena *a, const char *id, int64_t seq_no,
                     int64_t primary_term, const struct prod_patch *patch, const char *traceparent,
                     struct product *out)
{
    struct prod_os *os = ctx;
    struct svc_event_out ev;
    struct product p;
    struct doc d = {0};
    int64_t old_price, now = svc_wall_ms();
    int rc;

    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    if ((rc = doc_get(os, os->products, id, "product lookup", &d)) != 0)
        return rc;
    if (!product_live(d.src))
        rc = SVC_ENOTFOUND;
    else if (d.seq_no != seq_no || d.primary_term != primary_term)
        rc = SVC_EPRECONDITION;
    else if ((patch->set & PROD_SET_STOCK) && patch->stock < jint(d.src, "reserved"))
        rc = PROD_ERESERVED;
    if (rc != 0)
        goto out;
    old_price = jint(d.src, "price_cents");
    patch_src(d.src, patch);
    jset_int(d.src, "available", jint(d.src, "stock") - jint(d.src, "reserved"));
    jset_int(d.src, "updated_at", now);
    product_read(d.src, 0, 0, a, &p);
    rc = prod_event_product(&ev, EV_PRODUCT_UPDATED, &p,
                            p.price_cents != old_price ? old_price : -1, traceparent);
    if (rc == 0)
        outbox_add(d.src, &ev, now);
    svc_event_out_release(&ev);
    if (rc == 0)
        rc = doc_put(os, os->products, id, d.src, seq_no, primary_term, "product update", &p.seq_no,
                     &p.primary_term);
    if (rc == E_CONFLICT)
        rc = SVC_EPRECONDITION;
    if (rc == 0)
        *out = p;
out:
    doc_release(&d);
    return rc;
}

static int os_remove(void *ctx, const char *id, int64_t seq_no, int64_t primary_term,
                     const char *traceparent)
{
    struct prod_os *os = ctx;
    int rc = E_CONFLICT;

    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    for (int attempt = 0; rc == E_CONFLICT && attempt < OCC_ATTEMPTS; attempt++) {
        struct svc_event_out ev;
        struct doc d = {0};
        int64_t now = svc_wall_ms();

        if (attempt > 0)
            backoff(attempt);
        if ((rc = doc_get(os, os->products, id, "product lookup", &d)) != 0)
            return rc;
        if (!product_live(d.src))
            rc = SVC_ENOTFOUND;
        else if (seq_no >= 0 && (d.seq_no != seq_no || d.primary_term != primary_term))
            rc = SVC_EPRECONDITION;
        else if (jint(d.src, "reserved") > 0)
            rc = PROD_ERESERVED;
        if (rc == 0) {
            json_object_set_new(d.src, "deleted", json_true());
            jset_int(d.src, "updated_at", now);
            rc = prod_event_deleted(&ev, id, jstr(d.src, "sku"), now, traceparent);
            if (rc == 0)
                outbox_add(d.src, &ev, now);
            svc_event_out_release(&ev);
        }
        if (rc == 0)
            rc = doc_put(os, os->products, id, d.src, d.seq_no, d.primary_term, "product delete",
                         NULL, NULL);
        doc_release(&d);
        if (rc == E_CONFLICT && seq_no >= 0)
            rc = SVC_EPRECONDITION;
    }
    return rc == E_CONFLICT ? SVC_EUNAVAILABLE : rc;
}

static int os_import(void *ctx, struct svc_arena *a, const struct prod_new *in, size_t n,
                     const char *traceparent, struct product *out, int *rcs)
{
    struct prod_os *os = ctx;
    struct svc_buf nd = SVC_BUF_INIT;
    struct os_req r = {.method = "POST", .path = "/_bulk"};
    json_t *ans = NULL, *items;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        json_t *src;

        rcs[i] = created_src(&in[i], traceparent, &out[i], &src);
        if (rcs[i] != 0)
            continue;
        svc_buf_addf(&nd, "{\"create\":{\"_index\":\"%s\",\"_id\":\"%s\"}}\n", os->products,
                     out[i].id);
        svc_json_dump(&nd, src);
        svc_buf_addc(&nd, '\n');
        product_read(src, 0, 0, a, &out[i]);
        json_decref(src);
    }
    if (nd.len == 0)
        return 0;
    r.ndjson = nd.data;
    r.ndjson_len = nd.len;
    rc = os_ok(os, &r, "product import", &ans);
    svc_buf_release(&nd);
    if (rc != 0)
        return rc;
    items = json_object_get(ans, "items");
    for (size_t i = 0, k = 0; i < n; i++) {
        json_t *it;
        long status;

        if (rcs[i] != 0)
            continue;
        it = json_object_get(json_array_get(items, k++), "create");
        status = (long)jint(it, "status");
        if (status == 201) {
            out[i].seq_no = jint(it, "_seq_no");
            out[i].primary_term = jint(it, "_primary_term");
        } else if (status == 409) {
            rcs[i] = PROD_ESKU_TAKEN;
        } else if (status == 429 || status == 503) {
            rcs[i] = SVC_EUNAVAILABLE;
        } else {
            rcs[i] = unexpected("product import line", status, it);
        }
    }
    json_decref(ans);
    return 0;
}

/* ---- search ------------------------------------------------------------------------------- */

static const int64_t price_ranges[PROD_PRICE_RANGES_N] = PROD_PRICE_RANGES;

/* The price facet's ranges, keyed "<from>-<to>" ("<from>-" for the open last one). */
static json_t *price_aggs(void)
{
    json_t *ranges = json_array();

    for (int i = 0; i < PROD_PRICE_RANGES_N; i++) {
        char key[48];
        json_t *rg;

        if (i + 1 < PROD_PRICE_RANGES_N) {
            snprintf(key, sizeof(key), "%" PRId64 "-%" PRId64, price_ranges[i],
                     price_ranges[i + 1]);
            rg = json_pack("{s:s, s:I, s:I}", "key", key, "from", (json_int_t)price_ranges[i], "to",
                           (json_int_t)price_ranges[i + 1]);
        } else {
            snprintf(key, sizeof(key), "%" PRId64 "-", price_ranges[i]);
            rg = json_pack("{s:s, s:I}", "key", key, "from", (json_int_t)price_ranges[i]);
        }
        json_array_append_new(ranges, rg);
    }
    return json_pack("{s:{s:s, s:o}}", "range", "field", "price_cents", "ranges", ranges);
}

/* The sort actually used: relevance without text is newest first. */
static enum prod_sort sort_of(const struct prod_query *q)
{
    bool text = q->q != NULL && q->q[0] != '\0';

    return q->sort == PROD_SORT_RELEVANCE && !text ? PROD_SORT_NEWEST : q->sort;
}

/*
 * The whole request, from typed values only. The text goes into multi_match (cross_fields,
 * every word required in some field) and a match_phrase on the name that lifts an exact name
 * to the top: both analyse it as text and evaluate no syntax.
 */
static json_t *search_body(const struct prod_query *q)
{
    static const char *const sort_field[] = {
        [PROD_SORT_RELEVANCE] = "_score",
        [PROD_SORT_PRICE_ASC] = "price_cents",
        [PROD_SORT_PRICE_DESC] = "price_cents",
        [PROD_SORT_NEWEST] = "created_at",
    };
    enum prod_sort s = sort_of(q);
    bool text = q->q != NULL && q->q[0] != '\0';
    json_t *filter = json_array(), *must = json_array(), *should = json_array();
    json_t *range, *body;

    json_array_append_new(filter, json_pack("{s:{s:b}}", "term", "deleted", 0));
    if (q->category != NULL)
        json_array_append_new(filter, json_pack("{s:{s:s}}", "term", "category", q->category));
    if (q->tag != NULL)
        json_array_append_new(filter, json_pack("{s:{s:s}}", "term", "tags", q->tag));
    if (q->min_price >= 0 || q->max_price >= 0) {
        range = json_object();
        if (q->min_price >= 0)
            jset_int(range, "gte", q->min_price);
        if (q->max_price >= 0)
            jset_int(range, "lte", q->max_price);
        json_array_append_new(filter, json_pack("{s:{s:o}}", "range", "price_cents", range));
    }
    if (q->in_stock)
        json_array_append_new(filter, json_pack("{s:{s:{s:i}}}", "range", "available", "gt", 0));
    if (text) {
        json_array_append_new(must, json_pack("{s:{s:s, s:s, s:[s, s, s], s:s}}", "multi_match",
                                              "query", q->q, "type", "cross_fields", "fields",
                                              "name^3", "description", "tags", "operator", "and"));
        json_array_append_new(should, json_pack("{s:{s:{s:s, s:i}}}", "match_phrase", "name",
                                                "query", q->q, "boost", 2));
    }
    /* Hits leave out the description: a result list shows the highlighted snippet, and the
     * full texts were most of the bytes the engine serialised and this service parsed (jansson
     * reads about 30 MB/s), for text no client of a search needs. */
    body = json_pack(
        "{s:i, s:{s:{s:o, s:o, s:o}}, s:[{s:s}, {s:s}], s:b, s:b, s:{s:[s, s, s]},"
        " s:{s:{s:{s:s, s:i}}, s:{s:{s:s, s:i}}, s:o}}",
        "size", q->limit + 1, "query", "bool", "filter", filter, "must", must, "should", should,
        "sort", sort_field[s], s == PROD_SORT_PRICE_ASC ? "asc" : "desc", "id", "asc",
        "track_total_hits", 1, "seq_no_primary_term", 1, "_source", "excludes", "holds", "outbox",
        "description", "aggs", "categories", "terms", "field", "category", "size", PROD_FACET_MAX,
        "tags", "terms", "field", "tags", "size", PROD_FACET_MAX, "prices", price_aggs());
    if (body == NULL)
        return NULL;
    if (q->after != NULL)
        json_object_set_new(body, "search_after",
                            s == PROD_SORT_RELEVANCE
                                ? json_pack("[f, s]", q->after->score, q->after->id)
                                : json_pack("[I, s]", (json_int_t)q->after->num, q->after->id));
    if (text)
        json_object_set_new(body, "highlight",
                            json_pack("{s:s, s:[s], s:[s], s:{s:{s:i}, s:{s:i, s:i}}}", "encoder",
                                      "html", "pre_tags", "<em>", "post_tags", "</em>", "fields",
                                      "name", "number_of_fragments", 0, "description",
                                      "fragment_size", 160, "number_of_fragments", 1));
    return body;
}

/* A terms facet's buckets. */
static void terms_buckets(const json_t *agg, struct svc_arena *a, struct prod_bucket **out,
                          size_t *n)
{
    const json_t *b = json_object_get(agg, "buckets");

    *n = json_array_size(b);
    *out = svc_arena_calloc(a, (*n > 0 ? *n : 1) * sizeof(**out));
    for (size_t i = 0; i < *n; i++) {
        const json_t *e = json_array_get(b, i);

        (*out)[i].key = jdup(e, "key", a);
        (*out)[i].from = (*out)[i].to = -1;
        (*out)[i].count = jint(e, "doc_count");
        if ((*out)[i].key == NULL)
            (*out)[i].key = "";
    }
}

static void price_buckets(const json_t *agg, struct svc_arena *a, struct prod_results *out)
{
    const json_t *b = json_object_get(agg, "buckets");

    out->nprices = json_array_size(b);
    out->prices = svc_arena_calloc(a, (out->nprices > 0 ? out->nprices : 1) * sizeof(*out->prices));
    for (size_t i = 0; i < out->nprices; i++) {
        const json_t *e = json_array_get(b, i);
        struct prod_bucket *pb = &out->prices[i];

        pb->key = jdup(e, "key", a);
        pb->from = json_object_get(e, "from") != NULL ? jint(e, "from") : -1;
        pb->to = json_object_get(e, "to") != NULL ? jint(e, "to") : -1;
        pb->count = jint(e, "doc_count");
        if (pb->key == NULL)
            pb->key = "";
    }
}

/* The first highlighted fragment of FIELD, copied to A, or NULL. */
static const char *highlight(const json_t *hit, const char *field, struct svc_arena *a)
{
    const char *s = json_string_value(
        json_array_get(json_object_get(json_object_get(hit, "highlight"), field), 0));

    return s != NULL ? svc_arena_strdup(a, s) : NULL;
}

static int os_search(void *ctx, struct svc_arena *a, const struct prod_query *q,
                     struct prod_results *out)
{
    struct prod_os *os = ctx;
    char *path = path_of("/%s/_search", os->products);
    json_t *body = search_body(q);
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    json_t *ans = NULL, *hits, *aggs;
    enum prod_sort s = sort_of(q);
    size_t nhits;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = body != NULL ? os_ok(os, &r, "product search", &ans) : SVC_EINVAL;
    free(path);
    json_decref(body);
    if (rc != 0)
        return rc;
    out->total = jint(json_object_get(json_object_get(ans, "hits"), "total"), "value");
    hits = json_object_get(json_object_get(ans, "hits"), "hits");
    nhits = json_array_size(hits);
    out->more = nhits > (size_t)q->limit;
    out->n = out->more ? (size_t)q->limit : nhits;
    out->items = svc_arena_calloc(a, (out->n > 0 ? out->n : 1) * sizeof(*out->items));
    for (size_t i = 0; i < out->n; i++) {
        const json_t *h = json_array_get(hits, i);
        struct prod_hit *ph = &out->items[i];

        product_read(json_object_get(h, "_source"), jint(h, "_seq_no"), jint(h, "_primary_term"), a,
                     &ph->p);
        if (s == PROD_SORT_RELEVANCE)
            ph->score = json_number_value(json_object_get(h, "_score"));
        ph->name_html = highlight(h, "name", a);
        ph->description_html = highlight(h, "description", a);
    }
    if (out->more && out->n > 0) {
        const json_t *sort = json_object_get(json_array_get(hits, out->n - 1), "sort");
        const char *id = json_string_value(json_array_get(sort, 1));
        const json_t *v = json_array_get(sort, 0);

        if (s == PROD_SORT_RELEVANCE)
            out->next.score = json_number_value(v);
        else
            out->next.num =
                json_is_integer(v) ? json_integer_value(v) : (int64_t)json_number_value(v);
        snprintf(out->next.id, sizeof(out->next.id), "%s", id != NULL ? id : "");
    }
    aggs = json_object_get(ans, "aggregations");
    terms_buckets(json_object_get(aggs, "categories"), a, &out->categories, &out->ncategories);
    terms_buckets(json_object_get(aggs, "tags"), a, &out->tags, &out->ntags);
    price_buckets(json_object_get(aggs, "prices"), a, out);
    json_decref(ans);
    return 0;
}

/* Names of products with every word of PREFIX, the last one as a prefix (name.sayt,
 * migrations/002), best first, each name once. */
static int os_suggest(void *ctx, struct svc_arena *a, const char *prefix, int limit,
                      const char ***names, size_t *n)
{
    struct prod_os *os = ctx;
    char *path = path_of("/%s/_search", os->products);
    json_t *body =
        json_pack("{s:i, s:[s], s:{s:{s:{s:{s:s, s:s, s:s, s:[s, s, s]}}, s:[{s:{s:b}}]}}}", "size",
                  3 * limit, "_source", "name", "query", "bool", "must", "multi_match", "query",
                  prefix, "type", "bool_prefix", "operator", "and", "fields", "name.sayt",
                  "name.sayt._2gram", "name.sayt._3gram", "filter", "term", "deleted", 0);
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    json_t *ans = NULL, *hits;
    int rc;

    *names = NULL;
    *n = 0;
    rc = body != NULL ? os_ok(os, &r, "product suggest", &ans) : SVC_EINVAL;
    free(path);
    json_decref(body);
    if (rc != 0)
        return rc;
    hits = json_object_get(json_object_get(ans, "hits"), "hits");
    *names = svc_arena_calloc(a, (size_t)(limit > 0 ? limit : 1) * sizeof(**names));
    for (size_t i = 0; i < json_array_size(hits) && *n < (size_t)limit; i++) {
        const char *name = jstr(json_object_get(json_array_get(hits, i), "_source"), "name");
        bool seen = name == NULL;

        for (size_t k = 0; !seen && k < *n; k++)
            seen = strcmp((*names)[k], name) == 0;
        if (!seen)
            (*names)[(*n)++] = svc_arena_strdup(a, name);
    }
    json_decref(ans);
    return 0;
}

/* ---- reservations ------------------------------------------------------------------------- */

/*
 * A reservation's life, each arrow one conditional write of its document:
 *
 *   pending --(holds placed)--> reserved --> committing --(holds sold)--> committed
 *                                        \-> releasing --(holds dropped)--> released
 *
 * The holds are written between the arrows, one product at a time, each idempotent (a hold is
 * placed once per reservation id and removed once), so a crash anywhere leaves a state from
 * which the next attempt goes on: a reserve replayed while pending places what is missing; a
 * commit or release retried (or the sweep, after STALE_MS) finishes committing or releasing;
 * the sweep undoes a pending one left behind. Readers see pending as not found yet, and
 * committing and releasing as still reserved.
 */
enum rstate { RS_PENDING, RS_RESERVED, RS_COMMITTING, RS_COMMITTED, RS_RELEASING, RS_RELEASED };

static const char *const rstate_names[] = {"pending",   "reserved",  "committing",
                                           "committed", "releasing", "released"};

static int rstate_of(const json_t *src)
{
    const char *s = jstr(src, "state");

    for (int i = 0; s != NULL && i <= RS_RELEASED; i++)
        if (strcmp(s, rstate_names[i]) == 0)
            return i;
    return -1;
}

static const char *rstate_public(int s)
{
    return s == RS_COMMITTED ? "committed" : s == RS_RELEASED ? "released" : "reserved";
}

static void res_read(const json_t *src, struct svc_arena *a, struct prod_reservation *out)
{
    const json_t *items = json_object_get(src, "items");
    const char *id = jstr(src, "id");

    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", id != NULL ? id : "");
    out->state = rstate_public(rstate_of(src));
    out->n = json_array_size(items);
    out->items = svc_arena_calloc(a, (out->n > 0 ? out->n : 1) * sizeof(*out->items));
    for (size_t i = 0; i < out->n; i++) {
        const json_t *it = json_array_get(items, i);
        const char *pid = jstr(it, "product_id");

        snprintf(out->items[i].product_id, sizeof(out->items[i].product_id), "%s",
                 pid != NULL ? pid : "");
        out->items[i].quantity = jint(it, "quantity");
    }
    out->created_at_ms = jint(src, "created_at");
    out->updated_at_ms = jint(src, "updated_at");
    out->expires_at_ms = jint(src, "expires_at");
    out->release_reason = jdup(src, "release_reason", a);
}

/* Whether the stored reservation SRC has exactly the lines ITEMS[N] (in any order). */
static bool same_lines(const json_t *src, const struct prod_res_item *items, size_t n)
{
    const json_t *stored = json_object_get(src, "items");

    if (json_array_size(stored) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;

        for (size_t k = 0; !found && k < n; k++) {
            const json_t *it = json_array_get(stored, k);
            const char *pid = jstr(it, "product_id");

            found = pid != NULL && strcmp(pid, items[i].product_id) == 0 &&
                    jint(it, "quantity") == items[i].quantity;
        }
        if (!found)
            return false;
    }
    return true;
}

enum hold_op { HOLD_PLACE, HOLD_DROP, HOLD_COMMIT };

/*
 * Product PID's side of reservation RID: PLACE a hold of QTY units (reserved += QTY), DROP the
 * hold (reserved -= its units) or COMMIT it (stock, reserved -= its units, sold += them). Each
 * is done once per reservation, whatever the number of calls. PLACE: PROD_ESTOCK with
 * *AVAILABLE, or SVC_ENOTFOUND (*AVAILABLE 0) when the product does not exist. DROP and COMMIT
 * of a hold that is not there do nothing. SVC_EUNAVAILABLE after OCC_ATTEMPTS conflicts.
 */
static int hold_apply(struct prod_os *os, const char *pid, const char *rid, int64_t qty,
                      enum hold_op op, int64_t *available)
{
    pthread_mutex_t *mu;
    int rc = E_CONFLICT;

    *available = 0;
    if (!svc_uuid_valid(pid))
        return op == HOLD_PLACE ? SVC_ENOTFOUND : 0;
    mu = stripe(os, pid);
    pthread_mutex_lock(mu);
    for (int attempt = 0; rc == E_CONFLICT && attempt < OCC_ATTEMPTS; attempt++) {
        struct doc d = {0};
        json_t *holds, *h;
        int64_t stock, reserved, sold;
        bool write = false;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = doc_get(os, os->products, pid, "product lookup for a hold", &d)) != 0)
            break;
        if (!product_live(d.src)) {
            rc = op == HOLD_PLACE ? SVC_ENOTFOUND : 0;
            doc_release(&d);
            break;
        }
        holds = json_object_get(d.src, "holds");
        if (!json_is_object(holds)) {
            holds = json_object();
            json_object_set_new(d.src, "holds", holds);
        }
        h = json_object_get(holds, rid);
        stock = jint(d.src, "stock");
        reserved = jint(d.src, "reserved");
        sold = jint(d.src, "sold");
        rc = 0;
        if (op == HOLD_PLACE && h == NULL && stock - reserved < qty) {
            *available = stock - reserved;
            rc = PROD_ESTOCK;
        } else if (op == HOLD_PLACE && h == NULL) {
            json_object_set_new(holds, rid, json_integer(qty));
            reserved += qty;
            write = true;
        } else if (op != HOLD_PLACE && h != NULL) {
            int64_t q = json_integer_value(h);

            json_object_del(holds, rid);
            reserved -= q;
            if (op == HOLD_COMMIT) {
                stock -= q;
                sold += q;
            }
            write = true;
        }
        if (write) {
            jset_int(d.src, "stock", stock);
            jset_int(d.src, "reserved", reserved);
            jset_int(d.src, "sold", sold);
            jset_int(d.src, "available", stock - reserved);
            jset_int(d.src, "updated_at", svc_wall_ms());
            rc = doc_put(os, os->products, pid, d.src, d.seq_no, d.primary_term, "product hold",
                         NULL, NULL);
        }
        doc_release(&d);
    }
    pthread_mutex_unlock(mu);
    if (rc == E_CONFLICT) {
        svc_log_warn("product '%s': %d conflicting writes in a row, giving up", pid, OCC_ATTEMPTS);
        rc = SVC_EUNAVAILABLE;
    }
    return rc;
}

/* Applies OP to every line of the stored reservation SRC (id RID). */
static int holds_all(struct prod_os *os, const json_t *src, const char *rid, enum hold_op op)
{
    const json_t *items = json_object_get(src, "items");
    int64_t avail;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < json_array_size(items); i++) {
        const json_t *it = json_array_get(items, i);
        const char *pid = jstr(it, "product_id");

        if (pid != NULL)
            rc = hold_apply(os, pid, rid, jint(it, "quantity"), op, &avail);
    }
    return rc;
}

/* Moves the stored reservation D to state TO (with its event EV_TYPE, when not NULL) by a
 * conditional write; D's version follows. */
static int res_move(struct prod_os *os, struct doc *d, const char *rid, int to, const char *reason,
                    const char *ev_type, const char *traceparent)
{
    struct svc_arena *a;
    struct prod_reservation r;
    struct svc_event_out ev;
    int64_t now = svc_wall_ms();
    int rc = 0;

    json_object_set_new(d->src, "state", json_string(rstate_names[to]));
    jset_int(d->src, "updated_at", now);
    if (reason != NULL)
        json_object_set_new(d->src, "release_reason", json_string(reason));
    if (ev_type != NULL) {
        a = svc_arena_new();
        res_read(d->src, a, &r);
        rc = prod_event_stock(&ev, ev_type, &r, traceparent);
        if (rc == 0)
            outbox_add(d->src, &ev, now);
        svc_event_out_release(&ev);
        svc_arena_free(a);
    }
    if (rc == 0)
        rc = doc_put(os, os->reservations, rid, d->src, d->seq_no, d->primary_term,
                     "reservation update", &d->seq_no, &d->primary_term);
    return rc;
}

/* Undoes a reservation that could not be made: every hold dropped, the document deleted. Left
 * as it is when that fails (the sweep finishes it). */
static void res_undo(struct prod_os *os, struct doc *d, const char *rid)
{
    if (holds_all(os, d->src, rid, HOLD_DROP) == 0)
        doc_delete(os, os->reservations, rid, d->seq_no, d->primary_term, "reservation undo");
}

/* ORDER[N]: the indices of ITEMS in product id order (the order holds are placed in). */
static void by_product(const struct prod_res_item *items, size_t n, size_t *order)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = i;

        for (; k > 0 && strcmp(items[order[k - 1]].product_id, items[i].product_id) > 0; k--)
            order[k] = order[k - 1];
        order[k] = i;
    }
}

static int os_reserve(void *ctx, struct svc_arena *a, const char *id,
                      const struct prod_res_item *items, size_t n, int64_t ttl_ms,
                      const char *traceparent, struct prod_reservation *out,
                      struct prod_res_short *short_line, bool *replayed)
{
    struct prod_os *os = ctx;
    size_t *order;
    struct doc d = {0};
    int64_t now = svc_wall_ms();
    json_t *lines;
    int rc = E_CONFLICT;

    *replayed = false;
    if (!svc_uuid_valid(id) || n == 0)
        return SVC_EINVAL;
    lines = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(lines, json_pack("{s:s, s:I}", "product_id", items[i].product_id,
                                               "quantity", (json_int_t)items[i].quantity));
    /* Created pending, or found: the same lines are a replay, or a reserve cut short that this
     * call finishes. */
    for (int attempt = 0; rc == E_CONFLICT && attempt < 3; attempt++) {
        d.root = json_pack("{s:s, s:s, s:O, s:I, s:I, s:I}", "id", id, "state", "pending", "items",
                           lines, "expires_at", (json_int_t)now + ttl_ms, "created_at",
                           (json_int_t)now, "updated_at", (json_int_t)now);
        d.src = d.root;
        outbox_empty(d.src);
        rc = doc_put(os, os->reservations, id, d.src, -1, 0, "reservation create", &d.seq_no,
                     &d.primary_term);
        if (rc != E_CONFLICT)
            break;
        doc_release(&d);
        if ((rc = doc_get(os, os->reservations, id, "reservation lookup", &d)) != 0)
            break;
        if (d.src == NULL) {
            rc = E_CONFLICT; /* undone meanwhile: created again */
            doc_release(&d);
        } else if (!same_lines(d.src, items, n)) {
            rc = SVC_EIDEMPOTENCY;
        } else if (rstate_of(d.src) != RS_PENDING) {
            res_read(d.src, a, out);
            *replayed = true;
            rc = 1;
        }
    }
    json_decref(lines);
    if (rc == E_CONFLICT)
        rc = SVC_EUNAVAILABLE;
    if (rc != 0)
        goto out;

    /* The holds, in product id order. */
    order = svc_arena_calloc(a, n * sizeof(size_t));
    by_product(items, n, order);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        const struct prod_res_item *it = &items[order[k]];
        int64_t avail;

        rc = hold_apply(os, it->product_id, id, it->quantity, HOLD_PLACE, &avail);
        if (rc == PROD_ESTOCK || rc == SVC_ENOTFOUND) {
            short_line->line = (int)order[k];
            snprintf(short_line->product_id, sizeof(short_line->product_id), "%s", it->product_id);
            short_line->requested = it->quantity;
            short_line->available = avail;
        }
    }
    if (rc != 0) {
        res_undo(os, &d, id);
        goto out;
    }
    rc = res_move(os, &d, id, RS_RESERVED, NULL, EV_STOCK_RESERVED, traceparent);
    if (rc == 0) {
        res_read(d.src, a, out);
    } else if (rc == E_CONFLICT) {
        /* Finished by a concurrent replay of the same reserve. */
        doc_release(&d);
        rc = doc_get(os, os->reservations, id, "reservation lookup", &d);
        if (rc == 0 && d.src != NULL && rstate_of(d.src) != RS_PENDING) {
            res_read(d.src, a, out);
            *replayed = true;
        } else if (rc == 0) {
            rc = SVC_EUNAVAILABLE;
        }
    }
out:
    doc_release(&d);
    return rc == 1 ? 0 : rc;
}

/*
 * Commit (COMMIT true) or release (with REASON) of reservation ID; see the top of this part.
 * EXPIRED_BEFORE >= 0 (the sweep): a reserved one is released only if it expired before then.
 * *REPLAYED when nothing was left to do.
 */
static int res_finish(struct prod_os *os, struct svc_arena *a, const char *id, bool commit,
                      const char *reason, int64_t expired_before, const char *traceparent,
                      struct prod_reservation *out, bool *replayed)
{
    int rc = E_CONFLICT;

    *replayed = false;
    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    for (int attempt = 0; rc == E_CONFLICT && attempt < OCC_ATTEMPTS; attempt++) {
        struct doc d = {0};
        int st;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = doc_get(os, os->reservations, id, "reservation lookup", &d)) != 0)
            return rc;
        st = d.src != NULL ? rstate_of(d.src) : -1;
        /* Nothing to do: done before, or (the sweep, whose view was old) not expired. */
        if ((st == RS_COMMITTED && commit) || (st == RS_RELEASED && !commit) ||
            (st == RS_RESERVED && expired_before >= 0 &&
             jint(d.src, "expires_at") >= expired_before)) {
            *replayed = true;
        } else if (st == RS_RESERVED) {
            rc = res_move(os, &d, id, commit ? RS_COMMITTING : RS_RELEASING, commit ? NULL : reason,
                          NULL, traceparent);
            st = commit ? RS_COMMITTING : RS_RELEASING;
        } else if (st == RS_PENDING || st < 0) {
            rc = SVC_ENOTFOUND;
        }
        /* Committing and releasing are finished forward, whichever was asked. */
        if (rc == 0 && (st == RS_COMMITTING || st == RS_RELEASING)) {
            bool fwd = st == RS_COMMITTING;

            rc = holds_all(os, d.src, id, fwd ? HOLD_COMMIT : HOLD_DROP);
            if (rc == 0)
                rc = res_move(os, &d, id, fwd ? RS_COMMITTED : RS_RELEASED, NULL,
                              fwd ? EV_STOCK_COMMITTED : EV_STOCK_RELEASED, traceparent);
            st = fwd ? RS_COMMITTED : RS_RELEASED;
        }
        if (rc == 0 && out != NULL)
            res_read(d.src, a, out);
        if (rc == 0 && ((st == RS_COMMITTED && !commit) || (st == RS_RELEASED && commit)))
            rc = PROD_ERES_STATE;
        doc_release(&d);
    }
    return rc == E_CONFLICT ? SVC_EUNAVAILABLE : rc;
}

static int os_commit(void *ctx, struct svc_arena *a, const char *id, const char *traceparent,
                     struct prod_reservation *out, bool *replayed)
{
    return res_finish(ctx, a, id, true, NULL, -1, traceparent, out, replayed);
}

static int os_release(void *ctx, struct svc_arena *a, const char *id, const char *traceparent,
                      struct prod_reservation *out, bool *replayed)
{
    return res_finish(ctx, a, id, false, "requested", -1, traceparent, out, replayed);
}

static int os_reservation_get(void *ctx, struct svc_arena *a, const char *id,
                              struct prod_reservation *out)
{
    struct prod_os *os = ctx;
    struct doc d = {0};
    int rc;

    if (!svc_uuid_valid(id))
        return SVC_ENOTFOUND;
    if ((rc = doc_get(os, os->reservations, id, "reservation lookup", &d)) != 0)
        return rc;
    if (d.src == NULL || rstate_of(d.src) == RS_PENDING || rstate_of(d.src) < 0)
        rc = SVC_ENOTFOUND;
    else
        res_read(d.src, a, out);
    doc_release(&d);
    return rc;
}

/* The reservations the sweep has to finish: reserved and expired, or left half-done. */
static json_t *sweep_body(int64_t now_ms)
{
    return json_pack(
        "{s:i, s:b, s:{s:{s:[{s:{s:[{s:{s:s}}, {s:{s:{s:I}}}]}}, {s:{s:[{s:{s:[s, s, s]}},"
        " {s:{s:{s:I}}}]}}], s:i}}}",
        "size", SWEEP_MAX, "_source", 0, "query", "bool", "should", "bool", "filter", "term",
        "state", "reserved", "range", "expires_at", "lt", (json_int_t)now_ms, "bool", "filter",
        "terms", "state", "pending", "committing", "releasing", "range", "updated_at", "lt",
        (json_int_t)(now_ms - STALE_MS), "minimum_should_match", 1);
}

static int os_sweep(void *ctx, int64_t now_ms, int64_t *released)
{
    struct prod_os *os = ctx;
    char *path = path_of("/%s/_search", os->reservations);
    json_t *body = sweep_body(now_ms), *ans = NULL, *hits;
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    int rc, first = 0;

    *released = 0;
    rc = body != NULL ? os_ok(os, &r, "reservation sweep", &ans) : SVC_EINVAL;
    free(path);
    json_decref(body);
    if (rc != 0)
        return rc;
    hits = json_object_get(json_object_get(ans, "hits"), "hits");
    for (size_t i = 0; i < json_array_size(hits); i++) {
        const char *id = jstr(json_array_get(hits, i), "_id");
        struct svc_arena *a = svc_arena_new();
        struct doc d = {0};
        bool replayed;
        int st = -1;

        if (id == NULL || !svc_uuid_valid(id))
            rc = 0;
        else if ((rc = doc_get(os, os->reservations, id, "reservation lookup", &d)) == 0 &&
                 d.src != NULL)
            st = rstate_of(d.src);
        if (st == RS_PENDING && jint(d.src, "updated_at") < now_ms - STALE_MS) {
            svc_log_warn("reservation '%s' left pending: undone", id);
            res_undo(os, &d, id);
        } else if (st == RS_RESERVED) {
            rc = res_finish(os, a, id, false, "expired", now_ms, NULL, NULL, &replayed);
            if (rc == 0 && !replayed)
                (*released)++;
        } else if (st == RS_COMMITTING || st == RS_RELEASING) {
            svc_log_warn("reservation '%s' left %s: finished", id, rstate_names[st]);
            rc = res_finish(os, a, id, st == RS_COMMITTING, NULL, -1, NULL, NULL, &replayed);
            if (rc == PROD_ERES_STATE)
                rc = 0;
        }
        doc_release(&d);
        svc_arena_free(a);
        if (rc != 0 && first == 0)
            first = rc;
    }
    json_decref(ans);
    return first;
}

/* ---- the outbox source -------------------------------------------------------------------- */

/* One document of the relay's batch, as read by the fetch. */
struct ob_doc {
    const char *index; /* the alias: os->products or os->reservations */
    const char *id;    /* in os->ob_root */
};

static void ob_clear(struct prod_os *os)
{
    json_decref(os->ob_root);
    os->ob_root = NULL;
    free(os->ob_docs);
    os->ob_docs = NULL;
    free(os->ob_events);
    os->ob_events = NULL;
}

/* The alias of a concrete index named in a hit ("products_v2" -> products). */
static const char *alias_of(struct prod_os *os, const char *index)
{
    return index != NULL && strncmp(index, os->reservations, strlen(os->reservations)) == 0
               ? os->reservations
               : os->products;
}

/*
 * The documents with pending events, oldest first, found by a search (near real time: up to a
 * refresh interval late), then read again by a realtime _mget, so that the events handed over
 * are the documents' current ones and a document marked a moment ago is not sent again.
 */
static int ob_fetch(void *ctx, size_t max, struct svc_outbox_event **events)
{
    struct prod_os *os = ctx;
    char *path = path_of("/%s,%s/_search", os->products, os->reservations);
    json_t *body = json_pack("{s:I, s:b, s:{s:{s:b}}, s:[{s:s}, {s:s}]}", "size", (json_int_t)max,
                             "_source", 0, "query", "term", "outbox_pending", 1, "sort",
                             "outbox_since", "asc", "id", "asc");
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    json_t *ans = NULL, *hits, *want, *docs;
    size_t nhits, n = 0;
    int rc;

    ob_clear(os);
    *events = NULL;
    rc = os_ok(os, &r, "outbox fetch", &ans);
    free(path);
    json_decref(body);
    if (rc != 0)
        return rc;
    hits = json_object_get(json_object_get(ans, "hits"), "hits");
    nhits = json_array_size(hits);
    if (nhits == 0) {
        json_decref(ans);
        return 0;
    }
    want = json_array();
    for (size_t i = 0; i < nhits; i++) {
        const json_t *h = json_array_get(hits, i);

        json_array_append_new(want, json_pack("{s:s, s:s, s:{s:[s]}}", "_index",
                                              alias_of(os, jstr(h, "_index")), "_id",
                                              jstr(h, "_id"), "_source", "includes", "outbox"));
    }
    json_decref(ans);
    body = json_pack("{s:o}", "docs", want);
    r.path = "/_mget";
    r.body = body;
    rc = os_ok(os, &r, "outbox read", &os->ob_root);
    json_decref(body);
    if (rc != 0)
        return rc;
    docs = json_object_get(os->ob_root, "docs");
    os->ob_docs = svc_calloc(json_array_size(docs) + 1, sizeof(*os->ob_docs));
    os->ob_events = svc_calloc(max > 0 ? max : 1, sizeof(*os->ob_events));
    for (size_t i = 0; i < json_array_size(docs) && n < max; i++) {
        const json_t *d = json_array_get(docs, i);
        const json_t *box = json_object_get(json_object_get(d, "_source"), "outbox");
        struct ob_doc *od = &os->ob_docs[i];

        od->index = alias_of(os, jstr(d, "_index"));
        od->id = jstr(d, "_id");
        for (size_t k = 0; k < json_array_size(box) && n < max; k++) {
            const json_t *e = json_array_get(box, k);
            struct svc_outbox_event *ev = &os->ob_events[n];

            ev->id = jstr(e, "id");
            ev->topic = jstr(e, "topic");
            ev->key = jstr(e, "key");
            ev->key_len = ev->key != NULL ? strlen(ev->key) : 0;
            ev->value = jstr(e, "value");
            ev->value_len = ev->value != NULL ? strlen(ev->value) : 0;
            ev->handle = od;
            if (ev->id != NULL && ev->topic != NULL && ev->value != NULL)
                n++;
        }
    }
    *events = os->ob_events;
    return (int)n;
}

/* Whether event id ID is among the N EVENTS of document OD. */
static bool ob_marked(struct svc_outbox_event *const *events, size_t n, const struct ob_doc *od,
                      const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (events[i]->handle == od && strcmp(events[i]->id, id) == 0)
            return true;
    return false;
}

/*
 * Removes exactly the published events from document OD, with a fresh read and a conditional
 * write, so an event added meanwhile stays; a tombstone left without events is deleted.
 */
static int ob_mark_doc(struct prod_os *os, const struct ob_doc *od,
                       struct svc_outbox_event *const *events, size_t n)
{
    int rc = E_CONFLICT;

    for (int attempt = 0; rc == E_CONFLICT && attempt < OCC_ATTEMPTS; attempt++) {
        struct doc d = {0};
        json_t *box, *keep;
        size_t before;

        if (attempt > 0)
            backoff(attempt);
        if ((rc = doc_get(os, od->index, od->id, "outbox lookup", &d)) != 0)
            return rc;
        if (d.src == NULL) {
            doc_release(&d);
            return 0;
        }
        box = json_object_get(d.src, "outbox");
        before = json_array_size(box);
        keep = json_array();
        for (size_t i = 0; i < before; i++) {
            json_t *e = json_array_get(box, i);
            const char *id = jstr(e, "id");

            if (id == NULL || !ob_marked(events, n, od, id))
                json_array_append(keep, e);
        }
        json_object_set_new(d.src, "outbox", keep);
        jset_int(d.src, "outbox_count", (int64_t)json_array_size(keep));
        if (json_array_size(keep) == 0) {
            json_object_set_new(d.src, "outbox_pending", json_false());
            jset_int(d.src, "outbox_since", 0);
        }
        if (json_array_size(keep) == before)
            rc = 0; /* marked already */
        else if (json_array_size(keep) == 0 && od->index == os->products && !product_live(d.src))
            rc = doc_delete(os, od->index, od->id, d.seq_no, d.primary_term, "tombstone delete");
        else
            rc = doc_put(os, od->index, od->id, d.src, d.seq_no, d.primary_term, "outbox mark",
                         NULL, NULL);
        doc_release(&d);
    }
    return rc == E_CONFLICT ? SVC_EUNAVAILABLE : rc;
}

static int ob_mark(void *ctx, struct svc_outbox_event *const *events, size_t n)
{
    struct prod_os *os = ctx;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool done = false;

        for (size_t k = 0; !done && k < i; k++)
            done = events[k]->handle == events[i]->handle;
        if (!done)
            rc = ob_mark_doc(os, events[i]->handle, events, n);
    }
    return rc;
}

static void ob_release(void *ctx, struct svc_outbox_event *events, size_t n)
{
    (void)events;
    (void)n;
    ob_clear(ctx);
}

static int ob_backlog(void *ctx, size_t *count, double *oldest_age_s)
{
    struct prod_os *os = ctx;
    char *path = path_of("/%s,%s/_search", os->products, os->reservations);
    json_t *body = json_pack("{s:i, s:{s:{s:b}}, s:{s:{s:{s:s}}, s:{s:{s:s}}}}", "size", 0, "query",
                             "term", "outbox_pending", 1, "aggs", "events", "sum", "field",
                             "outbox_count", "oldest", "min", "field", "outbox_since");
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    json_t *ans = NULL, *aggs;
    int rc = os_ok(os, &r, "outbox backlog", &ans);
    double oldest;

    free(path);
    json_decref(body);
    *count = 0;
    *oldest_age_s = 0;
    if (rc != 0)
        return rc;
    aggs = json_object_get(ans, "aggregations");
    *count = (size_t)json_number_value(json_object_get(json_object_get(aggs, "events"), "value"));
    oldest = json_number_value(json_object_get(json_object_get(aggs, "oldest"), "value"));
    if (*count > 0 && oldest > 0 && (double)svc_wall_ms() > oldest)
        *oldest_age_s = ((double)svc_wall_ms() - oldest) / 1000.0;
    json_decref(ans);
    return 0;
}

void prod_os_outbox_source(struct prod_os *os, struct svc_outbox_source *src)
{
    memset(src, 0, sizeof(*src));
    src->ctx = os;
    src->fetch = ob_fetch;
    src->mark_published = ob_mark;
    src->release = ob_release;
    src->backlog = ob_backlog;
}

/* ---- the store ---------------------------------------------------------------------------- */

static bool os_ready(void *ctx, char *why, size_t cap)
{
    struct prod_os *os = ctx;

    return svc_dep_check(os->dep, why, cap);
}

void prod_os_store(struct prod_os *os, struct prod_store *store)
{
    memset(store, 0, sizeof(*store));
    store->ctx = os;
    store->create = os_create;
    store->get = os_get;
    store->mget = os_mget;
    store->update = os_update;
    store->remove = os_remove;
    store->import = os_import;
    store->search = os_search;
    store->suggest = os_suggest;
    store->reserve = os_reserve;
    store->commit = os_commit;
    store->release = os_release;
    store->reservation_get = os_reservation_get;
    store->sweep = os_sweep;
    store->ready = os_ready;
}

struct svc_dep *prod_os_dep(struct prod_os *os)
{
    return os->dep;
}

/* ---- migrations --------------------------------------------------------------------------- */

/* migrations/NNN_name.json, compiled in by cmake/Service.cmake:
 * static const struct svc_migration migrations[] = {..., {0}}; */
#include "prod_migrations.inc"

/*
 * svc/migrate.h's engine on the search engine. The lock is the document "lock" of
 * product_migrations, created with op_type=create: a second replica waits for it to go, and
 * takes it over (conditionally, so only one does) when it is older than LOCK_TTL_MS, its
 * holder having died. Each applied migration is the document "<version>" there. There are no
 * transactions: a migration cut short is applied again from its first step, which is why the
 * steps are idempotent (their "ignore" lists, migrations/001).
 */
struct mig {
    struct prod_os *os;
    char owner[SVC_UUID_STR_LEN + 1];
    int64_t seq_no, primary_term; /* of the lock, while held */
};

/* A migration step: one call. */
struct step {
    const char *method, *path;
    json_t *body;   /* borrowed; may be NULL */
    json_t *ignore; /* borrowed: error types that count as done; may be NULL */
};

struct steps {
    const char *about;
    struct step *items;
    size_t n;
};

static const struct svc_json_field step_fields[] = {
    {"method", SVC_JSON_STRING, .required = true, .min = 1, .max = 8,
     .offset = offsetof(struct step, method)},
    {"path", SVC_JSON_STRING, .required = true, .min = 1, .offset = offsetof(struct step, path)},
    {"body", SVC_JSON_ANY, .offset = offsetof(struct step, body)},
    {"ignore", SVC_JSON_ANY, .offset = offsetof(struct step, ignore)},
    {0},
};
static const struct svc_json_field step_def = {
    .type = SVC_JSON_OBJECT, .fields = step_fields, .size = sizeof(struct step)};
static const struct svc_json_field steps_fields[] = {
    {"about", SVC_JSON_STRING, .offset = offsetof(struct steps, about)},
    {"steps", SVC_JSON_ARRAY, .required = true, .min = 1, .elem = &step_def,
     .offset = offsetof(struct steps, items), .count = offsetof(struct steps, n)},
    {0},
};

static bool name_member(const char *key)
{
    return strcmp(key, "index") == 0 || strcmp(key, "alias") == 0 || strcmp(key, "indices") == 0 ||
           strcmp(key, "aliases") == 0;
}

/* Prefixes the index and alias names of a step's body: the string values (or arrays of
 * strings) of members named index, alias, indices and aliases, at any depth. */
static void prefix_names(const struct prod_os *os, json_t *v)
{
    const char *key;
    json_t *m;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, m) prefix_names(os, m);
        return;
    }
    json_object_foreach(v, key, m)
    {
        if (name_member(key) && json_is_string(m)) {
            json_object_set_new(v, key, json_sprintf("%s%s", os->prefix, json_string_value(m)));
        } else if (name_member(key) && json_is_array(m)) {
            json_t *s;

            json_array_foreach(m, i, s) if (json_is_string(s))
                json_array_set_new(m, i, json_sprintf("%s%s", os->prefix, json_string_value(s)));
        } else {
            prefix_names(os, m);
        }
    }
}

/* A step's path with its first segment prefixed, unless it is an API ("/_aliases"). */
static char *step_path(const struct prod_os *os, const char *path)
{
    if (path[0] == '/' && path[1] != '_' && path[1] != '\0')
        return path_of("/%s%s", os->prefix, path + 1);
    return path_of("%s", path);
}

static bool ignored(const json_t *ignore, const char *type)
{
    size_t i;
    json_t *t;

    json_array_foreach(ignore, i, t) if (json_is_string(t) &&
                                         strcmp(json_string_value(t), type) == 0) return true;
    return false;
}

static int run_step(struct prod_os *os, const char *file, size_t k, struct step *st)
{
    char *path = step_path(os, st->path);
    char what[160];
    struct os_req r = {
        .method = st->method, .path = path, .body = st->body, .timeout_ms = MIGRATION_TIMEOUT_MS};
    json_t *ans = NULL;
    long status;
    int rc;

    snprintf(what, sizeof(what), "migration '%s' step %zu (%s %s)", file, k + 1, st->method,
             st->path);
    if (st->body != NULL)
        prefix_names(os, st->body);
    rc = os_call(os, &r, what, &status, &ans);
    free(path);
    if (rc == 0 && status >= 200 && status <= 299 &&
        json_array_size(json_object_get(ans, "failures")) > 0) {
        svc_log_error("opensearch: %s reported failures", what);
        rc = SVC_EINTERNAL;
    } else if (rc == 0 && (status < 200 || status > 299)) {
        if (ignored(st->ignore, err_type(ans)))
            svc_log_info("opensearch: %s: %s, done already", what, err_type(ans));
        else
            rc = unexpected(what, status, ans);
    }
    json_decref(ans);
    return rc;
}

static int mig_apply(void *ctx, const struct svc_migration *mg)
{
    struct mig *g = ctx;
    struct svc_arena *a = svc_arena_new();
    struct svc_json_error err;
    struct steps steps = {0};
    json_t *root = NULL;
    int rc = svc_json_parse(mg->text, strlen(mg->text), 0, SVC_JSON_PARSE_OBJECT, &root, &err);

    if (rc == 0)
        rc = svc_json_read(root, steps_fields, &steps, SVC_JSON_REJECT_UNKNOWN, a, &err);
    if (rc != 0)
        svc_log_error("migration '%s' is not valid: %s", mg->name, err.msg);
    for (size_t i = 0; rc == 0 && i < steps.n; i++) {
        if (steps.items[i].path[0] != '/') {
            svc_log_error("migration '%s' step %zu: the path must start with '/'", mg->name, i + 1);
            rc = SVC_EINVAL;
        } else {
            rc = run_step(g->os, mg->name, i, &steps.items[i]);
        }
    }
    json_decref(root);
    svc_arena_free(a);
    return rc;
}

/* product_migrations itself, created by whoever comes first. */
static int mig_index(struct prod_os *os)
{
    char *path = path_of("/%s", os->migrations);
    json_t *body =
        json_pack("{s:{s:i, s:s}, s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s},"
                  " s:{s:s}}}}",
                  "settings", "number_of_shards", 1, "auto_expand_replicas", "0-1", "mappings",
                  "dynamic", "strict", "properties", "kind", "type", "keyword", "version", "type",
                  "integer", "name", "type", "keyword", "checksum", "type", "keyword", "applied_at",
                  "type", "long", "owner", "type", "keyword", "taken_at", "type", "long");
    struct os_req r = {.method = "PUT", .path = path, .body = body};
    json_t *ans = NULL;
    long status;
    int rc = os_call(os, &r, "migration index create", &status, &ans);

    if (rc == 0 && status != 200 && strcmp(err_type(ans), "resource_already_exists_exception") != 0)
        rc = unexpected("migration index create", status, ans);
    json_decref(ans);
    json_decref(body);
    free(path);
    return rc;
}

static int mig_lock(void *ctx)
{
    struct mig *g = ctx;
    struct prod_os *os = g->os;
    int64_t give_up = svc_now_ms() + 2 * LOCK_TTL_MS;
    int rc;

    svc_uuid_v4_str(g->owner);
    if ((rc = mig_index(os)) != 0)
        return rc;
    for (;;) {
        json_t *src = json_pack("{s:s, s:s, s:I}", "kind", "lock", "owner", g->owner, "taken_at",
                                (json_int_t)svc_wall_ms());
        struct doc d = {0};

        rc = doc_put(os, os->migrations, "lock", src, -1, 0, "migration lock", &g->seq_no,
                     &g->primary_term);
        if (rc == E_CONFLICT &&
            (rc = doc_get(os, os->migrations, "lock", "migration lock lookup", &d)) == 0) {
            rc = E_CONFLICT;
            if (d.src != NULL && jint(d.src, "taken_at") < svc_wall_ms() - LOCK_TTL_MS) {
                rc = doc_put(os, os->migrations, "lock", src, d.seq_no, d.primary_term,
                             "stale migration lock takeover", &g->seq_no, &g->primary_term);
                if (rc == 0)
                    svc_log_warn("opensearch: took over the migration lock of '%s', held "
                                 "since %" PRId64 " (its replica died)",
                                 jstr(d.src, "owner") != NULL ? jstr(d.src, "owner") : "?",
                                 jint(d.src, "taken_at"));
            }
            if (rc == E_CONFLICT && d.src != NULL)
                svc_sleep_ms(200);
        }
        doc_release(&d);
        json_decref(src);
        if (rc != E_CONFLICT)
            return rc;
        if (svc_now_ms() > give_up) {
            svc_log_error("opensearch: the migration lock is held by another replica");
            return SVC_EUNAVAILABLE;
        }
    }
}

static int mig_unlock(void *ctx, bool commit)
{
    struct mig *g = ctx;
    int rc = doc_delete(g->os, g->os->migrations, "lock", g->seq_no, g->primary_term,
                        "migration unlock");

    (void)commit;                     /* nothing to roll back: see above */
    return rc == E_CONFLICT ? 0 : rc; /* taken over meanwhile */
}

static int mig_list(void *ctx, struct svc_migration_list *applied)
{
    struct mig *g = ctx;
    struct prod_os *os = g->os;
    char *refresh = path_of("/%s/_refresh", os->migrations);
    char *path = path_of("/%s/_search", os->migrations);
    json_t *body =
        json_pack("{s:i, s:{s:{s:s}}}", "size", 1000, "query", "term", "kind", "migration");
    struct os_req rr = {.method = "POST", .path = refresh, .retry = true};
    struct os_req r = {.method = "POST", .path = path, .body = body, .retry = true};
    json_t *ans = NULL, *hits;
    int rc = os_ok(os, &rr, "migration index refresh", NULL);

    if (rc == 0)
        rc = os_ok(os, &r, "migration list", &ans);
    hits = json_object_get(json_object_get(ans, "hits"), "hits");
    for (size_t i = 0; rc == 0 && i < json_array_size(hits); i++) {
        const json_t *src = json_object_get(json_array_get(hits, i), "_source");

        svc_migration_applied_add(applied, (int)jint(src, "version"), jstr(src, "name"),
                                  jstr(src, "checksum"));
    }
    json_decref(ans);
    json_decref(body);
    free(path);
    free(refresh);
    return rc;
}

static int mig_record(void *ctx, const struct svc_migration *mg)
{
    struct mig *g = ctx;
    char id[16];
    json_t *src =
        json_pack("{s:s, s:i, s:s, s:s, s:I}", "kind", "migration", "version", mg->version, "name",
                  mg->name, "checksum", mg->sha256, "applied_at", (json_int_t)svc_wall_ms());
    int rc;

    snprintf(id, sizeof(id), "%d", mg->version);
    rc = doc_put(g->os, g->os->migrations, id, src, -1, 0, "migration record", NULL, NULL);
    json_decref(src);
    return rc == E_CONFLICT ? 0 : rc; /* recorded by a replica that outlived the lock */
}

/* ---- lifetime ----------------------------------------------------------------------------- */

/* Whether the engine answers these credentials: any answer about the products alias will do
 * (404 before the first migration). */
static int ping(struct prod_os *os)
{
    char *path = path_of("/%s/_count", os->products);
    struct os_req r = {.method = "GET", .path = path, .retry = true};
    long status;
    int rc = os_call(os, &r, "ping", &status, NULL);

    free(path);
    if (rc != 0 && (status == 401 || status == 403))
        rc = SVC_EUNAUTH;
    else if (rc == 0 && status != 200 && status != 404)
        rc = unexpected("ping", status, NULL);
    return rc;
}

static void probe(void *ctx)
{
    ping(ctx); /* os_call reports to the dependency state */
}

int prod_os_new(const struct prod_os_opts *o, struct prod_os **out)
{
    const char *url = o->url != NULL ? o->url : "";
    struct prod_os *os;
    size_t len = strlen(url);
    int rc;

    *out = NULL;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strchr(url, '@') != NULL || len < 9) {
        svc_log_error("OPENSEARCH_URL must be http(s)://host:port, without credentials (they "
                      "go in OPENSEARCH_USER and OPENSEARCH_PASSWORD)");
        return SVC_EINVAL;
    }
    os = svc_calloc(1, sizeof(*os));
    while (len > 0 && url[len - 1] == '/')
        len--;
    os->base = svc_strndup(url, len);
    if (o->user != NULL && o->user[0] != '\0') {
        os->user = svc_strdup(o->user);
        os->userpwd = path_of("%s:%s", o->user, o->password != NULL ? o->password : "");
    }
    os->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    os->prefix = svc_strdup(o->prefix != NULL ? o->prefix : "");
    os->products = path_of("%s%s", os->prefix, PRODUCTS);
    os->reservations = path_of("%s%s", os->prefix, RESERVATIONS);
    os->migrations = path_of("%s%s", os->prefix, MIGRATIONS);
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_init(&os->stripes[i], NULL);
    os->dep = svc_dep_new("opensearch", 0, NULL);
    svc_dep_set_probe(os->dep, probe, os);

    rc = ping(os);
    if (rc == 0) {
        struct mig g = {.os = os};
        const struct svc_migrate_engine e = {.name = "opensearch",
                                             .ctx = &g,
                                             .lock = mig_lock,
                                             .unlock = mig_unlock,
                                             .list = mig_list,
                                             .apply = mig_apply,
                                             .record = mig_record};

        rc = svc_migrate(o->migrations != NULL ? o->migrations : migrations, &e);
    }
    if (rc != 0) {
        svc_log_error("opensearch not ready: %s", svc_err_title(rc));
        prod_os_free(os);
        return rc;
    }
    *out = os;
    return 0;
}

void prod_os_free(struct prod_os *os)
{
    if (os == NULL)
        return;
    ob_clear(os);
    svc_dep_free(os->dep);
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&os->stripes[i]);
    free(os->base);
    free(os->user);
    if (os->userpwd != NULL)
        memset(os->userpwd, 0, strlen(os->userpwd)); /* a secret */
    free(os->userpwd);
    free(os->prefix);
    free(os->products);
    free(os->reservations);
    free(os->migrations);
    free(os);
}

/* Every index of product-svc (under the prefix), found by name patterns and deleted by name:
 * Elasticsearch refuses to delete by wildcard (action.destructive_requires_name). */
int prod_os_drop_all(struct prod_os *os)
{
    char *path = path_of("/%sproducts_v*,%sreservations_v*,%s/_alias?ignore_unavailable=true"
                         "&allow_no_indices=true",
                         os->prefix, os->prefix, os->migrations);
    struct os_req r = {.method = "GET", .path = path, .retry = true};
    json_t *ans = NULL, *v;
    const char *index;
    int rc = os_ok(os, &r, "index list", &ans);

    free(path);
    json_object_foreach(ans, index, v)
    {
        struct os_req d = {.method = "DELETE"};

        d.path = path = path_of("/%s", index);
        if (rc == 0)
            rc = os_ok(os, &d, "index delete", NULL);
        free(path);
    }
    json_decref(ans);
    return rc;
}

/* ---- hooks -------------------------------------------------------------------------------- */

int prod_store_init(void *svc)
{
    struct prod_svc *s = svc;
    struct prod_os_opts o = {
        .url = s->cfg.os_url,
        .user = s->cfg.os_user,
        .password = s->cfg.os_password,
        .timeout_ms = (int)s->cfg.os_timeout_ms,
    };
    int rc = prod_os_new(&o, &s->os);

    if (rc != 0)
        return rc;
    prod_os_store(s->os, &s->app.store);
    prod_os_outbox_source(s->os, &s->outbox);
    return 0;
}

void prod_store_fini(void *svc)
{
    struct prod_svc *s = svc;

    prod_os_free(s->os);
    s->os = NULL;
    memset(&s->app.store, 0, sizeof(s->app.store));
    memset(&s->outbox, 0, sizeof(s->outbox));
}

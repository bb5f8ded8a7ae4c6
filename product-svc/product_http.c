/*
 * product_http.c: product-svc's HTTP API (issue 11; the contract is product-svc/openapi.yaml).
 *
 * Every handler parses, validates, calls the store and renders, in that order: nothing reaches
 * the store before the whole request is known to be valid, so bad input changes nothing. The
 * store is reached through the function pointers of struct prod_store (product.h), which the
 * http tests replace with a fake.
 *
 * No client input ever becomes query syntax: bodies are read with field tables that refuse any
 * member they do not name, query parameters are typed and bounded here, and the store builds
 * every engine query from these typed values (free text only ever as the text of a
 * simple_query_string or multi_match).
 */
#include "product.h"

#include "svc/error.h"
#include "svc/http.h"
#include "svc/idem.h"
#include "svc/json.h"
#include "svc/uuid.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* A product's longest fields JSON-escaped at 12 bytes a character (a surrogate pair of
     * \u escapes) stay below this: a cap that never refuses a valid product. */
    PRODUCT_BODY_MAX = 128 * 1024,
    RESERVE_BODY_MAX = 64 * 1024,
    MGET_BODY_MAX = 16 * 1024,
    SMALL_BODY_MAX = 1024,
    IMPORT_BODY_MAX = 4 * 1024 * 1024,
    IMPORT_LINES_MAX = 1000,
    IMPORT_ERRORS_MAX = 100, /* bad lines reported in one answer */
    CURSOR_MAX = 96,
};

static struct prod_store *store_of(struct svc_req *req)
{
    struct prod_app *app = svc_req_app(req);

    return &app->store;
}

/* ---- the product id of a SKU ------------------------------------------------------------- */

/* Here rather than with the events: the handlers, the store and the http tests (which link
 * the handlers without the store) all need it. */

void prod_id_for_sku(const char *sku, char out[PROD_ID_LEN + 1])
{
    static const char ns[] = "polyglot:product:";
    uint8_t sum[32];
    struct svc_uuid u;
    size_t n = strlen(sku);
    char buf[sizeof(ns) + (size_t)PROD_SKU_MAX * 4];

    /* The handlers refuse SKUs longer than PROD_SKU_MAX characters before they get here; the
     * cut only keeps the buffer safe. */
    if (n > sizeof(buf) - sizeof(ns))
        n = sizeof(buf) - sizeof(ns);
    /* BUF is hashed by length, not a C string. */
    /* NOLINTBEGIN(bugprone-not-null-terminated-result) */
    memcpy(buf, ns, sizeof(ns) - 1);
    memcpy(buf + sizeof(ns) - 1, sku, n);
    /* NOLINTEND(bugprone-not-null-terminated-result) */
    svc_sha256(buf, sizeof(ns) - 1 + n, sum);
    memcpy(u.bytes, sum, sizeof(u.bytes));
    u.bytes[6] = (uint8_t)((u.bytes[6] & 0x0f) | 0x80); /* version 8: custom, name-based */
    u.bytes[8] = (uint8_t)((u.bytes[8] & 0x3f) | 0x80); /* the RFC 9562 variant */
    svc_uuid_format(&u, out);
}

/* ---- problems --------------------------------------------------------------------------- */

const struct svc_err_def prod_errors[] = {PROD_ERRNO_MAP(SVC_ERR_DEF) SVC_ERRORS_END};

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
    case SVC_EPRECONDITION:
        return svc_resp_error(resp, rc,
                              "the product changed since the ETag sent in If-Match: get it again");
    case PROD_ERESERVED:
        return svc_resp_error(resp, rc, "open reservations hold units of this product");
    case SVC_EUNAVAILABLE:
    case SVC_EAGAIN:
    case SVC_ETIMEDOUT:
        return svc_resp_error(resp, SVC_EUNAVAILABLE,
                              "the search engine is unavailable: retry later");
    default:
        return svc_resp_error(resp, SVC_EINTERNAL, "the request could not be completed");
    }
}

/* ---- input ------------------------------------------------------------------------------ */

static bool sku_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > PROD_SKU_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool currency_valid(const char *s)
{
    return strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' &&
           s[2] >= 'A' && s[2] <= 'Z';
}

/*
 * An absolute http(s) URL as RFC 3986 writes one, since clients will put it in pages: a host
 * name or IPv4 address (letters, digits, '-', '.') or a bracketed IPv6 address (inet_pton's),
 * an optional port,
 * then only URI characters (anything else percent-encoded). No user:password@.
 */
static bool url_valid(const char *s)
{
    static const char uri_chars[] = "-._~:/?#[]@!$&'()*+,;=%";
    const char *p, *start;

    if (strncmp(s, "https://", 8) == 0)
        p = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        p = s + 7;
    else
        return false;
    start = p;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        char literal[INET6_ADDRSTRLEN];
        struct in6_addr addr;

        if (close == NULL || (size_t)(close - p - 1) >= sizeof(literal))
            return false;
        memcpy(literal, p + 1, (size_t)(close - p - 1));
        literal[close - p - 1] = '\0';
        if (inet_pton(AF_INET6, literal, &addr) != 1)
            return false;
        p = close + 1;
    } else {
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '.')
            p++;
        if (p == start)
            return false;
    }
    if (*p == ':') {
        const char *digits = ++p;

        while (isdigit((unsigned char)*p))
            p++;
        if (p == digits || p - digits > 5)
            return false;
    }
    if (*p != '\0' && *p != '/' && *p != '?' && *p != '#')
        return false;
    for (; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr(uri_chars, *p) == NULL)
            return false;
    return true;
}

/* A string with something else than spaces: names, categories and tags must say something. */
static bool blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* What create, import and patch bodies hold; SET says which members were present (patch). */
struct product_in {
    const char *sku, *name, *description, *category, *currency, *image_url;
    const char **tags;
    size_t ntags;
    int64_t price_cents, stock;
    json_t *image_url_raw; /* patch: the string; a null one (which removes the image) reads
                            * as absent, so the body says whether it was sent */
};

/* Names, descriptions, categories and tags are display text (svc/json.h): no bidirectional
 * or zero-width characters, and no control characters but the line breaks and tabs of a
 * description. */
static const struct svc_json_field tag_field = {
    .type = SVC_JSON_STRING, .min = 1, .max = PROD_TAG_MAX, .text = SVC_JSON_TEXT_LINE};

#define PRODUCT_FIELDS(must)                                                                        \
    {"name",                                                                                        \
     SVC_JSON_STRING,                                                                               \
     .required = (must),                                                                            \
     .min = 1,                                                                                      \
     .max = PROD_NAME_MAX,                                                                          \
     .text = SVC_JSON_TEXT_LINE,                                                                    \
     .offset = offsetof(struct product_in, name)},                                                  \
        {"description", SVC_JSON_STRING, .max = PROD_DESCRIPTION_MAX, .text = SVC_JSON_TEXT_BLOCK,  \
         .offset = offsetof(struct product_in, description)},                                       \
        {"category",                                                                                \
         SVC_JSON_STRING,                                                                           \
         .required = (must),                                                                        \
         .min = 1,                                                                                  \
         .max = PROD_CATEGORY_MAX,                                                                  \
         .text = SVC_JSON_TEXT_LINE,                                                                \
         .offset = offsetof(struct product_in, category)},                                          \
        {"tags",                                                                                    \
         SVC_JSON_ARRAY,                                                                            \
         .max = PROD_TAGS_MAX,                                                                      \
         .elem = &tag_field,                                                                        \
         .offset = offsetof(struct product_in, tags),                                               \
         .count = offsetof(struct product_in, ntags)},                                              \
        {"price_cents", SVC_JSON_INT,          .required = (must),                                  \
         .min = 0,      .max = PROD_PRICE_MAX, .offset = offsetof(struct product_in, price_cents)}, \
        {"currency", SVC_JSON_STRING, .required = (must),                                           \
         .min = 3,   .max = 3,        .offset = offsetof(struct product_in, currency)},             \
    {                                                                                               \
        "stock", SVC_JSON_INT, .required = (must), .min = 0, .max = PROD_STOCK_MAX,                 \
                               .offset = offsetof(struct product_in, stock)                         \
    }

static const struct svc_json_field create_fields[] = {
    {"sku", SVC_JSON_STRING, .required = true, .min = 1, .max = PROD_SKU_MAX,
     .offset = offsetof(struct product_in, sku)},
    PRODUCT_FIELDS(true),
    {"image_url", SVC_JSON_STRING, .min = 1, .max = PROD_URL_MAX,
     .offset = offsetof(struct product_in, image_url)},
    {0},
};

/* image_url read raw: null is meaningful in a patch (remove the image). */
static const struct svc_json_field patch_fields[] = {
    PRODUCT_FIELDS(false),
    {"image_url", SVC_JSON_ANY, .offset = offsetof(struct product_in, image_url_raw)},
    {0},
};

/*
 * The checks a field table cannot make. PREFIX is "" for a body, "line N: " for an import
 * line. Returns NULL when IN is valid, else the problem, with the field in *FIELD.
 */
static const char *product_problem(struct svc_arena *a, const struct product_in *in,
                                   const char **field)
{
    if (in->sku != NULL && !sku_valid(in->sku)) {
        *field = "sku";
        return "field 'sku' must be 1 to 64 of A-Z a-z 0-9 . _ -";
    }
    if (in->name != NULL && blank(in->name)) {
        *field = "name";
        return "field 'name' must not be blank";
    }
    if (in->category != NULL && blank(in->category)) {
        *field = "category";
        return "field 'category' must not be blank";
    }
    if (in->currency != NULL && !currency_valid(in->currency)) {
        *field = "currency";
        return "field 'currency' must be an ISO 4217 code of three capital letters, such as EUR";
    }
    if (in->image_url != NULL && !url_valid(in->image_url)) {
        *field = "image_url";
        return "field 'image_url' must be an absolute http:// or https:// URL of URI characters "
               "(RFC 3986: encode others with %XX)";
    }
    for (size_t i = 0; i < in->ntags; i++) {
        if (blank(in->tags[i])) {
            *field = svc_arena_printf(a, "tags[%zu]", i);
            return svc_arena_printf(a, "field 'tags[%zu]' must not be blank", i);
        }
    }
    return NULL;
}

/* Reads a create body (or an import line) from OBJ into *NEW: 0, or SVC_EINVAL with the
 * reason in ERR (its path, the field). */
static int read_new(struct svc_arena *a, json_t *obj, struct prod_new *n,
                    struct svc_json_error *err)
{
    struct product_in in = {0};
    const char *why, *field = "";

    if (svc_json_read(obj, create_fields, &in, SVC_JSON_REJECT_UNKNOWN, a, err) != 0)
        return SVC_EINVAL;
    if ((why = product_problem(a, &in, &field)) != NULL) {
        snprintf(err->path, sizeof(err->path), "%s", field);
        snprintf(err->msg, sizeof(err->msg), "%s", why);
        return SVC_EINVAL;
    }
    *n = (struct prod_new){
        .sku = in.sku,
        .name = in.name,
        .description = in.description != NULL ? in.description : "",
        .category = in.category,
        .tags = in.tags,
        .ntags = in.ntags,
        .price_cents = in.price_cents,
        .currency = in.currency,
        .stock = in.stock,
        .image_url = in.image_url,
    };
    return 0;
}

/*
 * The version an If-Match header names: one strong entity tag as this API sends them in ETag,
 * "<seq_no>.<primary_term>". Without the header: 428 when REQUIRED, else *SEQ_NO -1.
 * Anything else ('*', weak tags, lists) is a 400, so a client never believes it is protected
 * when it is not.
 */
static int if_match(struct svc_req *req, struct svc_resp *resp, bool required, int64_t *seq_no,
                    int64_t *primary_term)
{
    const char *v = svc_req_header(req, "If-Match");
    const char *p;
    char *end;
    long long seq, term;

    *seq_no = -1;
    *primary_term = 0;
    if (v == NULL) {
        if (!required)
            return 0;
        return svc_resp_error(resp, SVC_EPRECONDREQUIRED,
                              "send If-Match with the product's ETag (\"<seq_no>.<term>\") to "
                              "change it");
    }
    while (*v == ' ' || *v == '\t')
        v++;
    if (v[0] != '"' || v[1] < '0' || v[1] > '9')
        goto bad;
    errno = 0;
    seq = strtoll(v + 1, &end, 10);
    if (errno != 0 || *end != '.' || end[1] < '1' || end[1] > '9')
        goto bad;
    p = end + 1;
    term = strtoll(p, &end, 10);
    if (errno != 0 || *end != '"')
        goto bad;
    for (end++; *end == ' ' || *end == '\t'; end++)
        ;
    if (*end != '\0')
        goto bad;
    *seq_no = seq;
    *primary_term = term;
    return 0;
bad:
    return svc_resp_invalid(resp, "If-Match",
                            "header 'If-Match' must be one ETag of this API, such as "
                            "\"12.1\", not '%.64s'",
                            v);
}

/* A member present with a value (null counts as absent, as for the field tables). */
static bool present(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return v != NULL && !json_is_null(v);
}

/* ---- output ----------------------------------------------------------------------------- */

static json_t *product_json(const struct product *p)
{
    json_t *tags = json_array();
    char version[48];

    for (size_t i = 0; i < p->ntags; i++)
        json_array_append_new(tags, json_string(p->tags[i]));
    snprintf(version, sizeof(version), "%" PRId64 ".%" PRId64, p->seq_no, p->primary_term);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:s?, s:o, "
                     "s:o, s:s}",
                     "id", p->id, "sku", p->sku, "name", p->name, "description",
                     p->description != NULL ? p->description : "", "category", p->category, "tags",
                     tags, "price_cents", (json_int_t)p->price_cents, "currency", p->currency,
                     "stock", (json_int_t)p->stock, "reserved", (json_int_t)p->reserved,
                     "available", (json_int_t)(p->stock - p->reserved), "sold", (json_int_t)p->sold,
                     "image_url", p->image_url, "created_at", svc_json_time(p->created_at_ms),
                     "updated_at", svc_json_time(p->updated_at_ms), "version", version);
}

static void set_etag(struct svc_req *req, struct svc_resp *resp, const struct product *p)
{
    svc_resp_header(resp, "ETag",
                    svc_arena_printf(svc_req_arena(req), "\"%" PRId64 ".%" PRId64 "\"", p->seq_no,
                                     p->primary_term));
}

static int render_product(struct svc_req *req, struct svc_resp *resp, int status,
                          const struct product *p)
{
    set_etag(req, resp, p);
    return svc_resp_json(resp, status, product_json(p));
}

static json_t *reservation_json(const struct prod_reservation *r)
{
    json_t *items = json_array();

    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(items, json_pack("{s:s, s:I}", "product_id", r->items[i].product_id,
                                               "quantity", (json_int_t)r->items[i].quantity));
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s?}", "id", r->id, "state", r->state,
                     "items", items, "expires_at", svc_json_time(r->expires_at_ms), "created_at",
                     svc_json_time(r->created_at_ms), "updated_at", svc_json_time(r->updated_at_ms),
                     "release_reason", r->release_reason);
}

/* ---- the catalog ------------------------------------------------------------------------ */

/* POST /v1/products: 201 with the product, its ETag and Location. */
static int product_create(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    struct svc_arena *a = svc_req_arena(req);
    struct svc_json_error err;
    struct prod_new n;
    struct product p;
    json_t *body;
    int rc;

    if ((rc = svc_query_only(req, resp, NULL)) != 0 || (rc = svc_req_json(req, resp, &body)) != 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (read_new(a, body, &n, &err) != 0)
        return svc_resp_invalid(resp, err.path, "%s", err.msg);
    memset(&p, 0, sizeof(p));
    rc = st->create(st->ctx, a, &n, svc_req_traceparent(req), &p);
    if (rc == PROD_ESKU_TAKEN) {
        char id[PROD_ID_LEN + 1];

        prod_id_for_sku(n.sku, id);
        svc_resp_error(resp, rc, "a product with SKU '%s' exists: /v1/products/%s", n.sku, id);
        svc_resp_problem_extend(resp, "field", json_string("sku"));
        return rc;
    }
    if (rc != 0)
        return store_error(resp, rc);
    svc_resp_header(resp, "Location", svc_arena_printf(a, "/v1/products/%s", p.id));
    return render_product(req, resp, 201, &p);
}

/* GET /v1/products/:id */
static int product_get(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct product p;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    memset(&p, 0, sizeof(p));
    rc = st->get(st->ctx, svc_req_arena(req), id, &p);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, rc, "product '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return render_product(req, resp, 200, &p);
}

/* PATCH /v1/products/:id with If-Match: 200 with the product and its new ETag. */
static int product_patch(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    struct svc_arena *a = svc_req_arena(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct product_in in = {0};
    struct prod_patch patch = {0};
    struct svc_json_error err;
    struct product p;
    const char *why, *field = "";
    int64_t seq_no, term;
    json_t *body;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0 ||
        (rc = if_match(req, resp, true, &seq_no, &term)) != 0 ||
        (rc = svc_req_json(req, resp, &body)) != 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (json_object_get(body, "sku") != NULL)
        return svc_resp_invalid(resp, "sku",
                                "field 'sku' cannot be changed: it is the product's identity "
                                "(create a product with the new SKU instead)");
    if (svc_json_read(body, patch_fields, &in, SVC_JSON_REJECT_UNKNOWN, a, &err) != 0)
        return svc_resp_invalid(resp, err.path, "%s", err.msg);
    if (in.image_url_raw != NULL && !json_is_null(in.image_url_raw)) {
        const char *u = json_string_value(in.image_url_raw);

        if (u == NULL || strlen(u) > PROD_URL_MAX || !url_valid(u))
            return svc_resp_invalid(resp, "image_url",
                                    "field 'image_url' must be an absolute http:// or https:// "
                                    "URL of URI characters (RFC 3986) of at most %d characters, "
                                    "or null to remove the image",
                                    PROD_URL_MAX);
        in.image_url = u;
    }
    if ((why = product_problem(a, &in, &field)) != NULL)
        return svc_resp_invalid(resp, field, "%s", why);
    patch.name = in.name;
    patch.description = in.description;
    patch.category = in.category;
    patch.tags = in.tags;
    patch.ntags = in.ntags;
    patch.price_cents = in.price_cents;
    patch.currency = in.currency;
    patch.stock = in.stock;
    patch.image_url = in.image_url;
    patch.set = (in.name != NULL ? PROD_SET_NAME : 0u) |
                (in.description != NULL ? PROD_SET_DESCRIPTION : 0u) |
                (in.category != NULL ? PROD_SET_CATEGORY : 0u) |
                (present(body, "tags") ? PROD_SET_TAGS : 0u) |
                (present(body, "price_cents") ? PROD_SET_PRICE : 0u) |
                (in.currency != NULL ? PROD_SET_CURRENCY : 0u) |
                (present(body, "stock") ? PROD_SET_STOCK : 0u) |
                (json_object_get(body, "image_url") != NULL ? PROD_SET_IMAGE_URL : 0u);
    if (patch.set == 0)
        return svc_resp_invalid(resp, "",
                                "the body must change at least one of name, description, "
                                "category, tags, price_cents, currency, stock, image_url");
    memset(&p, 0, sizeof(p));
    rc = st->update(st->ctx, a, id, seq_no, term, &patch, svc_req_traceparent(req), &p);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, rc, "product '%s' not found", id);
    if (rc == PROD_ERESERVED) {
        svc_resp_error(resp, rc,
                       "stock %" PRId64 " is below the units open reservations hold: commit or "
                       "release them first",
                       patch.stock);
        svc_resp_problem_extend(resp, "field", json_string("stock"));
        return rc;
    }
    if (rc != 0)
        return store_error(resp, rc);
    return render_product(req, resp, 200, &p);
}

/* DELETE /v1/products/:id, If-Match optional: 204. */
static int product_delete(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    int64_t seq_no, term;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0 ||
        (rc = if_match(req, resp, false, &seq_no, &term)) != 0)
        return rc;
    rc = st->remove(st->ctx, id, seq_no, term, svc_req_traceparent(req));
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, rc, "product '%s' not found", id);
    if (rc == PROD_ERESERVED)
        return svc_resp_error(resp, rc,
                              "product '%s' has units held by open reservations: it can be "
                              "deleted once they are committed or released",
                              id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_empty(resp, 204);
}

struct mget_in {
    char (*ids)[SVC_JSON_UUID_SIZE];
    size_t n;
};

static const struct svc_json_field uuid_field = {.type = SVC_JSON_UUID};

static const struct svc_json_field mget_fields[] = {
    {"ids", SVC_JSON_ARRAY, .required = true, .min = 1, .max = PROD_MGET_MAX, .elem = &uuid_field,
     .offset = offsetof(struct mget_in, ids), .count = offsetof(struct mget_in, n)},
    {0},
};

/* POST /v1/products:batchGet {ids}: the products found, in the order asked, and the ids not
 * found (the cart checks several products in one call). */
static int product_mget(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    struct svc_arena *a = svc_req_arena(req);
    struct mget_in in = {0};
    const char **ids;
    struct product *out;
    bool *found;
    json_t *items, *missing;
    int rc;

    if ((rc = svc_query_only(req, resp, NULL)) != 0 ||
        (rc = svc_req_read_json(req, resp, mget_fields, &in)) != 0)
        return rc;
    ids = svc_arena_alloc(a, in.n * sizeof(*ids));
    out = svc_arena_alloc(a, in.n * sizeof(*out));
    found = svc_arena_alloc(a, in.n * sizeof(*found));
    for (size_t i = 0; i < in.n; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(in.ids[i], in.ids[j]) == 0)
                return svc_resp_invalid(resp, svc_arena_printf(a, "ids[%zu]", i),
                                        "field 'ids[%zu]' repeats ids[%zu] ('%s')", i, j,
                                        in.ids[i]);
        ids[i] = in.ids[i];
        found[i] = false;
    }
    memset(out, 0, in.n * sizeof(*out));
    rc = st->mget(st->ctx, a, ids, in.n, out, found);
    if (rc != 0)
        return store_error(resp, rc);
    items = json_array();
    missing = json_array();
    for (size_t i = 0; i < in.n; i++)
        json_array_append_new(found[i] ? items : missing,
                              found[i] ? product_json(&out[i]) : json_string(ids[i]));
    return svc_resp_json(resp, 200, json_pack("{s:o, s:o}", "items", items, "missing", missing));
}

/*
 * POST /v1/products:import, NDJSON (one create body per line, at most IMPORT_LINES_MAX). Every
 * line is checked first: any bad line is a 400 listing the bad lines by number, and nothing is
 * written. Then the lines go to the store in one bulk call; each is created whole or not at
 * all, and the answer says which were created and which SKUs existed already (so importing the
 * same file twice is harmless).
 */
static int product_import(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    struct svc_arena *a = svc_req_arena(req);
    const char *ct = svc_req_header(req, "Content-Type");
    size_t len, n = 0, count = 0, nbad = 0, line = 0;
    const char *body = svc_req_body(req, &len), *p, *end;
    struct prod_new *in;
    size_t *line_of;
    struct product *out;
    int *rcs, rc;
    json_t *errors, *results;
    int64_t created = 0, existing = 0, failed = 0;

    if ((rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    if (ct == NULL || (strncmp(ct, "application/x-ndjson", 20) != 0 ||
                       (ct[20] != '\0' && ct[20] != ';' && ct[20] != ' ')))
        return svc_resp_error(resp, SVC_EMEDIATYPE,
                              "send the products as NDJSON, Content-Type application/x-ndjson: "
                              "one JSON object per line");
    if (body == NULL)
        body = "";
    in = svc_arena_alloc(a, IMPORT_LINES_MAX * sizeof(*in));
    line_of = svc_arena_alloc(a, IMPORT_LINES_MAX * sizeof(*line_of));
    errors = json_array();
    for (p = body, end = body + len; p < end; p = (p < end ? p + 1 : p)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        struct svc_json_error err;
        json_t *obj = NULL;
        bool empty = true;
        const char *dup = NULL;

        line++;
        for (size_t i = 0; i < l; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
                empty = false;
        if (empty) {
            p += l;
            continue;
        }
        if (++count > IMPORT_LINES_MAX) {
            json_decref(errors);
            return svc_resp_error(resp, SVC_ETOOBIG,
                                  "at most %d products per import (line %zu is one too many): "
                                  "split the file",
                                  IMPORT_LINES_MAX, line);
        }
        memset(&err, 0, sizeof(err));
        rc = svc_json_parse(p, l, 0, SVC_JSON_PARSE_OBJECT, &obj, &err);
        if (obj != NULL)
            svc_arena_defer(a, svc_json_decref, obj);
        if (rc == 0)
            rc = read_new(a, obj, &in[n], &err);
        /* Only valid lines are kept (and compared), so the duplicate check reads valid SKUs. */
        for (size_t j = 0; rc == 0 && j < n; j++)
            if (strcmp(in[j].sku, in[n].sku) == 0) {
                dup = svc_arena_printf(a, "SKU '%s' is already on line %zu", in[n].sku, line_of[j]);
                rc = SVC_EINVAL;
            }
        if (rc != 0) {
            if (nbad++ < IMPORT_ERRORS_MAX)
                json_array_append_new(errors, json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line,
                                                        "field", dup != NULL ? "sku" : err.path,
                                                        "detail", dup != NULL ? dup : err.msg));
        } else {
            line_of[n++] = line;
        }
        p += l;
    }
    if (nbad > 0) {
        svc_resp_error(resp, SVC_EINVAL,
                       "%zu of %zu lines are invalid (the first %d are listed in 'errors'): "
                       "nothing was imported",
                       nbad, count, IMPORT_ERRORS_MAX);
        svc_resp_problem_extend(resp, "errors", errors);
        return SVC_EINVAL;
    }
    json_decref(errors);
    if (n == 0)
        return svc_resp_invalid(resp, "",
                                "the body holds no product: send one JSON object per "
                                "line");
    out = svc_arena_alloc(a, n * sizeof(*out));
    rcs = svc_arena_alloc(a, n * sizeof(*rcs));
    memset(out, 0, n * sizeof(*out));
    for (size_t i = 0; i < n; i++)
        rcs[i] = SVC_EINTERNAL;
    rc = st->import(st->ctx, a, in, n, svc_req_traceparent(req), out, rcs);
    if (rc != 0)
        return store_error(resp, rc);
    results = json_array();
    for (size_t i = 0; i < n; i++) {
        char id[PROD_ID_LEN + 1];
        const char *status;

        prod_id_for_sku(in[i].sku, id);
        if (rcs[i] == 0) {
            status = "created";
            created++;
        } else if (rcs[i] == PROD_ESKU_TAKEN) {
            status = "exists";
            existing++;
        } else {
            status = rcs[i] == SVC_EUNAVAILABLE ? "unavailable" : "failed";
            failed++;
        }
        json_array_append_new(results,
                              json_pack("{s:I, s:s, s:s, s:s}", "line", (json_int_t)line_of[i],
                                        "status", status, "id", id, "sku", in[i].sku));
    }
    return svc_resp_json(resp, failed > 0 ? 207 : 200,
                         json_pack("{s:I, s:I, s:I, s:o}", "created", (json_int_t)created,
                                   "existing", (json_int_t)existing, "failed", (json_int_t)failed,
                                   "results", results));
}

/* ---- search ----------------------------------------------------------------------------- */

static const char *const sort_names[] = {"relevance", "price_asc", "price_desc", "newest", NULL};

/* A query parameter that must be a string of 1 to MAX characters that is not blank; *OUT NULL
 * when absent. Length in bytes of UTF-8 counts characters approximately from above: the bound
 * is in bytes, stated as such. */
static int query_text(struct svc_req *req, struct svc_resp *resp, const char *name, size_t max,
                      const char **out)
{
    const char *v = svc_req_query(req, name);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (strlen(v) > max || blank(v))
        return svc_resp_invalid(
            resp, name, "query parameter '%s' must be 1 to %zu bytes and not blank", name, max);
    *out = v;
    return 0;
}

/*
 * The cursor: "<sort>:<value>:<id>" made by this file, base64url. The value is the last hit's
 * sort value (a score, a price or a time). A cursor of another sort, or anything not made
 * here, is a 400 naming 'cursor'.
 */
static const char *cursor_make(struct svc_req *req, enum prod_sort sort, const struct prod_after *a)
{
    char raw[CURSOR_MAX];
    int n = sort == PROD_SORT_RELEVANCE
                ? snprintf(raw, sizeof(raw), "%d:%.9g:%s", (int)sort, a->score, a->id)
                : snprintf(raw, sizeof(raw), "%d:%" PRId64 ":%s", (int)sort, a->num, a->id);

    return svc_cursor_encode(req, raw, (size_t)n);
}

static int cursor_read(struct svc_req *req, struct svc_resp *resp, enum prod_sort sort,
                       struct prod_after *out, bool *present)
{
    const char *raw, *v, *id;
    char *end;
    int rc;

    *present = false;
    if ((rc = svc_query_cursor(req, resp, "cursor", CURSOR_MAX, &raw)) != 0 || raw == NULL)
        return rc;
    if (raw[0] != '0' + (int)sort || raw[1] != ':')
        return svc_resp_invalid(resp, "cursor",
                                "query parameter 'cursor' belongs to another sort: send the same "
                                "'sort' as for the page that gave it");
    v = raw + 2;
    id = strchr(v, ':');
    if (id == NULL || !svc_uuid_valid(id + 1))
        goto bad;
    errno = 0;
    if (sort == PROD_SORT_RELEVANCE) {
        out->score = strtod(v, &end);
        if (end != id || !isfinite(out->score))
            goto bad;
    } else {
        out->num = strtoll(v, &end, 10);
        if (end != id || errno != 0)
            goto bad;
    }
    memcpy(out->id, id + 1, PROD_ID_LEN);
    out->id[PROD_ID_LEN] = '\0';
    *present = true;
    return 0;
bad:
    return svc_resp_invalid(resp, "cursor",
                            "query parameter 'cursor' is not a cursor of this API: send back the "
                            "next_cursor of a page");
}

static json_t *buckets_json(const struct prod_bucket *b, size_t n, bool ranges)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *o =
            ranges ? json_pack("{s:s, s:o, s:o, s:I}", "key", b[i].key, "from",
                               b[i].from >= 0 ? json_integer(b[i].from) : json_null(), "to",
                               b[i].to >= 0 ? json_integer(b[i].to) : json_null(), "count",
                               (json_int_t)b[i].count)
                   : json_pack("{s:s, s:I}", "value", b[i].key, "count", (json_int_t)b[i].count);

        json_array_append_new(a, o);
    }
    return a;
}

/*
 * GET /v1/products?q=&category=&tag=&min_price=&max_price=&in_stock=&sort=&limit=&cursor=
 * One page of matching products with highlights, the total, and the facets (category, tag and
 * price-range counts over every match). Pages are walked with search_after: a product that
 * changes while walking does not make another repeat or be skipped.
 */
static int product_search(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const params[] = {"q",        "category", "tag",   "min_price", "max_price",
                                         "in_stock", "sort",     "limit", "cursor",    NULL};
    struct prod_store *st = store_of(req);
    struct prod_query q = {0};
    struct prod_after after;
    struct prod_results r;
    long long min_price, max_price, limit;
    int in_stock, sort, rc;
    bool has_after;
    json_t *items, *body;

    if ((rc = svc_query_only(req, resp, params)) != 0 ||
        (rc = query_text(req, resp, "q", (size_t)PROD_Q_MAX * 4, &q.q)) != 0 ||
        (rc = query_text(req, resp, "category", (size_t)PROD_CATEGORY_MAX * 4, &q.category)) != 0 ||
        (rc = query_text(req, resp, "tag", (size_t)PROD_TAG_MAX * 4, &q.tag)) != 0 ||
        (rc = svc_query_int(req, resp, "min_price", 0, PROD_PRICE_MAX, -1, &min_price)) != 0 ||
        (rc = svc_query_int(req, resp, "max_price", 0, PROD_PRICE_MAX, -1, &max_price)) != 0 ||
        (rc = svc_query_bool(req, resp, "in_stock", 0, &in_stock)) != 0 ||
        (rc = svc_query_enum(
             req, resp, "sort", sort_names,
             svc_req_query(req, "q") != NULL ? PROD_SORT_RELEVANCE : PROD_SORT_NEWEST, &sort)) !=
            0 ||
        (rc = svc_query_int(req, resp, "limit", 1, PROD_LIMIT_MAX, PROD_LIMIT_DEFAULT, &limit)) !=
            0)
        return rc;
    if (min_price >= 0 && max_price >= 0 && min_price > max_price)
        return svc_resp_invalid(resp, "min_price",
                                "query parameter 'min_price' (%lld) must not be above "
                                "'max_price' (%lld)",
                                min_price, max_price);
    /* Relevance without text is every score equal: newest is what a client wants then. */
    if (sort == PROD_SORT_RELEVANCE && q.q == NULL)
        sort = PROD_SORT_NEWEST;
    memset(&after, 0, sizeof(after));
    if ((rc = cursor_read(req, resp, (enum prod_sort)sort, &after, &has_after)) != 0)
        return rc;
    q.min_price = min_price;
    q.max_price = max_price;
    q.in_stock = in_stock == 1;
    q.sort = (enum prod_sort)sort;
    q.limit = (int)limit;
    q.after = has_after ? &after : NULL;
    memset(&r, 0, sizeof(r));
    rc = st->search(st->ctx, svc_req_arena(req), &q, &r);
    if (rc != 0)
        return store_error(resp, rc);
    items = json_array();
    for (size_t i = 0; i < r.n; i++) {
        json_t *o = product_json(&r.items[i].p);
        json_t *hl = json_object();

        if (r.items[i].name_html != NULL)
            json_object_set_new(hl, "name", json_string(r.items[i].name_html));
        if (r.items[i].description_html != NULL)
            json_object_set_new(hl, "description", json_string(r.items[i].description_html));
        /* The store leaves the full description out of search hits: the snippet is in
         * highlight.description, the whole text in GET /v1/products/{id}. */
        json_object_del(o, "description");
        json_object_set_new(o, "highlight", hl);
        if (q.sort == PROD_SORT_RELEVANCE)
            json_object_set_new(o, "score", json_real(r.items[i].score));
        json_array_append_new(items, o);
    }
    body = json_pack(
        "{s:o, s:I, s:{s:o, s:o, s:o}, s:s, s:o}", "items", items, "total", (json_int_t)r.total,
        "facets", "category", buckets_json(r.categories, r.ncategories, false), "tag",
        buckets_json(r.tags, r.ntags, false), "price", buckets_json(r.prices, r.nprices, true),
        "sort", sort_names[q.sort], "next_cursor",
        r.more ? json_string(cursor_make(req, q.sort, &r.next)) : json_null());
    return svc_resp_json(resp, 200, body);
}

/* GET /v1/products:suggest?prefix=&limit=: the names of the best products with a word
 * starting with PREFIX, for a search box. */
static int product_suggest(struct svc_req *req, struct svc_resp *resp)
{
    static const char *const params[] = {"prefix", "limit", NULL};
    struct prod_store *st = store_of(req);
    const char *prefix, **names = NULL;
    long long limit;
    size_t n = 0;
    json_t *a;
    int rc;

    if ((rc = svc_query_only(req, resp, params)) != 0 ||
        (rc = query_text(req, resp, "prefix", (size_t)PROD_PREFIX_MAX * 4, &prefix)) != 0 ||
        (rc = svc_query_int(req, resp, "limit", 1, PROD_SUGGEST_MAX, PROD_SUGGEST_MAX, &limit)) !=
            0)
        return rc;
    if (prefix == NULL)
        return svc_resp_invalid(resp, "prefix", "query parameter 'prefix' is required");
    rc = st->suggest(st->ctx, svc_req_arena(req), prefix, (int)limit, &names, &n);
    if (rc != 0)
        return store_error(resp, rc);
    a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return svc_resp_json(resp, 200, json_pack("{s:s, s:o}", "prefix", prefix, "suggestions", a));
}

/* ---- reservations ----------------------------------------------------------------------- */

struct item_in {
    char product_id[SVC_JSON_UUID_SIZE];
    int64_t quantity;
};

struct reserve_in {
    char reservation_id[SVC_JSON_UUID_SIZE];
    struct item_in *items;
    size_t n;
    int64_t ttl;
};

static const struct svc_json_field item_fields[] = {
    {"product_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct item_in, product_id)},
    {"quantity", SVC_JSON_INT, .required = true, .min = 1, .max = PROD_RES_QTY_MAX,
     .offset = offsetof(struct item_in, quantity)},
    {0},
};

static const struct svc_json_field item_field = {
    .type = SVC_JSON_OBJECT, .fields = item_fields, .size = sizeof(struct item_in)};

static const struct svc_json_field reserve_fields[] = {
    {"reservation_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct reserve_in, reservation_id)},
    {"items", SVC_JSON_ARRAY, .required = true, .min = 1, .max = PROD_RES_ITEMS_MAX,
     .elem = &item_field, .offset = offsetof(struct reserve_in, items),
     .count = offsetof(struct reserve_in, n)},
    {"ttl", SVC_JSON_INT, .min = 1, .max = PROD_RES_TTL_MAX,
     .offset = offsetof(struct reserve_in, ttl)},
    {0},
};

static int reservation_conflict(struct svc_resp *resp, int rc, const struct prod_reservation *r,
                                const char *what)
{
    if (r->release_reason != NULL)
        svc_resp_error(resp, rc, "reservation '%s' is %s (%s): it cannot be %s", r->id, r->state,
                       r->release_reason, what);
    else
        svc_resp_error(resp, rc, "reservation '%s' is %s: it cannot be %s", r->id, r->state, what);
    svc_resp_problem_extend(resp, "state", json_string(r->state));
    return rc;
}

/* POST /v1/reservations {reservation_id, items, ttl}: every line reserved, or none (409 naming
 * the short line). 201 when reserved now; 200 with Idempotent-Replayed when the reservation id
 * was seen before with the same lines, whatever its state now. */
static int reservation_create(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    struct svc_arena *a = svc_req_arena(req);
    struct reserve_in in = {.ttl = PROD_RES_TTL_DEFAULT};
    struct prod_res_item *items;
    struct prod_reservation r;
    struct prod_res_short s;
    bool replayed = false;
    int rc;

    if ((rc = svc_query_only(req, resp, NULL)) != 0 ||
        (rc = svc_req_read_json(req, resp, reserve_fields, &in)) != 0)
        return rc;
    items = svc_arena_alloc(a, in.n * sizeof(*items));
    for (size_t i = 0; i < in.n; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(in.items[i].product_id, in.items[j].product_id) == 0)
                return svc_resp_invalid(resp, svc_arena_printf(a, "items[%zu].product_id", i),
                                        "field 'items[%zu].product_id' repeats items[%zu]: one "
                                        "line per product",
                                        i, j);
        memcpy(items[i].product_id, in.items[i].product_id, sizeof(items[i].product_id));
        items[i].quantity = in.items[i].quantity;
    }
    memset(&r, 0, sizeof(r));
    memset(&s, 0, sizeof(s));
    rc = st->reserve(st->ctx, a, in.reservation_id, items, in.n, in.ttl * 1000,
                     svc_req_traceparent(req), &r, &s, &replayed);
    if (rc == PROD_ESTOCK || rc == SVC_ENOTFOUND) {
        const char *field = svc_arena_printf(a, "items[%d]", s.line);

        if (rc == PROD_ESTOCK)
            svc_resp_error(resp, rc,
                           "items[%d]: product '%s' has %" PRId64 " available, %" PRId64
                           " requested: nothing was reserved",
                           s.line, s.product_id, s.available, s.requested);
        else
            svc_resp_error(resp, SVC_EUNPROCESSABLE,
                           "items[%d]: product '%s' does not exist: nothing was reserved", s.line,
                           s.product_id);
        svc_resp_problem_extend(resp, "field", json_string(field));
        svc_resp_problem_extend(resp, "product_id", json_string(s.product_id));
        svc_resp_problem_extend(resp, "requested", json_integer(s.requested));
        svc_resp_problem_extend(resp, "available", json_integer(s.available));
        return rc == PROD_ESTOCK ? rc : SVC_EUNPROCESSABLE;
    }
    if (rc == SVC_EIDEMPOTENCY) {
        svc_resp_error(resp, rc,
                       "reservation '%s' exists with other lines: a reservation id is used once",
                       in.reservation_id);
        svc_resp_problem_extend(resp, "field", json_string("reservation_id"));
        return rc;
    }
    if (rc != 0)
        return store_error(resp, rc);
    svc_resp_header(resp, "Location", svc_arena_printf(a, "/v1/reservations/%s", r.id));
    if (replayed)
        svc_resp_header(resp, "Idempotent-Replayed", "true");
    return svc_resp_json(resp, replayed ? 200 : 201, reservation_json(&r));
}

/* GET /v1/reservations/:id */
static int reservation_get(struct svc_req *req, struct svc_resp *resp)
{
    struct prod_store *st = store_of(req);
    char id[SVC_UUID_STR_LEN + 1];
    struct prod_reservation r;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    memset(&r, 0, sizeof(r));
    rc = st->reservation_get(st->ctx, svc_req_arena(req), id, &r);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, rc, "reservation '%s' not found", id);
    if (rc != 0)
        return store_error(resp, rc);
    return svc_resp_json(resp, 200, reservation_json(&r));
}

typedef int (*reservation_step)(void *ctx, struct svc_arena *a, const char *id,
                                const char *traceparent, struct prod_reservation *out,
                                bool *replayed);

/* commit and release: 200 with the reservation; Idempotent-Replayed when it was already so. */
static int reservation_transition(struct svc_req *req, struct svc_resp *resp, bool commit)
{
    struct prod_store *st = store_of(req);
    reservation_step step = commit ? st->commit : st->release;
    char id[SVC_UUID_STR_LEN + 1];
    struct prod_reservation r;
    bool replayed = false;
    size_t len;
    int rc;

    if ((rc = svc_req_param_uuid(req, resp, "id", id)) != 0 ||
        (rc = svc_query_only(req, resp, NULL)) != 0)
        return rc;
    if (svc_req_body(req, &len) != NULL && len > 0)
        return svc_resp_invalid(resp, "", "this operation takes no body");
    memset(&r, 0, sizeof(r));
    rc = step(st->ctx, svc_req_arena(req), id, svc_req_traceparent(req), &r, &replayed);
    if (rc == SVC_ENOTFOUND)
        return svc_resp_error(resp, rc, "reservation '%s' not found", id);
    if (rc == PROD_ERES_STATE)
        return reservation_conflict(resp, rc, &r, commit ? "committed" : "released");
    if (rc != 0)
        return store_error(resp, rc);
    if (replayed)
        svc_resp_header(resp, "Idempotent-Replayed", "true");
    return svc_resp_json(resp, 200, reservation_json(&r));
}

static int reservation_commit(struct svc_req *req, struct svc_resp *resp)
{
    return reservation_transition(req, resp, true);
}

static int reservation_release(struct svc_req *req, struct svc_resp *resp)
{
    return reservation_transition(req, resp, false);
}

const struct svc_route prod_routes[] = {
    {SVC_GET, "/v1/products", product_search, 0, SMALL_BODY_MAX},
    {SVC_POST, "/v1/products", product_create, SVC_ROUTE_JSON, PRODUCT_BODY_MAX},
    {SVC_POST, "/v1/products:import", product_import, 0, IMPORT_BODY_MAX},
    {SVC_POST, "/v1/products:batchGet", product_mget, SVC_ROUTE_JSON, MGET_BODY_MAX},
    {SVC_GET, "/v1/products:suggest", product_suggest, 0, SMALL_BODY_MAX},
    {SVC_GET, "/v1/products/:id", product_get, 0, SMALL_BODY_MAX},
    {SVC_PATCH, "/v1/products/:id", product_patch, SVC_ROUTE_JSON, PRODUCT_BODY_MAX},
    {SVC_DELETE, "/v1/products/:id", product_delete, 0, SMALL_BODY_MAX},
    {SVC_POST, "/v1/reservations", reservation_create, SVC_ROUTE_JSON, RESERVE_BODY_MAX},
    {SVC_GET, "/v1/reservations/:id", reservation_get, 0, SMALL_BODY_MAX},
    {SVC_POST, "/v1/reservations/:id/commit", reservation_commit, SVC_ROUTE_JSON, SMALL_BODY_MAX},
    {SVC_POST, "/v1/reservations/:id/release", reservation_release, SVC_ROUTE_JSON, SMALL_BODY_MAX},
    SVC_ROUTES_END,
};

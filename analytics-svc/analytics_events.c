/*
 * analytics_events.c: what analytics-svc consumes, and the machinery around it: the decoding of
 * any platform event into a row (analytics.h's struct an_row), the batch the rows wait in until
 * the store writes them, the consumer group over ANALYTICS_TOPICS with its DLQ producer, and the
 * readiness and drain hooks. No engine call here: everything reaches ClickHouse through the
 * store interface.
 */
#include "analytics_params.h"
#include "analytics_svc.h"

#include "svc/alloc.h"
#include "svc/arena.h"
#include "svc/dep.h"
#include "svc/error.h"
#include "svc/event.h"
#include "svc/json.h"
#include "svc/kafka.h"
#include "svc/log.h"
#include "svc/time.h"
#include "svc/uuid.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The consumer's first retry of a failed flush, doubling up to the cap: ClickHouse back after
 * an outage is noticed within RETRY_MAX_MS. */
#define RETRY_FIRST_MS 200
#define RETRY_MAX_MS   5000
/* How long shutdown waits for DLQ copies already queued to be acknowledged. */
#define FLUSH_MS 5000
/* Kafka's own limit on a topic name. */
#define TOPIC_NAME_MAX 249

/* ---- the batch --------------------------------------------------------------------------- */

/*
 * The rows staged since the last successful flush. Everything a row points to (strings, lines)
 * lives in ARENA, which is replaced once the store has the rows: a batch's memory is bounded
 * by BATCH_MAX records, however long the consumer runs. SLOTS is an open-addressing set of row
 * indexes by id (NSLOTS a power of two, at least twice the rows), so an id staged again in the
 * same batch is found without a scan.
 */
struct an_batch {
    const struct an_store *store;
    struct svc_arena *arena;
    struct an_row *rows;
    size_t n, cap;
    size_t *slots; /* row index + 1; 0 for an empty slot */
    size_t nslots;
};

struct an_batch *an_batch_new(const struct an_store *store)
{
    struct an_batch *b = svc_calloc(1, sizeof(*b));

    b->store = store;
    b->arena = svc_arena_new();
    return b;
}

void an_batch_free(struct an_batch *b)
{
    if (b == NULL)
        return;
    svc_arena_free(b->arena);
    free(b->rows);
    free(b->slots);
    free(b);
}

size_t an_batch_staged(const struct an_batch *b)
{
    return b->n;
}

/* FNV-1a of an id (lowercase text, so equal ids hash alike). */
static size_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *id != '\0'; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)h;
}

/* The slot where ID is, or the empty slot where it would go. */
static size_t *id_slot(const struct an_batch *b, const char *id)
{
    size_t mask = b->nslots - 1;

    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        size_t *s = &b->slots[i];

        if (*s == 0 || strcmp(b->rows[*s - 1].id, id) == 0)
            return s;
    }
}

/* Room for one more row, and a set at most half full. */
static void batch_grow(struct an_batch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap == 0 ? 64 : b->cap * 2;
        b->rows = svc_realloc(b->rows, b->cap * sizeof(*b->rows));
    }
    if (2 * (b->n + 1) > b->nslots) {
        size_t n = b->nslots == 0 ? 128 : b->nslots * 2;

        free(b->slots);
        b->nslots = n;
        b->slots = svc_calloc(n, sizeof(*b->slots));
        for (size_t i = 0; i < b->n; i++)
            *id_slot(b, b->rows[i].id) = i + 1;
    }
}

static void batch_reset(struct an_batch *b)
{
    svc_arena_free(b->arena);
    b->arena = svc_arena_new();
    b->n = 0;
    if (b->slots != NULL)
        memset(b->slots, 0, b->nslots * sizeof(*b->slots));
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* What the typed columns are read from, per kind of event (analytics.h, struct an_row). Each
 * table lists only the members the read models rely on; the rest of a schema is kept in the
 * data column as it came, and unknown members are allowed (a schema may grow). */
struct line_data {
    char product_id[SVC_JSON_UUID_SIZE];
    const char *name;
    int64_t quantity;
    int64_t price_cents;
};

struct typed_data {
    char id[SVC_JSON_UUID_SIZE];
    char user_id[SVC_JSON_UUID_SIZE];
    char order_id[SVC_JSON_UUID_SIZE];
    char product_id[SVC_JSON_UUID_SIZE];
    const char *status;
    const char *currency;
    int64_t quantity;
    int64_t amount_cents;
    int64_t price_cents;
    int64_t total_cents;
    struct line_data *lines;
    size_t nlines;
};

static const struct svc_json_field user_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, id)},
    {0},
};

static const struct svc_json_field money_fields[] = {
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, user_id)},
    {"amount_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct typed_data, amount_cents)},
    {"status", SVC_JSON_STRING, .max = 32, .offset = offsetof(struct typed_data, status)},
    {0},
};

static const struct svc_json_field cart_added_fields[] = {
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, user_id)},
    {"product_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct typed_data, product_id)},
    {"quantity", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct typed_data, quantity)},
    {"price_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct typed_data, price_cents)},
    {"currency", SVC_JSON_STRING, .max = 3, .offset = offsetof(struct typed_data, currency)},
    {0},
};

static const struct svc_json_field cart_removed_fields[] = {
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, user_id)},
    {"product_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct typed_data, product_id)},
    {0},
};

static const struct svc_json_field order_line_fields[] = {
    {"product_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct line_data, product_id)},
    {"name", SVC_JSON_STRING, .max = 200, .offset = offsetof(struct line_data, name)},
    {"quantity", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct line_data, quantity)},
    {"price_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct line_data, price_cents)},
    {0},
};

static const struct svc_json_field order_line = {
    .type = SVC_JSON_OBJECT, .fields = order_line_fields, .size = sizeof(struct line_data)};

static const struct svc_json_field order_fields[] = {
    {"order_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, order_id)},
    {"user_id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, user_id)},
    {"status", SVC_JSON_STRING, .required = true, .min = 1, .max = 32,
     .offset = offsetof(struct typed_data, status)},
    {"lines", SVC_JSON_ARRAY, .required = true, .min = 1, .max = AN_LINES_MAX, .elem = &order_line,
     .offset = offsetof(struct typed_data, lines), .count = offsetof(struct typed_data, nlines)},
    {"total_cents", SVC_JSON_INT, .required = true, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct typed_data, total_cents)},
    {"currency", SVC_JSON_STRING, .required = true, .min = 3, .max = 3,
     .offset = offsetof(struct typed_data, currency)},
    {0},
};

static const struct svc_json_field product_fields[] = {
    {"id", SVC_JSON_UUID, .required = true, .offset = offsetof(struct typed_data, id)},
    {"price_cents", SVC_JSON_INT, .min = 0, .max = INT64_MAX,
     .offset = offsetof(struct typed_data, price_cents)},
    {"currency", SVC_JSON_STRING, .max = 3, .offset = offsetof(struct typed_data, currency)},
    {0},
};

static const struct svc_json_field stock_item_fields[] = {
    {"product_id", SVC_JSON_UUID, .required = true,
     .offset = offsetof(struct line_data, product_id)},
    {"quantity", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct line_data, quantity)},
    {0},
};

static const struct svc_json_field stock_item = {
    .type = SVC_JSON_OBJECT, .fields = stock_item_fields, .size = sizeof(struct line_data)};

static const struct svc_json_field stock_fields[] = {
    {"state", SVC_JSON_STRING, .required = true, .min = 1, .max = 32,
     .offset = offsetof(struct typed_data, status)},
    {"items", SVC_JSON_ARRAY, .required = true, .min = 1, .max = AN_LINES_MAX, .elem = &stock_item,
     .offset = offsetof(struct typed_data, lines), .count = offsetof(struct typed_data, nlines)},
    {0},
};

enum kind { K_OTHER, K_USER, K_MONEY, K_CART_ADDED, K_CART_REMOVED, K_ORDER, K_PRODUCT, K_STOCK };

static const struct kind_def {
    const char *type;
    enum kind kind;
    const struct svc_json_field *fields;
} kinds[] = {
    {EV_USER_REGISTERED, K_USER, user_fields},
    {EV_USER_UPDATED, K_USER, user_fields},
    {EV_USER_DELETED, K_USER, user_fields},
    {EV_PAYMENT_CAPTURED, K_MONEY, money_fields},
    {EV_PAYMENT_REFUNDED, K_MONEY, money_fields},
    {EV_WALLET_CREDITED, K_MONEY, money_fields},
    {EV_CART_ITEM_ADDED, K_CART_ADDED, cart_added_fields},
    {EV_CART_ITEM_REMOVED, K_CART_REMOVED, cart_removed_fields},
    {EV_CHECKOUT_STARTED, K_ORDER, order_fields},
    {EV_ORDER_PLACED, K_ORDER, order_fields},
    {EV_ORDER_FAILED, K_ORDER, order_fields},
    {EV_PRODUCT_CREATED, K_PRODUCT, product_fields},
    {EV_PRODUCT_UPDATED, K_PRODUCT, product_fields},
    {EV_PRODUCT_DELETED, K_PRODUCT, product_fields},
    {EV_STOCK_RESERVED, K_STOCK, stock_fields},
    {EV_STOCK_COMMITTED, K_STOCK, stock_fields},
    {EV_STOCK_RELEASED, K_STOCK, stock_fields},
    {NULL, K_OTHER, NULL},
};

static const struct kind_def *kind_of(const char *type)
{
    const struct kind_def *k = kinds;

    while (k->type != NULL && strcmp(k->type, type) != 0)
        k++;
    return k;
}

/* Copies of what the row needs, into the batch's arena. */
static const char *keep(struct an_batch *b, const char *s)
{
    return s != NULL ? svc_arena_strdup(b->arena, s) : "";
}

static const struct an_line *keep_lines(struct an_batch *b, const struct typed_data *d)
{
    struct an_line *l = svc_arena_alloc(b->arena, d->nlines * sizeof(*l));

    for (size_t i = 0; i < d->nlines; i++) {
        l[i].product_id = keep(b, d->lines[i].product_id);
        l[i].name = keep(b, d->lines[i].name);
        l[i].quantity = d->lines[i].quantity;
        l[i].price_cents = d->lines[i].price_cents;
    }
    return l;
}

/* Fills ROW's typed values from EV's data as kind K says. 0, or SVC_EINVAL with why in
 * REASON. */
static int decode_typed(struct an_batch *b, const struct kind_def *k, const struct svc_event *ev,
                        struct svc_arena *tmp, struct an_row *row, struct svc_buf *reason)
{
    struct typed_data d;
    struct svc_json_error err;

    if (k->fields == NULL)
        return 0;
    memset(&d, 0, sizeof(d));
    if (svc_json_read(ev->data, k->fields, &d, 0, tmp, &err) != 0) {
        svc_buf_addf(reason, "event '%s' (%s): data %s", ev->id, ev->type, err.msg);
        return SVC_EINVAL;
    }
    switch (k->kind) {
    case K_USER:
        row->user_id = keep(b, d.id);
        break;
    case K_MONEY:
        row->user_id = keep(b, d.user_id);
        row->amount_cents = d.amount_cents;
        row->status = keep(b, d.status);
        break;
    case K_CART_ADDED:
        row->amount_cents = d.price_cents;
        row->quantity = d.quantity;
        row->currency = keep(b, d.currency);
        row->user_id = keep(b, d.user_id);
        row->product_id = keep(b, d.product_id);
        break;
    case K_CART_REMOVED:
        row->user_id = keep(b, d.user_id);
        row->product_id = keep(b, d.product_id);
        break;
    case K_ORDER:
        row->user_id = keep(b, d.user_id);
        row->order_id = keep(b, d.order_id);
        row->status = keep(b, d.status);
        row->currency = keep(b, d.currency);
        row->amount_cents = d.total_cents;
        row->lines = keep_lines(b, &d);
        row->nlines = d.nlines;
        break;
    case K_PRODUCT:
        row->product_id = keep(b, d.id);
        row->amount_cents = d.price_cents;
        row->currency = keep(b, d.currency);
        break;
    case K_STOCK:
        row->status = keep(b, d.status);
        row->lines = keep_lines(b, &d);
        row->nlines = d.nlines;
        break;
    case K_OTHER:
        break;
    }
    return 0;
}

/* Decodes EV, read at REC, into ROW. 0 or SVC_EINVAL with why in REASON. */
static int decode(struct an_batch *b, const struct svc_kafka_record *rec,
                  const struct svc_event *ev, struct svc_arena *tmp, struct svc_buf *json,
                  struct an_row *row, struct svc_buf *reason)
{
    int rc;

    memset(row, 0, sizeof(*row));
    /* What /v1/events accepts in its type parameter (analytics_params.h): a type outside it
     * could be stored but never asked for. */
    if (!an_type_valid(ev->type)) {
        svc_buf_addf(reason,
                     "event '%s': attribute 'type' must be lowercase words joined by dots, at "
                     "most %d characters",
                     ev->id, AN_TYPE_MAX);
        return SVC_EINVAL;
    }
    if (!svc_rfc3339_parse(ev->time, &row->event_ms) || row->event_ms < 0) {
        svc_buf_addf(reason, "event '%s' (%s): attribute 'time' must be after 1970", ev->id,
                     ev->type);
        return SVC_EINVAL;
    }
    /* Ids are compared as text in a batch and stored as UUIDs: one spelling for both. */
    for (size_t i = 0; i < AN_ID_LEN; i++)
        row->id[i] =
            (char)(ev->id[i] >= 'A' && ev->id[i] <= 'F' ? ev->id[i] - 'A' + 'a' : ev->id[i]);
    row->id[AN_ID_LEN] = '\0';
    row->user_id = row->order_id = row->product_id = row->status = row->currency = "";
    rc = decode_typed(b, kind_of(ev->type), ev, tmp, row, reason);
    if (rc != 0)
        return rc;
    if (svc_json_dump(json, ev->data) != 0) {
        svc_buf_addf(reason, "event '%s' (%s): data cannot be written as JSON", ev->id, ev->type);
        return SVC_EINVAL;
    }
    row->type = keep(b, ev->type);
    row->source = keep(b, ev->source);
    row->subject = keep(b, ev->subject);
    row->topic = keep(b, rec->topic);
    row->partition = rec->partition;
    row->offset = rec->offset;
    row->ingest_ms = svc_wall_ms();
    row->data = svc_arena_strndup(b->arena, svc_buf_str(json), json->len);
    return 0;
}

enum svc_ev_result an_stage_record(const struct svc_kafka_record *rec, struct svc_buf *reason,
                                   void *batch)
{
    struct an_batch *b = batch;
    char err[SVC_EVENT_ERR_MAX];
    struct svc_event *ev = NULL;
    struct svc_arena *tmp;
    struct svc_buf json = SVC_BUF_INIT;
    struct an_row row;
    size_t *slot;
    int rc;

    if (rec->value == NULL) {
        svc_buf_adds(reason, "record without a value (a tombstone) is not an event");
        return SVC_EV_POISON;
    }
    rc = svc_event_parse(rec->value, rec->value_len, &ev, err, sizeof(err));
    if (rc != 0) {
        svc_buf_addf(reason, "not a CloudEvent: %s", err);
        return SVC_EV_POISON;
    }
    /* The arrays svc_json_read() allocates live only until they are copied into the row. */
    tmp = svc_arena_new();
    rc = decode(b, rec, ev, tmp, &json, &row, reason);
    svc_buf_release(&json);
    svc_arena_free(tmp);
    svc_event_free(ev);
    if (rc != 0)
        return SVC_EV_POISON;

    batch_grow(b);
    slot = id_slot(b, row.id);
    if (*slot != 0) /* already staged: the first copy is the one written */
        return SVC_EV_DONE;
    b->rows[b->n] = row;
    *slot = ++b->n;
    return SVC_EV_DONE;
}

int an_flush(void *batch)
{
    struct an_batch *b = batch;
    const struct an_store *st = b->store;
    size_t inserted = 0, ndeleted = 0;
    int rc;

    /* Failures are not logged here: the store logs what ClickHouse said, and the consumer logs
     * the batch left unwritten and its retries, rate-limited. */
    if (b->n == 0)
        return 0;
    rc = st->insert(st->ctx, b->rows, b->n, &inserted);
    if (rc != 0)
        return rc;
    /* The batch's deleted users, recorded at once: their later events go in pseudonymised,
     * and the erasure sweep pseudonymises what is stored (this batch's rows included). A
     * failure here keeps the batch: the insert again skips every id it already holds, and
     * forget_users is idempotent. */
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->rows[i].type, EV_USER_DELETED) == 0)
            ndeleted++;
    if (ndeleted > 0) {
        const char **ids = svc_calloc(ndeleted, sizeof(*ids));
        size_t k = 0;

        for (size_t i = 0; i < b->n; i++)
            if (strcmp(b->rows[i].type, EV_USER_DELETED) == 0)
                ids[k++] = b->rows[i].user_id;
        rc = st->forget_users(st->ctx, ids, k);
        free(ids);
        if (rc != 0)
            return rc;
        svc_log_info("%zu deleted users recorded for erasure", k);
    }
    svc_logf(SVC_LOG_DEBUG, "batch of %zu events written, %zu of them new", b->n, inserted);
    batch_reset(b);
    return 0;
}

/* ---- the consumer ------------------------------------------------------------------------ */

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Splits S->cfg.topics into S->topic_list. 0, or SVC_EINVAL (logged) for a list that names no
 * topic, an empty or invalid name, the same topic twice, or more than AN_TOPICS_MAX. */
static int split_topics(struct an_svc *s)
{
    size_t n = 0;
    char *p;

    s->topic_store = svc_strdup(s->cfg.topics);
    p = s->topic_store;
    for (;;) {
        char *name = p, *end = strchr(p, ',');
        size_t len;

        if (end != NULL)
            *end = '\0';
        /* Spaces around a name are a typing habit ("a, b"), not part of it. */
        while (*name == ' ')
            name++;
        len = strlen(name);
        while (len > 0 && name[len - 1] == ' ')
            name[--len] = '\0';
        if (len == 0 || len > TOPIC_NAME_MAX) {
            svc_log_error("ANALYTICS_TOPICS '%s': topic %zu is empty or longer than %d characters",
                          s->cfg.topics, n + 1, TOPIC_NAME_MAX);
            return SVC_EINVAL;
        }
        for (size_t i = 0; i < len; i++)
            if (!topic_char(name[i])) {
                svc_log_error("ANALYTICS_TOPICS '%s': topic '%s' may hold only letters, digits, "
                              "'.', '_' and '-'",
                              s->cfg.topics, name);
                return SVC_EINVAL;
            }
        for (size_t i = 0; i < n; i++)
            if (strcmp(s->topic_list[i], name) == 0) {
                svc_log_error("ANALYTICS_TOPICS '%s': topic '%s' is named twice", s->cfg.topics,
                              name);
                return SVC_EINVAL;
            }
        if (n == AN_TOPICS_MAX) {
            svc_log_error("ANALYTICS_TOPICS '%s': more than %d topics", s->cfg.topics,
                          AN_TOPICS_MAX);
            return SVC_EINVAL;
        }
        s->topic_list[n++] = name;
        if (end == NULL)
            break;
        p = end + 1;
    }
    s->topic_list[n] = NULL;
    return 0;
}

static int consumer_lag(void *ctx, const char *topic, int64_t *lag)
{
    return svc_consumer_lag(ctx, topic, lag);
}

int an_consumer_init(void *svc)
{
    struct an_svc *s = svc;
    struct svc_kafka_config kc = {
        .brokers = s->cfg.kafka_brokers,
        .client_id = "analytics-svc",
    };
    struct svc_consumer_config cc = {
        .kafka = &kc,
        .group_id = s->cfg.group,
        .topics = s->topic_list,
        .handler = an_stage_record,
        .retry_initial_ms = RETRY_FIRST_MS,
        .retry_max_ms = RETRY_MAX_MS,
        .flush = an_flush,
        .batch_max = s->cfg.batch_max,
        .batch_age_ms = (int)s->cfg.batch_age_ms,
    };
    int rc;

    rc = split_topics(s);
    if (rc != 0)
        goto fail;
    s->app.topics = s->topic_list;
    s->batch = an_batch_new(&s->app.store);
    cc.arg = s->batch;
    /* A producer of our own for the DLQ, so /readyz can say whether a broker is up. */
    rc = svc_producer_new(&kc, &s->dlq);
    if (rc != 0)
        goto fail;
    cc.dlq = s->dlq;
    rc = svc_consumer_new(&cc, &s->consumer);
    if (rc != 0)
        goto fail;
    s->app.lag_ctx = s->consumer;
    s->app.lag = consumer_lag;
    rc = svc_consumer_start(s->consumer);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    /* The fini hook runs only after a successful init: what this one made goes now. */
    an_consumer_fini(s);
    return rc;
}

void an_consumer_fini(void *svc)
{
    struct an_svc *s = svc;

    s->app.lag = NULL;
    s->app.lag_ctx = NULL;
    svc_consumer_free(s->consumer); /* stops first: a last flush, its offsets committed */
    s->consumer = NULL;
    svc_producer_close(&s->dlq, FLUSH_MS);
    an_batch_free(s->batch);
    s->batch = NULL;
    s->app.topics = NULL;
    free(s->topic_store);
    s->topic_store = NULL;
}

/* ---- the erasure sweep ------------------------------------------------------------------- */

static int64_t erase_round(void *svc)
{
    struct an_svc *s = svc;
    const struct an_store *st = &s->app.store;
    size_t erased = 0;

    if (st->erase_pending(st->ctx, &erased) != 0)
        return SVC_WORKER_INTERVAL; /* logged by the store; the users stay pending */
    if (erased > 0)
        svc_log_info("%zu deleted users' rows pseudonymised", erased);
    /* A full chunk: there may be more pending; go on at once. */
    return erased >= 400 ? 0 : SVC_WORKER_INTERVAL;
}

int an_eraser_init(void *svc)
{
    struct an_svc *s = svc;

    s->eraser = svc_worker_new("erasure sweep", s->cfg.erase_every_ms, erase_round, s);
    return svc_worker_start(s->eraser);
}

void an_eraser_fini(void *svc)
{
    struct an_svc *s = svc;

    svc_worker_free(s->eraser);
    s->eraser = NULL;
}

/* ---- readiness and drain ----------------------------------------------------------------- */

void an_drain(void *svc)
{
    struct an_svc *s = svc;

    if (s->consumer != NULL)
        svc_consumer_stop(s->consumer);
    svc_worker_stop(s->eraser);
}

void an_ready(void *svc, struct svc_health *h)
{
    struct an_svc *s = svc;

    svc_dep_report(an_ch_dep(s->ch), h, NULL);
    if (s->dlq != NULL)
        svc_dep_report(svc_producer_dep(s->dlq), h, "events wait in their topics until it is back");
    /* Not ready while the group gives it nothing, or a record is stuck (kafka.h). */
    svc_dep_report(svc_consumer_dep(s->consumer), h, NULL);
}

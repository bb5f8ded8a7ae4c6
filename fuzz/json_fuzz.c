/*
 * Fuzz target for request bodies: arbitrary bytes go through svc_json_parse() with a cap and,
 * when they parse, through svc_json_read() with a table shaped like a real request (strings,
 * integers, a UUID, an enum, a nested object, an array of objects holding an array of
 * strings), with and without unknown fields rejected, and back out through svc_json_dump().
 * Besides crashes and leaks it checks what callers rely on: every failure says why, and what
 * a successful read hands over meets the table's bounds.
 */
#include "svc/arena.h"
#include "svc/buf.h"
#include "svc/error.h"
#include "svc/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct line {
    const char *sku;
    int64_t qty;
    const char **tags;
    size_t ntags;
};

struct address {
    const char *city;
    char ref[SVC_JSON_UUID_SIZE];
};

struct req {
    char id[SVC_JSON_UUID_SIZE];
    const char *email;
    int64_t count;
    bool gift;
    double score;
    int status;
    struct address address;
    struct line *lines;
    size_t nlines;
    json_t *meta;
};

static const struct svc_json_field tag = {.type = SVC_JSON_STRING, .min = 1, .max = 8};

static const struct svc_json_field line_fields[] = {
    {"sku", SVC_JSON_STRING, .required = true, .min = 1, .max = 16,
     .offset = offsetof(struct line, sku)},
    {"qty", SVC_JSON_INT, .required = true, .min = 1, .max = INT64_MAX,
     .offset = offsetof(struct line, qty)},
    {"tags", SVC_JSON_ARRAY, .max = 4, .elem = &tag, .offset = offsetof(struct line, tags),
     .count = offsetof(struct line, ntags)},
    {0},
};

static const struct svc_json_field line = {
    .type = SVC_JSON_OBJECT, .fields = line_fields, .size = sizeof(struct line)};

static const struct svc_json_field address_fields[] = {
    {"city", SVC_JSON_STRING, .required = true, .min = 1, .max = 50,
     .offset = offsetof(struct address, city)},
    {"ref", SVC_JSON_UUID, .offset = offsetof(struct address, ref)},
    {0},
};

static const char *const statuses[] = {"new", "paid", "shipped", NULL};

static const struct svc_json_field req_fields[] = {
    {"id", SVC_JSON_UUID, .offset = offsetof(struct req, id)},
    {"email", SVC_JSON_STRING, .required = true, .min = 3, .max = 254,
     .offset = offsetof(struct req, email)},
    {"count", SVC_JSON_INT, .min = -10, .max = 10, .offset = offsetof(struct req, count)},
    {"gift", SVC_JSON_BOOL, .offset = offsetof(struct req, gift)},
    {"score", SVC_JSON_NUMBER, .fmin = 0, .fmax = 5, .offset = offsetof(struct req, score)},
    {"status", SVC_JSON_ENUM, .choices = statuses, .offset = offsetof(struct req, status)},
    {"address", SVC_JSON_OBJECT, .fields = address_fields, .offset = offsetof(struct req, address)},
    {"lines", SVC_JSON_ARRAY, .required = true, .min = 1, .max = 50, .elem = &line,
     .offset = offsetof(struct req, lines), .count = offsetof(struct req, nlines)},
    {"meta", SVC_JSON_ANY, .offset = offsetof(struct req, meta)},
    {0},
};

/* Characters in S, which must be valid UTF-8 (jansson's promise, kept by the reader). */
static size_t chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void check_error(int rc, const struct svc_json_error *err)
{
    if (rc == 0)
        return;
    if (err->msg[0] == '\0' || strlen(err->msg) >= SVC_JSON_MSG_MAX ||
        strlen(err->path) >= SVC_JSON_PATH_MAX)
        abort();
    if (rc != SVC_EINVAL && rc != SVC_EJSON && rc != SVC_ETOOBIG)
        abort(); /* the table is right, so SVC_EINTERNAL would be a bug */
}

static void check_req(const struct req *r)
{
    size_t n = chars(r->email);

    if (n < 3 || n > 254 || r->count < -10 || r->count > 10 || r->score < 0 || r->score > 5 ||
        r->status < 0 || r->status > 2 || r->nlines < 1 || r->nlines > 50)
        abort();
    if (r->id[0] != '\0' && strlen(r->id) != SVC_JSON_UUID_SIZE - 1)
        abort();
    for (size_t i = 0; i < r->nlines; i++) {
        const struct line *l = &r->lines[i];

        if (chars(l->sku) < 1 || chars(l->sku) > 16 || l->qty < 1 || l->ntags > 4)
            abort();
        for (size_t t = 0; t < l->ntags; t++)
            if (chars(l->tags[t]) < 1 || chars(l->tags[t]) > 8)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned read_flags[] = {0, SVC_JSON_REJECT_UNKNOWN};
    struct svc_arena *arena = svc_arena_new();
    struct svc_buf out;
    struct svc_json_error err;
    json_t *root = NULL;
    int rc;

    /* A cap well inside libFuzzer's default input size, so both sides of it are explored. */
    rc = svc_json_parse((const char *)data, size, 2048, 0, &root, &err);
    check_error(rc, &err);
    if (rc == 0) {
        svc_arena_defer(arena, svc_json_decref, root);
        for (size_t i = 0; i < sizeof(read_flags) / sizeof(read_flags[0]); i++) {
            struct req r;

            memset(&r, 0, sizeof(r));
            rc = svc_json_read(root, req_fields, &r, read_flags[i], arena, &err);
            check_error(rc, &err);
            if (rc == 0)
                check_req(&r);
        }
        svc_buf_init(&out, 4096);
        rc = svc_json_dump(&out, root);
        if (rc != 0 && rc != SVC_ETOOBIG)
            abort();
        svc_buf_release(&out);
    }
    svc_arena_free(arena);
    return 0;
}

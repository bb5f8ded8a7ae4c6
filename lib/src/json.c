#include "svc/json.h"

#include "svc/arena.h"
#include "svc/error.h"
#include "svc/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What svc_json_read() carries down the tree: the path of the value being read is built in
 * PATH as it descends and cut back as it returns. */
struct reader {
    struct svc_arena *arena;
    unsigned flags;
    struct svc_json_error *err;
    char path[SVC_JSON_PATH_MAX];
    size_t len;
};

/* Characters (code points) in the N bytes at S, or -1 when they are not valid UTF-8. */
static int64_t utf8_count(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int64_t count = 0;
    size_t i = 0, len;

    while (i < n) {
        if ((len = svc_utf8_len(p + i, n - i)) == 0)
            return -1;
        i += len;
        count++;
    }
    return count;
}

/* The code point of the valid UTF-8 sequence of LEN bytes at P. */
static uint32_t decode(const unsigned char *p, size_t len)
{
    static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t c = p[0] & lead_mask[len];

    for (size_t i = 1; i < len; i++)
        c = (c << 6) | (p[i] & 0x3f);
    return c;
}

/* What C is, when display text of kind TEXT may not hold it; NULL when it may. */
static const char *refused_in_text(uint32_t c, enum svc_json_text text)
{
    if (c == '\t' || c == '\n' || c == '\r')
        return text == SVC_JSON_TEXT_BLOCK ? NULL : "control characters";
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
        return "control characters";
    if (c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
        (c >= 0x2066 && c <= 0x2069))
        return "bidirectional controls";
    if ((c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff)
        return "zero-width characters";
    return NULL;
}

/* Where to cut S (N bytes) to fit in CAP bytes with a NUL: never inside a UTF-8 sequence, so
 * a cut message stays valid text. */
static size_t fit(const char *s, size_t n, size_t cap)
{
    if (n < cap)
        return n;
    n = cap - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

static void set_path(struct svc_json_error *err, const char *path, size_t n)
{
    n = fit(path, n, sizeof(err->path));
    memcpy(err->path, path, n);
    err->path[n] = '\0';
}

static void set_msg(struct svc_json_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_msg(struct svc_json_error *err, const char *fmt, ...)
{
    char tmp[SVC_JSON_MSG_MAX + 64];
    va_list ap;
    int n;
    size_t len;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    len = n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
    len = fit(tmp, len, sizeof(err->msg));
    memcpy(err->msg, tmp, len);
    err->msg[len] = '\0';
}

static void clear_error(struct svc_json_error *err)
{
    err->path[0] = err->msg[0] = '\0';
    err->line = err->column = 0;
}

/* ---- parsing ---------------------------------------------------------------------------- */

int svc_json_parse(const char *body, size_t len, size_t max, unsigned flags, json_t **out,
                   struct svc_json_error *err)
{
    json_error_t jerr;
    json_t *root;
    size_t i;

    *out = NULL;
    clear_error(err);
    if (max != 0 && len > max) {
        set_msg(err, "request body is larger than %zu bytes", max);
        return SVC_ETOOBIG;
    }
    i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len) {
        /* jansson would say "unexpected token near end of file" at column 0. */
        set_msg(err, "malformed JSON: the request body is empty");
        return SVC_EJSON;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        /* jansson allocates with malloc(), not svc_malloc(): its running out is not the
         * client's fault. */
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            set_msg(err, "out of memory parsing the request body");
            return SVC_ENOMEM;
        }
        err->line = jerr.line;
        err->column = jerr.column;
        /* The client never heard of JSON_ALLOW_NUL, which jansson's own text names. */
        set_msg(err, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                json_error_code(&jerr) == json_error_null_character
                    ? "\\u0000 is not allowed in strings"
                    : jerr.text);
        return SVC_EJSON;
    }
    if ((flags & SVC_JSON_PARSE_OBJECT) && !json_is_object(root)) {
        json_decref(root);
        set_msg(err, "request body must be a JSON object");
        return SVC_EINVAL;
    }
    *out = root;
    return 0;
}

void svc_json_decref(void *v)
{
    json_decref(v);
}

/* ---- reading ---------------------------------------------------------------------------- */

static const char *plural(long long n)
{
    return n == 1 ? "" : "s";
}

/* What F accepts, as the end of "must be ...": "an integer ≥ 1", "a string of 1 to 100
 * characters". One sentence serves both the wrong type and the value out of bounds, so the
 * client learns the whole rule at once. */
static void describe(const struct svc_json_field *f, char *out, size_t size)
{
    long long min = f->min, max = f->max;
    size_t n;

    switch (f->type) {
    case SVC_JSON_STRING:
    case SVC_JSON_ARRAY: {
        bool str = f->type == SVC_JSON_STRING;
        const char *what = str ? "a string" : "an array";
        const char *unit = str ? "character" : "item";

        if (min == 0 && max == 0)
            snprintf(out, size, "%s", what);
        else if (min == 1 && max == 0)
            snprintf(out, size, "a non-empty %s", str ? "string" : "array");
        else if (max == 0)
            snprintf(out, size, "%s of at least %lld %s%s", what, min, unit, plural(min));
        else if (min == 0)
            snprintf(out, size, "%s of at most %lld %s%s", what, max, unit, plural(max));
        else if (min == max)
            snprintf(out, size, "%s of exactly %lld %s%s", what, max, unit, plural(max));
        else
            snprintf(out, size, "%s of %lld to %lld %ss", what, min, max, unit);
        break;
    }
    case SVC_JSON_INT:
        if ((min == 0 && max == 0) || (min == INT64_MIN && max == INT64_MAX))
            snprintf(out, size, "an integer");
        else if (max == INT64_MAX)
            snprintf(out, size, "an integer ≥ %lld", min);
        else if (min == INT64_MIN)
            snprintf(out, size, "an integer ≤ %lld", max);
        else
            snprintf(out, size, "an integer from %lld to %lld", min, max);
        break;
    case SVC_JSON_NUMBER:
        if (f->fmin == 0 && f->fmax == 0)
            snprintf(out, size, "a number");
        else
            snprintf(out, size, "a number from %g to %g", f->fmin, f->fmax);
        break;
    case SVC_JSON_BOOL:
        snprintf(out, size, "true or false");
        break;
    case SVC_JSON_UUID:
        snprintf(out, size, "a UUID");
        break;
    case SVC_JSON_ENUM:
        n = (size_t)snprintf(out, size, "one of");
        for (size_t i = 0; f->choices[i] != NULL && n < size; i++)
            n += (size_t)snprintf(out + n, size - n, "%s '%s'", i == 0 ? "" : ",", f->choices[i]);
        break;
    case SVC_JSON_OBJECT:
        snprintf(out, size, "an object");
        break;
    case SVC_JSON_ANY:
    case SVC_JSON_END:
        snprintf(out, size, "a value");
        break;
    }
}

/* The path of the value being read, as shown to clients: "items[2].qty". */
static const char *shown_path(const struct reader *r)
{
    return r->len > 0 ? r->path : "body";
}

static int fail_rule(struct reader *r, const struct svc_json_field *f)
{
    char rule[SVC_JSON_MSG_MAX];

    describe(f, rule, sizeof(rule));
    set_path(r->err, r->path, r->len);
    if (r->len == 0)
        set_msg(r->err, "request body must be %s", rule);
    else
        set_msg(r->err, "field '%s' must be %s", shown_path(r), rule);
    return SVC_EINVAL;
}

static int fail_table(struct reader *r, const char *name, const char *why)
{
    set_path(r->err, r->path, r->len);
    set_msg(r->err, "invalid field table: '%s' %s", name != NULL ? name : shown_path(r), why);
    return SVC_EINTERNAL;
}

/* Appends ".name" (or "name" at the top) or "[index]" to the path; returns the old length to
 * cut back to. A path too long for the buffer is cut at a character boundary. */
static size_t push(struct reader *r, const char *name, size_t index)
{
    size_t old = r->len, room = sizeof(r->path) - r->len;
    char tmp[SVC_JSON_PATH_MAX + 32];
    int n;

    if (name != NULL)
        n = snprintf(tmp, sizeof(tmp), "%s%s", r->len > 0 ? "." : "", name);
    else
        n = snprintf(tmp, sizeof(tmp), "[%zu]", index);
    if (n > 0 && room > 1) {
        size_t len = fit(tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1, room);

        memcpy(r->path + r->len, tmp, len);
        r->len += len;
        r->path[r->len] = '\0';
    }
    return old;
}

static void pop(struct reader *r, size_t old)
{
    r->len = old;
    r->path[old] = '\0';
}

/* Bytes an item of type F takes in an array; 0 for types that cannot be items. */
static size_t slot_size(const struct svc_json_field *f)
{
    switch (f->type) {
    case SVC_JSON_STRING:
        return sizeof(const char *);
    case SVC_JSON_INT:
        return sizeof(int64_t);
    case SVC_JSON_BOOL:
        return sizeof(bool);
    case SVC_JSON_NUMBER:
        return sizeof(double);
    case SVC_JSON_UUID:
        return SVC_JSON_UUID_SIZE;
    case SVC_JSON_ENUM:
        return sizeof(int);
    case SVC_JSON_OBJECT:
        return f->size;
    case SVC_JSON_ANY:
        return sizeof(json_t *);
    case SVC_JSON_ARRAY:
    case SVC_JSON_END:
        break;
    }
    return 0;
}

/* The mistakes a table can hold that would otherwise read garbage or refuse everything.
 * Recurses once at most, into an array's item. */
static const char *table_mistake(const struct svc_json_field *f) /* NOLINT(misc-no-recursion) */
{
    if (f->text != SVC_JSON_TEXT_ANY &&
        (f->type != SVC_JSON_STRING || f->text > SVC_JSON_TEXT_BLOCK))
        return "has a .text that is not a kind of text or is not a string";
    switch (f->type) {
    case SVC_JSON_STRING:
    case SVC_JSON_ARRAY:
        if (f->min < 0 || f->max < 0 || (f->max != 0 && f->min > f->max))
            return "has bounds that no value meets";
        /* Items are checked here, once per array, as they have no table of their own. */
        if (f->type == SVC_JSON_ARRAY && (f->elem == NULL || slot_size(f->elem) == 0))
            return "is an array without a valid .elem";
        if (f->type == SVC_JSON_ARRAY)
            return table_mistake(f->elem);
        break;
    case SVC_JSON_INT:
        if (f->min > f->max)
            return "has .min > .max";
        break;
    case SVC_JSON_NUMBER:
        if (!(f->fmin <= f->fmax))
            return "has .fmin > .fmax";
        break;
    case SVC_JSON_ENUM:
        if (f->choices == NULL || f->choices[0] == NULL)
            return "is an enum without .choices";
        break;
    case SVC_JSON_OBJECT:
        if (f->fields == NULL)
            return "is an object without .fields";
        break;
    case SVC_JSON_BOOL:
    case SVC_JSON_UUID:
    case SVC_JSON_ANY:
        break;
    case SVC_JSON_END:
        return "has no type";
    }
    return NULL;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != SVC_JSON_UUID_SIZE - 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];

        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Refuses the first character of the N bytes at S (valid UTF-8) that display text of F's kind
 * may not hold, naming it and where it is, so the client can find an invisible character. */
static int check_text(struct reader *r, const struct svc_json_field *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    const char *what;
    size_t i = 0, len, at = 1;
    uint32_t c;

    for (; i < n; i += len, at++) {
        len = svc_utf8_len(p + i, n - i);
        c = decode(p + i, len);
        if ((what = refused_in_text(c, f->text)) != NULL) {
            set_path(r->err, r->path, r->len);
            set_msg(r->err, "field '%s' must not contain %s (U+%04X at character %zu)",
                    shown_path(r), what, (unsigned)c, at);
            return SVC_EINVAL;
        }
    }
    return 0;
}

/* Reading recurses as the document nests (objects in arrays in objects), so its depth is that
 * of the document, which jansson caps at 2048 levels, and only a table that refers to itself
 * lets it go past the table's own depth. NOLINTBEGIN(misc-no-recursion) */
static int read_value(struct reader *r, const struct svc_json_field *f, json_t *v, void *slot);
static int read_object(struct reader *r, json_t *obj, const struct svc_json_field *fields,
                       void *dst);

static int read_array(struct reader *r, const struct svc_json_field *f, json_t *v,
                      unsigned char *dst)
{
    const struct svc_json_field *elem = f->elem;
    size_t n = json_array_size(v), size = slot_size(elem);
    unsigned char *items;
    int rc = 0;

    if (!json_is_array(v) || (int64_t)n < f->min || (f->max != 0 && (int64_t)n > f->max))
        return fail_rule(r, f);
    if (r->arena == NULL)
        return fail_table(r, NULL, "is an array but no arena was given");
    /* N is bounded by the body cap, so this cannot overflow in practice; check anyway. */
    if (n != 0 && size > SIZE_MAX / n)
        return fail_rule(r, f);
    items = svc_arena_calloc(r->arena, n * size);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t old = push(r, NULL, i);
        json_t *item = json_array_get(v, i);

        /* null is not "absent" inside an array: it is a value of the wrong type. */
        rc = json_is_null(item) ? fail_rule(r, elem) : read_value(r, elem, item, items + i * size);
        pop(r, old);
    }
    if (rc != 0)
        return rc;
    memcpy(dst + f->offset, &items, sizeof(items));
    memcpy(dst + f->count, &n, sizeof(n));
    return 0;
}

/* Reads V (not NULL, not null) as F says into SLOT. Arrays are the exception: they write two
 * members, so they get the whole struct (read_array) and are never items themselves. */
static int read_value(struct reader *r, const struct svc_json_field *f, json_t *v, void *slot)
{
    const char *s;
    size_t n;
    int64_t chars, i;
    double d;
    bool b;
    int k, rc;

    switch (f->type) {
    case SVC_JSON_STRING:
        if (!json_is_string(v))
            return fail_rule(r, f);
        s = json_string_value(v);
        n = json_string_length(v);
        /* jansson checks what it parses, but a document built in code may hold anything. */
        if (strlen(s) != n || (chars = utf8_count(s, n)) < 0) {
            set_path(r->err, r->path, r->len);
            set_msg(r->err, "field '%s' must be valid UTF-8 text without NUL characters",
                    shown_path(r));
            return SVC_EINVAL;
        }
        if (chars < f->min || (f->max != 0 && chars > f->max))
            return fail_rule(r, f);
        if (f->text != SVC_JSON_TEXT_ANY && (rc = check_text(r, f, s, n)) != 0)
            return rc;
        memcpy(slot, &s, sizeof(s));
        return 0;
    case SVC_JSON_INT:
        if (!json_is_integer(v))
            return fail_rule(r, f);
        i = json_integer_value(v);
        if ((f->min != 0 || f->max != 0) && (i < f->min || i > f->max))
            return fail_rule(r, f);
        memcpy(slot, &i, sizeof(i));
        return 0;
    case SVC_JSON_BOOL:
        if (!json_is_boolean(v))
            return fail_rule(r, f);
        b = json_is_true(v);
        memcpy(slot, &b, sizeof(b));
        return 0;
    case SVC_JSON_NUMBER:
        if (!json_is_number(v))
            return fail_rule(r, f);
        d = json_number_value(v);
        if ((f->fmin != 0 || f->fmax != 0) && !(d >= f->fmin && d <= f->fmax))
            return fail_rule(r, f);
        memcpy(slot, &d, sizeof(d));
        return 0;
    case SVC_JSON_UUID: {
        char uuid[SVC_JSON_UUID_SIZE];

        if (!json_is_string(v) || !is_uuid(json_string_value(v), json_string_length(v)))
            return fail_rule(r, f);
        s = json_string_value(v);
        for (n = 0; n < SVC_JSON_UUID_SIZE - 1; n++)
            uuid[n] = (char)(s[n] >= 'A' && s[n] <= 'F' ? s[n] - 'A' + 'a' : s[n]);
        uuid[n] = '\0';
        memcpy(slot, uuid, sizeof(uuid));
        return 0;
    }
    case SVC_JSON_ENUM:
        if (!json_is_string(v))
            return fail_rule(r, f);
        s = json_string_value(v);
        for (k = 0; f->choices[k] != NULL; k++) {
            if (strcmp(s, f->choices[k]) == 0 && strlen(s) == json_string_length(v)) {
                memcpy(slot, &k, sizeof(k));
                return 0;
            }
        }
        return fail_rule(r, f);
    case SVC_JSON_OBJECT:
        if (!json_is_object(v))
            return fail_rule(r, f);
        return read_object(r, v, f->fields, slot);
    case SVC_JSON_ANY:
        /* The slot holds the pointer itself. NOLINTNEXTLINE(bugprone-sizeof-expression) */
        memcpy(slot, &v, sizeof(v));
        return 0;
    case SVC_JSON_ARRAY:
    case SVC_JSON_END:
        break;
    }
    return fail_table(r, f->name, "has a type that cannot be read here");
}

static const struct svc_json_field *find_field(const struct svc_json_field *fields,
                                               const char *name)
{
    for (const struct svc_json_field *f = fields; f->name != NULL; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static int read_object(struct reader *r, json_t *obj, const struct svc_json_field *fields,
                       void *dst)
{
    unsigned char *base = dst;
    const struct svc_json_field *f;
    const char *why, *key;
    json_t *v;
    size_t old;
    int rc = 0;

    for (f = fields; f->name != NULL; f++)
        if ((why = table_mistake(f)) != NULL)
            return fail_table(r, f->name, why);
    /* Unknown members first: a misspelt optional field is better reported as itself than
     * silently ignored, and a misspelt required one is clearer this way than as missing. */
    if (r->flags & SVC_JSON_REJECT_UNKNOWN) {
        for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
            key = json_object_iter_key(it);
            if (find_field(fields, key) == NULL) {
                old = push(r, key, 0);
                set_path(r->err, r->path, r->len);
                set_msg(r->err, "field '%s' is not allowed", r->path);
                pop(r, old);
                return SVC_EINVAL;
            }
        }
    }
    for (f = fields; f->name != NULL && rc == 0; f++) {
        v = json_object_get(obj, f->name);
        old = push(r, f->name, 0);
        if (v == NULL || json_is_null(v)) {
            if (f->required) {
                set_path(r->err, r->path, r->len);
                set_msg(r->err, "field '%s' is required", r->path);
                rc = SVC_EINVAL;
            }
        } else if (f->type == SVC_JSON_ARRAY) {
            rc = read_array(r, f, v, base);
        } else {
            rc = read_value(r, f, v, base + f->offset);
        }
        pop(r, old);
    }
    return rc;
}

/* NOLINTEND(misc-no-recursion) */

int svc_json_read(json_t *obj, const struct svc_json_field *fields, void *dst, unsigned flags,
                  struct svc_arena *arena, struct svc_json_error *err)
{
    struct reader r = {.arena = arena, .flags = flags, .err = err};

    clear_error(err);
    if (!json_is_object(obj)) {
        set_msg(err, "request body must be a JSON object");
        return SVC_EINVAL;
    }
    return read_object(&r, obj, fields, dst);
}

/* ---- rendering -------------------------------------------------------------------------- */

struct dump {
    struct svc_buf *out;
    int rc;
};

static int dump_chunk(const char *buffer, size_t size, void *data)
{
    struct dump *d = data;

    d->rc = svc_buf_add(d->out, buffer, size);
    return d->rc == 0 ? 0 : -1;
}

int svc_json_dump(struct svc_buf *out, const json_t *v)
{
    struct dump d = {.out = out, .rc = 0};
    size_t start = out->len;
    /* jansson keeps members in insertion order (2.14 ignores JSON_PRESERVE_ORDER, older
     * versions need it); DBL_DIG digits print 0.1 as 0.1 rather than 0.10000000000000001. */
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15);

    if (v == NULL || json_dump_callback(v, dump_chunk, &d, flags) != 0) {
        /* All or nothing: half a document would be an invalid response body. */
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return d.rc != 0 ? d.rc : SVC_EINTERNAL;
    }
    return 0;
}

json_t *svc_json_time(int64_t epoch_ms)
{
    char t[SVC_RFC3339_MS_LEN + 1];

    svc_rfc3339_format_ms(epoch_ms, t);
    return json_string(t);
}

#include "svc/event.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char default_content_type[] = "application/json";

/* ---- build --------------------------------------------------------------------------- */

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* W3C Trace Context: version-traceid-parentid-flags, lowercase hex. Version ff is invalid,
 * and so are all-zero ids. A future version may append fields after a further '-'. */
static bool traceparent_valid(const char *s)
{
    size_t n = strlen(s);

    if (n < 55 || (n > 55 && s[55] != '-') || n > 512)
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!is_hex(s, 2) || !is_hex(s + 3, 32) || !is_hex(s + 36, 16) || !is_hex(s + 53, 2))
        return false;
    if (memcmp(s, "ff", 2) == 0 || (memcmp(s, "00", 2) == 0 && n != 55))
        return false;
    if (strspn(s + 3, "0") >= 32 || strspn(s + 36, "0") >= 16)
        return false;
    return true;
}

static bool nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

struct svc_event *svc_event_new(const char *type, const char *source, const char *subject,
                                json_t *data)
{
    struct svc_event *ev;

    if (!nonempty(type) || !nonempty(source) || !nonempty(subject) || !json_is_object(data)) {
        svc_log_error("event '%s' not built: type, source and subject must be non-empty and "
                      "data a JSON object",
                      type != NULL ? type : "(null)");
        json_decref(data);
        return NULL;
    }
    ev = svc_calloc(1, sizeof(*ev));
    svc_uuid_v4_str(ev->id);
    ev->type = svc_strdup(type);
    ev->source = svc_strdup(source);
    ev->subject = svc_strdup(subject);
    ev->datacontenttype = svc_strdup(default_content_type);
    ev->time = svc_malloc(SVC_RFC3339_MS_LEN + 1);
    svc_rfc3339_format_ms(svc_wall_ms(), ev->time);
    ev->data = data;
    return ev;
}

void svc_event_free(struct svc_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->source);
    free(ev->type);
    free(ev->subject);
    free(ev->time);
    free(ev->datacontenttype);
    free(ev->traceparent);
    json_decref(ev->data);
    free(ev);
}

int svc_event_set_traceparent(struct svc_event *ev, const char *traceparent)
{
    if (traceparent != NULL && !traceparent_valid(traceparent))
        return SVC_EINVAL;
    free(ev->traceparent);
    ev->traceparent = traceparent != NULL ? svc_strdup(traceparent) : NULL;
    return 0;
}

const char *svc_event_key(const struct svc_event *ev)
{
    return ev->subject;
}

/* ---- render -------------------------------------------------------------------------- */

static int add_attr(struct svc_buf *out, const char *name, const char *value)
{
    int rc;

    if ((rc = svc_buf_addf(out, ",\"%s\":", name)) != 0)
        return rc;
    return svc_buf_add_json_str(out, value, strlen(value));
}

static int dump_to_buf(const char *p, size_t n, void *arg)
{
    return svc_buf_add(arg, p, n) == 0 ? 0 : -1;
}

int svc_event_render(const struct svc_event *ev, struct svc_buf *out)
{
    size_t start = out->len;
    int rc;

    rc = svc_buf_adds(out, "{\"specversion\":\"1.0\"");
    if (rc == 0)
        rc = add_attr(out, "id", ev->id);
    if (rc == 0)
        rc = add_attr(out, "source", ev->source);
    if (rc == 0)
        rc = add_attr(out, "type", ev->type);
    if (rc == 0)
        rc = add_attr(out, "subject", ev->subject);
    if (rc == 0)
        rc = add_attr(out, "time", ev->time);
    if (rc == 0)
        rc = add_attr(out, "datacontenttype", ev->datacontenttype);
    if (rc == 0 && ev->traceparent != NULL)
        rc = add_attr(out, "traceparent", ev->traceparent);
    if (rc == 0)
        rc = svc_buf_adds(out, ",\"data\":");
    if (rc == 0 && json_dump_callback(ev->data, dump_to_buf, out, JSON_COMPACT) != 0)
        rc = SVC_ETOOBIG;
    if (rc == 0)
        rc = svc_buf_addc(out, '}');
    if (rc != 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* ---- build for a producer ----------------------------------------------------------- */

int svc_event_build(struct svc_event_out *out, const char *type, const char *source,
                    const char *subject, json_t *data, const char *traceparent)
{
    struct svc_event *e;
    int rc;

    memset(out, 0, sizeof(*out));
    svc_buf_init(&out->json, SVC_EVENT_MAX_BYTES);
    if (data == NULL) {
        svc_log_error("event '%s' of '%s' not built: jansson refused its data", type, subject);
        return SVC_EINTERNAL;
    }
    e = svc_event_new(type, source, subject, data);
    if (e == NULL)
        return SVC_EINTERNAL; /* logged by svc_event_new */
    if (traceparent != NULL && svc_event_set_traceparent(e, traceparent) != 0)
        svc_log_debug("traceparent '%s' is not valid, event '%s' goes without it", traceparent,
                      e->id);
    rc = svc_event_render(e, &out->json);
    if (rc != 0) {
        svc_log_error("event '%s' of '%s' not rendered: %s", type, subject, svc_err_name(rc));
        svc_event_free(e);
        return SVC_EINTERNAL;
    }
    memcpy(out->id, e->id, sizeof(out->id));
    out->type = type;
    out->key = subject;
    svc_event_free(e);
    return 0;
}

void svc_event_out_release(struct svc_event_out *out)
{
    svc_buf_release(&out->json);
}

/* ---- parse --------------------------------------------------------------------------- */

/* "application/json", in any case, optionally with parameters ("; charset=utf-8"). */
static bool json_content_type(const char *s)
{
    size_t n = sizeof(default_content_type) - 1;

    return strncasecmp(s, default_content_type, n) == 0 &&
           (s[n] == '\0' || s[n] == ';' || s[n] == ' ');
}

static bool is_specversion(const char *s)
{
    return strcmp(s, "1.0") == 0;
}

static bool is_time(const char *s)
{
    return svc_rfc3339_parse(s, NULL);
}

/* The string attributes, in the order they are checked (and their messages appear). Every
 * one must be a non-empty string when present; VALID, when set, checks the value. */
enum { A_SPECVERSION, A_ID, A_SOURCE, A_TYPE, A_SUBJECT, A_TIME, A_CTYPE, A_TRACEPARENT, A_N };

static const struct attr_rule {
    const char *name;
    bool required;
    bool (*valid)(const char *s);
    const char *must; /* what VALID wants, for the message */
} attr_rules[A_N] = {
    [A_SPECVERSION] = {"specversion", true, is_specversion, "must be \"1.0\""},
    [A_ID] = {"id", true, svc_uuid_valid, "must be a UUID"},
    [A_SOURCE] = {"source", true, NULL, NULL},
    [A_TYPE] = {"type", true, NULL, NULL},
    [A_SUBJECT] = {"subject", true, NULL, NULL},
    [A_TIME] = {"time", true, is_time, "must be an RFC 3339 date-time"},
    [A_CTYPE] = {"datacontenttype", false, json_content_type, "must be \"application/json\""},
    [A_TRACEPARENT] = {"traceparent", false, traceparent_valid, "must be a W3C traceparent"},
};

/* Writes "attribute 'NAME' WHAT" into ERR and returns SVC_EINVAL. */
static int attr_error(char *err, size_t errlen, const char *name, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "attribute '%s' %s", name, what);
    return SVC_EINVAL;
}

/* Checks ROOT's attributes against attr_rules; fills VALUES (owned by ROOT, NULL for an
 * absent optional one). 0 or SVC_EINVAL with the message in ERR. */
static int check_attrs(json_t *root, const char *values[A_N], char *err, size_t errlen)
{
    for (size_t i = 0; i < A_N; i++) {
        const struct attr_rule *r = &attr_rules[i];
        json_t *v = json_object_get(root, r->name);

        values[i] = NULL;
        if (v == NULL) {
            if (r->required)
                return attr_error(err, errlen, r->name, "is missing");
            continue;
        }
        if (!json_is_string(v))
            return attr_error(err, errlen, r->name, "must be a string");
        if (json_string_length(v) == 0)
            return attr_error(err, errlen, r->name, "must not be empty");
        values[i] = json_string_value(v);
        if (r->valid != NULL && !r->valid(values[i]))
            return attr_error(err, errlen, r->name, r->must);
    }
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? svc_strdup(s) : NULL;
}

int svc_event_parse(const void *bytes, size_t len, struct svc_event **out, char *err, size_t errlen)
{
    const char *values[A_N];
    struct svc_event *ev;
    json_error_t jerr;
    json_t *root, *data;
    int rc;

    *out = NULL;
    if (len > SVC_EVENT_MAX_BYTES) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "envelope of %zu bytes exceeds the limit of %zu", len,
                     SVC_EVENT_MAX_BYTES);
        return SVC_ETOOBIG;
    }
    root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "malformed JSON at line %d column %d: %.80s", jerr.line,
                     jerr.column, jerr.text);
        return SVC_EJSON;
    }
    if (!json_is_object(root)) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "envelope must be a JSON object");
        rc = SVC_EJSON;
        goto out;
    }
    if ((rc = check_attrs(root, values, err, errlen)) != 0)
        goto out;
    data = json_object_get(root, "data");
    if (data == NULL) {
        rc = attr_error(err, errlen, "data", "is missing");
        goto out;
    }
    if (!json_is_object(data)) {
        rc = attr_error(err, errlen, "data", "must be a JSON object");
        goto out;
    }
    ev = svc_calloc(1, sizeof(*ev));
    snprintf(ev->id, sizeof(ev->id), "%s", values[A_ID]);
    ev->source = dup_or_null(values[A_SOURCE]);
    ev->type = dup_or_null(values[A_TYPE]);
    ev->subject = dup_or_null(values[A_SUBJECT]);
    ev->time = dup_or_null(values[A_TIME]);
    ev->datacontenttype =
        svc_strdup(values[A_CTYPE] != NULL ? values[A_CTYPE] : default_content_type);
    ev->traceparent = dup_or_null(values[A_TRACEPARENT]);
    ev->data = json_incref(data);
    *out = ev;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

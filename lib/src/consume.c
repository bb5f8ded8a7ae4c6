#include "svc/consume.h"

#include "svc/error.h"
#include "svc/log.h"
#include "svc/time.h"

#include <stdbool.h>
#include <string.h>

static const struct svc_event_handler *find(const struct svc_event_handler *table, const char *type)
{
    for (; table->type != NULL; table++)
        if (strcmp(table->type, type) == 0)
            return table;
    return NULL;
}

/* The value read for field NAME of FIELDS in the struct at DATA: a UUID is stored in the
 * struct, a string by pointer. NULL when there is no such field, or it was not read. */
static const char *field_str(const struct svc_json_field *fields, const void *data,
                             const char *name)
{
    for (; fields != NULL && fields->name != NULL; fields++) {
        if (strcmp(fields->name, name) != 0)
            continue;
        if (fields->type == SVC_JSON_UUID)
            return (const char *)data + fields->offset;
        if (fields->type == SVC_JSON_STRING)
            return *(const char *const *)(const void *)((const char *)data + fields->offset);
        return NULL;
    }
    return NULL;
}

/* What the consumer does with apply's answer. */
static enum svc_ev_result verdict(int rc, const struct svc_event *ev, struct svc_buf *reason)
{
    switch (rc) {
    case 0:
        return SVC_EV_DONE;
    case SVC_EUNAVAILABLE:
    case SVC_ETIMEDOUT:
    case SVC_EAGAIN:
        /* Logged where it happened; the partition pauses and the record comes back. */
        return SVC_EV_RETRY;
    default:
        /* Not a passing outage: retrying would block the partition for ever, so the event is
         * kept aside in the DLQ with what went wrong. */
        svc_buf_addf(reason, "event '%s' (%s) not applied: %s", ev->id, ev->type,
                     svc_err_title(rc));
        return SVC_EV_POISON;
    }
}

/* Checks EV's data, subject and time against H, then applies it; IN is filled on the way. */
static enum svc_ev_result check_apply(const struct svc_event_handler *h, struct svc_event_in *in,
                                      struct svc_buf *reason)
{
    const struct svc_event *ev = in->ev;
    struct svc_json_error jerr;
    const char *subject;

    if (h->fields != NULL &&
        svc_json_read(ev->data, h->fields, in->data, 0, in->arena, &jerr) != 0) {
        svc_buf_addf(reason, "event '%s' (%s): data %s", ev->id, ev->type, jerr.msg);
        return SVC_EV_POISON;
    }
    if (h->subject != NULL) {
        subject = field_str(h->fields, in->data, h->subject);
        if (subject == NULL) {
            svc_buf_addf(reason, "event '%s' (%s): data has no '%s' to match subject '%s'", ev->id,
                         ev->type, h->subject, ev->subject);
            return SVC_EV_POISON;
        }
        if (strcmp(subject, ev->subject) != 0) {
            svc_buf_addf(reason, "event '%s' (%s): data '%s' '%s' differs from subject '%s'",
                         ev->id, ev->type, h->subject, subject, ev->subject);
            return SVC_EV_POISON;
        }
    }
    if (!svc_rfc3339_parse(ev->time, &in->time_ms)) {
        svc_buf_addf(reason, "event '%s': attribute 'time' is not RFC 3339", ev->id);
        return SVC_EV_POISON;
    }
    return verdict(h->apply(in), ev, reason);
}

enum svc_ev_result svc_event_dispatch(const struct svc_event_handler *table,
                                      const struct svc_kafka_record *rec, struct svc_buf *reason,
                                      void *arg)
{
    char err[SVC_EVENT_ERR_MAX];
    const struct svc_event_handler *h;
    struct svc_event_in in = {.rec = rec, .arg = arg};
    struct svc_event *ev;
    enum svc_ev_result res;

    if (rec->value == NULL) {
        svc_buf_addf(reason, "record without a value (a tombstone) is not an event");
        return SVC_EV_POISON;
    }
    if (svc_event_parse(rec->value, rec->value_len, &ev, err, sizeof(err)) != 0) {
        svc_buf_addf(reason, "not a CloudEvent: %s", err);
        return SVC_EV_POISON;
    }
    h = find(table, ev->type);
    if (h == NULL) {
        svc_event_free(ev);
        return SVC_EV_DONE;
    }
    in.ev = ev;
    in.arena = svc_arena_new();
    in.data = svc_arena_calloc(in.arena, h->size);
    res = check_apply(h, &in, reason);
    if (res == SVC_EV_DONE)
        svc_log_debug("event '%s' (%s) of '%s' applied", ev->id, ev->type, ev->subject);
    svc_arena_free(in.arena);
    svc_event_free(ev);
    return res;
}

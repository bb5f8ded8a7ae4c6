/*
 * event.h: the platform's event envelope, CloudEvents 1.0 in structured JSON mode
 * (`application/cloudevents+json`, DESIGN.md "Events"):
 *
 *   {"specversion":"1.0","id":"<uuid>","source":"/user-svc","type":"user.registered",
 *    "subject":"<entity id>","time":"2026-11-24T10:00:00.123Z",
 *    "datacontenttype":"application/json","traceparent":"00-...-...-01","data":{...}}
 *
 * The Kafka key of an event is its subject, so one entity's events stay in one partition and
 * in order. traceparent (the W3C Trace Context extension) is optional.
 *
 * Parsing is strict about what the platform relies on and tolerant of the rest: the required
 * attributes must be present, be strings and be valid (specversion exactly "1.0", id a UUID,
 * time RFC 3339 with 'Z' or a numeric offset, data a JSON object); other extension attributes
 * are ignored. Every refusal comes with a message that names the attribute.
 */
#ifndef SVC_EVENT_H
#define SVC_EVENT_H

#include "svc/buf.h"
#include "svc/time.h" /* svc_rfc3339_parse, svc_rfc3339_format_ms */
#include "svc/uuid.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Media type of a whole envelope (the Kafka `content-type` header in structured mode). */
#define SVC_EVENT_CONTENT_TYPE "application/cloudevents+json"

/* Largest envelope svc_event_parse() accepts, in bytes (Kafka's default message.max.bytes). */
#define SVC_EVENT_MAX_BYTES ((size_t)1024 * 1024)

/* Room for any message svc_event_parse() writes, NUL included. */
#define SVC_EVENT_ERR_MAX 160

/*
 * An event. Every string is owned by the event and freed with it; data holds one reference,
 * released by svc_event_free(). Read the fields freely; change them only through the functions
 * below. time is kept as text exactly as built or received.
 */
struct svc_event {
    char id[SVC_UUID_STR_LEN + 1];
    char *source;          /* "/user-svc" */
    char *type;            /* "user.registered" */
    char *subject;         /* the entity id; the Kafka key */
    char *time;            /* RFC 3339 */
    char *datacontenttype; /* "application/json" */
    char *traceparent;     /* NULL when absent */
    json_t *data;          /* a JSON object */
};

/*
 * Builds a new event with a fresh v4 id and the current time (UTC, milliseconds). TYPE, SOURCE
 * and SUBJECT are copied and must be non-empty; DATA must be a JSON object, and the event takes
 * over the caller's reference to it, as jansson's *_new functions do (also when it fails).
 * Returns NULL, after logging, when an argument is missing or DATA is not an object: both are
 * programming errors. Free with svc_event_free().
 */
struct svc_event *svc_event_new(const char *type, const char *source, const char *subject,
                                json_t *data);

/* Frees EV and everything it owns. NULL is a no-op. */
void svc_event_free(struct svc_event *ev);

/* Sets (copies) or, with NULL, removes the traceparent. 0 or SVC_EINVAL when TRACEPARENT is
 * not a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"); the event is unchanged then. */
int svc_event_set_traceparent(struct svc_event *ev, const char *traceparent);

/* The Kafka key: the subject. Owned by EV. */
const char *svc_event_key(const struct svc_event *ev);

/* Appends EV as one compact JSON object to OUT. 0, or SVC_ETOOBIG when OUT's cap is reached
 * (OUT is then left as it was). */
int svc_event_render(const struct svc_event *ev, struct svc_buf *out);

/* An event rendered for an outbox or a producer: filled by svc_event_build(), released with
 * svc_event_out_release(). */
struct svc_event_out {
    char id[SVC_UUID_STR_LEN + 1]; /* the event id, consumers deduplicate by it */
    const char *type;              /* TYPE as given, not copied (a polyglot/events.h EV_*) */
    const char *key;               /* SUBJECT as given, not copied: the Kafka key */
    struct svc_buf json;           /* the envelope, at most SVC_EVENT_MAX_BYTES */
};

/*
 * The producer's one call: renders into OUT the event of TYPE from SOURCE about SUBJECT, with
 * DATA (a JSON object, taken over as svc_event_new() does; NULL, as jansson's constructors
 * answer when they fail, is refused), a fresh id and the current time. TRACEPARENT, when not
 * NULL, is carried along if it is a W3C traceparent and left out (logged at debug) if not.
 * Returns 0, or SVC_EINTERNAL (logged) when the event cannot be built. OUT can be released
 * either way.
 */
int svc_event_build(struct svc_event_out *out, const char *type, const char *source,
                    const char *subject, json_t *data, const char *traceparent);

/* Releases what OUT holds. */
void svc_event_out_release(struct svc_event_out *out);

/*
 * Parses and validates the LEN bytes at BYTES (not NUL-terminated) as one envelope.
 * On success returns 0 and stores a new event in *OUT (free with svc_event_free()).
 * Otherwise returns one of the errors below, leaves *OUT NULL, and, when ERR is not NULL,
 * writes a message of at most ERRLEN bytes (SVC_EVENT_ERR_MAX is always enough), e.g.
 * "attribute 'id' must be a UUID":
 *   SVC_ETOOBIG   more than SVC_EVENT_MAX_BYTES
 *   SVC_EJSON     not one JSON object (the message says where)
 *   SVC_EINVAL    an attribute is missing, has the wrong type or an invalid value
 */
int svc_event_parse(const void *bytes, size_t len, struct svc_event **out, char *err,
                    size_t errlen);

#endif

/*
 * cart_events.c: what cart-svc publishes and consumes, and the machinery around it: the
 * CloudEvent of each change (XADDed by the store in the same MULTI/EXEC as the change), the
 * Kafka producer and the outbox relay, the consumer of user-events and product-events that
 * keeps the read models, and the readiness and drain hooks. No engine call here: everything
 * reaches Redis through the store interface and its outbox source.
 */
#include "cart_svc.h"

#include "svc/dep.h"
#include "svc/event.h"
#include "svc/json.h"
#include "svc/kafka.h"

#include <jansson.h>
#include <string.h>

/* ---- events ------------------------------------------------------------------------------ */

static json_t *line_json(const struct cart_line *l)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:s}", "product_id", l->product_id, "quantity",
                     (json_int_t)l->quantity, "price_cents", (json_int_t)l->price_cents,
                     "currency", l->currency != NULL ? l->currency : "", "name",
                     l->name != NULL ? l->name : "");
}

int cart_event_line(struct svc_event_out *ev, const char *type, const char *user_id,
                    const struct cart_line *line, const char *traceparent)
{
    json_t *data;

    if (strcmp(type, EV_CART_ITEM_REMOVED) == 0)
        data = json_pack("{s:s, s:s, s:o}", "user_id", user_id, "product_id", line->product_id,
                         "at", svc_json_time(line->updated_at_ms));
    else {
        data = line_json(line);
        if (data != NULL) {
            json_object_set_new(data, "user_id", json_string(user_id));
            json_object_set_new(data, "at", svc_json_time(line->updated_at_ms));
        }
    }
    return svc_event_build(ev, type, CART_SOURCE, user_id, data, traceparent);
}

int cart_event_order(struct svc_event_out *ev, const char *type, const struct cart_order *o,
                     const char *traceparent)
{
    json_t *lines = json_array();
    json_t *data;

    for (size_t i = 0; i < o->n; i++)
        json_array_append_new(lines, line_json(&o->lines[i]));
    data = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o}", "order_id", o->id, "user_id",
                     o->user_id, "status", cart_status_name(o->status), "lines", lines,
                     "total_cents", (json_int_t)o->total_cents, "currency",
                     o->currency != NULL ? o->currency : "", "created_at",
                     svc_json_time(o->created_at_ms), "updated_at",
                     svc_json_time(o->updated_at_ms));
    if (data != NULL && o->status == CART_FAILED) {
        json_object_set_new(data, "failed_step", json_string(o->failed_step != NULL ? o->failed_step : ""));
        json_object_set_new(data, "reason", json_string(o->reason != NULL ? o->reason : ""));
    }
    return svc_event_build(ev, type, CART_SOURCE, o->user_id, data, traceparent);
}

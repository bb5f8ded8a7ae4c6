/*
 * Fuzz target: arbitrary bytes as a CloudEvents envelope (event.h). Whatever the input, the
 * parser must either refuse it with a message or return an event that renders back to an
 * envelope it accepts again, unchanged.
 */
#include "svc/event.h"

#include "svc/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[SVC_EVENT_ERR_MAX];
    struct svc_event *ev, *again;
    struct svc_buf b = SVC_BUF_INIT;
    int rc;

    err[0] = '\0';
    rc = svc_event_parse(data, size, &ev, err, sizeof(err));
    if (rc != 0) {
        if (ev != NULL || err[0] == '\0' || strlen(err) >= sizeof(err))
            abort();
        return 0;
    }
    if (svc_event_render(ev, &b) != 0)
        abort();
    if (svc_event_parse(b.data, b.len, &again, err, sizeof(err)) != 0)
        abort();
    if (strcmp(ev->id, again->id) != 0 || strcmp(ev->time, again->time) != 0 ||
        strcmp(ev->subject, again->subject) != 0 || !json_equal(ev->data, again->data))
        abort();
    svc_event_free(again);
    svc_event_free(ev);
    svc_buf_release(&b);
    return 0;
}

/*
 * mongo.c: libmongoc's set-up and the translation of its errors (svc/mongo.h), for every
 * MongoDB-owning store.
 */
#include "svc/mongo.h"

#include "svc/error.h"
#include "svc/log.h"

#include <string.h>

/* libmongoc's own log lines go to the service's log. */
static void on_log(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
    (void)arg;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        svc_log_error("mongoc %s: %s", domain, message);
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        /* FerretDB has no sessions: the client's goodbye to them fails, harmlessly. */
        if (strstr(message, "endSessions") != NULL)
            svc_log_debug("mongoc %s: %s", domain, message);
        else
            svc_log_warn("mongoc %s: %s", domain, message);
        break;
    default:
        break;
    }
}

void svc_mongo_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(on_log, NULL);
}

bool svc_mongo_unavailable(const bson_error_t *e)
{
    if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION ||
        e->domain == MONGOC_ERROR_PROTOCOL)
        return true;
    if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_WRITE_CONCERN) {
        switch (e->code) {
        case 6:     /* HostUnreachable */
        case 7:     /* HostNotFound */
        case 89:    /* NetworkTimeout */
        case 91:    /* ShutdownInProgress */
        case 189:   /* PrimarySteppedDown */
        case 9001:  /* SocketException */
        case 10107: /* NotWritablePrimary */
        case 11600: /* InterruptedAtShutdown */
        case 11602: /* InterruptedDueToReplStateChange */
        case 13435: /* NotPrimaryNoSecondaryOk */
        case 13436: /* NotPrimaryOrSecondary */
            return true;
        default:
            return false;
        }
    }
    return false;
}

bool svc_mongo_dup(const bson_error_t *e)
{
    if (e->domain != MONGOC_ERROR_SERVER && e->domain != MONGOC_ERROR_WRITE_CONCERN &&
        e->domain != MONGOC_ERROR_COLLECTION && e->domain != MONGOC_ERROR_COMMAND &&
        e->domain != MONGOC_ERROR_QUERY)
        return false;
    return e->code == 11000 || e->code == 11001 ||
           (e->code == 1 && strstr(e->message, "UNIQUE constraint failed") != NULL);
}

int svc_mongo_fail(struct svc_dep *dep, const bson_error_t *e, const char *what)
{
    if (svc_mongo_dup(e))
        return SVC_MONGO_DUP;
    if (!svc_mongo_unavailable(e)) {
        svc_log_error("mongodb %s failed: %s (domain %u, code %u)", what, e->message, e->domain,
                      e->code);
        return SVC_EINTERNAL;
    }
    svc_dep_down(dep, what, "%s", e->message);
    return SVC_EUNAVAILABLE;
}

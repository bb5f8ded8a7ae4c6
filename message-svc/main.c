/*
 * message-svc: user inboxes on MongoDB (FerretDB locally), fed by user-events. Configuration:
 * `message-svc --help`.
 */
#include "msg_svc.h"
#include "svc/config.h"
#include "svc/server.h"

#include <stddef.h>

static struct msg_svc msg_svc_state;

static const struct svc_config_var msg_vars[] = {
    /* Secret: a real MongoDB's URI holds the password (the log would mask it anyway). */
    {"MONGODB_URI", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
     "MongoDB connection URI, mongodb://[user:password@]host:port/messages?retryWrites=false",
     .offset = offsetof(struct msg_config, mongodb_uri)},
    {"MONGODB_POOL", SVC_CONFIG_INT, "8", 0, "most MongoDB connections of the client pool",
     .offset = offsetof(struct msg_config, mongodb_pool), .min = 1, .max = 256},
    {"KAFKA_BROKERS", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "Kafka bootstrap servers, host:port[,host:port]",
     .offset = offsetof(struct msg_config, kafka_brokers)},
    {"MESSAGE_RETENTION", SVC_CONFIG_DURATION, "720h", 0,
     "messages older than this are deleted by the retention sweep (30 days by default)",
     .offset = offsetof(struct msg_config, retention_ms), .min = 1000,
     .max = 3660LL * 24 * 3600 * 1000},
    {"SWEEP_INTERVAL", SVC_CONFIG_DURATION, "1h", 0, "how often the retention sweep runs",
     .offset = offsetof(struct msg_config, sweep_every_ms), .min = 100,
     .max = 366LL * 24 * 3600 * 1000},
    {0},
};

/* In order; stopped in reverse. */
static const struct svc_hook msg_hooks[] = {
    {"mongodb", msg_store_init, msg_store_fini},
    {"kafka", msg_consumer_init, msg_consumer_fini},
    {"retention sweep", msg_sweeper_init, msg_sweeper_fini},
    SVC_HOOKS_END,
};

static const struct svc_def msg_svc = {
    .name = "message-svc",
    .version = "0.1.0",
    .routes = msg_routes,
    .config = msg_vars,
    .config_dst = &msg_svc_state.cfg,
    .hooks = msg_hooks,
    .ready = msg_ready,
    .drain = msg_drain,
    .app = &msg_svc_state,
    .errors = msg_errors,
    .openapi = msg_openapi_yaml,
};

int main(int argc, char **argv)
{
    return svc_main(&msg_svc, argc, argv);
}

/*
 * user-svc: users, wallets and payments on PostgreSQL, publishing its events to Kafka through a
 * transactional outbox. Configuration: `user-svc --help`.
 */
#include "svc/config.h"
#include "svc/server.h"
#include "user_svc.h"

#include <stddef.h>

static struct user_svc user_svc_state;

static const struct svc_config_var user_vars[] = {
    /* Secret: the URL holds the password (the log would mask it anyway). */
    {"PG_DSN", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
     "PostgreSQL connection URL, postgresql://user:password@host:port/users",
     .offset = offsetof(struct user_config, pg_dsn)},
    {"PG_POOL", SVC_CONFIG_INT, "4", 0, "PostgreSQL connections for requests",
     .offset = offsetof(struct user_config, pg_pool), .min = 1, .max = 256},
    {"PG_TIMEOUT", SVC_CONFIG_DURATION, "5s", 0,
     "PostgreSQL connect and statement timeout, and the longest wait for a free connection",
     .offset = offsetof(struct user_config, pg_timeout_ms), .min = 100, .max = 600000},
    {"KAFKA_BROKERS", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "Kafka bootstrap servers, host:port[,host:port]",
     .offset = offsetof(struct user_config, kafka_brokers)},
    {"OUTBOX_POLL", SVC_CONFIG_DURATION, "1s", 0,
     "longest wait of the outbox relay between two looks (LISTEN/NOTIFY usually wakes it first)",
     .offset = offsetof(struct user_config, outbox_poll_ms), .min = 10, .max = 600000},
    {"OUTBOX_RETENTION", SVC_CONFIG_DURATION, "24h", 0,
     "how long published outbox rows are kept before they are deleted",
     .offset = offsetof(struct user_config, outbox_retention_ms), .min = 1000,
     .max = 366LL * 24 * 3600 * 1000},
    {"OUTBOX_BATCH", SVC_CONFIG_INT, "100", 0, "events the outbox relay publishes per round",
     .offset = offsetof(struct user_config, outbox_batch), .min = 1, .max = 10000},
    {0},
};

/* In order; stopped in reverse. */
static const struct svc_hook user_hooks[] = {
    {"postgres", user_store_init, user_store_fini},
    {"kafka", user_producer_init, user_producer_fini},
    {"outbox relay", user_relay_init, user_relay_fini},
    SVC_HOOKS_END,
};

static const struct svc_def user_svc = {
    .name = "user-svc",
    .version = "0.1.0",
    .routes = user_routes,
    .config = user_vars,
    .config_dst = &user_svc_state.cfg,
    .hooks = user_hooks,
    .ready = user_ready,
    .drain = user_drain,
    .app = &user_svc_state,
    .errors = user_errors,
    .openapi = user_openapi_yaml,
};

int main(int argc, char **argv)
{
    return svc_main(&user_svc, argc, argv);
}

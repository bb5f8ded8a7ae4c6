/*
 * analytics-svc: the platform's read model on ClickHouse (CQRS): every event of every topic,
 * kept once and aggregated, served as a shop owner's answers. Configuration:
 * `analytics-svc --help`.
 */
#include "analytics_svc.h"
#include "svc/config.h"
#include "svc/server.h"

#include <stddef.h>

static struct an_svc an_svc_state;

static const struct svc_config_var an_vars[] = {
    {"CLICKHOUSE_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "ClickHouse HTTP interface, http://host:port (no credentials)",
     .offset = offsetof(struct an_config, ch_url)},
    {"CLICKHOUSE_USER", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "ClickHouse user, limited to CLICKHOUSE_DATABASE",
     .offset = offsetof(struct an_config, ch_user)},
    {"CLICKHOUSE_PASSWORD", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
     "ClickHouse password", .offset = offsetof(struct an_config, ch_password)},
    {"CLICKHOUSE_DATABASE", SVC_CONFIG_STRING, "analytics", 0, "the database every table lives in",
     .offset = offsetof(struct an_config, ch_database)},
    {"CLICKHOUSE_TIMEOUT", SVC_CONFIG_DURATION, "5s", 0, "deadline of one request to ClickHouse",
     .offset = offsetof(struct an_config, ch_timeout_ms), .min = 100, .max = 600000},
    {"PSEUDONYM_KEY", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
     "key of the hash that replaces a deleted user's id (keep it: a new key makes a new hash)",
     .offset = offsetof(struct an_config, pseudonym_key)},
    {"KAFKA_BROKERS", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "Kafka bootstrap servers, host:port[,host:port]",
     .offset = offsetof(struct an_config, kafka_brokers)},
    {"ANALYTICS_TOPICS", SVC_CONFIG_STRING, AN_TOPICS_DEFAULT, 0,
     "topics to read, comma-separated (a topic that does not exist yet is read once it does)",
     .offset = offsetof(struct an_config, topics)},
    {"ANALYTICS_GROUP", SVC_CONFIG_STRING, AN_GROUP_DEFAULT, 0, "the consumer group",
     .offset = offsetof(struct an_config, group)},
    {"BATCH_MAX", SVC_CONFIG_INT, "1000", 0, "events written to ClickHouse per insert at most",
     .offset = offsetof(struct an_config, batch_max), .min = 1, .max = 100000},
    {"BATCH_AGE", SVC_CONFIG_DURATION, "200ms", 0,
     "the longest an event waits for its batch before the insert",
     .offset = offsetof(struct an_config, batch_age_ms), .min = 1, .max = 60000},
    {"ERASE_EVERY", SVC_CONFIG_DURATION, "10s", 0,
     "how often the rows of deleted users are pseudonymised (all pending users at once)",
     .offset = offsetof(struct an_config, erase_every_ms), .min = 100, .max = 3600000},
    {0},
};

/* In order; stopped in reverse. */
static const struct svc_hook an_hooks[] = {
    {"clickhouse", an_store_init, an_store_fini},
    {"consumer", an_consumer_init, an_consumer_fini},
    {"erasure sweep", an_eraser_init, an_eraser_fini},
    SVC_HOOKS_END,
};

static const struct svc_def an_def = {
    .name = "analytics-svc",
    .version = "0.1.0",
    .routes = an_routes,
    .config = an_vars,
    .config_dst = &an_svc_state.cfg,
    .hooks = an_hooks,
    .ready = an_ready,
    .drain = an_drain,
    .app = &an_svc_state,
    .errors = an_errors,
    .openapi = an_openapi_yaml,
};

int main(int argc, char **argv)
{
    return svc_main(&an_def, argc, argv);
}

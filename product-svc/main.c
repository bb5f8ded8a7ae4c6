/*
 * product-svc: the catalog, full-text search and the checkout saga's stock reservations on
 * Elasticsearch (OpenSearch locally), publishing its events to Kafka through an outbox
 * embedded in the documents. Configuration: `product-svc --help`.
 */
#include "product_svc.h"
#include "svc/config.h"
#include "svc/server.h"

#include <stddef.h>

static struct prod_svc prod_svc_state;

static const struct svc_config_var prod_vars[] = {
    {"OPENSEARCH_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "the search engine's REST endpoint, http://host:port (credentials go in the next two)",
     .offset = offsetof(struct prod_config, os_url)},
    {"OPENSEARCH_USER", SVC_CONFIG_STRING, "", 0, "user for HTTP basic authentication, if any",
     .offset = offsetof(struct prod_config, os_user)},
    {"OPENSEARCH_PASSWORD", SVC_CONFIG_STRING, "", SVC_CONFIG_SECRET,
     "password for HTTP basic authentication", .offset = offsetof(struct prod_config, os_password)},
    {"OPENSEARCH_TIMEOUT", SVC_CONFIG_DURATION, "5s", 0, "longest wait for one engine request",
     .offset = offsetof(struct prod_config, os_timeout_ms), .min = 100, .max = 600000},
    {"KAFKA_BROKERS", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "Kafka bootstrap servers, host:port[,host:port]",
     .offset = offsetof(struct prod_config, kafka_brokers)},
    {"OUTBOX_POLL", SVC_CONFIG_DURATION, "1s", 0,
     "longest wait of the outbox relay between two looks for documents with pending events",
     .offset = offsetof(struct prod_config, outbox_poll_ms), .min = 10, .max = 600000},
    {"OUTBOX_BATCH", SVC_CONFIG_INT, "100", 0, "events the outbox relay publishes per round",
     .offset = offsetof(struct prod_config, outbox_batch), .min = 1, .max = 10000},
    {"RESERVATION_SWEEP", SVC_CONFIG_DURATION, "5s", 0,
     "how often reservations past their TTL are released",
     .offset = offsetof(struct prod_config, sweep_every_ms), .min = 100, .max = 3600000},
    {0},
};

/* In order; stopped in reverse. */
static const struct svc_hook prod_hooks[] = {
    {"opensearch", prod_store_init, prod_store_fini},
    {"kafka", prod_producer_init, prod_producer_fini},
    {"outbox relay", prod_relay_init, prod_relay_fini},
    {"reservation sweep", prod_sweeper_init, prod_sweeper_fini},
    SVC_HOOKS_END,
};

static const struct svc_def prod_svc = {
    .name = "product-svc",
    .version = "0.1.0",
    .routes = prod_routes,
    .config = prod_vars,
    .config_dst = &prod_svc_state.cfg,
    .hooks = prod_hooks,
    .ready = prod_ready,
    .drain = prod_drain,
    .app = &prod_svc_state,
    .errors = prod_errors,
    .openapi = prod_openapi_yaml,
};

int main(int argc, char **argv)
{
    return svc_main(&prod_svc, argc, argv);
}

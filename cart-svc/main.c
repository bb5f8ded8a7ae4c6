/*
 * cart-svc: carts and the checkout saga across product-svc and user-svc, on Redis, publishing
 * its events to Kafka through an outbox stream. Configuration: `cart-svc --help`.
 */
#include "cart_svc.h"
#include "svc/config.h"
#include "svc/server.h"

#include <stddef.h>

static struct cart_svc cart_svc_state;

static const struct svc_config_var cart_vars[] = {
    {"REDIS_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
     "Redis URL with the ACL user, redis://user:password@host:port/db",
     .offset = offsetof(struct cart_config, redis_url)},
    {"REDIS_POOL", SVC_CONFIG_INT, "8", 0, "Redis connections (handlers, saga, consumer)",
     .offset = offsetof(struct cart_config, redis_pool), .min = 1, .max = 256},
    {"REDIS_TIMEOUT", SVC_CONFIG_DURATION, "2s", 0, "Redis connect and command timeout",
     .offset = offsetof(struct cart_config, redis_timeout_ms), .min = 100, .max = 60000},
    {"PRODUCT_SVC_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "product-svc's base URL, http://host:port",
     .offset = offsetof(struct cart_config, product_svc_url)},
    {"USER_SVC_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "user-svc's base URL, http://host:port", .offset = offsetof(struct cart_config, user_svc_url)},
    {"STEP_TIMEOUT", SVC_CONFIG_DURATION, "3s", 0,
     "deadline of one call to product-svc or user-svc, its retries included",
     .offset = offsetof(struct cart_config, step_timeout_ms), .min = 100, .max = 60000},
    {"CART_TTL", SVC_CONFIG_DURATION, "168h", 0,
     "a cart without a write for this long is deleted (every write starts it again)",
     .offset = offsetof(struct cart_config, cart_ttl_ms), .min = 1000,
     .max = 366LL * 24 * 3600 * 1000},
    {"SAGA_RESUME", SVC_CONFIG_DURATION, "5s", 0,
     "how often unfinished orders are resumed (a checkout also starts its own at once)",
     .offset = offsetof(struct cart_config, saga_resume_ms), .min = 100, .max = 3600000},
    {"SAGA_THREADS", SVC_CONFIG_INT, "8", 0,
     "orders the saga runs at once (each waits on product-svc and user-svc)",
     .offset = offsetof(struct cart_config, saga_threads), .min = 1, .max = SAGA_THREADS_MAX},
    {"SAGA_GIVE_UP", SVC_CONFIG_DURATION, "2m", 0,
     "how long a reservation or payment may go unanswered before the order is compensated "
     "and failed (after 20 attempts at most)",
     .offset = offsetof(struct cart_config, saga_give_up_ms), .min = 1000,
     .max = 24LL * 3600 * 1000},
    {"FAULT_AFTER_STEP", SVC_CONFIG_STRING, "", 0,
     "tests and workshops only: abort the process right after this saga step succeeds "
     "(reserve, charge or commit); empty: never",
     .offset = offsetof(struct cart_config, fault_after)},
    {"KAFKA_BROKERS", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED,
     "Kafka bootstrap servers, host:port[,host:port]",
     .offset = offsetof(struct cart_config, kafka_brokers)},
    {"OUTBOX_POLL", SVC_CONFIG_DURATION, "1s", 0,
     "longest wait of the outbox relay between two reads of the stream",
     .offset = offsetof(struct cart_config, outbox_poll_ms), .min = 10, .max = 600000},
    {"OUTBOX_BATCH", SVC_CONFIG_INT, "100", 0, "events the outbox relay publishes per round",
     .offset = offsetof(struct cart_config, outbox_batch), .min = 1, .max = 10000},
    {0},
};

/* In order; stopped in reverse. */
static const struct svc_hook cart_hooks[] = {
    {"redis", cart_store_init, cart_store_fini},
    {"remote", cart_remote_init, cart_remote_fini},
    {"kafka", cart_producer_init, cart_producer_fini},
    {"outbox relay", cart_relay_init, cart_relay_fini},
    {"consumer", cart_consumer_init, cart_consumer_fini},
    {"saga", cart_saga_init, cart_saga_fini},
    SVC_HOOKS_END,
};

static const struct svc_def cart_svc = {
    .name = "cart-svc",
    .version = "0.1.0",
    .routes = cart_routes,
    .config = cart_vars,
    .config_dst = &cart_svc_state.cfg,
    .hooks = cart_hooks,
    .ready = cart_ready,
    .drain = cart_drain,
    .app = &cart_svc_state,
    .errors = cart_errors,
    .openapi = cart_openapi_yaml,
};

int main(int argc, char **argv)
{
    return svc_main(&cart_svc, argc, argv);
}

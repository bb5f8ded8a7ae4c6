/* echo-svc: libsvc's example service. Configuration: `echo-svc --help`. */
#include "echo.h"

#include "svc/config.h"
#include "svc/error.h"

#include <stddef.h>
#include <unistd.h>

struct echo_config {
    char *wait_for; /* a path standing in for an engine: start-up waits until it exists */
};

static struct echo_config echo_cfg;

static const struct svc_config_var echo_vars[] = {
    {"ECHO_WAIT_FOR", SVC_CONFIG_STRING, "", 0,
     "a file that must exist before echo-svc starts, as an engine must answer before a real "
     "service starts (the tests of START_TIMEOUT)",
     .offset = offsetof(struct echo_config, wait_for)},
    {0},
};

static int echo_engine_init(void *app)
{
    const struct echo_config *c = app;

    if (c->wait_for == NULL || c->wait_for[0] == '\0' || access(c->wait_for, F_OK) == 0)
        return 0;
    return SVC_EUNAVAILABLE;
}

static const struct svc_hook echo_hooks[] = {
    {"engine", echo_engine_init, NULL},
    SVC_HOOKS_END,
};

static const struct svc_def echo_svc = {
    .name = "echo-svc",
    .version = "0.1.0",
    .routes = echo_routes,
    .config = echo_vars,
    .config_dst = &echo_cfg,
    .hooks = echo_hooks,
    .app = &echo_cfg,
};

int main(int argc, char **argv)
{
    return svc_main(&echo_svc, argc, argv);
}

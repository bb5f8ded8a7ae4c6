/* echo-svc: libsvc's example service. Configuration: `echo-svc --help`. */
#include "echo.h"

static const struct svc_def echo_svc = {
    .name = "echo-svc",
    .version = "0.1.0",
    .routes = echo_routes,
};

int main(int argc, char **argv)
{
    return svc_main(&echo_svc, argc, argv);
}

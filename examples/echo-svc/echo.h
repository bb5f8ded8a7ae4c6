/*
 * echo-svc: the smallest service built on libsvc. It exists to test and measure the skeleton
 * itself (tests/lib/server_http_test.c, bench/http_baseline), and to show what a service's
 * declaration looks like. It owns no engine.
 */
#ifndef ECHO_SVC_H
#define ECHO_SVC_H

#include "svc/server.h"

extern const struct svc_route echo_routes[];

#endif

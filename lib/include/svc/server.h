/*
 * server.h: a service's declaration and its HTTP server.
 *
 * A service's main.c is a declaration: its routes, its config table, its hooks, and
 *
 *     int main(int argc, char **argv) { return svc_main(&user_svc, argc, argv); }
 *
 * svc_main() loads the configuration (lib's own variables and the service's), runs the init
 * hooks in order, serves until SIGTERM/SIGINT, drains, runs the fini hooks in reverse order and
 * returns the process exit status. Tests start the same server in-process on port 0 with
 * svc_server_start().
 */
#ifndef SVC_SERVER_H
#define SVC_SERVER_H

#include "svc/error.h"
#include "svc/http.h"

#include <stdbool.h>
#include <stddef.h>

struct svc_config_var;
struct svc_health;
struct svc_server;

/* One start-up step with its matching shutdown step (either may be NULL). */
struct svc_hook {
    const char *name;
    /* 0 or a negative SVC_E*; a failure stops the start-up, except an engine not reachable
     * yet or refusing the credentials yet (SVC_EUNAVAILABLE, _ETIMEDOUT, _EUNAUTH,
     * _EFORBIDDEN), retried every second for START_TIMEOUT. It must undo its own work when it
     * fails, since it can be called again. */
    int (*init)(void *app);
    void (*fini)(void *app); /* run in reverse order, only for hooks whose init succeeded */
};

#define SVC_HOOKS_END                                                                              \
    {                                                                                              \
        NULL, NULL, NULL                                                                           \
    }

struct svc_def {
    const char *name;                    /* "user-svc" */
    const char *version;                 /* "0.1.0" */
    const struct svc_route *routes;      /* ends with SVC_ROUTES_END */
    const struct svc_config_var *config; /* the service's own variables, or NULL */
    void *config_dst;                    /* where they are loaded */
    const struct svc_hook *hooks;        /* ends with SVC_HOOKS_END, or NULL */
    /* /readyz: report every dependency with svc_health_report(); NULL = always ready. */
    void (*ready)(void *app, struct svc_health *h);
    /* Called when draining starts (stop consumers, relays), before in-flight requests end. */
    void (*drain)(void *app);
    void *app; /* handed to handlers (svc_req_app) and hooks */
    /* The service's own errors (svc/error.h: SVC_ERR_DEF rows ending with SVC_ERRORS_END), or
     * NULL: registered at start, so svc_resp_error() renders them. */
    const struct svc_err_def *errors;
    /* The service's OpenAPI document, NUL-terminated (cmake/Embed.cmake's <prefix>_openapi_yaml
     * is), served at GET /openapi.yaml as application/yaml; NULL: no such route. */
    const unsigned char *openapi;
};

/* Reports one dependency for /readyz. DETAIL (printf format) says what is wrong; may be NULL
 * when OK is true. */
void svc_health_report(struct svc_health *h, const char *component, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Server settings; svc_main() fills them from HTTP_* variables. The limits of the edge, each
 * answered promptly rather than by a stalled connection:
 *
 *   request line and headers   must fit in conn_memory with libmicrohttpd's own records (about
 *                              7 kB at 8 KiB): else 431 (text/html, from libmicrohttpd)
 *   header fields              at most SVC_MAX_HEADERS: else 431 problem+json
 *   query parameters           at most SVC_MAX_QUERY (svc/router.h): else 414 problem+json
 *   request head               complete within head_timeout_ms of the connection's first byte
 *                              opportunity (its accept, or the end of its previous request):
 *                              else 408 and the connection closed
 *   request body               arrives at max_body bytes at most (413 at once, then closed) and
 *                              at min_body_rate bytes/s at least after head_timeout_ms of grace
 *                              (408, closed)
 *   idle keep-alive            conn_timeout_s, then closed silently
 *   connections per address    max_conn_per_ip (0: no limit): further ones are closed at accept
 *   connections in all         conn_limit: a new connection beyond it closes the oldest one
 *                              that is idle or still sending its head (503 for the latter), or
 *                              is itself answered 503 when every connection is busy
 */
struct svc_http_opts {
    const char *bind;      /* "127.0.0.1" or "0.0.0.0" */
    int port;              /* 0: any free port (see svc_server_port) */
    int threads;           /* thread pool size */
    size_t max_body;       /* default request body cap */
    size_t conn_memory;    /* per-connection memory (headers + buffers) */
    int conn_limit;        /* concurrent connections */
    int conn_timeout_s;    /* idle connection timeout */
    int head_timeout_ms;   /* deadline for a whole request head */
    int min_body_rate;     /* bytes/s a body must keep up after the head deadline's grace */
    int max_conn_per_ip;   /* connections per client address; 0: no limit */
    int shutdown_grace_ms; /* how long in-flight requests may take to finish at shutdown */
    bool access_log;       /* one JSON line per request */
};

/* More header fields than this is a 431 (libmicrohttpd's pool may refuse fewer, longer ones). */
enum { SVC_MAX_HEADERS = 64 };

/* Defaults: 127.0.0.1, port 0, 2 threads, 1 MiB body, 8 KiB per connection, 1024 connections,
 * 30 s idle timeout, 10 s head deadline, 1024 bytes/s body rate, 256 connections per address,
 * 10 s grace, access log on. */
void svc_http_opts_default(struct svc_http_opts *o);

/*
 * Starts serving DEF's routes plus /healthz, /readyz, /metrics and, when DEF has a document,
 * /openapi.yaml; registers DEF's errors (svc_err_register()). Does not run hooks or touch
 * signals. Returns NULL (after logging why) when the port cannot be bound or the errors
 * cannot be registered.
 */
struct svc_server *svc_server_start(const struct svc_def *def, const struct svc_http_opts *o);

/* The port actually bound (useful with port 0). */
int svc_server_port(const struct svc_server *s);

/*
 * Graceful stop: /readyz turns 503 at once, in-flight requests get up to the grace period to
 * finish (requests that still arrive meanwhile are served too), then the server stops, closing
 * the listening socket, and is freed. Returns the number
 * of requests still in flight when the grace period ran out (0 when all finished).
 */
int svc_server_stop(struct svc_server *s);

/* Marks the server as draining (readyz 503) without stopping it yet. */
void svc_server_drain(struct svc_server *s);

/* Requests being handled right now. */
int svc_server_inflight(const struct svc_server *s);

/* The whole life of a service process; returns its exit status (0, 1 runtime, 2 config). */
int svc_main(const struct svc_def *def, int argc, char **argv);

#endif

/*
 * main.c: svc_main(), the whole life of a service process.
 *
 * Start-up: arguments, configuration (every problem reported at once, exit 2), logs, init
 * hooks in order, the HTTP server. Then wait for SIGTERM or SIGINT. Shutdown: /readyz turns
 * 503, the service's drain hook runs, the server stops accepting and lets in-flight requests
 * finish within SHUTDOWN_GRACE, the fini hooks run in reverse order, exit 0.
 */
#include "internal.h"

#include "svc/config.h"
#include "svc/error.h"
#include "svc/log.h"
#include "svc/time.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct lib_config {
    char *bind;
    int port;
    int threads;
    int max_body;
    int conn_memory;
    int conn_limit;
    int64_t conn_timeout_ms;
    int64_t head_timeout_ms;
    int min_body_rate;
    int max_conn_per_ip;
    int64_t grace_ms;
    int64_t start_timeout_ms;
    int log_level;
    bool access_log;
    char *log_file;
    int log_max_size;
    bool log_buffer;
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct svc_config_var lib_vars[] = {
    {"HTTP_BIND", SVC_CONFIG_STRING, "127.0.0.1", 0, "IPv4 address to listen on",
     offsetof(struct lib_config, bind), 0, 0, NULL},
    {"HTTP_PORT", SVC_CONFIG_INT, NULL, SVC_CONFIG_REQUIRED, "TCP port to listen on",
     offsetof(struct lib_config, port), 1, 65535, NULL},
    {"HTTP_THREADS", SVC_CONFIG_INT, "2", 0, "HTTP worker threads",
     offsetof(struct lib_config, threads), 1, 256, NULL},
    {"HTTP_MAX_BODY", SVC_CONFIG_INT, "1048576", 0, "default request body cap in bytes (413)",
     offsetof(struct lib_config, max_body), 1, 64 << 20, NULL},
    /* libmicrohttpd zeroes this pool on every request of a keep-alive connection: 32 KiB cost
     * more than everything else a /healthz does (bench/http_baseline, docs/performance.md). */
    {"HTTP_CONN_MEMORY", SVC_CONFIG_INT, "8192", 0,
     "memory per connection in bytes; the request line and headers must fit (about 7 kB at "
     "8192), else 431",
     offsetof(struct lib_config, conn_memory), 4096, 1 << 20, NULL},
    {"HTTP_CONN_LIMIT", SVC_CONFIG_INT, "1024", 0,
     "concurrent connections; beyond it a new one closes the oldest idle or half-sent one (503)",
     offsetof(struct lib_config, conn_limit), 1, 65536, NULL},
    {"HTTP_CONN_TIMEOUT", SVC_CONFIG_DURATION, "30s", 0, "idle keep-alive connection timeout",
     offsetof(struct lib_config, conn_timeout_ms), 1000, 3600000, NULL},
    {"HTTP_HEAD_TIMEOUT", SVC_CONFIG_DURATION, "10s", 0,
     "deadline for a whole request line and headers (408), and the grace before "
     "HTTP_MIN_BODY_RATE applies",
     offsetof(struct lib_config, head_timeout_ms), 100, 600000, NULL},
    {"HTTP_MIN_BODY_RATE", SVC_CONFIG_INT, "1024", 0,
     "bytes per second a request body must average after the head timeout's grace (408)",
     offsetof(struct lib_config, min_body_rate), 1, 1 << 30, NULL},
    {"HTTP_MAX_CONN_PER_IP", SVC_CONFIG_INT, "256", 0,
     "connections per client address, 0 for no limit (behind a proxy, at least its pool size)",
     offsetof(struct lib_config, max_conn_per_ip), 0, 65536, NULL},
    {"SHUTDOWN_GRACE", SVC_CONFIG_DURATION, "10s", 0,
     "how long in-flight requests may take to finish at shutdown",
     offsetof(struct lib_config, grace_ms), 0, 600000, NULL},
    /* In Kubernetes a service's pod starts before its engine is up, or before the engine's
     * setup Job created its user: waiting here beats a crash loop's growing back-off. */
    {"START_TIMEOUT", SVC_CONFIG_DURATION, "0", 0,
     "how long start-up retries, once a second, a step that failed because an engine is not "
     "reachable yet or refused the credentials (its user not created yet); 0 exits at once",
     offsetof(struct lib_config, start_timeout_ms), 0, 3600000, NULL},
    {"LOG_LEVEL", SVC_CONFIG_ENUM, "info", 0, "lowest level logged",
     offsetof(struct lib_config, log_level), 0, 0, log_levels},
    {"ACCESS_LOG", SVC_CONFIG_BOOL, "true", 0, "one JSON log line per request",
     offsetof(struct lib_config, access_log), 0, 0, NULL},
    {"LOG_FILE", SVC_CONFIG_STRING, "", 0,
     "write logs to this file, rotated by size (LOG_MAX_SIZE), instead of stderr",
     offsetof(struct lib_config, log_file), 0, 0, NULL},
    {"LOG_MAX_SIZE", SVC_CONFIG_INT, "52428800", 0,
     "LOG_FILE is renamed to LOG_FILE.1 and started again at this many bytes",
     offsetof(struct lib_config, log_max_size), 4096, 1 << 30, NULL},
    {"LOG_BUFFER", SVC_CONFIG_BOOL, "true", 0,
     "gather info lines (the access log) and write them every 500 ms or 64 KiB; warnings and "
     "errors are written at once",
     offsetof(struct lib_config, log_buffer), 0, 0, NULL},
    {0},
};

#define START_STOPPED 1

/*
 * Runs H's init. A failure that the engine's side may still fix is retried once a second until
 * TIMEOUT_MS have passed: not reachable yet (503, 504), or not accepting the service's
 * credentials yet (401, 403: in Kubernetes the engine's setup Job creates the user and its
 * database after both pods started). SIGTERM or SIGINT (blocked, so taken from SIGS) ends the
 * wait. Returns 0, START_STOPPED when a signal ended it, or the step's error (logged).
 */
static bool start_retryable(int rc)
{
    return rc == SVC_EUNAVAILABLE || rc == SVC_ETIMEDOUT || rc == SVC_EUNAUTH ||
           rc == SVC_EFORBIDDEN;
}

static int init_hook(const struct svc_hook *h, void *app, const sigset_t *sigs, int64_t timeout_ms)
{
    int64_t deadline = svc_now_ms() + timeout_ms;
    const struct timespec second = {1, 0};
    int rc, tries = 0;

    if (h->init == NULL)
        return 0;
    while (start_retryable(rc = h->init(app)) && svc_now_ms() < deadline) {
        if (tries++ % 10 == 0)
            svc_log_warn("'%s' failed: %s; retrying every second for up to %lld s more "
                         "(START_TIMEOUT)",
                         h->name, svc_err_title(rc),
                         (long long)((deadline - svc_now_ms() + 999) / 1000));
        if (sigtimedwait(sigs, NULL, &second) > 0) {
            svc_log_info("stopped by a signal while starting");
            return START_STOPPED;
        }
    }
    if (rc != 0)
        svc_log_error("cannot start: '%s' failed: %s", h->name, svc_err_title(rc));
    return rc;
}

static void usage(const struct svc_def *def, FILE *out)
{
    const struct svc_config_var *tables[3] = {lib_vars, def->config, NULL};

    fprintf(out,
            "usage: %s [--help | --version]\n\n"
            "%s %s is configured through environment variables only:\n\n",
            def->name, def->name, def->version);
    svc_config_help(tables, out);
}

/* Runs the fini hooks of the first N hooks, newest first. */
static void fini_hooks(const struct svc_def *def, int n)
{
    while (n-- > 0) {
        if (def->hooks[n].fini != NULL) {
            svc_log_info("stopping '%s'", def->hooks[n].name);
            def->hooks[n].fini(def->app);
        }
    }
}

int svc_main(const struct svc_def *def, int argc, char **argv)
{
    struct lib_config cfg = {0};
    struct svc_buf problems = SVC_BUF_INIT;
    const struct svc_config_var *tables[3] = {lib_vars, def->config, NULL};
    const void *dsts[3] = {&cfg, def->config_dst, NULL};
    struct svc_http_opts o;
    struct svc_server *srv;
    sigset_t sigs;
    int sig = 0, nhooks = 0, rc = 0, lib_rc, svc_rc = 0, left;

    svc_log_set_service(def->name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(def, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", def->name, def->version);
            return 0;
        }
        fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", def->name, argv[i]);
        return 2;
    }

    lib_rc = svc_config_load(lib_vars, &cfg, NULL, &problems);
    if (def->config != NULL)
        svc_rc = svc_config_load(def->config, def->config_dst, NULL, &problems);
    if (lib_rc != 0 || svc_rc != 0) {
        fprintf(stderr,
                "%s: cannot start, the configuration has problems:\n%s"
                "(%s --help lists every variable)\n",
                def->name, svc_buf_str(&problems), def->name);
        rc = 2;
        goto out_config;
    }
    svc_log_set_level((enum svc_log_level)cfg.log_level);
    if (cfg.log_file != NULL && cfg.log_file[0] != '\0' &&
        (lib_rc = svc_log_open(cfg.log_file, cfg.log_max_size)) != 0) {
        fprintf(stderr, "%s: cannot start: LOG_FILE '%s': %s\n", def->name, cfg.log_file,
                strerror(-lib_rc));
        rc = 2;
        goto out_config;
    }
    /* Signals are taken synchronously by this thread only: block them before any other thread
     * exists (the log's flusher is the first), so every thread inherits the mask. A thread
     * without it would take a SIGTERM sent while this one is not in sigwait, and die of it. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (cfg.log_buffer)
        svc_log_set_buffered(true);
    svc_config_log(tables, dsts);

    /* Before the hooks, so that their failures are logged with the service's words too. */
    if (def->errors != NULL && svc_err_register(def->errors) != 0) {
        rc = 1;
        goto out_hooks;
    }
    for (; def->hooks != NULL && def->hooks[nhooks].name != NULL; nhooks++) {
        if ((rc = init_hook(&def->hooks[nhooks], def->app, &sigs, cfg.start_timeout_ms)) != 0) {
            rc = rc == START_STOPPED ? 0 : 1;
            goto out_hooks;
        }
    }

    svc_http_opts_default(&o);
    o.bind = cfg.bind;
    o.port = cfg.port;
    o.threads = cfg.threads;
    o.max_body = (size_t)cfg.max_body;
    o.conn_memory = (size_t)cfg.conn_memory;
    o.conn_limit = cfg.conn_limit;
    o.conn_timeout_s = (int)(cfg.conn_timeout_ms / 1000);
    o.head_timeout_ms = (int)cfg.head_timeout_ms;
    o.min_body_rate = cfg.min_body_rate;
    o.max_conn_per_ip = cfg.max_conn_per_ip;
    o.shutdown_grace_ms = (int)cfg.grace_ms;
    o.access_log = cfg.access_log;
    srv = svc_server_start(def, &o);
    if (srv == NULL) {
        rc = 1;
        goto out_hooks;
    }
    svc_log_info("%s %s listening on %s:%d with %d threads", def->name, def->version, o.bind,
                 svc_server_port(srv), o.threads);

    while (sigwait(&sigs, &sig) != 0)
        ;
    svc_log_info("%s received: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    svc_server_drain(srv);
    if (def->drain != NULL)
        def->drain(def->app);
    left = svc_server_stop(srv);
    if (left > 0)
        svc_log_warn("%d requests were cut off at shutdown", left);

out_hooks:
    fini_hooks(def, nhooks);
    if (rc == 0)
        svc_log_info("stopped");
    svc_log_close();
out_config:
    svc_config_release(lib_vars, &cfg);
    if (def->config != NULL)
        svc_config_release(def->config, def->config_dst);
    svc_buf_release(&problems);
    return rc;
}

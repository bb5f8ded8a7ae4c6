/*
 * config.h: configuration from environment variables, declared in a table.
 *
 * Each program declares its variables in a static const table ending in {0}, each naming the
 * member of a config struct that receives the value (redis static_configs[]):
 *
 *   struct user_config { char *pg_url; int pg_pool; int64_t pg_timeout_ms; };
 *
 *   static const struct svc_config_var user_vars[] = {
 *       {"USER_PG_URL", SVC_CONFIG_STRING, NULL, SVC_CONFIG_REQUIRED | SVC_CONFIG_SECRET,
 *        "PostgreSQL connection URL", .offset = offsetof(struct user_config, pg_url)},
 *       {"USER_PG_POOL", SVC_CONFIG_INT, "8", 0, "connections in the pool",
 *        .offset = offsetof(struct user_config, pg_pool), .min = 1, .max = 256},
 *       {"USER_PG_TIMEOUT", SVC_CONFIG_DURATION, "5s", 0, "statement timeout",
 *        .offset = offsetof(struct user_config, pg_timeout_ms), .min = 100, .max = 60000},
 *       {0},
 *   };
 *
 * Name, type, default, flags and help go by position, the rest by designator (.offset = ...),
 * which also keeps -Wmissing-field-initializers quiet.
 *
 * Several tables load into several structs (libsvc's own and the service's) with the same
 * problems buffer, so start-up reports every problem of every table at once:
 *
 *   int lib_rc = svc_config_load(lib_vars, &lib_cfg, NULL, &problems);
 *   int svc_rc = svc_config_load(user_vars, &cfg, NULL, &problems);
 *   if (lib_rc != 0 || svc_rc != 0) {
 *       fputs(svc_buf_str(&problems), stderr);
 *       exit(2);
 *   }
 *
 * Values are read once at start-up; nothing here is thread-safe or meant for the hot path.
 */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include "svc/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The type of a variable, and of the member that receives it. */
enum svc_config_type {
    SVC_CONFIG_END = 0,  /* the sentinel {0} */
    SVC_CONFIG_STRING,   /* char *: a copy (svc_strdup), NULL when unset without a default;
                          * free with svc_config_release() */
    SVC_CONFIG_INT,      /* int: decimal, within [.min, .max] (both 0: any int) */
    SVC_CONFIG_BOOL,     /* bool: true/false, 1/0, yes/no, on/off, any case */
    SVC_CONFIG_DURATION, /* int64_t milliseconds: a whole number and a unit, "250ms", "5s",
                          * "2m", "1h" (or a bare "0"), within [.min, .max] ms (both 0: any) */
    SVC_CONFIG_ENUM,     /* int: the index of the value in .choices (NULL-terminated) */
};

/* Flags. SVC_CONFIG_REQUIRED: unset (or set to "") is a problem, and .def is ignored.
 * SVC_CONFIG_SECRET: the value is never shown, not in problems, not in the log, not in --help
 * (its default included). */
#define SVC_CONFIG_REQUIRED 0x1u
#define SVC_CONFIG_SECRET   0x2u

/*
 * One variable. An unset or empty variable takes its default (.def, parsed like a value);
 * without one, its member is set to zero (NULL, 0, false). Bounds are inclusive. The members
 * are in the order a table entry reads best, not the tightest one: 8 bytes of padding per
 * variable do not matter in a static table.
 */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
struct svc_config_var {
    const char *name; /* NULL ends the table */
    enum svc_config_type type;
    const char *def;  /* default, as text; NULL for none */
    unsigned flags;   /* SVC_CONFIG_REQUIRED, SVC_CONFIG_SECRET */
    const char *help; /* one line for --help */
    size_t offset;    /* of the member in the config struct */
    long long min, max;
    const char *const *choices; /* SVC_CONFIG_ENUM */
};

/*
 * Reads every variable of VARS from ENVP ("NAME=value" strings, NULL-terminated; NULL for the
 * process environment) into the struct at DST, which should be zeroed: string members are
 * overwritten, not freed. Every problem (a required variable unset, a value that does not
 * parse or is out of bounds, a bad default) is appended to PROBLEMS as one line ending in
 * '\n' that names the variable and, unless it is secret, the value; reading goes on after a
 * problem so all are reported at once.
 *
 * Returns 0, or SVC_EINVAL when it appended any problem. Either way, release DST with
 * svc_config_release().
 */
int svc_config_load(const struct svc_config_var *vars, void *dst, const char *const *envp,
                    struct svc_buf *problems);

/* Frees the strings svc_config_load() put in DST and sets them to NULL. */
void svc_config_release(const struct svc_config_var *vars, void *dst);

/*
 * Writes to OUT, for --help, every variable of the NULL-terminated list of TABLES: its name,
 * type and bounds, default, whether it is required or secret, and its help text, aligned in
 * columns. No header: the caller prints the usage line.
 */
void svc_config_help(const struct svc_config_var *const *tables, FILE *out);

/*
 * Logs the effective configuration as one info line, {"msg":"effective configuration",
 * "config":{"NAME":value,...}}, for the NULL-terminated list of TABLES and the matching list
 * of loaded structs DSTS (DSTS[i] goes with TABLES[i]). Integers and booleans are JSON values,
 * durations text ("5s"), enums their name, unset strings null. Secret values are shown as
 * "***", and so is the password of any URL ("postgresql://user:***@host/db") and the value of
 * any "password=" parameter, in every string.
 */
void svc_config_log(const struct svc_config_var *const *tables, const void *const *dsts);

#endif

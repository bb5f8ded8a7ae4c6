#include "svc/config.h"

#include "svc/alloc.h"
#include "svc/error.h"
#include "svc/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* POSIX declares it only with _GNU_SOURCE; it is always there. */
extern char **environ;

/* How much of a bad value a problem line shows: enough to recognise it, not a whole blob. */
enum { SHOWN_MAX = 64 };

static const char *const true_words[] = {"true", "1", "yes", "on", NULL};
static const char *const false_words[] = {"false", "0", "no", "off", NULL};

static bool bounded(const struct svc_config_var *v)
{
    return v->min != 0 || v->max != 0;
}

static const char *lookup(const char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (; *envp != NULL; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* ---- durations -------------------------------------------------------------------------- */

static const struct {
    const char *suffix;
    int64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

static bool parse_duration(const char *s, int64_t *out)
{
    int64_t n = 0;
    const char *p = s;

    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (INT64_MAX - (*p - '0')) / 10)
            return false;
        n = n * 10 + (*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].suffix) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return false;
            *out = n * units[i].ms;
            return true;
        }
    }
    return false;
}

/* MS in the largest unit that shows it exactly: "250ms", "5s", "2m", "1h". */
static void format_duration(long long ms, char *out, size_t size)
{
    size_t i = sizeof(units) / sizeof(units[0]);

    if (ms == 0) {
        snprintf(out, size, "0s");
        return;
    }
    while (--i > 0 && ms % units[i].ms != 0)
        ;
    snprintf(out, size, "%lld%s", ms / units[i].ms, units[i].suffix);
}

/* ---- describing ------------------------------------------------------------------------- */

/* The rule a value of V must follow, as the end of "must be ...": "an integer from 1 to 10". */
static void describe(const struct svc_config_var *v, struct svc_buf *b)
{
    char lo[32], hi[32];

    switch (v->type) {
    case SVC_CONFIG_INT:
        if (bounded(v))
            svc_buf_addf(b, "an integer from %lld to %lld", v->min, v->max);
        else
            svc_buf_adds(b, "an integer");
        break;
    case SVC_CONFIG_BOOL:
        svc_buf_adds(b, "a boolean (true/false, 1/0, yes/no, on/off)");
        break;
    case SVC_CONFIG_DURATION:
        if (bounded(v)) {
            format_duration(v->min, lo, sizeof(lo));
            format_duration(v->max, hi, sizeof(hi));
            svc_buf_addf(b, "a duration from %s to %s", lo, hi);
        } else {
            svc_buf_adds(b, "a duration like 250ms, 5s, 2m or 1h");
        }
        break;
    case SVC_CONFIG_ENUM:
        svc_buf_adds(b, "one of ");
        for (size_t i = 0; v->choices != NULL && v->choices[i] != NULL; i++)
            svc_buf_addf(b, "%s%s", i == 0 ? "" : ", ", v->choices[i]);
        break;
    case SVC_CONFIG_STRING:
    case SVC_CONFIG_END:
        svc_buf_adds(b, "a string");
        break;
    }
}

/* The short type shown by --help: "integer from 1 to 65535", "duration", "string". */
static void describe_type(const struct svc_config_var *v, struct svc_buf *b)
{
    char lo[32], hi[32];

    switch (v->type) {
    case SVC_CONFIG_STRING:
    case SVC_CONFIG_END:
        svc_buf_adds(b, "string");
        break;
    case SVC_CONFIG_INT:
        svc_buf_adds(b, "integer");
        if (bounded(v))
            svc_buf_addf(b, " from %lld to %lld", v->min, v->max);
        break;
    case SVC_CONFIG_BOOL:
        svc_buf_adds(b, "boolean");
        break;
    case SVC_CONFIG_DURATION:
        svc_buf_adds(b, "duration");
        if (bounded(v)) {
            format_duration(v->min, lo, sizeof(lo));
            format_duration(v->max, hi, sizeof(hi));
            svc_buf_addf(b, " from %s to %s", lo, hi);
        }
        break;
    case SVC_CONFIG_ENUM:
        describe(v, b);
        break;
    }
}

/* ---- masking ---------------------------------------------------------------------------- */

/* Appends S with the password of every URL in it replaced: "scheme://user:***@host". The
 * userinfo ends at the last '@' before the path, so a password holding a raw '@' is still
 * hidden whole. */
static void mask_urls(struct svc_buf *b, const char *s)
{
    const char *p = s, *scheme;

    while ((scheme = strstr(p, "://")) != NULL) {
        const char *auth = scheme + 3;
        size_t n = strcspn(auth, "/?#");
        const char *at = NULL, *colon;

        for (size_t i = 0; i < n; i++)
            if (auth[i] == '@')
                at = auth + i;
        colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon == NULL) {
            svc_buf_add(b, p, (size_t)(auth - p));
            p = auth;
            continue;
        }
        svc_buf_add(b, p, (size_t)(colon + 1 - p));
        svc_buf_adds(b, "***");
        p = at;
    }
    svc_buf_adds(b, p);
}

/* Appends S with the value of every "password=" parameter (URL query or libpq key/value
 * string) replaced by "***". */
static void mask_params(struct svc_buf *b, const char *s)
{
    static const char key[] = "password=";
    const size_t klen = sizeof(key) - 1;
    const char *p = s;

    for (const char *q = s; *q != '\0'; q++) {
        if (strncasecmp(q, key, klen) != 0)
            continue;
        svc_buf_add(b, p, (size_t)(q + klen - p));
        svc_buf_adds(b, "***");
        q += klen;
        q += strcspn(q, "& ;,");
        p = q;
        if (*q == '\0')
            break;
    }
    svc_buf_adds(b, p);
}

/* Appends S with every password in it masked. */
static void add_masked(struct svc_buf *b, const char *s)
{
    struct svc_buf urls = SVC_BUF_INIT;

    mask_urls(&urls, s);
    mask_params(b, svc_buf_str(&urls));
    svc_buf_release(&urls);
}

/* Appends S as a problem line shows it: passwords masked, control characters as '?' so the
 * line stays one line, cut after SHOWN_MAX bytes. */
static void add_shown(struct svc_buf *b, const char *s)
{
    struct svc_buf m = SVC_BUF_INIT;
    size_t n;

    add_masked(&m, s);
    n = m.len > SHOWN_MAX ? SHOWN_MAX : m.len;
    /* Do not cut inside a UTF-8 sequence. */
    while (n < m.len && n > 0 && ((unsigned char)m.data[n] & 0xc0) == 0x80)
        n--;
    svc_buf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        char c = m.data[i];

        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        svc_buf_addc(b, c);
    }
    svc_buf_adds(b, n < m.len ? "...\"" : "\"");
    svc_buf_release(&m);
}

/* ---- loading ---------------------------------------------------------------------------- */

/* A mistake in the table itself, which would otherwise refuse every value or read garbage. */
static const char *table_mistake(const struct svc_config_var *v)
{
    switch (v->type) {
    case SVC_CONFIG_INT:
    case SVC_CONFIG_DURATION:
        if (v->min > v->max)
            return "has .min > .max";
        break;
    case SVC_CONFIG_ENUM:
        if (v->choices == NULL || v->choices[0] == NULL)
            return "is an enum without .choices";
        break;
    case SVC_CONFIG_STRING:
    case SVC_CONFIG_BOOL:
        break;
    case SVC_CONFIG_END:
        return "has no type";
    }
    return NULL;
}

static bool word_in(const char *s, const char *const *words)
{
    for (; *words != NULL; words++)
        if (strcasecmp(s, *words) == 0)
            return true;
    return false;
}

/* Parses S as V says into MEMBER; false when S does not parse or is out of bounds. */
static bool parse(const struct svc_config_var *v, const char *s, unsigned char *member)
{
    long long ll;
    int64_t ms;
    char *end;
    bool b;
    int i;

    switch (v->type) {
    case SVC_CONFIG_STRING: {
        char *copy = svc_strdup(s);

        memcpy(member, &copy, sizeof(copy));
        return true;
    }
    case SVC_CONFIG_INT:
        /* strtoll would skip leading spaces and accept "0x10" with base 0: neither is meant. */
        if (!((s[0] >= '0' && s[0] <= '9') ||
              ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')))
            return false;
        errno = 0;
        ll = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || ll < INT_MIN || ll > INT_MAX ||
            (bounded(v) && (ll < v->min || ll > v->max)))
            return false;
        i = (int)ll;
        memcpy(member, &i, sizeof(i));
        return true;
    case SVC_CONFIG_BOOL:
        if (word_in(s, true_words))
            b = true;
        else if (word_in(s, false_words))
            b = false;
        else
            return false;
        memcpy(member, &b, sizeof(b));
        return true;
    case SVC_CONFIG_DURATION:
        if (!parse_duration(s, &ms) || (bounded(v) && (ms < v->min || ms > v->max)))
            return false;
        memcpy(member, &ms, sizeof(ms));
        return true;
    case SVC_CONFIG_ENUM:
        for (i = 0; v->choices[i] != NULL; i++) {
            if (strcasecmp(s, v->choices[i]) == 0) {
                memcpy(member, &i, sizeof(i));
                return true;
            }
        }
        return false;
    case SVC_CONFIG_END:
        break;
    }
    return false;
}

/* Sets MEMBER to the zero of V's type. */
static void zero(const struct svc_config_var *v, unsigned char *member)
{
    static const int64_t zeros[2];
    size_t n = v->type == SVC_CONFIG_STRING     ? sizeof(char *)
               : v->type == SVC_CONFIG_BOOL     ? sizeof(bool)
               : v->type == SVC_CONFIG_DURATION ? sizeof(int64_t)
                                                : sizeof(int);

    memcpy(member, zeros, n);
}

int svc_config_load(const struct svc_config_var *vars, void *dst, const char *const *envp,
                    struct svc_buf *problems)
{
    unsigned char *base = dst;
    int rc = 0;

    if (envp == NULL)
        envp = (const char *const *)environ;
    /* Strings first, all of them, so that svc_config_release() is safe whatever happens. */
    for (const struct svc_config_var *v = vars; v->name != NULL; v++)
        if (v->type == SVC_CONFIG_STRING)
            zero(v, base + v->offset);
    for (const struct svc_config_var *v = vars; v->name != NULL; v++) {
        const char *value = lookup(envp, v->name), *mistake = table_mistake(v);
        bool is_default = false;

        if (mistake != NULL) {
            svc_buf_addf(problems, "'%s' %s (a mistake in the program's table)\n", v->name,
                         mistake);
            rc = SVC_EINVAL;
            continue;
        }
        /* FOO= in a compose file or a k8s manifest means "not set", not "set to nothing". */
        if (value != NULL && value[0] == '\0')
            value = NULL;
        if (value == NULL && (v->flags & SVC_CONFIG_REQUIRED)) {
            svc_buf_addf(problems, "'%s' is required", v->name);
            if (v->help != NULL)
                svc_buf_addf(problems, ": %s", v->help);
            svc_buf_addc(problems, '\n');
            rc = SVC_EINVAL;
            continue;
        }
        if (value == NULL && v->def != NULL && v->def[0] != '\0') {
            value = v->def;
            is_default = true;
        }
        if (value == NULL) {
            zero(v, base + v->offset);
            continue;
        }
        if (!parse(v, value, base + v->offset)) {
            svc_buf_addf(problems, "'%s' must be ", v->name);
            describe(v, problems);
            if (v->flags & SVC_CONFIG_SECRET) {
                svc_buf_adds(problems, is_default
                                           ? " (its default is wrong; value not shown: secret)"
                                           : " (value not shown: secret)");
            } else {
                svc_buf_adds(problems, is_default ? ", got default " : ", got ");
                add_shown(problems, value);
            }
            svc_buf_addc(problems, '\n');
            rc = SVC_EINVAL;
        }
    }
    return rc;
}

void svc_config_release(const struct svc_config_var *vars, void *dst)
{
    unsigned char *base = dst;
    char *s;

    for (const struct svc_config_var *v = vars; v->name != NULL; v++) {
        if (v->type != SVC_CONFIG_STRING)
            continue;
        memcpy(&s, base + v->offset, sizeof(s));
        free(s);
        s = NULL;
        memcpy(base + v->offset, &s, sizeof(s));
    }
}

/* ---- --help and the log line ------------------------------------------------------------ */

void svc_config_help(const struct svc_config_var *const *tables, FILE *out)
{
    struct svc_buf line = SVC_BUF_INIT;
    size_t width = 0;

    for (size_t t = 0; tables[t] != NULL; t++)
        for (const struct svc_config_var *v = tables[t]; v->name != NULL; v++)
            if (strlen(v->name) > width)
                width = strlen(v->name);
    for (size_t t = 0; tables[t] != NULL; t++) {
        for (const struct svc_config_var *v = tables[t]; v->name != NULL; v++) {
            svc_buf_reset(&line);
            svc_buf_addf(&line, "  %-*s  ", (int)width, v->name);
            describe_type(v, &line);
            if (v->flags & SVC_CONFIG_REQUIRED)
                svc_buf_adds(&line, ", required");
            if (v->flags & SVC_CONFIG_SECRET)
                svc_buf_adds(&line, ", secret");
            if (!(v->flags & SVC_CONFIG_REQUIRED) && v->def != NULL && v->def[0] != '\0') {
                if (v->flags & SVC_CONFIG_SECRET)
                    svc_buf_adds(&line, ", has a default");
                else
                    svc_buf_addf(&line, ", default %s", v->def);
            }
            svc_buf_addc(&line, '\n');
            if (v->help != NULL)
                svc_buf_addf(&line, "  %-*s  %s\n", (int)width, "", v->help);
            fputs(svc_buf_str(&line), out);
        }
    }
    svc_buf_release(&line);
}

static void add_value(struct svc_buf *b, const struct svc_config_var *v,
                      const unsigned char *member)
{
    char tmp[32];
    const char *s;
    int64_t ms;
    bool flag;
    int i;

    switch (v->type) {
    case SVC_CONFIG_STRING:
        memcpy(&s, member, sizeof(s));
        if (s == NULL) {
            svc_buf_adds(b, "null");
        } else if (v->flags & SVC_CONFIG_SECRET) {
            svc_buf_adds(b, "\"***\"");
        } else {
            struct svc_buf m = SVC_BUF_INIT;

            add_masked(&m, s);
            svc_buf_add_json_str(b, svc_buf_str(&m), m.len);
            svc_buf_release(&m);
        }
        return;
    case SVC_CONFIG_END:
        svc_buf_adds(b, "null");
        return;
    case SVC_CONFIG_INT:
    case SVC_CONFIG_BOOL:
    case SVC_CONFIG_DURATION:
    case SVC_CONFIG_ENUM:
        break;
    }
    if (v->flags & SVC_CONFIG_SECRET) {
        svc_buf_adds(b, "\"***\"");
        return;
    }
    switch (v->type) {
    case SVC_CONFIG_INT:
        memcpy(&i, member, sizeof(i));
        svc_buf_addf(b, "%d", i);
        break;
    case SVC_CONFIG_BOOL:
        memcpy(&flag, member, sizeof(flag));
        svc_buf_adds(b, flag ? "true" : "false");
        break;
    case SVC_CONFIG_DURATION:
        memcpy(&ms, member, sizeof(ms));
        format_duration(ms, tmp, sizeof(tmp));
        svc_buf_add_json_str(b, tmp, strlen(tmp));
        break;
    case SVC_CONFIG_ENUM:
        memcpy(&i, member, sizeof(i));
        /* A struct that was never loaded may hold any index: show it rather than overrun. */
        for (int k = 0; v->choices != NULL && v->choices[k] != NULL; k++) {
            if (k == i) {
                svc_buf_add_json_str(b, v->choices[k], strlen(v->choices[k]));
                return;
            }
        }
        svc_buf_addf(b, "%d", i);
        break;
    case SVC_CONFIG_STRING:
    case SVC_CONFIG_END:
        break;
    }
}

void svc_config_log(const struct svc_config_var *const *tables, const void *const *dsts)
{
    struct svc_buf fields = SVC_BUF_INIT;
    bool first = true;

    svc_buf_adds(&fields, "\"config\":{");
    for (size_t t = 0; tables[t] != NULL; t++) {
        const unsigned char *base = dsts[t];

        for (const struct svc_config_var *v = tables[t]; v->name != NULL; v++) {
            if (!first)
                svc_buf_addc(&fields, ',');
            first = false;
            svc_buf_add_json_str(&fields, v->name, strlen(v->name));
            svc_buf_addc(&fields, ':');
            add_value(&fields, v, base + v->offset);
        }
    }
    svc_buf_addc(&fields, '}');
    svc_log_fields(SVC_LOG_INFO, svc_buf_str(&fields), "effective configuration");
    svc_buf_release(&fields);
}

#include "svc/router.h"

#include "internal.h"
#include "svc/error.h"

#include <stdio.h>
#include <string.h>

enum { MAX_PATH = 2048, MAX_SEGMENTS = 32 };

static const struct {
    unsigned method;
    const char *name;
} methods[] = {
    {SVC_GET, "GET"},     {SVC_HEAD, "HEAD"},     {SVC_POST, "POST"},       {SVC_PUT, "PUT"},
    {SVC_PATCH, "PATCH"}, {SVC_DELETE, "DELETE"}, {SVC_OPTIONS, "OPTIONS"},
};

unsigned svc_method_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(s, methods[i].name) == 0)
            return methods[i].method;
    return 0;
}

const char *svc_method_name(unsigned method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].method == method)
            return methods[i].name;
    return "?";
}

void svc_method_list(unsigned mask, char *buf, size_t cap)
{
    size_t len = 0;

    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if ((mask & methods[i].method) == 0)
            continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "", methods[i].name);
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}

int svc__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int svc_pct_decode(const char *s, size_t n, bool plus_is_space, struct svc_arena *a,
                   const char **out)
{
    char *d = svc_arena_alloc(a, n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return SVC_EINVAL;
            hi = svc__hexval(s[i + 1]);
            lo = svc__hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return SVC_EINVAL;
            d[j++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            d[j++] = ' ';
        } else if (c == '\0') {
            return SVC_EINVAL;
        } else {
            d[j++] = c;
        }
    }
    d[j] = '\0';
    *out = d;
    return 0;
}

struct seg {
    const char *p;
    size_t n;
};

/* Splits "/a/b/c" into segments; a trailing slash gives a final empty segment, so "/v1/users/"
 * does not match "/v1/users". Returns the count, or -1 when the path is not absolute or has too
 * many segments. */
static int split(const char *path, struct seg *segs)
{
    int n = 0;
    const char *p = path;

    if (*p != '/')
        return -1;
    while (*p == '/') {
        const char *start = ++p;

        while (*p != '\0' && *p != '/')
            p++;
        if (n == MAX_SEGMENTS)
            return -1;
        segs[n].p = start;
        segs[n].n = (size_t)(p - start);
        n++;
    }
    return n;
}

/* Scores a template against the request segments: -1 when it does not match, else a bitmask
 * with a bit set for every literal segment (earlier segments weigh more), so literals win.
 * On a match, T holds the template's NSEGS segments. */
static long score(const char *tmpl, const struct seg *segs, int nsegs, struct seg *t)
{
    int nt = split(tmpl, t);
    long s = 0;

    if (nt != nsegs)
        return -1;
    for (int i = 0; i < nt; i++) {
        if (t[i].n > 0 && t[i].p[0] == ':') {
            if (segs[i].n == 0)
                return -1;
            continue;
        }
        if (t[i].n != segs[i].n || memcmp(t[i].p, segs[i].p, t[i].n) != 0)
            return -1;
        s |= 1L << (MAX_SEGMENTS - 1 - i);
    }
    return s;
}

int svc_router_match(const struct svc_route *routes, unsigned method, const char *path,
                     struct svc_arena *a, struct svc_route_match *m)
{
    struct seg segs[MAX_SEGMENTS], cand[MAX_SEGMENTS], t[MAX_SEGMENTS];
    const struct svc_route *best = NULL;
    long best_score = -1;
    int nsegs;

    memset(m, 0, sizeof(*m));
    if (strlen(path) > MAX_PATH)
        return SVC_EINVAL;
    nsegs = split(path, segs);
    if (nsegs < 0)
        return SVC_ENOTFOUND;
    for (const struct svc_route *r = routes; r->path != NULL; r++) {
        long sc = score(r->path, segs, nsegs, cand);
        unsigned allows = r->method == SVC_GET ? (SVC_GET | SVC_HEAD) : r->method;

        if (sc < 0)
            continue;
        m->allowed |= allows;
        if ((allows & method) != 0 && sc > best_score) {
            best = r;
            best_score = sc;
            /* Kept for its parameters below rather than split again: a second split gives
             * the same NSEGS segments, but clang-analyzer cannot see that and reported a
             * read of an uninitialised segment. */
            memcpy(t, cand, (size_t)nsegs * sizeof(t[0]));
        }
    }
    if (best == NULL)
        return m->allowed != 0 ? SVC_EMETHOD : SVC_ENOTFOUND;
    m->route = best;
    for (int i = 0; i < nsegs; i++) {
        const char *value;

        if (t[i].n == 0 || t[i].p[0] != ':')
            continue;
        if (m->nparams == SVC_MAX_PARAMS)
            return SVC_EINVAL;
        if (svc_pct_decode(segs[i].p, segs[i].n, false, a, &value) != 0 || value[0] == '\0')
            return SVC_EINVAL;
        m->params[m->nparams].name = svc_arena_strndup(a, t[i].p + 1, t[i].n - 1);
        m->params[m->nparams].value = value;
        m->nparams++;
    }
    return 0;
}

int svc_query_add(struct svc_query *q, const char *name, const char *value, struct svc_arena *a)
{
    struct svc_param *p;

    if (q->n == SVC_MAX_QUERY)
        return SVC_EINVAL;
    p = &q->items[q->n];
    if (svc_pct_decode(name, strlen(name), true, a, &p->name) != 0)
        return SVC_EINVAL;
    if (value == NULL)
        p->value = "";
    else if (svc_pct_decode(value, strlen(value), true, a, &p->value) != 0)
        return SVC_EINVAL;
    q->n++;
    return 0;
}

int svc_query_parse(const char *qs, struct svc_query *q, struct svc_arena *a)
{
    const char *p = qs;

    q->n = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        const char *name, *value = NULL;

        if (len > 0) {
            if (eq != NULL) {
                name = svc_arena_strndup(a, p, (size_t)(eq - p));
                value = svc_arena_strndup(a, eq + 1, len - (size_t)(eq - p) - 1);
            } else {
                name = svc_arena_strndup(a, p, len);
            }
            if (svc_query_add(q, name, value, a) != 0)
                return SVC_EINVAL;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

const char *svc_query_get(const struct svc_query *q, const char *name)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->items[i].name, name) == 0)
            return q->items[i].value;
    return NULL;
}

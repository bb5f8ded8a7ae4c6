#include "testproblems.h"

#include "svc/http.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SLUG_MAX 64
#define ROWS_MAX 64

static const int common[] = {SVC_EINVAL,       SVC_EJSON,     SVC_ENOTFOUND,
                             SVC_EMETHOD,      SVC_ETOOBIG,   SVC_EMEDIATYPE,
                             SVC_EUNAVAILABLE, SVC_EINTERNAL, SVC_OK};

static const struct svc_err_def *lib_row(int code)
{
    for (const struct svc_err_def *e = svc_errors; e->name != NULL; e++)
        if (e->code == code)
            return e;
    ck_abort_msg("%d is not a code of lib's table", code);
    return NULL;
}

static const struct svc_err_def *lib_row_by_slug(const char *slug)
{
    for (const struct svc_err_def *e = svc_errors; e->name != NULL; e++)
        if (e->code != SVC_OK && strcmp(e->type, slug) == 0)
            return e;
    return NULL;
}

/* The status the service answers SLUG with, or 0 when it cannot answer it. */
static int answered(const char *slug, const int *uses, const struct svc_err_def *errors)
{
    const int *lists[] = {common, uses};

    for (size_t l = 0; l < 2; l++)
        for (const int *c = lists[l]; *c != SVC_OK; c++)
            if (strcmp(lib_row(*c)->type, slug) == 0)
                return lib_row(*c)->status;
    for (const struct svc_err_def *e = errors; e->name != NULL; e++)
        if (strcmp(e->type, slug) == 0)
            return e->status;
    return 0;
}

/* Asserts that DOC names SLUG with STATUS, as ProblemType's description lists them. */
static void assert_described(const char *doc, const char *slug, int status)
{
    char want[SLUG_MAX + 16];

    snprintf(want, sizeof(want), "`%s` (%d)", slug, status);
    ck_assert_msg(strstr(doc, want) != NULL, "openapi.yaml does not describe %s", want);
    snprintf(want, sizeof(want), "%s%s\n", SVC_PROBLEM_BASE, slug);
    ck_assert_msg(strstr(doc, want) != NULL, "openapi.yaml does not list '%s'", want);
}

void testproblems_check_openapi(const char *doc, const int *uses, const struct svc_err_def *errors)
{
    const char *p = doc;
    const int *lists[] = {common, uses};

    /* Every problem type named is one the service can answer ... */
    while ((p = strstr(p, SVC_PROBLEM_BASE)) != NULL) {
        char slug[SLUG_MAX];
        size_t n;

        p += strlen(SVC_PROBLEM_BASE);
        n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
        if (n == 0)
            continue; /* the prose: "`urn:polyglot:problem:` followed by a slug" */
        ck_assert_msg(n < sizeof(slug), "openapi.yaml: a problem type of %zu characters", n);
        memcpy(slug, p, n);
        slug[n] = '\0';
        ck_assert_msg(answered(slug, uses, errors) != 0,
                      "openapi.yaml names problem type '%s', which the service never answers",
                      slug);
    }
    /* ... and every one it can answer is named, with its status. */
    for (size_t l = 0; l < 2; l++)
        for (const int *c = lists[l]; *c != SVC_OK; c++)
            assert_described(doc, lib_row(*c)->type, lib_row(*c)->status);
    for (const struct svc_err_def *e = errors; e->name != NULL; e++)
        assert_described(doc, e->type, e->status);
}

/* ---- docs/architecture.md --------------------------------------------------------------- */

struct row {
    char slug[SLUG_MAX];
    int status;
    char from[256];
};

/* The repository's root, from where this file is (CMake compiles it by its full path). */
static void root_dir(char *out, size_t cap)
{
    static const char tail[] = "tests/support/testproblems.c";
    const char *f = __FILE__;
    size_t n = strlen(f);

    ck_assert_msg(n >= sizeof(tail) - 1 && strcmp(f + n - (sizeof(tail) - 1), tail) == 0,
                  "cannot find the repository from '%s'", f);
    snprintf(out, cap, "%.*s", (int)(n - (sizeof(tail) - 1)), f);
}

/* Copies the trimmed cell [S, END) into OUT. */
static void cell(const char *s, const char *end, char *out, size_t cap)
{
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    snprintf(out, cap, "%.*s", (int)(end - s), s);
}

/* The rows of the "Problem types" table; returns how many. */
static size_t read_rows(struct row *rows, size_t max)
{
    char root[4096], path[4200], line[1024], c[4][256];
    bool in_section = false;
    size_t n = 0;
    FILE *f;

    root_dir(root, sizeof(root));
    snprintf(path, sizeof(path), "%sdocs/architecture.md", root);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read '%s'", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p, *bar;
        char *end;
        int k = 0;

        if (strncmp(line, "## ", 3) == 0) {
            in_section = strcmp(line, "## Problem types\n") == 0;
            continue;
        }
        if (!in_section || strncmp(line, "| `", 3) != 0)
            continue;
        for (p = line + 1; k < 4 && (bar = strchr(p, '|')) != NULL; p = bar + 1)
            cell(p, bar, c[k++], sizeof(c[0]));
        ck_assert_msg(k == 3 && n < max, "docs/architecture.md: a bad problem row: %s", line);
        ck_assert_msg(c[0][0] == '`' && strlen(c[0]) > 2 && strlen(c[0]) < SLUG_MAX &&
                          c[0][strlen(c[0]) - 1] == '`' &&
                          strchr(c[0] + 1, '`') == c[0] + strlen(c[0]) - 1,
                      "docs/architecture.md: one `slug` per row, not %s", c[0]);
        snprintf(rows[n].slug, sizeof(rows[n].slug), "%.*s", (int)strlen(c[0]) - 2, c[0] + 1);
        rows[n].status = (int)strtol(c[1], &end, 10);
        ck_assert_msg(*end == '\0' && rows[n].status >= 400,
                      "docs/architecture.md: '%s' has status '%s'", rows[n].slug, c[1]);
        snprintf(rows[n].from, sizeof(rows[n].from), "%s", c[2]);
        n++;
    }
    fclose(f);
    ck_assert_msg(n > 0, "docs/architecture.md has no \"Problem types\" table");
    return n;
}

static const struct row *find_row(const struct row *rows, size_t n, const char *slug)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].slug, slug) == 0)
            return &rows[i];
    return NULL;
}

/* The first word of a row's <from>: "user-svc" of "user-svc: a payment ...". */
static void from_owner(const struct row *r, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)strcspn(r->from, ":, "), r->from);
}

static void assert_row(const struct row *rows, size_t n, const struct svc_err_def *e)
{
    const struct row *r = find_row(rows, n, e->type);

    ck_assert_msg(r != NULL, "docs/architecture.md has no row for problem type '%s'", e->type);
    ck_assert_msg(r->status == e->status,
                  "docs/architecture.md gives '%s' status %d, the error table %d", e->type,
                  r->status, e->status);
}

void testproblems_check_docs(const char *owner, const struct svc_err_def *errors)
{
    static struct row rows[ROWS_MAX];
    size_t n = read_rows(rows, ROWS_MAX);
    char root[4096], dir[4200], who[64];
    struct stat st;

    for (const struct svc_err_def *e = errors; e->name != NULL; e++)
        if (e->code != SVC_OK)
            assert_row(rows, n, e);
    for (size_t i = 0; i < n; i++) {
        const struct svc_err_def *lib = lib_row_by_slug(rows[i].slug);
        bool mine = false;

        if (lib != NULL) {
            assert_row(rows, n, lib);
            continue;
        }
        from_owner(&rows[i], who, sizeof(who));
        if (strcmp(owner, "lib") == 0) {
            root_dir(root, sizeof(root));
            snprintf(dir, sizeof(dir), "%s%s", root, who);
            ck_assert_msg(stat(dir, &st) == 0 && S_ISDIR(st.st_mode),
                          "docs/architecture.md: '%s' is not lib's, and '%s' is no service",
                          rows[i].slug, who);
            continue;
        }
        if (strcmp(who, owner) != 0)
            continue;
        for (const struct svc_err_def *e = errors; e->name != NULL && !mine; e++)
            mine = strcmp(e->type, rows[i].slug) == 0;
        ck_assert_msg(mine, "docs/architecture.md: '%s' from %s is not among its errors",
                      rows[i].slug, owner);
    }
}

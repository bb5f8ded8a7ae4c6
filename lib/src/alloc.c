#include "svc/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* No allocation here: write straight to stderr in the log's JSON shape. */
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *svc_malloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);

    if (p == NULL)
        oom(n);
    return p;
}

void *svc_calloc(size_t count, size_t size)
{
    void *p = calloc(count != 0 ? count : 1, size != 0 ? size : 1);

    if (p == NULL)
        oom(count * size);
    return p;
}

void *svc_realloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);

    if (q == NULL)
        oom(n);
    return q;
}

char *svc_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = svc_malloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *svc_strdup(const char *s)
{
    return svc_strndup(s, strlen(s));
}

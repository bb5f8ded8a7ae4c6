#include "svc/arena.h"

#include "svc/alloc.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blocks grow from 4 KiB: most requests never need a second one. Large allocations get a
 * block of their own so they do not waste the rest of the current one. */
enum { BLOCK_MIN = 4096, ALIGN = alignof(max_align_t) };

struct block {
    struct block *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *ptr;
};

struct svc_arena {
    struct block *head;
    struct cleanup *cleanups;
    size_t used;
};

struct svc_arena *svc_arena_new(void)
{
    return svc_calloc(1, sizeof(struct svc_arena));
}

void svc_arena_free(struct svc_arena *a)
{
    struct block *b, *nb;

    if (a == NULL)
        return;
    /* Cleanups live in the arena's blocks, so they run before any block goes. */
    for (struct cleanup *c = a->cleanups; c != NULL; c = c->next)
        c->fn(c->ptr);
    for (b = a->head; b != NULL; b = nb) {
        nb = b->next;
        free(b);
    }
    free(a);
}

static struct block *new_block(struct svc_arena *a, size_t need)
{
    size_t size = need > BLOCK_MIN ? need : BLOCK_MIN;
    struct block *b = svc_malloc(sizeof(*b) + size);

    b->size = size;
    b->used = 0;
    if (a->head != NULL && need > BLOCK_MIN) {
        /* A big one-off: keep the current block in front for the small ones that follow. */
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    return b;
}

void *svc_arena_alloc(struct svc_arena *a, size_t n)
{
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct block *b = a->head;
    void *p;

    if (need == 0)
        need = ALIGN;
    if (need < n)
        need = n; /* overflow guard: svc_malloc will fail loudly on an absurd size */
    if (b == NULL || b->size - b->used < need)
        b = new_block(a, need);
    p = b->data + b->used;
    b->used += need;
    a->used += n;
    return p;
}

void *svc_arena_calloc(struct svc_arena *a, size_t n)
{
    void *p = svc_arena_alloc(a, n);

    memset(p, 0, n);
    return p;
}

char *svc_arena_strndup(struct svc_arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = svc_arena_alloc(a, len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *svc_arena_strdup(struct svc_arena *a, const char *s)
{
    return svc_arena_strndup(a, s, strlen(s));
}

char *svc_arena_vprintf(struct svc_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *p;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return svc_arena_strdup(a, "");
    p = svc_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *svc_arena_printf(struct svc_arena *a, const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    p = svc_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void svc_arena_defer(struct svc_arena *a, void (*fn)(void *), void *ptr)
{
    struct cleanup *c;

    if (ptr == NULL)
        return;
    c = svc_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->ptr = ptr;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t svc_arena_used(const struct svc_arena *a)
{
    return a->used;
}

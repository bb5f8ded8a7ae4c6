/*
 * arena.h: per-request memory (nginx r->pool, h2o req->pool).
 *
 * Everything a request handler allocates comes from its request's arena and is released at
 * once when the request completes; handlers never call free. Foreign objects (PGresult,
 * redisReply, bson_t, json_t, curl lists) are registered with svc_arena_defer() right after
 * they are acquired, and their destructors run, newest first, when the arena is released.
 *
 * An arena is used by one thread at a time. Allocation never fails (see alloc.h).
 */
#ifndef SVC_ARENA_H
#define SVC_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct svc_arena;

/* A new, empty arena. Free with svc_arena_free(). */
struct svc_arena *svc_arena_new(void);

/* Runs the deferred cleanups (newest first), then frees every block. NULL is a no-op. */
void svc_arena_free(struct svc_arena *a);

/* N bytes aligned for any type, owned by the arena. N = 0 gives a valid unique pointer. */
void *svc_arena_alloc(struct svc_arena *a, size_t n);

/* As svc_arena_alloc(), zero-filled. */
void *svc_arena_calloc(struct svc_arena *a, size_t n);

/* Copies of strings, owned by the arena. */
char *svc_arena_strdup(struct svc_arena *a, const char *s);
char *svc_arena_strndup(struct svc_arena *a, const char *s, size_t n);

/* printf into arena memory. */
char *svc_arena_printf(struct svc_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *svc_arena_vprintf(struct svc_arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Registers FN(PTR) to run when the arena is released. PTR may be NULL (then nothing runs). */
void svc_arena_defer(struct svc_arena *a, void (*fn)(void *), void *ptr);

/* Bytes handed out so far (for tests and metrics). */
size_t svc_arena_used(const struct svc_arena *a);

#endif

/*
 * alloc.h: allocation that never returns NULL. A service that runs out of memory logs and
 * aborts (redis zmalloc, git xmalloc): there is no useful recovery in a request handler, and
 * NULL checks on every allocation hide the real error paths. Sizes that come from input are
 * capped by the caller and fail with a 4xx long before they reach these.
 */
#ifndef SVC_ALLOC_H
#define SVC_ALLOC_H

#include <stddef.h>

void *svc_malloc(size_t n);
void *svc_calloc(size_t count, size_t size);
void *svc_realloc(void *p, size_t n);
char *svc_strdup(const char *s);
char *svc_strndup(const char *s, size_t n);

#endif

#include "svc/arena.h"
#include "testenv.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int freed[8], nfreed;

static void record(void *p)
{
    freed[nfreed++] = *(int *)p;
}

START_TEST(allocations_are_aligned_and_distinct)
{
    struct svc_arena *a = svc_arena_new();
    char *p = svc_arena_alloc(a, 1), *q = svc_arena_alloc(a, 3);
    double *d = svc_arena_alloc(a, sizeof(double));

    ck_assert_ptr_ne(p, q);
    ck_assert_uint_eq((uintptr_t)d % _Alignof(double), 0);
    ck_assert_uint_eq((uintptr_t)q % _Alignof(max_align_t), 0);
    svc_arena_free(a);
}
END_TEST

START_TEST(large_and_many_allocations_survive)
{
    struct svc_arena *a = svc_arena_new();
    char *big = svc_arena_alloc(a, 1 << 20);
    char *small[1000];

    memset(big, 'x', 1 << 20);
    for (int i = 0; i < 1000; i++) {
        small[i] = svc_arena_printf(a, "item-%d", i);
    }
    for (int i = 0; i < 1000; i++) {
        char want[32];

        snprintf(want, sizeof(want), "item-%d", i);
        ck_assert_str_eq(small[i], want);
    }
    ck_assert_int_eq(big[(1 << 20) - 1], 'x');
    ck_assert_uint_ge(svc_arena_used(a), (size_t)(1 << 20));
    svc_arena_free(a);
}
END_TEST

START_TEST(cleanups_run_newest_first_and_skip_null)
{
    struct svc_arena *a = svc_arena_new();
    int *one = svc_arena_alloc(a, sizeof(int)), *two = svc_arena_alloc(a, sizeof(int));

    *one = 1;
    *two = 2;
    nfreed = 0;
    svc_arena_defer(a, record, one);
    svc_arena_defer(a, record, NULL);
    svc_arena_defer(a, record, two);
    svc_arena_free(a);
    ck_assert_int_eq(nfreed, 2);
    ck_assert_int_eq(freed[0], 2);
    ck_assert_int_eq(freed[1], 1);
}
END_TEST

START_TEST(strings_are_copied)
{
    struct svc_arena *a = svc_arena_new();
    char src[] = "hello";
    char *c = svc_arena_strdup(a, src), *n = svc_arena_strndup(a, "abcdef", 3);

    src[0] = 'j';
    ck_assert_str_eq(c, "hello");
    ck_assert_str_eq(n, "abc");
    ck_assert_str_eq(svc_arena_calloc(a, 8), "");
    svc_arena_free(a);
    svc_arena_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, allocations_are_aligned_and_distinct);
    tcase_add_test(tc, large_and_many_allocations_survive);
    tcase_add_test(tc, cleanups_run_newest_first_and_skip_null);
    tcase_add_test(tc, strings_are_copied);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

/*
 * svc/idem.h: SHA-256 against the FIPS 180-4 examples, and fingerprints that tell requests
 * apart exactly when their fields differ.
 */
#include "svc/idem.h"
#include "testenv.h"

#include <stdio.h>
#include <string.h>

static const char *hex(const uint8_t sum[32], char out[65])
{
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", sum[i]);
    return out;
}

START_TEST(sha256_matches_the_standard_examples)
{
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    static char million[1000000 + 1];
    char s[65];
    uint8_t sum[32];

    svc_sha256("", 0, sum);
    ck_assert_str_eq(hex(sum, s),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    svc_sha256("abc", 3, sum);
    ck_assert_str_eq(hex(sum, s),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    svc_sha256(two_blocks, strlen(two_blocks), sum);
    ck_assert_str_eq(hex(sum, s),
                     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    memset(million, 'a', sizeof(million) - 1);
    svc_sha256(million, sizeof(million) - 1, sum);
    ck_assert_str_eq(hex(sum, s),
                     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(a_fingerprint_is_the_hash_of_the_fields_as_netstrings)
{
    const char *credit[] = {"credit", "6f0c1f6e-0000-4000-8000-000000000001", "500"};
    const char *canonical = "6:credit,36:6f0c1f6e-0000-4000-8000-000000000001,3:500,";
    char fp[SVC_IDEM_FP_LEN + 1], want[65];
    uint8_t sum[32];

    svc_idem_fingerprint(fp, credit, 3);
    svc_sha256(canonical, strlen(canonical), sum);
    ck_assert_str_eq(fp, hex(sum, want));
    ck_assert_uint_eq(strlen(fp), SVC_IDEM_FP_LEN);
}
END_TEST

START_TEST(requests_are_the_same_exactly_when_their_fields_are)
{
    const char *a[] = {"send", "ab", "c"}, *a2[] = {"send", "ab", "c"};
    const char *moved[] = {"send", "a", "bc"}, *null[] = {"send", "ab", NULL};
    const char *empty[] = {"send", "ab", ""}, *kind[] = {"pay", "ab", "c"};
    char fa[SVC_IDEM_FP_LEN + 1], fb[SVC_IDEM_FP_LEN + 1];

    svc_idem_fingerprint(fa, a, 3);
    svc_idem_fingerprint(fb, a2, 3);
    ck_assert(svc_idem_same(fa, fb));
    /* A field boundary moved, NULL against "", another kind: all other requests. */
    svc_idem_fingerprint(fb, moved, 3);
    ck_assert(!svc_idem_same(fa, fb));
    svc_idem_fingerprint(fa, null, 3);
    svc_idem_fingerprint(fb, empty, 3);
    ck_assert(!svc_idem_same(fa, fb));
    svc_idem_fingerprint(fa, a, 3);
    svc_idem_fingerprint(fb, kind, 3);
    ck_assert(!svc_idem_same(fa, fb));
    /* Nothing stored is never a match. */
    ck_assert(!svc_idem_same(NULL, fa));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("idem");
    TCase *tc = tcase_create("idem");

    tcase_add_test(tc, sha256_matches_the_standard_examples);
    tcase_add_test(tc, a_fingerprint_is_the_hash_of_the_fields_as_netstrings);
    tcase_add_test(tc, requests_are_the_same_exactly_when_their_fields_are);
    suite_add_tcase(s, tc);
    return testenv_run(s);
}

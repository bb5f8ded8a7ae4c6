/*
 * svc/idem.h: idempotency keys, one rule for every store.
 *
 * A write that carries an idempotency key (a credit_id, a payment_id, an Idempotency-Key
 * header, an event id) is done once. When the key comes again, what was stored under it is
 * replayed if the request is the same one, and the request is refused (409
 * idempotency-key-reused) if it is another. "The same" is decided by one value, the request's
 * fingerprint: the SHA-256 of its canonical form, the fields that define it, in a fixed order.
 * A store keeps the fingerprint with the key (or derives it from the fields it stored), and
 * compares it with the new request's; no store compares field by field.
 *
 * The canonical form is a netstring per field, the first being the kind of request:
 *   "<length in bytes>:<bytes>," for each field; "~," for a NULL field.
 * e.g. {"credit", "6f0c...", "500"} -> "6:credit,36:6f0c...,3:500,". It is stable across
 * versions (fingerprints are stored), and simple enough to compute elsewhere: user-svc's
 * migrations/002 computes the same value in SQL.
 */
#ifndef SVC_IDEM_H
#define SVC_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of a fingerprint (lowercase hex SHA-256) without the NUL. */
#define SVC_IDEM_FP_LEN 64

/*
 * Writes into OUT the fingerprint of the N FIELDS (FIELDS[0] the kind of request: "credit"),
 * NUL-terminated. A NULL field differs from every string, "" included.
 */
void svc_idem_fingerprint(char out[SVC_IDEM_FP_LEN + 1], const char *const *fields, size_t n);

/*
 * Whether a request with fingerprint FP is a replay of the one stored with fingerprint STORED:
 * true means replay the stored result; false means the key was reused for another request.
 */
bool svc_idem_same(const char *stored, const char *fp);

/* SHA-256 of the LEN bytes at DATA into OUT (32 bytes): what the fingerprints are made of. */
void svc_sha256(const void *data, size_t len, uint8_t out[32]);

#endif

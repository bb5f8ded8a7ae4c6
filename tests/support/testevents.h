/*
 * testevents: events checked against their contracts in schemas/events/, by the reference
 * validator (jsonschema, Draft 2020-12) run as tools/validate-events.
 */
#ifndef POLYGLOT_TESTEVENTS_H
#define POLYGLOT_TESTEVENTS_H

#include <stddef.h>

/*
 * Validates the N event envelopes PAYLOADS (JSON texts) against schemas/events/<type>.json.
 * Returns the validator's exit status: 0 all valid, 1 some are not or have no schema, 3 the
 * jsonschema module is missing; -1 when it did not exit normally. Its output (a line per
 * problem, then "N events checked, M problems") is in OUT (CAP bytes, NUL-terminated,
 * truncated). Fails the running test when the validator cannot be run at all.
 */
int testevents_validate(const char *const *payloads, size_t n, char *out, size_t cap);

#endif

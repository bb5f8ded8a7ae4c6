-- user-svc's schema, version 2: the fingerprint of the request that made each credit and each
-- payment, stored with its idempotency key (credit_id, payment_id). A request that comes again
-- with the key is a replay when its fingerprint is the stored one, and is refused as a reuse of
-- the key otherwise (lib's svc/idem.h, which user_store.c uses).
--
-- The fingerprint is computed here, by PostgreSQL, from the columns that define the request, so
-- every row has one: those written before this migration, and those written by a replica of the
-- previous version during a rolling update. idem_fingerprint() is svc/idem.h's canonical form
-- in SQL (a netstring per field, "~," for NULL, then SHA-256 in hex) and must stay equal to it:
-- the idempotency tests of user_store_test.c fail otherwise.

CREATE FUNCTION idem_fingerprint(VARIADIC fields text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT encode(sha256(convert_to(string_agg(
                   CASE WHEN f IS NULL THEN '~,' ELSE octet_length(f)::text || ':' || f || ',' END,
                   '' ORDER BY i), 'UTF8')), 'hex')
        FROM unnest(fields) WITH ORDINALITY AS t(f, i)
    $$;

ALTER TABLE credits ADD COLUMN request_fp text NOT NULL
    GENERATED ALWAYS AS (idem_fingerprint('credit', user_id::text, amount_cents::text)) STORED;

ALTER TABLE payments ADD COLUMN request_fp text NOT NULL
    GENERATED ALWAYS AS (idem_fingerprint('payment', user_id::text, amount_cents::text)) STORED;

-- user-svc's schema, version 1: users, wallets, credits, payments and the transactional outbox.
-- Applied by user_store.c at start-up, inside one transaction under an advisory lock, and
-- recorded in schema_migrations with this file's SHA-256. Never edit an applied migration:
-- add the next numbered file instead (a changed file stops the service from starting).

-- Users. Deletion erases the personal data (email, name) and keeps a tombstone: the id, the
-- status 'deleted' and deleted_at. Timestamps are kept to the millisecond, the precision of
-- the API and of the keyset cursor built from created_at.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text,
    name text,
    status text NOT NULL DEFAULT 'active',
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    updated_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    deleted_at timestamptz,
    CONSTRAINT users_status_known CHECK (status IN ('active', 'deleted')),
    CONSTRAINT users_tombstone CHECK ((deleted_at IS NULL) = (status = 'active')),
    CONSTRAINT users_active_has_data
        CHECK (deleted_at IS NOT NULL OR (email IS NOT NULL AND name IS NOT NULL)),
    CONSTRAINT users_deleted_has_no_data
        CHECK (deleted_at IS NULL OR (email IS NULL AND name IS NULL)),
    CONSTRAINT users_version_positive CHECK (version >= 1)
);

-- One active user per email, compared without case (the handler has already trimmed it and
-- lower-cased the domain). Erased users have no email, so the address can register again.
CREATE UNIQUE INDEX users_email_active ON users (lower(email)) WHERE deleted_at IS NULL;

-- Keyset pagination of active users: ORDER BY created_at, id.
CREATE INDEX users_active_keyset ON users (created_at, id) WHERE deleted_at IS NULL;

-- One wallet per user, created with the user. The CHECK is the last line of defence: payments
-- debit with "WHERE balance_cents >= amount", so it never fires in normal operation.
CREATE TABLE wallets (
    user_id uuid PRIMARY KEY REFERENCES users (id),
    balance_cents bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    CONSTRAINT wallets_balance_nonnegative CHECK (balance_cents >= 0)
);

-- Top-ups, idempotent by the client's credit_id.
CREATE TABLE credits (
    credit_id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    amount_cents bigint NOT NULL,
    balance_after bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    CONSTRAINT credits_amount_positive CHECK (amount_cents > 0)
);
CREATE INDEX credits_user ON credits (user_id, created_at);

-- Debits, idempotent by the client's payment_id (the checkout saga's key). A refund flips the
-- status and records the balance right after it.
CREATE TABLE payments (
    payment_id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    amount_cents bigint NOT NULL,
    status text NOT NULL DEFAULT 'captured',
    balance_after bigint NOT NULL,
    refund_balance_after bigint,
    created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    refunded_at timestamptz,
    CONSTRAINT payments_amount_positive CHECK (amount_cents > 0),
    CONSTRAINT payments_status_known CHECK (status IN ('captured', 'refunded')),
    CONSTRAINT payments_refund_complete
        CHECK ((status = 'refunded') = (refunded_at IS NOT NULL AND refund_balance_after IS NOT NULL))
);
CREATE INDEX payments_user ON payments (user_id, created_at);

-- The transactional outbox: every state change inserts its CloudEvent here in the same
-- transaction (and NOTIFYs user_outbox). The relay publishes pending rows in id order, marks
-- them published once Kafka has acknowledged them, and deletes published rows after the
-- retention period. payload is the rendered envelope, kept as text so that exactly those bytes
-- are published (cast it to jsonb to query it).
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    type text NOT NULL,
    topic text NOT NULL,
    key text,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

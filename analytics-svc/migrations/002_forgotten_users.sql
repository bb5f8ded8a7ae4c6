-- The users user.deleted forgot, by pseudonym (analytics.h). The topics are read in parallel,
-- so an event of a deleted user can arrive after its user.deleted (cart-events read behind
-- user-events); the store's insert looks its user up here and pseudonymises it on the way in.
CREATE TABLE IF NOT EXISTS forgotten_users (
    user_hash String,
    forgotten_ms UInt64
) ENGINE = ReplacingMergeTree
ORDER BY user_hash;

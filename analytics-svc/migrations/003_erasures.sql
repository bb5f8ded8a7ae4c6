-- Deleted users whose rows are still to be pseudonymised (analytics.h, "Personal data"). A
-- user.deleted only records the user here and in forgotten_users, which costs an insert; the
-- erasure sweep (ERASE_EVERY) pseudonymises every pending user with one mutation per table and
-- then removes them from here. A mutation rewrites the parts it touches, so one per deleted
-- user (each also scanning tables not keyed by user) made ingest crawl and parts pile up.
CREATE TABLE IF NOT EXISTS erasures (
    user_id String,
    user_hash String,
    requested_ms UInt64
) ENGINE = MergeTree
ORDER BY requested_ms;

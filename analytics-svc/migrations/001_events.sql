-- analytics-svc's tables (analytics.h). Statements end with ';' at the end of a line; the
-- store sends them one by one. Every CREATE says IF NOT EXISTS: a run cut short is applied
-- again from the top.

-- Every event once, keyed by its id. The typed columns are what the read models need; the
-- rest of the event is data, as JSON text.
CREATE TABLE IF NOT EXISTS events (
    id UUID,
    type String,
    source String,
    subject String,
    event_time DateTime,
    event_ms UInt64,
    ingest_ms UInt64,
    topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    user_id String,
    order_id String,
    product_id String,
    status String,
    currency String,
    quantity Int64,
    amount_cents Int64,
    lines Nested(product_id String, name String, quantity Int64, price_cents Int64),
    data String
) ENGINE = ReplacingMergeTree(ingest_ms)
PARTITION BY toYYYYMM(event_time)
ORDER BY id;

-- The read models, filled by materialized views from each block inserted into events.
CREATE TABLE IF NOT EXISTS signups (
    event_id UUID,
    user_id String,
    event_time DateTime,
    event_ms UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY event_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS signups_mv TO signups AS
SELECT id AS event_id, user_id, event_time, event_ms
FROM events
WHERE type = 'user.registered';

CREATE TABLE IF NOT EXISTS orders (
    event_id UUID,
    order_id String,
    user_id String,
    status String,
    total_cents Int64,
    currency String,
    event_time DateTime,
    event_ms UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY event_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS orders_mv TO orders AS
SELECT id AS event_id, order_id, user_id, status, amount_cents AS total_cents, currency,
       event_time, event_ms
FROM events
WHERE type IN ('checkout.started', 'order.placed', 'order.failed');

CREATE TABLE IF NOT EXISTS order_lines (
    event_id UUID,
    line_no UInt16,
    order_id String,
    user_id String,
    product_id String,
    name String,
    quantity Int64,
    price_cents Int64,
    event_time DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_id, line_no);

CREATE MATERIALIZED VIEW IF NOT EXISTS order_lines_mv TO order_lines AS
SELECT id AS event_id, toUInt16(n) AS line_no, order_id, user_id, lp AS product_id, ln AS name,
       lq AS quantity, lc AS price_cents, event_time
FROM events
ARRAY JOIN lines.product_id AS lp, lines.name AS ln, lines.quantity AS lq,
           lines.price_cents AS lc, arrayEnumerate(lines.product_id) AS n
WHERE type = 'order.placed';

CREATE TABLE IF NOT EXISTS cart_adds (
    event_id UUID,
    user_id String,
    product_id String,
    quantity Int64,
    price_cents Int64,
    event_time DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY event_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS cart_adds_mv TO cart_adds AS
SELECT id AS event_id, user_id, product_id, quantity, amount_cents AS price_cents, event_time
FROM events
WHERE type = 'cart.item_added';

CREATE TABLE IF NOT EXISTS stock_moves (
    event_id UUID,
    line_no UInt16,
    reservation_id String,
    kind String,
    product_id String,
    quantity Int64,
    event_time DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_id, line_no);

CREATE MATERIALIZED VIEW IF NOT EXISTS stock_moves_mv TO stock_moves AS
SELECT id AS event_id, toUInt16(n) AS line_no, subject AS reservation_id, status AS kind,
       lp AS product_id, lq AS quantity, event_time
FROM events
ARRAY JOIN lines.product_id AS lp, lines.quantity AS lq, arrayEnumerate(lines.product_id) AS n
WHERE type IN ('stock.reserved', 'stock.committed', 'stock.released');

-- Incremental aggregates per minute (SummingMergeTree: rows of one key are summed as parts
-- merge; queries still sum() them, since merges come when they come).
CREATE TABLE IF NOT EXISTS orders_minute (
    minute DateTime,
    started UInt64,
    placed UInt64,
    failed UInt64,
    revenue_cents Int64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS orders_minute_mv TO orders_minute AS
SELECT toStartOfMinute(event_time) AS minute,
       countIf(type = 'checkout.started') AS started,
       countIf(type = 'order.placed') AS placed,
       countIf(type = 'order.failed') AS failed,
       sumIf(amount_cents, type = 'order.placed') AS revenue_cents
FROM events
WHERE type IN ('checkout.started', 'order.placed', 'order.failed')
GROUP BY minute;

CREATE TABLE IF NOT EXISTS sales_minute (
    minute DateTime,
    product_id String,
    units Int64,
    revenue_cents Int64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, product_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS sales_minute_mv TO sales_minute AS
SELECT toStartOfMinute(event_time) AS minute, lp AS product_id, sum(lq) AS units,
       sum(lq * lc) AS revenue_cents
FROM events
ARRAY JOIN lines.product_id AS lp, lines.quantity AS lq, lines.price_cents AS lc
WHERE type = 'order.placed'
GROUP BY minute, product_id;

-- Daily salts for visitor ids: one random salt per UTC day, shared by every node.
-- Partitions are days, so salts are deleted by dropping partitions (no TTL on 18.16).
-- Concurrent nodes may insert two salts for one day; every node uses the row with
-- the earliest (created_at, salt), so they agree once both rows are visible.
CREATE TABLE IF NOT EXISTS salts (
    day        Date,
    salt       String,
    created_at DateTime('UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(day)
ORDER BY (day, salt);

-- Dimensions filled by enrichment.
ALTER TABLE events ADD COLUMN source String;
ALTER TABLE events ADD COLUMN medium String;
ALTER TABLE events ADD COLUMN channel String;
ALTER TABLE events ADD COLUMN is_bot UInt8;

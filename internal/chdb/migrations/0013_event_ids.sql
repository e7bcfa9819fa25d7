-- The key of every stored event with a session that is not a bot's, sorted by
-- time, kept by ClickHouse from every insert into `events`. Before each insert
-- ingest's writer looks up here which events of its block are stored already
-- and leaves them out, so such an event, resent (same id, same timestamp),
-- gets no second row, nor a second visit: a resend is enriched again, and its
-- session can differ from the first copy's (docs/clickhouse.md, "event_ids").
--
-- `events` is sorted by (tenant, site, UTC day, event id): a block's random
-- ids would be looked up in every granule of those days of the site. Sorted by
-- time, the ids of a block (mostly of the last seconds) are in a few granules,
-- and a backdated one costs one granule of 1,024 rows.
CREATE TABLE IF NOT EXISTS event_ids (
    tenant_id UUID,
    site_id   UUID,
    ts        DateTime('UTC'),
    event_id  UUID
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, site_id, ts, event_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS
SELECT tenant_id, site_id, ts, event_id
FROM events
WHERE session_id != 0 AND is_bot = 0;

-- The events stored before the view existed. Running it twice (two nodes
-- migrating at once) stores a key twice, which a lookup reads as one.
INSERT INTO event_ids (tenant_id, site_id, ts, event_id)
SELECT tenant_id, site_id, ts, event_id
FROM events
WHERE session_id != 0 AND is_bot = 0;

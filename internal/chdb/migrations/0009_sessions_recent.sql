-- Ended visits of the days after sessions_final's watermark (yesterday and
-- today, UTC), plain rows like sessions_final's. Package dashboard's
-- Finalizer rewrites each day's partition on every pass with the visits
-- whose last event is older than the session timeout and a margin, so they
-- can take no more events (a late one shows at the next pass). Queries read
-- those visits from here and merge only the others from `sessions`: merging
-- the states of a day's visits at every query cost a few hundred
-- milliseconds. Older days' partitions are dropped by the Finalizer.
-- The columns are sessions_final's.
CREATE TABLE IF NOT EXISTS sessions_recent AS sessions_final
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(started_at)
ORDER BY (tenant_id, site_id, started_at, session_id);

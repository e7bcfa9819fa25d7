-- When inserts into `events` last wrote each UTC day (of non-bot events),
-- kept by ClickHouse from every insert. Package dashboard's Finalizer and
-- queries tell from it which months of sessions_final and rollup_days
-- have changed since they were written: a part of `sessions` rewritten by
-- a background merge holds no new visit, so the parts' times alone made
-- the current month look changed after every merge. One row per day once
-- merged; it holds no tenant's data.
CREATE TABLE IF NOT EXISTS event_days (
    day         Date,
    inserted_at AggregateFunction(max, DateTime('UTC'))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY day;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_days_mv TO event_days AS
SELECT toDate(ts) AS day, maxState(toDateTime(now(), 'UTC')) AS inserted_at
FROM events
WHERE is_bot = 0
GROUP BY day;

-- Events inserted before the view existed are not in it: every day with
-- visits counts as written now, so every month is written once more.
INSERT INTO event_days (day, inserted_at)
SELECT day, maxState(toDateTime(now(), 'UTC'))
FROM sessions
GROUP BY day;

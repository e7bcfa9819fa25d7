-- Visits, maintained by ClickHouse from every insert into `events`: what
-- `sessions` of 0005 was, with far fewer aggregate states per visit. The
-- eighteen attributes a visit takes from its first event (hostname, referrer,
-- source … os_version) are one argMin of a tuple instead of eighteen argMins.
-- ClickHouse's cost of an insert into `events` grows with the number of
-- aggregate functions the view computes: on this project's 2-core machine the
-- old view took an insert of a million tracker events (three per visit) from
-- about 2 s of ClickHouse CPU (the table alone) to about 15 s, this one to
-- about 11 s (docs/benchmarks.md, "The visits view"). Readers take an
-- attribute with tupleElement(argMinMerge(attrs), N), in the order of the
-- tuple below (package dashboard, sessionMerge).
--
-- Everything else is as in 0005: one row per (site, UTC day, session) per
-- insert block, merged by readers per session_id; every state is idempotent,
-- so a resent event never counts twice and the back-fill below may run twice
-- (two nodes migrating at once) or overlap the view's first inserts. A new
-- name rather than `sessions` again keeps every earlier migration runnable
-- over this schema (0005 inserts into `sessions` with its own columns).
CREATE TABLE IF NOT EXISTS visits (
    tenant_id       UUID,
    site_id         UUID,
    day             Date,
    session_id      UInt64,
    visitor_id      AggregateFunction(any, UInt64),
    user_id         AggregateFunction(max, String),
    started_at      AggregateFunction(min, DateTime('UTC')),
    ended_at        AggregateFunction(max, DateTime('UTC')),
    pageviews       AggregateFunction(uniqExactIf, UUID, UInt8),
    events          AggregateFunction(uniqExact, UUID),
    entry_page      AggregateFunction(argMinIf, String, DateTime('UTC'), UInt8),
    exit_page       AggregateFunction(argMaxIf, String, DateTime('UTC'), UInt8),
    -- hostname, referrer, source, medium, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, region, city, device, browser, browser_version, os, os_version
    attrs           AggregateFunction(argMin, Tuple(String, String, String, String, String, String, String, String, String, String, String, String, String, String, String, String, String, String), DateTime('UTC'))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, site_id, day, session_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS visits_mv TO visits AS
SELECT
    tenant_id, site_id, toDate(ts) AS day, session_id,
    anyState(visitor_id) AS visitor_id,
    maxState(user_id) AS user_id,
    minState(ts) AS started_at,
    maxState(ts) AS ended_at,
    uniqExactIfState(event_id, type = 'page') AS pageviews,
    uniqExactState(event_id) AS events,
    argMinIfState(pathname, ts, type = 'page') AS entry_page,
    argMaxIfState(pathname, ts, type = 'page') AS exit_page,
    argMinState((hostname, referrer, source, medium, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, region, city, device, browser, browser_version, os, os_version), ts) AS attrs
FROM events
WHERE session_id != 0 AND is_bot = 0
GROUP BY tenant_id, site_id, day, session_id;

INSERT INTO visits (
    tenant_id, site_id, day, session_id,
    visitor_id, user_id, started_at, ended_at,
    pageviews, events, entry_page, exit_page, attrs
)
SELECT
    tenant_id, site_id, toDate(ts) AS day, session_id,
    anyState(visitor_id),
    maxState(user_id),
    minState(ts),
    maxState(ts),
    uniqExactIfState(event_id, type = 'page'),
    uniqExactState(event_id),
    argMinIfState(pathname, ts, type = 'page'),
    argMaxIfState(pathname, ts, type = 'page'),
    argMinState((hostname, referrer, source, medium, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, country, region, city, device, browser, browser_version, os, os_version), ts)
FROM events
WHERE session_id != 0 AND is_bot = 0
GROUP BY tenant_id, site_id, day, session_id
SETTINGS max_bytes_before_external_group_by = 1000000000;

-- The old table and its view go last: a node still on 0005 (nodes migrate
-- together) may build them again, and then drops them when it reaches this.
DROP TABLE IF EXISTS sessions_mv;

DROP TABLE IF EXISTS sessions;

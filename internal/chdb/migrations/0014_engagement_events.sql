-- The engagement events (type 'track', name 'engagement': a tracker's report
-- of the visible time and scroll depth of a page being left or hidden, see
-- migration 0012), kept by ClickHouse from every insert into `events`, with
-- the columns that time_on_page and scroll_depth, their dimensions and their
-- filters read (package dashboard, engagedPages) and those an erasure selects
-- by (visitor_id, user_id, session_id).
--
-- `events` is sorted by (tenant, site, UTC day, event id): finding a site's
-- engagement events among its other events reads the type and name of every
-- event of the range, which cost the pages panel 150-260 ms over 30 days of
-- a 10-million-event site that sends none. Here a read costs what the
-- engagement events cost (docs/clickhouse.md, "engagement_events").
--
-- The engine and sort key are those of `events`, so that copies of an event
-- merge away as they do there (a copy whose session differs included).
CREATE TABLE IF NOT EXISTS engagement_events (
    tenant_id       UUID,
    site_id         UUID,
    event_id        UUID,
    ts              DateTime('UTC'),
    hostname        String,
    pathname        String,
    visitor_id      UInt64,
    session_id      UInt64,
    user_id         String,
    device          String,
    browser         String,
    browser_version String,
    os              String,
    os_version      String,
    country         String,
    region          String,
    city            String,
    prop_keys       Array(String),
    prop_values     Array(String),
    is_bot          UInt8
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, site_id, toDate(ts), event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_events_mv TO engagement_events AS
SELECT
    tenant_id, site_id, event_id, ts, hostname, pathname, visitor_id, session_id, user_id,
    device, browser, browser_version, os, os_version, country, region, city,
    prop_keys, prop_values, is_bot
FROM events
WHERE (type = 'track' AND name = 'engagement');

-- The engagement events stored before the view existed. Running it twice
-- (two nodes migrating at once), or an insert between the view's creation
-- and this statement, stores an event twice: the copies merge away, and
-- until then queries count each event once (they already must: a resent
-- event can be stored twice in `events` too).
INSERT INTO engagement_events (
    tenant_id, site_id, event_id, ts, hostname, pathname, visitor_id, session_id, user_id,
    device, browser, browser_version, os, os_version, country, region, city,
    prop_keys, prop_values, is_bot
)
SELECT
    tenant_id, site_id, event_id, ts, hostname, pathname, visitor_id, session_id, user_id,
    device, browser, browser_version, os, os_version, country, region, city,
    prop_keys, prop_values, is_bot
FROM events
WHERE (type = 'track' AND name = 'engagement');

-- Visits (sessions), maintained by ClickHouse from every insert into `events`.
--
-- One row per (site, UTC day, session) per insert block; rows merge in the
-- background, and readers always GROUP BY session_id with the -Merge
-- functions, so a visit is whole however many rows it has (a visit across
-- midnight UTC has one row per day; readers widen their day range by one day
-- on each side and then select visits by started_at).
--
-- Every state here is idempotent: min, max, any, argMin/argMax and uniqExact
-- give the same answer when an event is inserted twice. A resent event
-- (same event_id) therefore never counts twice, and an event that arrives
-- late (out of order) still lands in its visit with the right entry and exit.
-- Bots (is_bot = 1) are not visits. Events without a session (session_id = 0:
-- no visitor id could be derived) are not visits either.
CREATE TABLE IF NOT EXISTS sessions (
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
    hostname        AggregateFunction(argMin, String, DateTime('UTC')),
    referrer        AggregateFunction(argMin, String, DateTime('UTC')),
    source          AggregateFunction(argMin, String, DateTime('UTC')),
    medium          AggregateFunction(argMin, String, DateTime('UTC')),
    channel         AggregateFunction(argMin, String, DateTime('UTC')),
    utm_source      AggregateFunction(argMin, String, DateTime('UTC')),
    utm_medium      AggregateFunction(argMin, String, DateTime('UTC')),
    utm_campaign    AggregateFunction(argMin, String, DateTime('UTC')),
    utm_term        AggregateFunction(argMin, String, DateTime('UTC')),
    utm_content     AggregateFunction(argMin, String, DateTime('UTC')),
    country         AggregateFunction(argMin, String, DateTime('UTC')),
    region          AggregateFunction(argMin, String, DateTime('UTC')),
    city            AggregateFunction(argMin, String, DateTime('UTC')),
    device          AggregateFunction(argMin, String, DateTime('UTC')),
    browser         AggregateFunction(argMin, String, DateTime('UTC')),
    browser_version AggregateFunction(argMin, String, DateTime('UTC')),
    os              AggregateFunction(argMin, String, DateTime('UTC')),
    os_version      AggregateFunction(argMin, String, DateTime('UTC'))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, site_id, day, session_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_mv TO sessions AS
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
    argMinState(hostname, ts) AS hostname,
    argMinState(referrer, ts) AS referrer,
    argMinState(source, ts) AS source,
    argMinState(medium, ts) AS medium,
    argMinState(channel, ts) AS channel,
    argMinState(utm_source, ts) AS utm_source,
    argMinState(utm_medium, ts) AS utm_medium,
    argMinState(utm_campaign, ts) AS utm_campaign,
    argMinState(utm_term, ts) AS utm_term,
    argMinState(utm_content, ts) AS utm_content,
    argMinState(country, ts) AS country,
    argMinState(region, ts) AS region,
    argMinState(city, ts) AS city,
    argMinState(device, ts) AS device,
    argMinState(browser, ts) AS browser,
    argMinState(browser_version, ts) AS browser_version,
    argMinState(os, ts) AS os,
    argMinState(os_version, ts) AS os_version
FROM events
WHERE session_id != 0 AND is_bot = 0
GROUP BY tenant_id, site_id, day, session_id;

-- Visits of the events stored before this migration. Grouping spills to disk
-- beyond 1 GB, so a large existing table (10 million events need about 4 GB
-- in memory) migrates within the server's default memory limit. Running it
-- twice (two nodes migrating at once, or events inserted between the view's
-- creation and this statement) changes nothing: every state is idempotent.
INSERT INTO sessions (
    tenant_id, site_id, day, session_id,
    visitor_id, user_id, started_at, ended_at,
    pageviews, events, entry_page, exit_page, hostname, referrer,
    source, medium, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    country, region, city, device, browser, browser_version, os, os_version
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
    argMinState(hostname, ts),
    argMinState(referrer, ts),
    argMinState(source, ts),
    argMinState(medium, ts),
    argMinState(channel, ts),
    argMinState(utm_source, ts),
    argMinState(utm_medium, ts),
    argMinState(utm_campaign, ts),
    argMinState(utm_term, ts),
    argMinState(utm_content, ts),
    argMinState(country, ts),
    argMinState(region, ts),
    argMinState(city, ts),
    argMinState(device, ts),
    argMinState(browser, ts),
    argMinState(browser_version, ts),
    argMinState(os, ts),
    argMinState(os_version, ts)
FROM events
WHERE session_id != 0 AND is_bot = 0
GROUP BY tenant_id, site_id, day, session_id
SETTINGS max_bytes_before_external_group_by = 1000000000;

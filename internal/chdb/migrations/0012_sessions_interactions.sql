-- Visits are made of interactions. Two kinds of events are not interactions:
-- engagement events (type 'track', name 'engagement': a tracker's report of
-- the visible time and scroll depth of a page being left or hidden, from
-- Pulse's full tracker or Plausible's) and events their sender marked
-- non-interactive (non_interactive = 1, Plausible's "interactive": false,
-- migration 0011). Neither ends a bounce, extends a visit or makes one of its
-- own (one that arrives after the session timeout has its own session_id).
-- Package dashboard's builder.go (interactionSQL) holds the same condition;
-- it reads engagement events for time on page and scroll depth only, and
-- counts non-interactive events as the custom events they are.
--
-- The view of migration 0005 aggregated every event, so the visits already
-- in `sessions` are rebuilt from `events` with the new view. Running this
-- twice, or from two nodes at once, ends the same: whichever node empties
-- `sessions` last has created the view before it refills the table from
-- every event stored by then, and the view takes every later insert; every
-- state is idempotent, so rows written twice count once. While it runs, a
-- query may see fewer visits than there are.
DROP TABLE IF EXISTS sessions_mv;

TRUNCATE TABLE sessions;

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
WHERE session_id != 0 AND is_bot = 0 AND NOT (type = 'track' AND name = 'engagement') AND non_interactive = 0
GROUP BY tenant_id, site_id, day, session_id;

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
WHERE session_id != 0 AND is_bot = 0 AND NOT (type = 'track' AND name = 'engagement') AND non_interactive = 0
GROUP BY tenant_id, site_id, day, session_id
SETTINGS max_bytes_before_external_group_by = 1000000000;

-- sessions_final, sessions_recent and rollup_days were written from the old
-- visits (and rollup_days's event sums counted engagement events). Every
-- day with events counts as written now, so the Finalizer writes every
-- month again, and until it has, queries merge those months' visits from
-- `sessions` (package dashboard, finalState.watermark). sessions_recent
-- loses its rows and the markers that say which visits it holds, so
-- queries merge every visit since the watermark until the Finalizer's next
-- pass rewrites it.
TRUNCATE TABLE sessions_recent;

INSERT INTO event_days (day, inserted_at)
SELECT toDate(ts) AS day, maxState(toDateTime(now(), 'UTC'))
FROM events
WHERE is_bot = 0
GROUP BY day;

-- Every tracked event, one row each. Resent events (same event_id) merge away:
-- the sort key holds the event id, so ReplacingMergeTree keeps one row per event.
-- Queries that must count exactly read with FINAL or count distinct event_id.
-- ts must be the same for every copy of an event (it comes from the client's
-- timestamp), because it is part of the partition and the sort key.
CREATE TABLE IF NOT EXISTS events (
    tenant_id       UUID,
    site_id         UUID,
    event_id        UUID,
    ts              DateTime('UTC'),
    received_at     DateTime('UTC'),
    type            String,
    name            String,
    hostname        String,
    pathname        String,
    query           String,
    title           String,
    referrer        String,
    referrer_host   String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_term        String,
    utm_content     String,
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
    prop_values     Array(String)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant_id, site_id, toDate(ts), event_id);

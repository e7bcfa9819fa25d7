-- Ended visits of the days after sessions_final's watermark (yesterday and
-- today, UTC), plain rows like sessions_final's. Package dashboard's
-- Finalizer rewrites each day's partition on every pass with the visits
-- whose last event is older than the session timeout and a margin, so they
-- can take no more events (a late one shows at the next pass). Queries read
-- those visits from here and merge only the others from `sessions`: merging
-- the states of a day's visits at every query cost a few hundred
-- milliseconds. Older days' partitions are dropped by the Finalizer.
CREATE TABLE IF NOT EXISTS sessions_recent (
    tenant_id       UUID,
    site_id         UUID,
    session_id      UInt64,
    started_at      DateTime('UTC'),
    ended_at        DateTime('UTC'),
    visitor_id      UInt64,
    user_id         String,
    pageviews       UInt32,
    events          UInt32,
    entry_page      String,
    exit_page       String,
    hostname        String,
    referrer        String,
    source          String,
    medium          String,
    channel         String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_term        String,
    utm_content     String,
    country         String,
    region          String,
    city            String,
    device          String,
    browser         String,
    browser_version String,
    os              String,
    os_version      String
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(started_at)
ORDER BY (tenant_id, site_id, started_at, session_id);

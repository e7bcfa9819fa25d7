-- Finished visits, one plain row each: a copy of `sessions` that queries can
-- scan without merging states per session (which costs about a second per
-- million visits on two cores). Package dashboard's Finalizer writes it: it
-- merges the visits that started before its watermark (the start of the
-- previous UTC day, so every such visit has ended) into a staging table and
-- swaps whole month partitions in with REPLACE PARTITION, so a month is never
-- seen half written. It re-finalizes a month whenever `sessions` has new parts
-- for days already finalized (late events, deletions). Queries read visits
-- that started before the watermark from here and later ones from `sessions`.
CREATE TABLE IF NOT EXISTS sessions_final (
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
PARTITION BY toYYYYMM(started_at)
ORDER BY (tenant_id, site_id, started_at, session_id);

-- How far sessions_final is complete: every visit that started before
-- `through` is in it, as of `finalized_at`. One row per month partition;
-- readers take the latest row of each.
CREATE TABLE IF NOT EXISTS sessions_final_months (
    month        UInt32,
    through      DateTime('UTC'),
    finalized_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(finalized_at)
ORDER BY month;

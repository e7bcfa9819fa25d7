-- Finished visits and their events summed per site, UTC day and value of
-- each dimension, so that the standard reports read a few rows per day
-- instead of every visit. Package dashboard's Finalizer writes it with
-- sessions_final (migration 0007), month by month, from the same visits, and
-- swaps a month in only after sessions_final's; queries read days before the
-- watermark from here and the rest as before.
--
-- dim is the query API's dimension name (visit:browser, event:page…), or ''
-- for the site's totals. Visit dimensions count the visits that started on
-- the day; event dimensions (event:page, event:name, event:hostname) count
-- the day's events, and their visitors are the visitors with such an event.
--
-- visitors is exact for the day. A visitor id is derived with the UTC day's
-- salt, so a visit's visitor is seen on one UTC day, and the visitors of
-- whole UTC days are the sum of each day's (the Finalizer marks the months
-- where that fails, dim '#multiday'). An event's visitor can be seen on two
-- days when the visit crosses midnight: carry counts, for event dimensions,
-- the day's visitors of the value also seen the day before, which a sum over
-- consecutive days takes off.
CREATE TABLE IF NOT EXISTS rollup_days (
    tenant_id UUID,
    site_id   UUID,
    dim       String,
    day       Date,
    value     String,
    visitors  UInt64,
    visits    UInt64,
    pageviews UInt64,
    events    UInt64,
    bounces   UInt64,
    duration  UInt64,
    carry     UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant_id, site_id, dim, day, value);

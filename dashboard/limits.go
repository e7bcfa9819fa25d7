package dashboard

import "time"

// Limits of the query API. Each is a documented default (docs/query-api.md).
const (
	// DefaultQueryTimeout is ClickHouse's max_execution_time for one query.
	DefaultQueryTimeout = 10 * time.Second
	// DefaultQueryMemory is ClickHouse's max_memory_usage for one query, in bytes.
	DefaultQueryMemory = 2 << 30
	// MaxGroups caps the groups one ClickHouse query may return before
	// limit/offset (max_result_rows); a breakdown with more is refused.
	MaxGroups = 200_000
	// DefaultLimit is the number of result rows when the request gives no limit.
	DefaultLimit = 100
	// MaxLimit is the largest limit a request may ask for.
	MaxLimit = 10_000
	// MaxTimeBuckets caps the buckets of a time dimension with time_labels.
	MaxTimeBuckets = 10_000
	// MaxDimensions is the number of dimensions one query may group by.
	MaxDimensions = 3
	// MaxMetrics is the number of metrics one query may ask for.
	MaxMetrics = 16
	// MaxFilters is the number of leaf filters in one request.
	MaxFilters = 50
	// MaxFilterDepth is how deeply and/or/not may nest.
	MaxFilterDepth = 4
	// MaxFilterValues is the number of values one filter may list.
	MaxFilterValues = 100
	// MaxValueLength is the longest filter value or property key, in bytes.
	MaxValueLength = 1024
	// MaxBodyBytes is the largest request body.
	MaxBodyBytes = 64 << 10
	// DefaultQueriesPerSecond and DefaultQueryBurst rate-limit each caller
	// (API key, user or share link) per node.
	DefaultQueriesPerSecond = 10
	DefaultQueryBurst       = 20
	// DefaultMaxConcurrentStatements bounds the query API's statements in
	// flight at once on one node; more wait (within the request's deadline)
	// rather than crowd ClickHouse and the connection pool.
	DefaultMaxConcurrentStatements = 8
	// MaxRateLimited bounds the callers the rate limiter remembers; the
	// least recently seen are forgotten first.
	MaxRateLimited = 100_000
	// realtimeWindow is the span of the "realtime" date range.
	realtimeWindow = 30 * time.Minute
	// sessionDaySlack widens a visits read's day range (after it, and before
	// it where the rows of the day before are not left out by id) so that
	// a visit crossing midnight (UTC) is read whole.
	sessionDaySlack = 1
)

// Funnel and cohort limits.
const (
	MinFunnelSteps       = 2
	MaxFunnelSteps       = 8
	DefaultFunnelWindow  = 30 * time.Minute
	MaxFunnelWindow      = 24 * time.Hour
	DefaultFunnelLimit   = 10
	DefaultCohortPeriods = 8
	MaxCohortPeriods     = 52
)

// The days a date range may name. ClickHouse's DateTime and Date hold
// 1970-01-01 to 2105 (18.16 reads a date outside as 1970-01-01, silently),
// and times are bound as UInt32 seconds, which a time before 1970 would
// wrap; the day of slack on each side leaves room for a site's UTC offset.
const (
	MinQueryDate = "1970-01-02"
	MaxQueryDate = "2105-12-31"
)

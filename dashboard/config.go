package dashboard

import "time"

// Config configures the query API. Zero fields take the defaults of limits.go.
type Config struct {
	// QueryTimeout is ClickHouse's max_execution_time for one query.
	QueryTimeout time.Duration
	// QueryMemory is ClickHouse's max_memory_usage for one query, in bytes.
	QueryMemory int64
	// QueriesPerSecond and QueryBurst rate-limit each caller per node.
	QueriesPerSecond float64
	QueryBurst       int
	// MaxConcurrentStatements bounds the statements in flight on this node.
	MaxConcurrentStatements int
}

func (c *Config) withDefaults() {
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.QueryMemory <= 0 {
		c.QueryMemory = DefaultQueryMemory
	}
	if c.QueriesPerSecond <= 0 {
		c.QueriesPerSecond = DefaultQueriesPerSecond
	}
	if c.QueryBurst <= 0 {
		c.QueryBurst = DefaultQueryBurst
	}
	if c.MaxConcurrentStatements <= 0 {
		c.MaxConcurrentStatements = DefaultMaxConcurrentStatements
	}
}

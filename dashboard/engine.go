package dashboard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"golang.org/x/sync/singleflight"
)

// Engine runs queries against ClickHouse.
type Engine struct {
	db  *chdb.DB
	cfg Config
	// slots holds a token per statement in flight.
	slots chan struct{}
	// rollup lets queries read rollup_days (tests compare with it off).
	rollup bool
	// states shares reads of a site's state (siteState).
	states singleflight.Group
}

// NewEngine returns an engine over db.
func NewEngine(db *chdb.DB, cfg Config) *Engine {
	cfg.withDefaults()
	return &Engine{db: db, cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrentStatements), rollup: true}
}

// ctx adds the per-query ClickHouse limits.
func (e *Engine) ctx(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": int(e.cfg.QueryTimeout / time.Second),
		"max_memory_usage":   int(e.cfg.QueryMemory),
		// result_overflow_mode is "throw" by default (and a string setting
		// cannot be sent to ClickHouse 18.16 over the native protocol).
		"max_result_rows": MaxGroups,
	}))
}

// acquire waits for a statement slot, or fails when ctx ends first.
func (e *Engine) acquire(ctx context.Context) (func(), error) {
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (waiting for a free statement slot)", ErrQueryTimeout)
	}
}

// Query errors a caller can act on.
var (
	ErrQueryTimeout  = errors.New("query took too long: narrow the date range or the filters")
	ErrQueryMemory   = errors.New("query needs too much memory: narrow the date range or the filters")
	ErrQueryTooLarge = errors.New("query has too many groups: add filters or use fewer dimensions")
)

// ClickHouse error codes the query API translates.
const (
	codeTimeoutExceeded     = 159
	codeMemoryLimitExceeded = 241
	codeTooManyRows         = 158
	codeTooManyRowsOrBytes  = 396
)

func queryError(err error) error {
	switch {
	case chdb.IsCode(err, codeTimeoutExceeded):
		return fmt.Errorf("%w (%v)", ErrQueryTimeout, err)
	case chdb.IsCode(err, codeMemoryLimitExceeded):
		return fmt.Errorf("%w (%v)", ErrQueryMemory, err)
	case chdb.IsCode(err, codeTooManyRows, codeTooManyRowsOrBytes):
		return fmt.Errorf("%w (%v)", ErrQueryTooLarge, err)
	case chdb.IsCode(err, codeCannotCompileRegexp):
		return patternError(err)
	}
	return fmt.Errorf("dashboard: query: %w", err)
}

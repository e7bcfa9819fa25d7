package chdb_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// An insert whose context is cancelled as soon as Send returns (the usual
// `defer cancel()` of a bounded write) leaves its connection usable: the
// driver's watchdog must not close the connection after it went back to the
// pool, where the next statement would fail with "use of closed network
// connection" (clickhouse-go before v2.51.0).
func TestCancelAfterSendLeavesThePoolUsable(t *testing.T) {
	url := chtest.URL(t)
	ctx := context.Background()
	db, err := chdb.Open(ctx, url+"?max_open_conns=1") // every statement on the same connection
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Exec(ctx, "CREATE TABLE IF NOT EXISTS sent (n UInt64) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	insert := func(n uint64) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		b, err := db.PrepareBatch(ctx, "INSERT INTO sent (n)")
		if err != nil {
			return err
		}
		if err := b.Append(n); err != nil {
			return err
		}
		return b.Send()
	}
	// Busy goroutines keep the driver's watchdog goroutine waiting to be
	// scheduled, as a loaded machine does: the race needs it to start only
	// after Send returned and the context was cancelled.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1e5; i++ {
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	const rounds = 100
	for i := range uint64(rounds) {
		if err := insert(i); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		var n uint64
		if err := db.QueryRow(ctx, "SELECT count() FROM sent").Scan(&n); err != nil {
			t.Fatalf("query after insert %d: %v", i, err)
		}
	}
}

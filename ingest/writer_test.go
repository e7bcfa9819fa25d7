package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// An insert larger than insertBlockRows goes out as several blocks of one
// INSERT: every event arrives once, in one part (ClickHouse writes the blocks
// of an INSERT as one), so a failed insert leaves nothing behind to count.
func TestWriterSendsALargeInsertAsOnePart(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	if err := db.Exec(ctx, "SYSTEM STOP MERGES events"); err != nil {
		t.Fatal(err)
	}
	events := benchEvents(2*insertBlockRows + 1000)
	base := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC) // one month partition
	for i := range events {
		events[i].Time = base.Add(time.Duration(i%3600) * time.Second)
	}
	// Chunks of uneven sizes, as the batcher hands over frames.
	var chunks [][]Event
	for rest := events; len(rest) > 0; {
		n := min(len(rest), 1+len(chunks)*997%5000)
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	if err := NewWriter(db).WriteChunks(ctx, chunks); err != nil {
		t.Fatal(err)
	}
	var rows, ids uint64
	if err := db.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM events").Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(len(events)) || ids != uint64(len(events)) {
		t.Errorf("rows, distinct ids = %d, %d; want %d each", rows, ids, len(events))
	}
	var parts uint64
	if err := db.QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active").Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts != 1 {
		t.Errorf("the insert of %d events in %d chunks made %d parts; want 1", len(events), len(chunks), parts)
	}
}

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
	if n, err := NewWriter(db).WriteChunks(ctx, chunks); err != nil || n != len(events) {
		t.Fatalf("WriteChunks = %d, %v; want %d written", n, err, len(events))
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

// WriteChunks stores each event once: a block resent as it was (a retried
// insert, a resend enriched again into another visit) writes nothing, a
// second copy within a block is left out, and an event whose time the
// server chose is found by its UTC day, since its resend gets another time.
func TestWriteChunksStoresEachEventOnce(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	w := NewWriter(db)
	events := benchEvents(2000)
	base := time.Now().UTC().Truncate(24 * time.Hour)
	for i := range events {
		events[i].Time = base.Add(time.Duration(i) * time.Second)
	}
	events[7].serverTime = true
	if n, err := w.WriteChunks(ctx, [][]Event{events[:1000], events[1000:]}); err != nil || n != len(events) {
		t.Fatalf("first write = %d, %v; want %d written", n, err, len(events))
	}

	resent := append([]Event(nil), events[:10]...)
	for i := range resent {
		resent[i].SessionID++ // enriched again: another visit
	}
	resent[7].Time = resent[7].Time.Add(time.Hour) // received again later, same UTC day
	fresh := benchEvents(3)
	for i := range fresh {
		fresh[i].TenantID, fresh[i].SiteID = events[0].TenantID, events[0].SiteID
		fresh[i].Time = base.Add(time.Duration(i) * time.Second)
	}
	copyOfFresh := fresh[1]
	nextDay := events[20]
	nextDay.Time, nextDay.serverTime = base.Add(36*time.Hour), true // another UTC day: another event
	chunks := [][]Event{resent, fresh, {copyOfFresh, nextDay}}
	n, err := w.WriteChunks(ctx, chunks)
	if err != nil || n != len(fresh)+1 {
		t.Fatalf("second write = %d, %v; want %d: the 3 new events and the one of another day", n, err, len(fresh)+1)
	}

	var rows, ids, visits uint64
	err = db.QueryRow(ctx, "SELECT count(), uniqExact(event_id), uniqExactIf(session_id, session_id != 0) FROM events WHERE site_id = toUUID(?)", events[0].SiteID.String()).
		Scan(&rows, &ids, &visits)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(events) + len(fresh) + 1); rows != want || ids != want-1 {
		t.Fatalf("stored %d rows, %d distinct ids; want %d rows of %d ids", rows, ids, want, want-1)
	}
	var sessionRows uint64
	if err := db.QueryRow(ctx, "SELECT uniqExact(session_id) FROM sessions WHERE site_id = toUUID(?)", events[0].SiteID.String()).Scan(&sessionRows); err != nil {
		t.Fatal(err)
	}
	if sessionRows != visits {
		t.Fatalf("sessions holds %d visits, events %d: a resend made a visit of its own", sessionRows, visits)
	}
}

package ingest

import (
	"context"
	"slices"
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

// WriteChunks stores each event that counts in visits once: a block resent
// as it was (a retried insert, a resend enriched again into another visit)
// writes nothing, and a second copy within a block is left out. The same id
// at another time is another event; an event without a visit is not looked
// for (a second copy of it is a row no count sees twice).
func TestWriteChunksStoresEachEventOnce(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	w := NewWriter(db)
	events := benchEvents(2000)
	base := time.Now().UTC().Truncate(24 * time.Hour)
	for i := range events {
		events[i].Time = base.Add(time.Duration(i) * time.Second)
		events[i].SessionID = uint64(1 + i%300)
	}
	events[9].SessionID = 0 // no visitor id, so no visit
	if n, err := w.WriteChunks(ctx, [][]Event{events[:1000], events[1000:]}); err != nil || n != len(events) {
		t.Fatalf("first write = %d, %v; want %d written", n, err, len(events))
	}

	resent := append([]Event(nil), events[:10]...)
	for i := range resent[:9] {
		resent[i].SessionID += 1000 // enriched again: another visit
	}
	fresh := benchEvents(3)
	for i := range fresh {
		fresh[i].TenantID, fresh[i].SiteID = events[0].TenantID, events[0].SiteID
		fresh[i].Time, fresh[i].SessionID = base.Add(time.Duration(i)*time.Second), 5000
	}
	copyOfFresh := fresh[1]
	copyOfFresh.SessionID = 5001
	later := events[20]
	later.Time = later.Time.Add(36 * time.Hour) // the same id at another time: another event
	n, err := w.WriteChunks(ctx, [][]Event{resent, fresh, {copyOfFresh, later}})
	if want := 1 + len(fresh) + 1; err != nil || n != want {
		t.Fatalf("second write = %d, %v; want %d: the event without a visit, the 3 new ones and the one at another time", n, err, want)
	}

	var rows, ids, visits uint64
	err = db.QueryRow(ctx, "SELECT count(), uniqExact(event_id), uniqExactIf(session_id, session_id != 0) FROM events WHERE site_id = toUUID(?)", events[0].SiteID.String()).
		Scan(&rows, &ids, &visits)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(events) + 1 + len(fresh) + 1); rows != want || ids != want-2 || visits != 301 {
		t.Fatalf("stored %d rows of %d ids in %d visits; want %d rows (the event without a visit and the one at another time twice) of %d ids in 301 visits",
			rows, ids, visits, want, want-2)
	}
	var sessionRows uint64
	if err := db.QueryRow(ctx, "SELECT uniqExact(session_id) FROM sessions WHERE site_id = toUUID(?)", events[0].SiteID.String()).Scan(&sessionRows); err != nil {
		t.Fatal(err)
	}
	if sessionRows != visits {
		t.Fatalf("sessions holds %d visits, events %d: a resend made a visit of its own", sessionRows, visits)
	}
}

func TestTimeRangesCoverEveryTimeWithFewRanges(t *testing.T) {
	for _, tt := range []struct {
		name  string
		times []int64
		max   int
		want  [][2]int64
	}{
		{"one stretch", []int64{105, 100, 103, 100, 110}, 8, [][2]int64{{100, 110}}},
		{"a backdated time", []int64{5000, 5001, 100, 5003}, 8, [][2]int64{{100, 100}, {5000, 5003}}},
		{"too many: the closest merge", []int64{0, 100, 130, 1000, 1020}, 3, [][2]int64{{0, 0}, {100, 130}, {1000, 1020}}},
		{"too many, again", []int64{0, 100, 130, 1000, 1020}, 2, [][2]int64{{0, 130}, {1000, 1020}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := timeRanges(tt.times, 10, tt.max)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("timeRanges(%v) = %v, want %v", tt.times, got, tt.want)
			}
			for _, x := range tt.times {
				if !slices.ContainsFunc(got, func(r [2]int64) bool { return r[0] <= x && x <= r[1] }) {
					t.Fatalf("%d is in no range of %v", x, got)
				}
			}
		})
	}
}

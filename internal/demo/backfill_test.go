package demo

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

func TestBackfillWritesOnlyTheMissingHours(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	site := uuid.New()
	d, err := New(Config{Tenant: uuid.New(), Site: site, VisitsPerDay: 2000}, db, ingest.NewWriter(db))
	if err != nil {
		t.Fatal(err)
	}
	until := time.Date(2026, 3, 2, 15, 20, 0, 0, time.UTC)
	from := until.Add(-3 * 24 * time.Hour)
	count := func() (n, ids uint64, first, last time.Time) {
		t.Helper()
		if err := db.QueryRow(ctx, "SELECT count(), uniqExact(event_id), min(ts), max(ts) FROM events").Scan(&n, &ids, &first, &last); err != nil {
			t.Fatal(err)
		}
		return n, ids, first, last
	}

	st, err := d.Backfill(ctx, from, until)
	if err != nil {
		t.Fatal(err)
	}
	n, ids, first, last := count()
	t.Logf("%+v", st)
	if st.Events == 0 || uint64(st.Events) != n || ids != n || st.HoursPresent != 0 || st.Hours < 70 {
		t.Fatalf("first back-fill: %+v; the table holds %d events, %d ids", st, n, ids)
	}
	if first.Before(from) || first.Sub(from) > time.Hour || !last.Before(until) || until.Sub(last) > time.Hour {
		t.Errorf("events from %s to %s, want %s to %s", first, last, from, until)
	}

	// A restart a little later writes only the hours since.
	again, err := d.Backfill(ctx, from.Add(2*time.Hour), until.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n2, ids2, _, last2 := count()
	if again.HoursPresent < 70 || again.Hours > 3 || again.Events == 0 || n2 != n+uint64(again.Events) || ids2 != n2 || !last2.After(last) {
		t.Fatalf("second back-fill: %+v; the table holds %d events (%d before), %d ids", again, n2, n, ids2)
	}

	// The same hours from another start have the same events: a fresh
	// back-fill of the whole range writes the ids already stored.
	other := chtest.Open(t)
	d2, _ := New(Config{Tenant: d.cfg.Tenant, Site: site, VisitsPerDay: 2000}, other, ingest.NewWriter(other))
	if _, err := d2.Backfill(ctx, from, until.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var same uint64
	q := "SELECT count() FROM `" + other.Database + "`.events WHERE event_id IN (SELECT event_id FROM `" + db.Database + "`.events)"
	if err := other.QueryRow(ctx, q).Scan(&same); err != nil {
		t.Fatal(err)
	}
	if same != n2 {
		t.Errorf("%d of %d events have the same ids when written in one go", same, n2)
	}
}

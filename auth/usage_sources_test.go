package auth

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// TestUsageSourcesAreTheMonthsLargest: the sources of an org's events
// received in a month, largest first, with their bots, are what a plain SQL
// over the stored events answers; other orgs' events and other months'
// receipts are not in them, and an event backdated into the previous month
// but received in this one is.
func TestUsageSourcesAreTheMonthsLargest(t *testing.T) {
	ctx := context.Background()
	db := chtest.Open(t)
	s := openStore(t, db, testConfig(t))
	org, other := uuid.New(), uuid.New()
	shop, blog := uuid.New(), uuid.New()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	type ev struct {
		org, site    uuid.UUID
		host         string
		ts, received time.Time
		bot          uint8
		n            int
	}
	evs := []ev{
		{org, shop, "shop.example", nov.Add(30 * time.Hour), nov.Add(30 * time.Hour), 0, 5},
		{org, shop, "shop.example", nov.Add(31 * time.Hour), nov.Add(31 * time.Hour), 1, 2},
		{org, shop, "evil.example", nov.Add(40 * time.Hour), nov.Add(40 * time.Hour), 0, 9},
		{org, blog, "blog.example", nov.Add(-48 * time.Hour), nov.Add(2 * time.Hour), 0, 3},   // backdated, received in November
		{org, blog, "blog.example", nov.Add(-72 * time.Hour), nov.Add(-70 * time.Hour), 0, 4}, // October's
		{other, uuid.New(), "other.example", nov.Add(50 * time.Hour), nov.Add(50 * time.Hour), 0, 20},
	}
	batch, err := db.PrepareBatch(ctx, "INSERT INTO events (tenant_id, site_id, event_id, ts, received_at, type, hostname, is_bot)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		for range e.n {
			if err := batch.Append(e.org, e.site, uuid.New(), e.ts, e.received, "page", e.host, e.bot); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	got, err := s.UsageSources(ctx, org, now)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, `SELECT site_id, hostname, count() AS n, countIf(is_bot = 1) FROM events
		WHERE tenant_id = ? AND toStartOfMonth(received_at) = toDate('2026-11-01')
		GROUP BY site_id, hostname ORDER BY n DESC, site_id, hostname`, org)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := []UsageSource{}
	for rows.Next() {
		var u UsageSource
		if err := rows.Scan(&u.SiteID, &u.Hostname, &u.Events, &u.BotEvents); err != nil {
			t.Fatal(err)
		}
		want = append(want, u)
	}
	if len(want) != 3 || want[0].Hostname != "evil.example" || want[1].Events != 7 || want[1].BotEvents != 2 || want[2].Events != 3 {
		t.Fatalf("the SQL answers %+v; the data set says evil.example 9, shop.example 7 (2 bots), blog.example 3: the test is wrong", want)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UsageSources = %+v\nthe SQL answers %+v", got, want)
	}
}

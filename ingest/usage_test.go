package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// answerLost is a ClickHouse connection whose inserts, while lose is set,
// are committed and then answered with an error: the answer of a committed
// insert lost (a timeout just after the commit, a connection cut).
type answerLost struct {
	*chdb.DB
	lose bool
}

func (c *answerLost) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	b, err := c.DB.PrepareBatch(ctx, query, opts...)
	if err != nil || !c.lose {
		return b, err
	}
	return lostAnswerBatch{b}, nil
}

type lostAnswerBatch struct{ driver.Batch }

func (b lostAnswerBatch) Send() error {
	if err := b.Batch.Send(); err != nil {
		return err
	}
	return errors.New("the answer of the insert was lost")
}

// storedPerDay answers the usage's question with SQL: the org's stored
// events per UTC day of receipt, each once.
func storedPerDay(t *testing.T, db *chdb.DB, org uuid.UUID) map[string]uint64 {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT toString(toDate(received_at)) AS d, uniqExact(event_id) FROM events
		WHERE tenant_id = toUUID(?) GROUP BY d ORDER BY d`, org.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var d string
		var n uint64
		if err := rows.Scan(&d, &n); err != nil {
			t.Fatal(err)
		}
		out[d] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// usagePerDay is the org's usage as the store answers it, after a flush.
func usagePerDay(t *testing.T, s *auth.Store, org uuid.UUID) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	days, err := s.Usage(ctx, org, now.AddDate(0, 0, -7), now.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, d := range days {
		if d.Events > 0 {
			out[d.Day.Format(time.DateOnly)] = d.Events
		}
	}
	return out
}

func total(perDay map[string]uint64) uint64 {
	var n uint64
	for _, v := range perDay {
		n += v
	}
	return n
}

func samePerDay(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for d, n := range a {
		if b[d] != n {
			return false
		}
	}
	return true
}

// The writer tells the meter of each event it stores once, in its tenant's
// usage for the UTC day it was received: not of a copy within the chunks,
// nor of a resend it finds stored, nor of a failed insert; an insert that
// ClickHouse committed but whose answer was lost is counted when its retry
// finds the events stored. Generated history (WriteEvents) counts too.
func TestWriterMetersEachStoredEventOnce(t *testing.T) {
	db := chtest.Open(t)
	ctx := context.Background()
	store := authtest.Store(t, db, auth.Config{Logger: slog.New(slog.DiscardHandler)})
	a := authtest.NewTenant(t, store, "a.example")
	b := authtest.NewTenant(t, store, "b.example")
	conn := &answerLost{DB: db}
	w := NewWriter(conn).WithMeter(store)

	today := time.Now().UTC().Truncate(time.Second)
	yesterday, before := today.AddDate(0, 0, -1), today.AddDate(0, 0, -2)
	events := func(tn authtest.Tenant, n int, received time.Time) []Event {
		ev := benchEvents(n)
		for i := range ev {
			ev[i].TenantID, ev[i].SiteID = tn.Org.ID, tn.Site.ID
			ev[i].Time, ev[i].ReceivedAt = received.Add(-time.Duration(i)*time.Second), received
			ev[i].SessionID = uint64(1 + i)
		}
		return ev
	}
	aOld, aNew, bNew := events(a, 10, yesterday), events(a, 20, today), events(b, 5, today)

	// Everything once, and a copy of one event within the chunks.
	if n, err := w.WriteChunks(ctx, [][]Event{aOld, aNew[:10], {aNew[3]}, bNew}); err != nil || n != 25 {
		t.Fatalf("first write = %d, %v; want 25", n, err)
	}
	// Resends of stored events beside new ones.
	if n, err := w.WriteChunks(ctx, [][]Event{aOld[:5], aNew[5:15], bNew}); err != nil || n != 5 {
		t.Fatalf("second write = %d, %v; want the 5 new ones", n, err)
	}
	// A committed insert whose answer is lost, then its retry.
	conn.lose = true
	if _, err := w.WriteChunks(ctx, [][]Event{aNew[15:]}); err == nil {
		t.Fatal("the insert whose answer was lost succeeded")
	}
	conn.lose = false
	if n, err := w.WriteChunks(ctx, [][]Event{aNew[15:]}); err != nil || n != 0 {
		t.Fatalf("retry = %d, %v; want 0: the lost insert stored them", n, err)
	}
	// History generated for the demo.
	if err := w.WriteEvents(ctx, events(b, 7, before)); err != nil {
		t.Fatal(err)
	}

	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	for _, tt := range []struct {
		name string
		org  uuid.UUID
		want map[string]uint64
	}{
		{"a", a.Org.ID, map[string]uint64{day(yesterday): 10, day(today): 20}},
		{"b", b.Org.ID, map[string]uint64{day(before): 7, day(today): 5}},
	} {
		got, sql := usagePerDay(t, store, tt.org), storedPerDay(t, db, tt.org)
		if !samePerDay(got, sql) || !samePerDay(sql, tt.want) {
			t.Errorf("org %s: usage %v, SQL over the stored events %v, want %v", tt.name, got, sql, tt.want)
		}
	}
}

// The quota checks the events the batcher is to take: a WebSocket resend of
// committed events costs nothing, and the monthly quota holds the stored
// events and those in flight. The usage counts what was stored.
func TestWebSocketQuotaChargesWhatIsStored(t *testing.T) {
	env := newWSEnv(t, fastConfig, BatcherConfig{Rows: 1000, FlushInterval: 10 * time.Millisecond})
	if _, err := env.store.SetQuota(context.Background(), env.org.ID, auth.Quota{EventsPerSecond: 1000, EventsPerMonth: 10, MaxConnections: 50}); err != nil {
		t.Fatal(err)
	}
	raws, _ := testEvents(11)
	cl, _ := env.connect(t, "")
	cl.send(eventsFrame(1, raws[:6]))
	if other := cl.waitAck(1, 30*time.Second); len(other) != 0 {
		t.Fatalf("unexpected frames: %+v", other)
	}
	cl.send(eventsFrame(2, raws[:6])) // again, as after a lost ack
	if other := cl.waitAck(2, 30*time.Second); len(other) != 0 {
		t.Fatalf("the resend of 6 stored events at a quota of 10: %+v, want an ack", other)
	}
	cl.send(eventsFrame(3, raws[6:])) // 6 stored + 5 > 10
	if f := cl.waitClose(30 * time.Second); f.CloseCode != CloseQuotaExceeded || !strings.HasPrefix(f.CloseText, auth.ReasonEventsPerMonth) {
		t.Fatalf("6 stored + 5 at a quota of 10: %+v, want close %d %s", f, CloseQuotaExceeded, auth.ReasonEventsPerMonth)
	}
	// The acknowledged events are stored, no longer in flight: a quota of
	// 16 leaves room for 10 more.
	if _, err := env.store.SetQuota(context.Background(), env.org.ID, auth.Quota{EventsPerSecond: 1000, EventsPerMonth: 16, MaxConnections: 50}); err != nil {
		t.Fatal(err)
	}
	if d := env.store.AllowEvents(env.org.ID, netip.Addr{}, 10); !d.Allowed {
		t.Fatalf("6 stored + 10 at a quota of 16: %+v; the acknowledged events are still in flight", d)
	}
	if got, sql := usagePerDay(t, env.store, env.org.ID), storedPerDay(t, env.db, env.org.ID); !samePerDay(got, sql) || total(sql) != 6 {
		t.Fatalf("usage %v, SQL over the stored events %v; want the 6 events once", got, sql)
	}
}

// The HTTP paths check the quota after the node's memory of ids: a resend
// of events it holds costs nothing; events the batcher took leave the
// flight once written, whether the writer stored them or left them out.
func TestPostedEventsQuotaChargesWhatIsStored(t *testing.T) {
	e := newFormatsEnv(t)
	ctx := context.Background()
	if _, err := e.store.SetQuota(ctx, e.org.ID, auth.Quota{EventsPerSecond: 1000, EventsPerMonth: 10, MaxConnections: 10}); err != nil {
		t.Fatal(err)
	}
	post := func(body string, want int) {
		t.Helper()
		if status, resp, _ := e.do(t, "POST", "/v1/events?site="+e.site.PublicKey, body, nil); status != want {
			t.Fatalf("POST %s = %d %s, want %d", body, status, resp, want)
		}
	}
	raws, _ := testEvents(12)
	list := func(r []json.RawMessage) string {
		parts := make([]string, len(r))
		for i := range r {
			parts[i] = string(r[i])
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	post(list(raws[:6]), 202)
	post(list(raws[:6]), 202) // held by the node already: not charged again
	segment := func(id string) string {
		return fmt.Sprintf(`{"type":"page","messageId":%q,"anonymousId":"a1","properties":{"url":"https://shop.example/s"}}`, id)
	}
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	batch := `{"batch":[` + segment(ids[0]) + "," + segment(ids[1]) + "," + segment(ids[2]) + "," + segment(ids[3]) + "]}"
	if status, resp, _ := e.do(t, "POST", "/v1/batch", batch, basic(e.ingestKey)); status != 200 {
		t.Fatalf("Segment batch of 4 at 6 of 10 = %d %s", status, resp)
	}
	post(list(raws[6:7]), 429) // 6 + 4 + 1 > 10
	// The final flush writes and settles everything the batcher holds.
	if err := e.flushBatcher(); err != nil {
		t.Fatal(err)
	}
	// 10 stored, none in flight: a quota of 15 leaves room for 5 more.
	if _, err := e.store.SetQuota(ctx, e.org.ID, auth.Quota{EventsPerSecond: 1000, EventsPerMonth: 15, MaxConnections: 10}); err != nil {
		t.Fatal(err)
	}
	if d := e.store.AllowEvents(e.org.ID, netip.Addr{}, 5); !d.Allowed {
		t.Fatalf("10 stored + 5 at a quota of 15: %+v; the written events are still in flight", d)
	}
	if got, sql := usagePerDay(t, e.store, e.org.ID), storedPerDay(t, e.db, e.org.ID); !samePerDay(got, sql) || total(sql) != 10 {
		t.Fatalf("usage %v, SQL over the stored events %v; want the 10 events once", got, sql)
	}
}

package stream

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func testState(now time.Time) *state {
	cfg := Config{}
	cfg.withDefaults()
	return newState(uuid.New(), &cfg, now)
}

func page(path string, visitor, session uint64) Event {
	return Event{ID: uuid.New(), Type: "page", Pathname: path, Source: "news.example", Channel: "Referral",
		Country: "DE", Browser: "Firefox", Device: "desktop", VisitorID: visitor, SessionID: session}
}

// roundTrip encodes v as JSON and decodes it into a fresh value of its type,
// as a client receives it.
func roundTrip[T any](t testing.TB, v *T) *T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSnapshotPlusDeltasEqualsFreshSnapshot is the property test of the
// protocol: a client that applies every delta (decoded from JSON) to its
// first snapshot holds exactly the state a fresh snapshot shows, for random
// event streams, presence changes and clock jumps, for every view subset,
// and also when it catches up with one coalesced delta from an older state.
func TestSnapshotPlusDeltasEqualsFreshSnapshot(t *testing.T) {
	paths := []string{"/", "/pricing", "/blog/a", "/blog/b", "/docs", ""}
	names := []string{"signup", "purchase", "click", ""}
	for seed := range uint64(16) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			now := t0.Add(time.Duration(r.IntN(3600)) * time.Second)
			st := testState(now)
			views := View(r.IntN(int(AllViews))) + 1
			if seed%4 == 0 {
				views = AllViews
			}
			base := st.snapshot()
			client := roundTrip(t, new(base.Filter(views)))
			var history []*Snapshot
			var ids []uuid.UUID
			for step := range 250 {
				switch k := r.IntN(10); {
				case k < 5:
					for range r.IntN(20) {
						e := page(paths[r.IntN(len(paths))], uint64(r.IntN(30)), uint64(r.IntN(15)))
						if r.IntN(3) == 0 {
							e.Type, e.Name = "track", names[r.IntN(len(names))]
						}
						if r.IntN(5) == 0 {
							e.Conn = uint64(r.IntN(5) + 1)
						}
						if len(ids) > 0 && r.IntN(6) == 0 {
							e.ID = ids[r.IntN(len(ids))] // a resend
						}
						ids = append(ids, e.ID)
						st.add(&e)
					}
				case k < 7:
					st.presence(Presence{Kind: PresenceKind(r.IntN(3) + 1), Conn: uint64(r.IntN(5) + 1)})
				case k < 9:
					now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
					st.advance(now)
				default:
					now = now.Add(time.Duration(r.IntN(40)) * time.Minute)
					st.advance(now)
					st.sweepPresence(now)
				}
				cur := st.snapshot()
				d, changed := Diff(base, cur)
				if !changed { // only the time moved: nothing to send
					cur.Time = base.Time
					if jsonOf(t, base) != jsonOf(t, cur) {
						t.Fatalf("step %d: no delta, but the state changed", step)
					}
					continue
				}
				fd, _ := d.Filter(views)
				if err := client.Apply(roundTrip(t, &fd)); err != nil {
					t.Fatal(err)
				}
				history = append(history, base)
				base = cur
				want := base.Filter(views)
				if got, w := jsonOf(t, client), jsonOf(t, &want); got != w {
					t.Fatalf("step %d: snapshot + deltas differ from a fresh snapshot:\n got %s\nwant %s", step, got, w)
				}
				if len(history) > 3 { // a subscriber three frames behind catches up with one delta
					old := history[len(history)-3]
					lagging := roundTrip(t, new(old.Filter(views)))
					cd, _ := Diff(old, base)
					fcd, _ := cd.Filter(views)
					if err := lagging.Apply(roundTrip(t, &fcd)); err != nil {
						t.Fatal(err)
					}
					if got, w := jsonOf(t, lagging), jsonOf(t, &want); got != w {
						t.Fatalf("step %d: coalesced delta differs:\n got %s\nwant %s", step, got, w)
					}
				}
			}
		})
	}
}

func TestRatesAndDedup(t *testing.T) {
	st := testState(t0)
	e := page("/", 1, 1)
	st.add(&e)
	if st.add(&e) {
		t.Fatal("a resent id was counted again")
	}
	st.advance(t0.Add(time.Second))
	for range 3 {
		e := page("/a", 2, 2)
		st.add(&e)
	}
	ev := Event{ID: uuid.New(), Type: "track", Name: "signup", VisitorID: 2}
	st.add(&ev)
	snap := st.snapshot()
	sec := snap.Rates.Seconds
	if sec.End != t0.Unix()+1 || len(sec.Events) != SecondsWindow {
		t.Fatalf("seconds series ends at %d with %d slots", sec.End, len(sec.Events))
	}
	if got := sec.Events[SecondsWindow-2:]; got[0] != 1 || got[1] != 4 {
		t.Errorf("events per second = %v, want [1 4]", got)
	}
	if got := sec.Pageviews[SecondsWindow-2:]; got[0] != 1 || got[1] != 3 {
		t.Errorf("pageviews per second = %v, want [1 3]", got)
	}
	if m := snap.Rates.Minutes; m.Events[MinutesWindow-1] != 5 || m.Pageviews[MinutesWindow-1] != 4 {
		t.Errorf("per minute = %d events %d pageviews, want 5 and 4", m.Events[MinutesWindow-1], m.Pageviews[MinutesWindow-1])
	}
	if snap.Visitors.Last30m != 2 {
		t.Errorf("unique visitors = %d, want 2", snap.Visitors.Last30m)
	}
	if g := snap.Goals.Items; len(g) != 1 || g[0] != (Goal{Name: "signup", Short: 1, Long: 1, Hour: 1}) {
		t.Errorf("goals = %+v", g)
	}
	if e := snap.Entries.Long; !reflect.DeepEqual(e, []Count{{"/", 1}, {"/a", 1}}) {
		t.Errorf("entry pages = %v, want / and /a once each", e)
	}
	if p := snap.Pages.Long; !reflect.DeepEqual(p, []Count{{"/a", 3}, {"/", 1}}) {
		t.Errorf("pages = %v", p)
	}
}

// TestEngagementIsNotCounted: an engagement event (a page's visible time
// and scroll depth) is no custom event, goal, event of the rates, visitor
// or feed item; it keeps its HTTP visitor online.
func TestEngagementIsNotCounted(t *testing.T) {
	st := testState(t0)
	p := page("/", 1, 1)
	st.add(&p)
	eng := Event{ID: uuid.New(), Type: "track", Name: "engagement", Pathname: "/", VisitorID: 1, SessionID: 1}
	other := Event{ID: uuid.New(), Type: "track", Name: "engagement", Pathname: "/", VisitorID: 2, SessionID: 2}
	if !st.add(&eng) || !st.add(&other) {
		t.Fatal("an engagement event was taken for a resent one")
	}
	snap := st.snapshot()
	if m := snap.Rates.Minutes; m.Events[MinutesWindow-1] != 1 || m.Pageviews[MinutesWindow-1] != 1 {
		t.Errorf("per minute = %d events %d pageviews, want the pageview alone", m.Events[MinutesWindow-1], m.Pageviews[MinutesWindow-1])
	}
	if len(snap.Events.Long) != 0 || len(snap.Goals.Items) != 0 {
		t.Errorf("custom events %v, goals %v; want none", snap.Events.Long, snap.Goals.Items)
	}
	if snap.Visitors.Last30m != 1 {
		t.Errorf("unique visitors = %d, want 1 (the visitor with only an engagement event is not one)", snap.Visitors.Last30m)
	}
	if f := snap.Feed.Items; len(f) != 1 || f[0].Type != "page" {
		t.Errorf("feed = %+v, want the pageview alone", f)
	}
	if got := st.online(); got.HTTP != 2 {
		t.Errorf("online = %+v, want both HTTP visitors (an engagement event is a sign of life)", got)
	}
}

func TestWindowsExpire(t *testing.T) {
	tests := []struct {
		after             time.Duration
		short, long, hour uint64
		visitors          uint64
	}{
		{after: 0, short: 1, long: 1, hour: 1, visitors: 1},
		{after: 4 * time.Minute, short: 1, long: 1, hour: 1, visitors: 1},
		{after: 5 * time.Minute, short: 0, long: 1, hour: 1, visitors: 1},
		{after: 29 * time.Minute, short: 0, long: 1, hour: 1, visitors: 1},
		{after: 30 * time.Minute, short: 0, long: 0, hour: 1, visitors: 0},
		{after: 60 * time.Minute, short: 0, long: 0, hour: 0, visitors: 0},
	}
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			st := testState(t0)
			e := Event{ID: uuid.New(), Type: "track", Name: "signup", VisitorID: 9}
			st.add(&e)
			st.advance(t0.Add(tt.after))
			snap := st.snapshot()
			var short, long uint64
			if l := snap.Events.Short; len(l) > 0 {
				short = l[0].N
			}
			if l := snap.Events.Long; len(l) > 0 {
				long = l[0].N
			}
			g := snap.Goals.Items[0]
			if short != tt.short || long != tt.long || g.Short != tt.short || g.Long != tt.long || g.Hour != tt.hour {
				t.Errorf("events 5m=%d 30m=%d, goal %+v; want %d %d %d", short, long, g, tt.short, tt.long, tt.hour)
			}
			if snap.Visitors.Last30m != tt.visitors {
				t.Errorf("visitors = %d, want %d", snap.Visitors.Last30m, tt.visitors)
			}
		})
	}
}

func TestOnlineNow(t *testing.T) {
	st := testState(t0)
	st.presence(Presence{Kind: Connected, Conn: 1})
	st.presence(Presence{Kind: Connected, Conn: 2})
	e := page("/", 7, 1)
	e.Conn = 1
	st.add(&e)
	h := page("/", 8, 2) // over HTTP
	st.add(&h)
	h2 := page("/", 7, 1) // the same visitor over HTTP too: counted once
	st.add(&h2)
	if got := st.online(); got != (Online{Now: 3, Connections: 2, HTTP: 1}) {
		t.Fatalf("online = %+v, want 3 (two connections, one HTTP visitor)", got)
	}
	st.presence(Presence{Kind: Disconnected, Conn: 2})
	if got := st.online().Now; got != 2 {
		t.Errorf("after a disconnect online = %d, want 2", got)
	}
	st.advance(t0.Add(DefaultPresenceTimeout + time.Second)) // conn 1 silent
	if got := st.online(); got != (Online{Now: 2, Connections: 0, HTTP: 2}) {
		t.Errorf("after the presence timeout online = %+v, want the two HTTP visitors", got)
	}
	st.advance(t0.Add(DefaultHTTPPresence + time.Second))
	st.sweepPresence(st.now)
	if got := st.online().Now; got != 0 || len(st.conns)+len(st.http) != 0 {
		t.Errorf("after 5 minutes online = %d, tables %d+%d", got, len(st.conns), len(st.http))
	}
}

func TestFeedIsSampledWhenBusy(t *testing.T) {
	st := testState(t0)
	for range 10 * FeedPerSecond { // a busy second
		e := page("/", 1, 1)
		st.add(&e)
	}
	if n := len(st.feed); n != FeedPerSecond {
		t.Fatalf("feed took %d of a busy second, want %d", n, FeedPerSecond)
	}
	st.advance(t0.Add(time.Second))
	for range 10 * FeedPerSecond {
		e := page("/", 1, 1)
		st.add(&e)
	}
	if st.sampleEvery != 10 {
		t.Errorf("sample_every = %d, want 10", st.sampleEvery)
	}
	if n := st.feedN; n != 2*FeedPerSecond {
		t.Errorf("feed items = %d, want %d", n, 2*FeedPerSecond)
	}
	item := st.snapshot().Feed.Items[0]
	if item.Path != "/" || item.Country != "DE" {
		t.Errorf("feed item %+v", item)
	}
}

func TestMemoryBounds(t *testing.T) {
	st := testState(t0)
	for i := range 3 * MaxKeysPerDimension {
		e := page(fmt.Sprintf("/p/%d/%s", i, string(make([]byte, 600))), uint64(i), uint64(i))
		st.add(&e)
	}
	d := &st.dims[dimPages]
	if len(d.ids) != MaxKeysPerDimension+1 {
		t.Errorf("pages tracked %d keys, want %d plus %q", len(d.ids), MaxKeysPerDimension, OtherKey)
	}
	for k := range d.ids {
		if len(k) > MaxKeyBytes {
			t.Fatalf("key of %d bytes kept", len(k))
		}
	}
	for i := range MaxRecentIDs + 10 {
		_ = i
		st.recent.insert(uuid.New())
	}
	if len(st.recent.set) != MaxRecentIDs {
		t.Errorf("recent ids %d, want %d", len(st.recent.set), MaxRecentIDs)
	}
	st.advance(t0.Add(31 * time.Minute))
	if len(d.ids) != 0 || len(st.sessions) != 0 {
		t.Errorf("after 31 idle minutes: %d keys and %d sessions remain", len(d.ids), len(st.sessions))
	}
}

package demo

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulse-analytics/pulse/auth"
	"github.com/pulse-analytics/pulse/ingest"
	"github.com/pulse-analytics/pulse/internal/authtest"
	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// TestLiveVisitorsSignInWithAnIdentityToken plays two signed-in visits
// through a real ingest endpoint: one that opens the app first, identified
// from its hello on, and one that signs in on the way, which reconnects with
// the token (as pulse.identify does). Every event arrives once, and exactly
// those from the app on carry the user, as in the history rows.
func TestLiveVisitorsSignInWithAnIdentityToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := chtest.Open(t)
	quiet := slog.New(slog.DiscardHandler)
	const origin = "https://demo.test"
	store := authtest.Store(t, db, auth.Config{Logger: quiet})
	tn := authtest.NewTenant(t, store, "demo.test", origin)
	m := ingest.NewMetrics(prometheus.NewRegistry())
	batcher := ingest.NewBatcher(ingest.BatcherConfig{FlushInterval: 50 * time.Millisecond}, ingest.NewWriter(db), quiet, m)
	srv := ingest.NewServer(ingest.Config{}, store, batcher, quiet, m)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	srv.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = batcher.Run(ctx) })
	wg.Go(func() { _ = app.Listener(ln) })
	defer func() {
		_ = srv.Shutdown(context.Background())
		_ = app.ShutdownWithTimeout(5 * time.Second)
		cancel()
		wg.Wait()
	}()
	base := "http://" + ln.Addr().String()
	d, err := New(Config{Tenant: tn.Org.ID, Site: tn.Site.ID, SiteKey: tn.Site.PublicKey, Server: base, Origin: origin, Logger: quiet,
		Identity: func(user string) (string, error) { return auth.SignIdentityToken(tn.Site, user, time.Hour) }}, db, ingest.NewWriter(db))
	if err != nil {
		t.Fatal(err)
	}

	// One visit of each kind from the model, played quickly.
	g := newGenerator("demo.test", 5, 10_000, true)
	r := newRand(5)
	var fromHello, onTheWay *visit
	for i := 0; fromHello == nil || onTheWay == nil; i++ {
		if i == 200_000 {
			t.Fatal("the model made no visit that signs in on the way, or none that opens the app first")
		}
		v := new(visit)
		g.next(r, time.Now(), v)
		switch {
		case v.user == "":
		case v.userFrom == 0 && len(v.steps) > 1 && fromHello == nil:
			fromHello = v
		case v.userFrom > 0 && v.userFrom < len(v.steps)-1 && onTheWay == nil:
			onTheWay = v
		}
	}
	sent := 0
	for _, v := range []*visit{fromHello, onTheWay} {
		v.start = time.Now()
		for i := range v.steps {
			v.steps[i].at = time.Duration(i) * 20 * time.Millisecond
		}
		v.end = time.Duration(len(v.steps)) * 20 * time.Millisecond
		d.play(ctx, g.site, v, &fws.Dialer{HandshakeTimeout: helloWait}, "ws"+base[len("http"):]+"/v1/ingest?site="+tn.Site.PublicKey)
		sent += len(v.steps)
	}
	if d.failures.Load() != 0 || d.signFailed.Load() || d.sent.Load() != int64(sent) {
		t.Fatalf("%d connect failures, signing failed %v, %d of %d events sent", d.failures.Load(), d.signFailed.Load(), d.sent.Load(), sent)
	}

	for name, v := range map[string]*visit{"opens the app first": fromHello, "signs in on the way": onTheWay} {
		want := map[string]string{}
		for i := range v.steps {
			u := ""
			if i >= v.userFrom {
				u = v.user
			}
			want[eventID(v.key, uint64(i)).String()] = u
		}
		got := map[string]string{}
		deadline := time.Now().Add(60 * time.Second) // generous for a loaded machine; events never stored fail all the same
		for len(got) < len(want) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			rows, err := db.Query(ctx, "SELECT toString(event_id), user_id FROM events WHERE site_id = toUUID(?) AND has(?, toString(event_id))", tn.Site.ID.String(), keys(want))
			if err != nil {
				t.Fatal(err)
			}
			clear(got)
			n := 0
			for rows.Next() {
				var id, u string
				if err := rows.Scan(&id, &u); err != nil {
					t.Fatal(err)
				}
				got[id] = u
				n++
			}
			rows.Close()
			if n != len(got) {
				t.Fatalf("%s: an event is stored twice (%d rows, %d ids)", name, n, len(got))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d of its %d events stored", name, len(got), len(want))
		}
		for id, u := range want {
			if got[id] != u {
				t.Errorf("%s (user %s from event %d of %d): event %s has user %q, want %q", name, v.user, v.userFrom, len(v.steps), id, got[id], u)
			}
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

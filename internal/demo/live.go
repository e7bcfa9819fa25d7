package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	fws "github.com/fasthttp/websocket"
)

// Live traffic.
const (
	// warmup spreads the first visitors' arrival, so the site starts with
	// about as many visitors online as it would have at that hour.
	warmup = 20 * time.Second
	// maxArrivalWait re-reads the rate at least this often.
	maxArrivalWait = time.Minute
	// helloWait bounds connecting and the hello/welcome exchange.
	helloWait = 10 * time.Second
	// closeWait is how long a leaving visitor waits for the server's close.
	closeWait = 2 * time.Second
	// failLogEvery limits the warning about visitors that cannot connect.
	failLogEvery = 30 * time.Second
	// statsEvery is how often the live counters are logged (debug level).
	statsEvery = time.Minute
	// sdkName is the hello's sdk field, so logs tell demo visitors apart.
	sdkName = "pulse-demo"
)

// live starts visits at the rhythm's rate until ctx ends; each visit is a
// goroutine with its own WebSocket, joined before live returns.
func (d *Demo) live(ctx context.Context) error {
	target, bind, err := dialTarget(d.cfg.Server)
	if err != nil {
		return err
	}
	wsURL := "ws" + strings.TrimPrefix(strings.TrimSuffix(d.cfg.Server, "/"), "http") + "/v1/ingest?site=" + url.QueryEscape(d.cfg.SiteKey)
	g := newGenerator(d.cfg.Hostname, d.cfg.Seed, d.cfg.VisitsPerDay, true)
	r := rand.New(rand.NewPCG(d.cfg.Seed, uint64(time.Now().UnixNano())))
	began := time.Now()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		el := time.Since(began)
		d.log.Info("demo live traffic stopped", "visits", d.visits.Load(), "events_sent", d.sent.Load(),
			"events_acked", d.acked.Load(), "events_per_second", fmt.Sprintf("%.2f", float64(d.sent.Load())/el.Seconds()),
			"elapsed", el.Round(time.Second))
	}()
	start := func(at time.Time) {
		if d.online.Load() >= int64(d.cfg.MaxOnline) {
			return
		}
		v := new(visit)
		g.next(r, at, v)
		src := g.addr(v)
		d.online.Add(1)
		d.visits.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.online.Add(-1)
			d.play(ctx, g.site, v, &fws.Dialer{
				NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					if bind && !d.noBind.Load() {
						nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
						conn, err := nd.DialContext(ctx, "tcp", target)
						if !errors.Is(err, syscall.EADDRNOTAVAIL) {
							return conn, err
						}
						// Only 127.0.0.1 is configured (macOS): visitors share it.
						if !d.noBind.Swap(true) {
							d.log.Warn("demo visitors cannot use their own loopback addresses; they share 127.0.0.1, so they count as few visitors and have no place", "err", err)
						}
					}
					var nd net.Dialer
					return nd.DialContext(ctx, "tcp", target)
				},
				HandshakeTimeout: helloWait,
				ReadBufferSize:   1 << 10,
				WriteBufferSize:  1 << 10,
			}, wsURL)
		}()
	}

	// As many visitors as would be on the site at this hour arrive first.
	now := time.Now().UTC()
	rate, _, _ := g.rhythm.rate(now)
	for range poisson(r, rate*meanVisit(g).Seconds()) {
		start(now.Add(time.Duration(r.Int64N(int64(warmup)))))
	}
	stats := time.NewTicker(statsEvery)
	defer stats.Stop()
	for {
		rate, _, _ := g.rhythm.rate(time.Now())
		wait, arrive := time.Duration(r.ExpFloat64()/rate*float64(time.Second)), true
		if wait > maxArrivalWait {
			wait, arrive = maxArrivalWait, false // the wait is memoryless: draw again then
		}
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case <-stats.C:
				d.log.Debug("demo live traffic", "online", d.online.Load(), "visits", d.visits.Load(),
					"events_sent", d.sent.Load(), "events_acked", d.acked.Load(), "connect_failures", d.failures.Load())
			case <-timer.C:
				break waiting
			}
		}
		if arrive {
			start(time.Now().UTC())
		}
	}
}

// meanVisit is how long the model's visitors stay, on average.
func meanVisit(g *generator) time.Duration {
	r := rand.New(rand.NewPCG(1, 2))
	var (
		v     visit
		total time.Duration
	)
	const n = 2000
	for range n {
		v.steps, v.end = g.site.walk(r, g.site.sources[0].entryPick.pick(r), v.steps[:0], false)
		total += v.end
	}
	return total / n
}

// dialTarget returns the address live visitors connect to and whether each
// can bind its own loopback address (when Pulse listens on loopback or on
// every address; otherwise they share the machine's address).
func dialTarget(server string) (target string, bind bool, err error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", false, fmt.Errorf("demo: server URL %q: want http://host:port", server)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "localhost" || err == nil && ip.IsUnspecified():
		return net.JoinHostPort("127.0.0.1", port), true, nil
	case err == nil && ip.Is4() && ip.IsLoopback():
		return net.JoinHostPort(host, port), true, nil
	default:
		return net.JoinHostPort(host, port), false, nil
	}
}

// wireEvent is an event as the tracker sends it (docs/protocol.md, "Events").
type wireEvent struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Name     string         `json:"name,omitempty"`
	TS       int64          `json:"ts"`
	URL      string         `json:"url"`
	Referrer string         `json:"referrer,omitempty"`
	Title    string         `json:"title,omitempty"`
	Props    map[string]any `json:"props,omitempty"`
}

type eventsFrame struct {
	Type   string      `json:"type"`
	Seq    int64       `json:"seq"`
	Events []wireEvent `json:"events"`
}

// play plays one visit in real time over its own connection to
// /v1/ingest, as the tracker in a browser tab would: hello, a frame per
// event when it happens, and a going-away close when the visitor leaves or
// ctx ends.
func (d *Demo) play(ctx context.Context, s *site, v *visit, dialer *fws.Dialer, wsURL string) {
	if !sleepUntil(ctx, nil, v.start) {
		return
	}
	var (
		conn   *fws.Conn
		done   chan struct{} // closed when the reader of conn returns
		resume string        // the visit's ingest session, resumed on a reconnect
		acked  int64         // the highest seq acknowledged, over the visit's connections
	)
	// connect opens the visit's connection, with identity when given, and
	// starts its reader: acks, errors, and the server's pings and close.
	connect := func(identity string) bool {
		dialCtx, cancel := context.WithTimeout(ctx, helloWait)
		defer cancel()
		header := http.Header{"Origin": {d.cfg.Origin}, "User-Agent": {s.agents[v.agent].header}}
		c, resp, err := dialer.DialContext(dialCtx, wsURL, header)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err == nil {
			resume, err = d.hello(c, identity, resume)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				d.connectFailed(err)
			}
			return false
		}
		conn, done = c, make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			d.read(c, &acked)
		}(done)
		return true
	}
	// leave closes the connection like a closed tab, then waits for the
	// reader to see the close.
	leave := func() {
		_ = conn.WriteControl(fws.CloseMessage, fws.FormatCloseMessage(fws.CloseGoingAway, ""), time.Now().Add(closeWait))
		_ = conn.SetReadDeadline(time.Now().Add(closeWait))
		<-done
		conn.Close()
		conn = nil
	}
	identity := ""
	if v.userFrom == 0 {
		identity = d.identity(v.user)
	}
	if !connect(identity) {
		return
	}
	defer func() {
		if conn != nil {
			leave()
		}
	}()

	var (
		landing = true
		prev    string
	)
	for i := range v.steps {
		st := &v.steps[i]
		if !sleepUntil(ctx, done, v.start.Add(st.at)) {
			return
		}
		if i == v.userFrom && i > 0 {
			// Signed in: the site hands the tracker an identity token and
			// the tracker reconnects with it (pulse.identify).
			if tok := d.identity(v.user); tok != "" {
				leave()
				if !connect(tok) {
					return
				}
			}
		}
		pg := &s.pages[st.page]
		if st.action == pageview && i > 0 {
			landing = false
		}
		ev := wireEvent{ID: eventID(v.key, uint64(i)).String(), TS: time.Now().UnixMilli(), URL: pg.url}
		if landing && v.rawQuery != "" {
			ev.URL += "?" + v.rawQuery
		}
		switch st.action {
		case pageview:
			ev.Type, ev.Title, ev.Referrer = "page", pg.title, prev
			if i == 0 {
				ev.Referrer, _ = s.referrer(v)
			}
			prev = ev.URL
		case engagement:
			// The page being left, as the full tracker reports it.
			ev.Type, ev.Name = "track", engagementName
			ev.Props = make(map[string]any, len(engagementKeys))
			for k, key := range engagementKeys {
				ev.Props[key] = json.Number(st.values[k])
			}
		default:
			a := &pg.actions[st.action]
			ev.Type, ev.Name = "track", a.name
			if len(a.keys) > 0 {
				ev.Props = make(map[string]any, len(a.keys))
				for k, key := range a.keys {
					if a.numeric[k] {
						ev.Props[key] = json.Number(st.values[k])
					} else {
						ev.Props[key] = st.values[k]
					}
				}
			}
		}
		if err := conn.WriteJSON(eventsFrame{Type: "events", Seq: int64(i + 1), Events: []wireEvent{ev}}); err != nil {
			return
		}
		d.sent.Add(1)
	}
	sleepUntil(ctx, done, v.start.Add(v.end))
}

// identity is an identity token for user, or "" for none (no user, or no
// signer, or signing failed, which is said once).
func (d *Demo) identity(user string) string {
	if user == "" || d.cfg.Identity == nil {
		return ""
	}
	tok, err := d.cfg.Identity(user)
	if err != nil {
		if !d.signFailed.Swap(true) {
			d.log.Warn("demo visitors cannot sign in: no identity token", "err", err)
		}
		return ""
	}
	return tok
}

// hello sends hello (with an identity token and a resume token when given)
// and reads welcome; it returns the welcome's resume token.
func (d *Demo) hello(conn *fws.Conn, identity, resume string) (string, error) {
	_ = conn.SetWriteDeadline(time.Now().Add(helloWait))
	h := map[string]any{"type": "hello", "v": 1, "sdk": sdkName}
	if identity != "" {
		h["identity"] = identity
	}
	if resume != "" {
		h["resume"] = resume
	}
	if err := conn.WriteJSON(h); err != nil {
		return "", fmt.Errorf("demo: send hello: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	_ = conn.SetReadDeadline(time.Now().Add(helloWait))
	var welcome struct{ Type, Resume string }
	if err := conn.ReadJSON(&welcome); err != nil {
		return "", fmt.Errorf("demo: read welcome: %w", err)
	}
	if welcome.Type != "welcome" {
		return "", fmt.Errorf("demo: the server answered hello with %q", welcome.Type)
	}
	return welcome.Resume, conn.SetReadDeadline(time.Time{})
}

// read reads the server's frames until the connection ends, counting acks
// (one event per frame, so an ack's seq counts events; acked is the visit's
// highest, which only this reader changes while it runs) and rejections.
func (d *Demo) read(conn *fws.Conn, acked *int64) {
	for {
		var f struct {
			Type    string
			Seq     int64
			Field   string
			Message string
		}
		if err := conn.ReadJSON(&f); err != nil {
			var ce *fws.CloseError
			if errors.As(err, &ce) && ce.Code != fws.CloseGoingAway && ce.Code != fws.CloseNormalClosure {
				d.log.Warn("demo visitor's connection closed by the server", "code", ce.Code, "reason", ce.Text)
			}
			return
		}
		switch f.Type {
		case "ack":
			if f.Seq > *acked {
				d.acked.Add(f.Seq - *acked)
				*acked = f.Seq
			}
		case "error":
			if d.rejected.Add(1) == 1 {
				d.log.Warn("ingest rejected a demo event", "field", f.Field, "message", f.Message)
			}
		}
	}
}

// connectFailed counts a visitor that could not connect and says so now and
// then (at shutdown or while the server is busy every visitor fails).
func (d *Demo) connectFailed(err error) {
	d.failures.Add(1)
	now := time.Now().UnixNano()
	last := d.lastFailLog.Load()
	if now-last >= int64(failLogEvery) && d.lastFailLog.CompareAndSwap(last, now) {
		d.log.Warn("demo visitor could not connect; the next ones try again", "err", err, "failures", d.failures.Load())
	}
}

// sleepUntil waits until t; it returns false when ctx or stop ends first.
func sleepUntil(ctx context.Context, stop <-chan struct{}, t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-timer.C:
		return true
	}
}

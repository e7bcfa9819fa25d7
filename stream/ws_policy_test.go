package stream

import (
	"context"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/pulse-analytics/pulse/auth"
)

// TestLiveSubscriberQuota: a tenant over its live subscriber limit is closed
// with 4429 and a retry_after; a slot is free again once a subscriber leaves.
func TestLiveSubscriberQuota(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond, MaxSubscribersPerTenant: 2})
	a := newTenant(t, e.store, "acme")
	b := newTenant(t, e.store, "globex")
	var open []*fws.Conn
	for range 2 {
		ws, _, err := e.dial(t, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, code := e.subscribe(t, ws, a.readKey, a.site.ID); code != 0 {
			t.Fatalf("subscriber within the limit closed with %d", code)
		}
		open = append(open, ws)
	}
	ws, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, code := e.subscribe(t, ws, a.readKey, a.site.ID); code != CloseQuotaExceeded {
		t.Fatalf("third subscriber closed with %d, want %d", code, CloseQuotaExceeded)
	}
	ws, _, _ = e.dial(t, "", "")
	if _, code := e.subscribe(t, ws, b.readKey, b.site.ID); code != 0 {
		t.Fatalf("another tenant refused with %d: limits are per tenant", code)
	}
	_ = open[0].Close()
	deadline := time.Now().Add(30 * time.Second) // generous: a loaded machine; a slot never freed fails all the same
	for {
		ws, _, _ := e.dial(t, "", "")
		_, code := e.subscribe(t, ws, a.readKey, a.site.ID)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after a subscriber left: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevokedKeyIsClosed: revoking the API key of an open socket closes it
// with 4007 at the next access check.
func TestRevokedKeyIsClosed(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond, PingInterval: 200 * time.Millisecond})
	a := newTenant(t, e.store, "acme")
	key, secret, err := e.store.CreateAPIKey(context.Background(), a.org.ID, "temp", []auth.Scope{auth.ScopeRead}, a.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, code := e.subscribe(t, ws, secret, a.site.ID, "online")
	if code != 0 {
		t.Fatalf("closed with %d", code)
	}
	if err := e.store.RevokeAPIKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	// Within a few ping intervals (200 ms), with room for a loaded machine;
	// a socket the check never closes would stay open for the read timeout.
	start := time.Now()
	for {
		if _, code := c.read(2 * time.Second); code != 0 {
			if code != CloseAccessRevoked {
				t.Fatalf("closed with %d, want %d", code, CloseAccessRevoked)
			}
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the socket of a revoked key is still open after 10 s")
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("revoked key closed after %v, want within a few ping intervals", d)
	}
}

// TestSlowSocketDoesNotDelayOthers, over real sockets: a subscriber that
// stops reading keeps at most QueueBytes queued on the server, is closed as
// stalled after StallTimeout, and another subscriber's deltas keep arriving
// within a tick or two all along (measured).
func TestSlowSocketDoesNotDelayOthers(t *testing.T) {
	const (
		tick  = 50 * time.Millisecond
		stall = 2 * time.Second
	)
	e := newLiveEnv(t, Config{Tick: tick, StallTimeout: stall, QueueBytes: 64 << 10})
	a := newTenant(t, e.store, "acme")

	// The slow client: a tiny receive buffer, and it never reads after the snapshot.
	dialer := *fws.DefaultDialer
	nd := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { // before connect, so the window stays small
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
	}}
	dialer.NetDial = nd.Dial
	slowWS, _, err := dialer.Dial("ws://"+e.addr+"/v1/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slowWS.Close()
	if _, code := e.subscribe(t, slowWS, a.readKey, a.site.ID); code != 0 {
		t.Fatalf("slow subscriber closed with %d", code)
	}
	fastWS, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	fast, code := e.subscribe(t, fastWS, a.readKey, a.site.ID, "rates", "pages")
	if code != 0 {
		t.Fatalf("fast subscriber closed with %d", code)
	}
	var slow *subscriber
	e.hub.mu.Lock()
	for s := range e.hub.subs {
		if s.views == AllViews {
			slow = s
		}
	}
	e.hub.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), stall+4*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { // owned: waited on below
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			evs := make([]Event, 50)
			for j := range evs {
				// 40 long paths whose counts keep overtaking each other: every
				// delta carries new top lists and feed items.
				k := (i*7 + j*j) % 40
				evs[j] = page("/p/"+strconv.Itoa(k)+"/"+strings.Repeat("x", 240), uint64(j), uint64(i*50+j))
				evs[j].Source = "s" + strconv.Itoa((i+j)%40) + strings.Repeat("y", 200)
			}
			e.hub.Publish(a.site.ID, evs)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var worst time.Duration
	frames := 0
	for ctx.Err() == nil {
		f, code := fast.read(time.Second)
		if code != 0 {
			t.Fatalf("fast subscriber closed with %d", code)
		}
		frames++
		if f.Changes != nil {
			worst = max(worst, time.Since(time.UnixMilli(f.Changes.Time)))
		}
	}
	<-done
	// The exact pace (a frame a tick, at most a tick late) is checked with a
	// fake clock in TestStalledSubscriber; here, over real
	// sockets on a machine that may be loaded, the fast subscriber gets a
	// steady stream and is never held for the slow one's stall timeout.
	if want := int((stall + 4*time.Second) / tick / 10); frames < want {
		t.Errorf("fast subscriber got %d frames, want at least %d", frames, want)
	}
	if worst > stall/2 {
		t.Errorf("fast subscriber's worst delay behind the tick: %v, want under %v (half the slow one's stall timeout)", worst, stall/2)
	}
	_, peak := slow.queuedBytes()
	if peak > 64<<10 {
		t.Errorf("slow subscriber's queue reached %d bytes, bound %d", peak, 64<<10)
	}
	t.Logf("deltas sent %v, coalesced %v", counter(t, e.hub.m.deltas), counter(t, e.hub.m.coalesced))
	if code, _ := slow.closeReason(); code != CloseStalled {
		t.Errorf("slow subscriber ended with %d, want %d (stalled)", code, CloseStalled)
	}
	t.Logf("fast subscriber: %d frames, worst delay %v; slow subscriber's queue peaked at %d bytes", frames, worst, peak)
}

// TestShutdownClosesSubscribers: Shutdown closes open live sockets with 4000
// and refuses new ones.
func TestShutdownClosesSubscribers(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: 50 * time.Millisecond})
	a := newTenant(t, e.store, "acme")
	ws, _, err := e.dial(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, code := e.subscribe(t, ws, a.readKey, a.site.ID, "online")
	if code != 0 {
		t.Fatalf("closed with %d", code)
	}
	if err := e.hub.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for {
		if _, code := c.read(2 * time.Second); code != 0 {
			if code != CloseGoingAway {
				t.Fatalf("closed with %d, want %d", code, CloseGoingAway)
			}
			break
		}
	}
	if _, resp, err := e.dial(t, "", ""); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("dial after shutdown: %v, want 503", err)
	}
}

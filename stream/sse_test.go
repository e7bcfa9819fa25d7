package stream

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSSEClientThatLeavesFreesItsSlot: an SSE client that goes away frees
// its live subscriber slot well before anything is written to it (no tick
// with a change, the next ping 20 s away): the slot must not wait for a write
// to fail. The bound, 10 s, is half the ping interval, so that a loaded
// machine has room and a slot freed only by the ping still fails.
func TestSSEClientThatLeavesFreesItsSlot(t *testing.T) {
	e := newLiveEnv(t, Config{Tick: time.Hour, MaxSubscribersPerTenant: 1})
	a := newTenant(t, e.store, "acme")
	request := fmt.Sprintf("GET /v1/live/sse?site=%s&views=online HTTP/1.1\r\nHost: pulse.test\r\nAuthorization: Bearer %s\r\n\r\n", a.site.ID, a.readKey)
	tests := []struct {
		name string
		wait bool // read the response head before leaving
	}{
		{name: "leaves at once", wait: false},
		{name: "leaves after the snapshot", wait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte(request)); err != nil {
				t.Fatal(err)
			}
			if tt.wait {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("SSE answer %v %v", resp, err)
				}
			} else {
				// The handler has taken the slot (and maybe written) before the client leaves.
				waitFor(t, 30*time.Second, func() bool { return e.hub.liveSlots(a.org.ID) == 1 })
			}
			_ = c.Close()
			waitFor(t, 10*time.Second, func() bool { return e.hub.liveSlots(a.org.ID) == 0 })
		})
	}
}

// waitFor polls cond every 10 ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Package benchws is the same-run limit of the ingest throughput benchmarks
// (`ingest` and `cmd/pulse`): the rate at which a bare Fiber WebSocket server
// on this machine only reads and decodes the benchmark's frames.
package benchws

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// MaxFrameBytes is the read limit of the bare server, as large as any
// benchmark frame.
const MaxFrameBytes = 64 << 10

// ReadDecodeRate serves frames[c] to connection c of a bare server that reads
// each message and hands it to decode, answering one message per connection
// at the end; the clients send without waiting. It returns events per second:
// events in all the frames, divided by the time from the first send to the
// last answer.
func ReadDecodeRate(tb testing.TB, frames [][][]byte, events int, decode func([]byte) error) float64 {
	tb.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/raw", websocket.New(func(c *websocket.Conn) {
		c.SetReadLimit(MaxFrameBytes)
		for i := range len(frames[0]) {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := decode(data); err != nil {
				tb.Errorf("frame %d: %v", i, err)
				return
			}
		}
		_ = c.WriteMessage(fws.TextMessage, []byte(`{"type":"ack"}`))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.ShutdownWithContext(context.Background()) }()

	conns := make([]*fws.Conn, len(frames))
	for i := range conns {
		c, _, err := fws.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/raw", http.Header{})
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for _, f := range frames[i] {
				if err := c.WriteMessage(fws.TextMessage, f); err != nil {
					tb.Error(err)
					return
				}
			}
			if _, _, err := c.ReadMessage(); err != nil {
				tb.Error(err)
			}
			_ = c.Close()
		})
	}
	wg.Wait()
	return float64(events) / time.Since(start).Seconds()
}

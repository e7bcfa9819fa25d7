package chdb

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// DefaultWriteTimeout bounds one write to a ClickHouse connection. The driver
// bounds a statement by its context only while it waits for the server's
// answer; a write to a server that stopped reading (hung, or behind a
// partition) would otherwise block until the kernel gives up on the
// connection, minutes later. The writer sends an insert's blocks one by one
// (ingest.insertBlockRows), each such a write.
const DefaultWriteTimeout = 30 * time.Second

// dialer returns the driver's DialContext: a TCP (or, with tlsConf, TLS)
// connection whose every write has a deadline of at most writeTimeout.
func dialer(timeout, writeTimeout time.Duration, tlsConf *tls.Config) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if tlsConf != nil {
			conf := tlsConf
			if conf.ServerName == "" { // as tls.Dial does: verify the name dialled
				conf = conf.Clone()
				conf.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tc := tls.Client(c, conf)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return nil, err
			}
			c = tc
		}
		return &boundedConn{Conn: c, timeout: writeTimeout}, nil
	}
}

// boundedConn is a connection whose writes end at the deadline the driver set,
// or timeout after they start, whichever is earlier.
type boundedConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	deadline time.Time // the driver's write deadline; zero: none
}

func (c *boundedConn) Write(p []byte) (int, error) {
	d := time.Now().Add(c.timeout)
	c.mu.Lock()
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	c.mu.Unlock()
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *boundedConn) SetDeadline(t time.Time) error {
	c.setWrite(t)
	return c.Conn.SetDeadline(t)
}

func (c *boundedConn) SetWriteDeadline(t time.Time) error {
	c.setWrite(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *boundedConn) setWrite(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

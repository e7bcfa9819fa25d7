package chdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"
)

// A server that stops reading must not hold a writer forever: once the socket
// buffers are full, the write fails at the bound.
func TestWriteToAServerThatStoppedReadingEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	const bound = 300 * time.Millisecond
	c, err := dialer(time.Second, bound, nil)(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() { (<-accepted).Close() }()

	chunk := make([]byte, 1<<20)
	start := time.Now()
	for {
		if _, err = c.Write(chunk); err != nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("writes to a server that reads nothing still succeed after 30 s")
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write error = %v; want a deadline exceeded", err)
	}
}

// A deadline the driver sets that is earlier than the bound wins, and
// clearing it brings the bound back.
func TestDriverDeadlineIsKept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	c, err := dialer(time.Second, time.Hour, nil)(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the driver's deadline: err = %v; want deadline exceeded", err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("write after the deadline was cleared: %v", err)
	}
}

// With TLS the name dialled is the one verified, as tls.Dial does when the
// configuration names no server.
func TestDialerVerifiesTheHostDialled(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().(*net.TCPAddr)

	// httptest's certificate is for 127.0.0.1 and example.com.
	c, err := dialer(time.Second, time.Second, &tls.Config{RootCAs: pool})(context.Background(), addr.String())
	if err != nil {
		t.Fatalf("dial 127.0.0.1 with its certificate: %v", err)
	}
	c.Close()
	other := net.JoinHostPort("localhost", strconv.Itoa(addr.Port))
	if c, err := dialer(time.Second, time.Second, &tls.Config{RootCAs: pool})(context.Background(), other); err == nil {
		c.Close()
		t.Fatal("dial localhost accepted a certificate that does not name it")
	}
}

package auth

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestParseProxies(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{in: "", want: ""},
		{in: " 10.0.0.0/8 , 192.0.2.7,::1", want: "10.0.0.0/8,192.0.2.7,::1"},
		{in: "10.1.2.3/8", want: "10.0.0.0/8"},
		{in: "::ffff:192.0.2.7", want: "192.0.2.7"},
		{in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{in: "10.0.0.0/33", err: "CIDR"},
		{in: "proxy.internal", err: "neither an IP address nor a CIDR prefix"},
		{in: "fe80::1%eth0", err: "neither"},
	} {
		p, err := ParseProxies(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseProxies(%q) = %v, want an error mentioning %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("ParseProxies(%q) = %q, %v; want %q", tt.in, p.String(), err, tt.want)
		}
	}
}

func TestResolveClientBehindProxies(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("10.0.0.1")
	for _, tt := range []struct {
		name, xff, fwd, xfp string
		tls                 bool
		addr, scheme        string
	}{
		{name: "no header", addr: "10.0.0.1", scheme: "http"},
		{name: "one client", xff: "203.0.113.7", addr: "203.0.113.7", scheme: "http"},
		{name: "a spoofed left-most entry", xff: "198.51.100.1, 203.0.113.7", addr: "203.0.113.7", scheme: "http"},
		{name: "several spoofed entries", xff: "1.1.1.1,2.2.2.2 ,  203.0.113.7", addr: "203.0.113.7", scheme: "http"},
		{name: "a chain of trusted proxies", xff: "198.51.100.1, 203.0.113.7, 10.9.8.7, 10.0.0.2", addr: "203.0.113.7", scheme: "http"},
		{name: "only trusted proxies", xff: "10.0.0.3, 10.0.0.2", addr: "10.0.0.3", scheme: "http"},
		{name: "ports", xff: "203.0.113.7:4711", addr: "203.0.113.7", scheme: "http"},
		{name: "IPv6 with a port", xff: "[2001:db8::1]:4711", addr: "2001:db8::1", scheme: "http"},
		{name: "IPv6 in brackets", xff: "[2001:db8::1]", addr: "2001:db8::1", scheme: "http"},
		{name: "IPv4-mapped IPv6", xff: "::ffff:203.0.113.7", addr: "203.0.113.7", scheme: "http"},
		{name: "a trusted IPv6 proxy in the chain", xff: "2001:db8::9, 2001:db8:ffff::1", addr: "2001:db8::9", scheme: "http"},
		{name: "garbage where the client should be", xff: "203.0.113.7, garbage", addr: "10.0.0.1", scheme: "http"},
		{name: "garbage left of the client", xff: "<script>, 203.0.113.7", addr: "203.0.113.7", scheme: "http"},
		{name: "unknown", xff: "unknown", addr: "10.0.0.1", scheme: "http"},
		{name: "empty entries", xff: " , ", addr: "10.0.0.1", scheme: "http"},
		{name: "a zone", xff: "fe80::1%eth0", addr: "10.0.0.1", scheme: "http"},

		{name: "Forwarded", fwd: "for=192.0.2.60;proto=https;by=203.0.113.43", addr: "192.0.2.60", scheme: "https"},
		{name: "Forwarded, quoted IPv6 with a port", fwd: `for="[2001:db8:cafe::17]:4711"`, addr: "2001:db8:cafe::17", scheme: "http"},
		{name: "Forwarded, quoted IPv4 with a port", fwd: `for="192.0.2.43:47011";proto=http`, addr: "192.0.2.43", scheme: "http"},
		{name: "Forwarded, names in any case", fwd: `For="[2001:db8:cafe::17]";PROTO=HTTPS`, addr: "2001:db8:cafe::17", scheme: "https"},
		{name: "Forwarded, a spoofed left-most element", fwd: `for=198.51.100.1;proto=https, for=192.0.2.43;proto=http`, addr: "192.0.2.43", scheme: "http"},
		{name: "Forwarded, a chain", fwd: `for=192.0.2.43;proto=https, for="[2001:db8:ffff::2]:80";proto=http`, addr: "192.0.2.43", scheme: "https"},
		{name: "Forwarded, a quoted comma", fwd: `for=192.0.2.43;ext="a,b;c", for=10.0.0.5`, addr: "192.0.2.43", scheme: "http"},
		{name: "Forwarded, escapes", fwd: `for="\[2001:db8::5\]"`, addr: "2001:db8::5", scheme: "http"},
		{name: "Forwarded, obfuscated", fwd: `for=_hidden;proto=https`, addr: "10.0.0.1", scheme: "https"},
		{name: "Forwarded, unknown", fwd: `for=unknown`, addr: "10.0.0.1", scheme: "http"},
		{name: "Forwarded, no for", fwd: `proto=https`, addr: "10.0.0.1", scheme: "https"},
		{name: "Forwarded, unterminated quote", fwd: `for="[2001:db8::1]:4711`, addr: "10.0.0.1", scheme: "http"},
		{name: "Forwarded, unbracketed IPv6 with a port", fwd: `for="2001:db8::1:4711"`, addr: "2001:db8::1:4711", scheme: "http"},
		{name: "Forwarded, for twice in an element", fwd: `for=192.0.2.1;for=192.0.2.2`, addr: "10.0.0.1", scheme: "http"},
		{name: "Forwarded, trailing comma", fwd: `for=192.0.2.1,`, addr: "10.0.0.1", scheme: "http"},
		{name: "Forwarded, an unquoted IPv6", fwd: `for=[2001:db8::1]`, addr: "10.0.0.1", scheme: "http"},

		{name: "both headers agree", xff: "203.0.113.7", fwd: "for=203.0.113.7", addr: "203.0.113.7", scheme: "http"},
		{name: "both headers disagree", xff: "203.0.113.7", fwd: "for=198.51.100.1", addr: "10.0.0.1", scheme: "http"},

		{name: "X-Forwarded-Proto", xff: "203.0.113.7", xfp: "https", addr: "203.0.113.7", scheme: "https"},
		{name: "X-Forwarded-Proto down to http over TLS", xff: "203.0.113.7", xfp: "http", tls: true, addr: "203.0.113.7", scheme: "http"},
		{name: "X-Forwarded-Proto alone", xfp: "HTTPS", addr: "10.0.0.1", scheme: "https"},
		{name: "X-Forwarded-Proto not a scheme", xfp: "javascript", addr: "10.0.0.1", scheme: "http"},
		{name: "X-Forwarded-Proto by position", xff: "198.51.100.1, 203.0.113.7, 10.0.0.2", xfp: "http, https, http", addr: "203.0.113.7", scheme: "https"},
		{name: "X-Forwarded-Proto of other length", xff: "198.51.100.1, 203.0.113.7", xfp: "https", addr: "203.0.113.7", scheme: "https"},
		{name: "over TLS", tls: true, addr: "10.0.0.1", scheme: "https"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			scheme := "http"
			if tt.tls {
				scheme = "https"
			}
			addr, gotScheme := proxies.Resolve(peer, scheme, tt.xff, tt.fwd, tt.xfp)
			if addr.String() != tt.addr || gotScheme != tt.scheme {
				t.Fatalf("Resolve(xff %q, forwarded %q, proto %q) = %s %s, want %s %s", tt.xff, tt.fwd, tt.xfp, addr, gotScheme, tt.addr, tt.scheme)
			}
		})
	}
}

// proxyApp answers the client address and scheme a request is taken to come
// from, behind the middleware.
func proxyApp(t *testing.T, trusted string) *fiber.App {
	t.Helper()
	p, err := ParseProxies(trusted)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{EnableTrustedProxyCheck: true})
	app.Use(p.Middleware())
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString(ClientAddr(c).String() + " " + ClientScheme(c)) })
	return app
}

func TestProxiesMiddlewareBelievesOnlyTrustedPeers(t *testing.T) {
	headers := map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Forwarded-Proto": "https", "Forwarded": ""}
	for _, tt := range []struct{ name, trusted, want string }{
		// app.Test's requests come from 0.0.0.0.
		{"no trusted proxies", "", "0.0.0.0 http"},
		{"another proxy", "10.0.0.0/8", "0.0.0.0 http"},
		{"a trusted peer", "0.0.0.0", "203.0.113.7 https"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://pulse.test/", nil)
			for k, v := range headers {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := proxyApp(t, tt.trusted).Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tt.want {
				t.Fatalf("client = %q, want %q", body, tt.want)
			}
		})
	}
}

// A proxy may add its own X-Forwarded-For line instead of appending to the
// client's: the lines form one list, and the client's own line is left of the proxy's.
func TestProxiesMiddlewareReadsEveryHeaderLine(t *testing.T) {
	req := httptest.NewRequest("GET", "http://pulse.test/", nil)
	req.Header.Add("X-Forwarded-For", "198.51.100.1")
	req.Header.Add("X-Forwarded-For", "203.0.113.7")
	resp, err := proxyApp(t, "0.0.0.0").Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); string(body) != "203.0.113.7 http" {
		t.Fatalf("client = %q, want the proxy's line, 203.0.113.7", body)
	}
}

// FuzzResolve feeds outside headers to Resolve: it never panics, the scheme
// is http or https, the address is valid, and without an address header it
// is the peer.
func FuzzResolve(f *testing.F) {
	f.Add("198.51.100.1, 203.0.113.7", "", "https")
	f.Add("", `for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2`, "")
	f.Add("[2001:db8::1]:80", `for=unknown;by="\"`, "http,https")
	f.Add("10.0.0.3,10.0.0.2", `for=10.0.0.9`, "")
	proxies, err := ParseProxies("10.0.0.0/8")
	if err != nil {
		f.Fatal(err)
	}
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, xff, fwd, xfp string) {
		addr, scheme := proxies.Resolve(peer, "http", xff, fwd, xfp)
		if scheme != "http" && scheme != "https" {
			t.Fatalf("scheme %q", scheme)
		}
		if !addr.IsValid() || addr.Zone() != "" || addr.Is4In6() {
			t.Fatalf("address %v from %q %q", addr, xff, fwd)
		}
		if xff == "" && fwd == "" && addr != peer {
			t.Fatalf("address %s without an address header", addr)
		}
	})
}

package auth

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Proxies are the reverse proxies whose forwarding headers are believed: a
// request whose immediate peer is one of them is taken to come from the
// address (and over the scheme) the headers name. Every other request comes
// from its peer, over its own connection's scheme, whatever its headers say.
//
// Fiber's own TrustedProxies/ProxyHeader setting is not used: Ctx.IP takes
// the left-most X-Forwarded-For entry, which the client writes itself, and
// it does not read Forwarded (RFC 7239).
type Proxies struct {
	nets []netip.Prefix
}

// ParseProxies reads a comma-separated list of IP addresses and CIDR
// prefixes ("10.0.0.0/8, 192.0.2.7, ::1"); empty means no proxy.
func ParseProxies(s string) (Proxies, error) {
	var p Proxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			pfx, err := netip.ParsePrefix(f)
			if err != nil {
				return Proxies{}, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8", f)
			}
			if pfx.Addr().Is4In6() {
				if pfx.Bits() < 96 {
					return Proxies{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", f)
				}
				pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
			}
			p.nets = append(p.nets, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return Proxies{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix (10.0.0.0/8)", f)
		}
		a = a.Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// String lists the proxies as ParseProxies reads them.
func (p Proxies) String() string {
	s := make([]string, len(p.nets))
	for i, n := range p.nets {
		if n.IsSingleIP() {
			s[i] = n.Addr().String()
		} else {
			s[i] = n.String()
		}
	}
	return strings.Join(s, ",")
}

// trusts reports whether a is one of the proxies.
func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// client is where a request came from, as Proxies.Middleware resolved it.
type client struct {
	addr   netip.Addr
	scheme string
}

// Middleware resolves the client address and scheme of every request (read
// them with ClientAddr and ClientScheme). Mount it first, on the whole app.
func (p Proxies) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		peer := peerAddr(c)
		if len(p.nets) == 0 || !p.trusts(peer) {
			return c.Next() // the accessors fall back to the connection's own
		}
		h := &c.Request().Header
		addr, scheme := p.Resolve(peer, transportScheme(c), header(h, fiber.HeaderXForwardedFor),
			header(h, "Forwarded"), header(h, fiber.HeaderXForwardedProto))
		c.Locals(clientKey, &client{addr: addr, scheme: scheme})
		return c.Next()
	}
}

// ClientAddr is the address of the client that sent the request: its peer,
// or what a trusted proxy's header says (Proxies.Middleware). It is the one
// accessor for it; never use Fiber's Ctx.IP.
func ClientAddr(c *fiber.Ctx) netip.Addr {
	if cl, ok := c.Locals(clientKey).(*client); ok {
		return cl.addr
	}
	return peerAddr(c)
}

// ClientScheme is "https" or "http": the scheme the client used, as the
// connection or a trusted proxy's header says. Never use Fiber's Ctx.Protocol,
// which believes X-Forwarded-Proto from anyone.
func ClientScheme(c *fiber.Ctx) string {
	if cl, ok := c.Locals(clientKey).(*client); ok {
		return cl.scheme
	}
	return transportScheme(c)
}

func peerAddr(c *fiber.Ctx) netip.Addr {
	a, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return a.Unmap()
}

func transportScheme(c *fiber.Ctx) string {
	if c.Context().IsTLS() {
		return "https"
	}
	return "http"
}

// header joins every line of a request header into one comma-separated list,
// as RFC 9110 reads repeated fields: a proxy may add a line of its own
// rather than append to the client's.
func header(h *fasthttp.RequestHeader, name string) string {
	lines := h.PeekAll(name)
	switch len(lines) {
	case 0:
		return ""
	case 1:
		return string(lines[0])
	}
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = string(l)
	}
	return strings.Join(s, ",")
}

// Resolve returns the client's address and scheme for a request from peer, a
// trusted proxy, over scheme, with the given X-Forwarded-For, Forwarded and
// X-Forwarded-Proto values ("" when absent).
//
// The address is the right-most entry of the chain that is not itself a
// trusted proxy: entries further left were written by that untrusted hop, or
// by the client, and are not believed. A chain of trusted proxies only gives
// its left-most entry. A header that cannot be read (an entry that is not an
// address, "unknown", an obfuscated identifier) gives the peer. When both
// X-Forwarded-For and Forwarded are present they must name the same client;
// otherwise the peer is the client: a proxy writes one of them, and the
// other came from the client.
//
// The scheme is the proto of the Forwarded element that named the client,
// or else X-Forwarded-Proto's entry at the client's position in
// X-Forwarded-For (its right-most entry when the lists differ in length);
// only "http" and "https" count, anything else leaves the connection's scheme.
func (p Proxies) Resolve(peer netip.Addr, scheme, xff, forwarded, xfp string) (netip.Addr, string) {
	addr := peer
	var proto string
	switch {
	case forwarded != "" && xff != "":
		a, _, ok1 := p.fromForwarded(forwarded)
		b, i, ok2 := p.fromXFF(xff)
		if ok1 && ok2 && a == b {
			addr, proto = b, pickProto(xfp, i, len(splitList(xff)))
		} else {
			proto = pickProto(xfp, -1, 0)
		}
	case forwarded != "":
		var ok bool
		var a netip.Addr
		if a, proto, ok = p.fromForwarded(forwarded); ok {
			addr = a
		}
	case xff != "":
		if a, i, ok := p.fromXFF(xff); ok {
			addr, proto = a, pickProto(xfp, i, len(splitList(xff)))
		} else {
			proto = pickProto(xfp, -1, 0)
		}
	default:
		proto = pickProto(xfp, -1, 0)
	}
	switch strings.ToLower(strings.TrimSpace(proto)) {
	case "https":
		scheme = "https"
	case "http":
		scheme = "http"
	}
	return addr, scheme
}

// fromXFF walks an X-Forwarded-For list from the right and returns the
// client's address and its index; ok is false when an entry it must read is
// not an address.
func (p Proxies) fromXFF(xff string) (addr netip.Addr, index int, ok bool) {
	entries := splitList(xff)
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseNode(entries[i])
		if !ok {
			return netip.Addr{}, 0, false
		}
		if i == 0 || !p.trusts(a) {
			return a, i, true
		}
	}
	return netip.Addr{}, 0, false
}

// fromForwarded walks a Forwarded header's elements from the right and
// returns the client's address (its element's for=) and that element's
// proto. When it cannot place the client (an element without for=, or with
// a for= that is not an address) ok is false and the proto is the right-most
// element's, which the trusted peer wrote.
func (p Proxies) fromForwarded(fwd string) (netip.Addr, string, bool) {
	elems, ok := parseForwarded(fwd)
	if !ok {
		return netip.Addr{}, "", false
	}
	for i := len(elems) - 1; i >= 0; i-- {
		a, ok := parseNode(elems[i].forNode)
		if !ok {
			return netip.Addr{}, elems[len(elems)-1].proto, false
		}
		if i == 0 || !p.trusts(a) {
			return a, elems[i].proto, true
		}
	}
	return netip.Addr{}, "", false
}

// pickProto returns X-Forwarded-Proto's entry at index when it has n entries,
// or else its right-most entry (what the proxy next to us wrote).
func pickProto(xfp string, index, n int) string {
	protos := splitList(xfp)
	if len(protos) == 0 {
		return ""
	}
	if index >= 0 && len(protos) == n {
		return protos[index]
	}
	return protos[len(protos)-1]
}

// splitList splits a comma-separated header value, trimming spaces; an empty
// value has no entries.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// parseNode reads one node of a forwarding header: an IPv4 or IPv6 address,
// optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443") or in
// brackets ("[2001:db8::1]").
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// forwardedElement is what Resolve reads of one element of a Forwarded header.
type forwardedElement struct {
	forNode, proto string
}

// parseForwarded reads a Forwarded header (RFC 7239, section 4): elements
// separated by commas, each pairs token=value separated by semicolons, a
// value a token or a quoted string. It fails on anything else, and on a
// parameter given twice in one element.
func parseForwarded(s string) ([]forwardedElement, bool) {
	var (
		elems []forwardedElement
		cur   forwardedElement
		seen  map[string]bool // the parameters of cur
	)
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		name := strings.ToLower(s[start:i])
		if name == "" || i >= len(s) || s[i] != '=' {
			return nil, false
		}
		i++
		var value string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, false // unterminated quoted string
				}
				c := s[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' && i+1 < len(s) {
					i++
					c = s[i]
				}
				b.WriteByte(c)
				i++
			}
			value = b.String()
		} else {
			start := i
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			value = s[start:i]
		}
		if seen[name] {
			return nil, false
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[name] = true
		switch name {
		case "for":
			cur.forNode = value
		case "proto":
			cur.proto = value
		}
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) || s[i] == ',' {
			elems = append(elems, cur)
			cur, seen = forwardedElement{}, nil
			if i >= len(s) {
				return elems, true
			}
			i++
			continue
		}
		if s[i] != ';' {
			return nil, false
		}
		i++
	}
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

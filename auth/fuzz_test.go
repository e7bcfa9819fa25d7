package auth

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseToken feeds outside input to the JWT verifier: it must never
// panic, and only the tokens this service signed may verify.
func FuzzParseToken(f *testing.F) {
	ks, err := LoadKeySet(filepath.Join(f.TempDir(), "keys.json"))
	if err != nil {
		f.Fatal(err)
	}
	tok := &tokens{keys: ks, issuer: DefaultIssuer, leeway: DefaultLeeway}
	good, err := tok.sign(SessionClaims{tok.registered(AudienceSession, "0b8c4a52-8f8e-4b7e-9d55-2b0f7b1f2c11", time.Now(), time.Hour)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(strings.Repeat(".", 2000))
	f.Fuzz(func(t *testing.T, raw string) {
		var c SessionClaims
		err := tok.parse(raw, AudienceSession, &c)
		if err != nil {
			return
		}
		if raw != good && !strings.HasPrefix(good, raw[:strings.LastIndexByte(raw, '.')]) {
			t.Fatalf("a token this test did not sign verified: %q", raw)
		}
		if c.Issuer != DefaultIssuer || c.ExpiresAt == nil || len(c.Audience) == 0 {
			t.Fatalf("verified claims miss iss, exp or aud: %+v", c)
		}
	})
}

// FuzzParseOrigin: an accepted origin is already normalized, has no
// wildcard, path or credentials, and parses to itself.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://example.com", "http://localhost:8080", "HTTPS://A.b:443/", "null", "https://*.x.y", "http://[::1]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := ParseOrigin(in)
		if err != nil {
			return
		}
		again, err := ParseOrigin(out)
		if err != nil || again != out {
			t.Fatalf("ParseOrigin(%q) = %q, but that parses to %q, %v", in, out, again, err)
		}
		rest := out[strings.Index(out, "://")+3:]
		if strings.ContainsAny(rest, "/*@?#") || rest == "" {
			t.Fatalf("ParseOrigin(%q) = %q has a path, wildcard or credentials", in, out)
		}
	})
}

// FuzzBearerToken: the extracted credential is a trimmed, non-empty suffix
// of the header.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  sk_x ", "Basic eDp5", "Bearer ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if !ok {
			return
		}
		if tok == "" || strings.TrimSpace(tok) != tok || !strings.Contains(h, tok) || !strings.EqualFold(h[:7], "bearer ") {
			t.Fatalf("bearerToken(%q) = %q", h, tok)
		}
	})
}

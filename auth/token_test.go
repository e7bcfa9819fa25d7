package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pulse-analytics/pulse/internal/chdb/chtest"
)

// craft signs claims with method and key, with header kid when not empty.
func craft(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("craft token: %v", err)
	}
	return s
}

func TestTokensRefused(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	s := openStore(t, db, cfg)
	f := newFixture(t, s, "acme")
	cur := s.keys.current()
	pub := cur.private.Public().(ed25519.PublicKey)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()

	valid := func() jwt.RegisteredClaims {
		return s.tok.registered(AudienceSession, f.owner.ID.String(), now, time.Hour)
	}
	with := func(change func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := valid()
		change(&c)
		return c
	}
	_, shareToken, err := s.CreateShareLink(context.Background(), f.site.ID, "", time.Hour, f.owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	resume, err := s.IssueResumeToken(f.site.ID, "sess-1")
	if err != nil {
		t.Fatal(err)
	}
	good := craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, valid())
	if _, err := s.VerifySession(good); err != nil {
		t.Fatalf("the well-formed control token is refused: %v", err)
	}
	parts := strings.Split(good, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	payload = bytes.Replace(payload, []byte(f.owner.ID.String()), []byte(f.admin.ID.String()), 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

	otherIssuer := testConfig(t)
	otherIssuer.KeyFile = cfg.KeyFile
	otherIssuer.DataDir = cfg.DataDir
	otherIssuer.Issuer = "https://evil.example"
	evil := openStore(t, db, otherIssuer)
	evilSession, err := evil.IssueSession(f.owner)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		token string
		why   string // part of the error: the refusal has the intended cause
	}{
		{"alg none", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, cur.kid, valid()), "signing method none is invalid"},
		{"alg none without signature", parts[0] + "." + parts[1] + ".", "signature is invalid"},
		{"HS256 keyed with the public key", craft(t, jwt.SigningMethodHS256, []byte(pub), cur.kid, valid()), "signing method HS256 is invalid"},
		{"HS256 keyed with the kid", craft(t, jwt.SigningMethodHS256, []byte(cur.kid), cur.kid, valid()), "signing method HS256 is invalid"},
		{"signed by another Ed25519 key", craft(t, jwt.SigningMethodEdDSA, otherKey, cur.kid, valid()), "signature is invalid"},
		{"unknown kid", craft(t, jwt.SigningMethodEdDSA, otherKey, "not-a-kid", valid()), "unknown kid"},
		{"no kid", craft(t, jwt.SigningMethodEdDSA, cur.private, "", valid()), "no kid"},
		{"expired", craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, with(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-2 * time.Hour))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
		})), "token is expired"},
		{"no exp", craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), "exp claim is required"},
		{"issued in the future", craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, with(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour))
		})), "used before issued"},
		{"no audience", craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, with(func(c *jwt.RegisteredClaims) { c.Audience = nil })), "aud claim is required"},
		{"share link token used as a session", shareToken, "invalid audience"},
		{"resume token used as a session", resume, "invalid audience"},
		{"another issuer", evilSession.Token, "invalid issuer"},
		{"no issuer", craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, with(func(c *jwt.RegisteredClaims) { c.Issuer = "" })), "iss claim is required"},
		{"subject not a user id", craft(t, jwt.SigningMethodEdDSA, cur.private, cur.kid, with(func(c *jwt.RegisteredClaims) { c.Subject = "admin" })), "subject is not an id"},
		{"payload changed to another user", tampered, "verification error"},
		{"longer than MaxTokenLength", good + strings.Repeat(".", MaxTokenLength), "longer than"},
		{"empty", "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := s.VerifySession(tt.token)
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("VerifySession = %v, %v; want ErrUnauthorized mentioning %q", u.ID, err, tt.why)
			}
		})
	}

	t.Run("session used as a share link", func(t *testing.T) {
		if _, err := s.VerifyShareLink(good); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("VerifyShareLink(session) = %v", err)
		}
	})
	t.Run("resume token of another site", func(t *testing.T) {
		if _, err := s.VerifyResumeToken(resume, f.org.ID); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("VerifyResumeToken(other site) = %v", err)
		}
		if sess, err := s.VerifyResumeToken(resume, f.site.ID); err != nil || sess != "sess-1" {
			t.Fatalf("VerifyResumeToken(own site) = %q, %v", sess, err)
		}
	})
	t.Run("session ended by a password change", func(t *testing.T) {
		sess, err := s.IssueSession(f.admin)
		if err != nil {
			t.Fatal(err)
		}
		// tokens_valid_after has one-second resolution: move past the issue second.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		if err := s.ChangePassword(context.Background(), f.admin.ID, testPassword, "a new long password", testIP); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifySession(sess.Token); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("session from before the password change: %v", err)
		}
	})
	t.Run("revoked share link", func(t *testing.T) {
		l, tok, err := s.CreateShareLink(context.Background(), f.site.ID, "", time.Hour, f.owner.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.VerifyShareLink(tok); err != nil || got.ID != l.ID || got.SiteID != f.site.ID {
			t.Fatalf("fresh share link: %+v, %v", got, err)
		}
		if err := s.RevokeShareLink(context.Background(), l.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyShareLink(tok); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("revoked share link: %v", err)
		}
		// Another node refuses it after loading the revocation from ClickHouse.
		if _, err := openStore(t, db, cfg).VerifyShareLink(tok); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("revoked share link on another node: %v", err)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	db := chtest.Open(t)
	cfg := testConfig(t)
	cfg.KeyReloadInterval = 50 * time.Millisecond
	a := openStore(t, db, cfg)
	b := openStore(t, db, cfg) // a second node with the same key file
	f := newFixture(t, a, "acme")
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, err := a.IssueSession(f.owner)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := a.keys.current()
	shortLived := craft(t, jwt.SigningMethodEdDSA, oldKey.private, oldKey.kid,
		a.tok.registered(AudienceSession, f.owner.ID.String(), time.Now().Add(-time.Hour), time.Hour-DefaultLeeway-2*time.Second))

	newKID, err := a.RotateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKey.kid {
		t.Fatal("rotation kept the kid")
	}
	after, err := a.IssueSession(f.owner)
	if err != nil {
		t.Fatal(err)
	}
	if kid := headerKID(t, after.Token); kid != newKID {
		t.Fatalf("new token kid %q, want %q", kid, newKID)
	}
	if kid := headerKID(t, before.Token); kid != oldKey.kid {
		t.Fatalf("old token kid %q, want %q", kid, oldKey.kid)
	}
	if _, err := a.VerifySession(before.Token); err != nil {
		t.Fatalf("a token signed before rotation no longer verifies: %v", err)
	}
	if _, err := a.VerifySession(shortLived); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("an expired token of the old key verifies: %v", err)
	}
	// The other node refuses the new kid until it reloads the file, then
	// accepts both.
	if _, err := b.VerifySession(after.Token); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "unknown kid") {
		t.Fatalf("node b before reload: %v, want unknown kid", err)
	}
	// Node b's Run loop re-reads the key file.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitFor(t, propagation, "node b reloads the rotated key file", func() bool {
		_, err := b.VerifySession(after.Token)
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{before.Token, after.Token} {
		if _, err := b.VerifySession(tok); err != nil {
			t.Fatalf("node b after reload: %v", err)
		}
	}
	keys := a.SigningKeys().Keys()
	if len(keys) != 2 || keys[0].Current || !keys[1].Current || keys[0].RetiredAt.IsZero() {
		t.Fatalf("key list after rotation: %+v", keys)
	}
}

func TestKeyRotationPrunesLongRetiredKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "jwt-keys.json")
	ks, err := LoadKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	first := ks.current().kid
	t0 := time.Now()
	if _, err := ks.Rotate(t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.publicKey(first); !ok {
		t.Fatal("a just-retired key was pruned")
	}
	if _, err := ks.Rotate(t0.Add(2*time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.publicKey(first); ok {
		t.Fatal("a key retired longer ago than keep still verifies")
	}
	if n := len(ks.Keys()); n != 2 {
		t.Fatalf("%d keys after pruning, want 2", n)
	}
}

func TestKeyFileCreatedPrivateAndShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "jwt-keys.json")
	a, err := LoadKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	if dir, _ := os.Stat(filepath.Dir(path)); dir.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v, want 0700", dir.Mode().Perm())
	}
	b, err := LoadKeySet(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.current().kid != b.current().kid {
		t.Fatal("second load generated another key instead of reading the file")
	}
	kid, err := RotateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := b.Reload(); err != nil || !changed || b.current().kid != kid || len(b.Keys()) != 2 {
		t.Fatalf("after RotateKeyFile: reload %v %v, current %q, want %q and 2 keys", changed, err, b.current().kid, kid)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeySet(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file accepted: %v", err)
	}
}

func TestIdentityTokens(t *testing.T) {
	site := Site{PublicKey: "pk_site", IdentitySecret: "s3cret-s3cret-s3cret-s3cret-s3cr"}
	other := Site{PublicKey: "pk_other", IdentitySecret: "another-secret-another-secret-12"}
	good, err := SignIdentityToken(site, "customer-42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ParseIdentityToken(good, site, DefaultLeeway); err != nil || c.Subject != "customer-42" {
		t.Fatalf("valid identity token: %+v, %v", c, err)
	}
	now := time.Now()
	claims := func(change func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := jwt.RegisteredClaims{Issuer: site.PublicKey, Subject: "customer-42", Audience: jwt.ClaimStrings{AudienceIdentify},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
		change(&c)
		return c
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	secret := []byte(site.IdentitySecret)
	tests := []struct {
		name  string
		token string
	}{
		{"another site's secret", craft(t, jwt.SigningMethodHS256, []byte(other.IdentitySecret), "", claims(func(*jwt.RegisteredClaims) {}))},
		{"EdDSA instead of HS256", craft(t, jwt.SigningMethodEdDSA, edKey, "", claims(func(*jwt.RegisteredClaims) {}))},
		{"HS512", craft(t, jwt.SigningMethodHS512, secret, "", claims(func(*jwt.RegisteredClaims) {}))},
		{"alg none", craft(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims(func(*jwt.RegisteredClaims) {}))},
		{"issued by another site", craft(t, jwt.SigningMethodHS256, secret, "", claims(func(c *jwt.RegisteredClaims) { c.Issuer = other.PublicKey }))},
		{"session audience", craft(t, jwt.SigningMethodHS256, secret, "", claims(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{AudienceSession} }))},
		{"no exp", craft(t, jwt.SigningMethodHS256, secret, "", claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil }))},
		{"expired", craft(t, jwt.SigningMethodHS256, secret, "", claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) }))},
		{"lives longer than a day", craft(t, jwt.SigningMethodHS256, secret, "", claims(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(48 * time.Hour))
		}))},
		{"no subject", craft(t, jwt.SigningMethodHS256, secret, "", claims(func(c *jwt.RegisteredClaims) { c.Subject = "" }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseIdentityToken(tt.token, site, DefaultLeeway); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("ParseIdentityToken = %v, want ErrUnauthorized", err)
			}
		})
	}
	if _, err := ParseIdentityToken(good, Site{PublicKey: "pk_site"}, DefaultLeeway); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("site without a secret accepted a token: %v", err)
	}
}

func headerKID(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

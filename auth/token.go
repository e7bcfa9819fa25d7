package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Token audiences: each token kind has its own, so a token of one kind is
// refused where another is expected.
const (
	// AudienceSession marks dashboard session tokens (Config.SessionLifetime).
	AudienceSession = "pulse:session"
	// AudienceResume marks ingest resume tokens (Config.ResumeLifetime).
	AudienceResume = "pulse:ingest-resume"
	// AudienceShare marks read-only share link tokens (chosen per link, at
	// most MaxShareLinkLifetime).
	AudienceShare = "pulse:share"
	// AudienceIdentify marks identity tokens a site's backend signs with HS256
	// and the site's identity secret (at most MaxIdentityLifetime).
	AudienceIdentify = "pulse:identify"
)

// algEdDSA is the only algorithm Pulse's own tokens are signed with.
const algEdDSA = "EdDSA"

// algHS256 is the only algorithm of identity tokens.
const algHS256 = "HS256"

// SessionClaims are the claims of a dashboard session token. Subject is the user id.
type SessionClaims struct {
	jwt.RegisteredClaims
}

// ResumeClaims are the claims of an ingest resume token. Subject is the site id.
type ResumeClaims struct {
	// Session is the ingest session the token resumes.
	Session string `json:"sid"`
	jwt.RegisteredClaims
}

// ShareClaims are the claims of a share link token. Subject is the site id,
// ID the share link's id.
type ShareClaims struct {
	jwt.RegisteredClaims
}

// IdentityClaims are the claims of a customer identity token. Subject is the
// customer's user id; Issuer must be the site's public key.
type IdentityClaims struct {
	jwt.RegisteredClaims
}

// tokens signs and verifies Pulse's own JWTs.
type tokens struct {
	keys   *KeySet
	issuer string
	leeway time.Duration
}

// sign signs claims with the current key and names it in the kid header.
func (t *tokens) sign(claims jwt.Claims) (string, error) {
	k := t.keys.current()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.private)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}

// registered fills the claims every token of this service carries.
func (t *tokens) registered(aud, sub string, now time.Time, lifetime time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    t.issuer,
		Subject:   sub,
		Audience:  jwt.ClaimStrings{aud},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		ID:        randomID(),
	}
}

// parse verifies raw as a token of audience aud signed by one of the key
// set's keys and decodes it into claims.
func (t *tokens) parse(raw, aud string, claims jwt.Claims) error {
	if len(raw) > MaxTokenLength {
		return fmt.Errorf("%w: token longer than %d bytes", ErrUnauthorized, MaxTokenLength)
	}
	_, err := jwt.ParseWithClaims(raw, claims, t.keyFunc,
		jwt.WithValidMethods([]string{algEdDSA}),
		jwt.WithIssuer(t.issuer),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(t.leeway),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return nil
}

// keyFunc finds the verifying key named by the token's kid.
func (t *tokens) keyFunc(tok *jwt.Token) (any, error) {
	kid, ok := tok.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("token has no kid")
	}
	pub, ok := t.keys.publicKey(kid)
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", truncate(kid, 32))
	}
	return pub, nil
}

// ParseIdentityToken verifies a customer identity token: HS256 signed with
// the site's identity secret, issued by the site's public key, audience
// AudienceIdentify, with exp no further than MaxIdentityLifetime ahead.
func ParseIdentityToken(raw string, site Site, leeway time.Duration) (IdentityClaims, error) {
	var claims IdentityClaims
	if len(raw) > MaxTokenLength {
		return claims, fmt.Errorf("%w: identity token longer than %d bytes", ErrUnauthorized, MaxTokenLength)
	}
	if site.IdentitySecret == "" {
		return claims, fmt.Errorf("%w: site has no identity secret", ErrUnauthorized)
	}
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) {
		return []byte(site.IdentitySecret), nil
	},
		jwt.WithValidMethods([]string{algHS256}),
		jwt.WithIssuer(site.PublicKey),
		jwt.WithAudience(AudienceIdentify),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	)
	if err != nil {
		return claims, fmt.Errorf("%w: identity token: %w", ErrUnauthorized, err)
	}
	if claims.Subject == "" {
		return claims, fmt.Errorf("%w: identity token has no sub", ErrUnauthorized)
	}
	if claims.ExpiresAt.Sub(time.Now()) > MaxIdentityLifetime+leeway {
		return claims, fmt.Errorf("%w: identity token lives longer than %s", ErrUnauthorized, MaxIdentityLifetime)
	}
	return claims, nil
}

// SignIdentityToken signs an identity token for userID the way a site's
// backend should (used by tests, docs examples and `pulse dev`).
func SignIdentityToken(site Site, userID string, lifetime time.Duration) (string, error) {
	now := time.Now()
	claims := IdentityClaims{jwt.RegisteredClaims{
		Issuer: site.PublicKey, Subject: userID, Audience: jwt.ClaimStrings{AudienceIdentify},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(site.IdentitySecret))
	if err != nil {
		return "", fmt.Errorf("auth: sign identity token: %w", err)
	}
	return s, nil
}

// subjectID parses a token's subject as a UUID.
func subjectID(c jwt.RegisteredClaims) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Subject)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: token subject is not an id", ErrUnauthorized)
	}
	return id, nil
}

// randomID returns 16 random bytes, base64url.
func randomID() string { return randomString(16) }

// randomString returns n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// bearerKind tells API keys from JWTs by their prefix.
func isAPIKeySecret(s string) bool { return strings.HasPrefix(s, apiKeyPrefix) }

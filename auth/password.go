package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// Stored hashes carry their own parameters (PHC string format), so raising
// the cost only affects passwords set afterwards.
type PasswordParams struct {
	// Time is the number of passes over memory. Default 3.
	Time uint32
	// MemoryKiB is the memory used per hash in KiB. Default 64 MiB.
	MemoryKiB uint32
	// Threads is the parallelism. Default 4.
	Threads uint8
}

func (p *PasswordParams) withDefaults() {
	if p.Time == 0 {
		p.Time = DefaultPasswordTime
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = DefaultPasswordMemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = DefaultPasswordThreads
	}
}

// hasher computes argon2id hashes, at most maxConcurrentHashes at a time so
// that a burst of logins cannot exhaust memory.
type hasher struct {
	params PasswordParams
	sem    chan struct{}
}

func newHasher(p PasswordParams) *hasher {
	return &hasher{params: p, sem: make(chan struct{}, maxConcurrentHashes)}
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: wait to hash password: %w", ctx.Err())
	}
}

func (h *hasher) release() { <-h.sem }

// Hash returns the PHC-format argon2id hash of password.
func (h *hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	p := h.params
	sum := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, hashLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// Verify reports whether password matches the PHC-format hash encoded.
func (h *hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordLength {
		return false, nil
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parseHash decodes $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func parseHash(encoded string) (PasswordParams, []byte, []byte, error) {
	var p PasswordParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("auth: password hash is not argon2id")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("auth: password hash has argon2 version %q, want %d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("auth: password hash parameters %q: %w", parts[3], err)
	}
	if p.Time == 0 || p.Threads == 0 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxStoredMemoryKiB {
		return p, nil, nil, fmt.Errorf("auth: password hash parameters %q out of range", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	sum, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(sum) < 16 {
		return p, nil, nil, fmt.Errorf("auth: password hash salt or sum malformed")
	}
	return p, salt, sum, nil
}

// checkPassword enforces the length rules on a new password.
func checkPassword(password string) error {
	if n := len([]rune(password)); n < MinPasswordLength {
		return invalid("password must have at least %d characters", MinPasswordLength)
	}
	if len(password) > MaxPasswordLength {
		return invalid("password must have at most %d bytes", MaxPasswordLength)
	}
	return nil
}

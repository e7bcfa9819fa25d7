package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h := newHasher(PasswordParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	ctx := context.Background()
	enc, err := h.Hash(ctx, "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with the configured parameters", enc)
	}
	again, _ := h.Hash(ctx, "a long enough password")
	if again == enc {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	// Verification uses the parameters stored in the hash, not the hasher's.
	other := newHasher(PasswordParams{Time: 2, MemoryKiB: 2048, Threads: 2})
	for _, tt := range []struct {
		password string
		want     bool
	}{
		{"a long enough password", true},
		{"a long enough passworD", false},
		{"", false},
		{strings.Repeat("x", MaxPasswordLength+1), false},
	} {
		if ok, err := other.Verify(ctx, tt.password, enc); err != nil || ok != tt.want {
			t.Fatalf("Verify(%.20q) = %v, %v; want %v", tt.password, ok, err, tt.want)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := h.Verify(ctx, "x", bad); err == nil {
			t.Fatalf("malformed hash %q accepted", bad)
		}
	}
	if _, err := h.Hash(ctx, "short"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
}

func TestDefaultPasswordParams(t *testing.T) {
	var c Config
	c.withDefaults()
	if c.Password != (PasswordParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}) {
		t.Fatalf("default argon2id parameters = %+v, want RFC 9106's t=3 m=64MiB p=4", c.Password)
	}
}

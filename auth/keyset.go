package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// KeySet holds the Ed25519 keys that sign and verify Pulse's JWTs. The newest
// key signs; every key in the set verifies, so rotating adds a key without
// logging anyone out. Keys retired longer ago than the longest token lifetime
// are pruned on the next rotation.
type KeySet struct {
	path string

	mu      sync.RWMutex
	keys    []signingKey // oldest first; the last one signs
	byKID   map[string]ed25519.PublicKey
	modTime time.Time
	size    int64
}

type signingKey struct {
	kid       string
	private   ed25519.PrivateKey
	createdAt time.Time
	retiredAt time.Time
}

// KeyInfo describes one key of the set, without its private part.
type KeyInfo struct {
	KID       string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is when a newer key replaced this one; zero for the current key.
	RetiredAt time.Time `json:"retired_at,omitempty"`
	Current   bool      `json:"current"`
}

// keyFile is the JSON form of a key set on disk.
type keyFile struct {
	Keys []keyFileEntry `json:"keys"`
}

type keyFileEntry struct {
	KID       string    `json:"kid"`
	Seed      string    `json:"seed"` // base64url Ed25519 seed
	CreatedAt time.Time `json:"created_at"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

// LoadKeySet reads the key set at path, or generates a set with one key and
// writes it there (mode 0600, directory 0700) when the file does not exist.
// Two processes starting at once end up with the same set.
func LoadKeySet(path string) (*KeySet, error) {
	if path == "" {
		return nil, errors.New("auth: no signing key file: set a data directory or a key file")
	}
	ks := &KeySet{path: path}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		k, err := newSigningKey(time.Now())
		if err != nil {
			return nil, err
		}
		if err := writeKeyFileExclusive(path, []signingKey{k}); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	if _, err := ks.Reload(); err != nil {
		return nil, err
	}
	return ks, nil
}

// Reload re-reads the key file when it changed since the last read and
// reports whether it did. The server calls it periodically so that a rotation
// made by `pulse admin keys rotate` takes effect without a restart.
func (ks *KeySet) Reload() (bool, error) {
	st, err := os.Stat(ks.path)
	if err != nil {
		return false, fmt.Errorf("auth: read signing keys: %w", err)
	}
	ks.mu.RLock()
	same := st.ModTime().Equal(ks.modTime) && st.Size() == ks.size
	ks.mu.RUnlock()
	if same {
		return false, nil
	}
	if st.Mode().Perm()&0o077 != 0 {
		return false, fmt.Errorf("auth: signing key file %s is readable by others (mode %v): chmod 600 it", ks.path, st.Mode().Perm())
	}
	keys, err := readKeyFile(ks.path)
	if err != nil {
		return false, err
	}
	byKID := make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		byKID[k.kid] = k.private.Public().(ed25519.PublicKey)
	}
	ks.mu.Lock()
	ks.keys, ks.byKID, ks.modTime, ks.size = keys, byKID, st.ModTime(), st.Size()
	ks.mu.Unlock()
	return true, nil
}

// Rotate adds a new signing key, makes it current, prunes keys retired longer
// ago than keep, writes the file and returns the new key's kid.
func (ks *KeySet) Rotate(now time.Time, keep time.Duration) (string, error) {
	keys, err := readKeyFile(ks.path)
	if err != nil {
		return "", err
	}
	k, err := newSigningKey(now)
	if err != nil {
		return "", err
	}
	var next []signingKey
	for _, old := range keys {
		if old.retiredAt.IsZero() {
			old.retiredAt = now
		}
		if now.Sub(old.retiredAt) <= keep {
			next = append(next, old)
		}
	}
	next = append(next, k)
	if err := writeKeyFile(ks.path, next); err != nil {
		return "", err
	}
	if _, err := ks.Reload(); err != nil {
		return "", err
	}
	return k.kid, nil
}

// RotateKeyFile rotates the key set at path for `pulse admin keys rotate`:
// it adds a new current key, keeps retired keys for MaxShareLinkLifetime plus
// DefaultLeeway (so every token they signed can still verify), and returns
// the new kid. Running servers pick it up within Config.KeyReloadInterval.
func RotateKeyFile(path string) (string, error) {
	ks, err := LoadKeySet(path)
	if err != nil {
		return "", err
	}
	return ks.Rotate(time.Now(), MaxShareLinkLifetime+DefaultLeeway)
}

// Keys lists the keys of the set, oldest first.
func (ks *KeySet) Keys() []KeyInfo {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]KeyInfo, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = KeyInfo{KID: k.kid, CreatedAt: k.createdAt, RetiredAt: k.retiredAt, Current: i == len(ks.keys)-1}
	}
	return out
}

// current returns the signing key.
func (ks *KeySet) current() signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[len(ks.keys)-1]
}

// publicKey returns the verifying key with kid.
func (ks *KeySet) publicKey(kid string) (ed25519.PublicKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	k, ok := ks.byKID[kid]
	return k, ok
}

func newSigningKey(now time.Time) (signingKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return signingKey{}, fmt.Errorf("auth: generate signing key: %w", err)
	}
	return signingKey{kid: keyID(priv.Public().(ed25519.PublicKey)), private: priv, createdAt: now.UTC().Truncate(time.Second)}, nil
}

// keyID derives a key's kid from its public key.
func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func readKeyFile(path string) ([]signingKey, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read signing keys: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("auth: signing key file %s: %w", path, err)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("auth: signing key file %s has no keys", path)
	}
	keys := make([]signingKey, 0, len(f.Keys))
	for i, e := range f.Keys {
		seed, err := base64.RawURLEncoding.DecodeString(e.Seed)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("auth: signing key file %s: key %d has no valid seed", path, i+1)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		kid := keyID(priv.Public().(ed25519.PublicKey))
		if e.KID != kid {
			return nil, fmt.Errorf("auth: signing key file %s: key %d has kid %q, its key says %q", path, i+1, e.KID, kid)
		}
		keys = append(keys, signingKey{kid: kid, private: priv, createdAt: e.CreatedAt, retiredAt: e.RetiredAt})
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].createdAt.Before(keys[j].createdAt) })
	return keys, nil
}

func encodeKeyFile(keys []signingKey) ([]byte, error) {
	var f keyFile
	for _, k := range keys {
		f.Keys = append(f.Keys, keyFileEntry{
			KID: k.kid, Seed: base64.RawURLEncoding.EncodeToString(k.private.Seed()),
			CreatedAt: k.createdAt, RetiredAt: k.retiredAt,
		})
	}
	return json.MarshalIndent(f, "", "  ")
}

// writeTemp writes keys to a new 0600 file next to path and returns its name.
func writeTemp(path string, keys []signingKey) (string, error) {
	body, err := encodeKeyFile(keys)
	if err != nil {
		return "", fmt.Errorf("auth: encode signing keys: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("auth: create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".jwt-keys-*")
	if err != nil {
		return "", fmt.Errorf("auth: write signing keys: %w", err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(append(body, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("auth: write signing keys: %w", err)
	}
	return name, nil // CreateTemp makes files with mode 0600
}

// writeKeyFile replaces path atomically.
func writeKeyFile(path string, keys []signingKey) error {
	tmp, err := writeTemp(path, keys)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("auth: write signing keys: %w", err)
	}
	return nil
}

// writeKeyFileExclusive creates path only if it does not exist (fs.ErrExist otherwise).
func writeKeyFileExclusive(path string, keys []signingKey) error {
	tmp, err := writeTemp(path, keys)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("auth: create signing key file: %w", err)
	}
	return nil
}
